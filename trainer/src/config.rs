//! The pipeline configuration (`configs/*.yaml`): every section type is defined here, so this
//! module depends on no stage (the stages import their section from here; their old paths,
//! e.g. `train::TrainConfig`, are re-exports).
//!
//! Relative paths are relative to the config file's directory. Unknown keys are refused, so a
//! typo is an error, not a silently ignored setting; every value is checked against its stated
//! range at load ([`PipelineConfig::validate`]).

use crate::error::UsageError;
use anyhow::{Context, Result, ensure};
use avm_core::{ExtractorConfig, SettingsError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the stages read and write.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// Root of the data tree: `raw/` (recordings, labels), `interim/`, `processed/`, ...
    pub data: PathBuf,
    /// Root of the model tree (`<models>/<name>/...`); default `MODELS`.
    #[serde(default = "default_models")]
    pub models: PathBuf,
    /// The model registry (`<registry>/registry.json`); default `REGISTRY`.
    #[serde(default = "default_registry")]
    pub registry: PathBuf,
}

fn default_models() -> PathBuf {
    PathBuf::from("MODELS")
}

fn default_registry() -> PathBuf {
    PathBuf::from("REGISTRY")
}

/// Feature-extraction settings (the `features:` section): avm-core's own type, deserialised
/// as it is (field names and meanings are the core's, written once).
pub use avm_core::FeatureSettings;

/// The core's config for `features` at `sample_rate_hz` (an integer rate, from the contract).
/// Every constraint is checked by avm-core ([`ExtractorConfig::from_settings`]) and stated here
/// in the config's keys (`features.hop_s`, ...) with its valid range and, where there is one,
/// the nearest valid value.
pub fn extractor_at(features: &FeatureSettings, sample_rate_hz: f64) -> Result<ExtractorConfig, UsageError> {
    if sample_rate_hz.fract() != 0.0 || !(1.0..=f64::from(u32::MAX)).contains(&sample_rate_hz) {
        return Err(UsageError(format!(
            "the vibration rate {sample_rate_hz} Hz must be a whole number of Hz"
        )));
    }
    ExtractorConfig::from_settings(sample_rate_hz as u32, features).map_err(|e| match e {
        SettingsError::Config(e) => UsageError(format!("features: {e}")),
        e => UsageError(format!("features.{e}")),
    })
}

/// One range check of a numeric config value, stated in the user's key.
fn in_range(key: &str, v: f64, lo: f64, hi: f64, open_lo: bool) -> Result<(), UsageError> {
    let ok = v.is_finite() && (if open_lo { v > lo } else { v >= lo }) && v <= hi;
    if ok {
        Ok(())
    } else {
        let l = if open_lo { "(" } else { "[" };
        Err(UsageError(format!("{key} = {v} must be a finite number in {l}{lo}, {hi}]")))
    }
}

/// One range check of a count.
fn count_in(key: &str, v: usize, lo: usize, hi: usize) -> Result<(), UsageError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(UsageError(format!("{key} = {v} must be from {lo} to {hi}")))
    }
}

/// Limits on sizes that decide allocations and run time, checked before anything is allocated
/// (README, "Configuration limits").
pub mod limits {
    /// Most hidden layers.
    pub const MAX_HIDDEN_LAYERS: usize = 16;
    /// Widest hidden layer.
    pub const MAX_LAYER_WIDTH: usize = 4096;
    /// Most epochs.
    pub const MAX_EPOCHS: usize = 100_000;
    /// Largest mini-batch.
    pub const MAX_BATCH: usize = 65_536;
    /// Most cross-validation folds.
    pub const MAX_CV_FOLDS: usize = 20;
    /// Most recordings one simulate call writes.
    pub const MAX_SIM_RECORDINGS: usize = 100_000;
    /// Longest simulated flight, s.
    pub const MAX_SIM_FLIGHT_S: f64 = 12.0 * 3600.0;
    /// Highest simulated rate, Hz.
    pub const MAX_SIM_RATE_HZ: f64 = 200_000.0;
    /// Most epoch checkpoints kept besides best and last.
    pub const MAX_KEEP_EPOCHS: usize = 10_000;
}

/// The whole pipeline configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Detector name (used for model directories).
    pub name: String,
    /// Data locations.
    pub paths: Paths,
    /// The data contract file.
    pub contract: PathBuf,
    /// Simulator settings: the default data set when no raw data is present.
    #[serde(default)]
    pub simulate: Option<SimConfig>,
    /// Feature extraction.
    pub features: FeatureSettings,
    /// Train / validation / test split by flight (required).
    pub split: SplitConfig,
    /// Per-unit baselines (absent: every window is scaled by the one fleet scaler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineConfig>,
    /// Autoencoder training (required).
    pub train: TrainConfig,
    /// Evaluation (required).
    pub evaluate: EvalConfig,
    /// The alert policy (defaults when absent).
    #[serde(default)]
    pub alerts: AlertConfig,
    /// Quality gates of `avm run` (the seed's defaults when absent).
    #[serde(default)]
    pub gates: Gates,
    /// TensorBoard and MLflow logging.
    #[serde(default)]
    pub tracking: TrackingConfig,
    /// The file it was loaded from (empty when built in memory), for messages.
    #[serde(skip)]
    pub source: PathBuf,
}

impl PipelineConfig {
    /// Loads a config file; every problem is a [`UsageError`] naming the file.
    pub fn load(path: &Path) -> Result<PipelineConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("config {}: cannot read: {e}", path.display())))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut cfg: PipelineConfig = serde_saphyr::from_str(text)
            .map_err(|e| UsageError(format!("config {}: {e}", path.display())))?;
        cfg.validate().map_err(|e| UsageError(format!("config {}: {}", path.display(), e.0)))?;
        cfg.resolve_paths(path.parent().unwrap_or(Path::new("")));
        cfg.source = path.to_path_buf();
        // The feature settings depend on the contract's rate: check them now too, so a bad
        // value is refused before any stage takes a lock or writes anything.
        if cfg.contract.is_file() {
            let contract = cfg.load_contract()?;
            cfg.extractor_config(&contract)?;
            cfg.alerts
                .check(Some(&contract.phases))
                .map_err(|e| UsageError(format!("config {}: {}", path.display(), e.0)))?;
        }
        Ok(cfg)
    }

    /// avm-core's extractor config for `contract`'s vibration rate; an error names the config.
    pub fn extractor_config(
        &self,
        contract: &crate::formats::contract::Contract,
    ) -> Result<ExtractorConfig, UsageError> {
        extractor_at(&self.features, contract.vibration_rate_hz())
            .map_err(|e| UsageError(format!("config {}: {}", self.source.display(), e.0)))
    }

    /// Makes every relative path of the config relative to `base` (the config file's
    /// directory), so a config works from any working directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        let r = |p: &mut PathBuf| *p = crate::io::resolve(base, p);
        r(&mut self.paths.data);
        r(&mut self.paths.models);
        r(&mut self.paths.registry);
        r(&mut self.contract);
        r(&mut self.tracking.tensorboard_dir);
    }

    /// Checks every value against its stated range (README, "Configuration limits"); the error
    /// names the key as written in the file.
    pub fn validate(&self) -> Result<(), UsageError> {
        use limits::*;
        crate::ids::check("name", &self.name).map_err(UsageError)?;
        let f = &self.features;
        // Seconds, unless given in samples (then checked against the rate with the contract).
        if f.window_samples.is_none() {
            in_range("features.window_s", f.window_s, 0.0, 3600.0, true)?;
        }
        if f.hop_samples.is_none() {
            in_range("features.hop_s", f.hop_s, 0.0, 3600.0, true)?;
        }
        if let Some(s) = &self.simulate {
            s.check().map_err(|e| UsageError(format!("{e:#}")))?;
            count_in(
                "simulate: aircraft x engines_per_aircraft x flights_per_aircraft",
                s.recordings_checked().unwrap_or(usize::MAX),
                1,
                MAX_SIM_RECORDINGS,
            )?;
            in_range("simulate.flight_duration_s[1]", s.flight_duration_s[1], 0.0, MAX_SIM_FLIGHT_S, true)?;
            in_range("simulate.vibration_rate_hz", s.vibration_rate_hz, 0.0, MAX_SIM_RATE_HZ, true)?;
            in_range("simulate.speed_rate_hz", s.speed_rate_hz, 0.0, s.vibration_rate_hz, true)?;
            in_range("simulate.phase_rate_hz", s.phase_rate_hz, 0.0, s.vibration_rate_hz, true)?;
        }
        self.split.check()?;
        if let Some(b) = &self.baseline {
            b.check()?;
        }
        {
            let t = &self.train;
            count_in("train.hidden (number of layers)", t.hidden.len(), 1, MAX_HIDDEN_LAYERS)?;
            for (i, &h) in t.hidden.iter().enumerate() {
                count_in(&format!("train.hidden[{i}]"), h, 1, MAX_LAYER_WIDTH)?;
            }
            in_range("train.learning_rate", t.learning_rate, 0.0, 1.0, true)?;
            count_in("train.batch_size", t.batch_size, 1, MAX_BATCH)?;
            count_in("train.max_epochs", t.max_epochs, 1, MAX_EPOCHS)?;
            count_in("train.patience", t.patience, 1, MAX_EPOCHS)?;
            count_in("train.keep_epochs", t.keep_epochs, 0, MAX_KEEP_EPOCHS)?;
            if let Some(l) = &t.lr_schedule {
                in_range("train.lr_schedule.factor", l.factor, 0.0, 1.0, true)?;
                if l.factor >= 1.0 {
                    return Err(UsageError(format!(
                        "train.lr_schedule.factor = {} must be below 1 (it reduces the rate)",
                        l.factor
                    )));
                }
                count_in("train.lr_schedule.patience", l.patience, 1, MAX_EPOCHS)?;
                in_range(
                    "train.lr_schedule.min_learning_rate",
                    l.min_learning_rate,
                    0.0,
                    t.learning_rate,
                    true,
                )?;
            }
        }
        {
            let e = &self.evaluate;
            if !(e.target_far > 0.0 && e.target_far < 1.0) {
                return Err(UsageError(format!(
                    "evaluate.target_far = {} must be a finite number in (0, 1)",
                    e.target_far
                )));
            }
            count_in("evaluate.min_phase_windows", e.min_phase_windows, 1, 1_000_000)?;
            if e.cv_folds != 0 {
                count_in("evaluate.cv_folds (0 disables cross-validation)", e.cv_folds, 3, MAX_CV_FOLDS)?;
            }
            in_range("evaluate.calibration.confidence", e.calibration.confidence, 0.0, 1.0, true)?;
            if let Some(fc) = e.flight_calibration
                && !(fc.target_alerting_fraction > 0.0 && fc.target_alerting_fraction < 1.0)
            {
                return Err(UsageError(format!(
                    "evaluate.flight_calibration.target_alerting_fraction = {} must be a finite number in (0, 1)",
                    fc.target_alerting_fraction
                )));
            }
            if e.calibration.confidence >= 1.0 {
                return Err(UsageError(format!(
                    "evaluate.calibration.confidence = {} must be below 1 (certainty needs infinitely many windows)",
                    e.calibration.confidence
                )));
            }
        }
        self.alerts.check(None)?;
        let g = &self.gates;
        in_range("gates.min_auc", g.min_auc, 0.0, 1.0, false)?;
        in_range("gates.min_precision", g.min_precision, 0.0, 1.0, false)?;
        in_range("gates.min_recall", g.min_recall, 0.0, 1.0, false)?;
        in_range("gates.max_far", g.max_far, 0.0, 1.0, false)?;
        in_range("gates.max_latency_p99_ms", g.max_latency_p99_ms, 0.0, 1e6, true)?;
        in_range(
            "gates.min_gross_flights_alerted_in_time",
            g.min_gross_flights_alerted_in_time,
            0.0,
            1.0,
            false,
        )?;
        in_range("gates.alert_deadline_s", g.alert_deadline_s, 0.0, 1e6, true)?;
        in_range("gates.min_subtle_flights_alerted", g.min_subtle_flights_alerted, 0.0, 1.0, false)?;
        in_range(
            "gates.max_false_alerts_per_100_flight_hours",
            g.max_false_alerts_per_100_flight_hours,
            0.0,
            1e9,
            false,
        )?;
        Ok(())
    }

    /// The contract the config names.
    pub fn load_contract(&self) -> Result<crate::formats::contract::Contract> {
        if !self.contract.is_file() {
            return Err(UsageError(format!(
                "the contract {} named by the config does not exist (relative paths are relative to the config file)",
                self.contract.display()
            ))
            .into());
        }
        crate::formats::contract::Contract::load(&self.contract)
            .with_context(|| "loading the contract named by the config")
    }
}

// Section types: every section of the config is defined here, so this module is a leaf
// (the stage modules re-export the ones they use).

// ---- SimConfig ----

/// Simulator settings (the `simulate:` section of the pipeline config).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random draw.
    pub seed: u64,
    /// Number of aircraft.
    pub aircraft: u32,
    /// Engines per aircraft (one recording per engine per flight).
    pub engines_per_aircraft: u32,
    /// Flights per aircraft.
    pub flights_per_aircraft: u32,
    /// Range of flight durations, seconds.
    pub flight_duration_s: [f64; 2],
    /// Vibration sample rate, Hz.
    pub vibration_rate_hz: f64,
    /// Speed sample rate, Hz.
    pub speed_rate_hz: f64,
    /// Phase sample rate, Hz.
    pub phase_rate_hz: f64,
    /// Probability that a recording carries an engine fault.
    pub engine_fault_probability: f64,
    /// Probability that a recording carries a sensor event.
    pub sensor_event_probability: f64,
    /// Share of engine faults that are subtle.
    pub subtle_fraction: f64,
    /// How a flight's phases fill its duration: `scaled` (the default fleet: every phase
    /// stretched in proportion, minutes-long flights) or `realistic` (taxi, take-off, climb,
    /// descent, approach and landing last what they last on a real flight; cruise takes the
    /// rest: flights of hours, mostly cruise; needs flights of at least 4 500 s).
    #[serde(default, skip_serializing_if = "FlightProfile::is_scaled")]
    pub flight_profile: FlightProfile,
    /// An engine fault grows from onset to its full severity over a time drawn uniformly from
    /// this range, seconds (default 15 s, the default fleet's).
    #[serde(default = "default_growth", skip_serializing_if = "is_default_growth")]
    pub fault_growth_s: [f64; 2],
    /// Simulate the fleet as a feature stream: each recording is rendered in memory and goes
    /// straight through preprocessing (the same chunks a written file gives), so only the
    /// labels, `fleet.json` and the window table are written, never the raw recordings.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

fn default_growth() -> [f64; 2] {
    [15.0, 15.0]
}

fn is_default_growth(g: &[f64; 2]) -> bool {
    *g == default_growth()
}

/// See [`SimConfig::flight_profile`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FlightProfile {
    /// Every phase stretched in proportion to the flight's duration.
    #[default]
    Scaled,
    /// Real phase durations; cruise absorbs the rest.
    Realistic,
}

impl FlightProfile {
    fn is_scaled(&self) -> bool {
        *self == FlightProfile::Scaled
    }

    /// Shortest flight the profile can hold, s.
    pub fn min_flight_s(self) -> f64 {
        match self {
            FlightProfile::Scaled => 120.0,
            FlightProfile::Realistic => 4500.0,
        }
    }
}

impl SimConfig {
    /// Number of recordings this config produces.
    pub fn recordings(&self) -> usize {
        self.recordings_checked().unwrap_or(usize::MAX)
    }

    /// Number of recordings, or `None` when the product overflows.
    pub fn recordings_checked(&self) -> Option<usize> {
        (self.aircraft as usize)
            .checked_mul(self.engines_per_aircraft as usize)?
            .checked_mul(self.flights_per_aircraft as usize)
    }

    /// Checks every rule of the section (config loading calls it).
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.recordings() > 0,
            "simulate: aircraft, engines_per_aircraft and flights_per_aircraft must be > 0"
        );
        let [a, b] = self.flight_duration_s;
        let min = self.flight_profile.min_flight_s();
        ensure!(
            a >= min && b >= a,
            "simulate.flight_duration_s must be [min, max] with {min} <= min <= max (flight_profile {:?}), got [{a}, {b}]",
            self.flight_profile
        );
        let [g0, g1] = self.fault_growth_s;
        ensure!(
            g0 > 0.0 && g1 >= g0 && g1 <= 43_200.0,
            "simulate.fault_growth_s must be [min, max] with 0 < min <= max <= 43200, got [{g0}, {g1}]"
        );
        for (n, p) in [
            ("engine_fault_probability", self.engine_fault_probability),
            ("sensor_event_probability", self.sensor_event_probability),
            ("subtle_fraction", self.subtle_fraction),
        ] {
            ensure!((0.0..=1.0).contains(&p), "simulate.{n} must be in [0, 1], got {p}");
        }
        ensure!(self.vibration_rate_hz >= 512.0, "simulate.vibration_rate_hz must be >= 512");
        ensure!(self.speed_rate_hz > 0.0 && self.phase_rate_hz > 0.0, "simulate: rates must be > 0");
        Ok(())
    }
}

// ---- BaselineConfig ----

/// Per-unit baselines (the `baseline:` section): each engine (or aircraft) is compared with its
/// own healthy past, as HUMS trend monitoring does, instead of with the fleet average. A unit's
/// baseline is the mean feature vector of its clean normal *training* windows; the detector
/// then z-scores a window of that unit by its baseline and the fleet's pooled spread around the
/// units' baselines. Engines differ (build tolerances, sensor mounting): a fault that raises
/// a 1P line by 30 % hides inside the fleet's engine-to-engine spread but not inside one
/// engine's own. Units with fewer than `min_windows` such windows get no baseline: their
/// windows are not judged (counted apart) until one is fitted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    /// The unit: `engine` (`aircraft_id` and `engine_id`) or `aircraft`.
    pub by: GroupBy,
    /// Clean normal training windows a unit needs for a baseline of its own.
    #[serde(default = "BaselineConfig::default_min_windows")]
    pub min_windows: u64,
    /// A unit without a training baseline (a new engine) is *commissioned* when evaluated: the
    /// valid windows without a sensor event of its first `commission_flights` recordings (in
    /// recording-id order; whatever their labels, which in service nobody knows) become its
    /// baseline and are not judged. Whole flights, so that the baseline holds every phase in
    /// the proportions the training baselines do. 0: such units are not judged at all.
    #[serde(default = "BaselineConfig::default_commission_flights")]
    pub commission_flights: u64,
    /// When the split (by flight, from fractions) leaves a unit no training flight, its first
    /// recording (recording-id order) is moved into training, so that every unit of the fleet
    /// has a baseline, as every engine in service has its commissioning flights. Not applied to
    /// `split.lists` (explicit) or `split.group_by: engine | aircraft` splits (whose test units
    /// are new by design: they are commissioned).
    #[serde(default = "BaselineConfig::default_true")]
    pub first_flight_in_training: bool,
}

impl BaselineConfig {
    fn default_min_windows() -> u64 {
        20
    }

    fn default_commission_flights() -> u64 {
        1
    }

    fn default_true() -> bool {
        true
    }

    /// `by` is a physical unit and `min_windows` is sensible.
    pub fn check(&self) -> Result<(), UsageError> {
        if !matches!(self.by, GroupBy::Engine | GroupBy::Aircraft) {
            return Err(UsageError(format!(
                "baseline.by = {:?}: must be engine or aircraft (the unit whose own healthy windows are its baseline)",
                self.by
            )));
        }
        if self.commission_flights > 1000 {
            return Err(UsageError(format!(
                "baseline.commission_flights = {} must be between 0 (off) and 1000",
                self.commission_flights
            )));
        }
        if !(2..=1_000_000).contains(&self.min_windows) {
            return Err(UsageError(format!(
                "baseline.min_windows = {} must be between 2 and 1000000",
                self.min_windows
            )));
        }
        Ok(())
    }
}

// ---- SplitConfig ----

/// Split fractions (the `split:` section of the config).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Share of flights for training.
    pub training: f64,
    /// Share for validation (early stopping, threshold calibration).
    pub validation: f64,
    /// Share for the final test.
    pub test: f64,
    /// Shuffle seed.
    pub seed: u64,
    /// What is never divided between splits (and cross-validation folds): each flight (the
    /// default), each engine, or each aircraft.
    #[serde(default, skip_serializing_if = "GroupBy::is_flight")]
    pub group_by: GroupBy,
    /// Explicit recording ids per split (instead of the fractions): every recording must be in
    /// exactly one list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists: Option<SplitLists>,
}

/// The unit a split (or CV fold) never divides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Each recording (flight of one engine).
    #[default]
    Flight,
    /// Each engine (`aircraft_id` and `engine_id`): no engine is both trained on and tested.
    Engine,
    /// Each aircraft.
    Aircraft,
    /// Each value of a recording attribute (`group_by: {attribute: load}`): e.g. one
    /// operating condition, so that cross-validation with `leave_one_group_out` tests on
    /// conditions never trained on. Every recording must carry the attribute.
    Attribute(String),
}

/// Per recording (flight id): its attributes (from the recording metadata).
pub type Attributes = std::collections::HashMap<String, std::collections::BTreeMap<String, String>>;

impl GroupBy {
    fn is_flight(&self) -> bool {
        *self == GroupBy::Flight
    }

    /// The group of a recording with these ids (and `attributes`, for [`GroupBy::Attribute`];
    /// [`GroupBy::check`] first makes sure every recording has it).
    pub fn key(
        &self,
        flight_id: &str,
        aircraft_id: &str,
        engine_id: &str,
        attributes: &Attributes,
    ) -> String {
        match self {
            GroupBy::Flight => flight_id.to_string(),
            GroupBy::Engine => format!("{aircraft_id}/{engine_id}"),
            GroupBy::Aircraft => aircraft_id.to_string(),
            GroupBy::Attribute(a) => {
                attributes.get(flight_id).and_then(|m| m.get(a)).cloned().unwrap_or_default()
            }
        }
    }

    /// Every one of `flights` can be grouped: for an attribute, each carries it.
    pub fn check<'a>(
        &self,
        flights: impl IntoIterator<Item = &'a str>,
        attributes: &Attributes,
    ) -> Result<(), UsageError> {
        if let GroupBy::Attribute(a) = self {
            crate::ids::check("split.group_by.attribute", a).map_err(UsageError)?;
            let mut missing: Vec<&str> = flights
                .into_iter()
                .filter(|f| attributes.get(*f).is_none_or(|m| !m.contains_key(a)))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            if let Some(first) = missing.first() {
                return Err(UsageError(format!(
                    "split.group_by: attribute {a:?} is missing from {} recording(s) (first: {first}); \
                     recordings carry attributes in their metadata (avm import's mapping `attributes:`)",
                    missing.len()
                )));
            }
        }
        Ok(())
    }
}

/// Recording ids per split (`split.lists`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitLists {
    /// Training recordings.
    pub training: Vec<String>,
    /// Validation recordings.
    pub validation: Vec<String>,
    /// Test recordings.
    pub test: Vec<String>,
}

impl SplitConfig {
    pub(crate) fn check(&self) -> Result<(), UsageError> {
        let s = self.training + self.validation + self.test;
        if [self.training, self.validation, self.test].iter().any(|f| !(0.0..=1.0).contains(f))
            || (s - 1.0).abs() > 1e-9
        {
            return Err(UsageError(format!(
                "split: training, validation and test must be fractions summing to 1, got {} + {} + {} = {s}",
                self.training, self.validation, self.test
            )));
        }
        Ok(())
    }
}

// ---- Activation, TrainConfig ----

/// Training settings (the `train:` section of the config).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Hidden layer sizes, encoder then decoder (e.g. `[16, 8, 4, 8, 16]`).
    pub hidden: Vec<usize>,
    /// Hidden activation: `relu` or `sigmoid` (the output layer is linear).
    pub activation: Activation,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Most epochs.
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping.
    pub patience: usize,
    /// Seed of initial weights and batch order.
    pub seed: u64,
    /// Epoch checkpoints (`epoch_NNN.json`) kept besides `best.json` and `last.json`: the most
    /// recent ones (0 keeps none).
    #[serde(default = "default_keep_epochs")]
    pub keep_epochs: usize,
    /// Reduce the learning rate when the validation loss stops improving (none: constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_schedule: Option<LrSchedule>,
}

/// Reduce-on-plateau (`train.lr_schedule`): after `patience` epochs without a new best
/// validation loss, the learning rate is multiplied by `factor` (not below `min_learning_rate`)
/// and the count starts again. Replayed from the checkpoint's history, so `--resume` continues
/// with the same rate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LrSchedule {
    /// Multiplier, in (0, 1).
    pub factor: f64,
    /// Epochs without improvement before a reduction.
    pub patience: usize,
    /// Floor of the learning rate.
    pub min_learning_rate: f64,
}

impl TrainConfig {
    /// The learning rate of the epoch after `val_losses` (the history's validation losses).
    pub fn learning_rate_after(&self, val_losses: impl Iterator<Item = f64>) -> f64 {
        let Some(s) = &self.lr_schedule else { return self.learning_rate };
        let (mut lr, mut best, mut stale) = (self.learning_rate, f64::INFINITY, 0usize);
        for v in val_losses {
            if v < best {
                best = v;
                stale = 0;
            } else {
                stale += 1;
            }
            if stale >= s.patience {
                lr = (lr * s.factor).max(s.min_learning_rate);
                stale = 0;
            }
        }
        lr
    }
}

fn default_keep_epochs() -> usize {
    3
}

/// A layer's activation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x)
    Relu,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// x
    Linear,
}

// ---- EvalConfig ----

/// Evaluation settings (the `evaluate:` section).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// False-alarm rate the threshold is calibrated to on validation data.
    pub target_far: f64,
    /// Also calibrate one threshold per flight phase.
    pub per_phase_thresholds: bool,
    /// Fewest normal validation windows for a phase to get its own threshold.
    pub min_phase_windows: usize,
    /// Cross-validation folds: 0 disables cross-validation, otherwise at least 3 (one tests,
    /// the next validates, the rest train). Folds hold whole `split.group_by` groups.
    pub cv_folds: usize,
    /// Leave one group out: one fold per `split.group_by` group (`cv_folds` is then ignored
    /// unless 0, which still disables cross-validation).
    #[serde(default)]
    pub leave_one_group_out: bool,
    /// How thresholds are set from the calibration (validation) normal windows.
    #[serde(default)]
    pub calibration: Calibration,
    /// Flight-level calibration over the healthy validation flights (absent: off), see
    /// [`crate::model::calibration::flight_multiplier`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flight_calibration: Option<FlightCalibration>,
}

/// `evaluate.flight_calibration`: thresholds raised until at most this fraction of new healthy
/// flights is expected to raise an alert.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlightCalibration {
    /// Fraction of new healthy flights allowed to raise an alert, in (0, 1); needs at least
    /// `1/target - 1` healthy validation flights (else the step is skipped, with the reason
    /// in the report).
    pub target_alerting_fraction: f64,
}

/// Threshold calibration rule (`evaluate.calibration`), see [`crate::model::calibration`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// `empirical`, `conformal` or `tolerance`.
    pub method: CalibrationMethod,
    /// `tolerance` only: the probability (over calibration sets) that the false-alarm rate on
    /// new normal windows is at most `target_far`.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
}

fn default_confidence() -> f64 {
    0.9
}

impl Default for Calibration {
    fn default() -> Calibration {
        Calibration { method: CalibrationMethod::Tolerance, confidence: default_confidence() }
    }
}

/// The calibration rules.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    /// The seed's rule: the lowest threshold whose false-alarm rate on the calibration
    /// windows is at most the target (no out-of-sample guarantee).
    Empirical,
    /// Split-conformal: expected false-alarm rate on a new exchangeable normal window at most
    /// the target.
    Conformal,
    /// Order-statistic tolerance bound: false-alarm rate at most the target with probability
    /// `confidence`.
    Tolerance,
}

// ---- AlertConfig ----

/// The alert policy (the `alerts:` section): how window alarms become alerts, on board and on
/// the ground ([`avm_core::alert`]); written into the detector bundle.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// M: alarms among the last `raise_window` judged windows that raise an alert.
    pub raise_count: u8,
    /// N: judged windows watched (at most 32).
    pub raise_window: u8,
    /// Consecutive quiet judged windows that clear an alert.
    pub clear_count: u8,
    /// A window is quiet when its score is at most this fraction of its threshold (0 < f <= 1).
    pub clear_fraction: f32,
    /// An alert stays up until the flight ends.
    pub latch: bool,
    /// Phases (contract names) whose windows get no verdict, e.g. transients.
    pub no_verdict_phases: Vec<String>,
}

impl Default for AlertConfig {
    fn default() -> AlertConfig {
        AlertConfig {
            raise_count: 5,
            raise_window: 6,
            clear_count: 6,
            clear_fraction: 0.8,
            latch: false,
            no_verdict_phases: Vec::new(),
        }
    }
}

impl AlertConfig {
    /// The policy avm-core runs.
    pub fn policy(&self) -> avm_core::AlertPolicy {
        avm_core::AlertPolicy {
            raise_count: self.raise_count,
            raise_window: self.raise_window,
            clear_count: self.clear_count,
            clear_fraction: self.clear_fraction,
            latch: self.latch,
        }
    }

    /// Checks the policy's rules and that every no-verdict phase is one of `phases`.
    pub fn check(&self, phases: Option<&[String]>) -> Result<(), UsageError> {
        self.policy().validate().map_err(|e| {
            UsageError(format!("alerts.{} = {} breaks the rule: {}", e.field, e.value, e.rule))
        })?;
        if let Some(phases) = phases {
            for p in &self.no_verdict_phases {
                if !phases.contains(p) {
                    return Err(UsageError(format!(
                        "alerts.no_verdict_phases: {p:?} is not a phase of the contract (its phases: {})",
                        phases.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }
}

// ---- Gates ----

/// Quality gates (the `gates:` section); defaults are the seed's.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Gates {
    /// Lowest test ROC AUC.
    pub min_auc: f64,
    /// Lowest test precision.
    pub min_precision: f64,
    /// Lowest test recall.
    pub min_recall: f64,
    /// Highest test false-alarm rate.
    pub max_far: f64,
    /// Highest p99 single-window inference latency through ONNX Runtime, ms.
    pub max_latency_p99_ms: f64,
    /// Lowest fraction of gross-fault test flights alerted within `alert_deadline_s` of onset.
    pub min_gross_flights_alerted_in_time: f64,
    /// The deadline of that gate, seconds after the labelled onset.
    pub alert_deadline_s: f64,
    /// Lowest fraction of subtle-fault test flights alerted before the flight ends.
    pub min_subtle_flights_alerted: f64,
    /// Highest false alerts per 100 healthy test flight hours (point estimate).
    pub max_false_alerts_per_100_flight_hours: f64,
}

impl Default for Gates {
    fn default() -> Gates {
        Gates {
            min_auc: 0.90,
            min_precision: 0.85,
            min_recall: 0.85,
            max_far: 0.05,
            max_latency_p99_ms: 50.0,
            min_gross_flights_alerted_in_time: 1.0,
            alert_deadline_s: 60.0,
            min_subtle_flights_alerted: 0.9,
            max_false_alerts_per_100_flight_hours: 1.0,
        }
    }
}

// ---- TrackingConfig ----

/// Experiment tracking settings (the `tracking:` section; everything on by default).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// Write TensorBoard event files.
    pub tensorboard: bool,
    /// TensorBoard's log directory (one subdirectory per run).
    pub tensorboard_dir: PathBuf,
    /// Log runs to MLflow.
    pub mlflow: bool,
    /// Tracking URI (`http://host:port` or a local store path). `MLFLOW_TRACKING_URI` takes
    /// precedence; without either, the local store `mlruns`.
    pub mlflow_tracking_uri: Option<String>,
    /// Experiment name (default: the config's `name`).
    pub experiment: Option<String>,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            tensorboard: true,
            tensorboard_dir: PathBuf::from("logs/tensorboard"),
            mlflow: true,
            mlflow_tracking_uri: None,
            experiment: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> FeatureSettings {
        FeatureSettings {
            window_s: 10.0,
            hop_s: 5.0,
            fft_len: 1024,
            order_band_bins: 1,
            max_gap_samples: 8,
            spike_k_sigma: 3.0,
            full_scale_g: 50.0,
            max_shaft_speed_rpm: 20_000.0,
            ..FeatureSettings::default()
        }
    }

    #[test]
    fn builds_core_config() {
        let c = extractor_at(&params(), 2048.0).unwrap();
        assert_eq!((c.window_len_samples, c.hop_len_samples, c.fft_len), (20_480, 10_240, 1024));
        // 48 kHz with 4096-point segments: hop 0.512 s = 24 576 samples = 12 half-segments.
        let p = FeatureSettings { window_s: 1.024, hop_s: 0.512, fft_len: 4096, ..params() };
        let c = extractor_at(&p, 48_000.0).unwrap();
        assert_eq!((c.window_len_samples, c.hop_len_samples), (49_152, 24_576));
        let e = extractor_at(&FeatureSettings { hop_s: 5.1, ..params() }, 2048.0).unwrap_err();
        assert!(e.0.contains("features.hop_s = 5.1 s") && e.0.contains("nearest valid value: 5 s"), "{e}");
        for bad in [-10.0, 0.0, 1e9, f64::NAN] {
            let e = extractor_at(&FeatureSettings { window_s: bad, ..params() }, 2048.0).unwrap_err();
            assert!(e.0.contains("features.window_s") && e.0.contains("nearest valid value"), "{e}");
            assert!(!e.0.contains("window_len_samples"), "{e}");
        }
        let e = extractor_at(&FeatureSettings { window_s: 12.0, ..params() }, 2048.0).unwrap_err();
        assert!(e.0.contains("nearest valid value: 10 s"), "{e}");
        let e = extractor_at(&params(), 2048.5).unwrap_err();
        assert!(e.0.contains("whole number of Hz"), "{e}");
        // In samples: at 64.5 kHz, 0.127 s is 8191.5 samples; 8192 samples is the value to type.
        let at = |w: f64, h: f64, ws: Option<u32>, hs: Option<u32>| {
            let p = FeatureSettings {
                window_s: w,
                hop_s: h,
                window_samples: ws,
                hop_samples: hs,
                fft_len: 4096,
                ..params()
            };
            extractor_at(&p, 64_500.0)
        };
        let e = at(0.127, 0.0635, None, None).unwrap_err();
        assert!(e.0.contains("features.hop_s") && e.0.contains("(hop_samples: 4096)"), "{e}");
        let c = at(0.0, 0.0, Some(8192), Some(4096)).unwrap();
        assert_eq!((c.window_len_samples, c.hop_len_samples), (8192, 4096));
        let e = at(0.127, 0.0, Some(8192), Some(4096)).unwrap_err();
        assert!(
            e.0.contains("window_samples = 8192 and window_s = 0.127 s give two different lengths"),
            "{e}"
        );
        let e = at(0.0, 0.0, Some(8192), Some(0)).unwrap_err();
        assert!(e.0.contains("hop_samples = 0 must be at least 1"), "{e}");
        let e = at(0.0, 0.0, Some(8000), Some(4096)).unwrap_err();
        assert!(
            e.0.contains("features.window_samples = 8000 (") && e.0.contains("window_samples: 8192"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(
            &p,
            "name: x\npaths: {data: D}\ncontract: c.yaml\nfeatures: {window_s: 10, hop_s: 5, fft_len: 1024, \
             order_band_bins: 1, max_gap_samples: 8, spike_k_sigma: 3, full_scale_g: 50, max_shaft_speed_rpm: 2e4, \
             windw: 3}\n",
        )
        .unwrap();
        let e = PipelineConfig::load(&p).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("windw") && msg.contains("c.yaml"), "{msg}");
        assert!(e.downcast_ref::<UsageError>().is_some());
    }
}
