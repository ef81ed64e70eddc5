//! Order analysis of one Welch segment: Hann window, real FFT (microfft), one-sided power,
//! energy in the 1P and 2P bands.
//!
//! Conventions (the Python reference in `core-nostd/reference/` uses the same):
//! - periodic Hann window `w[i] = 0.5 - 0.5·cos(2πi/N)` (scipy's `get_window("hann", N)`);
//! - one-sided power `P[k] = 2·|X[k]|²` for `0 < k < N/2`, `P[N/2] = |X[N/2]|²`; DC is excluded
//!   from every sum (a window's mean is the `mean_g` feature, not vibration);
//! - band centre `k_p = round(p · f_shaft · N / fs)` with `f_shaft = rpm / 60` and the mean shaft
//!   speed over the segment's own samples; the band is `k_p - b ..= k_p + b` clipped to
//!   `1 ..= N/2`; a band whose centre is 0 (shaft below one bin) or above N/2 (beyond Nyquist)
//!   holds no energy.

use microfft::Complex32;

/// Band and total energy of one segment (arbitrary but consistent units: |FFT|², one-sided).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SegmentEnergy {
    pub order1: f32,
    pub order2: f32,
    pub total: f32,
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

/// In-place real FFT of `buf` (length a power of two in 256..=4096). Returns the `len/2`
/// complex bins with microfft's layout (`X[0].re` = DC, `X[0].im` = Nyquist), or `None` for an
/// unsupported length (prevented by config validation).
pub(crate) fn rfft(buf: &mut [f32]) -> Option<&mut [Complex32]> {
    macro_rules! dispatch {
        ($($n:literal => $f:ident),*) => {
            match buf.len() {
                $($n => {
                    let a: &mut [f32; $n] = buf.try_into().ok()?;
                    Some(microfft::real::$f(a).as_mut_slice())
                })*
                _ => None,
            }
        };
    }
    dispatch!(256 => rfft_256, 512 => rfft_512, 1024 => rfft_1024, 2048 => rfft_2048, 4096 => rfft_4096)
}

/// Band centre bin for harmonic `order` of a shaft at `speed_rpm`.
pub(crate) fn order_bin(speed_rpm: f32, order: u32, fft_len: u32, sample_rate_hz: u32) -> u32 {
    let k = f64::from(speed_rpm) / 60.0 * f64::from(order) * f64::from(fft_len) / f64::from(sample_rate_hz);
    // speed is finite and in [0, max_shaft_speed_rpm] after sanitising; cap to keep the cast exact.
    libm::round(k).clamp(0.0, f64::from(u32::MAX / 2)) as u32
}

/// Energies of a transformed segment. `spec` is microfft's output for an `fft_len`-point
/// transform (`fft_len / 2` bins, Nyquist packed into `spec[0].im`).
pub(crate) fn segment_energy(spec: &[Complex32], k1: u32, k2: u32, band_bins: u32) -> SegmentEnergy {
    let half = spec.len();
    let nyquist = spec[0].im;
    let p_nyq = nyquist * nyquist;
    let power = |k: usize| -> f32 {
        if k == half {
            p_nyq
        } else {
            let c = spec[k];
            2.0 * (c.re * c.re + c.im * c.im)
        }
    };
    // Four interleaved partial sums (bin k to lane k % 4), combined pairwise: a fixed order on
    // every target that a vectorising compiler can still map to SIMD lanes.
    // Bin 0 (DC, with Nyquist packed in) is left out: lane 0 starts at 0.
    let sq = |c: &Complex32| c.re * c.re + c.im * c.im;
    let mut lanes = [0.0, sq(&spec[1]), sq(&spec[2]), sq(&spec[3])];
    for quad in spec[4..].chunks_exact(4) {
        for (l, c) in lanes.iter_mut().zip(quad) {
            *l += sq(c);
        }
    }
    let total = 2.0 * ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + p_nyq;
    let band = |kc: u32| -> f32 {
        if kc == 0 || kc as usize > half {
            return 0.0;
        }
        let lo = kc.saturating_sub(band_bins).max(1) as usize;
        let hi = (kc as usize + band_bins as usize).min(half);
        let mut e = 0.0f32;
        for k in lo..=hi {
            e += power(k);
        }
        e
    };
    SegmentEnergy { order1: band(k1), order2: band(k2), total }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nyquist_is_unpacked() {
        // Alternating ±1: all energy at Nyquist.
        let mut buf: std::vec::Vec<f32> = (0..256).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let spec = rfft(&mut buf).unwrap();
        let e = segment_energy(spec, 128, 0, 0);
        assert_eq!(e.total, 256.0 * 256.0);
        assert_eq!(e.order1, e.total);
        // A DC signal has no energy outside DC.
        let mut buf = std::vec![3.0f32; 512];
        let spec = rfft(&mut buf).unwrap();
        assert_eq!(segment_energy(spec, 1, 2, 1).total, 0.0);
    }

    #[test]
    fn tone_lands_in_its_band() {
        let n = 1024;
        let fs = 2048;
        let rpm = 3000.0; // 50 Hz: bin 25
        assert_eq!(order_bin(rpm, 1, n, fs), 25);
        assert_eq!(order_bin(rpm, 2, n, fs), 50);
        let mut w = std::vec![0.0f32; n as usize];
        hann_periodic(&mut w);
        let mut buf: std::vec::Vec<f32> = (0..n)
            .map(|i| (2.0 * core::f32::consts::PI * 50.0 * i as f32 / fs as f32).sin() * w[i as usize])
            .collect();
        let spec = rfft(&mut buf).unwrap();
        let e = segment_energy(spec, 25, 50, 1);
        // A Hann-windowed bin-centred tone puts all its energy in bins k-1..=k+1.
        assert!((e.order1 / e.total - 1.0).abs() < 1e-5, "{e:?}");
        assert!(e.order2 / e.total < 1e-6);
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
