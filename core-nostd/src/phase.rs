//! The flight phase (or operating regime) of a window, from per-sample phase codes: one rule for
//! the firmware and the trainer.
//!
//! A phase code is an index into the data contract's phase list (the detector bundle's phase
//! table has the same order); [`PHASE_UNKNOWN`] is "no phase known". A window's phase is the
//! code held by most of its samples; ties go to the lower code (so "unknown" loses every tie).
//! Codes from [`MAX_PHASES`] to 254 count as unknown.
//!
//! [`PhaseTally`] counts codes per hop in a ring of the last few hops (no allocation): push a
//! block's codes before (or while) pushing the block's samples into the
//! [`crate::FeatureExtractor`], and ask for the phase of each frame it emits. The ring holds
//! `MAX_HOPS_PER_WINDOW + 1` finished hops, so the tally may run at most one hop ahead of the
//! end of the window asked about (the extractor emits a frame less than a hop after its last
//! sample; blocks must be at most a hop minus that latency long).

use crate::config::{ExtractorConfig, MAX_HOPS_PER_WINDOW};
use core::fmt;

/// Phase codes a detector can tell apart (0..MAX_PHASES); the bundle's phase table holds at
/// most this many phases.
pub const MAX_PHASES: usize = 32;
/// The code of "phase not known".
pub const PHASE_UNKNOWN: u8 = 255;

const RING: usize = MAX_HOPS_PER_WINDOW + 2;
const SLOTS: usize = MAX_PHASES + 1;

/// Why a window's phase cannot be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseError {
    /// Not all of the window's samples have been counted yet.
    Incomplete {
        /// The window asked about.
        window_index: u32,
    },
    /// The window's first hops have left the ring: the tally ran too far ahead.
    Stale {
        /// The window asked about.
        window_index: u32,
    },
    /// The tally has no config (see [`PhaseTally::new`]).
    Unconfigured,
}

impl fmt::Display for PhaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhaseError::Incomplete { window_index } => {
                write!(f, "phase of window {window_index}: its samples' phase codes are not all pushed yet")
            }
            PhaseError::Stale { window_index } => write!(
                f,
                "phase of window {window_index}: the codes were pushed more than one hop past the window's end"
            ),
            PhaseError::Unconfigured => f.write_str("phase tally used before it was configured"),
        }
    }
}

impl core::error::Error for PhaseError {}

/// Phase-code counts of the last hops (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseTally {
    hop: u32,
    hops_per_window: u32,
    counts: [[u32; SLOTS]; RING],
    /// Finished hops since the start.
    hops_done: u64,
    /// Samples counted in the current hop.
    in_hop: u32,
}

impl PhaseTally {
    /// A tally without a config (for statics): [`PhaseTally::majority`] refuses until
    /// [`PhaseTally::new`]'s value replaces it.
    pub const UNCONFIGURED: PhaseTally =
        PhaseTally { hop: 0, hops_per_window: 0, counts: [[0; SLOTS]; RING], hops_done: 0, in_hop: 0 };

    /// A tally for windows of `cfg` (assumed valid: windows of whole hops).
    pub fn new(cfg: &ExtractorConfig) -> PhaseTally {
        PhaseTally {
            hop: cfg.hop_len_samples.max(1),
            hops_per_window: cfg.hops_per_window(),
            ..PhaseTally::UNCONFIGURED
        }
    }

    /// Starts again from sample 0.
    pub fn reset(&mut self) {
        *self =
            PhaseTally { hop: self.hop, hops_per_window: self.hops_per_window, ..PhaseTally::UNCONFIGURED };
    }

    fn slot(code: u8) -> usize {
        if usize::from(code) < MAX_PHASES { usize::from(code) } else { MAX_PHASES }
    }

    /// The next sample's phase code.
    pub fn push(&mut self, code: u8) {
        self.push_run(code, 1);
    }

    /// The next `n` samples all hold `code`.
    pub fn push_run(&mut self, code: u8, mut n: u32) {
        if self.hop == 0 {
            return;
        }
        let slot = Self::slot(code);
        while n > 0 {
            let take = n.min(self.hop - self.in_hop);
            let current = (self.hops_done % RING as u64) as usize;
            self.counts[current][slot] += take;
            self.in_hop += take;
            n -= take;
            if self.in_hop == self.hop {
                self.hops_done += 1;
                self.in_hop = 0;
                self.counts[(self.hops_done % RING as u64) as usize] = [0; SLOTS];
            }
        }
    }

    /// The phase of window `window_index` (samples `k·hop .. k·hop + window`).
    pub fn majority(&self, window_index: u32) -> Result<u8, PhaseError> {
        if self.hop == 0 {
            return Err(PhaseError::Unconfigured);
        }
        let first = u64::from(window_index);
        let end = first + u64::from(self.hops_per_window);
        if end > self.hops_done {
            return Err(PhaseError::Incomplete { window_index });
        }
        if first + (RING as u64 - 1) < self.hops_done {
            return Err(PhaseError::Stale { window_index });
        }
        let mut total = [0u64; SLOTS];
        for h in first..end {
            for (t, &c) in total.iter_mut().zip(&self.counts[(h % RING as u64) as usize]) {
                *t += u64::from(c);
            }
        }
        let mut best = (0u64, PHASE_UNKNOWN);
        for (slot, &n) in total.iter().enumerate() {
            // Strictly more: ties keep the lower code (the unknown slot is last).
            if n > best.0 {
                best = (n, if slot < MAX_PHASES { slot as u8 } else { PHASE_UNKNOWN });
            }
        }
        Ok(best.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn cfg(hop: u32, hops: u32) -> ExtractorConfig {
        let mut c = ExtractorConfig::default_at(2048).unwrap();
        c.hop_len_samples = hop;
        c.window_len_samples = hop * hops;
        c
    }

    /// The rule restated over the whole code sequence.
    fn reference(codes: &[u8], start: usize, len: usize) -> u8 {
        let mut n = [0usize; 256];
        for &c in &codes[start..start + len] {
            n[if usize::from(c) < MAX_PHASES { usize::from(c) } else { 255 }] += 1;
        }
        (0..256).max_by_key(|&k| (n[k], core::cmp::Reverse(k))).unwrap() as u8
    }

    #[test]
    fn ties_go_to_the_lower_code_and_unknown_loses() {
        let mut t = PhaseTally::new(&cfg(4, 2));
        for c in [3, 3, 1, 1, 255, 255, 255, 255] {
            t.push(c);
        }
        // 2 x code 3, 2 x code 1, 4 x unknown.
        assert_eq!(t.majority(0), Ok(255));
        let mut t = PhaseTally::new(&cfg(4, 2));
        t.push_run(3, 3);
        t.push_run(1, 3);
        t.push_run(255, 2);
        assert_eq!(t.majority(0), Ok(1));
        assert_eq!(t.majority(1), Err(PhaseError::Incomplete { window_index: 1 }));
        assert_eq!(PhaseTally::UNCONFIGURED.majority(0), Err(PhaseError::Unconfigured));
    }

    #[test]
    fn the_ring_refuses_windows_it_no_longer_holds() {
        let mut t = PhaseTally::new(&cfg(10, 6));
        t.push_run(2, 10 * 7);
        assert_eq!(t.majority(0), Ok(2));
        t.push_run(2, 10);
        assert_eq!(t.majority(0), Err(PhaseError::Stale { window_index: 0 }));
        assert_eq!(t.majority(2), Ok(2));
    }

    proptest! {
        #[test]
        fn tally_matches_the_rule(
            hop in 1u32..20, hops in 1u32..=6,
            runs in proptest::collection::vec((prop_oneof![0u8..4, Just(255u8), 30u8..40], 1u32..30), 1..40),
        ) {
            let codes: Vec<u8> = runs.iter().flat_map(|&(c, n)| core::iter::repeat_n(c, n as usize)).collect();
            let mut t = PhaseTally::new(&cfg(hop, hops));
            let win = (hop * hops) as usize;
            let mut pushed = 0usize;
            let mut w = 0u32;
            // Push sample by sample (in runs), asking for each window as soon as it is whole.
            for &(c, n) in &runs {
                for _ in 0..n {
                    t.push(c);
                    pushed += 1;
                    while w as usize * hop as usize + win <= pushed {
                        let start = w as usize * hop as usize;
                        prop_assert_eq!(t.majority(w), Ok(reference(&codes, start, win)));
                        w += 1;
                    }
                }
            }
        }
    }
}
