//! Group commit: the shared state, the leader/follower commit queue, `sync`, and the
//! background syncer for `Durability::Normal`.
//!
//! Protocol. An appender frames its payloads outside any lock, then under the state lock
//! takes the next LSNs and pushes its frames onto `queue`. If no leader is active it becomes
//! the leader: it takes the whole queue, releases the lock, writes the group with one `write`
//! (rolling over files as needed), fsyncs once if the durability is `Full`, re-takes the lock,
//! publishes the new acknowledged position and wakes everybody. Appenders whose frames were
//! in the group return; one of those still queued becomes the next leader. So while one group
//! is being fsynced the next one accumulates, and N concurrent writers share about one fsync.
//!
//! Gathering. Under `Full`, writers that wait for each acknowledgement before appending again
//! would otherwise split into two alternating half-groups (whoever is queued when a group
//! completes leads at once, before the writers just released have re-enqueued). So a `Full`
//! leader first waits until as many calls are queued as were active in the previous round
//! (the last group plus those that queued during its commit), for at most half the average
//! commit time and never more than 2 ms. A lone writer's target is 1, so it never waits.
//!
//! Failure. Any failed write, file creation or fsync in the commit path (or in the syncer, or
//! in `sync()`) *poisons* the WAL: every writer still waiting (in the failed group or queued
//! behind it) gets the error (`SyncFailed` for an fsync), nothing is acknowledged after it,
//! and new appends fail with `WalPoisoned` until the WAL is reopened. Retrying an fsync after
//! a failure is not safe: Linux may have dropped the dirty pages and report the next fsync as
//! a success (PostgreSQL's "fsyncgate", 2018); only recovery from what is on disk is.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::format::FRAME_HEAD_LEN;
use super::fs::{WalFile, WalFs};
use super::options::Durability;
use super::writer::{ActiveWriter, FileMeta, Poison, QueuedFrame};
use super::Lsn;
use crate::error::{Result, StorageError};

/// Upper bound on how long a `Full` leader waits for the previous group's writers.
const GATHER_MAX: Duration = Duration::from_millis(2);

/// A position in the log: the last LSN up to it, and where its data ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub lsn: Lsn,
    pub file_first_lsn: Lsn,
    pub len: u64,
}

/// Counters exposed through `Wal::stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Entries acknowledged since open.
    pub entries: u64,
    /// Commit groups written since open (entries / groups = average group size).
    pub groups: u64,
    /// `fdatasync` calls on WAL files since open (directory syncs included).
    pub fsyncs: u64,
    /// Entries queued for the next group right now.
    pub queued: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub durability: Durability,
    /// The LSN the next appended entry gets.
    pub next_lsn: Lsn,
    pub queue: Vec<QueuedFrame>,
    pub queue_bytes: usize,
    /// `append`/`append_batch` calls with frames in `queue`.
    pub queue_calls: usize,
    pub leader_active: bool,
    /// A `Full` leader is waiting for the writers of the previous round to re-enqueue.
    pub gathering: bool,
    /// How many calls the next `Full` group should wait for: the size of the last group plus
    /// the calls that queued while it was being committed (the number of active writers).
    pub gather_target: usize,
    /// Moving average of a `Full` group's write + fsync time; bounds the gathering wait.
    pub commit_ewma: Duration,
    /// Everything up to here is acknowledged (written; and synced under `Full`). Readers see
    /// exactly the entries up to `acked.lsn`.
    pub acked: Pos,
    /// Everything up to here is known to be fsynced.
    pub durable: Pos,
    /// All files, ascending by first LSN; the last is the active one.
    pub files: Vec<FileMeta>,
    /// Handle of the active file, for `sync` and the syncer.
    pub active: Arc<dyn WalFile>,
    pub poison: Option<Poison>,
    pub closed: bool,
    pub stats: WalStats,
}

/// Everything the `Wal` handle, its readers and the syncer thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub fs: Arc<dyn WalFs>,
    pub max_entry_bytes: u32,
    pub max_file_bytes: u64,
    pub max_pending_bytes: usize,
    pub normal_sync_interval: Duration,
    pub state: Mutex<State>,
    /// Appenders wait here for their group (or for queue space).
    pub commit_cv: Condvar,
    /// A gathering leader waits here for more calls to enqueue.
    pub gather_cv: Condvar,
    /// Readers wait here for new acknowledged entries.
    pub append_cv: Condvar,
    /// The syncer waits here for its period, a durability change or close.
    pub syncer_cv: Condvar,
    /// Used only by the current leader.
    pub writer: Mutex<ActiveWriter>,
    /// Serialises `truncate_below` and `backup_to`.
    pub maintenance: Mutex<()>,
}

impl Shared {
    pub(crate) fn poisoned_error(&self, p: &Poison) -> StorageError {
        StorageError::WalPoisoned {
            path: self.dir.clone(),
            message: format!("{} {}: {}", p.op, p.path.display(), p.message),
        }
    }

    /// Frames `payloads` as `[16 reserved bytes][payload]` buffers, checking their size.
    fn frame_payloads<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<(Vec<Vec<u8>>, usize)> {
        let mut frames = Vec::with_capacity(payloads.len());
        let mut total = 0usize;
        for p in payloads {
            let p = p.as_ref();
            if p.len() > self.max_entry_bytes as usize {
                return Err(StorageError::InvalidArgument(format!(
                    "WAL entry of {} bytes exceeds max_entry_bytes {} (WAL {})",
                    p.len(),
                    self.max_entry_bytes,
                    self.dir.display()
                )));
            }
            let mut b = Vec::with_capacity(FRAME_HEAD_LEN as usize + p.len());
            b.resize(FRAME_HEAD_LEN as usize, 0);
            b.extend_from_slice(p);
            total = total.saturating_add(b.len());
            frames.push(b);
        }
        Ok((frames, total))
    }

    /// Appends `payloads` as consecutive entries; returns once they are acknowledged under the
    /// current durability, or with the error of the group they were in.
    pub(crate) fn append<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Vec<Lsn>> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let (frames, bytes) = self.frame_payloads(payloads)?;
        let n = frames.len() as u64;
        let mut st = self.state.lock();
        loop {
            if let Some(p) = &st.poison {
                return Err(self.poisoned_error(p));
            }
            // Bounded queue: wait while a full group is already waiting (one oversized
            // batch is still let in alone).
            if st.queue.is_empty() || st.queue_bytes.saturating_add(bytes) <= self.max_pending_bytes
            {
                break;
            }
            self.commit_cv.wait(&mut st);
        }
        let first = st.next_lsn;
        let Some(next) = first.checked_add(n) else {
            return Err(StorageError::InvalidArgument(format!(
                "LSN space exhausted in WAL {}",
                self.dir.display()
            )));
        };
        st.next_lsn = next;
        let last = next - 1;
        for (i, bytes) in frames.into_iter().enumerate() {
            st.queue.push(QueuedFrame {
                lsn: first + i as u64,
                bytes,
            });
        }
        st.queue_bytes += bytes;
        st.queue_calls += 1;
        if st.gathering && st.queue_calls >= st.gather_target {
            self.gather_cv.notify_one();
        }
        loop {
            if st.acked.lsn >= last {
                return Ok((first..=last).collect());
            }
            if let Some(p) = &st.poison {
                return Err(p.to_error());
            }
            if !st.leader_active {
                self.lead(&mut st);
                continue;
            }
            self.commit_cv.wait(&mut st);
        }
    }

    /// Under `Full`, gives the writers of the previous group (woken a moment ago, about to
    /// append again) a short chance to join this group before it is taken. Without this,
    /// closed-loop writers split into two alternating half-groups, halving what one fsync
    /// carries. The wait ends as soon as `gather_target` calls are queued, and lasts at most
    /// half a typical commit (capped at `GATHER_MAX`), so it costs a lone writer nothing (its
    /// target is 1) and anyone else a bounded fraction of one fsync.
    fn gather(&self, st: &mut MutexGuard<'_, State>) {
        if st.queue_calls >= st.gather_target {
            return;
        }
        let wait = (st.commit_ewma / 2).min(GATHER_MAX);
        let Some(deadline) = Instant::now().checked_add(wait) else {
            return;
        };
        st.gathering = true;
        while st.queue_calls < st.gather_target && st.poison.is_none() {
            if self.gather_cv.wait_until(st, deadline).timed_out() {
                break;
            }
        }
        st.gathering = false;
    }

    /// Writes (and, under `Full`, fsyncs) everything queued as one group, then publishes.
    fn lead(&self, st: &mut MutexGuard<'_, State>) {
        st.leader_active = true;
        let sync = st.durability == Durability::Full;
        if sync {
            self.gather(st);
        }
        if st.poison.is_some() {
            // Failed elsewhere while gathering: write nothing more; the waiters see the poison.
            st.leader_active = false;
            self.commit_cv.notify_all();
            return;
        }
        let mut frames = std::mem::take(&mut st.queue);
        let group_calls = std::mem::take(&mut st.queue_calls);
        st.queue_bytes = 0;
        // Queue space was freed.
        self.commit_cv.notify_all();
        let started = Instant::now();
        let (outcome, result) = MutexGuard::unlocked(st, || {
            let mut w = self.writer.lock();
            w.write_group(&*self.fs, &self.dir, &mut frames, self.max_file_bytes, sync)
        });
        if sync {
            st.commit_ewma = (st.commit_ewma * 7 + started.elapsed()) / 8;
            st.gather_target = group_calls + st.queue_calls;
        } else {
            st.gather_target = 0;
        }
        st.leader_active = false;
        st.stats.fsyncs += outcome.fsyncs;
        for (meta, file) in outcome.new_files {
            st.files.push(meta);
            st.active = file;
        }
        if let Some((lsn, file_first_lsn, len)) = outcome.synced_old {
            advance(
                &mut st.durable,
                Pos {
                    lsn,
                    file_first_lsn,
                    len,
                },
            );
        }
        match result {
            // A failure elsewhere (the syncer, `sync()`) while this group was in flight also
            // denies it: after a failed fsync, a later "successful" one proves nothing.
            Ok(()) if st.poison.is_none() => {
                if let Some((lsn, file_first_lsn, len)) = outcome.end {
                    let end = Pos {
                        lsn,
                        file_first_lsn,
                        len,
                    };
                    debug_assert!(lsn > st.acked.lsn, "LSNs must increase");
                    st.acked = end;
                    if outcome.synced {
                        advance(&mut st.durable, end);
                    }
                    st.stats.entries += frames.len() as u64;
                    st.stats.groups += 1;
                }
            }
            Ok(()) => {}
            Err(p) => {
                tracing::error!(op = p.op, path = %p.path.display(), error = %p.message,
                    "WAL commit failed; the WAL refuses appends until reopened");
                st.poison = Some(p);
            }
        }
        self.commit_cv.notify_all();
        self.append_cv.notify_all();
    }

    /// Makes everything acknowledged so far durable. Returns the durable LSN.
    pub(crate) fn sync(&self) -> Result<Lsn> {
        let mut st = self.state.lock();
        self.sync_locked(&mut st)
    }

    pub(crate) fn sync_locked(&self, st: &mut MutexGuard<'_, State>) -> Result<Lsn> {
        if let Some(p) = &st.poison {
            return Err(self.poisoned_error(p));
        }
        if st.durable.lsn >= st.acked.lsn {
            return Ok(st.durable.lsn);
        }
        let target = st.acked;
        let file = st.active.clone();
        let path = self.path_of(st, target.file_first_lsn);
        let r = MutexGuard::unlocked(st, || file.sync_data());
        st.stats.fsyncs += 1;
        match r {
            Ok(()) => {
                if let Some(p) = &st.poison {
                    return Err(self.poisoned_error(p));
                }
                advance(&mut st.durable, target);
                Ok(st.durable.lsn)
            }
            Err(e) => {
                let p = Poison::new("fsync", &path, &e, true);
                tracing::error!(path = %path.display(), error = %e,
                    "WAL fsync failed; the WAL refuses appends until reopened");
                let err = p.to_error();
                if st.poison.is_none() {
                    st.poison = Some(p);
                }
                self.commit_cv.notify_all();
                self.append_cv.notify_all();
                Err(err)
            }
        }
    }

    fn path_of(&self, st: &State, first_lsn: Lsn) -> PathBuf {
        st.files
            .iter()
            .rev()
            .find(|f| f.first_lsn == first_lsn)
            .map(|f| f.path.clone())
            .unwrap_or_else(|| self.dir.clone())
    }

    /// The background syncer's loop (`Durability::Normal`); returns when the WAL closes.
    pub(crate) fn run_syncer(&self) {
        let mut st = self.state.lock();
        loop {
            if st.closed {
                return;
            }
            if st.durability != Durability::Normal || st.poison.is_some() {
                self.syncer_cv.wait(&mut st);
                continue;
            }
            self.syncer_cv.wait_for(&mut st, self.normal_sync_interval);
            if st.closed {
                return;
            }
            if st.durability == Durability::Normal
                && st.poison.is_none()
                && st.durable.lsn < st.acked.lsn
            {
                // The error is recorded as poison; writers see it on their next append.
                let _ = self.sync_locked(&mut st);
            }
        }
    }
}

/// Moves `pos` forward to `to` (never back).
fn advance(pos: &mut Pos, to: Pos) {
    if to.lsn > pos.lsn {
        *pos = to;
    }
}
