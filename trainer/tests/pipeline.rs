//! The stages end to end through the `avm` binary on a small simulated fleet: simulate →
//! preprocess → featurize → train (interrupted and resumed) → evaluate.

use std::path::Path;
use std::process::Command;

mod common;

fn avm(dir: &Path, args: &[&str]) -> String {
    let out = avm_output(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "avm {args:?} failed ({}): {stderr}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `avm args` in `dir`, whatever its outcome.
fn avm_output(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_avm")).args(args).current_dir(dir).output().unwrap()
}

fn weights(path: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["model"].clone()
}

#[test]
fn stages_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::write_small_config(d, |c| {
        c.train.max_epochs = 6;
        c.evaluate.cv_folds = 3;
        // Whole engines per split and leave-one-engine-out cross-validation (4 engines).
        c.split.group_by = avm_trainer::config::GroupBy::Engine;
        c.evaluate.leave_one_group_out = true;
        // Far more healthy validation flights than this fleet has: skipped, and said so.
        c.evaluate.flight_calibration =
            Some(avm_trainer::config::FlightCalibration { target_alerting_fraction: 0.01 });
    });
    let c = ["--config", "c.yaml"];
    avm(d, &[&["simulate"][..], &c].concat());
    avm(d, &[&["preprocess"][..], &c].concat());
    let out = avm(d, &[&["featurize"][..], &c].concat());
    assert!(out.contains("training:") && out.contains("66 features per window"), "{out}");
    for split in ["training", "validation", "test"] {
        assert!(d.join(format!("DATA/features/{split}/features.parquet")).exists());
        assert!(d.join(format!("DATA/labels/{split}/labels.parquet")).exists());
    }
    let scaler: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("DATA/features/scaler.json")).unwrap()).unwrap();
    assert_eq!(scaler["feature_names"][2], "vib_fan.rms_g");
    assert_eq!(scaler["feature_schema_version"], avm_core::FEATURE_SCHEMA_VERSION);

    // Uninterrupted, then interrupted after 2 epochs and resumed: the same weights.
    avm(d, &[&["train"][..], &c, &["--out", "full"]].concat());
    avm(d, &[&["train"][..], &c, &["--out", "part", "--stop-after-epochs", "2"]].concat());
    assert!(!d.join("part/epoch_003.json").exists());
    avm(d, &[&["train"][..], &c, &["--out", "part", "--checkpoint", "part/last.json", "--resume"]].concat());
    assert_eq!(weights(&d.join("full/last.json")), weights(&d.join("part/last.json")));
    assert_eq!(weights(&d.join("full/best.json")), weights(&d.join("part/best.json")));

    avm(d, &[&["train"][..], &c].concat());
    let out = avm(d, &[&["evaluate"][..], &c].concat());
    assert!(out.contains("test: AUC"), "{out}");
    assert!(out.contains("flight-level calibration skipped:") && out.contains("needs at least 99"), "{out}");
    let e = d.join("MODELS/small/evaluation");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.join("metrics.json")).unwrap()).unwrap();
    let auc = m["auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc));
    assert!(m["test"]["far"].as_f64().unwrap() <= 1.0);
    assert!(m["validation"]["far"].as_f64().unwrap() <= 0.1 + 1e-12, "calibrated on validation");
    assert_eq!(m["cv_folds"], 4, "one fold per engine");
    // No engine is both trained on and tested.
    let cfg = avm_trainer::config::PipelineConfig::load(&d.join("c.yaml")).unwrap();
    let engines = |split: &str| -> std::collections::BTreeSet<String> {
        avm_trainer::stages::featurize::load_split(&cfg, split)
            .unwrap()
            .rows
            .iter()
            .map(|r| format!("{}/{}", r.aircraft_id, r.engine_id))
            .collect()
    };
    let (tr, te) = (engines("training"), engines("test"));
    assert!(!te.is_empty() && tr.is_disjoint(&te), "training {tr:?} test {te:?}");
    assert!(m["cross_validation"]["auc"][0].as_f64().is_some());
    assert!(m["by_phase"].as_object().unwrap().contains_key("cruise"));
    assert!(m["score_distributions"]["normal"]["n"].as_u64().unwrap() > 0);
    for f in ["roc.png", "confusion.png"] {
        assert!(std::fs::read(e.join(f)).unwrap().starts_with(b"\x89PNG"), "{f}");
    }
    for f in ["roc.svg", "confusion.svg"] {
        assert!(std::fs::read_to_string(e.join(f)).unwrap().contains("<svg"), "{f}");
    }
}

/// A new fleet with healthy recordings only: `avm run` calibrates on normal data, reports the
/// false-alarm and false-alert figures, says recall cannot be measured, skips the gates that
/// need faults with that note (never a silent pass) and registers the detector.
#[test]
fn normal_only_fleet_is_calibrated_and_its_fault_gates_are_skipped_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::write_small_config(d, |c| {
        c.train.max_epochs = 3;
        let s = c.simulate.as_mut().unwrap();
        s.engine_fault_probability = 0.0;
        s.sensor_event_probability = 0.0;
        c.gates.min_auc = 0.9;
        c.gates.min_recall = 0.85;
        c.gates.min_subtle_flights_alerted = 0.9;
        c.gates.min_gross_flights_alerted_in_time = 1.0;
        // 3 healthy validation flights: the fewest for 1 in 4 (n >= 1/0.25 - 1). A loose window
        // target (3 in 10 windows alarm) so that the flight level has something to raise.
        c.evaluate.target_far = 0.3;
        c.evaluate.flight_calibration =
            Some(avm_trainer::config::FlightCalibration { target_alerting_fraction: 0.25 });
    });
    let out = Command::new(env!("CARGO_BIN_EXE_avm"))
        .args(["run", "--config", "c.yaml"])
        .current_dir(d)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    for gate in [
        "test/auc",
        "test/recall",
        "test/precision",
        "test/flight/gross_alerted_in_time",
        "test/flight/subtle_alerted",
    ] {
        let line = stdout.lines().find(|l| l.starts_with(gate)).unwrap_or_else(|| panic!("{gate}: {stdout}"));
        assert!(line.contains("skipped:"), "{line}");
    }
    assert!(stdout.contains("recall cannot be measured"), "{stdout}");
    let far_line = stdout.lines().find(|l| l.starts_with("test/far ")).unwrap();
    assert!(far_line.contains("pass"), "{far_line}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("MODELS/small/evaluation/metrics.json")).unwrap())
            .unwrap();
    assert_eq!((m["normal_only"].as_bool(), m["auc"].is_null()), (Some(true), true));
    assert!(m["flights"]["healthy_hours"].as_f64().unwrap() > 0.0);
    // Flight level: rank ceil(4 x 0.75) = 3 of 3, the largest statistic; thresholds raised by
    // max(1, it), rounded up to f32; then no healthy validation flight alerts.
    let fc = &m["calibration"]["flights"];
    assert_eq!(fc["healthy_flights"], 3, "{fc}");
    let (stat, mult) = (fc["statistic"].as_f64().unwrap(), fc["multiplier"].as_f64().unwrap());
    assert_eq!(mult, stat.max(1.0), "{fc}");
    assert!(mult > 1.0, "the window-level thresholds let a healthy validation flight alert: {fc}");
    let window = fc["window_threshold"].as_f64().unwrap();
    let t = m["threshold"].as_f64().unwrap();
    assert!(t >= window * mult && t <= window * mult * (1.0 + 1e-6), "{t} vs {window} x {mult}");
    assert_eq!(fc["validation_alerting_flights"], 0, "{fc}");
    assert!(stdout.contains("flight calibration: thresholds x"), "{stdout}");
    assert!(d.join("MODELS/small/1.0.0/detector.avmb").exists());
    assert!(!d.join("MODELS/small/1.0.0/roc.png").exists());
}

/// `simulate.stream`: the fleet simulated as a feature stream (no raw recordings written) gives
/// the window table that `avm simulate` + `avm preprocess` give, row for row and bit for bit,
/// and the same labels; `avm run` then takes it from there without a preprocess pass.
#[test]
fn a_fleet_simulated_as_a_feature_stream_equals_the_written_one() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    common::write_small_config(a.path(), |_| {});
    common::write_small_config(b.path(), |c| c.simulate.as_mut().unwrap().stream = true);
    let c = ["--config", "c.yaml"];
    avm(a.path(), &[&["simulate"][..], &c].concat());
    avm(a.path(), &[&["preprocess"][..], &c].concat());
    let out = avm(b.path(), &[&["simulate"][..], &c].concat());
    assert!(out.contains("as a feature stream"), "{out}");
    assert!(!b.path().join("DATA/raw/recordings").exists(), "no recording is written");
    let raw = |d: &Path, f: &str| std::fs::read(d.join("DATA/raw").join(f)).unwrap();
    assert_eq!(raw(a.path(), "labels.csv"), raw(b.path(), "labels.csv"));
    let manifest = |d: &Path| -> avm_trainer::stages::preprocess::ProcessedManifest {
        serde_json::from_slice(&std::fs::read(d.join("DATA/processed/manifest.json")).unwrap()).unwrap()
    };
    let (ma, mb) = (manifest(a.path()), manifest(b.path()));
    assert_eq!(ma.recordings.len(), 12);
    assert_eq!(ma.extractor, mb.extractor);
    for (x, y) in ma.recordings.iter().zip(&mb.recordings) {
        assert_eq!(
            (&x.flight_id, x.samples, x.windows, x.valid_windows),
            (&y.flight_id, y.samples, y.windows, y.valid_windows)
        );
        assert_eq!(y.raw_file, format!("simulated/{}", y.flight_id));
    }
    let table = |d: &Path, m: &avm_trainer::stages::preprocess::ProcessedManifest| {
        avm_trainer::formats::windows::read_table(&d.join("DATA/processed/windows.parquet"), &m.feature_names)
            .unwrap()
    };
    let (wa, wb) = (table(a.path(), &ma), table(b.path(), &mb));
    assert!(wa.len() > 300, "{} windows", wa.len());
    assert_eq!(wa.len(), wb.len());
    for (x, y) in wa.iter().zip(&wb) {
        let bits = |w: &avm_trainer::formats::windows::Window| -> Vec<u32> {
            w.features.iter().map(|f| f.to_bits()).collect()
        };
        assert_eq!(
            (&x.flight_id, x.window_index, x.label, &x.phase),
            (&y.flight_id, y.window_index, y.label, &y.phase)
        );
        assert_eq!(
            (bits(x), &x.quality, x.valid),
            (bits(y), &y.quality, y.valid),
            "{} window {}",
            x.flight_id,
            x.window_index
        );
    }
    // `avm run` on the streamed fleet: it simulates once (the data stage had no record of the
    // `avm simulate` above), then a second run finds it current; no preprocess pass either time.
    let first = avm_output(b.path(), &["run", "--config", "c.yaml"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let out = avm_output(b.path(), &["run", "--config", "c.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("data: inputs unchanged, skipped") && err.contains("done by the data stage"),
        "{err}"
    );
    // Other feature settings make the streamed table stale: the data stage runs again.
    let text = std::fs::read_to_string(b.path().join("c.yaml")).unwrap();
    let edited = text.replace("max_gap_samples: 8", "max_gap_samples: 9");
    assert_ne!(edited, text);
    std::fs::write(b.path().join("c.yaml"), edited).unwrap();
    let out = avm_output(b.path(), &["run", "--config", "c.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("simulated the fleet as a feature stream"), "{err}");
    // A stage run by hand says why there is nothing to preprocess.
    let out = avm_output(b.path(), &["preprocess", "--config", "c.yaml"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("simulate.stream"));
}
