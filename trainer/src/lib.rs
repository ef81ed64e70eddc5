//! avm-trainer: the host side of avm. It decides *which* samples go into a feature; avm-core
//! decides *how* every feature is computed.
//!
//! The folders are the layers, each using only the ones above it in this list (no cycle):
//!
//! | layer        | what                                                                   |
//! |--------------|------------------------------------------------------------------------|
//! | (top files)  | [`config`] (every section type, validated at load), [`error`], [`layout`] (every file name), [`ids`], [`io`] (atomic writes), [`guard`], [`lock`], [`ui`] (-q / -v) |
//! | [`formats`]  | what is read or written: contract, recording, labels, window table, scaler, parquet, MAT, ONNX |
//! | [`model`]    | the autoencoder and its checkpoint, the avm-core detector bundle, ONNX Runtime, metrics |
//! | [`tracking`] | the metric log, TensorBoard, MLflow, plots                               |
//! | [`release`]  | versions, quality gates, the registry                                    |
//! | [`stages`]   | one module per `avm` subcommand: simulate, import, init, validate, preprocess, featurize, train, evaluate, export, score, pipeline |
//!
//! `main.rs` is a thin CLI over the stages.

pub mod config;
pub mod error;
pub mod formats;
pub mod guard;
pub mod ids;
pub mod io;
pub mod layout;
pub mod lock;
pub mod model;
pub mod release;
pub mod stages;
pub mod tracking;
pub mod ui;

pub use error::{ContractViolations, UsageError, Violation};
