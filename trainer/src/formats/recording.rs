//! The recording format: one flight of one engine.
//!
//! # On disk
//! A Parquet file (or a CSV file with a `.meta.json` sidecar) with one row per distinct sample
//! time and these columns:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `time_s` | float64, not null | seconds from the recording's time origin, strictly increasing |
//! | one per numeric channel | float32 (float64 accepted), nullable | the channel's sample at that time; null where the channel was not sampled; NaN where it was sampled but the value is missing (a dropout) |
//! | one per text channel (`phase`) | utf8, nullable | the flight phase, sampled at its own (low) rate |
//!
//! Channels at different rates and start times share the file: a 2048 Hz vibration channel has
//! a value in most rows, a 16 Hz speed channel in one row of ~128. The Parquet key-value
//! metadata `avm.recording` holds [`RecordingMeta`] as JSON (aircraft, engine, flight ids and,
//! per channel, unit, sample rate and start time). For CSV the same JSON sits in
//! `<file>.meta.json`; an empty cell is null, `nan` is NaN.
//!
//! Reading checks only that the file is well formed (the [`crate::formats::contract`] checks the rest);
//! every problem is a [`Violation`] naming the file, column and row.

use crate::error::{ContractViolations, Violation};
use anyhow::Result;
use arrow_array::{Array, ArrayRef, Float32Array, Float64Array, StringArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Format tag stored in every recording's metadata.
pub const FORMAT: &str = "avm-recording";
/// Version of the recording format written: 2 added `attributes`. Readers accept
/// [`OLDEST_FORMAT_VERSION`]..=[`FORMAT_VERSION`] (`docs/recording.schema.json` is the schema).
pub const FORMAT_VERSION: u32 = 2;
/// Oldest version read.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Most attributes one recording may carry.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute value, bytes.
pub const MAX_ATTRIBUTE_LEN: usize = 256;
/// Parquet key-value metadata key holding [`RecordingMeta`].
pub const META_KEY: &str = "avm.recording";
/// Name of the time column.
pub const TIME_COLUMN: &str = "time_s";

/// What a recording says about itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordingMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Aircraft (tail) identifier.
    pub aircraft_id: String,
    /// Engine identifier (unique across the fleet).
    pub engine_id: String,
    /// Identifier of this recording: one flight of one engine, unique in a data set.
    pub flight_id: String,
    /// Where the data came from (simulator and seed, imported file...).
    #[serde(default)]
    pub source: String,
    /// The channels, in column order.
    pub channels: Vec<ChannelMeta>,
    /// CRC-32 of the content ([`content_crc32`]), set by the writers and checked by the
    /// readers: the Parquet writer avm uses writes no page checksums, so this is what catches a
    /// file corrupted in a way that still decodes. Required in Parquet recordings (a file
    /// whose checksum was removed could be altered unseen), optional in CSV ones (text made
    /// by hand or by spreadsheets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_crc32: Option<u32>,
    /// Free-form attributes of the recording (operating condition, load, rig, test-cell run):
    /// at most [`MAX_ATTRIBUTES`], names under the id rule, values text of at most
    /// [`MAX_ATTRIBUTE_LEN`] bytes (JSON numbers and booleans are accepted and kept as their
    /// text). `split.group_by: {attribute: NAME}` and the evaluation's breakdowns use them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "attribute_map")]
    pub attributes: BTreeMap<String, String>,
}

/// Reads `attributes`: text, numbers and booleans, kept as text.
fn attribute_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error;
    let raw: BTreeMap<String, serde_json::Value> = BTreeMap::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            other => {
                Err(D::Error::custom(format!("attribute {k:?}: {other} is not text, a number or a boolean")))
            }
        })
        .collect()
}

/// What a recording says about one channel.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelMeta {
    /// Column name.
    pub name: String,
    /// Unit (`g`, `rpm`, `-` for text).
    pub unit: String,
    /// Nominal sample rate in Hz.
    pub sample_rate_hz: f64,
    /// Time of the first sample, seconds on the `time_s` axis.
    pub start_s: f64,
}

/// The samples of one channel.
#[derive(Clone, Debug, PartialEq)]
pub enum Samples {
    /// Numeric samples (NaN allowed: a dropout).
    Numeric(Vec<f32>),
    /// Text samples (the flight phase).
    Text(Vec<String>),
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::Numeric(v) => v.len(),
            Samples::Text(v) => v.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One channel's samples with their times and source rows.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelData {
    /// Sample times, seconds.
    pub times_s: Vec<f64>,
    /// Values.
    pub samples: Samples,
    /// Row of each sample in the source file (0-based data row), for error messages.
    pub rows: Vec<u32>,
}

impl ChannelData {
    /// No samples yet, of text (`text`) or numbers.
    pub fn empty(text: bool) -> ChannelData {
        let samples = if text { Samples::Text(Vec::new()) } else { Samples::Numeric(Vec::new()) };
        ChannelData { times_s: Vec::new(), samples, rows: Vec::new() }
    }

    /// Appends the samples of a later chunk of the same channel (same kind of samples).
    pub fn append(&mut self, mut later: ChannelData) {
        self.times_s.append(&mut later.times_s);
        self.rows.append(&mut later.rows);
        match (&mut self.samples, later.samples) {
            (Samples::Numeric(a), Samples::Numeric(mut b)) => a.append(&mut b),
            (Samples::Text(a), Samples::Text(mut b)) => a.append(&mut b),
            _ => unreachable!("a channel's kind is fixed when the stream opens"),
        }
    }
}

/// A recording in memory: metadata plus one [`ChannelData`] per `meta.channels` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// Metadata.
    pub meta: RecordingMeta,
    /// Channel data, index-aligned with `meta.channels`.
    pub data: Vec<ChannelData>,
    /// The file it was read from (empty for one built in memory).
    pub path: PathBuf,
}

impl Recording {
    /// Per channel: true for a text channel (what [`RecordingStream::text_channels`] says of a file).
    pub fn text_channels(&self) -> Vec<bool> {
        self.data.iter().map(|d| matches!(d.samples, Samples::Text(_))).collect()
    }

    /// Index of the channel called `name`.
    pub fn channel_index(&self, name: &str) -> Option<usize> {
        self.meta.channels.iter().position(|c| c.name == name)
    }

    /// Meta and data of the channel called `name`.
    pub fn channel(&self, name: &str) -> Option<(&ChannelMeta, &ChannelData)> {
        self.channel_index(name).map(|i| (&self.meta.channels[i], &self.data[i]))
    }

    /// Numeric samples of `name`, if it is a numeric channel.
    pub fn numeric(&self, name: &str) -> Option<(&ChannelMeta, &[f64], &[f32])> {
        let (m, d) = self.channel(name)?;
        match &d.samples {
            Samples::Numeric(v) => Some((m, &d.times_s, v)),
            Samples::Text(_) => None,
        }
    }

    /// Duration covered: last sample time minus first, over all channels.
    pub fn span_s(&self) -> (f64, f64) {
        let first = self.data.iter().filter_map(|d| d.times_s.first()).fold(f64::INFINITY, |a, &b| a.min(b));
        let last =
            self.data.iter().filter_map(|d| d.times_s.last()).fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        (first, last)
    }
}

/// CRC-32 (IEEE) of a recording's content: per channel in metadata order, every sample time
/// (f64, little-endian) then every value (f32 little-endian bits, or UTF-8 text followed by a
/// NUL byte). Computed with avm-core's CRC-32 definition ([`avm_core::bundle::CRC32`]).
pub fn content_crc32(data: &[ChannelData]) -> u32 {
    let mut crc = ContentCrc::new(data.len());
    for (c, d) in data.iter().enumerate() {
        crc.push(c, d);
    }
    crc.finish()
}

/// avm-core's CRC-32 ([`avm_core::bundle::CRC32`]: the `crc` crate's `CRC_32_ISO_HDLC`, the one
/// definition) with the crate's slice-by-16 tables: the same checksum, several times faster on
/// the host, where a recording's CRC is a third of preprocessing (the firmware keeps the small
/// table).
static CONTENT_CRC: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

/// [`content_crc32`] over a recording that arrives in chunks: per channel, one running CRC of
/// its times and one of its values, joined in the defined order at the end with
/// [`crc32_combine`].
struct ContentCrc {
    /// Per channel: the running CRC and byte count of the times, then of the values.
    parts: Vec<[(crc::Digest<'static, u32, crc::Table<16>>, u64); 2]>,
}

impl ContentCrc {
    fn new(channels: usize) -> ContentCrc {
        ContentCrc {
            parts: (0..channels).map(|_| [(CONTENT_CRC.digest(), 0), (CONTENT_CRC.digest(), 0)]).collect(),
        }
    }

    /// Adds one chunk of channel `c`. The bytes go to the CRC in blocks of 4 KiB, not one call
    /// per value.
    fn push(&mut self, c: usize, d: &ChannelData) {
        let mut buf = [0u8; 4096];
        let [times, values] = &mut self.parts[c];
        for chunk in d.times_s.chunks(buf.len() / 8) {
            for (b, t) in buf.chunks_exact_mut(8).zip(chunk) {
                b.copy_from_slice(&t.to_le_bytes());
            }
            times.0.update(&buf[..chunk.len() * 8]);
        }
        times.1 += 8 * d.times_s.len() as u64;
        match &d.samples {
            Samples::Numeric(v) => {
                for chunk in v.chunks(buf.len() / 4) {
                    for (b, x) in buf.chunks_exact_mut(4).zip(chunk) {
                        b.copy_from_slice(&x.to_le_bytes());
                    }
                    values.0.update(&buf[..chunk.len() * 4]);
                }
                values.1 += 4 * v.len() as u64;
            }
            Samples::Text(v) => v.iter().for_each(|x| {
                values.0.update(x.as_bytes());
                values.0.update(&[0]);
                values.1 += x.len() as u64 + 1;
            }),
        }
    }

    fn finish(self) -> u32 {
        self.parts
            .into_iter()
            .flatten()
            .fold(0, |acc, (digest, len)| crc32_combine(acc, digest.finalize(), len))
    }
}

/// The CRC-32 (IEEE, reflected, as zlib's) of `A ++ B` from `crc(A)`, `crc(B)` and `B`'s length,
/// by zlib's method: appending `len_b` zero bytes is a linear map over GF(2), applied by
/// repeated squaring. Written here because the `crc` crate (the workspace's one CRC) has no
/// combine; tested against the CRC of the concatenation.
fn crc32_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    fn times(mat: &[u32; 32], mut vec: u32) -> u32 {
        let mut sum = 0;
        let mut i = 0;
        while vec != 0 {
            if vec & 1 != 0 {
                sum ^= mat[i];
            }
            vec >>= 1;
            i += 1;
        }
        sum
    }
    fn square(mat: &[u32; 32]) -> [u32; 32] {
        std::array::from_fn(|n| times(mat, mat[n]))
    }
    if len_b == 0 {
        return crc_a;
    }
    // The operator for one zero bit, then for two and four.
    let mut odd = [0u32; 32];
    odd[0] = 0xedb8_8320;
    for (n, o) in odd.iter_mut().enumerate().skip(1) {
        *o = 1 << (n - 1);
    }
    let mut even = square(&odd);
    odd = square(&even);
    let (mut crc, mut len) = (crc_a, len_b);
    loop {
        even = square(&odd);
        if len & 1 != 0 {
            crc = times(&even, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
        odd = square(&even);
        if len & 1 != 0 {
            crc = times(&odd, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
    }
    crc ^ crc_b
}

fn check_crc(
    path: &Path,
    meta: &RecordingMeta,
    required: bool,
    actual: u32,
) -> Result<(), ContractViolations> {
    if required && meta.content_crc32.is_none() {
        return Err(Violation::new(
            path,
            "metadata",
            "recording.checksum",
            "a Parquet recording must carry content_crc32 in its avm.recording metadata (README, \
             \"Recording format\"; examples/python/write_recording.py computes it): without it a \
             changed value cannot be told from a corrupted one",
        )
        .into());
    }
    if let Some(expected) = meta.content_crc32
        && actual != expected
    {
        return Err(bad(
            path,
            "",
            format!(
                "content checksum {actual:08x} differs from the recorded {expected:08x}: the file is corrupt, \
                 or its values were edited without recomputing content_crc32 (README \"Recordings from \
                 Python\": examples/python/write_recording.py does it)"
            ),
        ));
    }
    Ok(())
}

fn with_crc(rec: &Recording) -> RecordingMeta {
    RecordingMeta { content_crc32: Some(content_crc32(&rec.data)), ..rec.meta.clone() }
}

/// Reads a whole recording, choosing the format by extension (`.parquet`, or `.csv` +
/// `.meta.json`): a [`RecordingStream`] collected.
pub fn read(path: &Path) -> Result<Recording, ContractViolations> {
    let mut stream = RecordingStream::open(path)?;
    let mut data: Vec<ChannelData> = stream.text_channels().iter().map(|&t| ChannelData::empty(t)).collect();
    while let Some(chunk) = stream.next_chunk()? {
        for (d, c) in data.iter_mut().zip(chunk) {
            d.append(c);
        }
    }
    let meta = stream.finish()?;
    Ok(Recording { meta, data, path: path.to_path_buf() })
}

fn bad(path: &Path, location: impl Into<String>, detail: impl Into<String>) -> ContractViolations {
    Violation::new(path, location, "file.format", detail).into()
}

fn parse_meta(path: &Path, json: &str, origin: &str) -> Result<RecordingMeta, ContractViolations> {
    let meta: RecordingMeta = serde_json::from_str(json)
        .map_err(|e| bad(path, origin, format!("recording metadata is not valid: {e}")))?;
    if meta.format != FORMAT {
        return Err(bad(path, origin, format!("format is {:?}, expected {FORMAT:?}", meta.format)));
    }
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&meta.format_version) {
        return Err(bad(
            path,
            origin,
            format!(
                "format_version {} is not supported (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})",
                meta.format_version
            ),
        ));
    }
    if meta.attributes.len() > MAX_ATTRIBUTES {
        return Err(bad(
            path,
            origin,
            format!("{} attributes: at most {MAX_ATTRIBUTES}", meta.attributes.len()),
        ));
    }
    for (k, v) in &meta.attributes {
        crate::ids::check("attribute name", k)
            .map_err(|e| ContractViolations::from(Violation::new(path, origin, "recording.id", e)))?;
        if v.len() > MAX_ATTRIBUTE_LEN || v.chars().any(char::is_control) {
            return Err(bad(
                path,
                origin,
                format!(
                    "attribute {k}: the value must be at most {MAX_ATTRIBUTE_LEN} bytes without control characters"
                ),
            ));
        }
    }
    let ids =
        [("aircraft_id", &meta.aircraft_id), ("engine_id", &meta.engine_id), ("flight_id", &meta.flight_id)];
    for (what, id) in ids {
        crate::ids::check(what, id)
            .map_err(|e| ContractViolations::from(Violation::new(path, origin, "recording.id", e)))?;
    }
    let mut seen = HashSet::new();
    for c in &meta.channels {
        crate::ids::check("channel name", &c.name)
            .map_err(|e| ContractViolations::from(Violation::new(path, origin, "recording.id", e)))?;
        if c.name == TIME_COLUMN || !seen.insert(c.name.as_str()) {
            return Err(bad(path, origin, format!("channel name {:?} is duplicated or reserved", c.name)));
        }
        if !(c.sample_rate_hz.is_finite() && c.sample_rate_hz > 0.0 && c.start_s.is_finite()) {
            return Err(bad(
                path,
                origin,
                format!(
                    "channel {}: sample_rate_hz must be a finite number > 0 and start_s finite (found {} Hz, {} s)",
                    c.name, c.sample_rate_hz, c.start_s
                ),
            ));
        }
    }
    Ok(meta)
}

/// Rows per chunk of a [`RecordingStream`] (Parquet batches and CSV records alike).
pub const CHUNK_ROWS: usize = 65_536;

/// A recording read chunk by chunk in file row order, so that memory holds one chunk (and, for
/// Parquet, one row group's compressed pages) whatever the length of the flight. Each chunk is
/// one [`ChannelData`] per `meta.channels` entry with the samples of those rows. The content
/// checksum is computed on the way; [`RecordingStream::finish`] checks it. [`read`] collects a
/// whole stream: there is one reader per format, not a streaming one and a whole-file one.
pub struct RecordingStream {
    path: PathBuf,
    meta: RecordingMeta,
    source: Source,
    text: Vec<bool>,
    rows: u32,
    crc: ContentCrc,
    crc_required: bool,
}

enum Source {
    Parquet {
        reader: ParquetRecordBatchReader,
        time_idx: usize,
        cols: Vec<usize>,
    },
    Csv {
        reader: Box<csv::Reader<std::io::BufReader<std::fs::File>>>,
        cols: Vec<usize>,
        chunk_rows: usize,
    },
    /// A recording built in memory (a simulated flight streamed into preprocess): the rows a
    /// file of it would hold ([`write_parquet`]'s rows: the union of the channels' sample
    /// times), `chunk_rows` at a time, without writing it. `next[c]`: channel `c`'s next sample.
    Memory {
        data: Vec<ChannelData>,
        next: Vec<usize>,
        chunk_rows: usize,
    },
}

impl RecordingStream {
    /// Opens a recording, choosing the format by extension (`.parquet`, or `.csv` +
    /// `.meta.json`), and checks its metadata.
    pub fn open(path: &Path) -> Result<RecordingStream, ContractViolations> {
        RecordingStream::open_chunked(path, CHUNK_ROWS)
    }

    /// [`RecordingStream::open`] with chunks of `chunk_rows` rows (at least 1; the tests use
    /// odd sizes to cross every rule's state over chunk boundaries).
    pub fn open_chunked(path: &Path, chunk_rows: usize) -> Result<RecordingStream, ContractViolations> {
        let chunk_rows = chunk_rows.max(1);
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => {
                crate::guard::decode(|| open_parquet(path, chunk_rows)).unwrap_or_else(|panic| {
                    Err(bad(
                        path,
                        "",
                        format!("not a readable Parquet file (corrupt: the decoder failed: {panic})"),
                    ))
                })
            }
            Some("csv") => open_csv(path, chunk_rows),
            _ => Err(Violation::new(path, "", "file.format", "expected a .parquet or .csv recording").into()),
        }
    }

    /// The recording's metadata.
    pub fn meta(&self) -> &RecordingMeta {
        &self.meta
    }

    /// Streams a recording held in memory as if it had been written with [`write_parquet`]
    /// and opened with [`RecordingStream::open_chunked`]: the same chunks (rows, times,
    /// values), without the file. `name` stands for the file in messages. Its metadata is the
    /// caller's (no content checksum is required: nothing was stored).
    pub fn from_recording(rec: Recording, name: &Path, chunk_rows: usize) -> RecordingStream {
        let text = rec.text_channels();
        let channels = rec.data.len();
        RecordingStream {
            path: name.to_path_buf(),
            meta: rec.meta,
            source: Source::Memory { data: rec.data, next: vec![0; channels], chunk_rows: chunk_rows.max(1) },
            text,
            rows: 0,
            crc: ContentCrc::new(channels),
            crc_required: false,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Per `meta.channels` entry: true for a text channel.
    pub fn text_channels(&self) -> &[bool] {
        &self.text
    }

    /// The next chunk, or `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<ChannelData>>, ContractViolations> {
        let path = self.path.clone();
        let (chunk, rows) = match &mut self.source {
            Source::Parquet { reader, time_idx, cols } => {
                let (time_idx, row0) = (*time_idx, self.rows);
                let batch = crate::guard::decode(|| reader.next())
                    .unwrap_or_else(|panic| Some(Err(arrow_schema::ArrowError::ExternalError(panic.into()))));
                let Some(batch) = batch else { return Ok(None) };
                let batch = batch.map_err(|e| {
                    bad(&path, format!("after row {row0}"), format!("corrupt data (truncated?): {e}"))
                })?;
                let rows = batch.num_rows() as u32;
                (parquet_chunk(&path, &self.meta, &self.text, &batch, time_idx, cols, row0)?, rows)
            }
            Source::Csv { reader, cols, chunk_rows } => {
                match csv_chunk(&path, &self.meta, &self.text, reader, cols, self.rows, *chunk_rows)? {
                    Some(c) => c,
                    None => return Ok(None),
                }
            }
            Source::Memory { data, next, chunk_rows } => {
                match memory_chunk(data, next, self.rows, *chunk_rows) {
                    Some(c) => c,
                    None => return Ok(None),
                }
            }
        };
        self.rows += rows;
        for (c, d) in chunk.iter().enumerate() {
            self.crc.push(c, d);
        }
        Ok(Some(chunk))
    }

    /// Ends the stream: a file without rows is refused, and the content checksum (required in
    /// Parquet, optional in CSV) must match. Returns the metadata.
    pub fn finish(self) -> Result<RecordingMeta, ContractViolations> {
        if self.rows == 0 {
            return Err(bad(&self.path, "", "the recording has no rows"));
        }
        check_crc(&self.path, &self.meta, self.crc_required, self.crc.finish())?;
        Ok(self.meta)
    }
}

fn open_parquet(path: &Path, chunk_rows: usize) -> Result<RecordingStream, ContractViolations> {
    let file = std::fs::File::open(path).map_err(|e| bad(path, "", format!("cannot open: {e}")))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err(bad(path, "", "the file is empty (0 bytes)"));
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(path, "", format!("not a readable Parquet file (truncated or corrupt?): {e}")))?;
    let json = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == META_KEY))
        .and_then(|k| k.value.clone())
        .ok_or_else(|| {
            bad(
                path,
                "",
                format!(
                    "no {META_KEY:?} metadata: not an avm recording (tools such as pandas drop it on save: \
                     write recordings with examples/python/write_recording.py, or import the file with \
                     `avm import --mapping`)"
                ),
            )
        })?;
    let meta = parse_meta(path, &json, "metadata")?;
    let schema = builder.schema().clone();
    let time_idx =
        schema.index_of(TIME_COLUMN).map_err(|_| bad(path, "", format!("no {TIME_COLUMN:?} column")))?;
    let mut cols = Vec::new();
    for c in &meta.channels {
        let idx = schema.index_of(&c.name).map_err(|_| {
            Violation::new(
                path,
                format!("channel {}", c.name),
                "channel.present",
                "listed in the metadata but has no column",
            )
        })?;
        cols.push(idx);
    }
    let text = cols
        .iter()
        .map(|&i| matches!(schema.field(i).data_type(), DataType::Utf8 | DataType::LargeUtf8))
        .collect();
    let reader = builder
        .with_batch_size(chunk_rows)
        .build()
        .map_err(|e| bad(path, "", format!("cannot read: {e}")))?;
    Ok(RecordingStream {
        path: path.to_path_buf(),
        crc: ContentCrc::new(meta.channels.len()),
        meta,
        source: Source::Parquet { reader, time_idx, cols },
        text,
        rows: 0,
        crc_required: true,
    })
}

/// One Parquet batch as a chunk (rows from `row0`).
fn parquet_chunk(
    path: &Path,
    meta: &RecordingMeta,
    text: &[bool],
    batch: &arrow_array::RecordBatch,
    time_idx: usize,
    cols: &[usize],
    row0: u32,
) -> Result<Vec<ChannelData>, ContractViolations> {
    let time = batch.column(time_idx);
    let time = cast_f64(time).ok_or_else(|| {
        bad(
            path,
            format!("column {TIME_COLUMN}"),
            format!("must be float64 seconds, found {}", time.data_type()),
        )
    })?;
    if let Some(r) = (0..time.len()).find(|&r| time.is_valid(r) && !time.value(r).is_finite()) {
        return Err(Violation::new(
            path,
            format!("column {TIME_COLUMN}, row {}", row0 as usize + r),
            "time.finite",
            format!("time {} is not a finite number of seconds", time.value(r)),
        )
        .into());
    }
    if time.null_count() > 0 {
        let r = (0..time.len()).find(|&r| time.is_null(r)).unwrap_or(0);
        return Err(Violation::new(
            path,
            format!("column {TIME_COLUMN}, row {}", row0 as usize + r),
            "time.present",
            "time is null",
        )
        .into());
    }
    let mut out = Vec::with_capacity(cols.len());
    for ((cm, &ci), &is_text) in meta.channels.iter().zip(cols).zip(text) {
        let arr = batch.column(ci);
        let mut d = ChannelData::empty(is_text);
        match &mut d.samples {
            Samples::Numeric(v) => {
                let a = cast_f32(arr).ok_or_else(|| {
                    bad(
                        path,
                        format!("channel {}", cm.name),
                        format!("must be float32 or float64, found {}", arr.data_type()),
                    )
                })?;
                if let Some(x) = arr.as_any().downcast_ref::<Float64Array>()
                    && let Some(r) = (0..x.len()).find(|&r| x.is_valid(r) && overflows_f32(x.value(r)))
                {
                    return Err(overflow(path, &cm.name, format!("row {}", row0 as usize + r), x.value(r)));
                }
                for r in 0..a.len() {
                    if a.is_valid(r) {
                        v.push(a.value(r));
                        d.times_s.push(time.value(r));
                        d.rows.push(row0 + r as u32);
                    }
                }
            }
            Samples::Text(v) => {
                let a = arr.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                    bad(
                        path,
                        format!("channel {}", cm.name),
                        format!("must be utf8 text, found {}", arr.data_type()),
                    )
                })?;
                for r in 0..a.len() {
                    if a.is_valid(r) {
                        v.push(a.value(r).to_string());
                        d.times_s.push(time.value(r));
                        d.rows.push(row0 + r as u32);
                    }
                }
            }
        }
        out.push(d);
    }
    Ok(out)
}

/// The next `chunk_rows` rows of an in-memory recording: each row is the earliest next sample
/// time over the channels, and every channel whose next sample has that time gives its value
/// to the row (as [`write_parquet`] lays the rows out). `None` when every channel is done.
fn memory_chunk(
    data: &[ChannelData],
    next: &mut [usize],
    row0: u32,
    chunk_rows: usize,
) -> Option<(Vec<ChannelData>, u32)> {
    let mut out: Vec<ChannelData> =
        data.iter().map(|d| ChannelData::empty(matches!(d.samples, Samples::Text(_)))).collect();
    let mut rows = 0u32;
    while (rows as usize) < chunk_rows {
        let Some(t) = data
            .iter()
            .zip(next.iter())
            .filter_map(|(d, &i)| d.times_s.get(i).copied())
            .min_by(f64::total_cmp)
        else {
            break;
        };
        for ((d, i), o) in data.iter().zip(next.iter_mut()).zip(out.iter_mut()) {
            if d.times_s.get(*i) != Some(&t) {
                continue;
            }
            match (&d.samples, &mut o.samples) {
                (Samples::Numeric(v), Samples::Numeric(w)) => w.push(v[*i]),
                (Samples::Text(v), Samples::Text(w)) => w.push(v[*i].clone()),
                _ => unreachable!("the output channels are built from the input's kinds"),
            }
            o.times_s.push(t);
            o.rows.push(row0 + rows);
            *i += 1;
        }
        rows += 1;
    }
    (rows > 0).then_some((out, rows))
}

/// A finite value too large for float32 (it would become infinite).
fn overflows_f32(x: f64) -> bool {
    x.is_finite() && (x as f32).is_infinite()
}

fn overflow(path: &Path, channel: &str, at: String, x: f64) -> ContractViolations {
    Violation::new(
        path,
        format!("channel {channel}, {at}"),
        "channel.range",
        format!("value {x} does not fit a float32 (largest {:e}): wrong unit?", f32::MAX),
    )
    .into()
}

fn cast_f64(a: &ArrayRef) -> Option<Float64Array> {
    a.as_any().downcast_ref::<Float64Array>().cloned()
}

fn cast_f32(a: &ArrayRef) -> Option<Float32Array> {
    if let Some(x) = a.as_any().downcast_ref::<Float32Array>() {
        return Some(x.clone());
    }
    let x = a.as_any().downcast_ref::<Float64Array>()?;
    Some(x.iter().map(|v| v.map(|v| v as f32)).collect())
}

/// The CSV reader every CSV input of avm uses (recordings, labels, manifests): a header row,
/// RFC 4180 quoting, surrounding white space trimmed, every row as long as the header, blank
/// lines skipped.
pub fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv_reader_from(text.as_bytes())
}

/// [`csv_reader`] over any byte source (a recording is streamed from its file).
pub fn csv_reader_from<R: std::io::Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(input)
}

/// The header row of `reader`'s CSV; a syntax error is a violation of `rule`.
pub fn csv_header<R: std::io::Read>(
    path: &Path,
    rule: &'static str,
    reader: &mut csv::Reader<R>,
) -> Result<Vec<String>, ContractViolations> {
    Ok(reader.headers().map_err(|e| csv_violation(path, rule, e))?.iter().map(str::to_string).collect())
}

/// A CSV syntax error as a violation of `rule` naming the line.
pub fn csv_violation(path: &Path, rule: &'static str, e: csv::Error) -> ContractViolations {
    let line = e.position().map_or(String::new(), |p| format!("line {}", p.line()));
    let detail = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} cells, the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
        _ => format!("not readable CSV: {e}"),
    };
    Violation::new(path, line, rule, detail).into()
}

fn csv_error(path: &Path, e: csv::Error) -> ContractViolations {
    csv_violation(path, "file.format", e)
}

/// The float32 value of a CSV cell: parsed directly as f32 (correctly rounded, the same bits
/// as before this reader checked ranges), the f64 parse only deciding NaN and overflow.
fn cell_f32(cell: &str, x: f64) -> f32 {
    if x.is_nan() { f32::NAN } else { cell.parse::<f32>().unwrap_or(x as f32) }
}

/// Where each file row finds a channel's sample.
enum RowMap {
    /// The channel's times are the first `n` row times: row `r < n` is sample `r`.
    Prefix(usize),
    /// Sample index per row, or none.
    Sparse(Vec<Option<usize>>),
}

impl RowMap {
    fn get(&self, r: usize) -> Option<usize> {
        match self {
            RowMap::Prefix(n) => (r < *n).then_some(r),
            RowMap::Sparse(v) => v[r],
        }
    }
}

/// The rows of a file: the union of all channels' sample times, each channel's value or null.
fn rows(rec: &Recording) -> (Vec<f64>, Vec<RowMap>) {
    let longest =
        rec.data.iter().max_by_key(|d| d.times_s.len()).map(|d| d.times_s.as_slice()).unwrap_or(&[]);
    let is_prefix = |t: &[f64]| t.len() <= longest.len() && t == &longest[..t.len()];
    let times: Vec<f64> = if rec.data.iter().all(|d| is_prefix(&d.times_s)) {
        longest.to_vec()
    } else {
        let mut t: Vec<f64> = rec.data.iter().flat_map(|d| d.times_s.iter().copied()).collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    };
    let maps = rec
        .data
        .iter()
        .map(|d| {
            if d.times_s.len() <= times.len() && d.times_s == times[..d.times_s.len()] {
                return RowMap::Prefix(d.times_s.len());
            }
            let mut out = vec![None; times.len()];
            let mut r = 0;
            for (i, t) in d.times_s.iter().enumerate() {
                while times[r] < *t {
                    r += 1;
                }
                out[r] = Some(i);
            }
            RowMap::Sparse(out)
        })
        .collect();
    (times, maps)
}

/// Writes a recording as Parquet ([`crate::formats::table::write`]: zstd, byte-stream-split floats),
/// atomically. Same recording, same bytes.
pub fn write_parquet(rec: &Recording, dest: &Path) -> Result<()> {
    let (times, index) = rows(rec);
    let mut columns: Vec<(String, ArrayRef)> =
        vec![(TIME_COLUMN.to_string(), Arc::new(Float64Array::from(times.clone())))];
    for ((cm, d), idx) in rec.meta.channels.iter().zip(&rec.data).zip(&index) {
        let array: ArrayRef = match &d.samples {
            Samples::Numeric(v) => {
                Arc::new((0..times.len()).map(|r| idx.get(r).map(|i| v[i])).collect::<Float32Array>())
            }
            Samples::Text(v) => {
                Arc::new((0..times.len()).map(|r| idx.get(r).map(|i| v[i].as_str())).collect::<StringArray>())
            }
        };
        columns.push((cm.name.clone(), array));
    }
    crate::formats::table::write(dest, columns, &[(META_KEY, serde_json::to_string(&with_crc(rec))?)])
}

/// The sidecar metadata file of a CSV recording.
pub fn csv_meta_path(csv: &Path) -> PathBuf {
    let name = csv.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    csv.with_file_name(format!("{name}.meta.json"))
}

/// Writes a recording as CSV plus its `.meta.json` sidecar, atomically (each file).
pub fn write_csv(rec: &Recording, dest: &Path) -> Result<()> {
    use std::io::Write;
    let (times, index) = rows(rec);
    crate::io::write_atomic(dest, |w| {
        write!(w, "{TIME_COLUMN}")?;
        for c in &rec.meta.channels {
            write!(w, ",{}", c.name)?;
        }
        writeln!(w)?;
        for (r, t) in times.iter().enumerate() {
            write!(w, "{t:?}")?;
            for (d, idx) in rec.data.iter().zip(&index) {
                match (idx.get(r), &d.samples) {
                    (None, _) => write!(w, ",")?,
                    (Some(i), Samples::Numeric(v)) if v[i].is_nan() => write!(w, ",nan")?,
                    (Some(i), Samples::Numeric(v)) => write!(w, ",{:?}", v[i])?,
                    (Some(i), Samples::Text(v)) => write!(w, ",{}", v[i])?,
                }
            }
            writeln!(w)?;
        }
        Ok(())
    })?;
    crate::io::write_bytes_atomic(
        &csv_meta_path(dest),
        serde_json::to_string_pretty(&with_crc(rec))?.as_bytes(),
    )
}

fn open_csv(path: &Path, chunk_rows: usize) -> Result<RecordingStream, ContractViolations> {
    use std::io::BufRead;
    let meta_path = csv_meta_path(path);
    let json = std::fs::read_to_string(&meta_path).map_err(|e| {
        bad(path, "", format!("cannot read the metadata sidecar {}: {e}", meta_path.display()))
    })?;
    let meta = parse_meta(&meta_path, &json, "")?;
    let file = std::fs::File::open(path).map_err(|e| bad(path, "", format!("cannot read: {e}")))?;
    let mut left = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut input = std::io::BufReader::with_capacity(1 << 16, file);
    // A UTF-8 byte-order mark (Excel writes one) is not part of the first column's name.
    let head = input.fill_buf().map_err(|e| bad(path, "", format!("cannot read: {e}")))?;
    if head.starts_with(b"\xef\xbb\xbf") {
        input.consume(3);
        left = left.saturating_sub(3);
    }
    // Empty (or only white space): said so, rather than "no header".
    let head = input.fill_buf().map_err(|e| bad(path, "", format!("cannot read: {e}")))?;
    if head.len() as u64 >= left && head.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(path, "", "the file is empty"));
    }
    let mut reader = Box::new(csv_reader_from(input));
    let names = csv_header(path, "file.format", &mut *reader)?;
    if names.first().map(String::as_str) != Some(TIME_COLUMN) {
        return Err(bad(path, "line 1", format!("the first column must be {TIME_COLUMN:?}")));
    }
    let mut cols = Vec::new();
    for c in &meta.channels {
        let i = names.iter().position(|n| *n == c.name).ok_or_else(|| {
            Violation::new(
                path,
                format!("channel {}", c.name),
                "channel.present",
                "listed in the metadata but has no column",
            )
        })?;
        cols.push(i);
    }
    // A text channel is one the sidecar gives unit "-".
    let text = meta.channels.iter().map(|c| c.unit == "-").collect();
    Ok(RecordingStream {
        path: path.to_path_buf(),
        crc: ContentCrc::new(meta.channels.len()),
        meta,
        source: Source::Csv { reader, cols, chunk_rows },
        text,
        rows: 0,
        crc_required: false,
    })
}

/// Up to `chunk_rows` CSV records as a chunk (rows from `row0`), with the number of rows.
fn csv_chunk<R: std::io::Read>(
    path: &Path,
    meta: &RecordingMeta,
    text: &[bool],
    reader: &mut csv::Reader<R>,
    cols: &[usize],
    row0: u32,
    chunk_rows: usize,
) -> Result<Option<(Vec<ChannelData>, u32)>, ContractViolations> {
    let mut data: Vec<ChannelData> = text.iter().map(|&t| ChannelData::empty(t)).collect();
    let mut n = 0u32;
    let mut cells = csv::StringRecord::new();
    while (n as usize) < chunk_rows {
        match reader.read_record(&mut cells) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, e)),
        }
        let lineno = cells.position().map_or(0, |p| p.line());
        let t: f64 = cells[0].parse().map_err(|_| {
            bad(
                path,
                format!("line {lineno}, column {TIME_COLUMN}"),
                format!("{:?} is not a number", &cells[0]),
            )
        })?;
        if !t.is_finite() {
            return Err(Violation::new(
                path,
                format!("line {lineno}, column {TIME_COLUMN}"),
                "time.finite",
                format!("time {:?} is not a finite number of seconds", &cells[0]),
            )
            .into());
        }
        for ((cm, &ci), d) in meta.channels.iter().zip(cols).zip(data.iter_mut()) {
            let cell = &cells[ci];
            if cell.is_empty() {
                continue;
            }
            match &mut d.samples {
                Samples::Numeric(v) => {
                    let x: f64 = if cell.eq_ignore_ascii_case("nan") {
                        f64::NAN
                    } else {
                        cell.parse().map_err(|_| {
                            bad(
                                path,
                                format!("line {lineno}, channel {}", cm.name),
                                format!("{cell:?} is not a number"),
                            )
                        })?
                    };
                    if overflows_f32(x) {
                        return Err(overflow(path, &cm.name, format!("line {lineno}"), x));
                    }
                    // Rounded to the nearest float32, as Rust's f32 parser does (one rounding).
                    v.push(cell_f32(cell, x));
                }
                Samples::Text(v) => v.push(cell.to_string()),
            }
            d.times_s.push(t);
            d.rows.push(row0 + n);
        }
        n += 1;
    }
    Ok((n > 0).then_some((data, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn small() -> Recording {
        let ch = |name: &str, unit: &str, rate: f64, start: f64| ChannelMeta {
            name: name.into(),
            unit: unit.into(),
            sample_rate_hz: rate,
            start_s: start,
        };
        let vib_t: Vec<f64> = (0..64).map(|i| i as f64 / 64.0).collect();
        let rpm_t: Vec<f64> = (0..4).map(|i| 0.1 + i as f64 / 4.0).collect();
        let mut vib: Vec<f32> = (0..64).map(|i| (i as f32 * 0.3).sin()).collect();
        vib[5] = f32::NAN;
        Recording {
            meta: RecordingMeta {
                format: FORMAT.into(),
                format_version: FORMAT_VERSION,
                aircraft_id: "AC01".into(),
                engine_id: "AC01-E1".into(),
                flight_id: "AC01-F0001-E1".into(),
                source: "test".into(),
                channels: vec![
                    ch("vib_fan", "g", 64.0, 0.0),
                    ch("n1_rpm", "rpm", 4.0, 0.1),
                    ch("phase", "-", 1.0, 0.0),
                ],
                content_crc32: None,
                attributes: Default::default(),
            },
            data: vec![
                ChannelData { rows: vec![0; 64], times_s: vib_t, samples: Samples::Numeric(vib) },
                ChannelData {
                    rows: vec![0; 4],
                    times_s: rpm_t,
                    samples: Samples::Numeric(vec![1000.0, 1100.0, 1200.0, 1300.0]),
                },
                ChannelData {
                    rows: vec![0],
                    times_s: vec![0.0],
                    samples: Samples::Text(vec!["taxi".into()]),
                },
            ],
            path: PathBuf::new(),
        }
    }

    fn same_values(a: &Recording, b: &Recording) {
        assert_eq!(b.meta.content_crc32, Some(content_crc32(&a.data)));
        assert_eq!(RecordingMeta { content_crc32: None, ..b.meta.clone() }, a.meta);
        for (x, y) in a.data.iter().zip(&b.data) {
            assert_eq!(x.times_s, y.times_s);
            match (&x.samples, &y.samples) {
                (Samples::Numeric(p), Samples::Numeric(q)) => {
                    assert_eq!(
                        p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        q.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    )
                }
                (p, q) => assert_eq!(p, q),
            }
        }
    }

    fn read_csv_from(rec: &Recording, dir: &Path) -> Recording {
        let c = dir.join("plain.csv");
        write_csv(rec, &c).unwrap();
        read(&c).unwrap()
    }

    #[test]
    fn crc_combine_is_the_crc_of_the_concatenation() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let crc = |b: &[u8]| avm_core::bundle::CRC32.checksum(b);
        for cut in [0, 1, 7, 8, 4096, 9_999, 10_000] {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(crc32_combine(crc(a), crc(b), b.len() as u64), crc(&bytes), "cut at {cut}");
        }
        // Independent reference: crc32fast over the whole.
        assert_eq!(crc(&bytes), crc32fast::hash(&bytes));
    }

    #[test]
    fn chunked_content_crc_equals_the_whole() {
        let rec = small();
        let mut crc = ContentCrc::new(rec.data.len());
        for (c, d) in rec.data.iter().enumerate() {
            // Three uneven chunks per channel.
            let n = d.times_s.len();
            for r in [0..n / 3, n / 3..n / 3 + 1, n / 3 + 1..n] {
                let part = ChannelData {
                    times_s: d.times_s[r.clone()].to_vec(),
                    samples: match &d.samples {
                        Samples::Numeric(v) => Samples::Numeric(v[r.clone()].to_vec()),
                        Samples::Text(v) => Samples::Text(v[r.clone()].to_vec()),
                    },
                    rows: d.rows[r].to_vec(),
                };
                crc.push(c, &part);
            }
        }
        // The definition, written out in one pass over the bytes.
        let mut bytes = Vec::new();
        for d in &rec.data {
            d.times_s.iter().for_each(|t| bytes.extend(t.to_le_bytes()));
            match &d.samples {
                Samples::Numeric(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
                Samples::Text(v) => v.iter().for_each(|x| {
                    bytes.extend(x.as_bytes());
                    bytes.push(0);
                }),
            }
        }
        assert_eq!(crc.finish(), crc32fast::hash(&bytes));
        assert_eq!(content_crc32(&rec.data), crc32fast::hash(&bytes));
    }

    #[test]
    fn parquet_and_csv_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let rec = small();
        let p = dir.path().join("r.parquet");
        write_parquet(&rec, &p).unwrap();
        let back = read(&p).unwrap();
        same_values(&rec, &back);
        // rows: 64 vibration rows + 4 speed rows at other times
        assert_eq!(back.data[1].rows, vec![7, 24, 41, 58]);
        let c = dir.path().join("r.csv");
        write_csv(&back, &c).unwrap();
        same_values(&rec, &read(&c).unwrap());
        // Same recording, same bytes.
        let p2 = dir.path().join("r2.parquet");
        write_parquet(&rec, &p2).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&p2).unwrap());
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.parquet");
        std::fs::write(&p, b"").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("empty.parquet") && e.contains("empty (0 bytes)"), "{e}");
        let good = dir.path().join("good.parquet");
        write_parquet(&small(), &good).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let t = dir.path().join("truncated.parquet");
        std::fs::write(&t, &bytes[..bytes.len() / 2]).unwrap();
        let e = read(&t).unwrap_err().to_string();
        assert!(e.contains("truncated.parquet") && e.contains("not a readable Parquet file"), "{e}");
        let c = dir.path().join("r.csv");
        write_csv(&small(), &c).unwrap();
        let text = std::fs::read_to_string(&c).unwrap().replacen("0.0,", "0.0,abc", 1);
        std::fs::write(&c, &text).unwrap();
        let e = read(&c).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        // A row with a cell too many, after a blank line: named by its line.
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1] = "0.0,0,0,taxi,extra";
        lines.insert(3, "");
        std::fs::write(&c, lines.join("\n")).unwrap();
        let e = read(&c).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("5 cells, the header has 4"), "{e}");
    }

    #[test]
    fn csv_accepts_quotes_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("r.csv");
        write_csv(&small(), &c).unwrap();
        let text = std::fs::read_to_string(&c).unwrap();
        let quoted =
            text.replacen("time_s,vib_fan", "\"time_s\",\"vib_fan\"", 1).replace(",taxi", ",\"taxi\"");
        std::fs::write(&c, quoted + "\n\n").unwrap();
        let back = read(&c).unwrap();
        let orig = read_csv_from(&small(), dir.path());
        // Same times and value bits (NaN included) and the same rows.
        assert_eq!(content_crc32(&back.data), content_crc32(&orig.data));
        assert_eq!(
            back.data.iter().map(|d| &d.rows).collect::<Vec<_>>(),
            orig.data.iter().map(|d| &d.rows).collect::<Vec<_>>()
        );
    }
}
