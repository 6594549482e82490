//! Segment store through its public API: write/flush/reopen round trips, blobs at chunk
//! boundaries with the real chunk size, corruption detection, open errors.

use std::path::Path;

use vela_storage::store::{keys, BLOB_CHUNK_BYTES};
use vela_storage::{Cf, SegmentStore, StorageError, StoreOptions};

fn open(dir: &Path) -> SegmentStore {
    SegmentStore::open(dir, &StoreOptions::default()).expect("open store")
}

fn row_key(table: u64, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    keys::push_u64(&mut k, table);
    keys::push_u64(&mut k, id);
    k
}

#[test]
fn write_flush_reopen_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    {
        let s = open(&dir);
        for lsn in 1..=20u64 {
            let mut b = s.batch();
            for i in 0..50 {
                let id = lsn * 100 + i;
                b.put(Cf::Rows, &row_key(1, id), format!("row {id}").as_bytes());
                b.put(Cf::Vectors, &row_key(1, id), &[lsn as u8; 64]);
            }
            b.put(Cf::Catalog, b"table/1", format!("v{lsn}").as_bytes());
            s.write(b, lsn).unwrap();
        }
        let mut b = s.batch();
        b.put(Cf::Tombstones, &row_key(1, 105), b"");
        b.delete(Cf::Rows, &row_key(1, 105));
        s.write(b, 21).unwrap();
        s.flush(21).unwrap();
        assert_eq!(s.flushed_lsn(), 21);
    }
    let s = open(&dir);
    assert_eq!(s.flushed_lsn(), 21);
    assert_eq!(s.applied_lsn(), 21);
    assert_eq!(
        s.get(Cf::Catalog, b"table/1").unwrap(),
        Some(b"v20".to_vec())
    );
    let rows: Vec<_> = s
        .iter_prefix(Cf::Rows, &1u64.to_be_bytes())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 20 * 50 - 1);
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "key order");
    assert_eq!(rows[0].1, b"row 100");
    assert_eq!(s.get(Cf::Rows, &row_key(1, 105)).unwrap(), None);
    assert_eq!(
        s.get(Cf::Tombstones, &row_key(1, 105)).unwrap(),
        Some(vec![])
    );
    assert_eq!(
        s.get(Cf::Vectors, &row_key(1, 2049)).unwrap(),
        Some(vec![20u8; 64])
    );
    assert_eq!(
        s.iter_prefix(Cf::Rows, &2u64.to_be_bytes())
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn clean_close_without_flush_keeps_data_but_not_the_flushed_lsn() {
    // Dropping the store is a clean close (RocksDB flushes memtables), not a crash: the data
    // is kept, but the flushed LSN stays at the last explicit flush.
    let tmp = tempfile::tempdir().unwrap();
    {
        let s = open(tmp.path());
        let mut b = s.batch();
        b.put(Cf::Rows, b"a", b"1");
        s.write(b, 1).unwrap();
        s.flush(1).unwrap();
        let mut b = s.batch();
        b.put(Cf::Rows, b"b", b"2");
        s.write(b, 2).unwrap();
    }
    let s = open(tmp.path());
    assert_eq!(s.flushed_lsn(), 1);
    assert_eq!(s.applied_lsn(), 2);
    assert_eq!(s.get(Cf::Rows, b"b").unwrap(), Some(b"2".to_vec()));
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[0] ^ seed)
        .collect()
}

#[test]
fn blobs_at_real_chunk_boundaries_survive_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let c = BLOB_CHUNK_BYTES;
    let sizes = [0, 1, c - 1, c, c + 1, 5 * c + 12_345];
    {
        let s = open(tmp.path());
        let mut b = s.batch();
        for (i, &len) in sizes.iter().enumerate() {
            b.put_blob(Cf::Index, &row_key(7, i as u64), &pattern(len, i as u8));
        }
        s.write(b, 1).unwrap();
        s.flush(1).unwrap();
    }
    let s = open(tmp.path());
    for (i, &len) in sizes.iter().enumerate() {
        let got = s.get_blob(Cf::Index, &row_key(7, i as u64)).unwrap();
        assert_eq!(got, Some(pattern(len, i as u8)), "blob of {len} bytes");
    }
    // Chunk count on disk: header + ceil(len / chunk) chunks.
    let n = s.iter_prefix(Cf::Index, &row_key(7, 5)).unwrap().count();
    assert_eq!(n, 1 + 6);
    assert_eq!(s.get_blob(Cf::Index, &row_key(7, 99)).unwrap(), None);
}

#[test]
fn corrupted_blob_chunk_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let key = row_key(3, 1);
    let data = pattern(2 * BLOB_CHUNK_BYTES + 10, 9);
    let mut b = s.batch();
    b.put_blob(Cf::Index, &key, &data);
    s.write(b, 1).unwrap();
    s.flush(1).unwrap();

    let mut chunk_key = key.clone();
    keys::push_u32(&mut chunk_key, 1);
    let mut chunk = s.get(Cf::Index, &chunk_key).unwrap().unwrap();
    chunk[BLOB_CHUNK_BYTES / 2] ^= 0x10;
    let mut b = s.batch();
    b.put(Cf::Index, &chunk_key, &chunk);
    s.write(b, 2).unwrap();

    let err = s.get_blob(Cf::Index, &key).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{msg}");
    assert!(msg.contains("crc32"), "{msg}");
    assert!(
        msg.contains("index/00000000000000030000000000000001"),
        "{msg}"
    );
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
}

#[test]
fn iteration_errors_and_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let mut b = s.batch();
    for k in [&b"a"[..], b"ab", b"abc", b"b", b"\xff", b"\xff\xff"] {
        b.put(Cf::Catalog, k, k);
    }
    s.write(b, 1).unwrap();
    let keys_of =
        |it: vela_storage::StoreIter<'_>| -> Vec<Vec<u8>> { it.map(|r| r.unwrap().0).collect() };
    assert_eq!(
        keys_of(s.iter_prefix(Cf::Catalog, b"ab").unwrap()),
        vec![b"ab".to_vec(), b"abc".to_vec()]
    );
    assert_eq!(keys_of(s.iter_prefix(Cf::Catalog, b"").unwrap()).len(), 6);
    assert_eq!(
        keys_of(s.iter_prefix(Cf::Catalog, b"\xff").unwrap()),
        vec![b"\xff".to_vec(), b"\xff\xff".to_vec()]
    );
    assert_eq!(
        keys_of(s.iter_range(Cf::Catalog, b"ab", Some(b"b")).unwrap()),
        vec![b"ab".to_vec(), b"abc".to_vec()]
    );
}

/// True when running as root (permission checks do not apply), from /proc/self/status.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(true)
}

#[test]
fn open_errors_name_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let err = SegmentStore::open(
        &missing,
        &StoreOptions::default().with_create_if_missing(false),
    )
    .unwrap_err();
    assert!(
        matches!(err, StorageError::MissingDirectory { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("missing"), "{err}");

    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a dir").unwrap();
    let err = SegmentStore::open(&file, &StoreOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("not a directory: {}", file.display())
    );

    if running_as_root() {
        eprintln!("skipping the unreadable-directory case: running as root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let locked = tmp.path().join("unreadable");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let err = SegmentStore::open(&locked, &StoreOptions::default()).unwrap_err();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert!(err.to_string().contains("unreadable"), "{err}");
}
