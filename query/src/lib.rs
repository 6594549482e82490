//! Vela's SQL front end (not built yet; see issue "SQL front end and the `vela` shell").
//!
//! This crate will hold the pipeline that turns pgvector-dialect SQL into Arrow record batches:
//! parse (sqlparser, PostgreSQL dialect) -> bind against the engine's catalog -> logical plan ->
//! physical operators -> execute. It depends only on `vela-engine`.
