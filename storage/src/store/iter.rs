//! [`StoreIter`]: forward iteration over a key range of one column family, yielding owned
//! `(key, value)` pairs and reporting RocksDB errors as items instead of ending silently.

use std::path::Path;

use rocksdb::{DBRawIteratorWithThreadMode, DB};

use crate::error::{Result, StorageError};

/// Iterator over `(key, value)` pairs in key order. Yields `Err` once (then ends) if RocksDB
/// reports an error (e.g. a checksum mismatch in an SST block).
pub struct StoreIter<'a> {
    inner: DBRawIteratorWithThreadMode<'a, DB>,
    path: &'a Path,
    done: bool,
}

impl<'a> StoreIter<'a> {
    pub(crate) fn new(inner: DBRawIteratorWithThreadMode<'a, DB>, path: &'a Path) -> Self {
        StoreIter {
            inner,
            path,
            done: false,
        }
    }
}

impl Iterator for StoreIter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some((k, v)) = self.inner.item() {
            let item = (k.to_vec(), v.to_vec());
            self.inner.next();
            return Some(Ok(item));
        }
        self.done = true;
        match self.inner.status() {
            Ok(()) => None,
            Err(source) => Some(Err(StorageError::RocksDb {
                path: self.path.to_path_buf(),
                source,
            })),
        }
    }
}

impl std::iter::FusedIterator for StoreIter<'_> {}

impl std::fmt::Debug for StoreIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreIter")
            .field("path", &self.path)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
