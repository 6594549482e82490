//! The narrow file-system seam through which ALL of the WAL's I/O goes.
//!
//! `WalFs` (a directory-level API) and `WalFile` (one open file) are modelled on redb's
//! `StorageBackend`: a handful of positional operations and nothing else, so a test can supply
//! an implementation that models the page cache, tears writes or fails an fsync. `StdFs` is the
//! real implementation on `std::fs`.
//!
//! Every method takes `&self`: a `WalFile` is shared (through `Arc`) between the committing
//! thread, the background syncer and readers, so implementations must be positional
//! (`pread`/`pwrite`), never depend on a shared cursor.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// One open WAL file. Errors are plain `io::Error`s; the WAL adds the path and operation.
// `len` is fallible I/O, not a collection length; an `is_empty` would add nothing.
#[allow(clippy::len_without_is_empty)]
pub trait WalFile: Send + Sync + Debug {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end of
    /// file). May return fewer than asked without being at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, or fails (in which case any prefix may have been
    /// written).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data (and its length) durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// A directory-level file system: what the WAL needs to manage its files.
pub trait WalFs: Send + Sync + Debug {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names (not paths) of the entries in `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn WalFile>>;
    /// Creates a new, empty file for reading and writing; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn WalFile>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created, removed, renamed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system, through `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(File);

impl WalFile for StdFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match pread(&self.0, buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        pwrite_all(&self.0, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

#[cfg(unix)]
fn pread(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, offset)
}

#[cfg(unix)]
fn pwrite_all(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

#[cfg(windows)]
fn pread(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, offset)
}

#[cfg(windows)]
fn pwrite_all(f: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(f, buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl WalFs for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            // Names that are not UTF-8 cannot be WAL files; skip them.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(StdFile(f)))
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Arc::new(StdFile(f)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    #[cfg(unix)]
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    #[cfg(not(unix))]
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        // Directories cannot be opened for syncing on this platform; NTFS journals metadata.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_fs_positional_io() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = StdFs;
        let p = dir.path().join("f");
        let f = fs.create_new(&p).expect("create");
        assert!(fs.create_new(&p).is_err(), "create_new must not clobber");
        f.write_all_at(b"hello world", 0).expect("write");
        f.write_all_at(b"W", 6).expect("write");
        f.sync_data().expect("sync");
        let mut buf = [0u8; 32];
        let n = f.read_at(&mut buf, 0).expect("read");
        assert_eq!(&buf[..n], b"hello World");
        assert_eq!(f.read_at(&mut buf, 100).expect("read past end"), 0);
        f.set_len(5).expect("set_len");
        assert_eq!(f.len().expect("len"), 5);
        assert_eq!(
            fs.list_dir(dir.path()).expect("list"),
            vec!["f".to_string()]
        );
        fs.rename(&p, &dir.path().join("g")).expect("rename");
        fs.sync_dir(dir.path()).expect("sync dir");
        fs.remove_file(&dir.path().join("g")).expect("remove");
        assert!(fs.list_dir(dir.path()).expect("list").is_empty());
    }
}
