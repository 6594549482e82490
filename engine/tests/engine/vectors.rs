//! Vectors left to the graphs: rows loaded from the store keep no copy of a vector that a
//! loaded graph storing vectors as given (L2, inner product, L1) holds; reads fill it in from
//! the graph. Every read path (get, scan, search hits, exact search, filters) returns the
//! values as written, bit for bit, for every metric (cosine columns keep their vectors in the
//! row), across checkpoints, crashes at every store batch, merges and index DDL.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use vela_engine::{
    ColumnDef, ColumnType, Engine, EngineOptions, HnswConfig, Key, MemLog, MemStore, Metric, Op,
    ScalarType, SearchRequest, TableSchema, Value, VectorIndexDef,
};

use super::common::*;

const DIM: u32 = 5;

fn col(name: &str, ty: ColumnType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        ty,
        nullable: name != "id",
    }
}

fn index(column: &str, metric: Metric) -> VectorIndexDef {
    VectorIndexDef {
        name: format!("{column}_{metric:?}").to_lowercase(),
        column: column.into(),
        metric,
        hnsw: HnswConfig {
            m: 4,
            ef_construction: 16,
        },
    }
}

/// `id`, `tag`, one vector column per metric (L2, inner product, cosine) and `raw`, which
/// has no index.
fn schema() -> TableSchema {
    let v = ColumnType::Vector { dim: DIM };
    TableSchema {
        name: "t".into(),
        columns: vec![
            col("id", ColumnType::Scalar(ScalarType::BigInt)),
            col("tag", ColumnType::Scalar(ScalarType::Text)),
            col("l2", v),
            col("ip", v),
            col("cos", v),
            col("raw", v),
        ],
        primary_key: 0,
        shards: 2,
        indexes: vec![
            index("l2", Metric::L2),
            index("ip", Metric::InnerProduct),
            index("cos", Metric::Cosine),
        ],
    }
}

/// Vector columns of [`schema`] (positions).
const VECTORS: [usize; 4] = [2, 3, 4, 5];

fn options() -> EngineOptions {
    EngineOptions {
        // Many small segments and blobs of several chunks: crashes land between chunk writes.
        blob_chunk_bytes: 256,
        merge_below_rows: 12,
        ..test_options(10)
    }
}

/// A vector of awkward floats: tiny, huge, negative zero, subnormal, random.
fn vector(rng: &mut impl Rng) -> Vec<f32> {
    (0..DIM)
        .map(|_| match rng.random_range(0..8) {
            0 => -0.0,
            1 => f32::MIN_POSITIVE / 4.0,
            2 => rng.random_range(-3e18f32..3e18),
            3 => rng.random_range(-1e-30f32..1e-30),
            _ => rng.random_range(-10.0f32..10.0),
        })
        .collect()
}

fn row(rng: &mut impl Rng, id: i64) -> Vec<Value> {
    let mut r = vec![Value::BigInt(id), Value::Text(format!("tag{}", id % 3))];
    for _ in VECTORS {
        r.push(if rng.random_ratio(1, 6) {
            Value::Null
        } else {
            Value::Vector(vector(rng))
        });
    }
    r
}

type Model = BTreeMap<i64, Vec<Value>>;

/// Every read path returns the model's rows bit for bit.
fn check(e: &Engine, model: &Model, what: &str) {
    let scanned = e.scan("t", None).unwrap();
    assert_eq!(scanned.len(), model.len(), "{what}: scan");
    for (r, (k, want)) in scanned.iter().zip(model) {
        assert_eq!(r.key(), Key::BigInt(*k), "{what}: scan order");
        assert_eq!(bits(&r.values), bits(want), "{what}: scan of {k}");
    }
    for (k, want) in model.iter().step_by(3) {
        let got = e.get("t", &Key::BigInt(*k)).unwrap().unwrap();
        assert_eq!(bits(&got.values), bits(want), "{what}: get {k}");
    }
    // A filter sees whole rows: "l2 IS NOT NULL and its first component is >= 0".
    let pred = |v: &[Value]| matches!(v.get(2), Some(Value::Vector(x)) if x[0] >= 0.0);
    let filtered = e.scan("t", Some(&pred)).unwrap();
    let want: Vec<i64> = model
        .iter()
        .filter(|(_, r)| pred(r))
        .map(|(k, _)| *k)
        .collect();
    let got: Vec<i64> = filtered
        .iter()
        .map(|r| match r.key() {
            Key::BigInt(k) => k,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(got, want, "{what}: filtered scan");
    let q = [1.0, -2.0, 0.5, 3.0, 0.0];
    for (column, metric) in [
        ("l2", Metric::L2),
        ("ip", Metric::InnerProduct),
        ("cos", Metric::Cosine),
        ("raw", Metric::L2),
    ] {
        let c = VECTORS[["l2", "ip", "cos", "raw"]
            .iter()
            .position(|n| *n == column)
            .unwrap()];
        // A filter on `tag` alone, declared as such: rows are filtered as held.
        let tag = |v: &[Value]| matches!(v.get(1), Some(Value::Text(t)) if t != "tag1");
        let tag: vela_engine::RowPredicate<'_> = &tag;
        let pred: vela_engine::RowPredicate<'_> = &pred;
        for (exact, filter, reads) in [
            (true, None, None),
            (false, None, None),
            (true, Some(pred), None),
            (false, Some(pred), None),
            (true, Some(tag), Some(&[1usize][..])),
            (false, Some(tag), Some(&[1usize][..])),
        ] {
            let mut req = SearchRequest::new(column, &q, 4);
            req.exact = exact;
            req.metric = Some(metric);
            req.filter_columns = reads;
            req.filter = filter;
            let hits = e.search("t", &req).unwrap();
            for h in &hits {
                let Key::BigInt(k) = h.row.key() else {
                    unreachable!()
                };
                let want = &model[&k];
                assert_eq!(
                    bits(&h.row.values),
                    bits(want),
                    "{what}: hit {k} on {column}"
                );
                assert!(
                    filter.is_none_or(|f| f(want)),
                    "{what}: hit {k} fails the filter"
                );
            }
            if exact {
                let expected = brute_force(model, c, metric, &q, 4, filter);
                let got: Vec<f32> = hits.iter().map(|h| h.distance).collect();
                let want: Vec<f32> = expected.iter().map(|x| x.0).collect();
                assert_eq!(got, want, "{what}: exact search on {column}");
            }
        }
    }
}

/// Checkpoints, closes and reopens `e` (the blobs in force are loaded).
fn checkpoint_and_reopen(e: Engine, log: &Arc<MemLog>, store: &Arc<MemStore>) -> Engine {
    e.checkpoint().unwrap();
    e.close().unwrap();
    drop(e);
    Engine::open(log.clone(), store.clone(), options()).unwrap()
}

/// Writes, checkpoints (blobs of several chunks), merges and deletes; then reopens after a
/// crash keeping each possible number of the store's unflushed batches (so between any two
/// chunk writes of a blob, and between a blob and the rows it covers), and checks every read
/// path; merges after the reopen (vectors read from the loaded graphs), reopens cleanly, then
/// creates and drops indexes (the column of a dropped index gets its vectors back in the rows).
#[test]
fn loaded_rows_read_their_vectors_from_the_graphs_bit_for_bit() {
    let seed = seed("loaded_rows_read_their_vectors_from_the_graphs_bit_for_bit");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (log, store) = (MemLog::new(true), MemStore::new());
    let e = Engine::open(log.clone(), store.clone(), options()).unwrap();
    e.create_table(schema()).unwrap();
    let mut model = Model::new();
    for b in 0..8 {
        let ops: Vec<Op> = (0..9)
            .map(|_| {
                let id = rng.random_range(0..60);
                let r = row(&mut rng, id);
                model.insert(id, r.clone());
                Op::Upsert(r)
            })
            .collect();
        e.write("t", ops).unwrap();
        if b % 3 == 1 {
            e.checkpoint().unwrap();
        }
        if b == 5 {
            e.run_maintenance().unwrap();
        }
    }
    for id in [3, 4, 5] {
        e.write("t", vec![Op::Delete(Key::BigInt(id))]).unwrap();
        model.remove(&id);
    }
    e.checkpoint().unwrap();
    // A last batch after the checkpoint, then a persist of what is sealed: unflushed writes.
    let ops: Vec<Op> = (60..75)
        .map(|id| {
            let r = row(&mut rng, id);
            model.insert(id, r.clone());
            Op::Insert(r)
        })
        .collect();
    e.write("t", ops).unwrap();
    e.link_tails().unwrap();
    e.run_maintenance().unwrap();
    check(&e, &model, "before any reopen");
    let unflushed = store.unflushed();
    assert!(
        unflushed > 3,
        "blob chunks and rows after the checkpoint: {unflushed}"
    );
    drop(e);
    for keep in 0..=unflushed {
        let e = Engine::open(log.crash(), store.crash(keep), options()).unwrap();
        check(
            &e,
            &model,
            &format!("crash keeping {keep} of {unflushed} batches"),
        );
    }

    let e = Engine::open(log.clone(), store.clone(), options()).unwrap();
    check(&e, &model, "reopened");
    // Merges read the vectors loaded rows left to the victims' graphs.
    e.run_maintenance().unwrap();
    check(&e, &model, "merged after the reopen");
    let e = checkpoint_and_reopen(e, &log, &store);
    check(&e, &model, "reopened after the merge");

    // Index DDL over loaded rows: the old segments (holding the vectors) are replaced.
    e.create_index("t", index("raw", Metric::L1)).unwrap();
    check(&e, &model, "index created");
    e.drop_index("t", "l2_l2").unwrap();
    e.drop_index("t", "ip_innerproduct").unwrap();
    check(&e, &model, "indexes dropped");
    let e = checkpoint_and_reopen(e, &log, &store);
    check(&e, &model, "reopened after index DDL");
}

/// A load scans the rows' key range in two halves (split between the first and last keys):
/// with text keys sharing long prefixes, of every length, every row comes back once, whole.
#[test]
fn text_keys_split_between_load_threads_all_come_back() {
    let mut s = schema();
    s.columns[0].ty = ColumnType::Scalar(ScalarType::Text);
    let (log, store) = (MemLog::new(true), MemStore::new());
    let e = Engine::open(log.clone(), store.clone(), options()).unwrap();
    e.create_table(s).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut keys: Vec<String> = vec![String::new(), "\u{0}".into(), "\u{ff}".into()];
    for i in 0..40 {
        keys.push(format!("{}{i}", "k".repeat(i % 13)));
    }
    let mut model: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for k in &keys {
        let mut r = row(&mut rng, 0);
        r[0] = Value::Text(k.clone());
        model.insert(k.clone(), r.clone());
        e.write("t", vec![Op::Insert(r)]).unwrap();
    }
    let e = checkpoint_and_reopen(e, &log, &store);
    let got = e.scan("t", None).unwrap();
    assert_eq!(got.len(), model.len());
    for (r, (k, want)) in got.iter().zip(&model) {
        assert_eq!(r.key(), Key::Text(k.clone()));
        assert_eq!(bits(&r.values), bits(want), "row {k:?}");
    }
}

/// Filtered searches over reopened rows racing writers that link into the appendable segment
/// inline: a filter fetches a vector only from a sealed graph, never from one a writer may be
/// waiting to write-lock while the search holds its read lock, so nothing deadlocks and every
/// hit passes the filter.
#[test]
fn filtered_searches_race_inline_writes_after_a_reopen() {
    // One appendable segment per shard holds every loaded row and takes the new ones.
    let opts = EngineOptions {
        tail_rows: 0,
        seal_rows: 100_000,
        ..options()
    };
    let (log, store) = (MemLog::new(true), MemStore::new());
    let e = Engine::open(log.clone(), store.clone(), opts.clone()).unwrap();
    e.create_table(schema()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let ops: Vec<Op> = (0..2_000).map(|id| Op::Insert(row(&mut rng, id))).collect();
    e.write("t", ops).unwrap();
    e.checkpoint().unwrap();
    e.close().unwrap();
    drop(e);
    let e = Engine::open(log, store, opts).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for w in 0..2i64 {
        let (e, done) = (e.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            for i in 0..400 {
                let r = row(&mut rng, 10_000 + w * 1_000 + i);
                e.write("t", vec![Op::Upsert(r)]).unwrap();
            }
            done.send(()).unwrap();
        });
    }
    {
        let (e, done) = (e.clone(), done_tx);
        std::thread::spawn(move || {
            let pred = |v: &[Value]| matches!(v.get(2), Some(Value::Vector(x)) if x[0] >= 0.0);
            let q = [0.5, 1.0, -1.0, 2.0, 0.0];
            for _ in 0..400 {
                let mut req = SearchRequest::new("l2", &q, 5);
                req.filter = Some(&pred);
                for h in e.search("t", &req).unwrap() {
                    assert!(pred(&h.row.values), "a hit fails the filter");
                }
            }
            done.send(()).unwrap();
        });
    }
    for _ in 0..3 {
        done_rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a writer or searcher is stuck (deadlock?)");
    }
}
