//! The feature schema: which features exist, their order, names and units, and the frame that
//! carries them.

use core::fmt::{self, Write as _};

/// Version of the feature definitions and their order. Any change to a formula, to the order,
/// or to a sanitising rule that can change a number bumps it; artifacts record the version they
/// were trained on and readers refuse a mismatch.
pub const FEATURE_SCHEMA_VERSION: u16 = 2;

/// Number of features computed for each vibration channel.
pub const FEATURES_PER_CHANNEL: usize = FeatureKind::ALL.len();

/// One per-channel feature. The discriminant is its index within the channel's block.
///
/// A frame's flat feature vector is channel-major: feature `k` of channel `c` sits at
/// `c * FEATURES_PER_CHANNEL + k` (see [`feature_index`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FeatureKind {
    /// Arithmetic mean of the window, g.
    MeanG = 0,
    /// Population standard deviation (ddof = 0), g.
    StdG = 1,
    /// Root mean square, g: `sqrt(mean(x²))`.
    RmsG = 2,
    /// Largest absolute sample, g.
    PeakG = 3,
    /// Peak / RMS, dimensionless; 0 when RMS is 0.
    CrestFactor = 4,
    /// Pearson (non-excess) kurtosis `m4 / m2²`, dimensionless; 0 when the variance is 0.
    Kurtosis = 5,
    /// Share of spectral energy (DC excluded) within ±`order_band_bins` of the shaft's
    /// once-per-revolution frequency, dimensionless in [0, 1].
    Order1Ratio = 6,
    /// Same at twice the shaft frequency, dimensionless in [0, 1].
    Order2Ratio = 7,
    /// Change of RMS since the previous window, g per second.
    RmsRocGPerS = 8,
    /// Change of the 1P ratio since the previous window, per second.
    Order1RatioRocPerS = 9,
    /// Mean shaft speed the channel is referenced to, over the window (held values), rpm: the
    /// operating point, without which a vibration level cannot be judged (schema v2).
    ShaftSpeedRpm = 10,
}

impl FeatureKind {
    /// All features in schema order.
    pub const ALL: [FeatureKind; 11] = [
        FeatureKind::MeanG,
        FeatureKind::StdG,
        FeatureKind::RmsG,
        FeatureKind::PeakG,
        FeatureKind::CrestFactor,
        FeatureKind::Kurtosis,
        FeatureKind::Order1Ratio,
        FeatureKind::Order2Ratio,
        FeatureKind::RmsRocGPerS,
        FeatureKind::Order1RatioRocPerS,
        FeatureKind::ShaftSpeedRpm,
    ];

    /// The name suffix, unit included: `channel.suffix` is the feature's full name.
    pub const fn suffix(self) -> &'static str {
        match self {
            FeatureKind::MeanG => "mean_g",
            FeatureKind::StdG => "std_g",
            FeatureKind::RmsG => "rms_g",
            FeatureKind::PeakG => "peak_g",
            FeatureKind::CrestFactor => "crest_factor",
            FeatureKind::Kurtosis => "kurtosis",
            FeatureKind::Order1Ratio => "order1_ratio",
            FeatureKind::Order2Ratio => "order2_ratio",
            FeatureKind::RmsRocGPerS => "rms_roc_g_per_s",
            FeatureKind::Order1RatioRocPerS => "order1_ratio_roc_per_s",
            FeatureKind::ShaftSpeedRpm => "shaft_speed_rpm",
        }
    }

    /// The unit as written in schemas (`"1"` for dimensionless).
    pub const fn unit(self) -> &'static str {
        match self {
            FeatureKind::MeanG | FeatureKind::StdG | FeatureKind::RmsG | FeatureKind::PeakG => "g",
            FeatureKind::RmsRocGPerS => "g/s",
            FeatureKind::Order1RatioRocPerS => "1/s",
            FeatureKind::ShaftSpeedRpm => "rpm",
            _ => "1",
        }
    }

    /// Index within a channel's block.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Index of `kind` of channel `channel` in a frame's flat feature vector.
pub const fn feature_index(channel: usize, kind: FeatureKind) -> usize {
    channel * FEATURES_PER_CHANNEL + kind.index()
}

/// Longest feature name [`feature_name`] can build.
pub const MAX_FEATURE_NAME_LEN: usize = 64;

/// Builds `"{channel_name}.{suffix}"`, e.g. `vib_fan.rms_g`, without allocating.
///
/// Fails (returns `Err(fmt::Error)`) if the name would exceed [`MAX_FEATURE_NAME_LEN`] bytes.
pub fn feature_name(
    channel_name: &str,
    kind: FeatureKind,
) -> Result<heapless::String<MAX_FEATURE_NAME_LEN>, fmt::Error> {
    let mut s = heapless::String::new();
    write!(s, "{channel_name}.{}", kind.suffix())?;
    Ok(s)
}

/// What the sanitiser did to one channel's samples in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelQuality {
    /// Samples replaced by linear interpolation across a short gap.
    pub gap_filled: u32,
    /// Samples clipped to mean ± k·std as isolated spikes.
    pub clipped: u32,
    /// Samples from gaps longer than `max_gap_samples` (held at the last good value). Any such
    /// sample makes the window invalid.
    pub unrepaired: u32,
    /// Shaft-speed samples that were implausible and replaced by the last plausible one.
    pub speed_held: u32,
}

impl ChannelQuality {
    /// Nothing done.
    pub const ZERO: ChannelQuality =
        ChannelQuality { gap_filled: 0, clipped: 0, unrepaired: 0, speed_held: 0 };

    /// Samples repaired in any way (gap-filled or clipped).
    pub fn repaired(&self) -> u32 {
        self.gap_filled + self.clipped
    }

    pub(crate) fn add(&mut self, o: &ChannelQuality) {
        self.gap_filled += o.gap_filled;
        self.clipped += o.clipped;
        self.unrepaired += o.unrepaired;
        self.speed_held += o.speed_held;
    }
}

/// Features of one window, for `CH` channels.
///
/// Every feature is finite for every input (non-finite inputs are gaps, see
/// [`crate::extractor`]). When `valid` is false the numbers are still computed (over held
/// values), but they describe a window with unrepaired gaps and should not be scored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureFrame<const CH: usize> {
    /// 0 for the first window of the stream, then +1 per hop.
    pub window_index: u32,
    /// Index (from the start of the stream) of the window's first sample.
    pub start_sample: u64,
    /// Per-channel features in [`FeatureKind::ALL`] order; `as_flattened()` gives the flat,
    /// channel-major vector of [`feature_index`].
    pub features: [[f32; FEATURES_PER_CHANNEL]; CH],
    /// Per-channel sanitiser counts for this window.
    pub quality: [ChannelQuality; CH],
    /// True when no channel has an unrepaired sample in this window.
    pub valid: bool,
    /// True when the rate-of-change features were computed against the previous window. False
    /// for the first window and for a window following an invalid one (the rates are then 0).
    pub roc_valid: bool,
}

impl<const CH: usize> FeatureFrame<CH> {
    /// The flat, channel-major feature vector (length `CH * FEATURES_PER_CHANNEL`).
    pub fn as_slice(&self) -> &[f32] {
        self.features.as_flattened()
    }

    /// One feature.
    pub fn get(&self, channel: usize, kind: FeatureKind) -> Option<f32> {
        self.features.get(channel).map(|f| f[kind.index()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_names_are_stable() {
        // The schema is part of every artifact: this list may only change with a version bump.
        let names: std::vec::Vec<_> =
            FeatureKind::ALL.iter().map(|k| feature_name("vib_fan", *k).unwrap()).collect();
        assert_eq!(
            names,
            [
                "vib_fan.mean_g",
                "vib_fan.std_g",
                "vib_fan.rms_g",
                "vib_fan.peak_g",
                "vib_fan.crest_factor",
                "vib_fan.kurtosis",
                "vib_fan.order1_ratio",
                "vib_fan.order2_ratio",
                "vib_fan.rms_roc_g_per_s",
                "vib_fan.order1_ratio_roc_per_s",
                "vib_fan.shaft_speed_rpm",
            ]
        );
        for (i, k) in FeatureKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        assert_eq!(feature_index(1, FeatureKind::RmsG), 13);
        assert_eq!(FEATURE_SCHEMA_VERSION, 2);
    }

    #[test]
    fn too_long_name_is_an_error() {
        let long = "x".repeat(70);
        assert!(feature_name(&long, FeatureKind::MeanG).is_err());
    }
}
