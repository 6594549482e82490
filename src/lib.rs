//! Vela: an embedded vector database that speaks pgvector's SQL.
//!
//! The embedded API is [`Database`] (see its example): tables with a primary key, scalar
//! columns and `VECTOR(n)` columns with HNSW indexes; rows in and out as Arrow
//! `RecordBatch`es; `search`, `get`, `scan`; every error a [`Error`] with a stable
//! SQLSTATE-like [`Error::code`].

mod database;
mod error;
mod sql;

pub use database::{Database, Options};
pub use error::{Error, Result};
pub use sql::{Connection, EngineAdapter, SqlError};
pub use vela_engine::{
    ColumnDef, ColumnType, EngineMetrics, EngineOptions, HnswConfig, Key, Metric, Op, Row,
    RowPredicate, ScalarType, SearchHit, SearchRequest, TableMetrics, TableSchema, Value,
    VectorIndexDef, WriteOutcome,
};
pub use vela_query::{PreparedStatement, StatementResult};
pub use vela_storage::Durability;

pub use vela_engine as engine;
pub use vela_storage as storage;

/// The version of this build of Vela.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
