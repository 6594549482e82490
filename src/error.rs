//! The public error type: one enum wrapping each crate's error, with a stable SQLSTATE-like code
//! ([`Error::code`]) so applications and the PostgreSQL wire protocol can tell bad input from a
//! failed disk from a corrupt database.

use vela_engine::EngineError;
use vela_storage::StorageError;

/// Every error Vela's public API returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the engine (tables, rows, vectors, the index).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// From the storage layer (WAL, segment store, directory lock, backups).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An argument of the embedded API that cannot be honoured.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias of the public API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn storage_code(e: &StorageError) -> &'static str {
    match e {
        StorageError::Locked { .. } => "55006",
        StorageError::Corrupt { .. }
        | StorageError::UnsupportedFormatVersion { .. }
        | StorageError::InvalidBackup { .. } => "XX001",
        StorageError::MissingDirectory { .. }
        | StorageError::NotADirectory { .. }
        | StorageError::DirectoryNotEmpty { .. } => "58P01",
        StorageError::InvalidArgument(_) => "22023",
        StorageError::WalPoisoned { .. } => "55000",
        _ => "58030",
    }
}

fn engine_code(e: &EngineError) -> &'static str {
    match e {
        EngineError::UnknownTable(_) => "42P01",
        EngineError::TableExists(_) => "42P07",
        EngineError::UnknownColumn { .. } => "42703",
        EngineError::DuplicateKey { .. } => "23505",
        EngineError::Schema(_) => "42P16",
        EngineError::Index(_, what) if what.contains("exists") && !what.contains("not") => "42710",
        EngineError::Index(..) => "42704",
        EngineError::InvalidData { .. }
        | EngineError::DimensionMismatch { .. }
        | EngineError::NonFiniteComponent { .. }
        | EngineError::BulkLengthMismatch { .. } => "22000",
        EngineError::ZeroK | EngineError::InvalidParameter { .. } => "22023",
        EngineError::SegmentFull(_) => "54000",
        EngineError::NotPossible(_) => "55000",
        EngineError::Storage(s) => storage_code(&s.0),
        EngineError::Corrupt(_) | EngineError::CorruptIndex(_) => "XX001",
        _ => "XX000",
    }
}

impl Error {
    /// A stable SQLSTATE-like code: `42P01` unknown table, `42P07` table exists, `42703`
    /// unknown column, `23505` duplicate key, `22000` data exception (type, NULL, dimension,
    /// NaN), `22023` invalid parameter, `42P16` invalid table definition, `42704`/`42710`
    /// unknown/duplicate index, `54000` limit exceeded, `55000` not possible in this state
    /// (closed, or writes stopped after a storage failure), `55006` database locked by another
    /// process, `58030` I/O error, `58P01` missing directory, `XX001` corruption, `XX000`
    /// internal error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Engine(e) => engine_code(e),
            Error::Storage(e) => storage_code(e),
            Error::InvalidArgument(_) => "22023",
        }
    }
}
