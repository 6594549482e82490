//! Segment store micro-benchmarks: a 10,000-row atomic batch written with RocksDB's WAL off
//! (8-byte key; a ~100-byte row in `rows` and a 512-byte vector in `vectors` per row), and
//! reading back a 64 MiB chunked blob.
//!
//! `cargo bench -p vela-bench --bench store`

use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vela_storage::{Cf, SegmentStore, StoreBatch, StoreOptions};

const ROWS: u64 = 10_000;
const ROW_BYTES: usize = 100;
const VECTOR_BYTES: usize = 512;
const BLOB_BYTES: usize = 64 << 20;

/// Deterministic pseudo-random bytes (xorshift): close to incompressible, like float data.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn fill<'s>(store: &'s SegmentStore, base: u64, row: &[u8], vector: &[u8]) -> StoreBatch<'s> {
    let mut b = store.batch();
    for i in base..base + ROWS {
        let key = i.to_be_bytes();
        b.put(Cf::Rows, &key, row);
        b.put(Cf::Vectors, &key, vector);
    }
    b
}

fn write_batch(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = SegmentStore::open(tmp.path(), &StoreOptions::default()).expect("open");
    let row = noise(ROW_BYTES, 1);
    let vector = noise(VECTOR_BYTES, 2);
    let next = Cell::new(0u64);
    let lsn = Cell::new(0u64);
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("write_batch_10k_rows_wal_off", |bench| {
        bench.iter_batched(
            || {
                let base = next.get();
                next.set(base + ROWS);
                fill(&store, base, &row, &vector)
            },
            |batch| {
                lsn.set(lsn.get() + 1);
                store.write(batch, lsn.get()).expect("write");
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("build_and_write_batch_10k_rows_wal_off", |bench| {
        bench.iter(|| {
            let base = next.get();
            next.set(base + ROWS);
            lsn.set(lsn.get() + 1);
            store
                .write(fill(&store, base, &row, &vector), lsn.get())
                .expect("write");
        })
    });
    group.finish();
}

fn get_blob(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = SegmentStore::open(tmp.path(), &StoreOptions::default()).expect("open");
    let blob = noise(BLOB_BYTES, 3);
    let mut b = store.batch();
    b.put_blob(Cf::Index, b"segment-0000001", &blob);
    store.write(b, 1).expect("write");
    store.flush(1).expect("flush");
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Bytes(BLOB_BYTES as u64));
    group.bench_function("get_blob_64MiB", |bench| {
        bench.iter(|| {
            let got = store
                .get_blob(Cf::Index, black_box(b"segment-0000001"))
                .expect("get_blob")
                .expect("present");
            assert_eq!(got.len(), BLOB_BYTES);
            got
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = write_batch, get_blob
}
criterion_main!(benches);
