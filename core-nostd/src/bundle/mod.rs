//! The detector bundle (`detector.avmb`): everything the firmware needs to turn samples into
//! verdicts, in one checksummed byte string it can keep in flash and read in place.
//!
//! [`Detector::parse`] checks a `&[u8]` and returns a view over it: no copy, no allocation.
//! It refuses a bundle whose magic, format, length, checksum, feature schema, extractor
//! config, scaler or network is wrong, naming what failed ([`BundleError`]).
//!
//! # Layout (little-endian, byte offsets; the fixed header's ranges are [`field`])
//! | offset | field |
//! |---|---|
//! | 0 | magic `AVMB` |
//! | 4 | format version `u16` ([`BUNDLE_FORMAT_VERSION`]) |
//! | 6 | feature schema version `u16` (must equal [`FEATURE_SCHEMA_VERSION`](crate::FEATURE_SCHEMA_VERSION)) |
//! | 8 | total length in bytes `u32`, checksum included |
//! | 12 | extractor config: `sample_rate_hz, window_len_samples, hop_len_samples, fft_len, order_band_bins, max_gap_samples` as `u32`, then `spike_k_sigma, full_scale_g, max_shaft_speed_rpm` as `f32` |
//! | 48 | `n_channels u16, n_features u16, n_layers u16, n_phases u16` |
//! | 56 | global threshold `f32` |
//! | 60 | detector version `major, minor, patch u16`, `0u16` |
//! | 68 | feature-set descriptor: `families u8, scale u8, band_count u8, order_count u8, spike_policy u8`, 3 zero bytes, `order_half_width f32`, 21 band edges `f32` (Hz), 8 orders `f32` (unused entries 0), envelope band `lo, hi f32` (Hz), `env_decimation u16, env_fft_len u16, env_order_count u8`, 3 zero bytes, 4 envelope orders `f32` |
//! | 228 | alert policy ([`crate::alert::AlertPolicy`]): `raise_count, raise_window, clear_count u8`, flags `u8` (bit 0 latch), `clear_fraction f32`, 4 zero bytes |
//! | 240 | channel names: `n_channels` x [`NAME_BYTES`] (UTF-8, zero-padded) |
//! | | scaler: `n_features` means, then `n_features` stds (`f32`) |
//! | | network: `n_layers` layers ([`crate::model`]'s encoding) |
//! | | phase table, in phase-code order: `n_phases` (at most [`crate::MAX_PHASES`]) x ([`NAME_BYTES`] name, threshold `f32`, flags `u8` (bit 0 no verdict), 3 zero bytes) |
//! | end - 4 | CRC-32 (IEEE 802.3, as zlib's `crc32`) of every byte before it |
//!
//! # Verdicts
//! [`Detector::assess`] scales a [`FeatureFrame`](crate::FeatureFrame) with the bundle's scaler (exactly
//! [`crate::Scaler::apply`]'s arithmetic), scores it with the network and alarms when the
//! window is judged and `score > threshold`. An invalid window (unrepaired gaps) is scored but
//! never alarms: it has no verdict. [`Detector::assess_in_phase`] takes the window's phase
//! code ([`crate::phase`]): the phase table's threshold applies (by index), and a phase
//! flagged "no verdict" (a transient, say) gives no verdict either. The verdicts then feed the
//! bundle's alert policy ([`crate::alert::Alerter`]).

mod encode;
mod error;
mod parse;

pub use crate::phase::PHASE_UNKNOWN;
pub use encode::{BundleSpec, encode, encoded_len};
pub use error::{AssessError, BundleError, EncodeError};
pub use parse::{Detector, PhaseEntry, Verdict};

/// The bundle's first four bytes.
pub const MAGIC: [u8; 4] = *b"AVMB";
/// The layout version this build reads and writes.
/// v2: the feature-set descriptor after the fixed header (schema v3); v3: with the envelope
/// path's parameters; v4: the alert policy, and a phase table with flags.
pub const BUNDLE_FORMAT_VERSION: u16 = 4;
/// Bytes of the fixed header (before the channel names).
pub const HEADER_BYTES: usize = field::HEADER_END;

/// The fixed header's fields as byte ranges (as smoltcp's `wire` modules do): [`Detector::parse`]
/// reads and [`encode`] writes through these, so the layout in the module docs is written
/// once in code.
pub mod field {
    use core::ops::Range;

    /// Magic `AVMB`.
    pub const MAGIC: Range<usize> = 0..4;
    /// Format version, `u16`.
    pub const FORMAT: Range<usize> = 4..6;
    /// Feature schema version, `u16`.
    pub const SCHEMA: Range<usize> = 6..8;
    /// Total length in bytes, checksum included, `u32`.
    pub const LENGTH: Range<usize> = 8..12;
    /// The extractor config's integer fields, `u32` each, in [`crate::ExtractorConfig`]'s order:
    /// `sample_rate_hz, window_len_samples, hop_len_samples, fft_len, order_band_bins,
    /// max_gap_samples`.
    pub const CONFIG_U32: [Range<usize>; 6] = [12..16, 16..20, 20..24, 24..28, 28..32, 32..36];
    /// The extractor config's float fields, `f32` each: `spike_k_sigma, full_scale_g,
    /// max_shaft_speed_rpm`.
    pub const CONFIG_F32: [Range<usize>; 3] = [36..40, 40..44, 44..48];
    /// Channel count, `u16`.
    pub const N_CHANNELS: Range<usize> = 48..50;
    /// Feature count, `u16`.
    pub const N_FEATURES: Range<usize> = 50..52;
    /// Layer count, `u16`.
    pub const N_LAYERS: Range<usize> = 52..54;
    /// Per-phase threshold count, `u16`.
    pub const N_PHASES: Range<usize> = 54..56;
    /// Global threshold, `f32`.
    pub const THRESHOLD: Range<usize> = 56..60;
    /// Detector version `major, minor, patch`, `u16` each.
    pub const VERSION: [Range<usize>; 3] = [60..62, 62..64, 64..66];
    /// Reserved, zero.
    pub const RESERVED: Range<usize> = 66..68;
    /// Feature families ([`crate::features::Families`] bits), `u8`.
    pub const FAMILIES: usize = 68;
    /// Spectral scale ([`crate::features::SpectralScale`] code), `u8`.
    pub const SCALE: usize = 69;
    /// Band count, `u8`.
    pub const BAND_COUNT: usize = 70;
    /// Order count, `u8`.
    pub const ORDER_COUNT: usize = 71;
    /// Spike policy ([`crate::SpikePolicy`] code), `u8`.
    pub const SPIKE_POLICY: usize = 72;
    /// Reserved, zero.
    pub const RESERVED_SET: Range<usize> = 73..76;
    /// Order band half-width in orders, `f32`.
    pub const ORDER_HALF_WIDTH: Range<usize> = 76..80;
    /// Band edges, `f32` each (`MAX_BANDS + 1` of them).
    pub const BAND_EDGES: Range<usize> = 80..164;
    /// Orders, `f32` each (`MAX_ORDERS` of them).
    pub const ORDERS: Range<usize> = 164..196;
    /// Envelope band-pass edges `lo, hi`, `f32` each.
    pub const ENV_BAND: [Range<usize>; 2] = [196..200, 200..204];
    /// Envelope decimation, `u16`.
    pub const ENV_DECIMATION: Range<usize> = 204..206;
    /// Envelope segment length, `u16`.
    pub const ENV_FFT_LEN: Range<usize> = 206..208;
    /// Envelope order count, `u8`.
    pub const ENV_ORDER_COUNT: usize = 208;
    /// Reserved, zero.
    pub const RESERVED_ENV: Range<usize> = 209..212;
    /// Envelope orders, `f32` each (`MAX_ENV_ORDERS` of them).
    pub const ENV_ORDERS: Range<usize> = 212..228;
    /// Alert policy: `raise_count`, `u8`.
    pub const RAISE_COUNT: usize = 228;
    /// Alert policy: `raise_window`, `u8`.
    pub const RAISE_WINDOW: usize = 229;
    /// Alert policy: `clear_count`, `u8`.
    pub const CLEAR_COUNT: usize = 230;
    /// Alert policy flags, `u8`: [`super::ALERT_LATCH`].
    pub const ALERT_FLAGS: usize = 231;
    /// Alert policy: `clear_fraction`, `f32`.
    pub const CLEAR_FRACTION: Range<usize> = 232..236;
    /// Reserved, zero.
    pub const RESERVED_ALERT: Range<usize> = 236..240;
    /// End of the fixed header: the channel names start here.
    pub const HEADER_END: usize = RESERVED_ALERT.end;
}
/// Bytes of a channel or phase name field.
pub const NAME_BYTES: usize = 32;
/// Bytes of one phase-table entry: name, threshold `f32`, flags `u8`, 3 zero bytes.
pub const PHASE_ENTRY_BYTES: usize = NAME_BYTES + 8;
/// Alert flag: the alert latches until the flight ends.
pub const ALERT_LATCH: u8 = 1;
/// Phase flag: windows in this phase get no verdict.
pub const PHASE_NO_VERDICT: u8 = 1;

/// CRC-32 (IEEE 802.3, reflected, init and final xor `0xFFFF_FFFF`: zlib's `crc32`), from the
/// `crc` crate; [`CRC32`]`.digest()` hashes a stream in pieces.
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 of `bytes` ([`CRC32`]).
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

// The descriptor's list fields hold exactly the feature set's capacities.
const _: () =
    assert!(field::BAND_EDGES.end - field::BAND_EDGES.start == 4 * (crate::features::MAX_BANDS + 1));
const _: () = assert!(field::ORDERS.end - field::ORDERS.start == 4 * crate::features::MAX_ORDERS);
const _: () = assert!(field::ENV_ORDERS.end - field::ENV_ORDERS.start == 4 * crate::features::MAX_ENV_ORDERS);
const _: () = assert!(
    field::ENV_BAND[0].start == field::ORDERS.end && field::ENV_ORDERS.start == field::RESERVED_ENV.end
);
const _: () = assert!(
    field::BAND_EDGES.start == field::ORDER_HALF_WIDTH.end && field::ORDERS.start == field::BAND_EDGES.end
);
const _: () = assert!(field::RAISE_COUNT == field::ENV_ORDERS.end && field::CLEAR_FRACTION.start == 232);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExtractorConfig;
    use crate::features::{FEATURE_SCHEMA_VERSION, Families, FeatureFrame, MAX_FEATURES_PER_CHANNEL};

    #[test]
    fn crc32_matches_zlib() {
        // zlib.crc32(b"123456789") == 0xCBF43926, the standard check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn short_and_foreign_bytes_are_refused() {
        assert_eq!(
            Detector::parse(&[0u8; 10]),
            Err(BundleError::Truncated { needed: HEADER_BYTES + 4, actual: 10 })
        );
        assert_eq!(Detector::parse(&[0u8; 300]), Err(BundleError::BadMagic));
        let msg = std::format!("{}", BundleError::Checksum { stored: 1, computed: 2 });
        assert!(msg.contains("corrupted"), "{msg}");
    }

    extern crate std;
    use crate::model::{Activation, LayerSpec};
    use std::vec;
    use std::vec::Vec;

    /// The sample's config: time-domain, rates and speed: 11 features per channel.
    fn sample_cfg() -> ExtractorConfig {
        let mut cfg = ExtractorConfig::default_at(2048).unwrap();
        cfg.features.families = Families::TIME.with(Families::RATES).with(Families::SPEED);
        cfg
    }

    const POLICY: crate::AlertPolicy = crate::AlertPolicy {
        raise_count: 2,
        raise_window: 3,
        clear_count: 4,
        clear_fraction: 0.5,
        latch: true,
    };

    /// A 1-channel detector: 11 -> 3 -> 11.
    fn sample() -> Vec<u8> {
        sample_with(sample_cfg())
    }

    fn sample_with(cfg: ExtractorConfig) -> Vec<u8> {
        let mean: Vec<f32> = (0..11).map(|i| i as f32 * 0.5).collect();
        let mut std: Vec<f32> = (0..11).map(|i| 1.0 + i as f32 * 0.25).collect();
        std[3] = 0.0;
        let w1: Vec<f32> = (0..33).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1).collect();
        let w2: Vec<f32> = (0..33).map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.05).collect();
        let layers = [
            LayerSpec { d_in: 11, d_out: 3, activation: Activation::Relu, w: &w1, b: &[0.1, -0.2, 0.3] },
            LayerSpec { d_in: 3, d_out: 11, activation: Activation::Linear, w: &w2, b: &[0.01; 11] },
        ];
        let spec = BundleSpec {
            config: cfg,
            channels: &["vib_fan"],
            mean: &mean,
            std: &std,
            layers: &layers,
            threshold: 0.75,
            phases: &[
                PhaseEntry { name: "cruise", threshold: 0.5, no_verdict: false },
                PhaseEntry { name: "take_off", threshold: 1.5, no_verdict: false },
                PhaseEntry { name: "taxi", threshold: 0.75, no_verdict: true },
            ],
            alert: POLICY,
            version: [1, 2, 3],
        };
        let n = encoded_len(&spec).unwrap();
        let mut out = vec![0u8; n + 7];
        assert_eq!(encode(&spec, &mut out).unwrap(), n);
        assert_eq!(
            encode(&spec, &mut out[..n - 1]),
            Err(EncodeError::BufferTooSmall { needed: n, actual: n - 1 })
        );
        out.truncate(n);
        out
    }

    fn reseal(b: &mut [u8]) {
        let body = b.len() - 4;
        let crc = crc32(&b[..body]);
        b[body..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn round_trip() {
        let b = sample();
        let d = Detector::parse(&b).unwrap();
        assert_eq!(d.config(), sample_cfg());
        assert_eq!((d.channels(), d.features(), d.threshold(), d.version()), (1, 11, 0.75, [1, 2, 3]));
        assert_eq!(d.channel_name(0), Some("vib_fan"));
        assert_eq!(d.channel_name(1), None);
        assert_eq!(d.phase_count(), 3);
        assert_eq!(d.phase(1), Some(PhaseEntry { name: "take_off", threshold: 1.5, no_verdict: false }));
        assert_eq!(d.phase(3), None);
        assert_eq!(d.phase_code("taxi"), Some(2));
        assert_eq!(d.threshold_for_phase("cruise"), 0.5);
        assert_eq!(d.threshold_for_phase("climb"), 0.75);
        assert_eq!(d.alert_policy(), POLICY);
        assert_eq!(d.network().parameters(), 33 + 3 + 33 + 11);
        assert_eq!(d.checksum(), crc32(&b[..b.len() - 4]));
        // Scaling is exactly the Scaler's.
        let x: Vec<f32> = (0..11).map(|i| (i as f32).sin() * 3.0).collect();
        let mean: Vec<f32> = (0..11).map(|i| i as f32 * 0.5).collect();
        let mut std: Vec<f32> = (0..11).map(|i| 1.0 + i as f32 * 0.25).collect();
        std[3] = 0.0;
        let mut z = x.clone();
        crate::Scaler::new(&mean, &std).unwrap().apply(&mut z).unwrap();
        let mut z2 = vec![0.0; 11];
        d.scale(&x, &mut z2).unwrap();
        assert_eq!(z, z2);
        assert_eq!(d.score(&x).unwrap().to_bits(), d.network().score(&z).unwrap().to_bits());
    }

    /// A valid frame of 11 features per channel, all 0 but the first, `first`.
    fn sample_frame<const CH: usize>(window_index: u32, first: f32) -> FeatureFrame<CH> {
        let mut f = FeatureFrame::<CH> {
            window_index,
            start_sample: 0,
            per_channel: 11,
            features: [[0.0; MAX_FEATURES_PER_CHANNEL]; CH],
            quality: [Default::default(); CH],
            valid: true,
            roc_valid: true,
        };
        f.features[0][0] = first;
        f
    }

    #[test]
    fn parse_for_checks_the_build_capacity() {
        let b = sample(); // 1 channel, fft_len 1024
        assert!(Detector::parse_for::<1, 1024>(&b).is_ok());
        assert!(Detector::parse_for::<1, 4096>(&b).is_ok());
        let e = Detector::parse_for::<2, 1024>(&b).unwrap_err();
        assert_eq!(e, BundleError::Capacity { what: "vibration channels", bundle: 1, build: 2 });
        assert_eq!(std::format!("{e}"), "bundle is for 1 vibration channels; this build is for exactly 2");
        let e = Detector::parse_for::<1, 512>(&b).unwrap_err();
        assert_eq!(e, BundleError::Capacity { what: "fft_len", bundle: 1024, build: 512 });
        assert_eq!(std::format!("{e}"), "bundle's fft_len is 1024; this build handles at most 512");
    }

    #[test]
    fn assess_alarms_only_on_valid_windows_above_threshold() {
        let b = sample();
        let d = Detector::parse(&b).unwrap();
        let mut frame = sample_frame::<1>(7, 40.0);
        let v = d.assess(&frame).unwrap();
        assert!(v.score > 0.75 && v.alarm && v.valid && v.window_index == 7, "{v:?}");
        assert!(!d.assess_with(&frame, v.score).unwrap().alarm, "score > threshold, not >=");
        frame.valid = false;
        assert!(!d.assess(&frame).unwrap().alarm);
        let two = sample_frame::<2>(0, 0.0);
        assert_eq!(d.assess(&two), Err(AssessError::Channels { expected: 1, actual: 2 }));
    }

    #[test]
    fn phases_are_assessed_by_code() {
        let b = sample();
        let d = Detector::parse(&b).unwrap();
        let frame = sample_frame::<1>(3, 1.0);
        let global = d.assess(&frame).unwrap();
        let s = global.score;
        assert!(s > 0.75 && s <= 1.5, "pick a score between the phase thresholds: {s}");
        assert_eq!((global.phase, global.judged, global.alarm), (PHASE_UNKNOWN, true, true));
        let cruise = d.assess_in_phase(&frame, 0).unwrap();
        assert_eq!((cruise.threshold, cruise.phase, cruise.alarm), (0.5, 0, true));
        let take_off = d.assess_in_phase(&frame, 1).unwrap();
        assert_eq!((take_off.threshold, take_off.alarm, take_off.score.to_bits()), (1.5, false, s.to_bits()));
        // Taxi is flagged "no verdict": scored, not judged, never an alarm.
        let taxi = d.assess_in_phase(&frame, 2).unwrap();
        assert_eq!((taxi.valid, taxi.judged, taxi.alarm), (true, false, false));
        assert_eq!(d.assess_in_phase(&frame, PHASE_UNKNOWN).unwrap(), global);
        assert_eq!(d.assess_in_phase(&frame, 3), Err(AssessError::Phase { code: 3, phases: 3 }));
    }

    #[test]
    fn alert_policy_and_phase_flags_are_checked() {
        let good = sample();
        let mut b = good.clone();
        b[field::RAISE_COUNT] = 4; // above raise_window 3
        reseal(&mut b);
        let e = Detector::parse(&b).unwrap_err();
        assert!(matches!(e, BundleError::Policy(p) if p.field == "raise_count"), "{e:?}");
        for at in [field::ALERT_FLAGS, field::RESERVED_ALERT.start] {
            let mut b = good.clone();
            b[at] |= 0x80;
            reseal(&mut b);
            assert_eq!(Detector::parse(&b), Err(BundleError::Reserved { offset: at }));
        }
        // The first phase entry's flags byte.
        let d = Detector::parse(&good).unwrap();
        let flags_at = good.len() - 4 - 3 * PHASE_ENTRY_BYTES + NAME_BYTES + 4;
        assert!(!d.phase(0).unwrap().no_verdict);
        let mut b = good.clone();
        b[flags_at] = 2;
        reseal(&mut b);
        assert_eq!(Detector::parse(&b), Err(BundleError::Reserved { offset: flags_at }));
    }

    #[test]
    fn corruption_is_refused_with_the_reason() {
        let good = sample();
        // Any flipped bit in the body is a checksum error.
        for at in [0usize, 5, 13, 60, 100, good.len() / 2, good.len() - 5] {
            let mut b = good.clone();
            b[at] ^= 0x10;
            let e = Detector::parse(&b).unwrap_err();
            assert!(
                matches!(
                    e,
                    BundleError::Checksum { .. } | BundleError::BadMagic | BundleError::FormatVersion { .. }
                ),
                "byte {at}: {e:?}"
            );
        }
        let mut b = good.clone();
        b[6..8].copy_from_slice(&(FEATURE_SCHEMA_VERSION + 1).to_le_bytes());
        reseal(&mut b);
        assert_eq!(
            Detector::parse(&b),
            Err(BundleError::SchemaVersion {
                found: FEATURE_SCHEMA_VERSION + 1,
                expected: FEATURE_SCHEMA_VERSION
            })
        );
        let mut b = good.clone();
        b[24..28].copy_from_slice(&1000u32.to_le_bytes());
        reseal(&mut b);
        assert!(matches!(Detector::parse(&b), Err(BundleError::Config(_))));
        assert!(matches!(Detector::parse(&good[..good.len() - 1]), Err(BundleError::Truncated { .. })));
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(Detector::parse(&longer), Err(BundleError::Length { .. })));
    }

    #[test]
    fn envelope_descriptor_round_trips() {
        // Time-domain (8) + envelope RMS, kurtosis and one envelope order (3) = 11 features.
        let mut cfg = ExtractorConfig::default_at(2048).unwrap();
        cfg.features.families = Families::TIME.with(Families::ENVELOPE);
        cfg.features.env_band_hz = [300.0, 700.0];
        cfg.features.env_decimation = 8;
        cfg.features.env_fft_len = 256;
        cfg.features.env_order_count = 1;
        cfg.features.env_orders[0] = 3.5848;
        let b = sample_with(cfg);
        assert_eq!(Detector::parse(&b).unwrap().config(), cfg);
        let mut bad = b.clone();
        bad[field::ENV_ORDER_COUNT] = 9;
        reseal(&mut bad);
        assert!(matches!(Detector::parse(&bad), Err(BundleError::Config(_))));
    }

    #[test]
    fn feature_sets_this_build_cannot_compute_are_refused() {
        let good = sample();
        let refused = |at: usize, value: u8| {
            let mut b = good.clone();
            b[at] = value;
            reseal(&mut b);
            Detector::parse(&b).unwrap_err()
        };
        // A family bit from a newer schema.
        let e = refused(field::FAMILIES, 0x80 | Families::TIME.0);
        assert_eq!(e, BundleError::Config(crate::ConfigError::UnknownFamilies { bits: 0x81 }));
        assert!(std::format!("{e}").contains("cannot compute"), "{e}");
        // More bands than this build holds.
        assert!(matches!(
            refused(field::BAND_COUNT, 30),
            BundleError::Config(crate::ConfigError::Feature { .. })
        ));
        // An unknown spike policy or scale code.
        assert!(matches!(refused(field::SPIKE_POLICY, 7), BundleError::Config(_)));
        assert!(matches!(refused(field::SCALE, 2), BundleError::Config(_)));
        // Families that change the feature count no longer match the network.
        let e = refused(field::FAMILIES, Families::TIME.0);
        assert_eq!(e, BundleError::FeatureCount { channels: 1, features: 11, per_channel: 8 });
    }
}
