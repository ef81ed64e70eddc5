//! TensorBoard event files (`events.out.tfevents.<time>.<host>`), written without TensorFlow.
//!
//! A file is a sequence of records: `u64` LE payload length, `u32` LE masked CRC-32C of those 8
//! bytes, the payload (an `Event` protobuf), `u32` LE masked CRC-32C of the payload; masked =
//! `((crc >> 15) | (crc << 17)) + 0xa282ead8`. The first event carries
//! `file_version = "brain.Event:2"`. Scalars are `Summary.Value.simple_value`, images
//! `Summary.Value.image` (PNG bytes). Field numbers follow tensorflow's event.proto and
//! summary.proto (Event.summary is field 5).

use anyhow::{Context, Result};
use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
    #[prost(message, optional, tag = "4")]
    image: Option<Image>,
}

#[derive(Clone, PartialEq, Message)]
struct Image {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    #[prost(int32, tag = "3")]
    colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

/// CRC-32C (Castagnoli), from the `crc32c` crate (hardware instructions where the CPU has them).
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// TFRecord's masked CRC.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord.
pub fn record(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
    out
}

fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// An event file being written. Events are buffered and written by [`EventWriter::flush`]
/// (and on drop); each flush appends complete records only.
pub struct EventWriter {
    path: PathBuf,
    pending: Vec<u8>,
}

impl EventWriter {
    /// Starts a new event file in `run_dir` (created if needed).
    pub fn create(run_dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
        let t = now_s();
        let mut name = format!("events.out.tfevents.{}.{}", t as u64, host());
        // Two writers in the same second (train, then evaluate) get distinct files.
        let mut k = 1;
        while run_dir.join(&name).exists() {
            name = format!("events.out.tfevents.{}.{}.{k}", t as u64, host());
            k += 1;
        }
        let mut w = EventWriter { path: run_dir.join(name), pending: Vec::new() };
        let first =
            Event { wall_time: t, step: 0, file_version: Some("brain.Event:2".into()), summary: None };
        w.pending.extend(record(&first.encode_to_vec()));
        Ok(w)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn push(&mut self, step: i64, value: SummaryValue) {
        let e = Event {
            wall_time: now_s(),
            step,
            file_version: None,
            summary: Some(Summary { value: vec![value] }),
        };
        self.pending.extend(record(&e.encode_to_vec()));
    }

    /// A scalar.
    pub fn scalar(&mut self, tag: &str, step: i64, value: f32) {
        self.push(step, SummaryValue { tag: tag.into(), simple_value: Some(value), image: None });
    }

    /// A PNG image of `width` x `height` pixels (RGB).
    pub fn image_png(&mut self, tag: &str, step: i64, png: Vec<u8>, width: u32, height: u32) {
        let image =
            Image { height: height as i32, width: width as i32, colorspace: 3, encoded_image_string: png };
        self.push(step, SummaryValue { tag: tag.into(), simple_value: None, image: Some(image) });
    }

    /// Appends the pending records to the file.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        f.write_all(&self.pending).with_context(|| format!("writing {}", self.path.display()))?;
        f.sync_all()?;
        self.pending.clear();
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Width and height of a PNG (from its IHDR chunk).
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    let h = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C check value (RFC 3720 / iSCSI).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn records_frame_their_payload() {
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
        assert_eq!(u32::from_le_bytes(r[15..19].try_into().unwrap()), masked_crc(b"abc"));
    }

    #[test]
    fn writes_decodable_events() {
        let d = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(d.path()).unwrap();
        w.scalar("train/loss", 3, 0.5);
        w.flush().unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut at = 0;
        let mut events = Vec::new();
        while at < bytes.len() {
            let n = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            events.push(Event::decode(&bytes[at + 12..at + 12 + n]).unwrap());
            at += 16 + n;
        }
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
        let v = &events[1].summary.as_ref().unwrap().value[0];
        assert_eq!((events[1].step, v.tag.as_str(), v.simple_value), (3, "train/loss", Some(0.5)));
    }
}
