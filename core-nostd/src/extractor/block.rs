//! What a channel keeps per hop block (moments, extremes, quality, Welch sums, speed sum) and
//! per finished window, so a window's features come from block summaries, never from its
//! samples.

use super::envelope::EnvSums;
use crate::config::MAX_HOPS_PER_WINDOW;
use crate::features::{ChannelQuality, MAX_FEATURES_PER_CHANNEL};
use crate::moments::{CHUNK_LEN, Moments};
use crate::spectrum::SpecSums;

/// Samples accumulated as one chunk.
pub(super) const CHUNK: usize = CHUNK_LEN as usize;

/// Block summaries kept per channel: the hops of one window plus the one being filled.
pub(super) const BLOCK_SLOTS: usize = MAX_HOPS_PER_WINDOW + 1;

/// Everything a window needs from one hop block of one channel.
#[derive(Clone, Copy, Debug)]
pub(super) struct BlockSummary {
    pub(super) moments: Moments,
    pub(super) max: f32,
    pub(super) min: f32,
    pub(super) quality: ChannelQuality,
    /// Welch segments that start and end inside this block.
    pub(super) interior: SpecSums,
    /// Welch segments that start in this block and end in the next.
    pub(super) straddle: SpecSums,
    /// Sum of the (held) shaft speed over the block, rpm·samples.
    pub(super) speed_sum: f64,
    /// Envelope moments and envelope-spectrum sums (interior and straddling segments), when
    /// the envelope family is on.
    pub(super) env: Moments,
    pub(super) env_interior: EnvSums,
    pub(super) env_straddle: EnvSums,
}

impl BlockSummary {
    pub(super) const ZERO: BlockSummary = BlockSummary {
        moments: Moments::ZERO,
        max: 0.0,
        min: 0.0,
        quality: ChannelQuality::ZERO,
        interior: SpecSums::ZERO,
        straddle: SpecSums::ZERO,
        speed_sum: 0.0,
        env: Moments::ZERO,
        env_interior: EnvSums::ZERO,
        env_straddle: EnvSums::ZERO,
    };
}

/// One channel's finished window, waiting for the other channels.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChannelWindow {
    pub(super) window_index: u32,
    pub(super) features: [f32; MAX_FEATURES_PER_CHANNEL],
    pub(super) quality: ChannelQuality,
    /// The values the rates of change follow (computed whatever the families).
    pub(super) rms_g: f32,
    pub(super) kurtosis: f32,
}
