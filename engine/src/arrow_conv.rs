//! Arrow conversion: a `RecordBatch` to engine rows (columns matched by name; vectors as
//! `FixedSizeList<Float32>` or `List<Float32>`), and rows back to a `RecordBatch`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, FixedSizeListBuilder, Float32Builder, Float64Builder,
    Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;

use crate::catalog::{ColumnType, Key, ScalarType, TableSchema, Value};
use crate::error::{EngineError, Result};
use crate::table::Row;

fn bad(column: &str, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidData {
        column: column.to_string(),
        reason: reason.into(),
    }
}

/// The Arrow type of a column.
pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Scalar(ScalarType::BigInt) => DataType::Int64,
        ColumnType::Scalar(ScalarType::Double) => DataType::Float64,
        ColumnType::Scalar(ScalarType::Text) => DataType::Utf8,
        ColumnType::Scalar(ScalarType::Boolean) => DataType::Boolean,
        ColumnType::Scalar(ScalarType::Timestamp) => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        ColumnType::Vector { dim } => DataType::FixedSizeList(
            Arc::new(Field::new("item", DataType::Float32, true)),
            dim as i32,
        ),
    }
}

/// The Arrow schema of a table.
pub fn arrow_schema(schema: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c.ty), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

fn cast(col: &ArrayRef, to: &DataType, name: &str) -> Result<ArrayRef> {
    if col.data_type() == to {
        return Ok(col.clone());
    }
    arrow::compute::cast(col, to).map_err(|e| bad(name, format!("cannot convert: {e}")))
}

fn vector_at(col: &ArrayRef, i: usize, name: &str) -> Result<Value> {
    let values: ArrayRef = match col.data_type() {
        DataType::FixedSizeList(_, _) => col.as_fixed_size_list().value(i),
        DataType::List(_) => col.as_list::<i32>().value(i),
        DataType::LargeList(_) => col.as_list::<i64>().value(i),
        other => {
            return Err(bad(
                name,
                format!("expected a list of float32, got {other}"),
            ))
        }
    };
    let values = cast(&values, &DataType::Float32, name)?;
    let f = values.as_primitive::<Float32Type>();
    if f.null_count() > 0 {
        return Err(bad(name, "vector has NULL components"));
    }
    Ok(Value::Vector(f.values().to_vec()))
}

/// Converts a batch into rows in schema order. Columns are matched by name; a missing column is
/// NULL (rejected later if NOT NULL); an unknown column is an error.
pub fn batch_to_rows(schema: &TableSchema, batch: &RecordBatch) -> Result<Vec<Vec<Value>>> {
    let mut sources: Vec<Option<ArrayRef>> = vec![None; schema.columns.len()];
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let (pos, def) = schema
            .column(field.name())
            .ok_or_else(|| EngineError::UnknownColumn {
                table: schema.name.clone(),
                column: field.name().clone(),
            })?;
        let converted = match def.ty {
            ColumnType::Vector { .. } => col.clone(),
            ty => cast(col, &arrow_type(ty), &def.name)?,
        };
        if let Some(slot) = sources.get_mut(pos) {
            *slot = Some(converted);
        }
    }
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut row = Vec::with_capacity(schema.columns.len());
        for (def, src) in schema.columns.iter().zip(&sources) {
            let Some(col) = src else {
                row.push(Value::Null);
                continue;
            };
            if col.is_null(i) {
                row.push(Value::Null);
                continue;
            }
            row.push(match def.ty {
                ColumnType::Scalar(ScalarType::BigInt) => {
                    Value::BigInt(col.as_primitive::<Int64Type>().value(i))
                }
                ColumnType::Scalar(ScalarType::Double) => {
                    Value::Double(col.as_primitive::<Float64Type>().value(i))
                }
                ColumnType::Scalar(ScalarType::Text) => {
                    Value::Text(col.as_string::<i32>().value(i).to_string())
                }
                ColumnType::Scalar(ScalarType::Boolean) => {
                    Value::Boolean(col.as_boolean().value(i))
                }
                ColumnType::Scalar(ScalarType::Timestamp) => {
                    Value::Timestamp(col.as_primitive::<TimestampMicrosecondType>().value(i))
                }
                ColumnType::Vector { .. } => vector_at(col, i, &def.name)?,
            });
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The primary keys of a batch (its primary-key column; other columns are ignored).
pub fn batch_to_keys(schema: &TableSchema, batch: &RecordBatch) -> Result<Vec<Key>> {
    let pk = schema.primary_key_column();
    let col = batch
        .column_by_name(&pk.name)
        .ok_or_else(|| bad(&pk.name, "the batch has no primary-key column"))?;
    let col = cast(col, &arrow_type(pk.ty), &pk.name)?;
    (0..batch.num_rows())
        .map(|i| {
            if col.is_null(i) {
                return Err(bad(&pk.name, "NULL primary key"));
            }
            Ok(match pk.ty {
                ColumnType::Scalar(ScalarType::Text) => {
                    Key::Text(col.as_string::<i32>().value(i).to_string())
                }
                _ => Key::BigInt(col.as_primitive::<Int64Type>().value(i)),
            })
        })
        .collect()
}

/// Builds a batch (the table's Arrow schema) from rows.
pub fn rows_to_batch(schema: &TableSchema, rows: &[Arc<Row>]) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.columns.len());
    for (pos, def) in schema.columns.iter().enumerate() {
        let vals = rows
            .iter()
            .map(|r| r.values.get(pos).unwrap_or(&Value::Null));
        let array: ArrayRef = match def.ty {
            ColumnType::Scalar(ScalarType::BigInt) => {
                let mut b = Int64Builder::with_capacity(rows.len());
                vals.for_each(|v| {
                    b.append_option(if let Value::BigInt(x) = v {
                        Some(*x)
                    } else {
                        None
                    })
                });
                Arc::new(b.finish())
            }
            ColumnType::Scalar(ScalarType::Double) => {
                let mut b = Float64Builder::with_capacity(rows.len());
                vals.for_each(|v| {
                    b.append_option(if let Value::Double(x) = v {
                        Some(*x)
                    } else {
                        None
                    })
                });
                Arc::new(b.finish())
            }
            ColumnType::Scalar(ScalarType::Text) => {
                let mut b = StringBuilder::new();
                vals.for_each(|v| {
                    b.append_option(if let Value::Text(x) = v {
                        Some(x.as_str())
                    } else {
                        None
                    })
                });
                Arc::new(b.finish())
            }
            ColumnType::Scalar(ScalarType::Boolean) => {
                let mut b = BooleanBuilder::with_capacity(rows.len());
                vals.for_each(|v| {
                    b.append_option(if let Value::Boolean(x) = v {
                        Some(*x)
                    } else {
                        None
                    })
                });
                Arc::new(b.finish())
            }
            ColumnType::Scalar(ScalarType::Timestamp) => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len());
                vals.for_each(|v| {
                    b.append_option(if let Value::Timestamp(x) = v {
                        Some(*x)
                    } else {
                        None
                    })
                });
                Arc::new(b.finish())
            }
            ColumnType::Vector { dim } => {
                let mut b = FixedSizeListBuilder::new(Float32Builder::new(), dim as i32)
                    .with_field(Arc::new(Field::new("item", DataType::Float32, true)));
                for v in vals {
                    match v {
                        Value::Vector(x) if x.len() == dim as usize => {
                            b.values().append_slice(x);
                            b.append(true);
                        }
                        _ => {
                            for _ in 0..dim {
                                b.values().append_null();
                            }
                            b.append(false);
                        }
                    }
                }
                Arc::new(b.finish())
            }
        };
        columns.push(array);
    }
    RecordBatch::try_new(arrow_schema(schema), columns)
        .map_err(|e| EngineError::Corrupt(format!("building a record batch: {e}")))
}
