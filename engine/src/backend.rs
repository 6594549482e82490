//! The engine's two seams onto the storage layer: a write-ahead [`LogBackend`] and a
//! [`StoreBackend`] (the segment store). `vela-storage`'s WAL and RocksDB store implement them
//! (see `storage_impl`); [`MemLog`] and [`MemStore`] implement them in memory for tests, with
//! "crash" hooks that drop whatever was not made durable.
//!
//! Contract:
//! - `LogBackend::append` assigns consecutive LSNs (1, 2, 3, ... with no gaps, across restarts)
//!   and returns once the entry is as durable as the log's durability setting says.
//! - `StoreBackend::write` applies one batch atomically. After a crash, the store holds a prefix
//!   of the batches written (at least up to the last `flush`). `flush(lsn)` makes every batch
//!   written so far durable and records `lsn` as the flushed LSN.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{EngineError, Result};

/// The store's column families the engine writes.
///
/// Everything that must stay mutually consistent after a crash lives in ONE column family,
/// because the store only promises that a single column family survives as a prefix of its
/// writes (RocksDB flushes column families independently while its WAL is off):
/// - `Rows` holds the catalog (`0u64 BE | "catalog" | table_id BE` -> schema JSON), the engine's
///   applied-LSN marker (`0u64 BE | "applied"`) and the live rows
///   (`table_id BE | encoded pk` -> `row_id LE | values`);
/// - `Index` holds segment manifests (`table_id BE | segment_id BE`, 16 bytes) followed by their
///   blob chunks (`... | chunk u32 BE`, 20 bytes). A blob is written one chunk per batch into
///   the chunk numbers the blob in force does not use, its manifest (naming the new run) last,
///   so this column family being a prefix of its writes is what makes a segment write atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    Rows,
    Index,
}

/// One atomic batch of puts and deletes: `ranges`, then `ops`, then `packed`.
#[derive(Debug, Default, Clone)]
pub struct StoreWrite {
    /// `(cf, from, to)`: every key in `[from, to)` is deleted, *before* `ops` are applied (so
    /// a batch can clear a range and refill it).
    pub ranges: Vec<(Cf, Vec<u8>, Vec<u8>)>,
    /// `(cf, key, Some(value))` puts, `(cf, key, None)` deletes, applied in order.
    pub ops: Vec<(Cf, Vec<u8>, Option<Vec<u8>>)>,
    /// More puts and deletes, applied in order after `ops`, encoded into one buffer (rows:
    /// no allocation per key or value, one free for the whole batch).
    pub packed: PackedOps,
    /// The LSN this batch brings the store to (recorded by stores that track it).
    pub lsn: u64,
}

/// Puts and deletes encoded back to back into one buffer: each operation's key, then its
/// value (puts), with the end offsets of both kept aside.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PackedOps {
    bytes: Vec<u8>,
    /// Per operation: column family, end of the key, end of the value (`None`: a delete).
    /// The key starts where the previous operation ended.
    ends: Vec<(Cf, usize, Option<usize>)>,
}

impl PackedOps {
    /// Empty, with room for as many bytes and operations as `like` holds.
    pub fn with_capacity(like: &PackedOps) -> Self {
        PackedOps {
            bytes: Vec::with_capacity(like.bytes.len()),
            ends: Vec::with_capacity(like.ends.len()),
        }
    }
    /// A put whose key and value `key` and `value` append to the buffer they are given.
    pub fn put_with(
        &mut self,
        cf: Cf,
        key: impl FnOnce(&mut Vec<u8>),
        value: impl FnOnce(&mut Vec<u8>),
    ) {
        key(&mut self.bytes);
        let key_end = self.bytes.len();
        value(&mut self.bytes);
        self.ends.push((cf, key_end, Some(self.bytes.len())));
    }
    /// A delete of the key `key` appends to the buffer it is given.
    pub fn delete_with(&mut self, cf: Cf, key: impl FnOnce(&mut Vec<u8>)) {
        key(&mut self.bytes);
        self.ends.push((cf, self.bytes.len(), None));
    }
    /// Moves `other`'s operations after this one's (`other` is left empty, its memory kept).
    pub fn append(&mut self, other: &mut PackedOps) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend(
            other
                .ends
                .iter()
                .map(|&(cf, k, v)| (cf, base + k, v.map(|v| base + v))),
        );
        other.bytes.clear();
        other.ends.clear();
    }
    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    /// The operations in order: `(cf, key, Some(value))` puts, `(cf, key, None)` deletes.
    pub fn iter(&self) -> impl Iterator<Item = (Cf, &[u8], Option<&[u8]>)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(cf, key_end, value_end)| {
            let key = self.bytes.get(start..key_end).unwrap_or_default();
            let value = value_end.map(|end| self.bytes.get(key_end..end).unwrap_or_default());
            start = value_end.unwrap_or(key_end);
            (cf, key, value)
        })
    }
}

impl StoreWrite {
    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push((cf, key, Some(value)));
    }
    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.ops.push((cf, key, None));
    }
    /// Deletes every key in `[from, to)` of `cf` (before the batch's other operations).
    pub fn delete_range(&mut self, cf: Cf, from: Vec<u8>, to: Vec<u8>) {
        self.ranges.push((cf, from, to));
    }
}

/// The callback of [`StoreBackend::scan_prefix`]: gets each key and value, returns whether to
/// go on.
pub type ScanFn<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

/// The write-ahead log as the engine sees it.
pub trait LogBackend: Send + Sync {
    /// Appends one entry; returns its LSN.
    fn append(&self, payload: &[u8]) -> Result<u64>;
    /// Calls `f` for every entry with LSN >= `from`, in order.
    fn replay(&self, from: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()>;
    /// Drops entries below `lsn` (whole files, so some may remain).
    fn truncate_below(&self, lsn: u64) -> Result<()>;
    /// Makes every appended entry durable.
    fn sync(&self) -> Result<()>;
    /// LSN of the last entry (0 when empty).
    fn last_lsn(&self) -> u64;
}

/// The segment store as the engine sees it.
pub trait StoreBackend: Send + Sync {
    /// Applies a batch atomically.
    fn write(&self, batch: StoreWrite) -> Result<()>;
    /// Point read.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Calls `f` for every entry whose key starts with `prefix`, in key order, until it returns
    /// `false`.
    fn scan_prefix(&self, cf: Cf, prefix: &[u8], f: &mut ScanFn<'_>) -> Result<()>;
    /// Calls `f` for every entry with `start <= key < end`, in key order, until it returns
    /// `false` (one part of a prefix that several threads scan).
    fn scan_range(&self, cf: Cf, start: &[u8], end: &[u8], f: &mut ScanFn<'_>) -> Result<()>;
    /// The last key starting with `prefix`.
    fn last_key(&self, cf: Cf, prefix: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Makes everything written durable and records `lsn` as flushed.
    fn flush(&self, lsn: u64) -> Result<()>;
    /// The last flushed LSN recorded.
    fn flushed_lsn(&self) -> u64;
    /// Writes a consistent copy of the store into `dir` (a backup).
    fn checkpoint_to(&self, dir: &Path) -> Result<()>;
    /// Pauses (`true`) or resumes background reorganisation of what was written (RocksDB's
    /// compactions of the rows) during a bulk load such as WAL replay. Only a performance
    /// hint: what is written and read is the same either way.
    fn pause_compactions(&self, _paused: bool) -> Result<()> {
        Ok(())
    }
}

/// An in-memory log. `crash()` drops entries appended after the last `sync` unless `sync_each`.
#[derive(Default)]
pub struct MemLog {
    inner: Mutex<MemLogInner>,
    /// When true, every append is immediately durable (durability `full`).
    pub sync_each: bool,
}

#[derive(Default, Clone)]
struct MemLogInner {
    entries: BTreeMap<u64, Vec<u8>>,
    next: u64,
    durable_upto: u64,
}

impl MemLog {
    pub fn new(sync_each: bool) -> Arc<Self> {
        Arc::new(MemLog {
            inner: Mutex::new(MemLogInner {
                next: 1,
                ..Default::default()
            }),
            sync_each,
        })
    }
    /// Simulates a crash: returns a new log holding only the durable entries.
    pub fn crash(&self) -> Arc<Self> {
        let g = self.inner.lock();
        let mut inner = g.clone();
        let upto = g.durable_upto;
        inner.entries.retain(|&l, _| l <= upto);
        inner.next = inner
            .entries
            .keys()
            .next_back()
            .map_or(inner.next.min(upto + 1), |l| l + 1);
        inner.next = inner.next.max(upto + 1);
        Arc::new(MemLog {
            inner: Mutex::new(inner),
            sync_each: self.sync_each,
        })
    }
}

impl LogBackend for MemLog {
    fn append(&self, payload: &[u8]) -> Result<u64> {
        let mut g = self.inner.lock();
        let lsn = g.next;
        g.next += 1;
        g.entries.insert(lsn, payload.to_vec());
        if self.sync_each {
            g.durable_upto = lsn;
        }
        Ok(lsn)
    }
    fn replay(&self, from: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let entries: Vec<(u64, Vec<u8>)> = self
            .inner
            .lock()
            .entries
            .range(from..)
            .map(|(l, e)| (*l, e.clone()))
            .collect();
        for (l, e) in entries {
            f(l, &e)?;
        }
        Ok(())
    }
    fn truncate_below(&self, lsn: u64) -> Result<()> {
        let mut g = self.inner.lock();
        g.entries = g.entries.split_off(&lsn);
        Ok(())
    }
    fn sync(&self) -> Result<()> {
        let mut g = self.inner.lock();
        g.durable_upto = g.next - 1;
        Ok(())
    }
    fn last_lsn(&self) -> u64 {
        self.inner.lock().next - 1
    }
}

/// An in-memory store. `crash()` keeps the state as of the last `flush` plus, optionally, a
/// prefix of the batches written after it (as a store that flushed some memtables would).
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<MemStoreInner>,
    /// When set, every `write` fails with ENOSPC (a full disk), for fault-injection tests.
    pub fail_writes: std::sync::atomic::AtomicBool,
}

type Tree = BTreeMap<(Cf, Vec<u8>), Vec<u8>>;

#[derive(Default)]
struct MemStoreInner {
    live: Tree,
    durable: Tree,
    since_flush: Vec<StoreWrite>,
    flushed_lsn: u64,
    durable_flushed_lsn: u64,
}

/// Calls `f` on each copied entry until it returns `false`.
fn visit(items: Vec<(Vec<u8>, Vec<u8>)>, f: &mut ScanFn<'_>) -> Result<()> {
    for (k, v) in items {
        if !f(&k, &v)? {
            break;
        }
    }
    Ok(())
}

fn apply(tree: &mut Tree, batch: &StoreWrite) {
    for (cf, from, to) in &batch.ranges {
        let doomed: Vec<(Cf, Vec<u8>)> = tree
            .range((*cf, from.clone())..(*cf, to.clone()))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            tree.remove(&k);
        }
    }
    let ops = batch
        .ops
        .iter()
        .map(|(cf, k, v)| (*cf, &k[..], v.as_deref()));
    for (cf, k, v) in ops.chain(batch.packed.iter()) {
        match v {
            Some(v) => {
                tree.insert((cf, k.to_vec()), v.to_vec());
            }
            None => {
                tree.remove(&(cf, k.to_vec()));
            }
        }
    }
}

impl MemStore {
    pub fn new() -> Arc<Self> {
        Arc::new(MemStore::default())
    }
    /// Simulates a crash that keeps the flushed state plus the first `keep` unflushed batches.
    pub fn crash(&self, keep: usize) -> Arc<Self> {
        let g = self.inner.lock();
        let mut tree = g.durable.clone();
        for b in g.since_flush.iter().take(keep) {
            apply(&mut tree, b);
        }
        Arc::new(MemStore {
            fail_writes: Default::default(),
            inner: Mutex::new(MemStoreInner {
                live: tree.clone(),
                durable: tree,
                since_flush: Vec::new(),
                flushed_lsn: g.durable_flushed_lsn,
                durable_flushed_lsn: g.durable_flushed_lsn,
            }),
        })
    }
    /// Number of batches written since the last flush.
    pub fn unflushed(&self) -> usize {
        self.inner.lock().since_flush.len()
    }
}

impl StoreBackend for MemStore {
    fn write(&self, batch: StoreWrite) -> Result<()> {
        if self.fail_writes.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(vela_storage::StorageError::Io {
                op: "write",
                path: "<memory store>".into(),
                source: std::io::Error::from_raw_os_error(28),
            }
            .into());
        }
        let mut g = self.inner.lock();
        apply(&mut g.live, &batch);
        g.since_flush.push(batch);
        Ok(())
    }
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.lock().live.get(&(cf, key.to_vec())).cloned())
    }
    fn scan_prefix(&self, cf: Cf, prefix: &[u8], f: &mut ScanFn<'_>) -> Result<()> {
        let items: Vec<(Vec<u8>, Vec<u8>)> = self
            .inner
            .lock()
            .live
            .range((cf, prefix.to_vec())..)
            .take_while(|((c, k), _)| *c == cf && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        visit(items, f)
    }
    fn scan_range(&self, cf: Cf, start: &[u8], end: &[u8], f: &mut ScanFn<'_>) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        let items: Vec<(Vec<u8>, Vec<u8>)> = self
            .inner
            .lock()
            .live
            .range((cf, start.to_vec())..(cf, end.to_vec()))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        visit(items, f)
    }
    fn last_key(&self, cf: Cf, prefix: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .inner
            .lock()
            .live
            .range((cf, prefix.to_vec())..)
            .take_while(|((c, k), _)| *c == cf && k.starts_with(prefix))
            .last()
            .map(|((_, k), _)| k.clone()))
    }
    fn flush(&self, lsn: u64) -> Result<()> {
        let mut g = self.inner.lock();
        g.durable = g.live.clone();
        g.since_flush.clear();
        g.flushed_lsn = lsn;
        g.durable_flushed_lsn = lsn;
        Ok(())
    }
    fn flushed_lsn(&self) -> u64 {
        self.inner.lock().flushed_lsn
    }
    fn checkpoint_to(&self, _dir: &Path) -> Result<()> {
        Err(EngineError::NotPossible(
            "the in-memory store cannot write a backup".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(p: &mut PackedOps, cf: Cf, k: &[u8], v: &[u8]) {
        p.put_with(cf, |o| o.extend_from_slice(k), |o| o.extend_from_slice(v));
    }

    /// Packed operations come back in order with their keys and values (empty ones too),
    /// also after appending one packed set to another.
    #[test]
    fn packed_ops_round_trip_and_append() {
        let mut a = PackedOps::default();
        put(&mut a, Cf::Rows, b"k1", b"value one");
        a.delete_with(Cf::Index, |o| o.extend_from_slice(b"k2"));
        put(&mut a, Cf::Rows, b"", b"");
        let mut b = PackedOps::default();
        b.delete_with(Cf::Rows, |o| o.extend_from_slice(b"k3"));
        put(&mut b, Cf::Index, b"k4", b"v4");
        a.append(&mut b);
        assert!(b.is_empty());
        let got: Vec<(Cf, Vec<u8>, Option<Vec<u8>>)> = a
            .iter()
            .map(|(c, k, v)| (c, k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect();
        let want: Vec<(Cf, Vec<u8>, Option<Vec<u8>>)> = vec![
            (Cf::Rows, b"k1".to_vec(), Some(b"value one".to_vec())),
            (Cf::Index, b"k2".to_vec(), None),
            (Cf::Rows, vec![], Some(vec![])),
            (Cf::Rows, b"k3".to_vec(), None),
            (Cf::Index, b"k4".to_vec(), Some(b"v4".to_vec())),
        ];
        assert_eq!(got, want);
        assert_eq!(a.len(), 5);
    }

    /// A batch applies `ranges`, then `ops`, then `packed`: a packed put of a key an op
    /// deleted (or a range cleared) stays.
    #[test]
    fn packed_ops_apply_after_ops_and_ranges() {
        let store = MemStore::new();
        let mut w = StoreWrite::default();
        w.delete_range(Cf::Rows, b"a".to_vec(), b"z".to_vec());
        w.delete(Cf::Rows, b"k".to_vec());
        put(&mut w.packed, Cf::Rows, b"k", b"new");
        put(&mut w.packed, Cf::Rows, b"m", b"1");
        w.packed
            .delete_with(Cf::Rows, |o| o.extend_from_slice(b"m"));
        store.write(w).unwrap();
        assert_eq!(store.get(Cf::Rows, b"k").unwrap(), Some(b"new".to_vec()));
        assert_eq!(store.get(Cf::Rows, b"m").unwrap(), None);
    }
}
