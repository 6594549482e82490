//! Recovery on open: find the valid prefix of the log, cut off the torn or corrupt rest.
//!
//! Files are scanned in LSN order from the oldest present (older ones were removed by
//! `truncate_below`, so the oldest present is the oldest needed). The scan stops at the first
//! of: a file whose header is short or damaged, a file whose first LSN is not exactly the
//! previous file's last LSN + 1, a short frame head, a frame extending past the end of its
//! file, a crc mismatch, or an LSN that is not exactly the previous LSN + 1. The file is
//! truncated there (a file with a bad header is removed whole), every later file is removed,
//! and a `tracing::warn!` says how many bytes were dropped and why.
//!
//! Bounded work and memory whatever the bytes: lengths are checked against the bytes left in
//! the file before anything is read, and payloads are crc-checked in 64 KiB chunks, never
//! allocated. The one refusal: a complete, crc-valid entry larger than `max_entry_bytes` means
//! the WAL was written with a larger limit; opening fails instead of dropping it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cursor::FileCursor;
use super::format::{self, FrameHead, HeaderCheck, FRAME_HEAD_LEN, HEADER_LEN};
use super::fs::{WalFile, WalFs};
use super::writer::{create_wal_file, io_err, ActiveWriter, FileMeta};
use super::Lsn;
use crate::error::{Result, StorageError};

const CHUNK_BYTES: usize = 64 * 1024;

/// What `Wal::open` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// WAL files kept (the last is the active one).
    pub files: usize,
    /// Entries found valid.
    pub entries: u64,
    /// LSN of the oldest retained entry (the oldest file's first LSN; with no entries, the LSN
    /// the next append gets).
    pub first_lsn: Lsn,
    /// LSN of the last valid entry (`first_lsn - 1` if there are none).
    pub last_lsn: Lsn,
    /// Bytes cut off the torn file plus the sizes of the files removed after it.
    pub bytes_dropped: u64,
    /// Where the valid log ended early, if it did.
    pub torn: Option<TornTail>,
    /// Files removed because they came after the cut (or had a damaged header).
    pub removed_files: Vec<PathBuf>,
}

/// Where recovery cut the log, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Offset the file was truncated to (0 if the file was removed).
    pub offset: u64,
    pub reason: String,
}

/// The recovered log, ready for appending.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub files: Vec<FileMeta>,
    pub writer: ActiveWriter,
    pub next_lsn: Lsn,
    pub report: RecoveryReport,
}

enum Scan {
    Clean {
        next: Lsn,
        entries: u64,
    },
    Torn {
        at: u64,
        next: Lsn,
        entries: u64,
        reason: String,
    },
}

struct Found {
    meta: FileMeta,
    file: Arc<dyn WalFile>,
    len: u64,
}

/// Recovers the WAL in `dir` (creating the directory and a first file if needed).
pub(crate) fn recover(fs: &dyn WalFs, dir: &Path, max_entry_bytes: u32) -> Result<Recovered> {
    fs.create_dir_all(dir)
        .map_err(|e| io_err("create directory", dir, e))?;
    let mut names: Vec<(Lsn, String)> = fs
        .list_dir(dir)
        .map_err(|e| io_err("list directory", dir, e))?
        .into_iter()
        .filter_map(|n| format::parse_file_name(&n).map(|lsn| (lsn, n)))
        .collect();
    names.sort();

    let mut report = RecoveryReport::default();
    let mut kept: Vec<Found> = Vec::new();
    let mut expected: Option<Lsn> = None;
    let mut last_entries = 0u64;
    let mut cut_from = names.len(); // index of the first file to remove
    for (i, (name_lsn, name)) in names.iter().enumerate() {
        let path = dir.join(name);
        let file = fs.open(&path).map_err(|e| io_err("open", &path, e))?;
        let len = file.len().map_err(|e| io_err("stat", &path, e))?;
        let mut cursor = FileCursor::new(file.clone(), 0);
        let reason = match check_file_start(&mut cursor, &path, len, *name_lsn, expected)? {
            Some(reason) => reason,
            None => {
                let first = expected.unwrap_or(*name_lsn);
                let scan = scan_frames(&mut cursor, &path, len, first, max_entry_bytes)?;
                let meta = FileMeta {
                    first_lsn: *name_lsn,
                    path: path.clone(),
                };
                match scan {
                    Scan::Clean { next, entries } => {
                        report.entries += entries;
                        last_entries = entries;
                        expected = Some(next);
                        kept.push(Found { meta, file, len });
                        continue;
                    }
                    Scan::Torn {
                        at,
                        next,
                        entries,
                        reason,
                    } => {
                        report.entries += entries;
                        last_entries = entries;
                        expected = Some(next);
                        truncate_file(&*file, &path, at)?;
                        report.bytes_dropped += len - at;
                        report.torn = Some(TornTail {
                            path: path.clone(),
                            offset: at,
                            reason,
                        });
                        kept.push(Found {
                            meta,
                            file,
                            len: at,
                        });
                        cut_from = i + 1;
                        break;
                    }
                }
            }
        };
        // A bad header or a gap: this file and all later ones go.
        report.torn = Some(TornTail {
            path: path.clone(),
            offset: 0,
            reason,
        });
        if expected.is_none() {
            expected = Some((*name_lsn).max(1));
        }
        cut_from = i;
        break;
    }
    remove_files(fs, dir, &names[cut_from.min(names.len())..], &mut report)?;
    if let Some(t) = &report.torn {
        tracing::warn!(path = %t.path.display(), offset = t.offset,
            bytes_dropped = report.bytes_dropped, files_removed = report.removed_files.len(),
            reason = %t.reason, "WAL recovery dropped a torn or corrupt tail");
    }

    let next_lsn = expected.unwrap_or(1);
    let writer = match kept.pop() {
        Some(active) => {
            // The tail may be in the page cache only (a process crash under Normal/Off):
            // make what we are about to acknowledge as recovered durable.
            active
                .file
                .sync_data()
                .map_err(|e| StorageError::SyncFailed {
                    path: active.meta.path.clone(),
                    message: e.to_string(),
                })?;
            let len = active.len;
            let w = ActiveWriter::new(active.file, active.meta, len, last_entries);
            kept.push(Found {
                meta: w.meta.clone(),
                file: w.file.clone(),
                len,
            });
            w
        }
        None => {
            let (meta, file) = create_wal_file(fs, dir, next_lsn).map_err(|p| p.to_error())?;
            kept.push(Found {
                meta: meta.clone(),
                file: file.clone(),
                len: HEADER_LEN,
            });
            ActiveWriter::new(file, meta, HEADER_LEN, 0)
        }
    };
    report.files = kept.len();
    report.first_lsn = kept.first().map_or(next_lsn, |f| f.meta.first_lsn);
    report.last_lsn = next_lsn - 1;
    Ok(Recovered {
        files: kept.into_iter().map(|f| f.meta).collect(),
        writer,
        next_lsn,
        report,
    })
}

/// Checks a file's header and its place in the sequence. `Some(reason)` if the log ends
/// before this file; `Err` only for I/O errors and a header of an unknown version.
fn check_file_start(
    cursor: &mut FileCursor,
    path: &Path,
    len: u64,
    name_lsn: Lsn,
    expected: Option<Lsn>,
) -> Result<Option<String>> {
    let mut h = [0u8; HEADER_LEN as usize];
    let got = cursor
        .read_exact(&mut h, len)
        .map_err(|e| io_err("read", path, e))?;
    if !got {
        return Ok(Some(format!(
            "file header torn ({len} of {HEADER_LEN} bytes)"
        )));
    }
    match format::check_header(&h) {
        HeaderCheck::Damaged => Ok(Some("file header damaged".into())),
        HeaderCheck::UnknownVersion(found) => Err(StorageError::UnsupportedFormatVersion {
            path: path.to_path_buf(),
            found,
            supported: format::FORMAT_VERSION,
        }),
        HeaderCheck::Valid { first_lsn } if first_lsn != name_lsn || first_lsn == 0 => Ok(Some(
            format!("header says first LSN {first_lsn}, file name says {name_lsn}"),
        )),
        HeaderCheck::Valid { first_lsn } => match expected {
            Some(e) if e != first_lsn => Ok(Some(format!(
                "file starts at LSN {first_lsn}, expected {e} (gap or overlap)"
            ))),
            _ => Ok(None),
        },
    }
}

/// Walks the frames after the header; see the module docs for the stopping rules.
fn scan_frames(
    cursor: &mut FileCursor,
    path: &Path,
    len: u64,
    first: Lsn,
    max_entry_bytes: u32,
) -> Result<Scan> {
    let mut next = first;
    let mut entries = 0u64;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let read = |c: &mut FileCursor, buf: &mut [u8]| {
        c.read_exact(buf, len).map_err(|e| io_err("read", path, e))
    };
    loop {
        let at = cursor.pos();
        let torn = |reason: String| Scan::Torn {
            at,
            next,
            entries,
            reason,
        };
        if at == len {
            return Ok(Scan::Clean { next, entries });
        }
        let mut hb = [0u8; FRAME_HEAD_LEN as usize];
        if !read(cursor, &mut hb)? {
            return Ok(torn(format!("frame head torn ({} bytes left)", len - at)));
        }
        let head = FrameHead::decode(&hb);
        let left = len - cursor.pos();
        if u64::from(head.len) > left {
            return Ok(torn(format!(
                "frame claims {} payload bytes, {left} left in file",
                head.len
            )));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&hb[8..16]);
        let mut remaining = head.len as usize;
        while remaining > 0 {
            let k = remaining.min(CHUNK_BYTES);
            if !read(cursor, &mut chunk[..k])? {
                return Ok(torn("payload torn".into()));
            }
            crc.update(&chunk[..k]);
            remaining -= k;
        }
        if crc.finalize() != head.crc {
            return Ok(torn(format!("crc mismatch in frame of LSN {}", head.lsn)));
        }
        if head.lsn != next {
            return Ok(torn(format!("LSN {} where {next} was expected", head.lsn)));
        }
        if head.len > max_entry_bytes {
            return Err(StorageError::InvalidArgument(format!(
                "entry LSN {} in {} at offset {at} is {} bytes, more than max_entry_bytes {}; \
                 reopen with a larger limit",
                head.lsn,
                path.display(),
                head.len,
                max_entry_bytes
            )));
        }
        next += 1;
        entries += 1;
    }
}

fn truncate_file(file: &dyn WalFile, path: &Path, at: u64) -> Result<()> {
    file.set_len(at).map_err(|e| io_err("truncate", path, e))?;
    file.sync_data().map_err(|e| StorageError::SyncFailed {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn remove_files(
    fs: &dyn WalFs,
    dir: &Path,
    victims: &[(Lsn, String)],
    report: &mut RecoveryReport,
) -> Result<()> {
    if victims.is_empty() {
        return Ok(());
    }
    for (_, name) in victims {
        let path = dir.join(name);
        // Size is for the report only; a failure to stat does not stop the removal.
        let size = fs.open(&path).and_then(|f| f.len()).unwrap_or(0);
        fs.remove_file(&path)
            .map_err(|e| io_err("remove", &path, e))?;
        report.bytes_dropped += size;
        report.removed_files.push(path);
    }
    fs.sync_dir(dir).map_err(|e| StorageError::SyncFailed {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })
}
