//! `avm validate`: every rule of the data contract, checked on raw recordings and labels.
//! These functions are also preprocess's first step (it validates each recording as it reads
//! it), so a file `avm validate` accepts is one preprocess accepts.
//!
//! The rules are listed in [`crate::formats::contract`]; each broken one is a [`Violation`]
//! naming the file, channel or row, and the rule.

use crate::config::{Paths, PipelineConfig};
use crate::error::{ContractViolations, UsageError, Violation};
use crate::formats::contract::{ChannelKind, Contract};
use crate::formats::labels::{self, LabelInterval};
use crate::formats::recording::{ChannelData, Recording, RecordingMeta, RecordingStream, Samples};
use crate::stages::progress;
use anyhow::Result;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What `avm validate` checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Recordings that satisfy the contract.
    pub recordings: usize,
    /// Label intervals checked (`None`: single files were named, labels not checked).
    pub label_intervals: Option<usize>,
    /// Contract name and version.
    pub contract: String,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} recording(s)", self.recordings)?;
        if let Some(n) = self.label_intervals {
            write!(f, " and {n} label interval(s)")?;
        }
        write!(f, " satisfy contract {}", self.contract)
    }
}

/// Checks `files` (or, when empty, every raw recording and the label file) against the
/// contract. Any violation is a [`ContractViolations`] error listing all of them.
pub fn run(cfg: &PipelineConfig, files: &[PathBuf]) -> Result<Report> {
    validate(&cfg.paths, &cfg.load_contract()?, files)
}

/// The stage proper, given only what it uses: the data tree and the contract.
pub fn validate(data: &Paths, contract: &Contract, files: &[PathBuf]) -> Result<Report> {
    let check_labels = files.is_empty();
    let files = if files.is_empty() { list_recordings(&data.raw_recordings())? } else { files.to_vec() };
    let recs = load_validated(&files, contract)?;
    let label_intervals =
        if check_labels { Some(load_labels(&data.raw_labels(), contract, &recs)?.len()) } else { None };
    Ok(Report {
        recordings: recs.len(),
        label_intervals,
        contract: format!("{} v{}", contract.name, contract.version),
    })
}

/// The raw recordings in `dir` (`*.parquet`, `*.csv`), sorted by name.
pub fn list_recordings(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        UsageError(format!(
            "no raw recordings: cannot read {} ({e}); run `avm simulate` or `avm import` first",
            dir.display()
        ))
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("parquet" | "csv")))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(UsageError(format!("no recordings (*.parquet, *.csv) in {}", dir.display())).into());
    }
    Ok(out)
}

/// A recording that satisfies the contract: what the label checks need of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// The file.
    pub path: PathBuf,
    /// Its flight id.
    pub flight_id: String,
    /// `(flight_id, [first vibration sample, last + one period))`: the span its labels must lie in.
    pub span: Option<(String, (f64, f64))>,
}

/// Streams one recording through the contract's checks (memory: one chunk, whatever its
/// length). A file that cannot be read, fails its checksum or breaks a rule is an error
/// listing every violation.
pub fn check_file(path: &Path, contract: &Contract) -> Result<Checked, ContractViolations> {
    let mut stream = RecordingStream::open(path)?;
    let mut check = RecordingCheck::new(contract, path, stream.meta(), stream.text_channels());
    while let Some(chunk) = stream.next_chunk()? {
        check.push(&chunk);
    }
    let meta = stream.finish()?;
    let span = check.vibration_span();
    let v = check.finish();
    if !v.is_empty() {
        return Err(ContractViolations(v));
    }
    Ok(Checked { path: path.to_path_buf(), flight_id: meta.flight_id, span })
}

/// Checks every recording ([`check_file`], in parallel); all violations of all files are
/// reported together, and two files may not share a flight id.
pub fn load_validated(paths: &[PathBuf], contract: &Contract) -> Result<Vec<Checked>, ContractViolations> {
    let pb = progress(paths.len(), "validate");
    let results: Vec<Result<Checked, ContractViolations>> = paths
        .par_iter()
        .map(|p| {
            let r = check_file(p, contract);
            pb.inc(1);
            r
        })
        .collect();
    pb.finish_and_clear();
    let mut recs = Vec::new();
    let mut violations = Vec::new();
    for r in results {
        match r {
            Ok(rec) => recs.push(rec),
            Err(ContractViolations(v)) => violations.extend(v),
        }
    }
    violations.extend(duplicate_flights(recs.iter().map(|r| (r.flight_id.as_str(), r.path.as_path()))));
    if violations.is_empty() { Ok(recs) } else { Err(ContractViolations(violations)) }
}

/// `recording.flight_id` violations: a flight id used by more than one file.
pub fn duplicate_flights<'p>(files: impl Iterator<Item = (&'p str, &'p Path)>) -> Vec<Violation> {
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    let mut out = Vec::new();
    for (flight, path) in files {
        if let Some(other) = seen.insert(flight, path) {
            out.push(Violation::new(
                path,
                "metadata",
                "recording.flight_id",
                format!("flight_id {flight:?} is also used by {}", other.display()),
            ));
        }
    }
    out
}

/// Reads the labels and validates them against the recordings. A missing label file is a
/// violation (`label.present`): training without labels is not a mode avm has yet, and a
/// misnamed file must not silently mean "no faults".
pub fn load_labels(
    path: &Path,
    contract: &Contract,
    recs: &[Checked],
) -> Result<Vec<LabelInterval>, ContractViolations> {
    let intervals = read_labels(path)?;
    let spans: HashMap<String, (f64, f64)> = recs.iter().filter_map(|r| r.span.clone()).collect();
    let v = labels(path, contract, &intervals, &spans);
    if v.is_empty() { Ok(intervals) } else { Err(ContractViolations(v)) }
}

/// Reads the label file; a missing one is a violation naming look-alike files.
pub fn read_labels(path: &Path) -> Result<Vec<LabelInterval>, ContractViolations> {
    if !path.is_file() {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut near: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.to_ascii_lowercase().contains("label"))
                    .collect()
            })
            .unwrap_or_default();
        near.sort();
        let hint = if near.is_empty() { String::new() } else { format!(" (found {near:?}: misnamed?)") };
        return Err(Violation::new(
            path,
            "",
            "label.present",
            format!(
                "no label file{hint}: every data set needs one (header {:?}; a header alone says every \
                 recording is healthy)",
                labels::HEADER
            ),
        )
        .into());
    }
    labels::read(path)
}

/// Every violation of the label rules by `labels` against the recordings' spans.
pub fn labels(
    path: &Path,
    contract: &Contract,
    labels: &[LabelInterval],
    spans: &HashMap<String, (f64, f64)>,
) -> Vec<Violation> {
    let mut v = interval_rules(contract, path, labels, spans);
    for l in labels {
        if let Some(c) = contract.labels.fault_types.get(&l.fault_type)
            && *c != l.category
        {
            v.push(Violation::new(
                path,
                format!("row {} (flight {})", l.row, l.flight_id),
                "label.category",
                format!("{} is a {c:?} fault in the contract, the file says {:?}", l.fault_type, l.category),
            ));
        }
    }
    v
}

/// Every violation of `contract` by `rec` (empty: valid): a [`RecordingCheck`] fed the whole
/// recording as one chunk.
pub fn recording(contract: &Contract, rec: &Recording) -> Vec<Violation> {
    let text = rec.text_channels();
    let mut check = RecordingCheck::new(contract, &rec.path, &rec.meta, &text);
    check.push(&rec.data);
    check.finish()
}

/// The contract's rules checked over a recording that arrives in chunks (see
/// [`crate::formats::recording::RecordingStream`]): per channel a little state (sample count,
/// previous time, the current run of NaN, the first breach of each rule), so memory does not
/// grow with the flight. [`RecordingCheck::finish`] reports in the order of the contract's
/// channels and, per channel, of the rules; a channel whose times are broken (not increasing,
/// off the grid) reports only that.
pub struct RecordingCheck<'a> {
    contract: &'a Contract,
    file: PathBuf,
    meta: RecordingMeta,
    /// Per contract channel: its state, or `None` when the file lacks it.
    channels: Vec<Option<ChannelCheck>>,
}

/// One channel's checks in progress. Each rule reports its first breach (the range rule
/// also counts them all).
struct ChannelCheck {
    /// Index in the recording's channels.
    index: usize,
    /// Violations found before any sample (unit, and rate or kind, which stop the channel).
    header: Vec<(String, &'static str, String)>,
    /// Whether the sample rules run (not after a rate or kind violation).
    active: bool,
    n: usize,
    prev_t: f64,
    first_t: f64,
    last_t: f64,
    monotonic: Option<(String, String)>,
    grid_start: Option<String>,
    grid: Option<(String, String)>,
    range_first: Option<(String, f32)>,
    range_count: usize,
    /// Current run of NaN: where it started and its length.
    run: Option<(String, usize)>,
    gap: Option<(String, usize)>,
    phase: Option<(String, String)>,
}

/// A valid value ends a dropout run: a run longer than `max_gap` samples is the channel's first
/// `channel.gap` finding, if it has none yet.
fn close_run(c: &mut ChannelCheck, max_gap: usize) {
    if let Some((where_, len)) = c.run.take()
        && len > max_gap
        && c.gap.is_none()
    {
        c.gap = Some((where_, len));
    }
}

impl<'a> RecordingCheck<'a> {
    /// Starts checking a recording with `meta`; `text[i]` says whether channel `i` holds text.
    pub fn new(
        contract: &'a Contract,
        file: &Path,
        meta: &RecordingMeta,
        text: &[bool],
    ) -> RecordingCheck<'a> {
        let channels = contract
            .channels
            .iter()
            .map(|rule| {
                let i = meta.channels.iter().position(|c| c.name == rule.name)?;
                let m = &meta.channels[i];
                let mut c = ChannelCheck {
                    index: i,
                    header: Vec::new(),
                    active: true,
                    n: 0,
                    prev_t: f64::NAN,
                    first_t: f64::NAN,
                    last_t: f64::NAN,
                    monotonic: None,
                    grid_start: None,
                    grid: None,
                    range_first: None,
                    range_count: 0,
                    run: None,
                    gap: None,
                    phase: None,
                };
                if m.unit != rule.unit {
                    c.header.push((
                        String::new(),
                        "channel.unit",
                        format!("unit is {:?}, the contract requires {:?}", m.unit, rule.unit),
                    ));
                }
                if (m.sample_rate_hz - rule.sample_rate_hz).abs() > 1e-9 * rule.sample_rate_hz {
                    c.header.push((
                        String::new(),
                        "channel.sample_rate",
                        format!(
                            "declared {} Hz, the contract requires {} Hz",
                            m.sample_rate_hz, rule.sample_rate_hz
                        ),
                    ));
                    c.active = false; // the grid check would only repeat this
                } else if text[i] != (rule.kind == ChannelKind::Phase) {
                    c.header.push((
                        String::new(),
                        "channel.kind",
                        format!(
                            "a {:?} channel must be {}",
                            rule.kind,
                            if text[i] { "numeric" } else { "text" }
                        ),
                    ));
                    c.active = false;
                }
                Some(c)
            })
            .collect();
        RecordingCheck { contract, file: file.to_path_buf(), meta: meta.clone(), channels }
    }

    /// Checks the next chunk (one [`ChannelData`] per recording channel, in file order).
    pub fn push(&mut self, chunk: &[ChannelData]) {
        let tol = self.contract.grid_tolerance_s;
        for (rule, state) in self.contract.channels.iter().zip(&mut self.channels) {
            let Some(c) = state else { continue };
            if !c.active {
                continue;
            }
            let data = &chunk[c.index];
            let start_s = self.meta.channels[c.index].start_s;
            let period = 1.0 / rule.sample_rate_hz;
            let at = |k: usize| format!("row {} (t = {:.6} s)", data.rows[k], data.times_s[k]);
            let max_gap = (self.contract.max_gap_s * rule.sample_rate_hz).floor() as usize;
            let (lo, hi) = rule.valid_range.map_or((f64::NEG_INFINITY, f64::INFINITY), |[a, b]| (a, b));
            for (k, &t) in data.times_s.iter().enumerate() {
                let i = c.n + k;
                if i == 0 {
                    c.first_t = t;
                    if (t - start_s).abs() > tol {
                        c.grid_start = Some(at(k));
                    }
                } else if c.monotonic.is_none() && (t <= c.prev_t || t.is_nan()) {
                    let what = if t == c.prev_t { "duplicated" } else { "goes backwards" };
                    c.monotonic =
                        Some((at(k), format!("time {what} (previous sample at t = {:.6} s)", c.prev_t)));
                }
                if c.grid.is_none() && (t - (start_s + i as f64 * period)).abs() > tol {
                    let step = if i > 0 { t - c.prev_t } else { 0.0 };
                    c.grid = Some((
                        at(k),
                        format!(
                            "sample {i} is off the {} Hz grid (step {:.6} s = {:.3} periods); the data does not \
                             match the declared rate, or samples are missing (record a dropout as NaN, not as a \
                             missing row)",
                            rule.sample_rate_hz,
                            step,
                            step / period
                        ),
                    ));
                }
                c.prev_t = t;
                c.last_t = t;
            }
            // The values, after the times (each check keeps its own first finding, so the two
            // passes report what one pass would).
            match &data.samples {
                Samples::Numeric(x) => {
                    let in_range = |v: f32| v.is_finite() && f64::from(v) >= lo && f64::from(v) <= hi;
                    // Most chunks hold only valid values: one pass without branches, then only
                    // the dropout run that a valid value closes.
                    if x.iter().fold(true, |all, &v| all & in_range(v)) {
                        if !x.is_empty() {
                            close_run(c, max_gap);
                        }
                    } else {
                        for (k, &v) in x.iter().enumerate() {
                            // NaN is a dropout (bounded by channel.gap below); ±inf never is.
                            if !(v.is_nan() || in_range(v)) {
                                c.range_count += 1;
                                if c.range_first.is_none() {
                                    c.range_first = Some((at(k), v));
                                }
                            }
                            if v.is_nan() {
                                match &mut c.run {
                                    Some((_, len)) => *len += 1,
                                    None => c.run = Some((at(k), 1)),
                                }
                            } else {
                                close_run(c, max_gap);
                            }
                        }
                    }
                }
                Samples::Text(p) => {
                    for (k, v) in p.iter().enumerate() {
                        if c.phase.is_none() && !self.contract.phases.iter().any(|a| a == v) {
                            c.phase = Some((at(k), v.clone()));
                        }
                    }
                }
            }
            c.n += data.times_s.len();
        }
    }

    /// The first and last vibration sample times of the first vibration channel, when it has
    /// samples: `(flight_id, [first, last + one period))`, the span labels must lie in.
    pub fn vibration_span(&self) -> Option<(String, (f64, f64))> {
        let (rule, c) = self
            .contract
            .channels
            .iter()
            .zip(&self.channels)
            .find(|(r, _)| r.kind == ChannelKind::Vibration)?;
        let c = c.as_ref().filter(|c| c.n > 0)?;
        // The last sample covers one period: intervals are half-open, [start, end).
        Some((self.meta.flight_id.clone(), (c.first_t, c.last_t + 1.0 / rule.sample_rate_hz)))
    }

    /// Every violation found (empty: valid).
    pub fn finish(mut self) -> Vec<Violation> {
        let contract = self.contract;
        let file = self.file.as_path();
        let mut out = Vec::new();
        let mut v = |channel: &str, loc: String, rule: &'static str, detail: String| {
            let location = if loc.is_empty() {
                format!("channel {channel}")
            } else {
                format!("channel {channel}, {loc}")
            };
            out.push(Violation::new(file, location, rule, detail));
        };
        let mut vib_start: Option<(f64, &str)> = None;
        let mut vib_span: Option<(f64, f64, f64)> = None;
        for (rule, state) in contract.channels.iter().zip(&mut self.channels) {
            let Some(c) = state else {
                if rule.required {
                    let have: Vec<_> = self.meta.channels.iter().map(|c| c.name.as_str()).collect();
                    v(
                        &rule.name,
                        String::new(),
                        "channel.present",
                        format!("required channel is missing (the file has {have:?})"),
                    );
                }
                continue;
            };
            for (loc, r, d) in c.header.drain(..) {
                v(&rule.name, loc, r, d);
            }
            if !c.active {
                continue;
            }
            if c.n == 0 {
                v(&rule.name, String::new(), "channel.present", "the column has no samples".into());
                continue;
            }
            if let Some((loc, d)) = c.monotonic.take() {
                v(&rule.name, loc, "time.monotonic", d);
                continue;
            }
            let meta = &self.meta.channels[c.index];
            if let Some(loc) = c.grid_start.take() {
                v(
                    &rule.name,
                    loc,
                    "channel.grid",
                    format!("first sample is not at the declared start_s = {} s", meta.start_s),
                );
            }
            if let Some((loc, d)) = c.grid.take() {
                v(&rule.name, loc, "channel.grid", d);
                continue;
            }
            if rule.kind == ChannelKind::Vibration {
                match vib_start {
                    None => {
                        vib_start = Some((meta.start_s, rule.name.as_str()));
                        vib_span = Some((c.first_t, c.last_t, meta.sample_rate_hz));
                    }
                    Some((s, first)) if (s - meta.start_s).abs() > contract.grid_tolerance_s => v(
                        &rule.name,
                        String::new(),
                        "time.base",
                        format!(
                            "starts at {} s, vibration channel {first} at {s} s: vibration channels share one timeline",
                            meta.start_s
                        ),
                    ),
                    _ => {}
                }
            }
            if let Some((loc, x)) = c.range_first.take() {
                let (lo, hi) = rule.valid_range.map_or((f64::NEG_INFINITY, f64::INFINITY), |[a, b]| (a, b));
                let what = if x.is_finite() {
                    format!("outside the valid range [{lo}, {hi}] {}", rule.unit)
                } else {
                    "is not finite (only NaN marks a missing sample)".to_string()
                };
                v(
                    &rule.name,
                    loc,
                    "channel.range",
                    format!("value {x} {what} ({} sample(s) in all; wrong unit?)", c.range_count),
                );
            }
            // A run of NaN at the end of the data ends there.
            let max_gap = (contract.max_gap_s * rule.sample_rate_hz).floor() as usize;
            if c.gap.is_none()
                && let Some((where_, len)) = c.run.take()
                && len > max_gap
            {
                c.gap = Some((where_, len));
            }
            if let Some((loc, len)) = c.gap.take() {
                v(
                    &rule.name,
                    loc,
                    "channel.gap",
                    format!(
                        "{len} consecutive missing (NaN) samples ({:.3} s), the contract allows at most {max_gap} ({} s)",
                        len as f64 * (1.0 / rule.sample_rate_hz),
                        contract.max_gap_s
                    ),
                );
            }
            if let Some((loc, p)) = c.phase.take() {
                v(
                    &rule.name,
                    loc,
                    "phase.allowed",
                    format!("phase {p:?} is not one of {:?}", contract.phases),
                );
            }
        }
        // Offsets of the other channels from the vibration timeline, and duration.
        if let Some((vs, vname)) = vib_start {
            for rule in contract.channels.iter().filter(|c| c.kind != ChannelKind::Vibration) {
                if let Some(m) = self.meta.channels.iter().find(|c| c.name == rule.name)
                    && (m.start_s - vs).abs() > contract.max_start_offset_s
                {
                    v(
                        &rule.name,
                        String::new(),
                        "time.base",
                        format!(
                            "starts at {} s, {:.3} s away from {vname} (at {vs} s); the contract allows {} s",
                            m.start_s,
                            (m.start_s - vs).abs(),
                            contract.max_start_offset_s
                        ),
                    );
                }
            }
            if let Some((first, last, rate)) = vib_span {
                // n samples cover n periods (the last one lasts until the next would come).
                let span = last - first + 1.0 / rate;
                if span < contract.min_duration_s {
                    out.push(Violation::new(
                        file,
                        "",
                        "recording.duration",
                        format!(
                            "{span:.3} s of vibration, the contract requires at least {} s",
                            contract.min_duration_s
                        ),
                    ));
                }
            }
        }
        out
    }
}

/// Checks label intervals: known fault type, severity in range, `start < end`, a known
/// flight, and the interval inside that flight's vibration span.
fn interval_rules(
    contract: &Contract,
    file: &Path,
    labels: &[LabelInterval],
    spans: &HashMap<String, (f64, f64)>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let tol = contract.grid_tolerance_s.max(1e-9);
    // Duplicated rows and overlapping intervals of one flight and category that name
    // different fault types: a window in both would have no single label.
    for (i, a) in labels.iter().enumerate() {
        for b in &labels[..i] {
            if a.flight_id != b.flight_id {
                continue;
            }
            let loc = format!("row {} (flight {})", a.row, a.flight_id);
            if a.start_s == b.start_s && a.end_s == b.end_s && a.fault_type == b.fault_type {
                out.push(Violation::new(file, loc, "label.duplicate", format!("repeats row {}", b.row)));
            } else if a.category == b.category
                && a.fault_type != b.fault_type
                && a.overlap_s(b.start_s, b.end_s) > 0.0
            {
                out.push(Violation::new(
                    file,
                    loc,
                    "label.overlap",
                    format!(
                        "{} [{}, {}] s overlaps row {} ({} [{}, {}] s): one interval can carry one fault type",
                        a.fault_type, a.start_s, a.end_s, b.row, b.fault_type, b.start_s, b.end_s
                    ),
                ));
            }
        }
    }
    for l in labels {
        let loc = format!("row {} (flight {})", l.row, l.flight_id);
        let mut v = |rule: &'static str, d: String| out.push(Violation::new(file, loc.clone(), rule, d));
        if !contract.labels.fault_types.contains_key(&l.fault_type) {
            let known: Vec<_> = contract.labels.fault_types.keys().collect();
            v("label.fault_type", format!("fault type {:?} is not one of {known:?}", l.fault_type));
        }
        let [lo, hi] = contract.labels.severity_range;
        if !(l.severity >= lo && l.severity <= hi) {
            v("label.severity", format!("severity {} outside [{lo}, {hi}]", l.severity));
        }
        if l.start_s.partial_cmp(&l.end_s) != Some(std::cmp::Ordering::Less) {
            v("label.interval", format!("start_s {} is not before end_s {}", l.start_s, l.end_s));
        }
        match spans.get(&l.flight_id) {
            None => v("label.flight", "no recording has this flight_id".into()),
            Some(&(a, b)) => {
                if l.start_s < a - tol || l.end_s > b + tol {
                    v(
                        "label.interval",
                        format!(
                            "interval [{}, {}] s lies outside the flight, which spans [{a}, {b}] s",
                            l.start_s, l.end_s
                        ),
                    );
                }
            }
        }
    }
    out
}
