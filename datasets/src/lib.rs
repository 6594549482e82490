//! Bulk data for Vela (issue 6): files in, files out, as Arrow `RecordBatch`es in bounded memory.
//!
//! - **Reading** — [`open_source`] opens Parquet, CSV (`.csv`, `.csv.gz`, `.tsv`), fvecs and
//!   bvecs files as one streaming [`BatchSource`] (`schema`, `next_batch(max_rows)`,
//!   `total_rows` for progress bars).
//! - **Into a table** — [`TableSource::open`] checks a file against a table's
//!   [`TableSchema`](vela_engine::TableSchema) ([`TableMapping`]: every offending column listed in
//!   one error) and yields batches in exactly the engine's Arrow shape
//!   ([`vela_engine::arrow_conv::arrow_schema`]), ready for `Database::insert`.
//!   [`TableSource::open_create`] derives the table from the file (`vela import --create`).
//! - **Writing** — [`BatchWriter`] / [`write_batches`]: Parquet or CSV from batches, through a
//!   temporary file renamed at the end, so a failed export never leaves half a file.
//! - **Batch sizes** — [`BatchSizer`] sizes import batches by bytes first (about 4 MiB of rows
//!   once the row size is known, at most 16 MiB), then grows or shrinks them (within 2x) only
//!   when rows/s clearly gains.
//! - **vecs** — [`VecsReader`] and friends: the texmex / ann-benchmarks formats, little-endian;
//!   every record is a dimension `d` as `i32`, then `d` components (`f32` for `.fvecs`, `i32`
//!   for `.ivecs`, `u8` for `.bvecs`). Readers validate the dimension before allocating, so a
//!   corrupt file gets an error, never a huge allocation or a panic.
//!
//! Every error is a [`DatasetError`] naming the file, and the row (counted from 1, a CSV header
//! not counted) and column where one applies. The sample data is described in `datasets/README.md`.

pub mod adaptive;
pub mod error;
pub mod format;
pub mod import;
pub mod mapping;
pub mod sink;
pub mod source;
pub mod vecs;

pub use adaptive::{BatchSizer, SizerConfig};
pub use error::DatasetError;
pub use format::Format;
pub use import::{key_index, slice_bytes, ImportOptions, RowBatch, TableSource};
pub use mapping::{format_vector, infer_table_schema, parse_vector, MapOptions, TableMapping};
pub use sink::{write_batches, BatchWriter, ExportOptions, ExportSummary, ParquetCompression};
pub use source::{
    open_source, BatchSource, CsvOptions, CsvSource, MemorySource, ParquetSource, SourceOptions,
    VecsOptions, VecsSource, DEFAULT_DECODE_BYTES, DEFAULT_DECODE_ROWS,
};
pub use vecs::{read_fvecs, read_ivecs, write_fvecs, write_ivecs, Component, VecsKind, VecsReader};
