//! Where samples come from: a recorded flight from the host (`avm-input.avmi`, f32) or the
//! segment embedded in flash (`AVMQ`, 16-bit). Both yield blocks of `[vib_g; CH]` and
//! `[shaft_speed_rpm; CH]` samples, as a sensor loop's DMA would, and each sample's flight-phase
//! code (as an avionics bus would give it; unknown when the file has no phase byte).
//!
//! Both formats are [`avm_core::wire`]'s (`AVMI`: f32 samples; `AVMQ`: 16-bit), decoded with
//! its functions: the host tests write them with the same code.

use crate::CH;
use crate::host::File;
use avm_core::wire::{Header, SampleFormat};

/// A fixed-capacity text buffer for messages.
pub struct Msg {
    buf: [u8; 1024],
    len: usize,
}

impl Msg {
    pub const fn new() -> Msg {
        Msg { buf: [0; 1024], len: 0 }
    }
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let b = s.as_bytes();
        if self.len + b.len() > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
        Ok(())
    }
}

#[cfg_attr(feature = "defmt", allow(dead_code))]
pub enum Source {
    Host { file: File, header: Header, left: usize },
    Embedded { data: &'static [u8], header: Header, at: usize, left: usize },
}

fn header(bytes: &[u8], format: SampleFormat) -> Result<Header, &'static str> {
    let h = Header::parse(bytes, format).map_err(|e| match e {
        avm_core::wire::WireError::BadMagic => "input: wrong magic",
        avm_core::wire::WireError::Flags(_) => "input: unknown header flags (only bit 0, phase, is defined)",
        _ => "input: truncated header",
    })?;
    if usize::from(h.channels) != CH {
        return Err("input: not 2 channels");
    }
    Ok(h)
}

#[cfg_attr(feature = "defmt", allow(dead_code))]
impl Source {
    /// The host's `avm-input.avmi` if there is one, else the embedded segment.
    pub fn open(embedded: &'static [u8]) -> Result<Source, &'static str> {
        if let Some(mut file) = File::open(b"avm-input.avmi\0") {
            let mut h = [0u8; SampleFormat::F32.header_bytes()];
            file.read_exact(&mut h)?;
            let header = header(&h, SampleFormat::F32)?;
            if header.check_len(file.len()?).is_err() {
                return Err("input: avm-input.avmi length does not match its header");
            }
            return Ok(Source::Host { file, left: header.samples as usize, header });
        }
        let header = header(embedded, SampleFormat::Q16)?;
        if header.check_len(embedded.len()).is_err() {
            return Err("input: embedded segment length does not match its header");
        }
        Ok(Source::Embedded {
            data: embedded,
            at: SampleFormat::Q16.header_bytes(),
            left: header.samples as usize,
            header,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Source::Host { .. } => "host file avm-input.avmi",
            Source::Embedded { .. } => "embedded flight segment",
        }
    }

    pub fn samples(&self) -> usize {
        match self {
            Source::Host { header, .. } | Source::Embedded { header, .. } => header.samples as usize,
        }
    }

    /// Fills up to `vib.len()` samples (and their phase codes); returns how many (0 at the end).
    pub fn next_block(
        &mut self,
        vib: &mut [[f32; CH]],
        rpm: &mut [[f32; CH]],
        phase: &mut [u8],
    ) -> Result<usize, &'static str> {
        match self {
            Source::Host { file, header, left } => {
                let n = (*left).min(vib.len()).min(phase.len()).min(crate::BLOCK);
                let size = header.sample_bytes();
                let mut raw = [0u8; (8 * CH + 1) * crate::BLOCK];
                file.read_exact(&mut raw[..size * n])?;
                for i in 0..n {
                    let sample = &raw[i * size..(i + 1) * size];
                    for c in 0..CH {
                        (vib[i][c], rpm[i][c]) = header.decode(sample, c);
                    }
                    phase[i] = header.decode_phase(sample);
                }
                *left -= n;
                Ok(n)
            }
            Source::Embedded { data, header, at, left } => {
                let n = (*left).min(vib.len()).min(phase.len());
                let size = header.sample_bytes();
                for i in 0..n {
                    let sample = &data[*at + i * size..*at + (i + 1) * size];
                    for c in 0..CH {
                        (vib[i][c], rpm[i][c]) = header.decode(sample, c);
                    }
                    phase[i] = header.decode_phase(sample);
                }
                *at += size * n;
                *left -= n;
                Ok(n)
            }
        }
    }
}
