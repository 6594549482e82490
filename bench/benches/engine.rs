//! Engine benchmarks (issue 4): inserts/s by batch size and durability, search through the
//! engine vs the raw index of one segment holding the same rows, and (printed once, before the
//! criterion runs) reopen time, WAL replay rate and resident bytes per vector.
//!
//! `cargo bench -p vela-bench --bench engine`. `VELA_BENCH_REOPEN_ROWS` (default 100,000) sets
//! the rows of the reopen measurement, `VELA_BENCH_REPLAY_ENTRIES` (default 200,000) the WAL
//! entries replayed.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vela_bench::Gen;
use vela_engine::index::{HnswIndex, HnswParams, SearchOptions};
use vela_engine::storage_impl::{open_storage, OpenedStorage};
use vela_engine::{
    ColumnDef, ColumnType, Engine, EngineOptions, HnswConfig, Metric, Op, ScalarType,
    SearchRequest, TableSchema, Value, VectorIndexDef,
};
use vela_storage::{Durability, StoreOptions, WalOptions};

const DIM: usize = 128;

fn schema(indexed: bool, shards: u32) -> TableSchema {
    TableSchema {
        name: "bench".into(),
        columns: vec![
            ColumnDef {
                name: "id".into(),
                ty: ColumnType::Scalar(ScalarType::BigInt),
                nullable: false,
            },
            ColumnDef {
                name: "score".into(),
                ty: ColumnType::Scalar(ScalarType::Double),
                nullable: true,
            },
            ColumnDef {
                name: "v".into(),
                ty: ColumnType::Vector { dim: DIM as u32 },
                nullable: true,
            },
        ],
        primary_key: 0,
        shards,
        indexes: if indexed {
            vec![VectorIndexDef {
                name: "bench_v".into(),
                column: "v".into(),
                metric: Metric::L2,
                hnsw: HnswConfig {
                    m: 16,
                    ef_construction: 64,
                },
            }]
        } else {
            vec![]
        },
    }
}

fn options() -> EngineOptions {
    EngineOptions {
        seal_rows: 10_000_000,
        checkpoint_interval: None,
        background: false,
        ..EngineOptions::default()
    }
}

fn open(dir: &Path, durability: Durability) -> (Engine, OpenedStorage) {
    let st = open_storage(
        dir,
        WalOptions::default().with_durability(durability),
        &StoreOptions::default(),
        true,
    )
    .unwrap();
    let e = Engine::open(st.log.clone(), st.store.clone(), options()).unwrap();
    (e, st)
}

fn row(id: i64, v: Option<Vec<f32>>) -> Vec<Value> {
    vec![
        Value::BigInt(id),
        Value::Double(id as f64),
        v.map_or(Value::Null, Value::Vector),
    ]
}

fn inserts(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/insert");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    for (name, durability) in [("full", Durability::Full), ("normal", Durability::Normal)] {
        for batch in [1usize, 100, 10_000] {
            let dir = tempfile::tempdir().unwrap();
            let (e, _st) = open(dir.path(), durability);
            e.create_table(schema(true, 2)).unwrap();
            let mut gen = Gen(42);
            let mut next = 0i64;
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(BenchmarkId::new(name, batch), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let ops: Vec<Op> = (0..batch)
                            .map(|_| {
                                next += 1;
                                Op::Insert(row(next, Some(gen.vector(DIM))))
                            })
                            .collect();
                        let t = Instant::now();
                        e.write("bench", ops).unwrap();
                        total += t.elapsed();
                    }
                    total
                })
            });
        }
    }
    g.finish();
}

fn search(c: &mut Criterion) {
    let n = 20_000;
    let mut gen = Gen(7);
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| gen.vector(DIM)).collect();
    let queries: Vec<Vec<f32>> = (0..200).map(|_| gen.vector(DIM)).collect();
    let (e, _, _) = {
        let log = vela_engine::MemLog::new(false);
        let store = vela_engine::MemStore::new();
        (
            Engine::open(log.clone(), store.clone(), options()).unwrap(),
            log,
            store,
        )
    };
    e.create_table(schema(true, 1)).unwrap();
    for (i, chunk) in vectors.chunks(10_000).enumerate() {
        let ops = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| Op::Insert(row((i * 10_000 + j) as i64, Some(v.clone()))))
            .collect();
        e.write("bench", ops).unwrap();
    }
    let params = HnswParams {
        m: 16,
        ef_construction: 64,
        ..HnswParams::default()
    };
    let raw = HnswIndex::new(DIM, Metric::L2, params).unwrap();
    let ids: Vec<u64> = (0..n as u64).collect();
    let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
    raw.insert_batch(&ids, &flat).unwrap();

    let mut g = c.benchmark_group("engine/search_20k_x128_k10_ef64");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let mut qi = 0;
    g.bench_function("raw_index_one_segment", |b| {
        b.iter(|| {
            qi = (qi + 1) % queries.len();
            let opts = SearchOptions {
                k: 10,
                ef: 64,
                ..Default::default()
            };
            black_box(raw.search_with(&queries[qi], &opts).unwrap())
        })
    });
    g.bench_function("engine_one_shard", |b| {
        b.iter(|| {
            qi = (qi + 1) % queries.len();
            let mut req = SearchRequest::new("v", &queries[qi], 10);
            req.ef = Some(64);
            black_box(e.search("bench", &req).unwrap())
        })
    });
    g.finish();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat` (clock ticks
/// of 10 ms): less sensitive to other processes than wall time on a shared machine.
fn thread_cpu_secs() -> f64 {
    cpu_secs("/proc/thread-self/stat")
}

/// CPU time (user + system) of the whole process (every thread, RocksDB's included).
fn process_cpu_secs() -> f64 {
    cpu_secs("/proc/self/stat")
}

fn cpu_secs(stat: &str) -> f64 {
    std::fs::read_to_string(stat)
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14th and 15th.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Reopen time and resident bytes per vector of a checkpointed table of N x 128 rows.
fn reopen_figures() {
    let n: usize = std::env::var("VELA_BENCH_REOPEN_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    {
        let (e, _st) = open(dir.path(), Durability::Off);
        e.create_table(schema(true, 2)).unwrap();
        let mut gen = Gen(3);
        let t = Instant::now();
        for start in (0..n).step_by(10_000) {
            let ops = (start..(start + 10_000).min(n))
                .map(|i| Op::Insert(row(i as i64, Some(gen.vector(DIM)))))
                .collect();
            e.write("bench", ops).unwrap();
        }
        println!(
            "engine/load: {n} x {DIM} rows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        e.close().unwrap();
    }
    let mut times = Vec::new();
    for _ in 0..3 {
        let before = rss_bytes();
        let t = Instant::now();
        let (e, st) = open(dir.path(), Durability::Full);
        let took = t.elapsed();
        times.push(took.as_secs_f64());
        let after = rss_bytes();
        assert_eq!(e.row_count("bench").unwrap(), n);
        println!(
            "engine/reopen: {n} x {DIM} rows in {:.3} s (replayed {}), resident {:.0} bytes/vector",
            took.as_secs_f64(),
            e.metrics().replayed_entries,
            after.saturating_sub(before) as f64 / n as f64
        );
        drop(e);
        drop(st);
    }
    times.sort_by(f64::total_cmp);
    println!("engine/reopen median: {:.3} s", times[1]);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--bench")
        .env("VELA_BENCH_CHILD_OPEN", dir.path())
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// WAL replay rate: N single-row entries written after a checkpoint, then the directory is
/// copied while open (a crash image: RocksDB memtables lost) and the copy is opened.
fn replay_figures() {
    let n: usize = std::env::var("VELA_BENCH_REPLAY_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    for indexed_vectors in [false, true] {
        let n = if indexed_vectors { n / 10 } else { n };
        let dir = tempfile::tempdir().unwrap();
        // Memtables large enough that RocksDB flushes nothing while the entries are written:
        // the crash image then has every entry in the WAL only, and all of them are replayed.
        let st = open_storage(
            dir.path(),
            WalOptions::default().with_durability(Durability::Off),
            &StoreOptions {
                write_buffer_bytes: 1 << 30,
                db_write_buffer_bytes: 2 << 30,
                ..StoreOptions::default()
            },
            true,
        )
        .unwrap();
        let e = Engine::open(st.log.clone(), st.store.clone(), options()).unwrap();
        e.create_table(schema(indexed_vectors, 2)).unwrap();
        e.checkpoint().unwrap();
        let mut gen = Gen(11);
        for i in 0..n {
            let v = indexed_vectors.then(|| gen.vector(DIM));
            e.write("bench", vec![Op::Upsert(row(i as i64, v))])
                .unwrap();
        }
        st.log.0.sync().unwrap();
        let image = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), image.path());
        drop(e);
        drop(st);
        let t = Instant::now();
        let st = open_storage(
            image.path(),
            WalOptions::default(),
            &StoreOptions::default(),
            true,
        )
        .unwrap();
        let opened = t.elapsed();
        let (cpu, all_cpu) = (thread_cpu_secs(), process_cpu_secs());
        let e = Engine::open(st.log.clone(), st.store.clone(), options()).unwrap();
        let total = t.elapsed();
        let (cpu, all_cpu) = (thread_cpu_secs() - cpu, process_cpu_secs() - all_cpu);
        let m = e.metrics();
        let (replayed, replay) = (m.replayed_entries, m.replay_micros as f64 / 1e6);
        println!(
            "engine/replay ({}): {replayed} entries; storage open {:.3} s, engine open {:.3} s = load {:.3} s + replay {:.3} s: {:.0} entries/s replayed; CPU: opening thread {:.2} s, process {:.2} s",
            if indexed_vectors { "1 row + 128-d indexed vector each" } else { "1 scalar row each" },
            opened.as_secs_f64(),
            (total - opened).as_secs_f64(),
            (total - opened).as_secs_f64() - replay,
            replay,
            replayed as f64 / replay.max(1e-6),
            cpu,
            all_cpu,
        );
        assert_eq!(e.row_count("bench").unwrap(), n);
        if indexed_vectors {
            // Replayed rows are searchable at once (exact search over the unindexed tails);
            // linking them into the graphs is what the background linker does after open.
            let q = gen.vector(DIM);
            let t = Instant::now();
            e.search("bench", &SearchRequest::new("v", &q, 10)).unwrap();
            let search_tail = t.elapsed();
            let t = Instant::now();
            let linked = e.link_tails().unwrap();
            let link = t.elapsed();
            let t = Instant::now();
            e.search("bench", &SearchRequest::new("v", &q, 10)).unwrap();
            println!(
                "engine/replay: one search over the {linked} unlinked rows {:.1} ms; linking them {:.2} s ({:.0} rows/s); the same search linked {:.2} ms",
                search_tail.as_secs_f64() * 1e3,
                link.as_secs_f64(),
                linked as f64 / link.as_secs_f64(),
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}

/// Child mode: open the database in `VELA_BENCH_CHILD_OPEN`, print the resident bytes the
/// open added (a fresh process, so the allocator holds nothing from loading), exit.
fn child_open(dir: &str) -> ! {
    let before = rss_bytes();
    let t = Instant::now();
    let (e, _st) = open(Path::new(dir), Durability::Full);
    let took = t.elapsed();
    let n = e.row_count("bench").unwrap();
    let after = rss_bytes();
    println!(
        "engine/reopen (fresh process): {n} x {DIM} rows in {:.3} s, resident {:.0} bytes/vector ({:.1} MiB)",
        took.as_secs_f64(),
        after.saturating_sub(before) as f64 / n.max(1) as f64,
        after.saturating_sub(before) as f64 / (1 << 20) as f64
    );
    std::process::exit(0)
}

fn fixed(_c: &mut Criterion) {
    if let Ok(dir) = std::env::var("VELA_BENCH_CHILD_OPEN") {
        child_open(&dir);
    }
    if std::env::var("VELA_BENCH_SKIP_FIXED").is_err() {
        replay_figures();
        reopen_figures();
    }
}

criterion_group!(benches, fixed, search, inserts);
criterion_main!(benches);

#[allow(dead_code)]
fn _assert_send_sync(e: Arc<Engine>) -> impl Send + Sync {
    e
}
