//! The one place a run's metrics are recorded. Stages call [`MetricLog::record`]; the log is
//! written as JSON lines (`{"name": .., "step": .., "value": ..}`) beside the run's outputs,
//! and is what the TensorBoard and MLflow writers read.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One scalar at one step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Record {
    /// Metric name (`train/loss`, `val/loss`, `test/auc`, ...).
    pub name: String,
    /// Step (the epoch for training curves, 0 for final metrics).
    pub step: usize,
    /// Value.
    pub value: f64,
}

/// An append-only metric log backed by a JSON-lines file.
#[derive(Debug)]
pub struct MetricLog {
    path: PathBuf,
    records: Vec<Record>,
}

impl MetricLog {
    /// Opens `path`. With `keep_up_to = Some(step)` the records of earlier steps are kept (a
    /// resumed run continues the log); with `None` the log starts empty.
    pub fn open(path: &Path, keep_up_to: Option<usize>) -> Result<MetricLog> {
        let mut records = Vec::new();
        if let (Some(max), true) = (keep_up_to, path.exists()) {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let r: Record =
                    serde_json::from_str(line).with_context(|| format!("parsing {}", path.display()))?;
                if r.step <= max {
                    records.push(r);
                }
            }
        }
        Ok(MetricLog { path: path.to_path_buf(), records })
    }

    /// Records one value.
    pub fn record(&mut self, name: &str, step: usize, value: f64) {
        self.records.push(Record { name: name.to_string(), step, value });
    }

    /// All records so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Writes the log (atomically).
    pub fn flush(&self) -> Result<()> {
        let mut s = String::new();
        for r in &self.records {
            s.push_str(&serde_json::to_string(r)?);
            s.push('\n');
        }
        crate::io::write_bytes_atomic(&self.path, s.as_bytes())
    }
}
