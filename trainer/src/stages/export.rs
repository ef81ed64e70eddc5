//! `avm export`: a trained and evaluated checkpoint becomes a deployable detector version.
//!
//! Artifacts (all written into a staging directory; see [`crate::release::registry`] for how a version
//! becomes visible atomically):
//! - `model.onnx` ([`crate::model::onnx`]), validated in ONNX Runtime against burn's forward pass and
//!   avm-core's evaluator on the validation windows: every output must satisfy
//!   `|a - b| <= ATOL + RTOL * |b|` ([`ATOL`], [`RTOL`]), else the export fails;
//!   the worst differences go into `validation.json`.
//! - `detector.avmb`: the firmware bundle ([`avm_core::bundle`]).
//! - `scaler.json`, `scaler.pkl` (a plain dict for Python's `pickle.load`), `thresholds.yaml`,
//!   `metrics.json` and the evaluation plots, `signature.json` (the contract of the model's
//!   input and output, sha256 of every other artifact and of the training data).
//!
//! Every artifact is a function of the config, the data and the checkpoint: exporting twice
//! gives the same bytes. Run-dependent facts (creation time, measured latency) go into the
//! registry entry, not into the version directory.

use crate::config::PipelineConfig;
use crate::error::UsageError;
use crate::formats::scaler::ScalerFile;
use crate::layout;
use crate::model::autoencoder::burn_scores;
use crate::model::checkpoint::Checkpoint;
use crate::model::detector::{self, BundleParts};
use crate::model::onnx;
use crate::model::runtime::OrtModel;
use crate::stages::evaluate::{self, EvalReport};
use crate::stages::featurize;
use crate::stages::train;
use anyhow::{Context, Result, bail, ensure};
use avm_core::{Detector, FEATURE_SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Absolute tolerance of the ONNX Runtime check.
pub const ATOL: f64 = 1e-4;
/// Relative tolerance of the ONNX Runtime check.
pub const RTOL: f64 = 1e-4;

pub use crate::release::version::Version;

/// Worst disagreement between two implementations.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Largest `|a - b|`.
    pub max_abs: f64,
    /// Largest `|a - b| / |b|` over `|b| >= 1e-3`.
    pub max_rel: f64,
    /// Largest `|a - b| / (ATOL + RTOL |b|)`: at most 1 passes.
    pub max_tolerance_ratio: f64,
}

fn agreement(a: &[f32], b: &[f32]) -> Agreement {
    let mut g = Agreement { max_abs: 0.0, max_rel: 0.0, max_tolerance_ratio: 0.0 };
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        let d = (x - y).abs();
        g.max_abs = g.max_abs.max(d);
        if y.abs() >= 1e-3 {
            g.max_rel = g.max_rel.max(d / y.abs());
        }
        g.max_tolerance_ratio = g.max_tolerance_ratio.max(d / (ATOL + RTOL * y.abs()));
    }
    g
}

/// `validation.json`: ONNX Runtime against the other two implementations.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ValidationReport {
    /// Windows compared (valid windows of the validation split).
    pub windows: usize,
    /// Tolerance: `|a - b| <= atol + rtol |b|`.
    pub atol: f64,
    /// See `atol`.
    pub rtol: f64,
    /// ONNX Runtime version used.
    pub onnxruntime: String,
    /// ORT vs burn, reconstruction.
    pub ort_vs_burn_reconstruction: Agreement,
    /// ORT vs burn, score.
    pub ort_vs_burn_score: Agreement,
    /// ORT vs avm-core, reconstruction.
    pub ort_vs_core_reconstruction: Agreement,
    /// ORT vs avm-core (the bundle, from unscaled features), score.
    pub ort_vs_core_score: Agreement,
}

/// One tensor in `signature.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TensorSig {
    /// Name in the graph.
    pub name: String,
    /// Shape (`"batch"` is the symbolic batch).
    pub shape: Vec<serde_json::Value>,
    /// Element type.
    pub dtype: String,
}

/// One feature in `signature.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FeatureSig {
    /// Position in the input vector.
    pub index: usize,
    /// Name (`<channel>.<feature>`).
    pub name: String,
    /// Unit.
    pub unit: String,
}

/// `signature.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Signature {
    /// Detector name.
    pub detector: String,
    /// Version.
    pub version: String,
    /// avm-core feature schema version.
    pub feature_schema_version: u16,
    /// Input features, in order.
    pub features: Vec<FeatureSig>,
    /// Vibration channels, in order.
    pub channels: Vec<String>,
    /// The extractor config (samples) and its window and hop in seconds.
    pub extractor: serde_json::Value,
    /// The model's input is z-scored with `scaler.json`.
    pub input_scaling: String,
    /// Inputs.
    pub inputs: Vec<TensorSig>,
    /// Outputs.
    pub outputs: Vec<TensorSig>,
    /// ONNX IR version.
    pub onnx_ir_version: i64,
    /// ONNX opset.
    pub onnx_opset: i64,
    /// Layer sizes, input to output.
    pub layer_sizes: Vec<usize>,
    /// Alarm rule.
    pub alarm_rule: String,
    /// sha256 of every other artifact of the version.
    pub artifacts_sha256: BTreeMap<String, String>,
    /// sha256 of the features manifest (which holds the sha256 of every split file).
    pub training_data_sha256: String,
    /// sha256 of the checkpoint.
    pub checkpoint_sha256: String,
    /// Git commit of the code (`unknown` outside a checkout), and whether the tree was dirty.
    pub git_commit: String,
    /// See `git_commit`.
    pub git_dirty: bool,
}

/// `thresholds.yaml`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Detector name.
    pub detector: String,
    /// Version.
    pub version: String,
    /// What is compared.
    pub score: String,
    /// Alarm rule.
    pub alarm_rule: String,
    /// How the thresholds were calibrated.
    pub calibration_method: String,
    /// False-alarm rate targeted on the calibration split.
    pub target_far: f64,
    /// Calibration split.
    pub calibration_split: String,
    /// Global threshold.
    pub global: f64,
    /// Per-phase thresholds (phases not listed use the global one).
    pub per_phase: BTreeMap<String, f64>,
    /// Phases whose windows get no verdict.
    #[serde(default)]
    pub no_verdict_phases: Vec<String>,
    /// The alert policy (`alerts:` in the config; also in `detector.avmb`).
    #[serde(default)]
    pub alert_policy: Option<crate::model::flights::PolicyReport>,
}

/// Latency of single-window inference through ONNX Runtime.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Latency {
    /// Windows timed.
    pub windows: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

/// What [`stage`] produced.
#[derive(Clone, Debug)]
pub struct Staged {
    /// The staging directory holding every artifact.
    pub dir: PathBuf,
    /// Artifact name → sha256 (signature.json included).
    pub artifacts: BTreeMap<String, String>,
    /// The evaluation report exported.
    pub report: EvalReport,
    /// ORT agreement.
    pub validation: ValidationReport,
    /// Single-window latency over the test split.
    pub latency: Latency,
    /// sha256 of the checkpoint.
    pub checkpoint_sha256: String,
    /// sha256 of the training-data manifest.
    pub training_data_sha256: String,
}

/// The evaluation plots copied into a version.
pub use crate::layout::PLOTS;

fn git(args: &[&str]) -> Option<String> {
    let o = std::process::Command::new("git").args(args).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Where version `v` of the config's detector lives.
pub fn version_dir(cfg: &PipelineConfig, v: Version) -> PathBuf {
    cfg.paths.detector(&cfg.name).join(v.to_string())
}

/// Writes every artifact of `version` into `dir` (which must exist and be empty) and validates
/// the ONNX model. `checkpoint` defaults to the training run's `best.json`.
pub fn stage(
    cfg: &PipelineConfig,
    checkpoint: Option<&Path>,
    version: Version,
    dir: &Path,
) -> Result<Staged> {
    let ck_path =
        checkpoint.map(Path::to_path_buf).unwrap_or_else(|| train::training_dir(cfg).join(train::BEST));
    let ck = Checkpoint::load(&ck_path).map_err(|e| UsageError(format!("{e:#}: run `avm train` first")))?;
    let ck_sha = crate::io::sha256_file(&ck_path)?;
    let eval_dir = evaluate::evaluation_dir(cfg);
    let metrics_path = eval_dir.join(layout::METRICS_JSON);
    let metrics_bytes = std::fs::read(&metrics_path)
        .map_err(|e| UsageError(format!("{}: {e}: run `avm evaluate` first", metrics_path.display())))?;
    let report: EvalReport = serde_json::from_slice(&metrics_bytes)
        .with_context(|| format!("parsing {}", metrics_path.display()))?;
    ensure!(
        report.checkpoint_sha256 == ck_sha,
        UsageError(format!(
            "{} evaluates another model than {}: run `avm evaluate --checkpoint {}` first",
            metrics_path.display(),
            ck_path.display(),
            ck_path.display()
        ))
    );
    let fdir = featurize::features_dir(cfg);
    let scaler_path = fdir.join(layout::SCALER_JSON);
    let scaler = ScalerFile::load(&scaler_path)?;
    ensure!(
        ck.feature_names == scaler.feature_names,
        UsageError("checkpoint and scaler disagree on the features: rerun `avm train`".into())
    );
    let contract = cfg.load_contract()?;
    let xcfg = cfg.extractor_config(&contract)?;
    let channels: Vec<String> = contract.vibration_channels().map(|c| c.name.clone()).collect();
    ensure!(
        crate::formats::windows::feature_names(&channels, &xcfg.features)? == scaler.feature_names,
        UsageError("the contract's channels do not match the trained features".into())
    );

    // Artifacts that are copies or direct encodings.
    let write = |name: &str, bytes: &[u8]| crate::io::write_bytes_atomic(&dir.join(name), bytes);
    let doc = format!(
        "avm autoencoder {} v{version}: z-scored avm-core schema v{FEATURE_SCHEMA_VERSION} features -> reconstruction, score (MSE)",
        cfg.name
    );
    let meta = vec![
        ("avm.detector".to_string(), cfg.name.clone()),
        ("avm.feature_schema_version".to_string(), FEATURE_SCHEMA_VERSION.to_string()),
        ("avm.version".to_string(), version.to_string()),
    ];
    let onnx_bytes = onnx::encode(&ck.model, &doc, &meta);
    write(layout::MODEL_ONNX, &onnx_bytes)?;
    let phases = crate::model::flights::PhaseTable::new(
        &contract.phases,
        report.threshold as f32,
        &report.phase_thresholds,
        &cfg.alerts.no_verdict_phases,
    );
    ensure!(
        phases.entries.len() <= avm_core::MAX_PHASES,
        UsageError(format!(
            "the contract has {} phases; a detector bundle tells at most {} apart",
            phases.entries.len(),
            avm_core::MAX_PHASES
        ))
    );
    for (p, t) in &report.phase_thresholds {
        ensure!(
            f64::from(*t as f32) == *t,
            "threshold of phase {p} ({t}) is not an f32 score: rerun `avm evaluate`"
        );
    }
    ensure!(
        f64::from(report.threshold as f32) == report.threshold,
        "the global threshold ({}) is not an f32 score: rerun `avm evaluate`",
        report.threshold
    );
    let parts = BundleParts {
        config: xcfg,
        channels: &channels,
        threshold: report.threshold as f32,
        phases: &phases,
        alert: cfg.alerts.policy(),
        version: version.0,
    };
    let bundle = detector::bundle(&ck.model, &scaler, &parts)?;
    write(layout::BUNDLE, &bundle)?;
    // Per-unit baselines: one bundle per unit, the same network, thresholds and policy with the
    // unit's baseline as the scaler's mean (what that engine's firmware embeds).
    let mut unit_files = Vec::new();
    if let Some(b) = &scaler.baselines {
        for unit in b.units.keys() {
            let us = scaler.for_unit(unit).expect("a listed unit has a baseline");
            let ub = detector::bundle(&ck.model, &us, &parts)?;
            let rel = layout::unit_bundle(unit).map_err(UsageError)?;
            let path = dir.join(&rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            crate::io::write_bytes_atomic(&path, &ub)?;
            unit_files.push(rel.to_string_lossy().into_owned());
        }
    }
    let contract_bytes = std::fs::read(&cfg.contract)
        .with_context(|| format!("reading the contract {}", cfg.contract.display()))?;
    write(layout::CONTRACT_COPY, &contract_bytes)?;
    write(layout::SCALER_JSON, serde_json::to_string_pretty(&scaler)?.as_bytes())?;
    write(layout::SCALER_PKL, &detector::scaler_pickle(&scaler)?)?;
    write(layout::METRICS_JSON, &metrics_bytes)?;
    for p in PLOTS {
        if report.normal_only && p.starts_with("roc") {
            continue; // no ROC curve without faults
        }
        let src = eval_dir.join(p);
        write(p, &std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?)?;
    }
    let thresholds = Thresholds {
        detector: cfg.name.clone(),
        version: version.to_string(),
        score: "reconstruction MSE of the z-scored avm-core feature vector (float32)".into(),
        alarm_rule:
            "alarm when the window is valid, its phase is not a no-verdict phase, and score > threshold"
                .into(),
        calibration_method: report.calibration.rule.clone(),
        target_far: report.target_far,
        calibration_split: "validation".into(),
        global: report.threshold,
        per_phase: report.phase_thresholds.clone(),
        no_verdict_phases: cfg.alerts.no_verdict_phases.clone(),
        alert_policy: Some(cfg.alerts.policy().into()),
    };
    write(layout::THRESHOLDS, serde_saphyr::to_string(&thresholds)?.as_bytes())?;

    // ONNX Runtime against burn and the core, on the validation windows.
    let val = featurize::load_split(cfg, "validation")?;
    let rows: Vec<&[f32]> = val.rows.iter().filter(|r| r.valid).map(|r| r.features.as_slice()).collect();
    ensure!(
        !rows.is_empty(),
        UsageError("the validation split has no valid window to check the export on".into())
    );
    let x = scaler.scaled(rows.iter().copied())?;
    let flat: Vec<f32> = x.iter().flatten().copied().collect();
    let f = scaler.feature_names.len();
    let mut ort = OrtModel::load(&onnx_bytes, f, &dir.join(layout::MODEL_ONNX))?;
    let out = ort.run(&flat, x.len())?;
    let (burn_recon, burn_score) = burn_scores(&ck.model, &x);
    let burn_recon: Vec<f32> = burn_recon.into_iter().flatten().collect();
    let det = Detector::parse(&bundle).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut core_recon = vec![0.0f32; flat.len()];
    for (xi, r) in x.iter().zip(core_recon.chunks_mut(f)) {
        det.network().forward(xi, r).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let core_score: Vec<f32> =
        rows.iter().map(|r| det.score(r).map_err(|e| anyhow::anyhow!("{e}"))).collect::<Result<_>>()?;
    let validation = ValidationReport {
        windows: x.len(),
        atol: ATOL,
        rtol: RTOL,
        onnxruntime: crate::model::runtime::ORT_VERSION.into(),
        ort_vs_burn_reconstruction: agreement(&out.reconstruction, &burn_recon),
        ort_vs_burn_score: agreement(&out.score, &burn_score),
        ort_vs_core_reconstruction: agreement(&out.reconstruction, &core_recon),
        ort_vs_core_score: agreement(&out.score, &core_score),
    };
    for (what, a) in [
        ("burn reconstruction", &validation.ort_vs_burn_reconstruction),
        ("burn score", &validation.ort_vs_burn_score),
        ("avm-core reconstruction", &validation.ort_vs_core_reconstruction),
        ("avm-core score", &validation.ort_vs_core_score),
    ] {
        if a.max_tolerance_ratio > 1.0 {
            bail!(
                "ONNX Runtime disagrees with {what}: max |diff| {:.3e}, max rel {:.3e}, above |a-b| <= {ATOL:e} + {RTOL:e}|b|",
                a.max_abs,
                a.max_rel
            );
        }
    }
    write(layout::VALIDATION, serde_json::to_string_pretty(&validation)?.as_bytes())?;

    // Single-window latency over the test split (kept out of the artifacts: it varies by run).
    let test = featurize::load_split(cfg, "test")?;
    let tx = scaler.scaled(test.rows.iter().filter(|r| r.valid).map(|r| r.features.as_slice()))?;
    let mut ms = Vec::with_capacity(tx.len());
    for row in &tx {
        let t0 = Instant::now();
        ort.run(row, 1)?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| if ms.is_empty() { 0.0 } else { ms[((ms.len() - 1) as f64 * p).ceil() as usize] };
    let latency = Latency { windows: ms.len(), p50_ms: q(0.5), p99_ms: q(0.99), max_ms: q(1.0) };

    // The signature, over every other artifact.
    let data_sha = crate::io::sha256_file(&fdir.join(layout::MANIFEST))?;
    let mut artifacts = BTreeMap::new();
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.extend(unit_files);
    names.sort();
    for n in &names {
        artifacts.insert(n.clone(), crate::io::sha256_file(&dir.join(n))?);
    }
    let features = scaler
        .feature_names
        .iter()
        .zip(&scaler.units)
        .enumerate()
        .map(|(index, (name, unit))| FeatureSig { index, name: name.clone(), unit: unit.clone() })
        .collect();
    let mut layer_sizes = vec![ck.model.n_features()];
    layer_sizes.extend(ck.model.layers.iter().map(|l| l.d_out));
    let sig = Signature {
        detector: cfg.name.clone(),
        version: version.to_string(),
        feature_schema_version: FEATURE_SCHEMA_VERSION,
        features,
        channels: channels.clone(),
        extractor: serde_json::json!({
            "sample_rate_hz": xcfg.sample_rate_hz,
            "window_len_samples": xcfg.window_len_samples,
            "hop_len_samples": xcfg.hop_len_samples,
            "window_s": xcfg.window_s(),
            "hop_s": xcfg.hop_s(),
            "fft_len": xcfg.fft_len,
            "order_band_bins": xcfg.order_band_bins,
            "max_gap_samples": xcfg.max_gap_samples,
            "spike_policy": xcfg.spike_policy,
            "spike_k_sigma": xcfg.spike_k_sigma,
            "full_scale_g": xcfg.full_scale_g,
            "max_shaft_speed_rpm": xcfg.max_shaft_speed_rpm,
            "feature_set": xcfg.features,
            "features_per_channel": xcfg.features.per_channel(),
        }),
        input_scaling: if scaler.baselines.is_some() {
            "z = (x - baseline) / std (std 0: x - baseline), with the baseline of the window's unit \
             (scaler.json `baselines`; units/ holds each unit's bundle; detector.avmb carries the fleet mean)"
                .into()
        } else {
            "z = (x - mean) / std (std 0: x - mean), parameters in scaler.json".into()
        },
        inputs: vec![TensorSig {
            name: onnx::INPUT.into(),
            shape: vec![onnx::BATCH_DIM.into(), f.into()],
            dtype: "float32".into(),
        }],
        outputs: vec![
            TensorSig {
                name: onnx::OUTPUT_RECONSTRUCTION.into(),
                shape: vec![onnx::BATCH_DIM.into(), f.into()],
                dtype: "float32".into(),
            },
            TensorSig {
                name: onnx::OUTPUT_SCORE.into(),
                shape: vec![onnx::BATCH_DIM.into()],
                dtype: "float32".into(),
            },
        ],
        onnx_ir_version: onnx::IR_VERSION,
        onnx_opset: onnx::OPSET,
        layer_sizes,
        alarm_rule: thresholds.alarm_rule.clone(),
        artifacts_sha256: artifacts.clone(),
        training_data_sha256: data_sha.clone(),
        checkpoint_sha256: ck_sha.clone(),
        git_commit: git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into()),
        git_dirty: git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()),
    };
    write(layout::SIGNATURE, serde_json::to_string_pretty(&sig)?.as_bytes())?;
    artifacts.insert(layout::SIGNATURE.into(), crate::io::sha256_file(&dir.join(layout::SIGNATURE))?);
    Ok(Staged {
        dir: dir.to_path_buf(),
        artifacts,
        report,
        validation,
        latency,
        checkpoint_sha256: ck_sha,
        training_data_sha256: data_sha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_strictly() {
        assert_eq!("1.10.0".parse::<Version>().unwrap(), Version([1, 10, 0]));
        assert_eq!(Version([1, 2, 3]).to_string(), "1.2.3");
        for bad in ["1.0", "1.0.0.0", "v1.0.0", "1..0", "1.0.-1", "1.0.70000", "1.0.0 "] {
            let e = bad.parse::<Version>().unwrap_err();
            assert!(e.0.contains("major.minor.patch"), "{bad}: {e}");
        }
        assert!(Version([1, 9, 0]) < Version([1, 10, 0]));
    }

    #[test]
    fn agreement_measures() {
        let g = agreement(&[1.0, 2.0005, 0.0], &[1.0, 2.0, 1e-6]);
        assert!((g.max_abs - 0.0005).abs() < 1e-7);
        assert!((g.max_rel - 0.00025).abs() < 1e-6);
        assert!(g.max_tolerance_ratio > 1.0);
    }
}
