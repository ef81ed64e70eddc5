//! A reader for MATLAB level-5 MAT files (what `save -v6` and MATLAB's default `save -v7`
//! write: uncompressed or zlib-compressed variables, little-endian), enough for numeric arrays
//! such as the CWRU bearing data (`Xnnn_DE_time` column vectors, scalar `XnnnRPM`). MATLAB
//! v7.3 files are HDF5 and are refused with the conversion to use.
//!
//! Why not the `matfile` crate (0.5): measured on CWRU's `normal_0_97.mat`, it parses a file
//! cut to 20 000 bytes as a valid file with no variables and the file without its last 100
//! bytes as one with only `X097_DE_time` (the fan-end channel and the RPM silently gone); a
//! recording that silently loses a channel is the failure this project exists to prevent.
//! This reader refuses both with the byte offset, and `flate2` (zlib) does the decompression.
//!
//! Layout (MATLAB "MAT-File Format", level 5):
//!
//! | bytes | content |
//! |---|---|
//! | 0..116 | descriptive text |
//! | 116..124 | subsystem data offset |
//! | 124..126 | version (0x0100) |
//! | 126..128 | endian indicator `IM` (little-endian writer) |
//! | 128.. | data elements: tag `(type: u32, bytes: u32)` then data padded to 8 bytes; a *small* element packs `(bytes: u16, type: u16)` and up to 4 data bytes into 8 bytes |
//!
//! A numeric array is a `miMATRIX` (14) element holding: array flags (class in the low byte),
//! dimensions (`miINT32`), name (`miINT8`), real part (any numeric type, converted to f64).
//! A compressed variable (`miCOMPRESSED`, 15) is a zlib stream holding one such element; it is
//! inflated (at most [`MAX_INFLATED_BYTES`]) and read the same way. Complex, sparse, cell,
//! struct and char arrays are refused by name.

use std::fmt;

/// One numeric array.
#[derive(Clone, Debug, PartialEq)]
pub struct MatArray {
    /// Variable name.
    pub name: String,
    /// Dimensions (rows, columns, ...).
    pub dims: Vec<usize>,
    /// Values, column-major, as f64.
    pub data: Vec<f64>,
}

/// Why a MAT file could not be read; `offset` is the byte position of the problem.
#[derive(Clone, Debug, PartialEq)]
pub struct MatError {
    /// Byte offset in the file.
    pub offset: usize,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for MatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MAT file, byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for MatError {}

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// Largest inflated size of one compressed variable, bytes (a decompression bomb is refused
/// rather than exhausting memory): 4 GiB, 500 M float64 samples.
pub const MAX_INFLATED_BYTES: u64 = 4 << 30;

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn err(&self, offset: usize, what: impl Into<String>) -> MatError {
        MatError { offset, what: what.into() }
    }

    fn u32_at(&self, at: usize) -> Result<u32, MatError> {
        let s = self
            .b
            .get(at..at + 4)
            .ok_or_else(|| self.err(at, "file ends inside an element tag (truncated?)"))?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Reads the element at `at`: (type, data range, next element offset).
    fn element(&self, at: usize, end: usize) -> Result<(u32, std::ops::Range<usize>, usize), MatError> {
        let first = self.u32_at(at)?;
        if first >> 16 != 0 {
            // Small data element: bytes in the high half, type in the low half, data in the next 4.
            let (ty, n) = (first & 0xffff, (first >> 16) as usize);
            if n > 4 {
                return Err(self.err(at, format!("small element claims {n} bytes (at most 4)")));
            }
            if at + 8 > end {
                return Err(
                    self.err(at, "small element runs past the end of its container (truncated file?)")
                );
            }
            return Ok((ty, at + 4..at + 4 + n, at + 8));
        }
        let n = self.u32_at(at + 4)? as usize;
        let start = at + 8;
        let stop = start.checked_add(n).filter(|&s| s <= end).ok_or_else(|| {
            self.err(at, format!("element of {n} bytes runs past the end of its container (truncated file?)"))
        })?;
        Ok((first, start..stop, stop.div_ceil(8) * 8))
    }
}

fn numeric(ty: u32, bytes: &[u8], at: usize) -> Result<Vec<f64>, MatError> {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            bytes
                .chunks_exact($n)
                .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $n])) as f64)
                .collect()
        };
    }
    Ok(match ty {
        MI_DOUBLE => conv!(f64, 8),
        MI_SINGLE => conv!(f32, 4),
        MI_INT8 => conv!(i8, 1),
        MI_UINT8 => conv!(u8, 1),
        MI_INT16 => conv!(i16, 2),
        MI_UINT16 => conv!(u16, 2),
        MI_INT32 => conv!(i32, 4),
        MI_UINT32 => conv!(u32, 4),
        MI_INT64 => conv!(i64, 8),
        MI_UINT64 => conv!(u64, 8),
        other => return Err(MatError { offset: at, what: format!("data type {other} is not numeric") }),
    })
}

/// Reads every numeric array of a level-5 MAT file.
pub fn read(bytes: &[u8]) -> Result<Vec<MatArray>, MatError> {
    let r = Reader { b: bytes };
    if bytes.len() < 128 {
        return Err(r.err(bytes.len(), "shorter than the 128-byte header: not a MAT file (or truncated)"));
    }
    if bytes.starts_with(b"MATLAB 7.3 MAT-file") || bytes.get(512..520) == Some(b"\x89HDF\r\n\x1a\n") {
        return Err(r.err(
            0,
            "a MATLAB v7.3 (HDF5) file: not supported; in MATLAB re-save it with `save(name, '-v7')` \
             (or `-v6`), or convert it to CSV or Parquet (h5py + pyarrow)",
        ));
    }
    if !bytes.starts_with(b"MATLAB 5.0 MAT-file") {
        return Err(r.err(0, "no \"MATLAB 5.0 MAT-file\" header: not a level-5 MAT file"));
    }
    match &bytes[126..128] {
        b"IM" => {}
        b"MI" => return Err(r.err(126, "big-endian MAT files are not supported")),
        other => return Err(r.err(126, format!("bad endian indicator {other:?}"))),
    }
    variables(&r, 128, true)
}

/// The variables of the elements from `at` to the end of `r`; a compressed element is read
/// through [`compressed`] at the top level (MATLAB never nests them: inside one it is skipped
/// like any element that holds no variable).
fn variables(r: &Reader<'_>, mut at: usize, top: bool) -> Result<Vec<MatArray>, MatError> {
    let mut out = Vec::new();
    while at + 8 <= r.b.len() {
        let (ty, data, next) = r.element(at, r.b.len())?;
        match ty {
            MI_MATRIX => out.push(matrix(r, data, at)?),
            // A compressed element is not padded: the next one starts right after its stream.
            MI_COMPRESSED if top => {
                let end = data.end;
                out.extend(compressed(&r.b[data], at)?);
                at = end;
                continue;
            }
            _ => {} // other elements carry no variables we read
        }
        at = next.div_ceil(8) * 8;
    }
    Ok(out)
}

/// The variables inside one `miCOMPRESSED` element at byte `at` (its zlib stream is `z`).
fn compressed(z: &[u8], at: usize) -> Result<Vec<MatArray>, MatError> {
    use std::io::Read;
    let mut inflated = Vec::new();
    flate2::read::ZlibDecoder::new(z)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| MatError { offset: at, what: format!("compressed variable does not inflate: {e}") })?;
    if inflated.len() as u64 > MAX_INFLATED_BYTES {
        return Err(MatError {
            offset: at,
            what: format!("compressed variable inflates to more than {MAX_INFLATED_BYTES} bytes"),
        });
    }
    variables(&Reader { b: &inflated }, 0, false).map_err(|e| MatError {
        offset: at,
        what: format!("inside the compressed variable, inflated byte {}: {}", e.offset, e.what),
    })
}

fn matrix(r: &Reader<'_>, range: std::ops::Range<usize>, at: usize) -> Result<MatArray, MatError> {
    let end = range.end;
    let (ty, flags, next) = r.element(range.start, end)?;
    if ty != MI_UINT32 || flags.len() < 8 {
        return Err(r.err(range.start, "matrix without array flags"));
    }
    let class = r.u32_at(flags.start)? & 0xff;
    let complex = r.u32_at(flags.start)? & 0x800 != 0;
    let (ty, dims, next) = r.element(next, end)?;
    if ty != MI_INT32 {
        return Err(r.err(next, "matrix without dimensions"));
    }
    let dims: Vec<usize> = r.b[dims]
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]).max(0) as usize)
        .collect();
    let (ty, name, next) = r.element(next, end)?;
    if ty != MI_INT8 {
        return Err(r.err(next, "matrix without a name"));
    }
    let name = String::from_utf8_lossy(&r.b[name]).into_owned();
    // Classes 6..=15 are the numeric ones (double, single, int8 .. uint64).
    if !(6..=15).contains(&class) {
        return Err(r.err(
            at,
            format!(
                "variable {name:?}: array class {class} (cell, struct, char, sparse...) is not supported"
            ),
        ));
    }
    if complex {
        return Err(r.err(at, format!("variable {name:?}: complex arrays are not supported")));
    }
    let (ty, re, _) = r.element(next, end)?;
    let data = numeric(ty, &r.b[re], next)?;
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(data.len()) {
        return Err(r.err(at, format!("variable {name:?}: {} values for dimensions {dims:?}", data.len())));
    }
    Ok(MatArray { name, dims, data })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a small level-5 file with the given (name, column vector) variables.
    pub(crate) fn build(vars: &[(&str, &[f64])]) -> Vec<u8> {
        build_as(vars, false)
    }

    /// [`build`], each variable zlib-compressed as MATLAB's `save -v7` writes it when `zip`.
    pub(crate) fn build_as(vars: &[(&str, &[f64])], zip: bool) -> Vec<u8> {
        let mut b = b"MATLAB 5.0 MAT-file, Platform: test".to_vec();
        b.resize(124, b' ');
        b.extend_from_slice(&[0x00, 0x01, b'I', b'M']);
        for (name, v) in vars {
            let mut m = Vec::new();
            let el = |m: &mut Vec<u8>, ty: u32, data: &[u8]| {
                m.extend_from_slice(&ty.to_le_bytes());
                m.extend_from_slice(&(data.len() as u32).to_le_bytes());
                m.extend_from_slice(data);
                while !m.len().is_multiple_of(8) {
                    m.push(0);
                }
            };
            el(&mut m, MI_UINT32, &[6, 0, 0, 0, 0, 0, 0, 0]);
            let dims: Vec<u8> = [v.len() as i32, 1].iter().flat_map(|d| d.to_le_bytes()).collect();
            el(&mut m, MI_INT32, &dims);
            el(&mut m, MI_INT8, name.as_bytes());
            let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            el(&mut m, MI_DOUBLE, &data);
            let mut element = MI_MATRIX.to_le_bytes().to_vec();
            element.extend_from_slice(&(m.len() as u32).to_le_bytes());
            element.extend_from_slice(&m);
            if zip {
                use std::io::Write;
                let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                z.write_all(&element).unwrap();
                let z = z.finish().unwrap();
                b.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
                b.extend_from_slice(&(z.len() as u32).to_le_bytes());
                b.extend_from_slice(&z); // not padded, as MATLAB writes it
            } else {
                b.extend_from_slice(&element);
            }
        }
        b
    }

    #[test]
    fn reads_scipys_compressed_file_like_its_uncompressed_one() {
        // Written by scipy.io.savemat (fuzz/make_mat_seed.py), an independent MAT writer.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/matfile");
        let plain = read(&std::fs::read(dir.join("ok-scipy.mat")).unwrap()).unwrap();
        let zipped = read(&std::fs::read(dir.join("ok-scipy-compressed.mat")).unwrap()).unwrap();
        assert_eq!(plain, zipped);
        assert_eq!(plain[0].name, "X042_DE_time");
        assert_eq!(plain[0].data[1], (0.3f64).sin());
        assert_eq!(plain[1].data, vec![1797.0]);
    }

    #[test]
    fn reads_compressed_variables_like_uncompressed_ones() {
        let vars: [(&str, &[f64]); 2] = [("X001_DE_time", &[0.5, -0.25, 1.0]), ("X001RPM", &[1797.0])];
        let plain = read(&build_as(&vars, false)).unwrap();
        let zipped = build_as(&vars, true);
        assert_eq!(read(&zipped).unwrap(), plain);
        // A corrupted stream and every prefix are errors naming the element, never a panic.
        let mut bad = zipped.clone();
        bad[140] ^= 0xff;
        let e = read(&bad).unwrap_err();
        assert!(e.what.contains("compressed variable"), "{e}");
        for n in 128..zipped.len() {
            let _ = read(&zipped[..n]);
        }
    }

    #[test]
    fn reads_what_it_builds_and_names_errors() {
        let f = build(&[("X001_DE_time", &[0.5, -0.25, 1.0]), ("X001RPM", &[1797.0])]);
        let vars = read(&f).unwrap();
        assert_eq!(vars.len(), 2);
        assert_eq!(vars[0].name, "X001_DE_time");
        assert_eq!(vars[0].dims, vec![3, 1]);
        assert_eq!(vars[0].data, vec![0.5, -0.25, 1.0]);
        assert_eq!(vars[1].data, vec![1797.0]);
        let e = read(&f[..f.len() - 12]).unwrap_err();
        assert!(e.what.contains("truncated"), "{e}");
        assert!(read(b"hello").unwrap_err().what.contains("not a MAT file"));
        let mut big = f.clone();
        big[126..128].copy_from_slice(b"MI");
        assert!(read(&big).unwrap_err().what.contains("big-endian"));
    }

    #[test]
    fn truncated_small_element_is_an_error_not_a_panic() {
        // The last tag of a 156-byte file is a small element whose data would end at byte 160.
        let mut b = build(&[]);
        b.extend_from_slice(&MI_MATRIX.to_le_bytes());
        b.extend_from_slice(&20u32.to_le_bytes());
        b.extend_from_slice(&MI_UINT32.to_le_bytes()); // array flags, 8 bytes
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&(MI_INT32 | (4 << 16)).to_le_bytes()); // small dims element, cut
        assert_eq!(b.len(), 156);
        let e = read(&b).unwrap_err();
        assert!(e.what.contains("past the end") || e.what.contains("truncated"), "{e}");
        // Every prefix of a valid file is an error or a value, never a panic.
        let f = build(&[("X001_DE_time", &[0.5, -0.25, 1.0]), ("X001RPM", &[1797.0])]);
        for n in 0..f.len() {
            let _ = read(&f[..n]);
        }
    }

    #[test]
    fn v73_files_are_named() {
        let mut b = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00".to_vec();
        b.resize(600, 0);
        let e = read(&b).unwrap_err();
        assert!(e.what.contains("v7.3") && e.what.contains("-v7"), "{e}");
    }
}
