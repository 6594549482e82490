//! The engine over the real storage layer (RocksDB store + WAL).
