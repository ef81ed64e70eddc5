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
//! - Optionally (`flight_calibration`) every threshold is then raised over flights: the
//!   split-conformal quantile of the healthy validation flights' alert statistics
//!   ([`calibration::flight_multiplier`]), so that at most the target fraction of new healthy
//!   flights is expected to raise an alert; the healthy flights that alert are reported for
//!   validation and test.
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

use crate::config::AlertConfig;
pub use crate::config::EvalConfig;
use crate::config::PipelineConfig;
use crate::error::UsageError;
use crate::formats::scaler::ScalerFile;
use crate::formats::windows::{NONE, Window as Row};
use crate::layout;
use crate::model::autoencoder::Autoencoder;
use crate::model::calibration;
use crate::model::checkpoint::Checkpoint;
use crate::model::flights;
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
            (names::TEST_FAR, self.test.far),
            (names::TEST_FALSE_ALARMS_PER_FLIGHT_HOUR, self.test.false_alarms_per_flight_hour),
            (names::TEST_THRESHOLD, self.threshold),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if !self.normal_only {
            for (k, v) in [
                (names::TEST_AUC, self.auc.unwrap_or(f64::NAN)),
                (names::TEST_PRECISION, self.test.precision),
                (names::TEST_RECALL, self.test.recall),
                (names::TEST_F1, self.test.f1),
            ] {
                m.insert(k.into(), v);
            }
        }
        if let Some(p) = &self.test_per_phase_thresholds {
            if !self.normal_only {
                m.insert(names::TEST_PER_PHASE_PRECISION.into(), p.precision);
                m.insert(names::TEST_PER_PHASE_RECALL.into(), p.recall);
            }
            m.insert(names::TEST_PER_PHASE_FAR.into(), p.far);
        }
        m.insert(names::TEST_FAR_DRIFT.into(), self.calibration.drift);
        let f = &self.flights;
        for (k, v) in [
            (names::TEST_FLIGHT_FAULT_ALERTED, f.fault_flights_alerted),
            (names::TEST_FLIGHT_GROSS_IN_TIME, f.gross_alerted_in_time),
            (names::TEST_FLIGHT_SUBTLE_ALERTED, f.subtle_alerted),
            (names::TEST_FLIGHT_FALSE_ALERTS_PER_100H, f.false_alerts_per_1000h.map(|x| x / 10.0)),
            (names::TEST_FLIGHT_DELAY_MEDIAN_S, f.delay.median_s),
            (names::TEST_FLIGHT_DELAY_P90_S, f.delay.p90_s),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        m.insert(names::TEST_FLIGHT_HEALTHY_HOURS.into(), f.healthy_hours);
        if let Some(fc) = &self.calibration.flights {
            m.insert(names::FLIGHT_CALIBRATION_MULTIPLIER.into(), fc.multiplier);
            if fc.test_healthy_flights > 0 {
                let alerting = fc.test_alerting_flights as f64 / fc.test_healthy_flights as f64;
                m.insert(names::TEST_FLIGHT_HEALTHY_ALERTING.into(), alerting);
            }
        }
        if let Some(t) = &self.training {
            m.insert(names::TRAIN_EPOCHS.into(), t.epochs as f64);
            m.insert(names::TRAIN_BEST_EPOCH.into(), t.best_epoch as f64);
            m.insert(names::TRAIN_CONVERGED.into(), f64::from(u8::from(t.converged)));
        }
        for (k, (mean, sd)) in self.cross_validation.iter().flatten() {
            m.insert(format!("cv/{k}_mean"), *mean);
            m.insert(format!("cv/{k}_std"), *sd);
        }
        m
    }

    /// Headline metrics this test split cannot measure, with the reason (their gates are
    /// skipped with that note, never silently passed).
    pub fn unmeasurable(&self) -> BTreeMap<String, String> {
        let f = &self.flights;
        let mut m = BTreeMap::new();
        if self.normal_only {
            for n in [names::TEST_AUC, names::TEST_PRECISION, names::TEST_RECALL, names::TEST_F1] {
                m.insert(
                    n.to_string(),
                    "normal-only test data: no engine-fault window, recall cannot be measured".to_string(),
                );
            }
        }
        let mut no = |name: &str, v: Option<f64>, why: &str| {
            if v.is_none() {
                m.entry(name.to_string()).or_insert_with(|| why.to_string());
            }
        };
        no(
            names::TEST_FLIGHT_GROSS_IN_TIME,
            f.gross_alerted_in_time,
            "no gross-fault flight in the test split",
        );
        no(names::TEST_FLIGHT_SUBTLE_ALERTED, f.subtle_alerted, "no subtle-fault flight in the test split");
        no(
            names::TEST_FLIGHT_FALSE_ALERTS_PER_100H,
            f.false_alerts_per_1000h,
            "no healthy flight hours in the test split",
        );
        m
    }
}

impl std::fmt::Display for EvalReport {
    /// The test metrics at the global threshold, per-phase thresholds, recall per fault type
    /// and the cross-validation means.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.test;
        if self.normal_only {
            write!(
                f,
                "test (normal-only data: no engine-fault window, so recall, precision and AUC cannot be measured; \
                 their gates are skipped): FAR {:.3} ({:.2} false alarms per flight hour) at threshold {:.5} (target FAR {})",
                t.far, t.false_alarms_per_flight_hour, self.threshold, self.target_far
            )?;
        } else {
            write!(
                f,
                "test: AUC {:.3}, precision {:.3}, recall {:.3}, F1 {:.3}, FAR {:.3} ({:.2} false alarms per flight hour) \
                 at threshold {:.5} (target FAR {})",
                self.auc.unwrap_or(f64::NAN),
                t.precision,
                t.recall,
                t.f1,
                t.far,
                t.false_alarms_per_flight_hour,
                self.threshold,
                self.target_far
            )?;
        }
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
        let opt = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.3}"));
        for (k, per) in &self.by_attribute {
            for (v, g) in per {
                write!(
                    f,
                    "\n  {k} = {v:<10} recall {}, FAR {} ({} windows, {} faulty)",
                    opt(g.recall),
                    opt(g.far),
                    g.windows,
                    g.faulty
                )?;
            }
        }
        if let Some(w) = &self.without_baseline {
            write!(
                f,
                "\n  units without a training baseline: {} commissioned from their first flight(s) ({}), {} not judged ({}); \
                 {} validation and {} test windows not judged",
                w.commissioned.len(),
                w.commissioned.join(", "),
                w.units.len(),
                w.units.join(", "),
                w.validation_windows,
                w.test_windows
            )?;
        }
        let c = &self.calibration;
        write!(
            f,
            "\n  calibration: {} ({} windows); FAR validation {:.4}, test {:.4} (drift {:+.4})",
            c.rule, c.windows, c.validation_far, c.test_far, c.drift
        )?;
        if let Some(fc) = &c.flights {
            match &fc.skipped {
                Some(note) => write!(f, "\n  {note}")?,
                None => write!(
                    f,
                    "\n  flight calibration: {} ({} healthy validation flights): thresholds x {:.3}; healthy flights alerting: validation {} of {}, test {} of {}",
                    fc.rule,
                    fc.healthy_flights,
                    fc.multiplier,
                    fc.validation_alerting_flights,
                    fc.healthy_flights,
                    fc.test_alerting_flights,
                    fc.test_healthy_flights
                )?,
            }
        }
        write!(f, "\n{}", FlightTable(&self.flights))?;
        if let Some(t) = &self.training {
            write!(f, "\n  {t}")?;
        }
        for (m, (mean, sd)) in self.cross_validation.iter().flatten() {
            write!(f, "\n  {}-fold CV {m:<30} {mean:.3} ± {sd:.3}", self.cv_folds)?;
        }
        Ok(())
    }
}

/// The flight-level table an operator reads.
pub struct FlightTable<'a>(pub &'a flights::FlightMetrics);

impl std::fmt::Display for FlightTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        let p = &m.policy;
        let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.0} %", 100.0 * v));
        let secs = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0} s"));
        write!(
            f,
            "  flights (alert: {} of {} windows, clear after {} below {} x threshold{}): {} healthy, {} engine-fault, {} sensor-event",
            p.raise_count,
            p.raise_window,
            p.clear_count,
            p.clear_fraction,
            if p.latch { ", latched" } else { "" },
            m.flights.get("healthy").unwrap_or(&0),
            m.flights.get("engine_fault").unwrap_or(&0),
            m.flights.get("sensor_event").unwrap_or(&0)
        )?;
        write!(
            f,
            "\n    fault flights alerted after onset {}; gross within {:.0} s {}; subtle before the end {}; delay median {}, p90 {}",
            pct(m.fault_flights_alerted),
            m.deadline_s,
            pct(m.gross_alerted_in_time),
            pct(m.subtle_alerted),
            secs(m.delay.median_s),
            secs(m.delay.p90_s)
        )?;
        if m.fault_flights_alert_up_at_onset > 0 {
            write!(
                f,
                "\n    {} fault flight(s) had an alert raised before onset still up at onset (counted as false, not as detected)",
                m.fault_flights_alert_up_at_onset
            )?;
        }
        match (m.false_alerts_per_1000h, m.false_alerts_per_1000h_ci95) {
            (Some(r), Some([lo, hi])) => write!(
                f,
                "\n    false alerts: {} in {:.2} healthy flight hours = {r:.0} per 1000 h (95 % CI {lo:.0} to {hi:.0})",
                m.false_alerts, m.healthy_hours
            )?,
            _ => write!(f, "\n    false alerts: no healthy flight hours observed")?,
        }
        write!(
            f,
            "\n    sensor-event flights: {} alerts in {:.2} h (data-quality alerts, counted apart)",
            m.sensor_event_alerts, m.sensor_event_hours
        )
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
    /// Test ROC AUC (null with normal-only test data).
    pub auc: Option<f64>,
    /// The test split holds no engine-fault window: recall, precision, F1 and AUC cannot be
    /// measured (their gates are skipped with that note); the false-alarm figures stand.
    #[serde(default)]
    pub normal_only: bool,
    /// Test metrics at the global threshold.
    pub test: OperatingPoint,
    /// Test metrics with per-phase thresholds.
    pub test_per_phase_thresholds: Option<OperatingPoint>,
    /// Validation metrics at the global threshold.
    pub validation: OperatingPoint,
    /// How the threshold was calibrated, and validation-vs-test FAR drift.
    pub calibration: CalibrationReport,
    /// Test windows without a verdict (invalid).
    pub test_windows_without_verdict: usize,
    /// With per-unit baselines: validation and test windows of units without a baseline,
    /// which are not judged (and not in any metric above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_baseline: Option<WithoutBaseline>,
    /// Test breakdown by phase.
    pub by_phase: BTreeMap<String, Group>,
    /// Test breakdown by engine fault type.
    pub by_fault_type: BTreeMap<String, Group>,
    /// Test breakdown by severity class (`subtle` < 0.35 <= `gross`).
    pub by_severity: BTreeMap<String, Group>,
    /// Test breakdown by recording attribute (`attributes` of the recordings: load, operating
    /// condition...): per attribute, per value. Attributes with more than
    /// [`MAX_ATTRIBUTE_VALUES`] values in the test split (continuous ones) are left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_attribute: BTreeMap<String, BTreeMap<String, Group>>,
    /// Test windows with a sensor event (normal engine): FAR there.
    pub sensor_event_windows: Group,
    /// Score quantiles: `normal`, `faulty`, `sensor_event`.
    pub score_distributions: BTreeMap<String, Distribution>,
    /// Flight-level metrics of the test flights with the alert policy.
    pub flights: flights::FlightMetrics,
    /// Cross-validation: per metric, mean and standard deviation over the folds.
    pub cross_validation: Option<BTreeMap<String, (f64, f64)>>,
    /// Cross-validation folds run.
    pub cv_folds: usize,
    /// How the training run ended (from its `last.json`; none when evaluating a loose
    /// checkpoint).
    #[serde(default)]
    pub training: Option<TrainingSummary>,
}

/// Units evaluated without a training baseline (config `baseline`): commissioned from their
/// first windows, or not judged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct WithoutBaseline {
    /// Validation windows not judged (commissioning windows and units without a baseline).
    pub validation_windows: usize,
    /// Test windows not judged (likewise).
    pub test_windows: usize,
    /// Units commissioned from their first `baseline.commission_flights` recordings.
    pub commissioned: Vec<String>,
    /// Units with too few windows to commission: not judged at all.
    pub units: Vec<String>,
}

/// `scaler` with a baseline for every unit of `sets` that has none, fitted from the valid
/// windows without a sensor event of the unit's first `flights` recordings (recording-id order,
/// labels unseen), and the windows so used, by (flight, window). `flights == 0`: none.
fn commission(
    scaler: &ScalerFile,
    sets: [&FeatureSet; 2],
    flights: u64,
) -> (ScalerFile, std::collections::HashSet<(String, u32)>, Vec<String>) {
    let mut out = scaler.clone();
    let mut used = std::collections::HashSet::new();
    let mut commissioned = Vec::new();
    let Some(b) = out.baselines.as_mut() else { return (out, used, commissioned) };
    if flights == 0 {
        return (out, used, commissioned);
    }
    let mut by_unit: BTreeMap<String, BTreeMap<&str, Vec<&Row>>> = BTreeMap::new();
    for r in sets.iter().flat_map(|s| &s.rows) {
        let unit = b.unit_of(r);
        if !b.units.contains_key(&unit) {
            by_unit.entry(unit).or_default().entry(r.flight_id.as_str()).or_default().push(r);
        }
    }
    for (unit, per_flight) in by_unit {
        let first: Vec<&Row> = per_flight
            .values()
            .take(flights as usize)
            .flatten()
            .copied()
            .filter(|r| r.valid && r.sensor_event == NONE)
            .collect();
        if first.len() < 2 {
            continue;
        }
        let u = featurize::unit_baseline(&first, scaler.mean.len());
        if avm_core::Scaler::new(&u.mean, &scaler.std).is_ok() {
            for (f, rows) in per_flight.iter().take(flights as usize) {
                used.extend(rows.iter().map(|r| (f.to_string(), r.window_index)));
            }
            b.units.insert(unit.clone(), u);
            commissioned.push(unit);
        }
    }
    (out, used, commissioned)
}

/// How a training run ended: converged (early stopping) or cut by `max_epochs`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TrainingSummary {
    /// Epochs run.
    pub epochs: usize,
    /// The epoch of the best validation loss (the checkpoint evaluated).
    pub best_epoch: usize,
    /// The cap.
    pub max_epochs: usize,
    /// Stopped by early stopping before the cap.
    pub converged: bool,
    /// Learning rate of the first and the last epoch.
    pub learning_rate: [f64; 2],
}

impl std::fmt::Display for TrainingSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training: {} at epoch {} of at most {} (best epoch {}), learning rate {} -> {}",
            if self.converged { "converged, early stopping" } else { "NOT converged, cut by max_epochs" },
            self.epochs,
            self.max_epochs,
            self.best_epoch,
            self.learning_rate[0],
            self.learning_rate[1]
        )
    }
}

/// Every row of a split in flight and window order, with its reconstruction-MSE score computed
/// by avm-core's evaluator (the firmware's numbers: thresholds calibrated on them hold on board
/// bit for bit).
fn in_flight_order<'a>(
    model: &Autoencoder,
    scaler: &ScalerFile,
    split: &'a FeatureSet,
) -> Result<(Vec<&'a Row>, Vec<f32>)> {
    let mut rows: Vec<&Row> = split.rows.iter().collect();
    rows.sort_by(|a, b| (&a.flight_id, a.window_index).cmp(&(&b.flight_id, b.window_index)));
    let scores = crate::model::detector::core_scores_windows(model, scaler, rows.iter().copied())?;
    Ok((rows, scores))
}

/// The rows of `(rows, scores)` that `keep` accepts, with their scores as `f64`.
fn pick<'a>(
    (rows, scores): &(Vec<&'a Row>, Vec<f32>),
    keep: &dyn Fn(&&Row) -> bool,
) -> (Vec<&'a Row>, Vec<f64>) {
    rows.iter().zip(scores).filter(|(r, _)| keep(r)).map(|(r, s)| (*r, f64::from(*s))).unzip()
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

/// Most values an attribute may take in the test split to get a breakdown.
pub const MAX_ATTRIBUTE_VALUES: usize = 20;

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
    /// Every test window, scored, judged and through the alert policy, by flight.
    pub windows: Vec<ScoredWindow>,
    /// Each test flight's alerts and outcome.
    pub flights: Vec<flights::FlightSummary>,
}

/// What evaluation needs besides the model and the windows: the phase table's order, the
/// alert policy, the labelled onsets and the flight-level deadline.
#[derive(Clone, Debug, Default)]
pub struct EvalContext {
    /// The contract's phases (phase-code order).
    pub phases: Vec<String>,
    /// The alert policy and no-verdict phases.
    pub alerts: AlertConfig,
    /// Engine-fault onsets by flight, s (from `labels.csv`).
    pub onsets: BTreeMap<String, f64>,
    /// The gross-fault alert deadline, s.
    pub deadline_s: f64,
    /// Flight time one window stands for (the hop), s.
    pub hop_s: f64,
    /// Per recording: its attributes (from the processed manifest).
    pub attributes: crate::config::Attributes,
    /// Per-unit baselines (config `baseline`): how units without one are commissioned.
    pub baseline: Option<crate::config::BaselineConfig>,
}

impl EvalContext {
    /// The context of `cfg`: its contract's phases, its alert policy, the raw labels' onsets.
    pub fn of(cfg: &PipelineConfig) -> Result<EvalContext> {
        let contract = cfg.load_contract()?;
        let labels_path = cfg.paths.raw_labels();
        let labels =
            if labels_path.is_file() { crate::formats::labels::read(&labels_path)? } else { Vec::new() };
        Ok(EvalContext {
            phases: contract.phases.clone(),
            alerts: cfg.alerts.clone(),
            onsets: crate::formats::labels::onsets(&labels),
            deadline_s: cfg.gates.alert_deadline_s,
            // The hop as the extractor runs it (the config may give it in samples).
            hop_s: cfg.extractor_config(&contract)?.hop_s(),
            attributes: processed_attributes(&cfg.paths)?,
            baseline: cfg.baseline.clone(),
        })
    }
}

/// Per recording, its attributes as `avm preprocess` recorded them (none before preprocess).
fn processed_attributes(paths: &crate::config::Paths) -> Result<crate::config::Attributes> {
    let p = paths.processed().join(crate::layout::MANIFEST);
    if !p.is_file() {
        return Ok(Default::default());
    }
    let m: crate::formats::windows::ProcessedManifest = serde_json::from_slice(&std::fs::read(&p)?)
        .map_err(|e| UsageError(format!("{}: {e}: rerun `avm preprocess`", p.display())))?;
    Ok(m.attributes())
}

pub use crate::formats::scores::ScoredWindow;

/// Calibration and its out-of-sample check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CalibrationReport {
    /// The rule and its guarantee.
    pub rule: String,
    /// Calibration (validation) normal windows.
    pub windows: usize,
    /// Of which above the threshold.
    pub above: usize,
    /// FAR on the calibration windows.
    pub validation_far: f64,
    /// FAR on the test normal windows.
    pub test_far: f64,
    /// `test_far - target_far`: positive means the threshold did not hold out of sample.
    pub drift: f64,
    /// Flight-level calibration, when the config asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flights: Option<FlightCalibrationReport>,
}

/// Flight-level calibration (`evaluate.flight_calibration`) and its out-of-sample check, in
/// flights.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FlightCalibrationReport {
    /// Fraction of new healthy flights allowed to raise an alert.
    pub target_alerting_fraction: f64,
    /// The rule and its guarantee (empty when skipped).
    pub rule: String,
    /// Why the step was skipped (too few healthy validation flights), if it was.
    pub skipped: Option<String>,
    /// Healthy validation flights (the calibration flights).
    pub healthy_flights: usize,
    /// The conformal quantile of their alert statistics (null when skipped).
    pub statistic: Option<f64>,
    /// Multiplier applied to every window-level threshold (1: unchanged).
    pub multiplier: f64,
    /// The global threshold of the window-level rule, before the multiplier.
    pub window_threshold: f64,
    /// Healthy validation flights that raise an alert at the final thresholds.
    pub validation_alerting_flights: usize,
    /// Healthy test flights.
    pub test_healthy_flights: usize,
    /// Of which raised an alert.
    pub test_alerting_flights: usize,
}

/// Evaluates a model on validation and test sets.
pub fn evaluate_sets(
    ecfg: &EvalConfig,
    ctx: &EvalContext,
    model: &Autoencoder,
    scaler: &ScalerFile,
    val: &FeatureSet,
    test: &FeatureSet,
) -> Result<Evaluated> {
    let hop_s = ctx.hop_s;
    // With per-unit baselines, a unit without a training baseline is commissioned from its own
    // first recordings (`baseline.commission_flights`), which are then not judged; a unit that
    // cannot be has no scaler its windows could be judged by: they are left out of everything
    // below and counted apart.
    let (val_c, test_c, commissioned_scaler);
    let (val, test, scaler, without_baseline) = match &scaler.baselines {
        Some(b) => {
            let n = ctx.baseline.as_ref().map_or(0, |c| c.commission_flights);
            let (cs, used, commissioned) = commission(scaler, [val, test], n);
            commissioned_scaler = cs;
            let keep = |set: &FeatureSet| FeatureSet {
                names: set.names.clone(),
                rows: set
                    .rows
                    .iter()
                    .filter(|r| {
                        commissioned_scaler.covers(r)
                            && !used.contains(&(r.flight_id.clone(), r.window_index))
                    })
                    .cloned()
                    .collect(),
            };
            (val_c, test_c) = (keep(val), keep(test));
            let mut units: Vec<String> = val
                .rows
                .iter()
                .chain(&test.rows)
                .filter(|r| !commissioned_scaler.covers(r))
                .map(|r| b.unit_of(r))
                .collect();
            units.sort();
            units.dedup();
            let w = WithoutBaseline {
                validation_windows: val.rows.len() - val_c.rows.len(),
                test_windows: test.rows.len() - test_c.rows.len(),
                commissioned,
                units,
            };
            (&val_c, &test_c, &commissioned_scaler, Some(w))
        }
        None => (val, test, scaler, None),
    };
    // Engine-health verdicts: valid windows without a labelled data-quality event. Windows with
    // a sensor event are normal-engine windows scored and reported apart (their alarm rate).
    let scored = |r: &&Row| r.valid && r.sensor_event == NONE;
    // Every validation and test window scored once, in flight and window order (the alert
    // policy needs them all, as on board); the engine-health and sensor-event subsets are
    // picked from them.
    let val_all = in_flight_order(model, scaler, val)?;
    let test_all = in_flight_order(model, scaler, test)?;
    let (val_rows, vs) = pick(&val_all, &scored);
    let (test_rows, ts) = pick(&test_all, &scored);
    let (sensor_rows, sensor_scores) =
        pick(&test_all, &|r| r.valid && r.label == 0 && r.sensor_event != NONE);
    let vl: Vec<u8> = val_rows.iter().map(|r| r.label).collect();
    let tl: Vec<u8> = test_rows.iter().map(|r| r.label).collect();
    let normal = |rows: &[&Row], s: &[f64], phase: Option<&str>| -> Vec<f64> {
        rows.iter()
            .zip(s)
            .filter(|(r, _)| r.label == 0 && phase.is_none_or(|p| r.phase == p))
            .map(|(_, s)| *s)
            .collect()
    };
    let global = calibration::threshold(
        ecfg.calibration,
        &normal(&val_rows, &vs, None),
        ecfg.target_far,
        "validation split",
    )?;
    let mut threshold = global.threshold;
    let mut phase_thresholds = BTreeMap::new();
    if ecfg.per_phase_thresholds {
        let mut phases: Vec<&str> = val_rows.iter().map(|r| r.phase.as_str()).collect();
        phases.sort();
        phases.dedup();
        for p in phases {
            let s = normal(&val_rows, &vs, Some(p));
            // A phase with too few windows for the rule keeps the global threshold.
            if s.len()
                >= ecfg.min_phase_windows.max(calibration::min_windows(ecfg.calibration, ecfg.target_far))
            {
                let t = calibration::threshold(ecfg.calibration, &s, ecfg.target_far, p)?;
                phase_thresholds.insert(p.to_string(), t.threshold);
            }
        }
    }
    let mut flight_calibration = match ecfg.flight_calibration {
        Some(fc) => Some(calibrate_flights(
            fc.target_alerting_fraction,
            ctx,
            &val_all,
            &mut threshold,
            &mut phase_thresholds,
        )?),
        None => None,
    };
    // Normal-only data (a new fleet): no engine-fault window to measure recall or AUC on.
    let normal_only = !tl.contains(&1);
    let (auc, roc) = if normal_only {
        (None, Vec::new())
    } else {
        (Some(metrics::roc_auc(&ts, &tl)?), metrics::roc_curve(&ts, &tl)?)
    };
    let global_t = vec![threshold; ts.len()];
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
    let mut values: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for r in &test_rows {
        for (k, v) in ctx.attributes.get(&r.flight_id).into_iter().flatten() {
            values.entry(k.as_str()).or_default().insert(v.as_str());
        }
    }
    let by_attribute = values
        .into_iter()
        .filter(|(_, vs)| vs.len() <= MAX_ATTRIBUTE_VALUES)
        .map(|(k, vs)| {
            let per: BTreeMap<String, Group> = vs
                .into_iter()
                .map(|v| {
                    let of = |r: &Row| {
                        ctx.attributes.get(&r.flight_id).and_then(|m| m.get(k)).is_some_and(|x| x == v)
                    };
                    (v.to_string(), with(&of))
                })
                .collect();
            (k.to_string(), per)
        })
        .collect();
    let by_severity = [("subtle", true), ("gross", false)]
        .into_iter()
        .map(|(n, subtle)| {
            (n.to_string(), with(&|r: &Row| r.label == 1 && (r.severity < flights::SUBTLE_BELOW) == subtle))
        })
        .collect();
    let cls = |f: &dyn Fn(&Row) -> bool| {
        distribution(test_rows.iter().zip(&ts).filter(|(r, _)| f(r)).map(|(_, s)| *s).collect())
    };
    let mut score_distributions = BTreeMap::new();
    score_distributions.insert("normal".into(), cls(&|r: &Row| r.label == 0 && r.sensor_event == "none"));
    score_distributions.insert("faulty".into(), cls(&|r: &Row| r.label == 1));
    score_distributions
        .insert("sensor_event".into(), cls(&|r: &Row| r.label == 0 && r.sensor_event != "none"));
    let test_point = operating_point(&ts, &tl, &global_t, hop_s)?;
    let validation = operating_point(&vs, &vl, &vec![threshold; vs.len()], hop_s)?;
    let calibration = CalibrationReport {
        rule: global.guarantee.clone(),
        windows: global.n,
        above: global.above,
        validation_far: validation.far,
        test_far: test_point.far,
        drift: test_point.far - ecfg.target_far,
        flights: None,
    };

    // Flight level: every test window (invalid and sensor-event ones too, as on board) in
    // flight and window order, judged with the phase table, through the alert policy.
    let table = flights::PhaseTable::new(
        &ctx.phases,
        threshold as f32,
        &phase_thresholds,
        &ctx.alerts.no_verdict_phases,
    );
    let (flight_rows, flight_scores) = &test_all;
    let verdicts: Vec<avm_core::Verdict> =
        flight_rows.iter().zip(flight_scores).map(|(r, s)| table.verdict(r, *s)).collect();
    let policy = ctx.alerts.policy();
    let alerted = flights::alerts(policy, flight_rows, &verdicts, &ctx.onsets)?;
    let flight_metrics = flights::metrics(policy, &alerted.flights, ctx.deadline_s);
    if let Some(fc) = &mut flight_calibration {
        let healthy = alerted.flights.iter().filter(|f| f.kind == flights::FlightKind::Healthy);
        fc.test_healthy_flights = healthy.clone().count();
        fc.test_alerting_flights = healthy.filter(|f| !f.alerts.is_empty()).count();
    }
    let calibration = CalibrationReport { flights: flight_calibration, ..calibration };
    let windows = flight_rows
        .iter()
        .zip(&verdicts)
        .zip(&alerted.alert_up)
        .map(|((r, v), up)| ScoredWindow { window: (*r).clone(), verdict: *v, alert_up: *up, labelled: true })
        .collect();

    let report = EvalReport {
        checkpoint: String::new(),
        checkpoint_sha256: String::new(),
        epoch: 0,
        target_far: ecfg.target_far,
        threshold,
        auc,
        normal_only,
        test: test_point,
        test_per_phase_thresholds: ecfg
            .per_phase_thresholds
            .then(|| operating_point(&ts, &tl, &per_phase, hop_s))
            .transpose()?,
        validation,
        calibration,
        phase_thresholds,
        test_windows_without_verdict: test.rows.iter().filter(|r| !r.valid).count(),
        without_baseline,
        by_phase,
        by_fault_type,
        by_severity,
        by_attribute,
        sensor_event_windows: group(sensor_rows.iter().zip(&sensor_scores).map(|(r, s)| (*r, *s, threshold))),
        score_distributions,
        flights: flight_metrics,
        cross_validation: None,
        cv_folds: 0,
        training: None,
    };
    Ok(Evaluated { report, roc, windows, flights: alerted.flights })
}

/// Flight-level calibration: every validation window (scored in flight order) judged as on
/// board, each healthy validation flight's alert statistic, the conformal multiplier, applied
/// to `global` and `per_phase` (rounded to `f32`, the bundle's precision, so the host judges as
/// the firmware does, and rounded up); then the healthy validation flights that still alert,
/// by the state machine itself.
fn calibrate_flights(
    target: f64,
    ctx: &EvalContext,
    (rows, scores): &(Vec<&Row>, Vec<f32>),
    global: &mut f64,
    per_phase: &mut BTreeMap<String, f64>,
) -> Result<FlightCalibrationReport> {
    let policy = ctx.alerts.policy();
    let judge = |global: f64, per_phase: &BTreeMap<String, f64>| -> Vec<avm_core::Verdict> {
        let table =
            flights::PhaseTable::new(&ctx.phases, global as f32, per_phase, &ctx.alerts.no_verdict_phases);
        rows.iter().zip(scores).map(|(r, s)| table.verdict(r, *s)).collect()
    };
    let verdicts = judge(*global, per_phase);
    let mut stats = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let id = &rows[i].flight_id;
        let end = i + rows[i..].iter().take_while(|r| &r.flight_id == id).count();
        if flights::kind(&rows[i..end]) == flights::FlightKind::Healthy {
            let ratios = verdicts[i..end]
                .iter()
                .filter(|v| v.judged)
                .map(|v| f64::from(v.score) / f64::from(v.threshold));
            stats.push(calibration::alert_statistic(policy, ratios));
        }
        i = end;
    }
    let mut report = FlightCalibrationReport {
        target_alerting_fraction: target,
        rule: String::new(),
        skipped: None,
        healthy_flights: stats.len(),
        statistic: None,
        multiplier: 1.0,
        window_threshold: *global,
        validation_alerting_flights: 0,
        test_healthy_flights: 0,
        test_alerting_flights: 0,
    };
    let verdicts = match calibration::flight_multiplier(&stats, target) {
        Err(note) => {
            report.skipped = Some(note);
            verdicts
        }
        Ok(f) => {
            report.rule = f.guarantee;
            report.statistic = Some(f.statistic);
            report.multiplier = f.multiplier;
            if f.multiplier > 1.0 {
                // Rounded up to the next f32 (the bundle's precision): a flight whose
                // statistic equals the quantile raises no alert, as the rule says.
                let scale = |t: f64| {
                    let x = t * f.multiplier;
                    let y = x as f32;
                    f64::from(if f64::from(y) < x { y.next_up() } else { y })
                };
                *global = scale(*global);
                per_phase.values_mut().for_each(|t| *t = scale(*t));
                judge(*global, per_phase)
            } else {
                verdicts
            }
        }
    };
    let alerted = flights::alerts(policy, rows, &verdicts, &ctx.onsets)?;
    report.validation_alerting_flights = alerted
        .flights
        .iter()
        .filter(|f| f.kind == flights::FlightKind::Healthy && !f.alerts.is_empty())
        .count();
    Ok(report)
}

/// Per metric, mean and standard deviation over the folds.
pub type CvMetrics = BTreeMap<String, (f64, f64)>;

/// k-fold cross-validation grouped by flight over `all` rows.
pub fn cross_validate(
    cfg: &PipelineConfig,
    ecfg: &EvalConfig,
    ctx: &EvalContext,
    names: &[String],
    units: &[String],
    all: &[Row],
    work: &Path,
) -> Result<(CvMetrics, usize)> {
    let tcfg = cfg.train.clone();
    let seed = cfg.split.seed;
    // Folds hold whole groups (`split.group_by`: flights by default).
    let by = cfg.split.group_by.clone();
    by.check(all.iter().map(|r| r.flight_id.as_str()), &ctx.attributes)?;
    let group_of = |r: &Row| by.key(&r.flight_id, &r.aircraft_id, &r.engine_id, &ctx.attributes);
    let mut groups: Vec<String> = all.iter().map(group_of).collect();
    groups.sort();
    groups.dedup();
    let k = if ecfg.leave_one_group_out { groups.len() } else { ecfg.cv_folds };
    ensure!(
        k >= 3,
        UsageError(format!(
            "evaluate.cv_folds = {k}{}: cross-validation needs at least 3 folds (test, validation, training) or 0 to disable it",
            if ecfg.leave_one_group_out { " (one per group)" } else { "" }
        ))
    );
    ensure!(
        groups.len() >= k,
        UsageError(format!("{} groups ({by:?}) are too few for {k}-fold cross-validation", groups.len()))
    );
    let shuffled = featurize::split_flights(
        &groups,
        &featurize::SplitConfig {
            training: 1.0,
            validation: 0.0,
            test: 0.0,
            seed,
            group_by: by.clone(),
            lists: None,
        },
    )?[0]
        .clone();
    let fold_by_group: std::collections::HashMap<&str, usize> =
        shuffled.iter().enumerate().map(|(i, g)| (g.as_str(), i % k)).collect();
    let fold_of_row = |r: &Row| fold_by_group.get(group_of(r).as_str()).copied().unwrap_or(0);
    let mut per_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut pooled = Pooled::default();
    let pb = crate::stages::progress(k, "cross-val");
    // The folds train and score independently (each its own seeded training, directory and
    // log), two at a time on this machine's cores; their reports are then summed in fold order,
    // so the result is the same as one after the other.
    let run_fold = |fold: usize| -> Result<EvalReport> {
        let set = |pred: &dyn Fn(usize) -> bool| FeatureSet {
            names: names.to_vec(),
            rows: all.iter().filter(|r| pred(fold_of_row(r))).cloned().collect(),
        };
        let test = set(&|f| f == fold);
        let val = set(&|f| f == (fold + 1) % k);
        let train_set = set(&|f| f != fold && f != (fold + 1) % k);
        // The fold's own baselines, from its training flights only (no test flight's windows).
        let scaler = featurize::fit_scaler(names, units.to_vec(), &train_set.rows, cfg.baseline.as_ref())?;
        let (xt, xv) = (train::normal_matrix(&train_set, &scaler)?, train::normal_matrix(&val, &scaler)?);
        let dir = work.join(format!("fold_{fold}"));
        std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
        let mut log = MetricLog::open(&dir.join(layout::METRICS_LOG), None)?;
        train::fit(&tcfg, names, train::Matrices { train: &xt, val: &xv }, &dir, (None, None), &mut log)?;
        let best = Checkpoint::load(&dir.join(train::BEST))?;
        let evaluated = evaluate_sets(ecfg, ctx, &best.model, &scaler, &val, &test)?;
        // Every flight is tested in exactly one fold: the folds' scores together cover the
        // whole data set (for studying thresholds and alert policies offline).
        crate::formats::scores::write(&dir, &evaluated.windows)?;
        pb.inc(1);
        Ok(evaluated.report)
    };
    use rayon::prelude::*;
    let reports: Vec<Result<EvalReport>> = (0..k).into_par_iter().map(run_fold).collect();
    for e in reports {
        let e = e?;
        let fault_metrics = [
            ("auc", e.auc.unwrap_or(f64::NAN)),
            ("precision", e.test.precision),
            ("recall", e.test.recall),
            ("f1", e.test.f1),
        ];
        // A fold without an engine-fault window measures no recall: its false alarms count.
        let measured = if e.normal_only { &fault_metrics[..0] } else { &fault_metrics[..] };
        for (m, v) in measured.iter().copied().chain([
            ("far", e.test.far),
            ("far_drift", e.calibration.drift),
            ("false_alarms_per_flight_hour", e.test.false_alarms_per_flight_hour),
        ]) {
            per_metric.entry(m.into()).or_default().push(v);
        }
        // Flight level, pooled over the folds (every flight is tested once).
        let f = &e.flights;
        pooled.false_alerts += f.false_alerts;
        pooled.healthy_hours += f.healthy_hours;
        for (k, v) in [
            ("fault_flights_alerted", f.fault_flights_alerted),
            ("gross_alerted_in_time", f.gross_alerted_in_time),
            ("subtle_alerted", f.subtle_alerted),
        ] {
            if let Some(v) = v {
                per_metric.entry(format!("flight/{k}")).or_default().push(v);
            }
        }
    }
    pb.finish_and_clear();
    let mut out: BTreeMap<String, (f64, f64)> = per_metric
        .into_iter()
        .map(|(m, v)| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            (m, (mean, sd))
        })
        .collect();
    // Pooled false alerts per 1000 healthy hours over all folds (reported as the "mean", with
    // the exact Poisson interval's half-width as the "std" slot's companion in the report).
    if pooled.healthy_hours > 0.0 {
        let rate = pooled.false_alerts as f64 / pooled.healthy_hours * 1000.0;
        out.insert("flight/false_alerts_per_1000h_pooled".into(), (rate, 0.0));
        out.insert("flight/healthy_hours_pooled".into(), (pooled.healthy_hours, 0.0));
    }
    Ok((out, k))
}

#[derive(Default)]
struct Pooled {
    false_alerts: usize,
    healthy_hours: f64,
}

/// Per-flight outcomes (alerts, delays) in the evaluation directory.
pub const FLIGHTS_JSON: &str = "flights.json";
/// Score-over-time plots, one per test flight.
pub const FLIGHT_PLOTS_DIR: &str = "flights";

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
    let ctx = EvalContext::of(cfg)?;
    let Evaluated { mut report, roc, windows, flights } =
        evaluate_sets(&ecfg, &ctx, &ck.model, &scaler, &val, &test)?;
    report.checkpoint = ck_path.display().to_string();
    report.checkpoint_sha256 = crate::io::sha256_file(&ck_path)?;
    report.epoch = ck.epoch;
    // The run's last checkpoint says how training ended.
    let last = ck_path.with_file_name(train::LAST);
    if let Ok(l) = Checkpoint::load(&last) {
        report.training = Some(TrainingSummary {
            epochs: l.epoch,
            best_epoch: l.best_epoch,
            max_epochs: l.config.max_epochs,
            converged: l.epoch - l.best_epoch.min(l.epoch) >= l.config.patience,
            learning_rate: [
                l.history.first().map_or(f64::NAN, |h| h.learning_rate),
                l.history.last().map_or(f64::NAN, |h| h.learning_rate),
            ],
        });
    }
    let dir = evaluation_dir(cfg);
    crate::io::replace_dir_atomic(&dir, |stage| {
        if ecfg.cv_folds > 0 {
            let mut all = featurize::load_split(cfg, "training")?.rows;
            all.extend(val.rows.iter().cloned());
            all.extend(test.rows.iter().cloned());
            let (cv, folds) =
                cross_validate(cfg, &ecfg, &ctx, &ck.feature_names, &scaler.units, &all, &stage.join("cv"))?;
            report.cross_validation = Some(cv);
            report.cv_folds = folds;
        }
        if let Some(auc) = report.auc {
            plots::roc(stage, "roc", &roc, auc, "ROC, test split")?;
        }
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
        crate::io::write_bytes_atomic(
            &stage.join(FLIGHTS_JSON),
            serde_json::to_string_pretty(&flights)?.as_bytes(),
        )?;
        crate::formats::scores::write(stage, &windows)?;
        let plots_dir = stage.join(FLIGHT_PLOTS_DIR);
        std::fs::create_dir_all(&plots_dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", plots_dir.display()))?;
        for f in &flights {
            let ws: Vec<&ScoredWindow> =
                windows.iter().filter(|w| w.window.flight_id == f.flight_id).collect();
            plots::flight(&plots_dir, &f.flight_id, &ws, f)?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GroupBy;
    use crate::formats::scaler::{Baselines, UnitBaseline};

    fn w(flight: &str, engine: &str, i: u32, valid: bool, sensor: &str, x: f32) -> Row {
        Row {
            flight_id: flight.into(),
            aircraft_id: "A1".into(),
            engine_id: engine.into(),
            window_index: i,
            start_s: f64::from(i) * 5.0,
            end_s: f64::from(i) * 5.0 + 10.0,
            phase: "cruise".into(),
            label: 0,
            fault_type: NONE.into(),
            severity: 0.0,
            sensor_event: sensor.into(),
            valid,
            roc_valid: true,
            quality: vec![],
            features: vec![x],
        }
    }

    #[test]
    fn a_unit_without_baseline_is_commissioned_from_its_first_flight_only() {
        let scaler = ScalerFile {
            feature_schema_version: avm_core::FEATURE_SCHEMA_VERSION,
            feature_names: vec!["a".into()],
            units: vec!["g".into()],
            mean: vec![0.0],
            std: vec![1.0],
            fitted_on_windows: 2,
            baselines: Some(Baselines {
                by: GroupBy::Engine,
                min_windows: 2,
                units: [("A1/E1".to_string(), UnitBaseline { mean: vec![5.0], windows: 2 })].into(),
                too_few: Default::default(),
            }),
        };
        // E2 flies F2 (test) before F3 (validation): F2 is its first recording. Its invalid and
        // sensor-event windows are used up but not averaged.
        let val = FeatureSet {
            names: vec!["a".into()],
            rows: vec![w("A1-F3-E2", "E2", 0, true, NONE, 100.0), w("A1-F1-E1", "E1", 0, true, NONE, 7.0)],
        };
        let test = FeatureSet {
            names: vec!["a".into()],
            rows: vec![
                w("A1-F2-E2", "E2", 1, true, NONE, 4.0),
                w("A1-F2-E2", "E2", 0, true, NONE, 2.0),
                w("A1-F2-E2", "E2", 2, false, NONE, 1000.0),
                w("A1-F2-E2", "E2", 3, true, "sensor_spike", 1000.0),
            ],
        };
        let (s, used, commissioned) = commission(&scaler, [&val, &test], 1);
        assert_eq!(commissioned, ["A1/E2"]);
        let b = s.baselines.as_ref().unwrap();
        assert_eq!((b.units["A1/E2"].mean.as_slice(), b.units["A1/E2"].windows), ([3.0f32].as_slice(), 2));
        assert_eq!(b.units["A1/E1"].mean, vec![5.0], "a trained baseline is kept");
        let mut u: Vec<_> = used.into_iter().collect();
        u.sort();
        assert_eq!(u, (0..4).map(|i| ("A1-F2-E2".to_string(), i)).collect::<Vec<_>>());
        // Off: nothing commissioned, the unit stays uncovered.
        let (s0, used0, c0) = commission(&scaler, [&val, &test], 0);
        assert!(c0.is_empty() && used0.is_empty() && !s0.covers(&test.rows[0]));
    }
}
