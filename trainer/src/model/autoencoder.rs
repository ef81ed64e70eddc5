//! The MLP autoencoder's weights and its burn forward pass.
//!
//! Weights `[d_in, d_out]`, `y = x·W + b` (the layout ONNX's Gemm and avm-core read).
//! Glorot-uniform initial weights from ChaCha8(`train.seed`), zero biases.

pub use crate::config::{Activation, TrainConfig};
use burn::tensor::{Device, Tensor, TensorData, activation};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One dense layer: `y = act(x·W + b)`, `w` row-major `[d_in][d_out]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Dense {
    /// Inputs.
    pub d_in: usize,
    /// Outputs.
    pub d_out: usize,
    /// Weights, `d_in * d_out`, row-major.
    pub w: Vec<f32>,
    /// Biases, `d_out`.
    pub b: Vec<f32>,
    /// Activation.
    pub activation: Activation,
}

/// The autoencoder's weights.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Autoencoder {
    /// Layers in order.
    pub layers: Vec<Dense>,
}

impl Autoencoder {
    /// Glorot-uniform weights from ChaCha8(seed), zero biases.
    pub fn init(n_features: usize, cfg: &TrainConfig) -> Autoencoder {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut sizes = vec![n_features];
        sizes.extend(&cfg.hidden);
        sizes.push(n_features);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, s)| {
                let (d_in, d_out) = (s[0], s[1]);
                let limit = (6.0 / (d_in + d_out) as f64).sqrt();
                let w = (0..d_in * d_out)
                    .map(|_| {
                        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                        ((2.0 * u - 1.0) * limit) as f32
                    })
                    .collect();
                let last = i + 2 == sizes.len();
                Dense {
                    d_in,
                    d_out,
                    w,
                    b: vec![0.0; d_out],
                    activation: if last { Activation::Linear } else { cfg.activation },
                }
            })
            .collect();
        Autoencoder { layers }
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.layers.first().map_or(0, |l| l.d_in)
    }
}

pub(crate) fn tensor2(v: &[f32], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [rows, cols]), device)
}

pub(crate) fn tensor1(v: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().as_slice::<f32>().map(<[f32]>::to_vec).unwrap_or_default()
}

pub(crate) fn act(x: Tensor<2>, a: Activation) -> Tensor<2> {
    match a {
        Activation::Relu => activation::relu(x),
        Activation::Sigmoid => activation::sigmoid(x),
        Activation::Linear => x,
    }
}

/// burn forward pass: reconstruction of `x` (`[n, F]`).
pub(crate) fn forward(params: &[(Tensor<2>, Tensor<1>)], layers: &[Dense], x: Tensor<2>) -> Tensor<2> {
    let mut h = x;
    for ((w, b), l) in params.iter().zip(layers) {
        h = act(h.matmul(w.clone()) + b.clone().unsqueeze::<2>(), l.activation);
    }
    h
}

/// Reconstruction MSE per row through burn (inference, no autodiff).
pub fn burn_scores(model: &Autoencoder, x: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<f32>) {
    if x.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let device = Device::flex();
    let f = model.n_features();
    let params: Vec<_> = model
        .layers
        .iter()
        .map(|l| (tensor2(&l.w, l.d_in, l.d_out, &device), tensor1(&l.b, &device)))
        .collect();
    let flat: Vec<f32> = x.iter().flatten().copied().collect();
    let input = tensor2(&flat, x.len(), f, &device);
    let y = forward(&params, &model.layers, input.clone());
    let score = (y.clone() - input).square().mean_dim(1);
    let recon = to_vec(y);
    (recon.chunks(f).map(<[f32]>::to_vec).collect(), to_vec(score))
}

impl Dense {
    /// Every weight and bias finite.
    pub fn is_finite(&self) -> bool {
        self.w.iter().chain(&self.b).all(|x| x.is_finite())
    }
}
