//! `avm featurize`: per-window feature vectors, split by flight, and the z-score scaler.
//!
//! Reads only the window table of `avm preprocess`, which holds every window's features as
//! avm-core computed them from the raw samples (the firmware's path, so this is the parity
//! path) with labels, phase and data quality. The raw recordings are not read again. The
//! table's manifest must carry the extractor config and feature schema asked for.
//!
//! Split: by recording (flight of one engine), never by window — neighbouring windows overlap
//! by half and would leak. Flight ids are sorted, shuffled with ChaCha8(`split.seed`) and cut
//! by the configured fractions.
//!
//! Scaler: mean and population std of each feature over the *normal training* windows: valid,
//! label 0 and no sensor event. Saved with the feature names, units and order and
//! `FEATURE_SCHEMA_VERSION`.
//!
//! Outputs (each directory replaced atomically):
//! `DATA/features/{training,validation,test}/features.parquet` (ids, time, validity and the raw,
//! unscaled features), `DATA/labels/{training,validation,test}/labels.parquet`,
//! `DATA/features/scaler.json`, `DATA/features/manifest.json`.

pub use crate::config::SplitConfig;
use crate::config::{BaselineConfig, GroupBy};
use crate::config::{Paths, PipelineConfig};
use crate::error::UsageError;
use crate::formats::contract::Contract;
use crate::formats::scaler::{Baselines, ScalerFile, UnitBaseline};
use crate::formats::windows::{self, ProcessedManifest, Window};
use crate::layout;
use anyhow::{Result, ensure};
use avm_core::{ExtractorConfig, FEATURE_SCHEMA_VERSION, RunningStats};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// The three splits, in order.
pub const SPLITS: [&str; 3] = ["training", "validation", "test"];

/// A split, loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureSet {
    /// Feature names.
    pub names: Vec<String>,
    /// Rows.
    pub rows: Vec<Window>,
}

/// Splits flight ids into the three splits, stratified: flights with an engine fault
/// (`faulty`) and flights without are each shuffled and cut by the fractions, so every split
/// gets its share of both.
pub fn split_flights_stratified(
    flights: &[String],
    faulty: &std::collections::HashSet<String>,
    cfg: &SplitConfig,
) -> Result<[Vec<String>; 3], UsageError> {
    let (bad, good): (Vec<String>, Vec<String>) = flights.iter().cloned().partition(|f| faulty.contains(f));
    let mut out: [Vec<String>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (k, group) in [good, bad].into_iter().enumerate() {
        if group.is_empty() {
            continue;
        }
        let parts = cut(&group, &SplitConfig { seed: cfg.seed.wrapping_add(k as u64), ..cfg.clone() })?;
        for (o, p) in out.iter_mut().zip(parts) {
            o.extend(p);
        }
    }
    for (i, name) in SPLITS.iter().enumerate() {
        if out[i].is_empty() && [cfg.training, cfg.validation, cfg.test][i] > 0.0 {
            return Err(UsageError(format!(
                "split {name} is empty: {} flights are too few for the fractions",
                flights.len()
            )));
        }
        out[i].sort();
    }
    Ok(out)
}

/// The three splits' recording ids for `rows`: the explicit lists, or whole `group_by` groups
/// split by the fractions, stratified by whether a group holds an engine fault.
pub fn split_rows(
    rows: &[Window],
    split: &SplitConfig,
    attributes: &crate::config::Attributes,
) -> Result<[Vec<String>; 3], UsageError> {
    let mut flights: Vec<String> = rows.iter().map(|r| r.flight_id.clone()).collect();
    flights.sort();
    flights.dedup();
    if let Some(lists) = &split.lists {
        return explicit_split(&flights, lists);
    }
    split.group_by.check(flights.iter().map(String::as_str), attributes)?;
    let group_of: HashMap<&str, String> = rows
        .iter()
        .map(|r| {
            (r.flight_id.as_str(), split.group_by.key(&r.flight_id, &r.aircraft_id, &r.engine_id, attributes))
        })
        .collect();
    let groups: Vec<String> = flights.iter().map(|f| group_of[f.as_str()].clone()).collect();
    let faulty: std::collections::HashSet<String> =
        rows.iter().filter(|r| r.label == 1).map(|r| group_of[r.flight_id.as_str()].clone()).collect();
    let parts = split_flights_stratified(&groups, &faulty, split)?;
    let mut out: [Vec<String>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (o, part) in out.iter_mut().zip(&parts) {
        let part: std::collections::HashSet<&String> = part.iter().collect();
        *o = flights.iter().filter(|f| part.contains(&group_of[f.as_str()])).cloned().collect();
    }
    Ok(out)
}

fn explicit_split(
    flights: &[String],
    lists: &crate::config::SplitLists,
) -> Result<[Vec<String>; 3], UsageError> {
    let known: std::collections::HashSet<&String> = flights.iter().collect();
    let mut seen: HashMap<&String, &str> = HashMap::new();
    let mut out: [Vec<String>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (i, (name, list)) in SPLITS.iter().zip([&lists.training, &lists.validation, &lists.test]).enumerate()
    {
        for id in list {
            if !known.contains(id) {
                return Err(UsageError(format!(
                    "split.lists.{name}: recording {id:?} is not in the data (the window table has {} recordings)",
                    flights.len()
                )));
            }
            if let Some(other) = seen.insert(id, name) {
                return Err(UsageError(format!(
                    "split.lists: recording {id:?} is in both {other} and {name}"
                )));
            }
            out[i].push(id.clone());
        }
        if out[i].is_empty() {
            return Err(UsageError(format!("split.lists.{name} is empty")));
        }
        out[i].sort();
    }
    let missing: Vec<&String> = flights.iter().filter(|f| !seen.contains_key(f)).collect();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(|s| s.as_str()).collect();
        return Err(UsageError(format!(
            "split.lists: {} recording(s) are in no list ({}{}): list every recording once",
            missing.len(),
            shown.join(", "),
            if missing.len() > 5 { ", ..." } else { "" }
        )));
    }
    Ok(out)
}

/// Splits flight ids into the three splits (no stratification).
pub fn split_flights(flights: &[String], cfg: &SplitConfig) -> Result<[Vec<String>; 3], UsageError> {
    split_flights_stratified(flights, &Default::default(), cfg)
}

/// Shuffles (Fisher-Yates with ChaCha8: the same on every platform) and cuts by the fractions.
fn cut(flights: &[String], cfg: &SplitConfig) -> Result<[Vec<String>; 3], UsageError> {
    cfg.check()?;
    let mut ids: Vec<String> = flights.to_vec();
    ids.sort();
    ids.dedup();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    for i in (1..ids.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        ids.swap(i, j);
    }
    let n = ids.len();
    let n_train = (cfg.training * n as f64).round() as usize;
    let n_val = ((cfg.validation * n as f64).round() as usize).min(n - n_train);
    Ok([ids[..n_train].to_vec(), ids[n_train..n_train + n_val].to_vec(), ids[n_train + n_val..].to_vec()])
}

/// Reads the window table and its manifest; the manifest must describe the extractor this
/// config asks for (a stale table is a usage error: rerun `avm preprocess`).
fn read_windows(data: &Paths, xcfg: &ExtractorConfig) -> Result<(ProcessedManifest, Vec<Window>)> {
    let dir = data.processed();
    let mpath = dir.join(layout::MANIFEST);
    let stale =
        |what: &str| UsageError(format!("{} was made with {what}: rerun `avm preprocess`", mpath.display()));
    let manifest: ProcessedManifest = serde_json::from_slice(
        &std::fs::read(&mpath)
            .map_err(|e| UsageError(format!("{}: {e}: run `avm preprocess` first", mpath.display())))?,
    )
    .map_err(|_| stale("another avm version (its manifest does not parse)"))?;
    ensure!(manifest.feature_schema_version == FEATURE_SCHEMA_VERSION, stale("another feature schema"));
    ensure!(manifest.extractor == *xcfg, stale("other feature settings"));
    let rows = windows::read_table(&dir.join(layout::WINDOWS), &manifest.feature_names)?;
    Ok((manifest, rows))
}

/// The window table as `avm preprocess` computed it (one pass over the raw data: nothing is
/// recomputed here).
pub struct Computed {
    /// Vibration channels, in feature order.
    pub channels: Vec<String>,
    /// Feature names.
    pub names: Vec<String>,
    /// Every window.
    pub rows: Vec<Window>,
    /// Per recording: its attributes.
    pub attributes: crate::config::Attributes,
}

/// Reads the window table of `avm preprocess` and checks it matches this config's contract.
pub fn compute(cfg: &PipelineConfig) -> Result<Computed> {
    let contract = cfg.load_contract()?;
    let xcfg = cfg.extractor_config(&contract)?;
    read_computed(&cfg.paths, &contract, &xcfg)
}

/// [`compute`] given only what it uses: the data tree, the contract (its vibration channels)
/// and the extractor config the table must have been made with.
pub fn read_computed(data: &Paths, contract: &Contract, xcfg: &ExtractorConfig) -> Result<Computed> {
    let (manifest, rows) = read_windows(data, xcfg)?;
    let channels: Vec<String> = contract.vibration_channels().map(|c| c.name.clone()).collect();
    let names = windows::feature_names(&channels, &xcfg.features)?;
    ensure!(
        names == manifest.feature_names,
        UsageError(format!(
            "{} holds features of channels {:?}, the contract has {channels:?}: rerun `avm preprocess`",
            data.processed().display(),
            manifest.channels
        ))
    );
    Ok(Computed { channels, names, rows, attributes: manifest.attributes() })
}

/// Fits the scaler on the clean normal rows; with `baseline`, each unit's baseline too (see
/// [`crate::config::BaselineConfig`]): the mean of its clean normal rows for units with at
/// least `min_windows` of them, and `std` the pooled spread of those units' rows around their
/// own baselines (`x - baseline` in `f32`, as the scaler subtracts).
pub fn fit_scaler(
    names: &[String],
    units: Vec<String>,
    rows: &[Window],
    baseline: Option<&BaselineConfig>,
) -> Result<ScalerFile> {
    let mut stats = vec![RunningStats::new(); names.len()];
    let mut n = 0u64;
    for r in rows.iter().filter(|r| r.is_clean_normal()) {
        for (s, &x) in stats.iter_mut().zip(&r.features) {
            s.push(x);
        }
        n += 1;
    }
    ensure!(n >= 2, UsageError(format!("only {n} clean normal training windows: too few to fit the scaler")));
    ensure!(
        units.len() == names.len(),
        anyhow::anyhow!("{} units for {} features", units.len(), names.len())
    );
    let mut s = ScalerFile {
        feature_schema_version: FEATURE_SCHEMA_VERSION,
        feature_names: names.to_vec(),
        units,
        mean: stats.iter().map(RunningStats::mean).collect(),
        std: stats.iter().map(RunningStats::std).collect(),
        fitted_on_windows: n,
        baselines: None,
    };
    if let Some(cfg) = baseline {
        let mut b = Baselines {
            by: cfg.by.clone(),
            min_windows: cfg.min_windows,
            units: Default::default(),
            too_few: Default::default(),
        };
        let mut per_unit: std::collections::BTreeMap<String, Vec<&Window>> = Default::default();
        for r in rows.iter().filter(|r| r.is_clean_normal()) {
            per_unit.entry(b.unit_of(r)).or_default().push(r);
        }
        for (unit, unit_rows) in per_unit {
            let u = unit_baseline(&unit_rows, names.len());
            if u.windows >= cfg.min_windows {
                b.units.insert(unit, u);
            } else {
                b.too_few.insert(unit, u.windows);
            }
        }
        ensure!(
            !b.units.is_empty(),
            UsageError(format!(
                "baseline.by = {:?}: no unit has baseline.min_windows = {} clean normal training windows (most: {})",
                cfg.by,
                cfg.min_windows,
                b.too_few.values().max().copied().unwrap_or(0)
            ))
        );
        let mut spread = vec![RunningStats::new(); names.len()];
        let mut pooled = 0u64;
        for r in rows.iter().filter(|r| r.is_clean_normal()) {
            if let Some(u) = b.units.get(&b.unit_of(r)) {
                for ((s, &x), &m) in spread.iter_mut().zip(&r.features).zip(&u.mean) {
                    s.push(x - m);
                }
                pooled += 1;
            }
        }
        s.std = spread.iter().map(RunningStats::std).collect();
        s.fitted_on_windows = pooled;
        s.baselines = Some(b);
    }
    avm_core::Scaler::new(&s.mean, &s.std).map_err(|e| anyhow::anyhow!("fitted scaler is unusable: {e}"))?;
    Ok(s)
}

/// Moves the first recording (id order) of every unit that has no training recording from
/// validation or test into training; returns the recordings moved.
fn first_flights_to_training(parts: &mut [Vec<String>; 3], rows: &[Window], by: &GroupBy) -> Vec<String> {
    let unit_of: HashMap<&str, String> = rows
        .iter()
        .map(|r| {
            (r.flight_id.as_str(), by.key(&r.flight_id, &r.aircraft_id, &r.engine_id, &Default::default()))
        })
        .collect();
    let trained: std::collections::HashSet<&String> = parts[0].iter().map(|f| &unit_of[f.as_str()]).collect();
    let mut first: std::collections::BTreeMap<&String, &String> = Default::default();
    for f in parts[1].iter().chain(&parts[2]) {
        let u = &unit_of[f.as_str()];
        if !trained.contains(u) {
            let e = first.entry(u).or_insert(f);
            if f < *e {
                *e = f;
            }
        }
    }
    let moved: Vec<String> = first.into_values().cloned().collect();
    for p in parts.iter_mut().skip(1) {
        p.retain(|f| !moved.contains(f));
    }
    parts[0].extend(moved.iter().cloned());
    parts[0].sort();
    moved
}

/// A unit's baseline: the mean of `rows`' features (Welford in `f64`, rounded to `f32`, as the
/// scaler's mean) and how many rows.
pub fn unit_baseline(rows: &[&Window], n_features: usize) -> UnitBaseline {
    let mut st = vec![RunningStats::new(); n_features];
    for r in rows {
        for (s, &x) in st.iter_mut().zip(&r.features) {
            s.push(x);
        }
    }
    UnitBaseline { mean: st.iter().map(RunningStats::mean).collect(), windows: rows.len() as u64 }
}

impl std::fmt::Display for FeaturesManifest {
    /// Per split: flights, windows and engine-fault windows; then the feature count.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in SPLITS.iter().enumerate() {
            writeln!(
                f,
                "{name:>10}: {:>3} flights, {:>5} windows ({} with an engine fault)",
                self.flights[i].len(),
                self.windows[i],
                self.anomalous[i]
            )?;
        }
        write!(f, "{} features per window", self.feature_names.len())?;
        if let Some(b) = &self.baselines {
            write!(
                f,
                "\nper-unit baselines: {} unit(s), each from at least {} clean normal training windows",
                b.units, b.fewest_windows
            )?;
            if !b.moved_to_training.is_empty() {
                write!(
                    f,
                    "; moved into training as their engine's first flight: {}",
                    b.moved_to_training.join(", ")
                )?;
            }
            if !b.too_few.is_empty() {
                write!(
                    f,
                    "; {} unit(s) with too few, not judged until they have one: {}",
                    b.too_few.len(),
                    b.too_few.join(", ")
                )?;
            }
        }
        Ok(())
    }
}

/// What featurize wrote (`DATA/features/manifest.json`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FeaturesManifest {
    /// Feature names.
    pub feature_names: Vec<String>,
    /// Flights per split.
    pub flights: [Vec<String>; 3],
    /// Windows per split.
    pub windows: [usize; 3],
    /// Engine-fault windows per split.
    pub anomalous: [usize; 3],
    /// sha256 of each split's features.parquet, then labels.parquet.
    pub sha256: Vec<String>,
    /// With per-unit baselines: how they were fitted (`scaler.json` holds them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baselines: Option<BaselineSummary>,
}

/// The per-unit baselines featurize fitted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BaselineSummary {
    /// Recordings moved into training as their unit's first flight
    /// (`baseline.first_flight_in_training`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved_to_training: Vec<String>,
    /// Units with a baseline, and the fewest windows one was fitted on.
    pub units: usize,
    /// Fewest clean normal windows behind a baseline.
    pub fewest_windows: u64,
    /// Units of the training split with too few clean normal windows: their windows are not
    /// judged.
    pub too_few: Vec<String>,
}

/// Features directory.
pub fn features_dir(cfg: &PipelineConfig) -> PathBuf {
    cfg.paths.features()
}

/// Labels directory.
pub fn labels_dir(cfg: &PipelineConfig) -> PathBuf {
    cfg.paths.labels()
}

/// Runs the stage.
pub fn run(cfg: &PipelineConfig) -> Result<FeaturesManifest> {
    let contract = cfg.load_contract()?;
    let xcfg = cfg.extractor_config(&contract)?;
    featurize(&cfg.paths, &contract, &xcfg, &cfg.split, cfg.baseline.as_ref())
}

/// The stage proper, given only what it uses: the data tree, the contract and extractor config
/// the window table must match, and the split.
pub fn featurize(
    data: &Paths,
    contract: &Contract,
    xcfg: &ExtractorConfig,
    split: &SplitConfig,
    baseline: Option<&BaselineConfig>,
) -> Result<FeaturesManifest> {
    let Computed { channels, names, rows, attributes } = read_computed(data, contract, xcfg)?;
    let mut parts = split_rows(&rows, split, &attributes)?;
    let moved = match baseline {
        Some(b)
            if b.first_flight_in_training && split.lists.is_none() && split.group_by == GroupBy::Flight =>
        {
            first_flights_to_training(&mut parts, &rows, &b.by)
        }
        _ => Vec::new(),
    };
    let split_of: HashMap<&str, usize> =
        parts.iter().enumerate().flat_map(|(i, p)| p.iter().map(move |f| (f.as_str(), i))).collect();
    let mut by_split: [Vec<&Window>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for r in &rows {
        by_split[split_of[r.flight_id.as_str()]].push(r);
    }
    let train_rows: Vec<Window> = by_split[0].iter().map(|r| (*r).clone()).collect();
    let scaler =
        fit_scaler(&names, windows::feature_units(&channels, &xcfg.features), &train_rows, baseline)?;
    let labels_root = data.labels();
    let manifest = crate::io::replace_dir_atomic(&data.features(), |fdir| {
        crate::io::replace_dir_atomic(&labels_root, |ldir| {
            let mut sha = Vec::new();
            for (i, name) in SPLITS.iter().enumerate() {
                windows::write_split(
                    &fdir.join(name).join(layout::FEATURES_PARQUET),
                    &ldir.join(name).join(layout::LABELS_PARQUET),
                    &by_split[i],
                    &channels,
                    &names,
                )?;
                for p in [
                    fdir.join(name).join(layout::FEATURES_PARQUET),
                    ldir.join(name).join(layout::LABELS_PARQUET),
                ] {
                    sha.push(crate::io::sha256_file(&p)?);
                }
            }
            crate::io::write_bytes_atomic(
                &fdir.join(layout::SCALER_JSON),
                serde_json::to_string_pretty(&scaler)?.as_bytes(),
            )?;
            let m = FeaturesManifest {
                feature_names: names.clone(),
                flights: parts.clone(),
                windows: std::array::from_fn(|i| by_split[i].len()),
                anomalous: std::array::from_fn(|i| by_split[i].iter().filter(|r| r.label == 1).count()),
                sha256: sha,
                baselines: scaler.baselines.as_ref().map(|b| BaselineSummary {
                    moved_to_training: moved.clone(),
                    units: b.units.len(),
                    fewest_windows: b.units.values().map(|u| u.windows).min().unwrap_or(0),
                    too_few: b.too_few.keys().cloned().collect(),
                }),
            };
            crate::io::write_bytes_atomic(
                &fdir.join(layout::MANIFEST),
                serde_json::to_string_pretty(&m)?.as_bytes(),
            )?;
            Ok(m)
        })
    })?;
    Ok(manifest)
}

/// Loads one split (features joined with labels).
pub fn load_split(cfg: &PipelineConfig, split: &str) -> Result<FeatureSet> {
    let (names, rows) = windows::read_split(
        &features_dir(cfg).join(split).join(layout::FEATURES_PARQUET),
        &labels_dir(cfg).join(split).join(layout::LABELS_PARQUET),
    )?;
    Ok(FeatureSet { names, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_by_flight_seeded_and_complete() {
        let flights: Vec<String> = (0..20).map(|i| format!("F{i:02}")).collect();
        let cfg = SplitConfig {
            training: 0.6,
            validation: 0.2,
            test: 0.2,
            seed: 1,
            group_by: Default::default(),
            lists: None,
        };
        let a = split_flights(&flights, &cfg).unwrap();
        let b = split_flights(&flights, &cfg).unwrap();
        assert_eq!(a, b);
        assert_eq!([a[0].len(), a[1].len(), a[2].len()], [12, 4, 4]);
        let mut all: Vec<_> = a.iter().flatten().cloned().collect();
        all.sort();
        assert_eq!(all, flights);
        // Stratified: 5 faulty flights spread over the splits.
        let faulty: std::collections::HashSet<String> = flights[..5].iter().cloned().collect();
        let s = split_flights_stratified(&flights, &faulty, &cfg).unwrap();
        let count = |p: &Vec<String>| p.iter().filter(|f| faulty.contains(*f)).count();
        assert_eq!([count(&s[0]), count(&s[1]), count(&s[2])], [3, 1, 1]);
        let c = split_flights(&flights, &SplitConfig { seed: 2, ..cfg.clone() }).unwrap();
        assert_ne!(a, c);
        assert!(split_flights(&flights[..2], &cfg).is_err());
        assert!(split_flights(&flights, &SplitConfig { test: 0.3, ..cfg }).is_err());
    }

    fn row(flight: &str, aircraft: &str, engine: &str, label: u8) -> Window {
        Window {
            flight_id: flight.into(),
            aircraft_id: aircraft.into(),
            engine_id: engine.into(),
            window_index: 0,
            start_s: 0.0,
            end_s: 10.0,
            phase: "cruise".into(),
            label,
            fault_type: "none".into(),
            severity: 0.0,
            sensor_event: "none".into(),
            valid: true,
            roc_valid: true,
            quality: vec![],
            features: vec![],
        }
    }

    #[test]
    fn groups_are_never_divided_and_lists_are_checked() {
        use crate::config::{GroupBy, SplitLists};
        // 10 aircraft x 2 engines x 3 flights; aircraft 0 and 1 have a faulty flight.
        let mut rows = Vec::new();
        for a in 0..10 {
            for e in 1..=2 {
                for f in 0..3 {
                    let label = u8::from(a < 2 && e == 1 && f == 0);
                    rows.push(row(&format!("A{a}-F{f}-E{e}"), &format!("A{a}"), &format!("E{e}"), label));
                }
            }
        }
        // An operating condition per recording: load 0..4 by aircraft.
        let attrs: crate::config::Attributes = rows
            .iter()
            .map(|r| {
                (
                    r.flight_id.clone(),
                    [("load".to_string(), (r.aircraft_id[1..].parse::<u32>().unwrap() % 5).to_string())]
                        .into(),
                )
            })
            .collect();
        let base = SplitConfig {
            training: 0.6,
            validation: 0.2,
            test: 0.2,
            seed: 3,
            group_by: GroupBy::Flight,
            lists: None,
        };
        // By flight: the same as splitting the flight ids directly.
        let by_flight = split_rows(&rows, &base, &attrs).unwrap();
        let flights: Vec<String> = rows.iter().map(|r| r.flight_id.clone()).collect();
        let faulty = rows.iter().filter(|r| r.label == 1).map(|r| r.flight_id.clone()).collect();
        assert_eq!(by_flight, split_flights_stratified(&flights, &faulty, &base).unwrap());
        for g in [GroupBy::Engine, GroupBy::Aircraft, GroupBy::Attribute("load".into())] {
            let parts =
                split_rows(&rows, &SplitConfig { group_by: g.clone(), ..base.clone() }, &attrs).unwrap();
            let mut where_: HashMap<String, usize> = HashMap::new();
            for (i, p) in parts.iter().enumerate() {
                assert!(!p.is_empty(), "{g:?}: split {i} empty");
                for f in p {
                    let r = rows.iter().find(|r| &r.flight_id == f).unwrap();
                    let key = g.key(&r.flight_id, &r.aircraft_id, &r.engine_id, &attrs);
                    assert_eq!(*where_.entry(key).or_insert(i), i, "{g:?}: group of {f} divided");
                }
            }
            assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 60);
        }
        // An attribute every recording must carry.
        let mut partial = attrs.clone();
        partial.remove("A3-F1-E2");
        let e = split_rows(
            &rows,
            &SplitConfig { group_by: GroupBy::Attribute("load".into()), ..base.clone() },
            &partial,
        )
        .unwrap_err();
        assert!(
            e.0.contains("attribute \"load\" is missing from 1 recording(s) (first: A3-F1-E2)"),
            "{}",
            e.0
        );
        let lists = |t: &[&str], v: &[&str], s: &[&str]| SplitConfig {
            lists: Some(SplitLists {
                training: t.iter().map(|x| x.to_string()).collect(),
                validation: v.iter().map(|x| x.to_string()).collect(),
                test: s.iter().map(|x| x.to_string()).collect(),
            }),
            ..base.clone()
        };
        let few: Vec<Window> = rows[..3].to_vec();
        let ok = split_rows(&few, &lists(&["A0-F0-E1"], &["A0-F1-E1"], &["A0-F2-E1"]), &attrs).unwrap();
        assert_eq!(ok[2], ["A0-F2-E1"]);
        let e = split_rows(&few, &lists(&["A0-F0-E1"], &["A0-F1-E1"], &["A9-F9"]), &attrs).unwrap_err();
        assert!(e.0.contains("split.lists.test: recording \"A9-F9\" is not in the data"), "{}", e.0);
        let e = split_rows(&few, &lists(&["A0-F0-E1"], &["A0-F0-E1"], &["A0-F2-E1"]), &attrs).unwrap_err();
        assert!(e.0.contains("in both training and validation"), "{}", e.0);
        let e = split_rows(&few, &lists(&["A0-F0-E1"], &["A0-F1-E1"], &[]), &attrs).unwrap_err();
        assert!(e.0.contains("split.lists.test is empty"), "{}", e.0);
        let e =
            split_rows(&rows[..4], &lists(&["A0-F0-E1"], &["A0-F1-E1"], &["A0-F2-E1"]), &attrs).unwrap_err();
        assert!(e.0.contains("1 recording(s) are in no list (A0-F0-E2)"), "{}", e.0);
    }

    #[test]
    fn baselines_are_unit_means_and_std_the_pooled_spread_around_them() {
        use crate::config::{BaselineConfig, GroupBy};
        // Engine A1/E1: 4 clean windows; A1/E2: 3 (too few for min_windows 4); one faulty and
        // one sensor-event window of A1/E1 that must not count.
        let mk = |engine: &str, label: u8, sensor: &str, x: [f32; 2]| Window {
            sensor_event: sensor.into(),
            features: x.to_vec(),
            ..row("A1-F1-E", "A1", engine, label)
        };
        let rows = vec![
            mk("E1", 0, "none", [1.0, 10.0]),
            mk("E1", 0, "none", [3.0, 14.0]),
            mk("E1", 0, "none", [2.0, 12.0]),
            mk("E1", 0, "none", [6.0, 12.0]),
            mk("E1", 1, "none", [100.0, 100.0]),
            mk("E1", 0, "sensor_spike", [100.0, 100.0]),
            mk("E2", 0, "none", [50.0, 1.0]),
            mk("E2", 0, "none", [52.0, 1.0]),
            mk("E2", 0, "none", [54.0, 1.0]),
        ];
        let names = vec!["a".to_string(), "b".to_string()];
        let units = vec!["g".to_string(), "g".to_string()];
        let plain = fit_scaler(&names, units.clone(), &rows, None).unwrap();
        assert!(plain.baselines.is_none());
        let cfg = BaselineConfig {
            by: GroupBy::Engine,
            min_windows: 4,
            commission_flights: 1,
            first_flight_in_training: true,
        };
        let s = fit_scaler(&names, units.clone(), &rows, Some(&cfg)).unwrap();
        assert_eq!(s.mean, plain.mean, "the fleet mean is kept for reference");
        let b = s.baselines.as_ref().unwrap();
        assert_eq!(b.units.len(), 1);
        let e1 = &b.units["A1/E1"];
        assert_eq!((e1.mean.as_slice(), e1.windows), ([3.0f32, 12.0].as_slice(), 4));
        assert_eq!(b.too_few.get("A1/E2"), Some(&3));
        // Deviations from E1's baseline: a: -2, 0, -1, 3 (sd sqrt(3.5)); b: -2, 2, 0, 0 (sd sqrt(2)).
        assert_eq!(s.std, vec![3.5f64.sqrt() as f32, 2f64.sqrt() as f32]);
        assert_eq!(s.fitted_on_windows, 4);
        // Windows of E2 are not covered; E1's are scaled by E1's baseline.
        assert!(!s.covers(&rows[6]) && s.covers(&rows[0]));
        let z = s.scaled_windows(rows[..1].iter()).unwrap();
        assert_eq!(z[0], vec![(1.0 - 3.0) / s.std[0], (10.0 - 12.0) / s.std[1]]);
        assert!(s.scaled_windows(rows[6..7].iter()).is_err());
        // Without baselines scaled_windows is the plain scaler, bit for bit.
        let xs: Vec<&[f32]> = rows.iter().map(|r| r.features.as_slice()).collect();
        assert_eq!(plain.scaled_windows(rows.iter()).unwrap(), plain.scaled(xs.into_iter()).unwrap());
        // The unit's own scaler file, as its bundle carries it.
        assert_eq!(s.for_unit("A1/E1").unwrap().mean, vec![3.0, 12.0]);
        assert!(s.for_unit("A1/E2").is_none());
        // No unit with enough windows: refused with the numbers.
        let e =
            fit_scaler(&names, units, &rows, Some(&BaselineConfig { min_windows: 10, ..cfg })).unwrap_err();
        assert!(
            format!("{e}").contains("no unit has baseline.min_windows = 10")
                && format!("{e}").contains("most: 4"),
            "{e}"
        );
    }

    #[test]
    fn a_unit_without_training_flights_gets_its_first_flight_moved_into_training() {
        // E1 has F1 in training; E2's flights are all in validation or test: its first (F2)
        // moves; E3 has none anywhere but test (F9 only).
        let rows: Vec<Window> = [
            ("A1-F1-E1", "E1"),
            ("A1-F3-E1", "E1"),
            ("A1-F4-E2", "E2"),
            ("A1-F2-E2", "E2"),
            ("A1-F9-E3", "E3"),
        ]
        .iter()
        .map(|(f, e)| row(f, "A1", e, 0))
        .collect();
        let mut parts = [
            vec!["A1-F1-E1".to_string()],
            vec!["A1-F3-E1".to_string(), "A1-F4-E2".to_string()],
            vec!["A1-F2-E2".to_string(), "A1-F9-E3".to_string()],
        ];
        let moved = first_flights_to_training(&mut parts, &rows, &GroupBy::Engine);
        assert_eq!(moved, ["A1-F2-E2", "A1-F9-E3"]);
        assert_eq!(parts[0], ["A1-F1-E1", "A1-F2-E2", "A1-F9-E3"]);
        assert_eq!(parts[1], ["A1-F3-E1", "A1-F4-E2"]);
        assert!(parts[2].is_empty());
        // Every unit trained: nothing moves.
        assert!(first_flights_to_training(&mut parts, &rows, &GroupBy::Engine).is_empty());
    }
}
