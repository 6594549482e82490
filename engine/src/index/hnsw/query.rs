//! Queries: validation, planning (exact vs. filter-aware traversal) and result assembly.

use std::sync::atomic::Ordering;

use super::graph::Graph;
use super::search::{greedy, search_layer, with_scratch, Cand, Dist, Scratch};
use super::{unpack_entry, HnswIndex};
use crate::error::{EngineError, Result};
use crate::index::filter::{
    plan, Plan, RowFilter, SearchOptions, SearchStrategy, SELECTIVITY_SAMPLE,
};
use crate::index::validate_vector;

impl HnswIndex {
    /// The `k` live rows nearest to `query`, nearest first, as `(row_id, distance)`.
    ///
    /// `ef` is the beam width (0 = the index's `ef_search`); `filter`, if given, restricts the
    /// results to rows it accepts. Errors on a dimension mismatch, a non-finite component or
    /// `k == 0`; a `k` above the row count returns every live (matching) row.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn RowFilter>,
    ) -> Result<Vec<(u64, f32)>> {
        self.search_with(
            query,
            &SearchOptions {
                k,
                ef,
                filter,
                ..SearchOptions::default()
            },
        )
    }

    /// Exact (brute-force) search over the live, matching rows; same contract as `search`.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&dyn RowFilter>,
    ) -> Result<Vec<(u64, f32)>> {
        self.search_with(
            query,
            &SearchOptions {
                k,
                filter,
                strategy: SearchStrategy::Exact,
                ..SearchOptions::default()
            },
        )
    }

    /// Search with every option spelled out (selectivity estimate, strategy override).
    pub fn search_with(&self, query: &[f32], opts: &SearchOptions<'_>) -> Result<Vec<(u64, f32)>> {
        validate_vector(self.dim, query)?;
        if opts.k == 0 {
            return Err(EngineError::ZeroK);
        }
        let g = self.graph.read();
        let n = g.len();
        let live = n.saturating_sub(self.deleted.load(Ordering::Acquire));
        if live == 0 {
            return Ok(Vec::new());
        }
        let k = opts.k.min(live);
        let ef = if opts.ef == 0 {
            self.params.ef_search
        } else {
            opts.ef
        };
        let ef = ef.max(k).min(n);
        let dist = Dist::new(self.metric);
        let has_deletes = live < n;
        let row_ids = &g.row_ids;
        let accept = |id: u32| -> bool {
            (!has_deletes || !g.is_deleted(id))
                && opts
                    .filter
                    .is_none_or(|f| row_ids.get(id as usize).is_some_and(|&r| f.matches(r)))
        };
        let selectivity = self.estimate_selectivity(&g, opts, live, &accept);
        let chosen = plan(opts.strategy, ef, selectivity, live);
        tracing::trace!(?chosen, selectivity, k, ef, "hnsw search plan");

        with_scratch(|s| {
            let mut q = std::mem::take(&mut s.query);
            q.clear();
            q.extend_from_slice(query);
            dist.prepare(&mut q);
            match chosen {
                Plan::Exact => exact_scan(&g, dist, &q, k, &accept, s),
                // Unfiltered, no tombstones: a constant closure the compiler folds away.
                Plan::Graph { ef } if opts.filter.is_none() && !has_deletes => {
                    self.graph_search(&g, dist, &q, ef, &mut |_| true, s)
                }
                Plan::Graph { ef } => self.graph_search(&g, dist, &q, ef, &mut |id| accept(id), s),
            }
            s.query = q;
            s.pool.clear();
            s.pool.extend(s.results.drain());
            s.pool.sort_unstable();
            let out = s
                .pool
                .iter()
                .take(k)
                .filter_map(|c| row_ids.get(c.id as usize).map(|&r| (r, c.dist)))
                .collect();
            Ok(out)
        })
    }

    /// Fraction of all nodes that `accept` passes: exact when only tombstones matter, the
    /// caller's estimate scaled by the live fraction when given, else a deterministic sample.
    fn estimate_selectivity(
        &self,
        g: &Graph,
        opts: &SearchOptions<'_>,
        live: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> f64 {
        let n = g.len().max(1);
        let live_frac = live as f64 / n as f64;
        if opts.filter.is_none() {
            return live_frac;
        }
        if let Some(s) = opts.selectivity.filter(|s| s.is_finite()) {
            return s.clamp(0.0, 1.0) * live_frac;
        }
        let samples = SELECTIVITY_SAMPLE.min(n);
        let hits = (0..samples)
            .filter(|&i| {
                // Spread the sample over the whole id range (ids follow insertion order).
                let id = ((i as u64 * 2_654_435_761 + 17) % n as u64) as u32;
                accept(id)
            })
            .count();
        hits as f64 / samples as f64
    }

    /// Descends the upper layers greedily, then beam-searches layer 0 collecting accepted nodes.
    fn graph_search(
        &self,
        g: &Graph,
        dist: Dist,
        q: &[f32],
        ef: usize,
        accept: &mut impl FnMut(u32) -> bool,
        s: &mut Scratch,
    ) {
        s.results.clear();
        let Some((ep, top)) = unpack_entry(self.entry.load(Ordering::Acquire)) else {
            return;
        };
        let Some(ep_dist) = dist.to_node(g, q, ep) else {
            return;
        };
        let mut cur = Cand {
            dist: ep_dist,
            id: ep,
        };
        for layer in (1..=top).rev() {
            cur = greedy(g, dist, q, cur, layer);
        }
        search_layer(g, dist, q, cur, ef, 0, accept, |_| true, s);
    }
}

/// Scans every node, keeping the `k` nearest accepted ones in `s.results`.
fn exact_scan(
    g: &Graph,
    dist: Dist,
    q: &[f32],
    k: usize,
    accept: &dyn Fn(u32) -> bool,
    s: &mut Scratch,
) {
    s.results.clear();
    for id in 0..g.len() as u32 {
        if !accept(id) {
            continue;
        }
        let Some(d) = dist.to_node(g, q, id) else {
            continue;
        };
        if s.results.len() < k {
            s.results.push(Cand { dist: d, id });
        } else if s.results.peek().is_some_and(|w| d < w.dist) {
            s.results.pop();
            s.results.push(Cand { dist: d, id });
        }
    }
}
