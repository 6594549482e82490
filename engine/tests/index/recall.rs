//! Recall against brute force, and recall after deletes.

use super::common::{build, clustered, queries_like, recall, recall_vs_faer, rng, seed};
use vela_engine::index::{HnswIndex, HnswParams, Metric};

#[test]
fn recall_at_10_is_at_least_095_on_20k_by_64() {
    let s = seed("recall_at_10_is_at_least_095_on_20k_by_64", 42);
    let mut r = rng(s);
    let dim = 64;
    let (data, _) = clustered(&mut r, 20_000, dim, 50);
    let queries = queries_like(&data, dim, &mut r, 200);
    let params = HnswParams {
        seed: s,
        ..HnswParams::default()
    };
    let t = std::time::Instant::now();
    let index = build(&data, dim, Metric::L2, params);
    println!("build 20k x 64: {:?}", t.elapsed());
    let rec = recall_vs_faer(&index, &data, &queries, dim, 10, 64);
    println!("recall@10 ef=64: {rec:.4}");
    assert!(rec >= 0.95, "recall {rec}");
}

#[test]
fn every_metric_reaches_good_recall() {
    let s = seed("every_metric_reaches_good_recall", 7);
    let mut r = rng(s);
    let dim = 32;
    let (data, _) = clustered(&mut r, 3_000, dim, 20);
    let queries = queries_like(&data, dim, &mut r, 50);
    for metric in Metric::ALL {
        let index = build(
            &data,
            dim,
            metric,
            HnswParams {
                seed: s,
                ..HnswParams::default()
            },
        );
        let rec = recall(&index, &queries, dim, 10, 64, None);
        println!("{metric:?}: recall@10 {rec:.4}");
        assert!(rec >= 0.9, "{metric:?} recall {rec}");
    }
}

#[test]
fn recall_holds_after_deleting_30_percent() {
    let s = seed("recall_holds_after_deleting_30_percent", 3);
    let mut r = rng(s);
    let dim = 32;
    let (data, _) = clustered(&mut r, 10_000, dim, 30);
    let queries = queries_like(&data, dim, &mut r, 200);
    let index = build(
        &data,
        dim,
        Metric::L2,
        HnswParams {
            seed: s,
            ..HnswParams::default()
        },
    );
    let before = recall(&index, &queries, dim, 10, 64, None);
    let mut deleted = std::collections::HashSet::new();
    for row in 0..10_000u64 {
        if (row.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 10 < 3 {
            assert!(index.delete(row));
            deleted.insert(row);
        }
    }
    assert!(!index.delete(*deleted.iter().next().expect("some deleted")));
    assert_eq!(index.len(), 10_000 - deleted.len());
    let after = recall(&index, &queries, dim, 10, 64, None);
    println!(
        "recall before {before:.4}, after deleting {}: {after:.4}",
        deleted.len()
    );
    assert!(after >= before - 0.02, "before {before} after {after}");
    for q in queries.chunks_exact(dim).take(50) {
        for (row, _) in index.search(q, 10, 64, None).expect("search") {
            assert!(!deleted.contains(&row));
        }
    }
}

#[test]
fn sequential_builds_with_one_seed_are_identical() {
    let s = seed("sequential_builds_with_one_seed_are_identical", 5);
    let mut r = rng(s);
    let dim = 16;
    let (data, _) = clustered(&mut r, 1_000, dim, 10);
    let make = || {
        let index = HnswIndex::new(
            dim,
            Metric::Cosine,
            HnswParams {
                seed: s,
                ..HnswParams::default()
            },
        )
        .expect("new");
        for (i, v) in data.chunks_exact(dim).enumerate() {
            index.insert(i as u64, v).expect("insert");
        }
        index.to_bytes()
    };
    assert_eq!(make(), make());
}

#[test]
fn empty_index_and_k_above_size() {
    let index = HnswIndex::new(4, Metric::L2, HnswParams::default()).expect("new");
    assert!(index.is_empty());
    assert!(index
        .search(&[0.0; 4], 10, 0, None)
        .expect("search")
        .is_empty());
    index.insert(7, &[1.0, 0.0, 0.0, 0.0]).expect("insert");
    index.insert(9, &[0.0, 1.0, 0.0, 0.0]).expect("insert");
    let got = index
        .search(&[1.0, 0.1, 0.0, 0.0], 1_000_000_000, 0, None)
        .expect("search");
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![7, 9]);
    assert!(index.delete(7));
    assert_eq!(
        index
            .search(&[1.0, 0.0, 0.0, 0.0], usize::MAX, usize::MAX, None)
            .expect("s")
            .len(),
        1
    );
    assert!(index.delete(9));
    assert!(index
        .search(&[1.0, 0.0, 0.0, 0.0], 3, 0, None)
        .expect("s")
        .is_empty());
    // A deleted row id may come back.
    index.insert(7, &[0.5, 0.5, 0.0, 0.0]).expect("reinsert");
    assert_eq!(
        index.search(&[1.0, 0.0, 0.0, 0.0], 3, 0, None).expect("s")[0].0,
        7
    );
}

#[test]
fn reorder_keeps_answers_and_deletes() {
    let s = seed("reorder_keeps_answers_and_deletes", 31);
    let mut r = rng(s);
    let dim = 16;
    let (data, _) = clustered(&mut r, 3_000, dim, 12);
    let queries = queries_like(&data, dim, &mut r, 50);
    let mut index = HnswIndex::new(
        dim,
        Metric::L2,
        HnswParams {
            seed: s,
            ..HnswParams::default()
        },
    )
    .expect("new");
    for (i, v) in data.chunks_exact(dim).enumerate() {
        index.insert(1_000 + i as u64, v).expect("insert");
    }
    for row in (1_000..4_000u64).step_by(5) {
        index.delete(row);
    }
    let before: Vec<_> = queries
        .chunks_exact(dim)
        .map(|q| index.search(q, 10, 50, None).expect("s"))
        .collect();
    index.reorder();
    let after: Vec<_> = queries
        .chunks_exact(dim)
        .map(|q| index.search(q, 10, 50, None).expect("s"))
        .collect();
    assert_eq!(before, after);
    assert_eq!(index.len(), 3_000 - 600);
    assert!(!index.contains(1_000) && index.contains(1_001));
    assert!(index.delete(1_001) && !index.delete(1_000));
    index
        .insert(1_000, &data[..dim])
        .expect("reinsert after reorder");
    assert_eq!(
        index.search(&data[..dim], 1, 50, None).expect("s")[0].0,
        1_000
    );
}
