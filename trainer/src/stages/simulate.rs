//! The fleet simulator: deterministic, physically motivated engine-vibration recordings with
//! labelled engine faults and sensor (data-quality) events. The default data set of avm.
//!
//! # Model
//! A two-spool turbofan: N1 (fan, 100 % = [`N1_MAX_RPM`]) and N2 (core, 100 % =
//! [`N2_MAX_RPM`]). Each flight runs taxi → take-off → climb → cruise → descent → approach →
//! landing (with reverse thrust) → taxi, each phase with its own N1 target; the spools follow
//! the command through first-order lags (spool-up time constant 1.6 s, spool-down 2.4 s), N2
//! follows N1 on a fixed working line. Speeds are measured at `speed_rate_hz` with 0.05 %
//! noise, starting at a random offset from the vibration clock.
//!
//! Two accelerometers (g): `vib_fan` on the fan case (order reference N1) and `vib_core` on the
//! core case (reference N2). Each sees
//! - its shaft's 1P, amplitude ∝ speed² (unbalance force ∝ ω²), and a 2P (residual
//!   misalignment), with per-engine amplitudes and phases (log-normal spread: no two engines
//!   alike);
//! - cross-talk of the other shaft's 1P;
//! - the fan blade-pass tone (24 blades) where it lies below the anti-aliasing filter
//!   (it passes at idle and taxi, is filtered out at high power);
//! - broadband noise rising with power, and a small sensor bias.
//!
//! Engine faults (category `engine`), from an onset time to the end of the flight:
//! - `fan_imbalance`: fan 1P grows by up to ×(1 + 3·severity) over a 15 s progression
//!   (`fault_growth_s`: a range to draw the growth time from, for every fault kind);
//! - `misalignment`: 2P (and some 3P) of one shaft grows by up to ×(1 + 5·severity);
//! - `bearing_defect`: a rolling-element defect on the fan-shaft bearing strikes once per cage
//!   revolution (0.4 × N1, with ±5 % slip), each impact ringing a structural resonance
//!   (~600 Hz, 8 % damping): impulsive, raising kurtosis, crest factor and high-frequency energy,
//!   mostly on the fan sensor.
//!
//! Sensor events (category `sensor`), on one accelerometer, over an interval:
//! `sensor_dropout` (NaN runs: most short enough for the core to repair, some not),
//! `sensor_spike` (isolated single-sample spikes), `sensor_stuck` (the output freezes),
//! `sensor_drift` (a bias that drifts away and stays).
//!
//! Severity: an engine fault is *subtle* with probability `subtle_fraction` (severity uniform
//! in [0.1, 0.35]) and *gross* otherwise (uniform in [0.35, 1.0]).
//!
//! Determinism: one ChaCha8 stream per recording (`seed`, stream = recording index), maths in
//! `f64` through `libm`: the same config gives the same bytes on every machine.

use crate::config::FlightProfile;
pub use crate::config::SimConfig;
use crate::formats::contract::FaultCategory;
use crate::formats::labels::LabelInterval;
use crate::formats::recording::{
    ChannelData, ChannelMeta, FORMAT, FORMAT_VERSION, Recording, RecordingMeta, Samples,
};
use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use std::path::PathBuf;

/// Fan speed at 100 % N1, rpm.
pub const N1_MAX_RPM: f64 = 5200.0;
/// Core speed at 100 % N2, rpm.
pub const N2_MAX_RPM: f64 = 14_500.0;
const FAN_BLADES: f64 = 24.0;
/// Cage (fundamental train) frequency of the fan bearing, in orders of N1.
const FTF_ORDER: f64 = 0.4;

/// A recording and its labels, as simulated.
pub struct Simulated {
    /// The recording.
    pub recording: Recording,
    /// Its label intervals.
    pub labels: Vec<LabelInterval>,
}

/// Deterministic random numbers (ChaCha8, own conversions: portable across versions).
struct Rand(ChaCha8Rng);

impl Rand {
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(stream);
        Rand(r)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }
    fn int(&mut self, a: u32, b_inclusive: u32) -> u32 {
        a + ((self.unit() * f64::from(b_inclusive - a + 1)) as u32).min(b_inclusive - a)
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * PI * u2)
    }
    fn lognormal(&mut self, sigma: f64) -> f64 {
        libm::exp(sigma * self.normal())
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Per-engine constants.
#[derive(Clone, Debug)]
struct Engine {
    fan_1p_g: f64,
    fan_2p_ratio: f64,
    core_1p_g: f64,
    core_2p_ratio: f64,
    noise_g: f64,
    bias_g: [f64; 2],
    bpf_g: f64,
    resonance_hz: f64,
    phases: [f64; 6],
    n1_trim: f64,
}

impl Engine {
    fn draw(r: &mut Rand) -> Engine {
        Engine {
            fan_1p_g: 0.22 * r.lognormal(0.25),
            fan_2p_ratio: 0.15 * r.lognormal(0.3),
            core_1p_g: 0.12 * r.lognormal(0.25),
            core_2p_ratio: 0.2 * r.lognormal(0.3),
            noise_g: 0.05 * r.lognormal(0.2),
            bias_g: [0.01 * r.normal(), 0.01 * r.normal()],
            bpf_g: 0.04 * r.lognormal(0.3),
            resonance_hz: r.range(540.0, 660.0),
            phases: std::array::from_fn(|_| r.range(0.0, 2.0 * PI)),
            n1_trim: 1.0 + 0.004 * r.normal(),
        }
    }
}

/// Phase names, in flight order (taxi appears at both ends).
const PHASES: [(&str, f64, f64, f64, f64); 9] = [
    // name, min s, max s, N1 % min, N1 % max
    ("taxi", 25.0, 40.0, 21.0, 24.0),
    ("takeoff", 18.0, 25.0, 95.0, 99.0),
    ("climb", 40.0, 70.0, 88.0, 92.0),
    ("cruise", 60.0, 140.0, 82.0, 87.0),
    ("descent", 30.0, 45.0, 30.0, 35.0),
    ("approach", 25.0, 35.0, 50.0, 60.0),
    ("landing", 6.0, 8.0, 30.0, 35.0),
    ("landing", 6.0, 9.0, 70.0, 75.0), // reverse thrust
    ("taxi", 15.0, 30.0, 21.0, 24.0),
];

/// The `realistic` profile's phase durations (s): what a short- to medium-haul flight spends
/// outside cruise; cruise (its entry here is ignored) takes whatever the flight's length leaves.
const REALISTIC: [(&str, f64, f64, f64, f64); 9] = [
    ("taxi", 300.0, 900.0, 21.0, 24.0),
    ("takeoff", 40.0, 60.0, 95.0, 99.0),
    ("climb", 900.0, 1500.0, 88.0, 92.0),
    ("cruise", 0.0, 0.0, 82.0, 87.0),
    ("descent", 1200.0, 1800.0, 30.0, 35.0),
    ("approach", 300.0, 600.0, 50.0, 60.0),
    ("landing", 20.0, 30.0, 30.0, 35.0),
    ("landing", 15.0, 25.0, 70.0, 75.0), // reverse thrust
    ("taxi", 180.0, 600.0, 21.0, 24.0),
];

/// One aircraft flight: phase intervals and N1 command (shared by the aircraft's engines).
#[derive(Clone, Debug)]
struct Profile {
    /// (start s, phase, N1 command %)
    segments: Vec<(f64, &'static str, f64)>,
    duration_s: f64,
}

impl Profile {
    fn draw(r: &mut Rand, [dmin, dmax]: [f64; 2], kind: FlightProfile) -> Profile {
        let target = r.range(dmin, dmax);
        let table = match kind {
            FlightProfile::Scaled => &PHASES,
            FlightProfile::Realistic => &REALISTIC,
        };
        let mut raw: Vec<(f64, &str, f64)> =
            table.iter().map(|&(n, a, b, p, q)| (r.range(a, b), n, r.range(p, q))).collect();
        let scale = match kind {
            FlightProfile::Scaled => target / raw.iter().map(|s| s.0).sum::<f64>(),
            FlightProfile::Realistic => {
                // Cruise takes the rest (the config guarantees flights long enough for it).
                let others: f64 = raw.iter().filter(|s| s.1 != "cruise").map(|s| s.0).sum();
                if let Some(c) = raw.iter_mut().find(|s| s.1 == "cruise") {
                    c.0 = (target - others).max(60.0);
                }
                1.0
            }
        };
        let mut t = 0.0;
        let mut segments = Vec::new();
        for (d, n, pct) in raw {
            segments.push((t, n, pct));
            t += d * scale;
        }
        Profile { segments, duration_s: t }
    }

    fn at(&self, t: f64) -> (&'static str, f64) {
        let i = self.segments.iter().rposition(|s| s.0 <= t).unwrap_or(0);
        (self.segments[i].1, self.segments[i].2)
    }

    fn phase_start(&self, name: &str) -> f64 {
        self.segments.iter().find(|s| s.1 == name).map(|s| s.0).unwrap_or(0.0)
    }
}

/// An engine fault the simulator can inject.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EngineFault {
    /// Fan 1P grows.
    FanImbalance,
    /// 2P (and 3P) of the fan or, with `core`, the core shaft grows.
    Misalignment {
        /// On the core shaft rather than the fan.
        core: bool,
    },
    /// Outer-race defect impacts ringing a structural resonance.
    BearingDefect,
}

/// A sensor (data-quality) event the simulator can inject.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SensorEvent {
    /// NaN runs.
    Dropout,
    /// Isolated single-sample spikes.
    Spike,
    /// The output freezes.
    Stuck,
    /// A bias drifts away and stays.
    Drift,
}

/// What happens in one recording (drawn by [`draw_plan`], or chosen by a test).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Engine fault: kind, onset (s), severity.
    pub engine_fault: Option<(EngineFault, f64, f64)>,
    /// Sensor event: kind, channel (0 fan, 1 core), start (s), end (s), magnitude.
    pub sensor: Option<(SensorEvent, usize, f64, f64, f64)>,
}

/// Where recording `index` sits in the fleet: (aircraft, flight, engine position).
fn position(cfg: &SimConfig, index: usize) -> (usize, usize, usize) {
    let per_aircraft = (cfg.engines_per_aircraft * cfg.flights_per_aircraft) as usize;
    (
        index / per_aircraft,
        (index % per_aircraft) / cfg.engines_per_aircraft as usize,
        index % cfg.engines_per_aircraft as usize,
    )
}

fn profile_of(cfg: &SimConfig, index: usize) -> Profile {
    let (aircraft, flight, _) = position(cfg, index);
    let profile_stream = 2_000_000 + (aircraft * cfg.flights_per_aircraft as usize + flight) as u64;
    Profile::draw(&mut Rand::new(cfg.seed, profile_stream), cfg.flight_duration_s, cfg.flight_profile)
}

/// The phases of recording `index` with their durations, s, in flight order.
pub fn phase_durations(cfg: &SimConfig, index: usize) -> Vec<(&'static str, f64)> {
    let p = profile_of(cfg, index);
    p.segments
        .iter()
        .enumerate()
        .map(|(i, s)| (s.1, p.segments.get(i + 1).map_or(p.duration_s, |n| n.0) - s.0))
        .collect()
}

/// Duration of recording `index`, seconds.
pub fn duration_s(cfg: &SimConfig, index: usize) -> f64 {
    profile_of(cfg, index).duration_s
}

/// Draws the faults and events of recording `index` (its own random stream).
pub fn draw_plan(cfg: &SimConfig, index: usize) -> Plan {
    let dur = duration_s(cfg, index);
    let mut r = Rand::new(cfg.seed, 3_000_000 + index as u64);
    let engine_fault = r.chance(cfg.engine_fault_probability).then(|| {
        let kind = match r.int(0, 2) {
            0 => EngineFault::FanImbalance,
            1 => EngineFault::Misalignment { core: r.chance(0.5) },
            _ => EngineFault::BearingDefect,
        };
        let onset = r.range(0.15, 0.65) * dur;
        let severity = if r.chance(cfg.subtle_fraction) { r.range(0.1, 0.35) } else { r.range(0.35, 1.0) };
        (kind, onset, severity)
    });
    let sensor = r.chance(cfg.sensor_event_probability).then(|| {
        let kind = match r.int(0, 3) {
            0 => SensorEvent::Dropout,
            1 => SensorEvent::Spike,
            2 => SensorEvent::Stuck,
            _ => SensorEvent::Drift,
        };
        let ch = r.int(0, 1) as usize;
        let start = r.range(0.1, 0.8) * dur;
        let len = match kind {
            SensorEvent::Dropout | SensorEvent::Spike => r.range(10.0, 30.0),
            SensorEvent::Stuck => r.range(2.0, 8.0),
            SensorEvent::Drift => dur - start,
        };
        let magnitude = match kind {
            SensorEvent::Drift => r.range(0.05, 0.3) * if r.chance(0.5) { 1.0 } else { -1.0 },
            SensorEvent::Spike => r.range(2.0, 10.0),
            _ => 0.0,
        };
        (kind, ch, start, (start + len).min(dur), magnitude)
    });
    Plan { engine_fault, sensor }
}

/// N2 % on the working line for N1 %.
fn n2_pct(n1: f64) -> f64 {
    51.0 + 0.48 * n1
}

/// 8th-order Butterworth magnitude of the anti-aliasing filter at `f` (cut-off 0.35·fs).
fn aa_gain(f: f64, fs: f64) -> f64 {
    let x = f / (0.35 * fs);
    if f >= 0.48 * fs { 0.0 } else { 1.0 / libm::sqrt(1.0 + libm::pow(x, 16.0)) }
}

/// Simulates recording `index` of the fleet.
pub fn simulate_one(cfg: &SimConfig, index: usize) -> Simulated {
    render(cfg, index, &draw_plan(cfg, index))
}

/// Simulates recording `index` with the given faults. The engine, the flight profile and the
/// noise are those of `index` whatever the plan, so two plans differ only by their faults.
pub fn render(cfg: &SimConfig, index: usize, plan: &Plan) -> Simulated {
    let (aircraft, flight, engine_pos) = position(cfg, index);
    // Streams: engines and flight profiles get their own, so an engine's constants and an
    // aircraft flight's profile are the same whichever recording draws them.
    let engine_stream = 1_000_000 + (aircraft * cfg.engines_per_aircraft as usize + engine_pos) as u64;
    let engine = Engine::draw(&mut Rand::new(cfg.seed, engine_stream));
    let profile = profile_of(cfg, index);
    let mut r = Rand::new(cfg.seed, index as u64);
    let mut rb = Rand::new(cfg.seed, 4_000_000 + index as u64); // bearing impacts
    let mut re = Rand::new(cfg.seed, 5_000_000 + index as u64); // sensor events

    let ac = format!("AC{:02}", aircraft + 1);
    let engine_id = format!("{ac}-E{}", engine_pos + 1);
    let flight_id = format!("{ac}-F{:03}-E{}", flight + 1, engine_pos + 1);
    let dur = profile.duration_s;

    let fs = cfg.vibration_rate_hz;
    let dt = 1.0 / fs;
    let n = (dur * fs).floor() as usize;
    let mut vib = [vec![0f32; n], vec![0f32; n]];
    let mut n1_true = vec![0f64; n];
    let mut n2_true = vec![0f64; n];
    let (mut n1, mut n2) = (profile.at(0.0).1 * engine.n1_trim, n2_pct(profile.at(0.0).1));
    let (mut ph1, mut ph2, mut ph_bpf, mut ph_bearing) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    // Bearing resonator state.
    let (mut y1, mut y2) = (0.0f64, 0.0f64);
    let pole_r = libm::exp(-2.0 * PI * 0.08 * engine.resonance_hz * dt);
    let pole_c = 2.0 * pole_r * libm::cos(2.0 * PI * engine.resonance_hz * dt);
    let mut next_impact_jitter = 1.0 + 0.05 * rb.normal();
    let ramp = |t: f64, onset: f64, tau: f64| ((t - onset) / tau).clamp(0.0, 1.0);
    // Fault growth time: its own stream, drawn only for a range (the default 15 s draws nothing).
    let growth_s = match cfg.fault_growth_s {
        [a, b] if a == b => a,
        [a, b] => Rand::new(cfg.seed, 6_000_000 + index as u64).range(a, b),
    };
    let [p0, p1, p2, p3, p4, p5] = engine.phases;
    let (s0, c0) = libm::sincos(p0);
    let (s1, c1) = libm::sincos(p1);
    let (s2, c2) = libm::sincos(p2);
    let (s3, c3) = libm::sincos(p3);
    for i in 0..n {
        let t = i as f64 * dt;
        let (_, cmd) = profile.at(t);
        let cmd = cmd * engine.n1_trim;
        let tau1 = if cmd > n1 { 1.6 } else { 2.4 };
        n1 += (cmd - n1) * (dt / tau1);
        let cmd2 = n2_pct(n1);
        n2 += (cmd2 - n2) * (dt / 0.8);
        let f1 = n1 / 100.0 * N1_MAX_RPM / 60.0;
        let f2 = n2 / 100.0 * N2_MAX_RPM / 60.0;
        n1_true[i] = n1 / 100.0 * N1_MAX_RPM;
        n2_true[i] = n2 / 100.0 * N2_MAX_RPM;
        ph1 = (ph1 + 2.0 * PI * f1 * dt) % (2.0 * PI);
        ph2 = (ph2 + 2.0 * PI * f2 * dt) % (2.0 * PI);
        ph_bpf = (ph_bpf + 2.0 * PI * FAN_BLADES * f1 * dt) % (2.0 * PI);
        let (sa, ca) = libm::sincos(ph1);
        let (sb, cb) = libm::sincos(ph2);
        // sin(k·φ + θ) from sin φ, cos φ (double/triple angle), so one sincos per shaft.
        let sin_shift = |s: f64, c: f64, st: f64, ct: f64| s * ct + c * st;
        let (sa2, ca2) = (2.0 * sa * ca, ca * ca - sa * sa);
        let (sb2, cb2) = (2.0 * sb * cb, cb * cb - sb * sb);
        let sa3 = sa * (3.0 - 4.0 * sa * sa);
        let sb3 = sb * (3.0 - 4.0 * sb * sb);
        let load1 = (n1 / 100.0) * (n1 / 100.0);
        let load2 = (n2 / 100.0) * (n2 / 100.0);

        let (mut imb, mut mis_fan, mut mis_core, mut bearing) = (1.0, 1.0, 1.0, 0.0);
        if let Some((kind, onset, sev)) = plan.engine_fault {
            let g = ramp(t, onset, growth_s);
            match kind {
                EngineFault::FanImbalance => imb = 1.0 + 3.0 * sev * g,
                EngineFault::Misalignment { core: false } => mis_fan = 1.0 + 5.0 * sev * g,
                EngineFault::Misalignment { core: true } => mis_core = 1.0 + 5.0 * sev * g,
                EngineFault::BearingDefect => bearing = sev * g,
            }
        }
        let fan_1p = engine.fan_1p_g * load1 * imb;
        let fan_2p = engine.fan_1p_g * engine.fan_2p_ratio * load1 * mis_fan;
        let core_1p = engine.core_1p_g * load2;
        let core_2p = engine.core_1p_g * engine.core_2p_ratio * load2 * mis_core;
        let bpf = engine.bpf_g * load1 * aa_gain(FAN_BLADES * f1, fs) * libm::sin(ph_bpf + p4);

        // Bearing impacts: once per cage revolution, with ±5 % slip jitter.
        let mut impulse = 0.0;
        if bearing > 0.0 {
            ph_bearing += FTF_ORDER * f1 * dt;
            if ph_bearing >= next_impact_jitter {
                ph_bearing -= next_impact_jitter;
                next_impact_jitter = 1.0 + 0.05 * rb.normal();
                impulse = bearing * 3.0 * load1 * (0.8 + 0.4 * rb.unit());
            }
        }
        let y = pole_c * y1 - pole_r * pole_r * y2 + impulse;
        y2 = y1;
        y1 = y;

        let power = 0.3 + 0.7 * n1 / 100.0;
        let fan = engine.bias_g[0]
            + fan_1p * sin_shift(sa, ca, s0, c0)
            + fan_2p * sin_shift(sa2, ca2, s1, c1)
            + 0.3 * (mis_fan - 1.0) * fan_2p / mis_fan.max(1.0) * sa3
            + 0.2 * core_1p * sin_shift(sb, cb, s2, c2)
            + bpf
            + y
            + engine.noise_g * power * r.normal();
        let core = engine.bias_g[1]
            + core_1p * sin_shift(sb, cb, s3, c3)
            + core_2p * sin_shift(sb2, cb2, s1, c1)
            + 0.3 * (mis_core - 1.0) * core_2p / mis_core.max(1.0) * sb3
            + 0.15 * fan_1p * libm::sin(ph1 + p5)
            + 0.3 * y
            + engine.noise_g * power * r.normal();
        vib[0][i] = fan as f32;
        vib[1][i] = core as f32;
    }

    // Sensor events, applied to the measured signal.
    let mut labels = Vec::new();
    let label = |start: f64, end: f64, ft: &str, cat: FaultCategory, sev: f64| LabelInterval {
        flight_id: flight_id.clone(),
        start_s: start,
        end_s: end,
        fault_type: ft.to_string(),
        category: cat,
        severity: sev,
        row: 0,
    };
    if let Some((kind, onset, sev)) = plan.engine_fault {
        let name = match kind {
            EngineFault::FanImbalance => "fan_imbalance",
            EngineFault::Misalignment { .. } => "misalignment",
            EngineFault::BearingDefect => "bearing_defect",
        };
        labels.push(label(onset, n as f64 * dt, name, FaultCategory::Engine, sev));
    }
    if let Some((kind, ch, start, end, mag)) = plan.sensor {
        let (a, b) = ((start * fs) as usize, ((end * fs) as usize).min(n));
        let x = &mut vib[ch];
        let name = match kind {
            SensorEvent::Dropout => {
                let mut first = b;
                let mut last = a;
                // One dropout per slot of the interval, so runs never merge into one longer than
                // the contract allows.
                let k = re.int(3, 8) as usize;
                let slot = (b - a) / k;
                for j in 0..k {
                    // Mostly short dropouts (repaired), sometimes up to 0.4 s (windows invalid).
                    let len =
                        if re.chance(0.7) { re.int(1, 8) } else { re.int(20, (0.4 * fs) as u32) } as usize;
                    let len = len.min(slot / 2).max(1);
                    let at = a + j * slot + (re.unit() * (slot - len) as f64) as usize;
                    let end = (at + len).min(n);
                    x[at..end].fill(f32::NAN);
                    first = first.min(at);
                    last = last.max(end);
                }
                labels.push(label(
                    first as f64 * dt,
                    last as f64 * dt,
                    "sensor_dropout",
                    FaultCategory::Sensor,
                    1.0,
                ));
                None
            }
            SensorEvent::Spike => {
                for _ in 0..re.int(5, 20) {
                    let at = a + (re.unit() * (b - a) as f64) as usize;
                    let sign = if re.chance(0.5) { 1.0 } else { -1.0 };
                    x[at] = (f64::from(x[at]) + sign * mag * re.range(0.5, 1.0)) as f32;
                }
                Some("sensor_spike")
            }
            SensorEvent::Stuck => {
                let v = x[a];
                x[a..b].fill(v);
                Some("sensor_stuck")
            }
            SensorEvent::Drift => {
                let ramp_len = ((re.range(30.0, 60.0) * fs) as usize).max(1);
                for (k, v) in x[a..b].iter_mut().enumerate() {
                    *v = (f64::from(*v) + mag * (k as f64 / ramp_len as f64).min(1.0)) as f32;
                }
                Some("sensor_drift")
            }
        };
        if let Some(name) = name {
            labels.push(label(a as f64 * dt, b as f64 * dt, name, FaultCategory::Sensor, 1.0));
        }
    }

    // Speed sensors: their own clock, offset from the vibration clock.
    let offset = r.range(0.0, 0.06);
    let period = 1.0 / cfg.speed_rate_hz;
    let n_speed = ((dur - offset) / period).floor() as usize;
    let speed_times: Vec<f64> = (0..n_speed).map(|k| offset + k as f64 * period).collect();
    let measure = |truth: &[f64], r: &mut Rand| -> Vec<f32> {
        speed_times
            .iter()
            .map(|&t| {
                let i = ((t * fs) as usize).min(n - 1);
                (truth[i] * (1.0 + 0.0005 * r.normal())) as f32
            })
            .collect()
    };
    let n1_meas = measure(&n1_true, &mut r);
    let n2_meas = measure(&n2_true, &mut r);
    let phase_period = 1.0 / cfg.phase_rate_hz;
    let phase_times: Vec<f64> =
        (0..((dur / phase_period).floor() as usize)).map(|k| k as f64 * phase_period).collect();
    let phases: Vec<String> = phase_times.iter().map(|&t| profile.at(t).0.to_string()).collect();

    let vib_times: Vec<f64> = (0..n).map(|i| i as f64 * dt).collect();
    let ch = |name: &str, unit: &str, rate: f64, start: f64| ChannelMeta {
        name: name.into(),
        unit: unit.into(),
        sample_rate_hz: rate,
        start_s: start,
    };
    let data = |times: &Vec<f64>, samples: Samples| ChannelData {
        rows: vec![0; times.len()],
        times_s: times.clone(),
        samples,
    };
    let [fan, core] = vib;
    let recording = Recording {
        meta: RecordingMeta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            aircraft_id: ac,
            engine_id,
            flight_id,
            source: format!(
                "avm simulate seed={} index={index} (takeoff at {:.1} s, cruise at {:.1} s)",
                cfg.seed,
                profile.phase_start("takeoff"),
                profile.phase_start("cruise")
            ),
            channels: vec![
                ch("vib_fan", "g", fs, 0.0),
                ch("vib_core", "g", fs, 0.0),
                ch("n1_rpm", "rpm", cfg.speed_rate_hz, offset),
                ch("n2_rpm", "rpm", cfg.speed_rate_hz, offset),
                ch("phase", "-", cfg.phase_rate_hz, 0.0),
            ],
            content_crc32: None,
            attributes: Default::default(),
        },
        data: vec![
            data(&vib_times, Samples::Numeric(fan)),
            data(&vib_times, Samples::Numeric(core)),
            data(&speed_times, Samples::Numeric(n1_meas)),
            data(&speed_times, Samples::Numeric(n2_meas)),
            data(&phase_times, Samples::Text(phases)),
        ],
        path: PathBuf::new(),
    };
    Simulated { recording, labels }
}

/// The fleet's summary and all its labels, from each recording's duration (s) and labels, in
/// recording order.
pub fn summarise(
    cfg: &SimConfig,
    results: Vec<(f64, Vec<LabelInterval>)>,
) -> (FleetSummary, Vec<LabelInterval>) {
    let recordings = results.len();
    let mut labels = Vec::new();
    let mut seconds = 0.0;
    let (mut with_engine, mut with_sensor) = (0, 0);
    for (d, l) in results {
        seconds += d;
        with_engine += usize::from(l.iter().any(|l| l.category == FaultCategory::Engine));
        with_sensor += usize::from(l.iter().any(|l| l.category == FaultCategory::Sensor));
        labels.extend(l);
    }
    let mut engine_faults: Vec<(String, usize, usize)> = Vec::new();
    let mut sensor_events: Vec<(String, usize)> = Vec::new();
    for l in &labels {
        match l.category {
            FaultCategory::Engine => {
                let subtle = usize::from(l.severity < 0.35);
                match engine_faults.iter_mut().find(|e| e.0 == l.fault_type) {
                    Some(e) => {
                        e.1 += subtle;
                        e.2 += 1 - subtle;
                    }
                    None => engine_faults.push((l.fault_type.clone(), subtle, 1 - subtle)),
                }
            }
            FaultCategory::Sensor => match sensor_events.iter_mut().find(|e| e.0 == l.fault_type) {
                Some(e) => e.1 += 1,
                None => sensor_events.push((l.fault_type.clone(), 1)),
            },
        }
    }
    engine_faults.sort();
    sensor_events.sort();
    let summary = FleetSummary {
        config: cfg.clone(),
        recordings,
        hours: seconds / 3600.0,
        with_engine_fault: with_engine,
        with_sensor_event: with_sensor,
        engine_faults,
        sensor_events,
    };
    (summary, labels)
}

/// Checks the config and returns the recording indices to simulate.
pub fn plan(cfg: &SimConfig) -> Result<std::ops::Range<usize>> {
    cfg.check()?;
    Ok(0..cfg.recordings())
}

/// What `avm simulate` wrote (also saved as `fleet.json` beside the recordings).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FleetSummary {
    /// The config used.
    pub config: SimConfig,
    /// Recordings written.
    pub recordings: usize,
    /// Total vibration duration, hours.
    pub hours: f64,
    /// Recordings with an engine fault.
    pub with_engine_fault: usize,
    /// Recordings with a sensor event.
    pub with_sensor_event: usize,
    /// Engine faults by type and severity class: (type, subtle count, gross count).
    pub engine_faults: Vec<(String, usize, usize)>,
    /// Sensor events by type.
    pub sensor_events: Vec<(String, usize)>,
}

impl std::fmt::Display for FleetSummary {
    /// What `avm simulate` reports: counts, hours, and faults and events by type.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "simulated {} recordings ({:.2} h of vibration): {} with an engine fault, {} with a sensor event",
            self.recordings, self.hours, self.with_engine_fault, self.with_sensor_event
        )?;
        for (t, subtle, gross) in &self.engine_faults {
            write!(f, "\n  engine fault {t:<16} {subtle} subtle, {gross} gross")?;
        }
        for (t, n) in &self.sensor_events {
            write!(f, "\n  sensor event {t:<16} {n}")?;
        }
        Ok(())
    }
}

/// Simulates the fleet into `out` (`recordings/*.parquet`, `labels.csv`, `fleet.json`),
/// replacing it atomically.
pub fn run(cfg: &SimConfig, out: &std::path::Path) -> Result<FleetSummary> {
    use rayon::prelude::*;
    let indices = plan(cfg)?;
    let pb = crate::stages::progress(indices.len(), "simulate");
    crate::io::replace_dir_atomic(out, |staging| {
        let results: Vec<Result<(f64, Vec<LabelInterval>)>> = indices
            .clone()
            .into_par_iter()
            .map(|i| {
                let sim = simulate_one(cfg, i);
                let dest =
                    staging.join("recordings").join(format!("{}.parquet", sim.recording.meta.flight_id));
                crate::formats::recording::write_parquet(&sim.recording, &dest)?;
                pb.inc(1);
                let (a, b) = sim.recording.span_s();
                Ok((b - a, sim.labels))
            })
            .collect();
        pb.finish_and_clear();
        let (summary, labels) = summarise(cfg, results.into_iter().collect::<Result<Vec<_>>>()?);
        crate::formats::labels::write(&staging.join(crate::layout::LABELS_CSV), &labels)?;
        crate::io::write_bytes_atomic(
            &staging.join(crate::layout::FLEET_JSON),
            serde_json::to_string_pretty(&summary)?.as_bytes(),
        )?;
        Ok(summary)
    })
}
