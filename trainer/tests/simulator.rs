//! The fleet simulator: determinism, and that each injected fault moves the features it should
//! (computed by avm-core through the trainer's sync + extract path, as preprocess does).

use avm_core::{Feature, TimeKind};
use avm_trainer::config::{FeatureSettings, extractor_at};
use avm_trainer::formats::contract::Contract;
use avm_trainer::formats::recording::Samples;
use avm_trainer::stages::extract::{self, Frame};
use avm_trainer::stages::simulate::{self, EngineFault, Plan, SensorEvent, SimConfig};
use avm_trainer::stages::{sync, validate};
use std::path::Path;

mod common;

fn cfg() -> SimConfig {
    SimConfig {
        seed: 7,
        aircraft: 2,
        engines_per_aircraft: 2,
        flights_per_aircraft: 2,
        flight_duration_s: [150.0, 170.0],
        vibration_rate_hz: 2048.0,
        speed_rate_hz: 16.0,
        phase_rate_hz: 1.0,
        engine_fault_probability: 0.5,
        sensor_event_probability: 0.5,
        subtle_fraction: 0.5,
        flight_profile: Default::default(),
        fault_growth_s: [15.0, 15.0],
        stream: false,
    }
}

fn contract() -> Contract {
    Contract::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/contracts/engine_vibration.yaml"))
        .unwrap()
}

/// The small test config's feature settings.
fn params() -> FeatureSettings {
    common::small_config().features
}

fn frames(plan: &Plan) -> (Vec<Frame>, avm_trainer::formats::recording::Recording) {
    let sim = simulate::render(&cfg(), 0, plan);
    let c = contract();
    let mut rec = sim.recording;
    rec.path = "sim.parquet".into();
    assert!(validate::recording(&c, &rec).is_empty(), "{:?}", validate::recording(&c, &rec));
    let s = sync::synchronise(&rec, &c).unwrap();
    let (f, _) = extract::extract(&s, extractor_at(&params(), 2048.0).unwrap(), false).unwrap();
    (f, rec)
}

fn feature(f: &Frame, channel: usize, kind: Feature) -> f32 {
    let set = extractor_at(&params(), 2048.0).unwrap().features;
    f.features[channel * set.per_channel() + set.index_of(kind).expect("in the test set")]
}

/// The 1P and 2P energies (dB re 1 g²) of the test set (orders 0.5, 1, 2, 3) and time features.
const ORDER1: Feature = Feature::Order(1);
const ORDER2: Feature = Feature::Order(2);
const RMS: Feature = Feature::Time(TimeKind::RmsG);
const KURTOSIS: Feature = Feature::Time(TimeKind::Kurtosis);
const CREST: Feature = Feature::Time(TimeKind::CrestFactor);
const MEAN: Feature = Feature::Time(TimeKind::MeanG);

/// Mean of a feature over the windows that start after `after_s` (all of them fully faulty).
fn mean_after(frames: &[Frame], after_s: f64, channel: usize, kind: Feature) -> f64 {
    let sel: Vec<f64> = frames
        .iter()
        .filter(|f| f.start_sample as f64 / 2048.0 >= after_s)
        .map(|f| f64::from(feature(f, channel, kind)))
        .collect();
    assert!(!sel.is_empty());
    sel.iter().sum::<f64>() / sel.len() as f64
}

const NONE: Plan = Plan { engine_fault: None, sensor: None };

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let s1 = simulate::run(&cfg(), &a).unwrap();
    simulate::run(&cfg(), &b).unwrap();
    assert_eq!(s1.recordings, 8);
    let mut names: Vec<_> =
        std::fs::read_dir(a.join("recordings")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names.len(), 8);
    for n in &names {
        assert_eq!(
            std::fs::read(a.join("recordings").join(n)).unwrap(),
            std::fs::read(b.join("recordings").join(n)).unwrap(),
            "{n:?} differs between two runs with the same seed"
        );
    }
    assert_eq!(std::fs::read(a.join("labels.csv")).unwrap(), std::fs::read(b.join("labels.csv")).unwrap());
    let other = SimConfig { seed: 8, ..cfg() };
    let x = simulate::simulate_one(&cfg(), 0).recording;
    let y = simulate::simulate_one(&other, 0).recording;
    assert_ne!(x.data[0].samples, y.data[0].samples);
}

#[test]
fn speeds_follow_the_flight_profile() {
    let sim = simulate::render(&cfg(), 0, &NONE);
    let (_, _, n1) = sim.recording.numeric("n1_rpm").unwrap();
    let (_, _, n2) = sim.recording.numeric("n2_rpm").unwrap();
    let max = n1.iter().cloned().fold(0.0f32, f32::max);
    let first = n1[0];
    // Idle ~20-25 % of 5200 rpm at the start, take-off ~95-100 % somewhere.
    assert!((0.19..0.26).contains(&(first / 5200.0)), "idle N1 {first}");
    assert!((0.93..1.01).contains(&(max / 5200.0)), "take-off N1 {max}");
    assert!(n2.iter().zip(n1).all(|(b, a)| b > a), "the core spool turns faster than the fan");
    let Samples::Text(phases) = &sim.recording.data[4].samples else { panic!() };
    for p in ["taxi", "takeoff", "climb", "cruise", "descent", "approach", "landing"] {
        assert!(phases.iter().any(|x| x == p), "phase {p} missing");
    }
}

#[test]
fn fan_imbalance_raises_fan_1p() {
    let onset = 40.0;
    let (clean, _) = frames(&NONE);
    let (faulty, _) =
        frames(&Plan { engine_fault: Some((EngineFault::FanImbalance, onset, 0.8)), sensor: None });
    let after = onset + 15.0;
    let (a, b) = (mean_after(&clean, after, 0, ORDER1), mean_after(&faulty, after, 0, ORDER1));
    assert!(b > a + 3.0, "1P energy {a} dB -> {b} dB");
    let (a, b) = (mean_after(&clean, after, 0, RMS), mean_after(&faulty, after, 0, RMS));
    assert!(b > 1.5 * a, "rms {a} -> {b}");
    // Before the onset nothing differs: same engine, profile and noise.
    assert_eq!(clean[0].features, faulty[0].features);
}

#[test]
fn misalignment_raises_2p() {
    let onset = 40.0;
    let (clean, _) = frames(&NONE);
    let (faulty, _) = frames(&Plan {
        engine_fault: Some((EngineFault::Misalignment { core: false }, onset, 0.8)),
        sensor: None,
    });
    let (a, b) = (mean_after(&clean, 55.0, 0, ORDER2), mean_after(&faulty, 55.0, 0, ORDER2));
    assert!(b > a + 3.0, "fan 2P energy {a} dB -> {b} dB");
    let (faulty, _) = frames(&Plan {
        engine_fault: Some((EngineFault::Misalignment { core: true }, onset, 0.8)),
        sensor: None,
    });
    let (a, b) = (mean_after(&clean, 55.0, 1, ORDER2), mean_after(&faulty, 55.0, 1, ORDER2));
    assert!(b > a + 3.0, "core 2P energy {a} dB -> {b} dB");
}

#[test]
fn bearing_defect_is_impulsive() {
    let onset = 40.0;
    let (clean, _) = frames(&NONE);
    let (faulty, _) =
        frames(&Plan { engine_fault: Some((EngineFault::BearingDefect, onset, 0.8)), sensor: None });
    let (a, b) = (mean_after(&clean, 55.0, 0, KURTOSIS), mean_after(&faulty, 55.0, 0, KURTOSIS));
    assert!(b > a + 1.0, "fan kurtosis {a} -> {b}");
    let (a, b) = (mean_after(&clean, 55.0, 0, CREST), mean_after(&faulty, 55.0, 0, CREST));
    assert!(b > a * 1.3, "fan crest factor {a} -> {b}");
}

#[test]
fn sensor_events_show_as_data_quality() {
    // Spikes on the fan sensor: replaced by the core's sanitiser (isolated glitches).
    let (f, _) = frames(&Plan { engine_fault: None, sensor: Some((SensorEvent::Spike, 0, 60.0, 90.0, 8.0)) });
    let clipped: u32 = f.iter().map(|w| w.quality[0].clipped).sum();
    assert!(clipped > 0, "no spike clipped");
    // Dropouts: repaired or unrepaired samples.
    let (f, _) =
        frames(&Plan { engine_fault: None, sensor: Some((SensorEvent::Dropout, 1, 60.0, 90.0, 0.0)) });
    let touched: u32 = f.iter().map(|w| w.quality[1].gap_filled + w.quality[1].unrepaired).sum();
    assert!(touched > 0, "no dropout seen");
    // Drift: the mean moves by the drift magnitude.
    let (clean, _) = frames(&NONE);
    let (f, _) =
        frames(&Plan { engine_fault: None, sensor: Some((SensorEvent::Drift, 0, 30.0, 150.0, 0.3)) });
    let (a, b) = (mean_after(&clean, 100.0, 0, MEAN), mean_after(&f, 100.0, 0, MEAN));
    assert!((b - a - 0.3).abs() < 0.02, "mean {a} -> {b}");
    // Stuck: the samples of the interval are constant.
    let (_, rec) =
        frames(&Plan { engine_fault: None, sensor: Some((SensorEvent::Stuck, 1, 70.0, 75.0, 0.0)) });
    let (_, _, x) = rec.numeric("vib_core").unwrap();
    let seg = &x[(70.0 * 2048.0) as usize..(75.0 * 2048.0) as usize - 1];
    assert!(seg.iter().all(|v| *v == seg[0]));
}

#[test]
fn labels_mark_engine_faults_and_sensor_events_apart() {
    let sim = simulate::render(
        &cfg(),
        1,
        &Plan {
            engine_fault: Some((EngineFault::FanImbalance, 50.0, 0.2)),
            sensor: Some((SensorEvent::Spike, 1, 20.0, 40.0, 5.0)),
        },
    );
    assert_eq!(sim.labels.len(), 2);
    assert_eq!(sim.labels[0].fault_type, "fan_imbalance");
    assert_eq!(sim.labels[0].category, avm_trainer::formats::contract::FaultCategory::Engine);
    assert_eq!(sim.labels[1].fault_type, "sensor_spike");
    assert_eq!(sim.labels[1].category, avm_trainer::formats::contract::FaultCategory::Sensor);
}

/// The `realistic` profile: hours-long flights, mostly cruise, real take-off and landing
/// lengths; fault growth drawn from its range. The profiles are drawn without generating samples.
#[test]
fn realistic_profile_is_mostly_cruise_and_growth_is_drawn() {
    use avm_trainer::config::FlightProfile;
    let c = SimConfig {
        flight_duration_s: [5400.0, 9000.0],
        flight_profile: FlightProfile::Realistic,
        fault_growth_s: [60.0, 600.0],
        ..cfg()
    };
    c.check().unwrap();
    for i in 0..c.recordings() {
        let d = avm_trainer::stages::simulate::duration_s(&c, i);
        assert!((5400.0..=9000.0).contains(&d), "{d}");
        let phases = avm_trainer::stages::simulate::phase_durations(&c, i);
        let cruise: f64 = phases.iter().filter(|(n, _)| *n == "cruise").map(|p| p.1).sum();
        let takeoff: f64 = phases.iter().filter(|(n, _)| *n == "takeoff").map(|p| p.1).sum();
        assert!(cruise / d > 0.3, "cruise {cruise} of {d}");
        assert!((40.0..=60.0).contains(&takeoff), "take-off {takeoff} s");
    }
    // The default (scaled) profile is unchanged: the default fleet's data does not move.
    let scaled = avm_trainer::stages::simulate::phase_durations(&cfg(), 0);
    let total: f64 = scaled.iter().map(|p| p.1).sum();
    assert!((150.0..=170.0).contains(&total), "{total}");
    // Too short for the realistic profile: refused with the rule.
    let short = SimConfig { flight_profile: FlightProfile::Realistic, ..cfg() };
    let e = short.check().unwrap_err().to_string();
    assert!(e.contains("4500 <= min") && e.contains("Realistic"), "{e}");
}
