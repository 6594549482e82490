//! Reopen time of a large checkpointed table (issue 4: 1M x 128 rows under 2 s plus replay).
//!
//! `cargo run --release -p vela-bench --bin reopen -- DIR [ROWS]`: if `DIR` holds no database,
//! builds one of `ROWS` (default 1,000,000) rows `id BIGINT, score DOUBLE, v VECTOR(128)` (HNSW
//! m = 16, ef_construction = 64, L2, 2 shards, seal at 100,000 rows) in batches of 10,000 with
//! durability off, checkpoints and closes it. Then opens it `RUNS` times (default 3), printing
//! the time of each `Engine::open` (storage open included) and the resident bytes it added; the
//! first is the fresh-process figure. The last engine is not dropped (the process exits), so
//! `perf record` of a single run (`RUNS` = 1) profiles the open alone. With
//! `VELA_REOPEN_SEARCH` set, the last open is followed by searches (unfiltered and filtered)
//! and `get`s over the reopened rows, median latencies printed.

use std::path::Path;
use std::time::Instant;

use vela_bench::Gen;
use vela_engine::storage_impl::open_storage;
use vela_engine::{
    ColumnDef, ColumnType, Engine, EngineOptions, HnswConfig, Key, Metric, Op, ScalarType,
    SearchRequest, TableSchema, Value, VectorIndexDef,
};
use vela_storage::{Durability, StoreOptions, WalOptions};

const DIM: usize = 128;
const BATCH: usize = 10_000;

fn schema() -> TableSchema {
    let col = |name: &str, ty, nullable| ColumnDef {
        name: name.into(),
        ty,
        nullable,
    };
    TableSchema {
        name: "bench".into(),
        columns: vec![
            col("id", ColumnType::Scalar(ScalarType::BigInt), false),
            col("score", ColumnType::Scalar(ScalarType::Double), true),
            col("v", ColumnType::Vector { dim: DIM as u32 }, true),
        ],
        primary_key: 0,
        shards: 2,
        indexes: vec![VectorIndexDef {
            name: "bench_v".into(),
            column: "v".into(),
            metric: Metric::L2,
            hnsw: HnswConfig {
                m: 16,
                ef_construction: 64,
            },
        }],
    }
}

fn options() -> EngineOptions {
    EngineOptions {
        seal_rows: 100_000,
        checkpoint_interval: None,
        background: false,
        ..EngineOptions::default()
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn open(dir: &Path, durability: Durability) -> (Engine, vela_engine::storage_impl::OpenedStorage) {
    let st = open_storage(
        dir,
        WalOptions::default().with_durability(durability),
        &StoreOptions::default(),
        true,
    )
    .expect("open storage");
    let e = Engine::open(st.log.clone(), st.store.clone(), options()).expect("open engine");
    (e, st)
}

/// Median latency of k = 10 searches over the reopened rows: unfiltered, filtered on a scalar
/// (`score` is the row number: 10% and 1% of the rows pass), and `get`s of whole rows.
fn search_after_open(e: &Engine) {
    let mut gen = Gen(11);
    let queries: Vec<Vec<f32>> = (0..50)
        .map(|_| (0..DIM).map(|_| gen.f32()).collect())
        .collect();
    let tenth = |v: &[Value]| matches!(v.get(1), Some(Value::Double(s)) if *s as i64 % 10 == 0);
    let hundredth =
        |v: &[Value]| matches!(v.get(1), Some(Value::Double(s)) if *s as i64 % 100 == 0);
    let score: &[usize] = &[1];
    type Case<'a> = (
        &'a str,
        Option<vela_engine::RowPredicate<'a>>,
        Option<&'a [usize]>,
    );
    let filters: [Case<'_>; 5] = [
        ("none", None, None),
        ("10%", Some(&tenth), None),
        ("1%", Some(&hundredth), None),
        (
            "10% (reads `score` only, declared)",
            Some(&tenth),
            Some(score),
        ),
        (
            "1% (reads `score` only, declared)",
            Some(&hundredth),
            Some(score),
        ),
    ];
    for (name, filter, reads) in filters {
        let mut micros: Vec<f64> = queries
            .iter()
            .map(|q| {
                let mut req = SearchRequest::new("v", q, 10);
                req.filter = filter;
                req.filter_columns = reads;
                let t = Instant::now();
                let hits = e.search("bench", &req).expect("search");
                assert_eq!(hits.len(), 10);
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        micros.sort_by(f64::total_cmp);
        println!(
            "search after reopen, k = 10, filter {name}: median {:.0} us",
            micros[micros.len() / 2]
        );
    }
    let t = Instant::now();
    for i in 0..10_000i64 {
        e.get("bench", &Key::BigInt(i * 97))
            .expect("get")
            .expect("row");
    }
    println!(
        "get after reopen: {:.2} us per row",
        t.elapsed().as_secs_f64() * 1e6 / 10_000.0
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: reopen DIR [ROWS] [RUNS]");
        std::process::exit(2);
    };
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = Path::new(&dir);
    if !dir.join("store").exists() {
        let (e, _st) = open(dir, Durability::Off);
        e.create_table(schema()).expect("create table");
        let mut gen = Gen(3);
        let t = Instant::now();
        for start in (0..n).step_by(BATCH) {
            let ops = (start..(start + BATCH).min(n))
                .map(|i| {
                    let v: Vec<f32> = (0..DIM).map(|_| gen.f32()).collect();
                    Op::Insert(vec![
                        Value::BigInt(i as i64),
                        Value::Double(i as f64),
                        Value::Vector(v),
                    ])
                })
                .collect();
            e.write("bench", ops).expect("write");
            if (start / BATCH) % 10 == 9 {
                eprintln!(
                    "loaded {} rows, {:.0} s",
                    start + BATCH,
                    t.elapsed().as_secs_f64()
                );
            }
        }
        e.checkpoint().expect("checkpoint");
        e.close().expect("close");
        println!(
            "load: {n} x {DIM} rows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    for run in 1..=runs {
        let before = rss_bytes();
        let t = Instant::now();
        let (e, st) = open(dir, Durability::Full);
        let took = t.elapsed().as_secs_f64();
        let after = rss_bytes();
        let rows = e.row_count("bench").expect("row count");
        println!(
            "reopen: {rows} x {DIM} rows in {took:.3} s (replayed {}), resident +{:.0} bytes/vector",
            e.metrics().replayed_entries,
            after.saturating_sub(before) as f64 / rows.max(1) as f64
        );
        if run == runs {
            if std::env::var_os("VELA_REOPEN_SEARCH").is_some() {
                search_after_open(&e);
            }
            // Exit without the teardown (freeing 1M rows would dominate a profile).
            std::process::exit(0);
        }
        drop(e);
        drop(st);
    }
}
