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
    /// Measured value.
    pub value: f64,
    /// `>=` or `<=`.
    pub op: String,
    /// Limit.
    pub limit: f64,
    /// Passed.
    pub passed: bool,
}

/// Checks every gate of `g` against `metrics` (a metric that is missing fails its gate).
pub fn check(g: &Gates, metrics: &BTreeMap<String, f64>) -> Vec<GateResult> {
    let value = |name: &str| metrics.get(name).copied().unwrap_or(f64::NAN);
    let gate = |name: &str, op: &str, limit: f64| {
        let v = value(name);
        GateResult {
            gate: name.into(),
            value: v,
            op: op.into(),
            limit,
            passed: if op == ">=" { v >= limit } else { v <= limit },
        }
    };
    vec![
        gate(names::TEST_AUC, ">=", g.min_auc),
        gate(names::TEST_PRECISION, ">=", g.min_precision),
        gate(names::TEST_RECALL, ">=", g.min_recall),
        gate(names::TEST_FAR, "<=", g.max_far),
        gate(names::EXPORT_LATENCY_P99_MS, "<=", g.max_latency_p99_ms),
    ]
}

/// The gate table as text, one line per gate.
pub fn table(results: &[GateResult]) -> String {
    let mut s = format!("{:<22} {:>10}    {:>10}  {}\n", "gate", "value", "limit", "result");
    for g in results {
        s += &format!(
            "{:<22} {:>10.4} {:>2} {:>10.4}  {}\n",
            g.gate,
            g.value,
            g.op,
            g.limit,
            if g.passed { "pass" } else { "FAIL" }
        );
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
        let g = Gates {
            min_auc: 0.9,
            min_precision: 0.85,
            min_recall: 0.85,
            max_far: 0.05,
            max_latency_p99_ms: 50.0,
        };
        let r = check(&g, &metrics);
        let passed: Vec<bool> = r.iter().map(|g| g.passed).collect();
        // recall below, FAR above, latency missing.
        assert_eq!(passed, [true, true, false, false, false]);
        let t = table(&r);
        assert!(t.contains("test/auc") && t.contains("pass") && t.contains("FAIL"), "{t}");
        assert_eq!(t.lines().count(), 6);
    }
}
