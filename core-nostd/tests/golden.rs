//! avm-core against the float64 numpy/scipy reference (`core-nostd/reference/features_ref.py`).
//!
//! Tolerances (per feature, per window; `s` is the window's RMS, the scale of the signal):
//! - mean_g: |Δ| <= 1e-5·s; std_g, rms_g: relative 1e-5; peak_g: relative 1e-6;
//! - crest_factor: relative 1e-5; kurtosis: relative 1e-4;
//! - order ratios: absolute 1e-5 (microfft differs from numpy's float64 FFT by ~1e-6 of ||x||);
//! - rates of change: the above on each operand, divided by hop_s;
//! - shaft_speed_rpm: relative 1e-6;
//! - sanitiser counts, `valid` and `roc_valid`: exact.
//!
//! The worst case of every feature over all cases is printed (`cargo test -- --nocapture`).

use avm_core::{ExtractorConfig, FEATURES_PER_CHANNEL, FeatureExtractor, FeatureFrame, FeatureKind};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() % 4, 0, "{}: not a whole number of f32", path.display());
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn config(v: &Value) -> ExtractorConfig {
    let u = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("config.{k}")) as u32;
    let f = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("config.{k}")) as f32;
    ExtractorConfig {
        sample_rate_hz: u("sample_rate_hz"),
        window_len_samples: u("window_len_samples"),
        hop_len_samples: u("hop_len_samples"),
        fft_len: u("fft_len"),
        order_band_bins: u("order_band_bins"),
        max_gap_samples: u("max_gap_samples"),
        spike_k_sigma: f("spike_k_sigma"),
        full_scale_g: f("full_scale_g"),
        max_shaft_speed_rpm: f("max_shaft_speed_rpm"),
    }
}

/// Per frame: window index, valid, roc_valid, flat features, per-channel counts.
type Got = Vec<(u32, bool, bool, Vec<f32>, Vec<[u32; 4]>)>;

fn run<const CH: usize>(cfg: ExtractorConfig, vib: &[f32], rpm: &[f32]) -> Got {
    let mut fx = FeatureExtractor::<CH, 1024>::new(cfg).expect("golden config is valid");
    let mut frames: Vec<FeatureFrame<CH>> = Vec::new();
    for (v, r) in vib.chunks_exact(CH).zip(rpm.chunks_exact(CH)) {
        let v: [f32; CH] = v.try_into().unwrap();
        let r: [f32; CH] = r.try_into().unwrap();
        frames.extend(fx.push(&v, &r));
    }
    frames.extend(fx.finish());
    frames
        .iter()
        .map(|f| {
            let q = f.quality.iter().map(|q| [q.gap_filled, q.clipped, q.unrepaired, q.speed_held]).collect();
            (f.window_index, f.valid, f.roc_valid, f.as_slice().to_vec(), q)
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Worst {
    ratio_of_tolerance: f64,
    abs: f64,
}

#[test]
fn features_match_numpy_reference() {
    let mut cases: Vec<_> = std::fs::read_dir(golden_dir()).expect("tests/golden exists").flatten().collect();
    cases.sort_by_key(|e| e.file_name());
    assert!(cases.len() >= 8, "expected the golden cases of features_ref.py");
    let mut worst = [Worst::default(); FEATURES_PER_CHANNEL];
    let mut failures = Vec::new();
    for case in cases {
        let dir = case.path();
        let name = case.file_name().to_string_lossy().into_owned();
        let exp: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let cfg = config(&exp["config"]);
        let channels = exp["channels"].as_u64().unwrap() as usize;
        let vib = read_f32(&dir.join("vib.f32"));
        let rpm = read_f32(&dir.join("rpm.f32"));
        assert_eq!(vib.len(), channels * exp["n_samples"].as_u64().unwrap() as usize, "{name}");
        let got = match channels {
            1 => run::<1>(cfg, &vib, &rpm),
            2 => run::<2>(cfg, &vib, &rpm),
            c => panic!("{name}: {c} channels not wired into this test"),
        };
        let frames = exp["frames"].as_array().unwrap();
        assert_eq!(got.len(), frames.len(), "{name}: number of windows");
        let hop_s = cfg.hop_s();
        for ((index, valid, roc_valid, feats, quality), ef) in got.iter().zip(frames) {
            let w = ef["window_index"].as_u64().unwrap() as u32;
            assert_eq!(*index, w, "{name}");
            assert_eq!(*valid, ef["valid"].as_bool().unwrap(), "{name} window {w}: valid");
            assert_eq!(*roc_valid, ef["roc_valid"].as_bool().unwrap(), "{name} window {w}: roc_valid");
            for (c, ec) in ef["channels"].as_array().unwrap().iter().enumerate() {
                let q = &ec["quality"];
                let eq = ["gap_filled", "clipped", "unrepaired", "speed_held"]
                    .map(|k| q[k].as_u64().unwrap() as u32);
                assert_eq!(
                    quality[c], eq,
                    "{name} window {w} channel {c}: quality [filled, clipped, unrepaired, speed_held]"
                );
                let e: Vec<f64> =
                    ec["features"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                let scale = e[FeatureKind::RmsG.index()].abs().max(1e-30);
                for kind in FeatureKind::ALL {
                    let k = kind.index();
                    let g = f64::from(feats[c * FEATURES_PER_CHANNEL + k]);
                    let tol = match kind {
                        FeatureKind::MeanG => 1e-5 * scale,
                        FeatureKind::StdG | FeatureKind::RmsG | FeatureKind::CrestFactor => 1e-5 * e[k].abs(),
                        FeatureKind::PeakG => 1e-6 * e[k].abs(),
                        FeatureKind::Kurtosis => 1e-4 * e[k].abs(),
                        FeatureKind::Order1Ratio | FeatureKind::Order2Ratio => 1e-5,
                        FeatureKind::RmsRocGPerS => 2e-5 * scale / hop_s,
                        FeatureKind::Order1RatioRocPerS => 2e-5 / hop_s,
                        FeatureKind::ShaftSpeedRpm => 1e-6 * e[k].abs(),
                    }
                    .max(1e-12);
                    let d = (g - e[k]).abs();
                    let r = d / tol;
                    if r > worst[k].ratio_of_tolerance {
                        worst[k] = Worst { ratio_of_tolerance: r, abs: d };
                    }
                    if d.is_nan() || d > tol {
                        failures.push(format!(
                            "{name} window {w} channel {c} {}: got {g:e}, reference {:e}, |diff| {d:e} > tol {tol:e}",
                            kind.suffix(),
                            e[k]
                        ));
                    }
                }
            }
        }
    }
    println!("worst case per feature (|diff| and as a fraction of its tolerance):");
    for kind in FeatureKind::ALL {
        let w = worst[kind.index()];
        println!("  {:<24} {:>10.3e}  {:>6.3}", kind.suffix(), w.abs, w.ratio_of_tolerance);
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
