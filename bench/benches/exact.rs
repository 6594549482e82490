//! Exact k-NN through faer's matrix product against a scalar pairwise loop.
//!
//! `cargo bench -p vela-bench --bench exact` runs 100 queries over 100,000 × 128 (L2, k = 10).
//! `VELA_EXACT_QUERIES=1000` runs the 1,000-query case of the design target (slow for the
//! scalar side: each of its iterations is ~10× longer).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use vela_engine::index::{exact_knn, exact_knn_scalar, Metric};

fn data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n * dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn exact(c: &mut Criterion) {
    let (n, dim) = (100_000usize, 128usize);
    let nq: usize = std::env::var("VELA_EXACT_QUERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let base = data(n, dim, 1);
    let queries = data(nq, dim, 2);
    let mut group = c.benchmark_group(format!("exact/{n}x{dim}/{nq}q"));
    group.sample_size(10);
    group.bench_function("faer", |b| {
        b.iter(|| exact_knn(Metric::L2, black_box(&base), dim, black_box(&queries), 10))
    });
    group.bench_function("scalar", |b| {
        b.iter(|| exact_knn_scalar(Metric::L2, black_box(&base), dim, black_box(&queries), 10))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = exact
}
criterion_main!(benches);
