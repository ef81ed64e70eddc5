//! The firmware's host interface, written once for the firmware and the host tests that drive
//! it (as defmt has one parser for host and target): the sample files a host feeds a board and
//! the line the board prints per window.
//!
//! # Sample files (little-endian)
//! | offset | `AVMI` (f32 samples) | `AVMQ` (16-bit samples) |
//! |---|---|---|
//! | 0 | magic `AVMI` | magic `AVMQ` |
//! | 4 | `channels: u16` | `channels: u16` |
//! | 6 | `flags: u16` | `flags: u16` |
//! | 8 | `samples: u32` | `samples: u32` |
//! | 12 | per sample: per channel `vib_g: f32, rpm: f32`, then the phase byte | `vib_lsb_g: f32` |
//! | 16 | | per sample: per channel `vib: i16` (g = `vib as f32 * vib_lsb_g`; `i16::MIN` = missing), `rpm: u16`, then the phase byte |
//!
//! Flag bit 0 ([`FLAG_PHASE`]): every sample ends with its phase code `u8` ([`crate::phase`]);
//! without it there is no phase byte and the phase is unknown. Other bits must be zero.
//!
//! # Window line
//! `W <window> v<valid> r<roc_valid> p<phase> j<judged> a<alarm> s<score bits, 8 hex> f<feature bits, 8 hex each, comma separated>`:
//! every number as its exact bits, so host and board can be compared bit for bit.
//!
//! # Alert line
//! `A <R|C> <window> n<count>/<of> w<raised window> s<score bits> t<threshold bits> k<peak score bits>`:
//! an [`crate::alert::AlertEvent`] (raised or cleared), bit for bit.

use crate::alert::{AlertEvent, AlertKind};
use core::fmt;
use core::ops::Range;

/// Byte ranges of a sample file's header.
pub mod field {
    use core::ops::Range;

    /// Magic.
    pub const MAGIC: Range<usize> = 0..4;
    /// Channels, `u16`.
    pub const CHANNELS: Range<usize> = 4..6;
    /// Flags, `u16` ([`super::FLAG_PHASE`]).
    pub const FLAGS: Range<usize> = 6..8;
    /// Samples per channel, `u32`.
    pub const SAMPLES: Range<usize> = 8..12;
    /// `AVMQ` only: g per count of the vibration samples, `f32`.
    pub const VIB_LSB_G: Range<usize> = 12..16;
}

/// Sample-file flag: every sample ends with a phase-code byte.
pub const FLAG_PHASE: u16 = 1;

/// How a sample file stores its samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFormat {
    /// `AVMI`: `vib_g: f32, rpm: f32` per sample and channel.
    F32,
    /// `AVMQ`: `vib: i16` (times the header's LSB), `rpm: u16` per sample and channel.
    Q16,
}

impl SampleFormat {
    /// The file's magic.
    pub const fn magic(self) -> [u8; 4] {
        match self {
            SampleFormat::F32 => *b"AVMI",
            SampleFormat::Q16 => *b"AVMQ",
        }
    }

    /// Bytes before the first sample.
    pub const fn header_bytes(self) -> usize {
        match self {
            SampleFormat::F32 => field::SAMPLES.end,
            SampleFormat::Q16 => field::VIB_LSB_G.end,
        }
    }

    /// Bytes of one sample of one channel.
    pub const fn channel_bytes(self) -> usize {
        match self {
            SampleFormat::F32 => 8,
            SampleFormat::Q16 => 4,
        }
    }
}

/// Why a sample file or a window line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than the header.
    Truncated,
    /// Not the magic of the expected format.
    BadMagic,
    /// The file's length is not the header's promise (`header + samples x channels x size`).
    Length {
        /// Bytes the header implies.
        expected: usize,
        /// Bytes found.
        actual: usize,
    },
    /// A window line that does not follow the format (the part that broke it).
    Line(&'static str),
    /// More features on a line than the buffer given holds.
    TooManyFeatures,
    /// Flag bits this build does not know.
    Flags(u16),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("shorter than its header"),
            WireError::BadMagic => f.write_str("wrong magic"),
            WireError::Length { expected, actual } => {
                write!(f, "{actual} bytes, the header implies {expected}")
            }
            WireError::Line(part) => write!(f, "malformed window line ({part})"),
            WireError::TooManyFeatures => f.write_str("more features than expected"),
            WireError::Flags(bits) => write!(f, "unknown flags {bits:#06x} (only bit 0, phase, is defined)"),
        }
    }
}

impl core::error::Error for WireError {}

/// A sample file's header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    /// Sample format.
    pub format: SampleFormat,
    /// Channels.
    pub channels: u16,
    /// Samples per channel.
    pub samples: u32,
    /// `Q16`: g per count (0 for `F32`).
    pub vib_lsb_g: f32,
    /// Every sample ends with its phase code ([`FLAG_PHASE`]).
    pub phase: bool,
}

fn bytes_at<const N: usize>(b: &[u8], r: Range<usize>) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[r]);
    out
}

impl Header {
    /// Reads the header of a `format` file from its first bytes.
    pub fn parse(bytes: &[u8], format: SampleFormat) -> Result<Header, WireError> {
        if bytes.len() < format.header_bytes() {
            return Err(WireError::Truncated);
        }
        if bytes[field::MAGIC] != format.magic() {
            return Err(WireError::BadMagic);
        }
        let flags = u16::from_le_bytes(bytes_at(bytes, field::FLAGS));
        if flags & !FLAG_PHASE != 0 {
            return Err(WireError::Flags(flags));
        }
        Ok(Header {
            phase: flags & FLAG_PHASE != 0,
            format,
            channels: u16::from_le_bytes(bytes_at(bytes, field::CHANNELS)),
            samples: u32::from_le_bytes(bytes_at(bytes, field::SAMPLES)),
            vib_lsb_g: match format {
                SampleFormat::F32 => 0.0,
                SampleFormat::Q16 => f32::from_le_bytes(bytes_at(bytes, field::VIB_LSB_G)),
            },
        })
    }

    /// Writes the header into `out` (at least [`SampleFormat::header_bytes`] long) and returns
    /// its length.
    pub fn encode(&self, out: &mut [u8]) -> usize {
        let n = self.format.header_bytes();
        out[..n].fill(0);
        out[field::MAGIC].copy_from_slice(&self.format.magic());
        out[field::CHANNELS].copy_from_slice(&self.channels.to_le_bytes());
        out[field::SAMPLES].copy_from_slice(&self.samples.to_le_bytes());
        let flags = if self.phase { FLAG_PHASE } else { 0 };
        out[field::FLAGS].copy_from_slice(&flags.to_le_bytes());
        if self.format == SampleFormat::Q16 {
            out[field::VIB_LSB_G].copy_from_slice(&self.vib_lsb_g.to_le_bytes());
        }
        n
    }

    /// Bytes of one sample (all channels, and the phase byte if the file has one).
    pub fn sample_bytes(&self) -> usize {
        self.format.channel_bytes() * usize::from(self.channels) + usize::from(self.phase)
    }

    /// One sample's phase code ([`crate::phase::PHASE_UNKNOWN`] if the file has none).
    pub fn decode_phase(&self, sample: &[u8]) -> u8 {
        if self.phase { sample[self.sample_bytes() - 1] } else { crate::phase::PHASE_UNKNOWN }
    }

    /// Writes one sample's phase code (nothing if the file has no phase byte).
    pub fn encode_phase(&self, code: u8, sample: &mut [u8]) {
        if self.phase {
            sample[self.sample_bytes() - 1] = code;
        }
    }

    /// The file's length the header implies.
    pub fn file_bytes(&self) -> usize {
        self.format.header_bytes() + self.sample_bytes() * self.samples as usize
    }

    /// Checks that a file of `len` bytes holds exactly the samples the header promises.
    pub fn check_len(&self, len: usize) -> Result<(), WireError> {
        let expected = self.file_bytes();
        if len == expected { Ok(()) } else { Err(WireError::Length { expected, actual: len }) }
    }

    /// Channel `c` of one sample (`sample` is [`Header::sample_bytes`] long): `(vib_g, rpm)`.
    pub fn decode(&self, sample: &[u8], c: usize) -> (f32, f32) {
        let at = c * self.format.channel_bytes();
        match self.format {
            SampleFormat::F32 => (
                f32::from_le_bytes(bytes_at(sample, at..at + 4)),
                f32::from_le_bytes(bytes_at(sample, at + 4..at + 8)),
            ),
            SampleFormat::Q16 => (
                counts_to_g(i16::from_le_bytes(bytes_at(sample, at..at + 2)), self.vib_lsb_g),
                f32::from(u16::from_le_bytes(bytes_at(sample, at + 2..at + 4))),
            ),
        }
    }

    /// Writes channel `c` of one sample: `F32` stores the values; `Q16` rounds the vibration
    /// to counts of the LSB (clamped to ±32 767; a non-finite value becomes `i16::MIN`, which
    /// decodes to a sample far outside any full scale, i.e. a gap) and the speed to whole rpm
    /// (clamped to 0..=65 535; non-finite becomes 0).
    pub fn encode_sample(&self, vib_g: f32, rpm: f32, sample: &mut [u8], c: usize) {
        let at = c * self.format.channel_bytes();
        match self.format {
            SampleFormat::F32 => {
                sample[at..at + 4].copy_from_slice(&vib_g.to_le_bytes());
                sample[at + 4..at + 8].copy_from_slice(&rpm.to_le_bytes());
            }
            SampleFormat::Q16 => {
                let q = if vib_g.is_finite() {
                    libm::roundf(vib_g / self.vib_lsb_g).clamp(-32767.0, 32767.0) as i16
                } else {
                    i16::MIN
                };
                let s = if rpm.is_finite() { libm::roundf(rpm).clamp(0.0, 65535.0) as u16 } else { 0 };
                sample[at..at + 2].copy_from_slice(&q.to_le_bytes());
                sample[at + 2..at + 4].copy_from_slice(&s.to_le_bytes());
            }
        }
    }
}

/// A 16-bit ADC sample in g: `counts × g_per_count`, in `f32`. The one conversion of counts,
/// used by `AVMQ` files and by the C API's `int16_t` blocks, so both give the extractor the same
/// bits. `i16::MIN` is not special here: as a sample far outside any full scale it becomes a gap
/// in the sanitiser, which is how `AVMQ` marks a missing sample.
pub fn counts_to_g(counts: i16, g_per_count: f32) -> f32 {
    f32::from(counts) * g_per_count
}

/// One window line's fields besides the features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLine {
    /// Window index.
    pub window_index: u32,
    /// No unrepaired sample in the window.
    pub valid: bool,
    /// Rates of change computed against the previous window.
    pub roc_valid: bool,
    /// The window's phase code.
    pub phase: u8,
    /// The window got a verdict.
    pub judged: bool,
    /// The detector alarmed.
    pub alarm: bool,
    /// The anomaly score's bits.
    pub score_bits: u32,
}

impl WindowLine {
    /// Writes the line (without a newline).
    pub fn write(&self, w: &mut impl fmt::Write, features: &[f32]) -> fmt::Result {
        write!(
            w,
            "W {} v{} r{} p{} j{} a{} s{:08x} f",
            self.window_index,
            u8::from(self.valid),
            u8::from(self.roc_valid),
            self.phase,
            u8::from(self.judged),
            u8::from(self.alarm),
            self.score_bits
        )?;
        for (i, x) in features.iter().enumerate() {
            write!(w, "{}{:08x}", if i == 0 { "" } else { "," }, x.to_bits())?;
        }
        Ok(())
    }

    /// Parses a line written by [`WindowLine::write`]; the feature bits go to `features`.
    /// Returns the fields and the number of features.
    pub fn parse(line: &str, features: &mut [u32]) -> Result<(WindowLine, usize), WireError> {
        let mut parts = line.split(' ');
        if parts.next() != Some("W") {
            return Err(WireError::Line("no W"));
        }
        let mut next = |what: &'static str| parts.next().ok_or(WireError::Line(what));
        let window_index = next("window")?.parse().map_err(|_| WireError::Line("window"))?;
        let flag = |s: &str, k: &str, what: &'static str| match s.strip_prefix(k) {
            Some("0") => Ok(false),
            Some("1") => Ok(true),
            _ => Err(WireError::Line(what)),
        };
        let valid = flag(next("valid")?, "v", "valid")?;
        let roc_valid = flag(next("roc_valid")?, "r", "roc_valid")?;
        let phase =
            next("phase")?.strip_prefix('p').and_then(|p| p.parse().ok()).ok_or(WireError::Line("phase"))?;
        let judged = flag(next("judged")?, "j", "judged")?;
        let alarm = flag(next("alarm")?, "a", "alarm")?;
        let score_bits = hex(next("score")?.strip_prefix('s').ok_or(WireError::Line("score"))?, "score")?;
        let feats = next("features")?.strip_prefix('f').ok_or(WireError::Line("features"))?;
        if parts.next().is_some() {
            return Err(WireError::Line("trailing fields"));
        }
        let mut n = 0;
        for h in feats.split(',').filter(|h| !h.is_empty()) {
            *features.get_mut(n).ok_or(WireError::TooManyFeatures)? = hex(h, "feature")?;
            n += 1;
        }
        Ok((WindowLine { window_index, valid, roc_valid, phase, judged, alarm, score_bits }, n))
    }
}

fn hex(s: &str, what: &'static str) -> Result<u32, WireError> {
    if s.len() == 8 {
        u32::from_str_radix(s, 16).map_err(|_| WireError::Line(what))
    } else {
        Err(WireError::Line(what))
    }
}

/// An alert line: an [`AlertEvent`] as exact bits.
pub struct AlertLine;

impl AlertLine {
    /// Writes the event's line (without a newline).
    pub fn write(w: &mut impl fmt::Write, e: &AlertEvent) -> fmt::Result {
        write!(
            w,
            "A {} {} n{}/{} w{} s{:08x} t{:08x} k{:08x}",
            match e.kind {
                AlertKind::Raised => 'R',
                AlertKind::Cleared => 'C',
            },
            e.window_index,
            e.count,
            e.of,
            e.raised_window,
            e.score.to_bits(),
            e.threshold.to_bits(),
            e.peak_score.to_bits()
        )
    }

    /// Parses a line written by [`AlertLine::write`].
    pub fn parse(line: &str) -> Result<AlertEvent, WireError> {
        let mut parts = line.split(' ');
        if parts.next() != Some("A") {
            return Err(WireError::Line("no A"));
        }
        let mut next = |what: &'static str| parts.next().ok_or(WireError::Line(what));
        let kind = match next("kind")? {
            "R" => AlertKind::Raised,
            "C" => AlertKind::Cleared,
            _ => return Err(WireError::Line("kind")),
        };
        let window_index = next("window")?.parse().map_err(|_| WireError::Line("window"))?;
        let (count, of) = next("count")?
            .strip_prefix('n')
            .and_then(|c| c.split_once('/'))
            .and_then(|(c, o)| Some((c.parse().ok()?, o.parse().ok()?)))
            .ok_or(WireError::Line("count"))?;
        let raised_window = next("raised")?
            .strip_prefix('w')
            .and_then(|w| w.parse().ok())
            .ok_or(WireError::Line("raised"))?;
        let mut bits = |k: char, what: &'static str| -> Result<f32, WireError> {
            Ok(f32::from_bits(hex(next(what)?.strip_prefix(k).ok_or(WireError::Line(what))?, what)?))
        };
        let score = bits('s', "score")?;
        let threshold = bits('t', "threshold")?;
        let peak_score = bits('k', "peak")?;
        if parts.next().is_some() {
            return Err(WireError::Line("trailing fields"));
        }
        Ok(AlertEvent { kind, window_index, score, threshold, count, of, raised_window, peak_score })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::String;

    #[test]
    fn window_lines_round_trip_bit_for_bit() {
        let l = WindowLine {
            window_index: 7,
            valid: true,
            roc_valid: false,
            phase: 3,
            judged: true,
            alarm: true,
            score_bits: 0x3f80_0001,
        };
        let f = [1.5f32, -0.0, f32::NAN, f32::MIN_POSITIVE];
        let mut s = String::new();
        l.write(&mut s, &f).unwrap();
        assert_eq!(s, "W 7 v1 r0 p3 j1 a1 s3f800001 f3fc00000,80000000,7fc00000,00800000");
        let mut out = [0u32; 4];
        assert_eq!(WindowLine::parse(&s, &mut out), Ok((l, 4)));
        assert_eq!(out, f.map(f32::to_bits));
        assert_eq!(WindowLine::parse(&s, &mut [0u32; 3]), Err(WireError::TooManyFeatures));
        for bad in [
            "X 7",
            "W x v1 r0 p0 j1 a1 s00000000 f",
            "W 7 v2 r0 p0 j1 a1 s00000000 f",
            "W 7 v1 r0 p256 j1 a1 s00000000 f",
            "W 7 v1 r0 p0 j1 a1 s0 f",
            "W 7 v1 r0 a1 s00000000 f",
            "W 7 v1 r0 p0 j1 a1 s00000000 f1 x",
        ] {
            assert!(WindowLine::parse(bad, &mut out).is_err(), "{bad}");
        }
    }

    #[test]
    fn alert_lines_round_trip_bit_for_bit() {
        let e = AlertEvent {
            kind: AlertKind::Cleared,
            window_index: 41,
            score: 0.125,
            threshold: 0.07124,
            count: 3,
            of: 3,
            raised_window: 12,
            peak_score: f32::from_bits(0x4151_189f),
        };
        let mut s = String::new();
        AlertLine::write(&mut s, &e).unwrap();
        assert_eq!(s, "A C 41 n3/3 w12 s3e000000 t3d91e647 k4151189f");
        assert_eq!(AlertLine::parse(&s), Ok(e));
        for bad in [
            "A X 1 n1/1 w1 s00000000 t00000000 k00000000",
            "A R 1 n1 w1 s0 t0 k0",
            "W 1",
            "A R 1 n1/1 w1 s00000000 t00000000",
        ] {
            assert!(AlertLine::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sample_files_round_trip() {
        for (format, lsb) in [(SampleFormat::F32, 0.0), (SampleFormat::Q16, 0.01)] {
            let h = Header {
                format,
                channels: 2,
                samples: 3,
                vib_lsb_g: lsb,
                phase: format == SampleFormat::Q16,
            };
            let mut file = std::vec![0u8; h.file_bytes()];
            let at = h.encode(&mut file);
            assert_eq!(Header::parse(&file, format), Ok(h));
            assert_eq!(h.check_len(file.len()), Ok(()));
            assert_eq!(
                h.check_len(file.len() - 1),
                Err(WireError::Length { expected: file.len(), actual: file.len() - 1 })
            );
            let values = [(0.25f32, 3000.0f32), (-1.0, 4000.4), (f32::NAN, f32::INFINITY)];
            for (i, (v, r)) in values.iter().enumerate() {
                let s = &mut file[at + i * h.sample_bytes()..at + (i + 1) * h.sample_bytes()];
                h.encode_sample(*v, *r, s, 1);
            }
            h.encode_phase(4, &mut file[at + h.sample_bytes()..at + 2 * h.sample_bytes()]);
            let expected_phase = if h.phase { 4 } else { crate::phase::PHASE_UNKNOWN };
            assert_eq!(h.decode_phase(&file[at + h.sample_bytes()..]), expected_phase);
            let (v, r) = h.decode(&file[at + h.sample_bytes()..], 1);
            match format {
                SampleFormat::F32 => assert_eq!((v, r), (-1.0, 4000.4)),
                SampleFormat::Q16 => assert_eq!((v, r), (-100.0 * 0.01, 4000.0)),
            }
            let (v, r) = h.decode(&file[at + 2 * h.sample_bytes()..], 1);
            if format == SampleFormat::Q16 {
                assert_eq!((v, r), (f32::from(i16::MIN) * 0.01, 0.0));
            } else {
                assert!(v.is_nan() && r.is_infinite());
            }
        }
        assert_eq!(Header::parse(b"AVMQ", SampleFormat::Q16), Err(WireError::Truncated));
        assert_eq!(Header::parse(b"AVMI\0\0\x02\0\0\0\0\0", SampleFormat::F32), Err(WireError::Flags(2)));
        assert_eq!(
            Header::parse(b"AVMQ\0\0\0\0\0\0\0\0\0\0\0\0", SampleFormat::F32),
            Err(WireError::BadMagic)
        );
    }
}
