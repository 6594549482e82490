//! Software prefetch of a vector row before the graph search reaches it.
//!
//! This is the index's only `unsafe`. `_mm_prefetch` is a hint: it never dereferences the
//! pointer, cannot fault, and has no effect on program semantics, so calling it with any
//! address is sound. Rust still marks it `unsafe` because it is a `#[target_feature(sse)]`
//! function; SSE is part of the x86_64 baseline, so the feature is always present there.
//! Other architectures get the safe no-op fallback.
#![allow(unsafe_code)] // Why: see the module doc; one intrinsic call, no memory access.

/// Asks the CPU to bring the cache line holding `data[0]` (and the next one) into L1.
#[inline(always)]
pub(crate) fn prefetch(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = data.as_ptr() as *const i8;
        // SAFETY: prefetch never dereferences `p`; SSE is baseline on x86_64.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = data;
    }
}

/// Prefetches the cache line holding `words[0]` (a neighbour list).
#[inline(always)]
pub(crate) fn prefetch_words<T>(words: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: as above; the pointer is never dereferenced.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(words.as_ptr() as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = words;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefetch_has_no_observable_effect() {
        let v = vec![1.0f32; 3];
        super::prefetch(&v);
        super::prefetch(&v[3..]);
        super::prefetch_words(&[1u32, 2]);
        assert_eq!(v, vec![1.0; 3]);
    }
}
