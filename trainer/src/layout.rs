//! The on-disk layout: every directory and file name avm reads or writes, in one place.
//!
//! ```text
//! <data>/                          paths.data
//!   raw/recordings/*.parquet|csv   recordings (simulate, import, or yours)
//!   raw/labels.csv                 label intervals
//!   raw/fleet.json                 what the simulator made (simulated data only)
//!   interim/<flight>.parquet       sanitised sample streams (preprocess --interim)
//!   processed/windows.parquet      one row per window: ids, labels, quality, raw features
//!   processed/manifest.json        extractor config, feature names, per-recording summary
//!   features/{training,validation,test}/features.parquet, features/scaler.json,
//!   features/manifest.json         splits and the scaler (featurize)
//!   labels/{training,validation,test}/labels.parquet
//! <models>/<detector>/             paths.models
//!   training/{best,last,epoch_NNN}.json, metrics.jsonl, tracking.json, pipeline_config.yaml
//!   evaluation/metrics.json, metrics.jsonl, roc.*, confusion.*
//!   <major.minor.patch>/           one exported version (ARTIFACTS)
//! <registry>/registry.json         paths.registry
//! ```
//! Names derived from ids (flights, detectors) go through [`crate::ids::file_in`].

use crate::config::Paths;
use std::path::PathBuf;

/// Raw label file name.
pub const LABELS_CSV: &str = "labels.csv";
/// What the simulator wrote (beside the recordings).
pub const FLEET_JSON: &str = "fleet.json";
/// The window table.
pub const WINDOWS: &str = "windows.parquet";
/// A directory's manifest (processed, features).
pub const MANIFEST: &str = "manifest.json";
/// The fitted scaler (features directory and version directory).
pub const SCALER_JSON: &str = "scaler.json";
/// One split's feature table.
pub const FEATURES_PARQUET: &str = "features.parquet";
/// One split's label table.
pub const LABELS_PARQUET: &str = "labels.parquet";
/// The metric log of a training or evaluation (one JSON record per line).
pub const METRICS_LOG: &str = "metrics.jsonl";
/// Evaluation report (evaluation and version directories).
pub const METRICS_JSON: &str = "metrics.json";
/// Where a training was logged (TensorBoard, MLflow).
pub const TRACKING_LINK: &str = "tracking.json";
/// The config a training ran with, as logged.
pub const PIPELINE_CONFIG_COPY: &str = "pipeline_config.yaml";
/// Best checkpoint of a training directory.
pub const BEST: &str = "best.json";
/// Last checkpoint of a training directory.
pub const LAST: &str = "last.json";
/// The ONNX model of a version.
pub const MODEL_ONNX: &str = "model.onnx";
/// The detector bundle of a version.
pub const BUNDLE: &str = "detector.avmb";
/// The scaler as a Python pickle.
pub const SCALER_PKL: &str = "scaler.pkl";
/// A version's per-unit detector bundles (config `baseline`): `units/<aircraft>/<engine>.avmb`
/// or `units/<aircraft>.avmb`.
pub const UNITS_DIR: &str = "units";

/// The relative path (from a version directory) of the bundle of unit `key` (`aircraft/engine`
/// or `aircraft`, as [`crate::config::GroupBy::key`] makes it): every part must be an id.
pub fn unit_bundle(key: &str) -> Result<std::path::PathBuf, String> {
    let parts: Vec<&str> = key.split('/').collect();
    let (last, dirs) = parts.split_last().expect("split yields at least one part");
    let mut p = std::path::PathBuf::from(UNITS_DIR);
    for d in dirs {
        crate::ids::check("unit", d)?;
        p.push(d);
    }
    crate::ids::file_in(&p, "unit", last, ".avmb")
}

/// An artifact named in a signature (`detector.avmb`, `units/AC01/E1.avmb`): `dir` joined with
/// its `/`-separated parts, each of which must be an id, so the path stays under `dir`.
pub fn artifact_path(dir: &std::path::Path, name: &str) -> Result<std::path::PathBuf, String> {
    let mut p = dir.to_path_buf();
    for part in name.split('/') {
        crate::ids::check("artifact", part)?;
        p.push(part);
    }
    Ok(p)
}
/// Thresholds of a version.
pub const THRESHOLDS: &str = "thresholds.yaml";
/// ONNX Runtime validation of a version.
pub const VALIDATION: &str = "validation.json";
/// Hashes and provenance of a version.
pub const SIGNATURE: &str = "signature.json";
/// A detector version's copy of the data contract it was trained under (`avm score` reads it).
pub const CONTRACT_COPY: &str = "contract.yaml";
/// The evaluation plots (evaluation and version directories).
pub const PLOTS: [&str; 4] = ["roc.png", "roc.svg", "confusion.png", "confusion.svg"];
/// The registry index.
pub const REGISTRY_INDEX: &str = "registry.json";

/// A checkpoint of epoch `epoch` (1-based).
pub fn epoch_file(epoch: usize) -> String {
    format!("epoch_{epoch:03}.json")
}

/// The epoch of an `epoch_NNN.json` name.
pub fn epoch_of(name: &str) -> Option<usize> {
    name.strip_prefix("epoch_")?.strip_suffix(".json")?.parse().ok()
}

impl Paths {
    /// The raw directory.
    pub fn raw(&self) -> PathBuf {
        self.data.join("raw")
    }
    /// Raw recordings (`*.parquet`, `*.csv`).
    pub fn raw_recordings(&self) -> PathBuf {
        self.raw().join("recordings")
    }
    /// The raw label file.
    pub fn raw_labels(&self) -> PathBuf {
        self.raw().join(LABELS_CSV)
    }
    /// Sanitised sample streams (`preprocess --interim`).
    pub fn interim(&self) -> PathBuf {
        self.data.join("interim")
    }
    /// The window table and its manifest.
    pub fn processed(&self) -> PathBuf {
        self.data.join("processed")
    }
    /// Split feature tables and the scaler.
    pub fn features(&self) -> PathBuf {
        self.data.join("features")
    }
    /// Split label tables.
    pub fn labels(&self) -> PathBuf {
        self.data.join("labels")
    }
    /// A detector's model directory (`detector` follows the id rule: checked at config load).
    pub fn detector(&self, detector: &str) -> PathBuf {
        self.models.join(detector)
    }
    /// A detector's training run.
    pub fn training(&self, detector: &str) -> PathBuf {
        self.detector(detector).join("training")
    }
    /// A detector's evaluation.
    pub fn evaluation(&self, detector: &str) -> PathBuf {
        self.detector(detector).join("evaluation")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_names_round_trip() {
        assert_eq!(epoch_file(7), "epoch_007.json");
        assert_eq!(epoch_of(&epoch_file(1234)), Some(1234));
        assert_eq!(epoch_of("best.json"), None);
    }

    #[test]
    fn unit_bundles_and_artifacts_stay_under_the_version_directory() {
        use std::path::{Path, PathBuf};
        assert_eq!(unit_bundle("AC01/AC01-E1").unwrap(), PathBuf::from("units/AC01/AC01-E1.avmb"));
        assert_eq!(unit_bundle("AC01").unwrap(), PathBuf::from("units/AC01.avmb"));
        for bad in ["../x", "AC01/..", "", "AC01//E1", "/etc/x", ".hidden"] {
            assert!(unit_bundle(bad).is_err(), "{bad:?}");
        }
        let d = Path::new("/m/v");
        assert_eq!(artifact_path(d, "units/AC01/E1.avmb").unwrap(), PathBuf::from("/m/v/units/AC01/E1.avmb"));
        assert_eq!(artifact_path(d, "detector.avmb").unwrap(), PathBuf::from("/m/v/detector.avmb"));
        for bad in ["..", "units/../../x", "/etc/passwd", "a//b", ""] {
            assert!(artifact_path(d, bad).is_err(), "{bad:?}");
        }
    }
}
