//! HNSW graph index of one segment: construction (incremental and parallel), deletes, search
//! and serialization. See the crate-level [`crate::index`] docs for the layout and the
//! concurrency model.

mod graph;
mod insert;
mod query;
mod repair;
pub(crate) mod search;
mod serialize;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::error::{EngineError, Result};
use crate::index::distance::{normalize, Metric};
use crate::index::validate_vector;
use graph::{Graph, MAX_LEVEL};

/// Largest accepted `m`.
pub const MAX_M: usize = 256;
/// Largest accepted `ef_construction` / `ef_search`.
pub const MAX_EF: usize = 10_000;
/// Largest accepted dimension.
pub const MAX_DIM: usize = 65_536;
/// Largest number of nodes in one segment (ids are `u32`; `u32::MAX` is reserved).
pub const MAX_NODES: usize = u32::MAX as usize - 1;
/// Rows preallocated at most by `with_capacity`; beyond that storage grows by doubling.
const MAX_PREALLOC_ROWS: usize = 1 << 22;
/// Number of neighbour-list write locks (lock striping by node id).
const STRIPES: usize = 1024;
/// Packed entry point meaning "empty graph".
const NO_ENTRY: u64 = u64::MAX;

/// HNSW construction and search parameters (pgvector's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Max neighbours per node on layers ≥ 1; layer 0 allows `2m`. Range 2..=256.
    pub m: usize,
    /// Beam width while inserting. Range 1..=10 000.
    pub ef_construction: usize,
    /// Default beam width of searches (`SET hnsw.ef_search`). Range 1..=10 000.
    pub ef_search: usize,
    /// Seed of the level generator: equal seeds and insertion orders give equal graphs.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 64,
            ef_search: 40,
            seed: 0x5eed_5eed,
        }
    }
}

impl HnswParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: usize, reason| EngineError::InvalidParameter {
            name,
            value: value as u64,
            reason,
        };
        if !(2..=MAX_M).contains(&self.m) {
            return Err(bad("m", self.m, "must be in 2..=256"));
        }
        if !(1..=MAX_EF).contains(&self.ef_construction) {
            return Err(bad(
                "ef_construction",
                self.ef_construction,
                "must be in 1..=10000",
            ));
        }
        if !(1..=MAX_EF).contains(&self.ef_search) {
            return Err(bad("ef_search", self.ef_search, "must be in 1..=10000"));
        }
        Ok(())
    }
}

/// An HNSW index over the vectors of one segment, mapping internal `u32` node ids to external
/// `u64` row ids. All methods take `&self`: inserts, deletes and searches may run concurrently
/// from many threads.
#[derive(Debug)]
pub struct HnswIndex {
    dim: usize,
    metric: Metric,
    params: HnswParams,
    /// Vectors, lists, levels, ids, tombstones. Write-locked only to append nodes.
    graph: RwLock<Graph>,
    /// Serialises read-modify-write of a node's neighbour lists (`node % STRIPES`).
    stripes: Box<[Mutex<()>]>,
    /// `(level << 32) | node`, or `NO_ENTRY`.
    entry: AtomicU64,
    /// Live row id → node. Removed on delete, so a row id can be inserted again.
    id_map: Mutex<HashMap<u64, u32>>,
    /// Level generator, seeded from `params.seed`.
    rng: Mutex<StdRng>,
    deleted: AtomicUsize,
    /// Whether vectors are stored as given (see [`HnswIndex::holds_given`]); false only for a
    /// cosine graph loaded from format version 1, whose vectors are normalised.
    holds_given: bool,
}

impl HnswIndex {
    /// An empty index for `dim`-dimensional vectors.
    pub fn new(dim: usize, metric: Metric, params: HnswParams) -> Result<Self> {
        Self::with_capacity(dim, metric, params, 0)
    }

    /// An empty index with room for `capacity` vectors before storage grows (the hint is capped
    /// at 4M rows so a bad hint cannot allocate unbounded memory).
    pub fn with_capacity(
        dim: usize,
        metric: Metric,
        params: HnswParams,
        capacity: usize,
    ) -> Result<Self> {
        params.validate()?;
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(EngineError::InvalidParameter {
                name: "dim",
                value: dim as u64,
                reason: "must be in 1..=65536",
            });
        }
        let graph = Graph::with_capacity(
            dim,
            params.m,
            capacity.min(MAX_PREALLOC_ROWS),
            metric == Metric::Cosine,
        );
        Ok(Self::from_parts(
            dim, metric, params, graph, NO_ENTRY, 0, true,
        ))
    }

    fn from_parts(
        dim: usize,
        metric: Metric,
        params: HnswParams,
        graph: Graph,
        entry: u64,
        rng_draws: usize,
        holds_given: bool,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(params.seed);
        // Keep the generator's position so a loaded index draws the same levels next.
        for _ in 0..rng_draws {
            let _: f64 = rng.random();
        }
        let mut id_map = HashMap::with_capacity(graph.len());
        let mut deleted = 0;
        for (node, &row) in graph.row_ids.iter().enumerate() {
            if graph.is_deleted(node as u32) {
                deleted += 1;
            } else {
                id_map.insert(row, node as u32);
            }
        }
        HnswIndex {
            dim,
            metric,
            params,
            graph: RwLock::new(graph),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            entry: AtomicU64::new(entry),
            id_map: Mutex::new(id_map),
            rng: Mutex::new(rng),
            deleted: AtomicUsize::new(deleted),
            holds_given,
        }
    }

    /// Builds an index from `row_ids.len()` vectors stored row-major in `vectors`, linking
    /// nodes in parallel on rayon's pool, then [`HnswIndex::reorder`]s it. Levels are drawn
    /// from the seed in row order, so they are reproducible; the exact edges depend on thread
    /// interleaving.
    pub fn build(
        dim: usize,
        metric: Metric,
        params: HnswParams,
        row_ids: &[u64],
        vectors: &[f32],
    ) -> Result<Self> {
        let mut index = Self::with_capacity(dim, metric, params, row_ids.len())?;
        index.insert_batch(row_ids, vectors)?;
        index.reorder();
        Ok(index)
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Distance metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Construction and search parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Number of live (not deleted) rows.
    pub fn len(&self) -> usize {
        self.node_count() - self.deleted_count()
    }

    /// Whether there are no live rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of graph nodes, tombstoned ones included.
    pub fn node_count(&self) -> usize {
        self.graph.read().len()
    }

    /// Number of tombstoned nodes.
    pub fn deleted_count(&self) -> usize {
        self.deleted.load(Ordering::Acquire)
    }

    /// Whether `row_id` is a live row of this index.
    pub fn contains(&self, row_id: u64) -> bool {
        self.id_map.lock().contains_key(&row_id)
    }

    /// Whether the index holds every vector bit for bit as inserted, so [`HnswIndex::vector`]
    /// gives it back. True for every index built or created by this version, whatever the
    /// metric (cosine graphs keep an inverse norm per node beside the vector as given). False
    /// only for a cosine index loaded from a format-version-1 blob: it holds the vectors
    /// normalised, and keeps normalising the vectors inserted into it, so that all its nodes
    /// are alike (their inverse norms are then 1 up to rounding).
    pub fn holds_given(&self) -> bool {
        self.holds_given
    }

    /// The stored vector of a live row: as inserted when [`HnswIndex::holds_given`], else (an
    /// old cosine graph) unit-normalised. May be called from a filter during a search of this
    /// very index (see [`HnswIndex::vector_into`]).
    pub fn vector(&self, row_id: u64) -> Option<Vec<f32>> {
        let node = self.node_of(row_id)?;
        self.graph
            .read_recursive()
            .store
            .get(node as usize)
            .map(<[f32]>::to_vec)
    }

    /// [`HnswIndex::vector`] into `out` (replacing its contents, reusing its allocation).
    /// Returns whether the row is a live row of this index (`out` is left empty otherwise).
    ///
    /// Safe from a filter running inside a search of this index, which holds the graph's read
    /// lock while an inserter may be waiting for the write lock: the id map is released before
    /// the graph is locked (no inserter waits for it while holding it), and the graph is
    /// read-locked with `read_recursive`, which does not queue behind a waiting writer (a plain
    /// `read` would wait for the writer, which waits for the search: a deadlock).
    pub fn vector_into(&self, row_id: u64, out: &mut Vec<f32>) -> bool {
        out.clear();
        let Some(node) = self.node_of(row_id) else {
            return false;
        };
        match self.graph.read_recursive().store.get(node as usize) {
            Some(v) => {
                out.extend_from_slice(v);
                true
            }
            None => false,
        }
    }

    /// The node of a live row. The id map is held only for the lookup: it is a leaf lock,
    /// never held while another lock is taken. A node id is never reused (nodes are only
    /// appended; `reorder` takes `&mut self`), so the node still holds the row's vector after a
    /// concurrent delete.
    fn node_of(&self, row_id: u64) -> Option<u32> {
        self.id_map.lock().get(&row_id).copied()
    }

    /// Inserts one row. Safe to call while other threads search, insert or delete.
    pub fn insert(&self, row_id: u64, vector: &[f32]) -> Result<()> {
        validate_vector(self.dim, vector)?;
        let stored = self.stored_form(vector);
        let node = {
            // Graph first, then the id map (a leaf lock): never wait for the graph while
            // holding the id map, which a filter inside a search of this graph may need.
            let mut g = self.graph.write();
            let mut ids = self.id_map.lock();
            if ids.contains_key(&row_id) {
                return Err(EngineError::DuplicateRowId(row_id));
            }
            let level = self.draw_level();
            if g.len() >= MAX_NODES {
                return Err(EngineError::SegmentFull(g.len()));
            }
            let node = g.push(row_id, &stored, level);
            g.mark_pending(node);
            ids.insert(row_id, node);
            node
        };
        let g = self.graph.read();
        search::with_scratch(|s| self.link(&g, node, s));
        Ok(())
    }

    /// Inserts many rows (`vectors` row-major, `row_ids.len() × dim` floats): appends all
    /// vectors under one write lock, then links them in parallel with rayon. All rows are
    /// validated before any is added.
    pub fn insert_batch(&self, row_ids: &[u64], vectors: &[f32]) -> Result<()> {
        use rayon::prelude::*;
        if row_ids.len().checked_mul(self.dim) != Some(vectors.len()) {
            return Err(EngineError::BulkLengthMismatch {
                rows: row_ids.len(),
                values: vectors.len(),
                dim: self.dim,
            });
        }
        for v in vectors.chunks_exact(self.dim) {
            validate_vector(self.dim, v)?;
        }
        let (first, end) = {
            // Lock order as in `insert`: graph, then the id map.
            let mut g = self.graph.write();
            let mut ids = self.id_map.lock();
            let mut seen = std::collections::HashSet::with_capacity(row_ids.len());
            for &r in row_ids {
                if ids.contains_key(&r) || !seen.insert(r) {
                    return Err(EngineError::DuplicateRowId(r));
                }
            }
            if g.len() + row_ids.len() > MAX_NODES {
                return Err(EngineError::SegmentFull(g.len()));
            }
            g.reserve(row_ids.len());
            let first = g.len();
            let mut buf = Vec::with_capacity(self.dim);
            for (&r, v) in row_ids.iter().zip(vectors.chunks_exact(self.dim)) {
                buf.clear();
                buf.extend_from_slice(v);
                if !self.holds_given {
                    normalize(&mut buf);
                }
                let level = self.draw_level();
                let node = g.push(r, &buf, level);
                g.mark_pending(node);
                ids.insert(r, node);
            }
            (first, g.len())
        };
        let g = self.graph.read();
        let g: &Graph = &g;
        // Link the first node alone so the parallel phase starts from an entry point.
        let mut start = first;
        if first < end && self.entry.load(Ordering::Acquire) == NO_ENTRY {
            search::with_scratch(|s| self.link(g, first as u32, s));
            start = first + 1;
        }
        // Link in a shuffled order. Rayon splits a range into contiguous blocks, one per thread;
        // on rows sorted along a direction (an import in key order) the threads would then
        // grow separate runs of one region that never link across the seam between them,
        // leaving rows no search can reach. Shuffled, the nodes linked at the same moment are
        // scattered, as in the random insertion order HNSW assumes.
        let mut order: Vec<u32> = (start as u32..end as u32).collect();
        order.shuffle(&mut StdRng::seed_from_u64(self.params.seed ^ first as u64));
        order
            .par_iter()
            .for_each(|&node| search::with_scratch(|s| self.link(g, node, s)));
        let attached = self.repair_reachability(g);
        tracing::debug!(rows = row_ids.len(), attached, "hnsw batch insert linked");
        Ok(())
    }

    /// Renumbers the nodes in breadth-first order of layer 0 from the entry point, so that
    /// graph neighbours are stored near each other and a search touches fewer cache lines and
    /// pages. Results are unchanged (row ids are external; only internal ids move). Takes
    /// `&mut self` because it rebuilds every array: call it when a segment is sealed;
    /// [`HnswIndex::build`] already does. O(n · m) time, one extra copy of the index in memory.
    pub fn reorder(&mut self) {
        let Some((entry, level)) = unpack_entry(*self.entry.get_mut()) else {
            return;
        };
        let graph = self.graph.get_mut();
        let (reordered, old_to_new) = graph.reordered(entry);
        *graph = reordered;
        let new_entry = old_to_new.get(entry as usize).copied().unwrap_or(0);
        *self.entry.get_mut() = pack_entry(new_entry, level);
        let ids = self.id_map.get_mut();
        ids.clear();
        for (node, &row) in graph.row_ids.iter().enumerate() {
            if !graph.is_deleted(node as u32) {
                ids.insert(row, node as u32);
            }
        }
        tracing::debug!(nodes = graph.len(), "hnsw reordered for locality");
    }

    /// Tombstones `row_id`: it is never returned again but its node still routes searches.
    /// Returns whether the row was live.
    pub fn delete(&self, row_id: u64) -> bool {
        // The id map is released before the graph is locked (it is a leaf lock).
        let Some(node) = self.id_map.lock().remove(&row_id) else {
            return false;
        };
        if self.graph.read().mark_deleted(node) {
            self.deleted.fetch_add(1, Ordering::AcqRel);
        }
        true
    }

    /// The vector as the index stores it: as given, except in an old cosine graph (see
    /// [`HnswIndex::holds_given`]).
    fn stored_form(&self, v: &[f32]) -> Vec<f32> {
        let mut out = v.to_vec();
        if !self.holds_given {
            normalize(&mut out);
        }
        out
    }

    /// Draws a level: ⌊−ln(U) / ln(m)⌋, capped at `MAX_LEVEL`.
    fn draw_level(&self) -> usize {
        let u: f64 = self.rng.lock().random();
        let ml = 1.0 / (self.params.m as f64).ln();
        let level = (-(1.0 - u).ln() * ml).floor();
        if level.is_finite() && level > 0.0 {
            (level as usize).min(MAX_LEVEL)
        } else {
            0
        }
    }

    fn stripe(&self, node: u32) -> parking_lot::MutexGuard<'_, ()> {
        self.stripes[node as usize % STRIPES].lock()
    }
}

fn pack_entry(node: u32, level: usize) -> u64 {
    ((level as u64) << 32) | u64::from(node)
}

fn unpack_entry(e: u64) -> Option<(u32, usize)> {
    (e != NO_ENTRY).then_some((e as u32, (e >> 32) as usize))
}
