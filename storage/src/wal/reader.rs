//! `WalReader`: a stream of acknowledged entries from a given LSN on, across files, that
//! keeps following new appends.
//!
//! The engine replays with it on open (`try_next` until `None`); replication tails it
//! (`next_timeout`). It returns only entries up to the WAL's acknowledged LSN (`last_lsn()`):
//! under `Full` those are durable; under `Normal`/`Off` they are written to the OS (see the
//! module docs of `wal`). It never returns a half-written frame and re-checks every frame's
//! crc and LSN, so a file damaged after recovery gives an error, not bad data.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::commit::Shared;
use super::cursor::FileCursor;
use super::format::{self, FrameHead, HeaderCheck, FRAME_HEAD_LEN, HEADER_LEN};
use super::writer::io_err;
use super::Lsn;
use crate::error::{Result, StorageError};

/// Entries above this size are checked against the file's length before allocation.
const LARGE_ENTRY_BYTES: u32 = 64 * 1024;

/// Streams `(lsn, payload)` entries; see the module docs. Created by `Wal::reader_from`.
#[derive(Debug)]
pub struct WalReader {
    shared: Arc<Shared>,
    next_lsn: Lsn,
    cur: Option<Open>,
}

#[derive(Debug)]
struct Open {
    first_lsn: Lsn,
    path: PathBuf,
    cursor: FileCursor,
    /// The LSN of the frame at the cursor.
    cursor_lsn: Lsn,
}

/// What the state lock says about where `next_lsn` is.
struct Where {
    file_first_lsn: Lsn,
    path: Option<PathBuf>,
    /// Readable bytes in that file: the acknowledged end for the active file.
    limit: u64,
}

impl WalReader {
    pub(crate) fn new(shared: Arc<Shared>, from: Lsn) -> Result<WalReader> {
        let from = from.max(1);
        {
            let st = shared.state.lock();
            let oldest = st.files.first().map_or(st.next_lsn, |f| f.first_lsn);
            if from < oldest {
                return Err(StorageError::WalLsnUnavailable {
                    path: shared.dir.clone(),
                    requested: from,
                    oldest,
                });
            }
        }
        Ok(WalReader {
            shared,
            next_lsn: from,
            cur: None,
        })
    }

    /// The LSN of the entry the next call returns.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// The next entry if it is already acknowledged, else `None` (without waiting).
    pub fn try_next(&mut self) -> Result<Option<(Lsn, Vec<u8>)>> {
        let Some(w) = self.locate()? else {
            return Ok(None);
        };
        if let Some(path) = w.path {
            self.open(w.file_first_lsn, path)?;
        }
        let entry = self.read_next(w.limit)?;
        self.next_lsn += 1;
        Ok(Some(entry))
    }

    /// The next entry, waiting up to `timeout` for it to be acknowledged. `None` on timeout,
    /// or at once if the WAL is closed or poisoned and no further entry can come.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<(Lsn, Vec<u8>)>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(e) = self.try_next()? {
                return Ok(Some(e));
            }
            let mut st = self.shared.state.lock();
            if st.acked.lsn >= self.next_lsn {
                continue; // raced with a commit
            }
            if st.closed || st.poison.is_some() {
                return Ok(None);
            }
            let timed_out = match deadline {
                Some(d) => self.shared.append_cv.wait_until(&mut st, d).timed_out(),
                None => {
                    self.shared.append_cv.wait(&mut st);
                    false
                }
            };
            if timed_out && st.acked.lsn < self.next_lsn {
                return Ok(None);
            }
        }
    }

    /// Under the state lock: is `next_lsn` acknowledged, in which file, readable how far.
    fn locate(&self) -> Result<Option<Where>> {
        let st = self.shared.state.lock();
        if self.next_lsn > st.acked.lsn {
            return Ok(None);
        }
        let idx = st.files.partition_point(|f| f.first_lsn <= self.next_lsn);
        let Some(f) = idx.checked_sub(1).and_then(|i| st.files.get(i)) else {
            return Err(StorageError::WalLsnUnavailable {
                path: self.shared.dir.clone(),
                requested: self.next_lsn,
                oldest: st.files.first().map_or(st.next_lsn, |f| f.first_lsn),
            });
        };
        let limit = if f.first_lsn == st.acked.file_first_lsn {
            st.acked.len
        } else {
            u64::MAX
        };
        let path = match &self.cur {
            Some(c) if c.first_lsn == f.first_lsn => None,
            _ => Some(f.path.clone()),
        };
        Ok(Some(Where {
            file_first_lsn: f.first_lsn,
            path,
            limit,
        }))
    }

    fn open(&mut self, first_lsn: Lsn, path: PathBuf) -> Result<()> {
        let file = self.shared.fs.open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                // Removed by `truncate_below` since we looked.
                StorageError::WalLsnUnavailable {
                    path: self.shared.dir.clone(),
                    requested: self.next_lsn,
                    oldest: self.next_lsn.saturating_add(1),
                }
            } else {
                io_err("open", &path, e)
            }
        })?;
        let mut cursor = FileCursor::new(file, 0);
        let mut h = [0u8; HEADER_LEN as usize];
        let ok = cursor
            .read_exact(&mut h, u64::MAX)
            .map_err(|e| io_err("read", &path, e))?;
        if !ok || format::check_header(&h) != (HeaderCheck::Valid { first_lsn }) {
            return Err(corrupt(&path, 0, "file header damaged after recovery"));
        }
        self.cur = Some(Open {
            first_lsn,
            path,
            cursor,
            cursor_lsn: first_lsn,
        });
        Ok(())
    }

    /// Reads the frame of `next_lsn` from the open file, skipping earlier frames.
    fn read_next(&mut self, limit: u64) -> Result<(Lsn, Vec<u8>)> {
        let max_entry = self.shared.max_entry_bytes;
        let target = self.next_lsn;
        let Some(o) = self.cur.as_mut() else {
            return Err(StorageError::InvalidArgument(
                "WAL reader has no open file".into(),
            ));
        };
        loop {
            let at = o.cursor.pos();
            let mut hb = [0u8; FRAME_HEAD_LEN as usize];
            let ok = o
                .cursor
                .read_exact(&mut hb, limit)
                .map_err(|e| io_err("read", &o.path, e))?;
            let head = FrameHead::decode(&hb);
            if !ok || head.lsn != o.cursor_lsn || head.len > max_entry {
                let why = format!("expected the frame of LSN {}", o.cursor_lsn);
                return Err(corrupt(&o.path, at, &why));
            }
            if head.lsn < target {
                o.cursor.skip(u64::from(head.len));
                o.cursor_lsn += 1;
                continue;
            }
            // Bound a large allocation by the file too, not only by max_entry_bytes.
            let mut end = limit;
            if end == u64::MAX && head.len > LARGE_ENTRY_BYTES {
                end = o
                    .cursor
                    .file()
                    .len()
                    .map_err(|e| io_err("stat", &o.path, e))?;
            }
            if o.cursor.pos().saturating_add(u64::from(head.len)) > end {
                return Err(corrupt(
                    &o.path,
                    at,
                    "frame extends past the end of the file",
                ));
            }
            let mut payload = vec![0u8; head.len as usize];
            let ok = o
                .cursor
                .read_exact(&mut payload, limit)
                .map_err(|e| io_err("read", &o.path, e))?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&hb[8..16]);
            crc.update(&payload);
            if !ok || crc.finalize() != head.crc {
                return Err(corrupt(&o.path, at, "crc mismatch"));
            }
            o.cursor_lsn += 1;
            return Ok((head.lsn, payload));
        }
    }
}

fn corrupt(path: &std::path::Path, offset: u64, why: &str) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("WAL frame at offset {offset}: {why}"),
    }
}

/// Iterates over the entries acknowledged so far and ends (`None`) at the current end of the
/// log; unlike a fused iterator, calling `next` again later yields entries appended since.
impl Iterator for WalReader {
    type Item = Result<(Lsn, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.try_next().transpose()
    }
}
