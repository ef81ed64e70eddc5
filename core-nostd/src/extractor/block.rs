//! What a channel keeps per hop block (moments, peak, quality, Welch energies, speed sum) and
//! per finished window, so a window's features come from block summaries, never from its
//! samples.

use crate::config::MAX_HOPS_PER_WINDOW;
use crate::features::{ChannelQuality, FEATURES_PER_CHANNEL};
use crate::moments::{CHUNK_LEN, Moments};
use crate::spectrum::SegmentEnergy;

/// Samples accumulated as one chunk.
pub(super) const CHUNK: usize = CHUNK_LEN as usize;

/// Block summaries kept per channel: the hops of one window plus the one being filled.
pub(super) const BLOCK_SLOTS: usize = MAX_HOPS_PER_WINDOW + 1;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct EnergySum {
    pub(super) order1: f64,
    pub(super) order2: f64,
    pub(super) total: f64,
}

impl EnergySum {
    pub(super) const ZERO: EnergySum = EnergySum { order1: 0.0, order2: 0.0, total: 0.0 };

    pub(super) fn add(&mut self, e: &SegmentEnergy) {
        self.order1 += f64::from(e.order1);
        self.order2 += f64::from(e.order2);
        self.total += f64::from(e.total);
    }

    pub(super) fn add_sum(&mut self, e: &EnergySum) {
        self.order1 += e.order1;
        self.order2 += e.order2;
        self.total += e.total;
    }
}

/// Everything a window needs from one hop block of one channel.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BlockSummary {
    pub(super) moments: Moments,
    pub(super) peak_abs: f32,
    pub(super) quality: ChannelQuality,
    /// Welch segments that start and end inside this block.
    pub(super) interior: EnergySum,
    /// Welch segments that start in this block and end in the next.
    pub(super) straddle: EnergySum,
    /// Sum of the (held) shaft speed over the block, rpm·samples.
    pub(super) speed_sum: f64,
}

impl BlockSummary {
    pub(super) const ZERO: BlockSummary = BlockSummary {
        moments: Moments::ZERO,
        peak_abs: 0.0,
        quality: ChannelQuality::ZERO,
        interior: EnergySum::ZERO,
        straddle: EnergySum::ZERO,
        speed_sum: 0.0,
    };
}

/// One channel's finished window, waiting for the other channels.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChannelWindow {
    pub(super) window_index: u32,
    pub(super) features: [f32; FEATURES_PER_CHANNEL],
    pub(super) quality: ChannelQuality,
}
