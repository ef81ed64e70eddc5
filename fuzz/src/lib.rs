//! Fuzz targets for every parser of untrusted bytes, and a small mutation engine that drives
//! them on the pinned stable toolchain.
//!
//! # Why not cargo-fuzz / libFuzzer
//! cargo-fuzz needs a nightly toolchain (sanitizer flags); CI and README's test command use the
//! pinned stable one. This engine is seeded and deterministic: the same seed and corpus give
//! the same inputs. It is not coverage-guided: it mutates the committed seeds (valid files of
//! every format and the crashers found so far) with byte-level and token-level mutations that
//! reach the parsers' checks (lengths, numbers, keys). Each target's contract: any input
//! returns `Ok` or a typed error; a panic is a bug (the driver records the input).
//!
//! Targets that read a file write the input to a temporary file first (the parsers take
//! paths, as the CLI does).

use std::path::Path;

/// A fuzz target: runs one input through a parser. `Err` is a refusal (fine), a panic a bug.
pub struct Target {
    /// Name (also the corpus sub-directory).
    pub name: &'static str,
    /// What it parses.
    pub what: &'static str,
    /// The function.
    pub run: fn(&[u8], &Path) -> Result<(), String>,
}

fn write(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("writing a fuzz input to the scratch directory");
    p
}

/// Splits `data` at the first NUL byte: (before, after); all of it and nothing without one.
fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn recording_csv(data: &[u8], dir: &Path) -> Result<(), String> {
    // Input = CSV text, NUL, sidecar JSON.
    let (csv, meta) = split_nul(data);
    let p = write(dir, "r.csv", csv);
    write(dir, "r.csv.meta.json", meta);
    avm_trainer::formats::recording::read(&p).map(drop).map_err(|e| e.to_string())
}

fn recording_parquet(data: &[u8], dir: &Path) -> Result<(), String> {
    let p = write(dir, "r.parquet", data);
    avm_trainer::formats::recording::read(&p).map(drop).map_err(|e| e.to_string())
}

fn labels(data: &[u8], dir: &Path) -> Result<(), String> {
    let p = write(dir, "labels.csv", data);
    avm_trainer::formats::labels::read(&p).map(drop).map_err(|e| e.to_string())
}

fn matfile(data: &[u8], _dir: &Path) -> Result<(), String> {
    avm_trainer::formats::matfile::read(data).map(drop).map_err(|e| e.to_string())
}

fn import_mapping(data: &[u8], dir: &Path) -> Result<(), String> {
    let p = write(dir, "import.yaml", data);
    let m = avm_trainer::formats::mapping::Mapping::load(&p).map_err(|e| e.to_string())?;
    // Every template of a loaded mapping must fill in (or refuse) without panicking.
    let row: std::collections::BTreeMap<String, String> =
        [("file", "a.csv"), ("fs_hz", "100"), ("label", "healthy")].map(|(a, b)| (a.into(), b.into())).into();
    let none = Default::default();
    let first = m.first_sources().into_iter().map(|k| (k, Some(1.0))).collect();
    let scope = avm_trainer::formats::mapping::Scope {
        manifest: Some(&row),
        captures: &none,
        file: Path::new("a.csv"),
        first: &first,
        block: Some(1),
    };
    let _ = scope.render(&m.ids.flight_id, |s| Ok::<_, String>(s.to_string()));
    Ok(())
}

fn foreign_csv(data: &[u8], dir: &Path) -> Result<(), String> {
    use avm_trainer::formats::foreign::{Kind, read};
    use avm_trainer::formats::mapping::{CsvSpec, InputFormat, SourceRef};
    let p = write(dir, "input.csv", data);
    let wanted = [
        (SourceRef::Position(1), Kind::Numeric),
        (SourceRef::Position(2), Kind::Text),
        (SourceRef::Name("acc_*".into()), Kind::Numeric),
    ];
    let header = data.first().is_none_or(|b| !b.is_ascii_digit());
    read(&p, InputFormat::Csv, &CsvSpec { header, ..CsvSpec::default() }, &wanted)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn pipeline_config(data: &[u8], dir: &Path) -> Result<(), String> {
    let p = write(dir, "config.yaml", data);
    avm_trainer::config::PipelineConfig::load(&p).map(drop).map_err(|e| format!("{e:#}"))
}

fn contract(data: &[u8], dir: &Path) -> Result<(), String> {
    let p = write(dir, "contract.yaml", data);
    avm_trainer::formats::contract::Contract::load(&p).map(drop).map_err(|e| format!("{e:#}"))
}

fn checkpoint(data: &[u8], dir: &Path) -> Result<(), String> {
    let p = write(dir, "ck.json", data);
    avm_trainer::model::checkpoint::Checkpoint::load(&p).map(drop).map_err(|e| format!("{e:#}"))
}

fn bundle(data: &[u8], _dir: &Path) -> Result<(), String> {
    // Mutations would almost never keep the CRC right: fix it up, so the fuzzer reaches the
    // checks behind it (the CRC check itself is covered by the unfixed half of the inputs).
    let mut b = data.to_vec();
    if b.len() >= 8 && b[0] & 1 == 0 {
        let n = b.len() - 4;
        let crc = avm_core::bundle::crc32(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
    }
    match avm_core::Detector::parse(&b) {
        Ok(d) => {
            // A parsed detector must also score, and walk its phase table, without panicking.
            let x = vec![0.5f32; d.features()];
            let _ = d.score(&x);
            let _ = d.score(&x[..x.len() / 2]);
            for i in 0..d.phase_count() + 1 {
                let _ = d.phase(i);
                let _ = d.judge(0, 1.0, true, i as u8);
            }
            let _ = d.judge(0, f32::NAN, true, 255);
            let _ = d.threshold_for_phase("cruise");
            // Its alert policy was checked at parse: a state machine must build from it.
            avm_core::Alerter::new(d.alert_policy())
                .map_err(|e| format!("parsed bundle, bad policy: {e}"))?;
            Ok(())
        }
        Err(e) => Err(format!("{e}")),
    }
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "recording_csv",
        what: "CSV recording + .meta.json sidecar (split at NUL)",
        run: recording_csv,
    },
    Target {
        name: "recording_parquet",
        what: "Parquet recording with avm.recording metadata",
        run: recording_parquet,
    },
    Target { name: "labels", what: "labels.csv", run: labels },
    Target { name: "matfile", what: "MATLAB level-5 MAT file", run: matfile },
    Target { name: "import_mapping", what: "import mapping YAML", run: import_mapping },
    Target { name: "foreign_csv", what: "CSV input of avm import", run: foreign_csv },
    Target { name: "pipeline_config", what: "pipeline config YAML", run: pipeline_config },
    Target { name: "contract", what: "data contract YAML", run: contract },
    Target { name: "checkpoint", what: "training checkpoint JSON", run: checkpoint },
    Target { name: "bundle", what: "detector bundle (detector.avmb)", run: bundle },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Runs `input` through `t`, turning a panic into `Err(Some(message))`; a refusal is
/// `Ok(Err(..))`. The panic hook should be silenced by the caller while fuzzing.
pub fn run_caught(t: &Target, input: &[u8], dir: &Path) -> Result<Result<(), String>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (t.run)(input, dir))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

/// The seeds and crashers of one target: `<root>/corpus/<target>/*` and
/// `<root>/crashers/<target>/*`, sorted by path.
pub fn corpus(root: &Path, target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["corpus", "crashers"] {
        let Ok(rd) = std::fs::read_dir(root.join(sub).join(target)) else { continue };
        for e in rd.filter_map(|e| e.ok()) {
            if e.file_type().is_ok_and(|t| t.is_file())
                && let Ok(b) = std::fs::read(e.path())
            {
                out.push((e.path(), b));
            }
        }
    }
    out.sort();
    out
}

pub mod mutate;
pub mod seeds;
