//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, Float64Array, Int64Array,
    StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Float32Type, Schema};
use arrow::record_batch::RecordBatch;
use vela_datasets::{BatchSource, DatasetError, TableSource};
use vela_engine::catalog::{ColumnDef, ColumnType, ScalarType, TableSchema};

pub fn col(name: &str, ty: ColumnType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        ty,
        nullable,
    }
}

pub const BIGINT: ColumnType = ColumnType::Scalar(ScalarType::BigInt);
pub const DOUBLE: ColumnType = ColumnType::Scalar(ScalarType::Double);
pub const TEXT: ColumnType = ColumnType::Scalar(ScalarType::Text);
pub const BOOLEAN: ColumnType = ColumnType::Scalar(ScalarType::Boolean);
pub const TIMESTAMP: ColumnType = ColumnType::Scalar(ScalarType::Timestamp);

pub fn vector(dim: u32) -> ColumnType {
    ColumnType::Vector { dim }
}

pub fn table(name: &str, columns: Vec<ColumnDef>) -> TableSchema {
    TableSchema {
        name: name.into(),
        columns,
        primary_key: 0,
        shards: 1,
        indexes: vec![],
    }
}

/// `docs(id BIGINT, title TEXT, score DOUBLE, flag BOOLEAN, at TIMESTAMP, embedding VECTOR(dim))`.
pub fn docs_table(dim: u32) -> TableSchema {
    table(
        "docs",
        vec![
            col("id", BIGINT, false),
            col("title", TEXT, true),
            col("score", DOUBLE, true),
            col("flag", BOOLEAN, true),
            col("at", TIMESTAMP, true),
            col("embedding", vector(dim), false),
        ],
    )
}

pub fn fsl(dim: i32, values: Vec<f32>) -> FixedSizeListArray {
    FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        dim,
        Arc::new(Float32Array::from(values)),
        None,
    )
    .unwrap()
}

/// `n` rows of [`docs_table`] in the engine's Arrow shape, ids from `first`, with NULLs and
/// awkward text (commas, quotes, newlines, unicode) sprinkled in.
pub fn docs_batch(first: i64, n: usize, dim: usize) -> RecordBatch {
    let schema = vela_engine::arrow_conv::arrow_schema(&docs_table(dim as u32));
    let ids: Vec<i64> = (0..n as i64).map(|i| first + i).collect();
    let titles: Vec<Option<String>> = ids
        .iter()
        .map(|&i| match i % 5 {
            0 => None,
            1 => Some(format!("plain {i}")),
            2 => Some(format!("comma, \"quoted\" {i}")),
            3 => Some(format!("line\nbreak {i} é✓")),
            _ => Some(String::new()),
        })
        .collect();
    let scores: Vec<Option<f64>> = ids
        .iter()
        .map(|&i| (i % 7 != 0).then_some(i as f64 * 0.25 - 3.0))
        .collect();
    let flags: Vec<Option<bool>> = ids
        .iter()
        .map(|&i| (i % 3 != 0).then_some(i % 2 == 0))
        .collect();
    let ats: Vec<Option<i64>> = ids
        .iter()
        .map(|&i| (i % 4 != 0).then_some(1_700_000_000_000_000 + i * 1_234_567))
        .collect();
    let values: Vec<f32> = ids
        .iter()
        .flat_map(|&i| (0..dim).map(move |j| (i as f32) * 0.5 - j as f32 / 3.0))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(StringArray::from(titles)),
        Arc::new(Float64Array::from(scores)),
        Arc::new(BooleanArray::from(flags)),
        Arc::new(TimestampMicrosecondArray::from(ats)),
        Arc::new(fsl(dim as i32, values)),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Drains a source into one batch, checking every batch is at most `max_rows` rows.
pub fn drain(source: &mut dyn BatchSource, max_rows: usize) -> RecordBatch {
    let schema = source.schema();
    let mut parts = Vec::new();
    while let Some(b) = source.next_batch(max_rows).unwrap() {
        assert!(
            b.num_rows() >= 1 && b.num_rows() <= max_rows,
            "{}",
            b.num_rows()
        );
        assert_eq!(b.schema(), schema);
        parts.push(b);
    }
    arrow::compute::concat_batches(&schema, &parts).unwrap()
}

/// Drains a table source into one batch.
pub fn drain_table(source: &mut TableSource, max_rows: usize) -> Result<RecordBatch, DatasetError> {
    let schema = source.schema();
    let mut parts = Vec::new();
    while let Some(b) = source.next_batch(max_rows)? {
        assert!(b.num_rows() >= 1 && b.num_rows() <= max_rows);
        assert_eq!(b.schema(), schema);
        parts.push(b);
    }
    Ok(arrow::compute::concat_batches(&schema, &parts).unwrap())
}

/// The engine rows of a batch in the table's shape.
pub fn rows_of(t: &TableSchema, b: &RecordBatch) -> Vec<Vec<vela_engine::catalog::Value>> {
    vela_engine::arrow_conv::batch_to_rows(t, b).unwrap()
}

/// One batch from columns (names and arrays).
pub fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// The vectors of a FixedSizeList<Float32> column.
pub fn vectors_of(batch: &RecordBatch, name: &str) -> Vec<Vec<f32>> {
    use arrow::array::{Array, AsArray};
    let col = batch.column_by_name(name).unwrap().as_fixed_size_list();
    (0..col.len())
        .map(|i| col.value(i).as_primitive::<Float32Type>().values().to_vec())
        .collect()
}

pub fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}
