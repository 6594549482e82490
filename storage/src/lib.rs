//! Vela's storage layer: the write-ahead log (`wal`) and the RocksDB segment store (`store`).
//!
//! Everything durable lives here. The WAL is the source of truth for recent writes; the segment
//! store holds the rest and records the LSN up to which it has been flushed, so recovery replays
//! the WAL from there (see ARCHITECTURE.md, "Durability").

pub mod backup;
pub mod error;
pub mod layout;
pub mod lock;
pub mod store;
pub mod wal;

pub use error::{Result, StorageError};
pub use layout::DataDir;
pub use lock::DirLock;
pub use store::{Cf, SegmentStore, StoreBatch, StoreIter, StoreOptions};
pub use wal::{Durability, Lsn, Wal, WalOptions, WalReader};
