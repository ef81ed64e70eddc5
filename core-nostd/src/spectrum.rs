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

    /// Bins `lo..=hi` of order `p` at `speed_rpm` (`None`: empty band).
    pub fn order_bins(&self, p: f32, speed_rpm: f32) -> Option<(usize, usize)> {
        order_range(
            p,
            speed_rpm,
            self.fft_len,
            f64::from(self.sample_rate_hz),
            self.order_half_width,
            self.order_band_bins,
        )
    }

    /// The sums of one transformed segment. `spec` is microfft's output for an `fft_len`-point
    /// transform (`fft_len / 2` bins, Nyquist packed into `spec[0].im`).
    pub fn analyse(&self, spec: &[Complex32], speed_rpm: f32) -> SpecSums {
        let half = spec.len();
        let power = |k: usize| one_sided_power(spec, k);
        let mut s = SpecSums::ZERO;
        let mut band = 0usize;
        for k in 1..=half {
            let p = power(k);
            s.total += p;
            s.weighted += k as f32 * p;
            while band < self.bands && k > usize::from(self.band_bins[band].1) {
                band += 1;
            }
            if band < self.bands && k >= usize::from(self.band_bins[band].0) {
                s.bands[band] += p;
            }
        }
        for (e, &p) in s.orders[..self.order_count].iter_mut().zip(&self.orders) {
            if let Some(bins) = self.order_bins(p, speed_rpm) {
                *e = power_sum(spec, bins);
            }
        }
        if self.flatness {
            let mean = f64::from(s.total) / half as f64;
            let floor = 1e-8 * mean + 1e-30;
            let mut ln_sum = 0.0f64;
            for k in 1..=half {
                ln_sum += f64::from(libm::logf((f64::from(power(k)) + floor) as f32));
            }
            let geometric = libm::exp(ln_sum / half as f64);
            s.flatness = (geometric / (mean + floor)) as f32;
        }
        s
    }
}

/// One-sided power of bin `k` (1..=N/2) of microfft's output (`spec.len()` = N/2 bins, Nyquist
/// packed into `spec[0].im`): `2|X[k]|²` below Nyquist, `|X[N/2]|²` at it.
#[inline]
pub(crate) fn one_sided_power(spec: &[Complex32], k: usize) -> f32 {
    if k == spec.len() {
        spec[0].im * spec[0].im
    } else {
        let c = spec[k];
        2.0 * (c.re * c.re + c.im * c.im)
    }
}

/// `Σ one_sided_power(k)` over `lo..=hi`, in increasing `k`.
pub(crate) fn power_sum(spec: &[Complex32], (lo, hi): (usize, usize)) -> f32 {
    let mut e = 0.0f32;
    for k in lo..=hi {
        e += one_sided_power(spec, k);
    }
    e
}

/// Bins `lo..=hi` of order `p` of a shaft at `speed_rpm` in an `fft_len`-point spectrum of a
/// signal at `rate_hz`: centre `round(p·f·N/fs)`, half-width
/// `max(min_bins, round(half_width·f·N/fs))`, clipped to `1..=N/2`; `None` when the centre is 0 or
/// above `N/2`.
pub(crate) fn order_range(
    p: f32,
    speed_rpm: f32,
    fft_len: u32,
    rate_hz: f64,
    half_width: f32,
    min_bins: u32,
) -> Option<(usize, usize)> {
    let bins_per_order = f64::from(speed_rpm) / 60.0 * f64::from(fft_len) / rate_hz;
    // speed is finite and in [0, max_shaft_speed_rpm] after sanitising; cap to keep casts exact.
    let cap = f64::from(u32::MAX / 4);
    let kc = libm::round(f64::from(p) * bins_per_order).clamp(0.0, cap) as u32;
    let half = fft_len / 2;
    if kc == 0 || kc > half {
        return None;
    }
    let b = (libm::round(f64::from(half_width) * bins_per_order).clamp(0.0, cap) as u32).max(min_bins);
    let lo = kc.saturating_sub(b).max(1) as usize;
    let hi = kc.saturating_add(b).min(half) as usize;
    Some((lo, hi))
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
mod tests {
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
