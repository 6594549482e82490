//! [`TableSource`]: a file opened for a table — a [`BatchSource`] plus its checked
//! [`TableMapping`] — giving batches in the engine's shape, or ([`TableSource::next_rows`])
//! engine rows ready for one write. This is what `COPY t FROM` and `vela import` call.

use std::path::Path;

use arrow::array::Array;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use vela_engine::catalog::{ColumnType, ScalarType, TableSchema, Value};

use crate::error::DatasetError;
use crate::format::Format;
use crate::mapping::{infer_table_schema, MapOptions, TableMapping};
use crate::source::{open_source, BatchSource, SourceOptions};

/// Everything an import needs besides the path and the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub source: SourceOptions,
    pub mapping: MapOptions,
}

/// One import batch as engine rows, from [`TableSource::next_rows`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowBatch {
    /// The rows, in the table's column order.
    pub rows: Vec<Vec<Value>>,
    /// The file row (from 0) of `rows[0]`.
    pub first_row: u64,
    /// Bytes of the Arrow data the rows came from (each slice counted by what it covers): the
    /// weight of the batch, for [`crate::BatchSizer::record`].
    pub bytes: usize,
}

impl RowBatch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The position among `keys` of the primary key value the engine displays as `key` (as in
/// `EngineError::DuplicateKey { key }`), to name the row of a duplicate-key error.
pub fn key_index<'a>(keys: impl IntoIterator<Item = &'a Value>, key: &str) -> Option<usize> {
    let want: Option<i64> = key.parse().ok();
    keys.into_iter().position(|v| match v {
        Value::BigInt(v) => want == Some(*v),
        Value::Text(t) => t == key,
        _ => false,
    })
}

/// Bytes of `batch` as sliced: a slice of a larger decoded chunk counts only its own rows
/// (`get_array_memory_size` would count the whole chunk's buffers).
pub fn slice_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

/// A file opened for a table: batches come out converted to the table's Arrow schema.
pub struct TableSource {
    source: Box<dyn BatchSource>,
    mapping: TableMapping,
    /// A raw batch read ahead (by [`TableSource::open_create`] to size list columns).
    pending: Option<RecordBatch>,
    /// Rows of the file handed out so far (converted).
    rows_done: u64,
    /// Bytes per row of the last decoded chunk, to cut [`TableSource::next_rows`] batches.
    row_bytes: Option<f64>,
}

impl std::fmt::Debug for TableSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSource")
            .field("path", &self.source.path())
            .field("table", &self.mapping.table().name)
            .field("rows_done", &self.rows_done)
            .finish()
    }
}

/// fvecs/bvecs rows have no names: name them after the table's key and its only vector column.
fn vecs_names_for(options: &mut SourceOptions, path: &Path, table: &TableSchema) {
    let format = options.format.or_else(|| Format::from_path(path).ok());
    if !matches!(format, Some(Format::Fvecs | Format::Bvecs)) {
        return;
    }
    if let Some(pk) = table.columns.get(table.primary_key) {
        if pk.ty == ColumnType::Scalar(ScalarType::BigInt) {
            options.vecs.id_column = pk.name.clone();
        }
    }
    let mut vectors = table.columns.iter().filter(|c| c.ty.vector_dim().is_some());
    if let (Some(v), None) = (vectors.next(), vectors.next()) {
        options.vecs.vector_column = v.name.clone();
    }
}

impl TableSource {
    /// Opens `path` for loading into `table`: the file's schema is checked against the table
    /// (every problem in one [`DatasetError::SchemaMismatch`]) before any row is read. fvecs and
    /// bvecs rows are named after the table's BIGINT key and its only vector column.
    pub fn open(
        path: &Path,
        table: &TableSchema,
        options: &ImportOptions,
    ) -> Result<TableSource, DatasetError> {
        let mut source_options = options.source.clone();
        vecs_names_for(&mut source_options, path, table);
        let source = open_source(path, &source_options, Some(table))?;
        let mapping = TableMapping::new(path, &source.schema(), table, &options.mapping)?;
        Ok(TableSource {
            source,
            mapping,
            pending: None,
            rows_done: 0,
            row_bytes: None,
        })
    }

    /// Opens `path` and derives a table named `table_name` from it (`vela import --create`):
    /// see [`infer_table_schema`] (key: `key`, else the column `id`). The first batch is read
    /// ahead to learn the dimension of list columns; [`TableSource::table`] is the schema to
    /// create before loading the batches.
    pub fn open_create(
        path: &Path,
        table_name: &str,
        key: Option<&str>,
        options: &ImportOptions,
    ) -> Result<TableSource, DatasetError> {
        let mut source = open_source(path, &options.source, None)?;
        let first = source.next_batch(options.source.decode_rows.max(1))?;
        let schema = source.schema();
        let table = infer_table_schema(path, table_name, &schema, first.as_ref(), key)?;
        let mapping = TableMapping::new(path, &schema, &table, &options.mapping)?;
        Ok(TableSource {
            source,
            mapping,
            pending: first,
            rows_done: 0,
            row_bytes: None,
        })
    }

    /// The table the batches are for.
    pub fn table(&self) -> &TableSchema {
        self.mapping.table()
    }

    /// The schema of every batch (the engine's Arrow schema of the table).
    pub fn schema(&self) -> SchemaRef {
        self.mapping.output_schema()
    }

    /// The file's own schema.
    pub fn file_schema(&self) -> SchemaRef {
        self.source.schema()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.source.path()
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.source.format()
    }

    /// The mapping (for [`TableMapping::key_row`] on a duplicate-key error).
    pub fn mapping(&self) -> &TableMapping {
        &self.mapping
    }

    /// The next batch of at most `max_rows` rows in the table's shape, `None` at the end.
    /// Errors name the file, and the row (from 1) and column where they apply; after an error the
    /// import should stop.
    pub fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, DatasetError> {
        self.take(max_rows, true)
    }

    /// The next batch of at most `max_rows` rows and about `max_bytes` bytes as engine rows, `None`
    /// at the end. The file is read and converted one decoded chunk at a time, each chunk
    /// dropped once its rows exist, so the batch is never held as Arrow data and as rows at once
    /// (only one chunk is). A batch stops short of `max_rows` once it reaches `max_bytes` (at the
    /// bytes per row of the chunks seen so far; the file's first chunk is always taken whole).
    /// Errors are as for
    /// [`TableSource::next_batch`]; rows read before an error are dropped with it.
    pub fn next_rows(
        &mut self,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<Option<RowBatch>, DatasetError> {
        let max_rows = max_rows.max(1);
        let mut out = RowBatch {
            first_row: self.rows_done,
            ..RowBatch::default()
        };
        while out.rows.len() < max_rows && out.bytes < max_bytes {
            let mut want = max_rows - out.rows.len();
            if let Some(per_row) = self.row_bytes {
                let fits = ((max_bytes - out.bytes) as f64 / per_row).floor() as usize;
                want = want.min(fits.max(1));
            }
            let Some(chunk) = self.next_chunk(want)? else {
                break;
            };
            let bytes = slice_bytes(&chunk);
            if chunk.num_rows() > 0 {
                self.row_bytes = Some((bytes as f64 / chunk.num_rows() as f64).max(1.0));
            }
            out.bytes += bytes;
            let rows =
                vela_engine::arrow_conv::batch_to_rows(self.table(), &chunk).map_err(|e| {
                    DatasetError::invalid(
                        self.source.path(),
                        format!(
                            "converting file rows {}-{}: {e}",
                            self.rows_done - chunk.num_rows() as u64 + 1,
                            self.rows_done
                        ),
                    )
                })?;
            drop(chunk);
            if out.rows.is_empty() {
                out.rows = rows;
            } else {
                out.rows.extend(rows);
            }
        }
        Ok((!out.rows.is_empty()).then_some(out))
    }

    /// At most `max_rows` rows of one decoded chunk, converted (no joining of chunks).
    fn next_chunk(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, DatasetError> {
        self.take(max_rows, false)
    }

    /// The next `max_rows` rows converted: joined across decoded chunks (`join`) or from one.
    fn take(&mut self, max_rows: usize, join: bool) -> Result<Option<RecordBatch>, DatasetError> {
        let max_rows = max_rows.max(1);
        let raw = match self.pending.take() {
            Some(b) if b.num_rows() > max_rows => {
                self.pending = Some(b.slice(max_rows, b.num_rows() - max_rows));
                Some(b.slice(0, max_rows))
            }
            Some(b) => Some(b),
            None if join => self.source.next_batch(max_rows)?,
            None => self.source.next_chunk(max_rows)?,
        };
        let Some(raw) = raw else { return Ok(None) };
        let converted = self.mapping.convert(&raw, self.rows_done)?;
        self.rows_done += raw.num_rows() as u64;
        Ok(Some(converted))
    }

    /// Rows handed out so far; also the 0-based file row of the next batch's first row.
    pub fn rows_done(&self) -> u64 {
        self.rows_done
    }

    /// Total rows when known (Parquet, fvecs/bvecs), for progress bars.
    pub fn total_rows(&self) -> Option<u64> {
        self.source.total_rows()
    }

    /// `(bytes read, file size)` when the row count is unknown (CSV), for progress bars.
    pub fn progress_bytes(&self) -> Option<(u64, u64)> {
        self.source.progress_bytes()
    }
}
