//! The model registry: `REGISTRY/registry.json`, one entry per detector version.
//!
//! # Consistency under crashes
//! A version is committed in three steps:
//! 1. every artifact is written into `MODELS/<detector>/.staging-<version>/` (invisible);
//! 2. the index is rewritten atomically with the new entry (temporary file + rename): this is
//!    the commit point;
//! 3. the staging directory is renamed to `MODELS/<detector>/<version>/`.
//!
//! A crash in step 1 leaves only a staging directory: no entry, no version directory. The next
//! [`Registry::open`] removes it. A crash between 2 and 3 leaves an entry whose directory is
//! still the staging one: [`Registry::open`] finishes the rename once the staged files match
//! the entry's sha256s (roll forward). So at any moment a version is either absent from both
//! the index and `MODELS/`, or present in both with the files the entry lists.
//! Every command that changes the registry holds its lock ([`crate::lock`]) for the whole
//! change, so two processes never commit at once.
//!
//! Entry paths are stored relative to the registry directory (index format 2), so the registry
//! can be verified from any working directory and moved together with `MODELS/`.

use crate::error::UsageError;
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Index file name.
pub const INDEX: &str = crate::layout::REGISTRY_INDEX;
/// Index format written. Read too: format 1 (working-directory-relative paths) and format 2
/// (metric and gate names before [`crate::model::metrics::names`]).
pub const FORMAT: u32 = 3;

/// Lifecycle of a version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Exported, passed its gates, not deployed.
    Candidate,
    /// The deployed version (at most one per detector).
    Production,
    /// Replaced by a later production version.
    Retired,
}

pub use crate::release::gates::GateResult;

/// One registered version.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Entry {
    /// Detector name (the config's `name`).
    pub detector: String,
    /// `major.minor.patch`.
    pub version: String,
    /// Lifecycle status.
    pub status: Status,
    /// Creation time, UTC (RFC 3339).
    pub created_at: String,
    /// The version directory.
    pub path: PathBuf,
    /// sha256 of the pipeline config file.
    pub config_sha256: String,
    /// sha256 of the checkpoint exported.
    pub checkpoint_sha256: String,
    /// sha256 of the training-data manifest.
    pub training_data_sha256: String,
    /// Artifact → sha256.
    pub artifacts: BTreeMap<String, String>,
    /// Headline metrics (test split, 5-fold CV means, latency).
    pub metrics: BTreeMap<String, f64>,
    /// Gate outcomes.
    pub gates: Vec<GateResult>,
}

impl std::fmt::Display for Entry {
    /// The headline test metrics, the ONNX Runtime latency and the gate table.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::model::metrics::names;
        let m = |k: &str| self.metrics.get(k).map_or("n/a".to_string(), |v| format!("{v:.3}"));
        writeln!(
            f,
            "test AUC {}, precision {}, recall {}, FAR {}; ONNX Runtime p99 latency {} ms",
            m(names::TEST_AUC),
            m(names::TEST_PRECISION),
            m(names::TEST_RECALL),
            m(names::TEST_FAR),
            m(names::EXPORT_LATENCY_P99_MS)
        )?;
        writeln!(
            f,
            "test flights: {} false alerts per 100 h over {} healthy flight hours; gross faults alerted in time {}, subtle {}; delay median {} s",
            m(names::TEST_FLIGHT_FALSE_ALERTS_PER_100H),
            m(names::TEST_FLIGHT_HEALTHY_HOURS),
            m(names::TEST_FLIGHT_GROSS_IN_TIME),
            m(names::TEST_FLIGHT_SUBTLE_ALERTED),
            m(names::TEST_FLIGHT_DELAY_MEDIAN_S)
        )?;
        if let Some(x) = self.metrics.get(names::FLIGHT_CALIBRATION_MULTIPLIER) {
            writeln!(
                f,
                "flight calibration: thresholds x {x:.3}; healthy test flights alerting {}",
                m(names::TEST_FLIGHT_HEALTHY_ALERTING)
            )?;
        }
        if let (Some(e), Some(b), Some(c)) = (
            self.metrics.get(names::TRAIN_EPOCHS),
            self.metrics.get(names::TRAIN_BEST_EPOCH),
            self.metrics.get(names::TRAIN_CONVERGED),
        ) {
            writeln!(
                f,
                "training: {} after {e} epochs (best epoch {b})",
                if *c == 1.0 { "converged (early stopping)" } else { "cut by max_epochs, not converged" }
            )?;
        }
        write!(f, "{}", crate::release::gates::table(&self.gates))
    }
}

impl std::fmt::Display for Registry {
    /// `avm registry list`: one line per version with its status and headline metrics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::model::metrics::names;
        write!(
            f,
            "{:<20} {:>9} {:<10} {:<20} {:>6} {:>6} {:>6} {:>6}",
            "detector", "version", "status", "created", "auc", "prec", "recall", "far"
        )?;
        for e in &self.entries {
            let m = |k: &str| e.metrics.get(k).copied().unwrap_or(f64::NAN);
            write!(
                f,
                "\n{:<20} {:>9} {:<10} {:<20} {:>6.3} {:>6.3} {:>6.3} {:>6.3}",
                e.detector,
                e.version,
                format!("{:?}", e.status).to_lowercase(),
                e.created_at,
                m(names::TEST_AUC),
                m(names::TEST_PRECISION),
                m(names::TEST_RECALL),
                m(names::TEST_FAR)
            )?;
        }
        Ok(())
    }
}

/// The index.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Registry {
    /// Index format.
    pub format: u32,
    /// Entries in creation order.
    pub entries: Vec<Entry>,
    #[serde(skip)]
    dir: PathBuf,
}

/// The staging directory of `version_dir`.
pub fn staging_dir(version_dir: &Path) -> PathBuf {
    let name = version_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    version_dir.with_file_name(format!(".staging-{name}"))
}

fn files_match(dir: &Path, artifacts: &BTreeMap<String, String>) -> bool {
    artifacts.iter().all(|(n, h)| crate::io::sha256_file(&dir.join(n)).is_ok_and(|x| &x == h))
}

/// Test hook: `AVM_CRASH_AT=<point>` aborts the process at that point of a commit, as a power
/// cut would (used by the crash-consistency tests).
fn crash_point(point: &str) {
    if std::env::var("AVM_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("AVM_CRASH_AT={point}: aborting");
        std::process::abort();
    }
}

impl Registry {
    /// Opens (or starts) the registry in `dir` and finishes commits interrupted after their
    /// commit point (see the module docs); [`Registry::discard_stale_staging`] removes those
    /// interrupted before it.
    pub fn open(dir: &Path) -> Result<Registry> {
        let index = dir.join(INDEX);
        let mut reg = if index.exists() {
            let bytes = std::fs::read(&index).with_context(|| format!("reading {}", index.display()))?;
            let r: Registry = serde_json::from_slice(&bytes)
                .map_err(|e| UsageError(format!("{}: not a valid registry index: {e}", index.display())))?;
            ensure!(
                (1..=FORMAT).contains(&r.format),
                UsageError(format!("{}: registry format {} unknown", index.display(), r.format))
            );
            r
        } else {
            Registry { format: FORMAT, entries: Vec::new(), dir: PathBuf::new() }
        };
        reg.dir = dir.to_path_buf();
        for e in &mut reg.entries {
            crate::ids::check("detector", &e.detector)
                .map_err(|m| UsageError(format!("{}: {m}", index.display())))?;
            // An entry names its directory; the index is a file on disk, so that directory
            // must be `<models>/<detector>/<version>` and nothing else (it is renamed into on
            // roll-forward).
            let ok_version = e.version.parse::<crate::release::version::Version>().is_ok();
            let tail: Vec<_> = e.path.components().rev().take(2).collect();
            let ok_path = tail.len() == 2
                && tail[0].as_os_str() == e.version.as_str()
                && tail[1].as_os_str() == e.detector.as_str();
            ensure!(
                ok_version && ok_path,
                UsageError(format!(
                    "{}: entry {} {} has path {} (must end in <detector>/<major.minor.patch>)",
                    index.display(),
                    e.detector,
                    e.version,
                    e.path.display()
                ))
            );
            // Format 1 stored paths relative to the working directory of the export.
            if reg.format >= 2 {
                e.path = crate::io::resolve(dir, &e.path);
            }
            // Formats 1 and 2 named metrics and gates before the one naming scheme.
            if reg.format < 3 {
                e.metrics = std::mem::take(&mut e.metrics)
                    .into_iter()
                    .map(|(k, v)| (crate::model::metrics::names::legacy(&k).unwrap_or(k), v))
                    .collect();
                for g in &mut e.gates {
                    if let Some(n) = crate::model::metrics::names::legacy(&g.gate) {
                        g.gate = n;
                    }
                }
            }
        }
        reg.format = FORMAT;
        for e in &reg.entries {
            let staging = staging_dir(&e.path);
            if staging.exists() && files_match(&staging, &e.artifacts) {
                if e.path.exists() {
                    // A forced re-export crashed before the swap: the entry describes the staged files.
                    std::fs::remove_dir_all(&e.path)
                        .with_context(|| format!("removing {}", e.path.display()))?;
                }
                std::fs::rename(&staging, &e.path)
                    .with_context(|| format!("completing the interrupted export of {}", e.path.display()))?;
                eprintln!("registry: completed the interrupted export of {} {}", e.detector, e.version);
            }
        }
        Ok(reg)
    }

    /// Removes staging directories under `detector_dir` that no commit will finish (their
    /// export was interrupted before the commit point).
    pub fn discard_stale_staging(&self, detector_dir: &Path) -> Result<()> {
        let Ok(rd) = std::fs::read_dir(detector_dir) else { return Ok(()) };
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".staging-") {
                eprintln!("registry: removing {} left by an interrupted export", e.path().display());
                std::fs::remove_dir_all(e.path())
                    .with_context(|| format!("removing {}", e.path().display()))?;
            }
        }
        Ok(())
    }

    /// The entry of `detector` `version`.
    pub fn get(&self, detector: &str, version: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.detector == detector && e.version == version)
    }

    /// The newest (highest) version of `detector`.
    pub fn latest(&self, detector: &str) -> Option<&Entry> {
        self.entries.iter().filter(|e| e.detector == detector).max_by_key(|e| {
            e.version.parse::<crate::release::version::Version>().map(|v| v.0).unwrap_or_default()
        })
    }

    fn save(&self) -> Result<()> {
        let mut stored = self.clone();
        for e in &mut stored.entries {
            e.path = crate::io::relative_to(&self.dir, &e.path)?;
        }
        crate::io::write_bytes_atomic(
            &self.dir.join(INDEX),
            serde_json::to_string_pretty(&stored)?.as_bytes(),
        )
    }

    /// Commits the staged version `entry` (files in `staging_dir(&entry.path)`): see the module
    /// docs. An existing version is refused unless `force`.
    pub fn commit(&mut self, entry: Entry, force: bool) -> Result<()> {
        let staging = staging_dir(&entry.path);
        ensure!(
            files_match(&staging, &entry.artifacts),
            "staged files of {} do not match their hashes",
            entry.path.display()
        );
        if !force && (self.get(&entry.detector, &entry.version).is_some() || entry.path.exists()) {
            bail!(UsageError(format!(
                "{} {} already exists: versions are immutable (pass --force to replace it)",
                entry.detector, entry.version
            )));
        }
        crash_point("staged");
        self.entries.retain(|e| !(e.detector == entry.detector && e.version == entry.version));
        let path = entry.path.clone();
        self.entries.push(entry);
        self.save()?;
        crash_point("registered");
        if path.exists() {
            let old = path.with_file_name(format!(
                ".replaced-{}",
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            ));
            if old.exists() {
                std::fs::remove_dir_all(&old)?;
            }
            std::fs::rename(&path, &old).with_context(|| format!("moving aside {}", path.display()))?;
            std::fs::rename(&staging, &path).with_context(|| format!("renaming into {}", path.display()))?;
            std::fs::remove_dir_all(&old)?;
        } else {
            std::fs::rename(&staging, &path).with_context(|| format!("renaming into {}", path.display()))?;
        }
        Ok(())
    }

    /// Makes `version` the production version of `detector`; the previous one is retired.
    pub fn promote(&mut self, detector: &str, version: &str) -> Result<()> {
        let entry = self.get(detector, version).ok_or_else(|| {
            UsageError(format!("no version {version} of {detector} in {}", self.dir.join(INDEX).display()))
        })?;
        let problems = verify_entry(entry);
        ensure!(
            problems.is_empty(),
            UsageError(format!(
                "{detector} {version} cannot be promoted: its artifacts do not match the registry:\n  {}",
                problems.join("\n  ")
            ))
        );
        for e in self.entries.iter_mut().filter(|e| e.detector == detector) {
            if e.version == version {
                e.status = Status::Production;
            } else if e.status == Status::Production {
                e.status = Status::Retired;
            }
        }
        self.save()
    }

    /// Checks every entry's files against its hashes; returns the problems found.
    pub fn verify(&self) -> Vec<String> {
        self.entries.iter().flat_map(verify_entry).collect()
    }
}

/// One entry's files against its hashes: the problems found.
pub fn verify_entry(e: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    for (n, h) in &e.artifacts {
        let p = e.path.join(n);
        match crate::io::sha256_file(&p) {
            Ok(x) if &x == h => {}
            Ok(_) => out.push(format!("{} {}: {n} was modified ({})", e.detector, e.version, p.display())),
            Err(_) => out.push(format!("{} {}: {n} is missing ({})", e.detector, e.version, p.display())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_shape() {
        let t = crate::io::now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }

    fn entry(dir: &Path, version: &str, file: &[u8]) -> Entry {
        let path = dir.join("MODELS").join("det").join(version);
        let staging = staging_dir(&path);
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("a.bin"), file).unwrap();
        Entry {
            detector: "det".into(),
            version: version.into(),
            status: Status::Candidate,
            created_at: crate::io::now_rfc3339(),
            path,
            config_sha256: String::new(),
            checkpoint_sha256: String::new(),
            training_data_sha256: String::new(),
            artifacts: [("a.bin".to_string(), crate::io::sha256_hex(file))].into(),
            metrics: BTreeMap::new(),
            gates: Vec::new(),
        }
    }

    #[test]
    fn commit_refuse_force_promote() {
        let d = tempfile::tempdir().unwrap();
        let reg_dir = d.path().join("REGISTRY");
        let mut r = Registry::open(&reg_dir).unwrap();
        r.commit(entry(d.path(), "1.0.0", b"one"), false).unwrap();
        let e = r.commit(entry(d.path(), "1.0.0", b"two"), false).unwrap_err();
        assert!(e.to_string().contains("immutable"), "{e}");
        assert!(e.downcast_ref::<UsageError>().is_some());
        r.discard_stale_staging(&d.path().join("MODELS/det")).unwrap();
        let p = d.path().join("MODELS/det/1.0.0/a.bin");
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        r.commit(entry(d.path(), "1.0.0", b"two"), true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        r.commit(entry(d.path(), "1.1.0", b"three"), false).unwrap();
        r.promote("det", "1.0.0").unwrap();
        r.promote("det", "1.1.0").unwrap();
        let r = Registry::open(&reg_dir).unwrap();
        let st: Vec<_> = r.entries.iter().map(|e| (e.version.as_str(), e.status)).collect();
        assert_eq!(st, [("1.0.0", Status::Retired), ("1.1.0", Status::Production)]);
        assert_eq!(r.latest("det").unwrap().version, "1.1.0");
        assert!(r.verify().is_empty());
        std::fs::write(&p, b"tampered").unwrap();
        assert_eq!(r.verify(), [format!("det 1.0.0: a.bin was modified ({})", p.display())]);
        let mut r = r;
        let e = r.promote("det", "1.0.0").unwrap_err();
        assert!(format!("{e:#}").contains("cannot be promoted"), "{e:#}");
        let r = Registry::open(&reg_dir).unwrap();
        assert_eq!(r.get("det", "1.1.0").unwrap().status, Status::Production, "nothing changed");
    }

    #[test]
    fn an_index_naming_a_directory_elsewhere_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let reg_dir = d.path().join("REGISTRY");
        let mut e = entry(d.path(), "1.0.0", b"x");
        for (path, detector, version) in [
            ("../../../etc", "det", "1.0.0"),
            ("../MODELS/det/1.0.0/..", "det", "1.0.0"),
            ("../MODELS/other/1.0.0", "det", "1.0.0"),
            ("../MODELS/det/x", "det", "x"),
            ("../MODELS/../x/1.0.0", "../x", "1.0.0"),
        ] {
            e.path = PathBuf::from(path);
            e.detector = detector.into();
            e.version = version.into();
            let text = serde_json::json!({"format": FORMAT, "entries": [e]}).to_string();
            std::fs::create_dir_all(&reg_dir).unwrap();
            std::fs::write(reg_dir.join(INDEX), text).unwrap();
            let err = Registry::open(&reg_dir).unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{path}: {err:#}");
            assert!(format!("{err:#}").contains("registry.json"), "{err:#}");
        }
    }

    #[test]
    fn open_rolls_a_registered_commit_forward() {
        let d = tempfile::tempdir().unwrap();
        let reg_dir = d.path().join("REGISTRY");
        let e = entry(d.path(), "2.0.0", b"x");
        // As if the process died right after writing the index (step 2).
        let r = Registry { format: FORMAT, entries: vec![e.clone()], dir: reg_dir.clone() };
        r.save().unwrap();
        assert!(!e.path.exists());
        let r = Registry::open(&reg_dir).unwrap();
        assert!(e.path.join("a.bin").exists() && !staging_dir(&e.path).exists());
        assert!(r.verify().is_empty());
    }
}
