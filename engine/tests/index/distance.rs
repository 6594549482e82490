//! SIMD kernels against the scalar reference.

use super::common::{random_vectors, rng, seed};
use vela_engine::index::distance::{self, scalar};
use vela_engine::index::Metric;

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-3 * a.abs().max(b.abs()) + 1e-3
}

#[test]
fn simd_matches_scalar_on_random_vectors() {
    let mut r = rng(seed("simd_matches_scalar_on_random_vectors", 11));
    for dim in [1usize, 3, 17, 100, 384, 1536] {
        for _ in 0..20 {
            let v = random_vectors(&mut r, 2, dim);
            let (a, b) = v.split_at(dim);
            for m in Metric::ALL {
                let (fast, slow) = (m.distance(a, b), m.distance_scalar(a, b));
                assert!(
                    close(fast, slow),
                    "{m:?} dim {dim}: simd {fast} scalar {slow}"
                );
            }
            assert!(close(distance::dot(a, b), scalar::dot(a, b)));
        }
    }
}

#[test]
fn distances_have_the_documented_meaning() {
    let a = [1.0f32, 0.0, 2.0];
    let b = [0.0f32, 1.0, 2.0];
    assert!(close(Metric::L2.distance(&a, &b), 2.0));
    assert!(close(Metric::L1.distance(&a, &b), 2.0));
    assert!(close(Metric::InnerProduct.distance(&a, &b), -4.0));
    assert!(close(Metric::Cosine.distance(&a, &b), 1.0 - 4.0 / 5.0));
    assert!(close(Metric::Cosine.distance(&a, &a), 0.0));
    // Zero vector under cosine: defined as orthogonal.
    assert_eq!(Metric::Cosine.distance(&[0.0; 3], &a), 1.0);
    assert_eq!(Metric::Cosine.distance_scalar(&[0.0; 3], &[0.0; 3]), 1.0);
}

#[test]
fn search_kernel_matches_scalar_on_stored_vectors() {
    let mut r = rng(seed("search_kernel_matches_scalar_on_stored_vectors", 12));
    for dim in [1usize, 3, 17, 100, 384, 1536] {
        for _ in 0..20 {
            let mut v = random_vectors(&mut r, 2, dim);
            let (a, b) = v.split_at_mut(dim);
            for m in Metric::ALL {
                let k = m.search_kernel();
                let slow = if m == Metric::Cosine {
                    distance::normalize(a);
                    distance::normalize(b);
                    (1.0 - scalar::dot(a, b)).max(0.0)
                } else {
                    m.distance_scalar(a, b)
                };
                let fast = k(a, b);
                assert!(
                    close(fast, slow),
                    "{m:?} dim {dim}: search {fast} scalar {slow}"
                );
            }
        }
    }
}
