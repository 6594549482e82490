//! [`StoreBatch`]: an atomic group of puts and deletes across column families, applied by
//! [`SegmentStore::write`](super::SegmentStore::write) with RocksDB's WAL off.

use rocksdb::{ColumnFamily, WriteBatch};

use super::cf::Cf;
use super::meta;
use super::SegmentStore;
use crate::error::{Result, StorageError};

/// An atomic write batch. Built with [`SegmentStore::batch`], applied (all or nothing) with
/// [`SegmentStore::write`]. Operations apply in the order they were added, so a put after a
/// delete of the same key wins.
pub struct StoreBatch<'s> {
    pub(crate) store: &'s SegmentStore,
    pub(crate) inner: WriteBatch,
    /// The first reason this batch must be refused by `write` (a reserved `meta` key, or an
    /// oversized blob), recorded here so the builder methods stay infallible.
    pub(crate) refused: Option<String>,
    /// Column family handles looked up so far (by `Cf as usize`): a lookup by name per
    /// operation showed in replay's profile (thousands of puts per batch).
    handles: [Option<&'s ColumnFamily>; Cf::ALL.len()],
}

impl<'s> StoreBatch<'s> {
    pub(crate) fn new(store: &'s SegmentStore) -> Self {
        StoreBatch {
            store,
            inner: WriteBatch::default(),
            refused: None,
            handles: [None; Cf::ALL.len()],
        }
    }

    /// Puts `value` at `key` in `cf`.
    pub fn put(&mut self, cf: Cf, key: &[u8], value: &[u8]) {
        if cf == Cf::Meta && meta::is_reserved(key) {
            self.refuse("put of a reserved meta key (first byte 0x00)");
            return;
        }
        if let Some(h) = self.handle(cf) {
            self.inner.put_cf(h, key, value);
        }
    }

    /// Deletes `key` from `cf` (a no-op if absent).
    pub fn delete(&mut self, cf: Cf, key: &[u8]) {
        if cf == Cf::Meta && meta::is_reserved(key) {
            self.refuse("delete of a reserved meta key (first byte 0x00)");
            return;
        }
        if let Some(h) = self.handle(cf) {
            self.inner.delete_cf(h, key);
        }
    }

    /// Deletes every key `k` in `cf` with `from <= k < to`.
    pub fn delete_range(&mut self, cf: Cf, from: &[u8], to: &[u8]) {
        if cf == Cf::Meta && meta::range_touches_reserved(from, Some(to)) {
            self.refuse("delete_range covering reserved meta keys (first byte 0x00)");
            return;
        }
        if let Some(h) = self.handle(cf) {
            self.inner.delete_range_cf(h, from, to);
        }
    }

    /// Number of operations in the batch.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True if the batch holds no operations.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Size of the serialized batch in bytes.
    pub fn size_in_bytes(&self) -> usize {
        self.inner.size_in_bytes()
    }

    pub(crate) fn refuse(&mut self, reason: &str) {
        if self.refused.is_none() {
            self.refused = Some(reason.to_string());
        }
    }

    /// The RocksDB handle of `cf`. Every handle exists once the store is open; should one ever
    /// be missing the batch is refused rather than a panic.
    pub(crate) fn handle(&mut self, cf: Cf) -> Option<&'s ColumnFamily> {
        let slot = cf as usize;
        if let Some(h) = self.handles.get(slot).copied().flatten() {
            return Some(h);
        }
        let h = self.store.db.cf_handle(cf.name());
        match (h, self.handles.get_mut(slot)) {
            (None, _) => self.refuse("column family handle missing"),
            (Some(h), Some(cached)) => *cached = Some(h),
            (Some(_), None) => {}
        }
        h
    }

    /// Consumes the batch for `write`: the inner batch, or the reason it is refused.
    pub(crate) fn into_inner(self) -> Result<WriteBatch> {
        match self.refused {
            Some(reason) => Err(StorageError::InvalidArgument(format!(
                "write batch refused: {reason}"
            ))),
            None => Ok(self.inner),
        }
    }
}

impl std::fmt::Debug for StoreBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBatch")
            .field("ops", &self.inner.len())
            .field("bytes", &self.inner.size_in_bytes())
            .field("refused", &self.refused)
            .finish()
    }
}
