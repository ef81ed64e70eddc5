//! Second-order IIR sections for the envelope path: band-pass and low-pass biquads from R.
//! Bristow-Johnson's "Audio EQ Cookbook" formulas (the textbook bilinear-transform designs),
//! designed once in `f64` with `libm` and run per sample in `f32`, direct form I, in a fixed
//! order: the same bits on every target.
//!
//! Written here rather than taken from a crate: the filter must be `no_std`, allocation-free
//! and bit-identical on host and Cortex-M4F (no FMA, one operation order), and its coefficients
//! must be reproducible by the numpy reference from the same published formulas.

/// One biquad `y = (b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2)`, coefficients normalised by `a0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Biquad {
    pub b: [f32; 3],
    pub a: [f32; 2],
}

/// The state of one biquad (the last two inputs and outputs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct BiquadState {
    x1: f32,
    x2: f32,
    y1: f32,
    y2: f32,
}

impl BiquadState {
    pub const ZERO: BiquadState = BiquadState { x1: 0.0, x2: 0.0, y1: 0.0, y2: 0.0 };

    #[inline]
    pub fn step(&mut self, f: &Biquad, x: f32) -> f32 {
        let y = f.b[0] * x + f.b[1] * self.x1 + f.b[2] * self.x2 - f.a[0] * self.y1 - f.a[1] * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

impl Biquad {
    /// Outputs zero (a placeholder where no filter runs).
    pub const ZERO: Biquad = Biquad { b: [0.0; 3], a: [0.0; 2] };

    fn normalised(b: [f64; 3], a0: f64, a1: f64, a2: f64) -> Biquad {
        Biquad { b: b.map(|v| (v / a0) as f32), a: [(a1 / a0) as f32, (a2 / a0) as f32] }
    }

    /// Band-pass with 0 dB peak gain at `f0_hz`, bandwidth `bw_oct` octaves (cookbook "BPF,
    /// constant 0 dB peak gain").
    pub fn band_pass(f0_hz: f64, bw_oct: f64, fs_hz: f64) -> Biquad {
        let w0 = 2.0 * core::f64::consts::PI * f0_hz / fs_hz;
        let (s, c) = (libm::sin(w0), libm::cos(w0));
        let alpha = s * libm::sinh(core::f64::consts::LN_2 / 2.0 * bw_oct * w0 / s);
        Biquad::normalised([alpha, 0.0, -alpha], 1.0 + alpha, -2.0 * c, 1.0 - alpha)
    }

    /// Low-pass at `fc_hz` with quality `q` (1/√2: Butterworth second order).
    pub fn low_pass(fc_hz: f64, q: f64, fs_hz: f64) -> Biquad {
        let w0 = 2.0 * core::f64::consts::PI * fc_hz / fs_hz;
        let (s, c) = (libm::sin(w0), libm::cos(w0));
        let alpha = s / (2.0 * q);
        let b1 = 1.0 - c;
        Biquad::normalised([b1 / 2.0, b1, b1 / 2.0], 1.0 + alpha, -2.0 * c, 1.0 - alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steady-state gain of `f` (cascaded `n` times) for a sine at `f_hz`, by simulation.
    fn gain(f: &Biquad, n: usize, f_hz: f64, fs: f64) -> f64 {
        let mut st = [BiquadState::ZERO; 2];
        let mut peak = 0.0f64;
        for i in 0..(fs as usize * 4) {
            let x = libm::sin(2.0 * core::f64::consts::PI * f_hz * i as f64 / fs) as f32;
            let mut y = x;
            for s in st.iter_mut().take(n) {
                y = s.step(f, y);
            }
            if i > fs as usize * 3 {
                peak = peak.max(f64::from(y.abs()));
            }
        }
        peak
    }

    #[test]
    fn band_pass_passes_its_centre_and_stops_far_away() {
        let fs = 2048.0;
        let bp = Biquad::band_pass(400.0, 1.0, fs);
        assert!((gain(&bp, 1, 400.0, fs) - 1.0).abs() < 0.01);
        assert!(gain(&bp, 2, 50.0, fs) < 0.02);
        let lp = Biquad::low_pass(100.0, core::f64::consts::FRAC_1_SQRT_2, fs);
        assert!((gain(&lp, 1, 10.0, fs) - 1.0).abs() < 0.01);
        // Butterworth: -3 dB at the cut-off.
        assert!((gain(&lp, 1, 100.0, fs) - core::f64::consts::FRAC_1_SQRT_2).abs() < 0.01);
        assert!(gain(&lp, 2, 600.0, fs) < 0.01);
    }
}
