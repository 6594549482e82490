//! One-pass binary format of an index (see the format table in [`crate::index`]).
//!
//! Writing appends fixed-width little-endian arrays; reading checks the CRC and every length
//! against the remaining bytes *before* allocating, then bulk-decodes each array. Any
//! inconsistency is [`EngineError::CorruptIndex`]; no input makes it panic or allocate more
//! than the input's size implies.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::graph::{Graph, MAX_LEVEL};
use super::{unpack_entry, HnswIndex, HnswParams, MAX_DIM, MAX_NODES, NO_ENTRY};
use crate::error::{EngineError, Result};
use crate::index::distance::{inv_norm, Metric};
use crate::index::store::VectorStore;

/// File magic.
pub const MAGIC: &[u8; 8] = b"VELAHNSW";
/// Current format version. Version 2 added the header's flags byte (bit 0: vectors held as
/// given) and, for cosine, the inverse-norm section; version 1 cosine blobs hold normalised
/// vectors and still load (as an index whose [`HnswIndex::holds_given`] is false).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version [`HnswIndex::from_bytes`] reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Header flag: the vectors are stored as given (cosine: not normalised).
const FLAG_HOLDS_GIVEN: u8 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 64;

fn corrupt(msg: impl Into<String>) -> EngineError {
    EngineError::CorruptIndex(msg.into())
}

impl HnswIndex {
    /// Serializes the index (vectors, graph, id map, tombstones, parameters) into one buffer:
    /// a 64-byte header, little-endian arrays, and a CRC-32 trailer. Concurrent inserts wait
    /// while it runs; searches do not.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // `io::Write` for `Vec<u8>` never fails.
        let _ = self.write_to(&mut out, false);
        out
    }

    /// Streams the bytes of [`to_bytes`](Self::to_bytes) into `w` in pieces of at most 64 KiB
    /// (the CRC computed as they go), so a caller can store them without holding the whole
    /// serialization; with `framed`, first the length of those bytes (u64 LE). Returns that
    /// length. Concurrent inserts wait while it runs; searches do not.
    pub fn write_to(&self, w: &mut dyn std::io::Write, framed: bool) -> std::io::Result<u64> {
        let g = self.graph.read();
        let n = g.len();
        let upper_words: usize = g.upper.iter().map(|b| b.len()).sum();
        let total = HEADER_LEN
            + n * self.dim * 4
            + n * 8
            + n
            + n.div_ceil(64) * 8
            + g.layer0.len() * 4
            + upper_words * 4
            + g.inv_norms.len() * 4
            + 4;
        if framed {
            w.write_all(&(total as u64).to_le_bytes())?;
        }
        let mut out = Staged::new(w, total);
        out.put(MAGIC)?;
        out.put(&FORMAT_VERSION.to_le_bytes())?;
        let flags = if self.holds_given {
            FLAG_HOLDS_GIVEN
        } else {
            0
        };
        out.put(&[self.metric.code(), flags, 0, 0])?;
        for v in [
            self.dim,
            self.params.m,
            self.params.ef_construction,
            self.params.ef_search,
        ] {
            out.put(&(v as u32).to_le_bytes())?;
        }
        out.put(&self.params.seed.to_le_bytes())?;
        out.put(&(n as u64).to_le_bytes())?;
        out.put(&self.entry.load(Ordering::Acquire).to_le_bytes())?;
        out.put(&(upper_words as u64).to_le_bytes())?;
        debug_assert_eq!(out.written(), HEADER_LEN);
        for i in 0..n {
            for x in g.store.row(i) {
                out.put(&x.to_le_bytes())?;
            }
        }
        for r in &g.row_ids {
            out.put(&r.to_le_bytes())?;
        }
        out.put(&g.levels)?;
        for w in &g.tombstones {
            out.put(&w.load(Ordering::Acquire).to_le_bytes())?;
        }
        for w in g.layer0.iter().chain(g.upper.iter().flat_map(|b| b.iter())) {
            out.put(&w.load(Ordering::Acquire).to_le_bytes())?;
        }
        for x in &g.inv_norms {
            out.put(&x.to_le_bytes())?;
        }
        let written = out.finish()?;
        debug_assert_eq!(written, total);
        Ok(total as u64)
    }

    /// Loads an index written by [`HnswIndex::to_bytes`]. Corrupt or truncated input gives
    /// [`EngineError::CorruptIndex`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_LEN + 4 {
            return Err(corrupt("shorter than the header"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if &body[..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let stored_crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != stored_crc {
            return Err(corrupt("checksum mismatch"));
        }
        let mut r = Reader { buf: body, pos: 8 };
        let version = r.u32()?;
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(corrupt(format!("unsupported format version {version}")));
        }
        let metric_word = r.take(4)?;
        let (metric_code, flags) = (metric_word[0], metric_word[1]);
        let metric = Metric::from_code(metric_code)
            .ok_or_else(|| corrupt(format!("unknown metric code {metric_code}")))?;
        if flags & !FLAG_HOLDS_GIVEN != 0 || (version == 1 && flags != 0) {
            return Err(corrupt(format!("unknown header flags {flags:#x}")));
        }
        let cosine = metric == Metric::Cosine;
        // Version 1 normalised cosine vectors; every other metric always kept them as given.
        let holds_given = if version == 1 {
            !cosine
        } else {
            flags & FLAG_HOLDS_GIVEN != 0
        };
        let norms_stored = cosine && version >= 2;
        let dim = r.u32()? as usize;
        let params = HnswParams {
            m: r.u32()? as usize,
            ef_construction: r.u32()? as usize,
            ef_search: r.u32()? as usize,
            seed: r.u64()?,
        };
        params
            .validate()
            .map_err(|e| corrupt(format!("bad parameters: {e}")))?;
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(corrupt(format!("bad dimension {dim}")));
        }
        let n = usize::try_from(r.u64()?).map_err(|_| corrupt("node count overflows"))?;
        let entry = r.u64()?;
        let upper_words =
            usize::try_from(r.u64()?).map_err(|_| corrupt("upper word count overflows"))?;
        if n > MAX_NODES {
            return Err(corrupt(format!("node count {n} too large")));
        }
        let stride0 = 1 + 2 * params.m;
        // Every section's size, checked against what is left before anything is allocated.
        let expected = [
            n.checked_mul(dim).and_then(|x| x.checked_mul(4)),
            n.checked_mul(8),
            Some(n),
            Some(n.div_ceil(64) * 8),
            n.checked_mul(stride0).and_then(|x| x.checked_mul(4)),
            upper_words.checked_mul(4),
            if norms_stored {
                n.checked_mul(4)
            } else {
                Some(0)
            },
        ]
        .into_iter()
        .try_fold(0usize, |acc, x| x.and_then(|x| acc.checked_add(x)))
        .ok_or_else(|| corrupt("section sizes overflow"))?;
        if expected != r.remaining() {
            return Err(corrupt(format!(
                "length mismatch: header implies {expected} bytes of sections, found {}",
                r.remaining()
            )));
        }

        let mut store = VectorStore::with_capacity(dim, n);
        let vec_bytes = r.take(n * dim * 4)?;
        for row in vec_bytes.chunks_exact(dim * 4) {
            store.push_le_bytes(row);
        }
        for i in 0..n {
            if let Some(j) = store.row(i).iter().position(|x| !x.is_finite()) {
                return Err(corrupt(format!("vector {i} component {j} is not finite")));
            }
        }
        let row_ids: Vec<u64> = r
            .take(n * 8)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        let levels = r.take(n)?.to_vec();
        if let Some(l) = levels.iter().find(|&&l| l as usize > MAX_LEVEL) {
            return Err(corrupt(format!("level {l} above the maximum")));
        }
        let level_words: usize = levels.iter().map(|&l| l as usize * (1 + params.m)).sum();
        if level_words != upper_words {
            return Err(corrupt("upper-layer size disagrees with the levels"));
        }
        let tombstones: Vec<AtomicU64> = r
            .take(n.div_ceil(64) * 8)?
            .chunks_exact(8)
            .map(|c| {
                AtomicU64::new(u64::from_le_bytes([
                    c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
                ]))
            })
            .collect();
        let layer0 = decode_words(r.take(n * stride0 * 4)?);
        let upper_flat = decode_words(r.take(upper_words * 4)?);
        let mut upper = Vec::with_capacity(n);
        let mut words = upper_flat.into_iter();
        for &l in &levels {
            let len = l as usize * (1 + params.m);
            upper.push(words.by_ref().take(len).collect::<Box<[AtomicU32]>>());
        }
        let inv_norms = if norms_stored {
            let norms: Vec<f32> = r
                .take(n * 4)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            // A norm is a pure function of its vector; the CRC guards the bytes, this the shape
            // (`NaN` marks an out-of-range norm, see `distance::inv_norm`).
            if let Some(i) = norms.iter().position(|x| x.is_infinite() || *x < 0.0) {
                return Err(corrupt(format!("inverse norm {i} is {}", norms[i])));
            }
            norms
        } else if cosine {
            // Version 1: computed from the (normalised) vectors, so 1 up to rounding.
            (0..n).map(|i| inv_norm(store.row(i))).collect()
        } else {
            Vec::new()
        };
        let graph = Graph {
            store,
            inv_norms,
            cosine,
            layer0,
            upper,
            levels,
            row_ids,
            tombstones,
            pending: Vec::new(),
            m: params.m,
        };
        check_graph(&graph)?;
        match unpack_entry(entry) {
            None if n == 0 => {}
            Some((node, level)) if (node as usize) < n && graph.level(node) == level => {}
            _ if entry == NO_ENTRY => return Err(corrupt("non-empty index without entry point")),
            _ => return Err(corrupt("entry point out of range")),
        }
        let index = HnswIndex::from_parts(dim, metric, params, graph, entry, n, holds_given);
        if index.id_map.lock().len() != index.len() {
            return Err(corrupt("duplicate live row ids"));
        }
        Ok(index)
    }
}

/// Every list's count within its degree bound and every id a node.
/// Bytes staged between the serializer's many small writes and its sink: passed on in pieces
/// of [`STAGE_BYTES`], each folded into the CRC-32 that [`finish`](Staged::finish) appends.
struct Staged<'a> {
    sink: &'a mut dyn std::io::Write,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    written: usize,
}

/// Size of the pieces [`Staged`] passes to its sink.
const STAGE_BYTES: usize = 64 << 10;

impl<'a> Staged<'a> {
    fn new(sink: &'a mut dyn std::io::Write, total: usize) -> Self {
        Staged {
            sink,
            buf: Vec::with_capacity(total.min(STAGE_BYTES)),
            crc: crc32fast::Hasher::new(),
            written: 0,
        }
    }

    #[inline]
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        if self.buf.len() + b.len() > STAGE_BYTES {
            self.pass_on()?;
            if b.len() >= STAGE_BYTES {
                // A big array (the levels) goes straight through.
                self.crc.update(b);
                self.sink.write_all(b)?;
                self.written += b.len();
                return Ok(());
            }
        }
        self.buf.extend_from_slice(b);
        Ok(())
    }

    fn pass_on(&mut self) -> std::io::Result<()> {
        self.crc.update(&self.buf);
        self.sink.write_all(&self.buf)?;
        self.written += self.buf.len();
        self.buf.clear();
        Ok(())
    }

    /// Bytes put so far.
    fn written(&self) -> usize {
        self.written + self.buf.len()
    }

    /// Passes on the rest and the CRC-32 trailer; returns the bytes written in all.
    fn finish(mut self) -> std::io::Result<usize> {
        self.pass_on()?;
        let crc = self.crc.clone().finalize();
        self.sink.write_all(&crc.to_le_bytes())?;
        Ok(self.written + 4)
    }
}

fn check_graph(g: &Graph) -> Result<()> {
    let n = g.len();
    for node in 0..n as u32 {
        for layer in 0..=g.level(node) {
            let list = g.list(node, layer);
            let Some((count, ids)) = list.split_first() else {
                return Err(corrupt(format!("node {node} lacks layer {layer}")));
            };
            let count = count.load(Ordering::Relaxed) as usize;
            if count > ids.len() {
                return Err(corrupt(format!("node {node} degree {count} too large")));
            }
            if ids[..count]
                .iter()
                .any(|w| w.load(Ordering::Relaxed) as usize >= n)
            {
                return Err(corrupt(format!("node {node} links outside the graph")));
            }
        }
    }
    Ok(())
}

fn decode_words(bytes: &[u8]) -> Vec<AtomicU32> {
    bytes
        .chunks_exact(4)
        .map(|c| AtomicU32::new(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| corrupt("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
}
