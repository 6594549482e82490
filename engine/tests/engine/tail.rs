//! Unindexed tails: rows replayed from the WAL (or loaded without a covering blob, or written
//! by small live batches) are searchable at once by exact search and linked into the graphs in
//! the background. Recall with a tail, checkpoints and crashes with a tail present, and
//! searches racing the background linker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use vela_engine::{Engine, EngineOptions, Key, MemLog, MemStore, Metric, Op, SearchRequest, Value};

use super::common::*;

const DIM: usize = 16;

fn vectors(seed: u64, n: usize) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..DIM).map(|_| rng.random::<f32>()).collect())
        .collect()
}

fn insert(id: usize, v: &[f32]) -> Op {
    Op::Insert(vec![
        Value::BigInt(id as i64),
        Value::Double(id as f64),
        Value::Null,
        Value::Vector(v.to_vec()),
    ])
}

/// Distances from the graph kernels and from `Metric::distance` may differ in the last bits.
fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
}

fn unlinked(e: &Engine) -> u64 {
    e.metrics().tables.iter().map(|t| t.unlinked_rows).sum()
}

/// Brute force over `rows` (id = position): the `k` nearest ids accepted by `keep`.
fn truth(rows: &[Vec<f32>], q: &[f32], k: usize, keep: impl Fn(usize) -> bool) -> Vec<i64> {
    let mut d: Vec<(f32, usize)> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, v)| (Metric::L2.distance(q, v), i))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().take(k).map(|(_, i)| i as i64).collect()
}

/// recall@10 of the index search (with the odd-id filter when `filtered`).
fn recall(e: &Engine, rows: &[Vec<f32>], queries: &[Vec<f32>], filtered: bool) -> f64 {
    let odd = |v: &[Value]| matches!(v[0], Value::BigInt(i) if i % 2 == 1);
    let (mut hit, mut total) = (0, 0);
    for q in queries {
        let want = truth(rows, q, 10, |i| !filtered || i % 2 == 1);
        let mut req = SearchRequest::new("v", q, 10);
        req.ef = Some(64);
        if filtered {
            req.filter = Some(&odd);
        }
        let got = e.search("docs", &req).unwrap();
        for h in &got {
            let Key::BigInt(id) = h.row.key() else {
                panic!()
            };
            assert!(!filtered || id % 2 == 1, "the filter let {id} through");
            assert!(close(
                h.distance,
                Metric::L2.distance(q, &rows[id as usize])
            ));
        }
        hit += got
            .iter()
            .filter(|h| matches!(h.row.key(), Key::BigInt(id) if want.contains(&id)))
            .count();
        total += want.len();
    }
    hit as f64 / total as f64
}

fn options(seal_rows: usize, tail_rows: usize) -> EngineOptions {
    EngineOptions {
        tail_rows,
        ..test_options(seal_rows)
    }
}

/// The WAL and store of a crash after writing `rows` (in batches of `batch`, linked inline)
/// after a checkpoint: the store lost every batch, the WAL has them all.
fn logged_only(rows: &[Vec<f32>], seal_rows: usize, batch: usize) -> (Arc<MemLog>, Arc<MemStore>) {
    let (log, store) = (MemLog::new(true), MemStore::new());
    let e = Engine::open(log.clone(), store.clone(), options(seal_rows, 0)).unwrap();
    e.create_table(docs_schema("docs", DIM as u32, 2, true))
        .unwrap();
    e.checkpoint().unwrap();
    for (i, chunk) in rows.chunks(batch).enumerate() {
        let ops = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| insert(i * batch + j, v))
            .collect();
        e.write("docs", ops).unwrap();
    }
    assert_eq!(unlinked(&e), 0);
    (log.crash(), store.crash(0))
}

/// Rows replayed after a crash wait in tails and are found exactly; a checkpoint with tails
/// present and another crash lose nothing; after linking, recall stays high; a clean reopen
/// loads everything from blobs with no tail left.
#[test]
fn replayed_rows_are_searched_exactly_until_linked_and_survive_crashes() {
    let seed = seed("replayed_rows_in_tails");
    let rows = vectors(seed, 3000);
    let queries = vectors(seed ^ 1, 50);
    let (log, store) = logged_only(&rows, 1000, 100);
    let e = Engine::open(log.clone(), store.clone(), options(1000, 0)).unwrap();
    assert_eq!(e.row_count("docs").unwrap(), 3000);
    assert_eq!(unlinked(&e), 3000, "replay links nothing");
    // Tails are searched exactly: recall 1, filtered too.
    assert_eq!(recall(&e, &rows, &queries, false), 1.0);
    assert_eq!(recall(&e, &rows, &queries, true), 1.0);
    // A checkpoint with tails present (blobs cover linked rows only), then a crash: the rows
    // no blob covers come back into tails.
    e.checkpoint().unwrap();
    let (log, store) = (log.crash(), store.crash(0));
    drop(e);
    let e = Engine::open(log.clone(), store.clone(), options(1000, 0)).unwrap();
    assert_eq!(e.row_count("docs").unwrap(), 3000);
    assert_eq!(unlinked(&e), 3000);
    assert_eq!(recall(&e, &rows, &queries, false), 1.0);
    // Linked: the graphs answer, with high recall and the filter honoured.
    assert_eq!(e.link_tails().unwrap(), 3000);
    assert_eq!(unlinked(&e), 0);
    let r = recall(&e, &rows, &queries, false);
    assert!(r >= 0.95, "recall after linking {r}");
    let r = recall(&e, &rows, &queries, true);
    assert!(r >= 0.95, "filtered recall after linking {r}");
    // Sealed segments are persisted once linked; a clean reopen has no tail.
    e.close().unwrap();
    let e = Engine::open(log, store, options(1000, 0)).unwrap();
    assert_eq!(unlinked(&e), 0);
    assert_eq!(e.row_count("docs").unwrap(), 3000);
    assert!(recall(&e, &rows, &queries, false) >= 0.95);
}

/// Searches racing the background linker (and live writers whose small batches go to tails)
/// always find every row: segments this small are searched exactly by the index, so the index
/// search must equal brute force at every moment.
#[test]
fn searches_racing_the_linker_equal_brute_force() {
    let seed = seed("searches_racing_the_linker");
    let rows = vectors(seed, 2400);
    let queries = vectors(seed ^ 7, 40);
    let (log, store) = logged_only(&rows[..1600], 300, 1);
    let bg = EngineOptions {
        background: true,
        background_interval: Duration::from_millis(5),
        ..options(300, 64)
    };
    let e = Engine::open(log, store, bg).unwrap();
    assert_eq!(e.row_count("docs").unwrap(), 1600);
    let stop = Arc::new(AtomicBool::new(false));
    // Readers: while rows 0..1600 are linked away from the tails, no row is ever missed.
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (e, stop, rows, queries) = (e.clone(), stop.clone(), rows.clone(), queries.clone());
            std::thread::spawn(move || {
                let mut checks = 0;
                let only_old = |v: &[Value]| matches!(v[0], Value::BigInt(i) if i < 1600);
                while !stop.load(Ordering::Relaxed) || checks < 20 {
                    let q = &queries[(checks + r) % queries.len()];
                    let mut req = SearchRequest::new("v", q, 10);
                    req.filter = Some(&only_old);
                    let got: Vec<f32> = e
                        .search("docs", &req)
                        .unwrap()
                        .iter()
                        .map(|h| h.distance)
                        .collect();
                    let want: Vec<f32> = truth(&rows, q, 10, |i| i < 1600)
                        .iter()
                        .map(|&i| Metric::L2.distance(q, &rows[i as usize]))
                        .collect();
                    assert!(
                        got.len() == want.len()
                            && got.iter().zip(&want).all(|(a, b)| close(*a, *b)),
                        "a search missed a row while the linker ran: {got:?} vs {want:?}"
                    );
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    // A writer adds rows 1600.. in small batches (tails, within the limit, or inline).
    for (i, chunk) in rows[1600..].chunks(20).enumerate() {
        let ops = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| insert(1600 + i * 20 + j, v))
            .collect();
        e.write("docs", ops).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while unlinked(&e) > 0 {
        assert!(Instant::now() < deadline, "the linker never finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let checks: usize = readers.into_iter().map(|t| t.join().unwrap()).sum();
    println!("{checks} searches raced the linker");
    // Every row, written during replay or live, is in a graph now: its own vector finds it.
    for (i, v) in rows.iter().enumerate() {
        let hits = e.search("docs", &SearchRequest::new("v", v, 1)).unwrap();
        assert!(hits[0].distance < 1e-6, "row {i} is in no graph: {hits:?}");
    }
    assert_eq!(recall(&e, &rows, &queries, false), 1.0);
    e.close().unwrap();
}
