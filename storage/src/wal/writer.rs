//! The active file and the commit leader's I/O: writing a group of frames, rolling over to a
//! new file, creating files with their header.
//!
//! Only the current commit leader touches the `ActiveWriter` (it sits behind its own mutex,
//! uncontended because leadership is exclusive), so these functions run without the WAL's
//! state lock held.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{self, HEADER_LEN};
use super::fs::{WalFile, WalFs};
use super::Lsn;
use crate::error::{Result, StorageError};

/// A frame written as its own `write` call instead of being copied into the group buffer.
const DIRECT_WRITE_BYTES: usize = 256 * 1024;

/// One WAL file as the rest of the WAL knows it.
#[derive(Debug, Clone)]
pub(crate) struct FileMeta {
    pub first_lsn: Lsn,
    pub path: PathBuf,
}

/// The file new entries go to.
#[derive(Debug)]
pub(crate) struct ActiveWriter {
    pub file: Arc<dyn WalFile>,
    pub meta: FileMeta,
    /// Bytes written so far (header included); the next frame goes here.
    pub len: u64,
    /// Entries in this file; a file with none is never rolled over.
    pub entries: u64,
    /// Reusable buffer that a group's frames are concatenated into.
    pub buf: Vec<u8>,
}

/// A queued entry: `[16 reserved bytes][payload]`, sealed by the leader.
#[derive(Debug)]
pub(crate) struct QueuedFrame {
    pub lsn: Lsn,
    pub bytes: Vec<u8>,
}

/// What the leader did, for publication under the state lock.
#[derive(Debug, Default)]
pub(crate) struct GroupOutcome {
    /// Files created by rollover, oldest first.
    pub new_files: Vec<(FileMeta, Arc<dyn WalFile>)>,
    /// After a rollover, everything up to the end of the previous file is durable:
    /// `(last lsn of that file, its first lsn, its length)`.
    pub synced_old: Option<(Lsn, Lsn, u64)>,
    /// Where the written data ends: `(last lsn, file first lsn, length)`.
    pub end: Option<(Lsn, Lsn, u64)>,
    /// Whether the group was fsynced (Full durability).
    pub synced: bool,
    /// Number of `sync_data` calls made.
    pub fsyncs: u64,
}

/// A failed I/O in the commit path; it poisons the WAL.
#[derive(Debug, Clone)]
pub(crate) struct Poison {
    pub op: &'static str,
    pub path: PathBuf,
    pub kind: std::io::ErrorKind,
    pub message: String,
    /// True if an fsync failed (as opposed to a write or a file creation).
    pub sync: bool,
}

impl Poison {
    pub(crate) fn new(op: &'static str, path: &Path, e: &std::io::Error, sync: bool) -> Poison {
        Poison {
            op,
            path: path.to_path_buf(),
            kind: e.kind(),
            message: e.to_string(),
            sync,
        }
    }

    /// The error a writer waiting on the failed group gets.
    pub(crate) fn to_error(&self) -> StorageError {
        if self.sync {
            StorageError::SyncFailed {
                path: self.path.clone(),
                message: self.message.clone(),
            }
        } else {
            StorageError::Io {
                op: self.op,
                path: self.path.clone(),
                source: std::io::Error::new(self.kind, self.message.clone()),
            }
        }
    }
}

pub(crate) fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `wal-<first_lsn>.log` in `dir` with its header, and makes file and directory entry
/// durable before returning (so a file never exists on disk without a complete header, except
/// torn by a crash in this very function, which recovery handles).
pub(crate) fn create_wal_file(
    fs: &dyn WalFs,
    dir: &Path,
    first_lsn: Lsn,
) -> Result<(FileMeta, Arc<dyn WalFile>), Poison> {
    let path = dir.join(format::file_name(first_lsn));
    let file = fs
        .create_new(&path)
        .map_err(|e| Poison::new("create", &path, &e, false))?;
    file.write_all_at(&format::encode_header(first_lsn), 0)
        .map_err(|e| Poison::new("write header", &path, &e, false))?;
    file.sync_data()
        .map_err(|e| Poison::new("fsync", &path, &e, true))?;
    fs.sync_dir(dir)
        .map_err(|e| Poison::new("fsync directory", dir, &e, true))?;
    Ok((FileMeta { first_lsn, path }, file))
}

impl ActiveWriter {
    pub(crate) fn new(file: Arc<dyn WalFile>, meta: FileMeta, len: u64, entries: u64) -> Self {
        debug_assert!(len >= HEADER_LEN);
        ActiveWriter {
            file,
            meta,
            len,
            entries,
            buf: Vec::new(),
        }
    }

    /// Seals and writes `frames` (consecutive LSNs), rolling over as needed, then fsyncs if
    /// `sync`. On error the outcome so far is returned with the poison; nothing of the group
    /// may be acknowledged then.
    pub(crate) fn write_group(
        &mut self,
        fs: &dyn WalFs,
        dir: &Path,
        frames: &mut [QueuedFrame],
        max_file_bytes: u64,
        sync: bool,
    ) -> (GroupOutcome, Result<(), Poison>) {
        let mut out = GroupOutcome::default();
        let r = self.write_frames(fs, dir, frames, max_file_bytes, &mut out);
        let r = r.and_then(|()| {
            if sync {
                out.fsyncs += 1;
                self.file
                    .sync_data()
                    .map_err(|e| Poison::new("fsync", &self.meta.path, &e, true))?;
                out.synced = true;
            }
            Ok(())
        });
        (out, r)
    }

    fn write_frames(
        &mut self,
        fs: &dyn WalFs,
        dir: &Path,
        frames: &mut [QueuedFrame],
        max_file_bytes: u64,
        out: &mut GroupOutcome,
    ) -> Result<(), Poison> {
        self.buf.clear();
        for f in frames.iter_mut() {
            format::seal_frame(&mut f.bytes, f.lsn);
            let flen = f.bytes.len() as u64;
            let pending = self.buf.len() as u64;
            if self.entries > 0 && self.len + pending + flen > max_file_bytes {
                self.flush()?;
                self.roll_over(fs, dir, f.lsn, out)?;
            }
            if f.bytes.len() >= DIRECT_WRITE_BYTES {
                self.flush()?;
                self.file
                    .write_all_at(&f.bytes, self.len)
                    .map_err(|e| Poison::new("write", &self.meta.path, &e, false))?;
                self.len += flen;
            } else {
                self.buf.extend_from_slice(&f.bytes);
            }
            self.entries += 1;
            out.end = Some((f.lsn, self.meta.first_lsn, self.len + self.buf.len() as u64));
        }
        self.flush()
    }

    fn flush(&mut self) -> Result<(), Poison> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.buf, self.len)
            .map_err(|e| Poison::new("write", &self.meta.path, &e, false))?;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Fsyncs the full file and starts `wal-<next_lsn>.log`.
    fn roll_over(
        &mut self,
        fs: &dyn WalFs,
        dir: &Path,
        next_lsn: Lsn,
        out: &mut GroupOutcome,
    ) -> Result<(), Poison> {
        out.fsyncs += 1;
        self.file
            .sync_data()
            .map_err(|e| Poison::new("fsync", &self.meta.path, &e, true))?;
        out.synced_old = Some((next_lsn.saturating_sub(1), self.meta.first_lsn, self.len));
        let (meta, file) = create_wal_file(fs, dir, next_lsn)?;
        out.fsyncs += 2;
        out.new_files.push((meta.clone(), file.clone()));
        self.file = file;
        self.meta = meta;
        self.len = HEADER_LEN;
        self.entries = 0;
        tracing::debug!(path = %self.meta.path.display(), "WAL rolled over");
        Ok(())
    }
}
