//! Exact k-nearest-neighbour search of a batch of queries through faer's matrix product.
//!
//! For L2, cosine and inner product the `queries × base` dot products are one GEMM per block of
//! base rows (`‖q‖² + ‖b‖² − 2 q·b` for L2, `1 − q·b / (‖q‖‖b‖)` for cosine, `−q·b` for inner
//! product); the per-query top-k is then taken from each block's columns in parallel. L1 is not
//! a matrix product and falls back to the SIMD kernel, one pair at a time, parallel over
//! queries. Used for ground truth, batch exact queries and benchmarks; single-query exact
//! search inside a segment is [`crate::index::HnswIndex::search_exact`].
//!
//! L2 through the expanded form loses a little precision when `q ≈ b` (cancellation), so
//! distances are clamped at zero and may differ from [`crate::index::distance::l2_squared`] in
//! the last few bits; rankings of well-separated neighbours are unaffected.

use std::collections::BinaryHeap;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::error::{EngineError, Result};
use crate::index::distance::{scalar, Metric};
use crate::index::hnsw::search::Cand;
use crate::index::validate_vector;

/// Upper bound on the floats of one block's product matrix (32 MiB).
const BLOCK_FLOATS: usize = 8 << 20;
/// Queries processed per outer pass.
const QUERY_BLOCK: usize = 4096;

/// For each query (row-major, `dim` floats each), the `k` nearest rows of `base` as
/// `(row offset, distance)`, nearest first. `k` is clamped to the number of base rows.
pub fn exact_knn(
    metric: Metric,
    base: &[f32],
    dim: usize,
    queries: &[f32],
    k: usize,
) -> Result<Vec<Vec<(u32, f32)>>> {
    let (n, nq) = check(base, dim, queries, k)?;
    let k = k.min(n);
    if n == 0 {
        return Ok(vec![Vec::new(); nq]);
    }
    if metric == Metric::L1 {
        return Ok(pairwise(base, dim, queries, k, |a, b| {
            metric.distance(a, b)
        }));
    }
    let base_norms: Vec<f32> = base.chunks_exact(dim).map(norm_term(metric)).collect();
    let mut out = Vec::with_capacity(nq);
    for qchunk in queries.chunks(QUERY_BLOCK * dim) {
        let q_rows = qchunk.len() / dim;
        let q_norms: Vec<f32> = qchunk.chunks_exact(dim).map(norm_term(metric)).collect();
        let mut heaps: Vec<BinaryHeap<Cand>> = (0..q_rows).map(|_| BinaryHeap::new()).collect();
        let block = (BLOCK_FLOATS / q_rows.max(1)).clamp(256, n.max(256)).min(n);
        let mut dst = Mat::<f32>::zeros(block, q_rows);
        let lhs_q = MatRef::from_row_major_slice(qchunk, q_rows, dim);
        for b0 in (0..n).step_by(block) {
            let rows = block.min(n - b0);
            let b_slice = &base[b0 * dim..(b0 + rows) * dim];
            let lhs_b = MatRef::from_row_major_slice(b_slice, rows, dim);
            matmul(
                dst.as_mut().subrows_mut(0, rows),
                Accum::Replace,
                lhs_b,
                lhs_q.transpose(),
                1.0f32,
                Par::rayon(0),
            );
            let dst = &dst;
            heaps.par_iter_mut().enumerate().for_each(|(j, heap)| {
                let col = &dst.col_as_slice(j)[..rows];
                let qn = q_norms[j];
                for (i, &dot) in col.iter().enumerate() {
                    let d = combine(metric, dot, qn, base_norms[b0 + i]);
                    push_bounded(
                        heap,
                        k,
                        Cand {
                            dist: d,
                            id: (b0 + i) as u32,
                        },
                    );
                }
            });
        }
        out.extend(heaps.into_iter().map(finish));
    }
    Ok(out)
}

/// The same answer computed with the scalar reference kernels, one pair at a time (the
/// baseline of `bench/benches/exact.rs` and the oracle of tests).
pub fn exact_knn_scalar(
    metric: Metric,
    base: &[f32],
    dim: usize,
    queries: &[f32],
    k: usize,
) -> Result<Vec<Vec<(u32, f32)>>> {
    let (n, _) = check(base, dim, queries, k)?;
    Ok(pairwise(base, dim, queries, k.min(n), |a, b| {
        metric.distance_scalar(a, b)
    }))
}

fn check(base: &[f32], dim: usize, queries: &[f32], k: usize) -> Result<(usize, usize)> {
    if dim == 0 || !base.len().is_multiple_of(dim) || !queries.len().is_multiple_of(dim) {
        return Err(EngineError::DimensionMismatch {
            expected: dim,
            got: if dim == 0 { 0 } else { queries.len() % dim },
        });
    }
    if k == 0 {
        return Err(EngineError::ZeroK);
    }
    if base.len() / dim > u32::MAX as usize {
        return Err(EngineError::SegmentFull(base.len() / dim));
    }
    for v in base.chunks_exact(dim).chain(queries.chunks_exact(dim)) {
        validate_vector(dim, v)?;
    }
    Ok((base.len() / dim, queries.len() / dim))
}

fn pairwise(
    base: &[f32],
    dim: usize,
    queries: &[f32],
    k: usize,
    dist: impl Fn(&[f32], &[f32]) -> f32 + Sync,
) -> Vec<Vec<(u32, f32)>> {
    queries
        .par_chunks_exact(dim)
        .map(|q| {
            let mut heap = BinaryHeap::new();
            if k > 0 {
                for (i, b) in base.chunks_exact(dim).enumerate() {
                    push_bounded(
                        &mut heap,
                        k,
                        Cand {
                            dist: dist(q, b),
                            id: i as u32,
                        },
                    );
                }
            }
            finish(heap)
        })
        .collect()
}

/// Per-row norm term: ‖v‖² for L2, ‖v‖ for cosine, unused otherwise.
fn norm_term(metric: Metric) -> impl Fn(&[f32]) -> f32 {
    move |v| match metric {
        Metric::L2 => scalar::norm_squared_f64(v) as f32,
        Metric::Cosine => scalar::norm_squared_f64(v).sqrt() as f32,
        Metric::InnerProduct | Metric::L1 => 0.0,
    }
}

#[inline]
fn combine(metric: Metric, dot: f32, qn: f32, bn: f32) -> f32 {
    match metric {
        Metric::L2 => (qn + bn - 2.0 * dot).max(0.0),
        Metric::Cosine => {
            if qn == 0.0 || bn == 0.0 {
                1.0
            } else {
                (1.0 - dot / (qn * bn)).max(0.0)
            }
        }
        Metric::InnerProduct => -dot,
        Metric::L1 => f32::INFINITY,
    }
}

#[inline]
fn push_bounded(heap: &mut BinaryHeap<Cand>, k: usize, c: Cand) {
    if heap.len() < k {
        heap.push(c);
    } else if heap.peek().is_some_and(|w| c < *w) {
        heap.pop();
        heap.push(c);
    }
}

fn finish(heap: BinaryHeap<Cand>) -> Vec<(u32, f32)> {
    heap.into_sorted_vec()
        .into_iter()
        .map(|c| (c.id, c.dist))
        .collect()
}
