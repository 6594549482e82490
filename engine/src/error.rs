//! The engine's error enum.
//!
//! Variants are grouped: *bad input* (the caller asked for something invalid; retrying the same
//! call fails the same way), *capacity* and *corruption or bug* (bytes that do not decode, an
//! invariant that does not hold). A bad query must never look like a corrupt database, so the
//! facade maps the groups to different SQLSTATE-like codes. Table/shard variants (owned by the
//! engine's table modules) follow the index ones.

use thiserror::Error;

/// Result alias used throughout `vela-engine`.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Every error the engine returns.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum EngineError {
    // ---- Vector index: bad input -------------------------------------------------------
    /// A vector's length differs from the index's dimension.
    #[error("vector has dimension {got}, expected {expected}")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The length of the vector that was passed.
        got: usize,
    },
    /// A vector component is NaN or infinite.
    #[error("vector component {index} is not finite ({value})")]
    NonFiniteComponent {
        /// Position of the first offending component.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// `k` was zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// An index parameter is out of its accepted range.
    #[error("invalid index parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name (`m`, `ef_construction`, `dim`, ...).
        name: &'static str,
        /// The rejected value.
        value: u64,
        /// The accepted range, in words.
        reason: &'static str,
    },
    /// A row id was inserted twice into the same segment without deleting it first.
    #[error("row id {0} is already present in this segment")]
    DuplicateRowId(u64),
    /// An id list and a vector buffer passed to a bulk call disagree in length.
    #[error("bulk input mismatch: {rows} row ids but {values} values for dimension {dim}")]
    BulkLengthMismatch {
        /// Number of row ids.
        rows: usize,
        /// Number of `f32` values.
        values: usize,
        /// The index's dimension.
        dim: usize,
    },

    // ---- Vector index: capacity --------------------------------------------------------
    /// The segment holds the maximum number of vectors an index can address (`u32` ids).
    #[error("segment is full ({0} vectors)")]
    SegmentFull(usize),

    // ---- Vector index: corruption or bug -----------------------------------------------
    /// Serialized index bytes do not decode: wrong magic, unsupported version, bad checksum,
    /// truncated sections or values out of range.
    #[error("corrupt index bytes: {0}")]
    CorruptIndex(String),

    // ---- Tables: bad input -------------------------------------------------------------
    /// No table with this name.
    #[error("table \"{0}\" does not exist")]
    UnknownTable(String),
    /// `CREATE TABLE` of a name already taken.
    #[error("table \"{0}\" already exists")]
    TableExists(String),
    /// No column with this name in the table.
    #[error("column \"{column}\" of table \"{table}\" does not exist")]
    UnknownColumn {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
    /// The schema is not acceptable.
    #[error(transparent)]
    Schema(#[from] crate::catalog::SchemaError),
    /// `INSERT` of a primary key already present (the whole batch is rejected).
    #[error("duplicate key value violates primary key of \"{table}\": ({key})")]
    DuplicateKey {
        /// Table name.
        table: String,
        /// The key, displayed.
        key: String,
    },
    /// A value does not fit its column (type, NULL in a non-null column, wrong dimension, NaN...).
    #[error("invalid data for column \"{column}\": {reason}")]
    InvalidData {
        /// Column name.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// A write or DDL could not be accepted for a reason other than its data (too large a batch,
    /// a read-only database, an engine that stopped after a storage failure...).
    #[error("operation not possible: {0}")]
    NotPossible(String),
    /// An index name already in use, or an index to drop that does not exist.
    #[error("index \"{0}\" {1}")]
    Index(String, &'static str),

    // ---- Tables: storage and corruption ------------------------------------------------
    /// The storage layer failed (I/O, lock, RocksDB). Shared so the error stays `Clone`.
    #[error(transparent)]
    Storage(#[from] SharedStorageError),
    /// Engine bytes in the store or the WAL do not decode.
    #[error("corrupt engine data: {0}")]
    Corrupt(String),
}

/// A storage error behind an `Arc`, so [`EngineError`] stays `Clone + PartialEq` (compared by
/// message).
#[derive(Debug, Clone)]
pub struct SharedStorageError(pub std::sync::Arc<vela_storage::StorageError>);

impl std::fmt::Display for SharedStorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedStorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl PartialEq for SharedStorageError {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl From<vela_storage::StorageError> for EngineError {
    fn from(e: vela_storage::StorageError) -> Self {
        EngineError::Storage(SharedStorageError(std::sync::Arc::new(e)))
    }
}
