//! [`Detector::parse`]: checks a bundle and returns a view over it, and the view's verdicts.

use super::{
    ALERT_LATCH, AssessError, BUNDLE_FORMAT_VERSION, BundleError, HEADER_BYTES, MAGIC, NAME_BYTES,
    PHASE_ENTRY_BYTES, PHASE_NO_VERDICT, crc32, field,
};
use crate::alert::AlertPolicy;
use crate::config::{ConfigError, ExtractorConfig};
use crate::features::{
    FEATURE_SCHEMA_VERSION, Families, FeatureFrame, FeatureSet, MAX_BANDS, MAX_ENV_ORDERS, MAX_ORDERS,
    SpectralScale,
};
use crate::model::{MAX_LAYER_WIDTH, ModelError, Network, f32_at, u16_at, u32_at};
use crate::phase::{MAX_PHASES, PHASE_UNKNOWN};
use crate::sanitize::SpikePolicy;
use crate::scaler::scale_value;

/// A zero-padded UTF-8 name field.
pub(super) fn name_at(bytes: &[u8], at: usize) -> Result<&str, BundleError> {
    let field = &bytes[at..at + NAME_BYTES];
    let len = field.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
    if field[len..].iter().any(|&b| b != 0) {
        return Err(BundleError::BadName { offset: at });
    }
    core::str::from_utf8(&field[..len]).map_err(|_| BundleError::BadName { offset: at })
}

/// A verdict on one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// The frame's window index.
    pub window_index: u32,
    /// Reconstruction MSE of the scaled features.
    pub score: f32,
    /// The threshold it was compared with.
    pub threshold: f32,
    /// The window had no unrepaired gap.
    pub valid: bool,
    /// The window gets a verdict: `valid`, and its phase is not flagged "no verdict".
    pub judged: bool,
    /// The window's phase code ([`crate::phase::PHASE_UNKNOWN`] when not given).
    pub phase: u8,
    /// `judged && score > threshold`.
    pub alarm: bool,
}

impl Verdict {
    /// The verdict rule, written once for the firmware and the ground: a window of phase
    /// `code` whose table entry is `phase` (none: unknown phase, `global_threshold` applies) is
    /// judged when `valid` and its phase is not flagged "no verdict", and alarms when judged
    /// and `score > threshold`.
    pub fn judge(
        window_index: u32,
        score: f32,
        valid: bool,
        code: u8,
        phase: Option<&PhaseEntry<'_>>,
        global_threshold: f32,
    ) -> Verdict {
        let (threshold, no_verdict) =
            phase.map_or((global_threshold, false), |p| (p.threshold, p.no_verdict));
        let judged = valid && !no_verdict;
        Verdict {
            window_index,
            score,
            threshold,
            valid,
            judged,
            phase: if phase.is_some() { code } else { PHASE_UNKNOWN },
            alarm: judged && score > threshold,
        }
    }
}

/// One entry of the bundle's phase table (its index is the phase code).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhaseEntry<'s> {
    /// The phase's name, as the data contract spells it.
    pub name: &'s str,
    /// Its threshold (the global one when it had too few calibration windows).
    pub threshold: f32,
    /// Windows in this phase get no verdict (and so never alarm).
    pub no_verdict: bool,
}

/// A checked view of a detector bundle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detector<'a> {
    bytes: &'a [u8],
    config: ExtractorConfig,
    channels: usize,
    features: usize,
    threshold: f32,
    version: [u16; 3],
    names_at: usize,
    scaler_at: usize,
    network: Network<'a>,
    phases_at: usize,
    phases: usize,
    alert: AlertPolicy,
}

impl<'a> Detector<'a> {
    /// Checks `bytes` (see the module docs) and returns a view over it.
    pub fn parse(bytes: &'a [u8]) -> Result<Detector<'a>, BundleError> {
        if bytes.len() < HEADER_BYTES + 4 {
            return Err(BundleError::Truncated { needed: HEADER_BYTES + 4, actual: bytes.len() });
        }
        if bytes[field::MAGIC] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let format = u16_at(bytes, field::FORMAT.start);
        if format != BUNDLE_FORMAT_VERSION {
            return Err(BundleError::FormatVersion { found: format, supported: BUNDLE_FORMAT_VERSION });
        }
        let declared = u32_at(bytes, field::LENGTH.start) as usize;
        if declared > bytes.len() {
            return Err(BundleError::Truncated { needed: declared, actual: bytes.len() });
        }
        if declared != bytes.len() {
            return Err(BundleError::Length { declared, actual: bytes.len() });
        }
        let body = bytes.len() - 4;
        let stored = u32_at(bytes, body);
        let computed = crc32(&bytes[..body]);
        if stored != computed {
            return Err(BundleError::Checksum { stored, computed });
        }
        let schema = u16_at(bytes, field::SCHEMA.start);
        if schema != FEATURE_SCHEMA_VERSION {
            return Err(BundleError::SchemaVersion { found: schema, expected: FEATURE_SCHEMA_VERSION });
        }
        let [rate, window, hop, fft, band, gap] = field::CONFIG_U32.map(|r| u32_at(bytes, r.start));
        let [spike, full_scale, max_rpm] = field::CONFIG_F32.map(|r| f32_at(bytes, r.start));
        let bad_code = |field: &'static str, at: usize| {
            BundleError::Config(ConfigError::Feature {
                field,
                index: 0,
                actual: f32::from(bytes[at]),
                rule: "unknown code",
            })
        };
        let scale = match bytes[field::SCALE] {
            0 => SpectralScale::Db,
            1 => SpectralScale::Fraction,
            _ => return Err(bad_code("scale", field::SCALE)),
        };
        let spike_policy = SpikePolicy::from_code(bytes[field::SPIKE_POLICY])
            .ok_or_else(|| bad_code("spike_policy", field::SPIKE_POLICY))?;
        if bytes[field::BAND_COUNT] as usize > MAX_BANDS
            || bytes[field::ORDER_COUNT] as usize > MAX_ORDERS
            || bytes[field::ENV_ORDER_COUNT] as usize > MAX_ENV_ORDERS
        {
            return Err(BundleError::Config(ConfigError::Feature {
                field: "band_count / order_count",
                index: 0,
                actual: f32::from(
                    bytes[field::BAND_COUNT]
                        .max(bytes[field::ORDER_COUNT])
                        .max(bytes[field::ENV_ORDER_COUNT]),
                ),
                rule: "above this build's capacity (20 bands, 8 orders, 4 envelope orders)",
            }));
        }
        let mut set = FeatureSet {
            families: Families(bytes[field::FAMILIES]),
            scale,
            band_count: bytes[field::BAND_COUNT],
            order_count: bytes[field::ORDER_COUNT],
            order_half_width: f32_at(bytes, field::ORDER_HALF_WIDTH.start),
            ..FeatureSet::EMPTY
        };
        for (i, e) in set.band_edges_hz.iter_mut().enumerate() {
            *e = f32_at(bytes, field::BAND_EDGES.start + 4 * i);
        }
        for (i, o) in set.orders.iter_mut().enumerate() {
            *o = f32_at(bytes, field::ORDERS.start + 4 * i);
        }
        set.env_band_hz = field::ENV_BAND.map(|r| f32_at(bytes, r.start));
        set.env_decimation = u16_at(bytes, field::ENV_DECIMATION.start);
        set.env_fft_len = u16_at(bytes, field::ENV_FFT_LEN.start);
        set.env_order_count = bytes[field::ENV_ORDER_COUNT];
        for (i, o) in set.env_orders.iter_mut().enumerate() {
            *o = f32_at(bytes, field::ENV_ORDERS.start + 4 * i);
        }
        let config = ExtractorConfig {
            sample_rate_hz: rate,
            window_len_samples: window,
            hop_len_samples: hop,
            fft_len: fft,
            order_band_bins: band,
            max_gap_samples: gap,
            spike_policy,
            spike_k_sigma: spike,
            full_scale_g: full_scale,
            max_shaft_speed_rpm: max_rpm,
            features: set,
        };
        config.validate().map_err(BundleError::Config)?;
        let (ch, nf) = (u16_at(bytes, field::N_CHANNELS.start), u16_at(bytes, field::N_FEATURES.start));
        let (channels, features) = (usize::from(ch), usize::from(nf));
        let per_channel = config.features.per_channel();
        if channels == 0 || features != channels * per_channel || features > MAX_LAYER_WIDTH {
            return Err(BundleError::FeatureCount {
                channels: ch,
                features: nf,
                per_channel: per_channel as u16,
            });
        }
        let layers = usize::from(u16_at(bytes, field::N_LAYERS.start));
        let phases = usize::from(u16_at(bytes, field::N_PHASES.start));
        let threshold = f32_at(bytes, field::THRESHOLD.start);
        if !threshold.is_finite() {
            return Err(BundleError::BadThreshold { offset: field::THRESHOLD.start });
        }
        let version = field::VERSION.map(|r| u16_at(bytes, r.start));
        let flags = bytes[field::ALERT_FLAGS];
        if flags & !ALERT_LATCH != 0 {
            return Err(BundleError::Reserved { offset: field::ALERT_FLAGS });
        }
        if bytes[field::RESERVED_ALERT].iter().any(|&b| b != 0) {
            return Err(BundleError::Reserved { offset: field::RESERVED_ALERT.start });
        }
        let alert = AlertPolicy {
            raise_count: bytes[field::RAISE_COUNT],
            raise_window: bytes[field::RAISE_WINDOW],
            clear_count: bytes[field::CLEAR_COUNT],
            clear_fraction: f32_at(bytes, field::CLEAR_FRACTION.start),
            latch: flags & ALERT_LATCH != 0,
        };
        alert.validate().map_err(BundleError::Policy)?;
        if phases > MAX_PHASES {
            return Err(BundleError::TooManyPhases { count: phases });
        }
        let names_at = HEADER_BYTES;
        let scaler_at = names_at + channels * NAME_BYTES;
        let network_at = scaler_at + 8 * features;
        if network_at > body {
            return Err(BundleError::Truncated { needed: network_at + 4, actual: bytes.len() });
        }
        for c in 0..channels {
            name_at(bytes, names_at + c * NAME_BYTES)?;
        }
        for i in 0..features {
            let m = f32_at(bytes, scaler_at + 4 * i);
            let s = f32_at(bytes, scaler_at + 4 * (features + i));
            if !(m.is_finite() && s.is_finite() && s >= 0.0) {
                return Err(BundleError::BadScaler { index: i });
            }
        }
        let (network, rest) = Network::parse(&bytes[network_at..body], layers).map_err(BundleError::Model)?;
        if network.inputs() != features {
            return Err(BundleError::NetworkInputs { network: network.inputs(), features });
        }
        let phases_at = body - rest.len();
        let needed = phases * PHASE_ENTRY_BYTES;
        if rest.len() < needed {
            return Err(BundleError::Truncated {
                needed: bytes.len() - rest.len() + needed,
                actual: bytes.len(),
            });
        }
        if rest.len() > needed {
            return Err(BundleError::TrailingBytes { count: rest.len() - needed });
        }
        for p in 0..phases {
            let at = phases_at + p * PHASE_ENTRY_BYTES;
            name_at(bytes, at)?;
            if !f32_at(bytes, at + NAME_BYTES).is_finite() {
                return Err(BundleError::BadThreshold { offset: at + NAME_BYTES });
            }
            let flags_at = at + NAME_BYTES + 4;
            if bytes[flags_at] & !PHASE_NO_VERDICT != 0 || bytes[flags_at + 1..flags_at + 4] != [0; 3] {
                return Err(BundleError::Reserved { offset: flags_at });
            }
        }
        Ok(Detector {
            bytes,
            config,
            channels,
            features,
            threshold,
            version,
            names_at,
            scaler_at,
            network,
            phases_at,
            phases,
            alert,
        })
    }

    /// [`Detector::parse`], then checks that the bundle fits a build of `CH` vibration channels
    /// whose extractor holds FFTs of up to `FFT_MAX` points (`FeatureExtractor<CH, FFT_MAX>`):
    /// the firmware's checks, made once at parse time ([`BundleError::Capacity`]).
    pub fn parse_for<const CH: usize, const FFT_MAX: usize>(
        bytes: &'a [u8],
    ) -> Result<Detector<'a>, BundleError> {
        let d = Detector::parse(bytes)?;
        let build = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        if d.channels != CH {
            return Err(BundleError::Capacity {
                what: "vibration channels",
                bundle: build(d.channels),
                build: build(CH),
            });
        }
        if d.config.fft_len as usize > FFT_MAX {
            return Err(BundleError::Capacity {
                what: "fft_len",
                bundle: d.config.fft_len,
                build: build(FFT_MAX),
            });
        }
        Ok(d)
    }

    /// The extractor config the model was trained with: build the firmware's
    /// [`crate::FeatureExtractor`] from it.
    pub fn config(&self) -> ExtractorConfig {
        self.config
    }

    /// Vibration channels, in feature order.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Name of channel `i`.
    pub fn channel_name(&self, i: usize) -> Option<&'a str> {
        (i < self.channels).then(|| name_at(self.bytes, self.names_at + i * NAME_BYTES).unwrap_or(""))
    }

    /// Features per window (`channels * config().features.per_channel()`).
    pub fn features(&self) -> usize {
        self.features
    }

    /// The global alarm threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The detector's version (`major, minor, patch`).
    pub fn version(&self) -> [u16; 3] {
        self.version
    }

    /// The bundle's CRC-32.
    pub fn checksum(&self) -> u32 {
        u32_at(self.bytes, self.bytes.len() - 4)
    }

    /// The bundle's size in bytes.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The network.
    pub fn network(&self) -> Network<'a> {
        self.network
    }

    /// Phases in the phase table (codes `0..phase_count()`).
    pub fn phase_count(&self) -> usize {
        self.phases
    }

    /// The phase table's entry for code `code`.
    pub fn phase(&self, code: usize) -> Option<PhaseEntry<'a>> {
        let at = self.phases_at + code * PHASE_ENTRY_BYTES;
        (code < self.phases).then(|| PhaseEntry {
            name: name_at(self.bytes, at).unwrap_or(""),
            threshold: f32_at(self.bytes, at + NAME_BYTES),
            no_verdict: self.bytes[at + NAME_BYTES + 4] & PHASE_NO_VERDICT != 0,
        })
    }

    /// The code of the phase named `name` (a host-side lookup: on board, phases arrive as codes).
    pub fn phase_code(&self, name: &str) -> Option<u8> {
        (0..self.phases).find(|&i| self.phase(i).is_some_and(|p| p.name == name)).map(|i| i as u8)
    }

    /// The threshold for the phase named `phase`: its own if calibrated, else the global one.
    pub fn threshold_for_phase(&self, phase: &str) -> f32 {
        self.phase_code(phase)
            .and_then(|c| self.phase(usize::from(c)))
            .map_or(self.threshold, |p| p.threshold)
    }

    /// The alert policy the verdicts feed ([`crate::alert::Alerter`]).
    pub fn alert_policy(&self) -> AlertPolicy {
        self.alert
    }

    /// z-scores `features` into `out` (both of length [`Detector::features`]).
    pub fn scale(&self, features: &[f32], out: &mut [f32]) -> Result<(), ModelError> {
        if features.len() != self.features || out.len() != self.features {
            return Err(ModelError::InputLength {
                expected: self.features,
                actual: if features.len() != self.features { features.len() } else { out.len() },
            });
        }
        for (i, (o, &x)) in out.iter_mut().zip(features).enumerate() {
            let m = f32_at(self.bytes, self.scaler_at + 4 * i);
            let s = f32_at(self.bytes, self.scaler_at + 4 * (self.features + i));
            *o = scale_value(x, m, s);
        }
        Ok(())
    }

    /// The anomaly score of an unscaled feature vector.
    pub fn score(&self, features: &[f32]) -> Result<f32, ModelError> {
        let mut z = [0.0f32; MAX_LAYER_WIDTH];
        let z = &mut z[..self.features];
        self.scale(features, z)?;
        self.network.score(z)
    }

    /// Scores a frame and compares with the global threshold (no phase known).
    pub fn assess<const CH: usize>(&self, frame: &FeatureFrame<CH>) -> Result<Verdict, AssessError> {
        self.assess_with(frame, self.threshold)
    }

    /// Scores a frame of phase `code` (see [`crate::phase`]): the phase's threshold applies,
    /// and a phase flagged "no verdict" gives none; [`PHASE_UNKNOWN`] uses the global
    /// threshold. Another code outside the table is refused.
    pub fn assess_in_phase<const CH: usize>(
        &self,
        frame: &FeatureFrame<CH>,
        code: u8,
    ) -> Result<Verdict, AssessError> {
        let v = self.assess(frame)?;
        self.judge(v.window_index, v.score, v.valid, code)
    }

    /// The verdict on a window already scored ([`Verdict::judge`] with this bundle's phase
    /// table): what [`Detector::assess_in_phase`] returns for a frame with that score.
    pub fn judge(
        &self,
        window_index: u32,
        score: f32,
        valid: bool,
        code: u8,
    ) -> Result<Verdict, AssessError> {
        let entry = if code == PHASE_UNKNOWN {
            None
        } else {
            Some(self.phase(usize::from(code)).ok_or(AssessError::Phase { code, phases: self.phases })?)
        };
        Ok(Verdict::judge(window_index, score, valid, code, entry.as_ref(), self.threshold))
    }

    /// Scores a frame and compares with `threshold` (a phase's, say).
    pub fn assess_with<const CH: usize>(
        &self,
        frame: &FeatureFrame<CH>,
        threshold: f32,
    ) -> Result<Verdict, AssessError> {
        if CH != self.channels {
            return Err(AssessError::Channels { expected: self.channels, actual: CH });
        }
        let mut flat = [0.0f32; MAX_LAYER_WIDTH];
        let n = frame.flat_len();
        if n != self.features || n > MAX_LAYER_WIDTH {
            return Err(AssessError::Model(ModelError::InputLength { expected: self.features, actual: n }));
        }
        for (d, v) in flat.iter_mut().zip(frame.flat()) {
            *d = v;
        }
        let score = self.score(&flat[..n]).map_err(AssessError::Model)?;
        Ok(Verdict::judge(frame.window_index, score, frame.valid, PHASE_UNKNOWN, None, threshold))
    }
}
