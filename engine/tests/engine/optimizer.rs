//! The optimizer keeps recall after deletes: delete 50% of the rows, let it rewrite the
//! tombstone-heavy segments, and recall@10 stays within 0.01 of a fresh build of the survivors.

use rand::{Rng, SeedableRng};
use std::sync::Arc;

use vela_engine::{Engine, EngineOptions, Key, MemLog, MemStore, Op, SearchRequest, Value};

use super::common::*;

const DIM: usize = 16;

fn recall(e: &Engine, queries: &[Vec<f32>]) -> f64 {
    let mut hit = 0usize;
    let mut total = 0usize;
    for q in queries {
        let mut exact = SearchRequest::new("v", q, 10);
        exact.exact = true;
        let truth: Vec<Key> = e
            .search("docs", &exact)
            .unwrap()
            .into_iter()
            .map(|h| h.row.key())
            .collect();
        let mut ann = SearchRequest::new("v", q, 10);
        ann.ef = Some(64);
        let got = e.search("docs", &ann).unwrap();
        hit += got.iter().filter(|h| truth.contains(&h.row.key())).count();
        total += truth.len();
    }
    hit as f64 / total.max(1) as f64
}

fn load(e: &Engine, rows: &[(i64, Vec<f32>)]) {
    for chunk in rows.chunks(500) {
        let ops = chunk
            .iter()
            .map(|(id, v)| {
                Op::Insert(vec![
                    Value::BigInt(*id),
                    Value::Null,
                    Value::Null,
                    Value::Vector(v.clone()),
                ])
            })
            .collect();
        e.write("docs", ops).unwrap();
    }
}

/// An in-memory engine whose writes link inline (no unindexed tails: this test compares
/// graphs).
fn graph_engine(seal_rows: usize) -> (Engine, Arc<MemLog>, Arc<MemStore>) {
    let (log, store) = (MemLog::new(true), MemStore::new());
    let opts = EngineOptions {
        tail_rows: 0,
        ..test_options(seal_rows)
    };
    let e = Engine::open(log.clone(), store.clone(), opts).unwrap();
    (e, log, store)
}

#[test]
fn recall_after_deleting_half_is_within_001_of_a_fresh_build() {
    let seed = seed("recall_after_deleting_half");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = 6000;
    let rows: Vec<(i64, Vec<f32>)> = (0..n)
        .map(|i| (i, (0..DIM).map(|_| rng.random::<f32>()).collect()))
        .collect();
    let queries: Vec<Vec<f32>> = (0..200)
        .map(|_| (0..DIM).map(|_| rng.random::<f32>()).collect())
        .collect();

    let (e, _, _) = graph_engine(1000);
    e.create_table(docs_schema("docs", DIM as u32, 1, true))
        .unwrap();
    load(&e, &rows);
    let victims: Vec<Op> = rows
        .iter()
        .filter(|_| rng.random_bool(0.5))
        .map(|(id, _)| Op::Delete(Key::BigInt(*id)))
        .collect();
    let deleted: std::collections::HashSet<i64> = victims
        .iter()
        .map(|op| match op {
            Op::Delete(Key::BigInt(k)) => *k,
            _ => unreachable!(),
        })
        .collect();
    e.write("docs", victims).unwrap();
    let before = recall(&e, &queries);
    e.run_maintenance().unwrap();
    let m = e.metrics();
    assert!(
        m.tables[0].merges > 0,
        "the optimizer rewrote nothing: {m:?}"
    );
    let after = recall(&e, &queries);

    // The baseline: a fresh index over the survivors in one segment, as the rewrite produces.
    let (fresh, _, _) = graph_engine(10_000);
    fresh
        .create_table(docs_schema("docs", DIM as u32, 1, true))
        .unwrap();
    let survivors: Vec<(i64, Vec<f32>)> = rows
        .into_iter()
        .filter(|(id, _)| !deleted.contains(id))
        .collect();
    load(&fresh, &survivors);
    let baseline = recall(&fresh, &queries);
    println!("recall@10: after deletes {before:.4}, after optimizer {after:.4}, fresh build {baseline:.4}");
    assert!(
        after >= baseline - 0.01,
        "after {after} vs fresh {baseline}"
    );
    assert_eq!(e.scan("docs", None).unwrap().len(), survivors.len());
}

/// Merges are capped: twenty small sealed segments of 10 rows merge into segments of at most
/// `max(seal_rows, merge_below_rows)` = 30 live rows, not into one; every row stays found.
#[test]
fn merges_are_capped_at_a_segment_size() {
    let (log, store) = (MemLog::new(true), MemStore::new());
    let opts = EngineOptions {
        tail_rows: 0,
        merge_below_rows: 30,
        ..test_options(10)
    };
    let e = Engine::open(log, store, opts).unwrap();
    e.create_table(docs_schema("docs", DIM as u32, 1, true))
        .unwrap();
    let rows: Vec<(i64, Vec<f32>)> = (0..200)
        .map(|i| {
            (
                i,
                (0..DIM).map(|d| ((i * 7 + d as i64) % 13) as f32).collect(),
            )
        })
        .collect();
    for chunk in rows.chunks(10) {
        load(&e, chunk);
    }
    let segments = |e: &Engine| e.metrics().tables[0].shards[0].segments;
    assert_eq!(segments(&e), 21, "20 sealed + the appendable one");
    for _ in 0..30 {
        e.run_maintenance().unwrap();
    }
    // 200 rows in merges of at most 3 segments: at least 7 sealed segments remain.
    let after = segments(&e);
    assert!((8..=10).contains(&after), "{after} segments after merging");
    assert!(e.metrics().tables[0].merges >= 6);
    for (id, v) in &rows {
        let hits = e.search("docs", &SearchRequest::new("v", v, 1)).unwrap();
        assert_eq!(hits[0].distance, 0.0, "row {id} is in no segment");
    }
    assert_eq!(e.row_count("docs").unwrap(), 200);
}
