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
//!
//! **Flight level** (`evaluate.flight_calibration`): the unit an operator counts is the flight,
//! and windows of one flight are far more alike than flights are (on hours-long flights a
//! window-level guarantee does not hold on new flights; README, "The fleet month"). So the
//! thresholds can also be calibrated over flights: each healthy calibration flight's
//! [`alert_statistic`] is the smallest threshold multiplier at which the alert policy raises no
//! alert on it; the multiplier `c` is their split-conformal quantile (rank
//! `⌈(n+1)(1-α)⌉`, `α` = `target_alerting_fraction`), so that, for a new healthy flight
//! exchangeable with the `n` calibration flights, `P(it raises an alert) <= α`. Every threshold
//! is multiplied by `max(1, c)`: the window-level rule stays a floor, and both guarantees hold.

use crate::config::{Calibration, CalibrationMethod};
use crate::error::UsageError;
use anyhow::Result;
use avm_core::AlertPolicy;
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

/// The flight-level statistic of one flight: the smallest multiplier `c` of every threshold at
/// which `policy` raises no alert on it. `ratios` are the flight's judged windows' score over
/// their threshold, in window order (windows without a verdict are left out: the alert state
/// machine skips them). The first alert goes up when `raise_count` (M) of the last
/// `raise_window` (N) judged windows alarm, `score > c·threshold`; so the statistic is the
/// largest, over every run of up to N consecutive judged windows, of the M-th largest ratio
/// in it (0 when the flight has fewer than M judged windows). Clearing and latching do not
/// matter: a flight either raises a first alert or none.
pub fn alert_statistic(policy: AlertPolicy, ratios: impl IntoIterator<Item = f64>) -> f64 {
    let (m, n) = (usize::from(policy.raise_count.max(1)), usize::from(policy.raise_window.max(1)));
    let mut last: std::collections::VecDeque<f64> = std::collections::VecDeque::with_capacity(n);
    let mut sorted = Vec::with_capacity(n);
    let mut stat = 0.0f64;
    for z in ratios {
        if last.len() == n {
            last.pop_front();
        }
        last.push_back(z);
        if last.len() >= m {
            sorted.clear();
            sorted.extend(last.iter().copied());
            sorted.sort_by(|a: &f64, b| b.total_cmp(a));
            stat = stat.max(sorted[m - 1]);
        }
    }
    stat
}

/// A flight-level threshold multiplier and how it was set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FlightCalibrated {
    /// The multiplier applied to every threshold: `max(1, statistic)`.
    pub multiplier: f64,
    /// The conformal quantile of the flights' statistics.
    pub statistic: f64,
    /// Healthy calibration flights.
    pub flights: usize,
    /// Of which with a statistic above it.
    pub above: usize,
    /// The rule's statement, for reports.
    pub guarantee: String,
}

/// Fewest healthy calibration flights the flight-level rule needs for `target`.
pub fn min_flights(target: f64) -> usize {
    min_windows(Calibration { method: CalibrationMethod::Conformal, confidence: 0.0 }, target)
}

/// The flight-level multiplier from the healthy calibration flights' [`alert_statistic`]s, or,
/// when there are too few flights for `target`, the reason (the caller reports it and keeps
/// the window-level thresholds).
pub fn flight_multiplier(stats: &[f64], target: f64) -> std::result::Result<FlightCalibrated, String> {
    let need = min_flights(target);
    if stats.len() < need {
        return Err(format!(
            "flight-level calibration skipped: {} healthy validation flights; target_alerting_fraction {target} needs at least {need}",
            stats.len()
        ));
    }
    let conformal = Calibration { method: CalibrationMethod::Conformal, confidence: 0.0 };
    let c = threshold(conformal, stats, target, "flight-level calibration").map_err(|e| e.to_string())?;
    Ok(FlightCalibrated {
        multiplier: c.threshold.max(1.0),
        statistic: c.threshold,
        flights: c.n,
        above: c.above,
        guarantee: format!(
            "split conformal over flights: a new exchangeable healthy flight raises an alert with probability <= {target}"
        ),
    })
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

    fn policy(m: u8, n: u8) -> AlertPolicy {
        AlertPolicy { raise_count: m, raise_window: n, clear_count: 2, clear_fraction: 0.8, latch: false }
    }

    #[test]
    fn alert_statistic_by_hand() {
        // 2 of 3: runs (0.5, 3, 1) -> 1; (3, 1, 0.2) -> 1; (1, 0.2, 2) -> 1; (0.2, 2, 2.5) -> 2.
        assert_eq!(alert_statistic(policy(2, 3), [0.5, 3.0, 1.0, 0.2, 2.0, 2.5]), 2.0);
        // Fewer judged windows than M: never alerts.
        assert_eq!(alert_statistic(policy(3, 4), [9.0, 9.0]), 0.0);
        // 1 of 1 is the flight's largest ratio.
        assert_eq!(alert_statistic(policy(1, 1), [0.5, 3.0, 1.0]), 3.0);
    }

    /// Against avm-core's alert state machine (the firmware's): at any multiplier, a flight
    /// raises an alert exactly when its statistic is above the multiplier.
    #[test]
    fn alert_statistic_agrees_with_the_state_machine() {
        use avm_core::{Alerter, Verdict};
        use rand_chacha::rand_core::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        for trial in 0..400 {
            let n = 1 + (unit() * 8.0) as u8;
            let m = 1 + (unit() * f64::from(n)) as u8;
            let p = policy(m.min(n), n);
            let len = (unit() * 40.0) as usize;
            // Ratios on a grid of quarters so that ties with the multiplier occur.
            let z: Vec<f64> = (0..len).map(|_| (unit() * 12.0).floor() / 4.0).collect();
            let stat = alert_statistic(p, z.iter().copied());
            for c in [0.25, 0.5, 1.0, 1.25, 1.5, 2.0, 2.5] {
                let mut a = Alerter::new(p).unwrap();
                let raised = z.iter().enumerate().any(|(i, &r)| {
                    let v = Verdict {
                        window_index: i as u32,
                        score: r as f32,
                        threshold: c as f32,
                        valid: true,
                        judged: true,
                        phase: avm_core::PHASE_UNKNOWN,
                        alarm: r > c,
                    };
                    a.step(&v).is_some_and(|e| e.kind == avm_core::AlertKind::Raised)
                });
                assert_eq!(raised, stat > c, "trial {trial}: {p:?} c {c} z {z:?} stat {stat}");
            }
        }
    }

    #[test]
    fn flight_multiplier_rank_floor_and_too_few_flights() {
        // 19 flights, target 0.1: r = ceil(20 * 0.9) = 18 -> the 18th smallest.
        let s: Vec<f64> = (1..=19).map(|i| f64::from(i) / 10.0).collect();
        let f = flight_multiplier(&s, 0.1).unwrap();
        assert_eq!((f.statistic, f.multiplier, f.flights, f.above), (1.8, 1.8, 19, 1));
        // A quantile below 1 leaves the window-level thresholds as they are.
        let low: Vec<f64> = s.iter().map(|x| x / 4.0).collect();
        assert_eq!(flight_multiplier(&low, 0.1).unwrap().multiplier, 1.0);
        // 9 flights are the fewest for 0.1 (n >= 1/0.1 - 1).
        assert_eq!(min_flights(0.1), 9);
        let e = flight_multiplier(&s[..8], 0.1).unwrap_err();
        assert!(e.contains("8 healthy validation flights") && e.contains("at least 9"), "{e}");
        assert_eq!(flight_multiplier(&s[..9], 0.1).unwrap().statistic, 0.9);
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
