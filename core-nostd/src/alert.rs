//! The alert policy: per-window verdicts become alerts an operator can act on, with the same
//! state machine on board and on the ground (HUMS practice: "M trespassings out of N
//! consecutive watch periods", hysteresis, latching per flight).
//!
//! # Contract
//! [`Alerter::step`] takes the windows' [`Verdict`]s in window order, one flight at a time
//! ([`Alerter::reset`] between flights), and returns at most one [`AlertEvent`] per window:
//! - A window **without a verdict** (`!judged`: unrepaired gaps, or a phase the detector marks
//!   "no verdict") changes nothing: it neither counts towards raising nor towards clearing.
//! - **Raise**: while no alert is up, the last `raise_window` judged windows are watched; the
//!   alert is raised at the window where at least `raise_count` of them alarmed
//!   (`score > threshold`).
//! - **Clear** (unless `latch`): while an alert is up, it clears at the `clear_count`-th
//!   consecutive judged window whose score is at most `clear_fraction × threshold` (computed
//!   in `f32`); a NaN score never clears. Clearing empties the watch: raising again needs
//!   `raise_count` new alarms.
//! - **Latch**: an alert once raised stays up until the flight ends.
//!
//! No allocation, no panics, no floating point beyond one `f32` multiply and compares: the
//! events are bit-identical on every target.

use crate::bundle::Verdict;
use core::fmt;

/// The longest watch (`raise_window`) a policy may have: the watch is a 32-bit history.
pub const MAX_WATCH_WINDOWS: u8 = 32;

/// When windows' alarms become an alert (see the [module docs](self) for the exact rules).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlertPolicy {
    /// M: alarms among the last `raise_window` judged windows that raise an alert (1..=N).
    pub raise_count: u8,
    /// N: judged windows watched (1..=[`MAX_WATCH_WINDOWS`]).
    pub raise_window: u8,
    /// Consecutive quiet judged windows that clear a raised alert (>= 1).
    pub clear_count: u8,
    /// A window is quiet when `score <= clear_fraction * threshold` (in (0, 1]; 1 = no
    /// hysteresis).
    pub clear_fraction: f32,
    /// An alert once raised stays up until the flight ends.
    pub latch: bool,
}

/// A policy field that breaks its rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PolicyError {
    /// The field, as the config names it.
    pub field: &'static str,
    /// Its value.
    pub value: f32,
    /// The rule.
    pub rule: &'static str,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "alert policy: {} = {} breaks the rule: {}", self.field, self.value, self.rule)
    }
}

impl core::error::Error for PolicyError {}

impl AlertPolicy {
    /// Every window's alarm is an alert, cleared by the next quiet window: the seed's
    /// per-window behaviour, as a policy.
    pub const PER_WINDOW: AlertPolicy =
        AlertPolicy { raise_count: 1, raise_window: 1, clear_count: 1, clear_fraction: 1.0, latch: false };

    /// Checks every field's rule.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let fail = |field, value: f32, rule| Err(PolicyError { field, value, rule });
        if self.raise_window == 0 || self.raise_window > MAX_WATCH_WINDOWS {
            return fail("raise_window", f32::from(self.raise_window), "must be in 1..=32");
        }
        if self.raise_count == 0 || self.raise_count > self.raise_window {
            return fail("raise_count", f32::from(self.raise_count), "must be in 1..=raise_window");
        }
        if self.clear_count == 0 {
            return fail("clear_count", 0.0, "must be at least 1");
        }
        if !(self.clear_fraction > 0.0 && self.clear_fraction <= 1.0) {
            return fail("clear_fraction", self.clear_fraction, "must be in (0, 1]");
        }
        Ok(())
    }
}

/// Raised or cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertKind {
    /// The alert went up at this window.
    Raised,
    /// The alert went down at this window.
    Cleared,
}

/// An alert going up or down, with the numbers that made it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlertEvent {
    /// Raised or cleared.
    pub kind: AlertKind,
    /// The window at which it happened.
    pub window_index: u32,
    /// That window's score.
    pub score: f32,
    /// That window's threshold.
    pub threshold: f32,
    /// Raised: alarms among the watched windows; cleared: the quiet run's length.
    pub count: u8,
    /// Raised: judged windows watched (at most `raise_window`); cleared: `clear_count`.
    pub of: u8,
    /// The window the alert was raised at (equal to `window_index` when raised).
    pub raised_window: u32,
    /// The highest score while the alert was up (cleared), or the raising score.
    pub peak_score: f32,
}

/// The alert state machine of one flight (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alerter {
    policy: AlertPolicy,
    /// Bit i: the i-th most recent judged window alarmed.
    history: u32,
    /// Judged windows in the history (at most `raise_window`).
    filled: u8,
    /// The window the current alert was raised at.
    raised: Option<u32>,
    quiet: u8,
    peak: f32,
}

impl Alerter {
    /// A state machine for `policy`, checked.
    pub fn new(policy: AlertPolicy) -> Result<Alerter, PolicyError> {
        policy.validate()?;
        Ok(Alerter { policy, history: 0, filled: 0, raised: None, quiet: 0, peak: 0.0 })
    }

    /// The policy.
    pub fn policy(&self) -> AlertPolicy {
        self.policy
    }

    /// Forgets everything: a new flight starts.
    pub fn reset(&mut self) {
        *self = Alerter { policy: self.policy, history: 0, filled: 0, raised: None, quiet: 0, peak: 0.0 };
    }

    /// The window the current alert was raised at, if one is up.
    pub fn raised_at(&self) -> Option<u32> {
        self.raised
    }

    /// The highest judged score since the current alert was raised, if one is up.
    pub fn peak_score(&self) -> Option<f32> {
        self.raised.map(|_| self.peak)
    }

    /// The next window's verdict; the event it causes, if any.
    pub fn step(&mut self, v: &Verdict) -> Option<AlertEvent> {
        if !v.judged {
            return None;
        }
        let p = self.policy;
        match self.raised {
            None => {
                let mask = if p.raise_window >= 32 { u32::MAX } else { (1u32 << p.raise_window) - 1 };
                self.history = ((self.history << 1) | u32::from(v.alarm)) & mask;
                self.filled = (self.filled + 1).min(p.raise_window);
                let count = self.history.count_ones() as u8;
                if count >= p.raise_count {
                    self.raised = Some(v.window_index);
                    self.quiet = 0;
                    self.peak = v.score;
                    return Some(AlertEvent {
                        kind: AlertKind::Raised,
                        window_index: v.window_index,
                        score: v.score,
                        threshold: v.threshold,
                        count,
                        of: self.filled,
                        raised_window: v.window_index,
                        peak_score: v.score,
                    });
                }
                None
            }
            Some(raised_window) => {
                if v.score > self.peak {
                    self.peak = v.score;
                }
                if p.latch {
                    return None;
                }
                if v.score <= p.clear_fraction * v.threshold {
                    self.quiet += 1;
                } else {
                    self.quiet = 0;
                }
                if self.quiet < p.clear_count {
                    return None;
                }
                let event = AlertEvent {
                    kind: AlertKind::Cleared,
                    window_index: v.window_index,
                    score: v.score,
                    threshold: v.threshold,
                    count: self.quiet,
                    of: p.clear_count,
                    raised_window,
                    peak_score: self.peak,
                };
                self.raised = None;
                self.history = 0;
                self.filled = 0;
                self.quiet = 0;
                Some(event)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn v(i: u32, score: f32, judged: bool) -> Verdict {
        Verdict {
            window_index: i,
            score,
            threshold: 1.0,
            valid: judged,
            judged,
            phase: crate::bundle::PHASE_UNKNOWN,
            alarm: judged && score > 1.0,
        }
    }

    fn policy(m: u8, n: u8, clear: u8, frac: f32, latch: bool) -> AlertPolicy {
        AlertPolicy { raise_count: m, raise_window: n, clear_count: clear, clear_fraction: frac, latch }
    }

    fn run(p: AlertPolicy, verdicts: &[Verdict]) -> Vec<(AlertKind, u32)> {
        let mut a = Alerter::new(p).unwrap();
        verdicts.iter().filter_map(|x| a.step(x)).map(|e| (e.kind, e.window_index)).collect()
    }

    #[test]
    fn bad_policies_name_the_field() {
        for (p, field) in [
            (policy(0, 3, 1, 1.0, false), "raise_count"),
            (policy(4, 3, 1, 1.0, false), "raise_count"),
            (policy(1, 0, 1, 1.0, false), "raise_window"),
            (policy(1, 33, 1, 1.0, false), "raise_window"),
            (policy(1, 3, 0, 1.0, false), "clear_count"),
            (policy(1, 3, 1, 0.0, false), "clear_fraction"),
            (policy(1, 3, 1, f32::NAN, false), "clear_fraction"),
            (policy(1, 3, 1, 1.5, false), "clear_fraction"),
        ] {
            let e = Alerter::new(p).unwrap_err();
            assert_eq!(e.field, field, "{p:?}");
            assert!(std::format!("{e}").contains(field));
        }
        assert!(Alerter::new(policy(32, 32, 1, 1.0, true)).is_ok());
    }

    #[test]
    fn m_of_n_raises_at_the_mth_alarm_in_the_watch() {
        // 2 of 3: alarms at 0 and 3 are too far apart; 5 and 6 raise at 6.
        let s = [2.0, 0.5, 0.5, 2.0, 0.5, 2.0, 2.0, 0.5];
        let vs: Vec<_> = s.iter().enumerate().map(|(i, &x)| v(i as u32, x, true)).collect();
        assert_eq!(run(policy(2, 3, 10, 1.0, false), &vs), [(AlertKind::Raised, 5)]);
        // 3 and 5 are within 3 windows: raised at 5.
        assert_eq!(run(policy(2, 3, 2, 1.0, false), &vs)[0], (AlertKind::Raised, 5));
        // Windows without a verdict are skipped, not counted as quiet: 2 of 2 across a gap.
        let gap = [v(0, 2.0, true), v(1, 0.1, false), v(2, 2.0, true)];
        assert_eq!(run(policy(2, 2, 1, 1.0, false), &gap), [(AlertKind::Raised, 2)]);
        // An alarm must be judged: a high score without verdict is not an alarm.
        let unjudged = [v(0, 2.0, true), v(1, 5.0, false), v(2, 0.5, true)];
        assert!(run(policy(2, 2, 1, 1.0, false), &unjudged).is_empty());
    }

    #[test]
    fn hysteresis_clears_only_after_quiet_windows_below_the_fraction() {
        let p = policy(1, 1, 2, 0.5, false);
        // 0.8 is below the threshold but above half of it: not quiet.
        let s = [2.0, 0.8, 0.4, 0.8, 0.4, 0.3, 2.0];
        let vs: Vec<_> = s.iter().enumerate().map(|(i, &x)| v(i as u32, x, true)).collect();
        let mut a = Alerter::new(p).unwrap();
        let ev: Vec<_> = vs.iter().filter_map(|x| a.step(x)).collect();
        assert_eq!(ev.len(), 3);
        assert_eq!((ev[1].kind, ev[1].window_index, ev[1].raised_window), (AlertKind::Cleared, 5, 0));
        assert_eq!((ev[1].count, ev[1].of, ev[1].peak_score), (2, 2, 2.0));
        assert_eq!((ev[2].kind, ev[2].window_index), (AlertKind::Raised, 6));
        // NaN never clears.
        let nan = [v(0, 2.0, true), v(1, f32::NAN, true), v(2, f32::NAN, true)];
        assert_eq!(run(policy(1, 1, 1, 1.0, false), &nan), [(AlertKind::Raised, 0)]);
    }

    #[test]
    fn latched_alerts_stay_up_until_reset() {
        let p = policy(1, 2, 1, 1.0, true);
        let mut a = Alerter::new(p).unwrap();
        assert!(a.step(&v(0, 3.0, true)).is_some());
        for i in 1..50 {
            assert!(a.step(&v(i, 0.0, true)).is_none());
        }
        assert_eq!((a.raised_at(), a.peak_score()), (Some(0), Some(3.0)));
        a.reset();
        assert_eq!(a.raised_at(), None);
        assert_eq!(a.step(&v(0, 3.0, true)).map(|e| e.kind), Some(AlertKind::Raised));
    }

    #[test]
    fn per_window_policy_is_the_seed_alarm() {
        let s = [2.0, 2.0, 0.5, 2.0, 0.5];
        let vs: Vec<_> = s.iter().enumerate().map(|(i, &x)| v(i as u32, x, true)).collect();
        assert_eq!(
            run(AlertPolicy::PER_WINDOW, &vs),
            [
                (AlertKind::Raised, 0),
                (AlertKind::Cleared, 2),
                (AlertKind::Raised, 3),
                (AlertKind::Cleared, 4)
            ]
        );
    }

    /// A direct restatement of the rules over the whole sequence (not incremental): the
    /// independent reference the property test compares with.
    fn reference(p: AlertPolicy, vs: &[Verdict]) -> Vec<(AlertKind, u32)> {
        let mut out = Vec::new();
        let mut watch: Vec<bool> = Vec::new();
        let mut up = false;
        let mut quiet = 0;
        for x in vs.iter().filter(|x| x.judged) {
            if !up {
                watch.push(x.alarm);
                let start = watch.len().saturating_sub(usize::from(p.raise_window));
                if watch[start..].iter().filter(|&&a| a).count() >= usize::from(p.raise_count) {
                    up = true;
                    quiet = 0;
                    out.push((AlertKind::Raised, x.window_index));
                }
            } else if !p.latch {
                quiet = if x.score <= p.clear_fraction * x.threshold { quiet + 1 } else { 0 };
                if quiet >= p.clear_count {
                    up = false;
                    watch.clear();
                    out.push((AlertKind::Cleared, x.window_index));
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn state_machine_matches_the_rules(
            m in 1u8..6, extra in 0u8..5, clear in 1u8..4, frac in 0.2f32..=1.0, latch: bool,
            seq in proptest::collection::vec((0.0f32..3.0, proptest::bool::weighted(0.9)), 0..120),
        ) {
            let p = policy(m, m + extra, clear, frac, latch);
            let vs: Vec<_> = seq.iter().enumerate().map(|(i, &(s, j))| v(i as u32, s, j)).collect();
            let got = run(p, &vs);
            prop_assert_eq!(&got, &reference(p, &vs));
            // Events alternate, starting with a raise; a latched policy raises at most once.
            for (k, (kind, _)) in got.iter().enumerate() {
                prop_assert_eq!(*kind, if k % 2 == 0 { AlertKind::Raised } else { AlertKind::Cleared });
            }
            if latch { prop_assert!(got.len() <= 1); }
        }
    }
}
