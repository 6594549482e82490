//! The storage layer's one error type.
//!
//! Variants for bad input or environment (a locked or missing directory, a bad argument) are kept
//! apart from variants that mean corruption or a failed device, so that callers (and, at the
//! facade, SQLSTATE codes) can tell "you asked for something wrong" from "the disk let us down".

use std::path::PathBuf;

/// Errors from the write-ahead log and the segment store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O operation on a named file or directory failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The data directory is held by another process (or another handle in this one).
    #[error("database is locked by pid {pid}: {}", path.display())]
    Locked { path: PathBuf, pid: u32 },

    /// The data directory does not exist and the caller asked not to create it.
    #[error("database directory does not exist: {}", path.display())]
    MissingDirectory { path: PathBuf },

    /// A path that must be a directory (a data directory, the segment store, a backup) is a
    /// file or something else.
    #[error("not a directory: {}", path.display())]
    NotADirectory { path: PathBuf },

    /// A backup or restore was asked to write into a directory that already holds files.
    #[error("refusing to write into non-empty directory {}", path.display())]
    DirectoryNotEmpty { path: PathBuf },

    /// A directory is not a complete Vela backup (no manifest: the backup was interrupted; or
    /// a manifest that does not match the files next to it).
    #[error("invalid backup {}: {reason}", path.display())]
    InvalidBackup { path: PathBuf, reason: String },

    /// A file holds bytes that cannot be what Vela wrote (outside the WAL's torn tail, which
    /// recovery truncates silently).
    #[error("corrupt file {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },

    /// RocksDB failed to open or to perform an operation.
    #[error("RocksDB error on {}: {source}", path.display())]
    RocksDb {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },

    /// An fsync failed. Every writer that was waiting on it gets this error and none of their
    /// entries count as acknowledged; the log refuses further appends until it is reopened.
    #[error("fsync of {} failed: {message}", path.display())]
    SyncFailed { path: PathBuf, message: String },

    /// The WAL in this directory refuses appends because an earlier write or fsync failed
    /// (after a failed fsync the page cache can no longer be trusted); reopen it to recover.
    #[error("WAL {} refuses appends after an earlier failure ({message}); reopen it", path.display())]
    WalPoisoned { path: PathBuf, message: String },

    /// A WAL reader asked for an LSN that is no longer (or not yet) in the WAL in this directory.
    #[error("LSN {requested} is not available in WAL {} (oldest retained: {oldest})", path.display())]
    WalLsnUnavailable {
        path: PathBuf,
        requested: u64,
        oldest: u64,
    },

    /// A file was written by a format version this build cannot read.
    #[error("{} has format version {found}; this build reads version {supported}", path.display())]
    UnsupportedFormatVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The caller passed an argument that cannot be honoured.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias for the storage layer.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
