//! z-score scaling: `z = (x - mean) / std`, and the statistics it is fitted with.
//!
//! A feature whose training std is 0 (constant in training) is only centred: its scale is taken
//! as 1, as scikit-learn's `StandardScaler` does, so a constant feature maps to 0 and a change
//! in it shows up in its own units rather than as an infinity.

use core::fmt;

/// Per-feature z-score parameters, borrowed (a firmware keeps them in flash or decodes them from
/// a bundle; the trainer keeps them in a `Vec`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scaler<'a> {
    mean: &'a [f32],
    std: &'a [f32],
}

impl<'a> Scaler<'a> {
    /// Checks and wraps the parameters: equal lengths, every mean finite, every std finite and
    /// `>= 0` (0 means "centre only", see the module docs).
    pub fn new(mean: &'a [f32], std: &'a [f32]) -> Result<Self, ScalerError> {
        if mean.len() != std.len() {
            return Err(ScalerError::LengthMismatch { expected: mean.len(), actual: std.len() });
        }
        if let Some(i) = mean.iter().position(|m| !m.is_finite()) {
            return Err(ScalerError::BadParameter { index: i, what: "mean", value: mean[i] });
        }
        if let Some(i) = std.iter().position(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(ScalerError::BadParameter { index: i, what: "std", value: std[i] });
        }
        Ok(Scaler { mean, std })
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.mean.len()
    }

    /// True when there are no features.
    pub fn is_empty(&self) -> bool {
        self.mean.is_empty()
    }

    /// Scales `features` in place. Fails, leaving `features` unchanged, if its length differs.
    pub fn apply(&self, features: &mut [f32]) -> Result<(), ScalerError> {
        if features.len() != self.mean.len() {
            return Err(ScalerError::LengthMismatch { expected: self.mean.len(), actual: features.len() });
        }
        for ((x, &m), &s) in features.iter_mut().zip(self.mean).zip(self.std) {
            *x = scale_value(*x, m, s);
        }
        Ok(())
    }
}

/// One z-score: `(x - mean) / std`, or `x - mean` when `std == 0`. The only place the
/// arithmetic is written: [`Scaler::apply`] and [`crate::bundle::Detector::scale`] call it.
#[inline]
pub fn scale_value(x: f32, mean: f32, std: f32) -> f32 {
    let scale = if std == 0.0 { 1.0 } else { std };
    (x - mean) / scale
}

/// Running mean and population variance of one feature (Welford, in `f64`), for fitting a
/// [`Scaler`]. Identical results for the same sequence of values on every target.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunningStats {
    n: u64,
    mean: f64,
    m2: f64,
}

impl RunningStats {
    /// An empty accumulator.
    pub const fn new() -> Self {
        RunningStats { n: 0, mean: 0.0, m2: 0.0 }
    }

    /// Adds one value. Non-finite values are refused (returns false) and not counted.
    pub fn push(&mut self, x: f32) -> bool {
        if !x.is_finite() {
            return false;
        }
        let x = f64::from(x);
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        true
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean, rounded to `f32` (0 when empty).
    pub fn mean(&self) -> f32 {
        self.mean as f32
    }

    /// Population standard deviation (ddof = 0), rounded to `f32` (0 when empty).
    pub fn std(&self) -> f32 {
        if self.n == 0 { 0.0 } else { libm::sqrt((self.m2 / self.n as f64).max(0.0)) as f32 }
    }
}

/// Why scaler parameters or an input were refused.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ScalerError {
    /// A vector has the wrong number of features.
    LengthMismatch {
        /// Number of features the scaler has.
        expected: usize,
        /// Number given.
        actual: usize,
    },
    /// A parameter is not usable (non-finite mean, negative or non-finite std).
    BadParameter {
        /// Feature index.
        index: usize,
        /// `"mean"` or `"std"`.
        what: &'static str,
        /// Value found.
        value: f32,
    },
}

impl fmt::Display for ScalerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ScalerError::LengthMismatch { expected, actual } => {
                write!(f, "scaler has {expected} features, input has {actual}")
            }
            ScalerError::BadParameter { index, what, value } => {
                write!(f, "scaler {what}[{index}] = {value}: a mean must be finite, a std finite and >= 0")
            }
        }
    }
}

impl core::error::Error for ScalerError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_centres_constant_features() {
        let mean = [1.0, 5.0, -2.0];
        let std = [2.0, 0.0, 0.5];
        let s = Scaler::new(&mean, &std).unwrap();
        let mut x = [3.0, 7.0, -2.5];
        s.apply(&mut x).unwrap();
        assert_eq!(x, [1.0, 2.0, -1.0]);
        let mut short = [0.0; 2];
        assert_eq!(s.apply(&mut short), Err(ScalerError::LengthMismatch { expected: 3, actual: 2 }));
        assert_eq!(short, [0.0; 2]);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(matches!(Scaler::new(&[0.0], &[-1.0]), Err(ScalerError::BadParameter { what: "std", .. })));
        assert!(matches!(
            Scaler::new(&[f32::NAN], &[1.0]),
            Err(ScalerError::BadParameter { what: "mean", .. })
        ));
        assert!(matches!(Scaler::new(&[0.0; 2], &[1.0]), Err(ScalerError::LengthMismatch { .. })));
    }

    #[test]
    fn running_stats_match_two_pass() {
        let xs: std::vec::Vec<f32> = (0..1000).map(|i| 1e4 + (i as f32 * 0.7).sin()).collect();
        let mut r = RunningStats::new();
        xs.iter().for_each(|&x| assert!(r.push(x)));
        assert!(!r.push(f32::NAN));
        let n = xs.len() as f64;
        let mean = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = xs.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
        assert_eq!(r.count(), 1000);
        assert!((f64::from(r.mean()) - mean).abs() <= 1e-3);
        assert!((f64::from(r.std()) - var.sqrt()).abs() / var.sqrt() < 1e-6);
    }
}
