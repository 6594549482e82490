//! The engine's storage seam implemented by `vela-storage`: [`WalLog`] over [`Wal`] and
//! [`RocksStore`] over [`SegmentStore`], and [`open_storage`], which lays out a data directory
//! (`DataDir`), locks it and opens both.

use std::path::Path;
use std::sync::Arc;

use vela_storage::{DataDir, DirLock, SegmentStore, StoreOptions, Wal, WalOptions};

use crate::backend::{Cf, LogBackend, ScanFn, StoreBackend, StoreWrite};
use crate::error::Result;

/// [`LogBackend`] over the storage layer's WAL.
pub struct WalLog(pub Wal);

impl LogBackend for WalLog {
    fn append(&self, payload: &[u8]) -> Result<u64> {
        Ok(self.0.append(payload)?)
    }
    fn replay(&self, from: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let from = from.max(self.0.first_lsn());
        if from > self.0.last_lsn() {
            return Ok(());
        }
        let reader = self.0.reader_from(from)?;
        let last = self.0.last_lsn();
        for item in reader {
            let (lsn, payload) = item?;
            f(lsn, &payload)?;
            if lsn >= last {
                break;
            }
        }
        Ok(())
    }
    fn truncate_below(&self, lsn: u64) -> Result<()> {
        self.0.truncate_below(lsn)?;
        Ok(())
    }
    fn sync(&self) -> Result<()> {
        self.0.sync()?;
        Ok(())
    }
    fn last_lsn(&self) -> u64 {
        self.0.last_lsn()
    }
}

/// [`StoreBackend`] over the RocksDB segment store.
pub struct RocksStore(pub SegmentStore);

fn cf(c: Cf) -> vela_storage::Cf {
    match c {
        Cf::Rows => vela_storage::Cf::Rows,
        Cf::Index => vela_storage::Cf::Index,
    }
}

impl StoreBackend for RocksStore {
    fn write(&self, batch: StoreWrite) -> Result<()> {
        let mut b = self.0.batch();
        for (c, from, to) in &batch.ranges {
            b.delete_range(cf(*c), from, to);
        }
        let ops = batch.ops.iter().map(|(c, k, v)| (*c, &k[..], v.as_deref()));
        for (c, k, v) in ops.chain(batch.packed.iter()) {
            match v {
                Some(v) => b.put(cf(c), k, v),
                None => b.delete(cf(c), k),
            }
        }
        self.0.write(b, batch.lsn)?;
        Ok(())
    }
    fn get(&self, c: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(cf(c), key)?)
    }
    fn scan_prefix(&self, c: Cf, prefix: &[u8], f: &mut ScanFn<'_>) -> Result<()> {
        self.0.scan_prefix(cf(c), prefix, |k, v| f(k, v))
    }
    fn scan_range(&self, c: Cf, start: &[u8], end: &[u8], f: &mut ScanFn<'_>) -> Result<()> {
        self.0.scan_range(cf(c), start, Some(end), |k, v| f(k, v))
    }
    fn last_key(&self, c: Cf, prefix: &[u8]) -> Result<Option<Vec<u8>>> {
        let end = vela_storage::store::keys::prefix_end(prefix);
        Ok(self
            .0
            .last_in_range(cf(c), prefix, end.as_deref())?
            .map(|(k, _)| k))
    }
    fn flush(&self, lsn: u64) -> Result<()> {
        let lsn = lsn.max(self.0.flushed_lsn());
        Ok(self.0.flush(lsn)?)
    }
    fn flushed_lsn(&self) -> u64 {
        self.0.flushed_lsn()
    }
    fn checkpoint_to(&self, dir: &Path) -> Result<()> {
        self.0.checkpoint_to(dir)?;
        Ok(())
    }
    fn pause_compactions(&self, paused: bool) -> Result<()> {
        Ok(self
            .0
            .set_auto_compactions(vela_storage::Cf::Rows, !paused)?)
    }
}

/// An opened data directory: its lock, WAL and store (drop order: store and WAL, then lock).
pub struct OpenedStorage {
    pub log: Arc<WalLog>,
    pub store: Arc<RocksStore>,
    pub lock: Option<DirLock>,
    pub dir: DataDir,
}

/// Creates (if needed) and locks the data directory `root`, opens its store and WAL.
pub fn open_storage(
    root: &Path,
    wal: WalOptions,
    store: &StoreOptions,
    lock: bool,
) -> Result<OpenedStorage> {
    let dir = DataDir::new(root);
    dir.create()?;
    let lock = if lock {
        Some(DirLock::acquire(dir.root())?)
    } else {
        None
    };
    let store = SegmentStore::open(&dir.store_dir(), store)?;
    let wal = Wal::open(dir.wal_dir(), wal)?;
    Ok(OpenedStorage {
        log: Arc::new(WalLog(wal)),
        store: Arc::new(RocksStore(store)),
        lock,
        dir,
    })
}
