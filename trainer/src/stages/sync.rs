//! Time synchronisation: brings every channel of a recording onto the vibration timeline.
//!
//! The vibration channels (which the contract requires to share rate and start) define the
//! timeline `t[i] = t0 + i / fs`. Shaft speeds and the flight phase, sampled slower and from
//! another start, are brought onto it by **sample-and-hold**: the value at `t[i]` is the last
//! sample taken at or before `t[i]` (the core's contract for speed). Before a channel's first
//! sample, its first sample is used (the contract bounds that offset by `max_start_offset_s`).
//! Vibration channels of unequal length are cut to the shortest. Nothing is interpolated
//! here: missing vibration samples stay NaN for avm-core's sanitiser to handle.

use crate::error::{ContractViolations, Violation};
use crate::formats::contract::Contract;
use crate::formats::recording::{Recording, Samples};

/// Code of a sample whose phase is unknown (no phase channel).
pub const PHASE_UNKNOWN: u8 = u8::MAX;

/// A recording on one timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Synced {
    /// Recording id.
    pub flight_id: String,
    /// Aircraft id.
    pub aircraft_id: String,
    /// Engine id.
    pub engine_id: String,
    /// Vibration rate, Hz.
    pub sample_rate_hz: f64,
    /// Time of sample 0, seconds.
    pub t0_s: f64,
    /// Vibration channel names, contract order.
    pub vib_names: Vec<String>,
    /// Vibration samples, one vector per channel, NaN kept.
    pub vib: Vec<Vec<f32>>,
    /// Speed channel names, contract order.
    pub speed_names: Vec<String>,
    /// Speeds held onto the timeline, one vector per speed channel.
    pub speed: Vec<Vec<f32>>,
    /// For each vibration channel, the index in `speed` of its reference.
    pub speed_ref: Vec<usize>,
    /// Phase code per sample: index into `phase_names`, or [`PHASE_UNKNOWN`].
    pub phase: Vec<u8>,
    /// Phase names (the contract's list).
    pub phase_names: Vec<String>,
}

impl Synced {
    /// Samples on the timeline.
    pub fn len(&self) -> usize {
        self.vib.first().map_or(0, Vec::len)
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Time of sample `i`.
    pub fn time_s(&self, i: usize) -> f64 {
        self.t0_s + i as f64 / self.sample_rate_hz
    }
}

/// Indices `j[i]` of the source sample held at each target time `t0 + i / fs`.
fn hold_index(src_t: &[f64], t0: f64, fs: f64, n: usize) -> Vec<usize> {
    // A sample counts as taken "at" t if it is within 1 ns of it (float times on two clocks).
    const EPS: f64 = 1e-9;
    let mut j = 0;
    (0..n)
        .map(|i| {
            let t = t0 + i as f64 / fs;
            while j + 1 < src_t.len() && src_t[j + 1] <= t + EPS {
                j += 1;
            }
            j
        })
        .collect()
}

/// Synchronises `rec` (already validated against `contract`).
pub fn synchronise(rec: &Recording, contract: &Contract) -> Result<Synced, ContractViolations> {
    let missing = |name: &str| -> ContractViolations {
        Violation::new(
            &rec.path,
            format!("channel {name}"),
            "channel.present",
            "needed for the features but missing or empty",
        )
        .into()
    };
    let vib_rules: Vec<_> = contract.vibration_channels().collect();
    let mut vib_names = Vec::new();
    let mut vib = Vec::new();
    let mut t0 = f64::NAN;
    let fs = contract.vibration_rate_hz();
    for r in &vib_rules {
        let (_, times, x) =
            rec.numeric(&r.name).filter(|(_, t, _)| !t.is_empty()).ok_or_else(|| missing(&r.name))?;
        if t0.is_nan() {
            t0 = times[0];
        }
        vib_names.push(r.name.clone());
        vib.push(x.to_vec());
    }
    let n = vib.iter().map(Vec::len).min().unwrap_or(0);
    vib.iter_mut().for_each(|v| v.truncate(n));

    let mut speed_names: Vec<String> = Vec::new();
    let mut speed = Vec::new();
    let mut speed_ref = Vec::new();
    for r in &vib_rules {
        let sname = r.speed_reference.clone().unwrap_or_default();
        let k = match speed_names.iter().position(|s| *s == sname) {
            Some(k) => k,
            None => {
                let (_, times, x) =
                    rec.numeric(&sname).filter(|(_, t, _)| !t.is_empty()).ok_or_else(|| missing(&sname))?;
                speed.push(hold_index(times, t0, fs, n).into_iter().map(|j| x[j]).collect());
                speed_names.push(sname);
                speed_names.len() - 1
            }
        };
        speed_ref.push(k);
    }

    let phase_names = contract.phases.clone();
    let phase = match contract.phase_channel().and_then(|p| rec.channel(&p.name)) {
        Some((_, d)) => match &d.samples {
            Samples::Text(p) if !p.is_empty() => hold_index(&d.times_s, t0, fs, n)
                .into_iter()
                .map(|j| phase_names.iter().position(|a| *a == p[j]).map_or(PHASE_UNKNOWN, |k| k as u8))
                .collect(),
            _ => vec![PHASE_UNKNOWN; n],
        },
        None => vec![PHASE_UNKNOWN; n],
    };
    Ok(Synced {
        flight_id: rec.meta.flight_id.clone(),
        aircraft_id: rec.meta.aircraft_id.clone(),
        engine_id: rec.meta.engine_id.clone(),
        sample_rate_hz: fs,
        t0_s: if t0.is_nan() { 0.0 } else { t0 },
        vib_names,
        vib,
        speed_names,
        speed,
        speed_ref,
        phase,
        phase_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::recording::{ChannelData, ChannelMeta, FORMAT, FORMAT_VERSION, RecordingMeta};

    fn contract() -> Contract {
        serde_saphyr::from_str(
            r#"
name: t
version: 1
grid_tolerance_s: 1.0e-6
max_start_offset_s: 1.0
min_duration_s: 0.0
max_gap_s: 1.0
phases: [taxi, takeoff]
channels:
  - {name: vib, kind: vibration, unit: g, sample_rate_hz: 8, speed_reference: n1}
  - {name: n1, kind: speed, unit: rpm, sample_rate_hz: 2}
  - {name: phase, kind: phase, unit: "-", sample_rate_hz: 1}
labels: {fault_types: {x: engine}, severity_range: [0, 1]}
"#,
        )
        .unwrap()
    }

    fn rec(vib_start: f64, speed_start: f64, phase_start: f64) -> Recording {
        let ch = |name: &str, unit: &str, rate: f64, start: f64| ChannelMeta {
            name: name.into(),
            unit: unit.into(),
            sample_rate_hz: rate,
            start_s: start,
        };
        let times =
            |start: f64, rate: f64, n: usize| (0..n).map(|k| start + k as f64 / rate).collect::<Vec<_>>();
        Recording {
            meta: RecordingMeta {
                format: FORMAT.into(),
                format_version: FORMAT_VERSION,
                aircraft_id: "A".into(),
                engine_id: "E".into(),
                flight_id: "F".into(),
                source: String::new(),
                channels: vec![
                    ch("vib", "g", 8.0, vib_start),
                    ch("n1", "rpm", 2.0, speed_start),
                    ch("phase", "-", 1.0, phase_start),
                ],
                content_crc32: None,
            },
            data: vec![
                ChannelData {
                    times_s: times(vib_start, 8.0, 16),
                    samples: Samples::Numeric((0..16).map(|i| i as f32).collect()),
                    rows: vec![0; 16],
                },
                ChannelData {
                    times_s: times(speed_start, 2.0, 4),
                    samples: Samples::Numeric(vec![100.0, 200.0, 300.0, 400.0]),
                    rows: vec![0; 4],
                },
                ChannelData {
                    times_s: times(phase_start, 1.0, 2),
                    samples: Samples::Text(vec!["taxi".into(), "takeoff".into()]),
                    rows: vec![0; 2],
                },
            ],
            path: "r.parquet".into(),
        }
    }

    #[test]
    fn sample_and_hold_with_offset_clocks() {
        // Vibration at 8 Hz from 0 s; speed at 2 Hz from 0.3 s (samples at 0.3, 0.8, 1.3, 1.8 s);
        // phase at 1 Hz from 0.0 s.
        let s = synchronise(&rec(0.0, 0.3, 0.0), &contract()).unwrap();
        assert_eq!(s.len(), 16);
        // t = 0, .125, .25 precede the first speed sample: backward hold of 100.
        // t = .375 .. .75 -> 100 (0.3 s); .875 .. 1.25 -> 200 (0.8 s); 1.375 .. 1.75 -> 300; 1.875 -> 400.
        let expect: Vec<f32> =
            [100, 100, 100, 100, 100, 100, 100, 200, 200, 200, 200, 300, 300, 300, 300, 400]
                .iter()
                .map(|&v| v as f32)
                .collect();
        assert_eq!(s.speed[0], expect);
        assert_eq!(&s.phase[..8], &[0; 8]);
        assert_eq!(&s.phase[8..], &[1; 8]);
        assert_eq!(s.speed_ref, vec![0]);
        assert_eq!(s.vib[0][3], 3.0);
    }

    #[test]
    fn coincident_samples_take_the_new_value() {
        // Speed sampled exactly on vibration samples (0.5 s, 1.0 s...): the new value applies at
        // that instant, not one sample later.
        let s = synchronise(&rec(0.0, 0.5, 0.0), &contract()).unwrap();
        assert_eq!(&s.speed[0][..5], &[100.0; 5]); // t = 0 .. 0.5
        assert_eq!(s.speed[0][8], 200.0); // t = 1.0
        assert_eq!(s.speed[0][7], 100.0); // t = 0.875
        // A later vibration start: the timeline starts at 0.25 s.
        let s = synchronise(&rec(0.25, 0.0, 0.0), &contract()).unwrap();
        assert_eq!(s.t0_s, 0.25);
        assert_eq!(s.time_s(2), 0.5);
        assert_eq!(&s.speed[0][..3], &[100.0, 100.0, 200.0]); // 0.25, 0.375 -> the 0 s sample; 0.5 -> the 0.5 s one
    }
}
