//! Label intervals, kept apart from the recordings (`DATA/raw/labels.csv`):
//! `flight_id,start_s,end_s,fault_type,category,severity`, one fault (or data-quality event)
//! per row, times on the recording's `time_s` axis. `category` is `engine` for a mechanical
//! fault and `sensor` for a data-quality event; the contract maps each fault type to one.

use crate::error::{ContractViolations, Violation};
use crate::formats::contract::FaultCategory;
use anyhow::Result;
use std::path::Path;

/// Header of a label file.
pub const HEADER: &str = "flight_id,start_s,end_s,fault_type,category,severity";

/// One labelled interval.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelInterval {
    /// The recording it belongs to.
    pub flight_id: String,
    /// Start, seconds on the recording's time axis.
    pub start_s: f64,
    /// End (exclusive), seconds.
    pub end_s: f64,
    /// Fault type (one of the contract's).
    pub fault_type: String,
    /// Engine fault or data-quality event.
    pub category: FaultCategory,
    /// Severity, in the contract's range.
    pub severity: f64,
    /// Line in the file (1 = header), for messages.
    pub row: usize,
}

impl LabelInterval {
    /// Overlap with `[a, b)` in seconds.
    pub fn overlap_s(&self, a: f64, b: f64) -> f64 {
        (self.end_s.min(b) - self.start_s.max(a)).max(0.0)
    }
}

fn category_name(c: FaultCategory) -> &'static str {
    match c {
        FaultCategory::Engine => "engine",
        FaultCategory::Sensor => "sensor",
    }
}

/// Reads a label file.
pub fn read(path: &Path) -> Result<Vec<LabelInterval>, ContractViolations> {
    let bad = |loc: String, d: String| -> ContractViolations {
        Violation::new(path, loc, "label.format", d).into()
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(String::new(), format!("cannot read: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = crate::formats::recording::csv_reader(text);
    let header = crate::formats::recording::csv_header(path, "label.format", &mut reader)?;
    if header.join(",") != HEADER {
        return Err(bad("line 1".into(), format!("header must be {HEADER:?}")));
    }
    let mut out = Vec::new();
    for rec in reader.records() {
        let f = rec.map_err(|e| crate::formats::recording::csv_violation(path, "label.format", e))?;
        let row = f.position().map_or(0, |p| p.line() as usize);
        let num = |k: usize, name: &str| -> Result<f64, ContractViolations> {
            f[k].parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| {
                bad(format!("line {row}, {name}"), format!("{:?} is not a finite number", &f[k]))
            })
        };
        let category = match &f[4] {
            "engine" => FaultCategory::Engine,
            "sensor" => FaultCategory::Sensor,
            other => {
                return Err(bad(
                    format!("line {row}, category"),
                    format!("{other:?} is not engine or sensor"),
                ));
            }
        };
        crate::ids::check("flight_id", &f[0]).map_err(|e| bad(format!("line {row}, flight_id"), e))?;
        out.push(LabelInterval {
            flight_id: f[0].to_string(),
            start_s: num(1, "start_s")?,
            end_s: num(2, "end_s")?,
            fault_type: f[3].to_string(),
            category,
            severity: num(5, "severity")?,
            row,
        });
    }
    Ok(out)
}

/// The earliest engine-fault label start per flight (s), the fault onset that flight-level
/// evaluation and `avm score` measure detection delays from.
pub fn onsets(labels: &[LabelInterval]) -> std::collections::BTreeMap<String, f64> {
    let mut m = std::collections::BTreeMap::new();
    for l in labels.iter().filter(|l| l.category == FaultCategory::Engine) {
        let e = m.entry(l.flight_id.clone()).or_insert(l.start_s);
        *e = f64::min(*e, l.start_s);
    }
    m
}

/// Writes a label file atomically (rows in the given order).
pub fn write(path: &Path, labels: &[LabelInterval]) -> Result<()> {
    let mut s = String::from(HEADER);
    s.push('\n');
    for l in labels {
        s.push_str(&format!(
            "{},{:?},{:?},{},{},{:?}\n",
            l.flight_id,
            l.start_s,
            l.end_s,
            l.fault_type,
            category_name(l.category),
            l.severity
        ));
    }
    crate::io::write_bytes_atomic(path, s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onsets_are_the_earliest_engine_fault_start_per_flight() {
        let l = |flight: &str, start_s: f64, category| LabelInterval {
            flight_id: flight.into(),
            start_s,
            end_s: start_s + 10.0,
            fault_type: "x".into(),
            category,
            severity: 0.5,
            row: 2,
        };
        let labels = [
            l("a", 300.0, FaultCategory::Engine),
            l("a", 120.0, FaultCategory::Engine),
            l("a", 60.0, FaultCategory::Sensor),
            l("b", 40.0, FaultCategory::Sensor),
            l("c", 0.0, FaultCategory::Engine),
        ];
        let m = onsets(&labels);
        assert_eq!(m.into_iter().collect::<Vec<_>>(), [("a".to_string(), 120.0), ("c".to_string(), 0.0)]);
    }
}
