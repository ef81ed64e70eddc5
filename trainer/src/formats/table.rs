//! Plain Parquet tables (window tables, feature tables): named columns, key-value metadata,
//! written atomically, read back by name with type checks that name the file and column.

use crate::error::{ContractViolations, Violation};
use anyhow::{Context, Result};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Writes `columns` (all of one length) as a Parquet table with `metadata`, atomically.
pub fn write(dest: &Path, columns: Vec<(String, ArrayRef)>, metadata: &[(&str, String)]) -> Result<()> {
    let fields: Vec<Field> =
        columns.iter().map(|(n, a)| Field::new(n, a.data_type().clone(), a.null_count() > 0)).collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect())
        .with_context(|| format!("building table {}", dest.display()))?;
    let mut props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?));
    // Floats compress far better split into byte planes (sensor noise fills only the low
    // bytes; a time grid's high bytes barely change).
    for f in schema.fields().iter().filter(|f| f.data_type().is_floating()) {
        props = props
            .set_column_encoding(ColumnPath::from(f.name().as_str()), Encoding::BYTE_STREAM_SPLIT)
            .set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), false);
    }
    let props = props
        .set_key_value_metadata(Some(
            metadata.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.clone())).collect(),
        ))
        .build();
    crate::io::write_atomic(dest, |w| {
        let mut writer = ArrowWriter::try_new(w, schema, Some(props))?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(())
    })
    .with_context(|| format!("writing {}", dest.display()))
}

/// A table read back: columns by name, and the key-value metadata.
pub struct Table {
    /// Columns (each one array: batches concatenated).
    pub columns: HashMap<String, ArrayRef>,
    /// Column names in file order.
    pub names: Vec<String>,
    /// Key-value metadata.
    pub metadata: HashMap<String, String>,
    /// Rows.
    pub rows: usize,
}

impl Table {
    /// Reads a table.
    pub fn read(path: &Path) -> Result<Table, ContractViolations> {
        crate::guard::decode(|| Table::read_unguarded(path)).unwrap_or_else(|panic| {
            Err(Violation::new(
                path,
                "",
                "file.format",
                format!("not a readable Parquet file (corrupt: the decoder failed: {panic})"),
            )
            .into())
        })
    }

    fn read_unguarded(path: &Path) -> Result<Table, ContractViolations> {
        let bad = |d: String| -> ContractViolations { Violation::new(path, "", "file.format", d).into() };
        let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| bad(format!("not a readable Parquet file (truncated or corrupt?): {e}")))?;
        let metadata = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|kv| kv.iter().filter_map(|k| Some((k.key.clone(), k.value.clone()?))).collect())
            .unwrap_or_default();
        let schema = builder.schema().clone();
        let reader = builder.build().map_err(|e| bad(format!("cannot read: {e}")))?;
        let mut batches = Vec::new();
        for b in reader {
            batches.push(b.map_err(|e| bad(format!("corrupt data: {e}")))?);
        }
        let batch = arrow_select_concat(&schema, &batches).map_err(bad)?;
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let columns = names.iter().cloned().zip(batch.columns().iter().cloned()).collect();
        Ok(Table { columns, names, metadata, rows: batch.num_rows() })
    }

    /// Column `name` as concrete array type `A`; an error names the file and column.
    pub fn column<A: Array + Clone + 'static>(
        &self,
        path: &Path,
        name: &str,
    ) -> Result<A, ContractViolations> {
        let a = self.columns.get(name).ok_or_else(|| {
            ContractViolations::from(Violation::new(
                path,
                format!("column {name}"),
                "table.column",
                "missing",
            ))
        })?;
        a.as_any().downcast_ref::<A>().cloned().ok_or_else(|| {
            Violation::new(
                path,
                format!("column {name}"),
                "table.column",
                format!("unexpected type {}", a.data_type()),
            )
            .into()
        })
    }
}

fn arrow_select_concat(schema: &Arc<Schema>, batches: &[RecordBatch]) -> Result<RecordBatch, String> {
    if batches.len() == 1 {
        return Ok(batches[0].clone());
    }
    let mut cols = Vec::new();
    for i in 0..schema.fields().len() {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
        cols.push(arrow_select::concat::concat(&parts).map_err(|e| e.to_string())?);
    }
    RecordBatch::try_new(schema.clone(), cols).map_err(|e| e.to_string())
}
