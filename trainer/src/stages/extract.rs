//! Runs avm-core's extractor over a synchronised recording. The trainer never computes a
//! feature itself: this module only feeds the core and collects what it returns.

use crate::error::UsageError;
use crate::stages::sync::Synced;
use avm_core::{ChannelQuality, ExtractorConfig, FeatureExtractor, HostFft, SampleFate, SampleTap};

/// Largest number of vibration channels wired in (the core is generic; this is the dispatch).
pub const MAX_CHANNELS: usize = 4;
/// FFT capacity on the host: the largest `fft_len` the core supports with its `fft-32768`
/// feature ([`avm_core::FFT_LEN_MAX`]), so a 30 Hz shaft sampled at 64 kHz gets 1P resolved
/// (16384 points: 3.9 Hz bins). Such a detector runs on the host only; a firmware built for
/// shorter FFTs refuses its bundle (`Detector::parse_for`).
pub const FFT_MAX: usize = avm_core::FFT_LEN_MAX as usize;
/// Envelope ring capacity (`ENV_MAX`): the longest `env_fft_len` the core accepts.
pub const ENV_MAX: usize = avm_core::ENV_FFT_LEN_MAX as usize;

/// The host's core for `CH` channels, with avm-core's host FFT engine: microfft's operations
/// and bits, laid out for SIMD (the firmware runs microfft itself; the parity suite compares).
pub type Core<const CH: usize> = FeatureExtractor<CH, FFT_MAX, ENV_MAX, HostFft<FFT_MAX>>;

/// One window's output of the core, channel count erased.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Window index.
    pub window_index: u32,
    /// First sample of the window.
    pub start_sample: u64,
    /// Flat, channel-major features (`FEATURES_PER_CHANNEL` per channel).
    pub features: Vec<f32>,
    /// Sanitiser counts per channel.
    pub quality: Vec<ChannelQuality>,
    /// No unrepaired sample in the window.
    pub valid: bool,
    /// Rates of change computed against the previous window.
    pub roc_valid: bool,
}

/// The sanitised stream the features were computed from, per channel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sanitised {
    /// Values.
    pub clean: Vec<Vec<f32>>,
    /// [`SampleFate`] codes.
    pub fate: Vec<Vec<u8>>,
}

impl SampleTap for Sanitised {
    fn sample(&mut self, channel: usize, value: f32, fate: SampleFate) {
        self.clean[channel].push(value);
        self.fate[channel].push(fate as u8);
    }
}

/// avm-core's extractor for 1 to [`MAX_CHANNELS`] channels, fed a recording in blocks of the
/// synchronised timeline (any split gives the same frames: the core streams).
pub struct Extractor {
    inner: Inner,
    frames: Vec<Frame>,
    tap: Option<Sanitised>,
}

enum Inner {
    C1(Box<Core<1>>),
    C2(Box<Core<2>>),
    C3(Box<Core<3>>),
    C4(Box<Core<4>>),
}

/// A configured core on the heap, built in place: with the host's capacity it is about
/// `CH · 148 KiB + 720 KiB` (448 KiB of it the host FFT's twiddles and work arrays), too large
/// to pass through a thread's stack by value.
pub fn new_core<const CH: usize>(cfg: ExtractorConfig) -> Result<Box<Core<CH>>, UsageError> {
    // SAFETY: `FeatureExtractor::UNCONFIGURED` is all zero bytes (avm-core's contract, checked
    // for this instantiation by `unconfigured_core_is_all_zero_bytes` below), so zeroed memory
    // holds exactly that valid value.
    let mut fx: Box<Core<CH>> = unsafe { Box::new_zeroed().assume_init() };
    fx.configure(cfg).map_err(|e| UsageError(format!("features: {e}")))?;
    Ok(fx)
}

fn convert<const CH: usize>(f: avm_core::FeatureFrame<CH>) -> Frame {
    Frame {
        window_index: f.window_index,
        start_sample: f.start_sample,
        features: f.flat().collect(),
        quality: f.quality.to_vec(),
        valid: f.valid,
        roc_valid: f.roc_valid,
    }
}

/// Pushes one block through a `CH`-channel core: vibration `vib[c]`, speed `speed[speed_ref[c]]`.
fn push_block<const CH: usize>(
    fx: &mut Core<CH>,
    vib: &[&[f32]],
    speed: &[&[f32]],
    speed_ref: &[usize],
    frames: &mut Vec<Frame>,
    tap: Option<&mut Sanitised>,
) -> Result<(), UsageError> {
    let n = vib.iter().map(|v| v.len()).min().unwrap_or(0);
    let x: Vec<[f32; CH]> = (0..n).map(|i| std::array::from_fn(|c| vib[c][i])).collect();
    let rpm: Vec<[f32; CH]> = (0..n).map(|i| std::array::from_fn(|c| speed[speed_ref[c]][i])).collect();
    match tap {
        Some(t) => fx.push_slice_tapped(&x, &rpm, |f| frames.push(convert(f)), t),
        None => fx.push_slice(&x, &rpm, |f| frames.push(convert(f))),
    }
    .map_err(|e| UsageError(e.to_string()))
}

fn finish_core<const CH: usize>(fx: &mut Core<CH>, frames: &mut Vec<Frame>, tap: Option<&mut Sanitised>) {
    match tap {
        Some(t) => frames.extend(fx.finish_tapped(t).map(convert)),
        None => frames.extend(fx.finish().map(convert)),
    }
}

impl Extractor {
    /// A core for `channels` vibration channels; with `tap`, the sanitised stream is kept too.
    pub fn new(channels: usize, cfg: ExtractorConfig, tap: bool) -> Result<Extractor, UsageError> {
        let inner = match channels {
            1 => Inner::C1(new_core(cfg)?),
            2 => Inner::C2(new_core(cfg)?),
            3 => Inner::C3(new_core(cfg)?),
            4 => Inner::C4(new_core(cfg)?),
            n => {
                return Err(UsageError(format!(
                    "{n} vibration channels: this build supports 1..={MAX_CHANNELS}"
                )));
            }
        };
        let tap =
            tap.then(|| Sanitised { clean: vec![Vec::new(); channels], fate: vec![Vec::new(); channels] });
        Ok(Extractor { inner, frames: Vec::new(), tap })
    }

    /// Pushes the next samples of the timeline: vibration per channel, speeds per speed channel,
    /// `speed_ref[c]` naming channel `c`'s speed.
    pub fn push(&mut self, vib: &[&[f32]], speed: &[&[f32]], speed_ref: &[usize]) -> Result<(), UsageError> {
        let (f, t) = (&mut self.frames, self.tap.as_mut());
        match &mut self.inner {
            Inner::C1(fx) => push_block(fx, vib, speed, speed_ref, f, t),
            Inner::C2(fx) => push_block(fx, vib, speed, speed_ref, f, t),
            Inner::C3(fx) => push_block(fx, vib, speed, speed_ref, f, t),
            Inner::C4(fx) => push_block(fx, vib, speed, speed_ref, f, t),
        }
    }

    /// Frames completed so far, taken out (the caller labels them while the stream goes on).
    pub fn take_frames(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.frames)
    }

    /// Ends the stream: the last frames, and the sanitised stream when tapped.
    pub fn finish(mut self) -> (Vec<Frame>, Option<Sanitised>) {
        let (f, t) = (&mut self.frames, self.tap.as_mut());
        match &mut self.inner {
            Inner::C1(fx) => finish_core(fx, f, t),
            Inner::C2(fx) => finish_core(fx, f, t),
            Inner::C3(fx) => finish_core(fx, f, t),
            Inner::C4(fx) => finish_core(fx, f, t),
        }
        (self.frames, self.tap)
    }
}

/// Extracts every frame of `s`; with `tap`, also returns the sanitised stream.
pub fn extract(
    s: &Synced,
    cfg: ExtractorConfig,
    tap: bool,
) -> Result<(Vec<Frame>, Option<Sanitised>), UsageError> {
    let mut x = Extractor::new(s.vib.len(), cfg, tap)?;
    let vib: Vec<&[f32]> = s.vib.iter().map(Vec::as_slice).collect();
    let speed: Vec<&[f32]> = s.speed.iter().map(Vec::as_slice).collect();
    x.push(&vib, &speed, &s.speed_ref)?;
    Ok(x.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfigured_core_is_all_zero_bytes() {
        // What `new_core`'s zeroed allocation relies on, for the host's widest instantiation.
        static FX: Core<MAX_CHANNELS> = FeatureExtractor::UNCONFIGURED;
        // SAFETY: reads the bytes of a static whose image the constant initialised entirely.
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw const FX).cast::<u8>(), size_of::<Core<MAX_CHANNELS>>())
        };
        assert!(bytes.iter().all(|&b| b == 0), "FeatureExtractor::UNCONFIGURED has a non-zero byte");
        println!(
            "host core sizes: 1 channel {} B, 2 channels {} B",
            size_of::<Core<1>>(),
            size_of::<Core<2>>()
        );
    }

    #[test]
    fn zeroed_core_is_the_same_extractor_as_a_constructed_one() {
        let cfg = ExtractorConfig::default_at(2048).unwrap();
        let mut a = new_core::<1>(cfg).unwrap();
        let mut b = Box::new(FeatureExtractor::<1, 1024, 0>::new(cfg).unwrap());
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        for n in 0..2048 * 25 {
            let x = [((n * 7919) % 1000) as f32 / 1000.0 - 0.5];
            fa.extend(a.push(&x, &[3000.0]));
            fb.extend(b.push(&x, &[3000.0]));
        }
        fa.extend(a.finish());
        fb.extend(b.finish());
        assert_eq!(fa.len(), 4);
        assert_eq!(fa, fb);
    }
}
