//! The feature schema: which features exist, their order, names and units, and the frame that
//! carries them.
//!
//! A channel's features are those of the families its [`FeatureSet`] selects, always in this
//! order (each family's members in the order listed):
//!
//! | family | features (name suffix, unit) |
//! |---|---|
//! | [`Families::TIME`] | `mean_g`, `std_g`, `rms_g`, `peak_g`, `p2p_g` (g), `crest_factor`, `kurtosis`, `skewness` (1) |
//! | [`Families::RATES`] | `rms_roc_g_per_s` (g/s), `kurtosis_roc_per_s` (1/s) |
//! | [`Families::BANDS`] | `band00_db` … (dB re 1 g²) or `band00_frac` … (1), one per band of [`FeatureSet::band_edges_hz`] |
//! | [`Families::ORDERS`] | `order1_db`, `order0p5_db`, … (dB re 1 g²) or `order1_frac` … (1), one per order of [`FeatureSet::orders`] |
//! | [`Families::ENVELOPE`] | `env_rms_g` (g), `env_kurtosis` (1), `env_order5p415_db` … (dB re 1 g²) or `_frac`, one per envelope order |
//! | [`Families::SHAPE`] | `centroid_hz` (Hz), `flatness` (1) |
//! | [`Families::SPEED`] | `shaft_speed_rpm` (rpm) |
//!
//! The formulas, with their conventions (DC, Nyquist, band edges, floors), are stated on
//! [`Feature`] and restated from textbook numpy/scipy in `core-nostd/reference/features_ref.py`.

use core::fmt::{self, Write as _};

/// Version of the feature definitions and their order. Any change to a formula, to the order,
/// or to a sanitising rule that can change a number bumps it; artifacts record the version they
/// were trained on and readers refuse a mismatch.
///
/// v3: configurable families ([`FeatureSet`]): band energies, order energies at configurable
/// orders with a width in orders, spectral shape, peak-to-peak and skewness; the spike rule is a
/// policy ([`crate::SpikePolicy`]).
pub const FEATURE_SCHEMA_VERSION: u16 = 3;

/// Most spectral bands a [`FeatureSet`] may define.
pub const MAX_BANDS: usize = 20;
/// Most shaft orders a [`FeatureSet`] may define.
pub const MAX_ORDERS: usize = 8;
/// Most envelope-spectrum orders (bearing defect orders) a [`FeatureSet`] may define.
pub const MAX_ENV_ORDERS: usize = 4;
/// Most features one channel can have (every family, full band and order lists).
pub const MAX_FEATURES_PER_CHANNEL: usize = TimeKind::ALL.len()
    + RateKind::ALL.len()
    + MAX_BANDS
    + MAX_ORDERS
    + EnvKind::ALL.len()
    + MAX_ENV_ORDERS
    + ShapeKind::ALL.len()
    + 1;

/// Floor added to every band and order energy before taking decibels: 1e-12 g² (-120 dB re
/// 1 g²), so a band with no energy has a finite feature.
pub const ENERGY_FLOOR_G2: f64 = 1e-12;

/// The feature families a [`FeatureSet`] selects (a bit set; the bundle stores the bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Families(pub u8);

impl Families {
    /// Time-domain statistics ([`TimeKind`]).
    pub const TIME: Families = Families(1);
    /// Rates of change between consecutive windows ([`RateKind`]); needs `TIME`.
    pub const RATES: Families = Families(2);
    /// Spectral band energies (Welch, fixed bands in Hz).
    pub const BANDS: Families = Families(4);
    /// Energies at shaft orders (Welch, bands that follow the shaft speed).
    pub const ORDERS: Families = Families(8);
    /// Spectral shape ([`ShapeKind`]).
    pub const SHAPE: Families = Families(16);
    /// The operating point: shaft speed.
    pub const SPEED: Families = Families(32);
    /// Envelope (demodulation) analysis ([`EnvKind`], envelope-spectrum orders). Needs an
    /// extractor with envelope capacity (`ENV_MAX > 0`).
    pub const ENVELOPE: Families = Families(64);
    /// Every family this build knows, one bit each, in bit order: the one list that
    /// [`Families::KNOWN`] (what a bundle may select) is derived from.
    pub const ALL: [Families; 7] = [
        Families::TIME,
        Families::RATES,
        Families::BANDS,
        Families::ORDERS,
        Families::SHAPE,
        Families::SPEED,
        Families::ENVELOPE,
    ];
    /// Every bit this build knows: the union of [`Families::ALL`].
    pub const KNOWN: Families = {
        let mut bits = 0;
        let mut i = 0;
        while i < Families::ALL.len() {
            bits |= Families::ALL[i].0;
            i += 1;
        }
        Families(bits)
    };

    /// True when every family of `other` is selected.
    pub const fn contains(self, other: Families) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    pub const fn with(self, other: Families) -> Families {
        Families(self.0 | other.0)
    }
}

/// How band and order energies are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
#[repr(u8)]
pub enum SpectralScale {
    /// `10·log10(E + 1e-12)`, dB re 1 g² ([`ENERGY_FLOOR_G2`]): levels, comparable across
    /// machines of one type.
    Db = 0,
    /// `E / E_total` (total over bins 1..=N/2), dimensionless in [0, 1]: the spectrum's shape,
    /// independent of the overall level.
    Fraction = 1,
}

/// Time-domain statistics of the sanitised window `x` of `n` samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimeKind {
    /// Arithmetic mean, g.
    MeanG = 0,
    /// Population standard deviation (ddof = 0), g.
    StdG = 1,
    /// Root mean square `sqrt(mean(x²))`, g.
    RmsG = 2,
    /// Largest absolute sample, g.
    PeakG = 3,
    /// `max(x) - min(x)`, g.
    P2pG = 4,
    /// Peak / RMS, dimensionless; 0 when RMS is 0.
    CrestFactor = 5,
    /// Pearson (non-excess) kurtosis `m4 / m2²`, dimensionless; 0 when the variance is 0.
    Kurtosis = 6,
    /// Skewness `m3 / m2^1.5` (population), dimensionless; 0 when the variance is 0.
    Skewness = 7,
}

impl TimeKind {
    /// In schema order.
    pub const ALL: [TimeKind; 8] = [
        TimeKind::MeanG,
        TimeKind::StdG,
        TimeKind::RmsG,
        TimeKind::PeakG,
        TimeKind::P2pG,
        TimeKind::CrestFactor,
        TimeKind::Kurtosis,
        TimeKind::Skewness,
    ];
}

/// Rates of change: `(value - value of the previous window) / hop_s`; 0 for the first window and
/// after an invalid one (see [`FeatureFrame::roc_valid`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RateKind {
    /// Of `rms_g`, g/s.
    RmsGPerS = 0,
    /// Of `kurtosis`, 1/s.
    KurtosisPerS = 1,
}

impl RateKind {
    /// In schema order.
    pub const ALL: [RateKind; 2] = [RateKind::RmsGPerS, RateKind::KurtosisPerS];
}

/// Envelope statistics. The envelope path: the sanitised signal through two cascaded
/// band-pass biquads (cookbook, 0 dB peak, centre `sqrt(lo·hi)`, bandwidth `log2(hi/lo)`
/// octaves), squared, through two cascaded low-pass biquads (Q = 1/√2) at `0.4·fs/D`, kept
/// every `D`-th sample (samples `D-1, 2D-1, ...` of the stream), then `a = sqrt(max(s, 0))`: the
/// envelope in g at `fs/D`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EnvKind {
    /// `sqrt(mean(a²))` over the window's envelope samples, g.
    RmsG = 0,
    /// Pearson kurtosis of `a`, dimensionless; 0 when its variance is 0.
    Kurtosis = 1,
}

impl EnvKind {
    /// In schema order.
    pub const ALL: [EnvKind; 2] = [EnvKind::RmsG, EnvKind::Kurtosis];
}

/// Spectral shape of the window's Welch spectrum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ShapeKind {
    /// Power-weighted mean frequency over bins 1..=N/2 of the summed Welch spectrum, Hz; 0 when
    /// the window has no AC energy.
    CentroidHz = 0,
    /// Spectral flatness (Wiener entropy): per segment `exp(mean(ln P')) / mean(P')` over bins
    /// 1..=N/2 with `P' = P + 1e-8·mean(P) + 1e-30` (an 80 dB floor below the mean, above the f32 FFT's noise), averaged over the window's segments; in
    /// (0, 1], 1 for white noise, near 0 for a pure tone.
    Flatness = 1,
}

impl ShapeKind {
    /// In schema order.
    pub const ALL: [ShapeKind; 2] = [ShapeKind::CentroidHz, ShapeKind::Flatness];
}

/// One feature of a channel, as a [`FeatureSet`] lays them out.
///
/// Band and order energies come from the window's Welch segments (length `N = fft_len`, hop
/// `N/2`, periodic Hann `w`, segments wholly inside the window): one-sided power
/// `P[k] = 2|X[k]|²` for `0 < k < N/2`, `P[N/2] = |X[N/2]|²`, DC (bin 0) in no band and in no
/// total. Energies are mean squares in g²: `E = Σ_segments Σ_{k∈band} P[k] / (S·N·Σw²)` with
/// `S` segments, so a sine of amplitude `A` inside one band gives `A²/2` there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// A time-domain statistic.
    Time(TimeKind),
    /// A rate of change.
    Rate(RateKind),
    /// Band `i` of [`FeatureSet::band_edges_hz`]: bins `k` with
    /// `lo ≤ k·fs/N < hi` (the last band also takes `k·fs/N = hi`), never bin 0.
    Band(u8),
    /// Order `i` of [`FeatureSet::orders`]: bins `k_p - b ..= k_p + b` clipped to `1..=N/2`, with
    /// `k_p = round(p·f·N/fs)`, `f` the segment's mean shaft speed in Hz, and
    /// `b = max(order_band_bins, round(half_width_orders·f·N/fs))`; empty when `k_p` is 0 or
    /// above `N/2`.
    Order(u8),
    /// An envelope statistic.
    Env(EnvKind),
    /// Envelope-spectrum energy at envelope order `i` of [`FeatureSet::env_orders`]: Welch
    /// segments of `env_fft_len` envelope samples (Hann, hop half a segment, wholly inside the
    /// window, DC excluded), bins and half-width as for [`Feature::Order`] at the envelope's rate,
    /// the shaft speed averaged over each segment; dB re 1 g² or fraction of the envelope
    /// spectrum's total.
    EnvOrder(u8),
    /// A spectral-shape measure.
    Shape(ShapeKind),
    /// Mean (held) shaft speed over the window, rpm.
    ShaftSpeedRpm,
}

/// Which features a channel computes, with their parameters: part of every
/// [`crate::ExtractorConfig`] and of every detector bundle, so a firmware refuses a bundle whose
/// features it cannot compute.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(deny_unknown_fields))]
pub struct FeatureSet {
    /// The families, in the fixed order of the [module table](self).
    pub families: Families,
    /// How band and order energies are reported.
    pub scale: SpectralScale,
    /// Number of bands (`1..=MAX_BANDS` with `BANDS`, else ignored).
    pub band_count: u8,
    /// Band edges in Hz, increasing: band `i` is `[edges[i], edges[i+1])`. The first edge is
    /// `> 0`, the last `<= fs/2`, and every band holds at least one FFT bin.
    pub band_edges_hz: [f32; MAX_BANDS + 1],
    /// Number of orders (`1..=MAX_ORDERS` with `ORDERS`, else ignored).
    pub order_count: u8,
    /// Shaft orders (multiples of the shaft frequency), each finite and in (0, 1000].
    pub orders: [f32; MAX_ORDERS],
    /// Half-width of each order band, in orders (finite, `0..=0.5`); the band is never narrower
    /// than `order_band_bins` bins either side. Also the envelope orders' half-width.
    pub order_half_width: f32,
    /// Envelope band-pass `[lo, hi]` in Hz: `0 < lo < hi <= fs/2`.
    pub env_band_hz: [f32; 2],
    /// Envelope decimation `D`, `1..=256`.
    pub env_decimation: u16,
    /// Envelope Welch segment length: a power of two, `64..=4096`, at most the extractor's
    /// `ENV_MAX` and `FFT_MAX`; `D·env_fft_len/2` must be a multiple of `fft_len/2` and divide
    /// the hop, and the window must hold `D·env_fft_len` samples.
    pub env_fft_len: u16,
    /// Number of envelope orders, `0..=MAX_ENV_ORDERS`.
    pub env_order_count: u8,
    /// Envelope orders (bearing defect orders, e.g. BPFO, BPFI, BSF, FTF as multiples of the
    /// shaft speed), each finite and in (0, 1000].
    pub env_orders: [f32; MAX_ENV_ORDERS],
}

impl FeatureSet {
    /// Nothing selected (what an unconfigured extractor holds).
    pub const EMPTY: FeatureSet = FeatureSet {
        families: Families(0),
        scale: SpectralScale::Db,
        band_count: 0,
        band_edges_hz: [0.0; MAX_BANDS + 1],
        order_count: 0,
        orders: [0.0; MAX_ORDERS],
        order_half_width: 0.0,
        env_band_hz: [0.0; 2],
        env_decimation: 0,
        env_fft_len: 0,
        env_order_count: 0,
        env_orders: [0.0; MAX_ENV_ORDERS],
    };

    /// Features per channel.
    pub fn per_channel(&self) -> usize {
        let f = self.families;
        let mut n = 0;
        if f.contains(Families::TIME) {
            n += TimeKind::ALL.len();
        }
        if f.contains(Families::RATES) {
            n += RateKind::ALL.len();
        }
        if f.contains(Families::BANDS) {
            n += usize::from(self.band_count);
        }
        if f.contains(Families::ORDERS) {
            n += usize::from(self.order_count);
        }
        if f.contains(Families::ENVELOPE) {
            n += EnvKind::ALL.len() + usize::from(self.env_order_count);
        }
        if f.contains(Families::SHAPE) {
            n += ShapeKind::ALL.len();
        }
        if f.contains(Families::SPEED) {
            n += 1;
        }
        n
    }

    /// The features of one channel, in order.
    pub fn iter(&self) -> impl Iterator<Item = Feature> + '_ {
        let f = self.families;
        let on = move |x: Families| f.contains(x);
        let time = TimeKind::ALL.iter().filter(move |_| on(Families::TIME)).map(|&k| Feature::Time(k));
        let rates = RateKind::ALL.iter().filter(move |_| on(Families::RATES)).map(|&k| Feature::Rate(k));
        let bands = (0..if on(Families::BANDS) { self.band_count } else { 0 }).map(Feature::Band);
        let orders = (0..if on(Families::ORDERS) { self.order_count } else { 0 }).map(Feature::Order);
        let env = EnvKind::ALL.iter().filter(move |_| on(Families::ENVELOPE)).map(|&k| Feature::Env(k));
        let env_orders =
            (0..if on(Families::ENVELOPE) { self.env_order_count } else { 0 }).map(Feature::EnvOrder);
        let shape = ShapeKind::ALL.iter().filter(move |_| on(Families::SHAPE)).map(|&k| Feature::Shape(k));
        let speed = on(Families::SPEED).then_some(Feature::ShaftSpeedRpm);
        time.chain(rates).chain(bands).chain(orders).chain(env).chain(env_orders).chain(shape).chain(speed)
    }

    /// Index of `feature` within a channel's block, if the set has it.
    pub fn index_of(&self, feature: Feature) -> Option<usize> {
        self.iter().position(|f| f == feature)
    }

    /// The active band edges (`band_count + 1` values).
    pub fn bands(&self) -> &[f32] {
        let n = if self.families.contains(Families::BANDS) { usize::from(self.band_count) + 1 } else { 0 };
        &self.band_edges_hz[..n.min(MAX_BANDS + 1)]
    }

    /// The active orders.
    pub fn order_list(&self) -> &[f32] {
        let n = if self.families.contains(Families::ORDERS) { usize::from(self.order_count) } else { 0 };
        &self.orders[..n.min(MAX_ORDERS)]
    }

    /// The active envelope orders.
    pub fn env_order_list(&self) -> &[f32] {
        let n =
            if self.families.contains(Families::ENVELOPE) { usize::from(self.env_order_count) } else { 0 };
        &self.env_orders[..n.min(MAX_ENV_ORDERS)]
    }

    /// Writes the name suffix of `feature` (unit included): `rms_g`, `band03_db`, `order1p5_frac`.
    pub fn write_suffix(&self, feature: Feature, w: &mut impl fmt::Write) -> fmt::Result {
        let scale = match self.scale {
            SpectralScale::Db => "db",
            SpectralScale::Fraction => "frac",
        };
        match feature {
            Feature::Time(k) => w.write_str(match k {
                TimeKind::MeanG => "mean_g",
                TimeKind::StdG => "std_g",
                TimeKind::RmsG => "rms_g",
                TimeKind::PeakG => "peak_g",
                TimeKind::P2pG => "p2p_g",
                TimeKind::CrestFactor => "crest_factor",
                TimeKind::Kurtosis => "kurtosis",
                TimeKind::Skewness => "skewness",
            }),
            Feature::Rate(RateKind::RmsGPerS) => w.write_str("rms_roc_g_per_s"),
            Feature::Rate(RateKind::KurtosisPerS) => w.write_str("kurtosis_roc_per_s"),
            Feature::Band(i) => write!(w, "band{i:02}_{scale}"),
            Feature::Order(i) => {
                let p = self.orders.get(usize::from(i)).copied().unwrap_or(0.0);
                w.write_str("order")?;
                write_decimal(w, p)?;
                write!(w, "_{scale}")
            }
            Feature::Env(EnvKind::RmsG) => w.write_str("env_rms_g"),
            Feature::Env(EnvKind::Kurtosis) => w.write_str("env_kurtosis"),
            Feature::EnvOrder(i) => {
                let p = self.env_orders.get(usize::from(i)).copied().unwrap_or(0.0);
                w.write_str("env_order")?;
                write_decimal(w, p)?;
                write!(w, "_{scale}")
            }
            Feature::Shape(ShapeKind::CentroidHz) => w.write_str("centroid_hz"),
            Feature::Shape(ShapeKind::Flatness) => w.write_str("flatness"),
            Feature::ShaftSpeedRpm => w.write_str("shaft_speed_rpm"),
        }
    }

    /// The unit of `feature` as written in schemas (`"1"` for dimensionless).
    pub fn unit(&self, feature: Feature) -> &'static str {
        match feature {
            Feature::Time(
                TimeKind::MeanG | TimeKind::StdG | TimeKind::RmsG | TimeKind::PeakG | TimeKind::P2pG,
            ) => "g",
            Feature::Rate(RateKind::RmsGPerS) => "g/s",
            Feature::Rate(RateKind::KurtosisPerS) => "1/s",
            Feature::Env(EnvKind::RmsG) => "g",
            Feature::Band(_) | Feature::Order(_) | Feature::EnvOrder(_) => match self.scale {
                SpectralScale::Db => "dB re 1 g^2",
                SpectralScale::Fraction => "1",
            },
            Feature::Shape(ShapeKind::CentroidHz) => "Hz",
            Feature::ShaftSpeedRpm => "rpm",
            _ => "1",
        }
    }
}

/// Writes `p` with up to three decimals, `.` spelled `p` and trailing zeros dropped: 1 -> `1`,
/// 0.5 -> `0p5`, 3.585 -> `3p585` (feature names use `.` between channel and feature).
fn write_decimal(w: &mut impl fmt::Write, p: f32) -> fmt::Result {
    let milli = libm::round(f64::from(p) * 1000.0).clamp(0.0, 1e9) as u64;
    write!(w, "{}", milli / 1000)?;
    let mut frac = milli % 1000;
    if frac == 0 {
        return Ok(());
    }
    let mut digits = 3;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    write!(w, "p{frac:0digits$}")
}

/// Longest feature name [`feature_name`] can build.
pub const MAX_FEATURE_NAME_LEN: usize = 64;

/// Builds `"{channel_name}.{suffix}"`, e.g. `vib_fan.rms_g`, without allocating.
///
/// Fails (returns `Err(fmt::Error)`) if the name would exceed [`MAX_FEATURE_NAME_LEN`] bytes.
pub fn feature_name(
    channel_name: &str,
    set: &FeatureSet,
    feature: Feature,
) -> Result<heapless::String<MAX_FEATURE_NAME_LEN>, fmt::Error> {
    let mut s = heapless::String::new();
    write!(s, "{channel_name}.")?;
    set.write_suffix(feature, &mut s)?;
    Ok(s)
}

/// What the sanitiser did to one channel's samples in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelQuality {
    /// Samples replaced by linear interpolation across a short gap.
    pub gap_filled: u32,
    /// Samples replaced as isolated spikes ([`crate::SpikePolicy`]).
    pub clipped: u32,
    /// Samples from gaps longer than `max_gap_samples` (held at the last good value). Any such
    /// sample makes the window invalid.
    pub unrepaired: u32,
    /// Shaft-speed samples that were implausible and replaced by the last plausible one.
    pub speed_held: u32,
}

impl ChannelQuality {
    /// Nothing done.
    pub const ZERO: ChannelQuality =
        ChannelQuality { gap_filled: 0, clipped: 0, unrepaired: 0, speed_held: 0 };

    /// Samples repaired in any way (gap-filled or clipped).
    pub fn repaired(&self) -> u32 {
        self.gap_filled + self.clipped
    }

    pub(crate) fn add(&mut self, o: &ChannelQuality) {
        self.gap_filled += o.gap_filled;
        self.clipped += o.clipped;
        self.unrepaired += o.unrepaired;
        self.speed_held += o.speed_held;
    }
}

/// Features of one window, for `CH` channels.
///
/// Every feature is finite for every input (non-finite inputs are gaps, see
/// [`crate::extractor`]). When `valid` is false the numbers are still computed (over held
/// values), but they describe a window with unrepaired gaps and should not be scored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureFrame<const CH: usize> {
    /// 0 for the first window of the stream, then +1 per hop.
    pub window_index: u32,
    /// Index (from the start of the stream) of the window's first sample.
    pub start_sample: u64,
    /// Features per channel ([`FeatureSet::per_channel`] of the extractor's set).
    pub per_channel: u16,
    /// Per-channel features in the set's order; entries from `per_channel` on are 0. Use
    /// [`channel`](Self::channel) or [`flat`](Self::flat).
    pub features: [[f32; MAX_FEATURES_PER_CHANNEL]; CH],
    /// Per-channel sanitiser counts for this window.
    pub quality: [ChannelQuality; CH],
    /// True when no channel has an unrepaired sample in this window.
    pub valid: bool,
    /// True when the rate-of-change features were computed against the previous window. False
    /// for the first window and for a window following an invalid one (the rates are then 0).
    pub roc_valid: bool,
}

impl<const CH: usize> FeatureFrame<CH> {
    /// The features of channel `c` (empty for a channel out of range).
    pub fn channel(&self, c: usize) -> &[f32] {
        let n = usize::from(self.per_channel).min(MAX_FEATURES_PER_CHANNEL);
        self.features.get(c).map_or(&[], |f| &f[..n])
    }

    /// The flat, channel-major feature vector: feature `k` of channel `c` at
    /// `c * per_channel + k`.
    pub fn flat(&self) -> impl Iterator<Item = f32> + '_ {
        (0..CH).flat_map(move |c| self.channel(c).iter().copied())
    }

    /// Number of values [`flat`](Self::flat) yields.
    pub fn flat_len(&self) -> usize {
        CH * usize::from(self.per_channel)
    }

    /// Feature `k` of channel `c`.
    pub fn get(&self, c: usize, k: usize) -> Option<f32> {
        self.channel(c).get(k).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn full() -> FeatureSet {
        let mut s = FeatureSet::EMPTY;
        s.families = Families::KNOWN;
        s.band_count = 2;
        s.band_edges_hz[..3].copy_from_slice(&[10.0, 100.0, 1000.0]);
        s.order_count = 3;
        s.orders[..3].copy_from_slice(&[1.0, 0.5, 3.5848]);
        s.env_order_count = 1;
        s.env_orders[0] = 5.4152;
        s
    }

    #[test]
    fn order_and_names_are_stable() {
        // The schema is part of every artifact: this list may only change with a version bump.
        let s = full();
        let names: Vec<_> = s.iter().map(|k| feature_name("vib_fan", &s, k).unwrap().to_string()).collect();
        assert_eq!(
            names,
            [
                "vib_fan.mean_g",
                "vib_fan.std_g",
                "vib_fan.rms_g",
                "vib_fan.peak_g",
                "vib_fan.p2p_g",
                "vib_fan.crest_factor",
                "vib_fan.kurtosis",
                "vib_fan.skewness",
                "vib_fan.rms_roc_g_per_s",
                "vib_fan.kurtosis_roc_per_s",
                "vib_fan.band00_db",
                "vib_fan.band01_db",
                "vib_fan.order1_db",
                "vib_fan.order0p5_db",
                "vib_fan.order3p585_db",
                "vib_fan.env_rms_g",
                "vib_fan.env_kurtosis",
                "vib_fan.env_order5p415_db",
                "vib_fan.centroid_hz",
                "vib_fan.flatness",
                "vib_fan.shaft_speed_rpm",
            ]
        );
        assert_eq!(s.per_channel(), names.len());
        assert_eq!(s.index_of(Feature::Time(TimeKind::RmsG)), Some(2));
        assert_eq!(s.index_of(Feature::Order(1)), Some(13));
        assert_eq!(FEATURE_SCHEMA_VERSION, 3);
        assert_eq!(MAX_FEATURES_PER_CHANNEL, 47);
    }

    #[test]
    fn families_select_and_keep_order() {
        let mut s = full();
        s.families = Families::SPEED.with(Families::BANDS);
        let got: Vec<_> = s.iter().collect();
        assert_eq!(got, [Feature::Band(0), Feature::Band(1), Feature::ShaftSpeedRpm]);
        assert_eq!(s.order_list(), &[] as &[f32]);
        assert_eq!(s.bands(), &[10.0, 100.0, 1000.0]);
        s.scale = SpectralScale::Fraction;
        assert_eq!(feature_name("a", &s, Feature::Band(1)).unwrap(), "a.band01_frac");
        assert_eq!(s.unit(Feature::Band(1)), "1");
    }

    #[test]
    fn too_long_name_is_an_error() {
        let long = "x".repeat(70);
        assert!(feature_name(&long, &full(), Feature::Time(TimeKind::MeanG)).is_err());
    }
}
