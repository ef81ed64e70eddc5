//! Per-window scores (`scores.csv` and `scores.parquet`, the same rows): what `avm evaluate`
//! and `avm score` decided on every window, for notebooks, spreadsheets and audits.
//!
//! Columns, in order ([`COLUMNS`]): `flight_id, window_index, start_s, end_s, phase,
//! phase_code` (avm-core's code; 255 unknown), `score` (reconstruction MSE, float32),
//! `threshold` (the one applied: the phase's or the global), `valid` (no unrepaired gap),
//! `judged` (valid and not in a no-verdict phase), `alarm` (judged and score > threshold),
//! `alert` (an alert is up after this window), `label` (1 engine fault; empty when unknown),
//! `fault_type, severity, sensor_event`.

use crate::formats::table;
use crate::formats::windows::Window;
use anyhow::{Context, Result};
use arrow_array::{ArrayRef, BooleanArray, Float32Array, Float64Array, StringArray, UInt8Array, UInt32Array};
use std::path::Path;
use std::sync::Arc;

/// `scores.csv`.
pub const CSV: &str = "scores.csv";
/// `scores.parquet`.
pub const PARQUET: &str = "scores.parquet";

/// The columns, in order.
pub const COLUMNS: [&str; 16] = [
    "flight_id",
    "window_index",
    "start_s",
    "end_s",
    "phase",
    "phase_code",
    "score",
    "threshold",
    "valid",
    "judged",
    "alarm",
    "alert",
    "label",
    "fault_type",
    "severity",
    "sensor_event",
];

/// One window as scored and judged.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredWindow {
    /// The window (ids, times, phase, labels).
    pub window: Window,
    /// avm-core's verdict (score, threshold, judged, alarm, phase code).
    pub verdict: avm_core::Verdict,
    /// An alert is up after this window.
    pub alert_up: bool,
    /// Whether the labels are known (evaluation) or not (`avm score` without labels).
    pub labelled: bool,
}

/// Writes `scores.csv` and `scores.parquet` into `dir` (each atomically).
pub fn write(dir: &Path, rows: &[ScoredWindow]) -> Result<()> {
    let path = dir.join(CSV);
    crate::io::write_atomic(&path, |w| {
        let mut c = csv::Writer::from_writer(w);
        c.write_record(COLUMNS)?;
        for r in rows {
            let (w, v) = (&r.window, &r.verdict);
            let b = |x: bool| if x { "true" } else { "false" };
            let label = |s: String| if r.labelled { s } else { String::new() };
            c.write_record([
                w.flight_id.clone(),
                w.window_index.to_string(),
                w.start_s.to_string(),
                w.end_s.to_string(),
                w.phase.clone(),
                v.phase.to_string(),
                v.score.to_string(),
                v.threshold.to_string(),
                b(w.valid).into(),
                b(v.judged).into(),
                b(v.alarm).into(),
                b(r.alert_up).into(),
                label(w.label.to_string()),
                label(w.fault_type.clone()),
                label(w.severity.to_string()),
                label(w.sensor_event.clone()),
            ])?;
        }
        c.flush()?;
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))?;
    let strings = |f: &dyn Fn(&ScoredWindow) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<String>>()))
    };
    let opt_strings = |f: &dyn Fn(&ScoredWindow) -> String| -> ArrayRef {
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.labelled.then(|| f(r))).collect::<Vec<Option<String>>>(),
        ))
    };
    let bools = |f: &dyn Fn(&ScoredWindow) -> bool| -> ArrayRef {
        Arc::new(BooleanArray::from(rows.iter().map(f).collect::<Vec<bool>>()))
    };
    let columns: Vec<(String, ArrayRef)> = vec![
        ("flight_id".into(), strings(&|r| r.window.flight_id.clone())),
        (
            "window_index".into(),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.window.window_index))),
        ),
        ("start_s".into(), Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.window.start_s)))),
        ("end_s".into(), Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.window.end_s)))),
        ("phase".into(), strings(&|r| r.window.phase.clone())),
        ("phase_code".into(), Arc::new(UInt8Array::from_iter_values(rows.iter().map(|r| r.verdict.phase)))),
        ("score".into(), Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.verdict.score)))),
        (
            "threshold".into(),
            Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.verdict.threshold))),
        ),
        ("valid".into(), bools(&|r| r.window.valid)),
        ("judged".into(), bools(&|r| r.verdict.judged)),
        ("alarm".into(), bools(&|r| r.verdict.alarm)),
        ("alert".into(), bools(&|r| r.alert_up)),
        (
            "label".into(),
            Arc::new(UInt8Array::from(
                rows.iter().map(|r| r.labelled.then_some(r.window.label)).collect::<Vec<Option<u8>>>(),
            )),
        ),
        ("fault_type".into(), opt_strings(&|r| r.window.fault_type.clone())),
        (
            "severity".into(),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.labelled.then_some(r.window.severity)).collect::<Vec<Option<f64>>>(),
            )),
        ),
        ("sensor_event".into(), opt_strings(&|r| r.window.sensor_event.clone())),
    ];
    debug_assert!(columns.iter().map(|(n, _)| n.as_str()).eq(COLUMNS));
    table::write(&dir.join(PARQUET), columns, &[("avm.table", "scores".to_string())])
}
