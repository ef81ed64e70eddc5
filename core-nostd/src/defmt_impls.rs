//! `defmt::Format` for the public types. Formatting only: no number depends on this module.

use crate::config::ConfigError;
use crate::features::{ChannelQuality, FeatureFrame};
use crate::scaler::ScalerError;

impl defmt::Format for ChannelQuality {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "filled={=u32} clipped={=u32} unrepaired={=u32} speed_held={=u32}",
            self.gap_filled,
            self.clipped,
            self.unrepaired,
            self.speed_held
        )
    }
}

impl<const CH: usize> defmt::Format for FeatureFrame<CH> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "window {=u32} @{=u64} valid={=bool} roc_valid={=bool} quality={=[?]}",
            self.window_index,
            self.start_sample,
            self.valid,
            self.roc_valid,
            &self.quality[..]
        );
        for c in 0..CH {
            defmt::write!(f, " ch{=usize}={=[?]}", c, self.channel(c));
        }
    }
}

impl defmt::Format for ConfigError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match *self {
            ConfigError::OutOfRange { field, min, max, actual } => {
                defmt::write!(f, "{=str} must be in {=u32}..={=u32}, got {=u32}", field, min, max, actual)
            }
            ConfigError::NotMultiple { field, actual, of, multiple } => defmt::write!(
                f,
                "{=str} must be a non-zero whole multiple of {=str} ({=u32}), got {=u32}",
                field,
                of,
                multiple,
                actual
            ),
            ConfigError::FftLen { actual } => {
                defmt::write!(
                    f,
                    "fft_len must be a power of two in {=u32}..={=u32}, got {=u32}",
                    *crate::config::FFT_LEN_RANGE.start(),
                    crate::config::FFT_LEN_MAX,
                    actual
                )
            }
            ConfigError::NotWholeSamples { field, seconds, sample_rate_hz } => defmt::write!(
                f,
                "{=str} = {=f64} s at {=u32} Hz must be a whole, positive number of samples",
                field,
                seconds,
                sample_rate_hz
            ),
            ConfigError::NotPositiveFinite { field, actual } => {
                defmt::write!(f, "{=str} must be finite and > 0, got {=f32}", field, actual)
            }
            ConfigError::Feature { field, index, actual, rule } => {
                defmt::write!(f, "{=str}[{=u32}] = {=f32}: {=str}", field, index, actual, rule)
            }
            ConfigError::UnknownFamilies { bits } => {
                defmt::write!(f, "feature families {=u8:b} include some this build cannot compute", bits)
            }
            ConfigError::NoFeatures => defmt::write!(f, "the feature set selects no feature"),
        }
    }
}

impl defmt::Format for ScalerError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match *self {
            ScalerError::LengthMismatch { expected, actual } => {
                defmt::write!(f, "scaler has {=usize} features, input has {=usize}", expected, actual)
            }
            ScalerError::BadParameter { index, what, value } => {
                defmt::write!(f, "scaler {=str}[{=usize}] = {=f32} is not usable", what, index, value)
            }
        }
    }
}

impl defmt::Format for crate::extractor::LengthMismatch {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "shaft speed block has {=usize} sample instants, vibration block has {=usize}",
            self.actual,
            self.expected
        )
    }
}
