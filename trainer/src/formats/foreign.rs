//! Reading other people's files for `avm import`: the columns (or MATLAB variables, or WAV
//! channels) a mapping asks for, and nothing else, so a wide file costs only what is used.
//!
//! Numeric columns are read as f64; an empty cell (CSV) or a null (Parquet) is NaN, i.e. a
//! dropout that preprocess repairs or refuses; a cell that is not a number is an error naming
//! the file, row and column. Every problem is a [`Violation`] of rule `import.read`.

use crate::error::{ContractViolations, Violation};
use crate::formats::mapping::{CsvSpec, InputFormat, SourceRef};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use std::path::Path;

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Numbers.
    Numeric,
    /// Text (phase, label states).
    Text,
}

/// One column read.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Numbers (NaN for missing).
    Numeric(Vec<f64>),
    /// Text (empty for missing).
    Text(Vec<String>),
}

impl Column {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The columns asked for, in the order asked (`None`: absent from the file), plus what the file
/// says of itself.
#[derive(Debug)]
pub struct Table {
    /// Per request: the column's name in the file and its values.
    pub columns: Vec<Option<(String, Column)>>,
    /// Every column (variable) name of the file, in order, for messages.
    pub names: Vec<String>,
    /// The file's own sample rate (WAV), Hz.
    pub rate_hz: Option<f64>,
}

fn bad(path: &Path, loc: impl Into<String>, d: impl Into<String>) -> ContractViolations {
    Violation::new(path, loc, "import.read", d).into()
}

/// Resolves each request against `names`: a 1-based position, an exact name, or a glob that
/// must match exactly one name. `None` when nothing matches.
pub fn resolve(
    path: &Path,
    names: &[String],
    wanted: &SourceRef,
) -> Result<Option<usize>, ContractViolations> {
    match wanted {
        SourceRef::Position(p) => Ok((*p as usize).checked_sub(1).filter(|&i| i < names.len())),
        SourceRef::Name(n) => {
            if let Some(i) = names.iter().position(|x| x == n) {
                return Ok(Some(i));
            }
            if !n.contains(['*', '?', '[']) {
                return Ok(None);
            }
            let pat = glob::Pattern::new(n).map_err(|e| bad(path, "", format!("pattern {n:?}: {e}")))?;
            let hits: Vec<usize> = (0..names.len()).filter(|&i| pat.matches(&names[i])).collect();
            match hits.as_slice() {
                [] => Ok(None),
                [i] => Ok(Some(*i)),
                many => Err(bad(
                    path,
                    "",
                    format!(
                        "pattern {n:?} matches {} columns ({}): name one",
                        many.len(),
                        many.iter().map(|&i| names[i].as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        }
    }
}

/// Reads the requested columns of `path`.
pub fn read(
    path: &Path,
    format: InputFormat,
    csv: &CsvSpec,
    wanted: &[(SourceRef, Kind)],
) -> Result<Table, ContractViolations> {
    let format = format.of(path).ok_or_else(|| {
        bad(
            path,
            "",
            "unknown file type: name it .csv, .parquet, .mat or .wav, or set input.format in the mapping",
        )
    })?;
    match format {
        InputFormat::Csv => read_csv(path, csv, wanted),
        InputFormat::Parquet => read_parquet(path, wanted),
        InputFormat::Mat => read_mat(path, wanted),
        InputFormat::Wav => read_wav(path, wanted),
        InputFormat::Auto => unreachable!("resolved by InputFormat::of"),
    }
}

fn read_csv(path: &Path, spec: &CsvSpec, wanted: &[(SourceRef, Kind)]) -> Result<Table, ContractViolations> {
    let file = std::fs::File::open(path).map_err(|e| bad(path, "", format!("cannot read: {e}")))?;
    let delim = if spec.delimiter == "\\t" { b'\t' } else { spec.delimiter.as_bytes()[0] };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(spec.header)
        .delimiter(delim)
        .trim(csv::Trim::All)
        .from_reader(std::io::BufReader::new(file));
    let mut names: Vec<String> = if spec.header {
        rdr.headers()
            .map_err(|e| crate::formats::recording::csv_violation(path, "import.read", e))?
            .iter()
            .enumerate()
            .map(|(i, h)| if i == 0 { h.trim_start_matches('\u{feff}').to_string() } else { h.to_string() })
            .collect()
    } else {
        Vec::new()
    };
    let mut cols: Vec<Option<(usize, Column)>> = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(crate::formats::recording::csv_violation(path, "import.read", e)),
        }
        if row == 0 {
            if !spec.header {
                names = (1..=record.len()).map(|i| format!("column {i}")).collect();
            }
            for (w, kind) in wanted {
                let idx = match w {
                    SourceRef::Position(p) => (*p as usize).checked_sub(1).filter(|&i| i < names.len()),
                    SourceRef::Name(_) => resolve(path, &names, w)?,
                };
                cols.push(idx.map(|i| {
                    (
                        i,
                        if *kind == Kind::Numeric {
                            Column::Numeric(Vec::new())
                        } else {
                            Column::Text(Vec::new())
                        },
                    )
                }));
            }
        }
        let line = record.position().map_or(row + 1, |p| p.line() as usize);
        for (i, c) in cols.iter_mut().flatten() {
            let cell = record.get(*i).unwrap_or("");
            match c {
                Column::Numeric(v) => v.push(if cell.is_empty() {
                    f64::NAN
                } else {
                    cell.parse::<f64>().map_err(|_| {
                        bad(
                            path,
                            format!("line {line}, column {:?}", names[*i]),
                            format!("{cell:?} is not a number"),
                        )
                    })?
                }),
                Column::Text(v) => v.push(cell.to_string()),
            }
        }
        row += 1;
    }
    if row == 0 {
        return Err(bad(path, "", "no data rows"));
    }
    let columns = cols.into_iter().map(|c| c.map(|(i, col)| (names[i].clone(), col))).collect();
    Ok(Table { columns, names, rate_hz: None })
}

fn read_parquet(path: &Path, wanted: &[(SourceRef, Kind)]) -> Result<Table, ContractViolations> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).map_err(|e| bad(path, "", format!("cannot read: {e}")))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(path, "", format!("not a readable Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let idx: Vec<Option<usize>> =
        wanted.iter().map(|(w, _)| resolve(path, &names, w)).collect::<Result<_, _>>()?;
    let mut leaves: Vec<usize> = idx.iter().flatten().copied().collect();
    leaves.sort_unstable();
    leaves.dedup();
    let mask = ProjectionMask::roots(builder.parquet_schema(), leaves.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(crate::formats::recording::CHUNK_ROWS)
        .build()
        .map_err(|e| bad(path, "", format!("cannot read: {e}")))?;
    let mut cols: Vec<Option<Column>> = wanted
        .iter()
        .zip(&idx)
        .map(|((_, k), i)| {
            i.map(
                |_| if *k == Kind::Numeric { Column::Numeric(Vec::new()) } else { Column::Text(Vec::new()) },
            )
        })
        .collect();
    let mut row0 = 0usize;
    for batch in reader {
        let batch =
            batch.map_err(|e| bad(path, format!("after row {row0}"), format!("cannot decode: {e}")))?;
        for (c, i) in cols.iter_mut().zip(&idx) {
            let (Some(c), Some(i)) = (c, i) else { continue };
            let pos = leaves.binary_search(i).unwrap_or(0);
            let a = batch.column(pos);
            append_arrow(path, &names[*i], a, c)?;
        }
        row0 += batch.num_rows();
    }
    let columns =
        cols.into_iter().zip(&idx).map(|(c, i)| c.zip(*i).map(|(c, i)| (names[i].clone(), c))).collect();
    Ok(Table { columns, names, rate_hz: None })
}

fn append_arrow(path: &Path, name: &str, a: &ArrayRef, out: &mut Column) -> Result<(), ContractViolations> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    macro_rules! prim {
        ($t:ty, $v:expr) => {{
            let p = a.as_primitive::<$t>();
            $v.extend((0..p.len()).map(|i| if p.is_null(i) { f64::NAN } else { p.value(i) as f64 }));
        }};
    }
    match out {
        Column::Numeric(v) => match a.data_type() {
            DataType::Float64 => prim!(Float64Type, v),
            DataType::Float32 => prim!(Float32Type, v),
            DataType::Int8 => prim!(Int8Type, v),
            DataType::Int16 => prim!(Int16Type, v),
            DataType::Int32 => prim!(Int32Type, v),
            DataType::Int64 => prim!(Int64Type, v),
            DataType::UInt8 => prim!(UInt8Type, v),
            DataType::UInt16 => prim!(UInt16Type, v),
            DataType::UInt32 => prim!(UInt32Type, v),
            DataType::UInt64 => prim!(UInt64Type, v),
            other => {
                return Err(bad(path, format!("column {name:?}"), format!("type {other} is not numeric")));
            }
        },
        Column::Text(v) => match a.data_type() {
            DataType::Utf8 => {
                let s = a.as_string::<i32>();
                v.extend(
                    (0..s.len()).map(|i| if s.is_null(i) { String::new() } else { s.value(i).to_string() }),
                );
            }
            DataType::LargeUtf8 => {
                let s = a.as_string::<i64>();
                v.extend(
                    (0..s.len()).map(|i| if s.is_null(i) { String::new() } else { s.value(i).to_string() }),
                );
            }
            other => {
                return Err(bad(path, format!("column {name:?}"), format!("type {other} is not text")));
            }
        },
    }
    Ok(())
}

fn read_mat(path: &Path, wanted: &[(SourceRef, Kind)]) -> Result<Table, ContractViolations> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, "", format!("cannot read: {e}")))?;
    let vars = crate::formats::matfile::read(&bytes).map_err(|e| bad(path, "", e.to_string()))?;
    let names: Vec<String> = vars.iter().map(|v| v.name.clone()).collect();
    let mut columns = Vec::new();
    for (w, k) in wanted {
        if *k == Kind::Text {
            return Err(bad(path, "", format!("{w}: MAT files hold no text columns avm reads")));
        }
        columns.push(
            resolve(path, &names, w)?.map(|i| (names[i].clone(), Column::Numeric(vars[i].data.clone()))),
        );
    }
    Ok(Table { columns, names, rate_hz: None })
}

fn read_wav(path: &Path, wanted: &[(SourceRef, Kind)]) -> Result<Table, ContractViolations> {
    let mut r =
        hound::WavReader::open(path).map_err(|e| bad(path, "", format!("not a readable WAV file: {e}")))?;
    let spec = r.spec();
    let n_ch = spec.channels as usize;
    let names: Vec<String> = (1..=n_ch).map(|i| format!("channel {i}")).collect();
    // Integer PCM is scaled to [-1, 1): the mapping's `scale` turns that into g.
    let mut all: Vec<Vec<f64>> = vec![Vec::new(); n_ch];
    let err = |e: hound::Error| bad(path, "", format!("cannot decode: {e}"));
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for (i, s) in r.samples::<f32>().enumerate() {
                all[i % n_ch].push(f64::from(s.map_err(err)?));
            }
        }
        hound::SampleFormat::Int => {
            let full = f64::from(1u32 << (spec.bits_per_sample.clamp(1, 32) - 1));
            for (i, s) in r.samples::<i32>().enumerate() {
                all[i % n_ch].push(f64::from(s.map_err(err)?) / full);
            }
        }
    }
    let mut columns = Vec::new();
    for (w, k) in wanted {
        if *k == Kind::Text {
            return Err(bad(path, "", format!("{w}: WAV files hold no text columns")));
        }
        columns.push(resolve(path, &names, w)?.map(|i| (names[i].clone(), Column::Numeric(all[i].clone()))));
    }
    Ok(Table { columns, names, rate_hz: Some(f64::from(spec.sample_rate)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> SourceRef {
        SourceRef::Name(s.into())
    }

    #[test]
    fn csv_by_name_position_and_glob_with_row_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(&p, "\u{feff}t,acc_x,acc_y,mode\n0,1.5,,cruise\n0.5,-2,3,cruise\n").unwrap();
        let t = read(
            &p,
            InputFormat::Auto,
            &CsvSpec::default(),
            &[
                (n("t"), Kind::Numeric),
                (n("acc_?"), Kind::Numeric),
                (SourceRef::Position(3), Kind::Numeric),
                (n("mode"), Kind::Text),
                (n("none"), Kind::Numeric),
            ],
        );
        let e = t.unwrap_err().to_string();
        assert!(e.contains("matches 2 columns (acc_x, acc_y)"), "{e}");
        let t = read(
            &p,
            InputFormat::Auto,
            &CsvSpec::default(),
            &[
                (n("t"), Kind::Numeric),
                (SourceRef::Position(3), Kind::Numeric),
                (n("mode"), Kind::Text),
                (n("none"), Kind::Numeric),
            ],
        )
        .unwrap();
        assert_eq!(t.columns[0], Some(("t".into(), Column::Numeric(vec![0.0, 0.5]))));
        let Some((name, Column::Numeric(y))) = &t.columns[1] else { panic!() };
        assert_eq!(name, "acc_y");
        assert!(y[0].is_nan() && y[1] == 3.0);
        assert_eq!(t.columns[2], Some(("mode".into(), Column::Text(vec!["cruise".into(), "cruise".into()]))));
        assert_eq!(t.columns[3], None);
        std::fs::write(&p, "t,x\n0,1\n1,one\n").unwrap();
        let e = read(&p, InputFormat::Csv, &CsvSpec::default(), &[(n("x"), Kind::Numeric)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("\"one\" is not a number"), "{e}");
    }

    #[test]
    fn headerless_csv_mat_and_wav() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.txt");
        std::fs::write(&p, "9,39,1.0,0.5\n9,39,2.0,-0.5\n").unwrap();
        let spec = CsvSpec { header: false, ..CsvSpec::default() };
        let t = read(&p, InputFormat::Auto, &spec, &[(SourceRef::Position(4), Kind::Numeric)]).unwrap();
        assert_eq!(t.columns[0], Some(("column 4".into(), Column::Numeric(vec![0.5, -0.5]))));
        let m = d.path().join("x.mat");
        std::fs::write(&m, crate::formats::matfile::tests::build_as(&[("X7_DE_time", &[1.0, 2.0])], true))
            .unwrap();
        let t = read(&m, InputFormat::Auto, &spec, &[(n("*_DE_time"), Kind::Numeric)]).unwrap();
        assert_eq!(t.columns[0], Some(("X7_DE_time".into(), Column::Numeric(vec![1.0, 2.0]))));
        let w = d.path().join("x.wav");
        let ws = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut wr = hound::WavWriter::create(&w, ws).unwrap();
        for s in [16384i16, -32768, 0, 8192] {
            wr.write_sample(s).unwrap();
        }
        wr.finalize().unwrap();
        let t = read(&w, InputFormat::Auto, &spec, &[(SourceRef::Position(2), Kind::Numeric)]).unwrap();
        assert_eq!(t.rate_hz, Some(8000.0));
        assert_eq!(t.columns[0], Some(("channel 2".into(), Column::Numeric(vec![-1.0, 0.25]))));
        let e = read(&d.path().join("x.bin"), InputFormat::Auto, &spec, &[]).unwrap_err().to_string();
        assert!(e.contains("unknown file type"), "{e}");
    }
}
