#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod alert;
pub mod bundle;
pub mod config;
pub mod extractor;
pub mod features;
mod fft;
mod iir;
pub mod model;
mod moments;
pub mod phase;
pub mod sanitize;
pub mod scaler;
mod spectrum;
pub mod wire;

#[cfg(feature = "defmt")]
mod defmt_impls;

pub use alert::{AlertEvent, AlertKind, AlertPolicy, Alerter};
pub use bundle::{AssessError, BundleError, Detector, PhaseEntry, Verdict};
pub use config::{
    BandSettings, ConfigError, ENV_FFT_LEN_MAX, EnvelopeSettings, ExtractorConfig, FFT_LEN_MAX,
    FFT_LEN_RANGE, Family, FeatureSettings, MAX_HOPS_PER_WINDOW, SettingsError,
};
pub use extractor::{FeatureExtractor, LengthMismatch, NoTap, SampleFate, SampleTap};
pub use features::{
    ChannelQuality, EnvKind, FEATURE_SCHEMA_VERSION, Families, Feature, FeatureFrame, FeatureSet, MAX_BANDS,
    MAX_ENV_ORDERS, MAX_FEATURES_PER_CHANNEL, MAX_ORDERS, RateKind, ShapeKind, SpectralScale, TimeKind,
    feature_name,
};
pub use fft::{FftEngine, HostFft, Microfft};
pub use model::{Activation, LayerSpec, ModelError, Network};
pub use phase::{MAX_PHASES, PHASE_UNKNOWN, PhaseTally};
pub use sanitize::SpikePolicy;
pub use scaler::{RunningStats, Scaler, ScalerError};
