//! faer exact search against the scalar pairwise loop.

use super::common::{random_vectors, rng, seed};
use vela_engine::index::{exact_knn, exact_knn_scalar, Metric};

#[test]
fn faer_exact_matches_scalar() {
    let mut r = rng(seed("faer_exact_matches_scalar", 13));
    for dim in [1usize, 7, 64] {
        let base = random_vectors(&mut r, 700, dim);
        let queries = random_vectors(&mut r, 9, dim);
        for metric in Metric::ALL {
            let fast = exact_knn(metric, &base, dim, &queries, 10).expect("faer");
            let slow = exact_knn_scalar(metric, &base, dim, &queries, 10).expect("scalar");
            assert_eq!(fast.len(), 9);
            for (f, s) in fast.iter().zip(&slow) {
                assert_eq!(f.len(), 10);
                for (a, b) in f.iter().zip(s) {
                    // Ties or near-ties may swap; the distances must agree rank by rank.
                    assert!(
                        (a.1 - b.1).abs() <= 1e-3 * b.1.abs().max(1.0),
                        "{metric:?} d{dim}: {a:?} vs {b:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn exact_rejects_bad_input() {
    assert!(exact_knn(Metric::L2, &[1.0, 2.0, 3.0], 2, &[1.0, 2.0], 1).is_err());
    assert!(exact_knn(Metric::L2, &[1.0, 2.0], 2, &[1.0, 2.0], 0).is_err());
    assert!(exact_knn(Metric::L2, &[1.0, f32::NAN], 2, &[1.0, 2.0], 1).is_err());
    assert!(exact_knn(Metric::L2, &[1.0, 2.0], 0, &[], 1).is_err());
    let got = exact_knn(Metric::L2, &[1.0, 2.0], 2, &[1.0, 2.0], usize::MAX).expect("k clamps");
    assert_eq!(got, vec![vec![(0, 0.0)]]);
    assert_eq!(
        exact_knn(Metric::L2, &[], 2, &[1.0, 2.0], 3).expect("empty"),
        vec![vec![]]
    );
}
