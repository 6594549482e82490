//! Basic behaviour: DDL, the four write operations, get/scan/search, bad input, reopen.

use vela_engine::{EngineError, Key, Op, SearchRequest, Value};

use super::common::*;

fn row(id: i64, v: [f32; 3]) -> Vec<Value> {
    vec![
        Value::BigInt(id),
        Value::Double(id as f64),
        Value::Text(format!("t{}", id % 3)),
        Value::Vector(v.to_vec()),
    ]
}

#[test]
fn write_read_search_and_reject() {
    let (e, _, _) = mem_engine(1000);
    e.create_table(docs_schema("docs", 3, 2, true)).unwrap();
    assert!(matches!(
        e.create_table(docs_schema("docs", 3, 2, true)),
        Err(EngineError::TableExists(_))
    ));
    let ops: Vec<Op> = (0..50)
        .map(|i| Op::Insert(row(i, [i as f32, 0.0, 1.0])))
        .collect();
    let out = e.write("docs", ops).unwrap();
    assert_eq!(out.inserted, 50);
    assert_eq!(e.row_count("docs").unwrap(), 50);

    // A duplicate key rejects the whole batch.
    let err = e
        .write(
            "docs",
            vec![Op::Insert(row(100, [0.0; 3])), Op::Insert(row(3, [0.0; 3]))],
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::DuplicateKey { .. }), "{err}");
    assert!(e.get("docs", &Key::BigInt(100)).unwrap().is_none());

    // Upsert, update, delete.
    let out = e
        .write(
            "docs",
            vec![
                Op::Upsert(row(3, [9.0, 9.0, 9.0])),
                Op::Update(row(4, [8.0, 8.0, 8.0])),
                Op::Update(row(999, [8.0, 8.0, 8.0])),
                Op::Delete(Key::BigInt(5)),
                Op::Delete(Key::BigInt(555)),
            ],
        )
        .unwrap();
    assert_eq!((out.inserted, out.updated, out.deleted), (0, 2, 1));
    assert_eq!(
        e.get("docs", &Key::BigInt(3)).unwrap().unwrap().values[3],
        Value::Vector(vec![9.0, 9.0, 9.0])
    );
    assert!(e.get("docs", &Key::BigInt(5)).unwrap().is_none());

    let q = [10.0, 0.0, 1.0];
    let hits = e.search("docs", &SearchRequest::new("v", &q, 3)).unwrap();
    let keys: Vec<Key> = hits.iter().map(|h| h.row.key()).collect();
    assert_eq!(keys, vec![Key::BigInt(10), Key::BigInt(9), Key::BigInt(11)]);
    let only_t0 = |r: &[Value]| r[2] == Value::Text("t0".into());
    let mut req = SearchRequest::new("v", &q, 3);
    req.filter = Some(&only_t0);
    let hits = e.search("docs", &req).unwrap();
    assert!(hits.iter().all(|h| only_t0(&h.row.values)));
    assert_eq!(hits[0].row.key(), Key::BigInt(9));

    let scanned = e.scan("docs", Some(&only_t0)).unwrap();
    assert!(scanned.windows(2).all(|w| w[0].key() < w[1].key()));
    assert_eq!(
        scanned.len(),
        (0..50).filter(|i| i % 3 == 0 && *i != 5).count()
    );

    // Bad input.
    assert!(matches!(
        e.write("nope", vec![]),
        Err(EngineError::UnknownTable(_))
    ));
    assert!(matches!(
        e.write("docs", vec![Op::Insert(row(200, [f32::NAN, 0.0, 0.0]))]),
        Err(EngineError::InvalidData { .. })
    ));
    assert!(matches!(
        e.write("docs", vec![Op::Insert(vec![Value::BigInt(1)])]),
        Err(EngineError::InvalidData { .. })
    ));
    assert!(matches!(
        e.search("docs", &SearchRequest::new("v", &[1.0], 3)),
        Err(EngineError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        e.search("docs", &SearchRequest::new("nope", &q, 3)),
        Err(EngineError::UnknownColumn { .. })
    ));
    e.drop_table("docs").unwrap();
    assert!(matches!(
        e.row_count("docs"),
        Err(EngineError::UnknownTable(_))
    ));
}

#[test]
fn reopen_after_checkpoint_and_crash_keeps_every_row() {
    let (e, log, store) = mem_engine(16);
    e.create_table(docs_schema("docs", 3, 3, true)).unwrap();
    for b in 0..10 {
        let ops = (0..10)
            .map(|i| Op::Upsert(row(b * 10 + i, [i as f32, b as f32, 0.0])))
            .collect();
        e.write("docs", ops).unwrap();
        if b == 4 {
            e.checkpoint().unwrap();
        }
    }
    e.run_maintenance().unwrap();
    e.write("docs", vec![Op::Delete(Key::BigInt(7))]).unwrap();
    let before = e.scan("docs", None).unwrap();
    drop(e);
    for keep in [0, 1, store.unflushed()] {
        let e2 =
            vela_engine::Engine::open(log.crash(), store.crash(keep), test_options(16)).unwrap();
        let after = e2.scan("docs", None).unwrap();
        assert_eq!(before, after, "keep {keep}");
        let q = [3.0, 3.0, 0.0];
        let hits = e2.search("docs", &SearchRequest::new("v", &q, 1)).unwrap();
        assert_eq!(hits[0].row.key(), Key::BigInt(33));
    }
}

/// A full disk under the store mid-write: the write fails, later writes are refused (the engine
/// stops rather than diverge from its WAL), and a reopen has every acknowledged row.
#[test]
fn full_disk_mid_write_is_an_error_and_loses_nothing_acknowledged() {
    use std::sync::atomic::Ordering;
    let (e, log, store) = mem_engine(1000);
    e.create_table(docs_schema("docs", 3, 2, true)).unwrap();
    e.write(
        "docs",
        (0..10)
            .map(|i| Op::Insert(row(i, [i as f32, 0.0, 0.0])))
            .collect(),
    )
    .unwrap();
    store.fail_writes.store(true, Ordering::Relaxed);
    let err = e
        .write("docs", vec![Op::Insert(row(10, [0.0; 3]))])
        .unwrap_err();
    assert!(matches!(err, EngineError::Storage(_)), "{err}");
    store.fail_writes.store(false, Ordering::Relaxed);
    let err = e
        .write("docs", vec![Op::Insert(row(11, [0.0; 3]))])
        .unwrap_err();
    assert!(matches!(err, EngineError::NotPossible(_)), "{err}");
    // Searches and reads still work on what was applied.
    assert_eq!(e.row_count("docs").unwrap(), 10);
    drop(e);
    let e = vela_engine::Engine::open(log.crash(), store.crash(usize::MAX), test_options(1000))
        .unwrap();
    let rows = e.scan("docs", None).unwrap();
    // The failed batch was logged before the store failed: replay may apply it (it was never
    // acknowledged, so either outcome is allowed); every acknowledged row is there.
    assert!(rows.len() == 10 || rows.len() == 11, "{}", rows.len());
    for i in 0..10 {
        assert!(e.get("docs", &Key::BigInt(i)).unwrap().is_some());
    }
    e.write("docs", vec![Op::Upsert(row(12, [0.0; 3]))])
        .unwrap();
}

/// Keys in the store's `rows` and `index` column families that start with `prefix`.
fn store_keys(store: &vela_engine::MemStore, prefix: &[u8]) -> usize {
    use vela_engine::{Cf, StoreBackend};
    let mut n = 0;
    for cf in [Cf::Rows, Cf::Index] {
        store
            .scan_prefix(cf, prefix, &mut |_, _| {
                n += 1;
                Ok(true)
            })
            .unwrap();
    }
    n
}

/// Dropping a table deletes its rows and segment blobs (as key ranges), also across a crash
/// that replays the drop; the other table keeps all of its keys.
#[test]
fn drop_table_deletes_every_key_of_the_table() {
    let (e, log, store) = mem_engine(8);
    e.create_table(docs_schema("a", 3, 2, true)).unwrap();
    e.create_table(docs_schema("b", 3, 2, true)).unwrap();
    // Table ids are the LSNs of their CREATE entries.
    let (a, b) = (1u64.to_be_bytes(), 2u64.to_be_bytes());
    for t in ["a", "b"] {
        let ops = (0..40)
            .map(|i| Op::Insert(row(i, [i as f32, 1.0, 0.0])))
            .collect();
        e.write(t, ops).unwrap();
    }
    e.run_maintenance().unwrap();
    e.checkpoint().unwrap();
    let b_keys = store_keys(&store, &b);
    assert!(store_keys(&store, &a) > 40 && b_keys > 40);
    e.drop_table("a").unwrap();
    assert_eq!(store_keys(&store, &a), 0);
    assert_eq!(store_keys(&store, &b), b_keys);
    // The drop is replayed after a crash that lost the store's copy of it.
    let store = store.crash(0);
    assert!(store_keys(&store, &a) > 40);
    let e = vela_engine::Engine::open(log.crash(), store.clone(), test_options(8)).unwrap();
    assert_eq!(store_keys(&store, &a), 0);
    assert_eq!(store_keys(&store, &b), b_keys);
    assert_eq!(e.row_count("b").unwrap(), 40);
}

/// A segment blob rewritten in many store writes (1 KiB chunks): a crash after any prefix of
/// those writes reopens with every row and exact search (the old blob or the new one in force,
/// never a torn one), and the next checkpoint deletes the crashed rewrite's chunks.
#[test]
fn crash_between_blob_chunk_writes_leaves_a_whole_segment() {
    use vela_engine::{Engine, EngineOptions, MemLog, MemStore};
    let opts = || EngineOptions {
        blob_chunk_bytes: 1024,
        ..test_options(200)
    };
    let (log, store) = (MemLog::new(true), MemStore::new());
    let e = Engine::open(log.clone(), store.clone(), opts()).unwrap();
    e.create_table(docs_schema("docs", 3, 1, true)).unwrap();
    let v = |i: i64| [i as f32, (i % 7) as f32, (i % 11) as f32];
    let upserts = |from: i64, to: i64| (from..to).map(|i| Op::Upsert(row(i, v(i)))).collect();
    e.write("docs", upserts(0, 120)).unwrap();
    e.link_tails().unwrap();
    // The appendable segment's blob (120 versions, several chunks), flushed.
    e.checkpoint().unwrap();
    let (old_chunks, strays) = chunks_in_and_out_of_runs(&*store);
    assert_eq!((store.unflushed(), strays), (0, 0));
    assert!(old_chunks > 5, "{old_chunks} chunks");
    e.write("docs", upserts(120, 240)).unwrap();
    e.write("docs", vec![Op::Delete(Key::BigInt(7))]).unwrap();
    let rows_written = store.unflushed();
    // The segment, now sealed with 200 versions, is rewritten: one write per chunk.
    e.run_maintenance().unwrap();
    let writes = store.unflushed();
    assert!(writes - rows_written > 10, "{writes} writes");
    let before = e.scan("docs", None).unwrap();
    drop(e);
    let mut strays_seen = false;
    for keep in 0..=writes {
        let store = store.crash(keep);
        let (_, strays) = chunks_in_and_out_of_runs(&*store);
        strays_seen |= strays > 0;
        let e2 = Engine::open(log.crash(), store.clone(), opts()).unwrap();
        assert_eq!(e2.scan("docs", None).unwrap(), before, "keep {keep}");
        for i in [0, 7, 8, 119, 120, 199, 200, 239] {
            let hits = e2
                .search("docs", &SearchRequest::new("v", &v(i), 1))
                .unwrap();
            let want = if i == 7 { 8 } else { i };
            assert_eq!(hits[0].row.key(), Key::BigInt(want), "keep {keep}, row {i}");
        }
        e2.checkpoint().unwrap();
        e2.run_maintenance().unwrap();
        let (_, left) = chunks_in_and_out_of_runs(&*store);
        assert_eq!(left, 0, "keep {keep}: {strays} before");
    }
    assert!(strays_seen, "some crash left a partial rewrite");
}
