//! The data contract: what a valid recording and a valid label file are.
//!
//! Loaded from YAML (`configs/contracts/*.yaml`). The checks live in
//! [`crate::stages::validate`], which returns every broken rule as a [`Violation`] naming the
//! file, channel, row and time. Rules (the `rule` of each violation):
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
//! - `label.*`: see [`crate::stages::validate::labels`].

use crate::error::UsageError;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
}
