//! Seeds, synthetic datasets and recall measurement shared by the index tests.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vela_engine::index::{exact_knn, HnswIndex, HnswParams, Metric, RowFilter};

/// The test seed: `VELA_TEST_SEED` if set, else `default`. Printed so failures can be replayed.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed = std::env::var("VELA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    println!("{test}: seed {seed} (replay with VELA_TEST_SEED={seed})");
    seed
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Standard normal sample (Box–Muller).
pub fn gauss(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

pub fn random_vectors(rng: &mut StdRng, n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect()
}

/// `n` points around `clusters` centres; returns the row-major vectors and each row's cluster.
pub fn clustered(
    rng: &mut StdRng,
    n: usize,
    dim: usize,
    clusters: usize,
) -> (Vec<f32>, Vec<usize>) {
    let centres: Vec<f32> = (0..clusters * dim).map(|_| gauss(rng) * 3.0).collect();
    let mut data = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        labels.push(c);
        for j in 0..dim {
            data.push(centres[c * dim + j] + gauss(rng));
        }
    }
    (data, labels)
}

/// Queries drawn like the data (fresh points near random centres of the same generator).
pub fn queries_like(data: &[f32], dim: usize, rng: &mut StdRng, nq: usize) -> Vec<f32> {
    let n = data.len() / dim;
    let mut q = Vec::with_capacity(nq * dim);
    for _ in 0..nq {
        let i = rng.random_range(0..n);
        for j in 0..dim {
            q.push(data[i * dim + j] + gauss(rng) * 0.5);
        }
    }
    q
}

pub fn build(data: &[f32], dim: usize, metric: Metric, params: HnswParams) -> HnswIndex {
    let ids: Vec<u64> = (0..(data.len() / dim) as u64).collect();
    HnswIndex::build(dim, metric, params, &ids, data).expect("build")
}

/// Mean recall@k of `index.search` against the index's own exact search.
pub fn recall(
    index: &HnswIndex,
    queries: &[f32],
    dim: usize,
    k: usize,
    ef: usize,
    filter: Option<&dyn RowFilter>,
) -> f64 {
    let mut hits = 0usize;
    let mut total = 0usize;
    for q in queries.chunks_exact(dim) {
        let truth = index.search_exact(q, k, filter).expect("exact");
        let got = index.search(q, k, ef, filter).expect("search");
        let truth_ids: std::collections::HashSet<u64> = truth.iter().map(|r| r.0).collect();
        hits += got.iter().filter(|r| truth_ids.contains(&r.0)).count();
        total += truth.len();
    }
    if total == 0 {
        1.0
    } else {
        hits as f64 / total as f64
    }
}

/// Recall@k of row ids `0..n` through `exact_knn` (faer) as ground truth.
pub fn recall_vs_faer(
    index: &HnswIndex,
    data: &[f32],
    queries: &[f32],
    dim: usize,
    k: usize,
    ef: usize,
) -> f64 {
    let truth = exact_knn(index.metric(), data, dim, queries, k).expect("truth");
    let mut hits = 0;
    for (q, t) in queries.chunks_exact(dim).zip(&truth) {
        let got = index.search(q, k, ef, None).expect("search");
        let t: std::collections::HashSet<u64> = t.iter().map(|r| r.0 as u64).collect();
        hits += got.iter().filter(|r| t.contains(&r.0)).count();
    }
    hits as f64 / (truth.len() * k) as f64
}

/// A proptest config whose RNG is seeded like every other randomised test here: a fixed
/// default seed per test, `VELA_TEST_SEED` to replay or explore another one (printed).
pub fn proptest_config(test: &str, default_seed: u64, cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed(test, default_seed)),
        ..proptest::test_runner::Config::default()
    }
}
