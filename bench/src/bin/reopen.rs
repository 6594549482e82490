//! Reopen time of a large checkpointed table (issue 4: 1M x 128 rows under 2 s plus replay).
//!
//! `cargo run --release -p vela-bench --bin reopen -- DIR [ROWS]`: if `DIR` holds no database,
//! builds one of `ROWS` (default 1,000,000) rows `id BIGINT, score DOUBLE, v VECTOR(128)` (HNSW
//! m = 16, ef_construction = 64, L2, 2 shards, seal at 100,000 rows) in batches of 10,000 with
//! durability off, checkpoints and closes it. Then opens it `RUNS` times (default 3), printing
//! the time of each `Engine::open` (storage open included) and the resident bytes it added; the
//! first is the fresh-process figure. The last engine is not dropped (the process exits), so
//! `perf record` of a single run (`RUNS` = 1) profiles the open alone.

use std::path::Path;
use std::time::Instant;

use vela_bench::Gen;
use vela_engine::storage_impl::open_storage;
use vela_engine::{
    ColumnDef, ColumnType, Engine, EngineOptions, HnswConfig, Metric, Op, ScalarType, TableSchema,
    Value, VectorIndexDef,
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
            // Exit without the teardown (freeing 1M rows would dominate a profile).
            std::process::exit(0);
        }
        drop(e);
        drop(st);
    }
}
