//! `scaler.json`: the fitted z-score parameters with the feature names, units and schema
//! version they belong to. One reader ([`ScalerFile::load`]) that checks them before use.
//!
//! With per-unit baselines (config `baseline`) the file also holds each unit's baseline mean;
//! a window of unit `u` is then scaled as `(x - baseline_u) / std`, by the same avm-core
//! [`avm_core::Scaler`] a unit's detector bundle carries, so the trainer's scores are the
//! firmware's.

use crate::config::{Attributes, GroupBy};
use crate::error::UsageError;
use crate::formats::windows::Window;
use anyhow::{Context, Result, ensure};
use avm_core::FEATURE_SCHEMA_VERSION;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The fitted z-score parameters, as saved.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScalerFile {
    /// avm-core feature schema version.
    pub feature_schema_version: u16,
    /// Feature names, in vector order.
    pub feature_names: Vec<String>,
    /// Units, same order.
    pub units: Vec<String>,
    /// Means.
    pub mean: Vec<f32>,
    /// Population standard deviations (0: the feature is only centred).
    pub std: Vec<f32>,
    /// Windows the parameters were fitted on.
    pub fitted_on_windows: u64,
    /// Per-unit baselines: then `mean` is the fleet's (for reference) and `std` the pooled
    /// spread of the baselined units' windows around their own baselines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baselines: Option<Baselines>,
}

/// Per-unit baselines, as fitted (config `baseline`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Baselines {
    /// The unit (`engine`: key `aircraft/engine`; `aircraft`: key `aircraft`).
    pub by: GroupBy,
    /// Clean normal training windows a unit needed.
    pub min_windows: u64,
    /// Per unit key: its baseline.
    pub units: BTreeMap<String, UnitBaseline>,
    /// Units of the training split with too few clean normal windows (key: how many they had):
    /// their windows are not judged.
    pub too_few: BTreeMap<String, u64>,
}

/// One unit's baseline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnitBaseline {
    /// Mean of the unit's clean normal training windows, in feature order.
    pub mean: Vec<f32>,
    /// How many windows.
    pub windows: u64,
}

impl Baselines {
    /// The unit key of a window.
    pub fn unit_of(&self, w: &Window) -> String {
        self.by.key(&w.flight_id, &w.aircraft_id, &w.engine_id, &Attributes::new())
    }
}

impl ScalerFile {
    /// Loads and checks a scaler file against this build's schema.
    pub fn load(path: &Path) -> Result<ScalerFile> {
        let s: ScalerFile = serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?;
        ensure!(
            s.feature_schema_version == FEATURE_SCHEMA_VERSION,
            UsageError(format!(
                "{}: feature schema v{} but this build computes v{FEATURE_SCHEMA_VERSION}: rerun `avm featurize`",
                path.display(),
                s.feature_schema_version
            ))
        );
        avm_core::Scaler::new(&s.mean, &s.std).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
        if let Some(b) = &s.baselines {
            for (unit, u) in &b.units {
                ensure!(
                    u.mean.len() == s.mean.len(),
                    UsageError(format!(
                        "{}: baseline of unit {unit:?} has {} features, the scaler {}",
                        path.display(),
                        u.mean.len(),
                        s.mean.len()
                    ))
                );
                avm_core::Scaler::new(&u.mean, &s.std)
                    .map_err(|e| UsageError(format!("{}: baseline of unit {unit:?}: {e}", path.display())))?;
            }
        }
        Ok(s)
    }

    /// The mean a window is centred by: without baselines the fleet's; with baselines its
    /// unit's, or `None` when its unit has none (the window is not judged).
    pub fn mean_for(&self, w: &Window) -> Option<&[f32]> {
        match &self.baselines {
            None => Some(&self.mean),
            Some(b) => b.units.get(&b.unit_of(w)).map(|u| u.mean.as_slice()),
        }
    }

    /// The window can be scored: [`ScalerFile::mean_for`] has a mean for it.
    pub fn covers(&self, w: &Window) -> bool {
        self.mean_for(w).is_some()
    }

    /// The scaler file of one unit, as its detector bundle carries it: `mean` its baseline,
    /// no baselines. `None`: no baseline for `unit`.
    pub fn for_unit(&self, unit: &str) -> Option<ScalerFile> {
        let u = self.baselines.as_ref()?.units.get(unit)?;
        Some(ScalerFile { mean: u.mean.clone(), baselines: None, ..self.clone() })
    }

    /// Scales windows, each by its own mean ([`ScalerFile::mean_for`]) and `std`, with
    /// avm-core's scaler. A window without a mean is an error: filter with [`ScalerFile::covers`].
    pub fn scaled_windows<'a>(&self, rows: impl Iterator<Item = &'a Window>) -> Result<Vec<Vec<f32>>> {
        rows.map(|w| {
            let mean = self.mean_for(w).ok_or_else(|| {
                anyhow::anyhow!(
                    "window {} of {} has no baseline to be scaled by",
                    w.window_index,
                    w.flight_id
                )
            })?;
            let s = avm_core::Scaler::new(mean, &self.std).map_err(|e| anyhow::anyhow!("scaling: {e}"))?;
            let mut v = w.features.clone();
            s.apply(&mut v).map_err(|e| anyhow::anyhow!("scaling: {e}"))?;
            Ok(v)
        })
        .collect()
    }

    /// The core's scaler over these parameters.
    pub fn scaler(&self) -> avm_core::Scaler<'_> {
        avm_core::Scaler::new(&self.mean, &self.std).expect("checked at load/fit")
    }

    /// Scales feature vectors with avm-core's scaler.
    pub fn scaled<'a>(&self, rows: impl Iterator<Item = &'a [f32]>) -> Result<Vec<Vec<f32>>> {
        let s = self.scaler();
        rows.map(|r| {
            let mut v = r.to_vec();
            s.apply(&mut v).map_err(|e| anyhow::anyhow!("scaling: {e}"))?;
            Ok(v)
        })
        .collect()
    }
}
