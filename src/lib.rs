//! Vela: an embedded vector database that speaks pgvector's SQL.
//!
//! This facade crate will carry the public API (`Database`, `Connection`) and the `vela` binary.
//! Today the storage layer is built; the engine, SQL and shell follow (see README.md).

pub use vela_storage as storage;

/// The version of this build of Vela.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
