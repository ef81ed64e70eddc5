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
    let bytes = network_bytes(model)?;
    let (net, _) = Network::parse(&bytes, model.layers.len()).map_err(|e| anyhow!("{e}"))?;
    let x = scaler.scaled(rows)?;
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
    /// Per-phase thresholds, sorted by phase.
    pub phase_thresholds: &'a [(String, f32)],
    /// Detector version.
    pub version: [u16; 3],
}

/// Encodes the detector bundle and checks it parses back.
pub fn bundle(model: &Autoencoder, scaler: &ScalerFile, parts: &BundleParts<'_>) -> Result<Vec<u8>> {
    let specs = specs(model);
    let channels: Vec<&str> = parts.channels.iter().map(String::as_str).collect();
    let phases: Vec<(&str, f32)> = parts.phase_thresholds.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    let spec = BundleSpec {
        config: parts.config,
        channels: &channels,
        mean: &scaler.mean,
        std: &scaler.std,
        layers: &specs,
        threshold: parts.threshold,
        phase_thresholds: &phases,
        version: parts.version,
    };
    let len = bundle::encoded_len(&spec).map_err(|e| anyhow!("detector bundle: {e}"))?;
    let mut out = vec![0u8; len];
    bundle::encode(&spec, &mut out).map_err(|e| anyhow!("detector bundle: {e}"))?;
    Detector::parse(&out).map_err(|e| anyhow!("detector bundle does not parse back: {e}"))?;
    Ok(out)
}

/// A minimal pickle (protocol 2) writer for plain dicts of numbers, strings and lists, so the
/// seed's Python consumers can `pickle.load` the scaler without any avm code.
pub mod pickle {
    /// A value to pickle.
    #[derive(Clone, Debug, PartialEq)]
    pub enum Value {
        /// `int` (fits an i32).
        Int(i32),
        /// `float`.
        Float(f64),
        /// `str`.
        Str(String),
        /// `list`.
        List(Vec<Value>),
    }

    fn put(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::Int(i) => {
                out.push(b'J');
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(b'G');
                out.extend_from_slice(&f.to_be_bytes());
            }
            Value::Str(s) => {
                out.push(b'X');
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::List(items) => {
                out.push(b']');
                if !items.is_empty() {
                    out.push(b'(');
                    for i in items {
                        put(out, i);
                    }
                    out.push(b'e');
                }
            }
        }
    }

    /// Pickles a `dict` with string keys, in the given order.
    pub fn dict(entries: &[(&str, Value)]) -> Vec<u8> {
        let mut out = vec![0x80, 2, b'}'];
        if !entries.is_empty() {
            out.push(b'(');
            for (k, v) in entries {
                put(&mut out, &Value::Str((*k).to_string()));
                put(&mut out, v);
            }
            out.push(b'u');
        }
        out.push(b'.');
        out
    }
}

/// `scaler.pkl`: `{"feature_names", "units", "mean", "scale", "std", "feature_schema_version",
/// "fitted_on_windows"}` (`scale` is what divides: std, or 1 where std is 0, as scikit-learn's
/// `StandardScaler.scale_`).
pub fn scaler_pickle(s: &ScalerFile) -> Vec<u8> {
    use pickle::Value;
    let floats = |v: &[f32]| Value::List(v.iter().map(|x| Value::Float(f64::from(*x))).collect());
    let strs = |v: &[String]| Value::List(v.iter().map(|x| Value::Str(x.clone())).collect());
    let scale: Vec<f32> = s.std.iter().map(|&x| if x == 0.0 { 1.0 } else { x }).collect();
    pickle::dict(&[
        ("feature_names", strs(&s.feature_names)),
        ("units", strs(&s.units)),
        ("mean", floats(&s.mean)),
        ("scale", floats(&scale)),
        ("std", floats(&s.std)),
        ("feature_schema_version", Value::Int(i32::from(s.feature_schema_version))),
        ("fitted_on_windows", Value::Int(i32::try_from(s.fitted_on_windows).unwrap_or(i32::MAX))),
    ])
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
        };
        let m = Autoencoder::init(11, &cfg);
        let scaler = ScalerFile {
            feature_schema_version: avm_core::FEATURE_SCHEMA_VERSION,
            feature_names: (0..11).map(|i| format!("f{i}")).collect(),
            units: vec!["g".into(); 11],
            mean: vec![0.5; 11],
            std: vec![2.0; 11],
            fitted_on_windows: 10,
        };
        let rows: Vec<Vec<f32>> =
            (0..20).map(|r| (0..11).map(|i| ((r * 11 + i) as f32).sin() * 4.0).collect()).collect();
        let core = core_scores(&m, &scaler, rows.iter().map(Vec::as_slice)).unwrap();
        let x = scaler.scaled(rows.iter().map(Vec::as_slice)).unwrap();
        let (_, burn) = crate::model::autoencoder::burn_scores(&m, &x);
        for (c, b) in core.iter().zip(&burn) {
            assert!((c - b).abs() <= 1e-6 * b.abs().max(1.0), "core {c} burn {b}");
        }
        let parts = BundleParts {
            config: ExtractorConfig::default_at(2048).unwrap(),
            channels: &["vib_a".to_string()],
            threshold: 0.5,
            phase_thresholds: &[("cruise".to_string(), 0.25)],
            version: [1, 0, 0],
        };
        let b = bundle(&m, &scaler, &parts).unwrap();
        let d = Detector::parse(&b).unwrap();
        for (r, c) in rows.iter().zip(&core) {
            assert_eq!(d.score(r).unwrap().to_bits(), c.to_bits());
        }
    }

    #[test]
    fn pickle_layout() {
        use pickle::Value;
        let p = pickle::dict(&[("a", Value::List(vec![Value::Float(1.5), Value::Int(-2)]))]);
        let mut want = vec![0x80, 2, b'}', b'(', b'X', 1, 0, 0, 0, b'a', b']', b'('];
        want.push(b'G');
        want.extend_from_slice(&1.5f64.to_be_bytes());
        want.push(b'J');
        want.extend_from_slice(&(-2i32).to_le_bytes());
        want.extend_from_slice(b"eu.");
        assert_eq!(p, want);
    }
}
