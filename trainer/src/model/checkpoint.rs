//! The training checkpoint: everything needed to continue training exactly, checked
//! completely before anything uses it.

use crate::config::TrainConfig;
use crate::error::UsageError;
use crate::model::autoencoder::Autoencoder;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Adam state of one parameter, as saved.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AdamSlot {
    /// Steps taken.
    pub time: usize,
    /// First moment.
    pub moment_1: Vec<f32>,
    /// Second moment.
    pub moment_2: Vec<f32>,
}

/// Everything needed to continue training exactly.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Epochs completed.
    pub epoch: usize,
    /// Weights after that epoch.
    pub model: Autoencoder,
    /// Adam state per parameter (w, b per layer), empty before the first step.
    pub adam: Vec<Option<AdamSlot>>,
    /// Best validation loss so far and its epoch.
    pub best_val_loss: f64,
    /// Epoch of the best validation loss.
    pub best_epoch: usize,
    /// Per-epoch history.
    pub history: Vec<EpochLog>,
    /// The training config it belongs to.
    pub config: TrainConfig,
    /// Feature names it was trained on.
    pub feature_names: Vec<String>,
}

/// One epoch's numbers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Validation loss after the epoch.
    pub val_loss: f64,
    /// Learning rate.
    pub learning_rate: f64,
    /// Mean L2 norm of the gradient over the epoch's batches.
    pub grad_norm: f64,
}

impl Checkpoint {
    /// Reads a checkpoint and checks it completely ([`Checkpoint::check`]) before anything
    /// (burn, the evaluator, the exporter) touches it.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes =
            std::fs::read(path).map_err(|e| UsageError(format!("checkpoint {}: {e}", path.display())))?;
        let ck: Checkpoint = serde_json::from_slice(&bytes)
            .map_err(|e| UsageError(format!("checkpoint {} is not valid: {e}", path.display())))?;
        ck.check().map_err(|e| UsageError(format!("checkpoint {} is not valid: {e}", path.display())))?;
        Ok(ck)
    }

    /// Every structural rule of a checkpoint: layers chain (`d_out` of one is `d_in` of the
    /// next, the last gives back the input size), weights `d_in x d_out` and biases `d_out`
    /// long and finite, the layer sizes those of its own `config.hidden` within the config
    /// limits, one feature name per input, Adam state absent or one slot per parameter with
    /// moments of the parameter's length, finite and non-negative second moments, and a
    /// history consistent with `epoch` and `best_epoch`.
    pub fn check(&self) -> Result<(), String> {
        use crate::config::limits::{MAX_HIDDEN_LAYERS, MAX_LAYER_WIDTH};
        let layers = &self.model.layers;
        let f = self.feature_names.len();
        if f == 0 || f > MAX_LAYER_WIDTH {
            return Err(format!("{f} feature names (1 to {MAX_LAYER_WIDTH} expected)"));
        }
        let hidden = &self.config.hidden;
        if hidden.is_empty()
            || hidden.len() > MAX_HIDDEN_LAYERS
            || hidden.iter().any(|&h| h == 0 || h > MAX_LAYER_WIDTH)
        {
            return Err(format!(
                "config.hidden {hidden:?} is outside the limits (1 to {MAX_HIDDEN_LAYERS} layers of 1 to {MAX_LAYER_WIDTH})"
            ));
        }
        if layers.len() != hidden.len() + 1 {
            return Err(format!(
                "{} layers, config.hidden {hidden:?} needs {}",
                layers.len(),
                hidden.len() + 1
            ));
        }
        let mut sizes = vec![f];
        sizes.extend(hidden);
        sizes.push(f);
        for (i, (l, s)) in layers.iter().zip(sizes.windows(2)).enumerate() {
            if (l.d_in, l.d_out) != (s[0], s[1]) {
                return Err(format!("layer {i} is {}x{}, expected {}x{}", l.d_in, l.d_out, s[0], s[1]));
            }
            if l.w.len() != l.d_in * l.d_out || l.b.len() != l.d_out {
                return Err(format!(
                    "layer {i}: {} weights and {} biases, a {}x{} layer has {} and {}",
                    l.w.len(),
                    l.b.len(),
                    l.d_in,
                    l.d_out,
                    l.d_in * l.d_out,
                    l.d_out
                ));
            }
            if !l.is_finite() {
                return Err(format!("layer {i} has a non-finite weight or bias"));
            }
        }
        if !self.adam.is_empty() {
            if self.adam.len() != 2 * layers.len() {
                return Err(format!("{} Adam slots, {} parameters", self.adam.len(), 2 * layers.len()));
            }
            for (k, slot) in self.adam.iter().enumerate() {
                let l = &layers[k / 2];
                let n = if k % 2 == 0 { l.w.len() } else { l.b.len() };
                if let Some(a) = slot {
                    if a.moment_1.len() != n || a.moment_2.len() != n {
                        return Err(format!(
                            "Adam slot {k}: moments of {} and {} values, the parameter has {n}",
                            a.moment_1.len(),
                            a.moment_2.len()
                        ));
                    }
                    if !a.moment_1.iter().all(|x| x.is_finite())
                        || !a.moment_2.iter().all(|x| x.is_finite() && *x >= 0.0)
                    {
                        return Err(format!(
                            "Adam slot {k}: a moment is not finite (or a second moment is negative)"
                        ));
                    }
                }
            }
        }
        if self.history.len() != self.epoch
            || self.best_epoch > self.epoch
            || (self.epoch > 0 && self.best_epoch == 0)
        {
            return Err(format!(
                "epoch {}, best epoch {} and {} history entries do not agree",
                self.epoch,
                self.best_epoch,
                self.history.len()
            ));
        }
        if self.epoch > 0 && !(self.best_val_loss.is_finite() && self.best_val_loss >= 0.0) {
            return Err(format!("best_val_loss {} is not a finite loss", self.best_val_loss));
        }
        Ok(())
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_bytes_atomic(path, &serde_json::to_vec(self)?)
    }
}
