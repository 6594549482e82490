//! Graph traversal shared by queries and inserts: greedy descent through the upper layers and
//! the best-first beam search of one layer (Malkov & Yashunin, Alg. 2).
//!
//! Per-query state lives in a thread-local [`Scratch`] that is reused across queries, so the
//! hot loop never allocates: a generation-stamped visited array (one `u16` per node, reset by
//! bumping the generation), a min-heap of candidates and a max-heap of results.

use std::cell::RefCell;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

use super::graph::Graph;
use crate::index::distance::{cosine_given, cosine_given_pair, normalize, Metric};
use crate::index::prefetch::{prefetch_lines, prefetch_words};

/// A node and its distance to the query; ordered by distance, then id (total order, NaN-safe).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cand {
    pub(crate) dist: f32,
    pub(crate) id: u32,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.id.cmp(&other.id))
    }
}

/// Generation-stamped visited set: `marks[i] == generation` means visited.
#[derive(Debug, Default)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    generation: u16,
}

impl Visited {
    /// Clears the set for a graph of `n` nodes in O(1) (amortised).
    pub(crate) fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `id`; returns true if it was not yet visited. Ids beyond the set count as visited.
    #[inline]
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        match self.marks.get_mut(id as usize) {
            Some(m) if *m != self.generation => {
                *m = self.generation;
                true
            }
            _ => false,
        }
    }
}

/// Reusable per-thread buffers for one traversal.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) visited: Visited,
    pub(crate) candidates: BinaryHeap<Reverse<Cand>>,
    pub(crate) results: BinaryHeap<Cand>,
    pub(crate) query: Vec<f32>,
    pub(crate) ids: Vec<u32>,
    pub(crate) batch: Vec<u32>,
    pub(crate) pool: Vec<Cand>,
    pub(crate) selected: Vec<Cand>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch, or with a fresh one if it is already borrowed (a filter
/// closure that itself searches an index would otherwise re-enter and panic).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Cache lines of each unvisited neighbour's vector prefetched before its distance is computed
/// (the whole vector up to 4 KiB, i.e. 1024 dims). Measured on 100k × 384 (wordnet-minilm):
/// prefetching whole vectors instead of the first two lines gave ~15–25% more QPS; search is
/// bound by memory latency, not by the kernel.
const PREFETCH_LINES_MAX: usize = 64;

/// How far ahead of the distance loop vectors are prefetched, in cache lines: while the
/// distance to neighbour `j` is computed, neighbour `j + a` is fetched, `a = 128 / lines per
/// vector` (5 vectors at 384 dims, 2 at 784, 32 at 64). Prefetching every neighbour at once
/// (up to 32 × 24 lines) overflowed the miss queues and stalled on the prefetches themselves;
/// measured on wordnet (100k × 384), 1 thread per CPU-s: +15–23% QPS against all-at-once,
/// fashion (10k × 784) on par or slightly better; a = 1 was worse, a = 12 (384 dims) too.
const PREFETCH_AHEAD_LINES: usize = 128;

/// Neighbours prefetched ahead of the distance loop for `dim`-dimensional vectors.
fn prefetch_ahead(dim: usize) -> usize {
    (PREFETCH_AHEAD_LINES / (dim * 4).div_ceil(64).max(1)).max(1)
}

/// Distance kernel on stored vectors.
pub(crate) type Kernel = fn(&[f32], &[f32]) -> f32;

/// How the graph measures distances: the CPU's kernel for the metric, and for cosine the
/// inner-product kernel (`−a·b`) scaled by the stored vectors' inverse norms, since vectors are
/// kept as given. A query is [`prepare`](Dist::prepare)d (normalised for cosine) once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dist {
    kernel: Kernel,
    cosine: bool,
}

impl Dist {
    /// The distance of `metric`, its kernel resolved for this CPU (once per search or link).
    pub(crate) fn new(metric: Metric) -> Self {
        let cosine = metric == Metric::Cosine;
        let kernel = if cosine {
            Metric::InnerProduct.stored_kernel()
        } else {
            metric.stored_kernel()
        };
        Dist { kernel, cosine }
    }

    /// Turns a query into the form [`Dist::to_vec`] takes: normalised for cosine.
    pub(crate) fn prepare(self, q: &mut [f32]) {
        if self.cosine {
            normalize(q);
        }
    }

    /// Distance from a prepared query to `v`, the stored vector of `id`.
    #[inline]
    pub(crate) fn to_vec(self, g: &Graph, q: &[f32], id: u32, v: &[f32]) -> f32 {
        let raw = (self.kernel)(q, v);
        if self.cosine {
            cosine_given(raw, g.inv_norm(id), q, v)
        } else {
            raw
        }
    }

    /// Distance from a prepared query to node `id`, if it exists.
    #[inline]
    pub(crate) fn to_node(self, g: &Graph, q: &[f32], id: u32) -> Option<f32> {
        let v = g.store.get(id as usize)?;
        Some(self.to_vec(g, q, id, v))
    }

    /// Distance between two stored nodes, if both exist.
    #[inline]
    pub(crate) fn between(self, g: &Graph, a: u32, b: u32) -> Option<f32> {
        let (x, y) = (g.store.get(a as usize)?, g.store.get(b as usize)?);
        let raw = (self.kernel)(x, y);
        Some(if self.cosine {
            cosine_given_pair(raw, g.inv_norm(a), g.inv_norm(b), x, y)
        } else {
            raw
        })
    }
}

/// Greedy walk at `layer` from `start` to a local minimum (ef = 1).
pub(crate) fn greedy(graph: &Graph, dist: Dist, q: &[f32], start: Cand, layer: usize) -> Cand {
    greedy_where(graph, dist, q, start, layer, |_| true)
}

/// [`greedy`] that only steps onto nodes `allow` accepts.
#[inline]
pub(crate) fn greedy_where(
    graph: &Graph,
    dist: Dist,
    q: &[f32],
    start: Cand,
    layer: usize,
    allow: impl Fn(u32) -> bool,
) -> Cand {
    let mut best = start;
    // Bounded: each step strictly lowers the distance, so at most n steps.
    for _ in 0..graph.len() {
        let mut changed = false;
        let list = graph.list(best.id, layer);
        let Some((count, ids)) = list.split_first() else {
            break;
        };
        let count = (count.load(Ordering::Acquire) as usize).min(ids.len());
        for w in &ids[..count] {
            let id = w.load(Ordering::Relaxed);
            if !allow(id) {
                continue;
            }
            let Some(d) = dist.to_node(graph, q, id) else {
                continue;
            };
            if d < best.dist {
                best = Cand { dist: d, id };
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    best
}

/// Beam search of one layer from `entry` (Alg. 2). On return `s.results` holds up to `ef`
/// nodes for which `accept` is true, nearest at the bottom of the max-heap. Nodes rejected by
/// `accept` (tombstoned, filtered out) are still traversed; nodes rejected by `expand` (being
/// linked by another insert) can be results but are not traversed.
#[allow(clippy::too_many_arguments)] // Hot path: plain arguments, no context struct to unpack.
pub(crate) fn search_layer(
    graph: &Graph,
    dist: Dist,
    q: &[f32],
    entry: Cand,
    ef: usize,
    layer: usize,
    accept: &mut impl FnMut(u32) -> bool,
    expand: impl Fn(u32) -> bool,
    s: &mut Scratch,
) {
    let ef = ef.max(1);
    let ahead = prefetch_ahead(q.len());
    s.visited.reset(graph.len());
    s.candidates.clear();
    s.results.clear();
    s.visited.insert(entry.id);
    s.candidates.push(Reverse(entry));
    if accept(entry.id) {
        s.results.push(entry);
    }
    while let Some(Reverse(c)) = s.candidates.pop() {
        let worst = s.results.peek().map_or(f32::INFINITY, |w| w.dist);
        if c.dist > worst && s.results.len() >= ef {
            break;
        }
        let list = graph.list(c.id, layer);
        let Some((count, ids)) = list.split_first() else {
            continue;
        };
        let count = (count.load(Ordering::Acquire) as usize).min(ids.len());
        // Pass 1: mark the unvisited neighbours and prefetch the first `ahead` vectors.
        s.batch.clear();
        for w in &ids[..count] {
            let id = w.load(Ordering::Relaxed);
            if s.visited.insert(id) {
                if let Some(v) = graph.store.get(id as usize) {
                    if s.batch.len() < ahead {
                        prefetch_lines(v, PREFETCH_LINES_MAX);
                    }
                    s.batch.push(id);
                }
            }
        }
        // Pass 2: distances, keeping `ahead` vectors in flight.
        for j in 0..s.batch.len() {
            if let Some(v) = s
                .batch
                .get(j + ahead)
                .and_then(|&n| graph.store.get(n as usize))
            {
                prefetch_lines(v, PREFETCH_LINES_MAX);
            }
            let id = s.batch[j];
            let Some(v) = graph.store.get(id as usize) else {
                continue;
            };
            let d = dist.to_vec(graph, q, id, v);
            let worst = s.results.peek().map_or(f32::INFINITY, |w| w.dist);
            if s.results.len() < ef || d < worst {
                let cand = Cand { dist: d, id };
                if expand(id) {
                    s.candidates.push(Reverse(cand));
                    if layer == 0 {
                        prefetch_words(graph.list(id, 0));
                    }
                }
                if accept(id) {
                    s.results.push(cand);
                    if s.results.len() > ef {
                        s.results.pop();
                    }
                }
            }
        }
    }
}
