//! The committed seeds (`fuzz/corpus/<target>/`), made by `avm-fuzz --make-seeds` from avm's
//! own writers and the repository's configs, except `matfile/ok-scipy.mat`, which
//! `fuzz/make_mat_seed.py` writes with scipy (an independent MAT writer). Seeds named `ok-*`
//! must be accepted by their target, `bad-*` refused (the corpus test checks both).

use anyhow::{Context, Result};
use avm_trainer::formats::recording::{
    self, ChannelData, ChannelMeta, FORMAT, FORMAT_VERSION, Recording, RecordingMeta, Samples,
};
use std::path::{Path, PathBuf};

fn small_recording() -> Recording {
    let ch = |name: &str, unit: &str, rate: f64| ChannelMeta {
        name: name.into(),
        unit: unit.into(),
        sample_rate_hz: rate,
        start_s: 0.0,
    };
    let n = 48;
    let vib: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
    Recording {
        meta: RecordingMeta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            aircraft_id: "AC01".into(),
            engine_id: "AC01-E1".into(),
            flight_id: "AC01-F0001-E1".into(),
            source: "fuzz seed".into(),
            channels: vec![ch("vib_fan", "g", 16.0), ch("n1_rpm", "rpm", 2.0), ch("phase", "-", 1.0)],
            content_crc32: None,
            attributes: Default::default(),
        },
        data: vec![
            ChannelData {
                times_s: (0..n).map(|i| i as f64 / 16.0).collect(),
                samples: Samples::Numeric(vib),
                rows: Vec::new(),
            },
            ChannelData {
                times_s: (0..6).map(|i| i as f64 / 2.0).collect(),
                samples: Samples::Numeric(vec![1000.0, 1010.0, 1020.0, 1030.0, 1040.0, 1050.0]),
                rows: Vec::new(),
            },
            ChannelData {
                times_s: vec![0.0, 1.0, 2.0],
                samples: Samples::Text(vec!["taxi".into(), "taxi".into(), "takeoff".into()]),
                rows: Vec::new(),
            },
        ],
        path: PathBuf::new(),
    }
}

fn put(root: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = root.join("corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes).with_context(|| format!("writing seed {target}/{name}"))
}

/// Writes every seed under `root/corpus/`.
pub fn make(root: &Path, repo: &Path) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let rec = small_recording();
    let p = tmp.path().join("r.parquet");
    recording::write_parquet(&rec, &p)?;
    put(root, "recording_parquet", "ok-small.parquet", &std::fs::read(&p)?)?;
    let c = tmp.path().join("r.csv");
    recording::write_csv(&rec, &c)?;
    let mut csv = std::fs::read(&c)?;
    csv.push(0);
    csv.extend(std::fs::read(recording::csv_meta_path(&c))?);
    put(root, "recording_csv", "ok-small.csv", &csv)?;

    put(
        root,
        "labels",
        "ok-labels.csv",
        format!(
            "{}\nAC01-F0001-E1,10.0,20.0,bearing_wear,engine,0.5\nAC01-F0001-E1,12.0,13.0,sensor_spike,sensor,1.0\n",
            avm_trainer::formats::labels::HEADER
        )
        .as_bytes(),
    )?;
    for (name, file) in
        [("ok-cwru.yaml", "configs/import/cwru.yaml"), ("ok-femto.yaml", "configs/import/femto.yaml")]
    {
        put(root, "import_mapping", name, &std::fs::read(repo.join(file))?)?;
    }
    let femto = std::fs::read_to_string(
        repo.join("../shared/datasets/femto-pronostia/Learning_set/Bearing1_1/acc_00001.csv"),
    )
    .context("reading a FEMTO snapshot (../shared/datasets)")?;
    let head: Vec<&str> = femto.lines().take(6).collect();
    put(root, "foreign_csv", "ok-femto-head.csv", (head.join("\n") + "\n").as_bytes())?;
    put(root, "foreign_csv", "ok-header.csv", b"time_s,phase,acc_x\n0,cruise,0.5\n0.01,cruise,\n")?;
    put(root, "foreign_csv", "bad-text-in-number.csv", b"time_s,phase,acc_x\n0,cruise,zero\n")?;
    for (name, file) in [
        ("ok-engine_vibration.yaml", "configs/engine_vibration_config.yaml"),
        ("ok-cwru.yaml", "configs/cwru_config.yaml"),
    ] {
        put(root, "pipeline_config", name, &std::fs::read(repo.join(file))?)?;
    }
    for (name, file) in [
        ("ok-engine_vibration.yaml", "configs/contracts/engine_vibration.yaml"),
        ("ok-cwru_bearing_48k.yaml", "configs/contracts/cwru_bearing_48k.yaml"),
    ] {
        put(root, "contract", name, &std::fs::read(repo.join(file))?)?;
    }
    put(
        root,
        "bundle",
        "ok-detector.avmb",
        &std::fs::read(repo.join("firmware-example/data/detector.avmb"))?,
    )?;

    // A checkpoint after two epochs of a 4-3-4 autoencoder (Adam state present).
    use avm_trainer::config::{Activation, TrainConfig};
    use avm_trainer::stages::train;
    let tcfg = TrainConfig {
        hidden: vec![3],
        activation: Activation::Relu,
        learning_rate: 0.01,
        batch_size: 4,
        max_epochs: 2,
        patience: 5,
        seed: 1,
        keep_epochs: 0,
        lr_schedule: None,
    };
    let rows: Vec<Vec<f32>> =
        (0..12).map(|i| (0..4).map(|j| ((i * 4 + j) as f32 * 0.37).sin()).collect()).collect();
    let names: Vec<String> = (0..4).map(|j| format!("f{j}")).collect();
    let mut log = avm_trainer::tracking::MetricLog::open(&tmp.path().join("m.jsonl"), None)?;
    let m = train::Matrices { train: &rows[..8], val: &rows[8..] };
    train::fit(&tcfg, &names, m, tmp.path(), (None, None), &mut log)?;
    put(root, "checkpoint", "ok-last.json", &std::fs::read(tmp.path().join(train::LAST))?)?;
    Ok(())
}
