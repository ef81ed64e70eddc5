//! `avm preprocess`: raw recordings → a window table (`DATA/processed/windows.parquet`) with
//! every window's ids, labels, data-quality counts and raw features, in one pass over the data.
//!
//! Steps: list the raw recordings; read and validate every one against the contract and the
//! labels against the recordings (any violation stops here, before anything is written); bring
//! speeds and phase onto the vibration timeline ([`crate::stages::sync`]); run avm-core's extractor once
//! per recording, so features and data-quality counts are exactly the core's (no second
//! implementation of the gap or spike rules); label each window; write the table and its
//! manifest (with avm-core's complete `ExtractorConfig` and the feature schema version) to a
//! staging directory and rename it into place. `avm featurize` reads only this table.
//! With [`Options::interim`] the sanitised sample streams also go to `DATA/interim/` (the core's
//! sample tap: the cleaned values and their fates), a debugging aid.
//!
//! Window labels: a window is anomalous (`label = 1`) when its midpoint lies inside an *engine*
//! fault interval (`fault_type`, `severity` from that interval); `sensor_event` names a
//! *sensor* (data-quality) interval overlapping the window, which does not make it anomalous.
//! `phase` is the phase held by most of the window's samples.

use crate::config::PipelineConfig;
use crate::error::{ContractViolations, UsageError, Violation};
use crate::formats::contract::FaultCategory;
use crate::formats::labels::LabelInterval;
use crate::formats::recording::{
    self, ChannelData, ChannelMeta, FORMAT, FORMAT_VERSION, Recording, RecordingMeta, Samples,
};
use crate::formats::windows::{self, NONE, Window};
pub use crate::formats::windows::{ProcessedManifest, RecordingSummary};
use crate::stages::extract::{self, Frame, Sanitised};
use crate::stages::progress;
use crate::stages::sync::{self, PHASE_UNKNOWN, Synced};
use crate::stages::validate;
use anyhow::{Context, Result};
use avm_core::{ExtractorConfig, FEATURE_SCHEMA_VERSION};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File name of the window table in `DATA/processed/`.
pub const WINDOWS_FILE: &str = crate::layout::WINDOWS;
/// File name of the processed manifest.
pub const MANIFEST_FILE: &str = crate::layout::MANIFEST;

/// Labels the frames of one recording.
pub fn window_rows(
    s: &Synced,
    frames: &[Frame],
    cfg: &ExtractorConfig,
    labels: &[LabelInterval],
) -> Vec<Window> {
    let fs = s.sample_rate_hz;
    let win = cfg.window_len_samples as usize;
    let mine: Vec<&LabelInterval> = labels.iter().filter(|l| l.flight_id == s.flight_id).collect();
    frames
        .iter()
        .map(|f| {
            let a = f.start_sample as usize;
            let start_s = s.time_s(a);
            let end_s = start_s + win as f64 / fs;
            let mid = 0.5 * (start_s + end_s);
            let mut counts = [0usize; 256];
            for &p in &s.phase[a..(a + win).min(s.phase.len())] {
                counts[p as usize] += 1;
            }
            let best = (0..256).max_by_key(|&k| (counts[k], std::cmp::Reverse(k))).unwrap_or(255) as u8;
            let phase = if best == PHASE_UNKNOWN {
                "unknown".to_string()
            } else {
                s.phase_names[best as usize].clone()
            };
            let engine = mine
                .iter()
                .filter(|l| l.category == FaultCategory::Engine && l.start_s <= mid && mid < l.end_s)
                .max_by(|x, y| x.severity.total_cmp(&y.severity));
            let sensor = mine
                .iter()
                .filter(|l| l.category == FaultCategory::Sensor && l.overlap_s(start_s, end_s) > 0.0)
                .max_by(|x, y| x.overlap_s(start_s, end_s).total_cmp(&y.overlap_s(start_s, end_s)));
            Window {
                flight_id: s.flight_id.clone(),
                aircraft_id: s.aircraft_id.clone(),
                engine_id: s.engine_id.clone(),
                window_index: f.window_index,
                start_s,
                end_s,
                phase,
                label: u8::from(engine.is_some()),
                fault_type: engine.map_or(NONE.to_string(), |l| l.fault_type.clone()),
                severity: engine.map_or(0.0, |l| l.severity),
                sensor_event: sensor.map_or(NONE.to_string(), |l| l.fault_type.clone()),
                valid: f.valid,
                roc_valid: f.roc_valid,
                quality: f
                    .quality
                    .iter()
                    .map(|q| [q.gap_filled, q.clipped, q.unrepaired, q.speed_held])
                    .collect(),
                features: f.features.clone(),
            }
        })
        .collect()
}

/// The interim (cleaned, synchronised) recording: on the vibration timeline, per vibration
/// channel the sanitised samples (`<ch>.clean`, exactly what avm-core computed the features
/// from) and their fate codes (`<ch>.fate`: 0 good, 1 gap-filled, 2 clipped, 3 unrepaired); the
/// held speeds; the phase. The raw samples stay in the raw recording (not copied).
/// The last few samples the sanitiser still held at end of stream have no clean value (null).
pub fn interim_recording(s: &Synced, clean: &Sanitised, source: &str) -> Recording {
    let fs = s.sample_rate_hz;
    let times: Vec<f64> = (0..s.len()).map(|i| s.time_s(i)).collect();
    let mut channels = Vec::new();
    let mut data = Vec::new();
    let mut push = |name: String, unit: &str, samples: Samples| {
        let n = samples.len();
        channels.push(ChannelMeta { name, unit: unit.into(), sample_rate_hz: fs, start_s: s.t0_s });
        data.push(ChannelData { times_s: times[..n].to_vec(), samples, rows: Vec::new() });
    };
    for (c, name) in s.vib_names.iter().enumerate() {
        push(format!("{name}.clean"), "g", Samples::Numeric(clean.clean[c].clone()));
        push(
            format!("{name}.fate"),
            "code",
            Samples::Numeric(clean.fate[c].iter().map(|&f| f32::from(f)).collect()),
        );
    }
    for (k, name) in s.speed_names.iter().enumerate() {
        push(name.clone(), "rpm", Samples::Numeric(s.speed[k].clone()));
    }
    if s.phase.iter().any(|&p| p != PHASE_UNKNOWN) {
        let names: Vec<String> =
            s.phase
                .iter()
                .map(|&p| {
                    if p == PHASE_UNKNOWN { "unknown".to_string() } else { s.phase_names[p as usize].clone() }
                })
                .collect();
        push("phase".into(), "-", Samples::Text(names));
    }
    Recording {
        meta: RecordingMeta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            aircraft_id: s.aircraft_id.clone(),
            engine_id: s.engine_id.clone(),
            flight_id: s.flight_id.clone(),
            source: format!("avm preprocess of {source}"),
            channels,
            content_crc32: None,
        },
        data,
        path: PathBuf::new(),
    }
}

/// One recording's contribution, once its samples are gone.
struct Processed {
    span: Option<(String, (f64, f64))>,
    summary: RecordingSummary,
    rows: Vec<Window>,
}

/// Options of one `avm preprocess`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Also write the sanitised sample streams to `DATA/interim/` (a debugging aid). Without
    /// it an existing `DATA/interim/` is removed: it would describe another run.
    pub interim: bool,
}

/// Runs the stage with default [`Options`]. Returns the manifest written.
pub fn run(cfg: &PipelineConfig) -> Result<ProcessedManifest> {
    run_with(cfg, Options::default())
}

/// Runs the stage: each raw recording is read once (validate → synchronise → avm-core), and
/// its windows — ids, labels, quality counts and the raw features — go into the window table.
pub fn run_with(cfg: &PipelineConfig, opts: Options) -> Result<ProcessedManifest> {
    let contract = cfg.load_contract()?;
    let xcfg = cfg.extractor_config(&contract)?;
    let paths = validate::list_recordings(&cfg.paths.raw_recordings())?;
    let labels_path = cfg.paths.raw_labels();
    let labels = validate::read_labels(&labels_path)?;
    let channels: Vec<String> = contract.vibration_channels().map(|c| c.name.clone()).collect();
    let feature_names = windows::feature_names(&channels)?;

    // Each recording is read, validated and turned into window rows on its own, then dropped:
    // memory holds the recordings being worked on (one per thread) and the window rows, never
    // the whole data set. Violations of all files are gathered; if there is any, nothing is
    // written.
    let pb = progress(paths.len(), "preprocess");
    let one = |path: &PathBuf, interim_dir: Option<&Path>| -> Result<Processed> {
        let rec = recording::read(path)?;
        let v = validate::recording(&contract, &rec);
        if !v.is_empty() {
            return Err(ContractViolations(v).into());
        }
        let s = sync::synchronise(&rec, &contract)?;
        let (frames, clean) = extract::extract(&s, xcfg, interim_dir.is_some())?;
        let rows = window_rows(&s, &frames, &xcfg, &labels);
        if let Some(dir) = interim_dir {
            let interim = interim_recording(&s, &clean.unwrap_or_default(), &rec.path.display().to_string());
            let dest = crate::ids::file_in(dir, "flight_id", &s.flight_id, ".parquet")
                .map_err(|e| UsageError(format!("{}: {e}", rec.path.display())))?;
            recording::write_parquet(&interim, &dest)?;
        }
        pb.inc(1);
        Ok(Processed {
            span: validate::vibration_span(&contract, &rec),
            summary: RecordingSummary {
                flight_id: s.flight_id.clone(),
                raw_file: rec.path.display().to_string(),
                raw_sha256: crate::io::sha256_file(&rec.path)?,
                samples: s.len(),
                windows: rows.len(),
                valid_windows: rows.iter().filter(|r| r.valid).count(),
                anomalous_windows: rows.iter().filter(|r| r.label == 1).count(),
            },
            rows,
        })
    };
    let collect = |results: Vec<Result<Processed>>| -> Result<(Vec<RecordingSummary>, Vec<Window>)> {
        let mut violations = Vec::new();
        let mut done = Vec::new();
        for r in results {
            match r {
                Ok(p) => done.push(p),
                Err(e) => match e.downcast::<ContractViolations>() {
                    Ok(ContractViolations(v)) => violations.extend(v),
                    Err(other) => return Err(other),
                },
            }
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for p in &done {
            if let Some(other) = seen.insert(&p.summary.flight_id, &p.summary.raw_file) {
                violations.push(Violation::new(
                    Path::new(&p.summary.raw_file),
                    "metadata",
                    "recording.flight_id",
                    format!("flight_id {:?} is also used by {other}", p.summary.flight_id),
                ));
            }
        }
        if violations.is_empty() {
            let spans = done.iter().filter_map(|p| p.span.clone()).collect();
            violations.extend(validate::labels(&labels_path, &contract, &labels, &spans));
        }
        if !violations.is_empty() {
            return Err(ContractViolations(violations).into());
        }
        let mut summaries = Vec::with_capacity(done.len());
        let mut rows = Vec::new();
        for p in done {
            summaries.push(p.summary);
            rows.extend(p.rows);
        }
        Ok((summaries, rows))
    };
    let interim_dir = cfg.paths.interim();
    let (summaries, rows) = if opts.interim {
        crate::io::replace_dir_atomic(&interim_dir, |staging| {
            collect(paths.par_iter().map(|p| one(p, Some(staging))).collect())
        })?
    } else {
        collect(paths.par_iter().map(|p| one(p, None)).collect())?
    };
    pb.finish_and_clear();

    let manifest = ProcessedManifest {
        contract: format!("{} v{}", contract.name, contract.version),
        feature_schema_version: FEATURE_SCHEMA_VERSION,
        channels: channels.clone(),
        window_len_samples: xcfg.window_len_samples,
        hop_len_samples: xcfg.hop_len_samples,
        sample_rate_hz: xcfg.sample_rate_hz,
        extractor: xcfg,
        feature_names: feature_names.clone(),
        labels_sha256: crate::io::sha256_file(&labels_path)?,
        recordings: summaries,
    };
    let json = serde_json::to_string_pretty(&manifest)?;
    crate::io::replace_dir_atomic(&cfg.paths.processed(), |staging| {
        windows::write_table(
            &staging.join(WINDOWS_FILE),
            &rows.iter().collect::<Vec<_>>(),
            &channels,
            &feature_names,
            &[("avm.manifest", json.clone())],
        )?;
        crate::io::write_bytes_atomic(&staging.join(MANIFEST_FILE), json.as_bytes())
    })?;
    if !opts.interim && interim_dir.exists() {
        std::fs::remove_dir_all(&interim_dir)
            .with_context(|| format!("removing the stale {}", interim_dir.display()))?;
    }
    Ok(manifest)
}
