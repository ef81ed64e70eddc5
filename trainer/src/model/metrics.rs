//! Detection metrics, checked against scikit-learn (`trainer/tests/golden/metrics_golden.py`).
//!
//! Conventions: a window *alarms* when its anomaly score is strictly greater than the threshold;
//! label 1 = engine fault (positive), 0 = normal (negative).
//! - ROC AUC = probability that a random positive outscores a random negative, ties counting
//!   one half (Mann-Whitney U with average ranks) — scikit-learn's `roc_auc_score`;
//! - ROC curve: one point per distinct score, thresholds decreasing from +∞, as
//!   `roc_curve(drop_intermediate=False)` (there a point is `score >= t`, which for the distinct
//!   scores equals `score > t'` for the next lower distinct score: the same curve);
//! - precision = TP/(TP+FP) (0 when nothing alarms, as scikit-learn's `zero_division=0`),
//!   recall = TP/(TP+FN), F1 = 2PR/(P+R), false-alarm rate FAR = FP/(FP+TN).

use std::fmt;

/// Metric names, one scheme (`<split or stage>/<metric>`) for the evaluation's metric log,
/// TensorBoard, MLflow, the quality gates, the registry and the CLI.
pub mod names {
    /// Test ROC AUC.
    pub const TEST_AUC: &str = "test/auc";
    /// Test precision at the global threshold.
    pub const TEST_PRECISION: &str = "test/precision";
    /// Test recall at the global threshold.
    pub const TEST_RECALL: &str = "test/recall";
    /// Test F1 at the global threshold.
    pub const TEST_F1: &str = "test/f1";
    /// Test false-alarm rate (per window) at the global threshold.
    pub const TEST_FAR: &str = "test/far";
    /// Test false alarms per flight hour at the global threshold.
    pub const TEST_FALSE_ALARMS_PER_FLIGHT_HOUR: &str = "test/false_alarms_per_flight_hour";
    /// The global threshold.
    pub const TEST_THRESHOLD: &str = "test/threshold";
    /// Test precision with per-phase thresholds.
    pub const TEST_PER_PHASE_PRECISION: &str = "test_per_phase_thresholds/precision";
    /// Test recall with per-phase thresholds.
    pub const TEST_PER_PHASE_RECALL: &str = "test_per_phase_thresholds/recall";
    /// Test false-alarm rate with per-phase thresholds.
    pub const TEST_PER_PHASE_FAR: &str = "test_per_phase_thresholds/far";
    /// Test false-alarm rate minus the calibration target (threshold drift out of sample).
    pub const TEST_FAR_DRIFT: &str = "test/far_drift";
    /// Fraction of engine-fault test flights alerted after onset.
    pub const TEST_FLIGHT_FAULT_ALERTED: &str = "test/flight/fault_alerted";
    /// Fraction of gross-fault test flights alerted within the deadline.
    pub const TEST_FLIGHT_GROSS_IN_TIME: &str = "test/flight/gross_alerted_in_time";
    /// Fraction of subtle-fault test flights alerted before the flight ended.
    pub const TEST_FLIGHT_SUBTLE_ALERTED: &str = "test/flight/subtle_alerted";
    /// False alerts per 100 healthy test flight hours.
    pub const TEST_FLIGHT_FALSE_ALERTS_PER_100H: &str = "test/flight/false_alerts_per_100h";
    /// Healthy test flight hours observed.
    pub const TEST_FLIGHT_HEALTHY_HOURS: &str = "test/flight/healthy_hours";
    /// Flight-level calibration: the multiplier applied to every window-level threshold.
    pub const FLIGHT_CALIBRATION_MULTIPLIER: &str = "calibration/flight_multiplier";
    /// Flight-level calibration: the fraction of healthy test flights that raised an alert.
    pub const TEST_FLIGHT_HEALTHY_ALERTING: &str = "test/flight/healthy_flights_alerting";
    /// Median detection delay after onset, s.
    pub const TEST_FLIGHT_DELAY_MEDIAN_S: &str = "test/flight/delay_median_s";
    /// 90th-percentile detection delay, s.
    pub const TEST_FLIGHT_DELAY_P90_S: &str = "test/flight/delay_p90_s";
    /// Epochs the training ran.
    pub const TRAIN_EPOCHS: &str = "train/epochs";
    /// Epoch of the best validation loss.
    pub const TRAIN_BEST_EPOCH: &str = "train/best_epoch";
    /// 1 when early stopping ended training before `max_epochs`.
    pub const TRAIN_CONVERGED: &str = "train/converged";
    /// Median single-window inference latency through ONNX Runtime, ms.
    pub const EXPORT_LATENCY_P50_MS: &str = "export/latency_p50_ms";
    /// 99th-percentile single-window inference latency through ONNX Runtime, ms.
    pub const EXPORT_LATENCY_P99_MS: &str = "export/latency_p99_ms";
    /// Largest |ONNX Runtime score - avm-core score| on the test split.
    pub const EXPORT_ORT_VS_CORE_SCORE_MAX_ABS: &str = "export/ort_vs_core_score_max_abs";

    /// The name an entry of registry format 2 (before this scheme) used for a metric, if it
    /// differed: such entries are read with the current names.
    pub fn legacy(old: &str) -> Option<String> {
        let fixed = match old {
            "test_auc" => TEST_AUC,
            "test_precision" => TEST_PRECISION,
            "test_recall" => TEST_RECALL,
            "test_f1" => TEST_F1,
            "test_far" => TEST_FAR,
            "test_false_alarms_per_flight_hour" => TEST_FALSE_ALARMS_PER_FLIGHT_HOUR,
            "test_per_phase_precision" => TEST_PER_PHASE_PRECISION,
            "test_per_phase_recall" => TEST_PER_PHASE_RECALL,
            "test_per_phase_far" => TEST_PER_PHASE_FAR,
            "latency_p50_ms" => EXPORT_LATENCY_P50_MS,
            "latency_p99_ms" => EXPORT_LATENCY_P99_MS,
            "ort_vs_core_score_max_abs" => EXPORT_ORT_VS_CORE_SCORE_MAX_ABS,
            // Gate names of format 2.
            "auc" => TEST_AUC,
            "precision" => TEST_PRECISION,
            "recall" => TEST_RECALL,
            "far" => TEST_FAR,
            _ => {
                let cv = old.strip_prefix("cv_")?;
                return Some(format!("cv/{cv}"));
            }
        };
        Some(fixed.to_string())
    }
}

/// Why a metric cannot be computed.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricError {
    /// No samples.
    Empty,
    /// Scores and labels differ in length.
    LengthMismatch {
        /// Scores.
        scores: usize,
        /// Labels.
        labels: usize,
    },
    /// A score is NaN or infinite.
    NonFinite {
        /// Its index.
        index: usize,
    },
    /// ROC needs both classes.
    SingleClass {
        /// The only label present.
        label: u8,
        /// How many samples.
        count: usize,
    },
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MetricError::Empty => write!(f, "no samples to evaluate"),
            MetricError::LengthMismatch { scores, labels } => {
                write!(f, "{scores} scores but {labels} labels")
            }
            MetricError::NonFinite { index } => write!(f, "score {index} is not finite"),
            MetricError::SingleClass { label, count } => write!(
                f,
                "ROC AUC is undefined: all {count} samples have label {label} (need both normal and faulty windows)"
            ),
        }
    }
}

impl std::error::Error for MetricError {}

fn check(scores: &[f64], labels: &[u8]) -> Result<(usize, usize), MetricError> {
    if scores.len() != labels.len() {
        return Err(MetricError::LengthMismatch { scores: scores.len(), labels: labels.len() });
    }
    if scores.is_empty() {
        return Err(MetricError::Empty);
    }
    if let Some(index) = scores.iter().position(|s| !s.is_finite()) {
        return Err(MetricError::NonFinite { index });
    }
    let pos = labels.iter().filter(|&&l| l == 1).count();
    Ok((pos, labels.len() - pos))
}

/// ROC AUC with ties counted one half.
pub fn roc_auc(scores: &[f64], labels: &[u8]) -> Result<f64, MetricError> {
    let (pos, neg) = check(scores, labels)?;
    if pos == 0 || neg == 0 {
        return Err(MetricError::SingleClass { label: labels[0], count: labels.len() });
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (average) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * idx[i..=j].iter().filter(|&&k| labels[k] == 1).count() as f64;
        i = j + 1;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Ok(u / (pos as f64 * neg as f64))
}

/// ROC curve points `(fpr, tpr, threshold)`: threshold +∞ first, then each distinct score in
/// decreasing order (a point counts `score >= threshold` as alarm).
pub fn roc_curve(scores: &[f64], labels: &[u8]) -> Result<Vec<(f64, f64, f64)>, MetricError> {
    let (pos, neg) = check(scores, labels)?;
    if pos == 0 || neg == 0 {
        return Err(MetricError::SingleClass { label: labels[0], count: labels.len() });
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = vec![(0.0, 0.0, f64::INFINITY)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let t = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == t {
            if labels[idx[i]] == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        out.push((fp as f64 / neg as f64, tp as f64 / pos as f64, t));
    }
    Ok(out)
}

/// Confusion matrix at a threshold (alarm when `score > threshold`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Confusion {
    /// Faulty windows that alarm.
    pub tp: usize,
    /// Normal windows that alarm.
    pub fp: usize,
    /// Normal windows that do not.
    pub tn: usize,
    /// Faulty windows that do not.
    pub fn_: usize,
}

impl Confusion {
    /// Counts at `threshold`.
    pub fn at(scores: &[f64], labels: &[u8], threshold: f64) -> Result<Confusion, MetricError> {
        Confusion::at_each(scores, labels, |_| threshold)
    }

    /// Counts with a threshold per sample (`threshold(i)` for sample `i`, e.g. per phase).
    pub fn at_each(
        scores: &[f64],
        labels: &[u8],
        threshold: impl Fn(usize) -> f64,
    ) -> Result<Confusion, MetricError> {
        check(scores, labels)?;
        let mut c = Confusion::default();
        for (i, (&s, &l)) in scores.iter().zip(labels).enumerate() {
            match (s > threshold(i), l == 1) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        Ok(c)
    }
    /// TP / (TP + FP); 0 when nothing alarms.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// TP / (TP + FN); 0 when there is no positive.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }
    /// FP / (FP + TN); 0 when there is no negative.
    pub fn false_alarm_rate(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The threshold meeting `FAR <= target_far` on the normal windows with the best recall: the
/// smallest threshold whose false-alarm rate is within target. Only the negatives decide it
/// (recall can only grow as the threshold falls). Fails without negatives.
pub fn calibrate_threshold(scores: &[f64], labels: &[u8], target_far: f64) -> Result<f64, MetricError> {
    let (_, neg) = check(scores, labels)?;
    if neg == 0 {
        return Err(MetricError::SingleClass { label: 1, count: labels.len() });
    }
    let mut negs: Vec<f64> = scores.iter().zip(labels).filter(|(_, l)| **l == 0).map(|(s, _)| *s).collect();
    negs.sort_by(|a, b| b.total_cmp(a));
    // At most k false alarms: the threshold sits at the (k+1)-th largest normal score, so only
    // scores strictly above it (at most k of them) alarm.
    let k = (target_far.clamp(0.0, 1.0) * neg as f64 + 1e-9).floor() as usize;
    Ok(if k >= neg { f64::NEG_INFINITY } else { negs[k] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        let s = [0.1, 0.4, 0.35, 0.8];
        let l = [0, 0, 1, 1];
        assert_eq!(roc_auc(&s, &l).unwrap(), 0.75);
        let c = Confusion::at(&s, &l, 0.36).unwrap();
        assert_eq!(c, Confusion { tp: 1, fp: 1, tn: 1, fn_: 1 });
        assert_eq!((c.precision(), c.recall(), c.false_alarm_rate()), (0.5, 0.5, 0.5));
        assert_eq!(roc_auc(&[1.0, 1.0], &[0, 1]).unwrap(), 0.5);
        let e = roc_auc(&[1.0, 2.0], &[0, 0]).unwrap_err();
        assert!(e.to_string().contains("all 2 samples have label 0"), "{e}");
        assert_eq!(roc_auc(&[], &[]), Err(MetricError::Empty));
        assert_eq!(roc_auc(&[f64::NAN, 1.0], &[0, 1]), Err(MetricError::NonFinite { index: 0 }));
    }

    #[test]
    fn calibration_meets_the_target() {
        let s: Vec<f64> = (0..100).map(f64::from).collect();
        let l = vec![0u8; 100];
        let t = calibrate_threshold(&s, &l, 0.05).unwrap();
        let c = Confusion::at(&s, &l, t).unwrap();
        assert_eq!(c.fp, 5);
        assert!(c.false_alarm_rate() <= 0.05);
        assert_eq!(calibrate_threshold(&s, &l, 0.0).unwrap(), 99.0);
    }
}
