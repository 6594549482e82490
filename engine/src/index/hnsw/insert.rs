//! Linking a new node into the graph (Malkov & Yashunin, Alg. 1) and the neighbour-selection
//! heuristic (Alg. 4 with `keepPrunedConnections` filling only up to `m`, even on layer 0 where
//! lists hold up to `2m`; without `extendCandidates`).

use std::sync::atomic::Ordering;

use super::graph::Graph;
use super::search::{greedy_where, search_layer, Cand, Dist, Scratch};
use super::{pack_entry, unpack_entry, HnswIndex, NO_ENTRY};

impl HnswIndex {
    /// Connects the already-stored `node` to the graph. Runs under the graph's read lock; takes
    /// one stripe lock at a time (never two), so it cannot deadlock.
    pub(super) fn link(&self, g: &Graph, node: u32, s: &mut Scratch) {
        let dist = Dist::new(self.metric);
        let mut q = std::mem::take(&mut s.query);
        if prepared_query(g, dist, node, &mut q) {
            self.link_node(g, dist, node, &q, s);
        }
        s.query = q;
        g.mark_linked(node);
    }

    /// Links `node`, whose vector as a prepared query is `q`.
    fn link_node(&self, g: &Graph, dist: Dist, node: u32, q: &[f32], s: &mut Scratch) {
        let level = g.level(node);
        // Become the entry point of an empty graph, or find the current one.
        let (ep, top) = loop {
            let e = self.entry.load(Ordering::Acquire);
            match unpack_entry(e) {
                Some(found) => break found,
                None => {
                    let me = pack_entry(node, level);
                    if self
                        .entry
                        .compare_exchange(NO_ENTRY, me, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return;
                    }
                }
            }
        };
        if ep == node {
            return;
        }
        let Some(ep_dist) = dist.to_node(g, q, ep) else {
            return;
        };
        let mut cur = Cand {
            dist: ep_dist,
            id: ep,
        };
        // Never step onto or expand a node another thread is still linking: its lower lists
        // are still empty, and a node linked from there would get it as its only neighbour.
        let linked = |id: u32| g.is_linked(id);
        for layer in (level + 1..=top).rev() {
            cur = greedy_where(g, dist, q, cur, layer, linked);
        }
        let mut chosen: Vec<Cand> = Vec::with_capacity(2 * self.params.m);
        for layer in (0..=level.min(top)).rev() {
            search_layer(
                g,
                dist,
                q,
                cur,
                self.params.ef_construction,
                layer,
                &mut |_| true,
                linked,
                s,
            );
            s.pool.clear();
            s.pool.extend(s.results.drain().filter(|c| c.id != node));
            s.pool.sort_unstable();
            if s.pool.is_empty() {
                continue;
            }
            // The next layer's search starts from the nearest node it may expand.
            let next = s.pool.iter().find(|c| g.is_linked(c.id)).copied();
            select_neighbours(
                g,
                dist,
                &s.pool,
                self.params.m,
                self.params.m,
                &mut s.selected,
            );
            chosen.clear();
            chosen.extend_from_slice(&s.selected);
            self.set_own_neighbours(g, dist, node, layer, &chosen, s);
            for c in &chosen {
                self.add_backlink(g, dist, c.id, node, c.dist, layer, s);
            }
            cur = next.unwrap_or(cur);
        }
        // A node above the current top becomes the entry point (if nobody got higher first).
        if level > top {
            let mut e = self.entry.load(Ordering::Acquire);
            while unpack_entry(e).is_some_and(|(_, l)| l < level) {
                match self.entry.compare_exchange(
                    e,
                    pack_entry(node, level),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(now) => e = now,
                }
            }
        }
    }

    /// Sets the list of `node` (being linked) at `layer` to `chosen`, keeping the back-links
    /// other linkers added meanwhile: a concurrent linker can reach `node` through a layer
    /// above before this one is done and link to it here, and overwriting its back-link would
    /// leave that node without an in-edge. Over the maximum degree, the heuristic picks.
    fn set_own_neighbours(
        &self,
        g: &Graph,
        dist: Dist,
        node: u32,
        layer: usize,
        chosen: &[Cand],
        s: &mut Scratch,
    ) {
        let _lock = self.stripe(node);
        g.neighbours_into(node, layer, &mut s.ids);
        if s.ids.is_empty() {
            s.ids.extend(chosen.iter().map(|c| c.id));
            g.set_neighbours(node, layer, &s.ids);
            return;
        }
        s.pool.clear();
        s.pool.extend_from_slice(chosen);
        for &id in &s.ids {
            if chosen.iter().all(|c| c.id != id) {
                if let Some(d) = dist.between(g, node, id) {
                    s.pool.push(Cand { dist: d, id });
                }
            }
        }
        s.pool.sort_unstable();
        let max = g.max_degree(layer);
        select_neighbours(g, dist, &s.pool, max, self.params.m, &mut s.selected);
        s.ids.clear();
        s.ids.extend(s.selected.iter().map(|c| c.id));
        g.set_neighbours(node, layer, &s.ids);
    }

    /// Adds `new` to `node`'s list at `layer`, shrinking the list with the heuristic when it
    /// is full.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_backlink(
        &self,
        g: &Graph,
        dist: Dist,
        node: u32,
        new: u32,
        new_dist: f32,
        layer: usize,
        s: &mut Scratch,
    ) {
        let max = g.max_degree(layer);
        let _lock = self.stripe(node);
        g.neighbours_into(node, layer, &mut s.ids);
        if s.ids.contains(&new) || node == new {
            return;
        }
        if s.ids.len() < max {
            s.ids.push(new);
            g.set_neighbours(node, layer, &s.ids);
            return;
        }
        if g.store.get(node as usize).is_none() {
            return;
        }
        s.pool.clear();
        s.pool.push(Cand {
            dist: new_dist,
            id: new,
        });
        for &id in &s.ids {
            if let Some(d) = dist.between(g, node, id) {
                s.pool.push(Cand { dist: d, id });
            }
        }
        s.pool.sort_unstable();
        // Refill pruned slots only up to `m`, not `max` (2m on layer 0): a list left below its
        // maximum takes the next back-links as plain appends instead of re-running the heuristic.
        select_neighbours(g, dist, &s.pool, max, self.params.m, &mut s.selected);
        s.ids.clear();
        s.ids.extend(s.selected.iter().map(|c| c.id));
        g.set_neighbours(node, layer, &s.ids);
    }
}

/// Alg. 4: from `candidates` (sorted nearest first by distance to the base node) keep a
/// candidate only if it is nearer to the base than to every candidate already kept; then, with
/// `keepPrunedConnections`, fill up to `keep` (≤ `m`) with the nearest discarded ones.
pub(super) fn select_neighbours(
    g: &Graph,
    dist: Dist,
    candidates: &[Cand],
    m: usize,
    keep: usize,
    out: &mut Vec<Cand>,
) {
    out.clear();
    if candidates.len() <= m {
        out.extend_from_slice(candidates);
        return;
    }
    let mut pruned: Vec<Cand> = Vec::new();
    for &c in candidates {
        if out.len() >= m {
            break;
        }
        if g.store.get(c.id as usize).is_none() {
            continue;
        }
        let diverse = out
            .iter()
            .all(|r| dist.between(g, c.id, r.id).is_none_or(|d| d > c.dist));
        if diverse {
            out.push(c);
        } else {
            pruned.push(c);
        }
    }
    for c in pruned {
        if out.len() >= keep.min(m) {
            break;
        }
        out.push(c);
    }
}

/// Fills `q` with `node`'s vector prepared as a query (normalised for cosine, whose graph keeps
/// vectors as given); false if there is no such node.
pub(super) fn prepared_query(g: &Graph, dist: Dist, node: u32, q: &mut Vec<f32>) -> bool {
    q.clear();
    let Some(v) = g.store.get(node as usize) else {
        return false;
    };
    q.extend_from_slice(v);
    dist.prepare(q);
    true
}
