//! Filtered search at 1%, 10% and 50% selectivity, with filters that follow the clusters and
//! filters that ignore them.

use super::common::{build, clustered, queries_like, recall, rng, seed};
use vela_engine::index::{HnswParams, Metric, SearchOptions, SearchStrategy};

const N: usize = 20_000;
const DIM: usize = 32;
const CLUSTERS: usize = 100;

fn hash(row: u64) -> u64 {
    row.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40
}

#[test]
fn filtered_recall_at_every_selectivity() {
    let s = seed("filtered_recall_at_every_selectivity", 99);
    let mut r = rng(s);
    let (data, labels) = clustered(&mut r, N, DIM, CLUSTERS);
    let queries = queries_like(&data, DIM, &mut r, 100);
    let index = build(
        &data,
        DIM,
        Metric::L2,
        HnswParams {
            seed: s,
            ..HnswParams::default()
        },
    );
    for pct in [1usize, 10, 50] {
        // Correlated: whole clusters pass (cluster label < pct).
        let correlated = |row: u64| labels[row as usize] < pct;
        // Uncorrelated: a hash of the row id.
        let uncorrelated = |row: u64| hash(row) % 100 < pct as u64;
        for (name, f) in [
            ("correlated", &correlated as &(dyn Fn(u64) -> bool + Sync)),
            ("uncorrelated", &uncorrelated),
        ] {
            let rec = recall(&index, &queries, DIM, 10, 64, Some(&f));
            println!("{pct}% {name}: auto recall@10 {rec:.4}");
            assert!(rec >= 0.95, "{pct}% {name}: recall {rec}");
            // The filter-aware traversal on its own (forced), where the planner would not use it.
            if pct >= 10 {
                let rec = forced_graph_recall(&index, &queries, &f);
                println!("{pct}% {name}: graph recall@10 {rec:.4}");
                assert!(rec >= 0.95, "{pct}% {name}: graph recall {rec}");
            }
        }
    }
}

fn forced_graph_recall(
    index: &vela_engine::index::HnswIndex,
    queries: &[f32],
    f: &(dyn Fn(u64) -> bool + Sync),
) -> f64 {
    let mut hits = 0;
    let mut total = 0;
    for q in queries.chunks_exact(DIM) {
        let truth = index.search_exact(q, 10, Some(&f)).expect("exact");
        let opts = SearchOptions {
            k: 10,
            ef: 64,
            filter: Some(&f),
            strategy: SearchStrategy::Graph,
            ..SearchOptions::default()
        };
        let got = index.search_with(q, &opts).expect("search");
        let t: std::collections::HashSet<u64> = truth.iter().map(|r| r.0).collect();
        hits += got.iter().filter(|r| t.contains(&r.0)).count();
        total += truth.len();
        for (row, _) in &got {
            assert!(f(*row), "row {row} does not pass the filter");
        }
    }
    hits as f64 / total.max(1) as f64
}

#[test]
fn filter_matching_nothing_returns_nothing() {
    let s = seed("filter_matching_nothing_returns_nothing", 1);
    let mut r = rng(s);
    let (data, _) = clustered(&mut r, 2_000, 8, 5);
    let index = build(&data, 8, Metric::Cosine, HnswParams::default());
    let none = |_: u64| false;
    for strategy in [
        SearchStrategy::Auto,
        SearchStrategy::Exact,
        SearchStrategy::Graph,
    ] {
        let opts = SearchOptions {
            k: 5,
            filter: Some(&none),
            strategy,
            ..SearchOptions::default()
        };
        assert!(index
            .search_with(&data[..8], &opts)
            .expect("search")
            .is_empty());
    }
    // A caller-provided selectivity estimate is honoured (and a silly one is harmless).
    let some = |row: u64| row.is_multiple_of(3);
    for sel in [0.0, 0.33, 1.0, f64::NAN, -5.0] {
        let opts = SearchOptions {
            k: 5,
            filter: Some(&some),
            selectivity: Some(sel),
            ..SearchOptions::default()
        };
        let got = index.search_with(&data[..8], &opts).expect("search");
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|r| r.0.is_multiple_of(3)));
    }
}
