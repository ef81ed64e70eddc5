//! Runs avm-core's extractor over a synchronised recording. The trainer never computes a
//! feature itself: this module only feeds the core and collects what it returns.

use crate::error::UsageError;
use crate::stages::sync::Synced;
use avm_core::{ChannelQuality, ExtractorConfig, FeatureExtractor, SampleFate, SampleTap};

/// Largest number of vibration channels wired in (the core is generic; this is the dispatch).
pub const MAX_CHANNELS: usize = 4;
/// FFT capacity on the host (the largest `fft_len` the core supports).
pub const FFT_MAX: usize = 4096;

/// One window's output of the core, channel count erased.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Window index.
    pub window_index: u32,
    /// First sample of the window.
    pub start_sample: u64,
    /// Flat, channel-major features (`FEATURES_PER_CHANNEL` per channel).
    pub features: Vec<f32>,
    /// Sanitiser counts per channel.
    pub quality: Vec<ChannelQuality>,
    /// No unrepaired sample in the window.
    pub valid: bool,
    /// Rates of change computed against the previous window.
    pub roc_valid: bool,
}

/// The sanitised stream the features were computed from, per channel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sanitised {
    /// Values.
    pub clean: Vec<Vec<f32>>,
    /// [`SampleFate`] codes.
    pub fate: Vec<Vec<u8>>,
}

impl SampleTap for Sanitised {
    fn sample(&mut self, channel: usize, value: f32, fate: SampleFate) {
        self.clean[channel].push(value);
        self.fate[channel].push(fate as u8);
    }
}

/// Extracts every frame of `s`; with `tap`, also returns the sanitised stream.
pub fn extract(
    s: &Synced,
    cfg: ExtractorConfig,
    tap: bool,
) -> Result<(Vec<Frame>, Option<Sanitised>), UsageError> {
    match s.vib.len() {
        1 => run::<1>(s, cfg, tap),
        2 => run::<2>(s, cfg, tap),
        3 => run::<3>(s, cfg, tap),
        4 => run::<4>(s, cfg, tap),
        n => Err(UsageError(format!("{n} vibration channels: this build supports 1..={MAX_CHANNELS}"))),
    }
}

fn run<const CH: usize>(
    s: &Synced,
    cfg: ExtractorConfig,
    tap: bool,
) -> Result<(Vec<Frame>, Option<Sanitised>), UsageError> {
    let mut fx =
        FeatureExtractor::<CH, FFT_MAX>::new(cfg).map_err(|e| UsageError(format!("features: {e}")))?;
    let n = s.len();
    let vib: Vec<[f32; CH]> = (0..n).map(|i| std::array::from_fn(|c| s.vib[c][i])).collect();
    let rpm: Vec<[f32; CH]> = (0..n).map(|i| std::array::from_fn(|c| s.speed[s.speed_ref[c]][i])).collect();
    let mut frames = Vec::new();
    let mut collected = Sanitised {
        clean: (0..CH).map(|_| Vec::with_capacity(if tap { n } else { 0 })).collect(),
        fate: (0..CH).map(|_| Vec::with_capacity(if tap { n } else { 0 })).collect(),
    };
    let convert = |f: avm_core::FeatureFrame<CH>| Frame {
        window_index: f.window_index,
        start_sample: f.start_sample,
        features: f.as_slice().to_vec(),
        quality: f.quality.to_vec(),
        valid: f.valid,
        roc_valid: f.roc_valid,
    };
    if tap {
        fx.push_slice_tapped(&vib, &rpm, |f| frames.push(convert(f)), &mut collected)
            .map_err(|e| UsageError(e.to_string()))?;
        frames.extend(fx.finish_tapped(&mut collected).map(convert));
        Ok((frames, Some(collected)))
    } else {
        fx.push_slice(&vib, &rpm, |f| frames.push(convert(f))).map_err(|e| UsageError(e.to_string()))?;
        frames.extend(fx.finish().map(convert));
        Ok((frames, None))
    }
}
