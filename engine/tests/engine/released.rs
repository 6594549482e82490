//! Vectors released by rows written after open: once a row's version is linked into a
//! segment's graph (the appendable segment's as well as a sealed or merged one's), the
//! optimizer's pass gives the row a version that leaves the vectors of L2 / inner-product / L1
//! columns to that graph; versions in a tail keep theirs until linked. Every read path (get, scan, filtered scan, search hits, filtered and exact search,
//! on the indexed and on an unindexed column) still returns the values as written, bit for
//! bit, through seals, merges, updates, deletes and a reopen; the store keeps every vector;
//! filtered searches racing writes, seals and releases (also into the appendable graph they
//! search) neither deadlock nor see a partial row.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use vela_engine::{
    Cf, ColumnDef, ColumnType, Engine, EngineOptions, HnswConfig, Key, MemLog, MemStore, Metric,
    Op, ScalarType, SearchRequest, StoreBackend, TableSchema, Value, VectorIndexDef,
};

use super::common::*;

const DIM: usize = 6;
/// Positions of `tag`, the indexed vector column `a` and the unindexed one `b`.
const TAG: usize = 1;
const A: usize = 2;
const B: usize = 3;

/// `id BIGINT, tag TEXT, a VECTOR(6)` indexed with `metric`, `b VECTOR(6)` without index.
fn schema(metric: Metric) -> TableSchema {
    let column = |name: &str, ty| ColumnDef {
        name: String::from(name),
        ty,
        nullable: name != "id",
    };
    let v = ColumnType::Vector { dim: DIM as u32 };
    TableSchema {
        name: "t".into(),
        columns: vec![
            column("id", ColumnType::Scalar(ScalarType::BigInt)),
            column("tag", ColumnType::Scalar(ScalarType::Text)),
            column("a", v),
            column("b", v),
        ],
        primary_key: 0,
        shards: 2,
        indexes: vec![VectorIndexDef {
            name: "t_a".into(),
            column: "a".into(),
            metric,
            hnsw: HnswConfig {
                m: 4,
                ef_construction: 16,
            },
        }],
    }
}

fn options(tail_rows: usize) -> EngineOptions {
    EngineOptions {
        merge_below_rows: 16,
        tail_rows,
        ..test_options(12)
    }
}

/// Random floats including negative zero and very small and large magnitudes.
fn vector(rng: &mut impl Rng) -> Vec<f32> {
    (0..DIM)
        .map(|_| match rng.random_range(0..6) {
            0 => -0.0,
            1 => rng.random_range(-1e-20f32..1e-20),
            2 => rng.random_range(-1e15f32..1e15),
            _ => rng.random_range(-4.0f32..4.0),
        })
        .collect()
}

fn maybe_vector(rng: &mut impl Rng) -> Value {
    if rng.random_ratio(1, 8) {
        Value::Null
    } else {
        Value::Vector(vector(rng))
    }
}

fn row(rng: &mut impl Rng, id: i64) -> Vec<Value> {
    let a = maybe_vector(rng);
    let b = maybe_vector(rng);
    vec![Value::BigInt(id), Value::Text(format!("t{}", id % 4)), a, b]
}

type Model = BTreeMap<i64, Vec<Value>>;

fn id_of(key: &Key) -> i64 {
    match key {
        Key::BigInt(k) => *k,
        other => panic!("key {other}"),
    }
}

/// Whether a filter's row is the model's row for its key, bit for bit (filters see whole rows).
fn is_model_row(model: &Model, values: &[Value]) -> bool {
    let Some(Value::BigInt(k)) = values.first() else {
        return false;
    };
    model.get(k).is_some_and(|want| bits(want) == bits(values))
}

/// Every read path returns the model's rows bit for bit.
fn check(e: &Engine, model: &Model, metric: Metric, what: &str) {
    let scanned = e.scan("t", None).unwrap();
    let got: Vec<(i64, _)> = scanned
        .iter()
        .map(|r| (id_of(&r.key()), bits(&r.values)))
        .collect();
    let want: Vec<(i64, _)> = model.iter().map(|(k, v)| (*k, bits(v))).collect();
    assert_eq!(got, want, "{what}: scan");
    for (k, want) in model {
        let row = e.get("t", &Key::BigInt(*k)).unwrap().unwrap();
        assert_eq!(bits(&row.values), bits(want), "{what}: get {k}");
    }
    // A filter reading `a`: it must see the row whole.
    let whole = AtomicBool::new(true);
    let positive = |v: &[Value]| {
        if !is_model_row(model, v) {
            whole.store(false, Ordering::Relaxed);
        }
        matches!(v.get(A), Some(Value::Vector(x)) if x[0] >= 0.0)
    };
    let filtered: Vec<i64> = e
        .scan("t", Some(&positive))
        .unwrap()
        .iter()
        .map(|r| id_of(&r.key()))
        .collect();
    let want: Vec<i64> = model
        .iter()
        .filter(|(_, r)| matches!(r.get(A), Some(Value::Vector(x)) if x[0] >= 0.0))
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(filtered, want, "{what}: filtered scan");
    // A reader of `a` only, its filter declared or not: the filter sees whole rows, and `a`
    // comes back bit for bit in every row.
    for reads in [None, Some(&[A][..])] {
        let got: Vec<(i64, _)> = e
            .scan_columns("t", Some(&positive), reads, &[A])
            .unwrap()
            .iter()
            .map(|r| (id_of(&r.key()), bits(&r.values[A..=A])))
            .collect();
        let want: Vec<(i64, _)> = model
            .iter()
            .filter(|(_, r)| matches!(r.get(A), Some(Value::Vector(x)) if x[0] >= 0.0))
            .map(|(k, v)| (*k, bits(&v[A..=A])))
            .collect();
        assert_eq!(got, want, "{what}: scan_columns of a");
    }
    // A reader of no column still gets every key.
    let keys: Vec<i64> = e
        .scan_columns("t", None, None, &[])
        .unwrap()
        .iter()
        .map(|r| id_of(&r.key()))
        .collect();
    assert_eq!(
        keys,
        model.keys().copied().collect::<Vec<_>>(),
        "{what}: scan_columns"
    );
    let tag = |v: &[Value]| matches!(v.get(TAG), Some(Value::Text(t)) if t != "t1");
    let q = [0.5f32, -1.0, 2.0, 0.0, -0.25, 1.5];
    for (column, c, metric) in [("a", A, metric), ("b", B, Metric::L2), ("b", B, metric)] {
        for exact in [true, false] {
            let filters: [(Option<vela_engine::RowPredicate<'_>>, Option<&[usize]>); 3] = [
                (None, None),
                (Some(&positive), None),
                (Some(&tag), Some(&[TAG])),
            ];
            for (filter, reads) in filters {
                let mut req = SearchRequest::new(column, &q, 6);
                req.exact = exact;
                req.metric = Some(metric);
                req.filter = filter;
                req.filter_columns = reads;
                req.ef = Some(64);
                let hits = e.search("t", &req).unwrap();
                for h in &hits {
                    let k = id_of(&h.row.key());
                    let want = &model[&k];
                    assert_eq!(bits(&h.row.values), bits(want), "{what}: hit {k}");
                    assert!(
                        filter.is_none_or(|f| f(want)),
                        "{what}: hit {k} filtered out"
                    );
                }
                if exact {
                    let expected = brute_force(model, c, metric, &q, 6, filter);
                    let got: Vec<(u32, i64)> = hits
                        .iter()
                        .map(|h| (h.distance.to_bits(), id_of(&h.row.key())))
                        .collect();
                    let want: Vec<(u32, i64)> =
                        expected.iter().map(|(d, k)| (d.to_bits(), *k)).collect();
                    assert_eq!(got, want, "{what}: exact search on {column} ({metric:?})");
                }
            }
        }
    }
    assert!(
        whole.load(Ordering::Relaxed),
        "{what}: a filter saw a partial row"
    );
}

/// Keys whose row leaves a vector to a graph: `get` fills it into a fresh row each time,
/// where a row holding every value is returned as held (the same `Arc` twice).
fn released(e: &Engine, keys: impl Iterator<Item = i64>) -> usize {
    keys.filter(|k| {
        let key = Key::BigInt(*k);
        let (x, y) = (e.get("t", &key).unwrap(), e.get("t", &key).unwrap());
        !Arc::ptr_eq(&x.unwrap(), &y.unwrap())
    })
    .count()
}

/// Every model vector is in the store's `rows` column family, as written.
fn store_holds_every_vector(store: &MemStore, model: &Model, what: &str) {
    let mut stored = Vec::new();
    store
        .scan_prefix(Cf::Rows, &[], &mut |_, v| {
            stored.extend_from_slice(v);
            Ok(true)
        })
        .unwrap();
    for (k, r) in model {
        for v in r.iter().filter_map(|v| match v {
            Value::Vector(x) => Some(x),
            _ => None,
        }) {
            let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
            assert!(
                stored.windows(bytes.len()).any(|w| w == bytes),
                "{what}: row {k}'s vector is not in the store"
            );
        }
    }
}

/// Inserts, upserts, updates and deletes past `seal_rows`, with maintenance (linking, seals,
/// merges, the release pass) between rounds; every read path after each; then a reopen.
fn write_seal_merge_and_read(metric: Metric, tail_rows: usize, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (log, store) = (MemLog::new(true), MemStore::new());
    let e = Engine::open(log.clone(), store.clone(), options(tail_rows)).unwrap();
    e.create_table(schema(metric)).unwrap();
    let mut model = Model::new();
    let mut most_released = 0;
    for round in 0..14 {
        let mut ops = Vec::new();
        for _ in 0..rng.random_range(1..24) {
            let id = rng.random_range(0..90);
            match rng.random_range(0..10) {
                0..=1 => {
                    ops.push(Op::Delete(Key::BigInt(id)));
                    model.remove(&id);
                }
                2..=3 => {
                    // UPDATE: only rows present change (the engine's rule).
                    let r = row(&mut rng, id);
                    if let Some(slot) = model.get_mut(&id) {
                        *slot = r.clone();
                    }
                    ops.push(Op::Update(r));
                }
                _ => {
                    let r = row(&mut rng, id);
                    model.insert(id, r.clone());
                    ops.push(Op::Upsert(r));
                }
            }
        }
        e.write("t", ops).unwrap();
        if round % 2 == 1 {
            e.run_maintenance().unwrap();
            let n = released(&e, model.keys().copied());
            most_released = most_released.max(n);
            // Every tail is linked: every row with an indexed vector left it to a graph (cosine
            // graphs too: they hold vectors as given).
            let with_a = model
                .values()
                .filter(|r| matches!(r[A], Value::Vector(_)))
                .count();
            assert_eq!(n, with_a, "round {round}: released ({metric:?})");
        }
        check(&e, &model, metric, &format!("{metric:?} round {round}"));
    }
    assert!(most_released > model.len() / 4, "released {most_released}");
    store_holds_every_vector(&store, &model, &format!("{metric:?}"));
    e.checkpoint().unwrap();
    e.close().unwrap();
    drop(e);
    let e = Engine::open(log, store, options(tail_rows)).unwrap();
    check(&e, &model, metric, &format!("{metric:?} reopened"));
}

#[test]
fn rows_written_after_open_read_whole_after_seals_and_merges_every_metric() {
    let seed = seed("rows_written_after_open_read_whole_after_seals_and_merges_every_metric");
    for metric in [Metric::L2, Metric::InnerProduct, Metric::L1, Metric::Cosine] {
        // Inline links (sealed segments have no tail) and tails linked by maintenance.
        for tail_rows in [0, 8_192] {
            write_seal_merge_and_read(metric, tail_rows, seed);
        }
    }
}

/// A row whose vector `a` tells its id: `[10 id, 10 id + 1, ...]`.
fn row_of(id: i64) -> Vec<Value> {
    let a: Vec<f32> = (0..DIM).map(|d| (id * 10 + d as i64) as f32).collect();
    vec![
        Value::BigInt(id),
        Value::Text("x".into()),
        Value::Vector(a),
        Value::Null,
    ]
}

/// Whether `v` is a whole [`row_of`] row.
fn whole(v: &[Value]) -> bool {
    match (v.first(), v.get(A)) {
        (Some(Value::BigInt(id)), Some(a)) => *a == row_of(*id)[A],
        _ => false,
    }
}

/// Two writers upsert [`row_of`] rows in the batches `batches(w)` gives writer `w`, a thread
/// runs maintenance (linking, merges, the release pass) meanwhile, and two searchers run
/// filtered searches (`k` hits, beam `ef`) whose filters read the released column `a`
/// (undeclared, so released rows are filled in from the graphs) until the writers are done;
/// then maintenance runs once more. Nothing may deadlock, and every filter call and every hit
/// must see a whole row. Returns the live rows.
fn race_writes_and_filtered_searches(
    e: &Engine,
    batches: fn(i64) -> Vec<Vec<i64>>,
    k: usize,
    ef: Option<usize>,
) -> Vec<Arc<vela_engine::Row>> {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let writing = Arc::new(std::sync::atomic::AtomicUsize::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    for w in 0..2i64 {
        let (e, done, writing) = (e.clone(), done_tx.clone(), writing.clone());
        std::thread::spawn(move || {
            for batch in batches(w) {
                let ops = batch.into_iter().map(|k| Op::Upsert(row_of(k))).collect();
                e.write("t", ops).unwrap();
            }
            writing.fetch_sub(1, Ordering::Release);
            done.send(()).unwrap();
        });
    }
    let maintenance = {
        let (e, stop) = (e.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                e.run_maintenance().unwrap();
            }
        })
    };
    for s in 0..2 {
        let (e, done, writing) = (e.clone(), done_tx.clone(), writing.clone());
        std::thread::spawn(move || {
            let partial = AtomicBool::new(false);
            let pred = |v: &[Value]| {
                if !whole(v) {
                    partial.store(true, Ordering::Relaxed);
                }
                matches!(v.get(A), Some(Value::Vector(x)) if (x[0] as i64 / 10) % 3 != s)
            };
            let q = [3.0f32; DIM];
            let mut searches = 0;
            while writing.load(Ordering::Acquire) > 0 || searches < 200 {
                let mut req = SearchRequest::new("a", &q, k);
                req.filter = Some(&pred);
                req.ef = ef;
                for h in e.search("t", &req).unwrap() {
                    assert!(whole(&h.row.values), "a hit is not whole");
                }
                searches += 1;
            }
            assert!(
                !partial.load(Ordering::Relaxed),
                "a filter saw a partial row"
            );
            done.send(()).unwrap();
        });
    }
    for _ in 0..4 {
        done_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a writer or searcher is stuck (deadlock?)");
    }
    stop.store(true, Ordering::Relaxed);
    maintenance.join().unwrap();
    e.run_maintenance().unwrap();
    let rows = e.scan("t", None).unwrap();
    assert!(rows.iter().all(|r| whole(&r.values)));
    rows
}

/// Filtered searches (reading the released column) race writers whose batches seal segments
/// and a thread running maintenance (linking, merges, the release pass): nothing deadlocks,
/// and every filter call and every hit sees a whole row.
#[test]
fn filtered_searches_race_writes_seals_and_releases() {
    // Writes always go to tails: segments seal with their tails, which the maintenance thread
    // links while searches run.
    let opts = EngineOptions {
        seal_rows: 200,
        ..options(usize::MAX)
    };
    let (log, store) = (MemLog::new(true), MemStore::new());
    let e = Engine::open(log, store, opts).unwrap();
    e.create_table(schema(Metric::L2)).unwrap();
    let batches = |w: i64| {
        (0..150)
            .map(|b| (0..16).map(|i| w * 10_000 + (b * 16 + i) % 2_000).collect())
            .collect()
    };
    let rows = race_writes_and_filtered_searches(&e, batches, 5, None);
    assert_eq!(rows.len(), 4_000);
    // Every tail is linked: every row, in a sealed segment or an appendable one, released.
    let n = released(&e, rows.iter().map(|r| id_of(&r.key())));
    assert_eq!(n, 4_000, "rows released");
}

/// Filtered searches reading the released column race writers that link their rows into the
/// appendable segment inline (no tails, no seals) and a thread releasing the linked rows: the
/// filters fetch vectors from the very appendable graph their search holds read-locked while
/// the writers wait to append to it. Nothing deadlocks (it hung before vector reads stopped
/// waiting behind the graph's writers), every filter call and hit sees a whole row, and in the
/// end every row has left its vector to the appendable graph.
#[test]
fn filtered_searches_race_inline_writes_into_the_released_appendable_graph() {
    let opts = EngineOptions {
        seal_rows: 1_000_000,
        ..options(0)
    };
    let (log, store) = (MemLog::new(true), MemStore::new());
    let e = Engine::open(log, store, opts).unwrap();
    e.create_table(schema(Metric::L2)).unwrap();
    e.write("t", (0..400).map(|i| Op::Upsert(row_of(i))).collect())
        .unwrap();
    e.run_maintenance().unwrap();
    // Mostly one row per batch, sometimes eight (the single-row and the batch insert paths).
    let batches = |w: i64| {
        (0..1_000)
            .map(|b| {
                let n = if b % 8 == 0 { 8 } else { 1 };
                (0..n)
                    .map(|i| 1_000 + w * 10_000 + (b * 2 + i) % 2_000)
                    .collect()
            })
            .collect()
    };
    let keys: std::collections::BTreeSet<i64> =
        (0..400).chain((0..2).flat_map(batches).flatten()).collect();
    // A wide beam: a search holds the graph's read lock through many filter calls. Three
    // rounds (each rewrites the rows): one round hung about two times in three before.
    for round in 0..3 {
        let rows = race_writes_and_filtered_searches(&e, batches, 20, Some(200));
        let got: std::collections::BTreeSet<i64> = rows.iter().map(|r| id_of(&r.key())).collect();
        assert_eq!(got, keys, "round {round}");
        let n = released(&e, rows.iter().map(|r| id_of(&r.key())));
        assert_eq!(n, rows.len(), "round {round}: rows released");
    }
}
