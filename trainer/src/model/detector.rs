//! The trained model as avm-core sees it: the network bytes the core evaluator reads, the
//! detector bundle the firmware embeds, and scores computed through the core (the numbers the
//! aircraft computes, which evaluation and the thresholds are therefore based on).

use crate::config::Activation;
use crate::formats::scaler::ScalerFile;
use crate::model::autoencoder::Autoencoder;
use anyhow::{Result, anyhow};
use avm_core::bundle::{self, BundleSpec};
use avm_core::model::{self, LayerSpec};
use avm_core::{Detector, ExtractorConfig, Network};

fn core_activation(a: Activation) -> model::Activation {
    match a {
        Activation::Relu => model::Activation::Relu,
        Activation::Sigmoid => model::Activation::Sigmoid,
        Activation::Linear => model::Activation::Linear,
    }
}

fn specs(model: &Autoencoder) -> Vec<LayerSpec<'_>> {
    model
        .layers
        .iter()
        .map(|l| LayerSpec {
            d_in: l.d_in,
            d_out: l.d_out,
            activation: core_activation(l.activation),
            w: &l.w,
            b: &l.b,
        })
        .collect()
}

/// The model's layers in avm-core's encoding.
pub fn network_bytes(model: &Autoencoder) -> Result<Vec<u8>> {
    let specs = specs(model);
    let len = model::encoded_layers_len(&specs).map_err(|e| anyhow!("{e}"))?;
    let mut out = vec![0u8; len];
    model::encode_layers(&specs, &mut out).map_err(|e| anyhow!("encoding the network: {e}"))?;
    Network::parse(&out, specs.len()).map_err(|e| anyhow!("the model is not a valid network: {e}"))?;
    Ok(out)
}

/// Reconstruction-MSE scores of unscaled feature vectors through avm-core: the core's
/// [`avm_core::Scaler`] then its [`Network`], exactly what [`Detector::score`] does on board.
pub fn core_scores<'a>(
    model: &Autoencoder,
    scaler: &ScalerFile,
    rows: impl Iterator<Item = &'a [f32]>,
) -> Result<Vec<f32>> {
    network_scores(model, &scaler.scaled(rows)?)
}

/// [`core_scores`] of windows, each scaled by its own mean ([`ScalerFile::scaled_windows`]:
/// the fleet's, or its unit's baseline).
pub fn core_scores_windows<'a>(
    model: &Autoencoder,
    scaler: &ScalerFile,
    rows: impl Iterator<Item = &'a crate::formats::windows::Window>,
) -> Result<Vec<f32>> {
    network_scores(model, &scaler.scaled_windows(rows)?)
}

/// avm-core's network scores of scaled vectors.
fn network_scores(model: &Autoencoder, x: &[Vec<f32>]) -> Result<Vec<f32>> {
    let bytes = network_bytes(model)?;
    let (net, _) = Network::parse(&bytes, model.layers.len()).map_err(|e| anyhow!("{e}"))?;
    x.iter().map(|v| net.score(v).map_err(|e| anyhow!("scoring: {e}"))).collect()
}

/// What goes into `detector.avmb` besides the model and scaler.
#[derive(Clone, Debug)]
pub struct BundleParts<'a> {
    /// The extractor config the features were computed with.
    pub config: ExtractorConfig,
    /// Vibration channels in feature order.
    pub channels: &'a [String],
    /// Global threshold.
    pub threshold: f32,
    /// The phase table (contract phase order) with thresholds and no-verdict flags.
    pub phases: &'a crate::model::flights::PhaseTable,
    /// The alert policy.
    pub alert: avm_core::AlertPolicy,
    /// Detector version.
    pub version: [u16; 3],
}

/// Encodes the detector bundle and checks it parses back.
pub fn bundle(model: &Autoencoder, scaler: &ScalerFile, parts: &BundleParts<'_>) -> Result<Vec<u8>> {
    let specs = specs(model);
    let channels: Vec<&str> = parts.channels.iter().map(String::as_str).collect();
    let phases = parts.phases.bundle_entries();
    let spec = BundleSpec {
        config: parts.config,
        channels: &channels,
        mean: &scaler.mean,
        std: &scaler.std,
        layers: &specs,
        threshold: parts.threshold,
        phases: &phases,
        alert: parts.alert,
        version: parts.version,
    };
    let len = bundle::encoded_len(&spec).map_err(|e| anyhow!("detector bundle: {e}"))?;
    let mut out = vec![0u8; len];
    bundle::encode(&spec, &mut out).map_err(|e| anyhow!("detector bundle: {e}"))?;
    Detector::parse(&out).map_err(|e| anyhow!("detector bundle does not parse back: {e}"))?;
    Ok(out)
}

/// `scaler.pkl`: a plain `dict` (protocol 2) for Python consumers that `pickle.load` the scaler
/// without any avm code: `{"feature_names", "units", "mean", "scale", "std",
/// "feature_schema_version", "fitted_on_windows"}` (`scale` is what divides: std, or 1 where std
/// is 0, as scikit-learn's `StandardScaler.scale_`). Written by the `serde-pickle` crate.
pub fn scaler_pickle(s: &ScalerFile) -> Result<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct ScalerPickle<'a> {
        feature_names: &'a [String],
        units: &'a [String],
        mean: Vec<f64>,
        scale: Vec<f64>,
        std: Vec<f64>,
        feature_schema_version: u16,
        fitted_on_windows: u64,
    }
    let floats = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let scale: Vec<f32> = s.std.iter().map(|&x| if x == 0.0 { 1.0 } else { x }).collect();
    let p = ScalerPickle {
        feature_names: &s.feature_names,
        units: &s.units,
        mean: floats(&s.mean),
        scale: floats(&scale),
        std: floats(&s.std),
        feature_schema_version: s.feature_schema_version,
        fitted_on_windows: s.fitted_on_windows,
    };
    serde_pickle::to_vec(&p, serde_pickle::SerOptions::new().proto_v2())
        .map_err(|e| anyhow!("scaler.pkl: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;

    #[test]
    fn core_scores_match_burn_closely() {
        let cfg = TrainConfig {
            hidden: vec![5, 2, 5],
            activation: Activation::Relu,
            learning_rate: 0.001,
            batch_size: 8,
            max_epochs: 1,
            patience: 1,
            seed: 3,
            keep_epochs: 3,
            lr_schedule: None,
        };
        let m = Autoencoder::init(11, &cfg);
        let scaler = ScalerFile {
            feature_schema_version: avm_core::FEATURE_SCHEMA_VERSION,
            feature_names: (0..11).map(|i| format!("f{i}")).collect(),
            units: vec!["g".into(); 11],
            mean: vec![0.5; 11],
            std: vec![2.0; 11],
            fitted_on_windows: 10,
            baselines: None,
        };
        let rows: Vec<Vec<f32>> =
            (0..20).map(|r| (0..11).map(|i| ((r * 11 + i) as f32).sin() * 4.0).collect()).collect();
        let core = core_scores(&m, &scaler, rows.iter().map(Vec::as_slice)).unwrap();
        let x = scaler.scaled(rows.iter().map(Vec::as_slice)).unwrap();
        let (_, burn) = crate::model::autoencoder::burn_scores(&m, &x);
        for (c, b) in core.iter().zip(&burn) {
            assert!((c - b).abs() <= 1e-6 * b.abs().max(1.0), "core {c} burn {b}");
        }
        // A set of 11 features per channel: time-domain, rates, speed.
        let mut config = ExtractorConfig::default_at(2048).unwrap();
        config.features.families =
            avm_core::Families::TIME.with(avm_core::Families::RATES).with(avm_core::Families::SPEED);
        let parts = BundleParts {
            config,
            channels: &["vib_a".to_string()],
            threshold: 0.5,
            phases: &crate::model::flights::PhaseTable::new(
                &["cruise".to_string()],
                0.5,
                &[("cruise".to_string(), 0.25)].into(),
                &[],
            ),
            alert: crate::config::AlertConfig::default().policy(),
            version: [1, 0, 0],
        };
        let b = bundle(&m, &scaler, &parts).unwrap();
        let d = Detector::parse(&b).unwrap();
        for (r, c) in rows.iter().zip(&core) {
            assert_eq!(d.score(r).unwrap().to_bits(), c.to_bits());
        }
    }

    #[test]
    fn scaler_pickle_is_a_plain_dict() {
        let s = ScalerFile {
            feature_schema_version: 2,
            feature_names: vec!["a.rms_g".into(), "a.peak_g".into()],
            units: vec!["g".into(), "g".into()],
            mean: vec![1.5, -2.0],
            std: vec![0.5, 0.0],
            fitted_on_windows: 7,
            baselines: None,
        };
        let bytes = scaler_pickle(&s).unwrap();
        assert_eq!(&bytes[..2], &[0x80, 2], "protocol 2");
        let v: std::collections::BTreeMap<String, serde_pickle::Value> =
            serde_pickle::from_slice(&bytes, serde_pickle::DeOptions::new()).unwrap();
        let keys: Vec<&str> = v.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["feature_names", "feature_schema_version", "fitted_on_windows", "mean", "scale", "std", "units"]
        );
        let floats = |k: &str| match &v[k] {
            serde_pickle::Value::List(l) => l
                .iter()
                .map(|x| match x {
                    serde_pickle::Value::F64(f) => *f,
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<f64>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(floats("scale"), [0.5, 1.0]);
        assert_eq!(floats("mean"), [1.5, -2.0]);
    }
}
