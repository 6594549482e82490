//! [`BatchWriter`]: Parquet and CSV files from a stream of `RecordBatch`es (`COPY t TO`,
//! `COPY (SELECT ...) TO`, the fvecs converter).
//!
//! Rows go to a temporary file next to the target (`.NAME.vela-tmp-PID-N`); [`BatchWriter::finish`]
//! flushes and fsyncs it, renames it over the target and fsyncs the directory. A failed or
//! abandoned export (an error, a dropped writer) removes the temporary file, so the target name
//! never holds half a file: it holds the old file or the whole new one.
//!
//! Vectors: `FixedSizeList<Float32>` in Parquet (byte-stream-split encoded, no dictionary, so
//! zstd compresses them); pgvector text `[1,2,3]` in CSV. Parquet row groups hold at most
//! `row_group_rows` rows and about 64 MiB, which bounds the writer's memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Float32Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::DatasetError;
use crate::format::Format;
use crate::mapping::format_vector;

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParquetCompression {
    None,
    Snappy,
    Lz4,
    /// Zstandard at a level from 1 to 22.
    Zstd(i32),
}

/// How to write a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The format; `None` tells it from the file name (Parquet or CSV only).
    pub format: Option<Format>,
    /// CSV: write a header line (default true).
    pub header: bool,
    /// CSV: field delimiter (default `,`).
    pub delimiter: u8,
    /// Parquet: codec (default zstd level 3).
    pub compression: ParquetCompression,
    /// Parquet: rows per row group at most (default 65,536).
    pub row_group_rows: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            format: None,
            header: true,
            delimiter: b',',
            compression: ParquetCompression::Zstd(3),
            row_group_rows: 65_536,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    /// Size of the final file.
    pub bytes: u64,
}

enum Inner {
    Parquet(Box<ArrowWriter<File>>),
    Csv(Box<arrow::csv::Writer<BufWriter<File>>>),
}

/// Writes batches to a file atomically (see the module doc).
pub struct BatchWriter {
    inner: Option<Inner>,
    target: PathBuf,
    tmp: PathBuf,
    schema: SchemaRef,
    rows: u64,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter")
            .field("target", &self.target)
            .field("rows", &self.rows)
            .finish()
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn tmp_path(target: &Path) -> Result<PathBuf, DatasetError> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| DatasetError::invalid(target, "not a file name"))?;
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(target.with_file_name(format!(".{name}.vela-tmp-{}-{n}", std::process::id())))
}

fn is_float_list(dt: &DataType) -> bool {
    match dt {
        DataType::FixedSizeList(f, _) | DataType::List(f) | DataType::LargeList(f) => matches!(
            f.data_type(),
            DataType::Float16 | DataType::Float32 | DataType::Float64
        ),
        _ => false,
    }
}

/// The CSV schema of a batch schema: vector columns become text.
fn csv_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                if is_float_list(f.data_type()) {
                    Field::new(f.name(), DataType::Utf8, f.is_nullable())
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
    ))
}

/// A vector column as pgvector text.
fn vectors_to_text(col: &ArrayRef) -> Result<ArrayRef, arrow::error::ArrowError> {
    let mut b = StringBuilder::new();
    let mut line = String::new();
    for i in 0..col.len() {
        if col.is_null(i) {
            b.append_null();
            continue;
        }
        let values = match col.data_type() {
            DataType::FixedSizeList(_, _) => col.as_fixed_size_list().value(i),
            DataType::List(_) => col.as_list::<i32>().value(i),
            _ => col.as_list::<i64>().value(i),
        };
        let values = cast_with_options(&values, &DataType::Float32, &CastOptions::default())?;
        line.clear();
        format_vector(values.as_primitive::<Float32Type>().values(), &mut line);
        b.append_value(&line);
    }
    Ok(Arc::new(b.finish()))
}

fn parquet_properties(
    schema: &Schema,
    options: &ExportOptions,
) -> Result<WriterProperties, String> {
    let compression = match options.compression {
        ParquetCompression::None => Compression::UNCOMPRESSED,
        ParquetCompression::Snappy => Compression::SNAPPY,
        ParquetCompression::Lz4 => Compression::LZ4_RAW,
        ParquetCompression::Zstd(level) => {
            Compression::ZSTD(ZstdLevel::try_new(level).map_err(|e| e.to_string())?)
        }
    };
    let mut props = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
        .set_max_row_group_bytes(Some(64 << 20))
        .set_created_by(format!("vela-datasets {}", env!("CARGO_PKG_VERSION")));
    // Floats (vector components above all) compress far better split by byte plane.
    let descr = ArrowSchemaConverter::new()
        .convert(schema)
        .map_err(|e| e.to_string())?;
    for column in descr.columns() {
        if matches!(
            column.physical_type(),
            parquet::basic::Type::FLOAT | parquet::basic::Type::DOUBLE
        ) {
            props = props
                .set_column_dictionary_enabled(column.path().clone(), false)
                .set_column_encoding(column.path().clone(), Encoding::BYTE_STREAM_SPLIT);
        }
    }
    Ok(props.build())
}

impl BatchWriter {
    /// Starts writing `path` (Parquet or CSV, by `options.format` or the file name). Nothing
    /// appears under `path` until [`BatchWriter::finish`] succeeds.
    pub fn create(
        path: &Path,
        schema: SchemaRef,
        options: &ExportOptions,
    ) -> Result<BatchWriter, DatasetError> {
        let format = match options.format {
            Some(f) => f,
            None => Format::from_path(path)?,
        };
        if path.is_dir() {
            return Err(DatasetError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let tmp = tmp_path(path)?;
        let file = File::create(&tmp).map_err(DatasetError::io("create", path))?;
        let mut writer = BatchWriter {
            inner: None,
            target: path.to_path_buf(),
            tmp,
            schema: schema.clone(),
            rows: 0,
        };
        writer.inner = Some(match format {
            Format::Parquet => {
                let props = parquet_properties(&schema, options)
                    .map_err(|reason| DatasetError::invalid(path, reason))?;
                let w = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| {
                    DatasetError::invalid(path, format!("cannot write this schema as Parquet: {e}"))
                })?;
                Inner::Parquet(Box::new(w))
            }
            Format::Csv => {
                let w = arrow::csv::WriterBuilder::new()
                    .with_header(options.header)
                    .with_delimiter(options.delimiter)
                    .build(BufWriter::with_capacity(1 << 20, file));
                Inner::Csv(Box::new(w))
            }
            other => {
                return Err(DatasetError::invalid(
                    path,
                    format!("cannot export to {other} (use parquet or csv)"),
                ))
            }
        });
        Ok(writer)
    }

    /// Appends a batch (its schema must be the writer's). On error the export is abandoned:
    /// drop the writer.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), DatasetError> {
        if batch.schema().fields() != self.schema.fields() {
            return Err(DatasetError::invalid(
                &self.target,
                "batch schema differs from the export's schema",
            ));
        }
        let err = |e: String| DatasetError::Io {
            op: "write",
            path: self.target.clone(),
            source: std::io::Error::other(e),
        };
        match &mut self.inner {
            Some(Inner::Parquet(w)) => w.write(batch).map_err(|e| err(e.to_string()))?,
            Some(Inner::Csv(w)) => {
                let batch = if batch.columns().iter().any(|c| is_float_list(c.data_type())) {
                    let columns = batch
                        .columns()
                        .iter()
                        .map(|c| {
                            if is_float_list(c.data_type()) {
                                vectors_to_text(c)
                            } else {
                                Ok(c.clone())
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| err(e.to_string()))?;
                    RecordBatch::try_new(csv_schema(&batch.schema()), columns)
                        .map_err(|e| err(e.to_string()))?
                } else {
                    batch.clone()
                };
                w.write(&batch).map_err(|e| err(e.to_string()))?
            }
            None => {
                return Err(DatasetError::invalid(
                    &self.target,
                    "writer already finished",
                ))
            }
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Completes the file and moves it under its final name (replacing any old file there).
    pub fn finish(mut self) -> Result<ExportSummary, DatasetError> {
        let target = self.target.clone();
        let io = |op| DatasetError::io(op, &target);
        let file = match self.inner.take() {
            Some(Inner::Parquet(w)) => w.into_inner().map_err(|e| DatasetError::Io {
                op: "write",
                path: target.clone(),
                source: std::io::Error::other(e.to_string()),
            })?,
            Some(Inner::Csv(w)) => {
                let mut buf = w.into_inner();
                buf.flush().map_err(io("write"))?;
                buf.into_inner().map_err(|e| DatasetError::Io {
                    op: "write",
                    path: target.clone(),
                    source: e.into_error(),
                })?
            }
            None => return Err(DatasetError::invalid(&target, "writer already finished")),
        };
        file.sync_all().map_err(io("fsync"))?;
        let bytes = file.metadata().map_err(io("stat"))?.len();
        drop(file);
        std::fs::rename(&self.tmp, &target).map_err(io("rename"))?;
        if let Some(dir) = target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // Make the rename durable; a directory that cannot be opened for fsync is not an error.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(ExportSummary {
            rows: self.rows,
            bytes,
        })
    }
}

impl Drop for BatchWriter {
    fn drop(&mut self) {
        if self.inner.is_some() || self.tmp.exists() {
            // Not finished (or finish failed before the rename): leave nothing behind.
            drop(self.inner.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes every batch of `batches` to `path` (see [`BatchWriter`]); the first error abandons
/// the export and leaves `path` as it was.
pub fn write_batches<I>(
    path: &Path,
    schema: SchemaRef,
    batches: I,
    options: &ExportOptions,
) -> Result<ExportSummary, DatasetError>
where
    I: IntoIterator<Item = Result<RecordBatch, DatasetError>>,
{
    let mut writer = BatchWriter::create(path, schema, options)?;
    for batch in batches {
        writer.write(&batch?)?;
    }
    writer.finish()
}
