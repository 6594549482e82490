//! Vela's SQL front end: pgvector's dialect parsed, bound, planned and executed into Arrow.
//!
//! ```text
//! SQL text ──parser (sqlparser + VelaDialect: <->, <=>, <#>, <+>)──▶ AST
//!   ──statement / select / dml / ddl (bind against the catalog via Engine::table)──▶ Bound
//!   ──plan::optimizer (filter pushdown, PK point lookup, ORDER BY distance LIMIT k ⇒ index)──▶ Plan
//!   ──exec (rows through Engine::scan / get / search)──▶ rows ──exec::batch──▶ RecordBatch
//! ```
//!
//! `COPY t FROM 'file'` / `COPY ... TO 'file'` ([`copy`]) stream Parquet and CSV through
//! `vela-datasets`, one engine write (one WAL entry) per batch; see that module for what an
//! interrupted COPY leaves. `ORDER BY ... LIMIT k` keeps a bounded Top-N, and a distance ORDER BY
//! on a vector column without a matching index runs as the engine's exact top-k.
//!
//! The query layer sees the database only through the [`Engine`] trait ([`engine`]); the facade
//! implements it for the real engine and [`MemoryEngine`] implements it for tests. A
//! [`Session`] is the entry point: `execute(sql, params)` returns one [`StatementResult`] per
//! statement (Arrow batches and a psql-style tag); it caches plans by statement text and, for
//! statements carrying long string literals (a query vector written into the SQL), by the text
//! with the literals taken out ([`autoparam`]). Every error is a [`QueryError`] with a SQLSTATE
//! code; no input panics.

pub mod autoparam;
pub mod copy;
pub mod ddl;
pub mod dialect;
pub mod dml;
pub mod engine;
pub mod error;
pub mod exec;
pub mod expr;
pub mod memory;
pub mod parser;
pub mod plan;
pub mod select;
pub mod session;
pub mod statement;
pub mod tokens;
pub mod types;
pub mod vector;

pub use copy::ProgressFn;
pub use engine::{
    Engine, Row, RowPredicate, SearchHit, SearchRequest, Synchronous, TableWrite, WriteOp,
};
pub use error::{QueryError, Result};
pub use exec::batch::cell_text;
pub use memory::MemoryEngine;
pub use session::{PreparedStatement, Session, StatementResult};
pub use vela_engine::catalog::{Key, Value};
