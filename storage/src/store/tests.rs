//! Unit tests of the segment store against a temporary directory.

use super::*;

fn open(dir: &Path) -> SegmentStore {
    SegmentStore::open(dir, &StoreOptions::default()).unwrap()
}

#[test]
fn put_get_iterate_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    assert_eq!(s.flushed_lsn(), 0);
    let mut b = s.batch();
    for i in 0u64..10 {
        let mut k = b"t".to_vec();
        keys::push_u64(&mut k, i);
        b.put(Cf::Rows, &k, format!("row{i}").as_bytes());
    }
    b.put(Cf::Catalog, b"t", b"def");
    b.put(Cf::Meta, b"engine.next_id", b"10");
    assert_eq!(b.len(), 12);
    s.write(b, 7).unwrap();
    assert_eq!(s.applied_lsn(), 7);
    assert_eq!(
        s.get(Cf::Catalog, b"t").unwrap().as_deref(),
        Some(&b"def"[..])
    );
    assert_eq!(s.get(Cf::Rows, b"t").unwrap(), None, "CFs are separate");

    let rows: Vec<_> = s
        .iter_prefix(Cf::Rows, b"t")
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 10);
    assert_eq!(keys::read_u64(&rows[3].0, 1), Some(3));
    assert_eq!(rows[3].1, b"row3");

    // The borrowed bulk scan sees the same entries, stops when asked, passes errors through.
    let mut scanned = Vec::new();
    s.scan_prefix(Cf::Rows, b"t", |k, v| {
        scanned.push((k.to_vec(), v.to_vec()));
        Ok::<_, StorageError>(true)
    })
    .unwrap();
    assert_eq!(scanned, rows);
    let mut seen = 0;
    s.scan_prefix(Cf::Rows, b"t", |_, _| {
        seen += 1;
        Ok::<_, StorageError>(seen < 4)
    })
    .unwrap();
    assert_eq!(seen, 4);
    #[derive(Debug, PartialEq)]
    enum Stop {
        Here,
        Store(String),
    }
    impl From<StorageError> for Stop {
        fn from(e: StorageError) -> Self {
            Stop::Store(e.to_string())
        }
    }
    let stopped = s.scan_prefix(Cf::Rows, b"t", |_, _| -> std::result::Result<bool, Stop> {
        Err(Stop::Here)
    });
    assert_eq!(stopped, Err(Stop::Here));
    let mut five = b"t".to_vec();
    keys::push_u64(&mut five, 5);
    for (start, end, want) in [(&b"t"[..], Some(&five[..]), 0..5), (&five[..], None, 5..10)] {
        let mut got = Vec::new();
        s.scan_range(Cf::Rows, start, end, |k, _| {
            got.push(keys::read_u64(k, 1).unwrap());
            Ok::<_, StorageError>(true)
        })
        .unwrap();
        assert_eq!(got, want.collect::<Vec<u64>>());
    }
    s.scan_prefix(
        Cf::Rows,
        b"nothing",
        |_, _| -> std::result::Result<bool, StorageError> { panic!("no entry has this prefix") },
    )
    .unwrap();

    let mut from = b"t".to_vec();
    keys::push_u64(&mut from, 2);
    let mut to = b"t".to_vec();
    keys::push_u64(&mut to, 5);
    let mid: Vec<_> = s
        .iter_range(Cf::Rows, &from, Some(&to))
        .unwrap()
        .map(|r| r.unwrap().1)
        .collect();
    assert_eq!(
        mid,
        vec![b"row2".to_vec(), b"row3".to_vec(), b"row4".to_vec()]
    );
    let (last_k, _) = s
        .last_in_range(Cf::Rows, b"t", Some(b"u"))
        .unwrap()
        .unwrap();
    assert_eq!(keys::read_u64(&last_k, 1), Some(9));
    assert_eq!(s.last_in_range(Cf::Rows, b"u", None).unwrap(), None);

    let got = s
        .multi_get(Cf::Rows, &[from.clone(), b"nope".to_vec()])
        .unwrap();
    assert_eq!(got, vec![Some(b"row2".to_vec()), None]);

    let mut b = s.batch();
    b.delete_range(Cf::Rows, &from, &to);
    b.delete(Cf::Catalog, b"t");
    s.write(b, 8).unwrap();
    assert_eq!(s.iter_prefix(Cf::Rows, b"t").unwrap().count(), 7);
    assert_eq!(s.get(Cf::Catalog, b"t").unwrap(), None);
}

#[test]
fn reserved_meta_keys_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let mut b = s.batch();
    b.put(Cf::Rows, b"k", b"v");
    b.put(Cf::Meta, meta::FLUSHED_LSN_KEY, &[0; 8]);
    assert!(matches!(
        s.write(b, 1),
        Err(StorageError::InvalidArgument(_))
    ));
    assert_eq!(
        s.get(Cf::Rows, b"k").unwrap(),
        None,
        "nothing of a refused batch is written"
    );
    let mut b = s.batch();
    b.delete_range(Cf::Meta, b"", b"z");
    assert!(s.write(b, 1).is_err());
    let mut b = s.batch();
    b.delete_range(Cf::Meta, b"a", b"z");
    s.write(b, 1).unwrap();
}

#[test]
fn batch_of_another_store_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = open(&tmp.path().join("a"));
    let b = open(&tmp.path().join("b"));
    let mut batch = a.batch();
    batch.put(Cf::Rows, b"k", b"v");
    assert!(matches!(
        b.write(batch, 1),
        Err(StorageError::InvalidArgument(_))
    ));
}

#[test]
fn flush_records_lsn_and_refuses_going_back() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let s = open(tmp.path());
        let mut b = s.batch();
        b.put(Cf::Vectors, b"v1", &[1u8; 512]);
        s.write(b, 5).unwrap();
        s.flush(5).unwrap();
        s.flush(5).unwrap();
        assert!(matches!(s.flush(4), Err(StorageError::InvalidArgument(_))));
        assert_eq!(s.flushed_lsn(), 5);
    }
    let s = open(tmp.path());
    assert_eq!(s.flushed_lsn(), 5);
    assert_eq!(s.applied_lsn(), 5);
    assert_eq!(s.get(Cf::Vectors, b"v1").unwrap(), Some(vec![1u8; 512]));
}

#[test]
fn blobs_round_trip_at_chunk_boundaries() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let chunk = 16usize;
    for len in [
        0usize,
        1,
        chunk - 1,
        chunk,
        chunk + 1,
        5 * chunk,
        5 * chunk + 3,
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let key = (len as u64).to_be_bytes();
        let mut b = s.batch();
        b.put_blob_chunked(Cf::Index, &key, &data, chunk);
        s.write(b, 1).unwrap();
        assert_eq!(
            s.get_blob(Cf::Index, &key).unwrap(),
            Some(data),
            "len {len}"
        );
    }
    assert_eq!(s.get_blob(Cf::Index, b"absent!!").unwrap(), None);
}

#[test]
fn overwriting_a_blob_with_a_shorter_one_drops_old_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let mut b = s.batch();
    b.put_blob_chunked(Cf::Index, b"seg1", &[9u8; 100], 10);
    b.put_blob_chunked(Cf::Index, b"seg2", &[8u8; 25], 10);
    s.write(b, 1).unwrap();
    let mut b = s.batch();
    b.put_blob_chunked(Cf::Index, b"seg1", &[7u8; 15], 10);
    s.write(b, 2).unwrap();
    assert_eq!(s.get_blob(Cf::Index, b"seg1").unwrap(), Some(vec![7u8; 15]));
    // Only the header and 2 chunks of seg1 remain, and seg2 is untouched.
    assert_eq!(s.iter_prefix(Cf::Index, b"seg1").unwrap().count(), 3);
    assert_eq!(s.get_blob(Cf::Index, b"seg2").unwrap(), Some(vec![8u8; 25]));
    let mut b = s.batch();
    b.delete_blob(Cf::Index, b"seg1");
    s.write(b, 3).unwrap();
    assert_eq!(s.get_blob(Cf::Index, b"seg1").unwrap(), None);
    assert_eq!(s.iter_prefix(Cf::Index, b"seg1").unwrap().count(), 0);
    assert_eq!(s.get_blob(Cf::Index, b"seg2").unwrap(), Some(vec![8u8; 25]));
}

#[test]
fn damaged_blobs_are_corrupt_errors_naming_store_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let data: Vec<u8> = (0..50u8).collect();
    let mut b = s.batch();
    b.put_blob_chunked(Cf::Index, b"K", &data, 10);
    s.write(b, 1).unwrap();

    // Flip a byte of chunk 2 (same length): crc mismatch.
    let k2 = blob_chunk_key(b"K", 2);
    let mut chunk = s.get(Cf::Index, &k2).unwrap().unwrap();
    chunk[0] ^= 0xFF;
    raw_put(&s, Cf::Index, &k2, &chunk);
    let err = s.get_blob(Cf::Index, b"K").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{msg}");
    assert!(msg.contains("crc32") && msg.contains("index/4b"), "{msg}");
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");

    // Truncate chunk 1: length mismatch.
    raw_put(&s, Cf::Index, &k2, &data[20..30]);
    raw_put(&s, Cf::Index, &blob_chunk_key(b"K", 1), &data[10..15]);
    let msg = s.get_blob(Cf::Index, b"K").unwrap_err().to_string();
    assert!(msg.contains("chunk 1 is 5 bytes"), "{msg}");

    // Remove the last chunk: missing.
    raw_put(&s, Cf::Index, &blob_chunk_key(b"K", 1), &data[10..20]);
    let mut b = s.batch();
    b.delete(Cf::Index, &blob_chunk_key(b"K", 4));
    s.write(b, 2).unwrap();
    let msg = s.get_blob(Cf::Index, b"K").unwrap_err().to_string();
    assert!(msg.contains("chunk 4 of 5 is missing"), "{msg}");

    // Garbage header.
    raw_put(&s, Cf::Index, b"K", b"short");
    let msg = s.get_blob(Cf::Index, b"K").unwrap_err().to_string();
    assert!(msg.contains("header is 5 bytes"), "{msg}");
}

fn blob_chunk_key(key: &[u8], i: u32) -> Vec<u8> {
    let mut k = key.to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn raw_put(s: &SegmentStore, cf: Cf, key: &[u8], value: &[u8]) {
    let mut b = s.batch();
    b.put(cf, key, value);
    s.write(b, 1).unwrap();
}

#[test]
fn checkpoint_copies_and_reports_flushed_lsn() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(&tmp.path().join("live"));
    let mut b = s.batch();
    b.put(Cf::Rows, b"a", b"1");
    s.write(b, 3).unwrap();
    s.flush(3).unwrap();
    let mut b = s.batch();
    b.put(Cf::Rows, b"b", b"2");
    s.write(b, 4).unwrap();
    let dest = tmp.path().join("copy");
    assert_eq!(s.checkpoint_to(&dest).unwrap(), 3);
    // A second checkpoint into an existing directory fails with the destination named.
    let err = s.checkpoint_to(&dest).unwrap_err().to_string();
    assert!(err.contains("copy"), "{err}");
    drop(s);
    let c = open(&dest);
    assert_eq!(c.flushed_lsn(), 3);
    assert_eq!(c.get(Cf::Rows, b"a").unwrap().as_deref(), Some(&b"1"[..]));
    // The checkpoint flushed memtables, so the unflushed write is in the copy too.
    assert_eq!(c.get(Cf::Rows, b"b").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn open_reports_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let no_create = StoreOptions::default().with_create_if_missing(false);
    assert!(matches!(
        SegmentStore::open(&missing, &no_create),
        Err(StorageError::MissingDirectory { path }) if path == missing
    ));
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        SegmentStore::open(&file, &StoreOptions::default()),
        Err(StorageError::NotADirectory { path }) if path == file
    ));
    let under_file = file.join("store");
    assert!(matches!(
        SegmentStore::open(&under_file, &StoreOptions::default()),
        Err(StorageError::NotADirectory { .. })
    ));
    // An existing empty directory without create_if_missing: RocksDB's error, naming it.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = SegmentStore::open(&empty, &no_create).unwrap_err();
    assert!(matches!(err, StorageError::RocksDb { .. }), "{err}");
    assert!(err.to_string().contains(&empty.display().to_string()));
}

#[test]
fn same_store_cannot_be_opened_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let _s = open(tmp.path());
    let err = SegmentStore::open(tmp.path(), &StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::RocksDb { .. }), "{err}");
}

#[test]
fn future_format_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let s = open(tmp.path());
        let meta_cf = s.handle(Cf::Meta).unwrap();
        s.db.put_cf(meta_cf, meta::FORMAT_VERSION_KEY, 99u32.to_be_bytes())
            .unwrap();
    }
    assert!(matches!(
        SegmentStore::open(tmp.path(), &StoreOptions::default()),
        Err(StorageError::UnsupportedFormatVersion {
            found: 99,
            supported: 1,
            ..
        })
    ));
}

#[test]
fn every_configured_compression_works_with_the_linked_rocksdb() {
    // Zstd (index) and LZ4 (rows' last level, tombstones) must be compiled into the system
    // librocksdb:
    // write compressible data, flush (compression happens when SSTs are built), reopen, read.
    let tmp = tempfile::tempdir().unwrap();
    let row = vec![b'a'; 4096];
    {
        let s = open(tmp.path());
        let mut b = s.batch();
        for i in 0u32..64 {
            b.put(Cf::Rows, &i.to_be_bytes(), &row);
            b.put(Cf::Tombstones, &i.to_be_bytes(), b"");
        }
        b.put_blob(Cf::Index, b"blob", &vec![3u8; 3 << 20]);
        s.write(b, 1).unwrap();
        s.flush(1).unwrap();
        let sst_bytes = s
            .db
            .property_int_value_cf(s.handle(Cf::Index).unwrap(), "rocksdb.total-sst-files-size")
            .unwrap()
            .unwrap();
        assert!(
            sst_bytes < 1 << 20,
            "index SSTs are Zstd-compressed: {sst_bytes} bytes"
        );
        let rows_cf = s.handle(Cf::Rows).unwrap();
        let rows_sst = |s: &SegmentStore| {
            s.db.property_int_value_cf(rows_cf, "rocksdb.total-sst-files-size")
                .unwrap()
                .unwrap()
        };
        // Rows are compressed at the bottommost level only: a flush writes them as they are,
        // a compaction rewriting them into the last level compresses them.
        let flushed = rows_sst(&s);
        assert!(
            flushed >= 64 * 4096,
            "flushed rows SSTs are uncompressed: {flushed} bytes"
        );
        // Forced: a lone L0 file would otherwise be moved down without a rewrite.
        let mut force = rocksdb::CompactOptions::default();
        force.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        s.db.compact_range_cf_opt(rows_cf, None::<&[u8]>, None::<&[u8]>, &force);
        let compacted = rows_sst(&s);
        assert!(
            compacted < 64 * 4096 / 4,
            "compacted rows SSTs are LZ4-compressed: {compacted} bytes"
        );
    }
    let s = open(tmp.path());
    assert_eq!(s.get(Cf::Rows, &7u32.to_be_bytes()).unwrap(), Some(row));
    assert_eq!(
        s.get_blob(Cf::Index, b"blob").unwrap(),
        Some(vec![3u8; 3 << 20])
    );
}

#[test]
fn paused_compactions_let_l0_files_pile_up_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let l0 = |s: &SegmentStore| {
        s.db.property_int_value_cf(s.handle(Cf::Rows).unwrap(), "rocksdb.num-files-at-level0")
            .unwrap()
            .unwrap()
    };
    s.set_auto_compactions(Cf::Rows, false).unwrap();
    // 40 flushes, each one L0 file overlapping the others: 4 trigger a compaction, 20 would
    // slow writes down and 36 stop them — unless compactions are paused (a replay writing
    // many files must never wait for a compaction that cannot come).
    const FILES: u64 = 40;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for lsn in 1..=FILES {
                let mut b = s.batch();
                for i in 0u32..100 {
                    b.put(Cf::Rows, &i.to_be_bytes(), &lsn.to_be_bytes());
                }
                s.write(b, lsn).unwrap();
                s.flush(lsn).unwrap();
            }
            done_tx.send(()).unwrap();
        });
        let waited = done_rx.recv_timeout(std::time::Duration::from_secs(60));
        assert!(waited.is_ok(), "writes stalled with compactions paused");
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(l0(&s), FILES, "no compaction while paused");
    s.set_auto_compactions(Cf::Rows, true).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while l0(&s) >= 4 {
        assert!(std::time::Instant::now() < deadline, "compactions resumed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        s.get(Cf::Rows, &7u32.to_be_bytes()).unwrap(),
        Some(FILES.to_be_bytes().to_vec())
    );
}
