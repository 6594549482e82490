//! The engine: catalog, write path (WAL -> apply turnstile -> store -> publish), recovery,
//! checkpoints and the background threads (worker: persist sealed segments, optimizer,
//! checkpoints; linker: unindexed tails into graphs).
//!
//! Write path: a batch (one table's ops, or a transaction's ops on several tables via
//! `write_many`, logged as one `WriteMany` entry) is validated against the schemas, encoded and appended to the WAL as one
//! entry (the WAL groups concurrent appends into one fsync; no engine lock is held meanwhile).
//! Then the writer waits its turn: entries are applied in strict LSN order (the writer holding
//! LSN `L` waits until `L - 1` is applied). Applying plans the batch against the current state
//! (a duplicate key on `INSERT` rejects the whole batch, deterministically, so WAL replay makes
//! the same decision), adds new versions to the appendable segments (invisible to readers):
//! into their unindexed tails while the shard's tails stay within `tail_rows` (always during
//! replay), else into their graphs;
//! writes one atomic store batch (rows + the applied LSN marker), and publishes the row-map
//! changes under the write locks of every table it touches (taken in table-id order).
//!
//! A storage failure after the WAL append leaves memory and store possibly behind the WAL: the
//! engine then refuses further writes (it is "poisoned") until reopened; reopening replays the
//! WAL and every acknowledged batch is back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use rayon::prelude::*;

use crate::backend::{Cf, LogBackend, PackedOps, StoreBackend, StoreWrite};
use crate::catalog::{Key, TableSchema, Value, VectorIndexDef};
use crate::codec::{decode_record, encode_record, from_json, get_row_aside, LogRecord, Op, Reader};
use crate::error::{EngineError, Result};
use crate::metrics::{inc, load, EngineMetrics, ShardMetrics, TableMetrics};
use crate::search::{RowPredicate, SearchHit, SearchRequest};
use crate::segment::Segment;
use crate::table::{
    publish_all, shard_of_encoded, validate_key, validate_ops, Change, Row, RowIdMap, Shard, Table,
    WriteOutcome,
};

/// Store key (in `rows`) of the applied-LSN marker; table ids start at 1, so prefix 0 is free.
const APPLIED_KEY: &[u8] = b"\0\0\0\0\0\0\0\0applied";
/// Prefix (in `rows`) of the catalog entries, followed by the table id (BE).
const CATALOG_PREFIX: &[u8] = b"\0\0\0\0\0\0\0\0catalog";

fn catalog_key(table_id: u64) -> Vec<u8> {
    let mut k = CATALOG_PREFIX.to_vec();
    k.extend_from_slice(&table_id.to_be_bytes());
    k
}
/// A persisted segment as scanned: its manifest and the blob gathered from its chunks.
struct Manifest {
    seg: u64,
    shard: u32,
    sealed: bool,
    /// Number of the blob's first chunk (0 or [`CHUNK_SLOT`]).
    first: u32,
    chunks: u32,
    blob: Vec<u8>,
    /// Chunks gathered so far.
    got: u32,
}

/// Default size of one segment blob chunk in the `index` column family. Each chunk passes
/// whole through a RocksDB write batch, a memtable, a flush's block builder and its Zstd
/// buffer, so the chunk size multiplies into a segment write's memory: at 4 MiB that was ~60
/// MiB for a moment at every sealed 100,000-row segment (the peak of a 1M-row import); at 1
/// MiB ~30 MiB less, with the same CPU.
const CHUNK_BYTES: usize = 1 << 20;
/// Largest chunk a load expects when sizing a blob from its manifest (`blob_chunk_bytes` is
/// far below it in practice).
const BLOB_CHUNK_MAX: u64 = 1 << 30;
/// A segment's chunk numbers form two slots, `[0, CHUNK_SLOT)` and `[CHUNK_SLOT, 2^32)`: a new
/// blob is written into the slot the blob in force does not use, its manifest last.
const CHUNK_SLOT: u32 = 1 << 31;
/// Store operations gathered per write during replay (a few MiB with 128-d vectors: large
/// enough that per-write overhead vanishes, small enough to stay in cache and reuse memory).
const REPLAY_BATCH_OPS: usize = 2_048;
/// Replay decodes WAL entries on a second thread in chunks of about this many payload bytes...
const DECODED_CHUNK_BYTES: usize = 1 << 20;
/// ... at most this many chunks ahead of the applying thread (bounded memory).
const DECODED_AHEAD: usize = 4;
/// Tail versions the linker links per step (one `insert_batch`): large enough to keep every
/// core busy, small enough that a checkpoint or a close waits little for it.
const LINK_CHUNK: usize = 8_192;
/// Change lists up to this capacity are kept for the next entry ([`ApplyScratch`]); a larger
/// batch's list is freed rather than held for good.
const SPARE_CHANGES_MAX: usize = 4_096;
/// Most drained operation lists of replayed entries [`ApplyScratch`] gathers between two
/// decoded chunks (more: freed where they are, as without the hand-back).
const SPENT_MAX: usize = 8_192;

/// A chunk of decoded WAL entries, from the replay's reading thread to the applying one.
type Decoded = Vec<(u64, Result<LogRecord>)>;

/// Lists [`Inner::apply_writes`] reuses from entry to entry (it runs under the apply
/// turnstile, one call at a time; a caller that finds the lists taken just starts empty
/// ones): an entry's tables with their operations, the planned changes, spare change lists.
/// Empty between calls, with their memory kept, so an entry allocates nothing but its new
/// row versions and its outcome list.
#[derive(Default)]
struct ApplyScratch {
    groups: Vec<(Arc<Table>, Vec<Op>)>,
    planned: Vec<(Arc<Table>, Vec<Change>)>,
    spare: Vec<Vec<Change>>,
    /// During replay, the drained operation lists of the entries applied since the last
    /// decoded chunk: handed back to the reading thread, which allocated them, to be freed
    /// there (a free from another thread cost the applying thread ~300 instructions per
    /// entry in glibc's arenas).
    spent: Vec<Vec<Op>>,
}

impl ApplyScratch {
    /// Empties the lists after an entry, keeping their memory; with `replay`, the drained
    /// operation lists go to `spent`.
    fn recycle(&mut self, replay: bool) {
        for (_, mut changes) in self.planned.drain(..) {
            if changes.capacity() <= SPARE_CHANGES_MAX {
                changes.clear();
                self.spare.push(changes);
            }
        }
        for (_, ops) in self.groups.drain(..) {
            if replay && self.spent.len() < SPENT_MAX {
                self.spent.push(ops);
            }
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Rows after which an appendable segment is sealed.
    pub seal_rows: usize,
    /// Shards of a table whose schema asks for 0 (default: number of cores).
    pub default_shards: u32,
    /// Period of background checkpoints (`None`: only explicit ones and on close).
    pub checkpoint_interval: Option<Duration>,
    /// Period of the background worker (persisting sealed segments, optimizer).
    pub background_interval: Duration,
    /// Run the background worker at all (tests may drive everything by hand).
    pub background: bool,
    /// A sealed segment whose tombstone share passes this is rewritten by the optimizer.
    pub rewrite_tombstone_ratio: f64,
    /// Sealed segments smaller than this are merged together by the optimizer.
    pub merge_below_rows: usize,
    /// Most versions a shard's unindexed tails hold after a live write: a write that fits
    /// leaves its vectors to the background linker (searches cover them exactly meanwhile);
    /// one that does not links them itself before it is acknowledged (back-pressure). WAL
    /// replay always uses the tails. 0: live writes always link inline.
    pub tail_rows: usize,
    /// Size of a segment blob's chunks in the store: a segment is written one chunk per store
    /// write, so this (twice: the chunk and the store's copy) bounds a segment write's memory.
    pub blob_chunk_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            seal_rows: 100_000,
            default_shards: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(2),
            checkpoint_interval: Some(Duration::from_secs(60)),
            background_interval: Duration::from_millis(200),
            background: true,
            rewrite_tombstone_ratio: 0.2,
            merge_below_rows: 20_000,
            tail_rows: 8_192,
            blob_chunk_bytes: CHUNK_BYTES,
        }
    }
}

pub(crate) struct Inner {
    log: Arc<dyn LogBackend>,
    store: Arc<dyn StoreBackend>,
    opts: EngineOptions,
    tables: RwLock<HashMap<String, Arc<Table>>>,
    /// The apply turnstile: the last applied LSN.
    applied: Mutex<u64>,
    turn: Condvar,
    poisoned: Mutex<Option<EngineError>>,
    /// `Some` while replaying: store writes are gathered into large batches.
    replay_buf: Mutex<Option<StoreWrite>>,
    /// `Some` while replaying: gathered batches go, in order, to a thread that writes them to
    /// the store while replay goes on.
    replay_tx: Mutex<Option<std::sync::mpsc::SyncSender<StoreWrite>>>,
    /// An empty packed-ops buffer with room, handed from one replayed entry's store batch to
    /// the next (its rows are copied into the gathered batch): rows are encoded without
    /// regrowing a fresh buffer per entry. Holds no data, so losing it loses nothing.
    replay_scratch: Mutex<PackedOps>,
    /// [`ApplyScratch`]: `apply_writes`' lists, reused.
    apply_scratch: Mutex<ApplyScratch>,
    /// Highest LSN handed to `apply` (lock-free copy for maintenance batches' LSN hint).
    last_lsn: AtomicU64,
    closed: AtomicBool,
    checkpoints: AtomicU64,
    replayed: AtomicU64,
    replay_micros: AtomicU64,
    /// Bumped after every change of the table map (create, drop, index change), so a caller
    /// holding schemas (the SQL plan cache) can tell cheaply that none changed.
    catalog_version: AtomicU64,
    /// Wakes the background threads (new tail rows, close).
    signal: Arc<Signal>,
}

/// A stop flag and a condition variable shared by the engine and its background threads.
#[derive(Default)]
struct Signal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    /// Waits up to `timeout` for a wake-up; returns whether the threads must stop.
    fn wait(&self, timeout: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.cv.wait_for(&mut stopped, timeout);
        }
        *stopped
    }
    /// Sleeps `period` (wake-ups do not shorten it); returns whether the threads must stop.
    fn sleep(&self, period: Duration) -> bool {
        let deadline = Instant::now() + period;
        let mut stopped = self.stopped.lock();
        while !*stopped && !self.cv.wait_until(&mut stopped, deadline).timed_out() {}
        *stopped
    }
    fn wake(&self) {
        self.cv.notify_all();
    }
    fn stop(&self) {
        *self.stopped.lock() = true;
        self.cv.notify_all();
    }
}

/// The background threads (worker: persist sealed segments, optimizer, checkpoints; linker:
/// unindexed tails into graphs). Stopped and joined by [`Engine::close`] or when the last
/// engine handle is dropped; they hold only weak references to the engine.
struct Background {
    signal: Arc<Signal>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Background {
    fn stop(&self) {
        self.signal.stop();
        let handles = std::mem::take(&mut *self.handles.lock());
        let me = std::thread::current().id();
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The engine. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    background: Arc<Background>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("applied_lsn", &*self.inner.applied.lock())
            .finish()
    }
}

fn table_prefix(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

fn manifest_key(table: u64, seg: u64) -> Vec<u8> {
    let mut k = table_prefix(table);
    k.extend_from_slice(&seg.to_be_bytes());
    k
}

fn chunk_key(table: u64, seg: u64, chunk: u32) -> Vec<u8> {
    let mut k = manifest_key(table, seg);
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

/// Deletes a table's segment manifests and blobs (and rows when `rows`) in `batch`: one range
/// per column family (table ids are never reused).
fn delete_table_data(table_id: u64, batch: &mut StoreWrite, rows: bool) {
    let (from, to) = (
        table_prefix(table_id),
        table_prefix(table_id.saturating_add(1)),
    );
    if rows {
        batch.delete_range(Cf::Rows, from.clone(), to.clone());
    }
    batch.delete_range(Cf::Index, from, to);
}

/// The first `N` bytes of a store key.
fn key_bytes<const N: usize>(b: &[u8]) -> Result<[u8; N]> {
    b.get(..N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| EngineError::Corrupt("short store key".into()))
}

fn be_u64(b: &[u8]) -> Result<u64> {
    Ok(u64::from_be_bytes(key_bytes(b)?))
}

fn be_u32(b: &[u8]) -> Result<u32> {
    Ok(u32::from_be_bytes(key_bytes(b)?))
}

/// Number of the first chunk of the blob a manifest names (manifests written before the two
/// chunk slots have 17 bytes and their chunks from 0).
fn manifest_first(v: &[u8]) -> Result<u32> {
    let mut r = Reader::new(v);
    r.bytes(17)?;
    if r.is_empty() {
        Ok(0)
    } else {
        r.u32()
    }
}

/// The sink a segment blob is streamed into: each full chunk goes to the store in a write of
/// its own, under the segment's chunk keys from `first` on (see `persist_segment`).
struct ChunkWriter<'a> {
    store: &'a dyn StoreBackend,
    lsn: u64,
    table: u64,
    seg: u64,
    first: u32,
    /// Number of the next chunk.
    next: u32,
    size: usize,
    buf: Vec<u8>,
    /// The store's error behind an `io::Error` returned to the serializer.
    error: Option<EngineError>,
}

impl ChunkWriter<'_> {
    /// Errors if the slot has no chunk number left for the next chunk.
    fn check_room(&self) -> Result<()> {
        if self.next - self.first >= CHUNK_SLOT - 1 {
            return Err(EngineError::Corrupt(format!(
                "segment {} blob needs more than {} chunks",
                self.seg,
                CHUNK_SLOT - 1
            )));
        }
        Ok(())
    }

    fn emit(&mut self) -> Result<()> {
        self.check_room()?;
        let mut batch = StoreWrite {
            lsn: self.lsn,
            ..StoreWrite::default()
        };
        let key = chunk_key(self.table, self.seg, self.next);
        batch.put(Cf::Index, key, std::mem::take(&mut self.buf));
        self.store.write(batch)?;
        self.next += 1;
        Ok(())
    }
}

impl std::io::Write for ChunkWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(self.size);
        }
        let take = b.len().min(self.size - self.buf.len());
        self.buf.extend_from_slice(&b[..take]);
        if self.buf.len() == self.size {
            if let Err(e) = self.emit() {
                let io = std::io::Error::other(e.to_string());
                self.error = Some(e);
                return Err(io);
            }
        }
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The vectors a load set aside while scanning a shard's rows (see `codec::get_row_aside`).
#[derive(Default)]
struct SetAside {
    /// The vectors, in scan order.
    arena: Vec<f32>,
    /// Per row that set any aside: its id, the offset of its first vector in `arena`, and
    /// which `Table::aside` columns it set aside.
    rows: Vec<(u64, usize, u64)>,
}

/// The result of a load thread (a panic is an error, not a second panic).
fn joined<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join()
        .map_err(|_| EngineError::Corrupt("a load thread panicked".into()))?
}

/// Finishes loading one shard once its segments are in: their versions no longer live are
/// tombstoned, a row keeps the vectors it set aside
/// only where no graph has a node for it (the others stay NULL in the row and are read from
/// the graph: `Shard::full_row`), and rows no persisted segment covers go into the appendable
/// segment's tail (searchable at once, exactly; the linker links them).
fn finish_shard(table: &Table, sh: &mut Shard, sets: Vec<SetAside>) -> Result<()> {
    let segments: Vec<Arc<Segment>> = sh.segments().cloned().collect();
    let mut covered: RowIdMap<usize> = RowIdMap::default();
    covered.reserve(segments.iter().map(|s| s.len()).sum());
    for (i, seg) in segments.iter().enumerate() {
        for id in seg.ids() {
            // A loaded segment's versions that are no longer live are tombstoned.
            if !sh.rows.contains_id(id) {
                seg.delete(id);
            }
            covered.insert(id, i);
        }
    }
    let dims: Vec<usize> = table
        .aside
        .iter()
        .map(|&c| {
            table
                .schema
                .columns
                .get(c)
                .and_then(|d| d.ty.vector_dim())
                .unwrap_or(0)
        })
        .collect();
    for set in sets {
        take_back_vectors(table, sh, &segments, &covered, &dims, set)?;
    }
    let mut missing: Vec<Arc<Row>> = sh
        .rows
        .ids()
        .filter(|id| !covered.contains_key(id))
        .filter_map(|id| sh.rows.get_id(id))
        .collect();
    missing.sort_by_key(|r| r.row_id);
    sh.appendable.append_tail(missing);
    Ok(())
}

/// Gives the rows of one scanned part the vectors they set aside that no graph holds
/// (`covered`: the shard's ids, each with the position of its segment in `segments`).
fn take_back_vectors(
    table: &Table,
    sh: &mut Shard,
    segments: &[Arc<Segment>],
    covered: &RowIdMap<usize>,
    dims: &[usize],
    set: SetAside,
) -> Result<()> {
    for (row_id, offset, mask) in set.rows {
        // Which set-aside vectors no graph holds (bits as in `mask`); usually none.
        let seg = covered.get(&row_id).and_then(|&i| segments.get(i));
        let (mut back, mut at) = (0u64, offset);
        for (i, (&col, &dim)) in table.aside.iter().zip(dims).enumerate().take(64) {
            if mask & (1 << i) != 0 {
                // Only a sealed segment's graph takes the vector: its graph is never
                // write-locked again, so a filter fetching it during a search of that very
                // graph (which holds its read lock) cannot deadlock against an inserter that
                // holds the id map and waits for the write lock. The appendable segment's
                // rows keep theirs.
                if !seg.is_some_and(|s| s.is_sealed() && s.has_raw_vector(row_id, col)) {
                    back |= 1 << i;
                }
                at += dim;
            }
        }
        if at > set.arena.len() {
            return Err(EngineError::Corrupt(format!(
                "row {row_id}: a vector of the wrong length"
            )));
        }
        if back == 0 {
            continue;
        }
        let Some(row) = sh.rows.get_id(row_id) else {
            continue;
        };
        let mut values = row.values.clone();
        let mut at = offset;
        for (i, (&col, &dim)) in table.aside.iter().zip(dims).enumerate().take(64) {
            if mask & (1 << i) != 0 {
                if let (true, Some(slot), Some(v)) = (
                    back & (1 << i) != 0,
                    values.get_mut(col),
                    set.arena.get(at..at + dim),
                ) {
                    *slot = Value::Vector(v.to_vec());
                }
                at += dim;
            }
        }
        let row = Arc::new(row.with_values(values));
        sh.rows.put(row);
    }
    Ok(())
}

impl Engine {
    /// Opens the engine over a log and a store: loads the catalog, rows and persisted segments,
    /// then replays the WAL from the store's applied LSN.
    pub fn open(
        log: Arc<dyn LogBackend>,
        store: Arc<dyn StoreBackend>,
        opts: EngineOptions,
    ) -> Result<Self> {
        let started = Instant::now();
        let applied = match store.get(Cf::Rows, APPLIED_KEY)? {
            Some(v) => be_u64(&v)?,
            None => 0,
        };
        let inner = Arc::new(Inner {
            log,
            store,
            opts,
            tables: RwLock::new(HashMap::new()),
            applied: Mutex::new(applied),
            turn: Condvar::new(),
            poisoned: Mutex::new(None),
            replay_buf: Mutex::new(None),
            replay_tx: Mutex::new(None),
            replay_scratch: Mutex::new(PackedOps::default()),
            apply_scratch: Mutex::new(ApplyScratch::default()),
            last_lsn: AtomicU64::new(applied),
            closed: AtomicBool::new(false),
            checkpoints: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            catalog_version: AtomicU64::new(0),
            replay_micros: AtomicU64::new(0),
            signal: Arc::new(Signal::default()),
        });
        inner.load()?;
        let loaded = started.elapsed();
        inner.replay()?;
        tracing::info!(
            load_ms = loaded.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            applied = *inner.applied.lock(),
            "engine opened"
        );
        let engine = Engine {
            background: Arc::new(Background {
                signal: inner.signal.clone(),
                handles: Mutex::new(Vec::new()),
            }),
            inner,
        };
        if engine.inner.opts.background {
            engine.start_background();
        }
        Ok(engine)
    }

    fn start_background(&self) {
        let (weak, signal) = (Arc::downgrade(&self.inner), self.inner.signal.clone());
        let interval = self.inner.opts.background_interval;
        let worker = move || {
            let mut last_checkpoint = Instant::now();
            while !signal.sleep(interval) {
                let Some(inner) = weak.upgrade() else { return };
                if let Err(e) = inner.background_step(&mut last_checkpoint) {
                    tracing::warn!(error = %e, "background step failed");
                }
            }
        };
        let (weak, signal) = (Arc::downgrade(&self.inner), self.inner.signal.clone());
        let linker = move || {
            // Its own pool: the global one stays free for searches, which it would otherwise
            // queue behind a whole chunk.
            let pool = rayon::ThreadPoolBuilder::new()
                .thread_name(|i| format!("vela-link-{i}"))
                .build();
            let pool = match pool {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "no linker pool; tails are linked by writers");
                    return;
                }
            };
            let mut idle = false;
            while !(idle && signal.wait(interval)) {
                let Some(inner) = weak.upgrade() else { return };
                if *signal.stopped.lock() || inner.poisoned.lock().is_some() {
                    return;
                }
                match pool.install(|| inner.link_step()) {
                    Ok(n) => idle = n == 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "linking an unindexed tail failed");
                        idle = true;
                    }
                }
            }
        };
        type Job = Box<dyn FnOnce() + Send>;
        let threads: [(&str, Job); 2] = [
            ("vela-engine-bg", Box::new(worker)),
            ("vela-engine-link", Box::new(linker)),
        ];
        for (name, f) in threads {
            match std::thread::Builder::new().name(name.into()).spawn(f) {
                Ok(h) => self.background.handles.lock().push(h),
                Err(e) => tracing::warn!(error = %e, name, "could not start a background thread"),
            }
        }
    }

    /// Creates a table (logged in the WAL like data). `schema.shards == 0` picks the default.
    pub fn create_table(&self, mut schema: TableSchema) -> Result<()> {
        if schema.shards == 0 {
            schema.shards = self.inner.opts.default_shards.max(1);
        }
        schema.validate()?;
        for def in &schema.indexes {
            crate::segment::params_of(def).validate()?;
        }
        if self.inner.tables.read().contains_key(&schema.name) {
            return Err(EngineError::TableExists(schema.name));
        }
        self.inner
            .commit(LogRecord::CreateTable(schema))
            .map(|_| ())
    }

    /// Drops a table and all its rows.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        let t = self.inner.table(name)?;
        self.inner
            .commit(LogRecord::DropTable { table_id: t.id })
            .map(|_| ())
    }

    /// Adds a vector index to a table (built over its rows).
    pub fn create_index(&self, table: &str, def: VectorIndexDef) -> Result<()> {
        let t = self.inner.table(table)?;
        let mut schema = t.schema.clone();
        schema.indexes.push(def.clone());
        schema.validate()?;
        crate::segment::params_of(&def).validate()?;
        self.inner
            .commit(LogRecord::CreateIndex {
                table_id: t.id,
                def,
            })
            .map(|_| ())
    }

    /// Drops a vector index by name.
    pub fn drop_index(&self, table: &str, name: &str) -> Result<()> {
        let t = self.inner.table(table)?;
        if !t.schema.indexes.iter().any(|i| i.name == name) {
            return Err(EngineError::Index(name.to_string(), "does not exist"));
        }
        self.inner
            .commit(LogRecord::DropIndex {
                table_id: t.id,
                name: name.to_string(),
            })
            .map(|_| ())
    }

    /// Applies a batch of row operations, all or nothing (a one-table [`Engine::write_many`]).
    pub fn write(&self, table: &str, ops: Vec<Op>) -> Result<WriteOutcome> {
        let outcomes = self.write_many(vec![(table.to_string(), ops)])?;
        Ok(outcomes.into_iter().next().unwrap_or_default())
    }

    /// Applies row operations on several tables as ONE WAL entry, all or nothing: every batch
    /// is validated against its table's schema before anything is logged, the entry is applied
    /// as a unit (a duplicate key on `INSERT` in any table rejects the whole entry, with no
    /// table changed), its rows reach the store in one atomic batch and become visible to
    /// readers together. Batches naming the same table are concatenated in order. Returns one
    /// outcome per distinct table, in order of first appearance (`lsn` 0 for a table given no
    /// operations). A single table is logged in the one-table record format.
    pub fn write_many(&self, batches: Vec<(String, Vec<Op>)>) -> Result<Vec<WriteOutcome>> {
        let mut groups: Vec<(Arc<Table>, Vec<Op>)> = Vec::new();
        for (name, ops) in batches {
            let t = self.inner.table(&name)?;
            match groups.iter_mut().find(|(g, _)| g.id == t.id) {
                Some((_, existing)) => existing.extend(ops),
                None => groups.push((t, ops)),
            }
        }
        for (t, ops) in &groups {
            validate_ops(&t.schema, ops)?;
        }
        let touched: Vec<bool> = groups.iter().map(|(_, ops)| !ops.is_empty()).collect();
        let mut tables: Vec<(u64, Vec<Op>)> = groups
            .iter_mut()
            .filter(|(_, ops)| !ops.is_empty())
            .map(|(t, ops)| (t.id, std::mem::take(ops)))
            .collect();
        if tables.is_empty() {
            return Ok(vec![WriteOutcome::default(); groups.len()]);
        }
        let span = tracing::debug_span!(
            "write",
            tables = tables.len(),
            ops = tables.iter().map(|(_, o)| o.len()).sum::<usize>()
        );
        let _enter = span.enter();
        let started = Instant::now();
        let rec = match tables.pop() {
            Some((table_id, ops)) if tables.is_empty() => LogRecord::Write { table_id, ops },
            Some(last) => {
                tables.push(last);
                LogRecord::WriteMany { tables }
            }
            None => LogRecord::WriteMany { tables },
        };
        let r = self.inner.commit(rec);
        let elapsed = started.elapsed();
        for ((t, _), _) in groups.iter().zip(&touched).filter(|(_, t)| **t) {
            t.counters.write_latency.record(elapsed);
        }
        let mut logged = r?.into_iter();
        Ok(touched
            .iter()
            .map(|&t| {
                if t {
                    logged.next().unwrap_or_default()
                } else {
                    WriteOutcome::default()
                }
            })
            .collect())
    }

    /// k-nearest-neighbour search.
    pub fn search(&self, table: &str, req: &SearchRequest<'_>) -> Result<Vec<SearchHit>> {
        self.inner.table(table)?.search(req)
    }

    /// The live row with this key.
    pub fn get(&self, table: &str, key: &Key) -> Result<Option<Arc<Row>>> {
        let t = self.inner.table(table)?;
        validate_key(&t.schema, key)?;
        Ok(t.get(key))
    }

    /// All live rows passing `filter`, ordered by primary key (one consistent snapshot).
    pub fn scan(&self, table: &str, filter: Option<RowPredicate<'_>>) -> Result<Vec<Arc<Row>>> {
        Ok(self.inner.table(table)?.scan(filter))
    }

    /// [`Engine::scan`] for a reader of `columns` only: the rows are as held, except that a
    /// vector left to a graph is filled in only for those columns (others may read NULL).
    /// `filter` sees whole rows; `filter_columns` (the columns it reads, if known) spares it
    /// copies, as [`SearchRequest::filter_columns`] does.
    pub fn scan_columns(
        &self,
        table: &str,
        filter: Option<RowPredicate<'_>>,
        filter_columns: Option<&[usize]>,
        columns: &[usize],
    ) -> Result<Vec<Arc<Row>>> {
        Ok(self
            .inner
            .table(table)?
            .scan_columns(filter, filter_columns, columns))
    }

    /// A table's schema.
    pub fn schema(&self, table: &str) -> Result<TableSchema> {
        Ok(self.inner.table(table)?.schema.clone())
    }

    /// Every table's schema, by name.
    pub fn tables(&self) -> Vec<TableSchema> {
        let mut v: Vec<TableSchema> = self
            .inner
            .tables
            .read()
            .values()
            .map(|t| t.schema.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Number of live rows of a table.
    pub fn row_count(&self, table: &str) -> Result<usize> {
        Ok(self.inner.table(table)?.len())
    }

    /// Persists segments, flushes the store, records the flushed LSN and drops WAL files below.
    pub fn checkpoint(&self) -> Result<u64> {
        self.inner.checkpoint()
    }

    /// Links every unindexed tail, persists sealed segments and runs one optimizer pass (what
    /// the background threads do).
    pub fn run_maintenance(&self) -> Result<()> {
        self.link_tails()?;
        self.inner.persist_sealed()?;
        self.inner.optimize()
    }

    /// Links every version waiting in an unindexed tail (after WAL replay, a load, or small
    /// live writes) into its segment's graphs now, on the caller's rayon pool; the background
    /// linker does the same in chunks. Returns the versions taken from tails.
    pub fn link_tails(&self) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n = self.inner.link_step()?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    }

    /// Writes a consistent backup of the store into `dir` after a checkpoint (the WAL below the
    /// checkpoint is not needed: the backup's applied LSN covers it).
    pub fn backup_store(&self, dir: &Path) -> Result<u64> {
        let lsn = self.checkpoint()?;
        self.inner.store.checkpoint_to(dir)?;
        Ok(lsn)
    }

    /// A number that changes whenever any table's schema may have changed (a table created or
    /// dropped, an index created or dropped); read it before reading schemas, and while it is
    /// unchanged they are current.
    pub fn catalog_version(&self) -> u64 {
        self.inner.catalog_version.load(Ordering::Acquire)
    }

    /// LSN of the last applied batch.
    pub fn applied_lsn(&self) -> u64 {
        *self.inner.applied.lock()
    }

    /// A snapshot of counters and latency histograms.
    pub fn metrics(&self) -> EngineMetrics {
        self.inner.metrics()
    }

    /// Stops the background worker and checkpoints. Other clones become unusable for writes.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.background.stop();
        if self.inner.poisoned.lock().is_some() {
            return Ok(());
        }
        self.inner.checkpoint().map(|_| ())
    }
}

impl Inner {
    fn table(&self, name: &str) -> Result<Arc<Table>> {
        self.tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownTable(name.to_string()))
    }

    fn table_by_id(&self, id: u64) -> Option<Arc<Table>> {
        self.tables.read().values().find(|t| t.id == id).cloned()
    }

    fn poison(&self, e: &EngineError) {
        tracing::error!(error = %e, "engine stops accepting writes until reopened");
        let mut p = self.poisoned.lock();
        if p.is_none() {
            *p = Some(e.clone());
        }
        self.turn.notify_all();
    }

    fn check_writable(&self) -> Result<()> {
        if let Some(e) = self.poisoned.lock().clone() {
            return Err(EngineError::NotPossible(format!(
                "writes refused after an earlier storage failure ({e}); reopen the database"
            )));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(EngineError::NotPossible("the database is closed".into()));
        }
        Ok(())
    }

    /// Logs a record, waits for its turn, applies it. One outcome per table written.
    fn commit(&self, rec: LogRecord) -> Result<Vec<WriteOutcome>> {
        self.check_writable()?;
        let bytes = encode_record(&rec)?;
        let lsn = match self.log.append(&bytes) {
            Ok(l) => l,
            Err(e) => {
                self.poison(&e);
                return Err(e);
            }
        };
        let mut applied = self.applied.lock();
        while *applied + 1 < lsn {
            if self.poisoned.lock().is_some() {
                drop(applied);
                return self.check_writable().map(|_| Vec::new());
            }
            self.turn.wait_for(&mut applied, Duration::from_millis(100));
        }
        if *applied + 1 != lsn {
            let e = EngineError::Corrupt(format!(
                "WAL assigned LSN {lsn} but {} is applied",
                *applied
            ));
            self.poison(&e);
            return Err(e);
        }
        let r = self.apply(lsn, rec);
        *applied = lsn;
        drop(applied);
        self.turn.notify_all();
        if let Err(e @ (EngineError::Storage(_) | EngineError::Corrupt(_))) = &r {
            self.poison(e);
        }
        r
    }

    /// Writes a store batch, or (during replay) appends it to the replay buffer, which is
    /// written in large batches: replay is dominated by per-batch store overhead otherwise.
    /// Batches stay in LSN order, so a crash during replay still leaves a prefix.
    /// Every batch written gets the applied-LSN marker (`batch.lsn`) here, so the store's
    /// marker always names the last entry whose effects it holds.
    fn store_write(&self, mut batch: StoreWrite) -> Result<()> {
        let mut buf = self.replay_buf.lock();
        let Some(pending) = buf.as_mut() else {
            drop(buf);
            batch.put(
                Cf::Rows,
                APPLIED_KEY.to_vec(),
                batch.lsn.to_be_bytes().to_vec(),
            );
            return self.store.write(batch);
        };
        pending.lsn = pending.lsn.max(batch.lsn);
        // Ranges go before every gathered op: only DDL deletes ranges, and the buffer is
        // written before a DDL entry is applied, so no gathered op precedes them.
        pending.ranges.extend(batch.ranges);
        // One applied-LSN marker per gathered batch (added when it is written) is enough.
        // A gathered batch's `ops` all come before its `packed` ones, which is the order of
        // their entries: `ops` hold DDL's writes (rows go to `packed`), and a DDL entry finds
        // the buffer empty.
        pending.ops.extend(batch.ops);
        pending.packed.append(&mut batch.packed);
        *self.replay_scratch.lock() = std::mem::take(&mut batch.packed);
        if pending.ops.len() + pending.packed.len() >= REPLAY_BATCH_OPS {
            // The next gathered batch starts with the room this one needed (no regrowing).
            let next = StoreWrite {
                packed: PackedOps::with_capacity(&pending.packed),
                ..StoreWrite::default()
            };
            let mut full = std::mem::replace(pending, next);
            full.put(
                Cf::Rows,
                APPLIED_KEY.to_vec(),
                full.lsn.to_be_bytes().to_vec(),
            );
            drop(buf);
            self.replay_out(full)?;
        }
        Ok(())
    }

    /// Hands a gathered replay batch to the replay's store writer (or writes it here).
    fn replay_out(&self, batch: StoreWrite) -> Result<()> {
        let tx = self.replay_tx.lock().clone();
        match tx {
            Some(tx) => tx.send(batch).map_err(|_| {
                EngineError::Corrupt("the replay's store writer stopped (its error follows)".into())
            }),
            None => self.store.write(batch),
        }
    }

    /// Writes what the replay buffer holds.
    fn flush_replay_buf(&self) -> Result<()> {
        let pending = self.replay_buf.lock().as_mut().map(std::mem::take);
        match pending {
            Some(mut p) if !p.ops.is_empty() || !p.packed.is_empty() || p.lsn > 0 => {
                p.put(Cf::Rows, APPLIED_KEY.to_vec(), p.lsn.to_be_bytes().to_vec());
                self.replay_out(p)
            }
            _ => Ok(()),
        }
    }

    /// Applies one logged record (live or during replay). Deterministic given the state.
    fn apply(&self, lsn: u64, rec: LogRecord) -> Result<Vec<WriteOutcome>> {
        self.last_lsn.fetch_max(lsn, Ordering::Relaxed);
        if !matches!(rec, LogRecord::Write { .. } | LogRecord::WriteMany { .. }) {
            // DDL deletes key ranges, which a gathered batch applies before its ops: start a
            // fresh one.
            self.flush_replay_buf()?;
        }
        // `store_write` adds the applied-LSN marker.
        let mut batch = StoreWrite {
            lsn,
            packed: std::mem::take(&mut *self.replay_scratch.lock()),
            ..StoreWrite::default()
        };
        match rec {
            LogRecord::Write { table_id, ops } => {
                self.apply_writes(lsn, batch, std::iter::once((table_id, ops)))
            }
            LogRecord::WriteMany { tables } => self.apply_writes(lsn, batch, tables),
            LogRecord::CreateTable(schema) => {
                if self.tables.read().contains_key(&schema.name) {
                    self.store_write(batch)?;
                    return Err(EngineError::TableExists(schema.name));
                }
                let json = serde_json::to_vec(&schema)
                    .map_err(|e| EngineError::Corrupt(format!("schema JSON: {e}")))?;
                batch.put(Cf::Rows, catalog_key(lsn), json);
                let table = Arc::new(Table::new(lsn, schema)?);
                self.store_write(batch)?;
                self.tables.write().insert(table.schema.name.clone(), table);
                self.catalog_version.fetch_add(1, Ordering::Release);
                Ok(vec![WriteOutcome {
                    lsn,
                    ..Default::default()
                }])
            }
            LogRecord::DropTable { table_id } => {
                let Some(t) = self.table_by_id(table_id) else {
                    self.store_write(batch)?;
                    return Err(EngineError::UnknownTable(format!("#{table_id}")));
                };
                batch.delete(Cf::Rows, catalog_key(table_id));
                delete_table_data(table_id, &mut batch, true);
                self.store_write(batch)?;
                self.tables.write().remove(&t.schema.name);
                self.catalog_version.fetch_add(1, Ordering::Release);
                Ok(vec![WriteOutcome {
                    lsn,
                    ..Default::default()
                }])
            }
            LogRecord::CreateIndex { table_id, def } => self
                .alter_indexes(lsn, table_id, batch, |s| {
                    if s.indexes.iter().any(|i| i.name == def.name) {
                        return Err(EngineError::Index(def.name.clone(), "already exists"));
                    }
                    s.indexes.push(def.clone());
                    Ok(())
                })
                .map(|o| vec![o]),
            LogRecord::DropIndex { table_id, name } => self
                .alter_indexes(lsn, table_id, batch, |s| {
                    let before = s.indexes.len();
                    s.indexes.retain(|i| i.name != name);
                    if s.indexes.len() == before {
                        return Err(EngineError::Index(name.clone(), "does not exist"));
                    }
                    Ok(())
                })
                .map(|o| vec![o]),
        }
    }

    /// Applies one WAL entry's row operations on one or more tables, all or nothing
    /// (deterministic given the state, so replay decides the same): plans every table against
    /// the current state first (any rejection rejects the whole entry and only the applied-LSN
    /// marker is written), inserts the new vectors into the appendable segments (invisible),
    /// writes ONE store batch (every table's rows + the marker), then publishes every table
    /// together ([`publish_all`]). One outcome per distinct table, in entry order.
    fn apply_writes(
        &self,
        lsn: u64,
        batch: StoreWrite,
        tables: impl IntoIterator<Item = (u64, Vec<Op>)>,
    ) -> Result<Vec<WriteOutcome>> {
        let mut scratch = std::mem::take(&mut *self.apply_scratch.lock());
        // Replay: every new version goes to an unindexed tail, linked after open.
        let replay = self.replay_buf.lock().is_some();
        let r = self.apply_grouped(lsn, batch, tables, replay, &mut scratch);
        scratch.recycle(replay);
        *self.apply_scratch.lock() = scratch;
        r
    }

    /// [`Inner::apply_writes`] with its lists (`scratch`, empty on entry).
    fn apply_grouped(
        &self,
        lsn: u64,
        mut batch: StoreWrite,
        tables: impl IntoIterator<Item = (u64, Vec<Op>)>,
        replay: bool,
        scratch: &mut ApplyScratch,
    ) -> Result<Vec<WriteOutcome>> {
        let ApplyScratch {
            groups,
            planned,
            spare,
            ..
        } = scratch;
        for (table_id, ops) in tables {
            let Some(t) = self.table_by_id(table_id) else {
                self.store_write(batch)?;
                return Err(EngineError::UnknownTable(format!("#{table_id}")));
            };
            // A logged entry names each table once; merging keeps a repeated id deterministic.
            match groups.iter_mut().find(|(g, _)| g.id == table_id) {
                Some((_, existing)) => existing.extend(ops),
                None => groups.push((t, ops)),
            }
        }
        for (t, _) in groups.iter() {
            inc(&t.counters.batches, 1);
        }
        let mut outcomes = Vec::with_capacity(groups.len());
        let mut rejected = None;
        for (t, ops) in groups.iter_mut() {
            let mut changes = spare.pop().unwrap_or_default();
            match t.plan_into(lsn, ops, &mut changes) {
                Ok(outcome) => {
                    planned.push((t.clone(), changes));
                    outcomes.push(outcome);
                }
                Err(e) => {
                    rejected = Some(e);
                    break;
                }
            }
        }
        let mut tailed = false;
        if rejected.is_none() {
            for (i, (t, changes)) in planned.iter().enumerate() {
                match t.prepare(changes, replay, self.opts.tail_rows) {
                    Ok(tail) => tailed |= tail,
                    Err(e) => {
                        // `prepare` undid its own table; undo the tables prepared before it.
                        for (t, changes) in planned.iter().take(i) {
                            t.unprepare(changes);
                        }
                        rejected = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = rejected {
            for (t, _) in groups.iter() {
                inc(&t.counters.batches_rejected, 1);
            }
            self.store_write(batch)?;
            return Err(e);
        }
        for (t, changes) in planned.iter() {
            t.store_ops(changes, &mut batch);
        }
        self.store_write(batch)?;
        let sealed = publish_all(lsn, planned, self.opts.seal_rows)?;
        if tailed {
            self.signal.wake();
        }
        for ((t, _), outcome) in planned.iter().zip(&outcomes) {
            inc(&t.counters.rows_inserted, outcome.inserted);
            inc(&t.counters.rows_updated, outcome.updated);
            inc(&t.counters.rows_deleted, outcome.deleted);
        }
        for (i, segments) in &sealed {
            if let Some((t, _)) = planned.get(*i) {
                inc(&t.counters.seals, segments.len() as u64);
                tracing::debug!(table = %t.schema.name, segments = segments.len(), "seal");
            }
        }
        Ok(outcomes)
    }

    /// Replaces a table by one with a changed index list, its segments rebuilt over its rows.
    fn alter_indexes(
        &self,
        lsn: u64,
        table_id: u64,
        mut batch: StoreWrite,
        change: impl FnOnce(&mut TableSchema) -> Result<()>,
    ) -> Result<WriteOutcome> {
        let Some(old) = self.table_by_id(table_id) else {
            self.store_write(batch)?;
            return Err(EngineError::UnknownTable(format!("#{table_id}")));
        };
        let mut schema = old.schema.clone();
        if let Err(e) = change(&mut schema).and_then(|_| Ok(schema.validate()?)) {
            self.store_write(batch)?;
            return Err(e);
        }
        let table = Arc::new(Table::new(table_id, schema)?);
        table.published.store(lsn, Ordering::Release);
        let replaying = self.replay_buf.lock().is_some();
        {
            let old_shards = old.state.read();
            let mut new_shards = table.state.write();
            for (o, n) in old_shards.iter().zip(new_shards.iter_mut()) {
                // Whole rows: the old segments, which hold the vectors loaded rows leave to
                // the graphs, go away.
                let mut rows: Vec<Arc<Row>> = o
                    .rows
                    .rows()
                    .map(|row| o.fill_row(row, &old.aside))
                    .collect();
                n.rows.reserve_for(&rows);
                for row in &rows {
                    n.rows.put(row.clone());
                }
                rows.sort_by_key(|r| r.row_id);
                if replaying {
                    n.appendable.append_tail(rows);
                } else {
                    n.appendable.insert_rows(&rows, &|_| true)?;
                }
            }
        }
        let json = serde_json::to_vec(&table.schema)
            .map_err(|e| EngineError::Corrupt(format!("schema JSON: {e}")))?;
        batch.put(Cf::Rows, catalog_key(table_id), json);
        delete_table_data(table_id, &mut batch, false);
        self.store_write(batch)?;
        self.tables.write().insert(table.schema.name.clone(), table);
        self.catalog_version.fetch_add(1, Ordering::Release);
        Ok(WriteOutcome {
            lsn,
            ..Default::default()
        })
    }

    /// Loads catalog, rows and persisted segments from the store.
    fn load(&self) -> Result<()> {
        let mut schemas = Vec::new();
        self.store
            .scan_prefix(Cf::Rows, CATALOG_PREFIX, &mut |k, v| {
                let id = be_u64(k.get(CATALOG_PREFIX.len()..).unwrap_or_default())?;
                let schema: TableSchema = from_json(
                    std::str::from_utf8(v)
                        .map_err(|_| EngineError::Corrupt("catalog utf-8".into()))?,
                )?;
                schemas.push((id, schema));
                Ok(true)
            })?;
        for (id, schema) in schemas {
            let table = self.load_table(id, schema)?;
            self.tables
                .write()
                .insert(table.schema.name.clone(), Arc::new(table));
        }
        Ok(())
    }

    /// A key splitting the rows between `start` and `end` into two parts of similar size for
    /// two scanning threads: the midpoint of the first and last keys' first 8 bytes after
    /// their common prefix (even for skewed keys both parts are correct, just less even).
    /// `None` with fewer than two distinct leading values.
    fn split_key(&self, start: &[u8], end: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut first = None;
        self.store.scan_range(Cf::Rows, start, end, &mut |k, _| {
            first = Some(k.to_vec());
            Ok(false)
        })?;
        let (Some(first), Some(last)) = (first, self.store.last_key(Cf::Rows, start)?) else {
            return Ok(None);
        };
        let common = first.iter().zip(&last).take_while(|(a, b)| a == b).count();
        let word = |k: &[u8]| {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(k.get(common..).unwrap_or_default()) {
                *d = *s;
            }
            u64::from_be_bytes(b)
        };
        let (a, b) = (word(&first), word(&last));
        let mid = a + b.saturating_sub(a) / 2;
        if mid <= a {
            return Ok(None);
        }
        let mut key = first[..common].to_vec();
        key.extend_from_slice(&mid.to_be_bytes());
        Ok(Some(key))
    }

    fn load_table(&self, id: u64, schema: TableSchema) -> Result<Table> {
        let table = Table::new(id, schema)?;
        let n = table.schema.shards as usize;
        let mut shards = table.state.write();
        // Rows and segment blobs are independent: scan them on three threads (the rows' key
        // range in two halves). Rows are gathered per shard (routed by their encoded key, as
        // stored); the vectors of `Table::aside` columns go to a per-shard arena meanwhile.
        let (start, end) = (table_prefix(id), table_prefix(id.saturating_add(1)));
        let split = self.split_key(&start, &end)?;
        let scan_rows = |from: &[u8], to: &[u8]| -> Result<Vec<(Vec<Arc<Row>>, SetAside)>> {
            let mut rows: Vec<(Vec<Arc<Row>>, SetAside)> =
                (0..n).map(|_| (Vec::new(), SetAside::default())).collect();
            self.store.scan_range(Cf::Rows, from, to, &mut |k, v| {
                let encoded = k.get(8..).unwrap_or_default();
                let key = crate::codec::get_key(encoded)?;
                let mut r = Reader::new(v);
                let row_id = r.u64()?;
                let Some((rows, set)) = rows.get_mut(shard_of_encoded(encoded, n)) else {
                    return Ok(true);
                };
                let offset = set.arena.len();
                let (values, mask) = get_row_aside(&mut r, &table.aside, &mut set.arena)?;
                if mask != 0 {
                    set.rows.push((row_id, offset, mask));
                }
                let row = Row::new(row_id, table.schema.primary_key, values.into_boxed_slice())?;
                if row.key_ref() != key.as_key_ref() {
                    return Err(EngineError::Corrupt(format!(
                        "row {row_id}: stored under key {key}, holds key {}",
                        row.key()
                    )));
                }
                rows.push(Arc::new(row));
                Ok(true)
            })?;
            Ok(rows)
        };
        // Segment manifests (16-byte keys: shard u32 | sealed u8 | chunks u32 | len u64
        // [| first chunk u32]), each followed by its chunks (20-byte keys), in one pass. Chunks
        // outside the manifest's run are a crashed rewrite's leftovers: skipped. Each blob,
        // once whole, is decoded on the rayon pool while the scan goes on; its buffer then
        // returns to a small pool, so a load touches fresh memory for a few blobs, not all.
        // Liveness is applied later (`finish_shard`), once the row maps exist.
        let scan_blobs = || -> Result<Vec<(u64, u32, bool, Segment)>> {
            let decoded: Mutex<Vec<(u64, u32, bool, Segment)>> = Mutex::new(Vec::new());
            let failed: Mutex<Option<EngineError>> = Mutex::new(None);
            let spare: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
            let schema = &table.schema;
            let scanned = rayon::scope(|scope| -> Result<()> {
                let decode = |m: Manifest| -> Result<()> {
                    if m.got != m.chunks {
                        return Err(EngineError::Corrupt(format!(
                            "segment {}: {} of its blob's {} chunks",
                            m.seg, m.got, m.chunks
                        )));
                    }
                    let (decoded, failed, spare) = (&decoded, &failed, &spare);
                    scope.spawn(move |_| {
                        let Manifest {
                            seg,
                            shard,
                            sealed,
                            mut blob,
                            ..
                        } = m;
                        match Segment::from_bytes(&blob, schema, &|_| true) {
                            Ok(segment) => decoded.lock().push((seg, shard, sealed, segment)),
                            Err(e) => {
                                failed.lock().get_or_insert(e);
                            }
                        }
                        blob.clear();
                        spare.lock().push(blob);
                    });
                    Ok(())
                };
                let mut current: Option<Manifest> = None;
                self.store
                    .scan_prefix(Cf::Index, &table_prefix(id), &mut |k, v| {
                        let seg = be_u64(k.get(8..).unwrap_or_default())?;
                        if k.len() == 16 {
                            if let Some(m) = current.take() {
                                decode(m)?;
                            }
                            let mut r = Reader::new(v);
                            let (shard, sealed, chunks) = (r.u32()?, r.u8()? != 0, r.u32()?);
                            let len = r.u64()?;
                            let first = if r.is_empty() { 0 } else { r.u32()? };
                            // Sized up front when the recorded length is plausible (the
                            // chunks are checked as they come either way).
                            let mut blob = spare.lock().pop().unwrap_or_default();
                            if len <= u64::from(chunks) * BLOB_CHUNK_MAX {
                                let _ = blob.try_reserve_exact(len as usize);
                            }
                            current = Some(Manifest {
                                seg,
                                shard,
                                sealed,
                                first,
                                chunks,
                                blob,
                                got: 0,
                            });
                        } else if let Some(m) = current.as_mut().filter(|m| m.seg == seg) {
                            let chunk = be_u32(k.get(16..).unwrap_or_default())?;
                            let Some(i) = chunk.checked_sub(m.first).filter(|i| *i < m.chunks)
                            else {
                                return Ok(true);
                            };
                            if i != m.got {
                                return Err(EngineError::Corrupt(format!(
                                    "segment {seg}: chunk {chunk} of its blob where {} was due",
                                    u64::from(m.first) + u64::from(m.got)
                                )));
                            }
                            m.blob.extend_from_slice(v);
                            m.got += 1;
                        }
                        Ok(true)
                    })?;
                if let Some(m) = current.take() {
                    decode(m)?;
                }
                Ok(())
            });
            scanned?;
            if let Some(e) = failed.into_inner() {
                return Err(e);
            }
            let mut decoded = decoded.into_inner();
            decoded.sort_by_key(|d| d.0);
            Ok(decoded)
        };
        let (parts, decoded) = std::thread::scope(|scope| -> Result<_> {
            let blobs = scope.spawn(scan_blobs);
            let (mid, upper) = match &split {
                Some(k) => (&k[..], Some(scope.spawn(|| scan_rows(k, &end)))),
                None => (&end[..], None),
            };
            let mut parts = vec![scan_rows(&start, mid)?];
            if let Some(h) = upper {
                parts.push(joined(h)?);
            }
            Ok((parts, joined(blobs)?))
        })?;
        // Per shard: its rows from every part, and each part's set-aside vectors.
        let mut rows: Vec<Vec<Arc<Row>>> = vec![Vec::new(); n];
        let mut set_aside: Vec<Vec<SetAside>> = (0..n).map(|_| Vec::new()).collect();
        for part in parts {
            for ((r, s), (part_rows, part_set)) in rows.iter_mut().zip(&mut set_aside).zip(part) {
                r.extend(part_rows);
                s.push(part_set);
            }
        }
        // Each shard's row maps, built in parallel and sized up front.
        shards
            .par_iter_mut()
            .zip(rows.into_par_iter())
            .for_each(|(s, rows)| {
                s.rows.reserve_for(&rows);
                for row in rows {
                    s.rows.put(row);
                }
            });
        if let Some((seg, shard, ..)) = decoded.iter().find(|d| d.1 as usize >= n) {
            return Err(EngineError::Corrupt(format!(
                "segment {seg} of missing shard {shard}"
            )));
        }
        let mut max_seg = n as u64;
        let mut loaded_appendable = vec![false; n];
        for (seg, shard, sealed, segment) in decoded {
            max_seg = max_seg.max(seg);
            let Some(sh) = shards.get_mut(shard as usize) else {
                return Err(EngineError::Corrupt(format!(
                    "segment {seg} of missing shard {shard}"
                )));
            };
            let segment = Arc::new(segment);
            if sealed {
                segment.seal();
                sh.sealed.push(segment);
            } else {
                // The newest unsealed segment is the appendable one; older ones were sealed
                // in memory but not re-persisted before the crash.
                let previous = std::mem::replace(&mut sh.appendable, segment);
                if let Some(flag) = loaded_appendable.get_mut(shard as usize) {
                    if *flag {
                        previous.seal();
                        sh.sealed.push(previous);
                    }
                    *flag = true;
                }
            }
        }
        table.next_segment.store(max_seg + 1, Ordering::Relaxed);
        for (sh, loaded) in shards.iter_mut().zip(loaded_appendable) {
            if !loaded {
                sh.appendable = Arc::new(Segment::new(table.alloc_segment_id(), &table.schema)?);
            }
        }
        if !table.schema.indexes.is_empty() {
            shards
                .par_iter_mut()
                .zip(set_aside.into_par_iter())
                .try_for_each(|(sh, sets)| finish_shard(&table, sh, sets))?;
        }
        drop(shards);
        Ok(table)
    }

    /// Replays the WAL from the store's applied LSN.
    fn replay(&self) -> Result<()> {
        let from = *self.applied.lock() + 1;
        let span = tracing::info_span!("replay", from);
        let _enter = span.enter();
        let started = Instant::now();
        let mut count = 0u64;
        *self.replay_buf.lock() = Some(StoreWrite::default());
        // Gathered store batches are written by a second thread, in order (so a crash during
        // replay still leaves a prefix), while this one decodes and applies.
        let (tx, rx) = std::sync::mpsc::sync_channel::<StoreWrite>(2);
        let store = self.store.clone();
        let writer = std::thread::Builder::new()
            .name("vela-replay-store".into())
            .spawn(move || -> Result<()> {
                for batch in rx {
                    store.write(batch)?;
                }
                Ok(())
            });
        let writer = match writer {
            Ok(h) => {
                *self.replay_tx.lock() = Some(tx);
                Some(h)
            }
            Err(e) => {
                tracing::warn!(error = %e, "no replay store writer thread; writing inline");
                None
            }
        };
        // The rows' compactions wait until replay ends (RocksDB's advice for bulk loads): a
        // replay of 1 M 128-d entries otherwise spent a fifth of its CPU rewriting rows it had
        // just written (every flushed file spans the applied marker's key too, so files
        // overlap and are merged rather than moved).
        let paused = self.pause_compactions(true);
        let replayed = self.replay_entries(from, &mut count);
        let flushed = self.flush_replay_buf();
        *self.replay_buf.lock() = None;
        *self.replay_scratch.lock() = PackedOps::default();
        self.apply_scratch.lock().spent = Vec::new();
        *self.replay_tx.lock() = None;
        let written = writer.map_or(Ok(Ok(())), |h| h.join());
        // Resumed only once the store writer has written everything: resuming sooner let the
        // last gathered batches meet RocksDB's L0 slowdown (a 2 M-entry replay leaves ~35
        // files in L0, past `level0_slowdown_writes_trigger`, which paused compactions do
        // not apply) and the compaction it starts.
        if paused {
            self.pause_compactions(false);
        }
        written
            .map_err(|_| EngineError::Corrupt("the replay's store writer panicked".into()))??;
        replayed?;
        flushed?;
        let last = self.log.last_lsn();
        let applied = self.applied.lock();
        if last > *applied {
            return Err(EngineError::Corrupt(format!(
                "WAL ends at {last} but replay stopped at {}",
                *applied
            )));
        }
        drop(applied);
        self.replayed.fetch_add(count, Ordering::Relaxed);
        self.replay_micros
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        let tails: usize = self.tables_snapshot().iter().map(|t| t.tail_rows()).sum();
        tracing::info!(entries = count, secs, unlinked = tails, "WAL replayed");
        Ok(())
    }

    /// [`StoreBackend::pause_compactions`], a failure logged (it only costs speed).
    fn pause_compactions(&self, paused: bool) -> bool {
        match self.store.pause_compactions(paused) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, paused, "could not change the store's compactions");
                false
            }
        }
    }

    /// Reads, decodes and applies the WAL's entries from `from` on, counting them in `count`.
    /// A second thread reads and decodes (`decode_record` is pure) while this one applies, in
    /// LSN order; it runs at most [`DECODED_AHEAD`] chunks of ~[`DECODED_CHUNK_BYTES`] ahead.
    /// An error stops both at the entry that caused it: entries before it stay applied, as
    /// when decoding and applying alternated on one thread (which is the fallback when no
    /// thread can be started).
    fn replay_entries(&self, from: u64, count: &mut u64) -> Result<()> {
        // The turnstile, held throughout: nothing else applies before `open` returns.
        let mut applied = self.applied.lock();
        let mut apply_one = |lsn: u64, rec: Result<LogRecord>| -> Result<()> {
            if lsn <= *applied {
                return Ok(());
            }
            match self.apply(lsn, rec?) {
                Ok(_) => {}
                Err(e @ (EngineError::Storage(_) | EngineError::Corrupt(_))) => return Err(e),
                Err(_) => {} // a deterministic rejection, as when it was first applied
            }
            *applied = lsn;
            *count += 1;
            Ok(())
        };
        let log = &self.log;
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Decoded>(DECODED_AHEAD);
            // Back to the reader: each applied chunk, emptied (reused), and the entries'
            // drained operation lists (freed there, where they were allocated).
            let (back_tx, back_rx) = std::sync::mpsc::channel::<(Decoded, Vec<Vec<Op>>)>();
            let reader = std::thread::Builder::new()
                .name("vela-replay-read".into())
                .spawn_scoped(s, move || -> Result<()> {
                    let mut chunk = Vec::new();
                    let mut bytes = 0usize;
                    let read = log.replay(from, &mut |lsn, payload| {
                        let rec = decode_record(payload);
                        let failed = rec.is_err();
                        chunk.push((lsn, rec));
                        bytes += payload.len();
                        if failed || bytes >= DECODED_CHUNK_BYTES {
                            bytes = 0;
                            let mut next = Vec::new();
                            for (empty, spent) in back_rx.try_iter() {
                                drop(spent);
                                if next.capacity() == 0 {
                                    next = empty;
                                }
                            }
                            tx.send(std::mem::replace(&mut chunk, next))
                                .map_err(|_| EngineError::NotPossible("replay stopped".into()))?;
                        }
                        if failed {
                            // The applying thread reports this entry's error; read no further.
                            return Err(EngineError::NotPossible("replay stopped".into()));
                        }
                        Ok(())
                    });
                    if !chunk.is_empty() {
                        // A closed channel means the applying thread failed: its error wins.
                        let _ = tx.send(chunk);
                    }
                    read
                });
            let reader = match reader {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "no replay reader thread; decoding inline");
                    return log.replay(from, &mut |lsn, payload| {
                        apply_one(lsn, decode_record(payload))
                    });
                }
            };
            let mut applying = Ok(());
            'chunks: for mut chunk in rx.iter() {
                for (lsn, rec) in chunk.drain(..) {
                    applying = apply_one(lsn, rec);
                    if applying.is_err() {
                        break 'chunks;
                    }
                }
                let spent = std::mem::take(&mut self.apply_scratch.lock().spent);
                // A reader that has stopped reading frees nothing more: dropped here then.
                let _ = back_tx.send((chunk, spent));
            }
            // Unblocks a reader waiting to send (its send fails, it stops).
            drop(rx);
            let read = reader
                .join()
                .map_err(|_| EngineError::Corrupt("the replay's WAL reader panicked".into()))?;
            // The applying thread's error first: it concerns an earlier entry than anything
            // the reader met after it (the reader's own stop signal included).
            applying?;
            read
        })
    }

    /// Writes a segment's blob and manifest (replacing an earlier one). The blob is streamed
    /// into chunks of `blob_chunk_bytes`, one store write each, in the chunk slot the blob in
    /// force does not use; the last chunk, the manifest naming the new run and the deletion of
    /// the old blob's keys go in one final write. A crash before it leaves the old blob (or
    /// none) in force, with unreferenced chunks that loads skip and the next persist deletes.
    /// Memory: about two chunks, whatever the blob's size.
    /// With `wait` false, a segment whose tail a linker is linking right now is skipped (its
    /// rows stay covered by the `rows` column family; a load puts them into a tail).
    fn persist_segment(&self, table: &Table, shard: u32, seg: &Segment, wait: bool) -> Result<()> {
        // Held to the end: no linker and no other persist of this segment meanwhile.
        let Some(guard) = seg.lock_for_persist(wait) else {
            tracing::debug!(segment = seg.id, "segment being linked: persisted later");
            return Ok(());
        };
        let lsn = self.last_lsn.load(Ordering::Relaxed);
        let prefix = manifest_key(table.id, seg.id);
        let mut old_keys = Vec::new();
        let mut old_first = None;
        self.store.scan_prefix(Cf::Index, &prefix, &mut |k, v| {
            if k.len() == prefix.len() {
                old_first = Some(manifest_first(v)?);
            }
            old_keys.push(k.to_vec());
            Ok(true)
        })?;
        let first = if old_first == Some(0) { CHUNK_SLOT } else { 0 };
        let mut w = ChunkWriter {
            store: &*self.store,
            lsn,
            table: table.id,
            seg: seg.id,
            first,
            next: first,
            size: self.opts.blob_chunk_bytes.max(1),
            buf: Vec::new(),
            error: None,
        };
        let len = guard.write_to(&mut w).map_err(|e| {
            w.error.take().unwrap_or_else(|| {
                vela_storage::StorageError::Io {
                    op: "write segment blob",
                    path: Default::default(),
                    source: e,
                }
                .into()
            })
        })?;
        let mut batch = StoreWrite {
            lsn,
            ..StoreWrite::default()
        };
        if !w.buf.is_empty() {
            w.check_room()?;
            batch.put(
                Cf::Index,
                chunk_key(table.id, seg.id, w.next),
                std::mem::take(&mut w.buf),
            );
            w.next += 1;
        }
        let new_run = first..w.next;
        // The earlier blob's keys (and a crashed rewrite's) are deleted one by one: a range
        // tombstone per persist would pile up in the `index` column family, which loads scan.
        for k in old_keys {
            let rewritten = k == prefix
                || (k.len() == 20 && be_u32(&k[16..]).is_ok_and(|c| new_run.contains(&c)));
            if !rewritten {
                batch.delete(Cf::Index, k);
            }
        }
        let mut m = Vec::with_capacity(21);
        m.extend_from_slice(&shard.to_le_bytes());
        m.push(u8::from(seg.is_sealed()));
        m.extend_from_slice(&(w.next - first).to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&first.to_le_bytes());
        batch.put(Cf::Index, prefix, m);
        self.store.write(batch)?;
        seg.mark_persisted(len);
        drop(guard);
        Ok(())
    }

    /// Persists sealed segments that have no blob yet and no unindexed tail (no engine lock
    /// needed: they are immutable apart from tombstones and tail linking, and liveness is
    /// recomputed on load). One with a tail waits until the linker has emptied it.
    fn persist_sealed(&self) -> Result<()> {
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        for t in tables {
            let todo: Vec<(u32, Arc<Segment>)> = t
                .state
                .read()
                .iter()
                .enumerate()
                .flat_map(|(i, s)| s.sealed.iter().map(move |g| (i as u32, g.clone())))
                .filter(|(_, g)| !g.is_persisted() && g.tail_len() == 0)
                .collect();
            for (shard, seg) in todo {
                let span =
                    tracing::debug_span!("seal", table = %t.schema.name, shard, segment = seg.id);
                let _enter = span.enter();
                self.persist_segment(&t, shard, &seg, true)?;
            }
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<u64> {
        let span = tracing::info_span!("checkpoint");
        let _enter = span.enter();
        self.persist_sealed()?;
        // Sealed segments still linking their tails: partial blobs (linked versions only),
        // outside the turnstile (they take no new rows).
        let unpersisted = |t: &Table, appendable: bool| -> Vec<(u32, Arc<Segment>)> {
            t.state
                .read()
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    let segs: Vec<&Arc<Segment>> = if appendable {
                        vec![&s.appendable]
                    } else {
                        s.sealed.iter().collect()
                    };
                    segs.into_iter().map(move |g| (i as u32, g.clone()))
                })
                .filter(|(_, g)| !g.is_persisted())
                .collect()
        };
        let tables = self.tables_snapshot();
        for t in tables.iter().filter(|t| !t.schema.indexes.is_empty()) {
            for (shard, seg) in unpersisted(t, false) {
                self.persist_segment(t, shard, &seg, true)?;
            }
        }
        let lsn = {
            // Under the turnstile: appendable snapshots match the applied LSN exactly. One a
            // linker is busy with is skipped rather than waited for (writers wait on us).
            let applied = self.applied.lock();
            for t in self.tables_snapshot() {
                if t.schema.indexes.is_empty() {
                    continue;
                }
                for (shard, seg) in unpersisted(&t, true) {
                    self.persist_segment(&t, shard, &seg, false)?;
                }
            }
            *applied
        };
        // The WAL first: a store flushed past the durable WAL (durability normal/off, then a
        // power loss) would hold batches whose LSNs the WAL hands out again.
        self.log.sync()?;
        self.store.flush(lsn)?;
        self.log.truncate_below(lsn + 1)?;
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        tracing::info!(lsn, "checkpoint");
        Ok(lsn)
    }

    fn background_step(&self, last_checkpoint: &mut Instant) -> Result<()> {
        if self.poisoned.lock().is_some() {
            return Ok(());
        }
        self.persist_sealed()?;
        self.optimize()?;
        if let Some(every) = self.opts.checkpoint_interval {
            if last_checkpoint.elapsed() >= every {
                self.checkpoint()?;
                *last_checkpoint = Instant::now();
            }
        }
        Ok(())
    }

    /// One optimizer pass (merge small sealed segments; rewrite tombstone-heavy ones).
    pub(crate) fn optimize(&self) -> Result<()> {
        crate::optimizer::run(self)
    }

    /// Links one chunk of unindexed tail versions of every table that has some; returns the
    /// versions linked (0: every tail is empty).
    fn link_step(&self) -> Result<usize> {
        let mut n = 0;
        for t in self.tables_snapshot() {
            if self.closed.load(Ordering::Acquire) {
                break;
            }
            n += t.link_some(LINK_CHUNK)?;
        }
        Ok(n)
    }

    pub(crate) fn tables_snapshot(&self) -> Vec<Arc<Table>> {
        self.tables.read().values().cloned().collect()
    }

    pub(crate) fn opts(&self) -> &EngineOptions {
        &self.opts
    }

    /// Runs `f` while holding the apply turnstile (no batch is being applied).
    pub(crate) fn with_apply_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.applied.lock();
        f()
    }

    pub(crate) fn persist(&self, table: &Table, shard: u32, seg: &Segment) -> Result<()> {
        self.persist_segment(table, shard, seg, true)
    }

    pub(crate) fn forget_segment(&self, table: &Table, seg: u64) -> Result<()> {
        let mut batch = StoreWrite {
            lsn: self.last_lsn.load(Ordering::Relaxed),
            ..StoreWrite::default()
        };
        let mut keys = Vec::new();
        self.store
            .scan_prefix(Cf::Index, &manifest_key(table.id, seg), &mut |k, _| {
                keys.push(k.to_vec());
                Ok(true)
            })?;
        for k in keys {
            batch.delete(Cf::Index, k);
        }
        self.store.write(batch)
    }

    fn metrics(&self) -> EngineMetrics {
        let mut tables: Vec<TableMetrics> = self
            .tables
            .read()
            .values()
            .map(|t| {
                let shards = t.state.read();
                let c = &t.counters;
                TableMetrics {
                    table: t.schema.name.clone(),
                    live_rows: shards.iter().map(|s| s.rows.len() as u64).sum(),
                    batches: load(&c.batches),
                    batches_rejected: load(&c.batches_rejected),
                    rows_inserted: load(&c.rows_inserted),
                    rows_updated: load(&c.rows_updated),
                    rows_deleted: load(&c.rows_deleted),
                    searches: load(&c.searches),
                    seals: load(&c.seals),
                    merges: load(&c.merges),
                    unlinked_rows: shards.iter().map(|s| s.tail_rows() as u64).sum(),
                    write_latency: c.write_latency.snapshot(),
                    search_latency: c.search_latency.snapshot(),
                    shards: shards
                        .iter()
                        .zip(&t.shard_counters)
                        .enumerate()
                        .map(|(i, (s, sc))| ShardMetrics {
                            shard: i as u32,
                            live_rows: s.rows.len() as u64,
                            segments: 1 + s.sealed.len(),
                            searches: load(&sc.searches),
                            search_latency: sc.search_latency.snapshot(),
                        })
                        .collect(),
                }
            })
            .collect();
        tables.sort_by(|a, b| a.table.cmp(&b.table));
        EngineMetrics {
            applied_lsn: *self.applied.lock(),
            flushed_lsn: self.store.flushed_lsn(),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            replayed_entries: self.replayed.load(Ordering::Relaxed),
            replay_micros: self.replay_micros.load(Ordering::Relaxed),
            tables,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    //! Replay: the reading/decoding thread, the marker per batch, paused compactions.

    use super::*;
    use crate::backend::{MemLog, MemStore};
    use crate::catalog::{ColumnDef, ColumnType, ScalarType};

    fn schema(name: &str, shards: u32) -> TableSchema {
        let col = |name: &str, ty, nullable| ColumnDef {
            name: name.into(),
            ty,
            nullable,
        };
        TableSchema {
            name: name.into(),
            columns: vec![
                col("id", ColumnType::Scalar(ScalarType::BigInt), false),
                col("tag", ColumnType::Scalar(ScalarType::Text), true),
                col("v", ColumnType::Vector { dim: 256 }, true),
            ],
            primary_key: 0,
            shards,
            indexes: vec![VectorIndexDef {
                name: format!("{name}_v"),
                column: "v".into(),
                metric: crate::index::Metric::L2,
                hnsw: crate::catalog::HnswConfig {
                    m: 8,
                    ef_construction: 16,
                },
            }],
        }
    }

    fn row(id: i64, version: i64) -> Vec<Value> {
        vec![
            Value::BigInt(id),
            Value::Text(format!("{id}/{version}")),
            Value::Vector((0..256).map(|j| (id * 256 + j + version) as f32).collect()),
        ]
    }

    fn options() -> EngineOptions {
        EngineOptions {
            seal_rows: 700,
            checkpoint_interval: None,
            background: false,
            ..EngineOptions::default()
        }
    }

    fn marker(store: &MemStore) -> u64 {
        let v = store.get(Cf::Rows, APPLIED_KEY).unwrap().unwrap();
        be_u64(&v).unwrap()
    }

    /// An engine over an in-memory log and store with tables `a` and `b` of `a_shards` and
    /// `b_shards` shards, checkpointed (a crash then loses every store write after it).
    fn two_tables(a_shards: u32, b_shards: u32) -> (Arc<MemLog>, Arc<MemStore>, Engine) {
        let (log, store) = (MemLog::new(true), MemStore::new());
        let e = Engine::open(log.clone(), store.clone(), options()).unwrap();
        e.create_table(schema("a", a_shards)).unwrap();
        e.create_table(schema("b", b_shards)).unwrap();
        e.checkpoint().unwrap();
        (log, store, e)
    }

    /// Two tables, more WAL bytes (~1 KiB per row) than several decoded chunks, inserts (some
    /// rejected as duplicates), upserts, deletes, a multi-table entry and index DDL mid-way, a
    /// checkpoint early on: a crash then loses every store write after it, and the reopened
    /// engine (entries decoded on the reader thread) holds exactly what the engine held, row
    /// ids included, and its store marker names the last entry.
    #[test]
    fn replay_recreates_the_state_exactly() {
        let (log, store, e) = two_tables(3, 2);
        for i in 0..3000i64 {
            let t = if i % 3 == 0 { "b" } else { "a" };
            let op = match i % 7 {
                0..=2 => Op::Insert(row(i % 1000, i)), // duplicates rejected
                3..=4 => Op::Upsert(row(i % 1000, i)),
                5 => Op::Delete(Key::BigInt(i % 1000)),
                _ => Op::Update(row(i % 1000, i)),
            };
            let _ = e.write(t, vec![op]);
            if i % 500 == 0 {
                let ops = (0..20).map(|j| Op::Upsert(row(2000 + j, i))).collect();
                e.write_many(vec![
                    ("a".into(), ops),
                    ("b".into(), vec![Op::Delete(Key::BigInt(i))]),
                ])
                .unwrap();
            }
            if i == 1500 {
                e.drop_index("b", "b_v").unwrap();
            }
        }
        let before: Vec<_> = ["a", "b"].map(|t| e.scan(t, None).unwrap()).into();
        let last = e.applied_lsn();
        drop(e);
        let store = store.crash(0);
        let e = Engine::open(log.crash(), store.clone(), options()).unwrap();
        assert!(e.metrics().replayed_entries > 3000);
        let after: Vec<_> = ["a", "b"].map(|t| e.scan(t, None).unwrap()).into();
        assert_eq!(before, after);
        assert_eq!(e.applied_lsn(), last);
        assert_eq!(marker(&store), last);
    }

    /// Writes `n` single-row entries after a checkpoint into a log that keeps everything.
    fn logged(n: i64) -> (Arc<MemLog>, Arc<MemStore>) {
        let (log, store) = (MemLog::new(true), MemStore::new());
        let e = Engine::open(log.clone(), store.clone(), options()).unwrap();
        e.create_table(schema("a", 2)).unwrap();
        e.checkpoint().unwrap();
        for i in 0..n {
            e.write("a", vec![Op::Upsert(row(i, 0))]).unwrap();
        }
        (log, store.crash(0))
    }

    /// An undecodable entry after several chunks' worth of entries: the open fails with
    /// `Corrupt` (no hang, no panic), and the store holds every entry before it.
    #[test]
    fn replay_stops_at_an_undecodable_entry() {
        let (log, store) = logged(4000);
        let bad = log.append(&[RECORD_GARBAGE, 0xFF, 0xFF]).unwrap();
        // Entries after the bad one are never applied.
        log.append(&encode_record(&LogRecord::DropTable { table_id: 1 }).unwrap())
            .unwrap();
        let r = Engine::open(log.clone(), store.clone(), options());
        assert!(matches!(r, Err(EngineError::Corrupt(_))), "{r:?}");
        assert_eq!(marker(&store), bad - 1);
    }

    const RECORD_GARBAGE: u8 = 0xEE;

    /// A [`MemStore`] that records `pause_compactions` calls (`Some(paused)`) and writes
    /// (`None`), in order.
    struct Pausing(Arc<MemStore>, Mutex<Vec<Option<bool>>>);

    impl Pausing {
        /// The pause calls alone.
        fn pauses(&self) -> Vec<bool> {
            self.1.lock().iter().flatten().copied().collect()
        }
        /// Writes recorded after the last resume.
        fn writes_after_resume(&self) -> usize {
            let events = self.1.lock();
            let resumed = events.iter().rposition(|e| *e == Some(false));
            resumed.map_or(0, |i| events.iter().skip(i).filter(|e| e.is_none()).count())
        }
    }

    impl StoreBackend for Pausing {
        fn write(&self, batch: StoreWrite) -> Result<()> {
            self.1.lock().push(None);
            self.0.write(batch)
        }
        fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.0.get(cf, key)
        }
        fn scan_prefix(
            &self,
            cf: Cf,
            prefix: &[u8],
            f: &mut crate::backend::ScanFn<'_>,
        ) -> Result<()> {
            self.0.scan_prefix(cf, prefix, f)
        }
        fn scan_range(
            &self,
            cf: Cf,
            start: &[u8],
            end: &[u8],
            f: &mut crate::backend::ScanFn<'_>,
        ) -> Result<()> {
            self.0.scan_range(cf, start, end, f)
        }
        fn last_key(&self, cf: Cf, prefix: &[u8]) -> Result<Option<Vec<u8>>> {
            self.0.last_key(cf, prefix)
        }
        fn flush(&self, lsn: u64) -> Result<()> {
            self.0.flush(lsn)
        }
        fn flushed_lsn(&self) -> u64 {
            self.0.flushed_lsn()
        }
        fn checkpoint_to(&self, dir: &Path) -> Result<()> {
            self.0.checkpoint_to(dir)
        }
        fn pause_compactions(&self, paused: bool) -> Result<()> {
            self.1.lock().push(Some(paused));
            Ok(())
        }
    }

    /// Replay pauses the store's compactions and resumes them when it ends, after its last
    /// store write (the store writer thread's included), also when it fails: on a bad entry
    /// and on a failing store.
    #[test]
    fn replay_pauses_compactions_and_always_resumes_them() {
        // Several gathered batches (`REPLAY_BATCH_OPS` rows each) in the writer's queue.
        let (log, store) = logged(3 * REPLAY_BATCH_OPS as i64 + 10);
        let pausing = Arc::new(Pausing(store.clone(), Mutex::new(Vec::new())));
        Engine::open(log.clone(), pausing.clone(), options()).unwrap();
        assert_eq!(pausing.pauses(), [true, false]);
        assert!(
            pausing.1.lock().len() > 4,
            "the replay wrote several batches"
        );
        assert_eq!(pausing.writes_after_resume(), 0);
        log.append(&[RECORD_GARBAGE]).unwrap();
        let pausing = Arc::new(Pausing(store.crash(0), Mutex::new(Vec::new())));
        assert!(Engine::open(log, pausing.clone(), options()).is_err());
        assert_eq!(pausing.pauses(), [true, false]);
        assert_eq!(pausing.writes_after_resume(), 0);
        let (log, store) = logged(10);
        store
            .fail_writes
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let pausing = Arc::new(Pausing(store, Mutex::new(Vec::new())));
        assert!(Engine::open(log, pausing.clone(), options()).is_err());
        assert_eq!(pausing.pauses(), [true, false]);
    }

    /// Seals and row counters through the one-table and the multi-table publish paths, live
    /// and replayed: each table's `seals` equals its sealed segments, also when a `write_many`
    /// seals its second table only (both of `a`'s shards pass `seal_rows` in the last entry),
    /// and a replay counts the same.
    #[test]
    fn seals_are_counted_per_table_live_and_replayed() {
        let (log, store, e) = two_tables(2, 3);
        for i in 0..1000i64 {
            e.write("a", vec![Op::Upsert(row(i, 0))]).unwrap();
            if i % 10 == 0 {
                e.write_many(vec![
                    ("b".into(), vec![Op::Upsert(row(i, 1))]),
                    ("a".into(), vec![Op::Upsert(row(5000 + i, 1))]),
                ])
                .unwrap();
            }
        }
        let many = (10_000..11_600).map(|i| Op::Upsert(row(i, 2))).collect();
        e.write_many(vec![
            ("b".into(), vec![Op::Upsert(row(9999, 2))]),
            ("a".into(), many),
        ])
        .unwrap();
        let check = |e: &Engine| {
            let m = e.metrics();
            for t in &m.tables {
                let sealed: usize = t.shards.iter().map(|s| s.segments - 1).sum();
                assert_eq!(t.seals, sealed as u64, "table {}", t.table);
            }
            let count = |name: &str| {
                let t = m.tables.iter().find(|t| t.table == name).unwrap();
                (t.seals, t.rows_inserted)
            };
            assert_eq!(count("a"), (2, 2700));
            assert_eq!(count("b"), (0, 101));
        };
        check(&e);
        drop(e);
        let e = Engine::open(log.crash(), store.crash(0), options()).unwrap();
        assert_eq!(e.metrics().replayed_entries, 1101);
        check(&e);
    }

    /// The store failing mid-replay, while the reader thread is chunks ahead and blocked on
    /// its channel: the open fails with the storage error (no hang).
    #[test]
    fn replay_stops_when_the_store_fails() {
        // ~1 KiB per entry: more than `DECODED_AHEAD` + 1 chunks.
        let (log, store) = logged(8000);
        store
            .fail_writes
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let r = Engine::open(log, store, options());
        assert!(r.is_err(), "{r:?}");
    }
}
