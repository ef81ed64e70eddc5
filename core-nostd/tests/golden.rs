//! avm-core against the float64 numpy/scipy reference (`core-nostd/reference/features_ref.py`).
//!
//! Tolerances (per feature, per window; `s` is the window's RMS, the scale of the signal, `v`
//! its variance):
//! - mean_g: |Δ| <= 1e-5·s; std_g, rms_g, crest_factor: relative 1e-5; peak_g, p2p_g: relative
//!   1e-6; kurtosis: relative 1e-4; skewness: 1e-4·|skew| + 1e-4 (a difference of third moments);
//! - band and order energies in dB: on the energies `E = 10^(dB/10)`, |ΔE| <= 1e-5·E + 1e-7·v
//!   (microfft's f32 transform leaks ~1e-7 of the signal's power into quiet bins); as fractions:
//!   absolute 1e-5;
//! - centroid_hz: relative 1e-5; flatness: relative 1e-4;
//! - envelope: env_rms_g, env_kurtosis relative 1e-5; envelope-order energies (as g²) 1e-5·E +
//!   1e-6·env_rms²;
//! - rates of change: the above on each operand, divided by hop_s;
//! - shaft_speed_rpm: relative 1e-6;
//! - sanitiser counts, `valid` and `roc_valid`: exact.
//!
//! The worst case of every kind of feature over all cases is printed (`cargo test -- --nocapture`).

use avm_core::{
    ExtractorConfig, Families, FeatureExtractor, FeatureFrame, FeatureSet, SpectralScale, SpikePolicy,
    feature_name,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Relative tolerance of the envelope features: the core runs its IIR filters in `f32`, the
/// reference in `f64` (with the same `f32` coefficients); measured worst 1e-7 relative.
const ENV_REL: f64 = 1e-5;

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
    let list = |k: &str| -> Vec<f32> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("config.{k}"))
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let mut set = FeatureSet::EMPTY;
    for fam in v["families"].as_array().expect("config.families") {
        let bit = match fam.as_str().unwrap() {
            "time" => Families::TIME,
            "rates" => Families::RATES,
            "bands" => Families::BANDS,
            "orders" => Families::ORDERS,
            "shape" => Families::SHAPE,
            "speed" => Families::SPEED,
            "envelope" => Families::ENVELOPE,
            other => panic!("unknown family {other}"),
        };
        set.families = set.families.with(bit);
    }
    set.scale = match v["scale"].as_str().unwrap() {
        "db" => SpectralScale::Db,
        _ => SpectralScale::Fraction,
    };
    let edges = list("band_edges_hz");
    set.band_count = (edges.len() - 1) as u8;
    set.band_edges_hz[..edges.len()].copy_from_slice(&edges);
    let orders = list("orders");
    set.order_count = orders.len() as u8;
    set.orders[..orders.len()].copy_from_slice(&orders);
    set.order_half_width = f("order_half_width");
    let band = list("env_band_hz");
    set.env_band_hz = [band[0], band[1]];
    set.env_decimation = u("env_decimation") as u16;
    set.env_fft_len = u("env_fft_len") as u16;
    let env_orders = list("env_orders");
    set.env_order_count = env_orders.len() as u8;
    set.env_orders[..env_orders.len()].copy_from_slice(&env_orders);
    ExtractorConfig {
        sample_rate_hz: u("sample_rate_hz"),
        window_len_samples: u("window_len_samples"),
        hop_len_samples: u("hop_len_samples"),
        fft_len: u("fft_len"),
        order_band_bins: u("order_band_bins"),
        max_gap_samples: u("max_gap_samples"),
        spike_policy: match v["spike_policy"].as_str().unwrap() {
            "off" => SpikePolicy::Off,
            "isolated" => SpikePolicy::Isolated,
            _ => SpikePolicy::KSigma,
        },
        spike_k_sigma: f("spike_k_sigma"),
        full_scale_g: f("full_scale_g"),
        max_shaft_speed_rpm: f("max_shaft_speed_rpm"),
        features: set,
    }
}

/// Per frame: window index, valid, roc_valid, flat features, per-channel counts.
type Got = Vec<(u32, bool, bool, Vec<f32>, Vec<[u32; 4]>)>;

/// Runs the extractor with the smallest capacity that holds the case: 1024 points (the
/// firmware's) or, for the long-FFT cases, 16384 (needs the `fft-32768` feature, which this
/// crate's dev-dependency on itself turns on).
fn run<const CH: usize>(cfg: ExtractorConfig, vib: &[f32], rpm: &[f32]) -> Got {
    if cfg.fft_len > 1024 {
        run_with::<CH, 16384>(cfg, vib, rpm)
    } else {
        run_with::<CH, 1024>(cfg, vib, rpm)
    }
}

fn run_with<const CH: usize, const FFT_MAX: usize>(cfg: ExtractorConfig, vib: &[f32], rpm: &[f32]) -> Got {
    let mut fx = Box::new(FeatureExtractor::<CH, FFT_MAX, 1024>::new(cfg).expect("golden config is valid"));
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
            (f.window_index, f.valid, f.roc_valid, f.flat().collect(), q)
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
    let mut worst: BTreeMap<String, Worst> = BTreeMap::new();
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
        let long_fft = f64::from(cfg.fft_len.max(4096)) / 4096.0;
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
                let set = &cfg.features;
                let names: Vec<String> =
                    set.iter().map(|k| feature_name("x", set, k).unwrap()[2..].to_string()).collect();
                let expected_names: Vec<&str> =
                    exp["feature_names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
                assert_eq!(names, expected_names, "{name}: feature names");
                assert_eq!(e.len(), names.len(), "{name}: feature count");
                let at = |n: &str| names.iter().position(|x| x == n).map(|k| e[k]);
                // The scales come from the reference's own time-domain values where the layout has
                // them; layouts without them are checked on their spectral values only.
                let scale = at("rms_g").unwrap_or(1.0).abs().max(1e-30);
                let var = at("std_g").map_or(1.0, |s| s * s);
                let kurt = at("kurtosis").unwrap_or(3.0).abs();
                let per = set.per_channel();
                for (k, n) in names.iter().enumerate() {
                    let g = f64::from(feats[c * per + k]);
                    let x = e[k];
                    let (class, d, tol) = if n.starts_with("env_order") && n.ends_with("_db") {
                        let (eg, ex) = (10f64.powf(g / 10.0), 10f64.powf(x / 10.0));
                        let env_var = at("env_rms_g").map_or(1.0, |r| r * r);
                        ("env_energy_db", (eg - ex).abs(), ENV_REL * ex + 1e-6 * env_var)
                    } else if n.ends_with("_db") {
                        let (eg, ex) = (10f64.powf(g / 10.0), 10f64.powf(x / 10.0));
                        ("energy_db", (eg - ex).abs(), 1e-5 * ex + 1e-7 * var)
                    } else {
                        let tol = match n.as_str() {
                            "mean_g" => 1e-5 * scale,
                            "std_g" | "rms_g" | "crest_factor" => 1e-5 * x.abs(),
                            // Σ k·P[k] is an f32 sum over N/2 bins: its rounding grows with N.
                            "centroid_hz" => 1e-5 * long_fft * x.abs(),
                            "peak_g" | "p2p_g" | "shaft_speed_rpm" => 1e-6 * x.abs(),
                            "kurtosis" => 1e-4 * x.abs(),
                            "skewness" => 1e-4 * x.abs() + 1e-4,
                            "flatness" => 1e-4 * x.abs(),
                            "env_rms_g" => ENV_REL * x.abs(),
                            "env_kurtosis" => ENV_REL * x.abs(),
                            "rms_roc_g_per_s" => 2e-5 * scale / hop_s,
                            "kurtosis_roc_per_s" => 2e-4 * kurt / hop_s,
                            _ if n.ends_with("_frac") => 1e-5,
                            other => panic!("{name}: no tolerance for {other}"),
                        };
                        let class = if n.ends_with("_frac") { "energy_frac" } else { n.as_str() };
                        (class, (g - x).abs(), tol)
                    };
                    let tol = tol.max(1e-12);
                    let r = d / tol;
                    let wk = worst.entry(class.to_string()).or_default();
                    if r > wk.ratio_of_tolerance {
                        *wk = Worst { ratio_of_tolerance: r, abs: d };
                    }
                    if d.is_nan() || d > tol {
                        failures.push(format!(
                            "{name} window {w} channel {c} {n}: got {g:e}, reference {x:e}, |diff| {d:e} > tol {tol:e}"
                        ));
                    }
                }
            }
        }
    }
    println!("worst case per kind of feature (|diff| and as a fraction of its tolerance; dB as energies):");
    for (k, w) in &worst {
        println!("  {k:<24} {:>10.3e}  {:>6.3}", w.abs, w.ratio_of_tolerance);
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
