//! Property tests of search results against a brute-force model.

use proptest::prelude::*;

use vela_engine::index::{HnswIndex, HnswParams, Metric};

fn metric() -> impl Strategy<Value = Metric> {
    prop::sample::select(Metric::ALL.to_vec())
}

proptest! {
    #![proptest_config(super::common::proptest_config("results_are_sorted_unique_live_and_at_most_k", 1, 48))]

    #[test]
    fn results_are_sorted_unique_live_and_at_most_k(
        metric in metric(),
        m in 2usize..12,
        rows in prop::collection::vec(prop::collection::vec(-10.0f32..10.0, 5), 0..120),
        deletes in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        query in prop::collection::vec(-10.0f32..10.0, 5),
        k in 1usize..40,
        ef in 0usize..80,
        modulo in 1u64..5,
    ) {
        let index = HnswIndex::new(5, metric, HnswParams { m, ef_construction: 32, ..HnswParams::default() }).expect("new");
        for (i, v) in rows.iter().enumerate() {
            index.insert(i as u64, v).expect("insert");
        }
        let mut deleted = std::collections::HashSet::new();
        if !rows.is_empty() {
            for d in &deletes {
                let row = d.index(rows.len()) as u64;
                index.delete(row);
                deleted.insert(row);
            }
        }
        let live = rows.len() - deleted.len();
        prop_assert_eq!(index.len(), live);
        let filter = move |row: u64| row.is_multiple_of(modulo);
        for f in [None, Some(&filter as &dyn vela_engine::index::RowFilter)] {
            let got = index.search(&query, k, ef, f).expect("search");
            let exact = index.search_exact(&query, k, f).expect("exact");
            prop_assert!(got.len() <= k);
            prop_assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "not sorted: {:?}", got);
            let ids: std::collections::HashSet<u64> = got.iter().map(|r| r.0).collect();
            prop_assert_eq!(ids.len(), got.len(), "duplicates");
            for (row, d) in &got {
                prop_assert!(!deleted.contains(row));
                prop_assert!((*row as usize) < rows.len());
                prop_assert!(f.is_none() || row.is_multiple_of(modulo));
                let want = metric.distance_scalar(&query, &rows[*row as usize]);
                prop_assert!((d - want).abs() <= 1e-3 * want.abs().max(1.0), "{} vs {}", d, want);
            }
            // The exact answer is complete: min(k, matching live rows).
            let matching = (0..rows.len() as u64)
                .filter(|r| !deleted.contains(r) && f.is_none_or(|_| r.is_multiple_of(modulo)))
                .count();
            prop_assert_eq!(exact.len(), k.min(matching));
        }
    }
}
