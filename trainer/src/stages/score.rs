//! `avm score`: a registered detector applied to new recordings, the ground-station half of the
//! product.
//!
//! For a detector version directory (`MODELS/<name>/<version>`, or `<name>@<version>` /
//! `<name>@production` / `<name>@latest` looked up in the registry):
//! 1. every artifact is checked against `signature.json`'s sha256 (and the registry entry's,
//!    when found through the registry); a mismatch refuses the detector;
//! 2. each recording is validated against the detector's own data contract (`contract.yaml`,
//!    exported with it) and its features are computed by avm-core exactly as in training and
//!    on board (the parity suite shows the firmware computes the same bits);
//! 3. each window is scored by the bundle (`detector.avmb`, avm-core's evaluator), judged by
//!    its phase table (the window's phase code, as on board), and the bundle's alert policy
//!    turns the verdicts into alerts.
//!
//! Output directory (replaced atomically): `scores.csv` / `scores.parquet` (every window),
//! `alerts.csv` (every alert), `flights.json` and `flights.csv` (one summary per recording),
//! `flights/<flight>.{png,svg}` (score over time with threshold, alerts and, with labels, the
//! onset). With `--labels`, the windows carry their labels and the summary the detection delays.

use crate::error::UsageError;
use crate::formats::contract::Contract;
use crate::formats::labels::LabelInterval;
use crate::formats::scores::{self, ScoredWindow};
use crate::layout;
use crate::model::flights::{self, FlightSummary};
use crate::release::registry::{self, Registry};
use crate::stages::export::Signature;
use crate::stages::preprocess;
use crate::tracking::plots;
use anyhow::{Context, Result, anyhow, bail};
use avm_core::{AlertEvent, AlertKind, Detector};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Alerts of all flights, as a table.
pub const ALERTS_CSV: &str = "alerts.csv";
/// Per-flight summaries (JSON).
pub const FLIGHTS_JSON: &str = "flights.json";
/// Per-flight summaries (CSV).
pub const FLIGHTS_CSV: &str = "flights.csv";

/// A detector version, checked and loaded.
pub struct Model {
    /// Its directory.
    pub dir: PathBuf,
    /// Detector name and version (from `signature.json`).
    pub name: String,
    /// Version.
    pub version: String,
    /// `detector.avmb`.
    pub bundle: Vec<u8>,
    /// The data contract it was trained under.
    pub contract: Contract,
    /// With per-unit baselines: the unit rule and each unit's bundle (`units/`).
    pub units: Option<(crate::config::GroupBy, BTreeMap<String, Vec<u8>>)>,
}

/// Finds the version directory `spec` names: a directory, or `<name>@<version|production|latest>`
/// in the registry at `registry_dir` (whose entry's sha256s are checked too).
pub fn resolve(spec: &str, registry_dir: &Path) -> Result<PathBuf> {
    let as_path = Path::new(spec);
    if as_path.is_dir() {
        return Ok(as_path.to_path_buf());
    }
    let Some((name, which)) = spec.split_once('@') else {
        bail!(UsageError(format!(
            "--model {spec}: not a directory, and not <detector>@<version|production|latest>"
        )));
    };
    let reg = Registry::open(registry_dir)?;
    let mine: Vec<&registry::Entry> = reg.entries.iter().filter(|e| e.detector == name).collect();
    let entry = match which {
        "production" => mine.iter().rev().find(|e| e.status == registry::Status::Production).copied(),
        "latest" => mine
            .iter()
            .max_by_key(|e| e.version.parse::<crate::release::version::Version>().ok().map(|v| v.0))
            .copied(),
        v => mine.iter().find(|e| e.version == v).copied(),
    }
    .ok_or_else(|| {
        let have: Vec<String> = mine.iter().map(|e| format!("{} ({:?})", e.version, e.status)).collect();
        UsageError(format!(
            "--model {spec}: no such version in the registry {} (versions of {name}: {})",
            registry_dir.display(),
            if have.is_empty() { "none".to_string() } else { have.join(", ") }
        ))
    })?;
    let problems = registry::verify_entry(entry);
    if !problems.is_empty() {
        bail!(UsageError(format!(
            "--model {spec}: refusing a detector whose files fail the registry's checks: {}",
            problems.join("; ")
        )));
    }
    Ok(entry.path.clone())
}

/// Loads a version directory, refusing it when an artifact fails its sha256.
pub fn load(dir: &Path) -> Result<Model> {
    let sig_path = dir.join(layout::SIGNATURE);
    let sig: Signature = serde_json::from_slice(
        &std::fs::read(&sig_path).with_context(|| format!("reading {}", sig_path.display()))?,
    )
    .map_err(|e| UsageError(format!("{}: not a detector signature: {e}", sig_path.display())))?;
    for need in [layout::BUNDLE, layout::CONTRACT_COPY] {
        if !sig.artifacts_sha256.contains_key(need) {
            bail!(UsageError(format!(
                "{}: the version has no {need} (exported by an older avm?); re-export it",
                dir.display()
            )));
        }
    }
    for (name, want) in &sig.artifacts_sha256 {
        let p = layout::artifact_path(dir, name).map_err(UsageError)?;
        let got = crate::io::sha256_file(&p).map_err(|e| UsageError(format!("{}: {e:#}", p.display())))?;
        if &got != want {
            bail!(UsageError(format!(
                "{}: sha256 {got} differs from signature.json's {want}: refusing a modified detector",
                p.display()
            )));
        }
    }
    let bundle = std::fs::read(dir.join(layout::BUNDLE))?;
    Detector::parse(&bundle)
        .map_err(|e| UsageError(format!("{}: {e}", dir.join(layout::BUNDLE).display())))?;
    let contract = Contract::load(&dir.join(layout::CONTRACT_COPY))?;
    let mut units = None;
    if sig.artifacts_sha256.contains_key(layout::SCALER_JSON) {
        let scaler = crate::formats::scaler::ScalerFile::load(&dir.join(layout::SCALER_JSON))?;
        if let Some(b) = scaler.baselines {
            let mut bundles = BTreeMap::new();
            for unit in b.units.keys() {
                let rel = layout::unit_bundle(unit).map_err(UsageError)?;
                let name = rel.to_string_lossy().into_owned();
                if !sig.artifacts_sha256.contains_key(&name) {
                    bail!(UsageError(format!(
                        "{}: scaler.json has a baseline for unit {unit:?} but the signature lists no {name}",
                        dir.display()
                    )));
                }
                let bytes = std::fs::read(dir.join(&rel))?;
                Detector::parse(&bytes)
                    .map_err(|e| UsageError(format!("{}: {e}", dir.join(&rel).display())))?;
                bundles.insert(unit.clone(), bytes);
            }
            units = Some((b.by, bundles));
        }
    }
    Ok(Model { dir: dir.to_path_buf(), name: sig.detector, version: sig.version, bundle, contract, units })
}

/// What scoring found.
#[derive(Serialize, Debug)]
pub struct Scored {
    /// Detector and version.
    pub detector: String,
    /// Version.
    pub version: String,
    /// Whether labels were given.
    pub labelled: bool,
    /// One summary per recording.
    pub flights: Vec<FlightSummary>,
    /// Flight-level metrics (with labels only).
    pub metrics: Option<flights::FlightMetrics>,
    /// Every window.
    #[serde(skip)]
    pub windows: Vec<ScoredWindow>,
    /// The alert events per flight, as avm-core emitted them.
    #[serde(skip)]
    pub events: Vec<(String, Vec<AlertEvent>)>,
}

/// Scores `recordings` with the bundle and contract of `model`; `labels` (optional) label the
/// windows. Pure computation: nothing is written.
/// `deadline_s` is the gross-fault alert deadline the labelled summary reports against.
pub fn score(
    model: &Model,
    recordings: &[PathBuf],
    labels: Option<&[LabelInterval]>,
    deadline_s: f64,
) -> Result<Scored> {
    let det = Detector::parse(&model.bundle).map_err(|e| anyhow!("{e}"))?;
    let xcfg = det.config();
    let channels: Vec<&str> = model.contract.vibration_channels().map(|c| c.name.as_str()).collect();
    let bundle_channels: Vec<&str> = (0..det.channels()).filter_map(|i| det.channel_name(i)).collect();
    if channels != bundle_channels {
        bail!(UsageError(format!(
            "{}: the contract's vibration channels {channels:?} are not the bundle's {bundle_channels:?}",
            model.dir.display()
        )));
    }
    let phase_names: Vec<&str> =
        (0..det.phase_count()).filter_map(|i| det.phase(i)).map(|p| p.name).collect();
    if phase_names != model.contract.phases.iter().map(String::as_str).collect::<Vec<_>>() {
        bail!(UsageError(format!(
            "{}: the contract's phases differ from the bundle's phase table {phase_names:?}",
            model.dir.display()
        )));
    }
    let mut windows = Vec::new();
    let mut seen = BTreeMap::new();
    for path in recordings {
        let (summary, rows) =
            preprocess::recording_windows(path, &model.contract, xcfg, labels.unwrap_or(&[]), 1 << 16)?;
        if let Some(other) = seen.insert(summary.flight_id.clone(), path.clone()) {
            bail!(UsageError(format!(
                "{} and {} are the same recording (flight_id {}): score each once",
                other.display(),
                path.display(),
                summary.flight_id
            )));
        }
        // With per-unit baselines, the bundle of the recording's unit (same network,
        // thresholds, phase table and policy; its baseline as the scaler's mean).
        let unit_det;
        let det = match (&model.units, rows.first()) {
            (Some((by, bundles)), Some(w)) => {
                let unit = by.key(&w.flight_id, &w.aircraft_id, &w.engine_id, &Default::default());
                let bytes = bundles.get(&unit).ok_or_else(|| {
                    UsageError(format!(
                        "{}: {by:?} {unit:?} has no baseline in {} (units: {}): a detector with per-unit \
                         baselines judges only the units it was fitted for",
                        path.display(),
                        model.dir.display(),
                        bundles.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                unit_det = Detector::parse(bytes).map_err(|e| anyhow!("{e}"))?;
                &unit_det
            }
            _ => &det,
        };
        for w in rows {
            // The bundle's phase table is the contract's phase list (checked above).
            let code = det.phase_code(&w.phase).unwrap_or(avm_core::PHASE_UNKNOWN);
            let s = det
                .score(&w.features)
                .map_err(|e| anyhow!("{}: window {}: {e}", path.display(), w.window_index))?;
            let v = det.judge(w.window_index, s, w.valid, code).map_err(|e| anyhow!("{e}"))?;
            windows.push(ScoredWindow { window: w, verdict: v, alert_up: false, labelled: labels.is_some() });
        }
    }
    let refs: Vec<&crate::formats::windows::Window> = windows.iter().map(|w| &w.window).collect();
    let verdicts: Vec<avm_core::Verdict> = windows.iter().map(|w| w.verdict).collect();
    let onsets = crate::formats::labels::onsets(labels.unwrap_or(&[]));
    let alerted = flights::alerts(det.alert_policy(), &refs, &verdicts, &onsets)?;
    for (w, up) in windows.iter_mut().zip(&alerted.alert_up) {
        w.alert_up = *up;
    }
    let mut flight_list = alerted.flights;
    if labels.is_none() {
        for f in &mut flight_list {
            f.kind = flights::FlightKind::Unlabelled;
        }
    }
    let metrics = labels.map(|_| flights::metrics(det.alert_policy(), &flight_list, deadline_s));
    Ok(Scored {
        detector: model.name.clone(),
        version: model.version.clone(),
        labelled: labels.is_some(),
        flights: flight_list,
        metrics,
        windows,
        events: alerted.events,
    })
}

/// Writes `s` into `out` (replaced atomically). An existing `out` is replaced only when it is
/// empty or a previous `avm score` output: any other directory (the user's data, say) is
/// refused, never deleted.
pub fn write(s: &Scored, out: &Path) -> Result<()> {
    let by_flight = ByFlight::new(s);
    if out.exists() {
        let entries = std::fs::read_dir(out).map_err(|e| {
            UsageError(format!("--out {}: not a directory avm can replace: {e}", out.display()))
        })?;
        let names: Vec<String> =
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        let ours = names.iter().any(|n| n == FLIGHTS_JSON) && names.iter().any(|n| n == scores::CSV);
        if !names.is_empty() && !ours {
            bail!(UsageError(format!(
                "--out {}: exists and is not an avm score output ({} entries, no {FLIGHTS_JSON}); \
                 refusing to replace it: choose a new or empty directory",
                out.display(),
                names.len()
            )));
        }
    }
    crate::io::replace_dir_atomic(out, |stage| {
        scores::write(stage, &s.windows)?;
        crate::io::write_bytes_atomic(
            &stage.join(FLIGHTS_JSON),
            serde_json::to_string_pretty(s)?.as_bytes(),
        )?;
        crate::io::write_atomic(&stage.join(ALERTS_CSV), |w| {
            let mut c = csv::Writer::from_writer(w);
            c.write_record([
                "flight_id",
                "event",
                "window_index",
                "time_s",
                "score",
                "threshold",
                "count",
                "of",
                "raised_window",
                "peak_score",
            ])?;
            for (flight, evs) in &s.events {
                for e in evs {
                    let ws = by_flight.of(flight);
                    let t = ws
                        .binary_search_by_key(&e.window_index, |w| w.window.window_index)
                        .map_or(f64::NAN, |k| ws[k].window.end_s);
                    c.write_record([
                        flight.clone(),
                        match e.kind {
                            AlertKind::Raised => "raised".into(),
                            AlertKind::Cleared => "cleared".into(),
                        },
                        e.window_index.to_string(),
                        t.to_string(),
                        e.score.to_string(),
                        e.threshold.to_string(),
                        e.count.to_string(),
                        e.of.to_string(),
                        e.raised_window.to_string(),
                        e.peak_score.to_string(),
                    ])?;
                }
            }
            c.flush()?;
            Ok(())
        })?;
        crate::io::write_atomic(&stage.join(FLIGHTS_CSV), |w| {
            let mut c = csv::Writer::from_writer(w);
            c.write_record([
                "flight_id",
                "kind",
                "hours",
                "windows",
                "judged",
                "alarms",
                "alerts",
                "first_alert_s",
                "max_score",
                "onset_s",
                "detection_delay_s",
            ])?;
            for f in &s.flights {
                let opt = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
                c.write_record([
                    f.flight_id.clone(),
                    serde_json::to_value(f.kind)?.as_str().unwrap_or("").to_string(),
                    f.hours.to_string(),
                    f.windows.to_string(),
                    f.judged.to_string(),
                    f.alarms.to_string(),
                    f.alerts.len().to_string(),
                    opt(f.alerts.first().map(|a| a.raised_s)),
                    max_score(by_flight.of(&f.flight_id)).to_string(),
                    opt(f.onset_s),
                    opt(f.detection_delay_s),
                ])?;
            }
            c.flush()?;
            Ok(())
        })?;
        let dir = stage.join(crate::stages::evaluate::FLIGHT_PLOTS_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for f in &s.flights {
            plots::flight(&dir, &f.flight_id, by_flight.of(&f.flight_id), f)?;
        }
        Ok(())
    })
}

/// Each flight's windows, in window order, gathered once (not one scan of every window per
/// flight and per alert: a fleet month scored at once has thousands of both).
struct ByFlight<'a>(BTreeMap<&'a str, Vec<&'a ScoredWindow>>);

impl<'a> ByFlight<'a> {
    fn new(s: &'a Scored) -> ByFlight<'a> {
        let mut m: BTreeMap<&str, Vec<&ScoredWindow>> = BTreeMap::new();
        for w in &s.windows {
            m.entry(w.window.flight_id.as_str()).or_default().push(w);
        }
        for ws in m.values_mut() {
            ws.sort_by_key(|w| w.window.window_index);
        }
        ByFlight(m)
    }

    /// The windows of `flight` (none for a flight without windows).
    fn of(&self, flight: &str) -> &[&'a ScoredWindow] {
        self.0.get(flight).map_or(&[], Vec::as_slice)
    }
}

/// The largest judged score of one flight's windows (NaN when none was judged).
fn max_score(ws: &[&ScoredWindow]) -> f32 {
    ws.iter().filter(|w| w.verdict.judged).map(|w| w.verdict.score).fold(f32::NAN, f32::max)
}

/// The short table on stdout.
pub fn table(s: &Scored) -> String {
    let mut t = format!(
        "{} {}: {} recording(s)\n{:<24} {:>7} {:>8} {:>7} {:>7} {:>7} {:>12} {:>10}\n",
        s.detector,
        s.version,
        s.flights.len(),
        "flight",
        "hours",
        "windows",
        "judged",
        "alarms",
        "alerts",
        "first alert",
        "max score"
    );
    let by_flight = ByFlight::new(s);
    for f in &s.flights {
        t += &format!(
            "{:<24} {:>7.2} {:>8} {:>7} {:>7} {:>7} {:>12} {:>10.4}\n",
            f.flight_id,
            f.hours,
            f.windows,
            f.judged,
            f.alarms,
            f.alerts.len(),
            f.alerts.first().map_or("-".to_string(), |a| format!("{:.0} s", a.raised_s)),
            max_score(by_flight.of(&f.flight_id))
        );
    }
    if let Some(m) = &s.metrics {
        t += &format!("{}\n", crate::stages::evaluate::FlightTable(m));
    }
    t
}
