//! Import mappings: how a folder of someone else's files (CSV, Parquet, MATLAB, WAV) becomes
//! avm recordings and labels, written once per data set as a YAML file (`avm import --mapping`).
//! `configs/import/` holds the mappings of the CWRU and FEMTO data sets; README ("Your own
//! data") documents every key.
//!
//! Values that vary per file are *templates*: text with `{namespace.key}` references, filled in
//! per file (and per block when a file is cut into blocks):
//!
//! | reference | value |
//! |---|---|
//! | `{manifest.COLUMN}` | the file's row in the manifest table |
//! | `{name.GROUP}` | a named group of `file_pattern` matched on the file name |
//! | `{file.stem}`, `{file.name}` | the file's name without / with its extension |
//! | `{first.SOURCE}` | the first value of a column or MATLAB variable of the file (`*` globs allowed) |
//! | `{block}` | the block number when `split` cuts files into blocks |
//!
//! `{key:03}` zero-pads a whole number to 3 digits; `{{` and `}}` are literal braces. A value
//! may also be a list of templates: the first one that gives a valid value is used (e.g. the
//! RPM stored in the file, else the manifest's nominal one).

use crate::error::UsageError;
use crate::formats::contract::FaultCategory;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The mapping format's version (`mapping_version`).
pub const MAPPING_VERSION: u32 = 1;

/// A whole mapping file.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Always [`MAPPING_VERSION`].
    pub mapping_version: u32,
    /// A table with one row per file (metadata, checksums, labels).
    #[serde(default)]
    pub manifest: Option<ManifestSpec>,
    /// A regular expression matched on each file's name; its named groups are `{name.GROUP}`.
    #[serde(default)]
    pub file_pattern: Option<String>,
    /// How to read the files.
    #[serde(default)]
    pub input: InputSpec,
    /// The vibration (and other numeric) channels to keep, in this order.
    pub channels: Vec<ChannelSpec>,
    /// The shaft speed channel.
    #[serde(default)]
    pub speed: Option<SpeedSpec>,
    /// The flight phase (or operating regime) channel.
    #[serde(default)]
    pub phase: Option<PhaseSpec>,
    /// Aircraft, engine and flight ids.
    pub ids: IdsSpec,
    /// Free-form attributes stored with each recording (load, rig, test-cell run...).
    #[serde(default)]
    pub attributes: BTreeMap<String, ValueSpec>,
    /// Where the fault labels come from.
    #[serde(default)]
    pub labels: Option<LabelSpec>,
    /// Cut each file into consecutive recordings ("flights" or snapshots).
    #[serde(default)]
    pub split: Option<SplitSpec>,
    /// The mapping file (set by [`Mapping::load`]).
    #[serde(skip)]
    pub path: PathBuf,
}

/// The manifest: a CSV table with a header and one row per file.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    /// The table, relative to the mapping file (`avm import --manifest` overrides it).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Column with each file's path, relative to the manifest's folder.
    #[serde(default = "default_file_column")]
    pub file_column: String,
    /// Column with each file's sha256 (checked before reading; empty cells are not checked).
    #[serde(default)]
    pub sha256_column: Option<String>,
    /// Only rows whose column holds one of the values (`avm import --where` adds to it).
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, OneOrMany>,
}

fn default_file_column() -> String {
    "file".into()
}

/// One scalar or a list of them (YAML numbers are compared as written without trailing zeros).
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A list.
    Many(Vec<Scalar>),
    /// One value.
    One(Scalar),
}

impl OneOrMany {
    /// The values as text.
    pub fn texts(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.text()],
            OneOrMany::Many(v) => v.iter().map(Scalar::text).collect(),
        }
    }
}

/// A YAML scalar.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum Scalar {
    /// A number.
    Number(f64),
    /// Text.
    Text(String),
}

impl Scalar {
    /// As text: numbers in their shortest form (`48000`, `0.007`).
    pub fn text(&self) -> String {
        match self {
            Scalar::Number(x) => format!("{x}"),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// Input file settings.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// `auto` (by extension: .csv/.txt, .parquet, .mat, .wav), `csv`, `parquet`, `mat`, `wav`.
    #[serde(default)]
    pub format: InputFormat,
    /// CSV settings.
    #[serde(default)]
    pub csv: CsvSpec,
    /// Fixed sample rate of every row, Hz (fractional allowed); a template. WAV files carry
    /// their own. Exactly one of this and `time_column` for CSV, Parquet and MAT inputs.
    #[serde(default)]
    pub sample_rate_hz: Option<ValueSpec>,
    /// Column (or variable) with each row's time.
    #[serde(default)]
    pub time_column: Option<SourceRef>,
    /// Seconds per unit of `time_column` (0.001 for milliseconds).
    #[serde(default = "one")]
    pub time_scale_s: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for InputSpec {
    fn default() -> Self {
        InputSpec {
            format: InputFormat::Auto,
            csv: CsvSpec::default(),
            sample_rate_hz: None,
            time_column: None,
            time_scale_s: 1.0,
        }
    }
}

/// Input formats.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// By file extension.
    #[default]
    Auto,
    /// Comma (or other) separated text.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// MATLAB level 5 (`-v6`, `-v7`).
    Mat,
    /// WAV (PCM or float).
    Wav,
}

impl InputFormat {
    /// The format of `path`: `self`, or by extension for `auto`.
    pub fn of(self, path: &Path) -> Option<InputFormat> {
        if self != InputFormat::Auto {
            return Some(self);
        }
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" | "tsv" => Some(InputFormat::Csv),
            "parquet" | "pq" => Some(InputFormat::Parquet),
            "mat" => Some(InputFormat::Mat),
            "wav" => Some(InputFormat::Wav),
            _ => None,
        }
    }
}

/// CSV settings.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct CsvSpec {
    /// The first row names the columns.
    #[serde(default = "yes")]
    pub header: bool,
    /// Field delimiter (one ASCII character; `\t` for tabs).
    #[serde(default = "comma")]
    pub delimiter: String,
}

impl Default for CsvSpec {
    fn default() -> Self {
        CsvSpec { header: true, delimiter: comma() }
    }
}

fn yes() -> bool {
    true
}

fn comma() -> String {
    ",".into()
}

/// A column or MATLAB variable: by name (`*`/`?` globs allowed) or by 1-based position.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum SourceRef {
    /// 1-based position among the file's columns (or variables).
    Position(u32),
    /// Name or glob.
    Name(String),
}

impl std::fmt::Display for SourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceRef::Position(p) => write!(f, "column {p}"),
            SourceRef::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// One numeric channel.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// Source column or variable.
    pub from: SourceRef,
    /// avm channel name (the contract's).
    pub name: String,
    /// Unit after scaling (the contract's, e.g. `g`).
    #[serde(default = "unit_g")]
    pub unit: String,
    /// Multiplier applied to every value (e.g. 1/9.80665 for m/s² to g, or g per count).
    #[serde(default = "one")]
    pub scale: f64,
    /// Added after scaling.
    #[serde(default)]
    pub offset: f64,
    /// A file without this column still imports (without the channel).
    #[serde(default)]
    pub optional: bool,
}

fn unit_g() -> String {
    "g".into()
}

/// The shaft speed: a constant, a column in rpm, or tachometer pulses.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SpeedSpec {
    /// avm channel name.
    #[serde(default = "speed_name")]
    pub name: String,
    /// Constant speed, rpm (a template, or a list of them: the first valid one).
    #[serde(default)]
    pub rpm: Option<ValueSpec>,
    /// A column with the speed (times `scale` gives rpm).
    #[serde(default)]
    pub from: Option<SourceRef>,
    /// Multiplier of `from` (60 for a column in Hz).
    #[serde(default = "one")]
    pub scale: f64,
    /// A tachometer pulse column.
    #[serde(default)]
    pub tach: Option<TachSpec>,
    /// Rate of the speed channel written, Hz.
    #[serde(default = "speed_rate")]
    pub rate_hz: f64,
}

fn speed_name() -> String {
    "shaft_rpm".into()
}

fn speed_rate() -> f64 {
    10.0
}

/// Tachometer pulses: a rising crossing of `threshold` is one pulse.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct TachSpec {
    /// The pulse column.
    pub from: SourceRef,
    /// Pulses per shaft revolution.
    #[serde(default = "one")]
    pub pulses_per_rev: f64,
    /// Crossing level (default: halfway between the column's minimum and maximum).
    #[serde(default)]
    pub threshold: Option<f64>,
}

/// The phase channel: a constant or a text column.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// avm channel name.
    #[serde(default = "phase_name")]
    pub name: String,
    /// The same phase for the whole file (a template).
    #[serde(default)]
    pub constant: Option<ValueSpec>,
    /// A text column with the phase of each row.
    #[serde(default)]
    pub from: Option<SourceRef>,
    /// Rate of the phase channel written, Hz.
    #[serde(default = "phase_rate")]
    pub rate_hz: f64,
}

fn phase_name() -> String {
    "phase".into()
}

fn phase_rate() -> f64 {
    1.0
}

/// The three ids (templates; each must meet the id rule once filled in).
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct IdsSpec {
    /// Aircraft (or rig).
    pub aircraft_id: ValueSpec,
    /// Engine (or machine, bearing).
    pub engine_id: ValueSpec,
    /// Recording id, unique in the data set; `-b{block:02}` is appended when `split` cuts
    /// files into blocks and the template has no `{block}`.
    pub flight_id: ValueSpec,
}

/// Labels: a per-file state, a per-row column, or an avm labels file.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    /// The whole file's state (a template, e.g. `{manifest.label}` or `{name.health}`), looked
    /// up in `values`.
    #[serde(default)]
    pub state: Option<ValueSpec>,
    /// A text column whose value in each row is looked up in `values`.
    #[serde(default)]
    pub column: Option<SourceRef>,
    /// An avm labels file (`flight_id,start_s,end_s,fault_type,category,severity`), relative
    /// to the mapping file; its rows for the imported flights are kept.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// What each state means: `normal`, `skip` (the file is not imported), or a fault.
    #[serde(default)]
    pub values: BTreeMap<String, LabelValue>,
}

/// What one label state means.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum LabelValue {
    /// `normal` or `skip`.
    Word(String),
    /// A fault.
    Fault(FaultSpec),
}

/// A fault label.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Fault type (a template; one of the contract's).
    pub fault_type: ValueSpec,
    /// Severity (a template giving a number in the contract's range).
    #[serde(default = "severity_one")]
    pub severity: ValueSpec,
    /// `engine` (default) or `sensor`.
    #[serde(default = "engine")]
    pub category: FaultCategory,
}

fn severity_one() -> ValueSpec {
    ValueSpec::Number(1.0)
}

fn engine() -> FaultCategory {
    FaultCategory::Engine
}

/// Cutting files into blocks.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Block length, seconds (must be a whole number of samples).
    #[serde(default)]
    pub block_s: Option<f64>,
    /// Block length, samples.
    #[serde(default)]
    pub block_samples: Option<u64>,
}

/// A template, a number, or a list of alternatives (the first valid one is used).
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum ValueSpec {
    /// A number.
    Number(f64),
    /// A template.
    Text(String),
    /// Alternatives, in order.
    FirstOf(Vec<ValueSpec>),
}

/// Namespaces of template references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    /// `{manifest.COLUMN}`.
    Manifest,
    /// `{name.GROUP}`.
    Name,
    /// `{file.stem}` / `{file.name}`.
    File,
    /// `{first.SOURCE}`.
    First,
    /// `{block}`.
    Block,
}

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Literal text.
    Lit(String),
    /// A reference, with zero-padding width.
    Ref(Ns, String, Option<usize>),
}

/// Parses a template; the error states the syntax.
pub fn parse_template(t: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '}' => return Err(format!("{t:?}: a lone '}}' (write '}}}}' for a brace)")),
            '{' => {
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => inner.push(c),
                        None => return Err(format!("{t:?}: '{{' without its '}}'")),
                    }
                }
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(parse_ref(t, &inner)?);
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

fn parse_ref(t: &str, inner: &str) -> Result<Part, String> {
    let (body, pad) = match inner.rsplit_once(':') {
        Some((b, p)) if p.starts_with('0') && p.len() >= 2 => {
            let w = p[1..].parse::<usize>().ok().filter(|w| (1..=20).contains(w));
            (
                b,
                Some(
                    w.ok_or_else(|| format!("{t:?}: {{{inner}}}: padding must be :0N with N from 1 to 20"))?,
                ),
            )
        }
        _ => (inner, None),
    };
    if body == "block" {
        return Ok(Part::Ref(Ns::Block, String::new(), pad));
    }
    let (ns, key) = body.split_once('.').ok_or_else(|| {
        format!("{t:?}: {{{inner}}} must be {{manifest.COLUMN}}, {{name.GROUP}}, {{file.stem}}, {{file.name}}, {{first.SOURCE}} or {{block}}")
    })?;
    let ns = match ns {
        "manifest" => Ns::Manifest,
        "name" => Ns::Name,
        "file" if matches!(key, "stem" | "name") => Ns::File,
        "first" => Ns::First,
        _ => {
            return Err(format!(
                "{t:?}: {{{inner}}}: unknown reference (manifest.COLUMN, name.GROUP, file.stem, file.name, first.SOURCE, block)"
            ));
        }
    };
    if key.is_empty() {
        return Err(format!("{t:?}: {{{inner}}} names no key"));
    }
    Ok(Part::Ref(ns, key.to_string(), pad))
}

/// What a template is filled in from, for one file (and block).
pub struct Scope<'a> {
    /// The file's manifest row (column -> cell), if there is a manifest.
    pub manifest: Option<&'a BTreeMap<String, String>>,
    /// Named groups of `file_pattern`.
    pub captures: &'a BTreeMap<String, String>,
    /// The file.
    pub file: &'a Path,
    /// First values of the file's columns named in `{first.X}` references.
    pub first: &'a BTreeMap<String, Option<f64>>,
    /// Block number, when cutting into blocks.
    pub block: Option<usize>,
}

impl Scope<'_> {
    fn lookup(&self, ns: Ns, key: &str) -> Result<String, String> {
        match ns {
            Ns::Manifest => {
                let row = self.manifest.ok_or("the mapping has no manifest")?;
                row.get(key).cloned().ok_or_else(|| format!("the manifest has no column {key:?}"))
            }
            Ns::Name => self.captures.get(key).cloned().ok_or_else(|| {
                format!("file_pattern has no group {key:?} matching this file name (or did not match)")
            }),
            Ns::File => {
                let s = if key == "stem" { self.file.file_stem() } else { self.file.file_name() };
                Ok(s.map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
            }
            Ns::First => match self.first.get(key) {
                Some(Some(x)) => Ok(format!("{x}")),
                _ => Err(format!("the file has no column or variable {key:?} with a value")),
            },
            Ns::Block => {
                self.block.map(|b| b.to_string()).ok_or_else(|| "{block} is only set with split".into())
            }
        }
    }

    /// Fills in one template.
    pub fn render_one(&self, t: &str) -> Result<String, String> {
        let mut out = String::new();
        for p in parse_template(t)? {
            match p {
                Part::Lit(s) => out.push_str(&s),
                Part::Ref(ns, key, pad) => {
                    let v = self.lookup(ns, &key)?;
                    match pad {
                        Some(w) => {
                            let n: u64 = v.parse().map_err(|_| {
                                format!("{{{key}:0{w}}} pads whole numbers; the value is {v:?}")
                            })?;
                            out.push_str(&format!("{n:0w$}"));
                        }
                        None => out.push_str(&v),
                    }
                }
            }
        }
        Ok(out)
    }

    /// The first alternative of `v` that fills in to a non-empty text accepted by `check`;
    /// the error lists why each alternative failed.
    pub fn render<T>(&self, v: &ValueSpec, check: impl Fn(&str) -> Result<T, String>) -> Result<T, String> {
        let mut why = Vec::new();
        self.render_into(v, &check, &mut why).ok_or_else(|| why.join("; "))
    }

    fn render_into<T>(
        &self,
        v: &ValueSpec,
        check: &dyn Fn(&str) -> Result<T, String>,
        why: &mut Vec<String>,
    ) -> Option<T> {
        match v {
            ValueSpec::Number(x) => check(&format!("{x}")).map_err(|e| why.push(e)).ok(),
            ValueSpec::Text(t) => match self.render_one(t) {
                Ok(s) if s.trim().is_empty() => {
                    why.push(format!("{t:?} is empty for this file"));
                    None
                }
                Ok(s) => check(s.trim()).map_err(|e| why.push(format!("{t:?} gave {s:?}: {e}"))).ok(),
                Err(e) => {
                    why.push(e);
                    None
                }
            },
            ValueSpec::FirstOf(list) => list.iter().find_map(|x| self.render_into(x, check, why)),
        }
    }
}

/// A number check for [`Scope::render`]: finite, and `> 0` when `positive`.
pub fn number(positive: bool) -> impl Fn(&str) -> Result<f64, String> {
    move |s: &str| {
        let x: f64 = s.parse().map_err(|_| "not a number".to_string())?;
        if !x.is_finite() || (positive && x <= 0.0) {
            return Err(if positive { "must be a number > 0" } else { "must be finite" }.into());
        }
        Ok(x)
    }
}

/// Every template string in `v`.
fn templates(v: &ValueSpec) -> Vec<&str> {
    match v {
        ValueSpec::Number(_) => Vec::new(),
        ValueSpec::Text(t) => vec![t.as_str()],
        ValueSpec::FirstOf(l) => l.iter().flat_map(templates).collect(),
    }
}

impl Mapping {
    /// Loads and checks a mapping file; every problem is a [`UsageError`] naming the file and
    /// the key.
    pub fn load(path: &Path) -> Result<Mapping, UsageError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("mapping {}: cannot read: {e}", path.display())))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut m: Mapping = serde_saphyr::from_str(text)
            .map_err(|e| UsageError(format!("mapping {}: {e}", path.display())))?;
        m.path = path.to_path_buf();
        m.check().map_err(|e| UsageError(format!("mapping {}: {e}", path.display())))?;
        Ok(m)
    }

    /// The mapping file's folder (relative paths in it are relative to it).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// Every `{first.SOURCE}` the templates use.
    pub fn first_sources(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in self.all_templates() {
            for p in parse_template(t).unwrap_or_default() {
                if let Part::Ref(Ns::First, k, _) = p
                    && !out.contains(&k)
                {
                    out.push(k);
                }
            }
        }
        out
    }

    fn all_templates(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        let i = &self.ids;
        for s in [&i.aircraft_id, &i.engine_id, &i.flight_id] {
            v.extend(templates(s));
        }
        for a in self.attributes.values() {
            v.extend(templates(a));
        }
        if let Some(r) = &self.input.sample_rate_hz {
            v.extend(templates(r));
        }
        if let Some(s) = self.speed.as_ref().and_then(|s| s.rpm.as_ref()) {
            v.extend(templates(s));
        }
        if let Some(c) = self.phase.as_ref().and_then(|p| p.constant.as_ref()) {
            v.extend(templates(c));
        }
        if let Some(l) = &self.labels {
            if let Some(s) = &l.state {
                v.extend(templates(s));
            }
            for lv in l.values.values() {
                if let LabelValue::Fault(f) = lv {
                    v.extend(templates(&f.fault_type));
                    v.extend(templates(&f.severity));
                }
            }
        }
        v
    }

    /// Checks everything that does not depend on the files; errors name the key.
    pub fn check(&self) -> Result<(), String> {
        if self.mapping_version != MAPPING_VERSION {
            return Err(format!(
                "mapping_version: {} is not supported (this build reads {MAPPING_VERSION})",
                self.mapping_version
            ));
        }
        for t in self.all_templates() {
            parse_template(t)?;
        }
        if let Some(p) = &self.file_pattern {
            regex::Regex::new(p).map_err(|e| format!("file_pattern: not a valid regular expression: {e}"))?;
        }
        let uses_manifest = self.all_templates().iter().any(|t| {
            parse_template(t).unwrap_or_default().iter().any(|p| matches!(p, Part::Ref(Ns::Manifest, ..)))
        });
        if uses_manifest && self.manifest.is_none() {
            return Err("templates use {manifest.*} but the mapping has no manifest: section".into());
        }
        let inp = &self.input;
        if !(inp.time_scale_s.is_finite() && inp.time_scale_s > 0.0) {
            return Err(format!("input.time_scale_s: {} must be a number > 0", inp.time_scale_s));
        }
        if inp.sample_rate_hz.is_some() && inp.time_column.is_some() {
            return Err("input: give sample_rate_hz or time_column, not both".into());
        }
        if inp.csv.delimiter.len() != 1 && inp.csv.delimiter != "\\t" {
            return Err(format!(
                "input.csv.delimiter: {:?} must be one ASCII character (or \\t)",
                inp.csv.delimiter
            ));
        }
        if self.channels.is_empty() {
            return Err("channels: at least one channel is needed".into());
        }
        let mut names = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            crate::ids::check(&format!("channels[{i}].name"), &c.name)?;
            if !(c.scale.is_finite() && c.scale != 0.0 && c.offset.is_finite()) {
                return Err(format!(
                    "channels[{i}] ({}): scale must be finite and non-zero, offset finite",
                    c.name
                ));
            }
            if c.unit.is_empty() || c.unit.len() > 32 {
                return Err(format!("channels[{i}] ({}): unit must be 1-32 characters", c.name));
            }
            names.push(c.name.clone());
        }
        if let Some(s) = &self.speed {
            crate::ids::check("speed.name", &s.name)?;
            let n = [s.rpm.is_some(), s.from.is_some(), s.tach.is_some()].iter().filter(|x| **x).count();
            if n != 1 {
                return Err(
                    "speed: give exactly one of rpm (a constant), from (a column) or tach (pulses)".into()
                );
            }
            if !(s.rate_hz.is_finite() && s.rate_hz > 0.0 && s.rate_hz <= 100_000.0) {
                return Err(format!("speed.rate_hz: {} must be a number > 0 and <= 100000", s.rate_hz));
            }
            if !(s.scale.is_finite() && s.scale > 0.0) {
                return Err(format!("speed.scale: {} must be a number > 0", s.scale));
            }
            if let Some(t) = &s.tach
                && !(t.pulses_per_rev.is_finite() && t.pulses_per_rev > 0.0)
            {
                return Err(format!("speed.tach.pulses_per_rev: {} must be a number > 0", t.pulses_per_rev));
            }
            names.push(s.name.clone());
        }
        if let Some(p) = &self.phase {
            crate::ids::check("phase.name", &p.name)?;
            if p.constant.is_some() == p.from.is_some() {
                return Err("phase: give exactly one of constant or from (a text column)".into());
            }
            if !(p.rate_hz.is_finite() && p.rate_hz > 0.0 && p.rate_hz <= 1000.0) {
                return Err(format!("phase.rate_hz: {} must be a number > 0 and <= 1000", p.rate_hz));
            }
            names.push(p.name.clone());
        }
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            if n == crate::formats::recording::TIME_COLUMN || !seen.insert(n) {
                return Err(format!("channel name {n:?} is used twice (or is the reserved time_s)"));
            }
        }
        for k in self.attributes.keys() {
            crate::ids::check("attributes key", k)?;
        }
        if let Some(l) = &self.labels {
            let n = [l.state.is_some(), l.column.is_some(), l.file.is_some()].iter().filter(|x| **x).count();
            if n != 1 {
                return Err("labels: give exactly one of state (per file), column (per row) or file (an avm labels file)".into());
            }
            if l.file.is_none() && l.values.is_empty() {
                return Err("labels.values: say what each state means (normal, skip, or a fault)".into());
            }
            for (k, v) in &l.values {
                if let LabelValue::Word(w) = v
                    && !matches!(w.as_str(), "normal" | "skip")
                {
                    return Err(format!(
                        "labels.values.{k}: {w:?} must be normal, skip, or a fault {{fault_type, severity, category}}"
                    ));
                }
            }
        }
        if let Some(s) = &self.split {
            match (s.block_s, s.block_samples) {
                (Some(b), None) if b.is_finite() && b > 0.0 => {}
                (None, Some(n)) if n > 0 => {}
                _ => {
                    return Err(
                        "split: give block_s (seconds > 0) or block_samples (> 0), one of them".into()
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope_eval(t: &str) -> Result<String, String> {
        let row: BTreeMap<String, String> = [("record_no", "97"), ("fs_hz", "48000"), ("empty", "")]
            .map(|(a, b)| (a.into(), b.into()))
            .into();
        let caps: BTreeMap<String, String> = [("load".to_string(), "2".to_string())].into();
        let first: BTreeMap<String, Option<f64>> = [("*RPM".to_string(), Some(1796.0))].into();
        let s = Scope {
            manifest: Some(&row),
            captures: &caps,
            file: Path::new("d/normal_0_97.mat"),
            first: &first,
            block: Some(3),
        };
        s.render_one(t)
    }

    #[test]
    fn templates_fill_in_and_pad() {
        assert_eq!(scope_eval("CWRU-{manifest.record_no:03}-b{block:02}").unwrap(), "CWRU-097-b03");
        assert_eq!(scope_eval("{file.stem}/{file.name}").unwrap(), "normal_0_97/normal_0_97.mat");
        assert_eq!(
            scope_eval("load {name.load} at {first.*RPM} rpm {{x}}").unwrap(),
            "load 2 at 1796 rpm {x}"
        );
        assert!(scope_eval("{manifest.nope}").unwrap_err().contains("no column \"nope\""));
        assert!(scope_eval("{name.x}").unwrap_err().contains("no group"));
        assert!(parse_template("{bogus.x}").unwrap_err().contains("unknown reference"));
        assert!(parse_template("{manifest.x").unwrap_err().contains("without"));
        assert!(parse_template("a}b").unwrap_err().contains("lone"));
        assert!(parse_template("{manifest.x:0}").is_err() || parse_template("{manifest.x:0}").is_ok());
        assert!(scope_eval("{file.stem:03}").unwrap_err().contains("pads whole numbers"));
    }

    #[test]
    fn first_of_takes_the_first_valid_alternative() {
        let row: BTreeMap<String, String> =
            [("rpm", ""), ("nominal", "1797")].map(|(a, b)| (a.into(), b.into())).into();
        let none = BTreeMap::new();
        let first: BTreeMap<String, Option<f64>> = BTreeMap::new();
        let s = Scope {
            manifest: Some(&row),
            captures: &none,
            file: Path::new("f.csv"),
            first: &first,
            block: None,
        };
        let v = ValueSpec::FirstOf(vec![
            ValueSpec::Text("{first.*RPM}".into()),
            ValueSpec::Text("{manifest.rpm}".into()),
            ValueSpec::Text("{manifest.nominal}".into()),
        ]);
        assert_eq!(s.render(&v, number(true)).unwrap(), 1797.0);
        let bad = ValueSpec::FirstOf(vec![ValueSpec::Text("{manifest.rpm}".into()), ValueSpec::Number(-1.0)]);
        let e = s.render(&bad, number(true)).unwrap_err();
        assert!(e.contains("empty") && e.contains("> 0"), "{e}");
    }

    #[test]
    fn checks_name_the_key() {
        let base = "mapping_version: 1\nchannels: [{from: a, name: vib}]\nids: {aircraft_id: A, engine_id: E, flight_id: '{file.stem}'}\n";
        let load = |extra: &str| {
            let m: Mapping = serde_saphyr::from_str(&format!("{base}{extra}")).unwrap();
            m.check()
        };
        assert_eq!(load(""), Ok(()));
        assert!(load("speed: {rpm: 1800, tach: {from: t}}").unwrap_err().contains("exactly one"));
        assert!(load("split: {block_s: 0}").unwrap_err().contains("block_s"));
        assert!(load("attributes: {'a/b': 1}").unwrap_err().contains("not a valid identifier"));
        assert!(load("labels: {state: x, values: {x: broken}}").unwrap_err().contains("normal, skip"));
        assert!(load("file_pattern: '('").unwrap_err().contains("file_pattern"));
        assert!(load("attributes: {load: '{manifest.load}'}").unwrap_err().contains("no manifest"));
        let e = serde_saphyr::from_str::<Mapping>(&format!("{base}colour: red\n")).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }
}
