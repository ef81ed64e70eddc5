//! `avm evaluate`: how well the detector separates engine faults from normal operation, the
//! way a safety engineer reads it.
//!
//! - Anomaly score = reconstruction MSE of the z-scored feature vector, per window, computed by
//!   avm-core's evaluator (the firmware's arithmetic). Only valid
//!   windows get a verdict (an invalid one has unrepaired gaps; the firmware reports "no
//!   verdict" for it); their count is reported. Windows with a labelled sensor (data-quality)
//!   event are normal-engine windows: they are kept out of calibration and of the engine
//!   metrics and reported apart (how often they alarm), so a data-quality problem is never
//!   counted as a detected or a missed engine fault.
//! - Threshold calibrated on the validation split's normal (label 0) windows: the lowest
//!   threshold whose false-alarm rate meets `target_far` (which maximises recall). Optionally
//!   one threshold per flight phase (phases with at least `min_phase_windows` normal windows;
//!   others use the global one). Both are reported on the test split.
//! - Test metrics: ROC AUC, precision, recall, F1, FAR = FP/(FP+TN), false alarms per flight
//!   hour (each window stands for one hop of flight time), the confusion matrix; breakdowns by
//!   phase (FAR, recall), fault type and severity class (recall), and on sensor-event windows
//!   (which are normal-engine windows: an alarm there is a false alarm); score quantiles per
//!   class.
//! - 5-fold cross-validation grouped by flight: every flight of the data set in one fold;
//!   fold k tests, fold k+1 validates (early stopping, threshold), the rest train (scaler and
//!   model refitted). Mean and standard deviation of each metric.
//! - Writes `metrics.json`, `roc.{png,svg}`, `confusion.{png,svg}` into the evaluation
//!   directory next to the model (replaced atomically).

pub use crate::config::EvalConfig;
use crate::config::PipelineConfig;
use crate::error::UsageError;
use crate::formats::scaler::ScalerFile;
use crate::formats::windows::{NONE, Window as Row};
use crate::layout;
use crate::model::autoencoder::Autoencoder;
use crate::model::checkpoint::Checkpoint;
use crate::model::metrics::{self, Confusion, names};
use crate::stages::featurize::{self, FeatureSet};
use crate::stages::train;
use crate::tracking::MetricLog;
use crate::tracking::plots;
use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Metrics at one operating point.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OperatingPoint {
    /// Confusion counts.
    pub confusion: Confusion,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// False-alarm rate FP / (FP + TN).
    pub far: f64,
    /// False alarms per flight hour.
    pub false_alarms_per_flight_hour: f64,
}

/// A group's numbers (phase, fault type...).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Group {
    /// Windows in the group.
    pub windows: usize,
    /// Faulty windows.
    pub faulty: usize,
    /// Recall on the faulty ones (null without any).
    pub recall: Option<f64>,
    /// FAR on the normal ones (null without any).
    pub far: Option<f64>,
}

/// Score quantiles of one class.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Distribution {
    /// Windows.
    pub n: usize,
    /// min, 5 %, 25 %, 50 %, 75 %, 95 %, max (null for an empty class).
    pub quantiles: Option<[f64; 7]>,
}

impl EvalReport {
    /// The headline metrics under their [`names`]: test metrics at the global threshold, the
    /// threshold, per-phase-threshold metrics when calibrated, and the cross-validation means
    /// and deviations (`cv/<metric>_mean`, `cv/<metric>_std`).
    pub fn headline(&self) -> std::collections::BTreeMap<String, f64> {
        let mut m: std::collections::BTreeMap<String, f64> = [
            (names::TEST_AUC, self.auc),
            (names::TEST_PRECISION, self.test.precision),
            (names::TEST_RECALL, self.test.recall),
            (names::TEST_F1, self.test.f1),
            (names::TEST_FAR, self.test.far),
            (names::TEST_FALSE_ALARMS_PER_FLIGHT_HOUR, self.test.false_alarms_per_flight_hour),
            (names::TEST_THRESHOLD, self.threshold),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(p) = &self.test_per_phase_thresholds {
            m.insert(names::TEST_PER_PHASE_PRECISION.into(), p.precision);
            m.insert(names::TEST_PER_PHASE_RECALL.into(), p.recall);
            m.insert(names::TEST_PER_PHASE_FAR.into(), p.far);
        }
        for (k, (mean, sd)) in self.cross_validation.iter().flatten() {
            m.insert(format!("cv/{k}_mean"), *mean);
            m.insert(format!("cv/{k}_std"), *sd);
        }
        m
    }
}

impl std::fmt::Display for EvalReport {
    /// The test metrics at the global threshold, per-phase thresholds, recall per fault type
    /// and the cross-validation means.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.test;
        write!(
            f,
            "test: AUC {:.3}, precision {:.3}, recall {:.3}, F1 {:.3}, FAR {:.3} ({:.2} false alarms per flight hour) \
             at threshold {:.5} (target FAR {})",
            self.auc,
            t.precision,
            t.recall,
            t.f1,
            t.far,
            t.false_alarms_per_flight_hour,
            self.threshold,
            self.target_far
        )?;
        if let Some(p) = &self.test_per_phase_thresholds {
            write!(
                f,
                "\n  with per-phase thresholds: precision {:.3}, recall {:.3}, FAR {:.3}",
                p.precision, p.recall, p.far
            )?;
        }
        for (t, g) in &self.by_fault_type {
            write!(f, "\n  recall {t:<16} {:.3} ({} windows)", g.recall.unwrap_or(f64::NAN), g.faulty)?;
        }
        for (m, (mean, sd)) in self.cross_validation.iter().flatten() {
            write!(f, "\n  {}-fold CV {m:<30} {mean:.3} ± {sd:.3}", self.cv_folds)?;
        }
        Ok(())
    }
}

/// Everything `metrics.json` holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// Checkpoint evaluated.
    pub checkpoint: String,
    /// sha256 of the checkpoint file (export checks it evaluates the same model).
    pub checkpoint_sha256: String,
    /// Epoch of that checkpoint.
    pub epoch: usize,
    /// Calibration target.
    pub target_far: f64,
    /// Global threshold.
    pub threshold: f64,
    /// Per-phase thresholds (phases without enough data use the global one).
    pub phase_thresholds: BTreeMap<String, f64>,
    /// Test ROC AUC.
    pub auc: f64,
    /// Test metrics at the global threshold.
    pub test: OperatingPoint,
    /// Test metrics with per-phase thresholds.
    pub test_per_phase_thresholds: Option<OperatingPoint>,
    /// Validation metrics at the global threshold.
    pub validation: OperatingPoint,
    /// Test windows without a verdict (invalid).
    pub test_windows_without_verdict: usize,
    /// Test breakdown by phase.
    pub by_phase: BTreeMap<String, Group>,
    /// Test breakdown by engine fault type.
    pub by_fault_type: BTreeMap<String, Group>,
    /// Test breakdown by severity class (`subtle` < 0.35 <= `gross`).
    pub by_severity: BTreeMap<String, Group>,
    /// Test windows with a sensor event (normal engine): FAR there.
    pub sensor_event_windows: Group,
    /// Score quantiles: `normal`, `faulty`, `sensor_event`.
    pub score_distributions: BTreeMap<String, Distribution>,
    /// Cross-validation: per metric, mean and standard deviation over the folds.
    pub cross_validation: Option<BTreeMap<String, (f64, f64)>>,
    /// Cross-validation folds run.
    pub cv_folds: usize,
}

/// Reconstruction-MSE scores of rows, computed by avm-core's evaluator (the firmware's
/// numbers: thresholds calibrated on them hold on board bit for bit).
pub fn score(model: &Autoencoder, scaler: &ScalerFile, rows: &[&Row]) -> Result<Vec<f64>> {
    let s = crate::model::detector::core_scores(model, scaler, rows.iter().map(|r| r.features.as_slice()))?;
    Ok(s.into_iter().map(f64::from).collect())
}

fn operating_point(scores: &[f64], labels: &[u8], thresholds: &[f64], hop_s: f64) -> Result<OperatingPoint> {
    let c = Confusion::at_each(scores, labels, |i| thresholds[i])?;
    let hours = (c.fp + c.tn) as f64 * hop_s / 3600.0;
    Ok(OperatingPoint {
        precision: c.precision(),
        recall: c.recall(),
        f1: c.f1(),
        far: c.false_alarm_rate(),
        false_alarms_per_flight_hour: if hours > 0.0 { c.fp as f64 / hours } else { 0.0 },
        confusion: c,
    })
}

fn group<'a>(items: impl Iterator<Item = (&'a Row, f64, f64)>) -> Group {
    let (mut n, mut faulty, mut tp, mut normal, mut fp) = (0, 0, 0, 0, 0);
    for (r, s, t) in items {
        n += 1;
        if r.label == 1 {
            faulty += 1;
            tp += usize::from(s > t);
        } else {
            normal += 1;
            fp += usize::from(s > t);
        }
    }
    Group {
        windows: n,
        faulty,
        recall: (faulty > 0).then(|| tp as f64 / faulty as f64),
        far: (normal > 0).then(|| fp as f64 / normal as f64),
    }
}

fn distribution(mut v: Vec<f64>) -> Distribution {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Distribution {
        n: v.len(),
        quantiles: (!v.is_empty()).then(|| [q(0.0), q(0.05), q(0.25), q(0.5), q(0.75), q(0.95), q(1.0)]),
    }
}

/// The core of one evaluation: thresholds from `val`, metrics on `test`.
pub struct Evaluated {
    /// Report (without CV).
    pub report: EvalReport,
    /// Test ROC curve.
    pub roc: Vec<(f64, f64, f64)>,
}

/// Evaluates a model on validation and test sets.
pub fn evaluate_sets(
    ecfg: &EvalConfig,
    model: &Autoencoder,
    scaler: &ScalerFile,
    val: &FeatureSet,
    test: &FeatureSet,
    hop_s: f64,
) -> Result<Evaluated> {
    // Engine-health verdicts: valid windows without a labelled data-quality event. Windows with
    // a sensor event are normal-engine windows scored and reported apart (their alarm rate).
    let scored = |r: &&Row| r.valid && r.sensor_event == NONE;
    let val_rows: Vec<&Row> = val.rows.iter().filter(scored).collect();
    let test_rows: Vec<&Row> = test.rows.iter().filter(scored).collect();
    let sensor_rows: Vec<&Row> =
        test.rows.iter().filter(|r| r.valid && r.label == 0 && r.sensor_event != NONE).collect();
    let sensor_scores = score(model, scaler, &sensor_rows)?;
    let (vs, ts) = (score(model, scaler, &val_rows)?, score(model, scaler, &test_rows)?);
    let vl: Vec<u8> = val_rows.iter().map(|r| r.label).collect();
    let tl: Vec<u8> = test_rows.iter().map(|r| r.label).collect();
    let threshold = metrics::calibrate_threshold(&vs, &vl, ecfg.target_far)?;
    let mut phase_thresholds = BTreeMap::new();
    if ecfg.per_phase_thresholds {
        let mut phases: Vec<&str> = val_rows.iter().map(|r| r.phase.as_str()).collect();
        phases.sort();
        phases.dedup();
        for p in phases {
            let (s, l): (Vec<f64>, Vec<u8>) = val_rows
                .iter()
                .zip(&vs)
                .filter(|(r, _)| r.phase == p && r.label == 0)
                .map(|(r, s)| (*s, r.label))
                .unzip();
            if s.len() >= ecfg.min_phase_windows {
                phase_thresholds
                    .insert(p.to_string(), metrics::calibrate_threshold(&s, &l, ecfg.target_far)?);
            }
        }
    }
    let auc = metrics::roc_auc(&ts, &tl)?;
    let roc = metrics::roc_curve(&ts, &tl)?;
    let global = vec![threshold; ts.len()];
    let per_phase: Vec<f64> =
        test_rows.iter().map(|r| *phase_thresholds.get(&r.phase).unwrap_or(&threshold)).collect();
    let with = |f: &dyn Fn(&Row) -> bool| {
        group(test_rows.iter().zip(&ts).filter(|(r, _)| f(r)).map(|(r, s)| (*r, *s, threshold)))
    };
    let mut by_phase = BTreeMap::new();
    let mut by_fault = BTreeMap::new();
    for r in &test_rows {
        by_phase.entry(r.phase.clone()).or_insert(());
        if r.label == 1 {
            by_fault.entry(r.fault_type.clone()).or_insert(());
        }
    }
    let by_phase = by_phase.into_keys().map(|p| (p.clone(), with(&|r: &Row| r.phase == p))).collect();
    let by_fault_type = by_fault
        .into_keys()
        .map(|f| (f.clone(), with(&|r: &Row| r.label == 1 && r.fault_type == f)))
        .collect();
    let by_severity = [("subtle", true), ("gross", false)]
        .into_iter()
        .map(|(n, subtle)| (n.to_string(), with(&|r: &Row| r.label == 1 && (r.severity < 0.35) == subtle)))
        .collect();
    let cls = |f: &dyn Fn(&Row) -> bool| {
        distribution(test_rows.iter().zip(&ts).filter(|(r, _)| f(r)).map(|(_, s)| *s).collect())
    };
    let mut score_distributions = BTreeMap::new();
    score_distributions.insert("normal".into(), cls(&|r: &Row| r.label == 0 && r.sensor_event == "none"));
    score_distributions.insert("faulty".into(), cls(&|r: &Row| r.label == 1));
    score_distributions
        .insert("sensor_event".into(), cls(&|r: &Row| r.label == 0 && r.sensor_event != "none"));
    let report = EvalReport {
        checkpoint: String::new(),
        checkpoint_sha256: String::new(),
        epoch: 0,
        target_far: ecfg.target_far,
        threshold,
        auc,
        test: operating_point(&ts, &tl, &global, hop_s)?,
        test_per_phase_thresholds: ecfg
            .per_phase_thresholds
            .then(|| operating_point(&ts, &tl, &per_phase, hop_s))
            .transpose()?,
        validation: operating_point(&vs, &vl, &vec![threshold; vs.len()], hop_s)?,
        phase_thresholds,
        test_windows_without_verdict: test.rows.iter().filter(|r| !r.valid).count(),
        by_phase,
        by_fault_type,
        by_severity,
        sensor_event_windows: group(sensor_rows.iter().zip(&sensor_scores).map(|(r, s)| (*r, *s, threshold))),
        score_distributions,
        cross_validation: None,
        cv_folds: 0,
    };
    Ok(Evaluated { report, roc })
}

/// k-fold cross-validation grouped by flight over `all` rows.
pub fn cross_validate(
    cfg: &PipelineConfig,
    ecfg: &EvalConfig,
    names: &[String],
    units: &[String],
    all: &[Row],
    hop_s: f64,
    work: &Path,
) -> Result<BTreeMap<String, (f64, f64)>> {
    let k = ecfg.cv_folds;
    ensure!(
        k >= 3,
        UsageError(format!(
            "evaluate.cv_folds = {k}: cross-validation needs at least 3 folds (test, validation, training) or 0 to disable it"
        ))
    );
    let tcfg = cfg.train.clone();
    let seed = cfg.split.seed;
    let mut flights: Vec<String> = all.iter().map(|r| r.flight_id.clone()).collect();
    flights.sort();
    flights.dedup();
    ensure!(
        flights.len() >= k,
        UsageError(format!("{} flights are too few for {k}-fold cross-validation", flights.len()))
    );
    let folds = featurize::split_flights(
        &flights,
        &featurize::SplitConfig { training: 1.0, validation: 0.0, test: 0.0, seed },
    )?[0]
        .clone();
    let fold_of = |f: &str| folds.iter().position(|x| x == f).unwrap_or(0) % k;
    let mut per_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let pb = crate::stages::progress(k, "cross-val");
    for fold in 0..k {
        let set = |pred: &dyn Fn(usize) -> bool| FeatureSet {
            names: names.to_vec(),
            rows: all.iter().filter(|r| pred(fold_of(&r.flight_id))).cloned().collect(),
        };
        let test = set(&|f| f == fold);
        let val = set(&|f| f == (fold + 1) % k);
        let train_set = set(&|f| f != fold && f != (fold + 1) % k);
        let scaler = featurize::fit_scaler(names, units.to_vec(), &train_set.rows)?;
        let (xt, xv) = (train::normal_matrix(&train_set, &scaler)?, train::normal_matrix(&val, &scaler)?);
        let dir = work.join(format!("fold_{fold}"));
        std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
        let mut log = MetricLog::open(&dir.join(layout::METRICS_LOG), None)?;
        train::fit(&tcfg, names, train::Matrices { train: &xt, val: &xv }, &dir, (None, None), &mut log)?;
        let best = Checkpoint::load(&dir.join(train::BEST))?;
        let e = evaluate_sets(ecfg, &best.model, &scaler, &val, &test, hop_s)?.report;
        for (m, v) in [
            ("auc", e.auc),
            ("precision", e.test.precision),
            ("recall", e.test.recall),
            ("f1", e.test.f1),
            ("far", e.test.far),
            ("false_alarms_per_flight_hour", e.test.false_alarms_per_flight_hour),
        ] {
            per_metric.entry(m.into()).or_default().push(v);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(per_metric
        .into_iter()
        .map(|(m, v)| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            (m, (mean, sd))
        })
        .collect())
}

/// Where the evaluation of a config's model goes.
pub fn evaluation_dir(cfg: &PipelineConfig) -> PathBuf {
    cfg.paths.evaluation(&cfg.name)
}

/// Runs the stage.
pub fn run(cfg: &PipelineConfig, checkpoint: Option<&Path>) -> Result<EvalReport> {
    let ecfg = cfg.evaluate.clone();
    let ck_path =
        checkpoint.map(Path::to_path_buf).unwrap_or_else(|| train::training_dir(cfg).join(train::BEST));
    let ck = Checkpoint::load(&ck_path).map_err(|e| UsageError(format!("{e:#}: run `avm train` first")))?;
    let scaler = ScalerFile::load(&featurize::features_dir(cfg).join(layout::SCALER_JSON))?;
    ensure!(
        ck.feature_names == scaler.feature_names,
        UsageError("checkpoint and scaler disagree on the features".into())
    );
    let val = featurize::load_split(cfg, "validation")?;
    let test = featurize::load_split(cfg, "test")?;
    let hop_s = cfg.features.hop_s;
    let Evaluated { mut report, roc } = evaluate_sets(&ecfg, &ck.model, &scaler, &val, &test, hop_s)?;
    report.checkpoint = ck_path.display().to_string();
    report.checkpoint_sha256 = crate::io::sha256_file(&ck_path)?;
    report.epoch = ck.epoch;
    let dir = evaluation_dir(cfg);
    crate::io::replace_dir_atomic(&dir, |stage| {
        if ecfg.cv_folds > 0 {
            let mut all = featurize::load_split(cfg, "training")?.rows;
            all.extend(val.rows.iter().cloned());
            all.extend(test.rows.iter().cloned());
            report.cross_validation = Some(cross_validate(
                cfg,
                &ecfg,
                &ck.feature_names,
                &scaler.units,
                &all,
                hop_s,
                &stage.join("cv"),
            )?);
            report.cv_folds = ecfg.cv_folds;
        }
        plots::roc(stage, "roc", &roc, report.auc, "ROC, test split")?;
        plots::confusion(
            stage,
            "confusion",
            &report.test.confusion,
            &format!("test, threshold {:.4}", report.threshold),
        )?;
        crate::io::write_bytes_atomic(
            &stage.join(layout::METRICS_JSON),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        let mut log = MetricLog::open(&stage.join(layout::METRICS_LOG), None)?;
        for (n, v) in report.headline() {
            log.record(&n, report.epoch, v);
        }
        log.flush()
    })?;
    let mut m: Vec<(String, f64)> = report.headline().into_iter().collect();
    for (phase, g) in &report.by_phase {
        if let Some(v) = g.far {
            m.push((format!("phase/{phase}/far"), v));
        }
        if let Some(v) = g.recall {
            m.push((format!("phase/{phase}/recall"), v));
        }
    }
    let train_dir = ck_path.parent().unwrap_or(Path::new("."));
    crate::tracking::after_evaluation(cfg, train_dir, &dir, &m, report.epoch);
    Ok(report)
}
