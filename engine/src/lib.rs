//! Vela's engine: tables split into shards, shards into segments, each segment carrying an HNSW
//! vector index. It depends only on `vela-storage`.
