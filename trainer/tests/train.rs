//! Training: same config and seed give bit-identical weights; a resumed run ends exactly where
//! an uninterrupted one does; the burn forward pass matches a plain re-computation.

use avm_trainer::config::{Activation, TrainConfig};
use avm_trainer::model::autoencoder as model;
use avm_trainer::model::checkpoint::Checkpoint;
use avm_trainer::stages::train::{self, Matrices};
use avm_trainer::tracking::MetricLog;

fn cfg() -> TrainConfig {
    TrainConfig {
        hidden: vec![6, 3, 6],
        activation: Activation::Relu,
        learning_rate: 0.01,
        batch_size: 16,
        max_epochs: 12,
        patience: 100,
        seed: 3,
        keep_epochs: 3,
        lr_schedule: None,
    }
}

/// Correlated 8-feature data: 4 latent factors mixed linearly, plus noise.
fn data(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut u = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..n)
        .map(|_| {
            let z = [u(), u(), u(), u()];
            (0..8).map(|j| z[j % 4] * (1.0 + j as f32 * 0.1) + 0.05 * u()).collect()
        })
        .collect()
}

fn names() -> Vec<String> {
    (0..8).map(|i| format!("f{i}")).collect()
}

fn weights(ck: &Checkpoint) -> Vec<u32> {
    ck.model.layers.iter().flat_map(|l| l.w.iter().chain(&l.b)).map(|x| x.to_bits()).collect()
}

fn fit(dir: &std::path::Path, resume: Option<Checkpoint>, stop: Option<usize>) -> Checkpoint {
    let (t, v) = (data(200, 1), data(60, 2));
    let mut log = MetricLog::open(&dir.join("metrics.jsonl"), resume.as_ref().map(|c| c.epoch)).unwrap();
    train::fit(&cfg(), &names(), Matrices { train: &t, val: &v }, dir, (resume, stop), &mut log).unwrap()
}

#[test]
fn same_seed_same_weights_and_it_learns() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let x = fit(a.path(), None, None);
    let y = fit(b.path(), None, None);
    assert_eq!(weights(&x), weights(&y));
    assert_eq!(x.history, y.history);
    assert_eq!(x.epoch, 12);
    let first = x.history.first().unwrap().val_loss;
    let last = x.history.last().unwrap().val_loss;
    assert!(last < 0.7 * first, "validation loss {first} -> {last}");
    assert!(x.history.iter().all(|h| h.grad_norm.is_finite() && h.grad_norm > 0.0));
    let other = TrainConfig { seed: 4, ..cfg() };
    let init = model::Autoencoder::init(8, &other);
    assert_ne!(init, model::Autoencoder::init(8, &cfg()));
    // Checkpoints per epoch, the last and the best.
    assert!(a.path().join("epoch_012.json").exists() && a.path().join("last.json").exists());
    assert!(a.path().join("best.json").exists());
}

#[test]
fn resumed_run_ends_with_the_same_weights() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let full = fit(a.path(), None, None);
    let part = fit(b.path(), None, Some(5));
    assert_eq!(part.epoch, 5);
    let saved = Checkpoint::load(&b.path().join("last.json")).unwrap();
    assert_eq!(saved, part);
    let resumed = fit(b.path(), Some(saved), None);
    assert_eq!(resumed.epoch, 12);
    assert_eq!(weights(&resumed), weights(&full));
    assert_eq!(resumed.history, full.history);
    assert_eq!(resumed.adam, full.adam);
    // The metric log continues too: one record per metric per epoch.
    let log = std::fs::read_to_string(b.path().join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"val/loss\"")).count(), 12);
}

#[test]
fn early_stopping_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (t, v) = (data(200, 1), data(60, 2));
    let c = TrainConfig { patience: 2, max_epochs: 200, learning_rate: 0.05, ..cfg() };
    let mut log = MetricLog::open(&dir.path().join("m.jsonl"), None).unwrap();
    let ck = train::fit(&c, &names(), Matrices { train: &t, val: &v }, dir.path(), (None, None), &mut log)
        .unwrap();
    assert!(ck.epoch < 200, "ran all epochs");
    assert_eq!(ck.epoch, ck.best_epoch + 2);
}

#[test]
fn plateau_schedule_reduces_the_rate_and_resumes_exactly() {
    use avm_trainer::config::LrSchedule;
    let c = TrainConfig {
        max_epochs: 40,
        learning_rate: 0.05,
        lr_schedule: Some(LrSchedule { factor: 0.5, patience: 2, min_learning_rate: 0.01 }),
        ..cfg()
    };
    let (t, v) = (data(200, 1), data(60, 2));
    let run = |dir: &std::path::Path, resume: Option<Checkpoint>, stop: Option<usize>| {
        let mut log = MetricLog::open(&dir.join("m.jsonl"), resume.as_ref().map(|c| c.epoch)).unwrap();
        train::fit(&c, &names(), Matrices { train: &t, val: &v }, dir, (resume, stop), &mut log).unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let full = run(a.path(), None, None);
    let rates: Vec<f64> = full.history.iter().map(|h| h.learning_rate).collect();
    assert_eq!(rates[0], 0.05);
    assert!(rates.windows(2).all(|w| w[1] <= w[0]), "never raised: {rates:?}");
    assert!(rates.iter().any(|&r| r < 0.05), "never reduced in 40 epochs: {rates:?}");
    assert!(rates.iter().all(|&r| r >= 0.01), "below the floor: {rates:?}");
    // Each reduction follows `patience` epochs without a new best (replayed independently).
    let mut best = f64::INFINITY;
    let (mut stale, mut lr) = (0, 0.05f64);
    for h in &full.history {
        assert_eq!(h.learning_rate, lr, "epoch {}", h.epoch);
        if h.val_loss < best {
            best = h.val_loss;
            stale = 0;
        } else {
            stale += 1;
        }
        if stale == 2 {
            lr = (lr * 0.5).max(0.01);
            stale = 0;
        }
    }
    // Interrupted mid-way and resumed: the same rates and weights.
    let part = run(b.path(), None, Some(17));
    let resumed = run(b.path(), Some(part), None);
    assert_eq!(resumed.history, full.history);
    assert_eq!(weights(&resumed), weights(&full));
}

#[test]
fn burn_forward_matches_a_plain_computation() {
    let model = model::Autoencoder::init(8, &cfg());
    let x = data(5, 9);
    let (recon, scores) = model::burn_scores(&model, &x);
    for (row, (r, s)) in x.iter().zip(recon.iter().zip(&scores)) {
        let mut h: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        for l in &model.layers {
            h = (0..l.d_out)
                .map(|j| {
                    let z = f64::from(l.b[j])
                        + (0..l.d_in).map(|i| h[i] * f64::from(l.w[i * l.d_out + j])).sum::<f64>();
                    if l.activation == Activation::Relu { z.max(0.0) } else { z }
                })
                .collect();
        }
        for (a, b) in h.iter().zip(r) {
            assert!((a - f64::from(*b)).abs() < 1e-5, "{a} vs {b}");
        }
        let mse = h.iter().zip(row).map(|(a, b)| (a - f64::from(*b)).powi(2)).sum::<f64>() / 8.0;
        assert!((mse - f64::from(*s)).abs() < 1e-5 * mse.max(1.0), "{mse} vs {s}");
    }
}

#[test]
fn a_diverging_run_is_an_error_not_nan_weights() {
    // Inputs near f32::MAX overflow the loss at once: the run must stop with a usage error that
    // names the key to change, instead of writing NaN weights as if all were well.
    let dir = tempfile::tempdir().unwrap();
    let huge: Vec<Vec<f32>> =
        (0..16).map(|i| (0..8).map(|j| 3e38 * if (i + j) % 2 == 0 { 1.0 } else { -1.0 }).collect()).collect();
    let names: Vec<String> = (0..8).map(|j| format!("f{j}")).collect();
    let mut log = MetricLog::open(&dir.path().join("m.jsonl"), None).unwrap();
    let e = train::fit(
        &cfg(),
        &names,
        train::Matrices { train: &huge[..12], val: &huge[12..] },
        dir.path(),
        (None, None),
        &mut log,
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("diverged at epoch 1") && msg.contains("train.learning_rate"), "{msg}");
    assert!(e.downcast_ref::<avm_trainer::error::UsageError>().is_some());
    assert!(!dir.path().join("last.json").exists() && !dir.path().join("best.json").exists());
}
