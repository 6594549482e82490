//! The embedded API: [`Database`], a cheap-to-clone, thread-safe handle on one data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;
use vela_engine::storage_impl::{open_storage, OpenedStorage};
use vela_engine::{
    arrow_conv, Engine, EngineMetrics, EngineOptions, Key, Op, Row, RowPredicate, SearchHit,
    SearchRequest, TableSchema, VectorIndexDef, WriteOutcome,
};
use vela_storage::{DataDir, Durability, StoreOptions, WalOptions};

use crate::error::{Error, Result};

/// How a database is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// When an acknowledged write is durable: `Full` (fsync before the ack, the default),
    /// `Normal` (fsync within ~10 ms) or `Off` (survives a process crash, not a power loss).
    pub durability: Durability,
    /// Engine settings (seal threshold, default shard count, checkpoint period, optimizer).
    pub engine: EngineOptions,
    /// Segment store (RocksDB) settings.
    pub store: StoreOptions,
    /// Backups kept by [`Database::backup`] (older ones are removed).
    pub keep_backups: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Full,
            engine: EngineOptions::default(),
            store: StoreOptions::default(),
            keep_backups: 3,
        }
    }
}

struct Inner {
    engine: Engine,
    storage: OpenedStorage,
    options: Options,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.engine.close() {
            tracing::warn!(error = %e, "closing the database failed; the WAL covers it");
        }
    }
}

/// An open Vela database. `Send + Sync`; clones share one database (an `Arc` inside), and it
/// closes (with a checkpoint) when the last clone is dropped.
///
/// ```
/// use std::sync::Arc;
/// use arrow::array::{Array, FixedSizeListArray, Int64Array, StringArray};
/// use arrow::datatypes::{DataType, Field, Float32Type, Schema};
/// use arrow::record_batch::RecordBatch;
/// use vela::{ColumnDef, ColumnType, Database, Key, Metric, ScalarType, TableSchema, VectorIndexDef};
///
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path())?;
/// db.create_table(TableSchema {
///     name: "docs".into(),
///     columns: vec![
///         ColumnDef { name: "id".into(), ty: ColumnType::Scalar(ScalarType::BigInt), nullable: false },
///         ColumnDef { name: "title".into(), ty: ColumnType::Scalar(ScalarType::Text), nullable: true },
///         ColumnDef { name: "embedding".into(), ty: ColumnType::Vector { dim: 3 }, nullable: true },
///     ],
///     primary_key: 0,
///     shards: 0, // 0: one per core
///     indexes: vec![VectorIndexDef {
///         name: "docs_embedding_idx".into(),
///         column: "embedding".into(),
///         metric: Metric::L2,
///         hnsw: Default::default(),
///     }],
/// })?;
///
/// let vectors = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
///     [Some([1.0, 0.0, 0.0].map(Some)), Some([0.0, 1.0, 0.0].map(Some))],
///     3,
/// );
/// let batch = RecordBatch::try_new(
///     Arc::new(Schema::new(vec![
///         Field::new("id", DataType::Int64, false),
///         Field::new("title", DataType::Utf8, true),
///         Field::new("embedding", vectors.data_type().clone(), true),
///     ])),
///     vec![
///         Arc::new(Int64Array::from(vec![1, 2])),
///         Arc::new(StringArray::from(vec!["one", "two"])),
///         Arc::new(vectors),
///     ],
/// )?;
/// db.insert("docs", &batch)?;
///
/// let hits = db.search("docs", "embedding", &[0.9, 0.1, 0.0], 1, None)?;
/// assert_eq!(hits[0].row.key(), Key::BigInt(1));
/// assert!(db.get("docs", 2)?.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.inner.storage.dir.root())
            .finish()
    }
}

impl Database {
    /// Opens (creating if needed) the database in directory `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        Database::open_with(path, Options::default())
    }

    /// Opens (creating if needed) the database in `path`: locks the directory (a second opener
    /// gets `55006`), opens the store and the WAL, loads the catalog and segments, replays the
    /// WAL.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Database> {
        let span = tracing::info_span!("open", path = %path.as_ref().display());
        let _enter = span.enter();
        let wal = WalOptions::default().with_durability(options.durability);
        let storage = open_storage(path.as_ref(), wal, &options.store, true)?;
        let engine = Engine::open(
            storage.log.clone(),
            storage.store.clone(),
            options.engine.clone(),
        )?;
        Ok(Database {
            inner: Arc::new(Inner {
                engine,
                storage,
                options,
            }),
        })
    }

    /// The engine underneath (for the SQL layer).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        self.inner.storage.dir.root()
    }

    /// Changes the durability of later writes (`SET synchronous = full | normal | off`).
    pub fn set_durability(&self, durability: Durability) {
        self.inner.storage.log.0.set_durability(durability);
    }

    /// Creates a table. `shards: 0` means one shard per core.
    pub fn create_table(&self, schema: TableSchema) -> Result<()> {
        Ok(self.inner.engine.create_table(schema)?)
    }

    /// Drops a table and its rows.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        Ok(self.inner.engine.drop_table(name)?)
    }

    /// Adds an HNSW index on a vector column (built over the existing rows).
    pub fn create_index(&self, table: &str, def: VectorIndexDef) -> Result<()> {
        Ok(self.inner.engine.create_index(table, def)?)
    }

    /// Drops an index by name.
    pub fn drop_index(&self, table: &str, name: &str) -> Result<()> {
        Ok(self.inner.engine.drop_index(table, name)?)
    }

    /// A table's schema.
    pub fn schema(&self, table: &str) -> Result<TableSchema> {
        Ok(self.inner.engine.schema(table)?)
    }

    /// Every table's schema.
    pub fn tables(&self) -> Vec<TableSchema> {
        self.inner.engine.tables()
    }

    fn rows_op(
        &self,
        table: &str,
        batch: &RecordBatch,
        op: fn(Vec<vela_engine::Value>) -> Op,
    ) -> Result<WriteOutcome> {
        let schema = self.inner.engine.schema(table)?;
        let rows = arrow_conv::batch_to_rows(&schema, batch)?;
        self.write(table, rows.into_iter().map(op).collect())
    }

    /// Inserts the rows of `batch` (columns by name; vectors as `FixedSizeList<Float32>`), all
    /// or nothing: a key already present rejects the whole batch (`23505`).
    pub fn insert(&self, table: &str, batch: &RecordBatch) -> Result<WriteOutcome> {
        self.rows_op(table, batch, Op::Insert)
    }

    /// Inserts or replaces the rows of `batch`.
    pub fn upsert(&self, table: &str, batch: &RecordBatch) -> Result<WriteOutcome> {
        self.rows_op(table, batch, Op::Upsert)
    }

    /// Replaces the rows of `batch` whose keys exist (others are ignored).
    pub fn update(&self, table: &str, batch: &RecordBatch) -> Result<WriteOutcome> {
        self.rows_op(table, batch, Op::Update)
    }

    /// Deletes the rows whose keys are in `batch`'s primary-key column.
    pub fn delete(&self, table: &str, batch: &RecordBatch) -> Result<WriteOutcome> {
        let schema = self.inner.engine.schema(table)?;
        let keys = arrow_conv::batch_to_keys(&schema, batch)?;
        self.delete_keys(table, keys)
    }

    /// Deletes rows by key.
    pub fn delete_keys(&self, table: &str, keys: Vec<Key>) -> Result<WriteOutcome> {
        self.write(table, keys.into_iter().map(Op::Delete).collect())
    }

    /// Applies a batch of typed operations atomically (the SQL layer's entry point).
    pub fn write(&self, table: &str, ops: Vec<Op>) -> Result<WriteOutcome> {
        Ok(self.inner.engine.write(table, ops)?)
    }

    /// Applies typed operations on several tables as one transaction: one WAL entry, all or
    /// nothing (a duplicate key in any table rejects every table's operations), visible to
    /// readers all at once. One outcome per distinct table, in order of first appearance.
    pub fn write_many(&self, batches: Vec<(String, Vec<Op>)>) -> Result<Vec<WriteOutcome>> {
        Ok(self.inner.engine.write_many(batches)?)
    }

    /// The `k` rows nearest to `query` in vector column `column` (the index's metric; L2
    /// without an index), optionally only rows passing `filter`.
    pub fn search(
        &self,
        table: &str,
        column: &str,
        query: &[f32],
        k: usize,
        filter: Option<RowPredicate<'_>>,
    ) -> Result<Vec<SearchHit>> {
        let mut req = SearchRequest::new(column, query, k);
        req.filter = filter;
        self.search_with(table, &req)
    }

    /// A search with every knob (`ef`, metric, exact).
    pub fn search_with(&self, table: &str, req: &SearchRequest<'_>) -> Result<Vec<SearchHit>> {
        Ok(self.inner.engine.search(table, req)?)
    }

    /// The row with this primary key.
    pub fn get(&self, table: &str, key: impl Into<Key>) -> Result<Option<Arc<Row>>> {
        Ok(self.inner.engine.get(table, &key.into())?)
    }

    /// Every live row passing `filter`, ordered by primary key.
    pub fn scan(&self, table: &str, filter: Option<RowPredicate<'_>>) -> Result<Vec<Arc<Row>>> {
        Ok(self.inner.engine.scan(table, filter)?)
    }

    /// [`Database::scan`] for a reader of `columns` only: other columns of a returned row may
    /// read NULL where the row leaves its vector to an index (nothing is copied for them).
    /// `filter` sees whole rows; `filter_columns`, the columns it reads if known, spares it
    /// copies.
    pub fn scan_columns(
        &self,
        table: &str,
        filter: Option<RowPredicate<'_>>,
        filter_columns: Option<&[usize]>,
        columns: &[usize],
    ) -> Result<Vec<Arc<Row>>> {
        Ok(self
            .inner
            .engine
            .scan_columns(table, filter, filter_columns, columns)?)
    }

    /// Rows as an Arrow batch with the table's schema.
    pub fn rows_to_batch(&self, table: &str, rows: &[Arc<Row>]) -> Result<RecordBatch> {
        let schema = self.inner.engine.schema(table)?;
        Ok(arrow_conv::rows_to_batch(&schema, rows)?)
    }

    /// Persists segments, flushes the store and drops WAL files below the flushed LSN.
    pub fn checkpoint(&self) -> Result<u64> {
        Ok(self.inner.engine.checkpoint()?)
    }

    /// Counters and latency histograms per table and shard.
    pub fn metrics(&self) -> EngineMetrics {
        self.inner.engine.metrics()
    }

    /// Writes a backup into a new directory `backup-<unix ms>` under `dir` (a RocksDB
    /// checkpoint of the store plus the WAL tail), removes all but the newest
    /// `Options::keep_backups` there, and returns the backup's path. Open a backup with
    /// [`Database::open`] like any database (copy it first to keep it pristine).
    pub fn backup(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let span = tracing::info_span!("backup", dir = %dir.as_ref().display());
        let _enter = span.enter();
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| vela_storage::StorageError::Io {
            op: "create backup directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        let mut dest = dir.join(format!("backup-{stamp:016}"));
        let mut n = 0;
        while dest.exists() {
            n += 1;
            dest = dir.join(format!("backup-{stamp:016}-{n}"));
        }
        let layout = DataDir::new(&dest);
        layout.create()?;
        self.inner.engine.backup_store(&layout.store_dir())?;
        self.inner.storage.log.0.backup_to(&layout.wal_dir())?;
        self.prune_backups(dir)?;
        Ok(dest)
    }

    fn prune_backups(&self, dir: &Path) -> Result<()> {
        let io = |source| vela_storage::StorageError::Io {
            op: "list backups in",
            path: dir.to_path_buf(),
            source,
        };
        let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("backup-"))
            })
            .collect();
        backups.sort();
        let keep = self.inner.options.keep_backups.max(1);
        while backups.len() > keep {
            let old = backups.remove(0);
            std::fs::remove_dir_all(&old).map_err(|source| vela_storage::StorageError::Io {
                op: "remove old backup",
                path: old.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Checkpoints and closes (also done when the last clone is dropped). Other clones get
    /// `55000` on later writes.
    pub fn close(&self) -> Result<()> {
        Ok(self.inner.engine.close()?)
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::other(e)
    }
}
