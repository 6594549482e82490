//! Contiguous, 64-byte-aligned vector storage for one segment.
//!
//! All vectors of a segment live in one `Vec<f32>`. Each row is padded to a stride that is a
//! multiple of 16 floats (64 bytes), and the first row starts at the first 64-byte boundary of
//! the allocation, so **every row starts on a cache line** and a row never straddles more cache
//! lines than it must. The alignment is reached without `unsafe`: a `Vec<f32>` allocation is
//! only guaranteed 4-byte aligned, so we over-allocate by 15 floats and start at the aligned
//! offset computed from the buffer's address (`offset`). Padding floats are zero and are never
//! passed to kernels (rows are sliced to `dim`).
//!
//! The buffer never reallocates implicitly: [`VectorStore::push`] checks the capacity first and,
//! when full, moves the rows into a fresh buffer of twice the capacity with its own aligned
//! offset. The whole matrix (`len × stride`, row-major) is available to faer as one slice.

/// Floats per alignment unit (64 bytes).
const ALIGN_FLOATS: usize = 16;

/// Row-major, padded, cache-line aligned matrix of `f32` vectors.
#[derive(Debug)]
pub(crate) struct VectorStore {
    data: Vec<f32>,
    offset: usize,
    stride: usize,
    dim: usize,
    len: usize,
}

impl VectorStore {
    /// An empty store for `dim`-dimensional vectors with room for `capacity` rows.
    pub(crate) fn with_capacity(dim: usize, capacity: usize) -> Self {
        let stride = dim.div_ceil(ALIGN_FLOATS).max(1) * ALIGN_FLOATS;
        let (data, offset) = aligned_buffer(stride.saturating_mul(capacity));
        VectorStore {
            data,
            offset,
            stride,
            dim,
            len: 0,
        }
    }

    /// Number of rows.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Floats between the starts of two consecutive rows (a multiple of 16).
    #[cfg(test)]
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    /// Vector dimension.
    #[inline]
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Row `i`, `dim` floats long. Panics only if `i >= len` (callers check ids).
    #[inline]
    pub(crate) fn row(&self, i: usize) -> &[f32] {
        let start = self.offset + i * self.stride;
        &self.data[start..start + self.dim]
    }

    /// Row `i` if it exists.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&[f32]> {
        (i < self.len).then(|| self.row(i))
    }

    /// All rows as one padded row-major slice of `len × stride` floats.
    pub(crate) fn matrix(&self) -> &[f32] {
        &self.data[self.offset..self.offset + self.len * self.stride]
    }

    /// Appends one row (`v.len()` must equal `dim`; the index validates this).
    pub(crate) fn push(&mut self, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim);
        self.reserve(1);
        self.data.extend_from_slice(v);
        self.data
            .resize(self.offset + (self.len + 1) * self.stride, 0.0);
        self.len += 1;
    }

    /// Appends one row decoded from `dim × 4` little-endian bytes (deserialization).
    pub(crate) fn push_le_bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(bytes.len(), self.dim * 4);
        self.reserve(1);
        self.data.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        self.data
            .resize(self.offset + (self.len + 1) * self.stride, 0.0);
        self.len += 1;
    }

    /// Makes room for `additional` more rows without implicit reallocation.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self.offset + (self.len + additional) * self.stride;
        if needed <= self.data.capacity() {
            return;
        }
        let rows = (self.len + additional)
            .max(self.len.saturating_mul(2))
            .max(16);
        let (mut data, offset) = aligned_buffer(rows * self.stride);
        data.extend_from_slice(self.matrix());
        self.data = data;
        self.offset = offset;
    }

    /// Whether row 0 really starts on a 64-byte boundary (it does unless the allocator gave
    /// a buffer that is not even 4-byte aligned, which Rust forbids).
    #[cfg(test)]
    pub(crate) fn is_aligned(&self) -> bool {
        (self.data[self.offset..].as_ptr() as usize).is_multiple_of(64)
    }
}

/// A `Vec<f32>` with room for `floats` floats after an aligned start, and the offset (in floats)
/// of that start. The vector's length is the offset (zero-filled prefix).
fn aligned_buffer(floats: usize) -> (Vec<f32>, usize) {
    let mut data: Vec<f32> = Vec::with_capacity(floats.saturating_add(ALIGN_FLOATS - 1));
    let addr = data.as_ptr() as usize;
    let misalign_bytes = (64 - addr % 64) % 64;
    let offset = misalign_bytes / std::mem::size_of::<f32>();
    data.resize(offset, 0.0);
    (data, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_and_survive_growth() {
        for dim in [1usize, 3, 16, 17, 100, 128] {
            let mut s = VectorStore::with_capacity(dim, 2);
            for i in 0..300 {
                let v: Vec<f32> = (0..dim).map(|j| (i * 1000 + j) as f32).collect();
                s.push(&v);
                assert!(s.is_aligned(), "dim {dim} row {i}");
            }
            assert_eq!(s.len(), 300);
            assert_eq!(s.stride() % 16, 0);
            for i in 0..300 {
                let r = s.row(i);
                assert_eq!(r.len(), dim);
                assert_eq!(r[0], (i * 1000) as f32);
                assert_eq!(r[dim - 1], (i * 1000 + dim - 1) as f32);
                assert_eq!(r.as_ptr() as usize % 64, 0);
            }
            assert!(s.get(300).is_none());
            assert_eq!(s.matrix().len(), 300 * s.stride());
        }
    }
}
