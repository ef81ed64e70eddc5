//! Quality gates: limits on the release's headline metrics, looked up by their
//! [`crate::model::metrics::names`], and the table `avm run` / `avm export` print.

pub use crate::config::Gates;
use crate::model::metrics::names;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One quality gate's outcome.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GateResult {
    /// Gate: the metric it limits ([`crate::model::metrics::names`]).
    pub gate: String,
    /// Measured value (null when the metric is missing or not measurable).
    pub value: Option<f64>,
    /// `>=` or `<=`.
    pub op: String,
    /// Limit.
    pub limit: f64,
    /// Passed (a skipped gate counts as passed and says why in `skipped`).
    pub passed: bool,
    /// Why the gate was not checked: the data cannot measure its metric (e.g. no fault flight
    /// in a normal-only test split). Shown in the table, never silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Checks every gate of `g` against `metrics`. A metric that is missing fails its gate,
/// unless `unmeasurable` names it with the reason: then the gate is skipped with that note.
pub fn check(
    g: &Gates,
    metrics: &BTreeMap<String, f64>,
    unmeasurable: &BTreeMap<String, String>,
) -> Vec<GateResult> {
    let gate = |name: &str, op: &str, limit: f64| match (metrics.get(name), unmeasurable.get(name)) {
        (None, Some(why)) => GateResult {
            gate: name.into(),
            value: None,
            op: op.into(),
            limit,
            passed: true,
            skipped: Some(why.clone()),
        },
        (v, _) => {
            let v = v.copied().filter(|v| v.is_finite());
            GateResult {
                gate: name.into(),
                value: v,
                op: op.into(),
                limit,
                // A missing (or non-finite) metric fails.
                passed: v.is_some_and(|v| if op == ">=" { v >= limit } else { v <= limit }),
                skipped: None,
            }
        }
    };
    vec![
        gate(names::TEST_AUC, ">=", g.min_auc),
        gate(names::TEST_PRECISION, ">=", g.min_precision),
        gate(names::TEST_RECALL, ">=", g.min_recall),
        gate(names::TEST_FAR, "<=", g.max_far),
        gate(names::EXPORT_LATENCY_P99_MS, "<=", g.max_latency_p99_ms),
        gate(names::TEST_FLIGHT_GROSS_IN_TIME, ">=", g.min_gross_flights_alerted_in_time),
        gate(names::TEST_FLIGHT_SUBTLE_ALERTED, ">=", g.min_subtle_flights_alerted),
        gate(names::TEST_FLIGHT_FALSE_ALERTS_PER_100H, "<=", g.max_false_alerts_per_100_flight_hours),
    ]
}

/// The gate table as text, one line per gate.
pub fn table(results: &[GateResult]) -> String {
    let mut s = format!("{:<36} {:>10}    {:>10}  {}\n", "gate", "value", "limit", "result");
    for g in results {
        let result = match (&g.skipped, g.passed) {
            (Some(why), _) => format!("skipped: {why}"),
            (None, true) => "pass".into(),
            (None, false) => "FAIL".into(),
        };
        let value = g.value.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        s += &format!("{:<36} {value:>10} {:>2} {:>10.4}  {result}\n", g.gate, g.op, g.limit);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_check_the_named_metrics_and_the_table_marks_failures() {
        let metrics: BTreeMap<String, f64> = [
            (names::TEST_AUC, 0.95),
            (names::TEST_PRECISION, 0.9),
            (names::TEST_RECALL, 0.8),
            (names::TEST_FAR, 0.07),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let g = Gates::default();
        let mut metrics = metrics;
        metrics.insert(names::TEST_FLIGHT_GROSS_IN_TIME.into(), 1.0);
        metrics.insert(names::TEST_FLIGHT_FALSE_ALERTS_PER_100H.into(), 2.0);
        let unmeasurable: BTreeMap<String, String> =
            [(names::TEST_FLIGHT_SUBTLE_ALERTED.to_string(), "no subtle-fault flight".to_string())].into();
        let r = check(&g, &metrics, &unmeasurable);
        let passed: Vec<bool> = r.iter().map(|g| g.passed).collect();
        // recall below, FAR above, latency missing; gross in time; subtle skipped; false alerts above.
        assert_eq!(passed, [true, true, false, false, false, true, true, false]);
        assert_eq!(r[6].skipped.as_deref(), Some("no subtle-fault flight"));
        let t = table(&r);
        assert!(t.contains("test/auc") && t.contains("pass") && t.contains("FAIL"), "{t}");
        assert!(t.contains("skipped: no subtle-fault flight"), "{t}");
        assert_eq!(t.lines().count(), 9);
        // A missing metric nobody declared unmeasurable fails.
        let r = check(&g, &metrics, &BTreeMap::new());
        assert!(!r[6].passed && r[6].skipped.is_none());
    }
}
