//! The stages end to end through the `avm` binary on a small simulated fleet: simulate →
//! preprocess → featurize → train (interrupted and resumed) → evaluate.

use std::path::Path;
use std::process::Command;

mod common;

fn avm(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_avm")).args(args).current_dir(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "avm {args:?} failed ({}): {stderr}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn weights(path: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["model"].clone()
}

#[test]
fn stages_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::write_small_config(d, |c| {
        c.train.max_epochs = 6;
        c.evaluate.cv_folds = 3;
    });
    let c = ["--config", "c.yaml"];
    avm(d, &[&["simulate"][..], &c].concat());
    avm(d, &[&["preprocess"][..], &c].concat());
    let out = avm(d, &[&["featurize"][..], &c].concat());
    assert!(out.contains("training:") && out.contains("66 features per window"), "{out}");
    for split in ["training", "validation", "test"] {
        assert!(d.join(format!("DATA/features/{split}/features.parquet")).exists());
        assert!(d.join(format!("DATA/labels/{split}/labels.parquet")).exists());
    }
    let scaler: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("DATA/features/scaler.json")).unwrap()).unwrap();
    assert_eq!(scaler["feature_names"][2], "vib_fan.rms_g");
    assert_eq!(scaler["feature_schema_version"], avm_core::FEATURE_SCHEMA_VERSION);

    // Uninterrupted, then interrupted after 2 epochs and resumed: the same weights.
    avm(d, &[&["train"][..], &c, &["--out", "full"]].concat());
    avm(d, &[&["train"][..], &c, &["--out", "part", "--stop-after-epochs", "2"]].concat());
    assert!(!d.join("part/epoch_003.json").exists());
    avm(d, &[&["train"][..], &c, &["--out", "part", "--checkpoint", "part/last.json", "--resume"]].concat());
    assert_eq!(weights(&d.join("full/last.json")), weights(&d.join("part/last.json")));
    assert_eq!(weights(&d.join("full/best.json")), weights(&d.join("part/best.json")));

    avm(d, &[&["train"][..], &c].concat());
    let out = avm(d, &[&["evaluate"][..], &c].concat());
    assert!(out.contains("test: AUC"), "{out}");
    let e = d.join("MODELS/small/evaluation");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.join("metrics.json")).unwrap()).unwrap();
    let auc = m["auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc));
    assert!(m["test"]["far"].as_f64().unwrap() <= 1.0);
    assert!(m["validation"]["far"].as_f64().unwrap() <= 0.1 + 1e-12, "calibrated on validation");
    assert_eq!(m["cv_folds"], 3);
    assert!(m["cross_validation"]["auc"][0].as_f64().is_some());
    assert!(m["by_phase"].as_object().unwrap().contains_key("cruise"));
    assert!(m["score_distributions"]["normal"]["n"].as_u64().unwrap() > 0);
    for f in ["roc.png", "confusion.png"] {
        assert!(std::fs::read(e.join(f)).unwrap().starts_with(b"\x89PNG"), "{f}");
    }
    for f in ["roc.svg", "confusion.svg"] {
        assert!(std::fs::read_to_string(e.join(f)).unwrap().contains("<svg"), "{f}");
    }
}
