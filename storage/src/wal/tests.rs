//! Unit tests of the `Wal` handle: append, reopen, rollover, readers, truncation, backup.

use std::sync::Arc;
use std::time::Duration;

use super::format::{file_name, HEADER_LEN};
use super::*;

fn small() -> WalOptions {
    WalOptions::default().with_max_file_bytes(200)
}

fn payload(i: u64) -> Vec<u8> {
    format!("entry-{i}-{}", "x".repeat((i % 37) as usize)).into_bytes()
}

fn read_all(wal: &Wal, from: Lsn) -> Vec<(Lsn, Vec<u8>)> {
    wal.reader_from(from)
        .expect("reader")
        .collect::<Result<Vec<_>>>()
        .expect("read")
}

#[test]
fn wal_is_send_and_sync() {
    fn is<T: Send + Sync>() {}
    is::<Wal>();
    is::<WalReader>();
}

#[test]
fn append_reopen_and_read_back_across_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let wal = Wal::open(dir.path(), small()).expect("open");
        assert_eq!((wal.last_lsn(), wal.first_lsn()), (0, 1));
        for i in 1..=50u64 {
            assert_eq!(wal.append(&payload(i)).expect("append"), i);
        }
        assert_eq!(
            wal.append_batch(&[b"a", b"b"]).expect("batch"),
            vec![51, 52]
        );
        assert_eq!(wal.durable_lsn(), 52);
        wal.close().expect("close");
    }
    let files = std::fs::read_dir(dir.path()).expect("ls").count();
    assert!(
        files > 5,
        "small rollover size must give many files, got {files}"
    );
    let wal = Wal::open(dir.path(), small()).expect("reopen");
    assert_eq!(wal.recovery().last_lsn, 52);
    assert_eq!(wal.recovery().bytes_dropped, 0);
    let all = read_all(&wal, 1);
    assert_eq!(all.len(), 52);
    for (i, (lsn, p)) in all.iter().take(50).enumerate() {
        assert_eq!((*lsn, p.clone()), (i as u64 + 1, payload(i as u64 + 1)));
    }
    assert_eq!(read_all(&wal, 30)[0].0, 30);
    assert!(read_all(&wal, 53).is_empty());
    assert_eq!(wal.append(b"next").expect("append"), 53);
}

#[test]
fn empty_payloads_and_entries_larger_than_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), small()).expect("open");
    let big = vec![7u8; 1000];
    wal.append(b"").expect("empty");
    wal.append(&big).expect("big");
    wal.append(b"").expect("empty");
    drop(wal);
    let wal = Wal::open(dir.path(), small()).expect("reopen");
    let got: Vec<Vec<u8>> = read_all(&wal, 1).into_iter().map(|e| e.1).collect();
    assert_eq!(got, vec![Vec::new(), big, Vec::new()]);
}

#[test]
fn oversized_entries_are_rejected_and_limit_is_checked_on_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), WalOptions::default().with_max_entry_bytes(100)).expect("o");
    assert!(matches!(
        wal.append(&[0u8; 101]),
        Err(StorageError::InvalidArgument(_))
    ));
    wal.append(&[1u8; 100]).expect("at the limit");
    drop(wal);
    // A smaller limit on reopen must refuse, not silently drop the entry.
    let err = Wal::open(dir.path(), WalOptions::default().with_max_entry_bytes(50));
    assert!(
        matches!(err, Err(StorageError::InvalidArgument(_))),
        "{err:?}"
    );
    let wal = Wal::open(dir.path(), WalOptions::default().with_max_entry_bytes(100)).expect("o");
    assert_eq!(wal.last_lsn(), 1);
}

#[test]
fn torn_tail_is_truncated_and_later_files_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), small()).expect("open");
    for i in 1..=30u64 {
        wal.append(&payload(i)).expect("append");
    }
    drop(wal);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    names.sort();
    // Damage the second file's first frame: everything from its first LSN on goes.
    let second = dir.path().join(&names[1]);
    let first_of_second = format::parse_file_name(&names[1]).expect("name");
    let mut bytes = std::fs::read(&second).expect("read");
    bytes[HEADER_LEN as usize + 20] ^= 1;
    std::fs::write(&second, &bytes).expect("write");
    let wal = Wal::open(dir.path(), small()).expect("reopen");
    assert_eq!(wal.last_lsn(), first_of_second - 1);
    let r = wal.recovery();
    assert_eq!(r.removed_files.len(), names.len() - 2);
    assert!(r.bytes_dropped > 0);
    assert_eq!(r.torn.as_ref().map(|t| t.offset), Some(HEADER_LEN));
    assert_eq!(read_all(&wal, 1).len() as u64, first_of_second - 1);
    assert_eq!(wal.append(b"again").expect("append"), first_of_second);
}

#[test]
fn unknown_format_version_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Wal::open(dir.path(), small()).expect("open"));
    let p = dir.path().join(file_name(1));
    let mut h = std::fs::read(&p).expect("read");
    h[8..12].copy_from_slice(&9u32.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&p, &h).expect("write");
    let err = Wal::open(dir.path(), small()).expect_err("must refuse");
    assert!(matches!(
        err,
        StorageError::UnsupportedFormatVersion { found: 9, .. }
    ));
}

#[test]
fn reader_follows_new_appends_and_blocks_with_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Arc::new(Wal::open(dir.path(), small()).expect("open"));
    let mut r = wal.reader_from(1).expect("reader");
    assert!(r.try_next().expect("try").is_none());
    assert!(r
        .next_timeout(Duration::from_millis(10))
        .expect("t")
        .is_none());
    let w = wal.clone();
    let t = std::thread::spawn(move || {
        for i in 1..=40u64 {
            w.append(&payload(i)).expect("append");
        }
    });
    for i in 1..=40u64 {
        let (lsn, p) = r
            .next_timeout(Duration::from_secs(10))
            .expect("next")
            .expect("an entry within 10 s");
        assert_eq!((lsn, p), (i, payload(i)));
    }
    t.join().expect("join");
    assert!(r.try_next().expect("try").is_none());
}

#[test]
fn truncate_below_removes_only_whole_files_below() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), small()).expect("open");
    for i in 1..=40u64 {
        wal.append(&payload(i)).expect("append");
    }
    let removed = wal.truncate_below(20).expect("truncate");
    assert!(removed > 0);
    let first = wal.first_lsn();
    assert!(first <= 20, "file holding 20 must stay, first = {first}");
    assert!(matches!(
        wal.reader_from(first - 1),
        Err(StorageError::WalLsnUnavailable { .. })
    ));
    assert_eq!(read_all(&wal, first).len() as u64, 40 - first + 1);
    // Everything: only the active file stays.
    wal.truncate_below(u64::MAX).expect("truncate");
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    assert_eq!(wal.append(b"x").expect("append"), 41);
    drop(wal);
    let wal = Wal::open(dir.path(), small()).expect("reopen");
    assert_eq!(wal.last_lsn(), 41);
}

#[test]
fn backup_copies_a_recoverable_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), small().with_durability(Durability::Off)).expect("open");
    for i in 1..=25u64 {
        wal.append(&payload(i)).expect("append");
    }
    let info = wal.backup_to(dest.path()).expect("backup");
    assert_eq!((info.first_lsn, info.last_lsn), (1, 25));
    wal.append(b"after").expect("append");
    let copy = Wal::open(dest.path(), small()).expect("open copy");
    assert_eq!(copy.recovery().bytes_dropped, 0);
    assert_eq!(read_all(&copy, 1).len(), 25);
    // A second backup into the same directory must not clobber it.
    assert!(wal.backup_to(dest.path()).is_err());
}

#[test]
fn durability_modes_and_concurrent_appenders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = small().with_normal_sync_interval(Duration::from_millis(1));
    let wal = Arc::new(Wal::open(dir.path(), opts).expect("open"));
    for d in [Durability::Full, Durability::Normal, Durability::Off] {
        wal.set_durability(d);
        assert_eq!(wal.durability(), d);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = wal.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|i| w.append(&payload(t * 1000 + i)).expect("append"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for t in threads {
            let lsns = t.join().expect("join");
            assert!(lsns.windows(2).all(|w| w[0] < w[1]));
        }
        match d {
            Durability::Full => assert_eq!(wal.durable_lsn(), wal.last_lsn()),
            Durability::Normal => {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while wal.durable_lsn() < wal.last_lsn() {
                    assert!(std::time::Instant::now() < deadline, "syncer never synced");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Durability::Off => {
                assert_eq!(wal.sync().expect("sync"), wal.last_lsn());
            }
        }
    }
    assert_eq!(wal.last_lsn(), 600);
    let s = wal.stats();
    assert_eq!(s.entries, 600);
    assert!(s.groups <= 600 && s.groups > 0);
    let all = read_all(&wal, 1);
    assert_eq!(all.len(), 600);
    assert!(all.iter().enumerate().all(|(i, e)| e.0 == i as u64 + 1));
}
