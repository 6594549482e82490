//! Rows -> Arrow: builds the `RecordBatch`es a statement returns, and renders cells back to text
//! the way psql would (vectors as `[1,2,3]`, booleans as `t`/`f`, NULL as empty) for shells and
//! sqllogictest.
//!
//! Vectors are `FixedSizeList<Float32>(n)`. A vector column whose dimension was unknown at bind
//! time takes it from its first non-NULL value; a column mixing dimensions (`'[1]'::vector` and
//! `'[1,2]'::vector` in one result) is a `22000`, as Arrow cannot hold it in one fixed-size list.

use std::sync::{Arc, OnceLock};

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanBuilder, FixedSizeListArray, Float32Array,
    Float32Builder, PrimitiveArray, StringBuilder,
};
use arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimestampMicrosecondType,
};
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

/// The final type of each column: vectors get their dimension from the data (`cells(i)`: the
/// values of column `i`, `None` for a cell past a short row).
fn resolve_types<'v, I, F>(columns: &[OutputColumn], cells: F) -> Result<Vec<SqlType>>
where
    I: Iterator<Item = Option<&'v Value>>,
    F: Fn(usize) -> I,
{
    let mut types = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let mut ty = c.ty;
        if let SqlType::Vector(dim) = ty {
            let mut dim = dim;
            for cell in cells(i) {
                if let Some(Value::Vector(v)) = cell {
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

/// Column `i` of `rows`.
fn row_cells<R: AsRef<[Value]>>(rows: &[R], i: usize) -> impl Iterator<Item = Option<&Value>> + '_ {
    rows.iter().map(move |r| r.as_ref().get(i))
}

/// Column `i` of rows laid out flat, `width` values each.
fn flat_cells(values: &[Value], width: usize, i: usize) -> impl Iterator<Item = Option<&Value>> {
    values.iter().skip(i).step_by(width.max(1)).map(Some)
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
    resolve_types(columns, |i| row_cells(rows, i))
}

/// One batch of `rows` in `schema` (from [`arrow_schema`] with the same `types`).
pub fn build_batch<R: AsRef<[Value]>>(
    schema: &SchemaRef,
    types: &[SqlType],
    rows: &[R],
) -> Result<RecordBatch> {
    batch_of(schema, types, rows.len(), |i| row_cells(rows, i))
}

/// One batch of `n` rows whose column `i` is `cells(i)`.
fn batch_of<'v, I, F>(
    schema: &SchemaRef,
    types: &[SqlType],
    n: usize,
    cells: F,
) -> Result<RecordBatch>
where
    I: Iterator<Item = Option<&'v Value>>,
    F: Fn(usize) -> I,
{
    let mut arrays = Vec::with_capacity(types.len());
    for (i, ty) in types.iter().enumerate() {
        arrays.push(build_column(*ty, n, cells(i))?);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(n));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &options).map_err(arrow_error)
}

/// Builds batches of at most [`BATCH_ROWS`] rows; an empty result gives no batches but a schema.
pub fn rows_to_batches<R: AsRef<[Value]>>(
    columns: &[OutputColumn],
    rows: &[R],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let types = result_types_of(columns, rows)?;
    let schema = arrow_schema(columns, &types);
    batches_in(schema, &types, rows)
}

fn result_types_of<R: AsRef<[Value]>>(
    columns: &[OutputColumn],
    rows: &[R],
) -> Result<Vec<SqlType>> {
    resolve_types(columns, |i| row_cells(rows, i))
}

/// The schema of a result with these final `types`: from `cached` (or stored there) when no
/// column's type depends on the data (no vector of unknown dimension), so a statement run many
/// times builds its Arrow schema once.
fn schema_for(
    columns: &[OutputColumn],
    types: &[SqlType],
    cached: &OnceLock<SchemaRef>,
) -> SchemaRef {
    let fixed = columns
        .iter()
        .all(|c| !matches!(c.ty, SqlType::Vector(None)));
    if fixed {
        cached.get_or_init(|| arrow_schema(columns, types)).clone()
    } else {
        arrow_schema(columns, types)
    }
}

/// [`rows_to_batches`], with the schema cached as [`schema_for`] says.
pub fn rows_to_batches_cached<R: AsRef<[Value]>>(
    columns: &[OutputColumn],
    rows: &[R],
    cached: &OnceLock<SchemaRef>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let types = result_types_of(columns, rows)?;
    let schema = schema_for(columns, &types, cached);
    batches_in(schema, &types, rows)
}

/// [`rows_to_batches_cached`] for rows laid out flat (`values` row after row, `width` =
/// `columns.len()` values each, as the top-k fast path returns them): the arrays are built
/// straight from the values, with no per-row slices.
pub fn flat_to_batches_cached(
    columns: &[OutputColumn],
    values: &[Value],
    cached: &OnceLock<SchemaRef>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let width = columns.len();
    if width == 0 {
        return Err(QueryError::Internal("flat rows without columns".into()));
    }
    let types = resolve_types(columns, |i| flat_cells(values, width, i))?;
    let schema = schema_for(columns, &types, cached);
    let mut batches = Vec::with_capacity(values.len().div_ceil(BATCH_ROWS * width));
    for chunk in values.chunks(BATCH_ROWS * width) {
        let n = chunk.len() / width;
        batches.push(batch_of(&schema, &types, n, |i| {
            flat_cells(chunk, width, i)
        })?);
    }
    Ok((schema, batches))
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

/// A primitive column: the values in one vector handed to Arrow as they are, and a validity
/// bitmap only if some cell is NULL (no builder, no `ArrayData`).
fn primitive<'v, T: ArrowPrimitiveType>(
    ty: SqlType,
    n: usize,
    cells: impl Iterator<Item = Option<&'v Value>>,
    get: impl Fn(&Value) -> Option<T::Native>,
) -> Result<ArrayRef> {
    let mut values = Vec::with_capacity(n);
    let mut nulls = NullBufferBuilder::new(n);
    for cell in cells {
        match cell {
            Some(Value::Null) | None => {
                values.push(T::Native::default());
                nulls.append_null();
            }
            Some(v) => match get(v) {
                Some(x) => {
                    values.push(x);
                    nulls.append_non_null();
                }
                None => {
                    return Err(QueryError::Internal(format!(
                        "value {v:?} in a {ty} column"
                    )))
                }
            },
        }
    }
    let array = PrimitiveArray::<T>::try_new(values.into(), nulls.finish()).map_err(arrow_error)?;
    Ok(Arc::new(array))
}

fn build_column<'v>(
    ty: SqlType,
    n: usize,
    cells: impl Iterator<Item = Option<&'v Value>>,
) -> Result<ArrayRef> {
    let mismatch = |v: &Value| QueryError::Internal(format!("value {v:?} in a {ty} column"));
    Ok(match ty {
        SqlType::BigInt => primitive::<Int64Type>(ty, n, cells, |v| match v {
            Value::BigInt(x) => Some(*x),
            _ => None,
        })?,
        SqlType::Double => primitive::<Float64Type>(ty, n, cells, |v| match v {
            Value::Double(x) => Some(*x),
            Value::BigInt(x) => Some(*x as f64),
            _ => None,
        })?,
        SqlType::Timestamp => primitive::<TimestampMicrosecondType>(ty, n, cells, |v| match v {
            Value::Timestamp(x) => Some(*x),
            _ => None,
        })?,
        SqlType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(n);
            for cell in cells {
                match cell {
                    Some(Value::Boolean(x)) => b.append_value(*x),
                    Some(Value::Null) | None => b.append_null(),
                    Some(v) => return Err(mismatch(v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Vector(dim) => {
            let dim = dim.unwrap_or(1);
            let width = i32::try_from(dim).map_err(|_| QueryError::Internal("dim".into()))?;
            let mut values = Float32Builder::with_capacity(n * dim as usize);
            let mut validity = Vec::with_capacity(n);
            for cell in cells {
                match cell {
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
            let mut b = StringBuilder::with_capacity(n, n * 8);
            for cell in cells {
                match cell {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Flat values give the same batches (schema, split at BATCH_ROWS, NULLs, every type) as
    /// the same rows as slices.
    #[test]
    fn flat_rows_build_the_same_batches() {
        let columns: Vec<OutputColumn> = [
            ("i", SqlType::BigInt),
            ("d", SqlType::Double),
            ("t", SqlType::Text),
            ("b", SqlType::Boolean),
            ("ts", SqlType::Timestamp),
            ("v", SqlType::Vector(None)),
        ]
        .into_iter()
        .map(|(name, ty)| OutputColumn {
            name: name.into(),
            ty,
        })
        .collect();
        let n = BATCH_ROWS + 3;
        let rows: Vec<Row> = (0..n as i64)
            .map(|i| {
                let null = i % 7 == 3;
                let or_null = |v: Value| if null { Value::Null } else { v };
                vec![
                    or_null(Value::BigInt(i)),
                    if i % 5 == 0 {
                        Value::BigInt(i)
                    } else {
                        or_null(Value::Double(i as f64 / 2.0))
                    },
                    or_null(Value::Text(format!("r{i}"))),
                    or_null(Value::Boolean(i % 2 == 0)),
                    or_null(Value::Timestamp(i * 1_000)),
                    or_null(Value::Vector(vec![i as f32, -1.0])),
                ]
            })
            .collect();
        let flat: Vec<Value> = rows.iter().flatten().cloned().collect();
        let (want_schema, want) = rows_to_batches(&columns, &rows).expect("rows");
        let (schema, got) =
            flat_to_batches_cached(&columns, &flat, &OnceLock::new()).expect("flat");
        assert_eq!(schema, want_schema);
        assert_eq!(got.len(), 2);
        assert_eq!(got, want);
        // A NULL-free BigInt column has no validity bitmap.
        let ids = &got[0].columns()[0];
        assert_eq!(ids.null_count(), (BATCH_ROWS + 3) / 7);
        let (_, no_nulls) = flat_to_batches_cached(
            &columns[..1],
            &[Value::BigInt(1), Value::BigInt(2)],
            &OnceLock::new(),
        )
        .expect("ids");
        assert!(no_nulls[0].column(0).nulls().is_none());
        // A value of the wrong type is an internal error, not a panic.
        let bad =
            flat_to_batches_cached(&columns[..1], &[Value::Text("x".into())], &OnceLock::new());
        assert!(matches!(bad, Err(QueryError::Internal(_))));
    }
}
