//! The segment store: everything durable except the WAL tail, in RocksDB.
//!
//! # Column families
//!
//! | [`Cf`]        | RocksDB name | holds                                                    | compression |
//! |---------------|--------------|----------------------------------------------------------|-------------|
//! | `Catalog`     | `catalog`    | table definitions, index definitions                     | none        |
//! | `Rows`        | `rows`       | primary key -> encoded row (the engine's vectors too)    | LZ4, bottom level only |
//! | `Vectors`     | `vectors`    | row -> raw vector bytes (f32 LE, later f16/i8)           | none        |
//! | `Index`       | `index`      | sealed segments' HNSW graphs as chunked blobs            | Zstd        |
//! | `Tombstones`  | `tombstones` | deleted rows of sealed segments (value usually empty)    | LZ4         |
//! | `Meta`        | `meta`       | store bookkeeping (reserved keys) + small engine records | none        |
//!
//! All options are in `options.rs`, each with its reason; the block cache (64 MiB by default)
//! is shared by all column families, index and filter blocks included, so memory is bounded.
//!
//! # Key conventions
//!
//! Keys and values are byte strings the engine designs. The conventions:
//! - Integers in keys are **big-endian** (`keys::push_u64`, `keys::read_u64`), so byte order is
//!   numeric order and a range scan walks ids in order.
//! - Keys are composite, most significant part first: `table_id u64 BE ++ ...`, so one table
//!   (or one table's shard, or one segment) is one contiguous range, scanned with
//!   [`SegmentStore::iter_prefix`] and dropped with one [`StoreBatch::delete_range`]. The engine
//!   is expected to use e.g. `rows: table ++ pk`, `vectors: table ++ column ++ row_id`,
//!   `index: table ++ shard ++ segment_id` (fixed width), `tombstones: table ++ segment_id ++
//!   row_id`.
//! - Blob keys (see `blob.rs`) must be prefix-free within a column family (fixed width is
//!   simplest): a blob at `K` owns `K` (its header) and every `K ++ <u32 BE chunk number>`.
//! - In `Meta`, keys whose first byte is `0x00` are reserved for the store
//!   (`\0vela.format_version`, `\0vela.applied_lsn`, `\0vela.flushed_lsn`); a batch touching
//!   them is refused. Every other `Meta` key is the engine's.
//!
//! # Writes, flush and the flushed LSN
//!
//! [`SegmentStore::write`] applies a [`StoreBatch`] atomically with RocksDB's own WAL **off**
//! (Vela's WAL already holds every change) and records the batch's LSN as the *applied LSN* in
//! the same batch. Such a write lives in RocksDB memtables until they are flushed to SST files,
//! either by RocksDB on its own (a memtable fills up; any column family, at any time) or by
//! [`SegmentStore::flush`].
//!
//! `flush(lsn)` — the caller promises that every WAL entry with LSN `<= lsn` has been applied
//! with `write` and has returned — does, in this order and holding the flush mutex:
//! 1. flush the memtables of `Catalog, Rows, Vectors, Index, Tombstones`, waiting for each
//!    (a waited-for flush fsyncs the new SST files and RocksDB's MANIFEST);
//! 2. put `\0vela.flushed_lsn = lsn` in `Meta` (WAL off) and flush `Meta`, waiting.
//!
//! **Invariant.** Once `flush(lsn)` returns `Ok`, every write made before it was called is in
//! fsynced SST files, and a reopen (after any crash, including power loss) reports
//! `flushed_lsn() >= lsn` — exactly `lsn` unless a later flush completed. Because the flushed LSN
//! is recorded only after the data column families are durable, whatever flushed LSN a reopen
//! reports, all writes up to it are on disk. Writes not yet covered by a completed `flush` **may
//! be lost** on a crash, wholly or partly, and not necessarily as a prefix: RocksDB may have
//! flushed some column families on its own and not others. Recovery therefore replays Vela's WAL
//! from `flushed_lsn() + 1`, and replay must be idempotent (a WAL entry's batch must be the same
//! puts and deletes whatever the store already holds). The *applied LSN* read at open is exact
//! after a clean close (closing flushes memtables) but only a hint after a crash; only the
//! flushed LSN is a guarantee. The flushed LSN never goes backwards: `flush` with a smaller LSN
//! is refused.
//!
//! A checkpoint ([`SegmentStore::checkpoint_to`], used by backups and for catching up replicas)
//! makes a consistent copy (hard links to the SSTs, after RocksDB flushes the memtables) under
//! the same mutex, and returns the flushed LSN recorded in it: replaying the WAL from that LSN
//! over the copy reconstructs the state.

mod batch;
mod blob;
mod cf;
mod iter;
pub mod keys;
mod meta;
mod options;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{
    Cache, ColumnFamily, ColumnFamilyDescriptor, FlushOptions, ReadOptions, WriteOptions, DB,
};

pub use batch::StoreBatch;
pub use blob::BLOB_CHUNK_BYTES;
pub use cf::Cf;
pub use iter::StoreIter;
pub use meta::STORE_FORMAT_VERSION;
pub use options::StoreOptions;

use crate::error::{Result, StorageError};
use crate::layout::check_dir;

/// Read-ahead of [`SegmentStore::scan_prefix`]: bulk scans read SST files sequentially.
const BULK_READAHEAD: usize = 4 << 20;

/// The RocksDB segment store. `Send + Sync`: share it behind an `Arc`.
pub struct SegmentStore {
    db: DB,
    path: PathBuf,
    /// WAL-off write options for every batch.
    write_opts: WriteOptions,
    /// Last completed flush's LSN (mirrors `\0vela.flushed_lsn`).
    flushed_lsn: AtomicU64,
    /// Highest LSN passed to `write` (or read at open).
    applied_lsn: AtomicU64,
    /// Serialises `flush` and `checkpoint_to`.
    flush_lock: Mutex<()>,
    /// Keeps the shared block cache alive as long as the DB.
    _cache: Cache,
}

impl SegmentStore {
    /// Opens (or, with `create_if_missing`, creates) the store in directory `path`
    /// (normally `DataDir::store_dir()`).
    ///
    /// Errors: `MissingDirectory` (absent and not creating), `NotADirectory`, `Io` (unreadable),
    /// `RocksDb` (naming `path`), `UnsupportedFormatVersion`.
    pub fn open(path: &Path, opts: &StoreOptions) -> Result<SegmentStore> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => check_dir(path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.create_if_missing => {
                std::fs::create_dir_all(path).map_err(|source| match source.kind() {
                    std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists => {
                        StorageError::NotADirectory {
                            path: path.to_path_buf(),
                        }
                    }
                    _ => StorageError::Io {
                        op: "create directory",
                        path: path.to_path_buf(),
                        source,
                    },
                })?;
            }
            Err(_) => check_dir(path)?,
        }
        let rocks = |source| StorageError::RocksDb {
            path: path.to_path_buf(),
            source,
        };
        let cache = Cache::new_lru_cache(opts.block_cache_bytes).map_err(rocks)?;
        let descriptors = Cf::ALL.map(|cf| {
            ColumnFamilyDescriptor::new(cf.name(), options::cf_options(cf, opts, &cache))
        });
        let db = DB::open_cf_descriptors(&options::db_options(opts), path, descriptors)
            .map_err(rocks)?;
        let mut write_opts = WriteOptions::default();
        write_opts.disable_wal(true);
        let store = SegmentStore {
            db,
            path: path.to_path_buf(),
            write_opts,
            flushed_lsn: AtomicU64::new(0),
            applied_lsn: AtomicU64::new(0),
            flush_lock: Mutex::new(()),
            _cache: cache,
        };
        store.check_format_version()?;
        let flushed = store.read_meta_u64(meta::FLUSHED_LSN_KEY)?.unwrap_or(0);
        let applied = store.read_meta_u64(meta::APPLIED_LSN_KEY)?.unwrap_or(0);
        store.flushed_lsn.store(flushed, Ordering::SeqCst);
        store
            .applied_lsn
            .store(applied.max(flushed), Ordering::SeqCst);
        tracing::info!(path = %path.display(), flushed_lsn = flushed, applied_lsn = applied,
            "segment store opened");
        Ok(store)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The LSN of the last completed [`flush`](Self::flush): every write up to it is durable.
    /// Recovery replays Vela's WAL from `flushed_lsn() + 1`.
    pub fn flushed_lsn(&self) -> u64 {
        self.flushed_lsn.load(Ordering::SeqCst)
    }

    /// The highest LSN passed to [`write`](Self::write) since open, or recorded in the store at
    /// open. Exact after a clean close; after a crash only a hint (see the module docs).
    pub fn applied_lsn(&self) -> u64 {
        self.applied_lsn.load(Ordering::SeqCst)
    }

    /// The value at `key` in `cf`.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.handle(cf)?, key)
            .map_err(|e| self.rocks(e))
    }

    /// The values at `keys` in `cf`, in the same order, in one RocksDB `MultiGet`.
    pub fn multi_get<K: AsRef<[u8]>>(&self, cf: Cf, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let h = self.handle(cf)?;
        self.db
            .multi_get_cf(keys.iter().map(|k| (h, k.as_ref())))
            .into_iter()
            .map(|r| r.map_err(|e| self.rocks(e)))
            .collect()
    }

    /// Iterates `(key, value)` pairs of `cf` whose key starts with `prefix`, in key order.
    pub fn iter_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<StoreIter<'_>> {
        let end = keys::prefix_end(prefix);
        self.iter_range(cf, prefix, end.as_deref())
    }

    /// Calls `f` with every `(key, value)` of `cf` whose key starts with `prefix`, in key
    /// order, borrowed from RocksDB (no copy), until `f` returns `false` or an error. Meant for
    /// bulk loads: the blocks read bypass the block cache (a scan of the whole store would
    /// only evict the hot blocks) and are read ahead in large pieces.
    pub fn scan_prefix<E: From<StorageError>>(
        &self,
        cf: Cf,
        prefix: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> std::result::Result<bool, E>,
    ) -> std::result::Result<(), E> {
        self.scan_range(cf, prefix, keys::prefix_end(prefix).as_deref(), f)
    }

    /// [`SegmentStore::scan_prefix`] over the keys `start <= key < end` (`end = None`: to the
    /// last key), e.g. one part of a prefix scanned by several threads.
    pub fn scan_range<E: From<StorageError>>(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> std::result::Result<bool, E>,
    ) -> std::result::Result<(), E> {
        let h = self.handle(cf)?;
        let mut ro = ReadOptions::default();
        if let Some(end) = end {
            ro.set_iterate_upper_bound(end.to_vec());
        }
        ro.fill_cache(false);
        ro.set_readahead_size(BULK_READAHEAD);
        let mut it = self.db.raw_iterator_cf_opt(h, ro);
        it.seek(start);
        while let Some((k, v)) = it.item() {
            if !f(k, v)? {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(|e| self.rocks(e).into())
    }

    /// Iterates `(key, value)` pairs of `cf` with `start <= key < end` (`end = None`: to the
    /// last key), in key order.
    pub fn iter_range(&self, cf: Cf, start: &[u8], end: Option<&[u8]>) -> Result<StoreIter<'_>> {
        let h = self.handle(cf)?;
        let mut ro = ReadOptions::default();
        if let Some(end) = end {
            ro.set_iterate_upper_bound(end.to_vec());
        }
        let mut it = self.db.raw_iterator_cf_opt(h, ro);
        it.seek(start);
        Ok(StoreIter::new(it, &self.path))
    }

    /// The last `(key, value)` of `cf` with `start <= key < end` (`end = None`: unbounded), e.g.
    /// to find the highest id in use.
    pub fn last_in_range(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let h = self.handle(cf)?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start.to_vec());
        if let Some(end) = end {
            ro.set_iterate_upper_bound(end.to_vec());
        }
        let mut it = self.db.raw_iterator_cf_opt(h, ro);
        it.seek_to_last();
        match it.item() {
            Some((k, v)) => Ok(Some((k.to_vec(), v.to_vec()))),
            None => it.status().map(|()| None).map_err(|e| self.rocks(e)),
        }
    }

    /// A new, empty write batch for this store.
    pub fn batch(&self) -> StoreBatch<'_> {
        StoreBatch::new(self)
    }

    /// Applies `batch` atomically, with RocksDB's WAL off, recording `applied_lsn` in the same
    /// batch. Not durable until a later [`flush`](Self::flush) covers it (see the module docs).
    ///
    /// Errors: `InvalidArgument` if the batch belongs to another store or touched reserved
    /// `meta` keys (nothing is written); `RocksDb`.
    pub fn write(&self, batch: StoreBatch<'_>, applied_lsn: u64) -> Result<()> {
        if !std::ptr::eq(batch.store, self) {
            return Err(StorageError::InvalidArgument(
                "write batch was built for another segment store".to_string(),
            ));
        }
        let meta_cf = self.handle(Cf::Meta)?;
        let mut inner = batch.into_inner()?;
        inner.put_cf(meta_cf, meta::APPLIED_LSN_KEY, applied_lsn.to_be_bytes());
        self.db
            .write_opt(inner, &self.write_opts)
            .map_err(|e| self.rocks(e))?;
        self.applied_lsn.fetch_max(applied_lsn, Ordering::SeqCst);
        Ok(())
    }

    /// Pauses (`false`) or resumes (`true`) automatic compactions of `cf`, as RocksDB advises
    /// for bulk loads: while paused, flushes still happen (L0 files pile up, and no write
    /// stalls on their count) and nothing is rewritten; resuming lets the background threads
    /// compact what piled up, and applies the L0 triggers again: with 20 or more files in L0
    /// (`level0_slowdown_writes_trigger`) writes slow down, with 36 or more they stop, until
    /// that compaction has merged them. So resume after the bulk load's last write. Not
    /// persisted: a reopen compacts as configured.
    pub fn set_auto_compactions(&self, cf: Cf, on: bool) -> Result<()> {
        let h = self.handle(cf)?;
        let disabled = if on { "false" } else { "true" };
        self.db
            .set_options_cf(h, &[("disable_auto_compactions", disabled)])
            .map_err(|e| self.rocks(e))
    }

    /// Makes every write so far durable and records `lsn` as the flushed LSN (see the module
    /// docs for the exact invariant). The caller must have applied every WAL entry `<= lsn`.
    ///
    /// Errors: `InvalidArgument` if `lsn` is below the current flushed LSN; `RocksDb`.
    pub fn flush(&self, lsn: u64) -> Result<()> {
        let _guard = self.flush_lock.lock();
        let current = self.flushed_lsn();
        if lsn < current {
            return Err(StorageError::InvalidArgument(format!(
                "flush({lsn}) below the flushed LSN {current}"
            )));
        }
        let mut fo = FlushOptions::default();
        fo.set_wait(true);
        for cf in Cf::ALL.iter().filter(|&&cf| cf != Cf::Meta) {
            self.db
                .flush_cf_opt(self.handle(*cf)?, &fo)
                .map_err(|e| self.rocks(e))?;
        }
        let meta_cf = self.handle(Cf::Meta)?;
        self.db
            .put_cf_opt(
                meta_cf,
                meta::FLUSHED_LSN_KEY,
                lsn.to_be_bytes(),
                &self.write_opts,
            )
            .map_err(|e| self.rocks(e))?;
        self.db
            .flush_cf_opt(meta_cf, &fo)
            .map_err(|e| self.rocks(e))?;
        self.flushed_lsn.store(lsn, Ordering::SeqCst);
        tracing::debug!(path = %self.path.display(), lsn, "segment store flushed");
        Ok(())
    }

    /// Writes a consistent copy of the store into `dest` (which must not exist; its parent must)
    /// with RocksDB's checkpoint: SST files are hard-linked when on the same file system, and
    /// memtables are flushed first. Returns the flushed LSN recorded in the copy: replay Vela's
    /// WAL from there over the copy. Runs under the flush mutex.
    pub fn checkpoint_to(&self, dest: &Path) -> Result<u64> {
        let _guard = self.flush_lock.lock();
        let rocks = |source| StorageError::RocksDb {
            path: dest.to_path_buf(),
            source,
        };
        Checkpoint::new(&self.db)
            .and_then(|c| c.create_checkpoint(dest))
            .map_err(rocks)?;
        let lsn = self.flushed_lsn();
        tracing::info!(path = %self.path.display(), dest = %dest.display(), flushed_lsn = lsn,
            "segment store checkpoint");
        Ok(lsn)
    }

    pub(crate) fn handle(&self, cf: Cf) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| StorageError::Corrupt {
                path: self.path.clone(),
                reason: format!("column family {cf} missing after open"),
            })
    }

    pub(crate) fn rocks(&self, source: rocksdb::Error) -> StorageError {
        StorageError::RocksDb {
            path: self.path.clone(),
            source,
        }
    }

    fn read_meta_u64(&self, key: &[u8]) -> Result<Option<u64>> {
        match self.get(Cf::Meta, key)? {
            None => Ok(None),
            Some(v) => meta::decode_u64(&v)
                .map(Some)
                .ok_or_else(|| StorageError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("meta record {} is {} bytes", blob::hex_key(key), v.len()),
                }),
        }
    }

    /// Checks the format version; stamps it (durably) into a store that has none yet.
    fn check_format_version(&self) -> Result<()> {
        match self.get(Cf::Meta, meta::FORMAT_VERSION_KEY)? {
            Some(v) => {
                let found = meta::decode_u32(&v).ok_or_else(|| StorageError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("format version record is {} bytes", v.len()),
                })?;
                if found != STORE_FORMAT_VERSION {
                    return Err(StorageError::UnsupportedFormatVersion {
                        path: self.path.clone(),
                        found,
                        supported: STORE_FORMAT_VERSION,
                    });
                }
                Ok(())
            }
            None => {
                let meta_cf = self.handle(Cf::Meta)?;
                self.db
                    .put_cf_opt(
                        meta_cf,
                        meta::FORMAT_VERSION_KEY,
                        STORE_FORMAT_VERSION.to_be_bytes(),
                        &self.write_opts,
                    )
                    .map_err(|e| self.rocks(e))?;
                let mut fo = FlushOptions::default();
                fo.set_wait(true);
                self.db
                    .flush_cf_opt(meta_cf, &fo)
                    .map_err(|e| self.rocks(e))
            }
        }
    }
}

impl std::fmt::Debug for SegmentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentStore")
            .field("path", &self.path)
            .field("flushed_lsn", &self.flushed_lsn())
            .field("applied_lsn", &self.applied_lsn())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
