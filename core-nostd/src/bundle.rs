//! The detector bundle (`detector.avmb`): everything the firmware needs to turn samples into
//! verdicts, in one checksummed byte string it can keep in flash and read in place.
//!
//! [`Detector::parse`] checks a `&[u8]` and returns a view over it: no copy, no allocation.
//! It refuses a bundle whose magic, format, length, checksum, feature schema, extractor
//! config, scaler or network is wrong, naming what failed ([`BundleError`]).
//!
//! # Layout (little-endian, byte offsets; the fixed header's ranges are [`field`])
//! | offset | field |
//! |---|---|
//! | 0 | magic `AVMB` |
//! | 4 | format version `u16` ([`BUNDLE_FORMAT_VERSION`]) |
//! | 6 | feature schema version `u16` (must equal [`FEATURE_SCHEMA_VERSION`]) |
//! | 8 | total length in bytes `u32`, checksum included |
//! | 12 | extractor config: `sample_rate_hz, window_len_samples, hop_len_samples, fft_len, order_band_bins, max_gap_samples` as `u32`, then `spike_k_sigma, full_scale_g, max_shaft_speed_rpm` as `f32` |
//! | 48 | `n_channels u16, n_features u16, n_layers u16, n_phase_thresholds u16` |
//! | 56 | global threshold `f32` |
//! | 60 | detector version `major, minor, patch u16`, `0u16` |
//! | 68 | channel names: `n_channels` x [`NAME_BYTES`] (UTF-8, zero-padded) |
//! | | scaler: `n_features` means, then `n_features` stds (`f32`) |
//! | | network: `n_layers` layers ([`crate::model`]'s encoding) |
//! | | phase thresholds: `n_phase_thresholds` x ([`NAME_BYTES`] name, `f32`) |
//! | end - 4 | CRC-32 (IEEE 802.3, as zlib's `crc32`) of every byte before it |
//!
//! # Verdicts
//! [`Detector::assess`] scales a [`FeatureFrame`] with the bundle's scaler (exactly
//! [`crate::Scaler::apply`]'s arithmetic), scores it with the network and alarms when the
//! window is valid and `score > threshold`. An invalid window (unrepaired gaps) is scored but
//! never alarms: it has no verdict.

use crate::config::{ConfigError, ExtractorConfig};
use crate::features::{FEATURE_SCHEMA_VERSION, FEATURES_PER_CHANNEL, FeatureFrame};
use crate::model::{self, MAX_LAYER_WIDTH, ModelError, Network, f32_at, u16_at, u32_at};
use crate::scaler::scale_value;
use core::fmt;

/// The bundle's first four bytes.
pub const MAGIC: [u8; 4] = *b"AVMB";
/// The layout version this build reads and writes.
pub const BUNDLE_FORMAT_VERSION: u16 = 1;
/// Bytes of the fixed header (before the channel names).
pub const HEADER_BYTES: usize = field::HEADER_END;

/// The fixed header's fields as byte ranges (as smoltcp's `wire` modules do): [`Detector::parse`]
/// reads and [`encode`] writes through these, so the layout in the module docs is written
/// once in code.
pub mod field {
    use core::ops::Range;

    /// Magic `AVMB`.
    pub const MAGIC: Range<usize> = 0..4;
    /// Format version, `u16`.
    pub const FORMAT: Range<usize> = 4..6;
    /// Feature schema version, `u16`.
    pub const SCHEMA: Range<usize> = 6..8;
    /// Total length in bytes, checksum included, `u32`.
    pub const LENGTH: Range<usize> = 8..12;
    /// The extractor config's integer fields, `u32` each, in [`crate::ExtractorConfig`]'s order:
    /// `sample_rate_hz, window_len_samples, hop_len_samples, fft_len, order_band_bins,
    /// max_gap_samples`.
    pub const CONFIG_U32: [Range<usize>; 6] = [12..16, 16..20, 20..24, 24..28, 28..32, 32..36];
    /// The extractor config's float fields, `f32` each: `spike_k_sigma, full_scale_g,
    /// max_shaft_speed_rpm`.
    pub const CONFIG_F32: [Range<usize>; 3] = [36..40, 40..44, 44..48];
    /// Channel count, `u16`.
    pub const N_CHANNELS: Range<usize> = 48..50;
    /// Feature count, `u16`.
    pub const N_FEATURES: Range<usize> = 50..52;
    /// Layer count, `u16`.
    pub const N_LAYERS: Range<usize> = 52..54;
    /// Per-phase threshold count, `u16`.
    pub const N_PHASES: Range<usize> = 54..56;
    /// Global threshold, `f32`.
    pub const THRESHOLD: Range<usize> = 56..60;
    /// Detector version `major, minor, patch`, `u16` each.
    pub const VERSION: [Range<usize>; 3] = [60..62, 62..64, 64..66];
    /// Reserved, zero.
    pub const RESERVED: Range<usize> = 66..68;
    /// End of the fixed header: the channel names start here.
    pub const HEADER_END: usize = RESERVED.end;
}
/// Bytes of a channel or phase name field.
pub const NAME_BYTES: usize = 32;
/// Bytes of one phase-threshold entry.
pub const PHASE_ENTRY_BYTES: usize = NAME_BYTES + 4;

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
    /// `n_features` is not `n_channels * FEATURES_PER_CHANNEL`, or above the network's limit.
    FeatureCount {
        /// Channels.
        channels: u16,
        /// Features declared.
        features: u16,
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
    /// [`Detector::assess`] was given a frame with another channel count.
    Channels {
        /// Channels in the bundle.
        expected: usize,
        /// Channels in the frame.
        actual: usize,
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
            BundleError::FeatureCount { channels, features } => write!(
                f,
                "bundle has {features} features for {channels} channels; expected {FEATURES_PER_CHANNEL} per channel, at most {MAX_LAYER_WIDTH}"
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
            BundleError::Channels { expected, actual } => {
                write!(f, "frame has {actual} channels; the detector was trained on {expected}")
            }
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, init and final xor `0xFFFF_FFFF`: zlib's `crc32`), from the
/// `crc` crate; [`CRC32`]`.digest()` hashes a stream in pieces.
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 of `bytes` ([`CRC32`]).
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// A zero-padded UTF-8 name field.
fn name_at(bytes: &[u8], at: usize) -> Result<&str, BundleError> {
    let field = &bytes[at..at + NAME_BYTES];
    let len = field.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
    if field[len..].iter().any(|&b| b != 0) {
        return Err(BundleError::BadName { offset: at });
    }
    core::str::from_utf8(&field[..len]).map_err(|_| BundleError::BadName { offset: at })
}

/// A verdict on one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// The frame's window index.
    pub window_index: u32,
    /// Reconstruction MSE of the scaled features.
    pub score: f32,
    /// The threshold it was compared with.
    pub threshold: f32,
    /// The window had no unrepaired gap: the verdict counts.
    pub valid: bool,
    /// `valid && score > threshold`.
    pub alarm: bool,
}

/// A checked view of a detector bundle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detector<'a> {
    bytes: &'a [u8],
    config: ExtractorConfig,
    channels: usize,
    features: usize,
    threshold: f32,
    version: [u16; 3],
    names_at: usize,
    scaler_at: usize,
    network: Network<'a>,
    phases_at: usize,
    phases: usize,
}

impl<'a> Detector<'a> {
    /// Checks `bytes` (see the module docs) and returns a view over it.
    pub fn parse(bytes: &'a [u8]) -> Result<Detector<'a>, BundleError> {
        if bytes.len() < HEADER_BYTES + 4 {
            return Err(BundleError::Truncated { needed: HEADER_BYTES + 4, actual: bytes.len() });
        }
        if bytes[field::MAGIC] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let format = u16_at(bytes, field::FORMAT.start);
        if format != BUNDLE_FORMAT_VERSION {
            return Err(BundleError::FormatVersion { found: format, supported: BUNDLE_FORMAT_VERSION });
        }
        let declared = u32_at(bytes, field::LENGTH.start) as usize;
        if declared > bytes.len() {
            return Err(BundleError::Truncated { needed: declared, actual: bytes.len() });
        }
        if declared != bytes.len() {
            return Err(BundleError::Length { declared, actual: bytes.len() });
        }
        let body = bytes.len() - 4;
        let stored = u32_at(bytes, body);
        let computed = crc32(&bytes[..body]);
        if stored != computed {
            return Err(BundleError::Checksum { stored, computed });
        }
        let schema = u16_at(bytes, field::SCHEMA.start);
        if schema != FEATURE_SCHEMA_VERSION {
            return Err(BundleError::SchemaVersion { found: schema, expected: FEATURE_SCHEMA_VERSION });
        }
        let [rate, window, hop, fft, band, gap] = field::CONFIG_U32.map(|r| u32_at(bytes, r.start));
        let [spike, full_scale, max_rpm] = field::CONFIG_F32.map(|r| f32_at(bytes, r.start));
        let config = ExtractorConfig {
            sample_rate_hz: rate,
            window_len_samples: window,
            hop_len_samples: hop,
            fft_len: fft,
            order_band_bins: band,
            max_gap_samples: gap,
            spike_k_sigma: spike,
            full_scale_g: full_scale,
            max_shaft_speed_rpm: max_rpm,
        };
        config.validate().map_err(BundleError::Config)?;
        let (ch, nf) = (u16_at(bytes, field::N_CHANNELS.start), u16_at(bytes, field::N_FEATURES.start));
        let (channels, features) = (usize::from(ch), usize::from(nf));
        if channels == 0 || features != channels * FEATURES_PER_CHANNEL || features > MAX_LAYER_WIDTH {
            return Err(BundleError::FeatureCount { channels: ch, features: nf });
        }
        let layers = usize::from(u16_at(bytes, field::N_LAYERS.start));
        let phases = usize::from(u16_at(bytes, field::N_PHASES.start));
        let threshold = f32_at(bytes, field::THRESHOLD.start);
        if !threshold.is_finite() {
            return Err(BundleError::BadThreshold { offset: field::THRESHOLD.start });
        }
        let version = field::VERSION.map(|r| u16_at(bytes, r.start));
        let names_at = HEADER_BYTES;
        let scaler_at = names_at + channels * NAME_BYTES;
        let network_at = scaler_at + 8 * features;
        if network_at > body {
            return Err(BundleError::Truncated { needed: network_at + 4, actual: bytes.len() });
        }
        for c in 0..channels {
            name_at(bytes, names_at + c * NAME_BYTES)?;
        }
        for i in 0..features {
            let m = f32_at(bytes, scaler_at + 4 * i);
            let s = f32_at(bytes, scaler_at + 4 * (features + i));
            if !(m.is_finite() && s.is_finite() && s >= 0.0) {
                return Err(BundleError::BadScaler { index: i });
            }
        }
        let (network, rest) = Network::parse(&bytes[network_at..body], layers).map_err(BundleError::Model)?;
        if network.inputs() != features {
            return Err(BundleError::NetworkInputs { network: network.inputs(), features });
        }
        let phases_at = body - rest.len();
        let needed = phases * PHASE_ENTRY_BYTES;
        if rest.len() < needed {
            return Err(BundleError::Truncated {
                needed: bytes.len() - rest.len() + needed,
                actual: bytes.len(),
            });
        }
        if rest.len() > needed {
            return Err(BundleError::TrailingBytes { count: rest.len() - needed });
        }
        for p in 0..phases {
            let at = phases_at + p * PHASE_ENTRY_BYTES;
            name_at(bytes, at)?;
            if !f32_at(bytes, at + NAME_BYTES).is_finite() {
                return Err(BundleError::BadThreshold { offset: at + NAME_BYTES });
            }
        }
        Ok(Detector {
            bytes,
            config,
            channels,
            features,
            threshold,
            version,
            names_at,
            scaler_at,
            network,
            phases_at,
            phases,
        })
    }

    /// The extractor config the model was trained with: build the firmware's
    /// [`crate::FeatureExtractor`] from it.
    pub fn config(&self) -> ExtractorConfig {
        self.config
    }

    /// Vibration channels, in feature order.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Name of channel `i`.
    pub fn channel_name(&self, i: usize) -> Option<&'a str> {
        (i < self.channels).then(|| name_at(self.bytes, self.names_at + i * NAME_BYTES).unwrap_or(""))
    }

    /// Features per window (`channels * FEATURES_PER_CHANNEL`).
    pub fn features(&self) -> usize {
        self.features
    }

    /// The global alarm threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The detector's version (`major, minor, patch`).
    pub fn version(&self) -> [u16; 3] {
        self.version
    }

    /// The bundle's CRC-32.
    pub fn checksum(&self) -> u32 {
        u32_at(self.bytes, self.bytes.len() - 4)
    }

    /// The bundle's size in bytes.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The network.
    pub fn network(&self) -> Network<'a> {
        self.network
    }

    /// Number of per-phase thresholds.
    pub fn phase_count(&self) -> usize {
        self.phases
    }

    /// Per-phase threshold `i`: `(phase name, threshold)`.
    pub fn phase_threshold_at(&self, i: usize) -> Option<(&'a str, f32)> {
        let at = self.phases_at + i * PHASE_ENTRY_BYTES;
        (i < self.phases)
            .then(|| (name_at(self.bytes, at).unwrap_or(""), f32_at(self.bytes, at + NAME_BYTES)))
    }

    /// The threshold for flight phase `phase`: its own if calibrated, else the global one.
    pub fn threshold_for_phase(&self, phase: &str) -> f32 {
        (0..self.phases)
            .filter_map(|i| self.phase_threshold_at(i))
            .find(|(p, _)| *p == phase)
            .map_or(self.threshold, |(_, t)| t)
    }

    /// z-scores `features` into `out` (both of length [`Detector::features`]).
    pub fn scale(&self, features: &[f32], out: &mut [f32]) -> Result<(), ModelError> {
        if features.len() != self.features || out.len() != self.features {
            return Err(ModelError::InputLength {
                expected: self.features,
                actual: if features.len() != self.features { features.len() } else { out.len() },
            });
        }
        for (i, (o, &x)) in out.iter_mut().zip(features).enumerate() {
            let m = f32_at(self.bytes, self.scaler_at + 4 * i);
            let s = f32_at(self.bytes, self.scaler_at + 4 * (self.features + i));
            *o = scale_value(x, m, s);
        }
        Ok(())
    }

    /// The anomaly score of an unscaled feature vector.
    pub fn score(&self, features: &[f32]) -> Result<f32, ModelError> {
        let mut z = [0.0f32; MAX_LAYER_WIDTH];
        let z = &mut z[..self.features];
        self.scale(features, z)?;
        self.network.score(z)
    }

    /// Scores a frame and compares with the global threshold.
    pub fn assess<const CH: usize>(&self, frame: &FeatureFrame<CH>) -> Result<Verdict, BundleError> {
        self.assess_with(frame, self.threshold)
    }

    /// Scores a frame and compares with `threshold` (a phase's, say).
    pub fn assess_with<const CH: usize>(
        &self,
        frame: &FeatureFrame<CH>,
        threshold: f32,
    ) -> Result<Verdict, BundleError> {
        if CH != self.channels {
            return Err(BundleError::Channels { expected: self.channels, actual: CH });
        }
        let score = self.score(frame.as_slice()).map_err(BundleError::Model)?;
        Ok(Verdict {
            window_index: frame.window_index,
            score,
            threshold,
            valid: frame.valid,
            alarm: frame.valid && score > threshold,
        })
    }
}

/// Everything a bundle holds, for [`encode`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BundleSpec<'s> {
    /// The extractor config the features were computed with.
    pub config: ExtractorConfig,
    /// Vibration channel names, in feature order (at most [`NAME_BYTES`] bytes each).
    pub channels: &'s [&'s str],
    /// Scaler means (`channels * FEATURES_PER_CHANNEL`).
    pub mean: &'s [f32],
    /// Scaler stds.
    pub std: &'s [f32],
    /// The network.
    pub layers: &'s [model::LayerSpec<'s>],
    /// Global threshold.
    pub threshold: f32,
    /// Per-phase thresholds (names at most [`NAME_BYTES`] bytes).
    pub phase_thresholds: &'s [(&'s str, f32)],
    /// Detector version.
    pub version: [u16; 3],
}

/// Why [`encode`] refused a spec.
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
    /// A layer's `w` or `b` has the wrong length, or a count does not fit the header.
    Shape {
        /// Layer index (or `usize::MAX` for the scaler and counts).
        layer: usize,
    },
    /// The encoded bytes do not parse back (the spec breaks a rule [`Detector::parse`] checks).
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
            EncodeError::Shape { layer: usize::MAX } => {
                write!(f, "scaler length or a count does not match the channels")
            }
            EncodeError::Shape { layer } => write!(f, "layer {layer}: w or b has the wrong length"),
            EncodeError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    out[*at..*at + bytes.len()].copy_from_slice(bytes);
    *at += bytes.len();
}

fn put_name(out: &mut [u8], at: &mut usize, name: &str) -> Result<(), EncodeError> {
    let b = name.as_bytes();
    if b.len() > NAME_BYTES || b.contains(&0) {
        return Err(EncodeError::Name { len: b.len() });
    }
    out[*at..*at + NAME_BYTES].fill(0);
    out[*at..*at + b.len()].copy_from_slice(b);
    *at += NAME_BYTES;
    Ok(())
}

/// The length of `spec`'s bundle, after checking the scaler and layer shapes.
pub fn encoded_len(spec: &BundleSpec<'_>) -> Result<usize, EncodeError> {
    let features = spec.channels.len() * FEATURES_PER_CHANNEL;
    if spec.mean.len() != features || spec.std.len() != features {
        return Err(EncodeError::Shape { layer: usize::MAX });
    }
    let layers = model::encoded_layers_len(spec.layers).map_err(|layer| EncodeError::Shape { layer })?;
    Ok(HEADER_BYTES
        + spec.channels.len() * NAME_BYTES
        + 8 * features
        + layers
        + spec.phase_thresholds.len() * PHASE_ENTRY_BYTES
        + 4)
}

/// Encodes `spec` into `out` and returns the bundle's length. The result is checked by
/// parsing it back, so whatever `encode` returns `Ok` for, [`Detector::parse`] accepts.
pub fn encode(spec: &BundleSpec<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    let len = encoded_len(spec)?;
    if out.len() < len {
        return Err(EncodeError::BufferTooSmall { needed: len, actual: out.len() });
    }
    let features = spec.channels.len() * FEATURES_PER_CHANNEL;
    let count = |n: usize| u16::try_from(n).map_err(|_| EncodeError::Shape { layer: usize::MAX });
    let total = u32::try_from(len).map_err(|_| EncodeError::Shape { layer: usize::MAX })?;
    let c = &spec.config;
    let header = &mut out[..HEADER_BYTES];
    header.fill(0);
    header[field::MAGIC].copy_from_slice(&MAGIC);
    header[field::FORMAT].copy_from_slice(&BUNDLE_FORMAT_VERSION.to_le_bytes());
    header[field::SCHEMA].copy_from_slice(&FEATURE_SCHEMA_VERSION.to_le_bytes());
    header[field::LENGTH].copy_from_slice(&total.to_le_bytes());
    let ints = [
        c.sample_rate_hz,
        c.window_len_samples,
        c.hop_len_samples,
        c.fft_len,
        c.order_band_bins,
        c.max_gap_samples,
    ];
    for (r, v) in field::CONFIG_U32.into_iter().zip(ints) {
        header[r].copy_from_slice(&v.to_le_bytes());
    }
    for (r, v) in field::CONFIG_F32.into_iter().zip([c.spike_k_sigma, c.full_scale_g, c.max_shaft_speed_rpm])
    {
        header[r].copy_from_slice(&v.to_le_bytes());
    }
    let counts = [
        (field::N_CHANNELS, spec.channels.len()),
        (field::N_FEATURES, features),
        (field::N_LAYERS, spec.layers.len()),
        (field::N_PHASES, spec.phase_thresholds.len()),
    ];
    for (r, n) in counts {
        header[r].copy_from_slice(&count(n)?.to_le_bytes());
    }
    header[field::THRESHOLD].copy_from_slice(&spec.threshold.to_le_bytes());
    for (r, v) in field::VERSION.into_iter().zip(spec.version) {
        header[r].copy_from_slice(&v.to_le_bytes());
    }
    let mut at = HEADER_BYTES;
    for name in spec.channels {
        put_name(out, &mut at, name)?;
    }
    for v in spec.mean.iter().chain(spec.std) {
        put(out, &mut at, &v.to_le_bytes());
    }
    at += model::encode_layers(spec.layers, &mut out[at..])
        .map_err(|_| EncodeError::Shape { layer: usize::MAX })?;
    for (name, t) in spec.phase_thresholds {
        put_name(out, &mut at, name)?;
        put(out, &mut at, &t.to_le_bytes());
    }
    let crc = crc32(&out[..at]);
    put(out, &mut at, &crc.to_le_bytes());
    debug_assert_eq!(at, len);
    Detector::parse(&out[..len]).map_err(EncodeError::Invalid)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        // zlib.crc32(b"123456789") == 0xCBF43926, the standard check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn short_and_foreign_bytes_are_refused() {
        assert_eq!(
            Detector::parse(&[0u8; 10]),
            Err(BundleError::Truncated { needed: HEADER_BYTES + 4, actual: 10 })
        );
        assert_eq!(Detector::parse(&[0u8; 100]), Err(BundleError::BadMagic));
        let msg = std::format!("{}", BundleError::Checksum { stored: 1, computed: 2 });
        assert!(msg.contains("corrupted"), "{msg}");
    }

    extern crate std;
    use crate::model::{Activation, LayerSpec};
    use std::vec;
    use std::vec::Vec;

    /// A 1-channel detector: 11 -> 3 -> 11.
    fn sample() -> Vec<u8> {
        let cfg = ExtractorConfig::default_at(2048).unwrap();
        let mean: Vec<f32> = (0..11).map(|i| i as f32 * 0.5).collect();
        let mut std: Vec<f32> = (0..11).map(|i| 1.0 + i as f32 * 0.25).collect();
        std[3] = 0.0;
        let w1: Vec<f32> = (0..33).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1).collect();
        let w2: Vec<f32> = (0..33).map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.05).collect();
        let layers = [
            LayerSpec { d_in: 11, d_out: 3, activation: Activation::Relu, w: &w1, b: &[0.1, -0.2, 0.3] },
            LayerSpec { d_in: 3, d_out: 11, activation: Activation::Linear, w: &w2, b: &[0.01; 11] },
        ];
        let spec = BundleSpec {
            config: cfg,
            channels: &["vib_fan"],
            mean: &mean,
            std: &std,
            layers: &layers,
            threshold: 0.75,
            phase_thresholds: &[("cruise", 0.5), ("take_off", 1.5)],
            version: [1, 2, 3],
        };
        let n = encoded_len(&spec).unwrap();
        let mut out = vec![0u8; n + 7];
        assert_eq!(encode(&spec, &mut out).unwrap(), n);
        assert_eq!(
            encode(&spec, &mut out[..n - 1]),
            Err(EncodeError::BufferTooSmall { needed: n, actual: n - 1 })
        );
        out.truncate(n);
        out
    }

    fn reseal(b: &mut [u8]) {
        let body = b.len() - 4;
        let crc = crc32(&b[..body]);
        b[body..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn round_trip() {
        let b = sample();
        let d = Detector::parse(&b).unwrap();
        assert_eq!(d.config(), ExtractorConfig::default_at(2048).unwrap());
        assert_eq!((d.channels(), d.features(), d.threshold(), d.version()), (1, 11, 0.75, [1, 2, 3]));
        assert_eq!(d.channel_name(0), Some("vib_fan"));
        assert_eq!(d.channel_name(1), None);
        assert_eq!(d.phase_count(), 2);
        assert_eq!(d.phase_threshold_at(1), Some(("take_off", 1.5)));
        assert_eq!(d.threshold_for_phase("cruise"), 0.5);
        assert_eq!(d.threshold_for_phase("taxi"), 0.75);
        assert_eq!(d.network().parameters(), 33 + 3 + 33 + 11);
        assert_eq!(d.checksum(), crc32(&b[..b.len() - 4]));
        // Scaling is exactly the Scaler's.
        let x: Vec<f32> = (0..11).map(|i| (i as f32).sin() * 3.0).collect();
        let mean: Vec<f32> = (0..11).map(|i| i as f32 * 0.5).collect();
        let mut std: Vec<f32> = (0..11).map(|i| 1.0 + i as f32 * 0.25).collect();
        std[3] = 0.0;
        let mut z = x.clone();
        crate::Scaler::new(&mean, &std).unwrap().apply(&mut z).unwrap();
        let mut z2 = vec![0.0; 11];
        d.scale(&x, &mut z2).unwrap();
        assert_eq!(z, z2);
        assert_eq!(d.score(&x).unwrap().to_bits(), d.network().score(&z).unwrap().to_bits());
    }

    #[test]
    fn assess_alarms_only_on_valid_windows_above_threshold() {
        let b = sample();
        let d = Detector::parse(&b).unwrap();
        let mut frame = FeatureFrame::<1> {
            window_index: 7,
            start_sample: 0,
            features: [[0.0; FEATURES_PER_CHANNEL]],
            quality: Default::default(),
            valid: true,
            roc_valid: true,
        };
        frame.features[0][0] = 40.0;
        let v = d.assess(&frame).unwrap();
        assert!(v.score > 0.75 && v.alarm && v.valid && v.window_index == 7, "{v:?}");
        assert!(!d.assess_with(&frame, v.score).unwrap().alarm, "score > threshold, not >=");
        frame.valid = false;
        assert!(!d.assess(&frame).unwrap().alarm);
        let two = FeatureFrame::<2> {
            window_index: 0,
            start_sample: 0,
            features: [[0.0; FEATURES_PER_CHANNEL]; 2],
            quality: Default::default(),
            valid: true,
            roc_valid: true,
        };
        assert_eq!(d.assess(&two), Err(BundleError::Channels { expected: 1, actual: 2 }));
    }

    #[test]
    fn corruption_is_refused_with_the_reason() {
        let good = sample();
        // Any flipped bit in the body is a checksum error.
        for at in [0usize, 5, 13, 60, 100, good.len() / 2, good.len() - 5] {
            let mut b = good.clone();
            b[at] ^= 0x10;
            let e = Detector::parse(&b).unwrap_err();
            assert!(
                matches!(
                    e,
                    BundleError::Checksum { .. } | BundleError::BadMagic | BundleError::FormatVersion { .. }
                ),
                "byte {at}: {e:?}"
            );
        }
        let mut b = good.clone();
        b[6..8].copy_from_slice(&(FEATURE_SCHEMA_VERSION + 1).to_le_bytes());
        reseal(&mut b);
        assert_eq!(
            Detector::parse(&b),
            Err(BundleError::SchemaVersion {
                found: FEATURE_SCHEMA_VERSION + 1,
                expected: FEATURE_SCHEMA_VERSION
            })
        );
        let mut b = good.clone();
        b[24..28].copy_from_slice(&1000u32.to_le_bytes());
        reseal(&mut b);
        assert!(matches!(Detector::parse(&b), Err(BundleError::Config(_))));
        assert!(matches!(Detector::parse(&good[..good.len() - 1]), Err(BundleError::Truncated { .. })));
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(Detector::parse(&longer), Err(BundleError::Length { .. })));
    }
}
