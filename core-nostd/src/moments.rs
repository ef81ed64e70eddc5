//! Accurate streaming moments (mean, variance, third and fourth central moments).
//!
//! Accuracy scheme, chosen so a 20 480-sample window with a DC offset ten times its AC
//! amplitude stays within 1e-5 relative of a float64 reference while the per-sample work stays
//! in `f32` (the Cortex-M4F has a single-precision FPU only):
//!
//! 1. Each hop block is shifted by a reference value close to its mean (the previous block's
//!    mean, or the block's first sample), so the sums see deviations, not the DC offset.
//! 2. Deviation powers `d, d², d³, d⁴` are summed in `f32` over chunks of `CHUNK_LEN` samples;
//!    each chunk's sums are folded into `f64` block sums. The `f32` error thus grows with the
//!    chunk length, not the window length.
//! 3. At block end the shifted power sums become central moments (in `f64`); blocks are merged
//!    into windows with the pairwise update of Chan et al. / Pébay (2008), also in `f64`.
//!
//! `f64` arithmetic is software on the M4F but IEEE-754 exact there as on the host, and it runs
//! a few times per chunk, not per sample.

/// Samples summed in `f32` before folding into `f64`.
pub(crate) const CHUNK_LEN: u32 = 32;

/// Central moments of a set of samples: count, mean, and `M_p = Σ (x - mean)^p` for p = 2, 3, 4.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Moments {
    pub n: f64,
    pub mean: f64,
    pub m2: f64,
    pub m3: f64,
    pub m4: f64,
}

impl Moments {
    /// The empty set.
    pub const ZERO: Moments = Moments { n: 0.0, mean: 0.0, m2: 0.0, m3: 0.0, m4: 0.0 };

    /// Merges two disjoint sets (Pébay 2008, eqs. 2.1-2.3 with p up to 4).
    pub fn merge(&self, b: &Moments) -> Moments {
        let a = self;
        if a.n == 0.0 {
            return *b;
        }
        if b.n == 0.0 {
            return *a;
        }
        let n = a.n + b.n;
        let d = b.mean - a.mean;
        let d_n = d / n;
        let d2 = d * d;
        let nanb = a.n * b.n;
        let mean = a.mean + d_n * b.n;
        let m2 = a.m2 + b.m2 + d2 * nanb / n;
        let m3 = a.m3 + b.m3 + d2 * d * nanb * (a.n - b.n) / (n * n) + 3.0 * d_n * (a.n * b.m2 - b.n * a.m2);
        let m4 = a.m4
            + b.m4
            + d2 * d2 * nanb * (a.n * a.n - nanb + b.n * b.n) / (n * n * n)
            + 6.0 * d2 * (a.n * a.n * b.m2 + b.n * b.n * a.m2) / (n * n)
            + 4.0 * d_n * (a.n * b.m3 - b.n * a.m3);
        Moments { n, mean, m2, m3, m4 }
    }

    /// Population variance `M2 / n` (ddof = 0); 0 for an empty set.
    pub fn variance(&self) -> f64 {
        if self.n > 0.0 { (self.m2 / self.n).max(0.0) } else { 0.0 }
    }

    /// Root mean square `sqrt(mean² + variance)`.
    pub fn rms(&self) -> f64 {
        libm::sqrt(self.mean * self.mean + self.variance())
    }

    /// Pearson kurtosis `n·M4 / M2²`; 0 when `M2` is 0.
    pub fn kurtosis(&self) -> f64 {
        if self.m2 > 0.0 { self.n * self.m4 / (self.m2 * self.m2) } else { 0.0 }
    }
}

/// Run each lane's sums over the chunk before the next lane's ([`Lanes::lane_by_lane`]): on a
/// scalar core (the Cortex-M4F) one lane's six accumulators stay in registers, where the
/// interleaved loop kept 24 of them in memory (35 instructions per sample, now about 15).
/// Elsewhere the interleaved loop is the one that vectorises. Both perform every lane's
/// operations in the same order, so their bits are the same (tested).
const LANE_MAJOR: bool = cfg!(target_arch = "arm");

/// The per-lane partial results of one chunk: shifted power sums, largest and smallest sample.
struct Lanes {
    s1: [f32; 4],
    s2: [f32; 4],
    s3: [f32; 4],
    s4: [f32; 4],
    hi: [f32; 4],
    lo: [f32; 4],
}

impl Lanes {
    /// Sample `i` of the chunk goes to lane `i % 4`; each lane adds its samples in increasing
    /// `i`: `d = x - shift`, `s1 += d`, `s2 += d²`, `s3 += d²·d`, `s4 += d²·d²`, and keeps its
    /// largest and smallest `x` (starting from `max` and `min`).
    #[inline(always)]
    fn interleaved(chunk: &[f32; CHUNK_LEN as usize], shift: f32, max: f32, min: f32) -> Lanes {
        let mut l =
            Lanes { s1: [0.0; 4], s2: [0.0; 4], s3: [0.0; 4], s4: [0.0; 4], hi: [max; 4], lo: [min; 4] };
        for quad in chunk.chunks_exact(4) {
            for (i, &x) in quad.iter().enumerate() {
                l.add(i, x, shift);
            }
        }
        l
    }

    /// [`Lanes::interleaved`]'s operations, one lane after the other.
    #[inline(always)]
    fn lane_by_lane(chunk: &[f32; CHUNK_LEN as usize], shift: f32, max: f32, min: f32) -> Lanes {
        let mut l =
            Lanes { s1: [0.0; 4], s2: [0.0; 4], s3: [0.0; 4], s4: [0.0; 4], hi: [max; 4], lo: [min; 4] };
        for lane in 0..4 {
            let mut one =
                Lanes { s1: [0.0; 4], s2: [0.0; 4], s3: [0.0; 4], s4: [0.0; 4], hi: [max; 4], lo: [min; 4] };
            for quad in chunk.chunks_exact(4) {
                one.add(0, quad[lane], shift);
            }
            l.s1[lane] = one.s1[0];
            l.s2[lane] = one.s2[0];
            l.s3[lane] = one.s3[0];
            l.s4[lane] = one.s4[0];
            l.hi[lane] = one.hi[0];
            l.lo[lane] = one.lo[0];
        }
        l
    }

    #[inline(always)]
    fn add(&mut self, lane: usize, x: f32, shift: f32) {
        let d = x - shift;
        let d2 = d * d;
        self.s1[lane] += d;
        self.s2[lane] += d2;
        self.s3[lane] += d2 * d;
        self.s4[lane] += d2 * d2;
        self.hi[lane] = if x > self.hi[lane] { x } else { self.hi[lane] };
        self.lo[lane] = if x < self.lo[lane] { x } else { self.lo[lane] };
    }
}

/// Shifted power sums of one hop block, accumulated a chunk of [`CHUNK_LEN`] samples at a time.
///
/// Within a chunk the sums run in four interleaved lanes (sample `i` goes to lane `i % 4`),
/// which a vectorising compiler maps onto SIMD registers and a scalar core runs as written: the
/// order of every addition is fixed by this code, so the result is the same on every target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockAccumulator {
    shift: f32,
    has_shift: bool,
    sums: [f64; 4],
    n: u32,
    /// Largest and smallest sample pushed since the last reset (±0 before the first chunk).
    pub max: f32,
    pub min: f32,
}

impl BlockAccumulator {
    /// All zero: the placeholder of an unconfigured extractor (reset before any sample).
    pub const ZERO: Self =
        BlockAccumulator { shift: 0.0, has_shift: false, sums: [0.0; 4], n: 0, max: 0.0, min: 0.0 };

    pub const fn new() -> Self {
        BlockAccumulator {
            shift: 0.0,
            has_shift: false,
            sums: [0.0; 4],
            n: 0,
            max: f32::NEG_INFINITY,
            min: f32::INFINITY,
        }
    }

    /// Starts a new block shifted by `shift` (`None`: use the block's first sample).
    pub fn reset(&mut self, shift: Option<f32>) {
        *self = BlockAccumulator::new();
        if let Some(s) = shift {
            self.shift = s;
            self.has_shift = true;
        }
    }

    /// Adds one chunk of samples.
    #[inline]
    pub fn push_chunk(&mut self, chunk: &[f32; CHUNK_LEN as usize]) {
        if !self.has_shift {
            self.shift = chunk[0];
            self.has_shift = true;
        }
        let l = if LANE_MAJOR {
            Lanes::lane_by_lane(chunk, self.shift, self.max, self.min)
        } else {
            Lanes::interleaved(chunk, self.shift, self.max, self.min)
        };
        let (s1, s2, s3, s4, hi, lo) = (l.s1, l.s2, l.s3, l.s4, l.hi, l.lo);
        let lanes = |s: [f32; 4]| f64::from((s[0] + s[1]) + (s[2] + s[3]));
        self.sums[0] += lanes(s1);
        self.sums[1] += lanes(s2);
        self.sums[2] += lanes(s3);
        self.sums[3] += lanes(s4);
        let max2 = |a: f32, b: f32| if b > a { b } else { a };
        let min2 = |a: f32, b: f32| if b < a { b } else { a };
        self.max = max2(max2(hi[0], hi[1]), max2(hi[2], hi[3]));
        self.min = min2(min2(lo[0], lo[1]), min2(lo[2], lo[3]));
        self.n += CHUNK_LEN;
    }

    /// Central moments of the samples pushed since the last reset.
    pub fn finish(&self) -> Moments {
        if self.n == 0 {
            return Moments::default();
        }
        let n = f64::from(self.n);
        let [s1, s2, s3, s4] = self.sums;
        let m = s1 / n;
        let m_2 = m * m;
        Moments {
            n,
            mean: f64::from(self.shift) + m,
            m2: (s2 - n * m_2).max(0.0),
            m3: s3 - 3.0 * m * s2 + 2.0 * n * m_2 * m,
            m4: (s4 - 4.0 * m * s3 + 6.0 * m_2 * s2 - 3.0 * n * m_2 * m_2).max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(xs: &[f64]) -> Moments {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let p = |k: i32| xs.iter().map(|x| (x - mean).powi(k)).sum::<f64>();
        Moments { n, mean, m2: p(2), m3: p(3), m4: p(4) }
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-30)
    }

    #[test]
    fn lane_by_lane_is_interleaved_bit_for_bit() {
        // The Cortex-M4F's loop order against the host's, on chunks of noise at several offsets
        // and scales, with ±0, huge and tiny values, infinities and NaN mixed in.
        let mut state = 0x2545_f491u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        // A NaN's sign and payload are not specified by Rust (nor kept by the compiler, which
        // may commute an addition): every NaN counts as one value.
        let canon = |x: f32| if x.is_nan() { f32::NAN.to_bits() } else { x.to_bits() };
        let bits = |l: &Lanes| [l.s1, l.s2, l.s3, l.s4, l.hi, l.lo].map(|a| a.map(canon));
        for case in 0..2000 {
            let scale = [1e-3f32, 1.0, 37.5, 1e5][case % 4];
            let offset = [0.0f32, 10.0, -3.0e3][case % 3];
            let mut chunk = [0.0f32; CHUNK_LEN as usize];
            for x in chunk.iter_mut() {
                *x = offset + scale * (next() as f32 / u32::MAX as f32 - 0.5);
                if case % 7 == 0 && next() % 8 == 0 {
                    *x = [0.0, -0.0, 3.0e38, -1.0e-40, f32::INFINITY, f32::NAN][next() as usize % 6];
                }
            }
            let shift = chunk[(next() % 32) as usize];
            let (max, min) =
                if case % 2 == 0 { (f32::NEG_INFINITY, f32::INFINITY) } else { (offset, offset) };
            let a = Lanes::interleaved(&chunk, shift, max, min);
            let b = Lanes::lane_by_lane(&chunk, shift, max, min);
            assert_eq!(bits(&a), bits(&b), "case {case}");
        }
    }

    #[test]
    fn merge_matches_direct() {
        let xs: std::vec::Vec<f64> =
            (0..1000).map(|i| ((i * 37 % 101) as f64).sin() * 3.0 + (i as f64) * 0.01).collect();
        let (a, b) = xs.split_at(377);
        let merged = direct(a).merge(&direct(b));
        let whole = direct(&xs);
        for (x, y) in
            [(merged.mean, whole.mean), (merged.m2, whole.m2), (merged.m3, whole.m3), (merged.m4, whole.m4)]
        {
            assert!(close(x, y, 1e-12), "{x} vs {y}");
        }
        assert_eq!(Moments::default().merge(&whole), whole);
    }

    #[test]
    fn dc_offset_keeps_accuracy() {
        // DC 10, AC amplitude 1, 20 480 samples: the accuracy requirement of the crate.
        let xs: std::vec::Vec<f32> =
            (0..20_480).map(|i| 10.0 + (i as f32 * 0.731).sin() + 0.01 * ((i % 7) as f32)).collect();
        let mut acc = BlockAccumulator::new();
        acc.reset(None);
        xs.chunks_exact(CHUNK_LEN as usize).for_each(|c| acc.push_chunk(c.try_into().unwrap()));
        let got = acc.finish();
        let reference = direct(&xs.iter().map(|&x| f64::from(x)).collect::<std::vec::Vec<_>>());
        assert!(close(got.mean, reference.mean, 1e-7));
        assert!(close(got.m2, reference.m2, 1e-6), "{} vs {}", got.m2, reference.m2);
        assert!(close(got.m4, reference.m4, 1e-5), "{} vs {}", got.m4, reference.m4);
    }
}
