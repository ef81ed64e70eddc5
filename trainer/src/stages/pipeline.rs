//! `avm run`: simulate (when there is no raw data) → preprocess → featurize → train → evaluate
//! → export → quality gates → registry. And the gate-then-commit step `avm export` shares.
//!
//! Stages whose inputs have not changed are skipped: each stage's key is the sha256 of the
//! `avm` binary, the config sections it reads and the content of its input files; the key and
//! the sha256 of its outputs are recorded in `<data>/.avm-stages/<stage>.json`. A stage runs
//! again when its key differs, when an output is missing or was modified, or with `--force`.
//!
//! Gates are checked on the test split at the global threshold (the operating point a
//! firmware without flight-phase input uses) and on the p99 single-window latency through ONNX
//! Runtime. A failed gate is a [`GateFailure`] (exit code 4): the staged version is deleted,
//! nothing is registered.

pub use crate::config::Gates;
use crate::config::PipelineConfig;
use crate::error::{GateFailure, UsageError};
use crate::model::metrics::names;
use crate::release::gates;
use crate::release::registry::{self, Entry, Registry, Status};
use crate::stages::evaluate::{self, EvalReport};
use crate::stages::export::{self, Staged, Version};
use crate::stages::{featurize, preprocess, simulate, train};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn headline(r: &EvalReport, s: &Staged) -> BTreeMap<String, f64> {
    let mut m = r.headline();
    m.insert(names::EXPORT_LATENCY_P50_MS.into(), s.latency.p50_ms);
    m.insert(names::EXPORT_LATENCY_P99_MS.into(), s.latency.p99_ms);
    m.insert(names::EXPORT_ORT_VS_CORE_SCORE_MAX_ABS.into(), s.validation.ort_vs_core_score.max_abs);
    m
}

/// Stages `version`, checks the gates and commits it to the registry. Returns the entry.
pub fn export_version(
    cfg: &PipelineConfig,
    config_path: &Path,
    checkpoint: Option<&Path>,
    version: Version,
    force: bool,
) -> Result<Entry> {
    let mut reg = Registry::open(&cfg.paths.registry)?;
    let detector_dir = cfg.paths.models.join(&cfg.name);
    reg.discard_stale_staging(&detector_dir)?;
    let final_dir = export::version_dir(cfg, version);
    if !force && (reg.get(&cfg.name, &version.to_string()).is_some() || final_dir.exists()) {
        bail!(UsageError(format!(
            "{} {version} already exists ({}): versions are immutable (pass --force to replace it)",
            cfg.name,
            final_dir.display()
        )));
    }
    let staging = registry::staging_dir(&final_dir);
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let staged = match export::stage(cfg, checkpoint, version, &staging) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let metrics = headline(&staged.report, &staged);
    let gates = gates::check(&cfg.gates, &metrics, &staged.report.unmeasurable());
    if gates.iter().any(|g| !g.passed) {
        let _ = std::fs::remove_dir_all(&staging);
        bail!(GateFailure(gates::table(&gates)));
    }
    let entry = Entry {
        detector: cfg.name.clone(),
        version: version.to_string(),
        status: Status::Candidate,
        created_at: crate::io::now_rfc3339(),
        path: final_dir,
        config_sha256: crate::io::sha256_file(config_path)?,
        checkpoint_sha256: staged.checkpoint_sha256.clone(),
        training_data_sha256: staged.training_data_sha256.clone(),
        artifacts: staged.artifacts.clone(),
        metrics,
        gates,
    };
    reg.commit(entry.clone(), force)?;
    let train_dir =
        checkpoint.and_then(Path::parent).map_or_else(|| train::training_dir(cfg), Path::to_path_buf);
    crate::tracking::after_export(cfg, &train_dir, &entry);
    Ok(entry)
}

/// A stage's record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct StageRecord {
    stage: String,
    key: String,
    outputs: BTreeMap<String, String>,
}

/// sha256 of every file under `paths` (files or directories, recursively, names starting with
/// `.` skipped), keyed by path.
fn hash_tree(paths: &[PathBuf]) -> Result<BTreeMap<String, String>> {
    fn walk(p: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            return Ok(());
        }
        if p.is_dir() {
            let mut kids: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("listing {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            kids.sort();
            for k in kids {
                walk(&k, out)?;
            }
        } else if p.is_file() {
            out.insert(p.display().to_string(), crate::io::sha256_file(p)?);
        } else {
            out.insert(p.display().to_string(), "missing".into());
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    Ok(out)
}

struct Stages<'a> {
    records: PathBuf,
    exe_sha: String,
    force: bool,
    names: &'a [&'a str],
    done: usize,
}

impl Stages<'_> {
    fn progress(&mut self, name: &str, what: &str, t0: Instant) {
        self.done += 1;
        let left = &self.names[self.done.min(self.names.len())..];
        crate::note!(
            "[{}/{}] {name}: {what} in {:.1} s{}",
            self.done,
            self.names.len(),
            t0.elapsed().as_secs_f64(),
            if left.is_empty() { String::new() } else { format!(" (left: {})", left.join(", ")) }
        );
    }

    /// Runs `f` unless the stage's key and outputs match its record.
    fn run(
        &mut self,
        name: &str,
        params: serde_json::Value,
        inputs: &[PathBuf],
        outputs: &[PathBuf],
        f: impl FnOnce() -> Result<String>,
    ) -> Result<()> {
        let t0 = Instant::now();
        crate::note!("[{}/{}] {name} ...", self.done + 1, self.names.len());
        let key_src = serde_json::json!({
            "stage": name, "avm": self.exe_sha, "params": params, "inputs": hash_tree(inputs)?,
        });
        let key = crate::io::sha256_hex(serde_json::to_string(&key_src)?.as_bytes());
        let rec_path = self.records.join(format!("{name}.json"));
        if !self.force {
            let old: Option<StageRecord> =
                std::fs::read(&rec_path).ok().and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(old) = old
                && old.key == key
                && old.outputs == hash_tree(outputs)?
            {
                self.progress(name, "inputs unchanged, skipped", t0);
                return Ok(());
            }
        }
        let _ = std::fs::remove_file(&rec_path);
        let summary = f()?;
        let rec = StageRecord { stage: name.into(), key, outputs: hash_tree(outputs)? };
        crate::io::write_bytes_atomic(&rec_path, serde_json::to_string_pretty(&rec)?.as_bytes())?;
        self.progress(name, "done", t0);
        for line in summary.lines().filter(|l| !l.trim().is_empty()) {
            crate::note!("      {}", line.trim_end());
        }
        Ok(())
    }
}

/// What `avm run` ended with.
#[derive(Clone, Debug)]
pub enum RunOutcome {
    /// A new version was registered.
    Registered(Entry),
    /// The latest registered version already is this model (same config, data and checkpoint).
    Unchanged(Entry),
}

/// `avm run` options.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Version to register (default: the latest + 1 patch, or 1.0.0).
    pub version: Option<Version>,
    /// Recompute every stage and replace an existing version.
    pub force: bool,
}

/// Runs the whole pipeline.
pub fn run(cfg: &PipelineConfig, config_path: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    let reg = Registry::open(&cfg.paths.registry)?;
    // Staging left by an export that was killed before its commit point (the caller holds the
    // registry and model locks, so no export is running).
    reg.discard_stale_staging(&cfg.paths.models.join(&cfg.name))?;
    if let Some(v) = opts.version
        && !opts.force
        && reg.get(&cfg.name, &v.to_string()).is_some()
    {
        bail!(UsageError(format!(
            "{} {v} is already registered: versions are immutable (pass --force to replace it)",
            cfg.name
        )));
    }
    let exe = std::env::current_exe().context("locating the avm binary")?;
    let names = ["data", "preprocess", "featurize", "train", "evaluate", "export + gates + registry"];
    let mut st = Stages {
        records: cfg.paths.data.join(".avm-stages"),
        exe_sha: crate::io::sha256_file(&exe)?,
        force: opts.force,
        names: &names,
        done: 0,
    };
    let t0 = Instant::now();
    let contract = std::fs::read(&cfg.contract)
        .map_err(|e| UsageError(format!("contract {}: {e}", cfg.contract.display())))?;
    let contract_sha = crate::io::sha256_hex(&contract);
    let raw = cfg.paths.raw_recordings();
    let have_raw = crate::stages::validate::list_recordings(&raw).is_ok_and(|v| !v.is_empty());
    // `simulate.stream` (no raw recordings): the data stage simulates and preprocesses in one
    // pass, so it is cached like a stage, on the simulation, the features and the contract
    // (and the binary), with the raw and processed directories as its outputs.
    let stream = cfg.simulate.clone().filter(|s| s.stream && !have_raw);
    if let Some(sim) = &stream {
        st.run(
            "data",
            serde_json::json!({"simulate": section(sim), "features": section(&cfg.features), "contract": contract_sha}),
            &[],
            &[cfg.paths.raw(), cfg.paths.processed()],
            || {
                preprocess::simulate_streamed(cfg, sim)
                    .map(|(_, m)| format!("simulated the fleet as a feature stream (no raw recordings written)\n{m}"))
            },
        )?;
        st.progress("preprocess", "done by the data stage (simulate.stream)", Instant::now());
    } else {
        crate::note!("[1/{}] data ...", names.len());
        if !have_raw {
            let sim = cfg.simulate.clone().ok_or_else(|| {
                UsageError(format!(
                    "no recordings in {} and the config has no `simulate:` section",
                    raw.display()
                ))
            })?;
            simulate::run(&sim, &cfg.paths.raw())?;
            st.progress("data", "simulated the default fleet", t0);
        } else {
            st.progress("data", "raw recordings present", t0);
        }
    }
    let raw_inputs = vec![cfg.paths.raw()];
    let processed = cfg.paths.processed();
    if stream.is_none() {
        st.run(
            "preprocess",
            serde_json::json!({"features": section(&cfg.features), "contract": contract_sha}),
            &raw_inputs,
            std::slice::from_ref(&processed),
            || preprocess::run(cfg).map(|m| m.to_string()),
        )?;
    }
    let (fdir, ldir) = (featurize::features_dir(cfg), featurize::labels_dir(cfg));
    let mut featurize_params = serde_json::json!({"features": section(&cfg.features), "split": section(&cfg.split), "contract": contract_sha});
    if let Some(b) = &cfg.baseline {
        featurize_params["baseline"] = section(b);
    }
    st.run(
        "featurize",
        featurize_params,
        std::slice::from_ref(&processed),
        &[fdir.clone(), ldir.clone()],
        || featurize::run(cfg).map(|m| m.to_string()),
    )?;
    let tdir = train::training_dir(cfg);
    st.run(
        "train",
        serde_json::json!({"train": section(&cfg.train)}),
        std::slice::from_ref(&fdir),
        std::slice::from_ref(&tdir),
        // train::run replaces the directory atomically: a failed training keeps the old one.
        || train::run(cfg, &train::TrainOptions::default()).map(|ck| train::summary(cfg, &ck)),
    )?;
    let edir = evaluate::evaluation_dir(cfg);
    st.run(
        "evaluate",
        serde_json::json!({"evaluate": section(&cfg.evaluate), "hop_s": cfg.features.hop_s, "hop_samples": cfg.features.hop_samples, "train": section(&cfg.train)}),
        &[fdir.clone(), tdir.join(crate::stages::train::BEST)],
        &[edir],
        || {
            evaluate::run(cfg, None).map(|r| {
                let cv = r.cross_validation.as_ref().map_or(String::new(), |cv| {
                    let get = |k: &str| cv.get(k).copied().unwrap_or((f64::NAN, f64::NAN));
                    format!(
                        "; {}-fold CV AUC {:.3} ± {:.3}, FAR {:.3} ± {:.3}",
                        r.cv_folds,
                        get("auc").0,
                        get("auc").1,
                        get("far").0,
                        get("far").1
                    )
                });
                let flights = r.calibration.flights.as_ref().map_or(String::new(), |fc| match &fc.skipped {
                    Some(note) => format!("\n{note}"),
                    None => format!(
                        "\nflight calibration: {} ({} healthy validation flights): thresholds x {:.3}",
                        fc.rule, fc.healthy_flights, fc.multiplier
                    ),
                });
                format!(
                    "test AUC {}, precision {:.3}, recall {:.3}, FAR {:.3} (calibration drift {:+.3}){cv}{flights}\n{}",
                    r.auc.map_or("n/a".into(), |a| format!("{a:.3}")),
                    r.test.precision,
                    r.test.recall,
                    r.test.far,
                    r.calibration.drift,
                    evaluate::evaluation_dir(cfg).display()
                )
            })
        },
    )?;

    let t0 = Instant::now();
    crate::note!("[{}/{}] export + gates + registry ...", names.len(), names.len());
    let ck_sha = crate::io::sha256_file(&tdir.join(crate::stages::train::BEST))?;
    let data_sha = crate::io::sha256_file(&fdir.join(crate::layout::MANIFEST))?;
    let config_sha = crate::io::sha256_file(config_path)?;
    let latest = reg.latest(&cfg.name).cloned();
    if opts.version.is_none()
        && !opts.force
        && let Some(l) = &latest
        && l.checkpoint_sha256 == ck_sha
        && l.training_data_sha256 == data_sha
        && l.config_sha256 == config_sha
        && registry::verify_entry(l).is_empty()
    {
        st.progress("export", &format!("unchanged model, already registered as {}", l.version), t0);
        return Ok(RunOutcome::Unchanged(l.clone()));
    }
    let version = match (opts.version, &latest) {
        (Some(v), _) => v,
        (None, Some(l)) => {
            let v: Version = l.version.parse()?;
            Version([v.0[0], v.0[1], v.0[2] + 1])
        }
        (None, None) => Version([1, 0, 0]),
    };
    let entry = export_version(cfg, config_path, None, version, opts.force)?;
    st.progress("export + gates + registry", &format!("registered {} {}", entry.detector, entry.version), t0);
    Ok(RunOutcome::Registered(entry))
}

/// A config section as JSON (for stage keys).
fn section<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tree_sees_changes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/x"), b"1").unwrap();
        std::fs::write(d.path().join("a/.hidden"), b"1").unwrap();
        let h1 = hash_tree(&[d.path().join("a")]).unwrap();
        assert_eq!(h1.len(), 1);
        std::fs::write(d.path().join("a/b/x"), b"2").unwrap();
        assert_ne!(h1, hash_tree(&[d.path().join("a")]).unwrap());
        let missing = hash_tree(&[d.path().join("nope")]).unwrap();
        assert_eq!(missing.values().next().unwrap(), "missing");
    }
}
