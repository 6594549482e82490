//! The optimizer: merges small sealed segments of a shard into one (smallest first, up to
//! `seal_rows` live rows per merge) and rewrites sealed segments whose share of tombstones
//! passes a threshold, so searches see few segments and recall does not decay under deletes.
//!
//! The new segment is built from the live rows' vectors without any engine lock (readers and
//! writers go on); vectors that loaded rows leave to the graphs (`Table::aside`) are read
//! from the victims' graphs first, under the read lock. It is swapped in under the apply turnstile and the table's write lock (a
//! pointer swap), after tombstoning rows that died meanwhile; then persisted, and the old
//! segments' blobs are dropped. A crash in between leaves rows covered twice, which searches
//! deduplicate and the next pass merges away.
//!
//! Each pass then releases vectors (`Table::release_vectors`): the live rows whose versions a
//! segment (appendable or sealed) linked since the last pass get versions that leave the
//! vectors of L2 / inner-product / L1 columns to its graphs, so memory holds them once (rows
//! loaded from sealed segments are loaded that way).

use std::collections::HashSet;
use std::sync::Arc;

use crate::engine::Inner;
use crate::error::Result;
use crate::metrics::inc;
use crate::segment::Segment;
use crate::table::{Row, Table};

/// One optimizer pass over every table and shard.
pub(crate) fn run(inner: &Inner) -> Result<()> {
    for t in inner.tables_snapshot() {
        if t.schema.indexes.is_empty() {
            continue;
        }
        for shard in 0..t.schema.shards as usize {
            optimize_shard(inner, &t, shard)?;
        }
        // Rows whose versions were linked since the last pass leave their vectors to the
        // graphs.
        let released = t.release_vectors();
        if released > 0 {
            tracing::debug!(table = %t.schema.name, rows = released, "vectors released");
        }
    }
    Ok(())
}

fn optimize_shard(inner: &Inner, t: &Arc<Table>, shard: usize) -> Result<()> {
    let opts = inner.opts();
    // Pick the victims and collect their live rows under the read lock.
    let (victims, rows): (Vec<Arc<Segment>>, Vec<Arc<Row>>) = {
        let shards = t.state.read();
        let Some(sh) = shards.get(shard) else {
            return Ok(());
        };
        let mut victims = Vec::new();
        let mut small = Vec::new();
        let mut total = 0;
        for seg in &sh.sealed {
            let ids = seg.id_set();
            let live = ids.iter().filter(|&&i| sh.rows.contains_id(i)).count();
            let dead_share = 1.0 - live as f64 / ids.len().max(1) as f64;
            if dead_share > opts.rewrite_tombstone_ratio {
                victims.push(seg.clone());
                total += live;
            } else if live < opts.merge_below_rows {
                small.push((live, seg.clone()));
            }
        }
        // Small segments join, smallest first, while the result stays within a sealed
        // segment's size (merges are capped; a rewrite alone is not).
        small.sort_by_key(|(live, g)| (*live, g.id));
        let mut joined = Vec::new();
        for (live, seg) in small {
            if total + live > opts.seal_rows.max(opts.merge_below_rows) {
                break;
            }
            total += live;
            joined.push(seg);
        }
        if joined.len() >= 2 || (!victims.is_empty() && !joined.is_empty()) {
            victims.extend(joined);
        }
        if victims.is_empty() {
            return Ok(());
        }
        let mut covered = HashSet::new();
        for v in &victims {
            covered.extend(v.ids());
        }
        // Whole rows: a vector left to a victim's graph is read from it now.
        let mut rows: Vec<Arc<Row>> = covered
            .iter()
            .filter_map(|&id| sh.rows.get_id(id).map(|r| sh.fill_row(r, &t.aside)))
            .collect();
        rows.sort_by_key(|r| r.row_id);
        (victims, rows)
    };
    let span = tracing::info_span!("merge", table = %t.schema.name, shard, segments = victims.len(), rows = rows.len());
    let _enter = span.enter();
    let merged = Arc::new(Segment::new(t.alloc_segment_id(), &t.schema)?);
    merged.insert_rows(&rows, &|_| true)?;
    merged.seal();
    let victim_ids: HashSet<u64> = victims.iter().map(|v| v.id).collect();
    let swapped = inner.with_apply_lock(|| {
        let mut shards = t.state.write();
        let Some(sh) = shards.get_mut(shard) else {
            return false;
        };
        // The victims must still be there (a DDL may have replaced the table meanwhile).
        if sh
            .sealed
            .iter()
            .filter(|s| victim_ids.contains(&s.id))
            .count()
            != victims.len()
        {
            return false;
        }
        for r in &rows {
            if !sh.rows.contains_id(r.row_id) {
                merged.delete(r.row_id);
            }
        }
        sh.sealed.retain(|s| !victim_ids.contains(&s.id));
        sh.sealed.push(merged.clone());
        true
    });
    if !swapped {
        return Ok(());
    }
    inc(&t.counters.merges, 1);
    inner.persist(t, shard as u32, &merged)?;
    for v in &victims {
        inner.forget_segment(t, v.id)?;
    }
    Ok(())
}
