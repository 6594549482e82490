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
//!
//! `reopen replay DIR [ENTRIES] [RUNS]`: WAL replay rate on a reusable crash image (issue 4:
//! replay at >= 500,000 entries/s). If `DIR/image` holds no database, builds one: the same
//! table created and checkpointed, then `ENTRIES` (default 300,000) single-row upserts with a
//! random vector each, durability off, RocksDB memtables large enough that nothing is
//! flushed; the WAL is synced and the directory copied while open — a crash image with every
//! entry in the WAL only (what `bench/benches/engine.rs`'s indexed replay line opens). Then
//! `RUNS` times (default 3): copy the image to `DIR/run` (`cp -a`, untimed), open it, print the
//! replay time (`EngineMetrics::replay_micros`), entries/s, the open time and the process CPU
//! of the open. The same image serves every binary, so old and new code compare on identical
//! input; `perf record` or callgrind a single run (`RUNS` = 1).

use std::path::Path;
use std::process::Command;
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

/// Seal at 100,000 rows for the reopen store. The replay image seals nothing and, while it is
/// built, lets tails grow without bound (writers never link inline: building it costs WAL and
/// store writes only; the WAL holds the same entries either way).
fn options(seal_rows: usize, tail_rows: usize) -> EngineOptions {
    EngineOptions {
        seal_rows,
        checkpoint_interval: None,
        background: false,
        tail_rows,
        ..EngineOptions::default()
    }
}

const REOPEN: (usize, usize) = (100_000, 8_192);

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn open(
    dir: &Path,
    durability: Durability,
    store: &StoreOptions,
    (seal_rows, tail_rows): (usize, usize),
) -> (Engine, vela_engine::storage_impl::OpenedStorage) {
    let st = open_storage(
        dir,
        WalOptions::default().with_durability(durability),
        store,
        true,
    )
    .expect("open storage");
    let opts = options(seal_rows, tail_rows);
    let e = Engine::open(st.log.clone(), st.store.clone(), opts).expect("open engine");
    (e, st)
}

/// User + system CPU seconds so far of this process (`/proc/self/stat`) or of the calling
/// thread (`/proc/thread-self/stat`): fields 14 and 15, in 10 ms ticks. Comparable across
/// runs on a shared machine where wall time is not.
fn cpu_secs(stat: &str) -> f64 {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

fn cp(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cp -a {} {} failed", from.display(), to.display());
}

/// One upsert (or insert) of row `i` with a fresh random vector.
fn bench_row(gen: &mut Gen, i: usize) -> Vec<Value> {
    let v: Vec<f32> = (0..DIM).map(|_| gen.f32()).collect();
    vec![
        Value::BigInt(i as i64),
        Value::Double(i as f64),
        Value::Vector(v),
    ]
}

fn build_replay_image(dir: &Path, image: &Path, n: usize) {
    let live = dir.join("building");
    let _ = std::fs::remove_dir_all(&live);
    let big_memtables = StoreOptions {
        write_buffer_bytes: 2 << 30,
        db_write_buffer_bytes: 4 << 30,
        ..StoreOptions::default()
    };
    let (e, st) = open(
        &live,
        Durability::Off,
        &big_memtables,
        (10_000_000, usize::MAX),
    );
    e.create_table(schema()).expect("create table");
    e.checkpoint().expect("checkpoint");
    let mut gen = Gen(11);
    let t = Instant::now();
    for i in 0..n {
        e.write("bench", vec![Op::Upsert(bench_row(&mut gen, i))])
            .expect("write");
    }
    st.log.0.sync().expect("sync");
    cp(&live, image);
    println!(
        "image: {n} entries written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Dropped without a close (which would checkpoint); the copy above is the crash image.
    drop(e);
    drop(st);
    let _ = std::fs::remove_dir_all(&live);
}

fn replay_main(mut args: impl Iterator<Item = String>) {
    let Some(dir) = args.next() else {
        eprintln!("usage: reopen replay DIR [ENTRIES] [RUNS]");
        std::process::exit(2);
    };
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(300_000);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create DIR");
    let image = dir.join("image");
    if !image.join("store").exists() {
        build_replay_image(dir, &image, n);
    }
    let run_dir = dir.join("run");
    for _ in 0..runs {
        cp(&image, &run_dir);
        let cpu = cpu_secs("/proc/self/stat");
        let thread_cpu = cpu_secs("/proc/thread-self/stat");
        let t = Instant::now();
        let (e, st) = open(
            &run_dir,
            Durability::Full,
            &StoreOptions::default(),
            (10_000_000, 8_192),
        );
        let took = t.elapsed().as_secs_f64();
        let cpu = cpu_secs("/proc/self/stat") - cpu;
        let thread_cpu = cpu_secs("/proc/thread-self/stat") - thread_cpu;
        let m = e.metrics();
        let replay = m.replay_micros as f64 / 1e6;
        println!(
            "replay: {} entries in {replay:.3} s = {:.0} entries/s; open {took:.3} s, CPU: process {cpu:.2} s, applying thread {thread_cpu:.2} s; {} rows",
            m.replayed_entries,
            m.replayed_entries as f64 / replay.max(1e-6),
            e.row_count("bench").expect("row count"),
        );
        drop(e);
        drop(st);
    }
    let _ = std::fs::remove_dir_all(&run_dir);
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
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "replay") {
        args.next();
        return replay_main(args);
    }
    let Some(dir) = args.next() else {
        eprintln!("usage: reopen DIR [ROWS] [RUNS] | reopen replay DIR [ENTRIES] [RUNS]");
        std::process::exit(2);
    };
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = Path::new(&dir);
    if !dir.join("store").exists() {
        let (e, _st) = open(dir, Durability::Off, &StoreOptions::default(), REOPEN);
        e.create_table(schema()).expect("create table");
        let mut gen = Gen(3);
        let t = Instant::now();
        for start in (0..n).step_by(BATCH) {
            let ops = (start..(start + BATCH).min(n))
                .map(|i| Op::Insert(bench_row(&mut gen, i)))
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
        let (e, st) = open(dir, Durability::Full, &StoreOptions::default(), REOPEN);
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
