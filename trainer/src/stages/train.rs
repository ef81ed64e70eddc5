//! `avm train`: the MLP autoencoder, trained with burn on normal training windows.
//!
//! - Model: z-scored features → hidden layers from the config (ReLU or sigmoid) → linear output
//!   of the input size; weights `[d_in, d_out]`, `y = x·W + b` (the layout ONNX's Gemm and
//!   avm-core read). Glorot-uniform initial weights from ChaCha8(`train.seed`), zero biases.
//! - Data: clean normal windows (valid, label 0, no sensor event) of the training split for the
//!   gradient steps, of the validation split for the validation loss.
//! - Optimisation: burn's autodiff (flex CPU backend) for gradients, burn's Adam
//!   (β₁ 0.9, β₂ 0.999, ε 1e-8) applied parameter by parameter with its state kept here, MSE
//!   loss, mini-batches in an order shuffled per epoch with ChaCha8(seed, stream = epoch).
//!   Early stopping on the validation loss (`patience` epochs without improvement); optionally
//!   the learning rate is reduced on a plateau (`lr_schedule`, replayed from the history).
//! - Checkpoints: after every epoch, `epoch_NNN.json`, `last.json`, and `best.json` when the
//!   validation loss improved. A checkpoint holds the weights, Adam's moments and step counts,
//!   the early-stopping state and the history, so `--resume` continues exactly: a resumed run
//!   ends with the same weights, bit for bit, as one never interrupted.
//! - Metrics (training loss, validation loss, learning rate, gradient norm per epoch) go to the
//!   run's [`crate::tracking::MetricLog`].

use crate::config::PipelineConfig;
use crate::config::TrainConfig;
use crate::error::UsageError;
use crate::formats::scaler::ScalerFile;
use crate::model::autoencoder::Autoencoder;
use crate::model::autoencoder::{Dense, forward, tensor1, tensor2, to_vec};
use crate::model::checkpoint::{AdamSlot, Checkpoint, EpochLog};
use crate::stages::featurize::{self, FeatureSet};
use crate::tracking::MetricLog;
use anyhow::{Context, Result, bail, ensure};
use burn::optim::{AdamConfig, Optimizer};
use burn::tensor::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// Scaled feature matrix of the clean normal rows (with per-unit baselines: of the units that
/// have one, each scaled by its own).
pub fn normal_matrix(set: &FeatureSet, scaler: &ScalerFile) -> Result<Vec<Vec<f32>>> {
    scaler.scaled_windows(set.rows.iter().filter(|r| r.is_clean_normal() && scaler.covers(r)))
}

/// Where a config's training run lives.
pub fn training_dir(cfg: &PipelineConfig) -> PathBuf {
    cfg.paths.training(&cfg.name)
}

/// Options of one `avm train` call.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from this checkpoint.
    pub resume_from: Option<PathBuf>,
    /// Stop (as if interrupted) after this many epochs in total.
    pub stop_after_epochs: Option<usize>,
    /// Output directory (default: [`training_dir`]).
    pub out_dir: Option<PathBuf>,
}

impl TrainOptions {
    /// The output directory: `out_dir`, or the config's [`training_dir`].
    pub fn dir(&self, cfg: &PipelineConfig) -> PathBuf {
        self.out_dir.clone().unwrap_or_else(|| training_dir(cfg))
    }
}

/// The scaled clean-normal windows a model is fitted to.
#[derive(Clone, Copy, Debug)]
pub struct Matrices<'a> {
    /// Gradient steps.
    pub train: &'a [Vec<f32>],
    /// Validation loss (early stopping).
    pub val: &'a [Vec<f32>],
}

/// Trains on `data` (already scaled); writes checkpoints into `dir`. With `resume` it continues
/// that checkpoint; with `stop_after` it stops (as if interrupted) after that many epochs.
pub fn fit(
    tcfg: &TrainConfig,
    feature_names: &[String],
    data: Matrices<'_>,
    dir: &Path,
    (resume, stop_after): (Option<Checkpoint>, Option<usize>),
    log: &mut MetricLog,
) -> Result<Checkpoint> {
    let Matrices { train, val } = data;
    ensure!(
        !train.is_empty() && !val.is_empty(),
        UsageError("no clean normal windows to train or validate on".into())
    );
    ensure!(
        tcfg.batch_size > 0 && tcfg.max_epochs > 0,
        UsageError("train: batch_size and max_epochs must be > 0".into())
    );
    let f = feature_names.len();
    let device = Device::flex().autodiff();
    let plain = Device::flex();
    let adam = AdamConfig::new().with_epsilon(1e-8).build();
    let mut ck = match resume {
        Some(ck) => {
            let same_config = TrainConfig { keep_epochs: tcfg.keep_epochs, ..ck.config.clone() } == *tcfg;
            ensure!(
                same_config && ck.feature_names == feature_names,
                UsageError("the checkpoint was made with another training config or feature set".into())
            );
            ck
        }
        None => Checkpoint {
            epoch: 0,
            model: Autoencoder::init(f, tcfg),
            adam: Vec::new(),
            best_val_loss: f64::INFINITY,
            best_epoch: 0,
            history: Vec::new(),
            config: tcfg.clone(),
            feature_names: feature_names.to_vec(),
        },
    };
    // Parameters and Adam state as (non-autodiff) burn tensors.
    let mut params: Vec<(Tensor<2>, Tensor<1>)> = ck
        .model
        .layers
        .iter()
        .map(|l| (tensor2(&l.w, l.d_in, l.d_out, &plain), tensor1(&l.b, &plain)))
        .collect();
    type S2 = <burn::optim::Adam as Optimizer>::State<2>;
    type S1 = <burn::optim::Adam as Optimizer>::State<1>;
    let mut states: Vec<(Option<S2>, Option<S1>)> = vec![(None, None); params.len()];
    for (i, (l, st)) in ck.model.layers.iter().zip(states.iter_mut()).enumerate() {
        let slot = |k: usize| ck.adam.get(2 * i + k).cloned().flatten();
        if let Some(a) = slot(0) {
            st.0 = Some(burn::optim::AdamState::new(burn::optim::AdaptiveMomentumState::new(
                a.time,
                tensor2(&a.moment_1, l.d_in, l.d_out, &plain),
                tensor2(&a.moment_2, l.d_in, l.d_out, &plain),
            )));
        }
        if let Some(a) = slot(1) {
            st.1 = Some(burn::optim::AdamState::new(burn::optim::AdaptiveMomentumState::new(
                a.time,
                tensor1(&a.moment_1, &plain),
                tensor1(&a.moment_2, &plain),
            )));
        }
    }
    let val_flat: Vec<f32> = val.iter().flatten().copied().collect();
    let val_x = tensor2(&val_flat, val.len(), f, &plain);
    let layers = ck.model.layers.clone();
    let mut since_best = ck.epoch - ck.best_epoch.min(ck.epoch);
    // A bar on a terminal (at most max_epochs: early stopping may end it sooner); with -v, one
    // line per epoch (for logs).
    let pb = crate::stages::progress(tcfg.max_epochs, "train");
    pb.set_position(ck.epoch as u64);
    while ck.epoch < tcfg.max_epochs && since_best < tcfg.patience {
        if stop_after.is_some_and(|s| ck.epoch >= s) {
            break;
        }
        let epoch = ck.epoch + 1;
        let lr = tcfg.learning_rate_after(ck.history.iter().map(|h| h.val_loss));
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(tcfg.seed);
        rng.set_stream(epoch as u64);
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let (mut loss_sum, mut norm_sum, mut batches) = (0.0f64, 0.0f64, 0usize);
        for batch in order.chunks(tcfg.batch_size) {
            let flat: Vec<f32> = batch.iter().flat_map(|&i| train[i].iter().copied()).collect();
            let x = tensor2(&flat, batch.len(), f, &device);
            let tracked: Vec<(Tensor<2>, Tensor<1>)> = params
                .iter()
                .map(|(w, b)| (w.clone().autodiff().require_grad(), b.clone().autodiff().require_grad()))
                .collect();
            let y = forward(&tracked, &layers, x.clone());
            let loss = (y - x).square().mean();
            let grads = loss.backward();
            loss_sum += f64::from(loss.inner().into_scalar::<f32>());
            let mut sq = 0.0f64;
            for (k, ((w, b), (tw, tb))) in params.iter_mut().zip(&tracked).enumerate() {
                let gw = tw.grad(&grads).context("no gradient for a weight")?;
                let gb = tb.grad(&grads).context("no gradient for a bias")?;
                sq += f64::from(gw.clone().square().sum().into_scalar::<f32>());
                sq += f64::from(gb.clone().square().sum().into_scalar::<f32>());
                let (nw, sw) = adam.step(lr, w.clone(), gw, states[k].0.take());
                let (nb, sb) = adam.step(lr, b.clone(), gb, states[k].1.take());
                *w = nw;
                *b = nb;
                states[k] = (sw, sb);
            }
            norm_sum += sq.sqrt();
            batches += 1;
        }
        let val_loss = f64::from(
            (forward(&params, &layers, val_x.clone()) - val_x.clone()).square().mean().into_scalar::<f32>(),
        );
        let entry = EpochLog {
            epoch,
            train_loss: loss_sum / batches as f64,
            val_loss,
            learning_rate: lr,
            grad_norm: norm_sum / batches as f64,
        };
        log.record("train/loss", epoch, entry.train_loss);
        log.record("val/loss", epoch, entry.val_loss);
        log.record("train/learning_rate", epoch, entry.learning_rate);
        log.record("train/grad_norm", epoch, entry.grad_norm);
        log.epoch_end();
        pb.set_position(epoch as u64);
        if crate::ui::verbose() {
            pb.suspend(|| {
                eprintln!(
                    "epoch {epoch}/{}: train loss {:.6}, validation loss {:.6}, learning rate {}",
                    tcfg.max_epochs, entry.train_loss, entry.val_loss, entry.learning_rate
                )
            });
        }
        ck.history.push(entry);
        ck.epoch = epoch;
        ck.model.layers = layers
            .iter()
            .zip(&params)
            .map(|(l, (w, b))| Dense { w: to_vec(w.clone()), b: to_vec(b.clone()), ..l.clone() })
            .collect();
        ck.adam = states
            .iter()
            .flat_map(|(s2, s1)| {
                let a2 = s2.as_ref().map(|s| AdamSlot {
                    time: s.momentum.time,
                    moment_1: to_vec(s.momentum.moment_1.clone()),
                    moment_2: to_vec(s.momentum.moment_2.clone()),
                });
                let a1 = s1.as_ref().map(|s| AdamSlot {
                    time: s.momentum.time,
                    moment_1: to_vec(s.momentum.moment_1.clone()),
                    moment_2: to_vec(s.momentum.moment_2.clone()),
                });
                [a2, a1]
            })
            .collect();
        if val_loss < ck.best_val_loss {
            ck.best_val_loss = val_loss;
            ck.best_epoch = epoch;
            since_best = 0;
        } else {
            since_best += 1;
        }
        if !(entry_is_finite(ck.history.last()) && ck.model.layers.iter().all(Dense::is_finite)) {
            bail!(UsageError(format!(
                "training diverged at epoch {epoch} (loss or weights not finite): lower train.learning_rate \
                 (now {}); nothing of this run was published",
                tcfg.learning_rate
            )));
        }
        log.flush()?;
        ck.save(&dir.join(crate::layout::epoch_file(epoch)))?;
        // best before last: a run cut between the two still has a best at least as new as last's.
        if ck.best_epoch == epoch {
            ck.save(&dir.join(BEST))?;
        }
        ck.save(&dir.join(LAST))?;
        prune_epochs(dir, epoch, tcfg.keep_epochs)?;
    }
    pb.finish_and_clear();
    Ok(ck)
}

/// One paragraph on how a training ended and where it was logged (for `avm run`).
pub fn summary(cfg: &PipelineConfig, ck: &Checkpoint) -> String {
    let t = &ck.config;
    let ended = if ck.epoch >= t.max_epochs && ck.epoch - ck.best_epoch.min(ck.epoch) < t.patience {
        format!("cut by max_epochs at epoch {} (best {}): not converged", ck.epoch, ck.best_epoch)
    } else if ck.epoch - ck.best_epoch.min(ck.epoch) >= t.patience {
        format!(
            "early stopping fired at epoch {} of at most {} ({} epochs without a better validation loss; best {})",
            ck.epoch, t.max_epochs, t.patience, ck.best_epoch
        )
    } else {
        format!("stopped at epoch {} (best {})", ck.epoch, ck.best_epoch)
    };
    let mut s = format!("{ended}, best validation loss {:.6}", ck.best_val_loss);
    if let Some(link) = crate::tracking::run_link(&training_dir(cfg)) {
        if let Some(d) = &link.tensorboard_run_dir {
            s.push_str(&format!("\nTensorBoard: {}", d.display()));
        }
        if let (Some(uri), Some(run)) = (&link.mlflow_uri, &link.mlflow_run_id) {
            s.push_str(&format!("\nMLflow: {uri}, run {run} ({})", link.run_name));
        }
        if !link.unsent.is_empty() {
            s.push_str(&format!("\ntracking: not sent: {}", link.unsent.join("; ")));
        }
    }
    s
}

fn entry_is_finite(e: Option<&EpochLog>) -> bool {
    e.is_none_or(|e| e.train_loss.is_finite() && e.val_loss.is_finite() && e.grad_norm.is_finite())
}

/// Removes `epoch_NNN.json` files older than the `keep` most recent (up to `epoch`).
fn prune_epochs(dir: &Path, epoch: usize, keep: usize) -> Result<()> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for e in rd {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let n = crate::layout::epoch_of(&name);
        if let Some(n) = n
            && n + keep <= epoch
        {
            std::fs::remove_file(e.path()).with_context(|| format!("removing {}", e.path().display()))?;
        }
    }
    Ok(())
}

pub use crate::layout::{BEST, LAST};

/// Runs the stage: loads the splits and the scaler, trains, returns the last checkpoint.
///
/// The run is written into a fresh staging directory beside the output directory and renamed
/// into place only when it ends well ([`crate::io::replace_dir_atomic`]): a failed run (NaN,
/// disk full, killed) leaves the previous run's directory as it was, never a mix of two runs.
/// A resumed run starts from a copy of the checkpoint's directory.
pub fn run(cfg: &PipelineConfig, opts: &TrainOptions) -> Result<Checkpoint> {
    let tcfg = cfg.train.clone();
    let scaler = ScalerFile::load(&featurize::features_dir(cfg).join(crate::layout::SCALER_JSON))
        .map_err(|e| UsageError(format!("{e:#}: run `avm featurize` first")))?;
    let train = featurize::load_split(cfg, "training")?;
    let val = featurize::load_split(cfg, "validation")?;
    ensure!(
        train.names == scaler.feature_names,
        UsageError("features and scaler disagree: rerun `avm featurize`".into())
    );
    let (xt, xv) = (normal_matrix(&train, &scaler)?, normal_matrix(&val, &scaler)?);
    if let Some(b) = &scaler.baselines {
        ensure!(
            !xv.is_empty(),
            UsageError(format!(
                "the validation split has no clean normal window of a unit with a training baseline \
                 (baseline.by = {:?}; units with one: {}): early stopping needs some. Give each unit \
                 training flights (split.lists) or lower baseline.min_windows",
                b.by,
                b.units.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        );
    }
    let out = opts.dir(cfg);
    let resume = opts.resume_from.as_deref().map(load_resume).transpose()?;
    // TensorBoard and MLflow follow the training epoch by epoch (best effort, never a failure).
    let live = std::sync::Arc::new(std::sync::Mutex::new(crate::tracking::Live::start(cfg)));
    let trained = crate::io::replace_dir_atomic(&out, |dir| {
        if let Some((from, _, best)) = &resume {
            copy_run(from, dir)?;
            if let Some(best) = best {
                best.save(&dir.join(BEST))?;
            }
        }
        let resume_ck = resume.as_ref().map(|(_, ck, _)| ck.clone());
        let mut log =
            MetricLog::open(&dir.join(crate::layout::METRICS_LOG), resume_ck.as_ref().map(|c| c.epoch))?;
        log.attach(live.clone());
        let data = Matrices { train: &xt, val: &xv };
        let ck = fit(&tcfg, &train.names, data, dir, (resume_ck, opts.stop_after_epochs), &mut log)?;
        log.flush()?;
        Ok(ck)
    });
    let take_live = |live: std::sync::Arc<std::sync::Mutex<crate::tracking::Live>>| {
        std::sync::Arc::try_unwrap(live).ok().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
    };
    let ck = match trained {
        Ok(ck) => ck,
        Err(e) => {
            if let Some(l) = take_live(live) {
                l.abandon(&format!("{e:#}"));
            }
            return Err(e);
        }
    };
    let log = MetricLog::open(&out.join(crate::layout::METRICS_LOG), Some(ck.epoch))?;
    // After the checkpoints are safe on disk: tracking can only add, never lose.
    crate::tracking::after_training(cfg, &out, &log, take_live(live));
    Ok(ck)
}

/// The checkpoint to resume, its directory, and the best checkpoint that goes with it when the
/// directory's `best.json` is not the one `last` refers to (a run cut between writing the two,
/// by an older avm): then the epoch file of the best epoch is used, or the resume is refused.
fn load_resume(path: &Path) -> Result<(PathBuf, Checkpoint, Option<Checkpoint>)> {
    let ck = Checkpoint::load(path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let best_path = dir.join(BEST);
    let best = if best_path.exists() { Some(Checkpoint::load(&best_path)?) } else { None };
    if ck.epoch == 0 || best.as_ref().is_some_and(|b| b.epoch == ck.best_epoch) {
        return Ok((dir, ck, None));
    }
    let epoch_file = dir.join(crate::layout::epoch_file(ck.best_epoch));
    if epoch_file.exists() {
        let b = Checkpoint::load(&epoch_file)?;
        ensure!(
            b.epoch == ck.best_epoch,
            UsageError(format!("{} holds epoch {}, not {}", epoch_file.display(), b.epoch, ck.best_epoch))
        );
        return Ok((dir, ck, Some(b)));
    }
    bail!(UsageError(format!(
        "cannot resume from {}: its best epoch is {} but {} holds {} and {} was not kept; \
         train again without --resume",
        path.display(),
        ck.best_epoch,
        best_path.display(),
        best.map_or("nothing".to_string(), |b| format!("epoch {}", b.epoch)),
        epoch_file.display()
    )))
}

/// Copies the files of a training directory (checkpoints, metric log) into `to`.
fn copy_run(from: &Path, to: &Path) -> Result<()> {
    let rd = std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))?;
    for e in rd {
        let e = e.with_context(|| format!("listing {}", from.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_file()) && !name.starts_with('.') {
            std::fs::copy(e.path(), to.join(&name))
                .with_context(|| format!("copying {} to {}", e.path().display(), to.display()))?;
        }
    }
    Ok(())
}
