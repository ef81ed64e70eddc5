//! Where samples come from: a recorded flight from the host (`avm-input.avmi`, f32) or the
//! segment embedded in flash (`AVMQ`, 16-bit). Both yield blocks of `[vib_g; CH]` and
//! `[shaft_speed_rpm; CH]` samples, as a sensor loop's DMA would.
//!
//! `AVMI`: `b"AVMI"`, `channels: u16`, `0u16`, `samples: u32`, then per sample and channel
//! `vib_g: f32`, `rpm: f32` (little-endian).
//! `AVMQ`: `b"AVMQ"`, `channels: u16`, `0u16`, `samples: u32`, `vib_lsb_g: f32`, then per sample
//! and channel `vib: i16` (g = vib as f32 * vib_lsb_g), `rpm: u16` (rpm = rpm as f32).

use crate::CH;
use crate::host::File;

/// A fixed-capacity text buffer for messages.
pub struct Msg {
    buf: [u8; 512],
    len: usize,
}

impl Msg {
    pub const fn new() -> Msg {
        Msg { buf: [0; 512], len: 0 }
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
    Host { file: File, left: usize, total: usize },
    Embedded { data: &'static [u8], at: usize, left: usize, total: usize, lsb: f32 },
}

fn header(h: &[u8], magic: &[u8; 4]) -> Result<usize, &'static str> {
    if &h[..4] != magic {
        return Err("input: wrong magic");
    }
    if usize::from(u16::from_le_bytes([h[4], h[5]])) != CH {
        return Err("input: not 2 channels");
    }
    Ok(u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize)
}

#[cfg_attr(feature = "defmt", allow(dead_code))]
impl Source {
    /// The host's `avm-input.avmi` if there is one, else the embedded segment.
    pub fn open(embedded: &'static [u8]) -> Result<Source, &'static str> {
        if let Some(mut file) = File::open(b"avm-input.avmi\0") {
            let mut h = [0u8; 12];
            file.read_exact(&mut h)?;
            let total = header(&h, b"AVMI")?;
            if file.len()? != 12 + total * CH * 8 {
                return Err("input: avm-input.avmi length does not match its header");
            }
            return Ok(Source::Host { file, left: total, total });
        }
        if embedded.len() < 16 {
            return Err("input: embedded segment truncated");
        }
        let total = header(embedded, b"AVMQ")?;
        if embedded.len() != 16 + total * CH * 4 {
            return Err("input: embedded segment length does not match its header");
        }
        let lsb = f32::from_le_bytes([embedded[12], embedded[13], embedded[14], embedded[15]]);
        Ok(Source::Embedded { data: embedded, at: 16, left: total, total, lsb })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Source::Host { .. } => "host file avm-input.avmi",
            Source::Embedded { .. } => "embedded flight segment",
        }
    }

    pub fn samples(&self) -> usize {
        match self {
            Source::Host { total, .. } | Source::Embedded { total, .. } => *total,
        }
    }

    /// Fills up to `vib.len()` samples; returns how many (0 at the end).
    pub fn next_block(
        &mut self,
        vib: &mut [[f32; CH]],
        rpm: &mut [[f32; CH]],
    ) -> Result<usize, &'static str> {
        match self {
            Source::Host { file, left, .. } => {
                let n = (*left).min(vib.len()).min(crate::BLOCK);
                let mut raw = [0u8; 8 * CH * crate::BLOCK];
                file.read_exact(&mut raw[..8 * CH * n])?;
                for i in 0..n {
                    for c in 0..CH {
                        let at = 8 * (i * CH + c);
                        vib[i][c] = f32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
                        rpm[i][c] = f32::from_le_bytes([raw[at + 4], raw[at + 5], raw[at + 6], raw[at + 7]]);
                    }
                }
                *left -= n;
                Ok(n)
            }
            Source::Embedded { data, at, left, lsb, .. } => {
                let n = (*left).min(vib.len());
                for i in 0..n {
                    for c in 0..CH {
                        let p = *at + 4 * (i * CH + c);
                        vib[i][c] = f32::from(i16::from_le_bytes([data[p], data[p + 1]])) * *lsb;
                        rpm[i][c] = f32::from(u16::from_le_bytes([data[p + 2], data[p + 3]]));
                    }
                }
                *at += 4 * n * CH;
                *left -= n;
                Ok(n)
            }
        }
    }
}
