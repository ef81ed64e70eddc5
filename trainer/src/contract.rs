//! The data contract: what a valid recording and a valid label file are.
//!
//! Loaded from YAML (`configs/contracts/*.yaml`). [`Contract::validate`] checks one recording
//! and returns every broken rule as a [`Violation`] naming the file, channel, row and time;
//! [`Contract::validate_labels`] checks label intervals against the recordings they refer to.
//!
//! Rules (the `rule` of each violation):
//! - `channel.present`: every required channel is in the file;
//! - `channel.unit`, `channel.sample_rate`, `channel.kind`: metadata and column type match;
//! - `time.monotonic`: a channel's sample times strictly increase (no duplicates);
//! - `channel.grid`: sample `k` sits at `start_s + k / rate` (within `grid_tolerance_s`); a
//!   dropout is a NaN sample, never a missing row;
//! - `time.base`: vibration channels share rate and start; other channels start within
//!   `max_start_offset_s` of them;
//! - `channel.range`: finite samples lie in `valid_range`;
//! - `channel.gap`: no run of NaN longer than `max_gap_s`;
//! - `phase.allowed`: phase values are among `phases`;
//! - `recording.duration`: at least `min_duration_s` of vibration;
//! - `label.*`: see [`Contract::validate_labels`].

use crate::error::{UsageError, Violation};
use crate::labels::LabelInterval;
use crate::recording::{Recording, Samples};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What a channel carries.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Acceleration, the input of the features.
    Vibration,
    /// Shaft speed, the reference of the order features.
    Speed,
    /// Flight phase (text).
    Phase,
}

/// Contract for one channel.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelRule {
    /// Column name.
    pub name: String,
    /// What it carries.
    pub kind: ChannelKind,
    /// Required unit (`-` for phase).
    pub unit: String,
    /// Required nominal rate in Hz.
    pub sample_rate_hz: f64,
    /// Inclusive range of finite values (numeric channels).
    #[serde(default)]
    pub valid_range: Option<[f64; 2]>,
    /// Whether a recording must have it.
    #[serde(default = "yes")]
    pub required: bool,
    /// For a vibration channel: the speed channel its order features refer to.
    #[serde(default)]
    pub speed_reference: Option<String>,
}

fn yes() -> bool {
    true
}

/// Whether a fault is in the engine or in the measurement chain.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FaultCategory {
    /// A mechanical fault of the engine: what the detector should alarm on.
    Engine,
    /// A data-quality event (dropout, spike, stuck or drifting sensor): not an engine fault.
    Sensor,
}

/// Rules for label files.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelRules {
    /// Known fault types and their category.
    pub fault_types: BTreeMap<String, FaultCategory>,
    /// Inclusive range of severities.
    pub severity_range: [f64; 2],
}

/// The contract.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Name of the contract.
    pub name: String,
    /// Version of the contract.
    pub version: u32,
    /// Largest deviation of a sample time from its grid point, seconds.
    pub grid_tolerance_s: f64,
    /// Largest offset of a non-vibration channel's start from the vibration start, seconds.
    pub max_start_offset_s: f64,
    /// Shortest acceptable recording (vibration span), seconds.
    pub min_duration_s: f64,
    /// Longest run of NaN samples allowed in a numeric channel, seconds.
    pub max_gap_s: f64,
    /// Allowed flight phases.
    pub phases: Vec<String>,
    /// Channels.
    pub channels: Vec<ChannelRule>,
    /// Label rules.
    pub labels: LabelRules,
}

/// Violations reported per channel and rule before the rest are summarised.
const PER_RULE: usize = 1;

impl Contract {
    /// Loads and checks a contract file.
    pub fn load(path: &Path) -> Result<Contract> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("contract {}: cannot read: {e}", path.display())))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let c: Contract = serde_saphyr::from_str(text)
            .map_err(|e| UsageError(format!("contract {}: {e}", path.display())))?;
        c.check().map_err(|m| UsageError(format!("contract {}: {m}", path.display())))?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        crate::ids::check("name", &self.name)?;
        for (key, v) in [
            ("grid_tolerance_s", self.grid_tolerance_s),
            ("max_start_offset_s", self.max_start_offset_s),
            ("min_duration_s", self.min_duration_s),
            ("max_gap_s", self.max_gap_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{key} = {v} must be a finite number >= 0"));
            }
        }
        for p in &self.phases {
            crate::ids::check("phase", p)?;
        }
        for t in self.labels.fault_types.keys() {
            crate::ids::check("labels.fault_types key", t)?;
        }
        let [lo, hi] = self.labels.severity_range;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(format!("labels.severity_range [{lo}, {hi}] must be finite with min <= max"));
        }
        let mut names = std::collections::HashSet::new();
        for c in &self.channels {
            crate::ids::check("channel name", &c.name)?;
            if !names.insert(c.name.as_str()) {
                return Err(format!("channel {} is listed twice", c.name));
            }
            if let Some([a, b]) = c.valid_range
                && !(a <= b && !a.is_nan() && !b.is_nan())
            {
                return Err(format!("channel {}: valid_range [{a}, {b}] must have min <= max", c.name));
            }
        }
        let vib: Vec<_> = self.vibration_channels().collect();
        if vib.is_empty() {
            return Err("needs at least one vibration channel".into());
        }
        if vib.iter().any(|v| v.sample_rate_hz != vib[0].sample_rate_hz) {
            return Err("vibration channels must share one sample rate".into());
        }
        for c in &self.channels {
            if !(c.sample_rate_hz.is_finite() && c.sample_rate_hz > 0.0) {
                return Err(format!("channel {}: sample_rate_hz must be > 0", c.name));
            }
            if let Some(r) = &c.speed_reference {
                match self.channel(r) {
                    Some(s) if s.kind == ChannelKind::Speed => {}
                    _ => {
                        return Err(format!(
                            "channel {}: speed_reference {r:?} is not a speed channel",
                            c.name
                        ));
                    }
                }
            } else if c.kind == ChannelKind::Vibration {
                return Err(format!("vibration channel {} needs a speed_reference", c.name));
            }
        }
        Ok(())
    }

    /// The rule for channel `name`.
    pub fn channel(&self, name: &str) -> Option<&ChannelRule> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// Vibration channel rules, in contract order.
    pub fn vibration_channels(&self) -> impl Iterator<Item = &ChannelRule> {
        self.channels.iter().filter(|c| c.kind == ChannelKind::Vibration)
    }

    /// The phase channel rule, if the contract has one.
    pub fn phase_channel(&self) -> Option<&ChannelRule> {
        self.channels.iter().find(|c| c.kind == ChannelKind::Phase)
    }

    /// The vibration sample rate.
    pub fn vibration_rate_hz(&self) -> f64 {
        self.vibration_channels().next().map(|c| c.sample_rate_hz).unwrap_or(0.0)
    }

    /// Every violation of this contract by `rec` (empty: valid).
    pub fn validate(&self, rec: &Recording) -> Vec<Violation> {
        let file = rec.path.as_path();
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
        for rule in &self.channels {
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
                let what =
                    if data.times_s[k] == data.times_s[k - 1] { "duplicated" } else { "goes backwards" };
                v(
                    &rule.name,
                    at(k),
                    "time.monotonic",
                    format!("time {what} (previous sample at t = {:.6} s)", data.times_s[k - 1]),
                );
                continue;
            }
            let period = 1.0 / rule.sample_rate_hz;
            if (data.times_s[0] - meta.start_s).abs() > self.grid_tolerance_s {
                v(
                    &rule.name,
                    at(0),
                    "channel.grid",
                    format!("first sample is not at the declared start_s = {} s", meta.start_s),
                );
            }
            if let Some(k) = (0..data.times_s.len()).find(|&k| {
                (data.times_s[k] - (meta.start_s + k as f64 * period)).abs() > self.grid_tolerance_s
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
                    Some((s, first)) if (s - meta.start_s).abs() > self.grid_tolerance_s => v(
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
                    let (lo, hi) =
                        rule.valid_range.map_or((f64::NEG_INFINITY, f64::INFINITY), |[a, b]| (a, b));
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
                    let max_gap = (self.max_gap_s * rule.sample_rate_hz).floor() as usize;
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
                                    self.max_gap_s
                                ),
                            );
                            reported += 1;
                        }
                    }
                }
                Samples::Text(p) => {
                    if let Some(k) = (0..p.len()).find(|&k| !self.phases.iter().any(|a| *a == p[k])) {
                        v(
                            &rule.name,
                            at(k),
                            "phase.allowed",
                            format!("phase {:?} is not one of {:?}", p[k], self.phases),
                        );
                    }
                }
            }
        }
        // Offsets of the other channels from the vibration timeline, and duration.
        if let Some((vs, vname)) = vib_start {
            for rule in self.channels.iter().filter(|c| c.kind != ChannelKind::Vibration) {
                if let Some((m, _)) = rec.channel(&rule.name)
                    && (m.start_s - vs).abs() > self.max_start_offset_s
                {
                    v(
                        &rule.name,
                        String::new(),
                        "time.base",
                        format!(
                            "starts at {} s, {:.3} s away from {vname} (at {vs} s); the contract allows {} s",
                            m.start_s,
                            (m.start_s - vs).abs(),
                            self.max_start_offset_s
                        ),
                    );
                }
            }
            if let Some((m, times, _)) = rec.numeric(vname) {
                // n samples cover n periods (the last one lasts until the next would come).
                let span =
                    times.last().unwrap_or(&0.0) - times.first().unwrap_or(&0.0) + 1.0 / m.sample_rate_hz;
                if span < self.min_duration_s {
                    out.push(Violation::new(
                        file,
                        "",
                        "recording.duration",
                        format!(
                            "{span:.3} s of vibration, the contract requires at least {} s",
                            self.min_duration_s
                        ),
                    ));
                }
            }
        }
        out
    }

    /// Checks label intervals: known fault type, severity in range, `start < end`, a known
    /// flight, and the interval inside that flight's vibration span.
    pub fn validate_labels(
        &self,
        file: &Path,
        labels: &[LabelInterval],
        spans: &HashMap<String, (f64, f64)>,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        let tol = self.grid_tolerance_s.max(1e-9);
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
            if !self.labels.fault_types.contains_key(&l.fault_type) {
                let known: Vec<_> = self.labels.fault_types.keys().collect();
                v("label.fault_type", format!("fault type {:?} is not one of {known:?}", l.fault_type));
            }
            let [lo, hi] = self.labels.severity_range;
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
}
