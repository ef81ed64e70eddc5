//! Extractor configuration and the constraints it must satisfy.

use core::fmt;

use crate::features::{Families, FeatureSet, MAX_BANDS, MAX_ENV_ORDERS, MAX_ORDERS, SpectralScale};
use crate::sanitize::SpikePolicy;

/// The largest number of hops one window may span (`window_len_samples / hop_len_samples`).
///
/// The extractor keeps one small summary per hop (about 100 bytes per channel), never the
/// samples of a window, so this bound, not the window length, sets its memory.
pub const MAX_HOPS_PER_WINDOW: usize = 6;

/// The longest FFT this build of the core computes: 4096 points, or 32768 with the
/// `fft-32768` cargo feature (hosts; the extractor's `FFT_MAX` must also hold it).
pub const FFT_LEN_MAX: u32 = if cfg!(feature = "fft-32768") { 32768 } else { 4096 };

/// The longest envelope segment (`env_fft_len`) the core accepts (from 64 points).
pub const ENV_FFT_LEN_MAX: u16 = 4096;

/// The FFT lengths the spectral families support in this build (microfft's real transforms).
pub const FFT_LEN_RANGE: core::ops::RangeInclusive<u32> = 256..=FFT_LEN_MAX;

/// Everything that shapes a feature frame.
///
/// All lengths are integer sample counts at `sample_rate_hz`; use
/// [`ExtractorConfig::from_seconds`] to build one from the usual `window_s` / `hop_s`.
/// [`ExtractorConfig::validate`] (called by every constructor that takes a config) checks the
/// constraints listed on each field and reports the first one broken as a [`ConfigError`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExtractorConfig {
    /// Rate of the vibration samples and of the (sample-and-hold) shaft speed, in Hz. `> 0`.
    pub sample_rate_hz: u32,
    /// Samples per analysis window. A whole number (1..=[`MAX_HOPS_PER_WINDOW`]) of hops.
    pub window_len_samples: u32,
    /// Samples between the starts of consecutive windows. A whole multiple of `fft_len / 2`,
    /// and larger than `max_gap_samples + 2` (see [`crate::extractor`]'s latency contract).
    pub hop_len_samples: u32,
    /// Length of each Welch segment: a power of two in [`FFT_LEN_RANGE`], `<= window_len_samples`.
    pub fft_len: u32,
    /// Half-width of the order bands, in FFT bins: the 1P band is `k1 - b ..= k1 + b`. `<= 64`.
    pub order_band_bins: u32,
    /// Longest run of non-finite (or out of full scale) samples that is repaired by linear
    /// interpolation. Longer runs make the windows they touch invalid. `<= fft_len / 2 - 2`.
    pub max_gap_samples: u32,
    /// Which samples the sanitiser treats as spikes ([`SpikePolicy`]).
    pub spike_policy: SpikePolicy,
    /// Spike threshold `k` of [`SpikePolicy::KSigma`]. Finite and `> 0` (checked whatever the
    /// policy, so a bundle never carries a meaningless value).
    pub spike_k_sigma: f32,
    /// Sensor full scale in g: a sample with `|x| > full_scale_g` is not a measurement and is
    /// treated as a gap sample. Finite and `> 0`.
    pub full_scale_g: f32,
    /// Highest plausible shaft speed in rpm: a speed sample that is non-finite, negative or above
    /// this value is replaced by the last plausible one. Finite and `> 0`.
    pub max_shaft_speed_rpm: f32,
    /// The features computed per channel: at least one feature, and see [`FeatureSet`]'s
    /// fields for the constraints on bands and orders at this rate and `fft_len`.
    pub features: FeatureSet,
}

impl ExtractorConfig {
    /// The project defaults at `sample_rate_hz`: 10 s windows every 5 s, 1024-point FFT,
    /// ±1 bin order bands, gaps up to 8 samples repaired, the default spike policy with k = 3,
    /// ±1000 g full scale, 30 000 rpm, and the default feature set of [`FeatureSettings`].
    ///
    /// Fails when 10 s / 5 s are not whole multiples of the FFT half-length at this rate (the
    /// error says which constraint); 2048 Hz, the fleet's rate, is fine.
    pub fn default_at(sample_rate_hz: u32) -> Result<Self, ConfigError> {
        Self::from_seconds(sample_rate_hz, 10.0, 5.0)
    }

    /// Builds a config from window and hop lengths in seconds, with the other fields at their
    /// defaults (see [`ExtractorConfig::default_at`]), then validates it.
    ///
    /// `window_s * sample_rate_hz` and `hop_s * sample_rate_hz` must be whole numbers of samples
    /// (within 1e-6 of an integer); anything else is [`ConfigError::NotWholeSamples`].
    pub fn from_seconds(sample_rate_hz: u32, window_s: f64, hop_s: f64) -> Result<Self, ConfigError> {
        let window_len_samples = whole_samples("window_s", window_s, sample_rate_hz)?;
        let hop_len_samples = whole_samples("hop_s", hop_s, sample_rate_hz)?;
        let cfg = ExtractorConfig {
            sample_rate_hz,
            window_len_samples,
            hop_len_samples,
            fft_len: 1024,
            order_band_bins: 1,
            max_gap_samples: 8,
            spike_policy: SpikePolicy::DEFAULT,
            spike_k_sigma: 3.0,
            full_scale_g: 1000.0,
            max_shaft_speed_rpm: 30_000.0,
            features: FeatureSet::EMPTY,
        };
        let cfg = ExtractorConfig {
            features: FeatureSettings::default().feature_set(sample_rate_hz, cfg.fft_len)?,
            ..cfg
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Window length in seconds.
    pub fn window_s(&self) -> f64 {
        f64::from(self.window_len_samples) / f64::from(self.sample_rate_hz)
    }

    /// Hop length in seconds (the time between consecutive feature frames).
    pub fn hop_s(&self) -> f64 {
        f64::from(self.hop_len_samples) / f64::from(self.sample_rate_hz)
    }

    /// Number of hops per window.
    pub fn hops_per_window(&self) -> u32 {
        self.window_len_samples / self.hop_len_samples.max(1)
    }

    /// Checks every constraint documented on the fields; returns the first one broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use ConfigError as E;
        if self.sample_rate_hz == 0 {
            return Err(E::OutOfRange { field: "sample_rate_hz", min: 1, max: u32::MAX, actual: 0 });
        }
        let fft = self.fft_len;
        if !fft.is_power_of_two() || !FFT_LEN_RANGE.contains(&fft) {
            return Err(E::FftLen { actual: fft });
        }
        if self.order_band_bins > 64 {
            return Err(E::OutOfRange {
                field: "order_band_bins",
                min: 0,
                max: 64,
                actual: self.order_band_bins,
            });
        }
        let half = fft / 2;
        if self.hop_len_samples == 0 || !self.hop_len_samples.is_multiple_of(half) {
            return Err(E::NotMultiple {
                field: "hop_len_samples",
                actual: self.hop_len_samples,
                of: "fft_len / 2",
                multiple: half,
            });
        }
        if self.window_len_samples == 0 || !self.window_len_samples.is_multiple_of(self.hop_len_samples) {
            return Err(E::NotMultiple {
                field: "window_len_samples",
                actual: self.window_len_samples,
                of: "hop_len_samples",
                multiple: self.hop_len_samples,
            });
        }
        let hops = self.window_len_samples / self.hop_len_samples;
        if hops as usize > MAX_HOPS_PER_WINDOW {
            return Err(E::OutOfRange {
                field: "window_len_samples / hop_len_samples",
                min: 1,
                max: MAX_HOPS_PER_WINDOW as u32,
                actual: hops,
            });
        }
        if self.window_len_samples < fft {
            return Err(E::OutOfRange {
                field: "window_len_samples",
                min: fft,
                max: u32::MAX,
                actual: self.window_len_samples,
            });
        }
        if self.max_gap_samples > half - 2 {
            return Err(E::OutOfRange {
                field: "max_gap_samples",
                min: 0,
                max: half - 2,
                actual: self.max_gap_samples,
            });
        }
        // hop >= fft/2 >= 128 > max_gap + 2 always holds given the checks above; keep the
        // documented constraint explicit anyway so a future relaxation cannot silently break it.
        if self.hop_len_samples <= self.max_gap_samples + 2 {
            return Err(E::OutOfRange {
                field: "hop_len_samples",
                min: self.max_gap_samples + 3,
                max: u32::MAX,
                actual: self.hop_len_samples,
            });
        }
        for (field, v) in [
            ("spike_k_sigma", self.spike_k_sigma),
            ("full_scale_g", self.full_scale_g),
            ("max_shaft_speed_rpm", self.max_shaft_speed_rpm),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(E::NotPositiveFinite { field, actual: v });
            }
        }
        self.validate_features()
    }

    /// The feature set's constraints at this rate and FFT length.
    fn validate_features(&self) -> Result<(), ConfigError> {
        let set = &self.features;
        let bad = |field, index: usize, actual: f32, rule| {
            Err(ConfigError::Feature { field, index: index as u32, actual, rule })
        };
        if set.families.0 & !Families::KNOWN.0 != 0 {
            return Err(ConfigError::UnknownFamilies { bits: set.families.0 });
        }
        if set.families.contains(Families::BANDS) {
            let n = usize::from(set.band_count);
            if n == 0 || n > MAX_BANDS {
                return bad(
                    "band_count",
                    0,
                    f32::from(set.band_count),
                    "must be 1..=20 when bands are selected",
                );
            }
            let nyquist = self.sample_rate_hz as f32 / 2.0;
            let edges = set.bands();
            if !(edges[0].is_finite() && edges[0] > 0.0) {
                return bad("band_edges_hz", 0, edges[0], "the first band edge must be finite and > 0 Hz");
            }
            for (i, w) in edges.windows(2).enumerate() {
                if !(w[1].is_finite() && w[1] > w[0]) {
                    return bad("band_edges_hz", i + 1, w[1], "band edges must increase");
                }
                if w[1] > nyquist {
                    return bad(
                        "band_edges_hz",
                        i + 1,
                        w[1],
                        "band edges must not exceed sample_rate_hz / 2",
                    );
                }
                let (lo, hi) = band_bins(w[0], w[1], i + 2 == edges.len(), self.sample_rate_hz, self.fft_len);
                if lo > hi {
                    return bad(
                        "band_edges_hz",
                        i,
                        w[0],
                        "every band must hold at least one FFT bin (bins are sample_rate_hz / fft_len apart)",
                    );
                }
            }
        }
        if set.families.contains(Families::ORDERS) {
            let n = usize::from(set.order_count);
            if n == 0 || n > MAX_ORDERS {
                return bad(
                    "order_count",
                    0,
                    f32::from(set.order_count),
                    "must be 1..=8 when orders are selected",
                );
            }
            for (i, &p) in set.order_list().iter().enumerate() {
                if !(p.is_finite() && p > 0.0 && p <= 1000.0) {
                    return bad("orders", i, p, "orders must be finite, > 0 and <= 1000");
                }
            }
            let hw = set.order_half_width;
            if !(hw.is_finite() && (0.0..=0.5).contains(&hw)) {
                return bad("order_half_width", 0, hw, "must be finite and in 0..=0.5 orders");
            }
        }
        if set.families.contains(Families::ENVELOPE) {
            self.validate_envelope()?;
        }
        if set.per_channel() == 0 {
            return Err(ConfigError::NoFeatures);
        }
        Ok(())
    }

    /// The envelope path's constraints (see [`FeatureSet`]'s `env_*` fields).
    fn validate_envelope(&self) -> Result<(), ConfigError> {
        let set = &self.features;
        let bad = |field, index: usize, actual: f32, rule| {
            Err(ConfigError::Feature { field, index: index as u32, actual, rule })
        };
        let [lo, hi] = set.env_band_hz;
        let nyquist = self.sample_rate_hz as f32 / 2.0;
        if !(lo.is_finite() && lo > 0.0) {
            return bad("env_band_hz", 0, lo, "the envelope band's low edge must be finite and > 0 Hz");
        }
        if !(hi.is_finite() && hi > lo && hi <= nyquist) {
            return bad(
                "env_band_hz",
                1,
                hi,
                "the envelope band's high edge must be above the low edge and <= sample_rate_hz / 2",
            );
        }
        let d = u32::from(set.env_decimation);
        if !(1..=256).contains(&d) {
            return bad("env_decimation", 0, d as f32, "must be 1..=256");
        }
        let n = u32::from(set.env_fft_len);
        if !n.is_power_of_two() || !(64..=u32::from(ENV_FFT_LEN_MAX)).contains(&n) {
            // The text states ENV_FFT_LEN_MAX (a `&'static str`: no formatting in no_std).
            return bad("env_fft_len", 0, n as f32, "must be a power of two from 64 to 4096");
        }
        let lane_half = d * n / 2;
        if !lane_half.is_multiple_of(self.fft_len / 2) || !self.hop_len_samples.is_multiple_of(lane_half) {
            return bad(
                "env_fft_len",
                0,
                n as f32,
                "env_decimation x env_fft_len / 2 must be a multiple of fft_len / 2 and divide hop_len_samples",
            );
        }
        if self.window_len_samples < 2 * lane_half {
            return bad(
                "env_fft_len",
                0,
                n as f32,
                "the window must hold env_decimation x env_fft_len samples",
            );
        }
        if usize::from(set.env_order_count) > MAX_ENV_ORDERS {
            return bad("env_order_count", 0, f32::from(set.env_order_count), "must be 0..=4");
        }
        for (i, &p) in set.env_order_list().iter().enumerate() {
            if !(p.is_finite() && p > 0.0 && p <= 1000.0) {
                return bad("env_orders", i, p, "envelope orders must be finite, > 0 and <= 1000");
            }
        }
        Ok(())
    }
}

/// FFT bins `lo..=hi` of the band `[lo_hz, hi_hz)` (`last`: `hi_hz` included): the bins `k >= 1`
/// with `lo_hz <= k·fs/N < hi_hz`. `lo > hi` when the band holds no bin. Computed in `f64`.
pub(crate) fn band_bins(lo_hz: f32, hi_hz: f32, last: bool, sample_rate_hz: u32, fft_len: u32) -> (u32, u32) {
    let per_hz = f64::from(fft_len) / f64::from(sample_rate_hz);
    let half = fft_len / 2;
    let lo = libm::ceil(f64::from(lo_hz) * per_hz).clamp(1.0, f64::from(half) + 1.0) as u32;
    let x = f64::from(hi_hz) * per_hz;
    let hi_f = if last { libm::floor(x) } else { libm::ceil(x) - 1.0 };
    let hi = hi_f.clamp(0.0, f64::from(half)) as u32;
    (lo, hi)
}

/// The extractor's settings as a person configures them: window and hop in seconds, the other
/// fields as in [`ExtractorConfig`], the feature set as families with bands in Hz. They do not
/// depend on the sample rate (a pipeline config's `features:` section; the data contract gives
/// the rate): [`ExtractorConfig::from_settings`] converts them at a rate, the one
/// seconds-to-samples conversion of avm.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(deny_unknown_fields))]
pub struct FeatureSettings {
    /// Window length in seconds: a whole number (1..=[`MAX_HOPS_PER_WINDOW`]) of hops, and at
    /// least `fft_len` samples. Or give `window_samples` (then this is 0 or the same length).
    #[cfg_attr(feature = "serde", serde(default))]
    pub window_s: f64,
    /// Hop in seconds: a whole multiple (at least 1) of `fft_len / 2` samples. Or give
    /// `hop_samples` (then this is 0 or the same length).
    #[cfg_attr(feature = "serde", serde(default))]
    pub hop_s: f64,
    /// Window length in samples, instead of `window_s` (rates such as 64.5 kHz make seconds
    /// awkward to type exactly).
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub window_samples: Option<u32>,
    /// Hop in samples, instead of `hop_s`.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub hop_samples: Option<u32>,
    /// Welch segment length: a power of two in [`FFT_LEN_RANGE`].
    pub fft_len: u32,
    /// Smallest half-width of the order bands in FFT bins, `0..=64`.
    pub order_band_bins: u32,
    /// Longest gap repaired by interpolation, samples: `0..=fft_len / 2 - 2`.
    pub max_gap_samples: u32,
    /// Which samples are spikes: `off`, `isolated` or `k_sigma` ([`SpikePolicy`]).
    #[cfg_attr(feature = "serde", serde(default = "default_spike_policy"))]
    pub spike_policy: SpikePolicy,
    /// `k` of the k-sigma spike rule: finite and `> 0`.
    pub spike_k_sigma: f32,
    /// Sensor full scale in g: finite and `> 0`.
    pub full_scale_g: f32,
    /// Highest plausible shaft speed in rpm: finite and `> 0`.
    pub max_shaft_speed_rpm: f32,
    /// The feature families, in any order (the frame's order is fixed): `time`, `rates`,
    /// `bands`, `orders`, `shape`, `speed`.
    #[cfg_attr(feature = "serde", serde(default = "default_families"))]
    pub families: heapless::Vec<Family, 6>,
    /// How band and order energies are reported: `db` or `fraction`.
    #[cfg_attr(feature = "serde", serde(default = "default_scale"))]
    pub scale: SpectralScale,
    /// The bands.
    #[cfg_attr(feature = "serde", serde(default))]
    pub bands: BandSettings,
    /// Shaft orders for the `orders` family (1..=8 values in (0, 1000]).
    #[cfg_attr(feature = "serde", serde(default = "default_orders"))]
    pub orders: heapless::Vec<f32, MAX_ORDERS>,
    /// Half-width of each order band in orders, `0..=0.5`.
    #[cfg_attr(feature = "serde", serde(default = "default_order_half_width"))]
    pub order_half_width: f32,
    /// The envelope path of the `envelope` family.
    #[cfg_attr(feature = "serde", serde(default))]
    pub envelope: EnvelopeSettings,
}

/// The envelope (demodulation) path: band-pass around a structural resonance, squared envelope,
/// decimation, envelope spectrum at bearing defect orders.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(deny_unknown_fields))]
pub struct EnvelopeSettings {
    /// Band-pass edges `[lo, hi]` in Hz; absent: `[0.15·fs, fs/2.56]`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub band_hz: Option<[f32; 2]>,
    /// Decimation of the envelope, `1..=256` (default 8).
    #[cfg_attr(feature = "serde", serde(default = "default_env_decimation"))]
    pub decimation: u16,
    /// Envelope Welch segment length (default 512).
    #[cfg_attr(feature = "serde", serde(default = "default_env_fft_len"))]
    pub fft_len: u16,
    /// Envelope orders, e.g. a bearing's BPFO, BPFI, BSF, FTF as multiples of the shaft speed
    /// (0..=4 values; default none: envelope RMS and kurtosis only).
    #[cfg_attr(feature = "serde", serde(default))]
    pub orders: heapless::Vec<f32, MAX_ENV_ORDERS>,
}

impl Default for EnvelopeSettings {
    fn default() -> Self {
        EnvelopeSettings {
            band_hz: None,
            decimation: default_env_decimation(),
            fft_len: default_env_fft_len(),
            orders: heapless::Vec::new(),
        }
    }
}

fn default_env_decimation() -> u16 {
    8
}
fn default_env_fft_len() -> u16 {
    512
}

/// A feature family as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Family {
    /// [`Families::TIME`].
    Time,
    /// [`Families::RATES`].
    Rates,
    /// [`Families::BANDS`].
    Bands,
    /// [`Families::ORDERS`].
    Orders,
    /// [`Families::SHAPE`].
    Shape,
    /// [`Families::SPEED`].
    Speed,
    /// [`Families::ENVELOPE`].
    Envelope,
}

impl Family {
    /// Every family, in the order of [`Families::ALL`].
    pub const ALL: [Family; 7] = [
        Family::Time,
        Family::Rates,
        Family::Bands,
        Family::Orders,
        Family::Shape,
        Family::Speed,
        Family::Envelope,
    ];

    /// The bit of [`Families`].
    pub const fn bit(self) -> Families {
        match self {
            Family::Time => Families::TIME,
            Family::Rates => Families::RATES,
            Family::Bands => Families::BANDS,
            Family::Orders => Families::ORDERS,
            Family::Shape => Families::SHAPE,
            Family::Speed => Families::SPEED,
            Family::Envelope => Families::ENVELOPE,
        }
    }
}

/// The bands of the `bands` family: explicit edges, or `count` log-spaced bands from `low_hz`
/// to `high_hz`.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(deny_unknown_fields))]
pub struct BandSettings {
    /// Number of log-spaced bands, `1..=20` (ignored when `edges_hz` is given).
    #[cfg_attr(feature = "serde", serde(default = "default_band_count"))]
    pub count: u8,
    /// Lowest edge in Hz; absent: 4 FFT bins (`4·fs/fft_len`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub low_hz: Option<f32>,
    /// Highest edge in Hz; absent: the anti-aliasing limit `fs/2.56`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub high_hz: Option<f32>,
    /// Explicit, increasing edges in Hz (2..=21 values): band `i` is `[edges[i], edges[i+1])`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub edges_hz: heapless::Vec<f32, { MAX_BANDS + 1 }>,
}

impl Default for BandSettings {
    fn default() -> Self {
        BandSettings {
            count: default_band_count(),
            low_hz: None,
            high_hz: None,
            edges_hz: heapless::Vec::new(),
        }
    }
}

fn default_spike_policy() -> SpikePolicy {
    SpikePolicy::DEFAULT
}
fn default_families() -> heapless::Vec<Family, 6> {
    [Family::Time, Family::Rates, Family::Bands, Family::Orders, Family::Shape, Family::Speed]
        .into_iter()
        .collect()
}
fn default_scale() -> SpectralScale {
    SpectralScale::Db
}
fn default_band_count() -> u8 {
    16
}
fn default_orders() -> heapless::Vec<f32, MAX_ORDERS> {
    [0.5, 1.0, 2.0, 3.0].into_iter().collect()
}
fn default_order_half_width() -> f32 {
    0.05
}

impl Default for FeatureSettings {
    /// The project defaults (those of [`ExtractorConfig::default_at`]).
    fn default() -> FeatureSettings {
        FeatureSettings {
            window_s: 10.0,
            hop_s: 5.0,
            window_samples: None,
            hop_samples: None,
            fft_len: 1024,
            order_band_bins: 1,
            max_gap_samples: 8,
            spike_policy: default_spike_policy(),
            spike_k_sigma: 3.0,
            full_scale_g: 1000.0,
            max_shaft_speed_rpm: 30_000.0,
            families: default_families(),
            scale: default_scale(),
            bands: BandSettings::default(),
            orders: default_orders(),
            order_half_width: default_order_half_width(),
            envelope: EnvelopeSettings::default(),
        }
    }
}

impl FeatureSettings {
    /// Window and hop in seconds at `sample_rate_hz`: from `window_samples` / `hop_samples`
    /// where given (the seconds field must then be 0 or the same length), else the seconds.
    pub fn lengths_s(&self, sample_rate_hz: u32) -> Result<(f64, f64), SettingsError> {
        let fs = f64::from(sample_rate_hz);
        let pick = |field: &'static str, s: f64, n: Option<u32>| match n {
            None => Ok(s),
            Some(0) => Err(SettingsError::Samples { field, samples: 0, seconds: s }),
            Some(n) => {
                let from_n = f64::from(n) / fs;
                if s != 0.0 && libm::fabs(s - from_n) > 1e-9 * from_n {
                    Err(SettingsError::Samples { field, samples: n, seconds: s })
                } else {
                    Ok(from_n)
                }
            }
        };
        Ok((pick("window", self.window_s, self.window_samples)?, pick("hop", self.hop_s, self.hop_samples)?))
    }

    /// The feature set these settings name at `sample_rate_hz` and `fft_len` (log-spaced band
    /// edges resolved here, in `f64`, rounded once to `f32`). The result is checked by
    /// [`ExtractorConfig::validate`].
    pub fn feature_set(&self, sample_rate_hz: u32, fft_len: u32) -> Result<FeatureSet, ConfigError> {
        let mut set = FeatureSet::EMPTY;
        for f in &self.families {
            set.families = set.families.with(f.bit());
        }
        set.scale = self.scale;
        if set.families.contains(Families::BANDS) {
            let b = &self.bands;
            if !b.edges_hz.is_empty() {
                if b.edges_hz.len() < 2 {
                    return Err(ConfigError::Feature {
                        field: "bands.edges_hz",
                        index: 0,
                        actual: b.edges_hz.len() as f32,
                        rule: "needs at least two edges (one band)",
                    });
                }
                set.band_count = (b.edges_hz.len() - 1) as u8;
                set.band_edges_hz[..b.edges_hz.len()].copy_from_slice(&b.edges_hz);
            } else {
                let n = usize::from(b.count);
                if n == 0 || n > MAX_BANDS {
                    return Err(ConfigError::Feature {
                        field: "bands.count",
                        index: 0,
                        actual: f32::from(b.count),
                        rule: "must be 1..=20",
                    });
                }
                let fs = f64::from(sample_rate_hz);
                let lo = b.low_hz.map_or(4.0 * fs / f64::from(fft_len), f64::from);
                let hi = b.high_hz.map_or(fs / 2.56, f64::from);
                if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
                    return Err(ConfigError::Feature {
                        field: "bands.low_hz",
                        index: 0,
                        actual: lo as f32,
                        rule: "low_hz must be finite, > 0 and below high_hz",
                    });
                }
                set.band_count = b.count;
                for (i, e) in set.band_edges_hz[..=n].iter_mut().enumerate() {
                    *e = (lo * libm::pow(hi / lo, i as f64 / n as f64)) as f32;
                }
                // The ends exactly as given (pow can be an ulp off).
                set.band_edges_hz[0] = lo as f32;
                set.band_edges_hz[n] = hi as f32;
            }
        }
        if set.families.contains(Families::ORDERS) || set.families.contains(Families::ENVELOPE) {
            set.order_half_width = self.order_half_width;
        }
        if set.families.contains(Families::ORDERS) {
            set.order_count = self.orders.len() as u8;
            set.orders[..self.orders.len()].copy_from_slice(&self.orders);
        }
        if set.families.contains(Families::ENVELOPE) {
            let e = &self.envelope;
            let fs = sample_rate_hz as f32;
            set.env_band_hz = e.band_hz.unwrap_or([0.15 * fs, fs / 2.56]);
            set.env_decimation = e.decimation;
            set.env_fft_len = e.fft_len;
            set.env_order_count = e.orders.len() as u8;
            set.env_orders[..e.orders.len()].copy_from_slice(&e.orders);
        }
        Ok(set)
    }
}

/// Why [`FeatureSettings`] make no valid [`ExtractorConfig`] at a rate. The messages name the
/// settings' own fields (`hop_s`, ...) with the valid range and, for the durations, the nearest
/// valid value.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum SettingsError {
    /// `fft_len` is not a power of two in [`FFT_LEN_RANGE`].
    FftLen {
        /// Value found.
        actual: u32,
    },
    /// `hop_s` is not a whole multiple (at least 1) of `fft_len / 2` samples.
    Hop {
        /// Value found, s.
        hop_s: f64,
        /// `fft_len / 2`, samples.
        unit_samples: u32,
        /// The same in seconds.
        unit_s: f64,
        /// The rate, Hz.
        sample_rate_hz: u32,
        /// The nearest valid hop, s.
        nearest_s: f64,
        /// The same in samples (`hop_samples`).
        nearest_samples: u32,
        /// `hop_samples`, when the hop was given in samples.
        given_samples: Option<u32>,
    },
    /// `window_s` is not a whole number of hops in range, or shorter than `fft_len`.
    Window {
        /// Value found, s.
        window_s: f64,
        /// Fewest hops allowed (`fft_len` samples at least).
        min_hops: f64,
        /// Most hops allowed.
        max_hops: f64,
        /// The hop, s.
        hop_s: f64,
        /// `fft_len`.
        fft_len: u32,
        /// The nearest valid window, s.
        nearest_s: f64,
        /// The same in samples (`window_samples`).
        nearest_samples: u32,
        /// `window_samples`, when the window was given in samples.
        given_samples: Option<u32>,
    },
    /// `window_samples` / `hop_samples` is 0, or disagrees with a non-zero `window_s` / `hop_s`.
    Samples {
        /// `window` or `hop`.
        field: &'static str,
        /// The samples given.
        samples: u32,
        /// The seconds given.
        seconds: f64,
    },
    /// `max_gap_samples` is above `fft_len / 2 - 2`.
    MaxGap {
        /// Value found.
        actual: u32,
        /// Largest allowed.
        max: u32,
    },
    /// `order_band_bins` is above 64.
    OrderBand {
        /// Value found.
        actual: u32,
    },
    /// A band of `bands` holds no FFT bin, or reaches above the Nyquist frequency.
    Band {
        /// Band index (0-based).
        index: u32,
        /// Its lower edge, Hz.
        lo_hz: f32,
        /// Its upper edge, Hz.
        hi_hz: f32,
        /// FFT bin spacing `sample_rate_hz / fft_len`, Hz.
        bin_hz: f64,
        /// `sample_rate_hz / 2`, Hz.
        nyquist_hz: f64,
    },
    /// A float setting is not finite and positive.
    NotPositiveFinite {
        /// The field.
        field: &'static str,
        /// Value found.
        actual: f32,
    },
    /// The converted config breaks a constraint of [`ExtractorConfig::validate`].
    Config(ConfigError),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SettingsError::FftLen { actual } => write!(
                f,
                "fft_len = {actual} must be a power of two from {} to {}",
                FFT_LEN_RANGE.start(),
                FFT_LEN_RANGE.end()
            ),
            SettingsError::Hop {
                hop_s,
                unit_samples,
                unit_s,
                sample_rate_hz,
                nearest_s,
                nearest_samples,
                given_samples,
            } => {
                match given_samples {
                    Some(n) => write!(f, "hop_samples = {n} ({hop_s} s)")?,
                    None => write!(f, "hop_s = {hop_s} s")?,
                }
                write!(
                    f,
                    " must be a whole multiple (at least 1) of fft_len / 2 = {unit_samples} samples \
                     = {unit_s} s at {sample_rate_hz} Hz; nearest valid value: {nearest_s} s \
                     (hop_samples: {nearest_samples})"
                )
            }
            SettingsError::Window {
                window_s,
                min_hops,
                max_hops,
                hop_s,
                fft_len,
                nearest_s,
                nearest_samples,
                given_samples,
            } => {
                match given_samples {
                    Some(n) => write!(f, "window_samples = {n} ({window_s} s)")?,
                    None => write!(f, "window_s = {window_s} s")?,
                }
                write!(
                    f,
                    " must be a whole number of hops from {min_hops} to {max_hops} \
                     (hop_s = {hop_s} s), i.e. {} s to {} s in steps of {hop_s} s, and at least fft_len = {fft_len} \
                     samples; nearest valid value: {nearest_s} s (window_samples: {nearest_samples})",
                    min_hops * hop_s,
                    max_hops * hop_s
                )
            }
            SettingsError::Samples { field, samples: 0, .. } => {
                write!(f, "{field}_samples = 0 must be at least 1")
            }
            SettingsError::Samples { field, samples, seconds } => write!(
                f,
                "{field}_samples = {samples} and {field}_s = {seconds} s give two different lengths: \
                 give one of them (or {field}_s: 0)"
            ),
            SettingsError::MaxGap { actual, max } => {
                write!(f, "max_gap_samples = {actual} must be from 0 to fft_len / 2 - 2 = {max}")
            }
            SettingsError::OrderBand { actual } => {
                write!(f, "order_band_bins = {actual} must be from 0 to 64")
            }
            SettingsError::Band { index, lo_hz, hi_hz, bin_hz, nyquist_hz } => {
                if f64::from(hi_hz) > nyquist_hz {
                    write!(
                        f,
                        "bands: band {index} ({lo_hz} Hz to {hi_hz} Hz) reaches above half the sample rate \
                         ({nyquist_hz} Hz): lower high_hz or the last of edges_hz"
                    )
                } else {
                    write!(
                        f,
                        "bands: band {index} ({lo_hz} Hz to {hi_hz} Hz) holds no FFT bin (bins are {bin_hz} Hz \
                         apart: sample rate / fft_len); use fewer bands, a higher low_hz, wider edges_hz or a \
                         longer fft_len"
                    )
                }
            }
            SettingsError::NotPositiveFinite { field, actual } => {
                write!(f, "{field} = {actual} must be a finite number > 0")
            }
            SettingsError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for SettingsError {}

impl ExtractorConfig {
    /// Converts `s` at `sample_rate_hz`: the hop becomes the whole multiple of `fft_len / 2`
    /// samples it names (within 1e-6 of one), the window the whole number of hops. Every
    /// constraint is checked in the settings' terms first ([`SettingsError`], with the nearest
    /// valid value), then [`ExtractorConfig::validate`] runs on the result.
    pub fn from_settings(sample_rate_hz: u32, s: &FeatureSettings) -> Result<ExtractorConfig, SettingsError> {
        let fs = f64::from(sample_rate_hz);
        let fft = s.fft_len;
        if !fft.is_power_of_two() || !FFT_LEN_RANGE.contains(&fft) {
            return Err(SettingsError::FftLen { actual: fft });
        }
        let half = f64::from(fft / 2);
        let (window_s, hop_s) = s.lengths_s(sample_rate_hz)?;
        // hop: a whole multiple k >= 1 of fft_len / 2 samples.
        let unit_s = half / fs;
        let hop_k = hop_s / unit_s;
        let hop_k_round = libm::round(hop_k);
        if !(hop_k.is_finite() && hop_k_round >= 1.0 && libm::fabs(hop_k - hop_k_round) <= 1e-6)
            || hop_k_round * half > f64::from(u32::MAX)
        {
            let k = if hop_k.is_finite() { hop_k_round.clamp(1.0, 1e6) } else { 1.0 };
            return Err(SettingsError::Hop {
                hop_s,
                unit_samples: fft / 2,
                unit_s,
                sample_rate_hz,
                nearest_s: k * unit_s,
                nearest_samples: (k * half) as u32,
                given_samples: s.hop_samples,
            });
        }
        let hop_samples = (hop_k_round * half) as u32;
        let hop_s = f64::from(hop_samples) / fs;
        // window: 1..=MAX_HOPS_PER_WINDOW hops, and at least fft_len samples.
        let max_hops = MAX_HOPS_PER_WINDOW as f64;
        let min_hops = libm::ceil(f64::from(fft) / f64::from(hop_samples)).max(1.0);
        let w_k = window_s / hop_s;
        let w_k_round = libm::round(w_k);
        if !(w_k.is_finite()
            && libm::fabs(w_k - w_k_round) <= 1e-6
            && w_k_round >= min_hops
            && w_k_round <= max_hops)
        {
            let k = if w_k.is_finite() { w_k_round.clamp(min_hops, max_hops) } else { min_hops };
            return Err(SettingsError::Window {
                window_s,
                min_hops,
                max_hops,
                hop_s,
                fft_len: fft,
                nearest_s: k * hop_s,
                nearest_samples: (k * f64::from(hop_samples)) as u32,
                given_samples: s.window_samples,
            });
        }
        if s.max_gap_samples > fft / 2 - 2 {
            return Err(SettingsError::MaxGap { actual: s.max_gap_samples, max: fft / 2 - 2 });
        }
        if s.order_band_bins > 64 {
            return Err(SettingsError::OrderBand { actual: s.order_band_bins });
        }
        for (field, v) in [
            ("spike_k_sigma", s.spike_k_sigma),
            ("full_scale_g", s.full_scale_g),
            ("max_shaft_speed_rpm", s.max_shaft_speed_rpm),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(SettingsError::NotPositiveFinite { field, actual: v });
            }
        }
        let cfg = ExtractorConfig {
            sample_rate_hz,
            window_len_samples: (w_k_round as u32) * hop_samples,
            hop_len_samples: hop_samples,
            fft_len: fft,
            order_band_bins: s.order_band_bins,
            max_gap_samples: s.max_gap_samples,
            spike_policy: s.spike_policy,
            spike_k_sigma: s.spike_k_sigma,
            full_scale_g: s.full_scale_g,
            max_shaft_speed_rpm: s.max_shaft_speed_rpm,
            features: s.feature_set(sample_rate_hz, fft).map_err(SettingsError::Config)?,
        };
        // The bands in the settings' words (the edges may have been derived from count/low/high).
        let edges = cfg.features.bands();
        let nyquist_hz = f64::from(sample_rate_hz) / 2.0;
        for (i, w) in edges.windows(2).enumerate() {
            if !(w[0].is_finite() && w[1].is_finite() && w[1] > w[0]) {
                break; // edges that do not increase: `validate` below says so in its own words
            }
            let (lo, hi) = band_bins(w[0], w[1], i + 2 == edges.len(), sample_rate_hz, fft);
            if lo > hi || f64::from(w[1]) > nyquist_hz {
                return Err(SettingsError::Band {
                    index: i as u32,
                    lo_hz: w[0],
                    hi_hz: w[1],
                    bin_hz: f64::from(sample_rate_hz) / f64::from(fft),
                    nyquist_hz,
                });
            }
        }
        cfg.validate().map_err(SettingsError::Config)?;
        Ok(cfg)
    }
}

fn whole_samples(field: &'static str, seconds: f64, rate_hz: u32) -> Result<u32, ConfigError> {
    let samples = seconds * f64::from(rate_hz);
    let rounded = libm::round(samples);
    if !samples.is_finite() || samples <= 0.0 || rounded > f64::from(u32::MAX) {
        return Err(ConfigError::NotWholeSamples { field, seconds, sample_rate_hz: rate_hz });
    }
    if libm::fabs(samples - rounded) > 1e-6 {
        return Err(ConfigError::NotWholeSamples { field, seconds, sample_rate_hz: rate_hz });
    }
    Ok(rounded as u32)
}

/// A configuration constraint that does not hold. Each variant names the field, the
/// constraint and the value found.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `field` must lie in `min..=max`.
    OutOfRange {
        /// The field (or ratio of fields) that is out of range.
        field: &'static str,
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
        /// Value found.
        actual: u32,
    },
    /// `field` must be a non-zero whole multiple of `multiple` (the value of `of`).
    NotMultiple {
        /// The field that is not a multiple.
        field: &'static str,
        /// Value found.
        actual: u32,
        /// What it must be a multiple of.
        of: &'static str,
        /// The value of `of`.
        multiple: u32,
    },
    /// `fft_len` must be a power of two in [`FFT_LEN_RANGE`].
    FftLen {
        /// Value found.
        actual: u32,
    },
    /// A duration in seconds does not give a whole, positive number of samples.
    NotWholeSamples {
        /// `window_s` or `hop_s`.
        field: &'static str,
        /// Duration given.
        seconds: f64,
        /// Sample rate it was converted at.
        sample_rate_hz: u32,
    },
    /// `field` must be finite and strictly positive.
    NotPositiveFinite {
        /// The field.
        field: &'static str,
        /// Value found.
        actual: f32,
    },
    /// A feature-set parameter breaks `rule`.
    Feature {
        /// The field (`band_edges_hz`, `orders`, ...).
        field: &'static str,
        /// Position within a list field (0 otherwise).
        index: u32,
        /// Value found.
        actual: f32,
        /// The constraint.
        rule: &'static str,
    },
    /// The feature set names families this build does not know (a newer bundle).
    UnknownFamilies {
        /// The family bits found.
        bits: u8,
    },
    /// The feature set selects no feature.
    NoFeatures,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::OutOfRange { field, min, max, actual } => {
                write!(f, "{field} must be in {min}..={max}, got {actual}")
            }
            ConfigError::NotMultiple { field, actual, of, multiple } => {
                write!(f, "{field} must be a non-zero whole multiple of {of} ({multiple}), got {actual}")
            }
            ConfigError::FftLen { actual } => write!(
                f,
                "fft_len must be a power of two in {}..={}, got {actual}",
                FFT_LEN_RANGE.start(),
                FFT_LEN_RANGE.end()
            ),
            ConfigError::NotWholeSamples { field, seconds, sample_rate_hz } => write!(
                f,
                "{field} = {seconds} s at {sample_rate_hz} Hz must be a whole, positive number of samples"
            ),
            ConfigError::NotPositiveFinite { field, actual } => {
                write!(f, "{field} must be finite and > 0, got {actual}")
            }
            ConfigError::Feature { field, index, actual, rule } => {
                write!(f, "{field}[{index}] = {actual}: {rule}")
            }
            ConfigError::UnknownFamilies { bits } => write!(
                f,
                "feature families 0b{bits:08b} include some this build cannot compute (it knows 0b{:08b})",
                Families::KNOWN.0
            ),
            ConfigError::NoFeatures => {
                write!(f, "the feature set selects no feature: name at least one family")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_at_fleet_rate_are_valid() {
        let c = ExtractorConfig::default_at(2048).unwrap();
        assert_eq!(c.window_len_samples, 20_480);
        assert_eq!(c.hop_len_samples, 10_240);
        assert_eq!(c.hops_per_window(), 2);
        assert_eq!(c.window_s(), 10.0);
        assert_eq!(c.hop_s(), 5.0);
    }

    #[test]
    fn window_must_be_whole_number_of_hops() {
        let mut c = ExtractorConfig::default_at(2048).unwrap();
        c.window_len_samples = 15_360 + 512;
        let e = c.validate().unwrap_err();
        assert_eq!(
            e,
            ConfigError::NotMultiple {
                field: "window_len_samples",
                actual: 15_872,
                of: "hop_len_samples",
                multiple: 10_240
            }
        );
        let msg = std::format!("{e}");
        assert!(msg.contains("whole multiple of hop_len_samples (10240)"), "{msg}");
    }

    #[test]
    fn hop_must_align_with_welch_segments() {
        // 12 kHz with 1 s hops: 12000 is not a multiple of 512.
        let e = ExtractorConfig::from_seconds(12_000, 2.0, 1.0).unwrap_err();
        assert!(matches!(e, ConfigError::NotMultiple { field: "hop_len_samples", multiple: 512, .. }));
    }

    #[test]
    fn family_names_and_bits_are_one_list() {
        // A family added to the enum must get a bit (`Family::bit` is an exhaustive match) and a
        // place in both lists, or KNOWN would refuse it in every bundle.
        assert_eq!(Family::ALL.len(), Families::ALL.len());
        for (i, (f, b)) in Family::ALL.iter().zip(Families::ALL).enumerate() {
            assert_eq!(f.bit(), b, "{f:?}");
            assert_eq!(b.0, 1 << i, "one bit per family, in order");
        }
        assert_eq!(Families::KNOWN.0, (1u8 << Families::ALL.len()) - 1);
    }

    #[test]
    fn rejects_bad_fft_len_and_fractional_samples() {
        let mut c = ExtractorConfig::default_at(2048).unwrap();
        c.fft_len = 1000;
        assert_eq!(c.validate(), Err(ConfigError::FftLen { actual: 1000 }));
        c.fft_len = FFT_LEN_MAX * 2;
        assert_eq!(c.validate(), Err(ConfigError::FftLen { actual: FFT_LEN_MAX * 2 }));
        c.fft_len = 128;
        assert_eq!(c.validate(), Err(ConfigError::FftLen { actual: 128 }));
        let e = ExtractorConfig::from_seconds(2048, 10.0001, 5.0).unwrap_err();
        assert!(matches!(e, ConfigError::NotWholeSamples { field: "window_s", .. }));
        let e = ExtractorConfig::from_seconds(2048, f64::NAN, 5.0).unwrap_err();
        assert!(matches!(e, ConfigError::NotWholeSamples { field: "window_s", .. }));
    }

    #[test]
    fn rejects_long_max_gap_and_bad_floats() {
        let mut c = ExtractorConfig::default_at(2048).unwrap();
        c.max_gap_samples = 511;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::OutOfRange { field: "max_gap_samples", max: 510, .. })
        ));
        let mut c = ExtractorConfig::default_at(2048).unwrap();
        c.spike_k_sigma = f32::NAN;
        assert!(matches!(c.validate(), Err(ConfigError::NotPositiveFinite { field: "spike_k_sigma", .. })));
        let mut c = ExtractorConfig::default_at(2048).unwrap();
        c.window_len_samples = 10_240 * 7;
        assert!(matches!(c.validate(), Err(ConfigError::OutOfRange { max: 6, actual: 7, .. })));
    }

    #[test]
    fn default_bands_are_log_spaced_to_the_anti_aliasing_limit() {
        let c = ExtractorConfig::default_at(2048).unwrap();
        let e = c.features.bands();
        assert_eq!(e.len(), 17);
        assert_eq!((e[0], e[16]), (8.0, 800.0)); // 4 bins of 2 Hz; 2048 / 2.56
        let ratio = e[1] / e[0];
        for w in e.windows(2) {
            assert!((w[1] / w[0] / ratio - 1.0).abs() < 1e-5);
        }
        assert_eq!(c.features.per_channel(), 33);
    }

    #[test]
    fn bands_without_a_bin_and_bad_orders_are_refused_with_the_rule() {
        let s = FeatureSettings {
            bands: BandSettings {
                count: 20,
                low_hz: Some(1.0),
                high_hz: Some(30.0),
                edges_hz: heapless::Vec::new(),
            },
            ..FeatureSettings::default()
        };
        let e = ExtractorConfig::from_settings(2048, &s).unwrap_err();
        let msg = std::format!("{e}");
        assert!(
            msg.starts_with("bands: band 0 (1 Hz to ") && msg.contains("holds no FFT bin (bins are 2 Hz"),
            "{msg}"
        );
        let s = FeatureSettings {
            bands: BandSettings {
                edges_hz: [10.0, 100.0, 2000.0].into_iter().collect(),
                ..BandSettings::default()
            },
            ..FeatureSettings::default()
        };
        let msg = std::format!("{}", ExtractorConfig::from_settings(2048, &s).unwrap_err());
        assert!(
            msg.contains("band 1 (100 Hz to 2000 Hz) reaches above half the sample rate (1024 Hz)"),
            "{msg}"
        );
        // Decreasing edges are called that, not "holds no FFT bin".
        let s = FeatureSettings {
            bands: BandSettings {
                edges_hz: [100.0, 50.0, 200.0].into_iter().collect(),
                ..BandSettings::default()
            },
            ..FeatureSettings::default()
        };
        let msg = std::format!("{}", ExtractorConfig::from_settings(2048, &s).unwrap_err());
        assert!(msg.contains("band edges must increase") && !msg.contains("no FFT bin"), "{msg}");
        let s = FeatureSettings { orders: [0.5, -1.0].into_iter().collect(), ..FeatureSettings::default() };
        let msg = std::format!("{}", ExtractorConfig::from_settings(2048, &s).unwrap_err());
        assert!(msg.contains("orders[1] = -1"), "{msg}");
        let s = FeatureSettings { families: heapless::Vec::new(), ..FeatureSettings::default() };
        assert!(matches!(
            ExtractorConfig::from_settings(2048, &s),
            Err(SettingsError::Config(ConfigError::NoFeatures))
        ));
        let mut c = ExtractorConfig::default_at(2048).unwrap();
        c.features.band_edges_hz[16] = 1100.0; // above fs/2
        assert!(std::format!("{}", c.validate().unwrap_err()).contains("sample_rate_hz / 2"));
    }
}
