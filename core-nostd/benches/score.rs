//! The evaluator's cost per window: the default detector's network shape (66 features ->
//! 128 -> 64 -> 16 -> 64 -> 128 -> 66, ReLU, linear output; ~35 k multiply-adds) scoring one
//! scaled feature vector, as `Detector::assess` does once per window on board.
//!
//! `cargo bench -p avm-core --bench score`

use avm_core::{Activation, LayerSpec, Network, model::encode_layers, model::encoded_layers_len};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn network_bytes() -> Vec<u8> {
    let widths = [66usize, 128, 64, 16, 64, 128, 66];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
    };
    let params: Vec<(Vec<f32>, Vec<f32>)> = widths
        .windows(2)
        .map(|w| ((0..w[0] * w[1]).map(|_| next()).collect(), (0..w[1]).map(|_| next()).collect()))
        .collect();
    let specs: Vec<LayerSpec<'_>> = widths
        .windows(2)
        .zip(&params)
        .enumerate()
        .map(|(i, (w, (wt, b)))| LayerSpec {
            d_in: w[0],
            d_out: w[1],
            activation: if i + 2 == widths.len() { Activation::Linear } else { Activation::Relu },
            w: wt,
            b,
        })
        .collect();
    let mut out = vec![0u8; encoded_layers_len(&specs).unwrap()];
    encode_layers(&specs, &mut out).unwrap();
    out
}

fn bench(c: &mut Criterion) {
    let bytes = network_bytes();
    let (net, _) = Network::parse(&bytes, 6).unwrap();
    let x: Vec<f32> = (0..66).map(|i| (i as f32 * 0.37).sin()).collect();
    c.bench_function("score 66-128-64-16-64-128-66", |b| b.iter(|| net.score(black_box(&x)).unwrap()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
