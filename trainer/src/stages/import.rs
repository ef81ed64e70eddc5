//! `avm import`: other people's recordings (CSV, Parquet, MATLAB v5/v7, WAV) into avm
//! recordings and labels, as an import mapping says ([`crate::formats::mapping`]; README, "Your
//! own data"; `configs/import/` holds the CWRU and FEMTO mappings).
//!
//! Per input file: its manifest row is looked up (and its sha256 checked), the columns the
//! mapping names are read ([`crate::formats::foreign`]), the labels state decides whether it is
//! imported at all (`skip`), then the file becomes one recording, or one per block with `split`.
//! Each recording's time axis starts at 0 at its first row. Numeric channels are scaled
//! (`scale`, `offset`) and stored as f32; the speed and phase channels are sampled at their own
//! `rate_hz` (the value at the nearest row; tachometer pulses become rpm first). Output goes to
//! `<out>/recordings/<flight_id>.parquet`, `<out>/labels.csv` and `<out>/import.json` (what was
//! imported from which file with which sha256), replacing `<out>` atomically: an import that
//! fails leaves the previous one in place.

use crate::error::{ContractViolations, UsageError, Violation};
use crate::formats::foreign::{self, Column, Kind, Table};
use crate::formats::labels::LabelInterval;
use crate::formats::mapping::{LabelValue, Mapping, Scope, SourceRef, ValueSpec, number};
use crate::formats::recording::{
    ChannelData, ChannelMeta, FORMAT, FORMAT_VERSION, Recording, RecordingMeta, Samples,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Highest sample rate accepted, Hz.
pub const MAX_FS_HZ: f64 = 10_000_000.0;

/// Command-line choices that add to the mapping.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The manifest (overrides `manifest.path`).
    pub manifest: Option<PathBuf>,
    /// `COLUMN=V1,V2` manifest filters (added to `manifest.where`).
    pub filters: Vec<String>,
    /// Block length, s (overrides `split`).
    pub split_s: Option<f64>,
    /// Replace a non-empty output directory.
    pub force: bool,
}

/// What an import did.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Summary {
    /// The mapping file.
    pub mapping: String,
    /// Input files read.
    pub files: usize,
    /// Files whose label state was `skip`.
    pub skipped: usize,
    /// Recordings written.
    pub recordings: usize,
    /// Label intervals written.
    pub labels: usize,
    /// Per input file: path, sha256, recordings made from it.
    pub sources: Vec<SourceFile>,
}

/// One input file.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct SourceFile {
    /// Path as given (or as listed in the manifest).
    pub file: String,
    /// sha256 of its bytes.
    pub sha256: String,
    /// Recordings made from it (empty when skipped).
    pub flight_ids: Vec<String>,
}

fn violation(
    path: &Path,
    loc: impl Into<String>,
    rule: &'static str,
    d: impl Into<String>,
) -> ContractViolations {
    Violation::new(path, loc, rule, d).into()
}

/// A manifest: rows keyed by the canonical path of their file.
struct Manifest {
    path: PathBuf,
    rows: Vec<(PathBuf, String, BTreeMap<String, String>, usize)>,
}

fn read_manifest(
    path: &Path,
    file_column: &str,
    filters: &[(String, Vec<String>)],
) -> Result<Manifest, ContractViolations> {
    let bad = |loc: String, d: String| violation(path, loc, "manifest.format", d);
    let text = std::fs::read_to_string(path).map_err(|e| bad(String::new(), format!("cannot read: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = crate::formats::recording::csv_reader(text);
    let header = crate::formats::recording::csv_header(path, "manifest.format", &mut reader)?;
    let fc = header
        .iter()
        .position(|h| h == file_column)
        .ok_or_else(|| bad("line 1".into(), format!("no column {file_column:?} (manifest.file_column)")))?;
    for (col, _) in filters {
        if !header.iter().any(|h| h == col) {
            return Err(bad("line 1".into(), format!("no column {col:?} to filter on (where)")));
        }
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| crate::formats::recording::csv_violation(path, "manifest.format", e))?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let row: BTreeMap<String, String> =
            header.iter().cloned().zip(rec.iter().map(str::to_string)).collect();
        if !filters.iter().all(|(c, vals)| vals.iter().any(|v| row.get(c) == Some(v))) {
            continue;
        }
        let rel = &rec[fc];
        if rel.is_empty() {
            return Err(bad(format!("line {line}, {file_column}"), "empty file path".into()));
        }
        let full = crate::io::resolve(dir, Path::new(rel));
        rows.push((canonical(&full), rel.to_string(), row, line));
    }
    Ok(Manifest { path: path.to_path_buf(), rows })
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn parse_filters(m: &Mapping, cli: &[String]) -> Result<Vec<(String, Vec<String>)>, UsageError> {
    let mut out: Vec<(String, Vec<String>)> = m
        .manifest
        .as_ref()
        .map(|s| s.filter.iter().map(|(k, v)| (k.clone(), v.texts())).collect())
        .unwrap_or_default();
    for f in cli {
        let (k, v) = f
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| UsageError(format!("--where {f:?} must be COLUMN=VALUE[,VALUE...]")))?;
        out.push((k.to_string(), v.split(',').map(str::to_string).collect()));
    }
    Ok(out)
}

/// The input files: the command line's files and globs, or every (filtered) manifest row.
fn inputs(patterns: &[String], manifest: Option<&Manifest>) -> Result<Vec<PathBuf>, UsageError> {
    if patterns.is_empty() {
        let m = manifest.ok_or_else(|| {
            UsageError("no input files: name files or globs, or give the mapping a manifest".into())
        })?;
        let dir = m.path.parent().unwrap_or(Path::new(""));
        return Ok(m.rows.iter().map(|r| crate::io::resolve(dir, Path::new(&r.1))).collect());
    }
    let mut out = Vec::new();
    for p in patterns {
        if Path::new(p).exists() {
            out.push(PathBuf::from(p));
            continue;
        }
        let hits: Vec<PathBuf> = glob::glob(p)
            .map_err(|e| UsageError(format!("input {p:?}: not a file and not a valid glob: {e}")))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        if hits.is_empty() {
            return Err(UsageError(format!("input {p:?}: no such file, and no file matches it as a glob")));
        }
        out.extend(hits);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Imports `patterns` (files or globs; none = every manifest row) with `mapping` into `out`.
pub fn run(mapping: &Mapping, patterns: &[String], out: &Path, opts: &Options) -> anyhow::Result<Summary> {
    if !opts.force && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        anyhow::bail!(UsageError(format!(
            "{} is not empty: importing would replace its recordings and labels (pass --force to replace them)",
            out.display()
        )));
    }
    if let Some(s) = opts.split_s
        && !(s.is_finite() && s > 0.0)
    {
        anyhow::bail!(UsageError(format!("--split-s {s} must be a number of seconds > 0")));
    }
    let filters = parse_filters(mapping, &opts.filters)?;
    let manifest = match (&mapping.manifest, &opts.manifest) {
        (None, Some(_)) => {
            anyhow::bail!(UsageError("--manifest given but the mapping has no manifest: section".into()))
        }
        (None, None) => None,
        (Some(spec), cli) => {
            let path = match (cli, &spec.path) {
                (Some(p), _) => p.clone(),
                (None, Some(p)) => crate::io::resolve(mapping.dir(), p),
                (None, None) => anyhow::bail!(UsageError(format!(
                    "mapping {}: manifest.path is not set: pass --manifest",
                    mapping.path.display()
                ))),
            };
            Some(read_manifest(&path, &spec.file_column, &filters)?)
        }
    };
    if manifest.is_none() && !filters.is_empty() {
        anyhow::bail!(UsageError("--where filters manifest rows, but the mapping has no manifest".into()));
    }
    let files = inputs(patterns, manifest.as_ref())?;
    if files.is_empty() {
        anyhow::bail!(UsageError("no manifest row matches the filters".into()));
    }
    let by_path: HashMap<&Path, usize> = manifest
        .as_ref()
        .map(|m| m.rows.iter().enumerate().map(|(i, r)| (r.0.as_path(), i)).collect())
        .unwrap_or_default();
    let mut made: Vec<(Recording, Vec<LabelInterval>)> = Vec::new();
    let mut sources = Vec::new();
    let mut skipped = 0;
    let mut owner: HashMap<String, PathBuf> = HashMap::new();
    for file in &files {
        let row = match &manifest {
            None => None,
            Some(m) => {
                let i = by_path.get(canonical(file).as_path()).copied().ok_or_else(|| {
                    violation(
                        file,
                        "",
                        "import.manifest",
                        format!("not listed in the manifest {} (or filtered out by where)", m.path.display()),
                    )
                })?;
                Some(&m.rows[i])
            }
        };
        let (digest, recs) = import_file(mapping, file, row.map(|r| (&r.2, r.3)), opts.split_s)?;
        let ids: Vec<String> = recs.iter().map(|(r, _)| r.meta.flight_id.clone()).collect();
        if recs.is_empty() {
            skipped += 1;
        }
        for id in &ids {
            if let Some(prev) = owner.insert(id.clone(), file.clone()) {
                return Err(violation(
                    file,
                    "",
                    "import.ids",
                    format!(
                        "flight_id {id:?} is also made from {}: ids.flight_id must give each recording its own id",
                        prev.display()
                    ),
                )
                .into());
            }
        }
        sources.push(SourceFile { file: file.display().to_string(), sha256: digest, flight_ids: ids });
        made.extend(recs);
    }
    let mut labels: Vec<LabelInterval> = made.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
    if let Some(lf) = mapping.labels.as_ref().and_then(|l| l.file.as_ref()) {
        let lf = crate::io::resolve(mapping.dir(), lf);
        labels.extend(
            crate::formats::labels::read(&lf)?.into_iter().filter(|l| owner.contains_key(&l.flight_id)),
        );
    }
    let summary = Summary {
        mapping: mapping.path.display().to_string(),
        files: files.len(),
        skipped,
        recordings: made.len(),
        labels: labels.len(),
        sources,
    };
    if made.is_empty() {
        anyhow::bail!(UsageError(format!(
            "nothing to import: all {} files were skipped by labels.values",
            files.len()
        )));
    }
    crate::io::replace_dir_atomic(out, |staging| {
        for (rec, _) in &made {
            let dest = crate::ids::file_in(
                &staging.join("recordings"),
                "flight_id",
                &rec.meta.flight_id,
                ".parquet",
            )
            .map_err(UsageError)?;
            crate::formats::recording::write_parquet(rec, &dest)?;
        }
        crate::formats::labels::write(&staging.join(crate::layout::LABELS_CSV), &labels)?;
        crate::io::write_atomic(&staging.join("import.json"), |w| {
            serde_json::to_writer_pretty(&mut *w, &summary)?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(summary)
}

/// The columns a mapping reads from each file: (source, kind).
fn requests(m: &Mapping) -> Vec<(SourceRef, Kind)> {
    let mut w: Vec<(SourceRef, Kind)> = m.channels.iter().map(|c| (c.from.clone(), Kind::Numeric)).collect();
    if let Some(s) = &m.speed {
        if let Some(f) = &s.from {
            w.push((f.clone(), Kind::Numeric));
        }
        if let Some(t) = &s.tach {
            w.push((t.from.clone(), Kind::Numeric));
        }
    }
    if let Some(f) = m.phase.as_ref().and_then(|p| p.from.as_ref()) {
        w.push((f.clone(), Kind::Text));
    }
    if let Some(c) = m.labels.as_ref().and_then(|l| l.column.as_ref()) {
        w.push((c.clone(), Kind::Text));
    }
    if let Some(t) = &m.input.time_column {
        w.push((t.clone(), Kind::Numeric));
    }
    for f in m.first_sources() {
        w.push((SourceRef::Name(f), Kind::Numeric));
    }
    w
}

/// One file: its sha256 and its recordings with their labels (none when its state is `skip`).
#[allow(clippy::type_complexity)]
pub fn import_file(
    m: &Mapping,
    file: &Path,
    row: Option<(&BTreeMap<String, String>, usize)>,
    split_s: Option<f64>,
) -> Result<(String, Vec<(Recording, Vec<LabelInterval>)>), ContractViolations> {
    let at = row.map(|(_, line)| format!("manifest line {line}")).unwrap_or_default();
    let key_err = |key: &str, e: String| violation(file, at.clone(), "import.mapping", format!("{key}: {e}"));
    let bytes_digest = crate::io::sha256_file(file)
        .map_err(|e| violation(file, "", "file.present", format!("cannot read: {e:#}")))?;
    if let (Some((row, line)), Some(col)) =
        (row, m.manifest.as_ref().and_then(|s| s.sha256_column.as_deref()))
    {
        let want = row.get(col).map(String::as_str).unwrap_or("");
        if !want.is_empty() && !want.eq_ignore_ascii_case(&bytes_digest) {
            return Err(violation(
                file,
                "",
                "file.checksum",
                format!("sha256 {bytes_digest} differs from the manifest's {want} (line {line})"),
            ));
        }
    }
    let mut captures = BTreeMap::new();
    if let Some(p) = &m.file_pattern {
        let re = regex::Regex::new(p).map_err(|e| key_err("file_pattern", e.to_string()))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let caps = re.captures(&name).ok_or_else(|| {
            violation(
                file,
                "",
                "import.file_pattern",
                format!("the file name {name:?} does not match file_pattern {p:?}"),
            )
        })?;
        for g in re.capture_names().flatten() {
            if let Some(v) = caps.name(g) {
                captures.insert(g.to_string(), v.as_str().to_string());
            }
        }
    }
    let wanted = requests(m);
    let table = foreign::read(file, m.input.format, &m.input.csv, &wanted)?;
    let firsts: BTreeMap<String, Option<f64>> = m
        .first_sources()
        .into_iter()
        .map(|k| {
            let i = wanted.iter().rposition(|(w, _)| *w == SourceRef::Name(k.clone())).unwrap_or(0);
            let v = match &table.columns[i] {
                Some((_, Column::Numeric(v))) => v.iter().copied().find(|x| !x.is_nan()),
                _ => None,
            };
            (k, v)
        })
        .collect();
    let manifest_row = row.map(|r| r.0);
    let scope = |block: Option<usize>| Scope {
        manifest: manifest_row,
        captures: &captures,
        file,
        first: &firsts,
        block,
    };
    let file_scope = scope(None);

    // The whole file's label state may skip it.
    let labels = m.labels.as_ref();
    let mut file_fault: Option<&LabelValue> = None;
    if let Some(state) = labels.and_then(|l| l.state.as_ref()) {
        let values = &labels.map(|l| &l.values).expect("checked: state needs values");
        let v = file_scope
            .render(state, |s| {
                values.get(s).ok_or_else(|| {
                    format!(
                        "is not one of labels.values ({})",
                        values.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
            })
            .map_err(|e| key_err("labels.state", e))?;
        match v {
            LabelValue::Word(w) if w == "skip" => return Ok((bytes_digest, Vec::new())),
            LabelValue::Word(_) => {}
            fault => file_fault = Some(fault),
        }
    }

    // Channels: the first one sets the row count.
    let mut chans: Vec<(usize, &crate::formats::mapping::ChannelSpec, &Vec<f64>)> = Vec::new();
    for (i, c) in m.channels.iter().enumerate() {
        match &table.columns[i] {
            Some((_, Column::Numeric(v))) => chans.push((i, c, v)),
            Some(_) => unreachable!("requested numeric"),
            None if c.optional => {}
            None => {
                return Err(violation(
                    file,
                    "",
                    "import.channel",
                    format!(
                        "channels[{i}] ({}): no column {} in the file (it has: {})",
                        c.name,
                        c.from,
                        shorten(&table.names)
                    ),
                ));
            }
        }
    }
    let n = chans.first().map_or(0, |c| c.2.len());
    if n == 0 {
        return Err(violation(file, "", "import.channel", "no samples"));
    }
    for (i, c, v) in &chans {
        if v.len() != n {
            return Err(violation(
                file,
                "",
                "import.channel",
                format!(
                    "channels[{i}] ({}) has {} samples, the first channel {n}: every channel must have one per row",
                    c.name,
                    v.len()
                ),
            ));
        }
    }
    let column = |req: &SourceRef, kind: Kind| -> Option<&Column> {
        let i = wanted.iter().position(|(w, k)| w == req && *k == kind)?;
        table.columns[i].as_ref().map(|(_, c)| c)
    };
    let (times, fs) = time_axis(m, file, &at, &file_scope, &table, column, n)?;

    // Block boundaries.
    let block = match (split_s, &m.split) {
        (Some(s), _) => Some(samples_of(file, "--split-s", s, fs)?),
        (None, Some(sp)) => match (sp.block_samples, sp.block_s) {
            (Some(b), _) => Some(usize::try_from(b).unwrap_or(usize::MAX)),
            (None, Some(s)) => Some(samples_of(file, "split.block_s", s, fs)?),
            _ => None,
        },
        (None, None) => None,
    };
    let (count, len) = match block {
        Some(b) if b > n => {
            return Err(violation(
                file,
                "",
                "recording.duration",
                format!("{n} samples, shorter than one split block of {b}"),
            ));
        }
        Some(b) => (n / b, b),
        None => (1, n),
    };

    // Scaled channel values, f32.
    let mut scaled: Vec<(&crate::formats::mapping::ChannelSpec, Vec<f32>)> = Vec::new();
    for (_, c, v) in &chans {
        let mut out = Vec::with_capacity(n);
        for (r, &x) in v.iter().enumerate() {
            let y = if c.scale == 1.0 && c.offset == 0.0 { x } else { x * c.scale + c.offset };
            if y.is_finite() && y.abs() > f64::from(f32::MAX) {
                return Err(violation(
                    file,
                    format!("row {}, channel {}", r + 1, c.name),
                    "import.value",
                    format!("{x} (scaled {y}) does not fit a 32-bit float"),
                ));
            }
            out.push(y as f32);
        }
        scaled.push((c, out));
    }
    let speed_rows = speed_per_row(m, file, &at, &file_scope, column, &times)?;
    let phase_rows: Option<Result<String, &Vec<String>>> = match &m.phase {
        None => None,
        Some(p) => Some(match (&p.constant, &p.from) {
            (Some(c), _) => Ok(file_scope
                .render(c, |s| crate::ids::check("phase", s).map(|_| s.to_string()))
                .map_err(|e| key_err("phase.constant", e))?),
            (None, Some(f)) => match column(f, Kind::Text) {
                Some(Column::Text(v)) => Err(v),
                _ => {
                    return Err(violation(
                        file,
                        "",
                        "import.channel",
                        format!("phase.from: no column {f} in the file"),
                    ));
                }
            },
            (None, None) => unreachable!("checked"),
        }),
    };
    let label_rows: Option<&Vec<String>> = match labels.and_then(|l| l.column.as_ref()) {
        None => None,
        Some(c) => match column(c, Kind::Text) {
            Some(Column::Text(v)) => Some(v),
            _ => {
                return Err(violation(
                    file,
                    "",
                    "import.labels",
                    format!("labels.column: no column {c} in the file"),
                ));
            }
        },
    };

    let mut out = Vec::new();
    for b in 0..count {
        let (a, z) = (b * len, if block.is_some() { (b + 1) * len } else { n });
        let sc = scope(block.map(|_| b));
        let id = |key: &str, v: &ValueSpec| {
            sc.render(v, |s| crate::ids::check(key, s).map(|_| s.to_string()))
                .map_err(|e| key_err(&format!("ids.{key}"), e))
        };
        let mut flight_id = id("flight_id", &m.ids.flight_id)?;
        if block.is_some() && !mentions_block(&m.ids.flight_id) {
            flight_id = format!("{flight_id}-b{b:02}");
            crate::ids::check("flight_id", &flight_id).map_err(|e| key_err("ids.flight_id", e))?;
        }
        let t0 = times[a];
        let t: Vec<f64> = times[a..z].iter().map(|x| x - t0).collect();
        let mut channels = Vec::new();
        let mut data = Vec::new();
        for (c, v) in &scaled {
            channels.push(ChannelMeta {
                name: c.name.clone(),
                unit: c.unit.clone(),
                sample_rate_hz: fs,
                start_s: 0.0,
            });
            data.push(ChannelData {
                times_s: t.clone(),
                samples: Samples::Numeric(v[a..z].to_vec()),
                rows: (a as u32..z as u32).collect(),
            });
        }
        let dur = (z - a) as f64 / fs;
        if let Some(s) = &m.speed {
            let grid = low_rate_grid(dur, s.rate_hz);
            let values: Vec<f32> = match &speed_rows {
                SpeedRows::Constant(rpm) => vec![*rpm as f32; grid.len()],
                SpeedRows::PerRow(v) => {
                    grid.iter().map(|&g| v[nearest(&times[a..z], t0 + g) + a] as f32).collect()
                }
            };
            channels.push(ChannelMeta {
                name: s.name.clone(),
                unit: "rpm".into(),
                sample_rate_hz: s.rate_hz,
                start_s: 0.0,
            });
            data.push(ChannelData {
                rows: grid.iter().map(|&g| (nearest(&times[a..z], t0 + g) + a) as u32).collect(),
                times_s: grid,
                samples: Samples::Numeric(values),
            });
        }
        if let (Some(p), Some(rows)) = (&m.phase, &phase_rows) {
            let grid = low_rate_grid(dur, p.rate_hz);
            let idx: Vec<usize> = grid.iter().map(|&g| nearest(&times[a..z], t0 + g) + a).collect();
            let values: Vec<String> = match rows {
                Ok(c) => vec![c.clone(); grid.len()],
                Err(col) => idx.iter().map(|&i| col[i].clone()).collect(),
            };
            channels.push(ChannelMeta {
                name: p.name.clone(),
                unit: "-".into(),
                sample_rate_hz: p.rate_hz,
                start_s: 0.0,
            });
            data.push(ChannelData {
                rows: idx.iter().map(|&i| i as u32).collect(),
                times_s: grid,
                samples: Samples::Text(values),
            });
        }
        let mut attributes = BTreeMap::new();
        for (k, v) in &m.attributes {
            // An attribute that is empty for this file (an empty manifest cell) is left out.
            let s = match v {
                ValueSpec::Text(t) => sc.render_one(t).map(|s| s.trim().to_string()),
                other => sc.render(other, |s| Ok(s.to_string())),
            }
            .map_err(|e| key_err(&format!("attributes.{k}"), e))?;
            if !s.is_empty() {
                attributes.insert(k.clone(), s);
            }
        }
        let mut labels_out = Vec::new();
        if let Some(LabelValue::Fault(f)) = file_fault {
            labels_out.push(
                fault_label(&sc, f, &flight_id, 0.0, t[t.len() - 1])
                    .map_err(|e| key_err("labels.values", e))?,
            );
        }
        if let Some(rows) = label_rows {
            let values = &labels.expect("column needs labels").values;
            let mut r = a;
            while r < z {
                let state = rows[r].as_str();
                let v = values.get(state).ok_or_else(|| {
                    violation(
                        file,
                        format!("row {}", r + 1),
                        "import.labels",
                        format!(
                            "label {state:?} is not one of labels.values ({})",
                            values.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?;
                let run_end = (r..z).find(|&q| rows[q] != rows[r]).unwrap_or(z);
                match v {
                    LabelValue::Fault(f) => {
                        let end = if run_end < z { t[run_end - a] } else { t[z - 1 - a] };
                        labels_out.push(
                            fault_label(&sc, f, &flight_id, t[r - a], end)
                                .map_err(|e| key_err("labels.values", e))?,
                        );
                    }
                    LabelValue::Word(w) if w == "skip" => {
                        return Err(violation(
                            file,
                            format!("row {}", r + 1),
                            "import.labels",
                            format!(
                                "label {state:?} maps to skip, which applies to whole files (labels.state), not rows"
                            ),
                        ));
                    }
                    LabelValue::Word(_) => {}
                }
                r = run_end;
            }
        }
        let rec = Recording {
            meta: RecordingMeta {
                format: FORMAT.into(),
                format_version: FORMAT_VERSION,
                aircraft_id: id("aircraft_id", &m.ids.aircraft_id)?,
                engine_id: id("engine_id", &m.ids.engine_id)?,
                flight_id,
                source: format!(
                    "avm import of {} (sha256 {bytes_digest}), rows {}..{} of {n}, mapping {}",
                    file.display(),
                    a + 1,
                    z,
                    m.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
                ),
                channels,
                content_crc32: None,
                attributes,
            },
            data,
            path: PathBuf::new(),
        };
        out.push((rec, labels_out));
    }
    Ok((bytes_digest, out))
}

fn shorten(names: &[String]) -> String {
    let mut s = names.iter().take(12).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 12 {
        s.push_str(&format!(", ... {} in all", names.len()));
    }
    s
}

fn mentions_block(v: &ValueSpec) -> bool {
    match v {
        ValueSpec::Number(_) => false,
        ValueSpec::Text(t) => t.contains("{block"),
        ValueSpec::FirstOf(l) => l.iter().any(mentions_block),
    }
}

fn fault_label(
    sc: &Scope<'_>,
    f: &crate::formats::mapping::FaultSpec,
    flight_id: &str,
    start_s: f64,
    end_s: f64,
) -> Result<LabelInterval, String> {
    let fault_type =
        sc.render(&f.fault_type, |s| crate::ids::check("fault_type", s).map(|_| s.to_string()))?;
    let severity = sc.render(&f.severity, number(false))?;
    Ok(LabelInterval {
        flight_id: flight_id.to_string(),
        start_s,
        end_s,
        fault_type,
        category: f.category,
        severity,
        row: 0,
    })
}

/// Each row's time, s (the shift to 0 at a recording's first row is done per recording), and
/// the nominal rate: the one given, or [`nominal_rate`] of a time column.
fn time_axis<'a>(
    m: &Mapping,
    file: &Path,
    at: &str,
    scope: &Scope<'_>,
    table: &Table,
    column: impl Fn(&SourceRef, Kind) -> Option<&'a Column>,
    n: usize,
) -> Result<(Vec<f64>, f64), ContractViolations> {
    let rate = |fs: f64| -> Result<(Vec<f64>, f64), ContractViolations> {
        if !(fs.is_finite() && fs > 0.0 && fs <= MAX_FS_HZ) {
            return Err(violation(
                file,
                "",
                "import.rate",
                format!("sample rate {fs} Hz must be > 0 and <= {MAX_FS_HZ}"),
            ));
        }
        Ok(((0..n).map(|i| i as f64 / fs).collect(), fs))
    };
    if let Some(spec) = &m.input.sample_rate_hz {
        let fs = scope
            .render(spec, number(true))
            .map_err(|e| violation(file, at, "import.mapping", format!("input.sample_rate_hz: {e}")))?;
        return rate(fs);
    }
    if let Some(tc) = &m.input.time_column {
        let Some(Column::Numeric(v)) = column(tc, Kind::Numeric) else {
            return Err(violation(
                file,
                "",
                "import.time",
                format!("input.time_column: no column {tc} in the file"),
            ));
        };
        if v.len() != n {
            return Err(violation(
                file,
                "",
                "import.time",
                format!("the time column has {} rows, the channels {n}", v.len()),
            ));
        }
        let scale = m.input.time_scale_s;
        let mut out = Vec::with_capacity(n);
        for (r, &x) in v.iter().enumerate() {
            let t = x * scale;
            if !t.is_finite() || out.last().is_some_and(|&p| t <= p) {
                return Err(violation(
                    file,
                    format!("row {}", r + 1),
                    "import.time",
                    format!("time {x} must be a number greater than the previous row's"),
                ));
            }
            out.push(t);
        }
        if n < 2 {
            return Err(violation(
                file,
                "",
                "import.time",
                "a time column needs at least 2 rows to give a rate",
            ));
        }
        let fs = nominal_rate(&out);
        return Ok((out, fs));
    }
    match table.rate_hz {
        Some(fs) => rate(fs),
        None => Err(violation(
            file,
            "",
            "import.mapping",
            "input: give sample_rate_hz (a fixed rate) or time_column (a time per row) for this file",
        )),
    }
}

/// The nominal rate of a time axis: 1 / the median step (exact for a fixed rate), taken as a
/// whole number of Hz when within 1 ppm of one.
fn nominal_rate(times: &[f64]) -> f64 {
    if times.len() < 2 {
        return f64::NAN;
    }
    // A fixed-rate axis is i / fs: its rate is exactly fs when recovered from the last time.
    let mut d: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mid = d.len() / 2;
    let (_, med, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    let step = *med;
    let fixed = (times.len() - 1) as f64 / (times[times.len() - 1] - times[0]);
    let rate = if ((1.0 / step) - fixed).abs() <= 1e-9 * fixed { fixed } else { 1.0 / step };
    // A time column in ms or µs gives a rate a few ulps off a whole number of Hz: take it.
    if (rate - rate.round()).abs() <= 1e-6 * rate { rate.round() } else { rate }
}

/// `s` seconds as a whole number of samples at `fs`; otherwise an error with the nearest valid.
fn samples_of(file: &Path, key: &str, s: f64, fs: f64) -> Result<usize, ContractViolations> {
    let x = s * fs;
    let k = x.round();
    if k < 1.0 || (x - k).abs() > 1e-6 * x.max(1.0) {
        let near = k.max(1.0) / fs;
        return Err(violation(
            file,
            "",
            "import.split",
            format!(
                "{key} {s} s is {x} samples at {fs} Hz, not a whole number; nearest valid: {near} s ({} samples)",
                k.max(1.0)
            ),
        ));
    }
    Ok(k as usize)
}

/// Times k / rate covering `dur` seconds (at least one).
fn low_rate_grid(dur: f64, rate: f64) -> Vec<f64> {
    let n = (dur * rate).floor().max(1.0) as usize;
    (0..n).map(|k| k as f64 / rate).collect()
}

/// Index of the time nearest to `t` in increasing `times`.
fn nearest(times: &[f64], t: f64) -> usize {
    let i = times.partition_point(|&x| x < t);
    if i == 0 {
        0
    } else if i >= times.len() || t - times[i - 1] <= times[i] - t {
        i - 1
    } else {
        i
    }
}

enum SpeedRows {
    Constant(f64),
    PerRow(Vec<f64>),
}

fn speed_per_row<'a>(
    m: &Mapping,
    file: &Path,
    at: &str,
    scope: &Scope<'_>,
    column: impl Fn(&SourceRef, Kind) -> Option<&'a Column>,
    times: &[f64],
) -> Result<SpeedRows, ContractViolations> {
    let Some(s) = &m.speed else { return Ok(SpeedRows::Constant(0.0)) };
    if let Some(rpm) = &s.rpm {
        let v = scope
            .render(rpm, number(true))
            .map_err(|e| violation(file, at, "import.mapping", format!("speed.rpm: {e}")))?;
        return Ok(SpeedRows::Constant(v));
    }
    if let Some(f) = &s.from {
        let Some(Column::Numeric(v)) = column(f, Kind::Numeric) else {
            return Err(violation(
                file,
                "",
                "import.channel",
                format!("speed.from: no column {f} in the file"),
            ));
        };
        if v.len() != times.len() {
            return Err(violation(
                file,
                "",
                "import.channel",
                format!("speed.from has {} rows, the channels {}", v.len(), times.len()),
            ));
        }
        return Ok(SpeedRows::PerRow(v.iter().map(|x| x * s.scale).collect()));
    }
    let t = s.tach.as_ref().expect("checked: one of rpm, from, tach");
    let Some(Column::Numeric(v)) = column(&t.from, Kind::Numeric) else {
        return Err(violation(
            file,
            "",
            "import.channel",
            format!("speed.tach.from: no column {} in the file", t.from),
        ));
    };
    tach_rpm(v, times, t.pulses_per_rev, t.threshold)
        .map(SpeedRows::PerRow)
        .map_err(|e| violation(file, format!("column {}", t.from), "import.tach", e))
}

/// Shaft speed at every row from tachometer pulses: each rising crossing of the threshold is a
/// pulse (its time interpolated between the two rows), the speed between consecutive pulses is
/// 60 / (pulses_per_rev × interval) rpm at the interval's midpoint, interpolated linearly
/// between midpoints and held before the first and after the last.
pub fn tach_rpm(v: &[f64], times: &[f64], per_rev: f64, threshold: Option<f64>) -> Result<Vec<f64>, String> {
    let (lo, hi) = v
        .iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let th = threshold.unwrap_or((lo + hi) / 2.0);
    if !(lo < th && th < hi) {
        return Err(format!(
            "threshold {th} is not between the signal's minimum {lo} and maximum {hi}: no pulses"
        ));
    }
    let mut pulses = Vec::new();
    for i in 1..v.len() {
        if v[i - 1] < th && v[i] >= th {
            let f = (th - v[i - 1]) / (v[i] - v[i - 1]);
            pulses.push(times[i - 1] + f * (times[i] - times[i - 1]));
        }
    }
    if pulses.len() < 2 {
        return Err(format!("{} pulse(s) found: at least 2 are needed to measure a speed", pulses.len()));
    }
    let mids: Vec<(f64, f64)> =
        pulses.windows(2).map(|w| ((w[0] + w[1]) / 2.0, 60.0 / (per_rev * (w[1] - w[0])))).collect();
    Ok(times
        .iter()
        .map(|&t| {
            let j = mids.partition_point(|m| m.0 < t);
            if j == 0 {
                mids[0].1
            } else if j == mids.len() {
                mids[j - 1].1
            } else {
                let (a, b) = (mids[j - 1], mids[j]);
                a.1 + (b.1 - a.1) * (t - a.0) / (b.0 - a.0)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tach_pulses_become_rpm() {
        // 1 pulse per rev at 30 Hz (1800 rpm), sampled at 1 kHz: a 20 % duty square wave.
        let times: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let v: Vec<f64> = times.iter().map(|t| if (t * 30.0).fract() < 0.2 { 5.0 } else { 0.0 }).collect();
        let rpm = tach_rpm(&v, &times, 1.0, None).unwrap();
        for r in &rpm[100..900] {
            assert!((r - 1800.0).abs() < 1800.0 * 0.04, "{r}");
        }
        assert!(tach_rpm(&[0.0; 10], &times[..10], 1.0, None).unwrap_err().contains("no pulses"));
    }

    #[test]
    fn a_csv_file_becomes_a_recording_with_scaled_channels_labels_and_attributes() {
        let d = tempfile::tempdir().unwrap();
        let yaml = "mapping_version: 1\n\
            file_pattern: '^(?P<run>\\d+)_(?P<h>ok|bad)\\.csv$'\n\
            input: {time_column: t_ms, time_scale_s: 0.001}\n\
            channels: [{from: a, name: acc, unit: g, scale: 0.5}]\n\
            speed: {from: rpm, rate_hz: 10}\n\
            phase: {from: mode, rate_hz: 1}\n\
            ids: {aircraft_id: R, engine_id: E, flight_id: 'run{name.run}'}\n\
            attributes: {health: '{name.h}'}\n\
            labels: {column: state, values: {'-': normal, worn: {fault_type: wear, severity: 0.5}}}\n";
        std::fs::write(d.path().join("m.yaml"), yaml).unwrap();
        let m = Mapping::load(&d.path().join("m.yaml")).unwrap();
        let mut csv = String::from("t_ms,a,rpm,mode,state\n");
        for i in 0..300 {
            let state = if i >= 200 { "worn" } else { "-" };
            csv.push_str(&format!("{i},{},{},cruise,{state}\n", i as f64 * 2.0, 1800 + i));
        }
        let f = d.path().join("07_bad.csv");
        std::fs::write(&f, csv).unwrap();
        let (_, recs) = import_file(&m, &f, None, None).unwrap();
        let (rec, labels) = &recs[0];
        assert_eq!(rec.meta.flight_id, "run07");
        let (meta, t, x) = rec.numeric("acc").unwrap();
        assert_eq!((meta.sample_rate_hz, x[3], t[3]), (1000.0, 3.0, 0.003));
        let (_, ts, rpm) = rec.numeric("shaft_rpm").unwrap();
        assert_eq!((ts.len(), ts[2], rpm[2]), (3, 0.2, 2000.0)); // 0.3 s at 10 Hz, nearest row
        assert_eq!(rec.meta.attributes["health"], "bad");
        assert_eq!(labels.len(), 1);
        assert_eq!((labels[0].start_s, labels[0].end_s, labels[0].severity), (0.2, 0.299, 0.5));
        // One row at a fixed rate keeps the rate given (no rate is estimated from one time).
        let one = "mapping_version: 1\ninput: {sample_rate_hz: 100}\nchannels: [{from: 1, name: acc}]\n\
            ids: {aircraft_id: R, engine_id: E, flight_id: '{file.stem}'}\n";
        std::fs::write(d.path().join("one.yaml"), one).unwrap();
        let m1 = Mapping::load(&d.path().join("one.yaml")).unwrap();
        std::fs::write(d.path().join("r1.csv"), "a\n0.5\n").unwrap();
        let (_, recs) = import_file(&m1, &d.path().join("r1.csv"), None, None).unwrap();
        assert_eq!(recs[0].0.meta.channels[0].sample_rate_hz, 100.0);
        // A row that goes back in time is named.
        std::fs::write(
            &f,
            "t_ms,a,rpm,mode,state\n0,1,1800,cruise,-\n5,1,1800,cruise,-\n4,1,1800,cruise,-\n",
        )
        .unwrap();
        let e = import_file(&m, &f, None, None).unwrap_err().to_string();
        assert!(e.contains("row 3") && e.contains("greater than the previous"), "{e}");
    }

    #[test]
    fn nearest_and_grid() {
        let t = [0.0, 1.0, 2.0, 3.0];
        assert_eq!([nearest(&t, -1.0), nearest(&t, 1.4), nearest(&t, 1.6), nearest(&t, 9.0)], [0, 1, 2, 3]);
        assert_eq!(low_rate_grid(0.45, 10.0), vec![0.0, 0.1, 0.2, 0.3]);
        assert_eq!(low_rate_grid(0.05, 10.0), vec![0.0]);
    }

    #[test]
    fn block_lengths_name_the_nearest_valid_value() {
        let e = samples_of(Path::new("f.mat"), "split.block_s", 0.127, 64_500.0).unwrap_err().to_string();
        assert!(e.contains("nearest valid") && e.contains("8192 samples"), "{e}");
        assert_eq!(samples_of(Path::new("f"), "k", 0.5, 48_000.0).unwrap(), 24_000);
        let fixed: Vec<f64> = (0..100).map(|i| i as f64 / 25_600.0).collect();
        assert_eq!(nominal_rate(&fixed), 25_600.0);
        let ms: Vec<f64> = (0..1000).map(|i| i as f64 * 0.001).collect();
        assert_eq!(nominal_rate(&ms), 1000.0);
        let odd: Vec<f64> = (0..1000).map(|i| i as f64 / 64_500.5).collect();
        assert!((nominal_rate(&odd) - 64_500.5).abs() < 1e-6);
    }
}
