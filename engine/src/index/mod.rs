//! The vector index: one HNSW graph per segment, distances, exact search and serialization.
//!
//! # Main types
//!
//! | type | role |
//! |---|---|
//! | [`Metric`] | `L2` (squared), `Cosine` (`1 − cos`), `InnerProduct` (`−a·b`), `L1`; smaller is nearer |
//! | [`HnswIndex`] | the graph of one segment: `insert`/`insert_batch`/`build`, `delete`, `search`/`search_with`/`search_exact`, `to_bytes`/`from_bytes` |
//! | [`HnswParams`] | `m` (2..=256), `ef_construction` (1..=10 000), `ef_search` (1..=10 000), `seed` |
//! | [`RowFilter`] | predicate on `u64` row ids (any `Fn(u64) -> bool + Sync`) |
//! | [`SearchOptions`], [`SearchStrategy`] | `k`, `ef`, filter, selectivity estimate, plan override |
//! | [`exact_knn`] | batch brute force through faer's GEMM (ground truth, small segments) |
//! | [`distance`] | simsimd kernels and the [`distance::scalar`] reference |
//! | `simd` (private) | the search's AVX-512 / AVX2 dot and L2² kernels, chosen once per search |
//!
//! Errors are [`crate::EngineError`]: `DimensionMismatch`, `NonFiniteComponent`, `ZeroK`,
//! `InvalidParameter`, `DuplicateRowId`, `BulkLengthMismatch` (bad input), `SegmentFull`
//! (capacity), `CorruptIndex` (bytes). Nothing in this module panics on any input.
//!
//! ```
//! use vela_engine::index::{HnswIndex, HnswParams, Metric};
//! let index = HnswIndex::new(3, Metric::Cosine, HnswParams::default())?;
//! index.insert(10, &[1.0, 0.0, 0.0])?;
//! index.insert(11, &[0.0, 1.0, 0.0])?;
//! let even = |row: u64| row.is_multiple_of(2);
//! let hits = index.search(&[0.9, 0.1, 0.0], 5, 0, Some(&even))?;
//! assert_eq!(hits[0].0, 10);
//! # Ok::<(), vela_engine::EngineError>(())
//! ```
//!
//! # Layout
//!
//! * **Ids.** Nodes are numbered `0..n` in insertion order (`u32`); `row_ids[node]` is the
//!   external `u64` row id and a `HashMap<u64, u32>` maps live row ids back (deletes remove the
//!   entry, so a row id can be inserted again, e.g. by an `UPDATE`).
//! * **Vectors** (`store.rs`): one `Vec<f32>`, rows padded to a multiple of 16 floats and started
//!   on a 64-byte boundary (aligned offset computed from the buffer address, no `unsafe`).
//!   Vectors are stored **as given** for every metric ([`HnswIndex::holds_given`]), so
//!   [`HnswIndex::vector`] returns them bit for bit. Cosine graphs keep one `f32` per node
//!   beside them, the inverse norm `1/‖x‖` (computed in `f64`); queries are normalised once per
//!   search, and the distance is `1 − (q̂·x)·inv(x)` (between two nodes `1 − (x·y)·inv(x)·inv(y)`),
//!   one dot product and a multiply; returned distances are true cosine distances. A zero
//!   vector has inverse norm 0 and is at distance 1 from everything; a norm outside
//!   `[2⁻⁴⁰, 2⁴⁰]` (subnormal-sized or huge components) is marked `NaN` and its distances are
//!   computed exactly in `f64` (see [`distance::inv_norm`]). A cosine graph loaded from format
//!   version 1 holds normalised vectors (its inverse norms are 1) and keeps normalising the
//!   vectors inserted into it.
//! * **Layer 0**: one flat `Vec<AtomicU32>`, stride `1 + 2m` words per node (`[count, ids…]`);
//!   **upper layers**: a boxed `[count, ids…]` run of stride `1 + m` per level per node.
//! * **Tombstones**: a bitset; a deleted node is skipped in results but still traversed.
//! * Levels are `⌊−ln U / ln m⌋` (capped at 16) from a `StdRng` seeded with `params.seed`, drawn
//!   in insertion order: a sequential build with one seed is byte-for-byte reproducible.
//!
//! # Concurrency model
//!
//! Every method takes `&self`. The locks, in acquisition order:
//!
//! 1. `graph: RwLock<Graph>` — **write**-locked only to append nodes (a memcpy of the vector plus
//!    empty lists; amortised O(dim), a reallocation copy when the buffer doubles). Everything else
//!    — searches, linking new nodes, deletes, serialization — holds it for **read**.
//! 2. `id_map: Mutex<HashMap>` — a leaf: held by `insert` (duplicate check + push, inside the
//!    write lock), by `delete` and by the vector and membership lookups, and never while
//!    another lock is taken; never by searches.
//! 3. `stripes: [Mutex<()>; 1024]` — a node's neighbour lists are rewritten under the stripe
//!    `node % 1024`; a linker holds one stripe at a time, so there is no lock cycle.
//!
//! **Vector reads** (`vector`, `vector_into`) may come from a filter running inside a search of
//! the same index (the engine fetches vectors that rows leave to the graph), i.e. from a thread
//! that already holds the graph's read lock while an inserter may be waiting for the write
//! lock. So they look the node up and release the id map first (an inserter holding it never
//! waits for the graph), then read the graph with `read_recursive`, which does not queue
//! behind a waiting writer (a plain `read` would: parking_lot's `RwLock` is fair, and the
//! writer waits for the search). Test: `tests/index/concurrency.rs`,
//! `filters_read_vectors_of_the_searched_index_while_it_grows` (hung before).
//!
//! Neighbour-list words are atomics: readers load the count (`Acquire`) and ids (`Relaxed`)
//! without any lock, so **searches never wait for a linker**; they wait only while a node is
//! being appended (parking_lot's fair `RwLock` lets a pending appender in before new readers, so
//! that is at most one in-flight search/link plus the append). A reader racing a rewrite may see
//! a mix of old and new ids — all valid nodes — which can cost a little recall on that query
//! but never correctness. The entry point is an `AtomicU64` (`level << 32 | node`), raised by
//! compare-and-swap. `insert` = append (write lock) then link (read lock): Alg. 1 of Malkov &
//! Yashunin with the Alg. 4 heuristic (`keepPrunedConnections`, refilling pruned lists only
//! up to `m` so a pruned layer-0 list, max `2m`, takes later back-links as plain appends).
//! `insert_batch`/`build` append all vectors under one write lock, link the first node, then
//! link the rest in parallel on rayon's pool (levels reproducible, edges depend on interleaving).
//!
//! Per-query state (visited generation array, candidate/result heaps, normalised query) is a
//! thread-local reused across queries; the hot loop does not allocate.
//!
//! # Filtered search
//!
//! A search accepts a node iff it is not tombstoned and passes the filter. The planner
//! ([`filter`]) estimates the accepted fraction `s`: exactly `live / n` without a filter; the
//! caller's `SearchOptions::selectivity × live / n` when given; else by evaluating the filter on
//! 256 nodes spread over the id range. It then compares the costs (in distance computations)
//! `exact = s·live + 0.05·live` and `graph = 10 · ef_eff / s` with `ef_eff = min(ef / √s, 16·ef)`
//! and runs the cheaper:
//!
//! * **exact**: scan all nodes, distance only for accepted ones, bounded heap of `k`;
//! * **graph**: the usual descent, then a layer-0 beam search that *traverses every node* but
//!   puts only accepted ones in the result heap of size `ef_eff`; non-accepted nodes still
//!   enter the candidate queue while nearer than the worst accepted result.
//!
//! For example at `ef = 64`: 1M rows → exact below ~2% selectivity; 20k rows → exact below
//! ~25%. Tiny segments (`live ≲ 10·ef`) are always searched exactly. Tests hold recall@10 ≥ 0.95
//! at 1%, 10%, 50% for filters correlated with the clusters and uncorrelated ones.
//!
//! # Serialization format (version 2, little-endian; version 1 still loads)
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `VELAHNSW` |
//! | 4 | format version (`u32`, 2) |
//! | 4 | metric code (`u8`: 0 L2, 1 cosine, 2 inner product, 3 L1), flags (`u8`, bit 0: vectors held as given; 0 in version 1), 2 zero bytes |
//! | 4 × 4 | `dim`, `m`, `ef_construction`, `ef_search` (`u32`) |
//! | 8 | seed (`u64`) |
//! | 8 | node count `n` (`u64`) |
//! | 8 | entry point (`u64`, `level << 32 \| node`, all ones if empty) |
//! | 8 | upper-layer word count `u` (`u64`) |
//! | `n·dim·4` | vectors (`f32`, as given, unpadded; normalised in an old cosine graph) |
//! | `n·8` | row ids (`u64`) |
//! | `n` | levels (`u8`) |
//! | `⌈n/64⌉·8` | tombstone bitset (`u64` words) |
//! | `n·(1+2m)·4` | layer-0 lists (`u32`: count, then `2m` id slots) |
//! | `u·4` | upper-layer lists of every node in order, `level·(1+m)` words each |
//! | `n·4` | cosine only, version ≥ 2: inverse norms (`f32`; 0 for a zero vector, `NaN` out of range) |
//! | 4 | CRC-32 (IEEE, crc32fast) of everything before |
//!
//! One sequential pass each way; the reader checks the CRC, then every section length against
//! the bytes that are left (with overflow checks) before allocating, then bulk-decodes and
//! validates levels, degrees, ids, the entry point, finiteness and unique live row ids. The
//! buffer can be split into chunks of any size for storage and concatenated back for loading.

pub mod distance;
pub mod exact;
pub mod filter;
pub mod hnsw;
mod prefetch;
mod simd;
mod store;

pub use distance::Metric;
pub use exact::{exact_knn, exact_knn_scalar};
pub use filter::{RowFilter, SearchOptions, SearchStrategy};
pub use hnsw::{HnswIndex, HnswParams};

use crate::error::{EngineError, Result};

/// Checks a vector's length and that every component is finite.
pub(crate) fn validate_vector(dim: usize, v: &[f32]) -> Result<()> {
    if v.len() != dim {
        return Err(EngineError::DimensionMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(EngineError::NonFiniteComponent { index, value });
    }
    Ok(())
}
