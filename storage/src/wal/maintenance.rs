//! Keeping the log short and copying it: `truncate_below` (drop files wholly below a
//! checkpoint) and `backup_to` (a consistent copy for backups).

use std::path::{Path, PathBuf};

use super::commit::Shared;
use super::writer::{io_err, FileMeta};
use super::Lsn;
use crate::error::{Result, StorageError};

const COPY_CHUNK_BYTES: usize = 1 << 20;

/// What `Wal::backup_to` copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// The copied files, in `dest_dir`, oldest first.
    pub files: Vec<PathBuf>,
    /// Bytes copied.
    pub bytes: u64,
    /// LSN of the oldest entry in the copy.
    pub first_lsn: Lsn,
    /// LSN of the last entry in the copy (everything acknowledged before the call).
    pub last_lsn: Lsn,
}

impl Shared {
    /// Removes every file all of whose entries are below `lsn` (never the active file).
    /// Returns how many files were removed.
    pub(crate) fn truncate_below(&self, lsn: Lsn) -> Result<usize> {
        let _m = self.maintenance.lock();
        let victims: Vec<FileMeta> = {
            let mut st = self.state.lock();
            // File i holds LSNs [first_i, first_{i+1}); all below `lsn` iff first_{i+1} <= lsn.
            let n = st
                .files
                .windows(2)
                .take_while(|w| w[1].first_lsn <= lsn)
                .count();
            st.files.drain(..n).collect()
        };
        if victims.is_empty() {
            return Ok(0);
        }
        for v in &victims {
            self.fs
                .remove_file(&v.path)
                .map_err(|e| io_err("remove", &v.path, e))?;
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| io_err("fsync directory", &self.dir, e))?;
        tracing::debug!(files = victims.len(), below = lsn, "WAL files removed");
        Ok(victims.len())
    }

    /// Syncs, then copies every file (the active one up to its synced length) to `dest`.
    pub(crate) fn backup_to(&self, dest: &Path) -> Result<BackupInfo> {
        let _m = self.maintenance.lock();
        let (files, durable) = {
            let mut st = self.state.lock();
            self.sync_locked(&mut st)?;
            let durable = st.durable;
            let files: Vec<FileMeta> = st
                .files
                .iter()
                .filter(|f| f.first_lsn <= durable.file_first_lsn)
                .cloned()
                .collect();
            (files, durable)
        };
        self.fs
            .create_dir_all(dest)
            .map_err(|e| io_err("create directory", dest, e))?;
        let mut info = BackupInfo {
            files: Vec::new(),
            bytes: 0,
            first_lsn: files.first().map_or(durable.lsn + 1, |f| f.first_lsn),
            last_lsn: durable.lsn,
        };
        let mut buf = vec![0u8; COPY_CHUNK_BYTES];
        for f in &files {
            let limit = (f.first_lsn == durable.file_first_lsn).then_some(durable.len);
            let Some(name) = f.path.file_name() else {
                continue;
            };
            let to = dest.join(name);
            info.bytes += self.copy_file(&f.path, &to, limit, &mut buf)?;
            info.files.push(to);
        }
        self.fs
            .sync_dir(dest)
            .map_err(|e| io_err("fsync directory", dest, e))?;
        Ok(info)
    }

    /// Copies `from` to the new file `to` (up to `limit` bytes) and fsyncs it.
    fn copy_file(&self, from: &Path, to: &Path, limit: Option<u64>, buf: &mut [u8]) -> Result<u64> {
        let src = self.fs.open(from).map_err(|e| io_err("open", from, e))?;
        let len = src.len().map_err(|e| io_err("stat", from, e))?;
        let len = limit.map_or(len, |l| l.min(len));
        let dst = self
            .fs
            .create_new(to)
            .map_err(|e| io_err("create", to, e))?;
        let mut off = 0u64;
        while off < len {
            let want = (len - off).min(buf.len() as u64) as usize;
            let n = src
                .read_at(&mut buf[..want], off)
                .map_err(|e| io_err("read", from, e))?;
            if n == 0 {
                return Err(StorageError::Corrupt {
                    path: from.to_path_buf(),
                    reason: format!("file ended at {off} bytes while copying {len}"),
                });
            }
            dst.write_all_at(&buf[..n], off)
                .map_err(|e| io_err("write", to, e))?;
            off += n as u64;
        }
        dst.sync_data().map_err(|e| StorageError::SyncFailed {
            path: to.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(len)
    }
}
