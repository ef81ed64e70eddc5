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

use crate::config::{Paths, PipelineConfig};
use crate::error::{ContractViolations, UsageError};
use crate::formats::contract::{Contract, FaultCategory};
use crate::formats::labels::LabelInterval;
use crate::formats::recording::{
    self, ChannelData, ChannelMeta, FORMAT, FORMAT_VERSION, Recording, RecordingMeta, RecordingStream,
    Samples,
};
use crate::formats::windows::{self, NONE, Window};
pub use crate::formats::windows::{ProcessedManifest, RecordingSummary};
use crate::stages::extract::{self, Frame, Sanitised};
use crate::stages::progress;
use crate::stages::simulate;
use crate::stages::sync::{self, PHASE_UNKNOWN, Synced};
use crate::stages::validate;
use anyhow::{Context, Result};
use avm_core::{ExtractorConfig, FEATURE_SCHEMA_VERSION};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// File name of the window table in `DATA/processed/`.
pub const WINDOWS_FILE: &str = crate::layout::WINDOWS;
/// File name of the processed manifest.
pub const MANIFEST_FILE: &str = crate::layout::MANIFEST;

/// Phase-code counts per hop of the timeline: windows start on a hop and span whole hops, so a
/// window's majority phase is the sum of its hops' counts, without a phase per sample.
#[derive(Clone, Debug)]
pub struct PhaseCounts {
    hop: usize,
    /// Finished hops: the non-zero (code, count) pairs.
    hops: Vec<Vec<(u8, u32)>>,
    current: Box<[u32; 256]>,
    in_current: usize,
}

impl PhaseCounts {
    /// Counts for hops of `hop` samples.
    pub fn new(hop: usize) -> PhaseCounts {
        PhaseCounts { hop: hop.max(1), hops: Vec::new(), current: Box::new([0; 256]), in_current: 0 }
    }

    /// The next phase codes of the timeline.
    pub fn push(&mut self, codes: &[u8]) {
        for &p in codes {
            self.current[p as usize] += 1;
            self.in_current += 1;
            if self.in_current == self.hop {
                self.close();
            }
        }
    }

    fn close(&mut self) {
        let pairs = (0..=255u8)
            .filter(|&k| self.current[k as usize] > 0)
            .map(|k| (k, self.current[k as usize]))
            .collect();
        self.hops.push(pairs);
        *self.current = [0; 256];
        self.in_current = 0;
    }

    /// Ends the timeline (a last partial hop counts too).
    pub fn finish(&mut self) {
        if self.in_current > 0 {
            self.close();
        }
    }

    /// The phase held by most samples of `[start, start + len)` (ties: the lower code), as
    /// counted from whole hops; `start` and `len` are multiples of the hop.
    pub fn majority(&self, start: usize, len: usize) -> u8 {
        debug_assert!(
            start.is_multiple_of(self.hop) && len.is_multiple_of(self.hop),
            "windows are whole hops"
        );
        let mut counts = [0u64; 256];
        let first = start / self.hop;
        let last = ((start + len) / self.hop).min(self.hops.len());
        for hop in self.hops.get(first..last).unwrap_or(&[]) {
            for &(k, n) in hop {
                counts[k as usize] += u64::from(n);
            }
        }
        (0..256).max_by_key(|&k| (counts[k], std::cmp::Reverse(k))).unwrap_or(255) as u8
    }
}

/// The window rows of one recording, read in chunks of `chunk_rows` rows (what preprocess does
/// per file; exposed so the tests can show the chunk size changes no bit).
pub fn recording_windows(
    path: &Path,
    contract: &Contract,
    xcfg: ExtractorConfig,
    labels: &[LabelInterval],
    chunk_rows: usize,
) -> Result<(RecordingSummary, Vec<Window>)> {
    let p = process(path, contract, xcfg, labels, None, chunk_rows)?;
    Ok((p.summary, p.rows))
}

/// One recording read once, in chunks: validate, synchronise and run avm-core as the rows go
/// by, so memory holds one chunk and the window rows whatever the flight's length (the
/// sanitised streams for `interim_dir` are the exception: a debugging aid, kept whole).
/// Errors, in the order a user needs them: the file cannot be read or its checksum fails;
/// then contract violations; then what the features need (a missing speed channel, too many
/// channels).
fn process(
    path: &Path,
    contract: &Contract,
    xcfg: ExtractorConfig,
    labels: &[LabelInterval],
    interim_dir: Option<&Path>,
    chunk_rows: usize,
) -> Result<Processed> {
    let stream = RecordingStream::open_chunked(path, chunk_rows)?;
    process_stream(stream, contract, xcfg, labels, interim_dir, &|| crate::io::sha256_file(path))
}

/// [`process`] of an opened stream (a file's, or a recording in memory); `raw_sha256` gives the
/// source's digest for the manifest once the stream has been read.
fn process_stream(
    mut stream: RecordingStream,
    contract: &Contract,
    xcfg: ExtractorConfig,
    labels: &[LabelInterval],
    interim_dir: Option<&Path>,
    raw_sha256: &dyn Fn() -> Result<String>,
) -> Result<Processed> {
    let path = &stream.path().to_path_buf();
    let text = stream.text_channels().to_vec();
    let mut check = validate::RecordingCheck::new(contract, path, stream.meta(), &text);
    let mut sync = sync::Synchroniser::new(contract, stream.meta(), &text, path);
    let mut fx = extract::Extractor::new(sync.header().vib_names.len(), xcfg, interim_dir.is_some());
    let mut phases = PhaseCounts::new(xcfg.hop_len_samples as usize);
    let mut whole: Option<Synced> = interim_dir.map(|_| Synced {
        vib: vec![Vec::new(); sync.header().vib_names.len()],
        speed: vec![Vec::new(); sync.header().speed_names.len()],
        ..sync.header().clone()
    });
    let speed_ref = sync.header().speed_ref.clone();
    let mut samples = 0usize;
    let mut feed =
        |b: sync::SyncedBlock, fx: &mut Result<extract::Extractor, UsageError>| -> Result<(), UsageError> {
            samples += b.len();
            phases.push(&b.phase);
            if let Ok(x) = fx {
                let vib: Vec<&[f32]> = b.vib.iter().map(Vec::as_slice).collect();
                let speed: Vec<&[f32]> = b.speed.iter().map(Vec::as_slice).collect();
                x.push(&vib, &speed, &speed_ref)?;
            }
            if let Some(w) = &mut whole {
                w.append(b);
            }
            Ok(())
        };
    while let Some(chunk) = stream.next_chunk()? {
        check.push(&chunk);
        feed(sync.push(&chunk), &mut fx)?;
    }
    let meta = stream.finish()?;
    let span = check.vibration_span();
    let v = check.finish();
    if !v.is_empty() {
        return Err(ContractViolations(v).into());
    }
    let (header, last) = sync.finish()?;
    feed(last, &mut fx)?;
    let (frames, clean) = fx?.finish();
    phases.finish();
    let rows = window_rows(&header, &frames, &xcfg, labels, &phases);
    if let (Some(dir), Some(mut w)) = (interim_dir, whole) {
        w.t0_s = header.t0_s;
        let interim = interim_recording(&w, &clean.unwrap_or_default(), &path.display().to_string());
        let dest = crate::ids::file_in(dir, "flight_id", &header.flight_id, ".parquet")
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
        recording::write_parquet(&interim, &dest)?;
    }
    Ok(Processed {
        span,
        summary: RecordingSummary {
            flight_id: meta.flight_id.clone(),
            raw_file: path.display().to_string(),
            raw_sha256: raw_sha256()?,
            samples,
            windows: rows.len(),
            valid_windows: rows.iter().filter(|r| r.valid).count(),
            anomalous_windows: rows.iter().filter(|r| r.label == 1).count(),
            attributes: meta.attributes.clone(),
        },
        rows,
    })
}

/// Labels the frames of one recording.
pub fn window_rows(
    s: &Synced,
    frames: &[Frame],
    cfg: &ExtractorConfig,
    labels: &[LabelInterval],
    phases: &PhaseCounts,
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
            let best = phases.majority(a, win);
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
            attributes: Default::default(),
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
    if cfg.simulate.as_ref().is_some_and(|s| s.stream)
        && !validate::list_recordings(&cfg.paths.raw_recordings()).is_ok_and(|v| !v.is_empty())
    {
        return Err(UsageError(format!(
            "no recordings in {}: with simulate.stream the fleet is never written as recordings;              `avm simulate` (or `avm run`) simulates and preprocesses it in one pass",
            cfg.paths.raw_recordings().display()
        ))
        .into());
    }
    preprocess(&cfg.paths, &contract, xcfg, opts)
}

/// The stage proper, given only what it uses: the data tree, the contract and the extractor
/// config (already converted at the contract's rate).
pub fn preprocess(
    data: &Paths,
    contract: &Contract,
    xcfg: ExtractorConfig,
    opts: Options,
) -> Result<ProcessedManifest> {
    let paths = validate::list_recordings(&data.raw_recordings())?;
    let labels_path = data.raw_labels();
    let labels = validate::read_labels(&labels_path)?;
    // The feature names are checked before any file is read.
    let channels: Vec<String> = contract.vibration_channels().map(|c| c.name.clone()).collect();
    windows::feature_names(&channels, &xcfg.features)?;

    // Each recording is read, validated and turned into window rows on its own, then dropped:
    // memory holds the recordings being worked on (one per thread) and the window rows, never
    // the whole data set. Violations of all files are gathered; if there is any, nothing is
    // written.
    let pb = progress(paths.len(), "preprocess");
    let one = |path: &PathBuf, interim_dir: Option<&Path>| -> Result<Processed> {
        let p = process(path, contract, xcfg, &labels, interim_dir, recording::CHUNK_ROWS)?;
        pb.inc(1);
        Ok(p)
    };
    let collect = |results: Vec<Result<Processed>>| gather(results, contract, &labels_path, &labels);
    let interim_dir = data.interim();
    let (summaries, rows) = if opts.interim {
        crate::io::replace_dir_atomic(&interim_dir, |staging| {
            collect(paths.par_iter().map(|p| one(p, Some(staging))).collect())
        })?
    } else {
        collect(paths.par_iter().map(|p| one(p, None)).collect())?
    };
    pb.finish_and_clear();

    let manifest = write_processed(data, contract, xcfg, &labels_path, summaries, &rows)?;
    if !opts.interim && interim_dir.exists() {
        std::fs::remove_dir_all(&interim_dir)
            .with_context(|| format!("removing the stale {}", interim_dir.display()))?;
    }
    Ok(manifest)
}

/// Every recording's outcome gathered: contract violations of all files together (and the
/// labels checked against the recordings' spans), else the summaries and window rows in order.
fn gather(
    results: Vec<Result<Processed>>,
    contract: &Contract,
    labels_path: &Path,
    labels: &[LabelInterval],
) -> Result<(Vec<RecordingSummary>, Vec<Window>)> {
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
    violations.extend(validate::duplicate_flights(
        done.iter().map(|p| (p.summary.flight_id.as_str(), Path::new(&p.summary.raw_file))),
    ));
    if violations.is_empty() {
        let spans = done.iter().filter_map(|p| p.span.clone()).collect();
        violations.extend(validate::labels(labels_path, contract, labels, &spans));
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
}

/// Writes the window table and its manifest into `DATA/processed/` (replaced atomically).
fn write_processed(
    data: &Paths,
    contract: &Contract,
    xcfg: ExtractorConfig,
    labels_path: &Path,
    summaries: Vec<RecordingSummary>,
    rows: &[Window],
) -> Result<ProcessedManifest> {
    let channels: Vec<String> = contract.vibration_channels().map(|c| c.name.clone()).collect();
    let feature_names = windows::feature_names(&channels, &xcfg.features)?;
    let manifest = ProcessedManifest {
        contract: format!("{} v{}", contract.name, contract.version),
        feature_schema_version: FEATURE_SCHEMA_VERSION,
        channels: channels.clone(),
        window_len_samples: xcfg.window_len_samples,
        hop_len_samples: xcfg.hop_len_samples,
        sample_rate_hz: xcfg.sample_rate_hz,
        extractor: xcfg,
        feature_names: feature_names.clone(),
        labels_sha256: crate::io::sha256_file(labels_path)?,
        recordings: summaries,
    };
    let json = serde_json::to_string_pretty(&manifest)?;
    crate::io::replace_dir_atomic(&data.processed(), |staging| {
        windows::write_table(
            &staging.join(WINDOWS_FILE),
            &rows.iter().collect::<Vec<_>>(),
            &channels,
            &feature_names,
            &[("avm.manifest", json.clone())],
        )?;
        crate::io::write_bytes_atomic(&staging.join(MANIFEST_FILE), json.as_bytes())
    })?;
    Ok(manifest)
}

/// `simulate.stream`: simulates the fleet and preprocesses it in one pass. Each recording is
/// rendered in memory ([`simulate::simulate_one`]) and streamed through exactly the steps a
/// file goes through ([`RecordingStream::from_recording`]: the chunks its Parquet file would
/// give), then dropped: the raw recordings are never written. `DATA/raw/` gets the labels and
/// `fleet.json`; the manifest names each recording `simulated/<flight id>` with the sha256 of
/// what defines it (the simulation config and the recording's index: the simulator is
/// deterministic). The window table equals the one `avm simulate` + `avm preprocess` write
/// (tested).
pub fn simulate_streamed(
    cfg: &PipelineConfig,
    sim: &simulate::SimConfig,
) -> Result<(simulate::FleetSummary, ProcessedManifest)> {
    let contract = cfg.load_contract()?;
    let xcfg = cfg.extractor_config(&contract)?;
    let indices = simulate::plan(sim)?;
    let sim_json = serde_json::to_string(sim)?;
    let pb = progress(indices.len(), "simulate + preprocess");
    let results: Vec<Result<(Processed, f64, Vec<LabelInterval>)>> = indices
        .into_par_iter()
        .map(|i| {
            let s = simulate::simulate_one(sim, i);
            let (a, b) = s.recording.span_s();
            let name = PathBuf::from(format!("simulated/{}", s.recording.meta.flight_id));
            let sha = crate::io::sha256_hex(format!("{sim_json}\nrecording {i}").as_bytes());
            let stream = RecordingStream::from_recording(s.recording, &name, recording::CHUNK_ROWS);
            let p = process_stream(stream, &contract, xcfg, &s.labels, None, &|| Ok(sha.clone()))?;
            pb.inc(1);
            Ok((p, b - a, s.labels))
        })
        .collect();
    pb.finish_and_clear();
    let mut processed = Vec::with_capacity(results.len());
    let mut per_recording = Vec::with_capacity(results.len());
    for r in results {
        let (p, seconds, labels) = r?;
        processed.push(Ok(p));
        per_recording.push((seconds, labels));
    }
    let (summary, labels) = simulate::summarise(sim, per_recording);
    // Contract violations are gathered before anything is written (the path only names the
    // labels in messages): a refused fleet leaves raw/ and processed/ as they were.
    let labels_path = cfg.paths.raw_labels();
    let (summaries, rows) = gather(processed, &contract, &labels_path, &labels)?;
    crate::io::replace_dir_atomic(&cfg.paths.raw(), |staging| {
        crate::formats::labels::write(&staging.join(crate::layout::LABELS_CSV), &labels)?;
        crate::io::write_bytes_atomic(
            &staging.join(crate::layout::FLEET_JSON),
            serde_json::to_string_pretty(&summary)?.as_bytes(),
        )
    })?;
    let manifest = write_processed(&cfg.paths, &contract, xcfg, &labels_path, summaries, &rows)?;
    Ok((summary, manifest))
}
