//! The catalog's types: what a table is (columns, primary key, shards, vector indexes) and the
//! values its rows hold.
//!
//! These types are shared by the engine (which persists them in the segment store's `catalog`
//! column family and logs DDL in the WAL) and by the SQL front end (which binds names against
//! them). They are plain data: validation lives in [`TableSchema::validate`], persistence in the
//! engine. They serialize with serde (JSON in the catalog column family: small, rare, and easy to
//! inspect when something goes wrong).

use serde::{Deserialize, Serialize};

use crate::index::Metric;

/// Largest vector dimension a column may declare (pgvector's limit for `vector`).
pub const MAX_VECTOR_DIM: u32 = 16_000;

/// Largest number of shards a table may declare.
pub const MAX_SHARDS: u32 = 1024;

/// A scalar column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScalarType {
    /// 64-bit signed integer (`BIGINT`, also `INT`/`INTEGER`/`SMALLINT` widened).
    BigInt,
    /// 64-bit float (`DOUBLE PRECISION`, `FLOAT8`, also `REAL` widened).
    Double,
    /// UTF-8 text (`TEXT`, `VARCHAR`).
    Text,
    /// `BOOLEAN`.
    Boolean,
    /// `TIMESTAMP` without time zone, as microseconds since the Unix epoch.
    Timestamp,
}

/// A column's type: a scalar, or a `VECTOR(n)` of f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    Scalar(ScalarType),
    Vector { dim: u32 },
}

impl ColumnType {
    /// The dimension of a vector column, `None` for scalars.
    pub fn vector_dim(self) -> Option<usize> {
        match self {
            ColumnType::Vector { dim } => Some(dim as usize),
            ColumnType::Scalar(_) => None,
        }
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnType::Scalar(ScalarType::BigInt) => f.write_str("BIGINT"),
            ColumnType::Scalar(ScalarType::Double) => f.write_str("DOUBLE PRECISION"),
            ColumnType::Scalar(ScalarType::Text) => f.write_str("TEXT"),
            ColumnType::Scalar(ScalarType::Boolean) => f.write_str("BOOLEAN"),
            ColumnType::Scalar(ScalarType::Timestamp) => f.write_str("TIMESTAMP"),
            ColumnType::Vector { dim } => write!(f, "VECTOR({dim})"),
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub ty: ColumnType,
    /// Whether NULL is allowed. The primary key never is.
    pub nullable: bool,
}

/// HNSW parameters of a vector index, as in pgvector's `WITH (m = 16, ef_construction = 64)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswConfig {
    pub m: usize,
    pub ef_construction: usize,
}

impl Default for HnswConfig {
    /// pgvector's defaults.
    fn default() -> Self {
        HnswConfig {
            m: 16,
            ef_construction: 64,
        }
    }
}

/// An HNSW index on one vector column (`CREATE INDEX name ON t USING hnsw (col <opclass>)`).
/// A column has at most one index; its metric is the one the index serves (other metrics on the
/// same column are answered by exact search).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorIndexDef {
    pub name: String,
    pub column: String,
    pub metric: Metric,
    pub hnsw: HnswConfig,
}

/// A table's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<ColumnDef>,
    /// Index into `columns` of the primary key (BIGINT or TEXT, never NULL).
    pub primary_key: usize,
    /// Number of shards rows are hashed into by primary key; fixed at creation.
    pub shards: u32,
    pub indexes: Vec<VectorIndexDef>,
}

/// Why a schema is not acceptable. The engine wraps it in its error enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("table name must not be empty")]
    EmptyTableName,
    #[error("table \"{0}\" has no columns")]
    NoColumns(String),
    #[error("column name must not be empty")]
    EmptyColumnName,
    #[error("column \"{0}\" specified more than once")]
    DuplicateColumn(String),
    #[error("primary key column index {0} is out of range")]
    BadPrimaryKey(usize),
    #[error("primary key column \"{column}\" must be BIGINT or TEXT, not {ty}")]
    PrimaryKeyType { column: String, ty: ColumnType },
    #[error(
        "vector column \"{column}\" must have between 1 and {MAX_VECTOR_DIM} dimensions, not {dim}"
    )]
    VectorDim { column: String, dim: u32 },
    #[error("shard count must be between 1 and {MAX_SHARDS}, not {0}")]
    ShardCount(u32),
    #[error(
        "index \"{index}\" names column \"{column}\", which is not a vector column of the table"
    )]
    IndexColumn { index: String, column: String },
    #[error("index name \"{0}\" used more than once")]
    DuplicateIndex(String),
    #[error("column \"{0}\" already has a vector index")]
    ColumnAlreadyIndexed(String),
}

impl TableSchema {
    /// Checks the invariants every persisted schema satisfies.
    pub fn validate(&self) -> Result<(), SchemaError> {
        if self.name.is_empty() {
            return Err(SchemaError::EmptyTableName);
        }
        if self.columns.is_empty() {
            return Err(SchemaError::NoColumns(self.name.clone()));
        }
        let mut seen = std::collections::HashSet::new();
        for column in &self.columns {
            if column.name.is_empty() {
                return Err(SchemaError::EmptyColumnName);
            }
            if !seen.insert(column.name.as_str()) {
                return Err(SchemaError::DuplicateColumn(column.name.clone()));
            }
            if let ColumnType::Vector { dim } = column.ty {
                if dim == 0 || dim > MAX_VECTOR_DIM {
                    return Err(SchemaError::VectorDim {
                        column: column.name.clone(),
                        dim,
                    });
                }
            }
        }
        let pk = self
            .columns
            .get(self.primary_key)
            .ok_or(SchemaError::BadPrimaryKey(self.primary_key))?;
        if !matches!(
            pk.ty,
            ColumnType::Scalar(ScalarType::BigInt) | ColumnType::Scalar(ScalarType::Text)
        ) {
            return Err(SchemaError::PrimaryKeyType {
                column: pk.name.clone(),
                ty: pk.ty,
            });
        }
        if self.shards == 0 || self.shards > MAX_SHARDS {
            return Err(SchemaError::ShardCount(self.shards));
        }
        let mut index_names = std::collections::HashSet::new();
        let mut indexed_columns = std::collections::HashSet::new();
        for index in &self.indexes {
            let is_vector = self
                .column(&index.column)
                .is_some_and(|(_, c)| c.ty.vector_dim().is_some());
            if !is_vector {
                return Err(SchemaError::IndexColumn {
                    index: index.name.clone(),
                    column: index.column.clone(),
                });
            }
            if !index_names.insert(index.name.as_str()) {
                return Err(SchemaError::DuplicateIndex(index.name.clone()));
            }
            if !indexed_columns.insert(index.column.as_str()) {
                return Err(SchemaError::ColumnAlreadyIndexed(index.column.clone()));
            }
        }
        Ok(())
    }

    /// The column with this name and its position.
    pub fn column(&self, name: &str) -> Option<(usize, &ColumnDef)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
    }

    /// The primary key's column definition.
    pub fn primary_key_column(&self) -> &ColumnDef {
        &self.columns[self.primary_key]
    }

    /// The vector index on a column, if any.
    pub fn index_on(&self, column: &str) -> Option<&VectorIndexDef> {
        self.indexes.iter().find(|i| i.column == column)
    }
}

/// One value of a row. `Timestamp` is microseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    BigInt(i64),
    Double(f64),
    Text(String),
    Boolean(bool),
    Timestamp(i64),
    Vector(Vec<f32>),
}

/// A primary key value: the only two types a key may have.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    BigInt(i64),
    Text(String),
}

impl Key {
    /// This key, borrowed.
    pub fn as_key_ref(&self) -> KeyRef<'_> {
        match self {
            Key::BigInt(v) => KeyRef::BigInt(*v),
            Key::Text(s) => KeyRef::Text(s),
        }
    }
}

/// A primary key borrowed from a row ([`crate::Row::key_ref`]) or from a [`Key`]. It hashes,
/// compares and orders exactly as the [`Key`] it borrows (same variants in the same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyRef<'a> {
    BigInt(i64),
    Text(&'a str),
}

impl KeyRef<'_> {
    /// The owned key.
    pub fn to_key(self) -> Key {
        match self {
            KeyRef::BigInt(v) => Key::BigInt(v),
            KeyRef::Text(s) => Key::Text(s.to_string()),
        }
    }
}

impl From<i64> for Key {
    fn from(v: i64) -> Key {
        Key::BigInt(v)
    }
}

impl From<&str> for Key {
    fn from(v: &str) -> Key {
        Key::Text(v.to_string())
    }
}

impl From<String> for Key {
    fn from(v: String) -> Key {
        Key::Text(v)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::BigInt(v) => write!(f, "{v}"),
            Key::Text(v) => write!(f, "{v}"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `docs(id BIGINT PK, embedding VECTOR(3))` with an L2 index (also used by other modules'
    /// tests).
    pub(crate) fn schema() -> TableSchema {
        TableSchema {
            name: "docs".into(),
            columns: vec![
                ColumnDef {
                    name: "id".into(),
                    ty: ColumnType::Scalar(ScalarType::BigInt),
                    nullable: false,
                },
                ColumnDef {
                    name: "embedding".into(),
                    ty: ColumnType::Vector { dim: 3 },
                    nullable: true,
                },
            ],
            primary_key: 0,
            shards: 2,
            indexes: vec![VectorIndexDef {
                name: "docs_embedding_idx".into(),
                column: "embedding".into(),
                metric: Metric::L2,
                hnsw: HnswConfig::default(),
            }],
        }
    }

    #[test]
    fn valid_schema_passes_and_round_trips_through_json() {
        let s = schema();
        s.validate().unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<TableSchema>(&json).unwrap(), s);
    }

    #[test]
    fn invalid_schemas_are_rejected() {
        let mut s = schema();
        s.columns[1].name = "id".into();
        assert_eq!(s.validate(), Err(SchemaError::DuplicateColumn("id".into())));

        let mut s = schema();
        s.primary_key = 1;
        assert!(matches!(
            s.validate(),
            Err(SchemaError::PrimaryKeyType { .. })
        ));

        let mut s = schema();
        s.columns[1].ty = ColumnType::Vector { dim: 0 };
        assert!(matches!(s.validate(), Err(SchemaError::VectorDim { .. })));

        let mut s = schema();
        s.shards = 0;
        assert_eq!(s.validate(), Err(SchemaError::ShardCount(0)));

        let mut s = schema();
        s.indexes[0].column = "id".into();
        assert!(matches!(s.validate(), Err(SchemaError::IndexColumn { .. })));
    }
}
