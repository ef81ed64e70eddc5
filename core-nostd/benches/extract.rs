//! Feature extraction throughput at the fleet defaults: 2048 Hz, 10 s windows every 5 s,
//! 1024-point FFT, the default feature set (schema v3), 1 and 2 channels, with the host FFT
//! engine the trainer uses (`HostFft`) and with microfft itself (the firmware's, the default
//! engine; the same bits); and the cost of each family (2 channels, `HostFft`, the time-domain
//! family alone, then adding one family at a time).
//! Compare with `benches/numpy_features.py` (same machine).
//!
//! `cargo bench -p avm-core --bench extract`

use avm_core::{ExtractorConfig, Families, FeatureExtractor, FftEngine, HostFft, Microfft};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const RATE_HZ: u32 = 2048;
const SECONDS: usize = 60;

fn signal<const CH: usize>() -> (Vec<[f32; CH]>, Vec<[f32; CH]>) {
    let n = RATE_HZ as usize * SECONDS;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let vib = (0..n)
        .map(|i| {
            let t = i as f32 / RATE_HZ as f32;
            core::array::from_fn(|c| {
                2.0 + libm::sinf(2.0 * core::f32::consts::PI * (80.0 + 10.0 * c as f32) * t) + 0.2 * noise()
            })
        })
        .collect();
    let rpm = vec![[4800.0; CH]; n];
    (vib, rpm)
}

fn run<const CH: usize>(c: &mut Criterion) {
    let cfg = ExtractorConfig::default_at(RATE_HZ).unwrap();
    bench::<CH, HostFft<1024>>(c, &format!("extract_{CH}ch_2048hz_fft1024"), cfg);
    bench::<CH, Microfft<1024>>(c, &format!("extract_{CH}ch_2048hz_fft1024_microfft"), cfg);
}

/// The default config with only `families` selected.
fn with_families(families: Families) -> ExtractorConfig {
    let mut cfg = ExtractorConfig::default_at(RATE_HZ).unwrap();
    cfg.features.families = families;
    cfg
}

fn families(c: &mut Criterion) {
    let time = Families::TIME.with(Families::SPEED);
    for (name, f) in [
        ("time", time),
        ("time_bands", time.with(Families::BANDS)),
        ("time_orders", time.with(Families::ORDERS)),
        ("time_shape", time.with(Families::SHAPE)),
    ] {
        bench::<2, HostFft<1024>>(c, &format!("family_2ch_{name}"), with_families(f));
    }
}

fn bench<const CH: usize, F: FftEngine<1024>>(c: &mut Criterion, group: &str, cfg: ExtractorConfig) {
    let (vib, rpm) = signal::<CH>();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(vib.len() as u64));
    g.sample_size(20);
    g.bench_function("60s_stream", |b| {
        b.iter(|| {
            let mut fx = Box::new(FeatureExtractor::<CH, 1024, 0, F>::UNCONFIGURED);
            fx.configure(cfg).unwrap();
            let mut frames = 0u32;
            fx.push_slice(black_box(&vib), black_box(&rpm), |f| {
                black_box(&f);
                frames += 1;
            })
            .unwrap();
            frames += u32::from(fx.finish().is_some());
            assert_eq!(frames, 11);
            frames
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    run::<1>(c);
    run::<2>(c);
    families(c);
}

criterion_group!(extract, benches);
criterion_main!(extract);
