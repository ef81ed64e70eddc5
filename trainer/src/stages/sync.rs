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
use crate::formats::recording::{ChannelData, Recording, RecordingMeta, Samples};
use std::collections::VecDeque;
use std::path::Path;

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

impl Synced {
    /// Appends a block of the timeline.
    pub fn append(&mut self, mut b: SyncedBlock) {
        for (v, mut x) in self.vib.iter_mut().zip(b.vib.drain(..)) {
            v.append(&mut x);
        }
        for (v, mut x) in self.speed.iter_mut().zip(b.speed.drain(..)) {
            v.append(&mut x);
        }
        self.phase.append(&mut b.phase);
    }
}

/// Consecutive samples of the timeline: per vibration channel, per speed channel, and the phase
/// codes, all of one length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncedBlock {
    /// Vibration samples per channel.
    pub vib: Vec<Vec<f32>>,
    /// Held speeds per speed channel.
    pub speed: Vec<Vec<f32>>,
    /// Phase codes.
    pub phase: Vec<u8>,
}

impl SyncedBlock {
    /// Samples in the block.
    pub fn len(&self) -> usize {
        self.phase.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.phase.is_empty()
    }
}

/// A sample-and-hold source: the value held, and the later samples not yet reached.
struct Hold<T> {
    current: Option<T>,
    later: VecDeque<(f64, T)>,
}

impl<T: Copy> Hold<T> {
    fn new() -> Hold<T> {
        Hold { current: None, later: VecDeque::new() }
    }

    /// A source sample. The first one is held from the start of the timeline (backward hold).
    fn push(&mut self, t: f64, v: T) {
        if self.current.is_none() {
            self.current = Some(v);
        } else {
            self.later.push_back((t, v));
        }
    }

    /// The value at target time `t`, once it is known: the last sample taken at or before `t`
    /// (within [`SAME_INSTANT_S`]: float times on two clocks), which needs a sample after `t` or
    /// the end.
    fn at(&mut self, t: f64, ended: bool) -> Option<T> {
        while let Some(&(ts, v)) = self.later.front() {
            if !reached(ts, t) {
                break;
            }
            self.current = Some(v);
            self.later.pop_front();
        }
        if self.later.is_empty() && !ended { None } else { self.current }
    }

    /// Time of the next sample, not yet reached.
    fn next_s(&self) -> Option<f64> {
        self.later.front().map(|&(ts, _)| ts)
    }
}

/// A source sample counts as taken at a timeline instant if it is within this of it (1 ns).
const SAME_INSTANT_S: f64 = 1e-9;

/// True when a source sample taken at `ts` is held at timeline instant `t`.
fn reached(ts: f64, t: f64) -> bool {
    ts <= t + SAME_INSTANT_S
}

/// Synchronises a recording that arrives in chunks: [`Synchroniser::push`] returns the part of
/// the timeline that is complete (every held channel has a sample after it), so memory holds
/// only the samples within the channels' clock offsets of each other, whatever the flight's
/// length. [`synchronise`] runs it over a whole recording.
pub struct Synchroniser {
    out: Synced,
    path: std::path::PathBuf,
    /// Recording channel of each vibration rule (`None`: missing or not numeric).
    vib_idx: Vec<Option<usize>>,
    vib_queue: Vec<VecDeque<f32>>,
    vib_count: Vec<usize>,
    /// Recording channel of each speed channel.
    speed_idx: Vec<Option<usize>>,
    speeds: Vec<Hold<f32>>,
    /// The phase channel (text) and its hold.
    phase: Option<(usize, Hold<u8>)>,
    /// Next timeline index to emit.
    next: usize,
    /// The held speeds of one timeline sample (reused: no allocation per sample).
    scratch: Vec<f32>,
}

impl Synchroniser {
    /// Starts synchronising a recording with `meta` (channel `i` holds text when `text[i]`),
    /// read from `path`.
    pub fn new(contract: &Contract, meta: &RecordingMeta, text: &[bool], path: &Path) -> Synchroniser {
        let numeric = |name: &str| meta.channels.iter().position(|c| c.name == name).filter(|&i| !text[i]);
        let vib_rules: Vec<_> = contract.vibration_channels().collect();
        let vib_idx: Vec<Option<usize>> = vib_rules.iter().map(|r| numeric(&r.name)).collect();
        let mut speed_names: Vec<String> = Vec::new();
        let mut speed_ref = Vec::new();
        for r in &vib_rules {
            let sname = r.speed_reference.clone().unwrap_or_default();
            let k = speed_names.iter().position(|s| *s == sname).unwrap_or_else(|| {
                speed_names.push(sname);
                speed_names.len() - 1
            });
            speed_ref.push(k);
        }
        let speed_idx: Vec<Option<usize>> = speed_names.iter().map(|n| numeric(n)).collect();
        let phase = contract
            .phase_channel()
            .and_then(|p| meta.channels.iter().position(|c| c.name == p.name))
            .filter(|&i| text[i])
            .map(|i| (i, Hold::new()));
        Synchroniser {
            out: Synced {
                flight_id: meta.flight_id.clone(),
                aircraft_id: meta.aircraft_id.clone(),
                engine_id: meta.engine_id.clone(),
                sample_rate_hz: contract.vibration_rate_hz(),
                t0_s: f64::NAN,
                vib_names: vib_rules.iter().map(|r| r.name.clone()).collect(),
                vib: Vec::new(),
                speed_names,
                speed: Vec::new(),
                speed_ref,
                phase: Vec::new(),
                phase_names: contract.phases.clone(),
            },
            path: path.to_path_buf(),
            vib_queue: vib_idx.iter().map(|_| VecDeque::new()).collect(),
            vib_count: vec![0; vib_idx.len()],
            speeds: speed_idx.iter().map(|_| Hold::new()).collect(),
            vib_idx,
            speed_idx,
            phase,
            next: 0,
            scratch: Vec::new(),
        }
    }

    /// The synchronised recording's ids, names and rate (no samples); `t0_s` once known.
    pub fn header(&self) -> &Synced {
        &self.out
    }

    /// Takes the next chunk of the recording (one [`ChannelData`] per recording channel) and
    /// returns the timeline samples it completes.
    pub fn push(&mut self, chunk: &[ChannelData]) -> SyncedBlock {
        if self.vib_idx.iter().chain(&self.speed_idx).any(Option::is_none) {
            return self.empty_block(); // reported by finish
        }
        for (k, idx) in self.vib_idx.iter().enumerate() {
            let d = &chunk[idx.unwrap_or_default()];
            if let Samples::Numeric(x) = &d.samples {
                if k == 0
                    && self.out.t0_s.is_nan()
                    && let Some(&t) = d.times_s.first()
                {
                    self.out.t0_s = t;
                }
                self.vib_queue[k].extend(x);
                self.vib_count[k] += x.len();
            }
        }
        for (hold, idx) in self.speeds.iter_mut().zip(&self.speed_idx) {
            let d = &chunk[idx.unwrap_or_default()];
            if let Samples::Numeric(x) = &d.samples {
                d.times_s.iter().zip(x).for_each(|(&t, &v)| hold.push(t, v));
            }
        }
        if let Some((i, hold)) = &mut self.phase
            && let Samples::Text(p) = &chunk[*i].samples
        {
            let names = &self.out.phase_names;
            for (&t, v) in chunk[*i].times_s.iter().zip(p) {
                hold.push(t, names.iter().position(|a| a == v).map_or(PHASE_UNKNOWN, |k| k as u8));
            }
        }
        self.emit(false)
    }

    fn empty_block(&self) -> SyncedBlock {
        SyncedBlock {
            vib: vec![Vec::new(); self.vib_idx.len()],
            speed: vec![Vec::new(); self.speed_idx.len()],
            phase: Vec::new(),
        }
    }

    /// Emits every timeline sample whose held values are known.
    ///
    /// By runs: the held values are looked up at the first sample of a run (as a lookup per
    /// sample would), and stay until the first timeline sample at which some source's next
    /// sample is reached, found by bisection on the same timeline expression (`t0 + i / fs`
    /// grows with `i`, so "reached" does too): the same samples as a lookup per sample, without
    /// a lookup per sample.
    fn emit(&mut self, ended: bool) -> SyncedBlock {
        let mut b = self.empty_block();
        let ready = self.vib_queue.iter().map(VecDeque::len).min().unwrap_or(0);
        if self.out.t0_s.is_nan() {
            return b;
        }
        // The timeline's one expression (`Synced::time_s`), for the lookups and the bisection.
        let time = |i: usize| self.out.time_s(i);
        for v in b.vib.iter_mut().chain(&mut b.speed) {
            v.reserve(ready);
        }
        b.phase.reserve(ready);
        let mut speeds = std::mem::take(&mut self.scratch);
        let (start, end) = (self.next, self.next + ready);
        let mut i = start;
        'runs: while i < end {
            let t = time(i);
            speeds.clear();
            for h in &mut self.speeds {
                match h.at(t, ended) {
                    Some(v) => speeds.push(v),
                    None => break 'runs,
                }
            }
            let phase = match &mut self.phase {
                Some((_, h)) => match h.at(t, ended) {
                    Some(p) => p,
                    None if ended => PHASE_UNKNOWN,
                    None => break 'runs,
                },
                None => PHASE_UNKNOWN,
            };
            // The run ends where the earliest pending source sample is reached.
            let pending =
                self.speeds.iter().map(Hold::next_s).chain(self.phase.iter().map(|(_, h)| h.next_s()));
            let mut run_end = end;
            for ts in pending.flatten() {
                let (mut lo, mut hi) = (i + 1, run_end);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if reached(ts, time(mid)) { hi = mid } else { lo = mid + 1 }
                }
                run_end = lo;
            }
            let n = run_end - i;
            for (&v, out) in speeds.iter().zip(&mut b.speed) {
                out.extend(std::iter::repeat_n(v, n));
            }
            b.phase.extend(std::iter::repeat_n(phase, n));
            i = run_end;
        }
        let n = i - start;
        for (q, v) in self.vib_queue.iter_mut().zip(&mut b.vib) {
            // Copied as (at most two) slices, then dropped from the queue.
            let (front, back) = q.as_slices();
            let from_front = n.min(front.len());
            v.extend_from_slice(&front[..from_front]);
            v.extend_from_slice(&back[..n - from_front]);
            q.drain(..n);
        }
        self.next = i;
        self.scratch = speeds;
        b
    }

    /// Ends the recording: the synchronised recording's header (ids, names, `t0_s`; no samples)
    /// and the rest of the timeline (vibration channels cut to the shortest). A
    /// vibration or speed channel the features need that is missing, not numeric or empty is
    /// a `channel.present` violation.
    pub fn finish(mut self) -> Result<(Synced, SyncedBlock), ContractViolations> {
        let missing = |name: &str| -> ContractViolations {
            Violation::new(
                &self.path,
                format!("channel {name}"),
                "channel.present",
                "needed for the features but missing or empty",
            )
            .into()
        };
        for (k, idx) in self.vib_idx.iter().enumerate() {
            if idx.is_none() || self.vib_count[k] == 0 {
                return Err(missing(&self.out.vib_names[k]));
            }
        }
        for (k, idx) in self.speed_idx.iter().enumerate() {
            if idx.is_none() || self.speeds[k].current.is_none() {
                return Err(missing(&self.out.speed_names[k]));
            }
        }
        let last = self.emit(true);
        let mut header = self.out;
        header.vib = vec![Vec::new(); header.vib_names.len()];
        header.speed = vec![Vec::new(); header.speed_names.len()];
        if header.t0_s.is_nan() {
            header.t0_s = 0.0;
        }
        Ok((header, last))
    }
}

/// Synchronises `rec` (already validated against `contract`): a [`Synchroniser`] fed the whole
/// recording as one chunk.
pub fn synchronise(rec: &Recording, contract: &Contract) -> Result<Synced, ContractViolations> {
    let text = rec.text_channels();
    let mut sync = Synchroniser::new(contract, &rec.meta, &text, &rec.path);
    let first = sync.push(&rec.data);
    let (mut s, last) = sync.finish()?;
    s.append(first);
    s.append(last);
    Ok(s)
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
                attributes: Default::default(),
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

    /// The definition, sample by sample: at `t0 + i / fs`, each held channel's last sample taken
    /// at or before it (within 1 ns), its first before that; the timeline as long as the vibration.
    fn held_by_definition(rec: &Recording) -> (Vec<f32>, Vec<u8>) {
        let (vib, speed, phase) = (&rec.data[0], &rec.data[1], &rec.data[2]);
        let (t0, fs) = (vib.times_s[0], 8.0);
        let hold = |times: &[f64], t: f64| times.iter().rposition(|&ts| ts <= t + 1e-9).unwrap_or(0);
        let Samples::Numeric(rpm) = &speed.samples else { unreachable!() };
        let Samples::Text(names) = &phase.samples else { unreachable!() };
        (0..vib.times_s.len())
            .map(|i| {
                let t = t0 + i as f64 / fs;
                let p = &names[hold(&phase.times_s, t)];
                (rpm[hold(&speed.times_s, t)], if p == "taxi" { 0 } else { 1 })
            })
            .unzip()
    }

    /// `n` increasing source times around the timeline `t0 + i / 8`: on a timeline instant,
    /// up to 3 ns either side of one (both sides of the 1 ns rule), or between two.
    fn clock(next: &mut impl FnMut(u64) -> u64, t0: f64, n: usize) -> Vec<f64> {
        let mut i = -(next(8) as f64);
        (0..n)
            .map(|_| {
                i += (1 + next(12)) as f64;
                let offset = match next(4) {
                    0 => 0.0,
                    1 => [-3e-9, -1e-9, -5e-10, 5e-10, 1e-9, 1.5e-9, 3e-9][next(7) as usize],
                    _ => next(1000) as f64 / 8000.0 - 0.0625,
                };
                t0 + i / 8.0 + offset
            })
            .collect()
    }

    #[test]
    fn runs_hold_what_a_lookup_per_sample_holds() {
        // Random clocks (`clock`): speed and phase samples on timeline instants, up to 3 ns
        // either side of them, and between; whole recordings and random chunkings.
        let mut seed = 0x853c_49e6_748f_ea9b_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let c = contract();
        for case in 0..300 {
            let mut r = rec(0.0, 0.0, 0.0);
            let t0 = next(1000) as f64 / 997.0;
            let n_vib = 1 + next(200) as usize;
            r.data[0].times_s = (0..n_vib).map(|i| t0 + i as f64 / 8.0).collect();
            r.data[0].samples = Samples::Numeric((0..n_vib).map(|i| i as f32).collect());
            r.data[0].rows = vec![0; n_vib];
            let n_speed = 1 + next(40) as usize;
            r.data[1].times_s = clock(&mut next, t0, n_speed);
            r.data[1].samples = Samples::Numeric((0..n_speed).map(|i| 100.0 + i as f32).collect());
            r.data[1].rows = vec![0; n_speed];
            let n_phase = 1 + next(10) as usize;
            r.data[2].times_s = clock(&mut next, t0, n_phase);
            r.data[2].samples = Samples::Text(
                (0..n_phase).map(|i| if i % 2 == 0 { "taxi" } else { "takeoff" }.into()).collect(),
            );
            r.data[2].rows = vec![0; n_phase];
            let (speed, phase) = held_by_definition(&r);
            let whole = synchronise(&r, &c).unwrap();
            assert_eq!(whole.speed[0], speed, "case {case}");
            assert_eq!(whole.phase, phase, "case {case}");
            // The same recording in chunks cut at random times.
            let mut cuts: Vec<f64> = (0..next(6)).map(|_| t0 + next(30_000) as f64 / 1000.0 - 2.0).collect();
            cuts.sort_by(f64::total_cmp);
            cuts.push(f64::INFINITY);
            let mut sync = Synchroniser::new(&c, &r.meta, &r.text_channels(), &r.path);
            let mut got = Synced { vib: vec![Vec::new()], speed: vec![Vec::new()], ..whole.clone() };
            got.phase.clear();
            let mut from = f64::NEG_INFINITY;
            for &to in &cuts {
                let part: Vec<ChannelData> = r
                    .data
                    .iter()
                    .map(|d| {
                        let keep: Vec<usize> = (0..d.times_s.len())
                            .filter(|&k| d.times_s[k] >= from && d.times_s[k] < to)
                            .collect();
                        ChannelData {
                            times_s: keep.iter().map(|&k| d.times_s[k]).collect(),
                            samples: match &d.samples {
                                Samples::Numeric(x) => Samples::Numeric(keep.iter().map(|&k| x[k]).collect()),
                                Samples::Text(x) => {
                                    Samples::Text(keep.iter().map(|&k| x[k].clone()).collect())
                                }
                            },
                            rows: vec![0; keep.len()],
                        }
                    })
                    .collect();
                got.append(sync.push(&part));
                from = to;
            }
            let (_, last) = sync.finish().unwrap();
            got.append(last);
            assert_eq!(got.speed, whole.speed, "case {case}, cuts {cuts:?}");
            assert_eq!(got.phase, whole.phase, "case {case}");
            assert_eq!(got.vib, whole.vib, "case {case}");
        }
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
