//! Distance kernels: simsimd for L2², cosine and inner product, a portable autovectorised loop
//! for L1 (simsimd 6.5 has no f32 L1 kernel), and [`scalar`] reference versions that tests and
//! benchmarks compare against. The graph search itself calls the hand-written kernels of
//! `index::simd` (four-accumulator AVX-512 / AVX2 dot and L2², resolved once per search), which
//! fall back to these on other CPUs.
//!
//! Every distance is "smaller is nearer":
//!
//! | [`Metric`]       | value                     | pgvector operator |
//! |------------------|---------------------------|-------------------|
//! | `L2`             | Σ (aᵢ − bᵢ)² (squared)    | `<->` (it reports the root) |
//! | `Cosine`         | 1 − a·b / (‖a‖ ‖b‖)      | `<=>`             |
//! | `InnerProduct`   | −a·b                      | `<#>`             |
//! | `L1`             | Σ |aᵢ − bᵢ|               | `<+>`             |
//!
//! **Zero vectors under cosine.** The cosine of a zero vector is undefined; Vela defines the
//! cosine distance between a zero vector and anything (including another zero vector) as `1.0`,
//! as if the two were orthogonal. Both the SIMD and the scalar kernel follow this rule.
//!
//! Callers pass slices of equal length; the index validates dimensions before it gets here. On
//! a length mismatch the kernels return `f32::INFINITY` rather than panicking.

use simsimd::SpatialSimilarity;

/// The distance function of an index. The catalog stores it; the SQL layer maps pgvector's
/// operator classes (`vector_l2_ops`, `vector_cosine_ops`, `vector_ip_ops`, `vector_l1_ops`)
/// onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Metric {
    /// Squared Euclidean distance.
    L2,
    /// Cosine distance, `1 − cos`.
    Cosine,
    /// Negative inner product, `−a·b`.
    InnerProduct,
    /// Manhattan distance.
    L1,
}

impl Metric {
    /// All metrics, for tests and benchmarks.
    pub const ALL: [Metric; 4] = [Metric::L2, Metric::Cosine, Metric::InnerProduct, Metric::L1];

    /// The distance between `a` and `b` under this metric (SIMD kernels).
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2_squared(a, b),
            Metric::Cosine => cosine_distance(a, b),
            Metric::InnerProduct => neg_inner_product(a, b),
            Metric::L1 => l1(a, b),
        }
    }

    /// The distance between `a` and `b` under this metric (scalar reference).
    pub fn distance_scalar(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => scalar::l2_squared(a, b),
            Metric::Cosine => scalar::cosine_distance(a, b),
            Metric::InnerProduct => scalar::neg_inner_product(a, b),
            Metric::L1 => scalar::l1(a, b),
        }
    }

    /// The kernel the graph search uses, resolved for this CPU (four-accumulator AVX-512 or
    /// AVX2 dot / L2² where available, else the simsimd kernels). It works on the index's
    /// *stored* form: for [`Metric::Cosine`] both vectors must already be unit length (or
    /// zero), and it returns `1 − a·b`. Resolve it once and call it many times.
    pub fn search_kernel(self) -> fn(&[f32], &[f32]) -> f32 {
        self.stored_kernel()
    }

    /// Stable one-byte code used by the serialization format.
    pub(crate) fn code(self) -> u8 {
        match self {
            Metric::L2 => 0,
            Metric::Cosine => 1,
            Metric::InnerProduct => 2,
            Metric::L1 => 3,
        }
    }

    /// Inverse of [`Metric::code`].
    pub(crate) fn from_code(code: u8) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The kernel the index uses on *stored* vectors: for cosine the stored vectors and the
    /// query are unit length (or zero), so `1 − a·b` is the cosine distance. Resolved for this
    /// CPU by [`super::simd::stored_kernel`] (call once per search, not per distance).
    pub(crate) fn stored_kernel(self) -> fn(&[f32], &[f32]) -> f32 {
        super::simd::stored_kernel(self)
    }
}

/// Squared Euclidean distance (simsimd).
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    f32::l2sq(a, b).map_or(f32::INFINITY, |d| d as f32)
}

/// Dot product (simsimd).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    f32::dot(a, b).map_or(f32::NAN, |d| d as f32)
}

/// Negative inner product `−a·b` (simsimd).
#[inline]
pub fn neg_inner_product(a: &[f32], b: &[f32]) -> f32 {
    f32::dot(a, b).map_or(f32::INFINITY, |d| -(d as f32))
}

/// Cosine distance `1 − cos(a, b)` (simsimd); `1.0` when either vector is zero.
#[inline]
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let Some(d) = f32::cosine(a, b) else {
        return f32::INFINITY;
    };
    // simsimd returns 0 when *both* vectors are zero; our rule says 1. A true 0 also happens
    // for parallel vectors, so only then pay for the zero check.
    if d == 0.0 && (is_zero(a) || is_zero(b)) {
        return 1.0;
    }
    d as f32
}

/// Cosine distance of two vectors that are already unit length (or zero): `1 − a·b`.
#[inline]
pub fn unit_cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    f32::dot(a, b).map_or(f32::INFINITY, |d| (1.0 - d as f32).max(0.0))
}

/// Manhattan distance. simsimd 6.5 has no f32 L1 kernel, so this is a portable loop written
/// with 16 independent lanes so LLVM vectorises it (the order of additions differs from
/// [`scalar::l1`], hence the relative tolerance in tests).
#[inline]
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += (x[i] - y[i]).abs();
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ta.iter().zip(tb) {
        tail += (x - y).abs();
    }
    acc.iter().sum::<f32>() + tail
}

/// Squared norm (simsimd dot of `v` with itself).
#[inline]
pub fn norm_squared(v: &[f32]) -> f32 {
    dot(v, v)
}

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let n2 = scalar::norm_squared_f64(v);
    if n2 > 0.0 && n2.is_finite() {
        // Divided in f64: `1 / norm` of a vector of subnormal-sized components does not fit an
        // f32 (it became infinity, and the stored vector non-finite), `x / norm` always does.
        let norm = n2.sqrt();
        v.iter_mut()
            .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    }
}

/// Smallest norm whose inverse the index keeps in an `f32` for the fast cosine path.
/// Between these bounds `dot(q̂, x) · inv` and `dot(x, y) · inv_x · inv_y` neither overflow nor
/// lose the significant products to subnormals (`‖x‖ ‖y‖ ≥ 2⁻⁸⁰`, far above `f32::MIN_POSITIVE`
/// even after 2⁻²⁴ of relative precision and 2¹⁶ dimensions).
const FAST_NORM_MIN: f64 = 1.0 / (1u64 << 40) as f64;
/// Largest norm of the fast cosine path (`‖x‖ ‖y‖ ≤ 2⁸⁰`, far below `f32::MAX`).
const FAST_NORM_MAX: f64 = (1u64 << 40) as f64;

/// The per-node factor of the cosine distance on vectors kept as given: `1 / ‖v‖` (computed in
/// `f64`, like [`normalize`]); `0.0` for a zero vector (its distances are then `1 − 0 = 1`, the
/// zero-vector rule); `NaN` when `‖v‖` lies outside `[2⁻⁴⁰, 2⁴⁰]` (subnormal-sized or huge
/// components), which sends [`cosine_given`] and [`cosine_given_pair`] to their exact `f64`
/// path: the `NaN` makes the fast product non-finite.
pub fn inv_norm(v: &[f32]) -> f32 {
    let n2 = scalar::norm_squared_f64(v);
    if n2 == 0.0 {
        return 0.0;
    }
    let norm = n2.sqrt();
    if (FAST_NORM_MIN..=FAST_NORM_MAX).contains(&norm) {
        (1.0 / norm) as f32
    } else {
        f32::NAN
    }
}

/// Cosine distance between a normalised query `q` and a vector `x` kept as given, from
/// `neg_dot = −q·x` (the index's inner-product kernel) and `inv = inv_norm(x)`:
/// `1 + neg_dot · inv`, clamped at 0. Falls back to the exact `f64` form when that is not
/// finite (an out-of-range norm, see [`inv_norm`]).
#[inline]
pub fn cosine_given(neg_dot: f32, inv: f32, q: &[f32], x: &[f32]) -> f32 {
    // The query's inverse norm is 1 (`× 1.0` is exact and folded away by the compiler).
    cosine_given_pair(neg_dot, inv, 1.0, q, x)
}

/// Cosine distance between two vectors kept as given, from `neg_dot = −x·y` and both inverse
/// norms: `1 + neg_dot · inv_x · inv_y`, clamped at 0, with the same exact fallback.
#[inline]
pub fn cosine_given_pair(neg_dot: f32, inv_x: f32, inv_y: f32, x: &[f32], y: &[f32]) -> f32 {
    let d = 1.0 + neg_dot * inv_x * inv_y;
    // One compare on the common path; a NaN (out-of-range norm) fails both. In range the
    // product is bounded, so `d` is never infinite.
    if d >= 0.0 {
        d
    } else if d < 0.0 {
        0.0
    } else {
        cosine_exact_f64(x, y)
    }
}

/// [`scalar::cosine_distance`] without the length check (both sides are index vectors).
#[cold]
fn cosine_exact_f64(a: &[f32], b: &[f32]) -> f32 {
    scalar::cosine_distance(a, b)
}

#[cfg(test)]
mod normalize_tests {
    /// Tiny and subnormal vectors normalise to finite unit vectors (their inverse norm does
    /// not fit an f32).
    #[test]
    fn tiny_vectors_normalise_to_finite_unit_vectors() {
        for v in [
            vec![f32::MIN_POSITIVE / 4.0, 0.0, -0.0],
            vec![f32::MIN_POSITIVE / 4.0; 5],
            vec![1e-30, -1e-30, 1e-38],
            vec![f32::from_bits(1), 0.0],
            vec![3e38, -3e38, 1.0],
        ] {
            let mut n = v.clone();
            super::normalize(&mut n);
            assert!(n.iter().all(|x| x.is_finite()), "{v:?} -> {n:?}");
            let len: f64 = n.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            assert!((len - 1.0).abs() < 1e-5, "{v:?} -> {n:?}: |n|² = {len}");
        }
    }
}

fn is_zero(v: &[f32]) -> bool {
    v.iter().all(|&x| x == 0.0)
}

/// Plain scalar reference kernels: one sequential loop each, accumulated in `f64`. They define
/// what the fast kernels must compute; tests compare the two with a relative tolerance.
pub mod scalar {
    /// Squared Euclidean distance.
    pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        if a.len() != b.len() {
            return f32::INFINITY;
        }
        let mut s = 0.0f64;
        for (x, y) in a.iter().zip(b) {
            let d = f64::from(*x) - f64::from(*y);
            s += d * d;
        }
        s as f32
    }

    /// Dot product.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot_f64(a, b) as f32
    }

    /// Negative inner product.
    pub fn neg_inner_product(a: &[f32], b: &[f32]) -> f32 {
        if a.len() != b.len() {
            return f32::INFINITY;
        }
        -dot_f64(a, b) as f32
    }

    /// Cosine distance; `1.0` when either vector is zero.
    pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
        if a.len() != b.len() {
            return f32::INFINITY;
        }
        let (na, nb) = (norm_squared_f64(a), norm_squared_f64(b));
        if na == 0.0 || nb == 0.0 {
            return 1.0;
        }
        let cos = dot_f64(a, b) / (na.sqrt() * nb.sqrt());
        (1.0 - cos).max(0.0) as f32
    }

    /// Manhattan distance.
    pub fn l1(a: &[f32], b: &[f32]) -> f32 {
        if a.len() != b.len() {
            return f32::INFINITY;
        }
        let mut s = 0.0f64;
        for (x, y) in a.iter().zip(b) {
            s += (f64::from(*x) - f64::from(*y)).abs();
        }
        s as f32
    }

    pub(crate) fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
        let mut s = 0.0f64;
        for (x, y) in a.iter().zip(b) {
            s += f64::from(*x) * f64::from(*y);
        }
        s
    }

    pub(crate) fn norm_squared_f64(v: &[f32]) -> f64 {
        dot_f64(v, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_vector_cosine_is_one() {
        let z = [0.0f32; 5];
        let v = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        for (a, b) in [(&z, &v), (&v, &z), (&z, &z)] {
            assert_eq!(cosine_distance(a, b), 1.0);
            assert_eq!(scalar::cosine_distance(a, b), 1.0);
        }
        let mut n = z;
        normalize(&mut n);
        assert_eq!(unit_cosine_distance(&n, &n), 1.0);
    }

    /// The as-given cosine forms agree with normalising both sides first (what the index did
    /// before) and with the `f64` reference, at every scale: the fast path in range, the exact
    /// fallback for subnormal-sized and huge vectors, and the zero-vector rule.
    #[test]
    fn given_cosine_matches_the_normalised_computation() {
        let base: Vec<f32> = (0..37).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
        let other: Vec<f32> = (0..37).map(|i| ((i * 104_729) % 19) as f32 - 9.5).collect();
        let unit = |v: &[f32]| {
            let mut u = v.to_vec();
            normalize(&mut u);
            u
        };
        let kernel = Metric::InnerProduct.stored_kernel();
        let scales = [
            1.0f32, -3.0, 1e-3, 4e3, 1e-12, 1e-20, 1e-40, 1e13, 1e30, 0.0,
        ];
        for &sx in &scales {
            for &sy in &scales {
                let x: Vec<f32> = base.iter().map(|v| v * sx).collect();
                let y: Vec<f32> = other.iter().map(|v| v * sy).collect();
                let (ix, iy) = (inv_norm(&x), inv_norm(&y));
                let before = unit_cosine_distance(&unit(&x), &unit(&y));
                let q = unit(&x);
                let query = cosine_given(kernel(&q, &y), iy, &q, &y);
                let pair = cosine_given_pair(kernel(&x, &y), ix, iy, &x, &y);
                for d in [query, pair] {
                    assert!((d - before).abs() < 1e-5, "{sx} {sy}: {d} vs {before}");
                    assert!((d - scalar::cosine_distance(&x, &y)).abs() < 1e-5);
                }
                if sx == 0.0 || sy == 0.0 {
                    assert_eq!((query, pair), (1.0, 1.0), "zero vector");
                }
            }
        }
        assert_eq!(inv_norm(&[0.0, -0.0]), 0.0);
        assert!(inv_norm(&[1e-40, 0.0]).is_nan(), "subnormal: exact path");
        assert!(inv_norm(&[3e38, 3e38]).is_nan(), "huge: exact path");
        assert_eq!(inv_norm(&[3.0, 4.0]), 0.2);
    }

    #[test]
    fn length_mismatch_is_infinite_not_panic() {
        for m in Metric::ALL {
            assert_eq!(m.distance(&[1.0, 2.0], &[1.0]), f32::INFINITY);
            assert_eq!(m.distance_scalar(&[1.0, 2.0], &[1.0]), f32::INFINITY);
        }
    }

    #[test]
    fn metric_codes_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_code(m.code()), Some(m));
        }
        assert_eq!(Metric::from_code(9), None);
    }
}
