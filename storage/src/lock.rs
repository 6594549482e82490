//! The directory lock: a data directory is held by one process at a time.
//!
//! [`DirLock::acquire`] opens `DIR/LOCK` (creating it), takes an exclusive advisory lock on it
//! with std's `File::try_lock` (`flock(2)` on Linux), and writes the holder's pid into it. A
//! second acquire fails with [`StorageError::Locked`] ("database is locked by pid N") whether it
//! comes from another process or from this one: `flock` locks belong to the open file
//! description, so two handles in one process exclude each other too. The lock is released
//! when the [`DirLock`] is dropped, or by the kernel when the process dies, so a crash never
//! leaves a stale lock behind (the pid in a stale file is simply overwritten).
//!
//! The lock is advisory: it protects against a second Vela, not against `rm -rf`.
//!
//! `File::try_lock`/`unlock` are stable since Rust 1.89; the workspace declares
//! `rust-version = 1.85` but builds with 1.95, hence the `incompatible_msrv` allowances below
//! (raise the workspace MSRV to 1.89 to drop them).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Result, StorageError};
use crate::layout::{check_dir, DataDir};

/// How often, and how long apart, a failed acquire re-reads the holder's pid when the holder
/// has locked the file but not yet written its pid.
const PID_READ_ATTEMPTS: u32 = 20;
const PID_READ_PAUSE: Duration = Duration::from_millis(5);

/// An exclusive lock on a data directory; released on drop.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks the data directory `dir` (which must exist) through `dir/LOCK`.
    ///
    /// Errors: `MissingDirectory` / `NotADirectory` / `Io` (unreadable) naming `dir`;
    /// `Locked { path, pid }` if another handle holds it (`pid` is 0 if the holder's pid could
    /// not be read).
    #[allow(clippy::incompatible_msrv)] // File::try_lock: Rust 1.89 (see module docs)
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        check_dir(dir)?;
        let path = DataDir::new(dir).lock_path();
        let io_err = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { op, path, source }
        };
        // Never truncate on open: the file may belong to a live holder whose pid we report.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = read_holder_pid(&mut file);
                tracing::debug!(path = %path.display(), pid, "data directory is locked");
                return Err(StorageError::Locked { path, pid });
            }
            Err(TryLockError::Error(source)) => {
                return Err(StorageError::Io {
                    op: "lock",
                    path,
                    source,
                })
            }
        }
        // We hold the lock: replace whatever a previous (dead) holder left with our pid.
        let pid = std::process::id();
        file.set_len(0)
            .map_err(io_err("truncate lock file", &path))?;
        file.seek(SeekFrom::Start(0))
            .map_err(io_err("seek lock file", &path))?;
        file.write_all(format!("{pid}\n").as_bytes())
            .map_err(io_err("write lock file", &path))?;
        file.sync_data().map_err(io_err("sync lock file", &path))?;
        tracing::debug!(path = %path.display(), pid, "data directory locked");
        Ok(DirLock { file, path })
    }

    /// The lock file's path (`DIR/LOCK`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    #[allow(clippy::incompatible_msrv)] // File::unlock: Rust 1.89 (see module docs)
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlock explicitly to say so.
        if let Err(e) = self.file.unlock() {
            tracing::warn!(path = %self.path.display(), error = %e, "unlocking data directory");
        }
    }
}

/// Reads the pid a holder wrote, retrying briefly in case it has locked but not yet written.
fn read_holder_pid(file: &mut File) -> u32 {
    for attempt in 0..PID_READ_ATTEMPTS {
        let mut text = String::new();
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text));
        if read.is_ok() {
            if let Ok(pid) = text.trim().parse::<u32>() {
                return pid;
            }
        }
        if attempt + 1 < PID_READ_ATTEMPTS {
            std::thread::sleep(PID_READ_PAUSE);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_in_same_process_fails_and_drop_releases() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(tmp.path()).unwrap();
        let written = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());
        let err = DirLock::acquire(tmp.path()).unwrap_err();
        match &err {
            StorageError::Locked { pid, path } => {
                assert_eq!(*pid, std::process::id());
                assert_eq!(path, &tmp.path().join("LOCK"));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        assert!(err
            .to_string()
            .starts_with(&format!("database is locked by pid {}", std::process::id())));
        drop(first);
        let again = DirLock::acquire(tmp.path()).unwrap();
        drop(again);
    }

    #[test]
    fn stale_pid_is_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("LOCK"), b"999999999999\nextra").unwrap();
        let lock = DirLock::acquire(tmp.path()).unwrap();
        let written = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(written, format!("{}\n", std::process::id()));
    }

    #[test]
    fn missing_dir_and_file_are_typed_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing");
        assert!(matches!(
            DirLock::acquire(&missing),
            Err(StorageError::MissingDirectory { path }) if path == missing
        ));
        let file = tmp.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            DirLock::acquire(&file),
            Err(StorageError::NotADirectory { path }) if path == file
        ));
    }
}
