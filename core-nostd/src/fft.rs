//! The real FFT of the spectral families: microfft's arithmetic, with microfft's bits, laid out
//! for the vector units of host CPUs.
//!
//! microfft (radix-2, decimation in time, twiddles from one sine table) defines the spectra on
//! every target; firmware runs it as is ([`Microfft`], the extractor's default engine).
//! Its butterflies walk complex values stored as pairs, one at a time, which a host's SIMD unit
//! cannot batch: on x86-64 the transform was 44 % of avm-core's extraction (callgrind, a 60 s
//! 2-channel stream at 2048 Hz with the default feature set).
//! [`HostFft`] performs the same operations on the same values — the same bit-reversal
//! permutation; per butterfly num-complex's product `(a·c - b·d, a·d + b·c)` with the same
//! twiddle, then the sum and the difference; microfft's special cases for the twiddles `1` and
//! `-i`; the same real-FFT post-pass with its halvings — but keeps real and imaginary parts in
//! separate arrays, fuses the first three stages in registers, and runs each later stage as a
//! plain loop the compiler vectorises. Each IEEE operation is rounded on its own, so the same
//! operations on the same operands give the same bits, whatever their order across butterflies
//! (tested against microfft for every length, zeros' signs included). On x86-64 it takes 42 %
//! fewer instructions than microfft for a 1024-point transform.
//!
//! The twiddles are microfft's own, read off microfft's transform of a unit impulse when the
//! engine is prepared (exactly: see `HostFft::prepare_for`), not recomputed: a recomputed sine
//! could differ from microfft's table in a last bit. Written here rather than taken from a SIMD
//! FFT crate because those order their operations differently (radix-4, split radix, fused
//! multiply-add), so their spectra would differ from the firmware's in the last bits.

use microfft::Complex32;

/// How a [`FeatureExtractor`](crate::FeatureExtractor) computes its real FFTs: [`Microfft`]
/// (the default: microfft itself, nothing stored) or [`HostFft`] (microfft's operations laid
/// out for SIMD, `14·FFT_MAX` bytes of twiddles and work arrays). Both give the same bits on
/// every input; firmware keeps the default, hosts choose `HostFft` for speed. Sealed: the
/// spectra are defined by microfft's operations, so no other engine can exist.
pub trait FftEngine<const FFT_MAX: usize>: sealed::Engine<FFT_MAX> {}

pub(crate) mod sealed {
    use microfft::Complex32;

    /// What the extractor needs of an FFT engine (not nameable outside avm-core).
    pub trait Engine<const FFT_MAX: usize> {
        /// The engine of an unconfigured extractor: all zero bytes.
        const UNCONFIGURED: Self;
        /// Prepares transforms of up to `len` points; `scratch` (at least `len` entries) is
        /// overwritten.
        fn prepare(&mut self, len: usize, scratch: &mut [f32]);
        /// [`crate::spectrum::rfft`]'s result, bit for bit.
        fn rfft<'a>(&mut self, buf: &'a mut [f32]) -> Option<&'a mut [Complex32]>;
    }
}

/// microfft itself ([`FftEngine`]): the firmware's FFT, and the default.
#[derive(Clone, Copy, Debug)]
pub struct Microfft<const FFT_MAX: usize>;

impl<const FFT_MAX: usize> FftEngine<FFT_MAX> for Microfft<FFT_MAX> {}

impl<const FFT_MAX: usize> sealed::Engine<FFT_MAX> for Microfft<FFT_MAX> {
    const UNCONFIGURED: Self = Microfft;

    fn prepare(&mut self, _len: usize, _scratch: &mut [f32]) {}

    #[inline]
    fn rfft<'a>(&mut self, buf: &'a mut [f32]) -> Option<&'a mut [Complex32]> {
        crate::spectrum::rfft(buf)
    }
}

impl<const FFT_MAX: usize> FftEngine<FFT_MAX> for HostFft<FFT_MAX> {}

impl<const FFT_MAX: usize> sealed::Engine<FFT_MAX> for HostFft<FFT_MAX> {
    const UNCONFIGURED: Self = HostFft {
        len: 0,
        tw_re: [0.0; FFT_MAX],
        tw_im: [0.0; FFT_MAX],
        work: [0.0; FFT_MAX],
        rev: [0; FFT_MAX],
    };

    fn prepare(&mut self, len: usize, scratch: &mut [f32]) {
        self.prepare_for(len, scratch);
    }

    #[inline]
    fn rfft<'a>(&mut self, buf: &'a mut [f32]) -> Option<&'a mut [Complex32]> {
        self.transform(buf)
    }
}

/// microfft's real FFT on separate real and imaginary arrays, for lengths up to `FFT_MAX`
/// ([`FftEngine`]; the module documentation says how it keeps microfft's bits). All zero bytes
/// when unprepared, as an unconfigured extractor must be.
#[derive(Clone, Debug)]
pub struct HostFft<const FFT_MAX: usize> {
    /// Real length the twiddles were read for (0: none; then every transform is microfft's).
    len: usize,
    /// Twiddles `(re, im)`: `[0, len/4)` the post-pass's, `e^{-2πij/len}` for `j` in
    /// `1..len/4` (microfft's first quadrant); from `len/4` on, stage by stage for the complex
    /// half sizes `m = 4, 8, ..., len/4`, at `len/4 + m - 4`, the `m` twiddles of that stage
    /// (entries `0` and `m/2` unused: microfft treats them apart).
    tw_re: [f32; FFT_MAX],
    tw_im: [f32; FFT_MAX],
    /// The transform's real parts in `[0, FFT_MAX/2)`, imaginary parts in `[FFT_MAX/2, FFT_MAX)`.
    work: [f32; FFT_MAX],
    /// Bit reversal of `0..len/2` over `log2(len/2)` bits.
    rev: [u16; FFT_MAX],
}

impl<const FFT_MAX: usize> HostFft<FFT_MAX> {
    /// Reads microfft's twiddles for real transforms of up to `len` points (a power of two that
    /// microfft supports, at most `FFT_MAX`), using `scratch` (`len` entries, overwritten).
    /// Another length leaves the engine unprepared: every transform then runs microfft.
    ///
    /// Why the impulse gives microfft's twiddles exactly: for `x = δ[1]` the packed complex
    /// input is `(0, 1)` at index 0, whose complex transform is `(±0, 1)` everywhere (each
    /// butterfly adds a product of zeros, `±0`, to `±0` or `1`). The post-pass then computes
    /// `sum = (±0, 1)`, `diff = (±0, 0)` and, for `k` in `1..len/4`,
    /// `X[k] = (±0 + w.re·1 + w.im·±0, 0 + w.im·1 - w.re·±0) = (w.re, w.im)`: adding a zero to
    /// a non-zero value is exact, and no twiddle of that range has a zero part. The complex
    /// stages use the same table entries: stage `n`'s twiddle `k` is the post-pass's
    /// `k·len/n` (first quadrant, `k < n/4`), and for `k` in `n/4+1..n/2` microfft reads the
    /// table the other way round, which is `(w.im, -w.re)` of the first-quadrant twiddle
    /// `k - n/4` (a negation: exact).
    fn prepare_for(&mut self, len: usize, scratch: &mut [f32]) {
        self.len = 0;
        if !(64..=FFT_MAX).contains(&len) || !len.is_power_of_two() || scratch.len() < len {
            return;
        }
        let scratch = &mut scratch[..len];
        scratch.fill(0.0);
        scratch[1] = 1.0;
        let Some(spec) = crate::spectrum::rfft(scratch) else { return };
        let quarter = len / 4;
        for ((re, im), w) in
            self.tw_re[1..quarter].iter_mut().zip(&mut self.tw_im[1..quarter]).zip(&spec[1..quarter])
        {
            (*re, *im) = (w.re, w.im);
        }
        // Complex stages of half size m = 4 ..= len/4 (the transform has len/2 points).
        let mut m = 4;
        while m <= len / 4 {
            let (off, u, stride) = (quarter + m - 4, m / 2, len / (2 * m));
            for k in 1..u {
                self.tw_re[off + k] = self.tw_re[k * stride];
                self.tw_im[off + k] = self.tw_im[k * stride];
            }
            for k in u + 1..m {
                self.tw_re[off + k] = self.tw_im[(k - u) * stride];
                self.tw_im[off + k] = -self.tw_re[(k - u) * stride];
            }
            m *= 2;
        }
        let points = len / 2;
        let bits = points.trailing_zeros();
        for (i, r) in self.rev[..points].iter_mut().enumerate() {
            // points <= FFT_MAX / 2 <= 2^16: the reversed index fits.
            *r = (i.reverse_bits() >> (usize::BITS - bits)) as u16;
        }
        self.len = len;
    }

    /// In-place real FFT of `buf`, with [`crate::spectrum::rfft`]'s result, bit for bit.
    fn transform<'a>(&mut self, buf: &'a mut [f32]) -> Option<&'a mut [Complex32]> {
        let n = buf.len();
        if n < 64 || n > self.len || !n.is_power_of_two() {
            return crate::spectrum::rfft(buf);
        }
        let points = n / 2;
        let (re, im) = self.work.split_at_mut(FFT_MAX / 2);
        let (re, im) = (&mut re[..points], &mut im[..points]);
        // Bit reversal (microfft swaps in place; the same permutation) fused with the stages of
        // 2, 4 and 8 points, in registers: each block of 8 gathers its inputs; per half,
        // x0 ± x1 and x2 ± x3, then the butterflies with the twiddles 1 and -i; then the stage
        // of 8 with the twiddles 1, w, -i, w³ (w = e^{-iπ/4}: the table's, as microfft reads it).
        let shift = (self.len / 2).trailing_zeros() - points.trailing_zeros();
        let pairs: &[[f32; 2]] = bytemuck::cast_slice(buf);
        let quarter = self.len / 4;
        let (w1, w3) = (
            (self.tw_re[quarter + 1], self.tw_im[quarter + 1]),
            (self.tw_re[quarter + 3], self.tw_im[quarter + 3]),
        );
        let rev = self.rev[..points].chunks_exact(8);
        for ((r, i), j) in re.chunks_exact_mut(8).zip(im.chunks_exact_mut(8)).zip(rev) {
            let at = |k: usize| pairs[usize::from(j[k] >> shift)];
            let (lr, li) = four(at(0), at(1), at(2), at(3));
            let (hr, hi) = four(at(4), at(5), at(6), at(7));
            let (y1r, y1i) = times(w1, (hr[1], hi[1]));
            let (y2r, y2i) = times_minus_i(hr[2], hi[2]);
            let (y3r, y3i) = times(w3, (hr[3], hi[3]));
            r.copy_from_slice(&halves(lr, [hr[0], y1r, y2r, y3r]));
            i.copy_from_slice(&halves(li, [hi[0], y1i, y2i, y3i]));
        }
        // Stages of 16 ..= points (every transform has at least 32 points): each block's
        // butterflies in one vector loop over all k, the two that microfft treats apart (k = 0:
        // twiddle 1; k = m/2: -i) recomputed its way from their saved inputs afterwards.
        let mut m = 8;
        while m < points {
            let off = quarter + m - 4;
            stage(re, im, &self.tw_re[off..off + m], &self.tw_im[off..off + m]);
            m *= 2;
        }
        // microfft's post-pass, in place on the arrays (bin k and bin points - k come from the
        // same pair of inputs), then the bins interleaved into `buf`: bin 0 holds DC and
        // Nyquist, bin points/2 is conjugated.
        let half = points / 2;
        let stride = self.len / n;
        let (dc_re, dc_im) = (re[0], im[0]);
        re[0] = dc_re + dc_im;
        im[0] = dc_re - dc_im;
        im[half] = -im[half];
        let (lo_r, hi_r) = re.split_at_mut(half);
        let (lo_i, hi_i) = im.split_at_mut(half);
        let (lo_r, lo_i, hi_r, hi_i) = (&mut lo_r[1..], &mut lo_i[1..], &mut hi_r[1..], &mut hi_i[1..]);
        if stride == 1 {
            let (w_re, w_im) = (&self.tw_re[1..half], &self.tw_im[1..half]);
            post_pass(lo_r, lo_i, hi_r, hi_i, |t| (w_re[t], w_im[t]));
        } else {
            let (w_re, w_im) = (&self.tw_re[..], &self.tw_im[..]);
            post_pass(lo_r, lo_i, hi_r, hi_i, |t| (w_re[(t + 1) * stride], w_im[(t + 1) * stride]));
        }
        for ((bin, &r), &i) in buf.chunks_exact_mut(2).zip(&re[..]).zip(&im[..]) {
            bin[0] = r;
            bin[1] = i;
        }
        Some(bytemuck::cast_slice_mut(buf))
    }
}

/// microfft's real-FFT post-pass for bins `k` in `1..points/2`, in place: `lo_*[k - 1]` holds
/// bin `k` of the complex transform (`x`), `hi_*[points/2 - 1 - k]` bin `points - k` (`y`),
/// `w(k - 1)` the twiddle; `sum = (x + y) / 2`, `diff = (x - y) / 2`, and the two output bins
/// by microfft's expressions replace them. Each iteration reads and writes its own two
/// positions only, so the loop vectorises (the `hi` side runs backwards).
#[inline(always)]
fn post_pass(
    lo_r: &mut [f32],
    lo_i: &mut [f32],
    hi_r: &mut [f32],
    hi_i: &mut [f32],
    w: impl Fn(usize) -> (f32, f32),
) {
    let n = lo_r.len();
    let (lo_i, hi_r, hi_i) = (&mut lo_i[..n], &mut hi_r[..n], &mut hi_i[..n]);
    for t in 0..n {
        let (w_re, w_im) = w(t);
        let (xr, xi, yr, yi) = (lo_r[t], lo_i[t], hi_r[n - 1 - t], hi_i[n - 1 - t]);
        let (sum_re, sum_im) = ((xr + yr) / 2.0, (xi + yi) / 2.0);
        let (diff_re, diff_im) = ((xr - yr) / 2.0, (xi - yi) / 2.0);
        lo_r[t] = sum_re + w_re * sum_im + w_im * diff_re;
        lo_i[t] = diff_im + w_im * sum_im - w_re * diff_re;
        hi_r[n - 1 - t] = sum_re - w_re * sum_im - w_im * diff_re;
        hi_i[n - 1 - t] = -diff_im + w_im * sum_im - w_re * diff_re;
    }
}

/// The stages of 2 and 4 points of one block of 4 (bit-reversed inputs `x0..x3` as `[re, im]`):
/// `a = x0 + x1, b = x0 - x1, c = x2 + x3, d = x2 - x3`, then `a ± c` and `b ± y` with
/// `y = d · (0 - 1i)` by num-complex's product. Returns the real and imaginary parts.
#[inline(always)]
fn four(x0: [f32; 2], x1: [f32; 2], x2: [f32; 2], x3: [f32; 2]) -> ([f32; 4], [f32; 4]) {
    let (ar, ai, br, bi) = (x0[0] + x1[0], x0[1] + x1[1], x0[0] - x1[0], x0[1] - x1[1]);
    let (cr, ci, dr, di) = (x2[0] + x3[0], x2[1] + x3[1], x2[0] - x3[0], x2[1] - x3[1]);
    let (yr, yi) = times_minus_i(dr, di);
    ([ar + cr, br + yr, ar - cr, br - yr], [ai + ci, bi + yi, ai - ci, bi - yi])
}

/// `w · x` as num-complex computes it (`Mul` for `Complex<f32>`, `w` on the left):
/// `(w.re·x.re - w.im·x.im, w.re·x.im + w.im·x.re)`.
#[inline(always)]
fn times(w: (f32, f32), x: (f32, f32)) -> (f32, f32) {
    (w.0 * x.0 - w.1 * x.1, w.0 * x.1 + w.1 * x.0)
}

/// `(re + i·im) · (0 - 1i)` as num-complex computes it: `(re·0 - im·(-1), re·(-1) + im·0)`,
/// written with negations (`x·(-1)` is `-x` and `a - (-b)` is `a + b`, bit for bit). Not
/// `(im, -re)`: the products by zero decide the sign of a zero result.
#[inline(always)]
fn times_minus_i(re: f32, im: f32) -> (f32, f32) {
    (re * 0.0 + im, -re + im * 0.0)
}

/// The outputs of 4 butterflies of one part (real or imaginary): `l[k] + y[k]`, then
/// `l[k] - y[k]`.
#[inline(always)]
fn halves(l: [f32; 4], y: [f32; 4]) -> [f32; 8] {
    [l[0] + y[0], l[1] + y[1], l[2] + y[2], l[3] + y[3], l[0] - y[0], l[1] - y[1], l[2] - y[2], l[3] - y[3]]
}

/// A butterfly on positions `a`, `b` with `y` (the twiddled `x[b]`): `x[a] + y`, `x[a] - y`.
#[inline(always)]
fn butterfly(r: &mut [f32], i: &mut [f32], a: usize, b: usize, (yr, yi): (f32, f32)) {
    let (ar, ai) = (r[a], i[a]);
    r[a] = ar + yr;
    i[a] = ai + yi;
    r[b] = ar - yr;
    i[b] = ai - yi;
}

/// microfft's butterfly with the twiddle `1`: `x[a] + x[b]`, `x[a] - x[b]`, no product.
#[inline(always)]
fn butterfly_one(r: &mut [f32], i: &mut [f32], a: usize, b: usize) {
    butterfly(r, i, a, b, (r[b], i[b]));
}

/// microfft's butterfly with the twiddle `-i`: `y = x[b] · (0 - 1i)` by num-complex's product
/// (`(c·0 - d·(-1), c·(-1) + d·0)`, which is not `(d, -c)` for every sign of zero), then the
/// sum and the difference.
#[inline(always)]
fn butterfly_minus_i(r: &mut [f32], i: &mut [f32], a: usize, b: usize) {
    butterfly(r, i, a, b, times_minus_i(r[b], i[b]));
}

/// One complex stage of `2·m` points (`m = wr.len()`, a multiple of 4), block by block:
/// `y = w[k] · x_hi[k]` by num-complex's product ([`times`]), then `x_lo[k] + y`, `x_lo[k] - y`, for every `k` in one loop the compiler
/// vectorises (its length a multiple of the vector width: no scalar remainder); then `k = 0`
/// and `k = m/2` again from their saved inputs, microfft's way ([`butterfly_one`],
/// [`butterfly_minus_i`]), over the loop's results there (whatever `w[0]`, `w[m/2]` hold).
#[inline(always)]
fn stage(re: &mut [f32], im: &mut [f32], wr: &[f32], wi: &[f32]) {
    let m = wr.len();
    let u = m / 2;
    let wi = &wi[..m];
    for (r, i) in re.chunks_exact_mut(2 * m).zip(im.chunks_exact_mut(2 * m)) {
        let saved = [r[0], i[0], r[m], i[m], r[u], i[u], r[u + m], i[u + m]];
        let (lo_r, hi_r) = r.split_at_mut(m);
        let (lo_i, hi_i) = i.split_at_mut(m);
        butterflies(lo_r, lo_i, hi_r, hi_i, wr, wi);
        [r[0], i[0], r[m], i[m], r[u], i[u], r[u + m], i[u + m]] = saved;
        butterfly_one(r, i, 0, m);
        butterfly_minus_i(r, i, u, u + m);
    }
}

/// Butterflies `x_lo[k], x_hi[k]` with twiddles `w[k]` (equal lengths), in a loop without
/// bounds checks that the compiler vectorises.
#[inline(always)]
fn butterflies(
    lo_r: &mut [f32],
    lo_i: &mut [f32],
    hi_r: &mut [f32],
    hi_i: &mut [f32],
    wr: &[f32],
    wi: &[f32],
) {
    let n = lo_r.len();
    let (lo_i, hi_r, hi_i, wr, wi) = (&mut lo_i[..n], &mut hi_r[..n], &mut hi_i[..n], &wr[..n], &wi[..n]);
    for k in 0..n {
        let (yr, yi) = times((wr[k], wi[k]), (hi_r[k], hi_i[k]));
        let (ar, ai) = (lo_r[k], lo_i[k]);
        lo_r[k] = ar + yr;
        lo_i[k] = ai + yi;
        hi_r[k] = ar - yr;
        hi_i[k] = ai - yi;
    }
}

#[cfg(test)]
mod tests {
    use super::sealed::Engine;
    use super::*;
    use crate::spectrum::tests::xorshift;
    use std::boxed::Box;
    use std::vec::Vec;

    fn bits(spec: &[Complex32]) -> Vec<(u32, u32)> {
        spec.iter().map(|c| (c.re.to_bits(), c.im.to_bits())).collect()
    }

    fn unit_free(r: u32) -> f32 {
        r as f32 / u32::MAX as f32 - 0.5
    }

    /// Inputs of several kinds: noise, noise with exact zeros of both signs (the special
    /// butterflies' zero signs), a tone with a DC offset, an impulse, a wide dynamic range.
    fn inputs(n: usize, next: &mut impl FnMut() -> u32) -> Vec<Vec<f32>> {
        let mut unit = || next() as f32 / u32::MAX as f32 - 0.5;
        let noise: Vec<f32> = (0..n).map(|_| unit()).collect();
        let zeros: Vec<f32> = noise
            .iter()
            .enumerate()
            .map(|(i, &x)| match i % 5 {
                0 => 0.0,
                1 => -0.0,
                _ => x,
            })
            .collect();
        let tone: Vec<f32> = (0..n).map(|i| 3.0 + libm::sinf(0.37 * i as f32) * 1e-3).collect();
        let mut impulse = std::vec![0.0f32; n];
        impulse[n / 3] = -2.5;
        let wide: Vec<f32> =
            noise.iter().enumerate().map(|(i, &x)| x * libm::powf(10.0, (i % 13) as f32 - 6.0)).collect();
        // Signed zeros with a few values between them: products and sums of zeros whose signs
        // depend on the exact operations.
        let sparse: Vec<f32> = (0..n)
            .map(|i| match (i % 17, next() % 4) {
                (0, _) => unit_free(next()),
                (_, 0 | 1) => 0.0,
                _ => -0.0,
            })
            .collect();
        std::vec![noise, zeros, tone, impulse, wide, sparse, std::vec![0.0; n], std::vec![-0.0; n]]
    }

    #[test]
    fn fast_fft_is_microfft_bit_for_bit() {
        let mut engine: Box<HostFft<32768>> = Box::new(HostFft::UNCONFIGURED);
        let mut scratch = std::vec![0.0f32; 32768];
        let mut next = xorshift(0x1234_5678);
        // Prepared for each length, then for the largest with every shorter length strided.
        for len in (6..=15).map(|b| 1usize << b) {
            engine.prepare(len, &mut scratch);
            assert_eq!(engine.len, len);
            for x in inputs(len, &mut next) {
                let (mut a, mut b) = (x.clone(), x);
                let want = bits(crate::spectrum::rfft(&mut a).unwrap());
                assert_eq!(bits(engine.rfft(&mut b).unwrap()), want, "length {len}");
            }
        }
        for len in (6..=15).map(|b| 1usize << b) {
            for x in inputs(len, &mut next) {
                let (mut a, mut b) = (x.clone(), x);
                let want = bits(crate::spectrum::rfft(&mut a).unwrap());
                assert_eq!(bits(engine.rfft(&mut b).unwrap()), want, "length {len} of 32768");
            }
        }
    }

    #[test]
    fn unprepared_or_unsupported_lengths_run_microfft() {
        let mut engine: Box<HostFft<1024>> = Box::new(HostFft::UNCONFIGURED);
        let mut scratch = std::vec![0.0f32; 4096];
        let mut next = xorshift(7);
        let x: Vec<f32> = (0..1024).map(|_| next() as f32 / u32::MAX as f32).collect();
        let want = bits(crate::spectrum::rfft(&mut x.clone()).unwrap());
        assert_eq!(bits(engine.rfft(&mut x.clone()).unwrap()), want);
        engine.prepare(2048, &mut scratch); // above FFT_MAX: stays unprepared
        assert_eq!(engine.len, 0);
        engine.prepare(1000, &mut scratch); // not a power of two
        assert_eq!(engine.len, 0);
        engine.prepare(512, &mut scratch);
        assert_eq!(bits(engine.rfft(&mut x.clone()).unwrap()), want, "longer than prepared");
        assert!(engine.rfft(&mut [0.0f32; 100]).is_none());
    }
}
