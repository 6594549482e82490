//! The data directory layout, in one place so that nobody hardcodes paths.
//!
//! ```text
//! DIR/
//!   LOCK       advisory lock held by the one process that has the database open; holds its pid
//!   store/     the RocksDB segment store (see `store`)
//!   wal/       Vela's write-ahead log (see `wal`)
//! ```
//!
//! A backup (see `backup`) has the same `store/` and `wal/` sub-directories plus a
//! `BACKUP-MANIFEST` file that is written last, so a directory without it is an interrupted
//! backup.

use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};

/// File name of the lock file inside a data directory.
pub const LOCK_FILE: &str = "LOCK";
/// Sub-directory holding the RocksDB segment store.
pub const STORE_DIR: &str = "store";
/// Sub-directory holding the write-ahead log.
pub const WAL_DIR: &str = "wal";
/// File name of the manifest that completes a backup directory.
pub const BACKUP_MANIFEST: &str = "BACKUP-MANIFEST";

/// A Vela data directory: where its lock file, segment store and WAL live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory rooted at `root` (nothing is touched on disk).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/store`: the RocksDB segment store.
    pub fn store_dir(&self) -> PathBuf {
        self.root.join(STORE_DIR)
    }

    /// `root/wal`: the write-ahead log.
    pub fn wal_dir(&self) -> PathBuf {
        self.root.join(WAL_DIR)
    }

    /// `root/LOCK`: the lock file (see `lock::DirLock`).
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// `root/BACKUP-MANIFEST`: present only when this directory is a complete backup.
    pub fn backup_manifest_path(&self) -> PathBuf {
        self.root.join(BACKUP_MANIFEST)
    }

    /// Creates the root directory (and its parents) if it is missing, then checks that it is a
    /// readable directory.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => {
                StorageError::NotADirectory {
                    path: self.root.clone(),
                }
            }
            _ => StorageError::Io {
                op: "create directory",
                path: self.root.clone(),
                source,
            },
        })?;
        check_dir(&self.root)
    }

    /// Checks that the root exists and is a readable directory, with a typed error naming it
    /// otherwise (`MissingDirectory`, `NotADirectory`, or `Io` for e.g. permission denied).
    pub fn check(&self) -> Result<()> {
        check_dir(&self.root)
    }
}

/// Checks that `path` is an existing, listable directory.
pub(crate) fn check_dir(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => StorageError::MissingDirectory {
            path: path.to_path_buf(),
        },
        std::io::ErrorKind::NotADirectory => StorageError::NotADirectory {
            path: path.to_path_buf(),
        },
        _ => StorageError::Io {
            op: "stat directory",
            path: path.to_path_buf(),
            source,
        },
    })?;
    if !meta.is_dir() {
        return Err(StorageError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    std::fs::read_dir(path).map_err(|source| StorageError::Io {
        op: "read directory",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// True if `path` is a directory with no entries.
pub(crate) fn is_empty_dir(path: &Path) -> Result<bool> {
    let mut entries = std::fs::read_dir(path).map_err(|source| StorageError::Io {
        op: "read directory",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(entries.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_the_root() {
        let d = DataDir::new("/data/vela");
        assert_eq!(d.store_dir(), Path::new("/data/vela/store"));
        assert_eq!(d.wal_dir(), Path::new("/data/vela/wal"));
        assert_eq!(d.lock_path(), Path::new("/data/vela/LOCK"));
        assert_eq!(
            d.backup_manifest_path(),
            Path::new("/data/vela/BACKUP-MANIFEST")
        );
    }

    #[test]
    fn check_reports_missing_and_file() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        assert!(matches!(
            DataDir::new(&missing).check(),
            Err(StorageError::MissingDirectory { path }) if path == missing
        ));
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            DataDir::new(&file).check(),
            Err(StorageError::NotADirectory { path }) if path == file
        ));
        assert!(matches!(
            DataDir::new(&file).create(),
            Err(StorageError::NotADirectory { .. })
        ));
        let made = tmp.path().join("a/b");
        DataDir::new(&made).create().unwrap();
        assert!(is_empty_dir(&made).unwrap());
    }
}
