//! Vela's engine: tables split into shards, shards into segments, each segment carrying an HNSW
//! vector index. It depends only on `vela-storage`.

pub mod error;
pub mod index;

pub use error::{EngineError, Result};
pub use index::{HnswIndex, HnswParams, Metric, RowFilter};
