//! Streams a synthetic 90 s engine run through avm-core and prints one line per window.
//!
//! `cargo run --release -p avm-core --example stream`
//!
//! Two accelerometers at 2048 Hz (fan and core casing), each referenced to its shaft (N1, N2).
//! The run: 20 s at idle, a 10 s spool-up to take-off power, then cruise; a fan imbalance grows
//! from 60 s on (the fan 1P amplitude triples), and the fan channel has sensor glitches: a
//! 5-sample dropout (repaired), a single-sample glitch (replaced) and a 40-sample dropout (the
//! windows it touches are invalid). Deterministic: no RNG crate, a fixed xorshift.

use avm_core::{ExtractorConfig, Feature, FeatureExtractor, TimeKind};
use core::f32::consts::PI;

const RATE_HZ: u32 = 2048;
const SECONDS: u32 = 90;

/// N1 (fan) speed in rpm at time t: idle 25 %, spool-up, take-off 97 %, cruise 85 % of 5000 rpm.
fn n1_rpm(t: f32) -> f32 {
    let pct = if t < 20.0 {
        25.0
    } else if t < 30.0 {
        25.0 + (97.0 - 25.0) * (t - 20.0) / 10.0
    } else if t < 50.0 {
        97.0
    } else {
        85.0
    };
    5000.0 * pct / 100.0
}

fn main() {
    let cfg = ExtractorConfig::default_at(RATE_HZ).expect("defaults are valid at 2048 Hz");
    let at = |f: Feature| cfg.features.index_of(f).expect("in the default set");
    let (rms, one_p, two_p, kurt) = (
        at(Feature::Time(TimeKind::RmsG)),
        at(Feature::Order(1)), // default orders: 0.5, 1, 2, 3
        at(Feature::Order(2)),
        at(Feature::Time(TimeKind::Kurtosis)),
    );
    let mut fx = FeatureExtractor::<2, 1024>::new(cfg).expect("valid config");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0
    };
    let (mut phase1, mut phase2) = (0.0f32, 0.0f32);
    println!(
        "{:>5} {:>6} {:>5} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} | fan: filled/clipped/unrepaired",
        "t_s", "valid", "roc", "fan_rms", "fan_1P_dB", "fan_2P_dB", "fan_kurt", "core_rms", "core_1P_dB"
    );
    let dt = 1.0 / RATE_HZ as f32;
    let print = |f: avm_core::FeatureFrame<2>| {
        let t = f.start_sample as f32 / RATE_HZ as f32;
        let g = |c, k| f.get(c, k).unwrap_or(f32::NAN);
        let q = f.quality[0];
        println!(
            "{:>5.0} {:>6} {:>5} | {:>8.4} {:>8.2} {:>8.2} {:>8.3} | {:>8.4} {:>8.2} | {}/{}/{}",
            t,
            f.valid,
            f.roc_valid,
            g(0, rms),
            g(0, one_p),
            g(0, two_p),
            g(0, kurt),
            g(1, rms),
            g(1, one_p),
            q.gap_filled,
            q.clipped,
            q.unrepaired,
        );
    };
    for n in 0..RATE_HZ * SECONDS {
        let t = n as f32 * dt;
        let n1 = n1_rpm(t);
        let n2 = 2.6 * n1 + 3000.0; // the core spool turns faster
        phase1 = (phase1 + 2.0 * PI * n1 / 60.0 * dt) % (2.0 * PI);
        phase2 = (phase2 + 2.0 * PI * n2 / 60.0 * dt) % (2.0 * PI);
        let load = n1 / 5000.0;
        let imbalance = if t >= 60.0 { 3.0 } else { 1.0 };
        let mut fan = 0.3 * imbalance * load * libm::sinf(phase1)
            + 0.08 * load * libm::sinf(2.0 * phase1 + 0.3)
            + 0.05 * noise();
        let core = 0.2 * load * libm::sinf(phase2) + 0.04 * libm::sinf(2.0 * phase2) + 0.05 * noise();
        match n {
            40_000..40_005 => fan = f32::NAN,
            70_000 => fan = 4.0,
            150_000..150_040 => fan = f32::NAN,
            _ => {}
        }
        if let Some(frame) = fx.push(&[fan, core], &[n1, n2]) {
            print(frame);
        }
    }
    if let Some(frame) = fx.finish() {
        print(frame);
    }
}
