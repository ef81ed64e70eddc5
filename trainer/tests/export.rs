//! `avm run` / `avm export` / `avm registry` end to end on a small simulated fleet: artifacts,
//! signature hashes, registry entry, bit-identical reruns, stage skipping, gate refusal, crash
//! consistency, the Python consumers (onnx checker, ONNX Runtime vs avm-core, pickle, PyYAML)
//! and a missing ONNX Runtime library.

use avm_trainer::config::{Gates, PipelineConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn setup(dir: &Path, gates: Option<Gates>) {
    common::write_small_config(dir, |c| {
        if let Some(g) = gates {
            c.gates = g;
        }
    });
}

fn avm_raw(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_avm"));
    c.args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn avm(dir: &Path, args: &[&str]) -> String {
    let out = avm_raw(dir, args, &[]);
    assert!(
        out.status.success(),
        "avm {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn registry(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("REGISTRY/registry.json")).unwrap()).unwrap()
}

fn versions(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("MODELS/small"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "training" && n != "evaluation" && n != avm_trainer::lock::LOCK_FILE)
        .collect();
    v.sort();
    v
}

fn registered(dir: &Path) -> Vec<String> {
    registry(dir)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_str().unwrap().to_string())
        .collect()
}

/// Features of the valid validation windows and avm-core's scores through the bundle.
fn core_reference(dir: &Path, version_dir: &Path) -> (PathBuf, PathBuf) {
    let mut cfg = PipelineConfig::load(&dir.join("c.yaml")).unwrap();
    cfg.paths.data = dir.join("DATA");
    let val = avm_trainer::stages::featurize::load_split(&cfg, "validation").unwrap();
    let bundle = std::fs::read(version_dir.join("detector.avmb")).unwrap();
    let det = avm_core::Detector::parse(&bundle).unwrap();
    let (mut x, mut s) = (Vec::new(), Vec::new());
    for r in val.rows.iter().filter(|r| r.valid) {
        x.extend(r.features.iter().flat_map(|v| v.to_le_bytes()));
        s.extend(det.score(&r.features).unwrap().to_le_bytes());
    }
    let (xp, sp) = (dir.join("features.f32"), dir.join("scores.f32"));
    std::fs::write(&xp, x).unwrap();
    std::fs::write(&sp, s).unwrap();
    (xp, sp)
}

#[test]
fn run_export_registry_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d).unwrap();
        setup(d, None);
    }
    let c = ["--config", "c.yaml"];

    // First run: simulates (no raw data), every stage runs, 1.0.0 registered.
    let out = avm(&a, &[&["run"][..], &c].concat());
    assert!(out.contains("simulated the default fleet") && out.contains("registered small 1.0.0"), "{out}");
    let vdir = a.join("MODELS/small/1.0.0");
    let art = files(&vdir);
    for n in [
        "model.onnx",
        "detector.avmb",
        "scaler.json",
        "scaler.pkl",
        "signature.json",
        "thresholds.yaml",
        "metrics.json",
        "validation.json",
        "roc.png",
        "confusion.png",
        "contract.yaml",
    ] {
        assert!(art.contains_key(n), "{n} missing: {:?}", art.keys());
    }
    let sig: serde_json::Value = serde_json::from_slice(&art["signature.json"]).unwrap();
    let hashes = sig["artifacts_sha256"].as_object().unwrap();
    assert_eq!(hashes.len(), art.len() - 1, "every artifact but the signature is signed");
    for (n, h) in hashes {
        assert_eq!(avm_trainer::io::sha256_hex(&art[n]), h.as_str().unwrap(), "{n}");
    }
    assert_eq!(sig["features"].as_array().unwrap().len(), 66, "2 channels x the default set's 33");
    assert_eq!(sig["features"][2]["name"], "vib_fan.rms_g");
    assert_eq!(sig["feature_schema_version"], avm_core::FEATURE_SCHEMA_VERSION);
    let reg = registry(&a);
    let e = &reg["entries"][0];
    assert_eq!(
        (e["detector"].as_str(), e["version"].as_str(), e["status"].as_str()),
        (Some("small"), Some("1.0.0"), Some("candidate"))
    );
    assert_eq!(e["config_sha256"], avm_trainer::io::sha256_hex(&std::fs::read(a.join("c.yaml")).unwrap()));
    for (n, h) in e["artifacts"].as_object().unwrap() {
        assert_eq!(avm_trainer::io::sha256_hex(&art[n]), h.as_str().unwrap(), "{n}");
    }
    assert!(e["gates"].as_array().unwrap().iter().all(|g| g["passed"] == true));
    let bundle = avm_core::Detector::parse(&art["detector.avmb"]).unwrap();
    assert_eq!(bundle.version(), [1, 0, 0]);
    assert_eq!(bundle.config().window_len_samples, 20_480);

    // Second run: every stage skipped, the model is already registered.
    let out = avm(&a, &[&["run"][..], &c].concat());
    assert_eq!(out.matches("inputs unchanged, skipped").count(), 4, "{out}");
    assert!(out.contains("already registered as 1.0.0"), "{out}");
    assert_eq!(registered(&a), ["1.0.0"]);

    // Same config and seed elsewhere: bit-identical artifacts.
    avm(&b, &[&["run"][..], &c].concat());
    let art_b = files(&b.join("MODELS/small/1.0.0"));
    assert_eq!(art.keys().collect::<Vec<_>>(), art_b.keys().collect::<Vec<_>>());
    for (n, bytes) in &art {
        assert!(bytes == &art_b[n], "{n} differs between two runs with the same config");
    }

    // Python consumers: onnx checker, ORT vs avm-core, pickle, PyYAML.
    let (xp, sp) = core_reference(&a, &vdir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_export.py");
    let py = Command::new("python3").arg(&script).arg(&vdir).arg(&xp).arg(&sp).output().unwrap();
    assert!(
        py.status.success(),
        "{}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );

    // `avm score`: the registered version applied to the test recordings gives, window for
    // window, what `avm evaluate` reported for them (evaluate judges with the trainer's phase
    // table, score with the bundle's: the same scores, thresholds, verdicts and alerts).
    let eval_scores = std::fs::read_to_string(a.join("MODELS/small/evaluation/scores.csv")).unwrap();
    let mut flights: Vec<String> =
        eval_scores.lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect();
    flights.dedup();
    let recs: Vec<String> = flights.iter().map(|f| format!("DATA/raw/recordings/{f}.parquet")).collect();
    let rec_args: Vec<&str> = recs.iter().map(String::as_str).collect();
    let out = avm(
        &a,
        &[
            &["score", "--model", "small@1.0.0", "--out", "scored", "--labels", "DATA/raw/labels.csv"][..],
            &rec_args,
        ]
        .concat(),
    );
    assert!(out.contains("small 1.0.0") && out.contains("false alerts"), "{out}");
    let scored = std::fs::read_to_string(a.join("scored/scores.csv")).unwrap();
    let key = |text: &str| -> Vec<String> {
        let mut v: Vec<String> = text.lines().map(str::to_string).collect();
        v[1..].sort();
        v
    };
    assert_eq!(key(&scored), key(&eval_scores), "avm score and avm evaluate disagree");
    for f in ["scores.parquet", "alerts.csv", "flights.json", "flights.csv"] {
        assert!(a.join("scored").join(f).exists(), "{f}");
    }
    // flights.csv's max_score and alerts.csv's time_s, recomputed from scores.csv's rows.
    let rows: Vec<Vec<String>> =
        scored.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect();
    let col = |file: &str, name: &str| -> (Vec<Vec<String>>, usize) {
        let text = std::fs::read_to_string(a.join("scored").join(file)).unwrap();
        let mut lines = text.lines();
        let k = lines
            .next()
            .unwrap()
            .split(',')
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{file}: {name}"));
        (lines.map(|l| l.split(',').map(str::to_string).collect()).collect(), k)
    };
    let (flight_rows, k_max) = col("flights.csv", "max_score");
    for fr in &flight_rows {
        let want = rows
            .iter()
            .filter(|r| r[0] == fr[0] && r[9] == "true")
            .map(|r| r[6].parse::<f32>().unwrap())
            .fold(f32::NAN, f32::max);
        let got: f32 = fr[k_max].parse().unwrap();
        assert!(got == want || (got.is_nan() && want.is_nan()), "{}: max_score {got} vs {want}", fr[0]);
    }
    assert!(!flight_rows.is_empty());
    let (alert_rows, k_t) = col("alerts.csv", "time_s");
    println!(
        "checked {} flights and {} alert events against scores.csv",
        flight_rows.len(),
        alert_rows.len()
    );
    let k_w = col("alerts.csv", "window_index").1;
    for ar in &alert_rows {
        let end = rows.iter().find(|r| r[0] == ar[0] && r[1] == ar[k_w]).map(|r| r[3].clone());
        assert_eq!(Some(ar[k_t].clone()), end, "alert time of {} window {}", ar[0], ar[k_w]);
    }
    assert!(
        std::fs::read(a.join(format!("scored/flights/{}.png", flights[0]))).unwrap().starts_with(b"\x89PNG")
    );
    // An --out that holds something else (here the raw data) is refused, not replaced.
    let n_raw = std::fs::read_dir(a.join("DATA/raw/recordings")).unwrap().count();
    let out = avm_raw(
        &a,
        &[&["score", "--model", "small@1.0.0", "--out", "DATA/raw"][..], &rec_args].concat(),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not an avm score output") && err.contains("refusing to replace it"), "{err}");
    assert_eq!(std::fs::read_dir(a.join("DATA/raw/recordings")).unwrap().count(), n_raw);
    // A previous score output is replaced.
    avm(&a, &[&["score", "--model", "small@1.0.0", "--out", "scored"][..], &rec_args].concat());
    // A modified artifact: the detector is refused, nothing is scored.
    let bundle_path = vdir.join("detector.avmb");
    let original = std::fs::read(&bundle_path).unwrap();
    let mut tampered = original.clone();
    tampered[300] ^= 1;
    std::fs::write(&bundle_path, &tampered).unwrap();
    let out = avm_raw(
        &a,
        &[&["score", "--model", "MODELS/small/1.0.0", "--out", "scored2"][..], &rec_args].concat(),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("detector.avmb") && err.contains("refusing a modified detector"), "{err}");
    assert!(!a.join("scored2").exists());
    std::fs::write(&bundle_path, &original).unwrap();

    // An existing version is refused (exit 2) unless --force.
    let out = avm_raw(&a, &[&["export"][..], &c, &["--version", "1.0.0"]].concat(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("immutable"));
    avm(&a, &[&["export"][..], &c, &["--version", "1.0.0", "--force"]].concat());
    assert_eq!(files(&vdir), art, "a forced re-export of the same model gives the same files");

    // Gates that cannot pass: exit 4, the table, no new version, nothing staged.
    setup(&a, Some(Gates { max_latency_p99_ms: 0.0001, ..Gates::default() }));
    let out = avm_raw(&a, &[&["run"][..], &c, &["--version", "1.1.0"]].concat(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("latency") && err.contains("FAIL") && err.contains("0.0001"), "{err}");
    // A gate outside its range is a configuration error, said in the key as written.
    setup(&a, Some(Gates { min_auc: 1.01, ..Gates::default() }));
    let out = avm_raw(&a, &[&["run"][..], &c, &["--version", "1.1.0"]].concat(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("gates.min_auc = 1.01") && err.contains("[0, 1]"), "{err}");
    assert_eq!(versions(&a), ["1.0.0"]);
    assert_eq!(registered(&a), ["1.0.0"]);
    setup(&a, None);

    // A crash before the commit point: nothing visible, and the version can be exported later.
    let out =
        avm_raw(&a, &[&["export"][..], &c, &["--version", "1.2.0"]].concat(), &[("AVM_CRASH_AT", "staged")]);
    assert!(!out.status.success());
    assert_eq!(registered(&a), ["1.0.0"]);
    assert!(!a.join("MODELS/small/1.2.0").exists());
    avm(&a, &[&["export"][..], &c, &["--version", "1.2.0"]].concat());
    assert_eq!(registered(&a), ["1.0.0", "1.2.0"]);
    assert_eq!(versions(&a), ["1.0.0", "1.2.0"], "the interrupted staging directory was cleaned up");

    // A crash right after the commit point: the next registry command completes the version.
    let out = avm_raw(
        &a,
        &[&["export"][..], &c, &["--version", "1.3.0"]].concat(),
        &[("AVM_CRASH_AT", "registered")],
    );
    assert!(!out.status.success());
    let out = avm(&a, &["registry", "verify"]);
    assert!(out.contains("completed the interrupted export") && out.contains("3 version(s)"), "{out}");
    assert!(a.join("MODELS/small/1.3.0/signature.json").exists());

    // SIGKILL at arbitrary moments of an export: always all or nothing.
    for (i, delay_ms) in [20u64, 120, 400].into_iter().enumerate() {
        let v = format!("1.4.{i}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_avm"))
            .args([&["export"][..], &c, &["--version", &v]].concat())
            .current_dir(&a)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        avm(&a, &["registry", "verify"]);
        let in_registry = registered(&a).contains(&v);
        let on_disk = a.join("MODELS/small").join(&v).exists();
        assert_eq!(in_registry, on_disk, "version {v} after a kill at {delay_ms} ms");
    }

    // Promote, list, show.
    avm(&a, &["registry", "promote", "small", "1.2.0"]);
    avm(&a, &["registry", "promote", "small", "1.3.0"]);
    let list = avm(&a, &["registry", "list"]);
    assert!(list.contains("retired") && list.contains("production"), "{list}");
    let show = avm(&a, &["registry", "show", "small", "1.3.0"]);
    assert!(show.contains("\"status\": \"production\""), "{show}");

    // Entry paths are relative to the registry: verify works from any working directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let reg = a.join("REGISTRY");
    let out = avm(elsewhere.path(), &["registry", "--registry", reg.to_str().unwrap(), "verify"]);
    assert!(out.contains("every artifact matches"), "{out}");
    // A tampered artifact cannot be promoted; nothing changes.
    let onnx = a.join("MODELS/small/1.2.0/model.onnx");
    let original = std::fs::read(&onnx).unwrap();
    std::fs::write(&onnx, b"tampered").unwrap();
    let out = avm_raw(&a, &["registry", "promote", "small", "1.2.0"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be promoted") && err.contains("model.onnx was modified"), "{err}");
    assert!(avm(&a, &["registry", "show", "small", "1.3.0"]).contains("\"status\": \"production\""));
    std::fs::write(&onnx, original).unwrap();

    // Without the ONNX Runtime library: a clear error, not a panic.
    let out = avm_raw(
        &a,
        &[&["export"][..], &c, &["--version", "9.0.0"]].concat(),
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pip install onnxruntime==1.31.1") && !err.contains("panicked"), "{err}");
    assert!(!a.join("MODELS/small/9.0.0").exists() && !registered(&a).contains(&"9.0.0".to_string()));
}
