//! Hand-written x86_64 kernels for the index's hot loop: dot product and squared L2 on `f32`,
//! with AVX-512F and AVX2+FMA variants, chosen **once per search** by [`stored_kernel`].
//!
//! Why not simsimd here: each simsimd call goes through its C dispatcher (a lazily resolved
//! function pointer) and returns an `f64`, and its AVX-512 f32 kernels keep **one** FMA
//! accumulator, so a 384-d dot product is a chain of 24 dependent FMAs (~4 cycles each). These
//! kernels keep four independent accumulators (64 floats per step on AVX-512, 32 on AVX2), so
//! the FMAs pipeline; the sum order differs from simsimd's, hence the tolerance in the tests.
//! On other architectures, or CPUs without AVX2+FMA, [`stored_kernel`] returns the simsimd
//! kernels of [`super::distance`] (the safe fallback).
//!
//! Soundness: the `#[target_feature]` functions are `unsafe` because calling them on a CPU
//! without the feature is undefined. They are reached only through the private safe wrappers
//! below, and a wrapper is handed out (as a function pointer) only by [`stored_kernel`] after
//! `is_x86_feature_detected!` confirmed the features. Loads are unaligned (`loadu`) and stay
//! inside the slices: full-width loads only while at least one full vector width remains, then
//! a scalar loop for the tail.
//! Every wrapper returns `f32::INFINITY` on a length mismatch, like the simsimd kernels.
#![allow(unsafe_code)] // Why: see the module doc; SIMD intrinsics behind runtime detection.

use super::distance::{self, Metric};

/// A distance kernel on stored vectors (smaller is nearer).
pub(crate) type KernelFn = fn(&[f32], &[f32]) -> f32;

/// The fastest kernel for `metric` on *stored* vectors on this CPU: unit-length vectors for
/// cosine (`1 − a·b`), `−a·b` for inner product, squared L2, and L1 (portable loop).
pub(crate) fn stored_kernel(metric: Metric) -> KernelFn {
    #[cfg(target_arch = "x86_64")]
    {
        if metric != Metric::L1 {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return match metric {
                    Metric::Cosine => x86::unit_cosine_avx512,
                    Metric::InnerProduct => x86::neg_dot_avx512,
                    _ => x86::l2sq_avx512,
                };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return match metric {
                    Metric::Cosine => x86::unit_cosine_avx2,
                    Metric::InnerProduct => x86::neg_dot_avx2,
                    _ => x86::l2sq_avx2,
                };
            }
        }
    }
    portable_kernel(metric)
}

/// The simsimd (or portable, for L1) kernel for `metric`: the fallback, and the reference the
/// tests compare the hand-written kernels with.
pub(crate) fn portable_kernel(metric: Metric) -> KernelFn {
    match metric {
        Metric::L2 => distance::l2_squared,
        Metric::Cosine => distance::unit_cosine_distance,
        Metric::InnerProduct => distance::neg_inner_product,
        Metric::L1 => distance::l1,
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// Floats per AVX-512 register.
    const W16: usize = 16;
    /// Floats per AVX2 register.
    const W8: usize = 8;

    macro_rules! safe_wrappers {
        ($($name:ident = $imp:ident, $post:expr;)*) => {$(
            /// Safe wrapper; only handed out after the CPU features were detected.
            pub(super) fn $name(a: &[f32], b: &[f32]) -> f32 {
                if a.len() != b.len() {
                    return f32::INFINITY;
                }
                // SAFETY: `stored_kernel` returns this wrapper only when the target features
                // of `$imp` are present; the slices have equal lengths.
                let raw = unsafe { $imp(a, b) };
                let post: fn(f32) -> f32 = $post;
                post(raw)
            }
        )*};
    }

    safe_wrappers! {
        unit_cosine_avx512 = dot_avx512, |d| (1.0 - d).max(0.0);
        neg_dot_avx512 = dot_avx512, |d| -d;
        l2sq_avx512 = l2sq_avx512_raw, |d| d;
        unit_cosine_avx2 = dot_avx2, |d| (1.0 - d).max(0.0);
        neg_dot_avx2 = dot_avx2, |d| -d;
        l2sq_avx2 = l2sq_avx2_raw, |d| d;
    }

    /// Defines `unsafe fn $name(a, b) -> f32` = `Σ step(aᵢ, bᵢ)` over four independent vector
    /// accumulators of `$w` lanes, then a scalar tail. The caller guarantees the target
    /// features and equal lengths.
    macro_rules! simd_kernel {
        ($name:ident, $feat:literal, $w:expr, $vec:ty, $zero:ident, $load:ident, $add:ident,
         $hsum:ident, |$x:ident, $y:ident, $acc:ident| $step:expr, |$sx:ident, $sy:ident| $tail:expr) => {
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc: [$vec; 4] = [$zero(); 4];
                let mut i = 0;
                // SAFETY: every load reads `$w` floats at offset `o` with `o + $w <= n`.
                unsafe {
                    while i + 4 * $w <= n {
                        for (k, $acc) in acc.iter_mut().enumerate() {
                            let o = i + k * $w;
                            let ($x, $y) = ($load(pa.add(o)), $load(pb.add(o)));
                            *$acc = $step;
                        }
                        i += 4 * $w;
                    }
                    while i + $w <= n {
                        let ($x, $y) = ($load(pa.add(i)), $load(pb.add(i)));
                        let $acc = &mut acc[0];
                        *$acc = $step;
                        i += $w;
                    }
                }
                let s = $add($add(acc[0], acc[1]), $add(acc[2], acc[3]));
                let tail: f32 = a[i..n].iter().zip(&b[i..n]).map(|(&$sx, &$sy)| $tail).sum();
                $hsum(s) + tail
            }
        };
    }

    simd_kernel! { dot_avx512, "avx512f", W16, __m512, _mm512_setzero_ps, _mm512_loadu_ps,
    _mm512_add_ps, _mm512_reduce_add_ps, |x, y, acc| _mm512_fmadd_ps(x, y, *acc),
    |x, y| x * y }
    simd_kernel! { l2sq_avx512_raw, "avx512f", W16, __m512, _mm512_setzero_ps, _mm512_loadu_ps,
    _mm512_add_ps, _mm512_reduce_add_ps,
    |x, y, acc| { let d = _mm512_sub_ps(x, y); _mm512_fmadd_ps(d, d, *acc) },
    |x, y| (x - y) * (x - y) }
    simd_kernel! { dot_avx2, "avx2,fma", W8, __m256, _mm256_setzero_ps, _mm256_loadu_ps,
    _mm256_add_ps, hsum256, |x, y, acc| _mm256_fmadd_ps(x, y, *acc), |x, y| x * y }
    simd_kernel! { l2sq_avx2_raw, "avx2,fma", W8, __m256, _mm256_setzero_ps, _mm256_loadu_ps,
    _mm256_add_ps, hsum256,
    |x, y, acc| { let d = _mm256_sub_ps(x, y); _mm256_fmadd_ps(d, d, *acc) },
    |x, y| (x - y) * (x - y) }

    /// Horizontal sum of the eight lanes.
    #[target_feature(enable = "avx2,fma")]
    fn hsum256(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }

    /// Every kernel variant this CPU can run, with the metric it serves (for tests).
    #[cfg(test)]
    pub(super) fn available() -> Vec<(&'static str, crate::index::Metric, super::KernelFn)> {
        use crate::index::Metric;
        let mut out: Vec<(&'static str, Metric, super::KernelFn)> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512f") {
            out.push(("avx512 cosine", Metric::Cosine, unit_cosine_avx512));
            out.push(("avx512 ip", Metric::InnerProduct, neg_dot_avx512));
            out.push(("avx512 l2", Metric::L2, l2sq_avx512));
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            out.push(("avx2 cosine", Metric::Cosine, unit_cosine_avx2));
            out.push(("avx2 ip", Metric::InnerProduct, neg_dot_avx2));
            out.push(("avx2 l2", Metric::L2, l2sq_avx2));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::distance::{normalize, scalar};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-4 * a.abs().max(b.abs()) + 1e-4
    }

    /// The reference for a stored-vector kernel: the scalar f64 kernels.
    fn reference(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
        match metric {
            Metric::Cosine => (1.0 - scalar::dot(a, b)).max(0.0),
            m => m.distance_scalar(a, b),
        }
    }

    fn variants() -> Vec<(&'static str, Metric, KernelFn)> {
        #[allow(unused_mut)]
        let mut v: Vec<(&'static str, Metric, KernelFn)> = Metric::ALL
            .into_iter()
            .map(|m| ("selected", m, stored_kernel(m)))
            .chain(
                Metric::ALL
                    .into_iter()
                    .map(|m| ("portable", m, portable_kernel(m))),
            )
            .collect();
        #[cfg(target_arch = "x86_64")]
        v.extend(x86::available());
        v
    }

    #[test]
    fn kernels_match_the_scalar_reference_on_awkward_dimensions() {
        let mut rng = StdRng::seed_from_u64(0x51_3d);
        let all = variants();
        for dim in [1usize, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 384, 784, 1536] {
            for _ in 0..10 {
                let mut a: Vec<f32> = (0..dim).map(|_| rng.random_range(-2.0..2.0)).collect();
                let mut b: Vec<f32> = (0..dim).map(|_| rng.random_range(-2.0..2.0)).collect();
                for &(name, metric, k) in &all {
                    if metric == Metric::Cosine {
                        normalize(&mut a);
                        normalize(&mut b);
                    }
                    let (fast, slow) = (k(&a, &b), reference(metric, &a, &b));
                    assert!(
                        close(fast, slow),
                        "{name} {metric:?} dim {dim}: {fast} vs {slow}"
                    );
                }
            }
        }
    }

    #[test]
    fn kernels_reject_length_mismatch_and_handle_empty() {
        for (name, _, k) in variants() {
            assert_eq!(k(&[1.0, 2.0], &[1.0]), f32::INFINITY, "{name}");
        }
        for (name, metric, k) in variants() {
            let d = k(&[], &[]);
            assert_eq!(d, reference(metric, &[], &[]), "{name} {metric:?}");
        }
    }

    #[test]
    fn zero_and_identical_vectors() {
        let z = [0.0f32; 384];
        let mut u = [0.0f32; 384];
        u[5] = 1.0;
        for (name, metric, k) in variants() {
            match metric {
                Metric::Cosine => {
                    assert_eq!(k(&z, &u), 1.0, "{name}: zero vector is orthogonal");
                    assert!(k(&u, &u).abs() < 1e-6, "{name}");
                }
                Metric::L2 | Metric::L1 => assert_eq!(k(&u, &u), 0.0, "{name}"),
                Metric::InnerProduct => assert_eq!(k(&u, &u), -1.0, "{name}"),
            }
        }
    }
}
