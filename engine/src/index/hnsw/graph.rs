//! The graph's memory layout: vectors, neighbour lists, levels, id map and tombstones.
//!
//! * **Layer 0** is one flat `Vec<AtomicU32>` with a fixed stride of `1 + 2m` words per node:
//!   word 0 is the neighbour count, words `1..=count` the neighbour ids. Node `i`'s list starts
//!   at `i * (1 + 2m)`, so a search touches one contiguous run of words per expansion.
//! * **Upper layers** (levels `1..=level(i)`, only ~1/m of the nodes have any) are a boxed slice
//!   per node with the same `[count, ids...]` shape and a stride of `1 + m`.
//! * Words are atomics so searches can read lists while inserts rewrite them without locks:
//!   on x86_64 a relaxed `AtomicU32` load is a plain `mov`. Writers serialise per node through
//!   the index's lock stripes; they store the ids, then the count with `Release`; readers load
//!   the count with `Acquire`. A reader racing a rewrite may see a mix of old and new ids; each
//!   is a valid node id, so the search stays correct (ids are also bounds-checked).
//! * **Cosine** graphs keep one `f32` per node beside the vectors: the inverse norm of the
//!   vector, which is stored as given (see [`crate::index::distance::inv_norm`]).
//! * Tombstones are a bitset of `AtomicU64`, set by `delete` under the read lock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::index::distance::inv_norm;
use crate::index::store::VectorStore;

/// Highest level a node may get (the level generator is capped here).
pub(crate) const MAX_LEVEL: usize = 16;

/// Everything that grows when a node is added; lives behind the index's `RwLock`.
#[derive(Debug)]
pub(crate) struct Graph {
    pub(crate) store: VectorStore,
    /// Cosine graphs only (empty otherwise): [`inv_norm`] of each stored vector, so cosine
    /// distances are taken on the vectors as given (4 bytes per node).
    pub(crate) inv_norms: Vec<f32>,
    /// Whether the metric is cosine, i.e. `inv_norms` is kept.
    pub(crate) cosine: bool,
    pub(crate) layer0: Vec<AtomicU32>,
    pub(crate) upper: Vec<Box<[AtomicU32]>>,
    pub(crate) levels: Vec<u8>,
    pub(crate) row_ids: Vec<u64>,
    pub(crate) tombstones: Vec<AtomicU64>,
    /// Nodes added but not yet fully linked (one bit each; words past the end mean "linked").
    /// Their lists are still empty or partial, so inserts must not search from them.
    pub(crate) pending: Vec<AtomicU64>,
    /// `m`: max degree on upper layers; layer 0 allows `2m`.
    pub(crate) m: usize,
}

impl Graph {
    pub(crate) fn with_capacity(dim: usize, m: usize, capacity: usize, cosine: bool) -> Self {
        Graph {
            store: VectorStore::with_capacity(dim, capacity),
            inv_norms: Vec::with_capacity(if cosine { capacity } else { 0 }),
            cosine,
            layer0: Vec::with_capacity(capacity.saturating_mul(1 + 2 * m)),
            upper: Vec::with_capacity(capacity),
            levels: Vec::with_capacity(capacity),
            row_ids: Vec::with_capacity(capacity),
            tombstones: Vec::with_capacity(capacity.div_ceil(64)),
            pending: Vec::new(),
            m,
        }
    }

    /// Number of nodes (live and tombstoned).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.levels.len()
    }

    /// Words per layer-0 list.
    #[inline]
    pub(crate) fn stride0(&self) -> usize {
        1 + 2 * self.m
    }

    /// Words per upper-layer list.
    #[inline]
    pub(crate) fn stride_upper(&self) -> usize {
        1 + self.m
    }

    /// Maximum degree at `layer`.
    #[inline]
    pub(crate) fn max_degree(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// Appends a node with empty neighbour lists; returns its internal id.
    pub(crate) fn push(&mut self, row_id: u64, vector: &[f32], level: usize) -> u32 {
        let id = self.len();
        self.store.push(vector);
        if self.cosine {
            self.inv_norms.push(inv_norm(vector));
        }
        self.layer0
            .extend((0..self.stride0()).map(|_| AtomicU32::new(0)));
        let words = level * self.stride_upper();
        self.upper
            .push((0..words).map(|_| AtomicU32::new(0)).collect());
        self.levels.push(level as u8);
        self.row_ids.push(row_id);
        if id.is_multiple_of(64) {
            self.tombstones.push(AtomicU64::new(0));
        }
        id as u32
    }

    /// Reserves room for `additional` nodes.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.store.reserve(additional);
        if self.cosine {
            self.inv_norms.reserve(additional);
        }
        self.layer0.reserve(additional * self.stride0());
        self.upper.reserve(additional);
        self.levels.reserve(additional);
        self.row_ids.reserve(additional);
        self.tombstones.reserve(additional.div_ceil(64) + 1);
    }

    /// The `[count, ids...]` words of `node` at `layer`; empty if the node has no such layer.
    #[inline]
    pub(crate) fn list(&self, node: u32, layer: usize) -> &[AtomicU32] {
        let node = node as usize;
        if layer == 0 {
            let s = self.stride0();
            self.layer0.get(node * s..node * s + s).unwrap_or(&[])
        } else {
            let s = self.stride_upper();
            self.upper
                .get(node)
                .and_then(|b| b.get((layer - 1) * s..layer * s))
                .unwrap_or(&[])
        }
    }

    /// Copies the neighbours of `node` at `layer` into `out` (cleared first).
    #[inline]
    pub(crate) fn neighbours_into(&self, node: u32, layer: usize, out: &mut Vec<u32>) {
        out.clear();
        let list = self.list(node, layer);
        let Some((count, ids)) = list.split_first() else {
            return;
        };
        let count = (count.load(Ordering::Acquire) as usize).min(ids.len());
        out.extend(ids[..count].iter().map(|w| w.load(Ordering::Relaxed)));
    }

    /// Replaces the neighbours of `node` at `layer`. Caller holds the node's stripe lock.
    pub(crate) fn set_neighbours(&self, node: u32, layer: usize, ids: &[u32]) {
        let list = self.list(node, layer);
        let Some((count, slots)) = list.split_first() else {
            return;
        };
        let n = ids.len().min(slots.len());
        debug_assert!(ids.len() <= slots.len(), "degree above the maximum");
        debug_assert!(!ids.contains(&node), "self-link");
        // Shrinking: publish the smaller count first so readers never read past live ids.
        if (n as u32) < count.load(Ordering::Relaxed) {
            count.store(n as u32, Ordering::Release);
        }
        for (slot, &id) in slots.iter().zip(&ids[..n]) {
            slot.store(id, Ordering::Relaxed);
        }
        count.store(n as u32, Ordering::Release);
    }

    /// The inverse norm of `node`'s vector (cosine graphs; `1.0` elsewhere, unused there).
    #[inline]
    pub(crate) fn inv_norm(&self, node: u32) -> f32 {
        self.inv_norms.get(node as usize).copied().unwrap_or(1.0)
    }

    /// Level of `node`.
    #[inline]
    pub(crate) fn level(&self, node: u32) -> usize {
        self.levels.get(node as usize).map_or(0, |&l| l as usize)
    }

    #[inline]
    pub(crate) fn is_deleted(&self, node: u32) -> bool {
        let node = node as usize;
        self.tombstones
            .get(node / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (node % 64)) != 0)
    }

    /// Marks `node` as being linked (caller holds the write lock: the bitset may grow).
    pub(crate) fn mark_pending(&mut self, node: u32) {
        let word = node as usize / 64;
        if self.pending.len() <= word {
            self.pending.resize_with(word + 1, || AtomicU64::new(0));
        }
        self.pending[word].fetch_or(1 << (node % 64), Ordering::Relaxed);
    }

    /// Marks `node` as fully linked: from now on inserts may search from it.
    pub(crate) fn mark_linked(&self, node: u32) {
        if let Some(w) = self.pending.get(node as usize / 64) {
            w.fetch_and(!(1 << (node % 64)), Ordering::Release);
        }
    }

    /// Whether `node`'s lists are complete (it is not being linked).
    #[inline]
    pub(crate) fn is_linked(&self, node: u32) -> bool {
        self.pending
            .get(node as usize / 64)
            .is_none_or(|w| w.load(Ordering::Acquire) & (1 << (node % 64)) == 0)
    }

    /// Sets the tombstone of `node`; returns whether it was newly set.
    pub(crate) fn mark_deleted(&self, node: u32) -> bool {
        let node = node as usize;
        match self.tombstones.get(node / 64) {
            Some(w) => {
                let bit = 1u64 << (node % 64);
                w.fetch_or(bit, Ordering::AcqRel) & bit == 0
            }
            None => false,
        }
    }
}

impl Graph {
    /// A copy of the graph with nodes renumbered in breadth-first order from `entry` over
    /// layer 0 (nodes it cannot reach keep their relative order at the end), so neighbours
    /// tend to sit close together in memory: fewer cache and TLB misses per search. Returns
    /// the new graph and the old → new id map.
    pub(crate) fn reordered(&self, entry: u32) -> (Graph, Vec<u32>) {
        let n = self.len();
        let mut old_to_new = vec![u32::MAX; n];
        let mut order: Vec<u32> = Vec::with_capacity(n);
        let mut buf = Vec::new();
        let visit = |node: u32, order: &mut Vec<u32>, old_to_new: &mut Vec<u32>| {
            if let Some(slot) = old_to_new.get_mut(node as usize) {
                if *slot == u32::MAX {
                    *slot = order.len() as u32;
                    order.push(node);
                }
            }
        };
        if n > 0 {
            visit(entry.min(n as u32 - 1), &mut order, &mut old_to_new);
        }
        let mut head = 0;
        for start in 0..n as u32 {
            visit(start, &mut order, &mut old_to_new);
            while head < order.len() {
                let node = order[head];
                head += 1;
                self.neighbours_into(node, 0, &mut buf);
                for &nb in &buf {
                    visit(nb, &mut order, &mut old_to_new);
                }
            }
        }
        // `push` recomputes each inverse norm from the same vector: the same value.
        let mut g = Graph::with_capacity(self.store_dim(), self.m, n, self.cosine);
        for &old in &order {
            let level = self.level(old);
            let new = g.push(
                self.row_ids[old as usize],
                self.store.row(old as usize),
                level,
            );
            if self.is_deleted(old) {
                g.mark_deleted(new);
            }
        }
        for &old in &order {
            let new = old_to_new[old as usize];
            for layer in 0..=self.level(old) {
                self.neighbours_into(old, layer, &mut buf);
                for id in buf.iter_mut() {
                    *id = old_to_new.get(*id as usize).copied().unwrap_or(new);
                }
                buf.retain(|&id| id != new);
                g.set_neighbours(new, layer, &buf);
            }
        }
        (g, old_to_new)
    }

    fn store_dim(&self) -> usize {
        self.store.dim()
    }
}
