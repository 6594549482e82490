//! Software prefetch of vector rows and neighbour lists before the graph search reads them.
//!
//! One of the index's two `unsafe` modules (the other is `simd`). `_mm_prefetch` is a hint: it
//! never dereferences the pointer, cannot fault, and has no effect on program semantics, so
//! calling it with any address is sound. Rust still marks it `unsafe` because it is a `#[target_feature(sse)]`
//! function; SSE is part of the x86_64 baseline, so the feature is always present there.
//! Other architectures get the safe no-op fallback.
#![allow(unsafe_code)] // Why: see the module doc; one intrinsic call, no memory access.

/// Prefetches the first `lines` cache lines of `data` (at most its length).
#[inline(always)]
pub(crate) fn prefetch_lines(data: &[f32], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = data.as_ptr() as *const i8;
        let n = lines.min((data.len() * 4).div_ceil(64));
        for i in 0..n {
            // SAFETY: prefetch never dereferences the pointer; SSE is baseline on x86_64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(i * 64)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (data, lines);
    }
}

/// Prefetches every cache line that `words` touches (a neighbour list: `1 + 2m` words, i.e.
/// 132 bytes at m = 16, usually spread over three lines because lists are not line-aligned).
#[inline(always)]
pub(crate) fn prefetch_words<T>(words: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = words.as_ptr() as usize;
        let bytes = std::mem::size_of_val(words);
        let first = start & !63;
        let mut line = first;
        while line < start + bytes {
            // SAFETY: as above; the pointer is never dereferenced.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line as *const i8) };
            line += 64;
        }
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
        super::prefetch_lines(&v, 4);
        super::prefetch_lines(&v[3..], 1);
        super::prefetch_words(&[1u32, 2]);
        assert_eq!(v, vec![1.0; 3]);
    }
}
