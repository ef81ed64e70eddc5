//! avm-trainer: the host side of avm. It decides *which* samples go into a feature; avm-core
//! decides *how* every feature is computed.
//!
//! Stages are modules with typed inputs and outputs (contract, sync, preprocess, featurize, ...);
//! `main.rs` is a thin CLI over them.

pub mod config;
pub mod contract;
pub mod detector;
pub mod error;
pub mod evaluate;
pub mod export;
pub mod extract;
pub mod featurize;
pub mod guard;
pub mod ids;
pub mod import;
pub mod io;
pub mod labels;
pub mod layout;
pub mod lock;
pub mod matfile;
pub mod metrics;
pub mod mlflow;
pub mod onnx;
pub mod pipeline;
pub mod plots;
pub mod preprocess;
pub mod recording;
pub mod registry;
pub mod runtime;
pub mod simulate;
pub mod sync;
pub mod table;
pub mod tensorboard;
pub mod tracking;
pub mod train;

pub use error::{ContractViolations, UsageError, Violation};
