//! A registered detector version as an MLflow Model (the `onnx` flavor with `python_function`),
//! so `mlflow.onnx.load_model` / `mlflow.pyfunc.load_model("runs:/<run>/model")` load it:
//!
//! | file | what |
//! |---|---|
//! | `MLmodel` | flavors, tensor signature (`features` float32 `[-1, F]` → `score` `[-1]`, `reconstruction` `[-1, F]`), and `metadata`: detector, avm version, feature names and units, thresholds |
//! | `model.onnx` | the version's `model.onnx` with the scaler inside ([`crate::model::onnx::with_scaler`]): raw features in, avm's anomaly score out |
//! | `python_env.yaml`, `requirements.txt`, `conda.yaml` | the environment MLflow would build to serve it |
//!
//! The scores are ONNX Runtime's: equal to avm's to float32 rounding (summation order), as
//! `avm export` checks for `model.onnx`; the firmware's and `avm score`'s are the exact ones.

use crate::formats::scaler::ScalerFile;
use anyhow::{Context, Result};
use serde_json::json;
use std::path::Path;

/// The files of the MLflow Model, by name.
pub fn build(
    version_dir: &Path,
    detector: &str,
    version: &str,
    run_id: &str,
) -> Result<Vec<(String, Vec<u8>)>> {
    let scaler = ScalerFile::load(&version_dir.join(crate::layout::SCALER_JSON))?;
    let onnx_path = version_dir.join("model.onnx");
    let onnx = std::fs::read(&onnx_path).with_context(|| format!("reading {}", onnx_path.display()))?;
    let model = crate::model::onnx::with_scaler(&onnx, &scaler.mean, &scaler.std)?;
    let f = scaler.mean.len();
    let bundle = std::fs::read(version_dir.join(crate::layout::BUNDLE))?;
    let det = avm_core::Detector::parse(&bundle).map_err(|e| anyhow::anyhow!("detector.avmb: {e}"))?;
    let phases: Vec<serde_json::Value> = (0..det.phase_count())
        .filter_map(|i| det.phase(i))
        .map(|p| json!({"phase": p.name, "threshold": p.threshold, "no_verdict": p.no_verdict}))
        .collect();
    let tensor = |name: &str, shape: serde_json::Value| json!({"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": shape}, "name": name});
    let inputs = json!([tensor(crate::model::onnx::INPUT, json!([-1, f]))]).to_string();
    let outputs = json!([
        tensor(crate::model::onnx::OUTPUT_RECONSTRUCTION, json!([-1, f])),
        tensor(crate::model::onnx::OUTPUT_SCORE, json!([-1]))
    ])
    .to_string();
    let meta = json!({
        "detector": detector,
        "detector_version": version,
        "avm_version": env!("CARGO_PKG_VERSION"),
        "feature_schema_version": scaler.feature_schema_version,
        "feature_names": scaler.feature_names,
        "feature_units": scaler.units,
        "input": "raw avm features (the window table's feature columns, in this order); z-scored inside the graph",
        "score": "reconstruction MSE of the z-scored features; alarm when score > threshold",
        "threshold": det.threshold(),
        "phase_thresholds": phases,
    });
    let mut meta = meta;
    if let Some(b) = &scaler.baselines {
        // The graph z-scores with the fleet mean; a unit's windows are judged against its own
        // baseline (its bundle in units/): subtract baseline - fleet mean from a unit's raw
        // features before calling the model to get that unit's scores.
        meta["baseline_by"] = json!(b.by);
        meta["baselines"] = json!(
            b.units
                .iter()
                .map(|(k, u)| (k.clone(), u.mean.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()
        );
        meta["input"] = json!(
            "raw avm features, in this order, z-scored inside the graph with the fleet mean; for unit u, \
             pass x - (baselines[u] - fleet mean) to get the scores its bundle computes (to float32 rounding)"
        );
    }
    // JSON is YAML: MLflow reads MLmodel with yaml.safe_load. Key order as MLflow writes it.
    let uuid = crate::io::sha256_hex(&[run_id.as_bytes(), &model].concat());
    let mlmodel = json!({
        "artifact_path": "model",
        "flavors": {
            "onnx": {"code": null, "data": "model.onnx", "providers": ["CPUExecutionProvider"], "onnx_version": "1.17.0"},
            "python_function": {
                "data": "model.onnx",
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.onnx",
            },
        },
        "metadata": meta,
        "model_size_bytes": model.len(),
        "model_uuid": &uuid[..32],
        "run_id": run_id,
        "signature": {"inputs": inputs, "outputs": outputs, "params": null},
        "utc_time_created": crate::io::now_rfc3339(),
    });
    let requirements = "mlflow\nonnx\nonnxruntime\nnumpy\n";
    let python_env = "build_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n";
    let conda = "channels:\n- conda-forge\ndependencies:\n- pip\n- pip:\n  - mlflow\n  - onnx\n  - onnxruntime\n  - numpy\nname: avm_env\n";
    Ok(vec![
        ("MLmodel".into(), serde_json::to_vec_pretty(&mlmodel)?),
        ("model.onnx".into(), model),
        ("python_env.yaml".into(), python_env.as_bytes().to_vec()),
        ("requirements.txt".into(), requirements.as_bytes().to_vec()),
        ("conda.yaml".into(), conda.as_bytes().to_vec()),
    ])
}
