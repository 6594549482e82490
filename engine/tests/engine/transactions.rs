//! Multi-table writes (`write_many`): one WAL entry, all or nothing, visible together, the same
//! after a reopen and after a crash between the WAL append and the store write.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use vela_engine::{Engine, EngineError, Key, Op, SearchRequest, Value};

use super::common::*;

fn row(id: i64) -> Vec<Value> {
    vec![
        Value::BigInt(id),
        Value::Double(id as f64),
        Value::Text(format!("t{id}")),
        Value::Vector(vec![id as f32, 1.0, 0.0]),
    ]
}

fn inserts(ids: impl IntoIterator<Item = i64>) -> Vec<Op> {
    ids.into_iter().map(|i| Op::Insert(row(i))).collect()
}

fn keys(e: &Engine, table: &str) -> Vec<i64> {
    e.scan(table, None)
        .unwrap()
        .iter()
        .map(|r| match r.key() {
            Key::BigInt(k) => k,
            Key::Text(_) => panic!("text key"),
        })
        .collect()
}

fn two_tables() -> (Engine, Arc<vela_engine::MemLog>, Arc<vela_engine::MemStore>) {
    let (e, log, store) = mem_engine(8);
    e.create_table(docs_schema("a", 3, 2, true)).unwrap();
    e.create_table(docs_schema("b", 3, 3, false)).unwrap();
    (e, log, store)
}

fn applied(e: &Engine) -> u64 {
    e.metrics().applied_lsn
}

#[test]
fn write_many_is_one_entry_all_or_nothing() {
    let (e, _, _) = two_tables();
    e.write("b", inserts([5])).unwrap();

    // A duplicate key in the SECOND table rejects the first table's rows too. The entry is
    // logged (the rejection is decided at apply time, deterministically) and nothing changes.
    let lsn = applied(&e);
    let err = e
        .write_many(vec![
            ("a".into(), inserts(0..10)),
            ("b".into(), inserts([1, 5])),
        ])
        .unwrap_err();
    assert!(
        matches!(err, EngineError::DuplicateKey { ref table, .. } if table == "b"),
        "{err}"
    );
    assert_eq!(applied(&e), lsn + 1);
    assert_eq!(keys(&e, "a"), Vec::<i64>::new());
    assert_eq!(keys(&e, "b"), vec![5]);
    let hits = e
        .search("a", &SearchRequest::new("v", &[1.0, 1.0, 0.0], 3))
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");

    // Validation failures (any table) log nothing.
    let lsn = applied(&e);
    let bad = vec![Op::Insert(vec![Value::BigInt(1)])];
    let err = e
        .write_many(vec![("a".into(), inserts([1])), ("b".into(), bad)])
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidData { .. }), "{err}");
    let err = e
        .write_many(vec![("a".into(), inserts([1])), ("nope".into(), vec![])])
        .unwrap_err();
    assert!(matches!(err, EngineError::UnknownTable(_)), "{err}");
    assert_eq!(applied(&e), lsn);
    assert_eq!(e.write_many(vec![]).unwrap(), vec![]);
    assert_eq!(applied(&e), lsn);

    // Success: one entry, one outcome per table (a table named twice is one batch, in order).
    let out = e
        .write_many(vec![
            ("a".into(), inserts(0..10)),
            ("b".into(), inserts([1, 2])),
            ("a".into(), vec![Op::Delete(Key::BigInt(3))]),
            (
                "b".into(),
                vec![Op::Delete(Key::BigInt(5)), Op::Upsert(row(2))],
            ),
        ])
        .unwrap();
    assert_eq!(applied(&e), lsn + 1);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].inserted, out[0].updated, out[0].deleted),
        (10, 0, 1)
    );
    assert_eq!((out[1].inserted, out[1].updated, out[1].deleted), (2, 1, 1));
    assert!(out.iter().all(|o| o.lsn == lsn + 1));
    assert_eq!(keys(&e, "a"), vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
    assert_eq!(keys(&e, "b"), vec![1, 2]);
    let hits = e
        .search("a", &SearchRequest::new("v", &[4.0, 1.0, 0.0], 1))
        .unwrap();
    assert_eq!(hits[0].row.key(), Key::BigInt(4));

    // An empty batch for one table: its outcome is empty, the other table is written.
    let out = e
        .write_many(vec![("a".into(), vec![]), ("b".into(), inserts([3]))])
        .unwrap();
    assert_eq!(out[0], Default::default());
    assert_eq!(out[1].inserted, 1);

    // Counters: the rejected transaction counts against both tables.
    let m = e.metrics();
    let ta = m.tables.iter().find(|t| t.table == "a").unwrap();
    let tb = m.tables.iter().find(|t| t.table == "b").unwrap();
    assert_eq!(ta.batches_rejected, 1);
    assert_eq!(tb.batches_rejected, 1);
}

/// Everything a reopen and a crash at any store prefix must give back.
fn run_history(e: &Engine) {
    e.write_many(vec![
        ("a".into(), inserts(0..20)),
        ("b".into(), inserts(100..110)),
    ])
    .unwrap();
    // Rejected: duplicate in the second table. Replay must reject it again, or the next
    // entry's outcome (and rows) would differ.
    e.write_many(vec![
        ("a".into(), inserts(20..30)),
        ("b".into(), inserts([200, 105])),
    ])
    .unwrap_err();
    e.write_many(vec![
        ("b".into(), inserts(200..205)),
        (
            "a".into(),
            vec![
                Op::Insert(row(20)),
                Op::Delete(Key::BigInt(0)),
                Op::Upsert(row(1)),
            ],
        ),
    ])
    .unwrap();
    e.write("a", vec![Op::Update(row(2))]).unwrap();
}

type Snapshot = (Vec<Vec<Value>>, Vec<Vec<Value>>);

fn snapshot(e: &Engine) -> Snapshot {
    let rows = |t: &str| -> Vec<Vec<Value>> {
        e.scan(t, None)
            .unwrap()
            .iter()
            .map(|r| r.values.to_vec())
            .collect()
    };
    (rows("a"), rows("b"))
}

#[test]
fn write_many_survives_reopen_and_replays_identically_after_a_crash() {
    let (e, log, store) = two_tables();
    e.write("b", inserts([999])).unwrap();
    e.checkpoint().unwrap();
    run_history(&e);
    let before = snapshot(&e);
    assert_eq!(before.0.len(), 20);
    assert_eq!(before.1.len(), 16);
    let unflushed = store.unflushed();
    assert!(unflushed >= 4, "{unflushed}");
    // No close: it would checkpoint (flush the store, truncate the WAL).
    drop(e);

    // Crashes that keep every prefix of the store's unflushed batches: every entry past the
    // prefix was appended to the WAL but never written to the store, and is replayed.
    for keep in 0..=unflushed {
        let e = Engine::open(log.crash(), store.crash(keep), test_options(8)).unwrap();
        assert_eq!(snapshot(&e), before, "keep {keep}");
        let hits = e
            .search("a", &SearchRequest::new("v", &[20.0, 1.0, 0.0], 1))
            .unwrap();
        assert_eq!(hits[0].row.key(), Key::BigInt(20), "keep {keep}");
        // The replayed engine decides the same as the original did.
        let err = e
            .write_many(vec![
                ("a".into(), inserts([50])),
                ("b".into(), inserts([201])),
            ])
            .unwrap_err();
        assert!(
            matches!(err, EngineError::DuplicateKey { .. }),
            "keep {keep}: {err}"
        );
    }

    // Reopen without a crash, then close (checkpoint) and reopen again.
    let e = Engine::open(log.clone(), store.clone(), test_options(8)).unwrap();
    assert_eq!(snapshot(&e), before);
    e.close().unwrap();
    drop(e);
    let e = Engine::open(log.clone(), store.clone(), test_options(8)).unwrap();
    assert_eq!(snapshot(&e), before);
}

/// The store fails at the write after the WAL append: the transaction is not acknowledged, the
/// engine refuses writes, and after the crash both tables have it (replayed) or neither has.
#[test]
fn store_failure_after_wal_append_replays_the_whole_transaction() {
    let (e, log, store) = two_tables();
    e.write_many(vec![("a".into(), inserts([1])), ("b".into(), inserts([1]))])
        .unwrap();
    store.fail_writes.store(true, Ordering::Relaxed);
    let err = e
        .write_many(vec![("a".into(), inserts([2])), ("b".into(), inserts([2]))])
        .unwrap_err();
    assert!(matches!(err, EngineError::Storage(_)), "{err}");
    // Nothing of it is visible in memory either.
    assert_eq!(keys(&e, "a"), vec![1]);
    assert_eq!(keys(&e, "b"), vec![1]);
    store.fail_writes.store(false, Ordering::Relaxed);
    drop(e);
    for keep in 0..=store.unflushed() {
        let e = Engine::open(log.crash(), store.crash(keep), test_options(8)).unwrap();
        let (a, b) = (keys(&e, "a"), keys(&e, "b"));
        assert_eq!(a, b, "keep {keep}");
        assert_eq!(a, vec![1, 2], "keep {keep}: the logged entry is replayed");
    }
}

/// Readers never see part of a transaction: a transaction writes key `i` to both tables; a
/// reader that scans `a` and then `b` must find every key of `a` in `b` (publishing `a` before
/// `b` would break this).
#[test]
fn readers_never_see_half_a_transaction() {
    let (e, _, _) = two_tables();
    let writer = {
        let e = e.clone();
        std::thread::spawn(move || {
            for i in 0..300 {
                // Alternate the record's table order; locks are still taken in id order.
                let batches = if i % 2 == 0 {
                    vec![("a".into(), inserts([i])), ("b".into(), inserts([i]))]
                } else {
                    vec![("b".into(), inserts([i])), ("a".into(), inserts([i]))]
                };
                e.write_many(batches).unwrap();
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() || checks == 0 {
        let a = keys(&e, "a");
        let b = keys(&e, "b");
        assert!(a.len() <= b.len(), "a {} b {}", a.len(), b.len());
        assert!(a.iter().all(|k| b.binary_search(k).is_ok()));
        let hits = e
            .search("a", &SearchRequest::new("v", &[0.0, 1.0, 0.0], 5))
            .unwrap();
        // Counted after the search: `a`'s rows then are a subset of `b`'s now.
        let n = e.row_count("b").unwrap();
        assert!(hits.len() <= n);
        checks += 1;
    }
    writer.join().unwrap();
    assert_eq!(keys(&e, "a").len(), 300);
    assert_eq!(keys(&e, "b").len(), 300);
}
