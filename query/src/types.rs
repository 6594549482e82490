//! SQL types as the binder sees them, and their mapping to the catalog and to Arrow.
//!
//! [`SqlType`] is the catalog's [`ColumnType`] plus the two types literals and parameters start
//! with: `Unknown` (an untyped string literal or a parameter, resolved by context as in
//! PostgreSQL) and `Null` (a bare `NULL`). A vector's dimension may be unknown at bind time
//! (`'[1,2]'::vector` is known, `$1::vector` is not); it is checked when values meet.

use std::fmt;

use arrow::datatypes::{DataType, Field, TimeUnit};
use sqlparser::ast::DataType as AstType;
use vela_engine::catalog::{ColumnType, ScalarType, MAX_VECTOR_DIM};

use crate::error::{QueryError, Result};

/// The type of a bound expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    BigInt,
    Double,
    Text,
    Boolean,
    Timestamp,
    /// `VECTOR(n)`; `None` when the dimension is only known at run time.
    Vector(Option<u32>),
    /// An untyped string literal or parameter, typed by context.
    Unknown,
    /// A bare `NULL`.
    Null,
}

impl SqlType {
    /// The type of a catalog column.
    pub fn of_column(ty: ColumnType) -> SqlType {
        match ty {
            ColumnType::Scalar(ScalarType::BigInt) => SqlType::BigInt,
            ColumnType::Scalar(ScalarType::Double) => SqlType::Double,
            ColumnType::Scalar(ScalarType::Text) => SqlType::Text,
            ColumnType::Scalar(ScalarType::Boolean) => SqlType::Boolean,
            ColumnType::Scalar(ScalarType::Timestamp) => SqlType::Timestamp,
            ColumnType::Vector { dim } => SqlType::Vector(Some(dim)),
        }
    }

    /// Whether values of this type are numbers.
    pub fn is_numeric(self) -> bool {
        matches!(self, SqlType::BigInt | SqlType::Double)
    }

    /// Whether this is a vector type of any dimension.
    pub fn is_vector(self) -> bool {
        matches!(self, SqlType::Vector(_))
    }

    /// Whether this type still waits for context (`Unknown` or `Null`).
    pub fn is_untyped(self) -> bool {
        matches!(self, SqlType::Unknown | SqlType::Null)
    }

    /// The Arrow type results of this SQL type are returned as.
    pub fn arrow_type(self) -> DataType {
        match self {
            SqlType::BigInt => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Text | SqlType::Unknown | SqlType::Null => DataType::Utf8,
            SqlType::Boolean => DataType::Boolean,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            SqlType::Vector(dim) => vector_arrow_type(dim.unwrap_or(0)),
        }
    }
}

/// `FixedSizeList<Float32>(dim)`, the Arrow type of a `VECTOR(dim)` column.
pub fn vector_arrow_type(dim: u32) -> DataType {
    DataType::FixedSizeList(
        std::sync::Arc::new(Field::new("item", DataType::Float32, true)),
        i32::try_from(dim).unwrap_or(i32::MAX),
    )
}

impl fmt::Display for SqlType {
    /// PostgreSQL's names, as error messages print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::BigInt => f.write_str("bigint"),
            SqlType::Double => f.write_str("double precision"),
            SqlType::Text => f.write_str("text"),
            SqlType::Boolean => f.write_str("boolean"),
            SqlType::Timestamp => f.write_str("timestamp without time zone"),
            SqlType::Vector(_) => f.write_str("vector"),
            SqlType::Unknown => f.write_str("unknown"),
            SqlType::Null => f.write_str("unknown"),
        }
    }
}

/// Resolves a type name written in SQL (column definitions and casts).
pub fn resolve_ast_type(ty: &AstType) -> Result<SqlType> {
    use AstType as T;
    Ok(match ty {
        T::BigInt(_)
        | T::Int(_)
        | T::Integer(_)
        | T::SmallInt(_)
        | T::Int2(_)
        | T::Int4(_)
        | T::Int8(_)
        | T::TinyInt(_) => SqlType::BigInt,
        T::Double(_)
        | T::DoublePrecision
        | T::Float(_)
        | T::Float4
        | T::Float8
        | T::Real
        | T::Float64
        | T::Float32
        | T::Numeric(_)
        | T::Decimal(_) => SqlType::Double,
        T::Text
        | T::Varchar(_)
        | T::CharVarying(_)
        | T::Char(_)
        | T::Character(_)
        | T::String(_) => SqlType::Text,
        T::Boolean | T::Bool => SqlType::Boolean,
        T::Timestamp(_, _) | T::Datetime(_) => SqlType::Timestamp,
        T::Custom(name, modifiers) => {
            let name = name.to_string().to_ascii_lowercase();
            match name.as_str() {
                "vector" => SqlType::Vector(vector_modifier(modifiers)?),
                "bigserial" | "serial" => SqlType::BigInt,
                _ => {
                    return Err(QueryError::UndefinedObject(format!(
                        "type \"{name}\" does not exist"
                    )))
                }
            }
        }
        other => return Err(QueryError::unsupported(format!("type {other}"))),
    })
}

/// The dimension in `VECTOR(n)`, checked against pgvector's limits.
fn vector_modifier(modifiers: &[sqlparser::ast::TypeModifier]) -> Result<Option<u32>> {
    match modifiers {
        [] => Ok(None),
        [one] => {
            let one = one.to_string();
            let dim: i64 = one.trim().parse().map_err(|_| {
                QueryError::InvalidTextRepresentation(format!(
                    "invalid input syntax for type integer: \"{one}\""
                ))
            })?;
            if dim < 1 {
                return Err(QueryError::DataException(
                    "dimensions for type vector must be at least 1".into(),
                ));
            }
            if dim > i64::from(MAX_VECTOR_DIM) {
                return Err(QueryError::DataException(format!(
                    "dimensions for type vector cannot exceed {MAX_VECTOR_DIM}"
                )));
            }
            Ok(u32::try_from(dim).ok())
        }
        _ => Err(QueryError::InvalidParameterValue(
            "invalid type modifier".into(),
        )),
    }
}

/// The catalog column type for a SQL type in `CREATE TABLE`.
pub fn column_type(ty: SqlType, column: &str) -> Result<ColumnType> {
    Ok(match ty {
        SqlType::BigInt => ColumnType::Scalar(ScalarType::BigInt),
        SqlType::Double => ColumnType::Scalar(ScalarType::Double),
        SqlType::Text => ColumnType::Scalar(ScalarType::Text),
        SqlType::Boolean => ColumnType::Scalar(ScalarType::Boolean),
        SqlType::Timestamp => ColumnType::Scalar(ScalarType::Timestamp),
        SqlType::Vector(Some(dim)) => ColumnType::Vector { dim },
        SqlType::Vector(None) => {
            return Err(QueryError::unsupported(format!(
                "vector column \"{column}\" without a dimension (write VECTOR(n))"
            )))
        }
        SqlType::Unknown | SqlType::Null => {
            return Err(QueryError::Internal(format!(
                "column \"{column}\" has no type"
            )))
        }
    })
}
