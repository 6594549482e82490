//! The write-ahead log: the source of truth for every write not yet flushed to the segment
//! store, and (through [`WalReader`]) the stream that replication ships to replicas.
//!
//! # Files
//!
//! The log is a directory of append-only files `wal-<first LSN, 20 digits>.log`
//! (e.g. `wal-00000000000000000001.log`), so names sort by LSN. Entries go to the last
//! (*active*) file; when an entry would take it past `max_file_bytes` (default 64 MiB) the
//! active file is fsynced and a new one started at that entry's LSN (an entry larger than
//! the limit gets a file to itself). Files never change after they stop being active, except
//! by removal: [`Wal::truncate_below`] removes whole files below a checkpoint.
//!
//! # Format (version 1; all integers little-endian)
//!
//! ```text
//! file   := header frame*
//! header := magic "VELAWAL\0" (8) | version u32 = 1 | first_lsn u64 | crc32 u32     (24 bytes)
//!           crc32 covers the 20 bytes before it; first_lsn equals the number in the file name
//! frame  := len u32 | crc32 u32 | lsn u64 | payload [len bytes]               (16 + len bytes)
//!           len   = payload length (not counting the 16-byte head)
//!           crc32 = CRC-32 (IEEE, as crc32fast) of the 8 lsn bytes followed by the payload;
//!                   it does NOT cover len (a damaged len makes the crc fail instead)
//! ```
//!
//! LSNs start at 1 and go up by exactly 1 per entry, across files and restarts (the next LSN
//! after a restart is the last recovered LSN + 1; LSNs are never reused for acknowledged
//! entries). An empty payload is a valid entry.
//!
//! # Durability: what is on disk when `append` returns
//!
//! Appends are *acknowledged* when `append`/`append_batch` return `Ok`. Concurrent appenders
//! are grouped: one leader writes the whole group with one `write` and, under `Full`, one
//! `fdatasync`; under `Full` it first waits (at most half a commit, at most 2 ms) for the
//! writers of the previous group to re-enqueue, so that N busy writers share one fsync.
//!
//! * [`Durability::Full`] (default): the entry has been written and `fdatasync`ed (its file's
//!   header and directory entry were fsynced when the file was created). It survives a
//!   process crash and a power loss.
//! * [`Durability::Normal`]: the entry has been written to the OS (`pwrite` returned); a
//!   background thread fsyncs whenever entries are pending, at most `normal_sync_interval`
//!   (default 10 ms) after they were written. It survives a process crash; a power loss (or
//!   kernel crash) may lose the acknowledged entries of about the last interval, always a
//!   suffix: recovery returns a prefix of what was acknowledged.
//! * [`Durability::Off`]: written to the OS; fsync only at rollover, [`Wal::sync`],
//!   [`Wal::backup_to`] and close. Survives a process crash; a power loss may lose any
//!   acknowledged suffix since the last of those.
//!
//! [`Wal::set_durability`] switches at run time; it applies to appends that start after it
//! returns (switching to `Full` does not sync older entries: call [`Wal::sync`]).
//! [`Wal::last_lsn`] is the last acknowledged LSN, [`Wal::durable_lsn`] the last one known
//! fsynced (equal under `Full`). A batch gets consecutive LSNs and is acknowledged as a
//! whole, but it is not atomic across a crash: recovery may keep any prefix of it.
//!
//! # Failures (fsyncgate)
//!
//! A failed write or fsync is never an acknowledgement. Every writer waiting on the failed
//! group, and every writer queued behind it, gets the error (`SyncFailed` for a failed fsync,
//! `Io` naming the file for a failed write), and the WAL is *poisoned*: it acknowledges
//! nothing more and every later `append`/`sync` fails with `WalPoisoned` until it is reopened.
//! The WAL never retries an fsync: after a failed fsync Linux may have dropped the dirty
//! pages and report the next fsync as a success (PostgreSQL, 2018). Reopening recovers from
//! what is actually in the files. An entry whose append failed may or may not be present
//! after reopening; an acknowledged one always is (under the durability it was written with).
//!
//! # Recovery guarantees
//!
//! [`Wal::open`] scans the files from the oldest present and keeps the longest valid prefix:
//! it stops at the first damaged or short file header, a file that does not start at exactly
//! the previous LSN + 1, a short frame, a frame longer than what is left in its file, a crc
//! mismatch, or an LSN other than previous + 1. It truncates the file there (a file with a
//! damaged header is removed), removes all later files, fsyncs, and logs with
//! `tracing::warn!` how many bytes it dropped ([`RecoveryReport`]). Hence:
//!
//! * every entry acknowledged under `Full` (and every entry that was fsynced) is recovered,
//!   intact, at its LSN; the recovered log is exactly such a prefix plus possibly some
//!   entries that were written but whose appends had not returned (or failed);
//! * damage inside the log (a flipped bit in entry k) recovers exactly the entries before k;
//! * no file content makes recovery panic or allocate more than a fixed 64 KiB buffer
//!   (lengths are checked against the file before reading; payloads are crc'd in chunks).
//!   The one refusal: a complete, crc-valid entry larger than `max_entry_bytes` (the WAL was
//!   written with a larger limit) fails the open rather than being dropped, and so does a
//!   header with a valid crc but an unknown format version.
//!
//! After recovery the active file is fsynced, so `durable_lsn() == last_lsn()`.
//!
//! # I/O seam
//!
//! All I/O goes through [`WalFs`]/[`WalFile`] ([`StdFs`] in production), so tests can model
//! the page cache, tear writes and fail fsyncs.

mod commit;
mod cursor;
pub mod format;
mod fs;
mod maintenance;
mod options;
mod reader;
mod recovery;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

pub use commit::WalStats;
pub use fs::{StdFs, WalFile, WalFs};
pub use maintenance::BackupInfo;
pub use options::{Durability, WalOptions};
pub use reader::WalReader;
pub use recovery::{RecoveryReport, TornTail};

use crate::error::{Result, StorageError};
use commit::{Pos, Shared, State};

/// A log sequence number. The first entry of a new WAL has LSN 1; 0 means "none".
pub type Lsn = u64;

/// The write-ahead log. `Send + Sync`: share it through `Arc` between all writers.
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    syncer: Mutex<Option<JoinHandle<()>>>,
    recovery: RecoveryReport,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, recovering it (see the module docs).
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<Wal> {
        let dir = dir.as_ref().to_path_buf();
        let rec = recovery::recover(&*options.fs, &dir, options.max_entry_bytes)?;
        let end = Pos {
            lsn: rec.next_lsn - 1,
            file_first_lsn: rec.writer.meta.first_lsn,
            len: rec.writer.len,
        };
        let state = State {
            durability: options.durability,
            next_lsn: rec.next_lsn,
            queue: Vec::new(),
            queue_bytes: 0,
            queue_calls: 0,
            leader_active: false,
            gathering: false,
            gather_target: 0,
            commit_ewma: std::time::Duration::ZERO,
            acked: end,
            durable: end,
            files: rec.files,
            active: rec.writer.file.clone(),
            poison: None,
            closed: false,
            stats: WalStats::default(),
        };
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            fs: options.fs,
            max_entry_bytes: options.max_entry_bytes,
            max_file_bytes: options.max_file_bytes,
            max_pending_bytes: options.max_pending_bytes,
            normal_sync_interval: options.normal_sync_interval,
            state: Mutex::new(state),
            commit_cv: Condvar::new(),
            gather_cv: Condvar::new(),
            append_cv: Condvar::new(),
            syncer_cv: Condvar::new(),
            writer: Mutex::new(rec.writer),
            maintenance: Mutex::new(()),
        });
        let s = shared.clone();
        let syncer = std::thread::Builder::new()
            .name("vela-wal-sync".into())
            .spawn(move || s.run_syncer())
            .map_err(|e| writer::io_err("spawn syncer thread for", &dir, e))?;
        tracing::info!(dir = %dir.display(), first_lsn = rec.report.first_lsn,
            last_lsn = rec.report.last_lsn, files = rec.report.files, "WAL opened");
        Ok(Wal {
            shared,
            syncer: Mutex::new(Some(syncer)),
            recovery: rec.report,
        })
    }

    /// The WAL's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// What recovery found and did when this WAL was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Appends one entry; returns its LSN once it is acknowledged under the current
    /// durability (see the module docs).
    pub fn append(&self, payload: &[u8]) -> Result<Lsn> {
        let lsns = self.shared.append(&[payload])?;
        lsns.first().copied().ok_or_else(|| {
            StorageError::InvalidArgument(format!("WAL {}: empty commit", self.dir().display()))
        })
    }

    /// Appends several entries with consecutive LSNs, acknowledged together (one group).
    /// Not atomic across a crash: recovery may keep a prefix of the batch.
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Vec<Lsn>> {
        self.shared.append(payloads)
    }

    /// Makes every entry acknowledged so far durable (fsync); returns `durable_lsn()`.
    pub fn sync(&self) -> Result<Lsn> {
        self.shared.sync()
    }

    /// The last acknowledged LSN (0 if the log has never had an entry).
    pub fn last_lsn(&self) -> Lsn {
        self.shared.state.lock().acked.lsn
    }

    /// The last LSN known to be fsynced.
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.state.lock().durable.lsn
    }

    /// The LSN of the oldest entry still in the log (or, if there is none, of the next one).
    pub fn first_lsn(&self) -> Lsn {
        let st = self.shared.state.lock();
        st.files.first().map_or(st.next_lsn, |f| f.first_lsn)
    }

    /// The current durability.
    pub fn durability(&self) -> Durability {
        self.shared.state.lock().durability
    }

    /// Changes the durability for appends that start after this returns.
    pub fn set_durability(&self, durability: Durability) {
        self.shared.state.lock().durability = durability;
        self.shared.syncer_cv.notify_all();
    }

    /// True once a failed write or fsync has poisoned the WAL (reopen to recover).
    pub fn is_poisoned(&self) -> bool {
        self.shared.state.lock().poison.is_some()
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        let st = self.shared.state.lock();
        WalStats {
            queued: st.queue.len() as u64,
            ..st.stats
        }
    }

    /// A reader of the acknowledged entries from `lsn` on (0 or 1: from the start). Fails with
    /// `WalLsnUnavailable` if `lsn` is below the oldest retained entry.
    pub fn reader_from(&self, lsn: Lsn) -> Result<WalReader> {
        WalReader::new(self.shared.clone(), lsn)
    }

    /// Removes whole files all of whose entries are below `lsn` (never the active file), e.g.
    /// after a checkpoint covering everything below `lsn`. Returns how many were removed.
    pub fn truncate_below(&self, lsn: Lsn) -> Result<usize> {
        self.shared.truncate_below(lsn)
    }

    /// Syncs, then copies every WAL file (the active one up to its synced length) into
    /// `dest_dir` (created if missing; must not already hold WAL files) and fsyncs the copies.
    /// Together with a RocksDB checkpoint taken before this call, the copy restores the
    /// database: open the copy as a WAL and replay from the checkpoint's LSN.
    pub fn backup_to(&self, dest_dir: &Path) -> Result<BackupInfo> {
        self.shared.backup_to(dest_dir)
    }

    /// Stops the syncer and makes everything acknowledged durable. Dropping the WAL does the
    /// same but can only log a failure.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        let Some(handle) = self.syncer.lock().take() else {
            return Ok(());
        };
        {
            let mut st = self.shared.state.lock();
            st.closed = true;
        }
        self.shared.syncer_cv.notify_all();
        self.shared.append_cv.notify_all();
        if handle.join().is_err() {
            tracing::error!(dir = %self.dir().display(), "WAL syncer thread panicked");
        }
        self.shared.sync().map(|_| ())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(dir = %self.dir().display(), error = %e, "WAL close failed");
        }
    }
}
