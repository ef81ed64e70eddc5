//! Spectral analysis of one Welch segment: Hann window, real FFT (microfft), one-sided power,
//! then the sums every spectral feature needs (bands, orders, total, centroid, flatness).
//!
//! Conventions (the Python reference in `core-nostd/reference/` uses the same):
//! - periodic Hann window `w[i] = 0.5 - 0.5·cos(2πi/N)` (scipy's `get_window("hann", N)`);
//! - one-sided power `P[k] = 2·|X[k]|²` for `0 < k < N/2`, `P[N/2] = |X[N/2]|²`; DC is excluded
//!   from every sum (a window's mean is the `mean_g` feature, not vibration);
//! - order band centre `k_p = round(p · f_shaft · N / fs)` with `f_shaft = rpm / 60` and the mean
//!   shaft speed over the segment's own samples; half-width
//!   `b = max(order_band_bins, round(half_width_orders · f_shaft · N / fs))`; the band is
//!   `k_p - b ..= k_p + b` clipped to `1 ..= N/2`; a band whose centre is 0 (shaft below one
//!   bin) or above N/2 (beyond Nyquist) holds no energy;
//! - fixed bands: the bins of [`crate::config::band_bins`], computed once per configuration.
//!
//! Sums run bin by bin in increasing order, in `f32` per segment (the flatness's log sum in
//! `f64`): one fixed order of operations on every target.

use microfft::Complex32;

use crate::config::{ExtractorConfig, band_bins};
use crate::features::{Families, MAX_BANDS, MAX_ORDERS};

/// The spectral sums of one segment, or of several segments added (arbitrary but consistent
/// units: |FFT|², one-sided; the window turns them into g²).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SpecSums {
    pub bands: [f32; MAX_BANDS],
    pub orders: [f32; MAX_ORDERS],
    /// `Σ P[k]`, k = 1..=N/2.
    pub total: f32,
    /// `Σ k·P[k]`, k = 1..=N/2 (the centroid's numerator, in bins).
    pub weighted: f32,
    /// Sum of the segments' spectral flatness.
    pub flatness: f32,
}

impl SpecSums {
    pub const ZERO: SpecSums = SpecSums {
        bands: [0.0; MAX_BANDS],
        orders: [0.0; MAX_ORDERS],
        total: 0.0,
        weighted: 0.0,
        flatness: 0.0,
    };

    pub fn add(&mut self, o: &SpecSums, bands: usize, orders: usize) {
        for (a, b) in self.bands[..bands].iter_mut().zip(&o.bands[..bands]) {
            *a += *b;
        }
        for (a, b) in self.orders[..orders].iter_mut().zip(&o.orders[..orders]) {
            *a += *b;
        }
        self.total += o.total;
        self.weighted += o.weighted;
        self.flatness += o.flatness;
    }
}

impl Default for SpecSums {
    fn default() -> Self {
        SpecSums::ZERO
    }
}

/// What the segment analysis needs from the configuration, resolved once at configure time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpectralPlan {
    pub fft_len: u32,
    pub sample_rate_hz: u32,
    pub order_band_bins: u32,
    /// Band `i` covers bins `band_bins[i].0 ..= band_bins[i].1`.
    pub band_bins: [(u16, u16); MAX_BANDS],
    pub bands: usize,
    pub orders: [f32; MAX_ORDERS],
    pub order_count: usize,
    pub order_half_width: f32,
    pub flatness: bool,
    /// Any spectral family selected (else no segment is transformed).
    pub spectral: bool,
}

impl SpectralPlan {
    pub const NONE: SpectralPlan = SpectralPlan {
        fft_len: 0,
        sample_rate_hz: 0,
        order_band_bins: 0,
        band_bins: [(0, 0); MAX_BANDS],
        bands: 0,
        orders: [0.0; MAX_ORDERS],
        order_count: 0,
        order_half_width: 0.0,
        flatness: false,
        spectral: false,
    };

    pub fn new(cfg: &ExtractorConfig) -> SpectralPlan {
        let set = &cfg.features;
        let mut plan = SpectralPlan {
            fft_len: cfg.fft_len,
            sample_rate_hz: cfg.sample_rate_hz,
            order_band_bins: cfg.order_band_bins,
            ..SpectralPlan::NONE
        };
        let edges = set.bands();
        plan.bands = edges.len().saturating_sub(1);
        for (i, w) in edges.windows(2).enumerate() {
            let (lo, hi) = band_bins(w[0], w[1], i + 2 == edges.len(), cfg.sample_rate_hz, cfg.fft_len);
            plan.band_bins[i] = (lo as u16, hi as u16);
        }
        let orders = set.order_list();
        plan.order_count = orders.len();
        plan.orders[..orders.len()].copy_from_slice(orders);
        plan.order_half_width = set.order_half_width;
        plan.flatness = set.families.contains(Families::SHAPE);
        plan.spectral = plan.flatness
            || set.families.contains(Families::BANDS)
            || set.families.contains(Families::ORDERS);
        plan
    }

    /// The bins of this plan's orders at `speed_rpm`.
    fn orders_at(&self, speed_rpm: f32) -> OrderBins {
        OrderBins::new(
            speed_rpm,
            self.fft_len,
            f64::from(self.sample_rate_hz),
            self.order_half_width,
            self.order_band_bins,
        )
    }

    /// Bins `lo..=hi` of order `p` at `speed_rpm` (`None`: empty band).
    #[cfg(test)]
    pub fn order_bins(&self, p: f32, speed_rpm: f32) -> Option<(usize, usize)> {
        self.orders_at(speed_rpm).range(p)
    }

    /// The sums of one transformed segment. `spec` is microfft's output for an `fft_len`-point
    /// transform (`fft_len / 2` bins, Nyquist packed into `spec[0].im`).
    pub fn analyse(&self, spec: &[Complex32], speed_rpm: f32) -> SpecSums {
        let half = spec.len();
        let mut s = SpecSums::ZERO;
        for (k, &c) in spec.iter().enumerate().skip(1) {
            let p = power_below_nyquist(c);
            s.total += p;
            s.weighted += k as f32 * p;
        }
        let nyquist = one_sided_power(spec, half);
        s.total += nyquist;
        s.weighted += half as f32 * nyquist;
        // Bands do not overlap (`band_bins`), so summing each band over its own bins adds the
        // same values in the same order as one pass over the bins would.
        for (e, &(lo, hi)) in s.bands[..self.bands].iter_mut().zip(&self.band_bins) {
            *e = power_sum(spec, (usize::from(lo), usize::from(hi)));
        }
        let at_speed = self.orders_at(speed_rpm);
        for (e, &p) in s.orders[..self.order_count].iter_mut().zip(&self.orders) {
            if let Some(bins) = at_speed.range(p) {
                *e = power_sum(spec, bins);
            }
        }
        if self.flatness {
            let mean = f64::from(s.total) / half as f64;
            let floor = 1e-8 * mean + 1e-30;
            let geometric = libm::exp(ln_sum(spec, floor) / half as f64);
            s.flatness = (geometric / (mean + floor)) as f32;
        }
        s
    }
}

/// One-sided power of bin `k` (1..=N/2) of microfft's output (`spec.len()` = N/2 bins, Nyquist
/// packed into `spec[0].im`): `2|X[k]|²` below Nyquist, `|X[N/2]|²` at it.
#[inline]
pub(crate) fn one_sided_power(spec: &[Complex32], k: usize) -> f32 {
    if k == spec.len() { spec[0].im * spec[0].im } else { power_below_nyquist(spec[k]) }
}

/// `2|X[k]|²`: the one-sided power of a bin below Nyquist.
#[inline(always)]
fn power_below_nyquist(c: Complex32) -> f32 {
    2.0 * (c.re * c.re + c.im * c.im)
}

/// Bins per pass of [`ln_sum`]: a stack buffer of this many `f32` logs.
const LOG_CHUNK: usize = 64;

/// `f64` arithmetic is a software routine on this target (32-bit ARM: the Cortex-M4F's FPU is
/// single precision). [`ln_sum`] then takes its exact `f32`/integer route; elsewhere the `f64`
/// operations themselves are the cheapest way to the same bits.
const SOFT_F64: bool = cfg!(target_arch = "arm");

/// The flatness's log sum `Σ_{k=1..=N/2} f64(logf(f32(f64(P[k]) + floor)))`, added in increasing
/// `k` in `f64`: exactly the definition's operations and order, with the same bits, on every
/// target. Two routes, both tested against the definition on the host:
/// - [`ln_sum_f64`] (targets with `f64` hardware): the definition's operations.
/// - [`ln_sum_soft_f64`] (the Cortex-M4F): on it every `f64` operation is a software routine, and
///   the definition's two `f64` additions per bin were a third of the firmware's CPU. It uses
///   [`Floored`] (the floor by `f32` arithmetic where provably equal) and [`FixedSum`] (the
///   logs added as integers where that provably equals the `f64` additions), falling back to the
///   `f64` expressions where not provable.
fn ln_sum(spec: &[Complex32], floor: f64) -> f64 {
    if SOFT_F64 { ln_sum_soft_f64(spec, floor) } else { ln_sum_f64(spec, floor) }
}

/// [`ln_sum`] with `f64` operations, as the definition reads.
fn ln_sum_f64(spec: &[Complex32], floor: f64) -> f64 {
    let floored = |p: f32| (f64::from(p) + floor) as f32;
    let mut sum = 0.0f64;
    for_each_log(
        spec,
        |p| (floored(p), true),
        floored,
        |logs| logs.iter().for_each(|&l| sum += f64::from(l)),
    );
    sum
}

/// [`ln_sum`] without `f64` operations where [`Floored`] and [`FixedSum`] prove their results.
fn ln_sum_soft_f64(spec: &[Complex32], floor: f64) -> f64 {
    let floored = Floored::new(floor);
    let mut fixed = FixedSum::new();
    for_each_log(spec, |p| floored.candidate(p), |p| floored.apply(p), |logs| fixed.push(logs));
    match fixed.exact() {
        Some(sum) => sum,
        None => ln_sum_f64(spec, floor),
    }
}

/// Calls `add` with the logs `logf(floored(P[k]))` for `k = 1..=N/2`, in increasing `k`, a
/// chunk of at most [`LOG_CHUNK`] at a time.
///
/// In chunks of [`LOG_CHUNK`] bins: first every log of the chunk, in a loop without branches
/// that the compiler vectorises where the target has SIMD (the host; on the Cortex-M4F it is the
/// same scalar arithmetic), from `candidate` (the floored power and whether it is exact) and
/// [`ln_positive_normal`] (`libm::logf` without its special cases). A chunk holding an inexact
/// candidate or an argument outside the logarithm's fast domain (zero, subnormal, infinite or
/// NaN: impossible here, as the floor is at least 1e-30, but not assumed) is recomputed with
/// `exact` and `libm::logf` itself. Then the chunk's logs go to `add`.
#[inline(always)]
fn for_each_log(
    spec: &[Complex32],
    candidate: impl Fn(f32) -> (f32, bool),
    exact: impl Fn(f32) -> f32,
    mut add: impl FnMut(&[f32]),
) {
    let mut logs = [0.0f32; LOG_CHUNK];
    for bins in spec[1..].chunks(LOG_CHUNK) {
        let logs = &mut logs[..bins.len()];
        let mut fast = true;
        for (l, &c) in logs.iter_mut().zip(bins) {
            let (x, ok) = candidate(power_below_nyquist(c));
            fast &= ok & is_positive_normal(x);
            *l = ln_positive_normal(x);
        }
        if !fast {
            for (l, &c) in logs.iter_mut().zip(bins) {
                *l = libm::logf(exact(power_below_nyquist(c)));
            }
        }
        add(logs);
    }
    // Nyquist, the last bin.
    add(&[libm::logf(exact(spec[0].im * spec[0].im))]);
}

/// `p ↦ f32(f64(p) + floor)` (round to `f64`, then to `f32`), by `f32` arithmetic where that
/// gives the same bits provably, else by the `f64` expression itself.
///
/// - `p > floor · 2^26`: the result is `p`. For `p` in `[2^e, 2^(e+1))` the floor is below
///   `2^(e-25)`, a quarter of `p`'s last place; `f64(p) + floor` lies in `[p, p + 2^(e-25)]`,
///   whose nearest `f32` is `p`. (`above` is `floor · 2^26` rounded up to an `f32`.)
/// - Otherwise, with `floor = hi + lo` (`hi` its nearest `f32`, `|lo| ≤ floor · 2^-24`): `s =
///   f32(p + hi)` and its exact error `e` (Knuth's two-sum, exact in `f32`), so that
///   `p + floor = s + e + lo`, and `f64` rounding adds `|δ| ≤ s · 2^-52 ≤ u · 2^-28` (`u` the last
///   place of `s`). When `s` is not a power of two (both neighbours `u` away) and
///   `|e| + |lo| + |δ| < u / 2`, the value rounded to `f64` is within `u / 2` of `s`, so the
///   result is `s`. The test below checks `u/2 - |e| > 2·lo_bound + u · 2^-27` in `f32`; the
///   factor 2 covers that test's own rounding. Ties (`|e| = u/2`), powers of two, `s` below
///   2^-90 (where `u · 2^-27` would underflow), infinities and NaN take the `f64` expression.
struct Floored {
    floor: f64,
    above: f32,
    hi: f32,
    /// `2 · floor · 2^-24`, rounded up: at least twice `|lo|`.
    margin: f32,
}

impl Floored {
    fn new(floor: f64) -> Self {
        Floored {
            floor,
            above: f32_at_least(floor * 67_108_864.0), // · 2^26, exact
            hi: floor as f32,
            margin: f32_at_least(floor * (2.0 / 16_777_216.0)), // · 2^-23, exact
        }
    }

    #[inline(always)]
    fn apply(&self, p: f32) -> f32 {
        match self.shortcut(p) {
            Some(x) => x,
            None => (f64::from(p) + self.floor) as f32,
        }
    }

    /// The result when `f32` arithmetic proves it, else `None`.
    #[inline(always)]
    fn shortcut(&self, p: f32) -> Option<f32> {
        let (x, proven) = self.candidate(p);
        proven.then_some(x)
    }

    /// The shortcuts' result and whether it is proven.
    #[inline(always)]
    fn candidate(&self, p: f32) -> (f32, bool) {
        if p > self.above {
            return (p, true);
        }
        let s = p + self.hi;
        let (sp, sh) = (s - self.hi, s - (s - self.hi));
        let e = (p - sp) + (self.hi - sh);
        let bits = s.to_bits();
        let u = f32::from_bits((bits & 0x7f80_0000).wrapping_sub(23 << 23));
        let near = bits & 0x007f_ffff != 0
            && (Self::MIN_BITS..0x7f80_0000).contains(&bits)
            && u * 0.5 - e.abs() > self.margin + u * (1.0 / 134_217_728.0);
        (s, near)
    }

    /// The bits of 2^-90: below it `u · 2^-27` could underflow.
    const MIN_BITS: u32 = (127 - 90) << 23;
}

/// The smallest `f32` not below `x` (for a positive finite `x`; `x` itself when exact).
fn f32_at_least(x: f64) -> f32 {
    let y = x as f32;
    if f64::from(y) < x { f32::from_bits(y.to_bits() + 1) } else { y }
}

/// An exact sum of `f32` values in integer units of 2⁻³⁶ (see [`ln_sum`]).
///
/// Values come in chunks; within a chunk of at most 64, the integer significands are summed in
/// one `i32` per binary exponent (at most 64 · 2^24 = 2^30 in magnitude: no overflow), and the
/// chunk's buckets are shifted into the `i64` sum at its end. On the Cortex-M4F that is about a
/// third of the instructions of one 64-bit shift and add per value; the sum is the same integer.
struct FixedSum {
    /// The sum, in units.
    sum: i64,
    /// An upper bound of the sum of the magnitudes, in units (saturating).
    magnitude: u64,
    /// A value was not a whole number of units (or too large): use `f64` additions instead.
    inexact: bool,
}

impl FixedSum {
    /// log2 of the unit's reciprocal.
    const FRACTION_BITS: i32 = 36;
    /// Partial sums below this many units (2⁵³) are exact in `f64`.
    const EXACT_BELOW: u64 = 1 << 53;
    /// Values per `i32` bucket pass: 64 significands below 2^24 stay below 2^30.
    const BUCKET_CHUNK: usize = 64;

    fn new() -> Self {
        FixedSum { sum: 0, magnitude: 0, inexact: false }
    }

    /// Adds the values of `xs`.
    #[inline(always)]
    fn push(&mut self, xs: &[f32]) {
        for part in xs.chunks(Self::BUCKET_CHUNK) {
            if !self.push_chunk(part) {
                self.inexact = true;
                return;
            }
        }
    }

    /// Adds at most [`Self::BUCKET_CHUNK`] values; false when one is not a whole number of
    /// units or is too large.
    #[inline(always)]
    fn push_chunk(&mut self, xs: &[f32]) -> bool {
        // Bucket `shift` holds the signed significands of the values whose units are their
        // significand shifted left by `shift`.
        let mut buckets = [0i32; 25];
        let mut used = 0u32;
        for &x in xs {
            let bits = x.to_bits();
            if bits << 1 == 0 {
                continue; // ±0
            }
            // |x| = (2^23 + m) · 2^(exponent - 150) for a normal x, so its units are the integer
            // significand shifted left by exponent - 150 + 36; a negative shift would drop bits
            // (subnormals land there too). Shifts above 24 (|x| ≥ 2^11, or infinite/NaN) are
            // refused to keep far from overflow.
            let shift = ((bits >> 23) & 0xff) as i32 - (150 - Self::FRACTION_BITS);
            if !(0..=24).contains(&shift) {
                return false;
            }
            let significand = ((bits & 0x007f_ffff) | 0x0080_0000) as i32;
            let sign = (bits as i32) >> 31; // 0 or -1
            buckets[shift as usize] += (significand ^ sign) - sign;
            used |= 1 << shift;
        }
        if used == 0 {
            return true;
        }
        // Every value's units are below 2^(24 + the largest shift): a bound of the magnitudes.
        let top = 31 - used.leading_zeros();
        self.magnitude = self.magnitude.saturating_add((xs.len() as u64) << (24 + top));
        let mut rest = used;
        while rest != 0 {
            let shift = rest.trailing_zeros();
            // |bucket| < 2^30 and shift ≤ 24: below 2^54. `exact` refuses any sum whose
            // magnitude bound reached 2^53, so `sum` cannot have wrapped when it is used.
            self.sum = self.sum.wrapping_add(i64::from(buckets[shift as usize]) << shift);
            rest &= rest - 1;
        }
        true
    }

    /// The sum, when adding the values one by one in `f64` (in any order) gives exactly it.
    fn exact(&self) -> Option<f64> {
        if self.inexact || self.magnitude >= Self::EXACT_BELOW {
            return None;
        }
        // |sum| < 2^53: the conversion is exact, and so is the scaling by a power of two.
        Some(self.sum as f64 * (1.0 / (1u64 << Self::FRACTION_BITS) as f64))
    }
}

/// `x` is a positive, normal, finite `f32` (the domain of [`ln_positive_normal`]).
#[inline(always)]
fn is_positive_normal(x: f32) -> bool {
    (0x0080_0000..0x7f80_0000).contains(&x.to_bits())
}

/// The natural logarithm of a positive, normal, finite `x`: `libm::logf`'s own arithmetic
/// (FreeBSD's `e_logf.c`, the version libm 0.2 ships) without its branches for zero,
/// subnormal, negative, infinite, NaN and 1.0 arguments, so that a loop of it vectorises.
/// Written here, not called, for that reason only; bit-identical to `libm::logf` on its domain
/// (for `x = 1.0` the arithmetic below gives `+0.0`, the special case's value), which the tests
/// check on every 61st bit pattern and `ln_positive_normal_is_libm_logf_everywhere` (ignored:
/// run it with `--release -- --ignored`) on all 2 130 706 432 of them.
#[inline(always)]
fn ln_positive_normal(x: f32) -> f32 {
    // libm's constants, by their bits.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
    const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
    const LG1: f32 = f32::from_bits(0x3f2a_aaaa);
    const LG2: f32 = f32::from_bits(0x3ecc_ce13);
    const LG3: f32 = f32::from_bits(0x3e91_e9ee);
    const LG4: f32 = f32::from_bits(0x3e78_9e26);
    // Reduce x into [sqrt(2)/2, sqrt(2)]: x = 2^k · (1 + f).
    let ix = x.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = (ix >> 23) as i32 - 0x7f;
    let f = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

/// `Σ one_sided_power(k)` over `lo..=hi` (within `1..=N/2`), in increasing `k`; 0 when empty.
pub(crate) fn power_sum(spec: &[Complex32], (lo, hi): (usize, usize)) -> f32 {
    let half = spec.len();
    let mut e = 0.0f32;
    for &c in spec.get(lo..hi.min(half - 1) + 1).unwrap_or(&[]) {
        e += power_below_nyquist(c);
    }
    if hi == half && lo <= hi {
        e += one_sided_power(spec, half);
    }
    e
}

/// The bins of a shaft's orders at one speed in an `fft_len`-point spectrum of a signal at
/// `rate_hz`: order `p` covers `lo..=hi` around the centre `round(p·f·N/fs)`, half-width
/// `max(min_bins, round(half_width·f·N/fs))`, clipped to `1..=N/2`; none when the centre is 0
/// or above `N/2`. What depends on the speed only (`f·N/fs`, the half-width: `f64` divisions,
/// software routines on the Cortex-M4F) is computed once per segment, not once per order.
pub(crate) struct OrderBins {
    bins_per_order: f64,
    half_bins: u32,
    half: u32,
}

impl OrderBins {
    /// speed is finite and in [0, max_shaft_speed_rpm] after sanitising; the cap keeps casts
    /// exact.
    const CAP: f64 = (u32::MAX / 4) as f64;

    pub(crate) fn new(speed_rpm: f32, fft_len: u32, rate_hz: f64, half_width: f32, min_bins: u32) -> Self {
        let bins_per_order = f64::from(speed_rpm) / 60.0 * f64::from(fft_len) / rate_hz;
        let half_bins =
            (libm::round(f64::from(half_width) * bins_per_order).clamp(0.0, Self::CAP) as u32).max(min_bins);
        OrderBins { bins_per_order, half_bins, half: fft_len / 2 }
    }

    /// The bins `(lo, hi)` of order `p`, or `None`.
    pub(crate) fn range(&self, p: f32) -> Option<(usize, usize)> {
        let kc = libm::round(f64::from(p) * self.bins_per_order).clamp(0.0, Self::CAP) as u32;
        if kc == 0 || kc > self.half {
            return None;
        }
        let lo = kc.saturating_sub(self.half_bins).max(1) as usize;
        let hi = kc.saturating_add(self.half_bins).min(self.half) as usize;
        Some((lo, hi))
    }
}

/// Fills `out` with the periodic Hann window of length `out.len()`.
///
/// Computed in `f64` with `libm::cos` (software, identical on every target) and rounded once.
pub(crate) fn hann_periodic(out: &mut [f32]) {
    let n = out.len() as f64;
    for (i, w) in out.iter_mut().enumerate() {
        let phase = 2.0 * core::f64::consts::PI * (i as f64) / n;
        *w = (0.5 - 0.5 * libm::cos(phase)) as f32;
    }
}

/// In-place real FFT of `buf` (length a power of two in 64..=[`FFT_LEN_MAX`](crate::config::FFT_LEN_MAX)). Returns the `len/2`
/// complex bins with microfft's layout (`X[0].re` = DC, `X[0].im` = Nyquist), or `None` for an
/// unsupported length (prevented by config validation).
pub(crate) fn rfft(buf: &mut [f32]) -> Option<&mut [Complex32]> {
    macro_rules! dispatch {
        ($($(#[$only:meta])* $n:literal => $f:ident),*) => {
            match buf.len() {
                $($(#[$only])* $n => {
                    let a: &mut [f32; $n] = buf.try_into().ok()?;
                    Some(microfft::real::$f(a).as_mut_slice())
                })*
                _ => None,
            }
        };
    }
    dispatch!(64 => rfft_64, 128 => rfft_128, 256 => rfft_256, 512 => rfft_512, 1024 => rfft_1024,
        2048 => rfft_2048, 4096 => rfft_4096,
        #[cfg(feature = "fft-32768")] 8192 => rfft_8192,
        #[cfg(feature = "fft-32768")] 16384 => rfft_16384,
        #[cfg(feature = "fft-32768")] 32768 => rfft_32768)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn plan(fft_len: u32, fs: u32) -> SpectralPlan {
        let mut cfg = ExtractorConfig::default_at(2048).unwrap();
        cfg.fft_len = fft_len;
        cfg.sample_rate_hz = fs;
        cfg.features.families = Families::KNOWN;
        cfg.features.band_count = 2;
        cfg.features.band_edges_hz[..3].copy_from_slice(&[1.0, 100.0, fs as f32 / 2.0]);
        cfg.features.order_count = 2;
        cfg.features.orders[..2].copy_from_slice(&[1.0, 2.0]);
        cfg.features.order_half_width = 0.0;
        SpectralPlan::new(&cfg)
    }

    #[test]
    fn nyquist_is_unpacked() {
        // Alternating ±1: all energy at Nyquist, in the last band (its upper edge included).
        let mut buf: std::vec::Vec<f32> = (0..256).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let spec = rfft(&mut buf).unwrap();
        let p = plan(256, 256);
        let e = p.analyse(spec, 128.0 * 60.0);
        assert_eq!(e.total, 256.0 * 256.0);
        assert_eq!(e.bands[1], e.total);
        assert_eq!(e.orders[0], e.total); // order 1 at 128 Hz = bin 128
        // A DC signal has no energy outside DC.
        let mut buf = std::vec![3.0f32; 512];
        let spec = rfft(&mut buf).unwrap();
        assert_eq!(plan(512, 512).analyse(spec, 60.0).total, 0.0);
    }

    #[test]
    fn tone_lands_in_its_band() {
        let n = 1024;
        let fs = 2048;
        let p = plan(n, fs);
        let rpm = 3000.0; // 50 Hz: bin 25
        assert_eq!(p.order_bins(1.0, rpm), Some((24, 26)));
        assert_eq!(p.order_bins(2.0, rpm), Some((49, 51)));
        assert_eq!(p.order_bins(1.0, 0.0), None);
        let mut w = std::vec![0.0f32; n as usize];
        hann_periodic(&mut w);
        let mut buf: std::vec::Vec<f32> = (0..n)
            .map(|i| (2.0 * core::f32::consts::PI * 50.0 * i as f32 / fs as f32).sin() * w[i as usize])
            .collect();
        let spec = rfft(&mut buf).unwrap();
        let e = p.analyse(spec, rpm);
        // A Hann-windowed bin-centred tone puts all its energy in bins k-1..=k+1.
        assert!((e.orders[0] / e.total - 1.0).abs() < 1e-5, "{e:?}");
        assert!(e.orders[1] / e.total < 1e-6);
        assert!((e.bands[0] / e.total - 1.0).abs() < 1e-5);
        assert!((e.weighted / e.total - 25.0).abs() < 1e-3);
        assert!(e.flatness < 1e-3, "a tone is not flat: {}", e.flatness);
    }

    /// A xorshift32 stream (test data, no dependency).
    pub(crate) fn xorshift(mut state: u32) -> impl FnMut() -> u32 {
        move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        }
    }

    /// The flatness's log sum as defined: bin by bin, in increasing `k`, with `libm::logf`.
    fn ln_sum_by_definition(spec: &[Complex32], floor: f64) -> f64 {
        let mut ln = 0.0f64;
        for k in 1..=spec.len() {
            ln += f64::from(libm::logf((f64::from(one_sided_power(spec, k)) + floor) as f32));
        }
        ln
    }

    fn ln_matches_libm(bits: impl Iterator<Item = u32>) -> usize {
        let mut n = 0;
        for b in bits {
            let x = f32::from_bits(b);
            assert!(is_positive_normal(x), "{b:#x}");
            let (got, want) = (ln_positive_normal(x), libm::logf(x));
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "logf({x:e}) = {want:e}, ln_positive_normal gave {got:e}"
            );
            n += 1;
        }
        n
    }

    #[test]
    fn ln_positive_normal_is_libm_logf() {
        // Every 61st bit pattern of the domain, its ends, 1.0 and its neighbours.
        let n = ln_matches_libm((0x0080_0000..0x7f80_0000).step_by(61));
        assert!(n > 34_000_000);
        ln_matches_libm([0x0080_0000, 0x7f7f_ffff, 0x3f80_0000, 0x3f7f_ffff, 0x3f80_0001].into_iter());
        for b in [0u32, 1, 0x007f_ffff, 0x7f80_0000, 0x7fc0_0000, 0x8000_0000, 0xbf80_0000] {
            assert!(!is_positive_normal(f32::from_bits(b)), "{b:#x}");
        }
    }

    #[test]
    #[ignore = "2.1e9 logarithms: run with --release -- --ignored"]
    fn ln_positive_normal_is_libm_logf_everywhere() {
        assert_eq!(ln_matches_libm(0x0080_0000..0x7f80_0000), 0x7f00_0000);
    }

    #[test]
    fn ln_sum_is_the_definition_in_order() {
        // Spectra with tones, zeros, huge and tiny bins, and the out-of-domain path (infinite
        // and NaN powers): the chunked sum equals the bin-by-bin definition bit for bit.
        let mut next = xorshift(0x2545_f491);
        for case in 0..40 {
            let half = [32usize, 64, 65, 512, 129][case % 5];
            let mut spec: std::vec::Vec<Complex32> = (0..half)
                .map(|_| {
                    let e = (next() % 60) as i32 - 30;
                    let v = |u: u32| (u as f32 / u32::MAX as f32 - 0.5) * libm::powf(10.0, e as f32 / 2.0);
                    Complex32::new(v(next()), v(next()))
                })
                .collect();
            if case % 7 == 3 {
                spec[half / 2] = Complex32::new(0.0, 0.0);
            }
            if case % 11 == 5 {
                spec[1] = Complex32::new(f32::INFINITY, 0.0);
            }
            if case % 13 == 6 {
                spec[half - 1] = Complex32::new(f32::NAN, 1.0);
            }
            for floor in [1e-30, 1e-8 * f64::from(next() % 1000) + 1e-30, f64::INFINITY] {
                let want = ln_sum_by_definition(&spec, floor);
                for got in [ln_sum_f64(&spec, floor), ln_sum_soft_f64(&spec, floor)] {
                    assert!(
                        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                        "case {case}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn floored_shortcut_is_the_f64_sum() {
        // Floors from 1e-30 up; powers around the first shortcut's bound, across the range the
        // second one serves (floor · 2^-30 .. floor · 2^27, log-uniform), near-ties of `p + hi`
        // (a half last place away, ± a few of `p`'s last places), and special values.
        let mut next = xorshift(0x1357_9bdf);
        let unit = |x: u32| x as f64 / u32::MAX as f64;
        let (mut taken, mut total) = (0usize, 0usize);
        for case in 0..300 {
            let floor = match case {
                0 => 1e-30,
                1 => 1e30,
                _ => libm::pow(10.0, -30.0 + 45.0 * unit(next())) * (1.0 + unit(next())),
            };
            let f = Floored::new(floor);
            assert!(f64::from(f.above) >= floor * 67_108_864.0);
            assert!(f64::from(f.margin) >= 2.0 * (floor - f64::from(f.hi)).abs());
            let mut ps = std::vec::Vec::new();
            for d in 0..16u32 {
                ps.push(f32::from_bits(f.above.to_bits().wrapping_add(d).wrapping_sub(8)));
            }
            for _ in 0..100 {
                ps.push((floor * libm::pow(2.0, -30.0 + 30.0 * unit(next()))) as f32);
            }
            for _ in 0..400 {
                // The powers of a spectrum: above 4 floors (1e-8 of the mean each).
                let p = (floor * libm::pow(2.0, 2.0 + 25.0 * unit(next()))) as f32;
                let want = (f64::from(p) + floor) as f32;
                taken += usize::from(f.shortcut(p).is_some_and(|x| x.to_bits() == want.to_bits()));
                total += 1;
                ps.push(p);
            }
            for _ in 0..100 {
                // p + hi near a midpoint of s's last place.
                let p = (floor * libm::pow(2.0, -2.0 + 20.0 * unit(next()))) as f32;
                let s = p + f.hi;
                let u = f32::from_bits((s.to_bits() & 0x7f80_0000).saturating_sub(23 << 23));
                let mid = (f64::from(s) + f64::from(u) * 0.5 - f64::from(f.hi)) as f32;
                for d in 0..7u32 {
                    ps.push(f32::from_bits(mid.to_bits().wrapping_add(d).wrapping_sub(3)));
                }
            }
            for _ in 0..50 {
                ps.push(f32::from_bits(next() & 0x7fff_ffff));
            }
            ps.extend([0.0, f32::MIN_POSITIVE, f32::MAX, f32::INFINITY, f32::NAN, 1.0, f.hi]);
            for p in ps {
                let want = (f64::from(p) + floor) as f32;
                let got = f.apply(p);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{p:e} + {floor:e}"
                );
                if let Some(x) = f.shortcut(p) {
                    assert_eq!(x.to_bits(), want.to_bits(), "{p:e} + {floor:e}");
                }
            }
        }
        // The shortcuts serve nearly every power of a spectrum (what makes the firmware's
        // flatness cheap); below 4 floors they mostly do not.
        assert!(taken * 100 > total * 95, "shortcut taken {taken} of {total}");
    }

    #[test]
    #[ignore = "5e7 random sums: run with --release -- --ignored"]
    fn floored_shortcut_is_the_f64_sum_on_many() {
        let mut next = xorshift(0x7f4a_7c15);
        let unit = |x: u32| x as f64 / u32::MAX as f64;
        for _ in 0..50_000 {
            let floor = libm::pow(10.0, -30.0 + 45.0 * unit(next())) * (1.0 + unit(next()));
            let f = Floored::new(floor);
            for _ in 0..1000 {
                let p = (floor * libm::pow(2.0, -3.0 + 31.0 * unit(next()))) as f32;
                let p = f32::from_bits(p.to_bits() ^ (next() & 7)); // vary the last bits too
                let want = (f64::from(p) + floor) as f32;
                assert_eq!(f.apply(p).to_bits(), want.to_bits(), "{p:e} + {floor:e}");
            }
        }
    }

    #[test]
    fn fixed_sum_is_the_f64_sum_when_it_says_so() {
        let mut next = xorshift(0x0bad_cafe);
        let (mut exact, mut refused) = (0, 0);
        for case in 0..400 {
            let n = [1usize, 65, 513, 2049, 4097][case % 5];
            let mut fixed = FixedSum::new();
            let mut want = 0.0f64;
            let mut values = std::vec::Vec::with_capacity(n);
            for i in 0..n {
                // Logs of powers: mostly of size 1e-3..88, some tiny ones (powers near 1), zeros.
                let x = match (case / 5 % 4, next() % 512) {
                    (1, 0) => f32::from_bits(next() % 0x3900_0000) * if next() & 1 == 0 { 1.0 } else { -1.0 },
                    (2, _) if i == n / 2 => 0.0,
                    (3, _) => 80.0 + (next() % 1000) as f32 / 100.0,
                    _ => {
                        (next() as f32 / u32::MAX as f32 - 0.6)
                            * libm::powf(10.0, (next() % 5) as f32 - 2.0)
                            * 1.5
                    }
                };
                values.push(x);
                want += f64::from(x);
            }
            // In uneven chunks, some longer than a bucket pass.
            let mut rest = &values[..];
            while !rest.is_empty() {
                let take = rest.len().min(1 + next() as usize % 150);
                fixed.push(&rest[..take]);
                rest = &rest[take..];
            }
            match fixed.exact() {
                Some(got) => {
                    assert_eq!(got.to_bits(), want.to_bits(), "case {case}");
                    exact += 1;
                }
                None => refused += 1,
            }
        }
        // Both ways are exercised (172 and 228 with this stream): sums holding a log below 2^-13
        // or 4097 logs of about 85 are refused, the others are exact.
        assert!(exact > 100 && refused > 100, "{exact} exact, {refused} refused");
        let mut f = FixedSum::new();
        f.push(&[1.0e-5]);
        assert!(f.exact().is_none(), "a log below 2^-13 is not a whole number of units");
        for x in [f32::NAN, f32::INFINITY, 4096.0] {
            let mut f = FixedSum::new();
            f.push(&[1.0, x, 2.0]);
            assert!(f.exact().is_none(), "{x}");
        }
    }

    #[test]
    fn ln_sum_falls_back_exactly_on_a_log_near_zero() {
        // The soft-f64 route's integer sum on a spectrum of the firmware's kind (powers of a few
        // g^2 bins): exact, so the fast route is what runs. Then a bin whose power is 1 + 2^-20
        // (after the floor) has a log of about 1e-6: the integer sum refuses it and the f64
        // additions give the definition.
        let fixed_sum = |spec: &[Complex32], floor: f64| {
            let f = Floored::new(floor);
            let mut fixed = FixedSum::new();
            for_each_log(spec, |p| f.candidate(p), |p| f.apply(p), |logs| fixed.push(logs));
            fixed.exact()
        };
        let mut spec: std::vec::Vec<Complex32> =
            (0..512).map(|k| Complex32::new(0.3 + (k % 7) as f32, 0.01 * k as f32)).collect();
        let floor = 1e-8 * 9.0 + 1e-30;
        let want = ln_sum_by_definition(&spec, floor);
        assert_eq!(fixed_sum(&spec, floor).map(f64::to_bits), Some(want.to_bits()));
        assert_eq!(ln_sum_soft_f64(&spec, floor).to_bits(), want.to_bits());
        let re = libm::sqrtf((1.0 + libm::powf(2.0, -20.0)) / 2.0);
        spec[100] = Complex32::new(re, 0.0);
        let l = libm::logf(2.0 * re * re);
        assert!(l != 0.0 && l.abs() < libm::powf(2.0, -13.0), "{l}");
        let floor = 1e-30;
        assert_eq!(fixed_sum(&spec, floor), None);
        assert_eq!(ln_sum_soft_f64(&spec, floor).to_bits(), ln_sum_by_definition(&spec, floor).to_bits());
    }

    #[test]
    fn sums_are_the_bin_by_bin_definition() {
        // The definition as one pass over the bins (the order every sum must keep), against
        // `analyse`, on noisy spectra with bands touching DC+1 and Nyquist, and orders anywhere.
        let mut next = xorshift(0x9e37_79b9);
        for (n, fs) in [(256u32, 256u32), (1024, 2048), (64, 1000)] {
            let mut cfg = ExtractorConfig::default_at(2048).unwrap();
            cfg.fft_len = n;
            cfg.sample_rate_hz = fs;
            cfg.features.families = Families::KNOWN;
            let edges = [fs as f32 / n as f32, 7.3, 40.0, 41.0, 300.0, fs as f32 / 2.0];
            cfg.features.band_count = 5;
            cfg.features.band_edges_hz[..6].copy_from_slice(&edges);
            cfg.features.order_count = 3;
            cfg.features.orders[..3].copy_from_slice(&[0.5, 1.0, 40.0]);
            cfg.features.order_half_width = 0.1;
            let plan = SpectralPlan::new(&cfg);
            for _ in 0..20 {
                let mut buf: std::vec::Vec<f32> =
                    (0..n).map(|_| next() as f32 / u32::MAX as f32 - 0.5).collect();
                let spec = rfft(&mut buf).unwrap();
                let rpm = (next() % 6000) as f32;
                let got = plan.analyse(spec, rpm);
                let half = spec.len();
                let mut want = SpecSums::ZERO;
                for k in 1..=half {
                    let p = one_sided_power(spec, k);
                    want.total += p;
                    want.weighted += k as f32 * p;
                    for (b, &(lo, hi)) in plan.band_bins[..plan.bands].iter().enumerate() {
                        if (usize::from(lo)..=usize::from(hi)).contains(&k) {
                            want.bands[b] += p;
                        }
                    }
                }
                for (i, &o) in plan.orders[..plan.order_count].iter().enumerate() {
                    if let Some((lo, hi)) = plan.order_bins(o, rpm) {
                        for k in lo..=hi {
                            want.orders[i] += one_sided_power(spec, k);
                        }
                    }
                }
                let mean = f64::from(want.total) / half as f64;
                let floor = 1e-8 * mean + 1e-30;
                let ln = ln_sum_by_definition(spec, floor);
                want.flatness = (libm::exp(ln / half as f64) / (mean + floor)) as f32;
                assert_eq!(got, want, "N {n} at {fs} Hz");
                assert_eq!(got.flatness.to_bits(), want.flatness.to_bits());
            }
        }
    }

    #[test]
    fn hann_is_periodic_and_symmetric() {
        let mut w = [0.0f32; 256];
        hann_periodic(&mut w);
        assert_eq!(w[0], 0.0);
        assert_eq!(w[128], 1.0);
        for i in 1..128 {
            assert_eq!(w[i], w[256 - i]);
        }
        assert!(rfft(&mut [0.0f32; 100]).is_none());
    }
}
