//! How a WAL is configured: durability level, rollover size, entry-size cap, the file system.

use std::sync::Arc;
use std::time::Duration;

use super::fs::{StdFs, WalFs};

/// When an appended entry reaches stable storage (see the module docs, "Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// `append` returns after the entry is written and `fdatasync`ed (shared by a commit
    /// group). Nothing acknowledged is lost on a process crash or a power loss.
    #[default]
    Full,
    /// `append` returns after the entry is written to the OS (survives a process crash); a
    /// background syncer `fdatasync`s at most `normal_sync_interval` later, so a power loss may
    /// lose the acknowledged entries of about the last interval.
    Normal,
    /// `append` returns after the entry is written to the OS; the WAL syncs only at rollover,
    /// `sync()` and close. Survives a process crash, not a power loss.
    Off,
}

/// Options for [`Wal::open`](super::Wal::open). Start from `WalOptions::default()`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WalOptions {
    /// Initial durability (changeable at run time with `Wal::set_durability`). Default `Full`.
    pub durability: Durability,
    /// Under `Normal`, the background syncer's period. Default 10 ms.
    pub normal_sync_interval: Duration,
    /// A new file is started when an entry would take the active file past this many bytes
    /// (an entry larger than this gets a file of its own). Default 64 MiB.
    pub max_file_bytes: u64,
    /// Largest payload `append` accepts, and the largest entry recovery will believe. Default
    /// 64 MiB. Reopening with a smaller limit than entries were written with is an error, not
    /// a silent truncation.
    pub max_entry_bytes: u32,
    /// Bound on bytes queued for the next commit group; appenders wait while it is exceeded.
    /// Default 64 MiB.
    pub max_pending_bytes: usize,
    /// The file system all WAL I/O goes through. Default: `StdFs`.
    pub fs: Arc<dyn WalFs>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            durability: Durability::Full,
            normal_sync_interval: Duration::from_millis(10),
            max_file_bytes: 64 << 20,
            max_entry_bytes: 64 << 20,
            max_pending_bytes: 64 << 20,
            fs: Arc::new(StdFs),
        }
    }
}

impl WalOptions {
    /// Sets the initial durability.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the `Normal` sync period.
    pub fn with_normal_sync_interval(mut self, interval: Duration) -> Self {
        self.normal_sync_interval = interval;
        self
    }

    /// Sets the rollover size.
    pub fn with_max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// Sets the entry-size cap.
    pub fn with_max_entry_bytes(mut self, bytes: u32) -> Self {
        self.max_entry_bytes = bytes;
        self
    }

    /// Sets the commit-queue bound.
    pub fn with_max_pending_bytes(mut self, bytes: usize) -> Self {
        self.max_pending_bytes = bytes;
        self
    }

    /// Sets the file system (tests inject faults through this).
    pub fn with_fs(mut self, fs: Arc<dyn WalFs>) -> Self {
        self.fs = fs;
        self
    }
}
