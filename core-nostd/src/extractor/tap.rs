//! The sample tap: what the sanitiser made of each sample, for observers of the stream.

/// What the sanitiser made of one sample (see [`crate::sanitize`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SampleFate {
    /// Used as measured.
    Good = 0,
    /// Interpolated across a short gap.
    Filled = 1,
    /// Clipped as an isolated spike.
    Clipped = 2,
    /// In a gap that could not be repaired (held value; the window is invalid).
    Unrepaired = 3,
}

/// Observer of the sanitised sample stream ([`FeatureExtractor::push_slice_tapped`](crate::FeatureExtractor::push_slice_tapped)).
pub trait SampleTap {
    /// Called once per sample of `channel`, in stream order, with the value the features see.
    fn sample(&mut self, channel: usize, value: f32, fate: SampleFate);
}

/// The tap that does nothing (what [`FeatureExtractor::push`](crate::FeatureExtractor::push) uses).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTap;

impl SampleTap for NoTap {
    #[inline(always)]
    fn sample(&mut self, _channel: usize, _value: f32, _fate: SampleFate) {}
}
