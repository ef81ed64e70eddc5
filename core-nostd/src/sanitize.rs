//! Streaming sample sanitising: gap repair, isolated-spike clipping, shaft-speed hold.
//!
//! These are the only rules that decide what value a feature sees for a bad sample. They are
//! restated, as the definition a reviewer checks, in `core-nostd/reference/features_ref.py`.
//!
//! # Gaps
//! A *bad* sample is non-finite (NaN, ±Inf) or beyond the sensor's full scale
//! (`|x| > full_scale_g`). A run of at most `max_gap_samples` bad samples between two good
//! ones is replaced by linear interpolation between those neighbours:
//! `x[i] = a + (b - a)·(i / (g + 1))` for the i-th (1-based) of `g` missing samples. Because the
//! right neighbour is needed, the filler holds back up to `max_gap_samples` samples: that is its
//! only latency. A longer run, a run at the very start of the stream (no left neighbour) and a
//! run still open at [`crate::FeatureExtractor::finish`] (no right neighbour) are *unrepaired*:
//! the samples are held at the last good value (0 g if none) so the statistics stay finite, and
//! every window that contains one is invalid.
//!
//! # Spikes ([`SpikePolicy`])
//! Let `mean`, `std`, `dev` be those of the most recent *valid* window of the same channel that
//! ended before sample `n` (`dev` = the largest `|x - mean|` in it). A policy gives bounds
//! `B = lo ..= hi` and a jump threshold `J`. A good sample `x[n]` is an isolated spike when all
//! three hold:
//! 1. `x[n]` is outside `B`;
//! 2. both neighbours `x[n-1]` and `x[n+1]` (as measured, before any clipping) are inside `B`;
//! 3. `x[n]` jumps away from its neighbours by more than `J`:
//!    `|x[n] - (x[n-1] + x[n+1]) / 2| > J`.
//!
//! - [`SpikePolicy::Off`]: nothing is a spike.
//! - [`SpikePolicy::Isolated`] (an electrical glitch: one bad conversion between two plausible
//!   ones): `B = mean ± 2·dev`, `J = dev`; the spike is replaced by its neighbours' mean. A
//!   sample must stand twice as far out as anything in the last valid window, alone.
//! - [`SpikePolicy::KSigma`] (the seed's rule): `B = mean ± k·std`, `J = k·std`; the spike is
//!   clipped to the nearer bound. On clean data with high sampling rates this alters the
//!   ordinary tails of heavy-tailed vibration (tens of samples per 8192 at k = 3): it eats the
//!   impacts that are the fault signature, which is why it is no longer the default.
//!
//! Only isolated samples are candidates because mechanical vibration is band-limited and
//! lasts: an impact rings for several samples. Before the first valid window there are no
//! bounds and nothing is clipped. Interpolated and unrepaired samples are never clipped.
//! Clipping needs the next sample, so it adds one sample of latency (also with `Off`, so the
//! latency contract does not depend on the policy).
//!
//! # Shaft speed
//! A speed sample that is non-finite, negative or above `max_shaft_speed_rpm` is replaced by
//! the last plausible one (0 rpm if none), and counted. Speed does not delay the stream.

/// Which samples the sanitiser replaces as spikes (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
#[repr(u8)]
pub enum SpikePolicy {
    /// Nothing is replaced.
    Off = 0,
    /// Single-sample glitches only: twice as far out as anything in the last valid window.
    Isolated = 1,
    /// The seed's rule: isolated samples beyond `k·std` of the last valid window.
    KSigma = 2,
}

impl SpikePolicy {
    /// The policy of the default configuration, chosen by measurement on real recordings
    /// (README, "Sanitising").
    pub const DEFAULT: SpikePolicy = SpikePolicy::Isolated;

    /// From its `repr(u8)` code (the bundle's byte).
    pub const fn from_code(code: u8) -> Option<SpikePolicy> {
        match code {
            0 => Some(SpikePolicy::Off),
            1 => Some(SpikePolicy::Isolated),
            2 => Some(SpikePolicy::KSigma),
            _ => None,
        }
    }
}

/// How a sanitised sample came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    /// As measured (possibly clipped later).
    Good,
    /// Interpolated across a short gap.
    Filled,
    /// Part of a gap that could not be repaired; value held.
    Unrepaired,
}

/// What the gap filler releases for one input sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum GapStep {
    /// Held back (inside a gap that may still be repaired).
    Hold,
    /// `count` samples interpolated between `from` and `to`, then `to` itself (good).
    Fill { from: f32, to: f32, count: u32 },
    /// `count` unrepaired samples, each with value `value`.
    Unrepaired { value: f32, count: u32 },
    /// One good sample.
    Good(f32),
}

/// Gap filler state for one channel. 16 bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GapFiller {
    last_good: f32,
    has_good: bool,
    in_long_gap: bool,
    pending: u32,
}

impl GapFiller {
    pub const fn new() -> Self {
        GapFiller { last_good: 0.0, has_good: false, in_long_gap: false, pending: 0 }
    }

    /// Samples currently held back.
    #[cfg(test)]
    pub fn pending(&self) -> u32 {
        self.pending
    }

    #[inline]
    pub fn push(&mut self, x: f32, max_gap: u32, full_scale_g: f32) -> GapStep {
        let bad = !(x.is_finite() && x <= full_scale_g && x >= -full_scale_g);
        if bad {
            if self.in_long_gap || !self.has_good {
                self.in_long_gap = true;
                return GapStep::Unrepaired { value: self.last_good, count: 1 };
            }
            self.pending += 1;
            if self.pending > max_gap {
                let count = self.pending;
                self.pending = 0;
                self.in_long_gap = true;
                return GapStep::Unrepaired { value: self.last_good, count };
            }
            return GapStep::Hold;
        }
        self.in_long_gap = false;
        let from = self.last_good;
        self.last_good = x;
        self.has_good = true;
        if self.pending > 0 {
            let count = self.pending;
            self.pending = 0;
            GapStep::Fill { from, to: x, count }
        } else {
            GapStep::Good(x)
        }
    }

    /// No sample is held back (no gap open): a good sample would come straight out.
    #[inline]
    pub fn is_clear(&self) -> bool {
        self.pending == 0
    }

    /// The state after good samples ending with `last`, pushed while [`is_clear`](Self::is_clear)
    /// (each of them came straight out as [`GapStep::Good`]).
    #[inline]
    pub fn pass_good(&mut self, last: f32) {
        self.in_long_gap = false;
        self.last_good = last;
        self.has_good = true;
    }

    /// End of stream: a gap still open has no right neighbour and is unrepaired.
    pub fn finish(&mut self) -> GapStep {
        let count = core::mem::take(&mut self.pending);
        if count > 0 { GapStep::Unrepaired { value: self.last_good, count } } else { GapStep::Hold }
    }
}

/// The `i`-th (1-based) of `count` samples interpolated between `from` and `to`.
#[inline]
pub(crate) fn interpolate(from: f32, to: f32, i: u32, count: u32) -> f32 {
    let t = i as f32 / (count + 1) as f32;
    from + (to - from) * t
}

/// Spike bounds `lo ..= hi` and the jump threshold `k·std`; [`Bounds::NONE`] (±∞) before the
/// first valid window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bounds {
    pub lo: f32,
    pub hi: f32,
    pub jump: f32,
    /// Replace a spike by its neighbours' mean (else clip it to the nearer bound).
    pub replace: bool,
}

impl Bounds {
    /// No bounds: every finite sample is inside, nothing is clipped.
    pub const NONE: Bounds =
        Bounds { lo: f32::NEG_INFINITY, hi: f32::INFINITY, jump: f32::INFINITY, replace: false };

    /// All zero: the placeholder of an unconfigured extractor (never used to judge a sample).
    pub(crate) const ZERO: Bounds = Bounds { lo: 0.0, hi: 0.0, jump: 0.0, replace: false };

    /// The k-sigma rule's bounds.
    pub fn from_window(mean: f32, std: f32, k: f32) -> Self {
        let jump = k * std;
        Bounds { lo: mean - jump, hi: mean + jump, jump, replace: false }
    }

    /// The bounds of `policy` after a valid window with `mean`, `std` and largest deviation
    /// from the mean `dev`.
    pub fn for_policy(policy: SpikePolicy, mean: f32, std: f32, dev: f32, k: f32) -> Self {
        match policy {
            SpikePolicy::Off => Bounds::NONE,
            SpikePolicy::KSigma => Bounds::from_window(mean, std, k),
            SpikePolicy::Isolated => {
                let reach = 2.0 * dev;
                Bounds { lo: mean - reach, hi: mean + reach, jump: dev, replace: true }
            }
        }
    }

    #[inline]
    fn contains(&self, x: f32) -> bool {
        x >= self.lo && x <= self.hi
    }
}

/// Isolated-spike clipper for one channel: a one-sample delay line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpikeClipper {
    /// Raw value of the sample before `held` (`has_prev` false at stream start).
    prev: f32,
    has_prev: bool,
    held: f32,
    held_tag: Tag,
    has_held: bool,
}

/// A sample released by the clipper.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Clipped {
    pub value: f32,
    pub tag: Tag,
    pub clipped: bool,
}

impl SpikeClipper {
    pub const fn new() -> Self {
        SpikeClipper { prev: 0.0, has_prev: false, held: 0.0, held_tag: Tag::Good, has_held: false }
    }

    /// Takes sample `n+1`, releases sample `n` (decided with `bounds` as they are now).
    #[inline]
    pub fn push(&mut self, x: f32, tag: Tag, b: Bounds) -> Option<Clipped> {
        let out = if self.has_held {
            let h = self.held;
            let prev = if self.has_prev { self.prev } else { x };
            let jump = h - 0.5 * (prev + x);
            let isolated_spike = self.held_tag == Tag::Good
                && !b.contains(h)
                && b.contains(prev)
                && b.contains(x)
                && (jump > b.jump || jump < -b.jump);
            let value = if !isolated_spike {
                h
            } else if b.replace {
                0.5 * (prev + x)
            } else if h > b.hi {
                b.hi
            } else {
                b.lo
            };
            self.prev = h;
            self.has_prev = true;
            Some(Clipped { value, tag: self.held_tag, clipped: isolated_spike })
        } else {
            None
        };
        self.held = x;
        self.held_tag = tag;
        self.has_held = true;
        out
    }

    /// The next [`push`](Self::push) of a sample inside `b` releases the held sample as it is,
    /// tagged good: one is held, it is good and it is inside `b` (so it is no spike).
    #[inline]
    pub fn releases_unchanged(&self, b: Bounds) -> bool {
        self.has_held && self.held_tag == Tag::Good && b.contains(self.held)
    }

    /// [`push`](Self::push) of a good sample `x` when [`releases_unchanged`](Self::releases_unchanged)
    /// holds: returns the held value (released unclipped, tagged good) and holds `x`.
    #[inline]
    pub fn pass(&mut self, x: f32) -> f32 {
        let h = self.held;
        self.prev = h;
        self.has_prev = true;
        self.held = x;
        h
    }

    /// End of stream: the last sample has no right neighbour and is released unclipped.
    pub fn finish(&mut self) -> Option<Clipped> {
        if !self.has_held {
            return None;
        }
        self.has_held = false;
        Some(Clipped { value: self.held, tag: self.held_tag, clipped: false })
    }
}

/// Shaft-speed hold for one channel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpeedHold {
    last_rpm: f32,
}

impl SpeedHold {
    pub const fn new() -> Self {
        SpeedHold { last_rpm: 0.0 }
    }

    /// Returns the speed to use and whether the input was replaced. `max_rpm` is finite (the
    /// validated config's): then the two comparisons below refuse NaN (every comparison with it
    /// is false) and both infinities, so no separate finiteness test is needed.
    #[inline]
    pub fn push(&mut self, rpm: f32, max_rpm: f32) -> (f32, bool) {
        debug_assert!(max_rpm.is_finite());
        if rpm >= 0.0 && rpm <= max_rpm {
            self.last_rpm = rpm;
            (rpm, false)
        } else {
            (self.last_rpm, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_gap_is_interpolated_long_gap_is_not() {
        let mut g = GapFiller::new();
        assert_eq!(g.push(1.0, 2, 100.0), GapStep::Good(1.0));
        assert_eq!(g.push(f32::NAN, 2, 100.0), GapStep::Hold);
        assert_eq!(g.push(f32::INFINITY, 2, 100.0), GapStep::Hold);
        assert_eq!(g.pending(), 2);
        assert_eq!(g.push(4.0, 2, 100.0), GapStep::Fill { from: 1.0, to: 4.0, count: 2 });
        assert_eq!(interpolate(1.0, 4.0, 1, 2), 2.0);
        assert_eq!(interpolate(1.0, 4.0, 2, 2), 3.0);
        // Three bad samples with max_gap 2: released as unrepaired on the third.
        assert_eq!(g.push(f32::NAN, 2, 100.0), GapStep::Hold);
        assert_eq!(g.push(500.0, 2, 100.0), GapStep::Hold); // beyond full scale
        assert_eq!(g.push(f32::NEG_INFINITY, 2, 100.0), GapStep::Unrepaired { value: 4.0, count: 3 });
        assert_eq!(g.push(f32::NAN, 2, 100.0), GapStep::Unrepaired { value: 4.0, count: 1 });
        assert_eq!(g.push(5.0, 2, 100.0), GapStep::Good(5.0));
        assert_eq!(g.push(f32::NAN, 2, 100.0), GapStep::Hold);
        assert_eq!(g.finish(), GapStep::Unrepaired { value: 5.0, count: 1 });
    }

    #[test]
    fn leading_gap_is_unrepaired() {
        let mut g = GapFiller::new();
        assert_eq!(g.push(f32::NAN, 8, 100.0), GapStep::Unrepaired { value: 0.0, count: 1 });
        assert_eq!(g.push(2.0, 8, 100.0), GapStep::Good(2.0));
    }

    #[test]
    fn only_isolated_spikes_are_clipped() {
        let b = Bounds::from_window(0.0, 1.0, 3.0);
        let mut c = SpikeClipper::new();
        // 9.0 and -7.0 are isolated spikes; 5.0, 6.0 a two-sample excursion; 3.2 is outside
        // the bounds but only 0.6 above its neighbours' mean (a smooth crest), so it is kept.
        let xs = [0.5, 9.0, 0.1, 5.0, 6.0, 0.2, -7.0, 0.0, 2.6, 3.2, 2.6];
        let mut out = std::vec::Vec::new();
        for x in xs {
            out.extend(c.push(x, Tag::Good, b));
        }
        out.extend(c.finish());
        let values: std::vec::Vec<f32> = out.iter().map(|o| o.value).collect();
        assert_eq!(values, [0.5, 3.0, 0.1, 5.0, 6.0, 0.2, -3.0, 0.0, 2.6, 3.2, 2.6]);
        assert_eq!(out.iter().filter(|o| o.clipped).count(), 2);
        // Without bounds nothing is clipped; interpolated samples are never clipped.
        let mut c = SpikeClipper::new();
        assert!(c.push(9.0, Tag::Filled, b).is_none());
        assert!(!c.push(0.0, Tag::Good, b).unwrap().clipped);
        let mut c = SpikeClipper::new();
        c.push(9.0, Tag::Good, Bounds::NONE);
        assert_eq!(c.push(0.0, Tag::Good, Bounds::NONE).unwrap().value, 9.0);
    }

    #[test]
    fn implausible_speed_is_held() {
        let mut s = SpeedHold::new();
        assert_eq!(s.push(f32::NAN, 1e4), (0.0, true));
        assert_eq!(s.push(3000.0, 1e4), (3000.0, false));
        assert_eq!(s.push(-1.0, 1e4), (3000.0, true));
        assert_eq!(s.push(2e4, 1e4), (3000.0, true));
        assert_eq!(s.push(f32::INFINITY, 1e4), (3000.0, true));
        assert_eq!(s.push(f32::NEG_INFINITY, 1e4), (3000.0, true));
        assert_eq!(s.push(-f32::NAN, 1e4), (3000.0, true));
        assert_eq!(s.push(-0.0, 1e4), (-0.0, false));
        assert_eq!(s.push(1e4, 1e4), (1e4, false));
    }
}
