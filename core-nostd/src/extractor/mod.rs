//! The streaming feature extractor.
//!
//! # Contract
//! - **Input**: one call to [`FeatureExtractor::push`] per sample instant: the vibration sample
//!   of every channel (g) and the shaft speed each channel is referenced to (rpm, sample-and-hold
//!   at the vibration rate). Any `f32` is accepted, NaN and ±Inf included.
//! - **Output**: at most one [`FeatureFrame`] per call. Window `k` covers samples
//!   `k·hop .. k·hop + window` (0-based from the first push). No frame is emitted before the
//!   first full window (warm-up of `window_len_samples`); a trailing partial window is never
//!   emitted.
//! - **Latency**: window `k`'s frame is returned by the push of sample
//!   `k·hop + window - 1 + L`, where `L` (0..=`max_gap_samples` + 1) is the time the sanitiser
//!   holds samples back: 1 sample for the spike clipper's look-ahead, plus the length of an
//!   open short gap. [`FeatureExtractor::finish`] releases what is held at end of stream.
//! - **Panics**: none, for any input. Construction validates the configuration instead
//!   ([`ConfigError`]).
//! - **Memory**: `size_of::<FeatureExtractor<CH, FFT_MAX>>()`, fixed at compile time and
//!   independent of the window length: about `CH · (4·FFT_MAX + 2.1 KiB) + 8·FFT_MAX` bytes.
//!   For 2 channels and `FFT_MAX = 1024` it is below [`FeatureExtractor::<2, 1024>::SIZE_BOUND_BYTES`]
//!   (24 KiB), checked by a test.
//! - **Determinism**: the output depends only on the samples, not on how the stream is cut into
//!   calls, and is bit-identical on every target (one `f32`/`f64` path, `libm`, no FMA).

mod block;
mod channel;
mod envelope;
mod tap;

pub use tap::{NoTap, SampleFate, SampleTap};

use crate::config::{ConfigError, ExtractorConfig};
use crate::features::{ChannelQuality, Feature, FeatureFrame, MAX_FEATURES_PER_CHANNEL, RateKind};
use crate::fft::{FftEngine, Microfft};
use crate::spectrum::{self, SpectralPlan};
use block::ChannelWindow;
use channel::{Channel, Ctx, Shared};

/// Streaming feature extractor for `CH` vibration channels with FFTs of at most `FFT_MAX`
/// points. See the [module docs](self) for the contract.
///
/// ```
/// use avm_core::{ExtractorConfig, Feature, FeatureExtractor};
///
/// let cfg = ExtractorConfig::default_at(2048).unwrap();
/// let one_p = cfg.features.index_of(Feature::Order(1)).unwrap(); // orders 0.5, 1, 2, 3
/// let mut fx = FeatureExtractor::<1, 1024>::new(cfg).unwrap();
/// let mut frames = 0;
/// for n in 0..2048 * 20 {
///     let t = n as f32 / 2048.0;
///     let x = 0.5 * libm::sinf(2.0 * core::f32::consts::PI * 50.0 * t);
///     if let Some(frame) = fx.push(&[x], &[3000.0]) {
///         // 3000 rpm = 50 Hz: the 1P energy is that of the sine, 0.5²/2 g² = -9.03 dB re 1 g².
///         assert!((frame.get(0, one_p).unwrap() + 9.03).abs() < 0.01);
///         frames += 1;
///     }
/// }
/// if fx.finish().is_some() {
///     frames += 1;
/// }
/// assert_eq!(frames, 3); // windows at 0 s, 5 s, 10 s of a 20 s stream
/// ```
///
/// `F` is the FFT engine: [`Microfft`] (the default, the firmware's) or [`HostFft`](crate::HostFft) (the same
/// bits, faster on hosts with SIMD, `14·FFT_MAX` bytes larger): see [`FftEngine`].
#[derive(Clone, Debug)]
pub struct FeatureExtractor<
    const CH: usize,
    const FFT_MAX: usize,
    const ENV_MAX: usize = 0,
    F: FftEngine<FFT_MAX> = Microfft<FFT_MAX>,
> {
    shared: Shared<FFT_MAX, ENV_MAX, F>,
    channels: [Channel<FFT_MAX, ENV_MAX>; CH],
    prev: PrevWindow<CH>,
}

/// What the next window's rates of change are computed against. `valid` is false before the
/// first window and after an invalid one. All zero when there is none, like the rest of an
/// [`FeatureExtractor::UNCONFIGURED`] extractor (which then lives in `.bss`).
#[derive(Clone, Copy, Debug)]
struct PrevWindow<const CH: usize> {
    valid: bool,
    rms_g: [f32; CH],
    kurtosis: [f32; CH],
}

impl<const CH: usize> PrevWindow<CH> {
    const NONE: Self = PrevWindow { valid: false, rms_g: [0.0; CH], kurtosis: [0.0; CH] };
}

impl<const CH: usize, const FFT_MAX: usize, const ENV_MAX: usize, F: FftEngine<FFT_MAX>>
    FeatureExtractor<CH, FFT_MAX, ENV_MAX, F>
{
    /// Documented upper bound of `size_of::<Self>()` for `CH = 2, FFT_MAX = 1024`.
    pub const SIZE_BOUND_BYTES: usize = 24 * 1024;

    const CHECK: () = {
        assert!(CH >= 1, "FeatureExtractor needs at least one channel");
        assert!(FFT_MAX >= 256, "FFT_MAX must be at least 256 (the smallest supported fft_len)");
    };

    /// An extractor without a configuration, as a constant, for `static` storage: a firmware
    /// declares `static mut FX: FeatureExtractor<2, 1024> = FeatureExtractor::UNCONFIGURED;`
    /// (or keeps it in a cell) and calls [`configure`](Self::configure), which initialises it in
    /// place. Until then every push is ignored (no frame; [`samples_pushed`](Self::samples_pushed)
    /// stays 0) and [`config`](Self::config) is all zeros.
    ///
    /// Its bytes are all zero, so such a `static` costs `.bss`, not a 24 KB `.data` image in
    /// flash (checked by avm-capi's tests, which zero C-provided memory into this value).
    pub const UNCONFIGURED: Self = FeatureExtractor {
        shared: Shared::UNCONFIGURED,
        channels: [Channel::UNCONFIGURED; CH],
        prev: PrevWindow::NONE,
    };

    /// (Re)configures the extractor in place and starts a new stream. Fails, leaving the
    /// extractor as it was, if `cfg` breaks a constraint of [`ExtractorConfig`] or its `fft_len`
    /// exceeds the capacity `FFT_MAX`.
    pub fn configure(&mut self, cfg: ExtractorConfig) -> Result<(), ConfigError> {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        cfg.validate()?;
        if cfg.fft_len as usize > FFT_MAX {
            return Err(ConfigError::OutOfRange {
                field: "fft_len (FFT_MAX capacity)",
                min: *crate::config::FFT_LEN_RANGE.start(),
                max: FFT_MAX as u32,
                actual: cfg.fft_len,
            });
        }
        if cfg.features.families.contains(crate::Families::ENVELOPE) {
            let n = u32::from(cfg.features.env_fft_len);
            let cap = ENV_MAX.min(FFT_MAX) as u32;
            if n > cap {
                return Err(ConfigError::OutOfRange {
                    field: "env_fft_len (ENV_MAX / FFT_MAX capacity)",
                    min: 64,
                    max: cap,
                    actual: n,
                });
            }
        }
        let sh = &mut self.shared;
        sh.cfg = cfg;
        sh.hops = cfg.hops_per_window();
        sh.plan = SpectralPlan::new(&cfg);
        sh.hann.fill(0.0);
        let n = cfg.fft_len as usize;
        spectrum::hann_periodic(&mut sh.hann[..n]);
        let env_len = if cfg.features.families.contains(crate::Families::ENVELOPE) {
            usize::from(cfg.features.env_fft_len)
        } else {
            0
        };
        sh.fft_engine.prepare(n.max(env_len), &mut sh.fft);
        sh.fft.fill(0.0);
        // Welch segments wholly inside a window: 2·W/N - 1 (W a multiple of N/2, W >= N).
        // (W is a whole number of half-segments, so 2·W/N is exact.)
        let segments = 2.0 * f64::from(cfg.window_len_samples) / f64::from(cfg.fft_len.max(1)) - 1.0;
        let hann_energy: f64 = sh.hann[..n].iter().map(|w| f64::from(*w) * f64::from(*w)).sum();
        sh.power_to_g2 = 1.0 / (segments * f64::from(cfg.fft_len) * hann_energy);
        sh.segments_inv = 1.0 / segments;
        sh.env_plan = envelope::EnvPlan::new(&cfg);
        sh.env_hann.fill(0.0);
        sh.env_power_to_g2 = 0.0;
        if sh.env_plan.on {
            let n = sh.env_plan.fft_len as usize;
            spectrum::hann_periodic(&mut sh.env_hann[..n]);
            let span = f64::from(sh.env_plan.decimation) * f64::from(sh.env_plan.fft_len);
            let env_segments = 2.0 * f64::from(cfg.window_len_samples) / span - 1.0;
            let energy: f64 = sh.env_hann[..n].iter().map(|w| f64::from(*w) * f64::from(*w)).sum();
            sh.env_power_to_g2 = 1.0 / (env_segments * f64::from(sh.env_plan.fft_len) * energy);
        }
        self.reset();
        Ok(())
    }

    /// Creates an extractor. Fails if `cfg` breaks a constraint of [`ExtractorConfig`] or its
    /// `fft_len` exceeds the capacity `FFT_MAX`.
    ///
    /// The extractor is returned by value; on a microcontroller prefer a `static`
    /// [`UNCONFIGURED`](Self::UNCONFIGURED) extractor and [`configure`](Self::configure), which
    /// never put a copy of it on the stack.
    pub fn new(cfg: ExtractorConfig) -> Result<Self, ConfigError> {
        let mut fx = Self::UNCONFIGURED;
        fx.configure(cfg)?;
        Ok(fx)
    }

    /// Forgets the stream (every channel back to its first sample), keeping the configuration.
    pub fn reset(&mut self) {
        for c in &mut self.channels {
            *c = Channel::FRESH;
        }
        self.prev = PrevWindow::NONE;
    }

    fn is_configured(&self) -> bool {
        self.shared.hops != 0
    }

    /// The configuration in use.
    pub fn config(&self) -> &ExtractorConfig {
        &self.shared.cfg
    }

    /// Samples pushed so far.
    pub fn samples_pushed(&self) -> u64 {
        self.channels[0].n_in
    }

    /// Pushes one sample instant. Returns the frame of the window this sample completes, if any
    /// (see the latency contract).
    pub fn push(&mut self, vib_g: &[f32; CH], shaft_speed_rpm: &[f32; CH]) -> Option<FeatureFrame<CH>> {
        if !self.is_configured() {
            return None;
        }
        for (channel, ch) in self.channels.iter_mut().enumerate() {
            let mut cx = Ctx { sh: &mut self.shared, tap: &mut NoTap, channel };
            ch.push_run(&mut cx, core::slice::from_ref(vib_g), core::slice::from_ref(shaft_speed_rpm));
        }
        self.assemble()
    }

    /// Pushes a block of sample instants, calling `on_frame` for every frame completed.
    /// Identical to calling [`push`](Self::push) for each instant: frames never depend on how a
    /// stream is cut into blocks. `rpm` must have the length of `vib`; a mismatch is refused
    /// before any sample is consumed.
    pub fn push_slice(
        &mut self,
        vib_g: &[[f32; CH]],
        shaft_speed_rpm: &[[f32; CH]],
        on_frame: impl FnMut(FeatureFrame<CH>),
    ) -> Result<(), LengthMismatch> {
        self.push_slice_tapped(vib_g, shaft_speed_rpm, on_frame, &mut NoTap)
    }

    /// [`push_slice`](Self::push_slice), also showing every sanitised sample to `tap`: per
    /// channel, in order, exactly the values the features are computed from, with what the
    /// sanitiser did to each. A tap changes no number.
    pub fn push_slice_tapped(
        &mut self,
        vib_g: &[[f32; CH]],
        shaft_speed_rpm: &[[f32; CH]],
        mut on_frame: impl FnMut(FeatureFrame<CH>),
        tap: &mut impl SampleTap,
    ) -> Result<(), LengthMismatch> {
        if vib_g.len() != shaft_speed_rpm.len() {
            return Err(LengthMismatch { expected: vib_g.len(), actual: shaft_speed_rpm.len() });
        }
        if !self.is_configured() {
            return Ok(());
        }
        // Channel by channel over sub-blocks short enough that no channel can finish two windows
        // in one (L + max_gap + 1 < hop): the frames are exactly those of per-instant pushes.
        let cfg = self.shared.cfg;
        let step = (cfg.hop_len_samples - cfg.max_gap_samples - 2) as usize;
        for (vb, rb) in vib_g.chunks(step).zip(shaft_speed_rpm.chunks(step)) {
            for (channel, ch) in self.channels.iter_mut().enumerate() {
                let mut cx = Ctx { sh: &mut self.shared, tap: &mut *tap, channel };
                ch.push_run(&mut cx, vb, rb);
            }
            if let Some(f) = self.assemble() {
                on_frame(f);
            }
        }
        Ok(())
    }

    /// Ends the stream: releases the samples the sanitiser holds (an open gap is unrepaired,
    /// the last sample is not clipped) and returns the frame they complete, if any. The
    /// extractor is then [`reset`](Self::reset), ready for a new stream with the same config.
    pub fn finish(&mut self) -> Option<FeatureFrame<CH>> {
        self.finish_tapped(&mut NoTap)
    }

    /// [`finish`](Self::finish), showing the released samples to `tap`.
    pub fn finish_tapped(&mut self, tap: &mut impl SampleTap) -> Option<FeatureFrame<CH>> {
        if !self.is_configured() {
            return None;
        }
        for (channel, ch) in self.channels.iter_mut().enumerate() {
            let mut cx = Ctx { sh: &mut self.shared, tap: &mut *tap, channel };
            ch.finish(&mut cx);
        }
        let frame = self.assemble();
        self.reset();
        frame
    }

    fn assemble(&mut self) -> Option<FeatureFrame<CH>> {
        if self.channels.iter().any(|c| c.ready.is_none()) {
            return None;
        }
        let windows: [ChannelWindow; CH] = core::array::from_fn(|i| {
            // Checked just above; `unwrap_or` keeps this panic-free.
            self.channels[i].ready.take().unwrap_or(ChannelWindow {
                window_index: 0,
                features: [0.0; MAX_FEATURES_PER_CHANNEL],
                quality: ChannelQuality::default(),
                rms_g: 0.0,
                kurtosis: 0.0,
            })
        });
        let mut features = windows.map(|w| w.features);
        let quality = windows.map(|w| w.quality);
        let valid = quality.iter().all(|q| q.unrepaired == 0);
        let roc_valid = self.prev.valid;
        let cfg = &self.shared.cfg;
        let per_s = f64::from(cfg.sample_rate_hz) / f64::from(cfg.hop_len_samples);
        if roc_valid {
            let p = &self.prev;
            let rate = |now: f32, before: f32| ((f64::from(now) - f64::from(before)) * per_s) as f32;
            for (k, feature) in cfg.features.iter().enumerate() {
                for (c, (f, w)) in features.iter_mut().zip(&windows).enumerate() {
                    f[k] = match feature {
                        Feature::Rate(RateKind::RmsGPerS) => rate(w.rms_g, p.rms_g[c]),
                        Feature::Rate(RateKind::KurtosisPerS) => rate(w.kurtosis, p.kurtosis[c]),
                        _ => continue,
                    };
                }
            }
        }
        self.prev =
            PrevWindow { valid, rms_g: windows.map(|w| w.rms_g), kurtosis: windows.map(|w| w.kurtosis) };
        let window_index = windows[0].window_index;
        Some(FeatureFrame {
            window_index,
            start_sample: u64::from(window_index) * u64::from(cfg.hop_len_samples),
            per_channel: cfg.features.per_channel() as u16,
            features,
            quality,
            valid,
            roc_valid,
        })
    }
}

/// The shaft-speed block given to [`FeatureExtractor::push_slice`] does not match the
/// vibration block in length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthMismatch {
    /// Sample instants in the vibration block.
    pub expected: usize,
    /// Sample instants in the shaft-speed block.
    pub actual: usize,
}

impl core::fmt::Display for LengthMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "shaft speed block has {} sample instants, vibration block has {}",
            self.actual, self.expected
        )
    }
}

impl core::error::Error for LengthMismatch {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn small_cfg() -> ExtractorConfig {
        ExtractorConfig {
            sample_rate_hz: 1024,
            window_len_samples: 2048,
            hop_len_samples: 1024,
            fft_len: 256,
            order_band_bins: 1,
            max_gap_samples: 4,
            spike_policy: crate::SpikePolicy::KSigma,
            spike_k_sigma: 3.0,
            full_scale_g: 100.0,
            max_shaft_speed_rpm: 20_000.0,
            features: crate::FeatureSettings::default().feature_set(1024, 256).unwrap(),
        }
    }

    fn idx(f: crate::Feature) -> usize {
        small_cfg().features.index_of(f).unwrap()
    }
    const PEAK: crate::Feature = crate::Feature::Time(crate::TimeKind::PeakG);
    const MEAN: crate::Feature = crate::Feature::Time(crate::TimeKind::MeanG);

    fn run<const CH: usize>(
        cfg: ExtractorConfig,
        vib: &[[f32; CH]],
        rpm: &[[f32; CH]],
    ) -> Vec<FeatureFrame<CH>> {
        let mut fx = FeatureExtractor::<CH, 1024>::new(cfg).unwrap();
        let mut out: Vec<_> = vib.iter().zip(rpm).filter_map(|(v, r)| fx.push(v, r)).collect();
        out.extend(fx.finish());
        out
    }

    #[test]
    fn memory_bound_holds() {
        let size = core::mem::size_of::<FeatureExtractor<2, 1024>>();
        assert!(size <= FeatureExtractor::<2, 1024>::SIZE_BOUND_BYTES, "size_of = {size}");
        // Independent of the window length: the type does not know it.
        std::println!("size_of::<FeatureExtractor<2, 1024>>() = {size} bytes");
    }

    /// Bits of every frame of a stream with noise, spikes, a gap and a speed ramp.
    fn bits(frames: &[FeatureFrame<2>]) -> Vec<(u32, bool, Vec<u32>)> {
        frames.iter().map(|f| (f.window_index, f.valid, f.flat().map(|x| x.to_bits()).collect())).collect()
    }

    fn rough_stream(n: usize) -> (Vec<[f32; 2]>, Vec<[f32; 2]>) {
        let vib = (0..n)
            .map(|i| {
                let t = i as f32 / 1024.0;
                let spike = if i % 997 == 500 { 40.0 } else { 0.0 };
                let a = if (3000..3003).contains(&i) { f32::NAN } else { (t * 131.0).sin() + spike };
                [a, 0.3 * (t * 77.0).cos() + 0.01 * ((i * 7919 % 101) as f32)]
            })
            .collect();
        let rpm = (0..n).map(|i| [1200.0 + i as f32 * 0.01, 2400.0]).collect();
        (vib, rpm)
    }

    #[test]
    fn sanitiser_fast_path_is_the_general_path() {
        // Every spike policy, on a stream with spikes, gaps (short and long), out-of-range and
        // infinite samples, stuck runs and bad speeds, pushed in uneven blocks: frames and every
        // sample the tap sees are the same bits with and without the delay-line fast path.
        struct Seen(Vec<(usize, u32, u8)>);
        impl SampleTap for Seen {
            fn sample(&mut self, channel: usize, value: f32, fate: SampleFate) {
                self.0.push((channel, value.to_bits(), fate as u8));
            }
        }
        let n = 40_000;
        let (mut vib, mut rpm) = rough_stream(n);
        for i in 0..n {
            match i % 4099 {
                100..=103 => vib[i][1] = f32::NAN,
                200..=230 => vib[i][0] = f32::NAN,
                300 => vib[i][1] = 150.0,
                301 => vib[i][0] = f32::INFINITY,
                400..=600 => vib[i][1] = vib[i - i % 4099 + 400][1], // stuck
                700 => rpm[i][0] = f32::NAN,
                701 => rpm[i][1] = -5.0,
                800 => vib[i][0] = -30.0,
                _ => {}
            }
        }
        for policy in [crate::SpikePolicy::KSigma, crate::SpikePolicy::Isolated, crate::SpikePolicy::Off] {
            let cfg = ExtractorConfig { spike_policy: policy, ..small_cfg() };
            let run_with = |general: bool| {
                channel::GENERAL_PATH_ONLY.with(|g| g.set(general));
                let mut fx = FeatureExtractor::<2, 1024>::new(cfg).unwrap();
                let (mut frames, mut seen) = (Vec::new(), Seen(Vec::new()));
                let mut at = 0;
                for len in [1usize, 7, 500, 33, 2048, 5, 1023, 64].iter().cycle() {
                    let end = n.min(at + len);
                    fx.push_slice_tapped(&vib[at..end], &rpm[at..end], |f| frames.push(f), &mut seen)
                        .unwrap();
                    at = end;
                    if at == n {
                        break;
                    }
                }
                frames.extend(fx.finish_tapped(&mut seen));
                channel::GENERAL_PATH_ONLY.with(|g| g.set(false));
                (bits(&frames), seen.0)
            };
            let (fast, general) = (run_with(false), run_with(true));
            assert!(fast.0.len() > 30 && fast.1.len() == 2 * n, "{policy:?}: {} frames", fast.0.len());
            assert_eq!(fast.0, general.0, "{policy:?}: frames");
            assert_eq!(fast.1, general.1, "{policy:?}: sanitised samples");
        }
    }

    #[test]
    fn static_configure_and_reuse_give_the_same_bits_as_new() {
        let cfg = small_cfg();
        let (vib, rpm) = rough_stream(9000);
        let mut a = FeatureExtractor::<2, 1024>::new(cfg).unwrap();
        let mut fa = Vec::new();
        a.push_slice(&vib, &rpm, |f| fa.push(f)).unwrap();
        fa.extend(a.finish());
        // An UNCONFIGURED extractor ignores samples until configured in place.
        let mut b = FeatureExtractor::<2, 1024>::UNCONFIGURED;
        assert!(b.push(&vib[0], &rpm[0]).is_none());
        b.push_slice(&vib, &rpm, |_| panic!("no frame before configure")).unwrap();
        assert!(b.finish().is_none());
        assert_eq!((b.samples_pushed(), b.config().sample_rate_hz), (0, 0));
        let bad = ExtractorConfig { fft_len: 300, ..cfg };
        assert!(b.configure(bad).is_err());
        b.configure(cfg).unwrap();
        let mut fb = Vec::new();
        for (v, r) in vib.iter().zip(&rpm) {
            fb.extend(b.push(v, r));
        }
        fb.extend(b.finish());
        assert_eq!(bits(&fa), bits(&fb));
        // finish() resets: the same stream again gives the same frames.
        let mut fc = Vec::new();
        b.push_slice(&vib, &rpm, |f| fc.push(f)).unwrap();
        fc.extend(b.finish());
        assert_eq!(bits(&fa), bits(&fc));
        // Reconfiguring after another config also starts clean.
        b.configure(ExtractorConfig { fft_len: 512, ..cfg }).unwrap();
        b.push_slice(&vib[..5000], &rpm[..5000], |_| {}).unwrap();
        b.configure(cfg).unwrap();
        let mut fd = Vec::new();
        b.push_slice(&vib, &rpm, |f| fd.push(f)).unwrap();
        fd.extend(b.finish());
        assert_eq!(bits(&fa), bits(&fd));
    }

    #[test]
    fn warm_up_and_no_partial_window() {
        let cfg = small_cfg();
        let n = 2048 + 1024 * 3 + 500; // 4 full windows and a partial one
        let vib: Vec<[f32; 1]> = (0..n).map(|i| [(i as f32 * 0.1).sin()]).collect();
        let rpm = std::vec![[1200.0f32]; n];
        let frames = run(cfg, &vib, &rpm);
        assert_eq!(frames.len(), 4);
        for (k, f) in frames.iter().enumerate() {
            assert_eq!(f.window_index as usize, k);
            assert_eq!(f.start_sample, k as u64 * 1024);
            assert!(f.valid);
            assert_eq!(f.roc_valid, k > 0);
        }
    }

    #[test]
    fn frame_arrives_one_sample_late_then_finish_releases_it() {
        let cfg = small_cfg();
        let mut fx = FeatureExtractor::<1, 256>::new(cfg).unwrap();
        for i in 0..2048 {
            assert!(fx.push(&[(i as f32).sin()], &[600.0]).is_none());
        }
        // Sample 2048 is the look-ahead that releases sample 2047.
        assert!(fx.push(&[0.0], &[600.0]).is_some());
        let mut fx = FeatureExtractor::<1, 256>::new(cfg).unwrap();
        for i in 0..2048 {
            fx.push(&[(i as f32).sin()], &[600.0]);
        }
        assert_eq!(fx.finish().map(|f| f.window_index), Some(0));
    }

    #[test]
    fn long_gap_invalidates_touching_windows_only() {
        let cfg = small_cfg();
        let n = 1024 * 6;
        let mut vib: Vec<[f32; 1]> = (0..n).map(|i| [(i as f32 * 0.3).sin()]).collect();
        for v in &mut vib[3000..3010] {
            v[0] = f32::NAN; // 10 > max_gap 4, inside block 2
        }
        for v in &mut vib[5000..5003] {
            v[0] = f32::NAN; // 3 <= 4, repaired, in block 4
        }
        let rpm = std::vec![[600.0f32]; n];
        let frames = run(cfg, &vib, &rpm);
        let valid: Vec<bool> = frames.iter().map(|f| f.valid).collect();
        // Windows: 0=[0,2048) 1=[1024,3072) 2=[2048,4096) 3=[3072,5120) 4=[4096,6144)
        assert_eq!(valid, [true, false, false, true, true]);
        assert_eq!(frames[1].quality[0].unrepaired, 10);
        assert_eq!(frames[3].quality[0].gap_filled, 3);
        assert_eq!(frames[4].quality[0].gap_filled, 3);
        // After an invalid window the rates restart.
        let roc: Vec<bool> = frames.iter().map(|f| f.roc_valid).collect();
        assert_eq!(roc, [false, true, false, false, true]);
        assert!(frames.iter().all(|f| f.flat().all(|x| x.is_finite())));
    }

    #[test]
    fn isolated_spike_is_clipped_after_first_window() {
        let cfg = small_cfg();
        let n = 1024 * 4;
        let mut vib: Vec<[f32; 1]> = (0..n).map(|i| [(i as f32 * 0.37).sin()]).collect();
        vib[500][0] = 50.0; // first window: no bounds yet, kept
        vib[3500][0] = 50.0; // clipped
        let rpm = std::vec![[600.0f32]; n];
        let frames = run(cfg, &vib, &rpm);
        assert_eq!(frames[0].get(0, idx(PEAK)), Some(50.0));
        assert_eq!(frames[0].quality[0].clipped, 0);
        assert_eq!(frames[2].quality[0].clipped, 1);
        assert!(frames[2].get(0, idx(PEAK)).unwrap() < 5.0);
    }

    #[test]
    fn channels_with_different_lag_stay_aligned() {
        let cfg = small_cfg();
        let n = 1024 * 5;
        let mut vib: Vec<[f32; 2]> =
            (0..n).map(|i| [(i as f32 * 0.2).sin(), (i as f32 * 0.5).cos()]).collect();
        // A short gap right at the end of window 0 on channel 1 only: its frame waits for it.
        for v in &mut vib[2045..2049] {
            v[1] = f32::NAN;
        }
        let rpm = std::vec![[900.0f32, 1800.0]; n];
        let two = run(cfg, &vib, &rpm);
        let a: Vec<[f32; 1]> = vib.iter().map(|v| [v[0]]).collect();
        let b: Vec<[f32; 1]> = vib.iter().map(|v| [v[1]]).collect();
        let one_a = run(cfg, &a, &rpm.iter().map(|r| [r[0]]).collect::<Vec<_>>());
        let one_b = run(cfg, &b, &rpm.iter().map(|r| [r[1]]).collect::<Vec<_>>());
        assert_eq!(two.len(), one_a.len());
        for ((t, x), y) in two.iter().zip(&one_a).zip(&one_b) {
            assert_eq!(t.features[0], x.features[0]);
            assert_eq!(t.features[1], y.features[0]);
        }
        assert_eq!(two[0].quality[1].gap_filled, 3);
    }

    #[test]
    fn tap_sees_exactly_what_the_features_see() {
        struct Collect(Vec<Vec<(f32, SampleFate)>>);
        impl SampleTap for Collect {
            fn sample(&mut self, channel: usize, value: f32, fate: SampleFate) {
                self.0[channel].push((value, fate));
            }
        }
        let cfg = small_cfg();
        let n = 1024 * 6 + 7;
        let mut vib: Vec<[f32; 2]> =
            (0..n).map(|i| [(i as f32 * 0.21).sin() + 3.0, (i as f32 * 0.05).cos()]).collect();
        vib[1500][0] = f32::NAN;
        vib[1501][0] = f32::NAN;
        vib[3000][0] = 40.0;
        vib[4000..4010].iter_mut().for_each(|v| v[1] = f32::NAN);
        let rpm = std::vec![[1200.0f32, 2400.0]; n];
        let plain = run(cfg, &vib, &rpm);
        let mut fx = FeatureExtractor::<2, 1024>::new(cfg).unwrap();
        let mut tap = Collect(std::vec![Vec::new(), Vec::new()]);
        let mut tapped = Vec::new();
        fx.push_slice_tapped(&vib, &rpm, |f| tapped.push(f), &mut tap).unwrap();
        tapped.extend(fx.finish_tapped(&mut tap));
        assert_eq!(plain, tapped);
        // The tap holds every sample except the partial chunk still staged at the end.
        for c in 0..2 {
            assert!(tap.0[c].len() >= n - 32 && tap.0[c].len() <= n, "{}", tap.0[c].len());
        }
        for f in &tapped {
            for c in 0..2 {
                let s = f.start_sample as usize;
                let w = &tap.0[c][s..s + 2048];
                let mean = w.iter().map(|v| f64::from(v.0)).sum::<f64>() / 2048.0;
                let got = f64::from(f.get(c, idx(MEAN)).unwrap());
                assert!((mean - got).abs() < 1e-5, "{mean} vs {got}");
                let count = |fate| w.iter().filter(|v| v.1 == fate).count() as u32;
                assert_eq!(count(SampleFate::Filled), f.quality[c].gap_filled);
                assert_eq!(count(SampleFate::Clipped), f.quality[c].clipped);
                assert_eq!(count(SampleFate::Unrepaired), f.quality[c].unrepaired);
            }
        }
        assert_eq!(tapped[2].quality[0].clipped, 1);
        assert_eq!(tapped[1].quality[0].gap_filled, 2);
    }

    #[test]
    fn envelope_needs_envelope_capacity() {
        let mut cfg = small_cfg();
        cfg.features.families = cfg.features.families.with(crate::Families::ENVELOPE);
        cfg.features.env_band_hz = [200.0, 400.0];
        cfg.features.env_decimation = 4;
        cfg.features.env_fft_len = 128;
        cfg.validate().unwrap();
        let e = FeatureExtractor::<1, 1024>::new(cfg).unwrap_err();
        assert!(std::format!("{e}").contains("env_fft_len (ENV_MAX / FFT_MAX capacity)"), "{e}");
        assert!(FeatureExtractor::<1, 1024, 64>::new(cfg).is_err());
        let mut fx = FeatureExtractor::<1, 1024, 128>::new(cfg).unwrap();
        let n = cfg.features.per_channel();
        let mut frames = 0;
        for i in 0..4096 {
            if let Some(f) = fx.push(&[(i as f32 * 1.7).sin()], &[1920.0]) {
                assert_eq!(usize::from(f.per_channel), n);
                assert!(f.flat().all(|x| x.is_finite()));
                frames += 1;
            }
        }
        assert_eq!(frames, 2);
    }

    #[test]
    fn host_fft_engine_gives_microffts_bits() {
        // Every family, the envelope's transform shorter and longer than the main one, on the
        // rough stream in uneven blocks: the same frames, bit for bit, with either engine.
        let (vib, rpm) = rough_stream(30_000);
        for env_fft_len in [128u16, 512] {
            let mut cfg = small_cfg();
            cfg.features.families = cfg.features.families.with(crate::Families::ENVELOPE);
            cfg.features.env_band_hz = [200.0, 400.0];
            cfg.features.env_decimation = 2;
            cfg.features.env_fft_len = env_fft_len;
            cfg.validate().unwrap();
            fn frames<F: FftEngine<1024>>(
                fx: &mut FeatureExtractor<2, 1024, 512, F>,
                vib: &[[f32; 2]],
                rpm: &[[f32; 2]],
            ) -> Vec<FeatureFrame<2>> {
                let mut out = Vec::new();
                for (v, r) in vib.chunks(777).zip(rpm.chunks(777)) {
                    fx.push_slice(v, r, |f| out.push(f)).unwrap();
                }
                out.extend(fx.finish());
                out
            }
            let mut micro = std::boxed::Box::new(FeatureExtractor::<2, 1024, 512>::new(cfg).unwrap());
            let mut host =
                std::boxed::Box::new(FeatureExtractor::<2, 1024, 512, crate::HostFft<1024>>::UNCONFIGURED);
            host.configure(cfg).unwrap();
            let (a, b) = (frames(&mut micro, &vib, &rpm), frames(&mut host, &vib, &rpm));
            assert!(a.len() > 20, "{} frames", a.len());
            assert_eq!(bits(&a), bits(&b), "env_fft_len {env_fft_len}");
        }
    }

    #[test]
    fn rejects_fft_beyond_capacity() {
        let mut cfg = small_cfg();
        cfg.fft_len = 512;
        assert!(FeatureExtractor::<1, 256>::new(cfg).is_err());
        assert!(FeatureExtractor::<1, 512>::new(cfg).is_ok());
    }
}
