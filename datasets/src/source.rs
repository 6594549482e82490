//! [`BatchSource`]: one streaming interface over Parquet, CSV and fvecs/bvecs files, giving Arrow
//! `RecordBatch`es of at most a caller-chosen number of rows, in bounded memory.
//!
//! Memory: a source holds at most one decoded chunk (Parquet and CSV decode in chunks of at most
//! `decode_rows` rows and about `decode_bytes` bytes, then hand out zero-copy slices) plus the
//! batch being returned, so a caller asking for `max_rows` rows never has more than about
//! `max_rows` rows plus one chunk of the file in memory, whatever the file's size or its row
//! groups' size. [`BatchSource::next_chunk`] hands out at most one decoded chunk without joining
//! chunks, for callers that convert rows chunk by chunk (`TableSource::next_rows`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use vela_engine::catalog::{ColumnType, ScalarType, TableSchema};

use crate::error::{check_regular_file, panic_message, DatasetError};
use crate::format::{is_gzip, Format};
use crate::vecs::VecsReader;

/// Rows decoded at a time by the Parquet and CSV readers (see the module doc on memory).
pub const DEFAULT_DECODE_ROWS: usize = 8192;

/// About how many bytes one decoded chunk may hold: wide rows are decoded in fewer rows than
/// [`DEFAULT_DECODE_ROWS`] (e.g. 2,700 rows of 384-d vectors with text).
pub const DEFAULT_DECODE_BYTES: usize = 4 << 20;

/// Rows the CSV reader looks at to infer column types when no table schema is given.
pub const DEFAULT_CSV_INFER_ROWS: usize = 1000;

/// A stream of `RecordBatch`es read from a file.
pub trait BatchSource: Send {
    /// The file being read.
    fn path(&self) -> &Path;
    /// Its format.
    fn format(&self) -> Format;
    /// The schema of every batch [`BatchSource::next_batch`] returns.
    fn schema(&self) -> SchemaRef;
    /// The next batch of at most `max_rows` rows (at least 1 row), `None` at the end of the file.
    /// `max_rows == 0` is treated as 1. Batches may be shorter than `max_rows` before the end.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, DatasetError>;
    /// Like [`BatchSource::next_batch`] but never joins decoded chunks: at most `max_rows` rows
    /// of one decoded chunk (a zero-copy slice), so the batch may be shorter than asked for
    /// before the end. Sources without decode chunks answer as `next_batch` does.
    fn next_chunk(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, DatasetError> {
        self.next_batch(max_rows)
    }
    /// How many rows the file holds, when that is known without reading it (Parquet metadata,
    /// vecs file size); a hint for progress bars.
    fn total_rows(&self) -> Option<u64>;
    /// Rows returned so far.
    fn rows_read(&self) -> u64;
    /// `(bytes read, file size)` for sources whose row count is unknown (CSV), for progress
    /// bars; `None` otherwise.
    fn progress_bytes(&self) -> Option<(u64, u64)> {
        None
    }
}

/// CSV settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// Whether the first line names the columns (default true). With a header, columns are
    /// matched to the table by name; without one, by position (the table's column order).
    pub header: bool,
    /// Field delimiter; `None` is `,` (or a tab for `.tsv`).
    pub delimiter: Option<u8>,
    /// Rows looked at to infer types when no table schema is given.
    pub infer_rows: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            delimiter: None,
            infer_rows: DEFAULT_CSV_INFER_ROWS,
        }
    }
}

/// Column names given to the rows of fvecs/bvecs files, which have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecsOptions {
    /// The row-number column (BIGINT, from 0). Default `id`.
    pub id_column: String,
    /// The vector column. Default `embedding`.
    pub vector_column: String,
}

impl Default for VecsOptions {
    fn default() -> Self {
        VecsOptions {
            id_column: "id".into(),
            vector_column: "embedding".into(),
        }
    }
}

/// How to open a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOptions {
    /// The format; `None` tells it from the file name ([`Format::from_path`]).
    pub format: Option<Format>,
    pub csv: CsvOptions,
    pub vecs: VecsOptions,
    /// Rows decoded at a time by Parquet and CSV (bounds memory; see the module doc).
    pub decode_rows: usize,
    /// About the most bytes of one decoded chunk: fewer than `decode_rows` rows are decoded at
    /// a time when rows are wide (Parquet: from the row groups' uncompressed size; CSV: from
    /// the column types).
    pub decode_bytes: usize,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            format: None,
            csv: CsvOptions::default(),
            vecs: VecsOptions::default(),
            decode_rows: DEFAULT_DECODE_ROWS,
            decode_bytes: DEFAULT_DECODE_BYTES,
        }
    }
}

/// Opens `path` as a stream of batches. `target` is the table the rows are for, if known: a CSV
/// file is then read with the table's column types (vectors as pgvector text `[1,2,3]`, to be
/// parsed by [`crate::TableMapping`]) instead of inferred ones.
pub fn open_source(
    path: &Path,
    options: &SourceOptions,
    target: Option<&TableSchema>,
) -> Result<Box<dyn BatchSource>, DatasetError> {
    check_regular_file(path)?;
    let format = match options.format {
        Some(f) => f,
        None => Format::from_path(path)?,
    };
    let decode = DecodeSize {
        rows: options.decode_rows.max(1),
        bytes: options.decode_bytes.max(1),
    };
    Ok(match format {
        Format::Parquet => Box::new(ParquetSource::open_bounded(path, decode)?),
        Format::Csv => Box::new(CsvSource::open_bounded(path, &options.csv, target, decode)?),
        Format::Fvecs | Format::Bvecs => Box::new(VecsSource::open(path, format, &options.vecs)?),
    })
}

type ArrowIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;
type ErrMap = Box<dyn Fn(&Path, ArrowError, u64) -> DatasetError + Send>;

/// Turns a reader of fixed-size decoded chunks into batches of any requested size: zero-copy
/// slices of one chunk, or (when a request spans chunks) one concatenation. A panic inside the
/// decoder is caught and poisons the source.
struct Rechunker {
    path: PathBuf,
    format: Format,
    schema: SchemaRef,
    /// The file's row count, when known up front.
    total_rows: Option<u64>,
    /// `(bytes read so far, file size)`, for sources without a row count (CSV).
    progress: Option<(Arc<AtomicU64>, u64)>,
    inner: ArrowIter,
    pending: Option<RecordBatch>,
    rows_read: u64,
    poisoned: bool,
    map_err: ErrMap,
}

impl Rechunker {
    fn new(
        path: &Path,
        format: Format,
        schema: SchemaRef,
        inner: ArrowIter,
        map_err: ErrMap,
    ) -> Rechunker {
        Rechunker {
            path: path.to_path_buf(),
            format,
            schema,
            total_rows: None,
            progress: None,
            inner,
            pending: None,
            rows_read: 0,
            poisoned: false,
            map_err,
        }
    }

    fn progress_bytes(&self) -> Option<(u64, u64)> {
        let (read, len) = self.progress.as_ref()?;
        Some((read.load(Ordering::Relaxed), *len))
    }

    fn pull(&mut self) -> Result<Option<RecordBatch>, DatasetError> {
        if let Some(b) = self.pending.take() {
            return Ok(Some(b));
        }
        if self.poisoned {
            return Err(DatasetError::Corrupt {
                path: self.path.clone(),
                reason: "the reader failed earlier and cannot go on".into(),
            });
        }
        let inner = &mut self.inner;
        match catch_unwind(AssertUnwindSafe(|| inner.next())) {
            Ok(None) => Ok(None),
            Ok(Some(Ok(b))) => Ok(Some(b)),
            Ok(Some(Err(e))) => {
                self.poisoned = true;
                Err((self.map_err)(&self.path, e, self.rows_read))
            }
            Err(payload) => {
                self.poisoned = true;
                Err(DatasetError::Corrupt {
                    path: self.path.clone(),
                    reason: format!(
                        "decoding rows after row {}: {}",
                        self.rows_read,
                        panic_message(payload.as_ref())
                    ),
                })
            }
        }
    }

    /// At most `max_rows` rows of one decoded chunk; the rest of the chunk stays pending.
    fn next_chunk(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, DatasetError> {
        let max_rows = max_rows.max(1);
        loop {
            let Some(b) = self.pull()? else {
                return Ok(None);
            };
            let rows = b.num_rows();
            if rows == 0 {
                continue;
            }
            let out = if rows > max_rows {
                self.pending = Some(b.slice(max_rows, rows - max_rows));
                b.slice(0, max_rows)
            } else {
                b
            };
            self.rows_read += out.num_rows() as u64;
            return Ok(Some(out));
        }
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, DatasetError> {
        let max_rows = max_rows.max(1);
        let mut parts = Vec::new();
        let mut n = 0;
        while n < max_rows {
            let Some(b) = self.pull()? else { break };
            let rows = b.num_rows();
            if rows == 0 {
                continue;
            }
            let want = max_rows - n;
            if rows > want {
                parts.push(b.slice(0, want));
                self.pending = Some(b.slice(want, rows - want));
                n += want;
            } else {
                parts.push(b);
                n += rows;
            }
        }
        let batch = match parts.len() {
            0 => return Ok(None),
            1 => parts.pop(),
            _ => Some(
                arrow::compute::concat_batches(&self.schema, &parts).map_err(|e| {
                    DatasetError::Corrupt {
                        path: self.path.clone(),
                        reason: format!("joining decoded chunks: {e}"),
                    }
                })?,
            ),
        };
        self.rows_read += n as u64;
        Ok(batch)
    }
}

/// How much a Parquet or CSV reader decodes at a time: at most `rows` rows and about `bytes`
/// bytes (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DecodeSize {
    rows: usize,
    bytes: usize,
}

impl DecodeSize {
    /// Rows per decoded chunk for rows of about `row_bytes` bytes: `rows`, fewer for wide rows,
    /// at least 64 (a chunk of very wide rows still makes progress).
    fn rows_for(self, row_bytes: f64) -> usize {
        let rows = self.rows.max(1);
        if row_bytes.is_finite() && row_bytes > 0.0 {
            let by_bytes = (self.bytes as f64 / row_bytes).floor() as usize;
            rows.min(by_bytes.max(64))
        } else {
            rows
        }
    }
}

/// Implements [`BatchSource`] for sources that are a [`Rechunker`] in a field `chunks`.
macro_rules! rechunked_source {
    ($($source:ty),*) => {$(
        impl BatchSource for $source {
            fn path(&self) -> &Path {
                &self.chunks.path
            }
            fn format(&self) -> Format {
                self.chunks.format
            }
            fn schema(&self) -> SchemaRef {
                self.chunks.schema.clone()
            }
            fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, DatasetError> {
                self.chunks.next_batch(max_rows)
            }
            fn next_chunk(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, DatasetError> {
                self.chunks.next_chunk(max_rows)
            }
            fn total_rows(&self) -> Option<u64> {
                self.chunks.total_rows
            }
            fn rows_read(&self) -> u64 {
                self.chunks.rows_read
            }
            fn progress_bytes(&self) -> Option<(u64, u64)> {
                self.chunks.progress_bytes()
            }
        }
    )*};
}

rechunked_source!(ParquetSource, CsvSource, MemorySource);

/// A Parquet file, read row group by row group in decoded chunks of at most `decode_rows` rows
/// (fewer when the row groups' uncompressed rows are wide; see [`DEFAULT_DECODE_BYTES`]).
pub struct ParquetSource {
    chunks: Rechunker,
    decode_rows: usize,
}

impl ParquetSource {
    /// Opens a Parquet file (reads its footer; a truncated or corrupt footer is an error here),
    /// decoding `decode_rows` rows at a time.
    pub fn open(path: &Path, decode_rows: usize) -> Result<ParquetSource, DatasetError> {
        ParquetSource::open_bounded(
            path,
            DecodeSize {
                rows: decode_rows,
                bytes: usize::MAX,
            },
        )
    }

    fn open_bounded(path: &Path, decode: DecodeSize) -> Result<ParquetSource, DatasetError> {
        check_regular_file(path)?;
        let file = File::open(path).map_err(DatasetError::io("open", path))?;
        let parquet_err = |reason: String| DatasetError::Parquet {
            path: path.to_path_buf(),
            reason,
        };
        let opened = catch_unwind(AssertUnwindSafe(|| {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
            let meta = builder.metadata();
            let total = meta.file_metadata().num_rows();
            // Uncompressed bytes per row over the row groups: what a decoded row weighs.
            let (bytes, rows) = meta.row_groups().iter().fold((0i64, 0i64), |(b, r), g| {
                (b.saturating_add(g.total_byte_size()), r + g.num_rows())
            });
            let decode_rows = decode.rows_for(if rows > 0 {
                bytes as f64 / rows as f64
            } else {
                f64::NAN
            });
            let schema = builder.schema().clone();
            let reader = builder.with_batch_size(decode_rows).build()?;
            Ok::<_, parquet::errors::ParquetError>((total, schema, reader, decode_rows))
        }))
        .map_err(|p| parquet_err(panic_message(p.as_ref())))?;
        let (total, schema, reader, decode_rows) =
            opened.map_err(|e| parquet_err(e.to_string()))?;
        Ok(ParquetSource {
            chunks: Rechunker {
                total_rows: Some(u64::try_from(total).unwrap_or(0)),
                ..Rechunker::new(
                    path,
                    Format::Parquet,
                    schema,
                    Box::new(reader),
                    Box::new(|path, e, rows| DatasetError::Parquet {
                        path: path.to_path_buf(),
                        reason: format!("reading rows after row {rows}: {e}"),
                    }),
                )
            },
            decode_rows,
        })
    }

    /// Rows decoded at a time.
    pub fn decode_rows(&self) -> usize {
        self.decode_rows
    }
}

/// Counts the bytes read through it (for CSV progress).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A CSV file (optionally gzip-compressed).
pub struct CsvSource {
    chunks: Rechunker,
}

fn open_text(path: &Path, count: Arc<AtomicU64>) -> Result<Box<dyn Read + Send>, DatasetError> {
    let file = File::open(path).map_err(DatasetError::io("open", path))?;
    let counted = Counting {
        inner: BufReader::with_capacity(1 << 16, file),
        count,
    };
    Ok(if is_gzip(path) {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(counted),
        ))
    } else {
        Box::new(counted)
    })
}

/// The Arrow type a CSV column is parsed as for a table column: vectors are read as text.
fn csv_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Vector { .. } => DataType::Utf8,
        ty => vela_engine::arrow_conv::arrow_type(ty),
    }
}

fn leading_number(s: &str) -> Option<u64> {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Turns arrow's CSV errors, which count lines from 0 including the header ("at line 2") or
/// records from 1 ("for line 3") and name columns by position, into errors that name the data
/// row (from 1, header not counted) and the column.
fn csv_error(path: &Path, e: ArrowError, schema: &Schema, header: bool) -> DatasetError {
    let message = match e {
        ArrowError::ParseError(m) | ArrowError::CsvError(m) => m,
        other => other.to_string(),
    };
    let h = u64::from(header);
    if let Some((before, after)) = message.split_once(" at line ") {
        let column = before
            .rfind("column ")
            .and_then(|i| leading_number(&before[i + 7..]))
            .and_then(|i| schema.fields().get(usize::try_from(i).ok()?));
        if let (Some(line), Some(field)) = (leading_number(after), column) {
            let reason = if let Some(v) = before.strip_prefix("Error while parsing value ") {
                let v = v.split(" for column ").next().unwrap_or(v);
                format!("cannot parse {}", v.replacen(" as type ", " as ", 1))
            } else {
                let rest = after.split_once(": ").map_or(after, |(_, r)| r);
                format!("cannot parse: {rest}")
            };
            return DatasetError::Value {
                path: path.to_path_buf(),
                row: (line + 1).saturating_sub(h),
                column: field.name().clone(),
                reason,
            };
        }
    }
    if let Some((before, after)) = message.split_once(" for line ") {
        if let Some(line) = leading_number(after) {
            let digits = line.to_string();
            let rest = after.strip_prefix(digits.as_str()).unwrap_or(after);
            return DatasetError::Csv {
                path: path.to_path_buf(),
                reason: format!("{before} in row {}{rest}", line.saturating_sub(h)),
            };
        }
    }
    DatasetError::Csv {
        path: path.to_path_buf(),
        reason: message,
    }
}

impl CsvSource {
    /// Opens a CSV file. With `target`, columns take the table's types (matched by header name,
    /// or by position without a header; columns the table lacks are read as text and reported by
    /// the mapping); without it, types are inferred from the first `infer_rows` rows. Decodes
    /// `decode_rows` rows at a time.
    pub fn open(
        path: &Path,
        options: &CsvOptions,
        target: Option<&TableSchema>,
        decode_rows: usize,
    ) -> Result<CsvSource, DatasetError> {
        let decode = DecodeSize {
            rows: decode_rows,
            bytes: usize::MAX,
        };
        CsvSource::open_bounded(path, options, target, decode)
    }

    fn open_bounded(
        path: &Path,
        options: &CsvOptions,
        target: Option<&TableSchema>,
        decode: DecodeSize,
    ) -> Result<CsvSource, DatasetError> {
        let file_len = check_regular_file(path)?;
        let delimiter = options.delimiter.unwrap_or_else(|| {
            let name = path.to_string_lossy().to_ascii_lowercase();
            if name.ends_with(".tsv") || name.ends_with(".tsv.gz") {
                b'\t'
            } else {
                b','
            }
        });
        let format = arrow::csv::reader::Format::default()
            .with_header(options.header)
            .with_delimiter(delimiter);
        let csv_err = |e: ArrowError| DatasetError::Csv {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let scratch = Arc::new(AtomicU64::new(0));
        let schema: Schema = match target {
            Some(table) if options.header => {
                let (names, _) = format
                    .infer_schema(open_text(path, scratch)?, Some(0))
                    .map_err(csv_err)?;
                Schema::new(
                    names
                        .fields()
                        .iter()
                        .map(|f| {
                            let ty = crate::mapping::match_column(table, f.name())
                                .map_or(DataType::Utf8, |(_, c)| csv_type(c.ty));
                            Field::new(f.name(), ty, true)
                        })
                        .collect::<Vec<_>>(),
                )
            }
            Some(table) => Schema::new(
                table
                    .columns
                    .iter()
                    .map(|c| Field::new(&c.name, csv_type(c.ty), true))
                    .collect::<Vec<_>>(),
            ),
            None => {
                let (inferred, _) = format
                    .infer_schema(open_text(path, scratch)?, Some(options.infer_rows.max(1)))
                    .map_err(csv_err)?;
                Schema::new(
                    inferred
                        .fields()
                        .iter()
                        .map(|f| match f.data_type() {
                            DataType::Null => Field::new(f.name(), DataType::Utf8, true),
                            _ => f.as_ref().clone().with_nullable(true),
                        })
                        .collect::<Vec<_>>(),
                )
            }
        };
        let schema = Arc::new(schema);
        let bytes_read = Arc::new(AtomicU64::new(0));
        let reader = arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(options.header)
            .with_delimiter(delimiter)
            .with_batch_size(decode.rows_for(csv_row_bytes(target, &schema)))
            .build(open_text(path, bytes_read.clone())?)
            .map_err(csv_err)?;
        let err_schema = schema.clone();
        let header = options.header;
        Ok(CsvSource {
            chunks: Rechunker {
                progress: Some((bytes_read, file_len)),
                ..Rechunker::new(
                    path,
                    Format::Csv,
                    schema,
                    Box::new(reader),
                    Box::new(move |path, e, _| csv_error(path, e, &err_schema, header)),
                )
            },
        })
    }
}

/// About how many bytes a decoded CSV row takes: vectors are text (about 12 bytes a
/// component), text columns are taken as 32 bytes, other values 8.
fn csv_row_bytes(target: Option<&TableSchema>, schema: &Schema) -> f64 {
    let column = |name: &str| {
        let ty = target.and_then(|t| crate::mapping::match_column(t, name).map(|(_, c)| c.ty));
        match ty {
            Some(ColumnType::Vector { dim }) => 12.0 * f64::from(dim),
            Some(ColumnType::Scalar(ScalarType::Text)) | None => 32.0,
            Some(ColumnType::Scalar(_)) => 8.0,
        }
    };
    schema.fields().iter().map(|f| column(f.name())).sum()
}

enum VecsInner {
    F32(VecsReader<f32>, Vec<f32>),
    U8(VecsReader<u8>, Vec<u8>),
}

/// An fvecs or bvecs file as `(id BIGINT = row number from 0, embedding FixedSizeList<Float32>)`
/// batches (bvecs bytes converted to f32).
pub struct VecsSource {
    path: PathBuf,
    format: Format,
    inner: VecsInner,
    dim: usize,
    schema: SchemaRef,
    rows_read: u64,
    total_rows: u64,
}

impl VecsSource {
    /// Opens an fvecs (`Format::Fvecs`) or bvecs (`Format::Bvecs`) file; an empty file is an
    /// error (it has no dimension).
    pub fn open(
        path: &Path,
        format: Format,
        names: &VecsOptions,
    ) -> Result<VecsSource, DatasetError> {
        let file_len = check_regular_file(path)?;
        let (inner, dim, component) = match format {
            Format::Fvecs => {
                let r = VecsReader::<f32>::open(path)?;
                let dim = r.dim();
                (VecsInner::F32(r, Vec::new()), dim, 4)
            }
            Format::Bvecs => {
                let r = VecsReader::<u8>::open(path)?;
                let dim = r.dim();
                (VecsInner::U8(r, Vec::new()), dim, 1)
            }
            other => {
                return Err(DatasetError::invalid(
                    path,
                    format!("{other} is not a vecs format"),
                ))
            }
        };
        let dim = dim.ok_or_else(|| DatasetError::invalid(path, "empty file: no vectors"))?;
        let dim_i32 = i32::try_from(dim)
            .map_err(|_| DatasetError::invalid(path, format!("dimension {dim} too large")))?;
        let schema = Arc::new(Schema::new(vec![
            Field::new(&names.id_column, DataType::Int64, false),
            Field::new(
                &names.vector_column,
                DataType::FixedSizeList(
                    Arc::new(Field::new("item", DataType::Float32, true)),
                    dim_i32,
                ),
                false,
            ),
        ]));
        let record = 4 + (dim as u64) * component;
        Ok(VecsSource {
            path: path.to_path_buf(),
            format,
            inner,
            dim,
            schema,
            rows_read: 0,
            total_rows: file_len / record,
        })
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

impl BatchSource for VecsSource {
    fn path(&self) -> &Path {
        &self.path
    }
    fn format(&self) -> Format {
        self.format
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, DatasetError> {
        let max_rows = max_rows.max(1);
        let (n, values) = match &mut self.inner {
            VecsInner::F32(r, buf) => {
                buf.clear();
                let n = r.read_batch(max_rows, buf)?;
                (n, std::mem::take(buf))
            }
            VecsInner::U8(r, buf) => {
                buf.clear();
                let n = r.read_batch(max_rows, buf)?;
                (n, buf.iter().map(|&b| f32::from(b)).collect())
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let first = self.rows_read;
        let ids = Int64Array::from_iter_values((0..n as u64).map(|i| (first + i) as i64));
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        let vectors = FixedSizeListArray::try_new(
            item,
            self.dim as i32,
            Arc::new(Float32Array::from(values)),
            None,
        )
        .map_err(|e| DatasetError::invalid(&self.path, e.to_string()))?;
        let columns: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(vectors)];
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| DatasetError::invalid(&self.path, e.to_string()))?;
        self.rows_read += n as u64;
        Ok(Some(batch))
    }
    fn total_rows(&self) -> Option<u64> {
        Some(self.total_rows)
    }
    fn rows_read(&self) -> u64 {
        self.rows_read
    }
}

/// Batches already in memory (tests, `COPY ... FROM STDIN`-like callers), re-cut to the sizes
/// asked for.
pub struct MemorySource {
    chunks: Rechunker,
}

impl MemorySource {
    /// A source over `batches`, all of schema `schema`; `path` only names it in errors.
    pub fn new(path: &Path, schema: SchemaRef, batches: Vec<RecordBatch>) -> MemorySource {
        let total_rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        MemorySource {
            chunks: Rechunker {
                total_rows: Some(total_rows),
                ..Rechunker::new(
                    path,
                    Format::Parquet,
                    schema,
                    Box::new(batches.into_iter().map(Ok)),
                    Box::new(|path, e, _| DatasetError::invalid(path, e.to_string())),
                )
            },
        }
    }
}
