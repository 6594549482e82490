//! Rows -> Arrow: builds the `RecordBatch`es a statement returns, and renders cells back to text
//! the way psql would (vectors as `[1,2,3]`, booleans as `t`/`f`, NULL as empty) for shells and
//! sqllogictest.
//!
//! Vectors are `FixedSizeList<Float32>(n)`. A vector column whose dimension was unknown at bind
//! time takes it from its first non-NULL value; a column mixing dimensions (`'[1]'::vector` and
//! `'[1,2]'::vector` in one result) is a `22000`, as Arrow cannot hold it in one fixed-size list.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, FixedSizeListArray, Float32Array, Float32Builder,
    Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use vela_engine::catalog::Value;

use crate::engine::Row;
use crate::error::{QueryError, Result};
use crate::expr::cast::{format_timestamp, value_to_text};
use crate::plan::OutputColumn;
use crate::types::{vector_arrow_type, SqlType};
use crate::vector::{format_float, format_vector};

/// Rows per output batch.
pub const BATCH_ROWS: usize = 8192;

fn arrow_error(e: arrow::error::ArrowError) -> QueryError {
    QueryError::Internal(format!("arrow: {e}"))
}

/// The final type of each column: vectors get their dimension from the data.
fn resolve_types<R: AsRef<[Value]>>(columns: &[OutputColumn], rows: &[R]) -> Result<Vec<SqlType>> {
    let mut types = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let mut ty = c.ty;
        if let SqlType::Vector(dim) = ty {
            let mut dim = dim;
            for row in rows {
                if let Some(Value::Vector(v)) = row.as_ref().get(i) {
                    let n = u32::try_from(v.len()).unwrap_or(u32::MAX);
                    match dim {
                        None => dim = Some(n),
                        Some(d) if d != n => {
                            return Err(QueryError::DataException(format!(
                                "different vector dimensions {d} and {n} in column \"{}\"",
                                c.name
                            )))
                        }
                        _ => {}
                    }
                }
            }
            ty = SqlType::Vector(Some(dim.unwrap_or(1)));
        }
        types.push(ty);
    }
    Ok(types)
}

/// The Arrow schema of a result.
pub fn arrow_schema(columns: &[OutputColumn], types: &[SqlType]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .zip(types)
        .map(|(c, t)| Field::new(&c.name, t.arrow_type(), true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// The final type of each result column: a vector column of unknown dimension takes it from the
/// first non-NULL value in `rows` (see the module doc).
pub fn result_types(columns: &[OutputColumn], rows: &[Row]) -> Result<Vec<SqlType>> {
    resolve_types(columns, rows)
}

/// One batch of `rows` in `schema` (from [`arrow_schema`] with the same `types`).
pub fn build_batch<R: AsRef<[Value]>>(
    schema: &SchemaRef,
    types: &[SqlType],
    rows: &[R],
) -> Result<RecordBatch> {
    let mut arrays = Vec::with_capacity(types.len());
    for (i, ty) in types.iter().enumerate() {
        arrays.push(build_column(*ty, rows, i)?);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &options).map_err(arrow_error)
}

/// Builds batches of at most [`BATCH_ROWS`] rows; an empty result gives no batches but a schema.
pub fn rows_to_batches<R: AsRef<[Value]>>(
    columns: &[OutputColumn],
    rows: &[R],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let types = resolve_types(columns, rows)?;
    let schema = arrow_schema(columns, &types);
    batches_in(schema, &types, rows)
}

/// [`rows_to_batches`], taking the schema from `cached` (or storing it there) when no column's
/// type depends on the data (no vector of unknown dimension): a statement run many times then
/// builds its Arrow schema once.
pub fn rows_to_batches_cached<R: AsRef<[Value]>>(
    columns: &[OutputColumn],
    rows: &[R],
    cached: &OnceLock<SchemaRef>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let types = resolve_types(columns, rows)?;
    let fixed = columns
        .iter()
        .all(|c| !matches!(c.ty, SqlType::Vector(None)));
    let schema = if fixed {
        cached.get_or_init(|| arrow_schema(columns, &types)).clone()
    } else {
        arrow_schema(columns, &types)
    };
    batches_in(schema, &types, rows)
}

fn batches_in<R: AsRef<[Value]>>(
    schema: SchemaRef,
    types: &[SqlType],
    rows: &[R],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut batches = Vec::with_capacity(rows.len().div_ceil(BATCH_ROWS));
    for chunk in rows.chunks(BATCH_ROWS) {
        batches.push(build_batch(&schema, types, chunk)?);
    }
    Ok((schema, batches))
}

fn build_column<R: AsRef<[Value]>>(ty: SqlType, rows: &[R], i: usize) -> Result<ArrayRef> {
    let mismatch = |v: &Value| QueryError::Internal(format!("value {v:?} in a {ty} column"));
    Ok(match ty {
        SqlType::BigInt => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for row in rows {
                match row.as_ref().get(i) {
                    Some(Value::BigInt(x)) => b.append_value(*x),
                    Some(Value::Null) | None => b.append_null(),
                    Some(v) => return Err(mismatch(v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Double => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for row in rows {
                match row.as_ref().get(i) {
                    Some(Value::Double(x)) => b.append_value(*x),
                    Some(Value::BigInt(x)) => b.append_value(*x as f64),
                    Some(Value::Null) | None => b.append_null(),
                    Some(v) => return Err(mismatch(v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for row in rows {
                match row.as_ref().get(i) {
                    Some(Value::Boolean(x)) => b.append_value(*x),
                    Some(Value::Null) | None => b.append_null(),
                    Some(v) => return Err(mismatch(v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Timestamp => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len());
            for row in rows {
                match row.as_ref().get(i) {
                    Some(Value::Timestamp(x)) => b.append_value(*x),
                    Some(Value::Null) | None => b.append_null(),
                    Some(v) => return Err(mismatch(v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Vector(dim) => {
            let dim = dim.unwrap_or(1);
            let width = i32::try_from(dim).map_err(|_| QueryError::Internal("dim".into()))?;
            let mut values = Float32Builder::with_capacity(rows.len() * dim as usize);
            let mut validity = Vec::with_capacity(rows.len());
            for row in rows {
                match row.as_ref().get(i) {
                    Some(Value::Vector(v)) if v.len() == dim as usize => {
                        values.append_slice(v);
                        validity.push(true);
                    }
                    Some(Value::Null) | None => {
                        for _ in 0..dim {
                            values.append_value(0.0);
                        }
                        validity.push(false);
                    }
                    Some(v) => return Err(mismatch(v)),
                }
            }
            let field = Arc::new(Field::new("item", DataType::Float32, true));
            let values: Float32Array = values.finish();
            let nulls = arrow::buffer::NullBuffer::from(validity);
            let list = FixedSizeListArray::try_new(field, width, Arc::new(values), Some(nulls))
                .map_err(arrow_error)?;
            debug_assert_eq!(list.data_type(), &vector_arrow_type(dim));
            Arc::new(list)
        }
        SqlType::Text | SqlType::Unknown | SqlType::Null => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
            for row in rows {
                match row.as_ref().get(i) {
                    Some(Value::Null) | None => b.append_null(),
                    Some(v) => b.append_value(value_to_text(v)),
                }
            }
            Arc::new(b.finish())
        }
    })
}

/// A cell as psql prints it: NULL as `NULL` here (callers choose), vectors as `[1,2,3]`,
/// booleans as `t`/`f`, doubles in shortest round-trip form.
pub fn cell_text(array: &dyn Array, row: usize) -> Option<String> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Float64 => format_float(array.as_primitive::<Float64Type>().value(row), false),
        DataType::Boolean => if array.as_boolean().value(row) {
            "t"
        } else {
            "f"
        }
        .to_string(),
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        DataType::Timestamp(_, _) => {
            format_timestamp(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::FixedSizeList(_, _) => {
            let list = array.as_fixed_size_list();
            let v = list.value(row);
            let floats: Vec<f32> = v
                .as_any()
                .downcast_ref::<Float32Array>()
                .map(|a| a.values().to_vec())
                .unwrap_or_default();
            format_vector(&floats)
        }
        other => format!("<{other}>"),
    })
}
