//! Online backups of a data directory, and restoring one.
//!
//! A backup directory has the data directory's layout (see `layout`) plus a manifest:
//!
//! ```text
//! BACKUP/
//!   store/             RocksDB checkpoint of the segment store (hard links when possible)
//!   wal/               copy of the WAL files, up to everything acknowledged at backup time
//!   BACKUP-MANIFEST    written last, fsynced: a directory without it is an unfinished backup
//! ```
//!
//! [`create_backup`] takes the checkpoint first (it returns the flushed LSN recorded in it),
//! then copies the WAL, checks that the WAL copy reaches back to that LSN + 1, fsyncs every file
//! and directory, and only then writes the manifest (to a temporary name, fsynced, renamed,
//! directory fsynced). Restoring = the checkpoint plus replaying the WAL copy from
//! `flushed_lsn + 1`, exactly like crash recovery.
//!
//! The caller must not truncate the WAL (`Wal::truncate_below`) while a backup runs: a
//! truncation between the checkpoint and the WAL copy could drop entries the checkpoint needs.
//! `create_backup` detects that case and fails without writing a manifest.
//!
//! The manifest is a small text file, one `key=value` per line, ending in a crc32 of everything
//! before it:
//!
//! ```text
//! vela-backup
//! format_version=1
//! store_format_version=1
//! flushed_lsn=1234
//! wal_first_lsn=1001
//! wal_last_lsn=1300
//! created_unix_ms=1764160000000
//! file=store/000012.sst 40213
//! file=wal/wal-00000000000000001001.log 8812
//! crc32=1a2b3c4d
//! ```
//!
//! [`restore_backup`] refuses a non-empty target, checks the manifest (crc, version, every
//! listed file present with its size), copies `store/` and `wal/`, fsyncs, checks the copies'
//! sizes again, and opens the restored store and WAL to check the flushed LSN and WAL range
//! against the manifest. Retention ("keep the last N backups") is the engine's business.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, StorageError};
use crate::layout::{check_dir, is_empty_dir, DataDir, BACKUP_MANIFEST, STORE_DIR, WAL_DIR};
use crate::lock::DirLock;
use crate::store::{SegmentStore, StoreOptions, STORE_FORMAT_VERSION};
use crate::wal::{Wal, WalOptions};

/// Version of the manifest format this build writes and reads.
pub const BACKUP_FORMAT_VERSION: u32 = 1;

const MAGIC_LINE: &str = "vela-backup";
const TMP_SUFFIX: &str = ".tmp";

/// What a backup's manifest records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupManifest {
    /// Manifest format version.
    pub format_version: u32,
    /// Segment store format version of the checkpoint.
    pub store_format_version: u32,
    /// Flushed LSN recorded in the store checkpoint: replay the WAL copy from the next LSN.
    pub flushed_lsn: u64,
    /// Oldest LSN in the WAL copy (the next LSN if the copy holds no entries).
    pub wal_first_lsn: u64,
    /// Last LSN in the WAL copy (0 if the log never had an entry).
    pub wal_last_lsn: u64,
    /// When the backup completed, in milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// Every file of the backup (relative path with `/` separators, size in bytes), sorted.
    pub files: Vec<(String, u64)>,
}

impl BackupManifest {
    fn encode(&self) -> String {
        let mut s = format!(
            "{MAGIC_LINE}\nformat_version={}\nstore_format_version={}\nflushed_lsn={}\n\
             wal_first_lsn={}\nwal_last_lsn={}\ncreated_unix_ms={}\n",
            self.format_version,
            self.store_format_version,
            self.flushed_lsn,
            self.wal_first_lsn,
            self.wal_last_lsn,
            self.created_unix_ms
        );
        for (name, len) in &self.files {
            s.push_str(&format!("file={name} {len}\n"));
        }
        let crc = crc32fast::hash(s.as_bytes());
        s.push_str(&format!("crc32={crc:08x}\n"));
        s
    }

    fn decode(text: &str) -> std::result::Result<BackupManifest, String> {
        let body_end = text
            .rfind("crc32=")
            .ok_or_else(|| "manifest has no crc32 line".to_string())?;
        let (body, crc_line) = text.split_at(body_end);
        let want = u32::from_str_radix(crc_line.trim_start_matches("crc32=").trim(), 16)
            .map_err(|_| "manifest crc32 line is malformed".to_string())?;
        let got = crc32fast::hash(body.as_bytes());
        if got != want {
            return Err(format!("manifest crc32 {got:08x} != recorded {want:08x}"));
        }
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC_LINE) {
            return Err("not a Vela backup manifest (bad first line)".to_string());
        }
        let mut m = BackupManifest {
            format_version: 0,
            store_format_version: 0,
            flushed_lsn: 0,
            wal_first_lsn: 0,
            wal_last_lsn: 0,
            created_unix_ms: 0,
            files: Vec::new(),
        };
        let mut seen = 0u32;
        for line in lines {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("malformed manifest line {line:?}"))?;
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("malformed number in manifest line {line:?}"))
            };
            let small = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| format!("malformed number in manifest line {line:?}"))
            };
            match key {
                "format_version" => (m.format_version, seen) = (small(value)?, seen | 1),
                "store_format_version" => {
                    (m.store_format_version, seen) = (small(value)?, seen | 2)
                }
                "flushed_lsn" => (m.flushed_lsn, seen) = (num(value)?, seen | 4),
                "wal_first_lsn" => (m.wal_first_lsn, seen) = (num(value)?, seen | 8),
                "wal_last_lsn" => (m.wal_last_lsn, seen) = (num(value)?, seen | 16),
                "created_unix_ms" => (m.created_unix_ms, seen) = (num(value)?, seen | 32),
                "file" => {
                    let (name, len) = value
                        .rsplit_once(' ')
                        .ok_or_else(|| format!("malformed manifest line {line:?}"))?;
                    m.files.push((name.to_string(), num(len)?));
                }
                // Unknown keys are ignored so a later minor addition stays readable.
                _ => {}
            }
        }
        if seen != 63 {
            return Err("manifest lacks a required field".to_string());
        }
        Ok(m)
    }
}

/// Backs up a live database into `dest` (created if missing; must be empty if it exists):
/// a checkpoint of `store` into `dest/store`, a copy of `wal` into `dest/wal`, then the
/// manifest. Returns the manifest. See the module docs for the protocol.
pub fn create_backup(store: &SegmentStore, wal: &Wal, dest: &Path) -> Result<BackupManifest> {
    prepare_empty_dir(dest)?;
    let layout = DataDir::new(dest);
    let flushed_lsn = store.checkpoint_to(&layout.store_dir())?;
    let info = wal.backup_to(&layout.wal_dir())?;
    if info.first_lsn > flushed_lsn.saturating_add(1) {
        return Err(StorageError::InvalidBackup {
            path: dest.to_path_buf(),
            reason: format!(
                "the WAL copy starts at LSN {} but the store checkpoint is flushed only to {}: \
                 the WAL was truncated during the backup; no manifest written",
                info.first_lsn, flushed_lsn
            ),
        });
    }
    let mut files = Vec::new();
    for sub in [STORE_DIR, WAL_DIR] {
        list_and_sync(dest, &dest.join(sub), &mut files)?;
    }
    files.sort();
    let created_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let manifest = BackupManifest {
        format_version: BACKUP_FORMAT_VERSION,
        store_format_version: STORE_FORMAT_VERSION,
        flushed_lsn,
        wal_first_lsn: info.first_lsn,
        wal_last_lsn: info.last_lsn,
        created_unix_ms,
        files,
    };
    write_manifest(dest, &manifest)?;
    tracing::info!(dest = %dest.display(), flushed_lsn, wal_last_lsn = info.last_lsn,
        files = manifest.files.len(), "backup complete");
    Ok(manifest)
}

/// Reads and checks the manifest of the backup in `src` (crc, version, required fields), and
/// that every file it lists is present with its recorded size.
pub fn verify_backup(src: &Path) -> Result<BackupManifest> {
    check_dir(src)?;
    let manifest = read_manifest(src)?;
    check_files(src, &manifest)?;
    Ok(manifest)
}

/// Restores the backup in `src` into the data directory `data_dir`, which must be missing or
/// empty (`DirectoryNotEmpty` otherwise). Holds the directory lock while it works; opens the
/// restored store and WAL to check them against the manifest. On an error the target may hold
/// a partial copy: delete it before retrying.
pub fn restore_backup(src: &Path, data_dir: &Path) -> Result<BackupManifest> {
    let manifest = verify_backup(src)?;
    prepare_empty_dir(data_dir)?;
    let _lock = DirLock::acquire(data_dir)?;
    let target = DataDir::new(data_dir);
    let source = DataDir::new(src);
    copy_tree(&source.store_dir(), &target.store_dir())?;
    copy_tree(&source.wal_dir(), &target.wal_dir())?;
    sync_dir(data_dir)?;
    check_files(data_dir, &manifest)?;

    let invalid = |reason: String| StorageError::InvalidBackup {
        path: src.to_path_buf(),
        reason,
    };
    let store = SegmentStore::open(
        &target.store_dir(),
        &StoreOptions::default().with_create_if_missing(false),
    )?;
    if store.flushed_lsn() != manifest.flushed_lsn {
        return Err(invalid(format!(
            "restored store reports flushed LSN {}, manifest says {}",
            store.flushed_lsn(),
            manifest.flushed_lsn
        )));
    }
    drop(store);
    let wal = Wal::open(target.wal_dir(), WalOptions::default())?;
    let (first, last) = (wal.first_lsn(), wal.last_lsn());
    wal.close()?;
    if last != manifest.wal_last_lsn || first > manifest.flushed_lsn.saturating_add(1) {
        return Err(invalid(format!(
            "restored WAL holds LSNs {first}..={last}, manifest says {}..={} with the store \
             flushed to {}",
            manifest.wal_first_lsn, manifest.wal_last_lsn, manifest.flushed_lsn
        )));
    }
    tracing::info!(src = %src.display(), data_dir = %data_dir.display(),
        flushed_lsn = manifest.flushed_lsn, "backup restored");
    Ok(manifest)
}

/// Creates `dir` if missing; otherwise it must be an empty directory.
fn prepare_empty_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(_) => {
            check_dir(dir)?;
            if !is_empty_dir(dir)? {
                return Err(StorageError::DirectoryNotEmpty {
                    path: dir.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(_) => DataDir::new(dir).create(),
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { op, path, source }
}

fn read_manifest(src: &Path) -> Result<BackupManifest> {
    let path = DataDir::new(src).backup_manifest_path();
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StorageError::InvalidBackup {
                path: src.to_path_buf(),
                reason: format!("no {BACKUP_MANIFEST}: the backup is incomplete or not a backup"),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(StorageError::InvalidBackup {
                path: src.to_path_buf(),
                reason: format!("{BACKUP_MANIFEST} is not text"),
            })
        }
        Err(e) => return Err(io("read", &path)(e)),
    };
    let m = BackupManifest::decode(&text).map_err(|reason| StorageError::InvalidBackup {
        path: src.to_path_buf(),
        reason,
    })?;
    if m.format_version != BACKUP_FORMAT_VERSION {
        return Err(StorageError::UnsupportedFormatVersion {
            path,
            found: m.format_version,
            supported: BACKUP_FORMAT_VERSION,
        });
    }
    Ok(m)
}

fn write_manifest(dest: &Path, m: &BackupManifest) -> Result<()> {
    let path = DataDir::new(dest).backup_manifest_path();
    let tmp = dest.join(format!("{BACKUP_MANIFEST}{TMP_SUFFIX}"));
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(m.encode().as_bytes())
        .map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
    sync_dir(dest)
}

/// Checks that every file the manifest lists exists under `root` with its size.
fn check_files(root: &Path, m: &BackupManifest) -> Result<()> {
    for (name, len) in &m.files {
        let path = root.join(name);
        let invalid = |reason: String| StorageError::InvalidBackup {
            path: root.to_path_buf(),
            reason,
        };
        if name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(invalid(format!("manifest lists a bad path {name:?}")));
        }
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() && meta.len() == *len => {}
            Ok(meta) => {
                return Err(invalid(format!(
                    "{name} is {} bytes, manifest says {len}",
                    meta.len()
                )))
            }
            Err(_) => return Err(invalid(format!("{name} is missing"))),
        }
    }
    Ok(())
}

/// Lists the regular files under `dir` (relative to `root`, `/`-separated) with their sizes,
/// fsyncing each file and directory on the way.
fn list_and_sync(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(io("read directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(io("read directory", dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(io("stat", &path))?;
        if ft.is_dir() {
            list_and_sync(root, &path, out)?;
        } else if ft.is_file() {
            let f = File::open(&path).map_err(io("open", &path))?;
            f.sync_all().map_err(io("fsync", &path))?;
            let len = f.metadata().map_err(io("stat", &path))?.len();
            out.push((relative_name(root, &path)?, len));
        }
    }
    sync_dir(dir)
}

fn relative_name(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).map_err(|_| {
        StorageError::InvalidArgument(format!("{} outside {}", path.display(), root.display()))
    })?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts.map(|p| p.join("/")).ok_or_else(|| {
        StorageError::InvalidArgument(format!("non-UTF-8 file name {}", path.display()))
    })
}

/// Copies the tree `from` into the new directory `to`, fsyncing files and directories.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(io("create directory", to))?;
    let entries = fs::read_dir(from).map_err(io("read directory", from))?;
    for entry in entries {
        let entry = entry.map_err(io("read directory", from))?;
        let src = entry.path();
        let dst: PathBuf = to.join(entry.file_name());
        let ft = entry.file_type().map_err(io("stat", &src))?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(io("copy", &src))?;
            File::open(&dst)
                .and_then(|f| f.sync_all())
                .map_err(io("fsync", &dst))?;
        }
    }
    sync_dir(to)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BackupManifest {
        BackupManifest {
            format_version: 1,
            store_format_version: 1,
            flushed_lsn: 42,
            wal_first_lsn: 40,
            wal_last_lsn: 50,
            created_unix_ms: 1_700_000_000_000,
            files: vec![("store/CURRENT".into(), 16), ("wal/wal 1.log".into(), 0)],
        }
    }

    #[test]
    fn manifest_round_trips() {
        let m = sample();
        assert_eq!(BackupManifest::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn damaged_manifests_are_rejected_without_panics() {
        let text = sample().encode();
        assert!(BackupManifest::decode(&text.replace("42", "43")).is_err());
        assert!(BackupManifest::decode(&text[..text.len() - 12]).is_err());
        assert!(BackupManifest::decode("").is_err());
        assert!(BackupManifest::decode("crc32=zz").is_err());
        // Every truncation and every single-byte change is rejected or decodes to the same.
        for cut in 0..text.len() {
            if text.is_char_boundary(cut) {
                let _ = BackupManifest::decode(&text[..cut]);
            }
        }
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] ^= 0x01;
            if let Ok(s) = std::str::from_utf8(&b) {
                if let Ok(m) = BackupManifest::decode(s) {
                    assert_eq!(m, sample(), "flip at {i} accepted");
                }
            }
        }
    }
}
