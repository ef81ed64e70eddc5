//! [`encode`]: writes a bundle from its parts through the same field table the parser reads.

use super::{
    ALERT_LATCH, BUNDLE_FORMAT_VERSION, Detector, EncodeError, HEADER_BYTES, MAGIC, NAME_BYTES,
    PHASE_ENTRY_BYTES, PHASE_NO_VERDICT, PhaseEntry, crc32, field,
};
use crate::alert::AlertPolicy;
use crate::config::ExtractorConfig;
use crate::features::FEATURE_SCHEMA_VERSION;
use crate::model;

/// Everything a bundle holds, for [`encode`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BundleSpec<'s> {
    /// The extractor config the features were computed with.
    pub config: ExtractorConfig,
    /// Vibration channel names, in feature order (at most [`NAME_BYTES`] bytes each).
    pub channels: &'s [&'s str],
    /// Scaler means (`channels * config.features.per_channel()`).
    pub mean: &'s [f32],
    /// Scaler stds.
    pub std: &'s [f32],
    /// The network.
    pub layers: &'s [model::LayerSpec<'s>],
    /// Global threshold.
    pub threshold: f32,
    /// The phase table in phase-code order (names at most [`NAME_BYTES`] bytes).
    pub phases: &'s [PhaseEntry<'s>],
    /// The alert policy.
    pub alert: AlertPolicy,
    /// Detector version.
    pub version: [u16; 3],
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
    let features = spec.channels.len() * spec.config.features.per_channel();
    if spec.mean.len() != features || spec.std.len() != features {
        return Err(EncodeError::Counts);
    }
    let layers = model::encoded_layers_len(spec.layers).map_err(|e| match e {
        model::LayerEncodeError::Shape(layer) => EncodeError::Shape { layer },
        model::LayerEncodeError::BufferTooSmall { .. } => EncodeError::Counts,
    })?;
    Ok(HEADER_BYTES
        + spec.channels.len() * NAME_BYTES
        + 8 * features
        + layers
        + spec.phases.len() * PHASE_ENTRY_BYTES
        + 4)
}

/// Encodes `spec` into `out` and returns the bundle's length. The result is checked by
/// parsing it back, so whatever `encode` returns `Ok` for, [`Detector::parse`] accepts.
pub fn encode(spec: &BundleSpec<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    let len = encoded_len(spec)?;
    if out.len() < len {
        return Err(EncodeError::BufferTooSmall { needed: len, actual: out.len() });
    }
    let features = spec.channels.len() * spec.config.features.per_channel();
    let count = |n: usize| u16::try_from(n).map_err(|_| EncodeError::Counts);
    let total = u32::try_from(len).map_err(|_| EncodeError::Counts)?;
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
    let set = &c.features;
    header[field::FAMILIES] = set.families.0;
    header[field::SCALE] = set.scale as u8;
    header[field::BAND_COUNT] = set.band_count;
    header[field::ORDER_COUNT] = set.order_count;
    header[field::SPIKE_POLICY] = c.spike_policy as u8;
    header[field::ORDER_HALF_WIDTH].copy_from_slice(&set.order_half_width.to_le_bytes());
    for (dst, v) in header[field::BAND_EDGES].chunks_exact_mut(4).zip(set.band_edges_hz) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
    for (dst, v) in header[field::ORDERS].chunks_exact_mut(4).zip(set.orders) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
    for (r, v) in field::ENV_BAND.into_iter().zip(set.env_band_hz) {
        header[r].copy_from_slice(&v.to_le_bytes());
    }
    header[field::ENV_DECIMATION].copy_from_slice(&set.env_decimation.to_le_bytes());
    header[field::ENV_FFT_LEN].copy_from_slice(&set.env_fft_len.to_le_bytes());
    header[field::ENV_ORDER_COUNT] = set.env_order_count;
    for (dst, v) in header[field::ENV_ORDERS].chunks_exact_mut(4).zip(set.env_orders) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
    let counts = [
        (field::N_CHANNELS, spec.channels.len()),
        (field::N_FEATURES, features),
        (field::N_LAYERS, spec.layers.len()),
        (field::N_PHASES, spec.phases.len()),
    ];
    for (r, n) in counts {
        header[r].copy_from_slice(&count(n)?.to_le_bytes());
    }
    header[field::THRESHOLD].copy_from_slice(&spec.threshold.to_le_bytes());
    for (r, v) in field::VERSION.into_iter().zip(spec.version) {
        header[r].copy_from_slice(&v.to_le_bytes());
    }
    let a = &spec.alert;
    header[field::RAISE_COUNT] = a.raise_count;
    header[field::RAISE_WINDOW] = a.raise_window;
    header[field::CLEAR_COUNT] = a.clear_count;
    header[field::ALERT_FLAGS] = if a.latch { ALERT_LATCH } else { 0 };
    header[field::CLEAR_FRACTION].copy_from_slice(&a.clear_fraction.to_le_bytes());
    let mut at = HEADER_BYTES;
    for name in spec.channels {
        put_name(out, &mut at, name)?;
    }
    for v in spec.mean.iter().chain(spec.std) {
        put(out, &mut at, &v.to_le_bytes());
    }
    at += model::encode_layers(spec.layers, &mut out[at..]).map_err(|_| EncodeError::Counts)?;
    for p in spec.phases {
        put_name(out, &mut at, p.name)?;
        put(out, &mut at, &p.threshold.to_le_bytes());
        put(out, &mut at, &[if p.no_verdict { PHASE_NO_VERDICT } else { 0 }, 0, 0, 0]);
    }
    let crc = crc32(&out[..at]);
    put(out, &mut at, &crc.to_le_bytes());
    debug_assert_eq!(at, len);
    Detector::parse(&out[..len]).map_err(EncodeError::Invalid)?;
    Ok(len)
}
