//! From window scores to what an operator is judged on: verdicts (avm-core's rule, per phase),
//! alerts (avm-core's [`Alerter`], the firmware's state machine), and flight-level metrics.
//!
//! Definitions (README, "Flight-level evaluation"):
//! - A flight is an **engine-fault flight** when any of its windows is labelled 1 (engine fault),
//!   a **sensor-event flight** when it has none but a window overlaps a data-quality event, and
//!   **healthy** otherwise. The fault's **onset** is the earliest engine-fault label's start on
//!   that flight (from `labels.csv`), else the first faulty window's start.
//! - An alert is **raised at** the end of the window that raised it (when the window's verdict
//!   exists on board). A fault flight is **alerted** when an alert is raised after onset
//!   (`raised_s > onset_s`); the **detection delay** is `raised_s - onset_s` of the first one.
//! - **False alerts**: alerts raised on healthy flights, and on fault flights before onset;
//!   **healthy hours**: the healthy flights' durations plus the fault flights' time before
//!   onset. The rate per 1000 healthy hours has an exact (Garwood) Poisson 95 % interval.
//!   Sensor-event flights are reported apart (their alerts are data-quality alerts).
//! - Severity class: `subtle` below 0.35, else `gross` (the flight's largest labelled severity).

use crate::formats::windows::{NONE, Window};
use anyhow::{Result, anyhow};
use avm_core::bundle::PhaseEntry;
use avm_core::{AlertEvent, AlertKind, AlertPolicy, Alerter, PHASE_UNKNOWN, Verdict};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};
use std::collections::BTreeMap;

/// The severity below which a fault is `subtle`.
pub const SUBTLE_BELOW: f64 = 0.35;

/// The detector's phase table as the trainer builds it: one entry per contract phase, in code
/// order, with its threshold (its own when calibrated, else the global one) and its
/// no-verdict flag. The same entries go into the bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseTable {
    /// Global threshold (unknown phase).
    pub global: f32,
    /// One per phase code.
    pub entries: Vec<Phase>,
}

/// One phase of a [`PhaseTable`].
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// The contract's name.
    pub name: String,
    /// Its threshold.
    pub threshold: f32,
    /// Its windows get no verdict.
    pub no_verdict: bool,
}

impl Phase {
    /// As avm-core's bundle and verdict rule take it.
    pub fn entry(&self) -> PhaseEntry<'_> {
        PhaseEntry { name: &self.name, threshold: self.threshold, no_verdict: self.no_verdict }
    }
}

impl PhaseTable {
    /// The table for `phases` (contract order).
    pub fn new(
        phases: &[String],
        global: f32,
        per_phase: &BTreeMap<String, f64>,
        no_verdict: &[String],
    ) -> PhaseTable {
        let entries = phases
            .iter()
            .map(|p| Phase {
                name: p.clone(),
                threshold: per_phase.get(p).map_or(global, |&t| t as f32),
                no_verdict: no_verdict.contains(p),
            })
            .collect();
        PhaseTable { global, entries }
    }

    /// The entries as avm-core's bundle takes them.
    pub fn bundle_entries(&self) -> Vec<PhaseEntry<'_>> {
        self.entries.iter().map(Phase::entry).collect()
    }

    /// The code of phase `name` ([`PHASE_UNKNOWN`] when it is not in the table).
    pub fn code(&self, name: &str) -> u8 {
        self.entries.iter().position(|p| p.name == name).map_or(PHASE_UNKNOWN, |i| i as u8)
    }

    /// The verdict on a window with `score` (avm-core's rule, [`Verdict::judge`]).
    pub fn verdict(&self, w: &Window, score: f32) -> Verdict {
        let code = self.code(&w.phase);
        let entry = self.entries.get(usize::from(code)).map(Phase::entry);
        Verdict::judge(w.window_index, score, w.valid, code, entry.as_ref(), self.global)
    }
}

/// One alert of a flight.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AlertRecord {
    /// Window that raised it.
    pub raised_window: u32,
    /// End of that window, s (when the verdict exists).
    pub raised_s: f64,
    /// Window that cleared it (none: still up at the end of the flight).
    pub cleared_window: Option<u32>,
    /// End of that window, s.
    pub cleared_s: Option<f64>,
    /// Score of the raising window.
    pub raise_score: f32,
    /// Its threshold.
    pub threshold: f32,
    /// Alarms among the watched windows when raised, and the windows watched.
    pub alarms_in_watch: [u8; 2],
    /// Highest score while up.
    pub peak_score: f32,
}

/// What kind of flight.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FlightKind {
    /// No engine fault, no data-quality event.
    Healthy,
    /// An engine fault is labelled.
    EngineFault,
    /// No engine fault; a data-quality event is labelled.
    SensorEvent,
    /// Scored without labels (`avm score` without `--labels`).
    Unlabelled,
}

/// One flight's outcome.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FlightSummary {
    /// Recording.
    pub flight_id: String,
    /// Kind.
    pub kind: FlightKind,
    /// Start of its first window, s.
    pub start_s: f64,
    /// Duration covered by its windows, hours.
    pub hours: f64,
    /// Windows, judged windows, window alarms.
    pub windows: usize,
    /// Windows with a verdict.
    pub judged: usize,
    /// Window alarms.
    pub alarms: usize,
    /// The engine fault (engine-fault flights).
    pub fault_type: Option<String>,
    /// Its largest labelled severity.
    pub severity: Option<f64>,
    /// Its onset, s.
    pub onset_s: Option<f64>,
    /// Alerts, in order.
    pub alerts: Vec<AlertRecord>,
    /// Alerts raised on healthy engine time (before onset, or on a flight without fault).
    pub false_alerts: usize,
    /// First alert raised after onset minus onset, s.
    pub detection_delay_s: Option<f64>,
    /// An alert raised before onset was still up at onset (the fault was covered by an alert
    /// that was false when raised; not counted as detected).
    #[serde(default)]
    pub alert_up_at_onset: bool,
}

/// Median and 90th percentile of detection delays (numpy's default linear interpolation).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Delays {
    /// Fault flights in the group.
    pub flights: usize,
    /// Of which alerted after onset.
    pub alerted: usize,
    /// Median delay, s (null when none was alerted).
    pub median_s: Option<f64>,
    /// 90th percentile, s.
    pub p90_s: Option<f64>,
}

/// Flight-level metrics of a set of flights.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FlightMetrics {
    /// The alert policy used.
    pub policy: PolicyReport,
    /// Flights by kind.
    pub flights: BTreeMap<String, usize>,
    /// Healthy engine hours observed.
    pub healthy_hours: f64,
    /// False alerts in them.
    pub false_alerts: usize,
    /// False alerts per 1000 healthy hours (null without healthy hours).
    pub false_alerts_per_1000h: Option<f64>,
    /// Exact Poisson 95 % interval of that rate.
    pub false_alerts_per_1000h_ci95: Option<[f64; 2]>,
    /// Fraction of engine-fault flights alerted after onset.
    pub fault_flights_alerted: Option<f64>,
    /// Engine-fault flights with an alert (raised before onset) still up at onset.
    #[serde(default)]
    pub fault_flights_alert_up_at_onset: usize,
    /// Gross-fault flights alerted within `deadline_s` of onset (fraction).
    pub gross_alerted_in_time: Option<f64>,
    /// The deadline, s.
    pub deadline_s: f64,
    /// Subtle-fault flights alerted before the flight ended (fraction).
    pub subtle_alerted: Option<f64>,
    /// Delays over all fault flights.
    pub delay: Delays,
    /// By fault type.
    pub delay_by_fault_type: BTreeMap<String, Delays>,
    /// By severity class.
    pub delay_by_severity: BTreeMap<String, Delays>,
    /// Sensor-event flights: hours observed and alerts raised.
    pub sensor_event_hours: f64,
    /// Alerts on sensor-event flights.
    pub sensor_event_alerts: usize,
}

/// The alert policy as reported.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PolicyReport {
    /// M.
    pub raise_count: u8,
    /// N.
    pub raise_window: u8,
    /// Quiet windows to clear.
    pub clear_count: u8,
    /// Quiet below this fraction of the threshold.
    pub clear_fraction: f32,
    /// Latched per flight.
    pub latch: bool,
}

impl From<AlertPolicy> for PolicyReport {
    fn from(p: AlertPolicy) -> PolicyReport {
        PolicyReport {
            raise_count: p.raise_count,
            raise_window: p.raise_window,
            clear_count: p.clear_count,
            clear_fraction: p.clear_fraction,
            latch: p.latch,
        }
    }
}

/// The alert state after each window, and each flight's alerts.
pub struct Alerted {
    /// Per input window (same order): an alert is up after its verdict.
    pub alert_up: Vec<bool>,
    /// Per flight, in order of first appearance.
    pub flights: Vec<FlightSummary>,
    /// Raw events per flight (for the firmware comparison).
    pub events: Vec<(String, Vec<AlertEvent>)>,
}

/// Runs the alert policy over `windows` (grouped by flight, each flight's windows in window
/// order) with their verdicts; `onsets` are the labelled engine-fault onsets by flight.
pub fn alerts(
    policy: AlertPolicy,
    windows: &[&Window],
    verdicts: &[Verdict],
    onsets: &BTreeMap<String, f64>,
) -> Result<Alerted> {
    if windows.len() != verdicts.len() {
        return Err(anyhow!("{} windows but {} verdicts", windows.len(), verdicts.len()));
    }
    let mut alerter = Alerter::new(policy).map_err(|e| anyhow!("{e}"))?;
    let mut alert_up = Vec::with_capacity(windows.len());
    let mut flights = Vec::new();
    let mut events = Vec::new();
    let mut i = 0;
    while i < windows.len() {
        let id = &windows[i].flight_id;
        let end = i + windows[i..].iter().take_while(|w| &w.flight_id == id).count();
        let ws = &windows[i..end];
        for pair in ws.windows(2) {
            if pair[1].window_index <= pair[0].window_index {
                return Err(anyhow!("flight {id}: windows are not in window order"));
            }
        }
        alerter.reset();
        let mut recs: Vec<AlertRecord> = Vec::new();
        let mut evs = Vec::new();
        for (w, v) in ws.iter().zip(&verdicts[i..end]) {
            if let Some(e) = alerter.step(v) {
                evs.push(e);
                match e.kind {
                    AlertKind::Raised => recs.push(AlertRecord {
                        raised_window: e.window_index,
                        raised_s: w.end_s,
                        cleared_window: None,
                        cleared_s: None,
                        raise_score: e.score,
                        threshold: e.threshold,
                        alarms_in_watch: [e.count, e.of],
                        peak_score: e.peak_score,
                    }),
                    AlertKind::Cleared => {
                        if let Some(r) = recs.last_mut() {
                            r.cleared_window = Some(e.window_index);
                            r.cleared_s = Some(w.end_s);
                            r.peak_score = e.peak_score;
                        }
                    }
                }
            }
            alert_up.push(alerter.raised_at().is_some());
        }
        // The peak of an alert still up at the end, as the state machine kept it.
        if let (Some(r), Some(peak)) = (recs.last_mut(), alerter.peak_score()) {
            r.peak_score = peak;
        }
        flights.push(summarise(ws, &verdicts[i..end], recs, onsets.get(id).copied()));
        events.push((id.clone(), evs));
        i = end;
    }
    Ok(Alerted { alert_up, flights, events })
}

/// The kind of a flight with windows `ws` (see the module docs).
pub fn kind(ws: &[&Window]) -> FlightKind {
    if ws.iter().any(|w| w.label == 1) {
        FlightKind::EngineFault
    } else if ws.iter().any(|w| w.sensor_event != NONE) {
        FlightKind::SensorEvent
    } else {
        FlightKind::Healthy
    }
}

fn summarise(ws: &[&Window], vs: &[Verdict], alerts: Vec<AlertRecord>, onset: Option<f64>) -> FlightSummary {
    let first = ws.first().map_or(0.0, |w| w.start_s);
    let last = ws.iter().map(|w| w.end_s).fold(first, f64::max);
    let faulty: Vec<&&Window> = ws.iter().filter(|w| w.label == 1).collect();
    let kind = kind(ws);
    let onset_s = (kind == FlightKind::EngineFault)
        .then(|| onset.unwrap_or_else(|| faulty.iter().map(|w| w.start_s).fold(f64::INFINITY, f64::min)));
    let healthy_until = onset_s.unwrap_or(f64::INFINITY);
    let false_alerts = match kind {
        FlightKind::SensorEvent => 0,
        _ => alerts.iter().filter(|a| a.raised_s <= healthy_until).count(),
    };
    let detection_delay_s =
        onset_s.and_then(|o| alerts.iter().find(|a| a.raised_s > o).map(|a| a.raised_s - o));
    let alert_up_at_onset =
        onset_s.is_some_and(|o| alerts.iter().any(|a| a.raised_s <= o && a.cleared_s.is_none_or(|c| c > o)));
    FlightSummary {
        flight_id: ws.first().map(|w| w.flight_id.clone()).unwrap_or_default(),
        kind,
        start_s: first,
        hours: (last - first) / 3600.0,
        windows: ws.len(),
        judged: vs.iter().filter(|v| v.judged).count(),
        alarms: vs.iter().filter(|v| v.alarm).count(),
        fault_type: faulty.first().map(|w| w.fault_type.clone()),
        severity: (!faulty.is_empty()).then(|| faulty.iter().map(|w| w.severity).fold(0.0, f64::max)),
        onset_s,
        alerts,
        false_alerts,
        detection_delay_s,
        alert_up_at_onset,
    }
}

/// numpy's default (linear) percentile of sorted `v`, `q` in [0, 100].
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// Exact (Garwood) two-sided 95 % interval of a Poisson mean after `k` events.
pub fn poisson_ci95(k: usize) -> [f64; 2] {
    let q = |p: f64, df: f64| ChiSquared::new(df).map(|d| d.inverse_cdf(p) / 2.0).unwrap_or(f64::NAN);
    let lo = if k == 0 { 0.0 } else { q(0.025, 2.0 * k as f64) };
    [lo, q(0.975, 2.0 * k as f64 + 2.0)]
}

fn delays<'a>(fs: impl Iterator<Item = &'a FlightSummary>) -> Delays {
    let fs: Vec<_> = fs.collect();
    let mut d: Vec<f64> = fs.iter().filter_map(|f| f.detection_delay_s).collect();
    d.sort_by(f64::total_cmp);
    Delays {
        flights: fs.len(),
        alerted: d.len(),
        median_s: percentile(&d, 50.0),
        p90_s: percentile(&d, 90.0),
    }
}

/// The flight-level metrics of `flights`.
pub fn metrics(policy: AlertPolicy, flights: &[FlightSummary], deadline_s: f64) -> FlightMetrics {
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for k in ["healthy", "engine_fault", "sensor_event"] {
        by_kind.insert(k.into(), 0);
    }
    for f in flights {
        let k = match f.kind {
            FlightKind::Healthy => "healthy",
            FlightKind::EngineFault => "engine_fault",
            FlightKind::SensorEvent => "sensor_event",
            FlightKind::Unlabelled => "unlabelled",
        };
        *by_kind.entry(k.into()).or_default() += 1;
    }
    let healthy_hours: f64 = flights
        .iter()
        .map(|f| match (f.kind, f.onset_s) {
            (FlightKind::Healthy, _) => f.hours,
            (FlightKind::EngineFault, Some(o)) => ((o - f.start_s).max(0.0) / 3600.0).min(f.hours),
            _ => 0.0,
        })
        .sum();
    let false_alerts: usize =
        flights.iter().filter(|f| f.kind != FlightKind::SensorEvent).map(|f| f.false_alerts).sum();
    let per_1000h = (healthy_hours > 0.0).then(|| false_alerts as f64 / healthy_hours * 1000.0);
    let ci = (healthy_hours > 0.0).then(|| poisson_ci95(false_alerts).map(|x| x / healthy_hours * 1000.0));
    let faults: Vec<&FlightSummary> = flights.iter().filter(|f| f.kind == FlightKind::EngineFault).collect();
    let subtle = |f: &&FlightSummary| f.severity.unwrap_or(0.0) < SUBTLE_BELOW;
    let frac = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
    let gross: Vec<&&FlightSummary> = faults.iter().filter(|f| !subtle(f)).collect();
    let subtle_f: Vec<&&FlightSummary> = faults.iter().filter(|f| subtle(f)).collect();
    let mut by_type: BTreeMap<String, Vec<&FlightSummary>> = BTreeMap::new();
    for f in &faults {
        by_type.entry(f.fault_type.clone().unwrap_or_default()).or_default().push(f);
    }
    FlightMetrics {
        policy: policy.into(),
        flights: by_kind,
        healthy_hours,
        false_alerts,
        false_alerts_per_1000h: per_1000h,
        false_alerts_per_1000h_ci95: ci,
        fault_flights_alerted: frac(
            faults.iter().filter(|f| f.detection_delay_s.is_some()).count(),
            faults.len(),
        ),
        fault_flights_alert_up_at_onset: faults.iter().filter(|f| f.alert_up_at_onset).count(),
        gross_alerted_in_time: frac(
            gross.iter().filter(|f| f.detection_delay_s.is_some_and(|d| d <= deadline_s)).count(),
            gross.len(),
        ),
        deadline_s,
        subtle_alerted: frac(
            subtle_f.iter().filter(|f| f.detection_delay_s.is_some()).count(),
            subtle_f.len(),
        ),
        delay: delays(faults.iter().copied()),
        delay_by_fault_type: by_type.into_iter().map(|(k, v)| (k, delays(v.into_iter()))).collect(),
        delay_by_severity: [
            ("gross", gross.iter().map(|f| **f).collect::<Vec<_>>()),
            ("subtle", subtle_f.iter().map(|f| **f).collect()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), delays(v.into_iter())))
        .collect(),
        // `+ 0.0`: an empty f64 sum is -0.0, printed "-0.00 h".
        sensor_event_hours: flights
            .iter()
            .filter(|f| f.kind == FlightKind::SensorEvent)
            .map(|f| f.hours)
            .sum::<f64>()
            + 0.0,
        sensor_event_alerts: flights
            .iter()
            .filter(|f| f.kind == FlightKind::SensorEvent)
            .map(|f| f.alerts.len())
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(flight: &str, i: u32, label: u8, sensor: &str) -> Window {
        Window {
            flight_id: flight.into(),
            aircraft_id: "AC".into(),
            engine_id: "E1".into(),
            window_index: i,
            start_s: 5.0 * f64::from(i),
            end_s: 5.0 * f64::from(i) + 10.0,
            phase: "cruise".into(),
            label,
            fault_type: if label == 1 { "bearing_defect".into() } else { NONE.into() },
            severity: if label == 1 { 0.5 } else { 0.0 },
            sensor_event: sensor.into(),
            valid: true,
            roc_valid: true,
            quality: vec![],
            features: vec![],
        }
    }

    #[test]
    fn numpy_percentiles_and_scipy_poisson_intervals() {
        // numpy.percentile([1, 2, 4, 10], [50, 90]) = [3.0, 8.2]
        let v = [1.0, 2.0, 4.0, 10.0];
        assert_eq!(percentile(&v, 50.0), Some(3.0));
        assert!((percentile(&v, 90.0).unwrap() - 8.2).abs() < 1e-12);
        assert_eq!(percentile(&[], 50.0), None);
        // scipy.stats.chi2.ppf(0.025, 2k) / 2 and chi2.ppf(0.975, 2k + 2) / 2:
        // k = 0: [0, 3.6888794541139354]; 1: [0.025317807984289876, 5.571643390938898];
        // 10: [4.7953886961324335, 18.39035604201778].
        for (k, lo, hi) in [
            (0, 0.0, 3.6888794541139354),
            (1, 0.025317807984289876, 5.571643390938898),
            (10, 4.7953886961324335, 18.39035604201778),
        ] {
            let [l, h] = poisson_ci95(k);
            assert!((l - lo).abs() < 1e-6 && (h - hi).abs() < 1e-6, "k = {k}: {l} {h}");
        }
    }

    #[test]
    fn alerts_delays_and_false_alerts_per_flight() {
        let table = PhaseTable::new(&["cruise".into()], 1.0, &BTreeMap::new(), &[]);
        // Healthy flight H: alarms at windows 2, 3 (a 2-of-3 alert, a false alert).
        // Fault flight F: onset at 20 s (labels from window 4), alarms from window 5.
        let mut ws: Vec<Window> = (0..8).map(|i| window("H", i, 0, NONE)).collect();
        ws.extend((0..10).map(|i| window("F", i, u8::from(i >= 4), NONE)));
        ws.extend((0..4).map(|i| window("S", i, 0, "sensor_spike")));
        let score = |w: &Window| match (w.flight_id.as_str(), w.window_index) {
            ("H", 2 | 3) => 2.0,
            ("F", i) if i >= 5 => 3.0,
            ("S", _) => 5.0,
            _ => 0.5,
        };
        let refs: Vec<&Window> = ws.iter().collect();
        let vs: Vec<Verdict> = refs.iter().map(|w| table.verdict(w, score(w))).collect();
        let policy = AlertPolicy {
            raise_count: 2,
            raise_window: 3,
            clear_count: 2,
            clear_fraction: 1.0,
            latch: false,
        };
        let onsets: BTreeMap<String, f64> = [("F".to_string(), 20.0)].into();
        let a = alerts(policy, &refs, &vs, &onsets).unwrap();
        let h = &a.flights[0];
        assert_eq!((h.kind, h.alerts.len(), h.false_alerts), (FlightKind::Healthy, 1, 1));
        assert_eq!((h.alerts[0].raised_window, h.alerts[0].cleared_window), (3, Some(5)));
        assert_eq!(&a.alert_up[..8], &[false, false, false, true, true, false, false, false]);
        let f = &a.flights[1];
        // Raised at window 6 (alarms at 5 and 6), which ends at 40 s: 20 s after onset.
        assert_eq!(
            (f.kind, f.onset_s, f.detection_delay_s),
            (FlightKind::EngineFault, Some(20.0), Some(20.0))
        );
        assert_eq!((f.fault_type.as_deref(), f.false_alerts), (Some("bearing_defect"), 0));
        assert!(!f.alert_up_at_onset);
        let s = &a.flights[2];
        assert_eq!((s.kind, s.alerts.len(), s.false_alerts), (FlightKind::SensorEvent, 1, 0));
        // An alert raised before onset and still up at onset: false, not a detection, reported.
        let early: BTreeMap<String, f64> = [("F".to_string(), 45.0)].into();
        let b = alerts(policy, &refs, &vs, &early).unwrap();
        let f = &b.flights[1];
        assert_eq!((f.false_alerts, f.detection_delay_s, f.alert_up_at_onset), (1, None, true));
        assert_eq!(metrics(policy, &b.flights, 60.0).fault_flights_alert_up_at_onset, 1);
        let m = metrics(policy, &a.flights, 60.0);
        // Healthy hours: H's 45 s and F's 20 s before onset.
        assert!((m.healthy_hours - 65.0 / 3600.0).abs() < 1e-12, "{}", m.healthy_hours);
        assert_eq!((m.false_alerts, m.sensor_event_alerts), (1, 1));
        assert_eq!(
            (m.gross_alerted_in_time, m.subtle_alerted, m.fault_flights_alerted),
            (Some(1.0), None, Some(1.0))
        );
        assert_eq!(m.delay.median_s, Some(20.0));
        let r = m.false_alerts_per_1000h.unwrap();
        assert!((r - 1000.0 / (65.0 / 3600.0)).abs() < 1e-6);
        // Windows out of order are refused.
        let rev: Vec<&Window> = refs[..8].iter().rev().copied().collect();
        assert!(alerts(policy, &rev, &vs[..8], &onsets).is_err());
    }

    #[test]
    fn no_verdict_phases_and_unknown_phases() {
        let table = PhaseTable::new(
            &["taxi".into(), "cruise".into()],
            1.0,
            &[("cruise".to_string(), 2.0)].into(),
            &["taxi".into()],
        );
        let mut w = window("A", 0, 0, NONE);
        w.phase = "taxi".into();
        let v = table.verdict(&w, 5.0);
        assert_eq!((v.phase, v.judged, v.alarm), (0, false, false));
        w.phase = "cruise".into();
        let v = table.verdict(&w, 1.5);
        assert_eq!((v.phase, v.threshold, v.alarm), (1, 2.0, false));
        w.phase = "unknown".into();
        let v = table.verdict(&w, 1.5);
        assert_eq!((v.phase, v.threshold, v.alarm), (PHASE_UNKNOWN, 1.0, true));
        assert_eq!(table.bundle_entries()[0], PhaseEntry { name: "taxi", threshold: 1.0, no_verdict: true });
    }
}
