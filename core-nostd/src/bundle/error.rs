//! Why a bundle was refused ([`BundleError`], parsing and run time) or could not be built
//! ([`EncodeError`]).

use super::NAME_BYTES;
use crate::alert::PolicyError;
use crate::config::ConfigError;
use crate::model::{MAX_LAYER_WIDTH, ModelError};
use crate::phase::MAX_PHASES;
use core::fmt;

/// Why a bundle was refused.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum BundleError {
    /// Fewer bytes than the header and checksum need, or than the header declares.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The first four bytes are not `AVMB`.
    BadMagic,
    /// A layout this build does not read.
    FormatVersion {
        /// Version in the bundle.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The declared length is not the length given.
    Length {
        /// Declared.
        declared: usize,
        /// Given.
        actual: usize,
    },
    /// The CRC-32 does not match: the bundle is corrupted.
    Checksum {
        /// Stored in the bundle.
        stored: u32,
        /// Computed over its bytes.
        computed: u32,
    },
    /// Features of another schema: the model was trained on other numbers.
    SchemaVersion {
        /// Version in the bundle.
        found: u16,
        /// Version this build computes.
        expected: u16,
    },
    /// The extractor config breaks a constraint.
    Config(ConfigError),
    /// `n_features` is not `n_channels` times the feature set's features per channel, or above
    /// the network's limit.
    FeatureCount {
        /// Channels.
        channels: u16,
        /// Features declared.
        features: u16,
        /// Features per channel of the bundle's feature set.
        per_channel: u16,
    },
    /// A channel or phase name is not zero-padded UTF-8.
    BadName {
        /// Byte offset of the name field.
        offset: usize,
    },
    /// A scaler mean is not finite or a std is negative or not finite.
    BadScaler {
        /// Feature index.
        index: usize,
    },
    /// A threshold is not finite.
    BadThreshold {
        /// Byte offset of the threshold.
        offset: usize,
    },
    /// The network is malformed.
    Model(ModelError),
    /// The network's width differs from the feature count.
    NetworkInputs {
        /// Network inputs.
        network: usize,
        /// Features.
        features: usize,
    },
    /// Bytes left over between the sections and the checksum.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The alert policy breaks a rule.
    Policy(PolicyError),
    /// More phases than a detector can tell apart.
    TooManyPhases {
        /// Phases in the bundle.
        count: usize,
    },
    /// A reserved field or flag bit is set: the bundle was written by a newer build.
    Reserved {
        /// Byte offset.
        offset: usize,
    },
    /// The bundle needs more than the build it is given to was made for
    /// ([`Detector::parse_for`](super::Detector::parse_for)): another channel count, or an FFT
    /// longer than the extractor's capacity.
    Capacity {
        /// What: `"vibration channels"` (must be equal) or `"fft_len"` (at most the capacity).
        what: &'static str,
        /// The bundle's value.
        bundle: u32,
        /// This build's.
        build: u32,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BundleError::Truncated { needed, actual } => {
                write!(f, "bundle truncated: {actual} bytes, at least {needed} needed")
            }
            BundleError::BadMagic => write!(f, "not a detector bundle: the first bytes are not \"AVMB\""),
            BundleError::FormatVersion { found, supported } => {
                write!(f, "bundle format v{found}; this build reads v{supported}")
            }
            BundleError::Length { declared, actual } => {
                write!(f, "bundle declares {declared} bytes but {actual} were given")
            }
            BundleError::Checksum { stored, computed } => write!(
                f,
                "bundle checksum mismatch: stored CRC-32 {stored:#010x}, computed {computed:#010x} (corrupted)"
            ),
            BundleError::SchemaVersion { found, expected } => {
                write!(f, "bundle was trained on feature schema v{found}; this avm-core computes v{expected}")
            }
            BundleError::Config(e) => write!(f, "bundle extractor config: {e}"),
            BundleError::FeatureCount { channels, features, per_channel } => write!(
                f,
                "bundle has {features} features for {channels} channels; its feature set has {per_channel} per channel, and at most {MAX_LAYER_WIDTH} in all"
            ),
            BundleError::BadName { offset } => {
                write!(f, "bundle name at byte {offset} is not zero-padded UTF-8")
            }
            BundleError::BadScaler { index } => {
                write!(f, "bundle scaler parameter {index} is not finite or has a negative std")
            }
            BundleError::BadThreshold { offset } => {
                write!(f, "bundle threshold at byte {offset} is not finite")
            }
            BundleError::Model(e) => write!(f, "bundle network: {e}"),
            BundleError::NetworkInputs { network, features } => {
                write!(f, "bundle network takes {network} inputs but the bundle has {features} features")
            }
            BundleError::TrailingBytes { count } => {
                write!(f, "bundle has {count} unexplained bytes before its checksum")
            }
            BundleError::Policy(e) => write!(f, "bundle {e}"),
            BundleError::TooManyPhases { count } => {
                write!(f, "bundle has {count} phases; a detector tells at most {MAX_PHASES} apart")
            }
            BundleError::Reserved { offset } => write!(
                f,
                "bundle byte {offset} is reserved but set: written by a newer avm, which this build cannot honour"
            ),
            BundleError::Capacity { what: "vibration channels", bundle, build } => {
                write!(f, "bundle is for {bundle} vibration channels; this build is for exactly {build}")
            }
            BundleError::Capacity { what, bundle, build } => {
                write!(f, "bundle's {what} is {bundle}; this build handles at most {build}")
            }
        }
    }
}

/// Why [`encode`](crate::bundle::encode) refused a spec.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is smaller than the bundle.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A name is longer than [`NAME_BYTES`] bytes or contains a zero byte.
    Name {
        /// Its length in bytes.
        len: usize,
    },
    /// A layer's `w` or `b` has the wrong length.
    Shape {
        /// Layer index.
        layer: usize,
    },
    /// The scaler's length is not the channels' feature count, or a count or the total length
    /// does not fit its header field.
    Counts,
    /// The encoded bytes do not parse back (the spec breaks a rule [`Detector::parse`](crate::Detector::parse) checks).
    Invalid(BundleError),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BufferTooSmall { needed, actual } => {
                write!(f, "bundle needs {needed} bytes, the buffer has {actual}")
            }
            EncodeError::Name { len } => write!(
                f,
                "a name of {len} bytes does not fit: names are at most {NAME_BYTES} bytes, without zero bytes"
            ),
            EncodeError::Counts => write!(
                f,
                "the scaler's length does not match the channels, or a count does not fit the header"
            ),
            EncodeError::Shape { layer } => write!(f, "layer {layer}: w or b has the wrong length"),
            EncodeError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

/// Why [`crate::Detector::assess`] could not score a frame (the bundle itself was accepted).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum AssessError {
    /// The frame has another channel count than the detector.
    Channels {
        /// Channels in the bundle.
        expected: usize,
        /// Channels in the frame.
        actual: usize,
    },
    /// The network could not score the frame.
    Model(ModelError),
    /// A phase code that is neither in the bundle's phase table nor [`crate::phase::PHASE_UNKNOWN`].
    Phase {
        /// The code given.
        code: u8,
        /// Phases in the bundle.
        phases: usize,
    },
}

impl fmt::Display for AssessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AssessError::Channels { expected, actual } => {
                write!(f, "frame has {actual} channels; the detector was trained on {expected}")
            }
            AssessError::Model(e) => write!(f, "scoring: {e}"),
            AssessError::Phase { code, phases } => write!(
                f,
                "phase code {code}: the detector knows {phases} phases (codes 0..{phases}) and 255 for unknown"
            ),
        }
    }
}

impl core::error::Error for AssessError {}
