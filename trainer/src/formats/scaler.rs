//! `scaler.json`: the fitted z-score parameters with the feature names, units and schema
//! version they belong to. One reader ([`ScalerFile::load`]) that checks them before use.

use crate::error::UsageError;
use anyhow::{Context, Result, ensure};
use avm_core::FEATURE_SCHEMA_VERSION;
use serde::{Deserialize, Serialize};
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
        Ok(s)
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
