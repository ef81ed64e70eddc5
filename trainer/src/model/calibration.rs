//! Thresholds from calibration (validation) normal windows, by a stated rule.
//!
//! All three rules put the threshold `t` at an order statistic of the `n` calibration normal
//! scores; a window alarms when `score > t`. With `α` = `target_far`:
//! - **empirical** (the seed's): the lowest `t` whose false-alarm rate on the calibration
//!   windows is at most `α`: the `(k+1)`-th largest score, `k = ⌊α n⌋`. No out-of-sample
//!   guarantee: on a small calibration set the test FAR is often above `α`.
//! - **conformal** (split conformal): the `r`-th smallest score, `r = ⌈(n+1)(1-α)⌉`. If the
//!   calibration windows and a new normal window are exchangeable, `P(new score > t) <= α`
//!   (expected FAR at most `α`). Needs `n >= 1/α - 1`.
//! - **tolerance** (order-statistic tolerance bound): the smallest `r` with
//!   `P(Binomial(n, 1-α) <= r-1) >= c`. Then, with probability at least `c` over calibration
//!   sets, the FAR on new exchangeable normal windows is at most `α` (the `r`-th smallest of
//!   `n` uniform scores is `Beta(r, n+1-r)`). Needs `n >= ln(1-c) / ln(1-α)`.
//!
//! The guarantees assume exchangeable windows: windows of one flight are correlated, and a
//! new operating condition is not exchangeable with the calibration data at all. That is why
//! every evaluation reports the calibration-vs-test FAR drift.

use crate::config::{Calibration, CalibrationMethod};
use crate::error::UsageError;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

/// A threshold and how it was set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Calibrated {
    /// The threshold (one of the calibration scores).
    pub threshold: f64,
    /// Calibration normal windows.
    pub n: usize,
    /// Calibration windows above the threshold.
    pub above: usize,
    /// The rule's statement, for reports.
    pub guarantee: String,
}

/// Fewest calibration windows `method` needs for `target_far`.
pub fn min_windows(c: Calibration, target_far: f64) -> usize {
    match c.method {
        CalibrationMethod::Empirical => 1,
        CalibrationMethod::Conformal => ((1.0 / target_far) - 1.0 - 1e-9).ceil().max(1.0) as usize,
        CalibrationMethod::Tolerance => {
            ((1.0 - c.confidence).ln() / (1.0 - target_far).ln() - 1e-9).ceil().max(1.0) as usize
        }
    }
}

/// The threshold for `normal` calibration scores (finite), by rule `c`; too few windows for
/// the rule is a [`UsageError`] naming how many it needs.
pub fn threshold(c: Calibration, normal: &[f64], target_far: f64, what: &str) -> Result<Calibrated> {
    let n = normal.len();
    let need = min_windows(c, target_far);
    if n == 0 || n < need {
        return Err(UsageError(format!(
            "{what}: {n} normal calibration windows; the {} calibration at target_far {target_far}{} needs at least {need} \
             (give more normal validation data, raise target_far, or set evaluate.calibration.method: empirical, which has no out-of-sample guarantee)",
            method_name(c.method),
            confidence_words(c)
        ))
        .into());
    }
    let mut asc = normal.to_vec();
    asc.sort_by(f64::total_cmp);
    // r: 1-based rank from the bottom of the threshold's score.
    let r = match c.method {
        CalibrationMethod::Empirical => n - ((target_far * n as f64 + 1e-9).floor() as usize).min(n - 1),
        CalibrationMethod::Conformal => (((n + 1) as f64 * (1.0 - target_far)) - 1e-9).ceil() as usize,
        CalibrationMethod::Tolerance => {
            let b = Binomial::new(1.0 - target_far, n as u64)
                .map_err(|e| UsageError(format!("{what}: calibration: {e}")))?;
            (1..=n).find(|&r| b.cdf(r as u64 - 1) >= c.confidence).unwrap_or(n)
        }
    }
    .clamp(1, n);
    let t = asc[r - 1];
    let above = asc.iter().filter(|&&s| s > t).count();
    Ok(Calibrated { threshold: t, n, above, guarantee: statement(c, target_far) })
}

fn method_name(m: CalibrationMethod) -> &'static str {
    match m {
        CalibrationMethod::Empirical => "empirical",
        CalibrationMethod::Conformal => "conformal",
        CalibrationMethod::Tolerance => "tolerance",
    }
}

fn confidence_words(c: Calibration) -> String {
    if c.method == CalibrationMethod::Tolerance {
        format!(" and confidence {}", c.confidence)
    } else {
        String::new()
    }
}

/// What rule `c` promises, in words.
pub fn statement(c: Calibration, target_far: f64) -> String {
    match c.method {
        CalibrationMethod::Empirical => format!(
            "empirical: the lowest threshold with calibration FAR <= {target_far}; no out-of-sample guarantee"
        ),
        CalibrationMethod::Conformal => {
            format!("split conformal: expected FAR on new exchangeable normal windows <= {target_far}")
        }
        CalibrationMethod::Tolerance => format!(
            "order-statistic tolerance bound: FAR on new exchangeable normal windows <= {target_far} with probability >= {}",
            c.confidence
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(method: CalibrationMethod) -> Calibration {
        Calibration { method, confidence: 0.9 }
    }

    #[test]
    fn ranks_follow_the_stated_rules() {
        let s: Vec<f64> = (0..100).map(f64::from).collect();
        // Empirical: 5 of 100 above.
        let e = threshold(cal(CalibrationMethod::Empirical), &s, 0.05, "t").unwrap();
        assert_eq!((e.threshold, e.above), (94.0, 5));
        // Conformal: r = ceil(101 * 0.95) = 96 -> the 96th smallest (95.0), 4 above.
        let c = threshold(cal(CalibrationMethod::Conformal), &s, 0.05, "t").unwrap();
        assert_eq!((c.threshold, c.above), (95.0, 4));
        // Tolerance at 0.9: scipy.stats.binom.cdf(r - 1, 100, 0.95) >= 0.9 first at r = 99
        // (cdf(97) = 0.8817, cdf(98) = 0.9629): the 99th smallest (98.0), 1 above.
        let t = threshold(cal(CalibrationMethod::Tolerance), &s, 0.05, "t").unwrap();
        assert_eq!((t.threshold, t.above), (98.0, 1));
    }

    #[test]
    fn too_few_windows_name_the_minimum() {
        // ln(0.1) / ln(0.95) = 44.9 -> 45 windows.
        assert_eq!(min_windows(cal(CalibrationMethod::Tolerance), 0.05), 45);
        assert_eq!(min_windows(cal(CalibrationMethod::Conformal), 0.05), 19);
        let s: Vec<f64> = (0..44).map(f64::from).collect();
        let e = threshold(cal(CalibrationMethod::Tolerance), &s, 0.05, "phase cruise").unwrap_err();
        assert!(e.to_string().contains("phase cruise: 44 normal calibration windows"), "{e}");
        assert!(e.to_string().contains("needs at least 45"), "{e}");
        let s: Vec<f64> = (0..45).map(f64::from).collect();
        let t = threshold(cal(CalibrationMethod::Tolerance), &s, 0.05, "t").unwrap();
        assert_eq!(t.above, 0, "with 45 windows only the largest score guarantees it");
    }

    /// The guarantee, checked by simulation: over many calibration sets of uniform scores, the
    /// true FAR (1 - threshold) exceeds the target in at most 1 - confidence of them (plus
    /// sampling slack), and the empirical rule exceeds it far more often.
    #[test]
    fn tolerance_bound_holds_by_simulation() {
        use rand_chacha::rand_core::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (trials, n, alpha) = (2000, 200, 0.05);
        let mut over = [0usize; 2];
        for _ in 0..trials {
            let s: Vec<f64> = (0..n).map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64).collect();
            for (k, m) in [CalibrationMethod::Tolerance, CalibrationMethod::Empirical].into_iter().enumerate()
            {
                let t = threshold(cal(m), &s, alpha, "sim").unwrap().threshold;
                over[k] += usize::from(1.0 - t > alpha);
            }
        }
        let (tol, emp) = (over[0] as f64 / trials as f64, over[1] as f64 / trials as f64);
        assert!(tol <= 0.1 + 0.02, "tolerance rule exceeded the target in {tol} of the trials");
        assert!(emp > 0.3, "empirical rule exceeded it in only {emp}");
    }
}
