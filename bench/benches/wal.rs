//! WAL append micro-benchmarks: 1 KiB entries appended by 1, 4 and 16 concurrent writers,
//! with `Durability::Full` (each append waits for an fdatasync shared by its commit group)
//! and with `Durability::Off` (written to the OS only). Throughput is entries/s over all
//! writers; with `Full`, 16 writers must reach at least 8x one writer's rate (group commit).
//!
//! `cargo bench -p vela-bench --bench wal`

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vela_storage::wal::{Durability, Wal, WalOptions};

const ENTRY_BYTES: usize = 1024;

/// Appends `iters` entries split over `writers` threads; returns the wall time from the
/// moment all threads start.
fn run(wal: &Arc<Wal>, writers: u64, iters: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(writers as usize + 1));
    let threads: Vec<_> = (0..writers)
        .map(|t| {
            let wal = wal.clone();
            let barrier = barrier.clone();
            let n = iters / writers + u64::from(t < iters % writers);
            std::thread::spawn(move || {
                let payload = vec![t as u8; ENTRY_BYTES];
                barrier.wait();
                for _ in 0..n {
                    wal.append(&payload).expect("append");
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join().expect("writer thread");
    }
    let elapsed = start.elapsed();
    // Keep the directory small: everything is "checkpointed" at once.
    wal.truncate_below(wal.last_lsn()).expect("truncate_below");
    elapsed
}

fn appends(c: &mut Criterion) {
    for (name, durability) in [("full", Durability::Full), ("off", Durability::Off)] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let opts = WalOptions::default().with_durability(durability);
        let wal = Arc::new(Wal::open(tmp.path(), opts).expect("open"));
        let mut group = c.benchmark_group(format!("wal_append_1KiB_{name}"));
        group.throughput(Throughput::Elements(1));
        for writers in [1u64, 4, 16] {
            let before = wal.stats();
            group.bench_with_input(BenchmarkId::new("writers", writers), &writers, |b, &w| {
                b.iter_custom(|iters| run(&wal, w, iters))
            });
            let after = wal.stats();
            let groups = after.groups - before.groups;
            let entries = after.entries - before.entries;
            eprintln!(
                "wal_append_1KiB_{name}/writers/{writers}: {entries} entries in {groups} commit \
                 groups (mean group {:.1}), {} fsyncs",
                entries as f64 / groups.max(1) as f64,
                after.fsyncs - before.fsyncs
            );
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = appends
}
criterion_main!(benches);
