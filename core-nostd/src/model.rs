//! The dense-network evaluator: the autoencoder the trainer fits, run on board.
//!
//! A [`Network`] is a read-only view of layer bytes (normally inside a detector bundle, see
//! [`crate::bundle`]); nothing is copied or allocated. Each layer is
//! `y = act(x·W + b)` with `W` row-major `[d_in][d_out]` (the layout of ONNX's `Gemm` with
//! `transB = 0` and of the trainer's checkpoints).
//!
//! # Layer encoding (little-endian)
//! `d_in: u16, d_out: u16, activation: u8 (0 linear, 1 relu, 2 sigmoid), 3 zero bytes`, then
//! `d_in * d_out` `f32` weights (row-major) and `d_out` `f32` biases. Layers follow each other;
//! each layer's `d_in` must equal the previous layer's `d_out`, and every width is at most
//! [`MAX_LAYER_WIDTH`].
//!
//! # Numerics (the contract parity tests check)
//! Everything is `f32`, in a fixed order, with no fused multiply-add: output `j` of a layer is
//! `(((x0·w0j + x1·w1j) + x2·w2j) + ...) + bj`, then the activation (`relu`: `max(y, 0)`;
//! `sigmoid`: `1 / (1 + libm::expf(-y))`). The score is the reconstruction MSE
//! `(Σ_k (x_k - r_k)²) / F`, summed in feature order. The same code therefore gives the same
//! bits on the host and on a Cortex-M4F; ONNX Runtime (other summation order, FMA) agrees to a
//! few ulps, which the export checks against a stated tolerance.

use core::fmt;

/// The widest layer (inputs or outputs) the evaluator supports; it sets the evaluator's stack
/// use: two buffers of this many `f32` (1 KiB in total).
pub const MAX_LAYER_WIDTH: usize = 128;

/// Most layers in one network.
pub const MAX_LAYERS: usize = 16;

/// Bytes of one layer's header.
pub const LAYER_HEADER_BYTES: usize = 8;

/// A layer's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Activation {
    /// `y`
    Linear = 0,
    /// `max(y, 0)`
    Relu = 1,
    /// `1 / (1 + e^-y)`
    Sigmoid = 2,
}

impl Activation {
    /// The activation with this code.
    pub const fn from_code(code: u8) -> Option<Activation> {
        match code {
            0 => Some(Activation::Linear),
            1 => Some(Activation::Relu),
            2 => Some(Activation::Sigmoid),
            _ => None,
        }
    }

    /// Applies the activation.
    #[inline]
    pub fn apply(self, y: f32) -> f32 {
        match self {
            Activation::Linear => y,
            Activation::Relu => {
                if y > 0.0 {
                    y
                } else {
                    0.0
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + libm::expf(-y)),
        }
    }
}

/// Why layer bytes were refused, or an input did not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// The bytes end inside layer `layer`.
    Truncated {
        /// Layer index.
        layer: usize,
        /// Bytes the layer needs from its start.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Layer `layer` has a width of 0 or above [`MAX_LAYER_WIDTH`].
    BadWidth {
        /// Layer index.
        layer: usize,
        /// The width found.
        width: usize,
    },
    /// Layer `layer`'s `d_in` is not the previous layer's `d_out`.
    ShapeChain {
        /// Layer index.
        layer: usize,
        /// Previous `d_out`.
        expected: usize,
        /// This `d_in`.
        found: usize,
    },
    /// Unknown activation code.
    BadActivation {
        /// Layer index.
        layer: usize,
        /// The code found.
        code: u8,
    },
    /// A weight or bias is not finite.
    NonFinite {
        /// Layer index.
        layer: usize,
    },
    /// 0 or more than [`MAX_LAYERS`] layers.
    LayerCount {
        /// The count found.
        count: usize,
    },
    /// The last layer's width differs from the first layer's input (not an autoencoder).
    NotAutoencoder {
        /// Inputs.
        inputs: usize,
        /// Outputs.
        outputs: usize,
    },
    /// An input vector of the wrong length.
    InputLength {
        /// Inputs the network takes.
        expected: usize,
        /// Length given.
        actual: usize,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModelError::Truncated { layer, needed, available } => {
                write!(f, "layer {layer} is truncated: it needs {needed} bytes but only {available} remain")
            }
            ModelError::BadWidth { layer, width } => {
                write!(f, "layer {layer} has width {width}; widths must be 1..={MAX_LAYER_WIDTH}")
            }
            ModelError::ShapeChain { layer, expected, found } => {
                write!(f, "layer {layer} takes {found} inputs but the previous layer gives {expected}")
            }
            ModelError::BadActivation { layer, code } => write!(
                f,
                "layer {layer} has activation code {code}; known codes are 0 (linear), 1 (relu), 2 (sigmoid)"
            ),
            ModelError::NonFinite { layer } => write!(f, "layer {layer} has a non-finite weight or bias"),
            ModelError::LayerCount { count } => {
                write!(f, "{count} layers; a network has 1..={MAX_LAYERS}")
            }
            ModelError::NotAutoencoder { inputs, outputs } => write!(
                f,
                "the network maps {inputs} inputs to {outputs} outputs; an autoencoder reconstructs its input"
            ),
            ModelError::InputLength { expected, actual } => {
                write!(f, "input has {actual} values; the network takes {expected}")
            }
        }
    }
}

/// Reads the little-endian `f32` at `bytes[at..at + 4]` (the caller checked the length).
#[inline]
pub(crate) fn f32_at(bytes: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[inline]
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

#[inline]
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Bytes one layer of `d_in` inputs and `d_out` outputs occupies.
pub const fn layer_bytes(d_in: usize, d_out: usize) -> usize {
    LAYER_HEADER_BYTES + 4 * (d_in * d_out + d_out)
}

/// One layer to encode: `y = act(x·W + b)`, `w` row-major `[d_in][d_out]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerSpec<'s> {
    /// Inputs.
    pub d_in: usize,
    /// Outputs.
    pub d_out: usize,
    /// Activation.
    pub activation: Activation,
    /// `d_in * d_out` weights.
    pub w: &'s [f32],
    /// `d_out` biases.
    pub b: &'s [f32],
}

/// Why layers could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerEncodeError {
    /// Layer `0`'s `w` or `b` has the wrong length, or a width does not fit a `u16`.
    Shape(usize),
    /// The output buffer is smaller than the encoded layers.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
}

impl fmt::Display for LayerEncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayerEncodeError::Shape(i) => {
                write!(f, "layer {i}: w or b has the wrong length, or a width over 65 535")
            }
            LayerEncodeError::BufferTooSmall { needed, actual } => {
                write!(f, "the layers need {needed} bytes, the buffer has {actual}")
            }
        }
    }
}

impl core::error::Error for LayerEncodeError {}

/// Bytes the encoded `layers` take.
pub fn encoded_layers_len(layers: &[LayerSpec<'_>]) -> Result<usize, LayerEncodeError> {
    let mut len = 0;
    for (i, l) in layers.iter().enumerate() {
        if l.w.len() != l.d_in * l.d_out || l.b.len() != l.d_out || l.d_in > 0xFFFF || l.d_out > 0xFFFF {
            return Err(LayerEncodeError::Shape(i));
        }
        len += layer_bytes(l.d_in, l.d_out);
    }
    Ok(len)
}

/// Encodes `layers` (see the module docs) at the start of `out`; returns the bytes written.
/// Check the result with [`Network::parse`].
pub fn encode_layers(layers: &[LayerSpec<'_>], out: &mut [u8]) -> Result<usize, LayerEncodeError> {
    let len = encoded_layers_len(layers)?;
    if out.len() < len {
        return Err(LayerEncodeError::BufferTooSmall { needed: len, actual: out.len() });
    }
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    for l in layers {
        put(&(l.d_in as u16).to_le_bytes());
        put(&(l.d_out as u16).to_le_bytes());
        put(&[l.activation as u8, 0, 0, 0]);
        for v in l.w.iter().chain(l.b) {
            put(&v.to_le_bytes());
        }
    }
    Ok(len)
}

/// A checked, borrowed view of a network's layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Network<'a> {
    bytes: &'a [u8],
    layers: usize,
    inputs: usize,
    outputs: usize,
}

impl<'a> Network<'a> {
    /// Checks `layers` layers at the start of `bytes` (see the module docs for the encoding) and
    /// returns the network and the bytes after it. Every weight is checked to be finite, so a
    /// parsed network cannot produce NaN from finite inputs except by overflow.
    pub fn parse(bytes: &'a [u8], layers: usize) -> Result<(Network<'a>, &'a [u8]), ModelError> {
        if layers == 0 || layers > MAX_LAYERS {
            return Err(ModelError::LayerCount { count: layers });
        }
        let mut at = 0;
        let mut prev_out = None;
        let mut inputs = 0;
        let mut outputs = 0;
        for layer in 0..layers {
            let available = bytes.len() - at;
            if available < LAYER_HEADER_BYTES {
                return Err(ModelError::Truncated { layer, needed: LAYER_HEADER_BYTES, available });
            }
            let d_in = usize::from(u16_at(bytes, at));
            let d_out = usize::from(u16_at(bytes, at + 2));
            for width in [d_in, d_out] {
                if width == 0 || width > MAX_LAYER_WIDTH {
                    return Err(ModelError::BadWidth { layer, width });
                }
            }
            if let Some(expected) = prev_out {
                if expected != d_in {
                    return Err(ModelError::ShapeChain { layer, expected, found: d_in });
                }
            } else {
                inputs = d_in;
            }
            let code = bytes[at + 4];
            if Activation::from_code(code).is_none() || bytes[at + 5..at + 8] != [0, 0, 0] {
                return Err(ModelError::BadActivation { layer, code });
            }
            let needed = layer_bytes(d_in, d_out);
            if available < needed {
                return Err(ModelError::Truncated { layer, needed, available });
            }
            let mut p = at + LAYER_HEADER_BYTES;
            while p < at + needed {
                if !f32_at(bytes, p).is_finite() {
                    return Err(ModelError::NonFinite { layer });
                }
                p += 4;
            }
            at += needed;
            prev_out = Some(d_out);
            outputs = d_out;
        }
        if inputs != outputs {
            return Err(ModelError::NotAutoencoder { inputs, outputs });
        }
        let (mine, rest) = bytes.split_at(at);
        Ok((Network { bytes: mine, layers, inputs, outputs }, rest))
    }

    /// Inputs (= outputs) of the network.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Number of weights and biases.
    pub fn parameters(&self) -> usize {
        (self.bytes.len() - self.layers * LAYER_HEADER_BYTES) / 4
    }

    /// The encoded layers.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Runs the network on `x` (already scaled) and writes the reconstruction into `out`
    /// (both of length [`Network::inputs`]).
    pub fn forward(&self, x: &[f32], out: &mut [f32]) -> Result<(), ModelError> {
        if x.len() != self.inputs {
            return Err(ModelError::InputLength { expected: self.inputs, actual: x.len() });
        }
        if out.len() != self.outputs {
            return Err(ModelError::InputLength { expected: self.outputs, actual: out.len() });
        }
        let mut a = [0.0f32; MAX_LAYER_WIDTH];
        let mut b = [0.0f32; MAX_LAYER_WIDTH];
        a[..x.len()].copy_from_slice(x);
        let mut at = 0;
        for _ in 0..self.layers {
            let d_in = usize::from(u16_at(self.bytes, at));
            let d_out = usize::from(u16_at(self.bytes, at + 2));
            let act = Activation::from_code(self.bytes[at + 4]).unwrap_or(Activation::Linear);
            let w = at + LAYER_HEADER_BYTES;
            let bias = w + 4 * d_in * d_out;
            let end = bias + 4 * d_out;
            let (x, y) = (&a[..d_in], &mut b[..d_out]);
            // Weights and biases read in place: as `f32` when the bundle sits 4-byte aligned
            // (the firmware examples align it; one FPU load per weight), else as little-endian
            // 4-byte groups (any address in flash). Same values, same operations, same bits.
            match (weights_f32(&self.bytes[w..bias]), weights_f32(&self.bytes[bias..end])) {
                (Some(wf), Some(bf)) => dense(x, wf, bf, act, y),
                _ => {
                    let (wb, _) = self.bytes[w..bias].as_chunks::<4>();
                    let (bb, _) = self.bytes[bias..end].as_chunks::<4>();
                    dense(x, wb, bb, act, y)
                }
            }
            core::mem::swap(&mut a, &mut b);
            at = end;
        }
        out.copy_from_slice(&a[..self.outputs]);
        Ok(())
    }

    /// The anomaly score of `x` (already scaled): reconstruction MSE, see the module docs.
    pub fn score(&self, x: &[f32]) -> Result<f32, ModelError> {
        let mut r = [0.0f32; MAX_LAYER_WIDTH];
        let r = &mut r[..self.outputs];
        self.forward(x, r)?;
        Ok(reconstruction_mse(x, r))
    }
}

/// One stored weight: an `f32` read in place, or its four little-endian bytes.
trait Weight: Copy {
    fn value(self) -> f32;
}

impl Weight for f32 {
    #[inline(always)]
    fn value(self) -> f32 {
        self
    }
}

impl Weight for [u8; 4] {
    #[inline(always)]
    fn value(self) -> f32 {
        f32::from_le_bytes(self)
    }
}

/// `bytes` as `f32`s when they are 4-byte aligned on a little-endian target (the encoding's
/// byte order), else `None`.
fn weights_f32(bytes: &[u8]) -> Option<&[f32]> {
    if cfg!(target_endian = "little") { bytemuck::try_cast_slice(bytes).ok() } else { None }
}

/// Outputs computed together: their running sums stay in FPU registers (8 of the Cortex-M4F's
/// 32 single-precision registers; two SSE registers on x86-64) while the inputs stream past.
const TILE: usize = 8; // `dense` writes the tile out by hand: change both together

/// `y = act(x·W + b)`, `W` row-major `[x.len()][y.len()]`. Output `j` sums its products in
/// input order starting from 0, then adds `b_j` (the module's numeric contract): the tiles only
/// change which outputs are in flight at once, never the order of one output's operations.
#[inline(always)]
fn dense<W: Weight>(x: &[f32], w: &[W], bias: &[W], act: Activation, y: &mut [f32]) {
    let d_out = y.len();
    let mut j0 = 0;
    while j0 + TILE <= d_out {
        let mut t = [0.0f32; TILE];
        for (&xi, row) in x.iter().zip(w.chunks_exact(d_out)) {
            if let Some(s) = row.get(j0..).and_then(|r| r.first_chunk::<TILE>()) {
                // Written out (constant indices) so that the sums live in registers even in
                // the firmware's size-optimised builds, which do not unroll loops.
                t[0] += xi * s[0].value();
                t[1] += xi * s[1].value();
                t[2] += xi * s[2].value();
                t[3] += xi * s[3].value();
                t[4] += xi * s[4].value();
                t[5] += xi * s[5].value();
                t[6] += xi * s[6].value();
                t[7] += xi * s[7].value();
            }
        }
        if let Some(dst) = y.get_mut(j0..j0 + TILE) {
            dst.copy_from_slice(&t);
        }
        j0 += TILE;
    }
    for (j, out) in y.iter_mut().enumerate().skip(j0) {
        let mut acc = 0.0f32;
        for (&xi, row) in x.iter().zip(w.chunks_exact(d_out)) {
            if let Some(wk) = row.get(j) {
                acc += xi * wk.value();
            }
        }
        *out = acc;
    }
    for (out, b) in y.iter_mut().zip(bias) {
        *out = act.apply(*out + b.value());
    }
}

/// `(Σ_k (x_k - r_k)²) / n`, summed in order, in `f32`.
pub fn reconstruction_mse(x: &[f32], r: &[f32]) -> f32 {
    let mut sum = 0.0f32;
    for (a, b) in x.iter().zip(r) {
        let d = a - b;
        sum += d * d;
    }
    sum / x.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn layer(out: &mut Vec<u8>, d_in: usize, d_out: usize, act: u8, w: &[f32], b: &[f32]) {
        let activation = Activation::from_code(act).unwrap();
        let spec = [LayerSpec { d_in, d_out, activation, w, b }];
        let at = out.len();
        out.resize(at + layer_bytes(d_in, d_out), 0xAA);
        assert_eq!(encode_layers(&spec, &mut out[at..]), Ok(layer_bytes(d_in, d_out)));
    }

    /// The module's numeric contract written plainly: one `f32_at` per weight, output by
    /// output, products summed in input order from 0, then the bias and the activation.
    fn forward_by_definition(bytes: &[u8], layers: usize, x: &[f32]) -> Vec<f32> {
        let mut a = x.to_vec();
        let mut at = 0;
        for _ in 0..layers {
            let d_in = usize::from(u16_at(bytes, at));
            let d_out = usize::from(u16_at(bytes, at + 2));
            let act = Activation::from_code(bytes[at + 4]).unwrap();
            let w = at + LAYER_HEADER_BYTES;
            let bias = w + 4 * d_in * d_out;
            let y: Vec<f32> = (0..d_out)
                .map(|j| {
                    let mut acc = 0.0f32;
                    for (i, xi) in a.iter().enumerate() {
                        acc += xi * f32_at(bytes, w + 4 * (i * d_out + j));
                    }
                    act.apply(acc + f32_at(bytes, bias + 4 * j))
                })
                .collect();
            a = y;
            at = bias + 4 * d_out;
        }
        a
    }

    #[test]
    fn tiles_and_both_weight_paths_keep_the_bits_of_the_definition() {
        // Widths that exercise whole tiles of 8 and remainders (20 = 8 + 8 + 4, 3 < 8).
        let dims = [(66, 20, 1), (20, 3, 2), (3, 16, 1), (16, 66, 0)];
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32 - 0.5) * 0.6
        };
        let mut bytes = Vec::new();
        for &(d_in, d_out, act) in &dims {
            let w: Vec<f32> = (0..d_in * d_out).map(|_| next()).collect();
            let b: Vec<f32> = (0..d_out).map(|_| next()).collect();
            layer(&mut bytes, d_in, d_out, act, &w, &b);
        }
        // The same bytes at a 4-byte-aligned address (f32 path) and one byte off (byte path).
        let mut store = vec![0u32; bytes.len() / 4 + 2];
        let raw: &mut [u8] = bytemuck::cast_slice_mut(&mut store);
        raw[..bytes.len()].copy_from_slice(&bytes);
        let (net_a, _) = Network::parse(&raw[..bytes.len()], dims.len()).unwrap();
        assert!(weights_f32(&net_a.as_bytes()[8..16]).is_some(), "the aligned copy takes the f32 path");
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        let (net_u, _) = Network::parse(&shifted[1..], dims.len()).unwrap();
        assert!(weights_f32(&net_u.as_bytes()[8..16]).is_none(), "the shifted copy takes the byte path");
        for _ in 0..50 {
            let x: Vec<f32> = (0..66).map(|_| next() * 5.0).collect();
            let want = forward_by_definition(&bytes, dims.len(), &x);
            for net in [&net_a, &net_u] {
                let mut got = [0.0f32; 66];
                net.forward(&x, &mut got).unwrap();
                let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                assert!(same, "forward differs from the definition's bits");
            }
        }
    }

    fn net_2_1_2() -> Vec<u8> {
        let mut v = Vec::new();
        layer(&mut v, 2, 1, 1, &[0.5, -1.0], &[0.25]);
        layer(&mut v, 1, 2, 0, &[2.0, -3.0], &[0.0, 1.0]);
        v
    }

    #[test]
    fn forward_by_hand() {
        let bytes = net_2_1_2();
        let (n, rest) = Network::parse(&bytes, 2).unwrap();
        assert!(rest.is_empty());
        assert_eq!((n.inputs(), n.layers(), n.parameters()), (2, 2, 7));
        let mut r = [0.0; 2];
        // h = relu(0.5*4 - 1*1 + 0.25) = 1.25; r = [2.5, -2.75].
        n.forward(&[4.0, 1.0], &mut r).unwrap();
        assert_eq!(r, [2.5, -2.75]);
        // score = ((4-2.5)^2 + (1+2.75)^2) / 2 = (2.25 + 14.0625) / 2.
        assert_eq!(n.score(&[4.0, 1.0]).unwrap(), 8.15625);
        // relu clamps: h = relu(0.5*0 - 1*4 + 0.25) = 0 -> r = [0, 1].
        n.forward(&[0.0, 4.0], &mut r).unwrap();
        assert_eq!(r, [0.0, 1.0]);
        assert_eq!(n.score(&[1.0]), Err(ModelError::InputLength { expected: 2, actual: 1 }));
    }

    #[test]
    fn sigmoid_matches_its_definition() {
        let mut v = Vec::new();
        layer(&mut v, 1, 1, 2, &[1.0], &[0.0]);
        let (n, _) = Network::parse(&v, 1).unwrap();
        let mut r = [0.0];
        n.forward(&[0.0], &mut r).unwrap();
        assert_eq!(r[0], 0.5);
        n.forward(&[2.0], &mut r).unwrap();
        assert!((r[0] as f64 - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-7);
    }

    #[test]
    fn malformed_layers_are_refused_with_the_reason() {
        let good = net_2_1_2();
        for cut in [0, 5, 8, 12, good.len() - 1] {
            assert!(
                matches!(Network::parse(&good[..cut], 2), Err(ModelError::Truncated { .. })),
                "cut {cut}"
            );
        }
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(Network::parse(&bad, 2), Err(ModelError::BadActivation { layer: 0, code: 9 }));
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(Network::parse(&bad, 2), Err(ModelError::NonFinite { layer: 0 }));
        let mut bad = good.clone();
        bad[0] = 0;
        assert_eq!(Network::parse(&bad, 2), Err(ModelError::BadWidth { layer: 0, width: 0 }));
        assert_eq!(Network::parse(&good, 0), Err(ModelError::LayerCount { count: 0 }));
        let (first, _) = good.split_at(layer_bytes(2, 1));
        assert_eq!(Network::parse(first, 1), Err(ModelError::NotAutoencoder { inputs: 2, outputs: 1 }));
        let mut v = Vec::new();
        layer(&mut v, 2, 3, 0, &[0.0; 6], &[0.0; 3]);
        layer(&mut v, 2, 2, 0, &[0.0; 4], &[0.0; 2]);
        assert_eq!(Network::parse(&v, 2), Err(ModelError::ShapeChain { layer: 1, expected: 3, found: 2 }));
        let msg = std::format!("{}", ModelError::ShapeChain { layer: 1, expected: 3, found: 2 });
        assert!(msg.contains("layer 1") && msg.contains('3'), "{msg}");
    }
}
