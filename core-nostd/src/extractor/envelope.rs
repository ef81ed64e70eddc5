//! The envelope path of one channel (the `envelope` family): band-pass, square, low-pass,
//! decimate, then Welch segments of the envelope whose energies at the envelope orders are
//! summed per hop block like the main spectrum's. See [`crate::features::EnvKind`] for the
//! definition.
//!
//! Every boundary of this path falls on a boundary of the main path: a lane half-segment
//! (`D·env_fft_len/2` sanitised samples) is a whole number of main half-segments and divides the
//! hop (checked by the config), so the lane is driven from [`super::channel::Channel::accumulate`]
//! and takes its shaft speed from the main half-segments' sums.

use crate::config::ExtractorConfig;
use crate::features::{Families, MAX_ENV_ORDERS};
use crate::fft::sealed::Engine;
use crate::iir::{Biquad, BiquadState};
use crate::moments::Moments;
use crate::spectrum::{OrderBins, power_sum};

/// Envelope-spectrum sums of one segment or several (|FFT|², one-sided, DC excluded).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct EnvSums {
    pub orders: [f32; MAX_ENV_ORDERS],
    pub total: f32,
}

impl EnvSums {
    pub const ZERO: EnvSums = EnvSums { orders: [0.0; MAX_ENV_ORDERS], total: 0.0 };

    pub fn add(&mut self, o: &EnvSums) {
        for (a, b) in self.orders.iter_mut().zip(&o.orders) {
            *a += *b;
        }
        self.total += o.total;
    }
}

/// What the envelope path needs from the configuration, resolved at configure time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EnvPlan {
    pub on: bool,
    pub bp: Biquad,
    pub lp: Biquad,
    pub decimation: u32,
    pub fft_len: u32,
    /// Sanitised samples per lane half-segment, `D·fft_len/2`.
    pub half_in: u32,
    /// The envelope's sample rate, Hz.
    pub rate_hz: f64,
    pub orders: [f32; MAX_ENV_ORDERS],
    pub order_count: usize,
    pub half_width: f32,
    pub min_bins: u32,
}

impl EnvPlan {
    /// No envelope path (`on` false: nothing else is read). All zero, so that an unconfigured
    /// extractor is all zero (`.bss`).
    pub const NONE: EnvPlan = EnvPlan {
        on: false,
        bp: Biquad::ZERO,
        lp: Biquad::ZERO,
        decimation: 0,
        fft_len: 0,
        half_in: 0,
        rate_hz: 0.0,
        orders: [0.0; MAX_ENV_ORDERS],
        order_count: 0,
        half_width: 0.0,
        min_bins: 0,
    };

    pub fn new(cfg: &ExtractorConfig) -> EnvPlan {
        let set = &cfg.features;
        if !set.families.contains(Families::ENVELOPE) {
            return EnvPlan::NONE;
        }
        let fs = f64::from(cfg.sample_rate_hz);
        let d = u32::from(set.env_decimation);
        let [lo, hi] = set.env_band_hz.map(f64::from);
        let rate_hz = fs / f64::from(d);
        let orders = set.env_order_list();
        let mut plan = EnvPlan {
            on: true,
            bp: Biquad::band_pass(libm::sqrt(lo * hi), libm::log2(hi / lo), fs),
            lp: Biquad::low_pass(0.4 * rate_hz, core::f64::consts::FRAC_1_SQRT_2, fs),
            decimation: d,
            fft_len: u32::from(set.env_fft_len),
            half_in: d * u32::from(set.env_fft_len) / 2,
            rate_hz,
            order_count: orders.len(),
            half_width: set.order_half_width,
            min_bins: cfg.order_band_bins,
            ..EnvPlan::NONE
        };
        plan.orders[..orders.len()].copy_from_slice(orders);
        plan
    }
}

/// The per-channel state of the envelope path.
#[derive(Clone, Debug)]
pub(crate) struct EnvLane<const ENV_MAX: usize> {
    bp: [BiquadState; 2],
    lp: [BiquadState; 2],
    /// Sanitised samples since the last one kept (`0..D`).
    dec_count: u32,
    pub ring: [f32; ENV_MAX],
    pub ring_pos: u32,
    pub ring_full: bool,
    /// Sanitised samples into the current lane half-segment.
    pub out_pos_half: u32,
    /// Shaft-speed sum (rpm·samples) over the current lane half-segment, and over the last two
    /// completed ones (older first).
    pub speed_acc: f64,
    pub speed_halves: [f64; 2],
    /// Envelope moments of the hop block being filled.
    pub block: Moments,
}

impl<const ENV_MAX: usize> EnvLane<ENV_MAX> {
    pub const FRESH: Self = EnvLane {
        bp: [BiquadState::ZERO; 2],
        lp: [BiquadState::ZERO; 2],
        dec_count: 0,
        ring: [0.0; ENV_MAX],
        ring_pos: 0,
        ring_full: false,
        out_pos_half: 0,
        speed_acc: 0.0,
        speed_halves: [0.0; 2],
        block: Moments::ZERO,
    };

    /// Runs sanitised samples through the path, keeping every `D`-th envelope sample.
    pub fn push(&mut self, plan: &EnvPlan, xs: &[f32]) {
        for &x in xs {
            let y0 = self.bp[0].step(&plan.bp, x);
            let y = self.bp[1].step(&plan.bp, y0);
            let s0 = self.lp[0].step(&plan.lp, y * y);
            let s = self.lp[1].step(&plan.lp, s0);
            self.dec_count += 1;
            if self.dec_count < plan.decimation {
                continue;
            }
            self.dec_count = 0;
            let a = libm::sqrtf(if s > 0.0 { s } else { 0.0 });
            self.block = self.block.merge(&Moments { n: 1.0, mean: f64::from(a), m2: 0.0, m3: 0.0, m4: 0.0 });
            if let Some(slot) = self.ring.get_mut(self.ring_pos as usize) {
                *slot = a;
            }
            self.ring_pos += 1;
            if self.ring_pos == plan.fft_len {
                self.ring_pos = 0;
                self.ring_full = true;
            }
        }
    }

    /// Envelope-spectrum sums of the segment that ends now (the last `fft_len` envelope
    /// samples, mean removed, Hann), at `speed_rpm`. `hann` and `buf` have `fft_len` entries.
    pub fn segment<const FFT_MAX: usize, F: Engine<FFT_MAX>>(
        &self,
        plan: &EnvPlan,
        hann: &[f32],
        buf: &mut [f32],
        fft: &mut F,
        speed_rpm: f32,
    ) -> EnvSums {
        let n = plan.fft_len as usize;
        let start = self.ring_pos as usize;
        let (older, newer) = self.ring[..n].split_at(start);
        // Oldest first: ring[start..] then ring[..start].
        let mut sum = 0.0f32;
        for x in newer.iter().chain(older) {
            sum += *x;
        }
        let mean = sum / n as f32;
        for ((d, x), w) in buf.iter_mut().zip(newer.iter().chain(older)).zip(hann) {
            *d = (*x - mean) * *w;
        }
        let Some(spec) = fft.rfft(buf) else { return EnvSums::ZERO };
        let mut e = EnvSums { total: power_sum(spec, (1, spec.len())), ..EnvSums::ZERO };
        let at_speed = OrderBins::new(speed_rpm, plan.fft_len, plan.rate_hz, plan.half_width, plan.min_bins);
        for (o, &p) in e.orders[..plan.order_count].iter_mut().zip(&plan.orders) {
            if let Some(bins) = at_speed.range(p) {
                *o = power_sum(spec, bins);
            }
        }
        e
    }
}
