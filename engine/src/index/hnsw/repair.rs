//! Reachability repair after a batch insert.
//!
//! HNSW can strand a node: it links to the neighbours it finds when it is inserted, and if
//! every node that links back to it later prunes that back-link (the neighbour heuristic keeps
//! nearer, more diverse neighbours) before any node near it arrives to find it, no search
//! reaches it again. Sequential insertion in random order makes this rare; measured on 6,000
//! collinear rows linked in parallel batches it still happened about once per 300 builds (a
//! node linked early, when its only neighbours were far away). Under inner product, which is
//! not a metric, it is common (tens to hundreds per 1,000 rows on the tests' data).
//!
//! After each batch the repair walks layer 0 breadth-first from the entry point; every live
//! node the walk did not reach is attached to its nearest reached nodes in both directions,
//! found by a search that only accepts reached nodes. Then it walks again, for a few rounds:
//! attaching can push other back-links out. The walk costs O(nodes x 2m) word reads (about
//! 0.75 ms per 20K nodes); attaching costs one insert-like search per stranded node.

use std::sync::atomic::Ordering;

use rayon::prelude::*;

use super::graph::Graph;
use super::insert::{prepared_query, select_neighbours};
use super::search::{greedy_where, search_layer, with_scratch, Cand, Dist, Scratch};
use super::{unpack_entry, HnswIndex};

/// Walk-and-attach rounds before giving up (each round attaches every node it finds stranded;
/// one is normally enough, a second catches nodes cut off by the first round's pruning).
const MAX_ROUNDS: usize = 4;

/// Nodes reached on layer 0 from the entry point: one bit per node.
struct Reached(Vec<u64>);

impl Reached {
    fn contains(&self, node: u32) -> bool {
        self.0
            .get(node as usize / 64)
            .is_some_and(|w| w & (1 << (node % 64)) != 0)
    }
}

impl HnswIndex {
    /// Makes every live node reachable on layer 0 from the entry point again (see the module
    /// docs). Runs under the graph's read lock, concurrently with searches and inserts. Returns
    /// how many nodes were attached.
    pub(super) fn repair_reachability(&self, g: &Graph) -> usize {
        let mut attached = 0;
        for round in 0..MAX_ROUNDS {
            let Some((entry, top)) = unpack_entry(self.entry.load(Ordering::Acquire)) else {
                return attached;
            };
            let reached = walk_layer0(g, entry);
            let stranded: Vec<u32> = (0..g.len() as u32)
                .filter(|&n| !reached.contains(n) && !g.is_deleted(n))
                .collect();
            if stranded.is_empty() {
                return attached;
            }
            tracing::debug!(
                nodes = stranded.len(),
                round,
                "hnsw: attaching nodes layer 0 cannot reach"
            );
            attached += stranded.len();
            stranded.par_iter().for_each(|&node| {
                with_scratch(|s| {
                    let dist = Dist::new(self.metric);
                    let mut q = std::mem::take(&mut s.query);
                    if prepared_query(g, dist, node, &mut q) {
                        self.attach(g, dist, node, &q, (entry, top), &reached, s);
                    }
                    s.query = q;
                });
            });
        }
        // Under inner product a few nodes can stay stranded: attaching one can push another
        // out, as the heuristic prefers nodes with larger norms.
        tracing::debug!(
            attached,
            "hnsw: layer 0 still not fully reachable after {MAX_ROUNDS} repair rounds"
        );
        attached
    }

    /// Links `node` (its vector prepared as the query `q`) with its nearest reached nodes on
    /// layer 0, both ways, searching from the entry point `(entry, top level)`.
    #[allow(clippy::too_many_arguments)]
    fn attach(
        &self,
        g: &Graph,
        dist: Dist,
        node: u32,
        q: &[f32],
        (entry, top): (u32, usize),
        reached: &Reached,
        s: &mut Scratch,
    ) {
        let Some(ep_dist) = dist.to_node(g, q, entry) else {
            return;
        };
        let mut cur = Cand {
            dist: ep_dist,
            id: entry,
        };
        for layer in (1..=top).rev() {
            cur = greedy_where(g, dist, q, cur, layer, |id| reached.contains(id));
        }
        search_layer(
            g,
            dist,
            q,
            cur,
            self.params.ef_construction,
            0,
            &mut |id| id != node && reached.contains(id),
            |_| true,
            s,
        );
        s.pool.clear();
        s.pool.extend(s.results.drain());
        s.pool.sort_unstable();
        let mut chosen = Vec::new();
        select_neighbours(g, dist, &s.pool, self.params.m, self.params.m, &mut chosen);
        for c in &chosen {
            self.add_backlink(g, dist, c.id, node, c.dist, 0, s);
            self.add_backlink(g, dist, node, c.id, c.dist, 0, s);
        }
    }
}

/// Breadth-first walk of layer 0 from `entry` (tombstoned nodes are walked through, as
/// searches do).
fn walk_layer0(g: &Graph, entry: u32) -> Reached {
    let n = g.len();
    let mut seen = vec![0u64; n.div_ceil(64)];
    let mut queue: Vec<u32> = Vec::with_capacity(n);
    let mark = |node: u32, seen: &mut [u64], queue: &mut Vec<u32>| {
        if let Some(w) = seen.get_mut(node as usize / 64) {
            let bit = 1u64 << (node % 64);
            if *w & bit == 0 {
                *w |= bit;
                queue.push(node);
            }
        }
    };
    mark(entry, &mut seen, &mut queue);
    let mut head = 0;
    while let Some(&node) = queue.get(head) {
        head += 1;
        let list = g.list(node, 0);
        let Some((count, ids)) = list.split_first() else {
            continue;
        };
        let count = (count.load(Ordering::Acquire) as usize).min(ids.len());
        for id in &ids[..count] {
            mark(id.load(Ordering::Relaxed), &mut seen, &mut queue);
        }
    }
    Reached(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{HnswParams, Metric};

    fn line(ids: &[u64]) -> Vec<f32> {
        ids.iter().flat_map(|&i| [i as f32, 1.0]).collect()
    }

    #[test]
    fn a_cut_layer_0_is_joined_again() {
        let index = HnswIndex::new(2, Metric::L2, HnswParams::default()).unwrap();
        let ids: Vec<u64> = (0..200).collect();
        for &i in &ids {
            index.insert(i, &line(&[i])).unwrap();
        }
        let g = index.graph.read();
        let (entry, _) = unpack_entry(index.entry.load(Ordering::Acquire)).unwrap();
        let all = |r: &Reached| (0..200u32).all(|n| r.contains(n));
        assert!(all(&walk_layer0(&g, entry)));
        // Cut layer 0 between the rows on either side of the entry's row by hand.
        let id_map = index.id_map.lock().clone();
        let cut = g.row_ids[entry as usize].max(1);
        let side = |row: u64| row < cut;
        let mut buf = Vec::new();
        for (&row, &node) in &id_map {
            g.neighbours_into(node, 0, &mut buf);
            buf.retain(|&nb| side(g.row_ids[nb as usize]) == side(row));
            g.set_neighbours(node, 0, &buf);
        }
        let cut_off = walk_layer0(&g, entry);
        assert!(!all(&cut_off), "the cut must strand the other side");
        assert!(index.repair_reachability(&g) > 0);
        assert!(all(&walk_layer0(&g, entry)));
        assert_eq!(
            index.repair_reachability(&g),
            0,
            "a second repair finds nothing"
        );
        drop(g);
        for &i in &ids {
            let hits = index.search(&line(&[i]), 1, 0, None).unwrap();
            assert_eq!(hits[0].0, i, "row {i} is found again");
        }
    }
}
