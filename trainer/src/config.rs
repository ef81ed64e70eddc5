//! The pipeline configuration (`configs/*.yaml`).
//!
//! Paths are relative to the directory the command runs in (the repository root in README's
//! commands). Unknown keys are refused, so a typo is an error, not a silently ignored setting.

use crate::error::UsageError;
use crate::simulate::SimConfig;
use anyhow::{Context, Result};
use avm_core::ExtractorConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the stages read and write.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// Root of the data tree: `raw/` (recordings, labels), `interim/`, `processed/`, ...
    pub data: PathBuf,
    /// Root of the model tree (`<models>/<name>/...`); default `MODELS`.
    #[serde(default = "default_models")]
    pub models: PathBuf,
    /// The model registry (`<registry>/registry.json`); default `REGISTRY`.
    #[serde(default = "default_registry")]
    pub registry: PathBuf,
}

fn default_models() -> PathBuf {
    PathBuf::from("MODELS")
}

fn default_registry() -> PathBuf {
    PathBuf::from("REGISTRY")
}

impl Paths {
    /// Raw recordings (`*.parquet`, `*.csv`).
    pub fn raw_recordings(&self) -> PathBuf {
        self.data.join("raw").join("recordings")
    }
    /// The raw label file.
    pub fn raw_labels(&self) -> PathBuf {
        self.data.join("raw").join("labels.csv")
    }
    /// The raw directory.
    pub fn raw(&self) -> PathBuf {
        self.data.join("raw")
    }
    /// Cleaned, time-synchronised recordings.
    pub fn interim(&self) -> PathBuf {
        self.data.join("interim")
    }
    /// Window tables.
    pub fn processed(&self) -> PathBuf {
        self.data.join("processed")
    }
}

/// Feature-extraction parameters: what avm-core's [`ExtractorConfig`] is built from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureParams {
    /// Window length, seconds (a whole number of samples and of hops).
    pub window_s: f64,
    /// Hop, seconds (a whole multiple of `fft_len / 2` samples).
    pub hop_s: f64,
    /// Welch segment length (power of two, 256..=4096).
    pub fft_len: u32,
    /// Half-width of the order bands, bins.
    pub order_band_bins: u32,
    /// Longest gap repaired by interpolation, samples.
    pub max_gap_samples: u32,
    /// k of the k-sigma spike rule.
    pub spike_k_sigma: f32,
    /// Sensor full scale, g.
    pub full_scale_g: f32,
    /// Highest plausible shaft speed, rpm.
    pub max_shaft_speed_rpm: f32,
}

impl FeatureParams {
    /// The core's config at `sample_rate_hz` (an integer rate).
    pub fn extractor_config(&self, sample_rate_hz: f64) -> Result<ExtractorConfig, UsageError> {
        if sample_rate_hz.fract() != 0.0 || !(1.0..=f64::from(u32::MAX)).contains(&sample_rate_hz) {
            return Err(UsageError(format!(
                "the vibration rate {sample_rate_hz} Hz must be a whole number of Hz"
            )));
        }
        let rate = sample_rate_hz as u32;
        let samples = |field: &str, seconds: f64| -> Result<u32, UsageError> {
            let x = seconds * sample_rate_hz;
            let r = libm::round(x);
            if x.is_finite() && r >= 1.0 && r <= f64::from(u32::MAX) && (x - r).abs() <= 1e-6 {
                Ok(r as u32)
            } else {
                Err(UsageError(format!(
                    "features.{field} = {seconds} s is not a whole number of samples at {sample_rate_hz} Hz"
                )))
            }
        };
        let cfg = ExtractorConfig {
            sample_rate_hz: rate,
            window_len_samples: samples("window_s", self.window_s)?,
            hop_len_samples: samples("hop_s", self.hop_s)?,
            fft_len: self.fft_len,
            order_band_bins: self.order_band_bins,
            max_gap_samples: self.max_gap_samples,
            spike_k_sigma: self.spike_k_sigma,
            full_scale_g: self.full_scale_g,
            max_shaft_speed_rpm: self.max_shaft_speed_rpm,
        };
        cfg.validate().map_err(|e| UsageError(format!("features: {e}")))?;
        Ok(cfg)
    }
}

/// The whole pipeline configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Detector name (used for model directories).
    pub name: String,
    /// Data locations.
    pub paths: Paths,
    /// The data contract file.
    pub contract: PathBuf,
    /// Simulator settings: the default data set when no raw data is present.
    #[serde(default)]
    pub simulate: Option<SimConfig>,
    /// Feature extraction.
    pub features: FeatureParams,
    /// Train / validation / test split by flight.
    #[serde(default)]
    pub split: Option<crate::featurize::SplitConfig>,
    /// Autoencoder training.
    #[serde(default)]
    pub train: Option<crate::train::TrainConfig>,
    /// Evaluation.
    #[serde(default)]
    pub evaluate: Option<crate::evaluate::EvalConfig>,
    /// Quality gates of `avm run` (the seed's defaults when absent).
    #[serde(default)]
    pub gates: crate::pipeline::Gates,
    /// TensorBoard and MLflow logging.
    #[serde(default)]
    pub tracking: crate::tracking::TrackingConfig,
}

impl PipelineConfig {
    /// Loads a config file; every problem is a [`UsageError`] naming the file.
    pub fn load(path: &Path) -> Result<PipelineConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("config {}: cannot read: {e}", path.display())))?;
        let cfg: PipelineConfig = serde_saphyr::from_str(&text)
            .map_err(|e| UsageError(format!("config {}: {e}", path.display())))?;
        Ok(cfg)
    }

    /// The contract the config names.
    pub fn load_contract(&self) -> Result<crate::contract::Contract> {
        crate::contract::Contract::load(&self.contract)
            .with_context(|| "loading the contract named by the config")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> FeatureParams {
        FeatureParams {
            window_s: 10.0,
            hop_s: 5.0,
            fft_len: 1024,
            order_band_bins: 1,
            max_gap_samples: 8,
            spike_k_sigma: 3.0,
            full_scale_g: 50.0,
            max_shaft_speed_rpm: 20_000.0,
        }
    }

    #[test]
    fn builds_core_config() {
        let c = params().extractor_config(2048.0).unwrap();
        assert_eq!((c.window_len_samples, c.hop_len_samples, c.fft_len), (20_480, 10_240, 1024));
        // 48 kHz with 4096-point segments: hop 0.512 s = 24 576 samples = 12 half-segments.
        let p = FeatureParams { window_s: 1.024, hop_s: 0.512, fft_len: 4096, ..params() };
        let c = p.extractor_config(48_000.0).unwrap();
        assert_eq!((c.window_len_samples, c.hop_len_samples), (49_152, 24_576));
        let e = FeatureParams { hop_s: 5.1, ..params() }.extractor_config(2048.0).unwrap_err();
        assert!(e.0.contains("window_len_samples") || e.0.contains("hop"), "{e}");
        let e = params().extractor_config(2048.5).unwrap_err();
        assert!(e.0.contains("whole number of Hz"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(
            &p,
            "name: x\npaths: {data: D}\ncontract: c.yaml\nfeatures: {window_s: 10, hop_s: 5, fft_len: 1024, \
             order_band_bins: 1, max_gap_samples: 8, spike_k_sigma: 3, full_scale_g: 50, max_shaft_speed_rpm: 2e4, \
             windw: 3}\n",
        )
        .unwrap();
        let e = PipelineConfig::load(&p).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("windw") && msg.contains("c.yaml"), "{msg}");
        assert!(e.downcast_ref::<UsageError>().is_some());
    }
}
