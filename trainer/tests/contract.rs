//! Data-contract violations: each case gives an error that names the file, the channel and the
//! row or time and the rule, `avm preprocess` exits with the contract code, and nothing is
//! written.

use arrow_array::{Array, ArrayRef, Float32Array, Float64Array, StringArray};
use avm_trainer::formats::recording::{
    self, ChannelData, ChannelMeta, FORMAT, FORMAT_VERSION, META_KEY, Recording, RecordingMeta, Samples,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const CONTRACT: &str = r#"
name: test_contract
version: 1
grid_tolerance_s: 1.0e-6
max_start_offset_s: 1.0
min_duration_s: 30.0
max_gap_s: 0.25
phases: [taxi, cruise]
channels:
  - {name: vib_fan, kind: vibration, unit: g, sample_rate_hz: 256, valid_range: [-50, 50], speed_reference: n1_rpm}
  - {name: vib_core, kind: vibration, unit: g, sample_rate_hz: 256, valid_range: [-50, 50], speed_reference: n2_rpm}
  - {name: n1_rpm, kind: speed, unit: rpm, sample_rate_hz: 16, valid_range: [0, 6000]}
  - {name: n2_rpm, kind: speed, unit: rpm, sample_rate_hz: 16, valid_range: [0, 16000]}
  - {name: phase, kind: phase, unit: "-", sample_rate_hz: 1}
labels:
  fault_types: {fan_imbalance: engine, sensor_spike: sensor}
  severity_range: [0, 1]
"#;

mod common;

/// The small test config with this file's contract (`contract.yaml` beside it), short windows
/// and no simulator (the tests write the recordings).
fn config(edit: impl FnOnce(&mut avm_trainer::config::PipelineConfig)) -> String {
    let mut c = common::small_config();
    c.name = "test".into();
    c.contract = "contract.yaml".into();
    c.simulate = None;
    c.features.window_s = 4.0;
    c.features.hop_s = 2.0;
    c.features.fft_len = 256;
    edit(&mut c);
    serde_saphyr::to_string(&c).unwrap()
}

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("contract.yaml"), CONTRACT).unwrap();
        std::fs::write(dir.path().join("config.yaml"), config(|_| {})).unwrap();
        std::fs::create_dir_all(dir.path().join("DATA/raw/recordings")).unwrap();
        // Every data set has a label file; a header alone: every recording healthy.
        std::fs::write(
            dir.path().join("DATA/raw/labels.csv"),
            format!("{}\n", avm_trainer::formats::labels::HEADER),
        )
        .unwrap();
        Workspace { dir }
    }
    fn raw(&self, name: &str) -> PathBuf {
        self.dir.path().join("DATA/raw/recordings").join(name)
    }
    fn labels(&self, text: &str) {
        std::fs::write(self.dir.path().join("DATA/raw/labels.csv"), text).unwrap();
    }
    /// Runs `avm <args>` in the workspace; returns (exit code, stderr).
    fn avm(&self, args: &[&str]) -> (i32, String) {
        let out =
            Command::new(env!("CARGO_BIN_EXE_avm")).args(args).current_dir(self.dir.path()).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }
    fn preprocess(&self) -> (i32, String) {
        self.avm(&["preprocess", "--config", "config.yaml"])
    }
    fn nothing_written(&self) {
        let data = self.dir.path().join("DATA");
        let names: Vec<String> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != avm_trainer::lock::LOCK_FILE)
            .collect();
        assert_eq!(names, vec!["raw".to_string()], "preprocess left {names:?}");
    }
}

/// A valid 40 s recording for the test contract.
fn good(flight: &str) -> Recording {
    let ch = |name: &str, unit: &str, rate: f64, start: f64| ChannelMeta {
        name: name.into(),
        unit: unit.into(),
        sample_rate_hz: rate,
        start_s: start,
    };
    let t = |start: f64, rate: f64, n: usize| (0..n).map(|k| start + k as f64 / rate).collect::<Vec<f64>>();
    let n = 256 * 40;
    let vib = |f: f32| Samples::Numeric((0..n).map(|i| 0.3 * (i as f32 * f).sin()).collect());
    let d = |times: Vec<f64>, samples: Samples| ChannelData {
        rows: (0..times.len() as u32).collect(),
        times_s: times,
        samples,
    };
    Recording {
        meta: RecordingMeta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            aircraft_id: "AC01".into(),
            engine_id: "AC01-E1".into(),
            flight_id: flight.into(),
            source: "test".into(),
            channels: vec![
                ch("vib_fan", "g", 256.0, 0.0),
                ch("vib_core", "g", 256.0, 0.0),
                ch("n1_rpm", "rpm", 16.0, 0.03125),
                ch("n2_rpm", "rpm", 16.0, 0.03125),
                ch("phase", "-", 1.0, 0.0),
            ],
            content_crc32: None,
            attributes: Default::default(),
        },
        data: vec![
            d(t(0.0, 256.0, n), vib(0.31)),
            d(t(0.0, 256.0, n), vib(0.77)),
            d(t(0.03125, 16.0, 639), Samples::Numeric(vec![2400.0; 639])),
            d(t(0.03125, 16.0, 639), Samples::Numeric(vec![9000.0; 639])),
            d(
                t(0.0, 1.0, 40),
                Samples::Text((0..40).map(|k| if k < 10 { "taxi" } else { "cruise" }.to_string()).collect()),
            ),
        ],
        path: PathBuf::new(),
    }
}

fn numeric<'a>(rec: &'a mut Recording, name: &str) -> &'a mut Vec<f32> {
    let i = rec.channel_index(name).unwrap();
    match &mut rec.data[i].samples {
        Samples::Numeric(v) => v,
        Samples::Text(_) => panic!(),
    }
}

/// Asserts that preprocess fails with the contract code, the message names every `needle`,
/// and nothing was written.
fn refused(ws: &Workspace, needles: &[&str]) {
    let (code, err) = ws.preprocess();
    assert_eq!(code, 3, "exit code (stderr: {err})");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in the error:\n{err}");
    }
    ws.nothing_written();
}

fn with_good_neighbour(ws: &Workspace) {
    recording::write_parquet(&good("AC01-F001-E1"), &ws.raw("a_good.parquet")).unwrap();
}

#[test]
fn a_valid_data_set_passes() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    recording::write_csv(&good("AC01-F002-E1"), &ws.raw("b.csv")).unwrap();
    ws.labels("flight_id,start_s,end_s,fault_type,category,severity\nAC01-F001-E1,20.0,40.0,fan_imbalance,engine,0.5\n");
    let (code, err) = ws.avm(&["validate", "--config", "config.yaml"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = ws.avm(&["preprocess", "--config", "config.yaml", "--interim"]);
    assert_eq!(code, 0, "{err}");
    assert!(ws.dir.path().join("DATA/processed/windows.parquet").exists());
    assert!(ws.dir.path().join("DATA/interim/AC01-F002-E1.parquet").exists());
    // Without --interim the sample streams are not written, and a stale set is removed.
    let (code, err) = ws.preprocess();
    assert_eq!(code, 0, "{err}");
    assert!(!ws.dir.path().join("DATA/interim").exists());
}

#[test]
fn missing_channel() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let mut r = good("AC01-F002-E1");
    let i = r.channel_index("vib_core").unwrap();
    r.meta.channels.remove(i);
    r.data.remove(i);
    recording::write_parquet(&r, &ws.raw("b_missing.parquet")).unwrap();
    refused(
        &ws,
        &["b_missing.parquet", "channel vib_core", "required channel is missing", "channel.present"],
    );
}

#[test]
fn wrong_unit() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let mut r = good("AC01-F002-E1");
    r.meta.channels[0].unit = "m/s^2".into();
    recording::write_parquet(&r, &ws.raw("b_unit.parquet")).unwrap();
    refused(&ws, &["b_unit.parquet", "channel vib_fan", "\"m/s^2\"", "channel.unit"]);
}

#[test]
fn out_of_range_values() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let mut r = good("AC01-F002-E1");
    numeric(&mut r, "vib_fan")[1000] = 98.1; // a reading in m/s² slipped in
    recording::write_parquet(&r, &ws.raw("b_range.parquet")).unwrap();
    refused(&ws, &["b_range.parquet", "channel vib_fan", "row ", "t = 3.906250 s", "98.1", "channel.range"]);
}

/// Writes a Parquet recording with raw control over the time column.
/// Writes a Parquet recording column by column, as another tool would, with the content
/// checksum computed here from its documented definition (per channel in metadata order: the
/// non-null rows' times as f64 LE, then their values as f32 LE or UTF-8 + NUL).
fn write_raw(path: &Path, meta: &RecordingMeta, time: Vec<f64>, cols: Vec<(&str, ArrayRef)>) {
    let mut h = crc32fast::Hasher::new();
    for c in &meta.channels {
        let (_, a) = cols.iter().find(|(n, _)| *n == c.name).unwrap();
        let rows: Vec<usize> = (0..a.len()).filter(|&r| a.is_valid(r)).collect();
        for &r in &rows {
            h.update(&time[r].to_le_bytes());
        }
        if let Some(x) = a.as_any().downcast_ref::<Float32Array>() {
            rows.iter().for_each(|&r| h.update(&x.value(r).to_le_bytes()));
        } else if let Some(x) = a.as_any().downcast_ref::<StringArray>() {
            rows.iter().for_each(|&r| {
                h.update(x.value(r).as_bytes());
                h.update(&[0]);
            });
        }
    }
    let meta = RecordingMeta { content_crc32: Some(h.finalize()), ..meta.clone() };
    let mut columns: Vec<(String, ArrayRef)> = vec![("time_s".into(), Arc::new(Float64Array::from(time)))];
    columns.extend(cols.into_iter().map(|(n, a)| (n.to_string(), a)));
    avm_trainer::formats::table::write(path, columns, &[(META_KEY, serde_json::to_string(&meta).unwrap())])
        .unwrap();
}

fn simple_meta(flight: &str) -> RecordingMeta {
    let mut m = good(flight).meta;
    m.channels.iter_mut().for_each(|c| c.start_s = 0.0);
    m
}

/// A recording whose every channel shares `time` (vibration-rate grid), speeds at all rows.
fn shared_time_cols(n: usize) -> Vec<(&'static str, ArrayRef)> {
    let f = |v: f32| -> ArrayRef { Arc::new(Float32Array::from(vec![v; n])) };
    vec![
        ("vib_fan", f(0.1)),
        ("vib_core", f(0.2)),
        ("n1_rpm", f(2000.0)),
        ("n2_rpm", f(9000.0)),
        ("phase", Arc::new(StringArray::from(vec!["taxi"; n]))),
    ]
}

#[test]
fn non_monotonic_time() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let n = 256 * 40;
    let mut time: Vec<f64> = (0..n).map(|k| k as f64 / 256.0).collect();
    time.swap(500, 501);
    let mut meta = simple_meta("AC01-F002-E1");
    meta.channels.iter_mut().for_each(|c| c.sample_rate_hz = 256.0);
    write_raw(&ws.raw("b_order.parquet"), &meta, time, shared_time_cols(n));
    refused(&ws, &["b_order.parquet", "channel vib_fan", "row 501", "goes backwards", "time.monotonic"]);
}

#[test]
fn duplicated_time() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let n = 256 * 40;
    let mut time: Vec<f64> = (0..n).map(|k| k as f64 / 256.0).collect();
    time[800] = time[799];
    let meta = simple_meta("AC01-F002-E1");
    write_raw(&ws.raw("b_dup.parquet"), &meta, time, shared_time_cols(n));
    refused(&ws, &["b_dup.parquet", "channel vib_fan", "row 800", "duplicated", "time.monotonic"]);
}

#[test]
fn nan_run_longer_than_allowed() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let mut r = good("AC01-F002-E1");
    numeric(&mut r, "vib_core")[2000..2100].fill(f32::NAN); // 100 samples = 0.39 s > 0.25 s
    recording::write_parquet(&r, &ws.raw("b_gap.parquet")).unwrap();
    refused(
        &ws,
        &[
            "b_gap.parquet",
            "channel vib_core",
            "row 2000",
            "t = 7.812500 s",
            "100 consecutive missing",
            "channel.gap",
        ],
    );
}

#[test]
fn truncated_and_corrupt_parquet() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    recording::write_parquet(&good("AC01-F002-E1"), &ws.raw("b_trunc.parquet")).unwrap();
    let bytes = std::fs::read(ws.raw("b_trunc.parquet")).unwrap();
    std::fs::write(ws.raw("b_trunc.parquet"), &bytes[..bytes.len() * 2 / 3]).unwrap();
    refused(&ws, &["b_trunc.parquet", "not a readable Parquet file", "file.format"]);

    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let mut bytes = bytes.clone();
    let mid = bytes.len() / 3;
    bytes[mid..mid + 64].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(ws.raw("b_corrupt.parquet"), &bytes).unwrap();
    refused(&ws, &["b_corrupt.parquet", "file.format"]);
}

#[test]
fn empty_file() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    std::fs::write(ws.raw("b_empty.parquet"), b"").unwrap();
    refused(&ws, &["b_empty.parquet", "empty (0 bytes)", "file.format"]);
}

#[test]
fn mismatched_sample_rate() {
    // Declared differently from the contract.
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let mut r = good("AC01-F002-E1");
    r.meta.channels[1].sample_rate_hz = 512.0;
    recording::write_parquet(&r, &ws.raw("b_rate.parquet")).unwrap();
    refused(&ws, &["b_rate.parquet", "channel vib_core", "declared 512 Hz", "256 Hz", "channel.sample_rate"]);

    // Declared right, but the data is at half the rate.
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let mut r = good("AC01-F002-E1");
    let i = r.channel_index("vib_fan").unwrap();
    r.data[i].times_s.iter_mut().enumerate().for_each(|(k, t)| *t = k as f64 / 128.0);
    let j = r.channel_index("vib_core").unwrap();
    r.data[j].times_s.iter_mut().enumerate().for_each(|(k, t)| *t = k as f64 / 128.0);
    recording::write_parquet(&r, &ws.raw("b_grid.parquet")).unwrap();
    refused(
        &ws,
        &["b_grid.parquet", "channel vib_fan", "off the 256 Hz grid", "2.000 periods", "channel.grid"],
    );
}

#[test]
fn label_interval_outside_the_flight() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    ws.labels("flight_id,start_s,end_s,fault_type,category,severity\nAC01-F001-E1,30.0,55.0,fan_imbalance,engine,0.5\n");
    refused(
        &ws,
        &["labels.csv", "row 2 (flight AC01-F001-E1)", "[30, 55]", "outside the flight", "label.interval"],
    );
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    ws.labels(
        "flight_id,start_s,end_s,fault_type,category,severity\nAC01-F009-E1,1.0,5.0,sensor_spike,sensor,1\n",
    );
    refused(&ws, &["labels.csv", "AC01-F009-E1", "no recording has this flight_id", "label.flight"]);
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    ws.labels(
        "flight_id,start_s,end_s,fault_type,category,severity\nAC01-F001-E1,1.0,5.0,sensor_spike,engine,1\n",
    );
    refused(&ws, &["labels.csv", "sensor_spike", "label.category"]);
}

#[test]
fn a_failed_run_keeps_the_previous_outputs() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    assert_eq!(ws.preprocess().0, 0);
    let before = std::fs::read(ws.dir.path().join("DATA/processed/windows.parquet")).unwrap();
    std::fs::write(ws.raw("b_empty.parquet"), b"").unwrap();
    assert_eq!(ws.preprocess().0, 3);
    assert_eq!(std::fs::read(ws.dir.path().join("DATA/processed/windows.parquet")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(ws.dir.path().join("DATA"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != avm_trainer::lock::LOCK_FILE)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_config_is_a_usage_error() {
    let ws = Workspace::new();
    std::fs::write(ws.dir.path().join("config.yaml"), config(|c| c.features.hop_s = 1.9)).unwrap();
    with_good_neighbour(&ws);
    let (code, err) = ws.preprocess();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("hop"), "{err}");
}

// ---- Untrusted input (hardening): ids, non-finite values, labels, checksums ----

#[test]
fn ids_that_would_leave_the_data_tree_are_refused_and_nothing_is_written() {
    let unique = format!("X{}", std::process::id());
    for (id, csv) in [
        ("../../".to_string() + &unique, false),
        ("../../../".to_string() + &unique, true),
        ("AC99/F001".to_string(), false),
        (String::new(), true),
        (".hidden".to_string(), false),
    ] {
        let ws = Workspace::new();
        with_good_neighbour(&ws);
        let r = good(&id);
        if csv {
            recording::write_csv(&r, &ws.raw("b_id.csv")).unwrap();
        } else {
            recording::write_parquet(&r, &ws.raw("b_id.parquet")).unwrap();
        }
        refused(&ws, &["b_id.", "flight_id", "not a valid identifier", "recording.id"]);
        let root = ws.dir.path();
        for p in
            [root.join(format!("{unique}.parquet")), root.parent().unwrap().join(format!("{unique}.parquet"))]
        {
            assert!(!p.exists(), "{} was written", p.display());
        }
        assert!(!root.join("DATA/interim/AC99").exists());
    }
    // Channel names become column names and feature names: the same rule.
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let mut r = good("AC01-F002-E1");
    r.meta.channels[4].name = "ph/ase".into();
    recording::write_parquet(&r, &ws.raw("b_ch.parquet")).unwrap();
    refused(&ws, &["b_ch.parquet", "channel name \"ph/ase\"", "recording.id"]);
}

#[test]
fn non_finite_time_is_a_violation() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let n = 256 * 40;
    let mut time: Vec<f64> = (0..n).map(|k| k as f64 / 256.0).collect();
    time[0] = f64::NAN;
    write_raw(&ws.raw("b_nan_t.parquet"), &simple_meta("AC01-F002-E1"), time, shared_time_cols(n));
    refused(&ws, &["b_nan_t.parquet", "row 0", "time NaN is not a finite", "time.finite"]);
    // CSV too.
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let c = ws.raw("b_nan_t.csv");
    recording::write_csv(&good("AC01-F002-E1"), &c).unwrap();
    let text = std::fs::read_to_string(&c).unwrap().replacen("\n0.0,", "\nnan,", 1);
    std::fs::write(&c, text).unwrap();
    refused(&ws, &["b_nan_t.csv", "line 2", "time.finite"]);
}

#[test]
fn infinite_and_float32_overflowing_samples_are_range_violations() {
    for (bad, needle) in
        [(f32::INFINITY, "value inf is not finite"), (f32::NEG_INFINITY, "value -inf is not finite")]
    {
        let ws = Workspace::new();
        with_good_neighbour(&ws);
        let mut r = good("AC01-F002-E1");
        numeric(&mut r, "vib_fan")[1000] = bad;
        recording::write_parquet(&r, &ws.raw("b_inf.parquet")).unwrap();
        refused(&ws, &["b_inf.parquet", "channel vib_fan", "row 1000", needle, "channel.range"]);
    }
    // 1e39 in a CSV cell (and in a float64 Parquet column) does not fit a float32.
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let c = ws.raw("b_big.csv");
    recording::write_csv(&good("AC01-F002-E1"), &c).unwrap();
    let text = std::fs::read_to_string(&c).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[5].split(',').map(str::to_string).collect();
    cells[1] = "1e39".into();
    lines[5] = cells.join(",");
    std::fs::write(&c, lines.join("\n") + "\n").unwrap();
    refused(
        &ws,
        &[
            "b_big.csv",
            "channel vib_fan",
            "line 6",
            "1000000000000000000000000000000000000000",
            "float32",
            "channel.range",
        ],
    );
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let n = 256 * 40;
    let time: Vec<f64> = (0..n).map(|k| k as f64 / 256.0).collect();
    let mut cols = shared_time_cols(n);
    let mut v = vec![0.1f64; n];
    v[7] = 1e39;
    cols[0].1 = Arc::new(Float64Array::from(v));
    write_raw(&ws.raw("b_big.parquet"), &simple_meta("AC01-F002-E1"), time, cols);
    refused(&ws, &["b_big.parquet", "channel vib_fan", "row 7", "float32", "channel.range"]);
}

#[test]
fn a_missing_or_misnamed_label_file_is_refused() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let labels = ws.dir.path().join("DATA/raw/labels.csv");
    std::fs::rename(&labels, ws.dir.path().join("DATA/raw/Labels.CSV")).unwrap();
    refused(&ws, &["labels.csv", "no label file", "Labels.CSV", "misnamed", "label.present"]);
    let (code, err) = ws.avm(&["validate", "--config", "config.yaml"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn duplicated_and_conflicting_labels_are_refused() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    ws.labels(
        "flight_id,start_s,end_s,fault_type,category,severity\n\
         AC01-F001-E1,5.0,20.0,fan_imbalance,engine,0.5\n\
         AC01-F001-E1,5.0,20.0,fan_imbalance,engine,0.5\n",
    );
    refused(&ws, &["labels.csv", "row 3", "repeats row 2", "label.duplicate"]);
    let ws = Workspace::new();
    std::fs::write(
        ws.dir.path().join("contract.yaml"),
        CONTRACT.replace("{fan_imbalance: engine,", "{fan_imbalance: engine, core_wear: engine,"),
    )
    .unwrap();
    with_good_neighbour(&ws);
    ws.labels(
        "flight_id,start_s,end_s,fault_type,category,severity\n\
         AC01-F001-E1,5.0,20.0,fan_imbalance,engine,0.5\n\
         AC01-F001-E1,15.0,30.0,core_wear,engine,0.5\n",
    );
    refused(&ws, &["labels.csv", "row 3", "overlaps row 2", "label.overlap"]);
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let c = ws.raw("b_bom.csv");
    recording::write_csv(&good("AC01-F002-E1"), &c).unwrap();
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend(std::fs::read(&c).unwrap());
    std::fs::write(&c, bytes).unwrap();
    ws.labels("\u{feff}flight_id,start_s,end_s,fault_type,category,severity\nAC01-F002-E1,20.0,30.0,fan_imbalance,engine,0.5\n");
    let (code, err) = ws.avm(&["validate", "--config", "config.yaml"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_parquet_recording_without_its_checksum_is_refused() {
    // The checksum removed and a value changed: without the rule this decoded silently.
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let mut r = good("AC01-F002-E1");
    numeric(&mut r, "vib_fan")[10] = 0.42;
    let n = 256 * 40;
    let time: Vec<f64> = (0..n).map(|k| k as f64 / 256.0).collect();
    let meta = RecordingMeta { content_crc32: None, ..simple_meta("AC01-F002-E1") };
    let cols = shared_time_cols(n);
    let mut columns: Vec<(String, ArrayRef)> = vec![("time_s".into(), Arc::new(Float64Array::from(time)))];
    columns.extend(cols.into_iter().map(|(n, a)| (n.to_string(), a)));
    let p = ws.raw("b_nocrc.parquet");
    avm_trainer::formats::table::write(&p, columns, &[(META_KEY, serde_json::to_string(&meta).unwrap())])
        .unwrap();
    refused(&ws, &["b_nocrc.parquet", "content_crc32", "recording.checksum"]);
}

#[test]
fn another_avm_holding_the_data_tree_is_named() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let _held = avm_trainer::lock::DirLock::acquire(&ws.dir.path().join("DATA"), "run").unwrap();
    let (code, err) = ws.preprocess();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("in use by another avm process") && err.contains("`avm run`"), "{err}");
    ws.nothing_written();
}

#[test]
fn config_paths_are_relative_to_the_config_file() {
    let ws = Workspace::new();
    with_good_neighbour(&ws);
    let cfg = ws.dir.path().join("config.yaml");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_avm"))
        .args(["validate", "--config", cfg.to_str().unwrap()])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A contract that is not there is a usage error (2) naming it.
    std::fs::remove_file(ws.dir.path().join("contract.yaml")).unwrap();
    let (code, err) = ws.avm(&["validate", "--config", "config.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("contract.yaml") && err.contains("does not exist"), "{err}");
}
