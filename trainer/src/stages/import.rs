//! `avm import`: real recordings from MATLAB files (the CWRU bearing data set) into the
//! recording format, with labels from the data set's manifest.
//!
//! Each MAT file becomes one recording (or, with `split_s`, one per consecutive block of that
//! length, so a single long healthy record can be split by time into several "flights"):
//! - `vib_de` (and `vib_fe` where present): the drive-end (fan-end) accelerometer, g, at the
//!   manifest's `fs_hz`;
//! - `shaft_rpm`: the constant shaft speed (the file's `XnnnRPM`, else the manifest's
//!   `rpm_nominal`) as a 10 Hz channel;
//! - no phase channel (a test rig has no flight phases).
//!
//! A faulty file's label covers the whole recording: `fault_type` = `bearing_<type>`
//! (`bearing_inner_race`, `bearing_ball`, `bearing_outer_race`), severity = fault diameter in
//! inches, category `engine`. Every file is checked against the manifest's sha256 first.

use crate::error::{ContractViolations, Violation};
use crate::formats::contract::FaultCategory;
use crate::formats::labels::LabelInterval;
use crate::formats::matfile;
use crate::formats::recording::{
    ChannelData, ChannelMeta, FORMAT, FORMAT_VERSION, Recording, RecordingMeta, Samples,
};
use std::path::{Path, PathBuf};

/// Highest sample rate a manifest may declare, Hz.
pub const MAX_FS_HZ: f64 = 10_000_000.0;

/// Rate of the synthesised constant speed channel, Hz.
pub const SPEED_RATE_HZ: f64 = 10.0;

/// One manifest row.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestRow {
    /// File path relative to the manifest.
    pub file: String,
    /// Record number.
    pub record_no: u32,
    /// Sample rate, Hz.
    pub fs_hz: f64,
    /// `healthy` or `faulty`.
    pub label: String,
    /// `inner_race`, `ball`, `outer_race` (empty for healthy).
    pub fault_type: String,
    /// Fault diameter, inches (0 for healthy).
    pub fault_diameter_in: f64,
    /// Nominal speed, rpm.
    pub rpm_nominal: f64,
    /// sha256 of the file.
    pub sha256: String,
    /// Line in the manifest.
    pub line: usize,
}

/// Reads a CWRU-style manifest (`file,record_no,fs_hz,label,...,sha256` with a header).
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, ContractViolations> {
    let bad = |loc: String, d: String| -> ContractViolations {
        Violation::new(path, loc, "manifest.format", d).into()
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(String::new(), format!("cannot read: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = crate::formats::recording::csv_reader(text);
    let header = crate::formats::recording::csv_header(path, "manifest.format", &mut reader)?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| bad("line 1".into(), format!("no column {name:?}")))
    };
    let (cf, cr, cfs, cl, ct, cd, crpm, csha) = (
        col("file")?,
        col("record_no")?,
        col("fs_hz")?,
        col("label")?,
        col("fault_type")?,
        col("fault_diameter_in")?,
        col("rpm_nominal")?,
        col("sha256")?,
    );
    let mut out = Vec::new();
    for rec in reader.records() {
        let f = rec.map_err(|e| crate::formats::recording::csv_violation(path, "manifest.format", e))?;
        let lineno = f.position().map_or(0, |p| p.line() as usize);
        let num = |k: usize, name: &str| -> Result<f64, ContractViolations> {
            if f[k].is_empty() {
                return Ok(0.0);
            }
            f[k].parse()
                .map_err(|_| bad(format!("line {lineno}, {name}"), format!("{:?} is not a number", &f[k])))
        };
        let record_no = f[cr].parse::<u32>().map_err(|_| {
            bad(
                format!("line {lineno}, record_no"),
                format!("{:?} is not a whole number from 0 to {}", &f[cr], u32::MAX),
            )
        })?;
        let fs_hz = num(cfs, "fs_hz")?;
        if !(fs_hz.is_finite() && fs_hz > 0.0 && fs_hz <= MAX_FS_HZ) || f[cfs].is_empty() {
            return Err(bad(
                format!("line {lineno}, fs_hz"),
                format!("{:?} must be a sample rate in Hz, a number > 0 and <= {MAX_FS_HZ}", &f[cfs]),
            ));
        }
        for (k, name) in [(cd, "fault_diameter_in"), (crpm, "rpm_nominal")] {
            let v = num(k, name)?;
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(
                    format!("line {lineno}, {name}"),
                    format!("{:?} must be a finite number >= 0", &f[k]),
                ));
            }
        }
        if !matches!(&f[cl], "healthy" | "faulty") {
            return Err(bad(
                format!("line {lineno}, label"),
                format!("{:?} must be healthy or faulty", &f[cl]),
            ));
        }
        out.push(ManifestRow {
            file: f[cf].to_string(),
            record_no,
            fs_hz,
            label: f[cl].to_string(),
            fault_type: f[ct].to_string(),
            fault_diameter_in: num(cd, "fault_diameter_in")?,
            rpm_nominal: num(crpm, "rpm_nominal")?,
            sha256: f[csha].to_string(),
            line: lineno,
        });
    }
    Ok(out)
}

/// Converts one manifest row's file into recordings and labels.
pub fn import_one(
    manifest_dir: &Path,
    row: &ManifestRow,
    split_s: Option<f64>,
) -> Result<Vec<(Recording, Vec<LabelInterval>)>, ContractViolations> {
    let path: PathBuf = manifest_dir.join(&row.file);
    let bad =
        |rule: &'static str, d: String| -> ContractViolations { Violation::new(&path, "", rule, d).into() };
    let bytes = std::fs::read(&path).map_err(|e| bad("file.present", format!("cannot read: {e}")))?;
    let digest = crate::io::sha256_hex(&bytes);
    if !row.sha256.is_empty() && digest != row.sha256 {
        return Err(bad(
            "file.checksum",
            format!("sha256 {digest} differs from the manifest's {} (line {})", row.sha256, row.line),
        ));
    }
    let vars = matfile::read(&bytes).map_err(|e| bad("file.format", e.to_string()))?;
    let find = |suffix: &str| vars.iter().find(|v| v.name.ends_with(suffix));
    let de = find("_DE_time").ok_or_else(|| bad("channel.present", "no *_DE_time variable".into()))?;
    let fe = find("_FE_time");
    let rpm =
        find("RPM").and_then(|v| v.data.first().copied()).filter(|r| *r > 0.0).unwrap_or(row.rpm_nominal);
    if rpm.is_nan() || rpm <= 0.0 {
        return Err(bad("channel.present", "no RPM variable and no rpm_nominal in the manifest".into()));
    }
    let fs = row.fs_hz;
    if let Some(s) = split_s
        && !(s.is_finite() && s > 0.0)
    {
        return Err(bad("import.split_s", format!("--split-s {s} must be a number of seconds > 0")));
    }
    let n_total = de.data.len();
    let block = split_s.map(|s| (s * fs).round() as usize).filter(|&b| b > 0).unwrap_or(n_total);
    let blocks = if split_s.is_some() { n_total / block } else { 1 };
    if blocks == 0 {
        return Err(bad(
            "recording.duration",
            format!("{n_total} samples, shorter than one split block of {block}"),
        ));
    }
    let mut out = Vec::new();
    for b in 0..blocks {
        let (a, z) = (b * block, if split_s.is_some() { (b + 1) * block } else { n_total });
        let n = z - a;
        let flight_id = if split_s.is_some() {
            format!("CWRU-{:03}-b{b:02}", row.record_no)
        } else {
            format!("CWRU-{:03}", row.record_no)
        };
        let times: Vec<f64> = (0..n).map(|i| i as f64 / fs).collect();
        let n_speed = ((n as f64 / fs) * SPEED_RATE_HZ).floor().max(1.0) as usize;
        let speed_times: Vec<f64> = (0..n_speed).map(|k| k as f64 / SPEED_RATE_HZ).collect();
        let mut channels =
            vec![ChannelMeta { name: "vib_de".into(), unit: "g".into(), sample_rate_hz: fs, start_s: 0.0 }];
        let mut data = vec![ChannelData {
            times_s: times.clone(),
            samples: Samples::Numeric(de.data[a..z].iter().map(|&x| x as f32).collect()),
            rows: (0..n as u32).collect(),
        }];
        if let Some(fe) = fe.filter(|f| f.data.len() >= z) {
            channels.push(ChannelMeta {
                name: "vib_fe".into(),
                unit: "g".into(),
                sample_rate_hz: fs,
                start_s: 0.0,
            });
            data.push(ChannelData {
                times_s: times.clone(),
                samples: Samples::Numeric(fe.data[a..z].iter().map(|&x| x as f32).collect()),
                rows: (0..n as u32).collect(),
            });
        }
        channels.push(ChannelMeta {
            name: "shaft_rpm".into(),
            unit: "rpm".into(),
            sample_rate_hz: SPEED_RATE_HZ,
            start_s: 0.0,
        });
        data.push(ChannelData {
            rows: vec![0; n_speed],
            times_s: speed_times,
            samples: Samples::Numeric(vec![rpm as f32; n_speed]),
        });
        let rec = Recording {
            meta: RecordingMeta {
                format: FORMAT.into(),
                format_version: FORMAT_VERSION,
                aircraft_id: "CWRU-rig".into(),
                engine_id: "CWRU-motor".into(),
                flight_id: flight_id.clone(),
                source: format!(
                    "CWRU record {} ({}), samples {a}..{z}, sha256 {digest}",
                    row.record_no, row.file
                ),
                channels,
                content_crc32: None,
            },
            data,
            path: PathBuf::new(),
        };
        let labels = if row.label == "faulty" {
            vec![LabelInterval {
                flight_id,
                start_s: 0.0,
                end_s: (n - 1) as f64 / fs,
                fault_type: format!("bearing_{}", row.fault_type),
                category: FaultCategory::Engine,
                severity: row.fault_diameter_in,
                row: 0,
            }]
        } else {
            Vec::new()
        };
        out.push((rec, labels));
    }
    Ok(out)
}

/// Imports the manifest's files (those at `fs_hz` if given, and among `records` if given) into
/// `out` (`recordings/*.parquet`, `labels.csv`), replacing it atomically. Returns the number of
/// recordings written.
pub fn run(
    manifest: &Path,
    out: &Path,
    fs_hz: Option<f64>,
    records: &[u32],
    split_s: Option<f64>,
    force: bool,
) -> anyhow::Result<usize> {
    if !force && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        anyhow::bail!(crate::error::UsageError(format!(
            "{} is not empty: importing would replace its recordings and labels (pass --force to replace them)",
            out.display()
        )));
    }
    let rows = read_manifest(manifest)?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let chosen: Vec<&ManifestRow> = rows
        .iter()
        .filter(|r| fs_hz.is_none_or(|f| r.fs_hz == f))
        .filter(|r| records.is_empty() || records.contains(&r.record_no))
        .collect();
    anyhow::ensure!(
        !chosen.is_empty(),
        crate::error::UsageError(format!("no manifest row of {} matches the filters", manifest.display()))
    );
    crate::io::replace_dir_atomic(out, |staging| {
        let mut labels = Vec::new();
        let mut count = 0;
        for row in chosen {
            for (rec, l) in import_one(dir, row, split_s)? {
                let dest = crate::ids::file_in(
                    &staging.join("recordings"),
                    "flight_id",
                    &rec.meta.flight_id,
                    ".parquet",
                )
                .map_err(crate::error::UsageError)?;
                crate::formats::recording::write_parquet(&rec, &dest)?;
                labels.extend(l);
                count += 1;
            }
        }
        crate::formats::labels::write(&staging.join(crate::layout::LABELS_CSV), &labels)?;
        Ok(count)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_a_built_file_and_checks_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let de: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.1).sin()).collect();
        let bytes = matfile::tests::build(&[("X042_DE_time", &de), ("X042RPM", &[1750.0])]);
        std::fs::write(dir.path().join("f.mat"), &bytes).unwrap();
        let row = ManifestRow {
            file: "f.mat".into(),
            record_no: 42,
            fs_hz: 100.0,
            label: "faulty".into(),
            fault_type: "ball".into(),
            fault_diameter_in: 0.007,
            rpm_nominal: 1797.0,
            sha256: crate::io::sha256_hex(&bytes),
            line: 2,
        };
        let out = import_one(dir.path(), &row, Some(4.0)).unwrap();
        assert_eq!(out.len(), 2); // 10 s in blocks of 4 s
        let (rec, labels) = &out[1];
        assert_eq!(rec.meta.flight_id, "CWRU-042-b01");
        let (_, t, x) = rec.numeric("vib_de").unwrap();
        assert_eq!(x.len(), 400);
        assert_eq!(x[0], de[400] as f32);
        assert_eq!(t[1], 0.01);
        assert_eq!(rec.numeric("shaft_rpm").unwrap().2[0], 1750.0);
        assert_eq!(labels[0].fault_type, "bearing_ball");
        let wrong = ManifestRow { sha256: "00".repeat(32), ..row };
        let e = import_one(dir.path(), &wrong, None).unwrap_err().to_string();
        assert!(e.contains("f.mat") && e.contains("differs from the manifest"), "{e}");
    }
}
