//! Vela's engine: tables split into shards, shards into segments, each segment carrying an HNSW
//! vector index. It depends only on `vela-storage`.
//!
//! # Public API (for the facade and the SQL layer)
//!
//! - [`Engine`]: `open(log, store, EngineOptions)`, `create_table(TableSchema)`,
//!   `drop_table`, `create_index(table, VectorIndexDef)`, `drop_index`,
//!   `write(table, Vec<Op>) -> WriteOutcome` (one atomic batch: [`Op::Insert`] (duplicate key
//!   rejects the batch), [`Op::Upsert`], [`Op::Update`] (no-op if absent), [`Op::Delete`]),
//!   `write_many(Vec<(table, Vec<Op>)>) -> Vec<WriteOutcome>` (one transaction over several
//!   tables: ONE WAL entry, one store batch, published together; all or nothing),
//!   `search(table, &SearchRequest) -> Vec<SearchHit>`, `get(table, &Key) -> Option<Arc<Row>>`,
//!   `scan(table, Option<RowPredicate>) -> Vec<Arc<Row>>` (ordered by primary key),
//!   `schema`, `tables`, `row_count`, `checkpoint`, `backup_store`, `metrics`,
//!   `run_maintenance`, `link_tails`, `close`.
//! - Catalog types in [`catalog`]: [`TableSchema`], [`ColumnDef`], [`ColumnType`],
//!   [`ScalarType`], [`Value`], [`Key`], [`VectorIndexDef`], [`HnswConfig`].
//! - Arrow conversion in [`arrow_conv`]: `RecordBatch` -> rows and rows -> `RecordBatch`.
//! - The storage seam in [`backend`]: [`LogBackend`], [`StoreBackend`] with in-memory
//!   implementations ([`MemLog`], [`MemStore`]) and the `vela-storage` ones ([`open_storage`]).
//!
//! # Layers
//!
//! ```text
//! Engine ── catalog: name -> Arc<Table>            (engine.rs)
//!   │  write: validate -> WAL append (group commit) -> turnstile (LSN order)
//!   │         -> plan (dup keys) -> vectors into appendable graphs or tail (invisible)
//!   │         -> one store batch (rows + applied LSN) -> publish under table write lock
//!   ├─ Table ── RwLock<Vec<Shard>>                  (table.rs, search.rs)
//!   │    └─ Shard: key -> Arc<Row>, row_id -> Arc<Row>, appendable + sealed Segments
//!   │         └─ Segment: one HnswIndex per indexed vector column, its linked row ids
//!   │           and its unindexed tail (searched exactly until linked)   (segment.rs)
//!   └─ background: persist sealed segments, optimizer (optimizer.rs), checkpoints;
//!      linker: unindexed tails -> graphs
//! ```
//!
//! # Invariants
//!
//! - **Order**: WAL entries are applied in strict LSN order (the turnstile); application is
//!   deterministic given the state, rejections included (a duplicate key on `INSERT` rejects the
//!   whole batch, at apply time; in a multi-table entry, the whole entry), so replay rebuilds
//!   exactly the same rows.
//! - **Durable when**: an acknowledged batch is in the WAL (fsynced under `full`); its rows are
//!   in the store's `rows` column family, which survives a crash as a prefix of its writes and
//!   carries the engine's applied-LSN marker, so recovery replays the WAL from marker + 1.
//!   Catalog entries live in the same column family, manifests with their blob chunks in `index`.
//! - **Visible when**: a batch's rows become visible together, when the row maps are swapped
//!   under the table's write lock (a multi-table entry: under all its tables' write locks at
//!   once, taken in table-id order); readers hold one table's read lock for a whole search or
//!   scan, and never two tables' locks at once.
//!   Vectors enter the appendable graphs before that under ids readers ignore.
//! - **Segments**: a row version (`row_id = lsn << 20 | position`) is live iff the shard's key
//!   map points at it; a segment's other ids are tombstones. On load, liveness is recomputed
//!   from the rows, and rows not covered by a persisted segment go into the appendable one.
//! - **Vectors held once**: a live row keeps no copy of a vector of a `Table::aside` column
//!   (indexed with L2, inner product or L1, whose graphs store vectors as given) when a
//!   segment's graph, appendable or sealed, has a node for the version: rows loaded from
//!   sealed segments come that way, and each optimizer pass gives the rows linked since
//!   lighter versions (`Table::release_vectors`: a per-segment watermark into its linked ids;
//!   picked under the read lock, swapped under the write lock in chunks of 4,096); versions in
//!   a tail keep theirs until linked. The row reads NULL there, and every read (get, scan,
//!   search hits, filters, exact search, the optimizer, index DDL) fills it in from the graph
//!   (`Shard::full_row`), bit for bit; a filter may fetch from the graph its own search holds
//!   read-locked while a writer waits to append to it (`HnswIndex::vector_into` never waits
//!   behind a writer). Cosine graphs hold vectors as given too (one inverse norm per node),
//!   except one loaded from a format-1 blob (normalised vectors): rows linked there keep theirs. On disk nothing changes: the `rows` column family holds every vector.
//! - **Unindexed tails**: a segment's versions are linked (graph nodes) or in its tail. Replay
//!   (`apply_writes` in replay mode: the replay buffer is set), loading rows no blob covers,
//!   and live writes that fit `EngineOptions::tail_rows` per shard put new versions in the
//!   appendable segment's tail: visible when published like any version, found by exact
//!   search. The background linker (own thread and rayon pool) links tails in chunks with
//!   `insert_batch`, without the table lock; a version is in the graph before it leaves the
//!   tail and searches scan tails before graphs, so none is ever missed. Versions dead by then
//!   get no node. A live write over the limit links its own vectors inline (back-pressure), so
//!   tails grow past the limit only by replay/load, i.e. by what was written since the last
//!   checkpoint. Tail versions count in a segment's length, so sealing decides as before.
//! - **Replay** applies entries with the one apply function (`apply_writes`) in replay mode:
//!   store writes are gathered into large batches that a second thread writes in LSN order
//!   (a crash during replay still leaves a prefix), and no graph is built.
//! - **Checkpoint**: persist unpersisted segments (appendable ones as snapshots, under the
//!   turnstile), sync the WAL, flush the store at the applied LSN, drop WAL files below it.
//!   A blob covers its segment's linked versions only; tail versions are uncovered rows, which
//!   a load puts into tails again. The background persists a sealed segment only once its
//!   tail is empty (a checkpoint may write a partial blob; it is rewritten once linked).

pub mod arrow_conv;
pub mod backend;
pub mod catalog;
pub mod codec;
mod engine;
pub mod error;
pub mod index;
pub mod metrics;
mod optimizer;
mod rowmap;
pub mod search;
mod segment;
pub mod storage_impl;
pub mod table;

pub use backend::{Cf, LogBackend, MemLog, MemStore, StoreBackend, StoreWrite};
pub use catalog::{
    ColumnDef, ColumnType, HnswConfig, Key, KeyRef, ScalarType, SchemaError, TableSchema, Value,
    VectorIndexDef,
};
pub use codec::Op;
pub use engine::{Engine, EngineOptions};
pub use error::{EngineError, Result};
pub use index::{HnswIndex, HnswParams, Metric, RowFilter};
pub use metrics::{EngineMetrics, LatencySummary, ShardMetrics, TableMetrics};
pub use search::{RowPredicate, SearchHit, SearchRequest};
pub use storage_impl::open_storage;
pub use table::{Row, WriteOutcome, MAX_BATCH_OPS};
