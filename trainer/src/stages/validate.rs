//! `avm validate`: every rule of the data contract, checked on raw recordings and labels.
//! These functions are also preprocess's first step (it validates each recording as it reads
//! it), so a file `avm validate` accepts is one preprocess accepts.
//!
//! The rules are listed in [`crate::formats::contract`]; each broken one is a [`Violation`]
//! naming the file, channel or row, and the rule.

use crate::config::PipelineConfig;
use crate::error::{ContractViolations, UsageError, Violation};
use crate::formats::contract::{ChannelKind, Contract};
use crate::formats::labels::{self, LabelInterval};
use crate::formats::recording::{self, Recording, Samples};
use crate::stages::progress;
use anyhow::Result;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Violations reported per channel and rule before the rest are summarised.
const PER_RULE: usize = 1;

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
    let contract = cfg.load_contract()?;
    let check_labels = files.is_empty();
    let files = if files.is_empty() { list_recordings(&cfg.paths.raw_recordings())? } else { files.to_vec() };
    let recs = load_validated(&files, &contract)?;
    let label_intervals =
        if check_labels { Some(load_labels(&cfg.paths.raw_labels(), &contract, &recs)?.len()) } else { None };
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

/// Reads and validates every recording; all violations of all files are reported together.
pub fn load_validated(paths: &[PathBuf], contract: &Contract) -> Result<Vec<Recording>, ContractViolations> {
    let pb = progress(paths.len(), "validate");
    let results: Vec<Result<Recording, ContractViolations>> = paths
        .par_iter()
        .map(|p| {
            let r = recording::read(p).and_then(|rec| {
                let v = recording(contract, &rec);
                if v.is_empty() { Ok(rec) } else { Err(ContractViolations(v)) }
            });
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
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for r in &recs {
        if let Some(other) = seen.insert(&r.meta.flight_id, &r.path) {
            violations.push(Violation::new(
                &r.path,
                "metadata",
                "recording.flight_id",
                format!("flight_id {:?} is also used by {}", r.meta.flight_id, other.display()),
            ));
        }
    }
    if violations.is_empty() { Ok(recs) } else { Err(ContractViolations(violations)) }
}

/// Reads the labels and validates them against the recordings. A missing label file is a
/// violation (`label.present`): training without labels is not a mode avm has yet, and a
/// misnamed file must not silently mean "no faults".
pub fn load_labels(
    path: &Path,
    contract: &Contract,
    recs: &[Recording],
) -> Result<Vec<LabelInterval>, ContractViolations> {
    let intervals = read_labels(path)?;
    let spans: HashMap<String, (f64, f64)> =
        recs.iter().filter_map(|r| vibration_span(contract, r)).collect();
    let v = labels(path, contract, &intervals, &spans);
    if v.is_empty() { Ok(intervals) } else { Err(ContractViolations(v)) }
}

/// `(flight_id, [first vibration sample, last + one period))`: the span labels must lie in.
pub fn vibration_span(contract: &Contract, r: &Recording) -> Option<(String, (f64, f64))> {
    let v = contract.vibration_channels().next()?;
    let (_, t, _) = r.numeric(&v.name)?;
    // The last sample covers one period: intervals are half-open, [start, end).
    Some((r.meta.flight_id.clone(), (*t.first()?, *t.last()? + 1.0 / v.sample_rate_hz)))
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

/// Every violation of this contract by `rec` (empty: valid).
pub fn recording(contract: &Contract, rec: &Recording) -> Vec<Violation> {
    let file = rec.path.as_path();
    let mut out = Vec::new();
    let mut v = |channel: &str, loc: String, rule: &'static str, detail: String| {
        let location =
            if loc.is_empty() { format!("channel {channel}") } else { format!("channel {channel}, {loc}") };
        out.push(Violation::new(file, location, rule, detail));
    };
    let mut vib_start: Option<(f64, &str)> = None;
    for rule in &contract.channels {
        let Some(i) = rec.channel_index(&rule.name) else {
            if rule.required {
                let have: Vec<_> = rec.meta.channels.iter().map(|c| c.name.as_str()).collect();
                v(
                    &rule.name,
                    String::new(),
                    "channel.present",
                    format!("required channel is missing (the file has {have:?})"),
                );
            }
            continue;
        };
        let meta = &rec.meta.channels[i];
        let data = &rec.data[i];
        if meta.unit != rule.unit {
            v(
                &rule.name,
                String::new(),
                "channel.unit",
                format!("unit is {:?}, the contract requires {:?}", meta.unit, rule.unit),
            );
        }
        if (meta.sample_rate_hz - rule.sample_rate_hz).abs() > 1e-9 * rule.sample_rate_hz {
            v(
                &rule.name,
                String::new(),
                "channel.sample_rate",
                format!(
                    "declared {} Hz, the contract requires {} Hz",
                    meta.sample_rate_hz, rule.sample_rate_hz
                ),
            );
            continue; // the grid check would only repeat this
        }
        let text = matches!(data.samples, Samples::Text(_));
        if text != (rule.kind == ChannelKind::Phase) {
            v(
                &rule.name,
                String::new(),
                "channel.kind",
                format!("a {:?} channel must be {}", rule.kind, if text { "numeric" } else { "text" }),
            );
            continue;
        }
        if data.times_s.is_empty() {
            v(&rule.name, String::new(), "channel.present", "the column has no samples".into());
            continue;
        }
        let at = |k: usize| format!("row {} (t = {:.6} s)", data.rows[k], data.times_s[k]);
        // Time: strictly increasing, on the declared grid.
        if let Some(k) = (1..data.times_s.len())
            .find(|&k| data.times_s[k] <= data.times_s[k - 1] || data.times_s[k].is_nan())
        {
            let what = if data.times_s[k] == data.times_s[k - 1] { "duplicated" } else { "goes backwards" };
            v(
                &rule.name,
                at(k),
                "time.monotonic",
                format!("time {what} (previous sample at t = {:.6} s)", data.times_s[k - 1]),
            );
            continue;
        }
        let period = 1.0 / rule.sample_rate_hz;
        if (data.times_s[0] - meta.start_s).abs() > contract.grid_tolerance_s {
            v(
                &rule.name,
                at(0),
                "channel.grid",
                format!("first sample is not at the declared start_s = {} s", meta.start_s),
            );
        }
        if let Some(k) = (0..data.times_s.len()).find(|&k| {
            (data.times_s[k] - (meta.start_s + k as f64 * period)).abs() > contract.grid_tolerance_s
        }) {
            let step = if k > 0 { data.times_s[k] - data.times_s[k - 1] } else { 0.0 };
            v(
                &rule.name,
                at(k),
                "channel.grid",
                format!(
                    "sample {k} is off the {} Hz grid (step {:.6} s = {:.3} periods); the data does not match \
                     the declared rate, or samples are missing (record a dropout as NaN, not as a missing row)",
                    rule.sample_rate_hz,
                    step,
                    step / period
                ),
            );
            continue;
        }
        // Time base.
        if rule.kind == ChannelKind::Vibration {
            match vib_start {
                None => vib_start = Some((meta.start_s, rule.name.as_str())),
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
        // Values.
        match &data.samples {
            Samples::Numeric(x) => {
                // NaN is a dropout (bounded by channel.gap below); ±inf never is.
                let (lo, hi) = rule.valid_range.map_or((f64::NEG_INFINITY, f64::INFINITY), |[a, b]| (a, b));
                let bad: Vec<usize> = (0..x.len())
                    .filter(|&k| {
                        let ok = x[k].is_finite() && f64::from(x[k]) >= lo && f64::from(x[k]) <= hi;
                        !(x[k].is_nan() || ok)
                    })
                    .collect();
                if let Some(&k) = bad.first() {
                    let what = if x[k].is_finite() {
                        format!("outside the valid range [{lo}, {hi}] {}", rule.unit)
                    } else {
                        "is not finite (only NaN marks a missing sample)".to_string()
                    };
                    v(
                        &rule.name,
                        at(k),
                        "channel.range",
                        format!("value {} {what} ({} sample(s) in all; wrong unit?)", x[k], bad.len()),
                    );
                }
                let max_gap = (contract.max_gap_s * rule.sample_rate_hz).floor() as usize;
                let mut k = 0;
                let mut reported = 0;
                while k < x.len() && reported < PER_RULE {
                    if !x[k].is_nan() {
                        k += 1;
                        continue;
                    }
                    let start = k;
                    while k < x.len() && x[k].is_nan() {
                        k += 1;
                    }
                    if k - start > max_gap {
                        v(
                            &rule.name,
                            at(start),
                            "channel.gap",
                            format!(
                                "{} consecutive missing (NaN) samples ({:.3} s), the contract allows at most {max_gap} ({} s)",
                                k - start,
                                (k - start) as f64 * period,
                                contract.max_gap_s
                            ),
                        );
                        reported += 1;
                    }
                }
            }
            Samples::Text(p) => {
                if let Some(k) = (0..p.len()).find(|&k| !contract.phases.iter().any(|a| *a == p[k])) {
                    v(
                        &rule.name,
                        at(k),
                        "phase.allowed",
                        format!("phase {:?} is not one of {:?}", p[k], contract.phases),
                    );
                }
            }
        }
    }
    // Offsets of the other channels from the vibration timeline, and duration.
    if let Some((vs, vname)) = vib_start {
        for rule in contract.channels.iter().filter(|c| c.kind != ChannelKind::Vibration) {
            if let Some((m, _)) = rec.channel(&rule.name)
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
        if let Some((m, times, _)) = rec.numeric(vname) {
            // n samples cover n periods (the last one lasts until the next would come).
            let span = times.last().unwrap_or(&0.0) - times.first().unwrap_or(&0.0) + 1.0 / m.sample_rate_hz;
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

/// Checks label intervals: known fault type, severity in range, `start < end`, a known
/// flight, and the interval inside that flight's vibration span.
pub fn interval_rules(
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
