//! Distance kernels: simsimd (and the autovectorised L1) against the scalar reference, and the
//! graph search's own kernel (`Metric::search_kernel`: four-accumulator AVX-512/AVX2), at the
//! dimensions of common embedding models. Cosine's search kernel runs on unit vectors.
//!
//! `cargo bench -p vela-bench --bench distance`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use vela_engine::index::Metric;

/// Deterministic pseudo-random vector (xorshift), values in [-1, 1).
fn vector(dim: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn kernels(c: &mut Criterion) {
    for metric in Metric::ALL {
        let mut group = c.benchmark_group(format!("distance/{metric:?}"));
        for dim in [128usize, 384, 768, 1536] {
            let (a, b) = (vector(dim, 1), vector(dim, 2));
            group.throughput(Throughput::Elements(dim as u64));
            group.bench_with_input(BenchmarkId::new("simd", dim), &dim, |bench, _| {
                bench.iter(|| metric.distance(black_box(&a), black_box(&b)))
            });
            group.bench_with_input(BenchmarkId::new("scalar", dim), &dim, |bench, _| {
                bench.iter(|| metric.distance_scalar(black_box(&a), black_box(&b)))
            });
            let (mut ua, mut ub) = (a.clone(), b.clone());
            if metric == Metric::Cosine {
                vela_engine::index::distance::normalize(&mut ua);
                vela_engine::index::distance::normalize(&mut ub);
            }
            let search = metric.search_kernel();
            group.bench_with_input(BenchmarkId::new("search", dim), &dim, |bench, _| {
                bench.iter(|| search(black_box(&ua), black_box(&ub)))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = kernels
}
criterion_main!(benches);
