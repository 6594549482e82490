//! Rows sorted along one direction, linked in parallel batches: every row must stay findable.
//!
//! Regression test: rayon used to hand each thread a contiguous block of a batch, so on data
//! sorted along a line two threads grew separate runs of one region that never linked across
//! the seam, and a search entering on one side could not reach the other (`vela import` of a
//! file in key order lost nearest-neighbour hits). Shuffled linking plus the reachability
//! repair in `hnsw/repair.rs` fix it; either alone still fails here.

use super::common::seed;
use vela_engine::index::{HnswIndex, HnswParams, Metric};

const DIM: usize = 8;

/// Row `i` at `i * 0.25 + j` in every component `j`: all rows on one line, in key order.
fn collinear(ids: &[u64]) -> Vec<f32> {
    ids.iter()
        .flat_map(|&i| (0..DIM).map(move |j| i as f32 * 0.25 + j as f32))
        .collect()
}

/// Builds an index from `ids` in batches of `batch`; returns the rows a k=1 search misses.
fn misses(seed: u64, ids: &[u64], batch: usize) -> Vec<u64> {
    let params = HnswParams {
        seed,
        ..HnswParams::default()
    };
    let index = HnswIndex::new(DIM, Metric::L2, params).unwrap();
    for chunk in ids.chunks(batch) {
        index.insert_batch(chunk, &collinear(chunk)).unwrap();
    }
    ids.iter()
        .copied()
        .filter(|&id| {
            let hits = index.search(&collinear(&[id]), 1, 0, None).unwrap();
            hits.first().map(|h| h.0) != Some(id)
        })
        .collect()
}

#[test]
fn sorted_rows_linked_in_parallel_batches_are_all_found() {
    let s = seed("sorted_rows_linked_in_parallel_batches_are_all_found", 1);
    // The even keys of 0..12 000: what one of two shards holds after a sorted import.
    let ids: Vec<u64> = (0..12_000u64).step_by(2).collect();
    for round in 0..6 {
        for batch in [1_500, ids.len()] {
            let missed = misses(s + round, &ids, batch);
            assert!(
                missed.is_empty(),
                "seed {}, batches of {batch}: {} rows not found, first {:?}",
                s + round,
                missed.len(),
                &missed[..missed.len().min(8)]
            );
        }
    }
}
