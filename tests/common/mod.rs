//! Fixtures shared by the facade's integration tests (each test file that uses them says
//! `mod common;`): the seed of a randomised test, a table schema, an Arrow vector column, a
//! Parquet file, and the keys a table holds.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::path::Path;

use arrow::array::FixedSizeListArray;
use arrow::datatypes::Float32Type;
use arrow::record_batch::RecordBatch;
use vela::{ColumnDef, ColumnType, Database, Key, Metric, TableSchema, VectorIndexDef};
use vela_datasets::{write_batches, ExportOptions};

/// The seed of a randomised test: `VELA_TEST_SEED` when set (to replay a failure), else a random
/// one. Printed, so that a failing run names the seed that replays it.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("VELA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{test}: VELA_TEST_SEED={seed}");
    seed
}

/// A table named `name` with `columns`; the first is the primary key (NOT NULL), the others are
/// nullable. `index`: an HNSW index (default parameters) on that vector column with that metric,
/// named `<table>_<column>_idx`.
pub fn table(
    name: &str,
    columns: &[(&str, ColumnType)],
    index: Option<(&str, Metric)>,
) -> TableSchema {
    TableSchema {
        name: name.into(),
        columns: columns
            .iter()
            .enumerate()
            .map(|(i, (column, ty))| ColumnDef {
                name: (*column).into(),
                ty: *ty,
                nullable: i != 0,
            })
            .collect(),
        primary_key: 0,
        shards: 0,
        indexes: index
            .map(|(column, metric)| VectorIndexDef {
                name: format!("{name}_{column}_idx"),
                column: column.into(),
                metric,
                hnsw: Default::default(),
            })
            .into_iter()
            .collect(),
    }
}

/// An Arrow `FixedSizeList<Float32>(dim)` column holding `vectors` (each of length `dim`).
pub fn vectors(vectors: impl IntoIterator<Item = Vec<f32>>, dim: usize) -> FixedSizeListArray {
    FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
        vectors
            .into_iter()
            .map(|v| Some(v.into_iter().map(Some).collect::<Vec<_>>())),
        dim as i32,
    )
}

/// Writes `batches` (one schema, at least one batch) to a Parquet file at `path`, in row groups
/// of at most `row_group_rows` rows.
pub fn write_parquet(path: &Path, batches: &[RecordBatch], row_group_rows: usize) {
    let schema = batches.first().expect("at least one batch").schema();
    let options = ExportOptions {
        row_group_rows,
        ..ExportOptions::default()
    };
    write_batches(path, schema, batches.iter().cloned().map(Ok), &options)
        .expect("write the Parquet file");
}

/// The primary keys of `table`, in key order.
pub fn keys(db: &Database, table: &str) -> Vec<Key> {
    db.scan(table, None)
        .expect("scan")
        .iter()
        .map(|r| r.key())
        .collect()
}
