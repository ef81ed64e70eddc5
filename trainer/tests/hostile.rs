//! Untrusted configs, checkpoints, manifests and output directories, tried through the CLI as
//! a hostile tester would: each gives a clear error with the right exit code, no panic, and
//! nothing lost or half-written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

fn avm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avm")).args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = avm(dir, args);
    assert!(out.status.success(), "avm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit code and stderr; asserts there was no panic.
fn fails(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = avm(dir, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "avm {args:?} panicked: {err}");
    (out.status.code().unwrap_or(-1), err)
}

const C: [&str; 2] = ["--config", "c.yaml"];

fn with(cmd: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec![cmd.to_string(), C[0].into(), C[1].into()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn help_lists_the_exit_codes_the_errors_use() {
    let d = tempfile::tempdir().unwrap();
    let help = ok(d.path(), &["--help"]);
    for (code, what) in [
        (avm_trainer::error::EXIT_OTHER, "other failure"),
        (avm_trainer::error::EXIT_USAGE, "usage or configuration error"),
        (avm_trainer::error::EXIT_CONTRACT, "data-contract violation"),
        (avm_trainer::error::EXIT_GATE, "quality gate failed"),
    ] {
        assert!(help.contains(&format!("{code} {what}")), "{code} {what:?} not in {help}");
    }
    // And a usage error exits with the code the help promises.
    let (code, _) = fails(d.path(), &["preprocess", "--config", "missing.yaml"]);
    assert_eq!(code, i32::from(avm_trainer::error::EXIT_USAGE));
}

#[test]
fn config_values_outside_their_range_are_refused_before_anything_runs() {
    let d = tempfile::tempdir().unwrap();
    for (from, to, needle) in [
        ("hidden: [12, 6, 12]", "hidden: [0]", "train.hidden[0] = 0 must be from 1 to 4096"),
        ("hidden: [12, 6, 12]", "hidden: [1000000000]", "train.hidden[0] = 1000000000"),
        ("hidden: [12, 6, 12]", "hidden: []", "train.hidden (number of layers) = 0"),
        (
            "max_epochs: 8",
            "max_epochs: 1000000000000",
            "train.max_epochs = 1000000000000 must be from 1 to 100000",
        ),
        (
            "learning_rate: 0.003",
            "learning_rate: .nan",
            "train.learning_rate = NaN must be a finite number in (0, 1]",
        ),
        ("learning_rate: 0.003", "learning_rate: -0.1", "train.learning_rate = -0.1"),
        ("target_far: 0.1", "target_far: 1.5", "evaluate.target_far = 1.5 must be a finite number in (0, 1)"),
        ("batch_size: 32", "batch_size: 0", "train.batch_size = 0"),
        ("window_s: 10.0", "window_s: -10", "features.window_s = -10"),
        ("hop_s: 5.0", "hop_s: 5.1", "nearest valid value: 5 s"),
        (
            "order_band_bins: 1",
            "order_band_bins: 1\n  bands: {count: 20, low_hz: 1}",
            "features.bands: band 0 (1 Hz to 1.39",
        ),
        ("order_band_bins: 1", "order_band_bins: 1\n  orders: [1, -2]", "features: orders[1] = -2"),
        ("order_band_bins: 1", "order_band_bins: 1\n  families: [time, gears]", "gears"),
        ("spike_k_sigma: 3.0", "spike_k_sigma: 3.0\n  spike_policy: median", "median"),
        ("name: small", "name: ../../x", "name \"../../x\" is not a valid identifier"),
        (
            "cv_folds: 0",
            "cv_folds: 0\nalerts: {raise_count: 7, raise_window: 6}",
            "alerts.raise_count = 7 breaks the rule: must be in 1..=raise_window",
        ),
        (
            "cv_folds: 0",
            "cv_folds: 0\nalerts: {no_verdict_phases: [cruse]}",
            "alerts.no_verdict_phases: \"cruse\" is not a phase of the contract",
        ),
        (
            "cv_folds: 0",
            "cv_folds: 0\n  calibration: {method: tolerance, confidence: 1.0}",
            "evaluate.calibration.confidence = 1 must be below 1",
        ),
        ("cv_folds: 0", "cv_folds: 0\n  calibration: {method: bootstrap}", "bootstrap"),
        (
            "cv_folds: 0",
            "cv_folds: 0\n  flight_calibration: {target_alerting_fraction: 0}",
            "evaluate.flight_calibration.target_alerting_fraction = 0 must be a finite number in (0, 1)",
        ),
        (
            "cv_folds: 0",
            "cv_folds: 0\n  flight_calibration: {target_alerting_fraction: 0.1, per: hour}",
            "per",
        ),
        (
            "aircraft: 2",
            "aircraft: 100000",
            "simulate: aircraft x engines_per_aircraft x flights_per_aircraft",
        ),
    ] {
        common::write_small_config_text(d.path(), |t| {
            assert!(t.contains(from), "{from}");
            t.replace(from, to)
        });
        let cmds: &[&str] = if from.starts_with("window_s")
            || from.starts_with("hop_s")
            || to.contains("bands:")
            || to.contains("orders:")
        {
            &["preprocess"] // checked against the contract's rate
        } else {
            &["simulate", "train"]
        };
        for &cmd in cmds {
            let (code, err) = fails(d.path(), &refs(&with(cmd, &[])));
            assert_eq!(code, 2, "{to}: {err}");
            assert!(err.contains(needle) && err.contains("c.yaml"), "{to}: {needle:?} not in {err}");
        }
    }
    assert!(!d.path().join("DATA").exists() && !d.path().join("MODELS").exists(), "nothing may be written");
}

fn train_dir(d: &Path, name: &str) -> PathBuf {
    d.join(name)
}

fn edit_json(p: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(p, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn checkpoints_are_checked_completely_and_runs_are_published_whole() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    common::write_small_config(d, |_| {});
    for s in ["simulate", "preprocess", "featurize"] {
        ok(d, &refs(&with(s, &[])));
    }
    // One pass over the raw data: featurize reads only the window table.
    let features = std::fs::read(d.join("DATA/features/training/features.parquet")).unwrap();
    std::fs::rename(d.join("DATA/raw"), d.join("raw-away")).unwrap();
    ok(d, &refs(&with("featurize", &[])));
    assert_eq!(std::fs::read(d.join("DATA/features/training/features.parquet")).unwrap(), features);
    std::fs::rename(d.join("raw-away"), d.join("DATA/raw")).unwrap();
    // A window table made with other feature settings is stale: a usage error, not a violation.
    common::write_small_config(d, |c| c.features.spike_k_sigma = 4.0);
    let (code, err) = fails(d, &refs(&with("featurize", &[])));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("other feature settings") && err.contains("rerun `avm preprocess`"), "{err}");
    common::write_small_config(d, |_| {});

    // A run of 8 epochs keeps best, last and the 3 most recent epoch files.
    ok(d, &refs(&with("train", &["--out", "run"])));
    let run = train_dir(d, "run");
    let mut names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "best.json",
            "epoch_006.json",
            "epoch_007.json",
            "epoch_008.json",
            "last.json",
            "metrics.jsonl",
            "pipeline_config.yaml",
            "tracking.json"
        ],
        "no staging left, old epochs pruned"
    );

    // Malformed checkpoints: a clear usage error naming the file and the rule, never a panic.
    let part = train_dir(d, "part");
    ok(d, &refs(&with("train", &["--out", "part", "--stop-after-epochs", "2"])));
    let last = part.join("last.json");
    let pristine = std::fs::read(&last).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 6] = [
        (
            |v| {
                v["model"]["layers"][0]["w"].as_array_mut().unwrap().pop();
            },
            "weights",
        ),
        (|v| v["model"]["layers"][1]["d_in"] = 7.into(), "layer 1 is 7x"),
        (
            |v| {
                v["adam"][0]["moment_1"].as_array_mut().unwrap().truncate(3);
            },
            "Adam slot 0",
        ),
        (
            |v| {
                v["model"]["layers"].as_array_mut().unwrap().pop();
            },
            "layers",
        ),
        (|v| v["model"]["layers"][0]["b"][0] = serde_json::Value::Null, "not valid"),
        (|v| v["best_epoch"] = 9.into(), "best epoch"),
    ];
    for (edit, needle) in cases {
        std::fs::write(&last, &pristine).unwrap();
        edit_json(&last, edit);
        let (code, err) =
            fails(d, &refs(&with("train", &["--out", "part", "--checkpoint", "part/last.json", "--resume"])));
        assert_eq!(code, 2, "{needle}: {err}");
        assert!(err.contains("part/last.json") && err.contains(needle), "{needle:?} not in {err}");
        let (code, err) = fails(d, &refs(&with("evaluate", &["--checkpoint", "part/last.json"])));
        assert_eq!(code, 2, "{needle}: {err}");
    }
    std::fs::write(&last, &pristine).unwrap();
    // The failed resumes left the run as it was.
    assert_eq!(std::fs::read(&last).unwrap(), pristine);

    // best.json one improvement behind last.json (a run cut between the two writes by an older
    // avm): resume takes the best epoch's own file and ends like an uninterrupted run.
    let lastv: serde_json::Value = serde_json::from_slice(&pristine).unwrap();
    let best_epoch = lastv["best_epoch"].as_u64().unwrap();
    assert_eq!(best_epoch, 2, "the small fleet improves in both first epochs");
    std::fs::copy(part.join("epoch_001.json"), part.join("best.json")).unwrap();
    // `--resume` alone continues the output directory's last.json.
    ok(d, &refs(&with("train", &["--out", "part", "--resume"])));
    let w = |p: &Path| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap()["model"].clone()
    };
    assert_eq!(w(&run.join("best.json")), w(&part.join("best.json")));
    assert_eq!(w(&run.join("last.json")), w(&part.join("last.json")));
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let d = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_avm"))
        .args(["registry", "--registry", "REG", "list"])
        .current_dir(d.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone, as with `| head -0`
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(out.status.code(), Some(0) | Some(141)), "{:?} {err}", out.status);
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cwru() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/cwru-bearing")
}

#[test]
fn import_refuses_bad_manifests_mappings_and_a_non_empty_output() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let manifest = std::fs::read_to_string(cwru().join("manifest.csv")).unwrap();
    let header = manifest.lines().next().unwrap();
    let row97 = manifest.lines().find(|l| l.contains(",97,")).unwrap();
    let col = |name: &str| header.split(',').position(|c| c == name).unwrap();
    let mapping = std::fs::read_to_string(repo().join("configs/import/cwru.yaml")).unwrap().replace(
        "../../../shared/datasets/cwru-bearing/manifest.csv",
        cwru().join("manifest.csv").to_str().unwrap(),
    );
    std::fs::write(d.join("map.yaml"), &mapping).unwrap();
    let m_abs = |cells: &mut Vec<String>| {
        cells[col("file")] = cwru().join(&cells[col("file")]).display().to_string();
    };
    for (bad_fs, needle) in
        [("", "is empty"), ("-48000", "must be a number > 0"), ("nan", "must be a number > 0")]
    {
        let mut cells: Vec<String> = row97.split(',').map(str::to_string).collect();
        cells[col("fs_hz")] = bad_fs.into();
        m_abs(&mut cells);
        std::fs::write(d.join("m.csv"), format!("{header}\n{}\n", cells.join(","))).unwrap();
        let (code, err) =
            fails(d, &["import", "--mapping", "map.yaml", "--manifest", "m.csv", "--out", "raw"]);
        assert_eq!(code, 3, "{bad_fs:?}: {err}");
        assert!(
            err.contains("normal_0_97.mat")
                && err.contains("manifest line 2")
                && err.contains("input.sample_rate_hz")
                && err.contains(needle),
            "{err}"
        );
        assert!(!d.join("raw").exists());
    }
    // A wrong checksum, a file the manifest does not list, a glob that matches nothing.
    let mut cells: Vec<String> = row97.split(',').map(str::to_string).collect();
    m_abs(&mut cells);
    cells[col("sha256")] = "00".repeat(32);
    std::fs::write(d.join("m.csv"), format!("{header}\n{}\n", cells.join(","))).unwrap();
    let (code, err) = fails(d, &["import", "--mapping", "map.yaml", "--manifest", "m.csv", "--out", "raw"]);
    assert!(code == 3 && err.contains("differs from the manifest's") && err.contains("line 2"), "{err}");
    let other = cwru().join("48k_drive_end/48k_Drive_End_B007_0_122.mat");
    let (code, err) = fails(
        d,
        &["import", "--mapping", "map.yaml", "--manifest", "m.csv", "--out", "raw", other.to_str().unwrap()],
    );
    assert!(code == 3 && err.contains("not listed in the manifest"), "{err}");
    let (code, err) = fails(d, &["import", "--mapping", "map.yaml", "--out", "raw", "nothing/*.mat"]);
    assert!(code == 2 && err.contains("no file matches"), "{err}");
    // Mapping errors name the file and the key; an id that would leave the output is refused.
    for (edit, needle) in [("colour: red\n", "colour"), ("split: {block_s: -1}\n", "split: give block_s")] {
        std::fs::write(d.join("bad.yaml"), format!("{mapping}{edit}")).unwrap();
        let (code, err) =
            fails(d, &["import", "--mapping", "bad.yaml", "--where", "record_no=97", "--out", "raw"]);
        assert!(code == 2 && err.contains("bad.yaml") && err.contains(needle), "{edit}: {err}");
    }
    let escaping = mapping
        .replace("flight_id: \"CWRU-{manifest.record_no:03}\"", "flight_id: \"../../x{manifest.record_no}\"");
    assert_ne!(escaping, mapping);
    std::fs::write(d.join("bad.yaml"), escaping).unwrap();
    let (code, err) =
        fails(d, &["import", "--mapping", "bad.yaml", "--where", "record_no=97", "--out", "raw"]);
    assert!(code == 3 && err.contains("ids.flight_id") && err.contains("not a valid identifier"), "{err}");
    assert!(!d.join("raw").exists() && !d.join("x97.parquet").exists());
    let same = mapping.replace("flight_id: \"CWRU-{manifest.record_no:03}\"", "flight_id: CWRU");
    std::fs::write(d.join("bad.yaml"), same).unwrap();
    let (code, err) =
        fails(d, &["import", "--mapping", "bad.yaml", "--where", "record_no=97,109", "--out", "raw"]);
    assert!(code == 3 && err.contains("\"CWRU\" is also made from"), "{err}");
    // A non-empty output is refused without --force and kept as it was.
    std::fs::create_dir_all(d.join("raw/recordings")).unwrap();
    std::fs::write(d.join("raw/labels.csv"), "keep me").unwrap();
    let (code, err) =
        fails(d, &["import", "--mapping", "map.yaml", "--where", "record_no=97", "--out", "raw"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("raw is not empty") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(d.join("raw/labels.csv")).unwrap(), "keep me");
    ok(d, &["import", "--mapping", "map.yaml", "--where", "record_no=97", "--out", "raw", "--force"]);
    assert!(d.join("raw/recordings/CWRU-097.parquet").exists());
}

#[test]
fn init_needs_imported_recordings_and_keeps_existing_files() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let (code, err) = fails(d, &["init", "proj"]);
    assert!(code == 2 && err.contains("proj/DATA/raw/recordings") && err.contains("avm import"), "{err}");
    std::fs::create_dir_all(d.join("proj")).unwrap();
    std::fs::write(d.join("proj/config.yaml"), "mine").unwrap();
    let (code, err) = fails(d, &["init", "proj"]);
    assert!(code == 2 && err.contains("config.yaml exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(d.join("proj/config.yaml")).unwrap(), "mine");
    let (code, err) = fails(d, &["init", "proj", "--force", "--name", "../x"]);
    assert!(code == 2 && err.contains("not a valid identifier"), "{err}");
}
