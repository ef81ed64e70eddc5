//! Per-unit baselines (config `baseline`) end to end on a small simulated fleet: featurize
//! fits one baseline per engine with training windows, evaluate commissions the others from
//! their first flight, export writes one bundle per unit (signed, registered, verified), and
//! `avm score` judges each recording with its unit's bundle — the same scores and verdicts
//! `avm evaluate` reported — and refuses a recording of a unit the detector has no baseline for.

use avm_trainer::config::{BaselineConfig, GroupBy};
use avm_trainer::formats::scaler::ScalerFile;
use std::path::Path;
use std::process::Command;

mod common;

fn avm(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_avm")).args(args).current_dir(dir).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = avm(dir, args);
    assert!(out.status.success(), "avm {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn per_engine_baselines_run_export_and_score_by_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path();
    common::write_small_config(a, |c| {
        // The split as drawn (no first flight moved), so that a unit without a baseline remains
        // for the refusal below.
        c.baseline = Some(BaselineConfig {
            by: GroupBy::Engine,
            min_windows: 5,
            commission_flights: 1,
            first_flight_in_training: false,
        });
        // A split whose validation flights include engines with training flights (with the
        // small fleet's seed 3 none has: training refuses that, naming the rule).
        c.split.seed = 4;
    });
    let out = ok(a, &["run", "--config", "c.yaml"]);
    assert!(out.contains("per-unit baselines:"), "{out}");
    assert!(out.contains("registered small 1.0.0"), "{out}");

    // The scaler's baselines: each the mean of its unit's clean normal training windows,
    // recomputed here from the training split in f64.
    let scaler = ScalerFile::load(&a.join("DATA/features/scaler.json")).unwrap();
    let b = scaler.baselines.clone().expect("baselines fitted");
    assert!(!b.units.is_empty());
    let train = avm_trainer::formats::windows::read_split(
        &a.join("DATA/features/training/features.parquet"),
        &a.join("DATA/labels/training/labels.parquet"),
    )
    .unwrap()
    .1;
    for (unit, u) in &b.units {
        let rows: Vec<_> = train
            .iter()
            .filter(|r| r.is_clean_normal() && format!("{}/{}", r.aircraft_id, r.engine_id) == *unit)
            .collect();
        assert_eq!(rows.len() as u64, u.windows, "{unit}");
        for (j, m) in u.mean.iter().enumerate() {
            let want = rows.iter().map(|r| f64::from(r.features[j])).sum::<f64>() / rows.len() as f64;
            assert!(
                (f64::from(*m) - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "{unit} feature {j}: {m} vs {want}"
            );
        }
    }

    // One signed bundle per unit: the fleet bundle's network and thresholds, the unit's mean.
    let vdir = a.join("MODELS/small/1.0.0");
    let sig: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vdir.join("signature.json")).unwrap()).unwrap();
    let fleet = std::fs::read(vdir.join("detector.avmb")).unwrap();
    let fleet = avm_core::Detector::parse(&fleet).unwrap();
    for (unit, u) in &b.units {
        let rel = avm_trainer::layout::unit_bundle(unit).unwrap();
        let name = rel.to_string_lossy().into_owned();
        let bytes = std::fs::read(vdir.join(&rel)).unwrap();
        assert_eq!(sig["artifacts_sha256"][&name], avm_trainer::io::sha256_hex(&bytes), "{name} signed");
        let det = avm_core::Detector::parse(&bytes).unwrap();
        assert_eq!(det.threshold(), fleet.threshold());
        // Scoring the unit's mean gives the network's error on the zero vector, as the
        // fleet bundle scoring the fleet mean does.
        let zero = det.score(&u.mean).unwrap();
        assert_eq!(zero, fleet.score(&scaler.mean).unwrap(), "{unit}");
    }
    assert!(ok(a, &["registry", "verify"]).contains("every artifact matches"), "registry verify");

    // `avm score` on the test flights of units with a baseline: evaluate's rows, exactly.
    let eval_scores = std::fs::read_to_string(a.join("MODELS/small/evaluation/scores.csv")).unwrap();
    let flights: std::collections::BTreeSet<String> =
        eval_scores.lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect();
    let unit_of = |f: &str| {
        // Flight ids are AC01-F002-E1: aircraft AC01, engine AC01-E1.
        let ac = &f[..4];
        format!("{ac}/{ac}-{}", &f[f.len() - 2..])
    };
    let (with, without): (Vec<String>, Vec<String>) =
        flights.iter().cloned().partition(|f| b.units.contains_key(&unit_of(f)));
    assert!(!with.is_empty(), "some test flight's unit has a training baseline");
    let recs: Vec<String> = with.iter().map(|f| format!("DATA/raw/recordings/{f}.parquet")).collect();
    let mut args =
        vec!["score", "--model", "small@1.0.0", "--out", "scored", "--labels", "DATA/raw/labels.csv"];
    args.extend(recs.iter().map(String::as_str));
    ok(a, &args);
    let scored = std::fs::read_to_string(a.join("scored/scores.csv")).unwrap();
    let mut want: Vec<&str> =
        eval_scores.lines().skip(1).filter(|l| with.iter().any(|f| l.starts_with(f.as_str()))).collect();
    let mut got: Vec<&str> = scored.lines().skip(1).collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want, "avm score and avm evaluate disagree on units with a baseline");

    // A recording of a unit without a baseline in the detector is refused, naming the unit.
    let all_units: Vec<String> =
        (1..=2).flat_map(|a| (1..=2).map(move |e| format!("AC0{a}/AC0{a}-E{e}"))).collect();
    if let Some(u) = all_units.iter().find(|u| !b.units.contains_key(*u)) {
        let ac = &u[..4];
        let e = &u[u.len() - 2..];
        let rec = std::fs::read_dir(a.join("DATA/raw/recordings"))
            .unwrap()
            .filter_map(|d| d.ok())
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with(ac) && n.ends_with(&format!("-{e}.parquet")))
            .unwrap();
        let out = avm(
            a,
            &["score", "--model", "small@1.0.0", "--out", "scored2", &format!("DATA/raw/recordings/{rec}")],
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(u.as_str()) && err.contains("has no baseline"), "{err}");
        assert!(!a.join("scored2").exists(), "nothing written");
    }
    let _ = without;
}

#[test]
fn baseline_config_is_checked_in_the_users_words() {
    let tmp = tempfile::tempdir().unwrap();
    for (edit, want) in [
        ("baseline: {by: flight}", "baseline.by"),
        ("baseline: {by: engine, min_windows: 1}", "baseline.min_windows = 1"),
        ("baseline: {by: engine, commission_flights: 5000}", "baseline.commission_flights = 5000"),
        ("baseline: {by: engine, typo: 3}", "typo"),
    ] {
        common::write_small_config_text(tmp.path(), |t| format!("{t}{edit}\n"));
        let out = avm(tmp.path(), &["validate", "--config", "c.yaml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{edit}: {err}");
        assert!(err.contains("c.yaml"), "names the file: {err}");
    }
}
