//! The window table: one row per analysis window with its ids, labels, data-quality counts and
//! avm-core's raw features. `avm preprocess` writes it whole (`DATA/processed/windows.parquet`
//! with [`ProcessedManifest`]); `avm featurize` writes it split by flight, the ids and features
//! to `DATA/features/<split>/features.parquet` and the ids and everything else to
//! `DATA/labels/<split>/labels.parquet`. One type ([`Window`]), one column table
//! ([`COLUMNS`]), one writer and one reader for all three files.

use crate::error::UsageError;
use crate::formats::table::{self, Table};
use anyhow::{Result, ensure};
use arrow_array::{ArrayRef, BooleanArray, Float32Array, Float64Array, StringArray, UInt8Array, UInt32Array};
use avm_core::{ExtractorConfig, FeatureSet, feature_name};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// The no-fault value of `fault_type` and `sensor_event`.
pub const NONE: &str = "none";

/// The per-channel data-quality counts, in [`Window::quality`] order; column `<channel>.<count>`.
pub const QUALITY: [&str; 4] = ["gap_filled", "clipped", "unrepaired", "speed_held"];

/// One analysis window.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Recording.
    pub flight_id: String,
    /// Aircraft.
    pub aircraft_id: String,
    /// Engine.
    pub engine_id: String,
    /// Window index in the recording.
    pub window_index: u32,
    /// Start time, s.
    pub start_s: f64,
    /// End time (exclusive), s.
    pub end_s: f64,
    /// Majority phase (or `unknown`).
    pub phase: String,
    /// 1: engine fault at the window midpoint.
    pub label: u8,
    /// The engine fault type, or [`NONE`].
    pub fault_type: String,
    /// Its severity (0 for none).
    pub severity: f64,
    /// An overlapping data-quality event, or [`NONE`].
    pub sensor_event: String,
    /// No unrepaired samples.
    pub valid: bool,
    /// Rates of change valid.
    pub roc_valid: bool,
    /// Per channel: the [`QUALITY`] counts.
    pub quality: Vec<[u32; 4]>,
    /// avm-core's raw (unscaled) features, channel-major.
    pub features: Vec<f32>,
}

impl Window {
    /// Usable for fitting "normal": valid, no engine fault, no data-quality event.
    pub fn is_clean_normal(&self) -> bool {
        self.valid && self.label == 0 && self.sensor_event == NONE
    }
}

/// The fixed columns, in the window table's order (quality and feature columns follow).
pub const COLUMNS: [&str; 13] = [
    "flight_id",
    "aircraft_id",
    "engine_id",
    "window_index",
    "start_s",
    "end_s",
    "phase",
    "label",
    "fault_type",
    "severity",
    "sensor_event",
    "valid",
    "roc_valid",
];

/// The columns that identify a window in both split files (and join them).
pub const ID_COLUMNS: [&str; 4] = ["flight_id", "window_index", "start_s", "valid"];

/// Feature names for the vibration channels, channel-major, as avm-core names them for `set`.
pub fn feature_names(channels: &[String], set: &FeatureSet) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in channels {
        for k in set.iter() {
            out.push(
                feature_name(c, set, k)
                    .map_err(|_| UsageError(format!("channel name {c:?} makes a feature name too long")))?
                    .to_string(),
            );
        }
    }
    Ok(out)
}

/// The unit of every feature of [`feature_names`], in the same order.
pub fn feature_units(channels: &[String], set: &FeatureSet) -> Vec<String> {
    channels.iter().flat_map(|_| set.iter().map(|k| set.unit(k).to_string())).collect()
}

/// One fixed column of `rows` (the field table: every fixed column's type and value).
fn column(rows: &[&Window], name: &str) -> ArrayRef {
    let s = |f: fn(&Window) -> &str| -> ArrayRef {
        Arc::new(rows.iter().map(|r| Some(f(r))).collect::<StringArray>())
    };
    let f64s =
        |f: fn(&Window) -> f64| -> ArrayRef { Arc::new(rows.iter().map(|r| f(r)).collect::<Float64Array>()) };
    let bools = |f: fn(&Window) -> bool| -> ArrayRef {
        Arc::new(rows.iter().map(|r| Some(f(r))).collect::<BooleanArray>())
    };
    match name {
        "flight_id" => s(|r| &r.flight_id),
        "aircraft_id" => s(|r| &r.aircraft_id),
        "engine_id" => s(|r| &r.engine_id),
        "window_index" => Arc::new(rows.iter().map(|r| r.window_index).collect::<UInt32Array>()),
        "start_s" => f64s(|r| r.start_s),
        "end_s" => f64s(|r| r.end_s),
        "phase" => s(|r| &r.phase),
        "label" => Arc::new(rows.iter().map(|r| r.label).collect::<UInt8Array>()),
        "fault_type" => s(|r| &r.fault_type),
        "severity" => f64s(|r| r.severity),
        "sensor_event" => s(|r| &r.sensor_event),
        "valid" => bools(|r| r.valid),
        "roc_valid" => bools(|r| r.roc_valid),
        other => unreachable!("{other} is not in COLUMNS"),
    }
}

fn quality_columns(rows: &[&Window], channels: &[String], cols: &mut Vec<(String, ArrayRef)>) {
    for (c, name) in channels.iter().enumerate() {
        for (k, what) in QUALITY.iter().enumerate() {
            cols.push((
                format!("{name}.{what}"),
                Arc::new(rows.iter().map(|r| r.quality[c][k]).collect::<UInt32Array>()),
            ));
        }
    }
}

fn feature_columns(rows: &[&Window], feature_names: &[String], cols: &mut Vec<(String, ArrayRef)>) {
    for (k, name) in feature_names.iter().enumerate() {
        cols.push((name.clone(), Arc::new(rows.iter().map(|r| r.features[k]).collect::<Float32Array>())));
    }
}

/// Writes the whole window table: [`COLUMNS`], then the quality counts per channel, then the
/// features.
pub fn write_table(
    dest: &Path,
    rows: &[&Window],
    channels: &[String],
    feature_names: &[String],
    metadata: &[(&str, String)],
) -> Result<()> {
    let mut cols: Vec<(String, ArrayRef)> =
        COLUMNS.iter().map(|n| (n.to_string(), column(rows, n))).collect();
    quality_columns(rows, channels, &mut cols);
    feature_columns(rows, feature_names, &mut cols);
    table::write(dest, cols, metadata)
}

/// Writes one split: `features` gets [`ID_COLUMNS`] and the features; `labels` gets
/// [`ID_COLUMNS`], the other fixed columns and the quality counts.
pub fn write_split(
    features: &Path,
    labels: &Path,
    rows: &[&Window],
    channels: &[String],
    feature_names: &[String],
) -> Result<()> {
    let ids = || -> Vec<(String, ArrayRef)> {
        ID_COLUMNS.iter().map(|n| (n.to_string(), column(rows, n))).collect()
    };
    let mut cols = ids();
    feature_columns(rows, feature_names, &mut cols);
    table::write(features, cols, &[])?;
    let mut cols = ids();
    cols.extend(COLUMNS.iter().filter(|n| !ID_COLUMNS.contains(n)).map(|n| (n.to_string(), column(rows, n))));
    quality_columns(rows, channels, &mut cols);
    table::write(labels, cols, &[])
}

/// The vibration channels whose quality counts a table holds, in column order.
fn quality_channels(t: &Table) -> Vec<String> {
    let suffix = format!(".{}", QUALITY[0]);
    t.names.iter().filter_map(|n| n.strip_suffix(&suffix)).map(str::to_string).collect()
}

/// Decodes windows: the fixed columns and quality counts from `meta`, the features named
/// `feature_names` from `feats` (the same table for the whole window table).
fn decode(meta: (&Table, &Path), feats: (&Table, &Path), feature_names: &[String]) -> Result<Vec<Window>> {
    let (t, path) = meta;
    ensure!(
        t.rows == feats.0.rows,
        "{} and {} disagree on the number of windows",
        path.display(),
        feats.1.display()
    );
    let s = |n: &str| t.column::<StringArray>(path, n);
    let f = |n: &str| t.column::<Float64Array>(path, n);
    let b = |n: &str| t.column::<BooleanArray>(path, n);
    let (flight, aircraft, engine, phase) =
        (s("flight_id")?, s("aircraft_id")?, s("engine_id")?, s("phase")?);
    let (fault, sensor) = (s("fault_type")?, s("sensor_event")?);
    let index = t.column::<UInt32Array>(path, "window_index")?;
    let label = t.column::<UInt8Array>(path, "label")?;
    let (start, end, severity) = (f("start_s")?, f("end_s")?, f("severity")?);
    let (valid, roc_valid) = (b("valid")?, b("roc_valid")?);
    let quality = quality_channels(t)
        .iter()
        .map(|c| {
            let q: Result<Vec<UInt32Array>, _> =
                QUALITY.iter().map(|k| t.column::<UInt32Array>(path, &format!("{c}.{k}"))).collect();
            q
        })
        .collect::<Result<Vec<_>, _>>()?;
    let features = feature_names
        .iter()
        .map(|n| feats.0.column::<Float32Array>(feats.1, n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..t.rows)
        .map(|r| Window {
            flight_id: flight.value(r).to_string(),
            aircraft_id: aircraft.value(r).to_string(),
            engine_id: engine.value(r).to_string(),
            window_index: index.value(r),
            start_s: start.value(r),
            end_s: end.value(r),
            phase: phase.value(r).to_string(),
            label: label.value(r),
            fault_type: fault.value(r).to_string(),
            severity: severity.value(r),
            sensor_event: sensor.value(r).to_string(),
            valid: valid.value(r),
            roc_valid: roc_valid.value(r),
            quality: quality.iter().map(|q| std::array::from_fn(|k| q[k].value(r))).collect(),
            features: features.iter().map(|c| c.value(r)).collect(),
        })
        .collect())
}

/// Reads the whole window table with the features named in its manifest.
pub fn read_table(path: &Path, feature_names: &[String]) -> Result<Vec<Window>> {
    let t = Table::read(path)?;
    decode((&t, path), (&t, path), feature_names)
}

/// Reads one split: feature names (the feature file's columns after [`ID_COLUMNS`]) and windows.
pub fn read_split(features: &Path, labels: &Path) -> Result<(Vec<String>, Vec<Window>)> {
    let ft = Table::read(features).map_err(|e| UsageError(format!("{e}: run `avm featurize` first")))?;
    let lt = Table::read(labels)?;
    let names: Vec<String> = ft.names.iter().skip(ID_COLUMNS.len()).cloned().collect();
    let rows = decode((&lt, labels), (&ft, features), &names)?;
    Ok((names, rows))
}

/// One recording's line in the processed manifest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RecordingSummary {
    /// Recording.
    pub flight_id: String,
    /// Raw file.
    pub raw_file: String,
    /// sha256 of the raw file.
    pub raw_sha256: String,
    /// Samples on the vibration timeline.
    pub samples: usize,
    /// Windows.
    pub windows: usize,
    /// Valid windows.
    pub valid_windows: usize,
    /// Anomalous (engine-fault) windows.
    pub anomalous_windows: usize,
    /// The recording's attributes (metadata `attributes`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl ProcessedManifest {
    /// Per recording: its attributes.
    pub fn attributes(&self) -> crate::config::Attributes {
        self.recordings.iter().map(|r| (r.flight_id.clone(), r.attributes.clone())).collect()
    }
}

impl std::fmt::Display for ProcessedManifest {
    /// Recordings, windows (valid, with an engine fault) and features.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sum = |g: fn(&RecordingSummary) -> usize| self.recordings.iter().map(g).sum::<usize>();
        write!(
            f,
            "preprocessed {} recordings: {} windows ({} valid, {} with an engine fault), {} features each",
            self.recordings.len(),
            sum(|r| r.windows),
            sum(|r| r.valid_windows),
            sum(|r| r.anomalous_windows),
            self.feature_names.len()
        )
    }
}

/// The processed manifest (`DATA/processed/manifest.json`, also in the window table's
/// metadata): what the window table was computed from and with.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ProcessedManifest {
    /// Contract name and version.
    pub contract: String,
    /// avm-core feature schema version.
    pub feature_schema_version: u16,
    /// Vibration channels, in feature order.
    pub channels: Vec<String>,
    /// Extractor settings.
    pub window_len_samples: u32,
    /// Hop.
    pub hop_len_samples: u32,
    /// Rate.
    pub sample_rate_hz: u32,
    /// The complete extractor configuration the features were computed with (avm-core's own
    /// type, serialised).
    pub extractor: ExtractorConfig,
    /// Names of the feature columns of the window table, in order.
    pub feature_names: Vec<String>,
    /// sha256 of the label file.
    pub labels_sha256: String,
    /// Per recording.
    pub recordings: Vec<RecordingSummary>,
}
