//! Property tests: streaming equals batch, no panic on any input, invariants of every frame.

use avm_core::{
    ExtractorConfig, Families, Feature, FeatureExtractor, FeatureFrame, FeatureSet, FeatureSettings,
    SpectralScale, SpikePolicy, TimeKind,
};
use proptest::prelude::*;

fn small_cfg() -> ExtractorConfig {
    ExtractorConfig {
        sample_rate_hz: 1024,
        window_len_samples: 1024,
        hop_len_samples: 512,
        fft_len: 256,
        order_band_bins: 2,
        max_gap_samples: 6,
        spike_policy: SpikePolicy::KSigma,
        spike_k_sigma: 3.0,
        full_scale_g: 50.0,
        max_shaft_speed_rpm: 20_000.0,
        features: FeatureSettings { scale: SpectralScale::Fraction, ..FeatureSettings::default() }
            .feature_set(1024, 256)
            .unwrap(),
    }
}

/// Any f32 at all, with the awkward ones (NaN, ±Inf, subnormals, huge, zero) well represented.
fn wild_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => -5.0f32..5.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => Just(1e30f32),
        1 => Just(-1e30f32),
        1 => Just(f32::MIN_POSITIVE / 3.0),
        1 => Just(0.0f32),
        1 => Just(-0.0f32),
        1 => any::<f32>(),
    ]
}

/// A plausible vibration signal with sparse glitches: runs long enough to produce windows.
fn signal(len: usize) -> impl Strategy<Value = Vec<[f32; 2]>> {
    (proptest::collection::vec((wild_f32(), wild_f32(), 0u8..40), len), 0.0f32..20.0, 0.1f32..3.0).prop_map(
        |(glitches, dc, amp)| {
            glitches
                .into_iter()
                .enumerate()
                .map(|(i, (a, b, pick))| {
                    let t = i as f32 / 1024.0;
                    let clean = [
                        dc + amp * libm::sinf(2.0 * core::f32::consts::PI * 31.0 * t),
                        amp * libm::cosf(2.0 * core::f32::consts::PI * 77.0 * t),
                    ];
                    // About one sample in 20 replaced by an arbitrary value.
                    match pick {
                        0 => [a, clean[1]],
                        1 => [clean[0], b],
                        _ => clean,
                    }
                })
                .collect()
        },
    )
}

fn speeds(len: usize) -> impl Strategy<Value = Vec<[f32; 2]>> {
    prop_oneof![
        3 => (0.0f32..20_000.0, 0.0f32..20_000.0).prop_map(move |(a, b)| vec![[a, b]; len]),
        1 => proptest::collection::vec((wild_f32(), wild_f32()).prop_map(|(a, b)| [a * 1000.0, b * 1000.0]), len),
    ]
}

fn batch(cfg: ExtractorConfig, vib: &[[f32; 2]], rpm: &[[f32; 2]]) -> Vec<FeatureFrame<2>> {
    let mut fx = FeatureExtractor::<2, 256>::new(cfg).unwrap();
    let mut out = Vec::new();
    fx.push_slice(vib, rpm, |f| out.push(f)).unwrap();
    out.extend(fx.finish());
    out
}

fn bits(frames: &[FeatureFrame<2>]) -> Vec<(u32, bool, bool, Vec<u32>)> {
    frames
        .iter()
        .map(|f| (f.window_index, f.valid, f.roc_valid, f.flat().map(|x| x.to_bits()).collect()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// The same recording pushed instant by instant, or cut into random chunks with the
    /// extractor cloned and resumed at a random point, gives bit-identical frames.
    #[test]
    fn streaming_equals_batch(
        vib in signal(4096),
        rpm in speeds(4096),
        cuts in proptest::collection::vec(1usize..700, 1..40),
        clone_at in 0usize..4096,
    ) {
        let cfg = small_cfg();
        let whole = batch(cfg, &vib, &rpm);
        let mut fx = FeatureExtractor::<2, 256>::new(cfg).unwrap();
        let mut single: Vec<_> = vib.iter().zip(&rpm).filter_map(|(v, r)| fx.push(v, r)).collect();
        single.extend(fx.finish());
        prop_assert_eq!(bits(&whole), bits(&single));
        let mut fx = FeatureExtractor::<2, 256>::new(cfg).unwrap();
        let mut chunked = Vec::new();
        let mut pos = 0;
        let mut cut = cuts.iter().cycle();
        while pos < vib.len() {
            let end = (pos + cut.next().unwrap()).min(vib.len());
            if (pos..end).contains(&clone_at) {
                fx = fx.clone();
            }
            fx.push_slice(&vib[pos..end], &rpm[pos..end], |f| chunked.push(f)).unwrap();
            pos = end;
        }
        chunked.extend(fx.finish());
        prop_assert_eq!(bits(&whole), bits(&chunked));
    }

    /// Any input at all: no panic, every feature finite, ratios in [0, 1], counts bounded.
    #[test]
    fn never_panics_and_stays_finite(vib in signal(3072), rpm in speeds(3072)) {
        let cfg = small_cfg();
        let frames = batch(cfg, &vib, &rpm);
        prop_assert_eq!(frames.len(), 5);
        for f in &frames {
            for x in f.flat() {
                prop_assert!(x.is_finite(), "non-finite feature in {:?}", f);
            }
            for c in 0..2 {
                let set = &cfg.features;
                for (k, feature) in set.iter().enumerate() {
                    let v = f.get(c, k).unwrap();
                    if matches!(feature, Feature::Band(_) | Feature::Order(_) | Feature::Shape(avm_core::ShapeKind::Flatness)) {
                        prop_assert!((0.0..=1.0).contains(&v), "{feature:?} = {v}");
                    }
                }
                let at = |t| set.index_of(Feature::Time(t)).unwrap();
                prop_assert!(f.get(c, at(TimeKind::StdG)).unwrap() >= 0.0);
                prop_assert!(f.get(c, at(TimeKind::PeakG)).unwrap() <= cfg.full_scale_g);
                prop_assert!(f.get(c, at(TimeKind::P2pG)).unwrap() <= 2.0 * cfg.full_scale_g);
                let q = f.quality[c];
                prop_assert!(q.gap_filled + q.clipped + q.unrepaired <= cfg.window_len_samples);
                prop_assert!(q.speed_held <= cfg.window_len_samples);
            }
            prop_assert_eq!(f.valid, f.quality.iter().all(|q| q.unrepaired == 0));
        }
    }

    /// Whole streams of a single awkward value (all-NaN, all-Inf, all-zero, constant, subnormal).
    #[test]
    fn degenerate_streams(v in wild_f32(), r in wild_f32()) {
        let vib = vec![[v, v]; 2048];
        let rpm = vec![[r, r]; 2048];
        let frames = batch(small_cfg(), &vib, &rpm);
        prop_assert_eq!(frames.len(), 3);
        for f in &frames {
            prop_assert!(f.flat().all(|x| x.is_finite()));
        }
    }

    /// Every config either validates and runs, or is refused; nothing in between panics.
    #[test]
    fn any_config_is_refused_or_runs(
        rate in 0u32..5000,
        hop_halves in 0u32..6,
        hops in 0u32..20,
        fft_pow in 6u32..14,
        band in 0u32..80,
        gap in 0u32..600,
        k in wild_f32(),
        families in any::<u8>(),
        policy in 0u8..4,
        edges in prop::collection::vec(wild_f32(), 0..24),
        orders in prop::collection::vec(wild_f32(), 0..10),
        half_width in wild_f32(),
    ) {
        let mut set = FeatureSet { families: Families(families), order_half_width: half_width, ..FeatureSet::EMPTY };
        set.band_count = edges.len().saturating_sub(1) as u8;
        for (d, e) in set.band_edges_hz.iter_mut().zip(&edges) {
            *d = *e;
        }
        set.order_count = orders.len() as u8;
        for (d, o) in set.orders.iter_mut().zip(&orders) {
            *d = *o;
        }
        let fft_len = 1u32 << fft_pow;
        let hop = hop_halves * (fft_len / 2);
        let cfg = ExtractorConfig {
            sample_rate_hz: rate,
            window_len_samples: hop.saturating_mul(hops),
            hop_len_samples: hop,
            fft_len,
            order_band_bins: band,
            max_gap_samples: gap,
            spike_policy: SpikePolicy::from_code(policy).unwrap_or(SpikePolicy::Off),
            spike_k_sigma: k,
            full_scale_g: 100.0,
            max_shaft_speed_rpm: 10_000.0,
            features: set,
        };
        if let Ok(mut fx) = FeatureExtractor::<1, 4096>::new(cfg) {
            prop_assert!(cfg.validate().is_ok());
            for i in 0..(cfg.window_len_samples + 1) {
                if let Some(f) = fx.push(&[(i as f32 * 0.01).sin()], &[3000.0]) {
                    prop_assert_eq!(usize::from(f.per_channel), cfg.features.per_channel());
                    prop_assert!(f.flat().all(|x| x.is_finite()));
                }
            }
        } else {
            prop_assert!(cfg.validate().is_err() || fft_len > 4096);
        }
    }
}
