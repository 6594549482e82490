//! Vector search and scans over a table: fan out over shards (rayon) and, within a shard, over
//! its segments; merge the top-k.
//!
//! A search runs under the table's read lock, so it sees one prefix of applied batches. Each
//! segment is searched twice: its unindexed tail (versions not linked yet) exactly, then its
//! graphs by HNSW; hits are merged by row id. A row
//! filter is pushed into each segment's filtered HNSW search (the index chooses between a
//! filter-aware traversal and exact search over matching rows from the filter's selectivity).
//! Columns without an index, a metric other than the index's, or `exact = true` are answered by
//! exact search over the shard's live rows.
//!
//! Rows of sealed segments may leave vectors to the graphs (`Table::aside`): filters see
//! whole rows (`Shard::accepts`), and hits, `get` and `scan` return whole rows
//! (`Shard::full_row`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use crate::catalog::Value;
use crate::error::{EngineError, Result};
use crate::index::{Metric, SearchOptions};
use crate::metrics::inc;
use crate::table::{Row, Shard, Table};

/// A predicate on a row's values (schema order), e.g. a compiled SQL `WHERE`.
pub type RowPredicate<'a> = &'a (dyn Fn(&[Value]) -> bool + Sync);

/// A k-nearest-neighbour request.
#[derive(Clone, Copy)]
pub struct SearchRequest<'a> {
    /// The vector column searched.
    pub column: &'a str,
    /// The query vector; its length must be the column's dimension.
    pub query: &'a [f32],
    /// Number of results.
    pub k: usize,
    /// Beam width (`hnsw.ef_search`); `None` for the index default.
    pub ef: Option<usize>,
    /// Distance; `None` for the index's metric (L2 on a column without index).
    pub metric: Option<Metric>,
    /// Only rows passing the predicate are returned.
    pub filter: Option<RowPredicate<'a>>,
    /// Force exact search.
    pub exact: bool,
    /// The column positions `filter` reads, if known (`None`: any). Rows of sealed segments
    /// leave some vectors to the graphs (`Table::aside`); a filter known to read none of them
    /// sees the rows as held, without their vectors being fetched.
    pub filter_columns: Option<&'a [usize]>,
}

impl<'a> SearchRequest<'a> {
    /// A plain top-k request on `column`.
    pub fn new(column: &'a str, query: &'a [f32], k: usize) -> Self {
        SearchRequest {
            column,
            query,
            k,
            ef: None,
            metric: None,
            filter: None,
            exact: false,
            filter_columns: None,
        }
    }
}

/// One search result. `distance` is the metric's value as `Metric::distance` defines it
/// (squared for L2; negative inner product for `InnerProduct`).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub distance: f32,
    pub row: Arc<Row>,
}

fn check_query(query: &[f32], dim: usize) -> Result<()> {
    if query.len() != dim {
        return Err(EngineError::DimensionMismatch {
            expected: dim,
            got: query.len(),
        });
    }
    if let Some((index, value)) = query.iter().enumerate().find(|(_, f)| !f.is_finite()) {
        return Err(EngineError::NonFiniteComponent {
            index,
            value: *value,
        });
    }
    Ok(())
}

/// The `k` nearest hits, nearest first (ties by key). A version found twice (in a tail and a
/// graph while a linker moves it, or in two segments after a crash during a merge) counts
/// once, at its smallest distance.
fn merge_top_k(mut hits: Vec<SearchHit>, k: usize) -> Vec<SearchHit> {
    hits.sort_by(|a, b| {
        a.distance
            .total_cmp(&b.distance)
            .then(a.row.key_ref().cmp(&b.row.key_ref()))
    });
    let mut seen = HashSet::with_capacity(hits.len());
    hits.retain(|h| seen.insert(h.row.row_id));
    hits.truncate(k);
    hits
}

fn exact_shard(
    shard: &Shard,
    col: usize,
    metric: Metric,
    req: &SearchRequest<'_>,
    aside: &[usize],
) -> Vec<SearchHit> {
    // A vector left to the graphs is fetched into one buffer, reused from row to row.
    let mut fetched = Vec::new();
    let mut hits: Vec<SearchHit> = shard
        .rows
        .rows()
        .filter(|r| shard.accepts(r, aside, req.filter, req.filter_columns, None))
        .filter_map(|r| {
            let distance = match r.values.get(col) {
                Some(Value::Vector(v)) => metric.distance(req.query, v),
                // A true NULL has no vector in any graph.
                Some(Value::Null)
                    if aside.contains(&col)
                        && shard.graph_vector_into(r.row_id, col, &mut fetched) =>
                {
                    metric.distance(req.query, &fetched)
                }
                _ => return None,
            };
            Some(SearchHit { distance, row: r })
        })
        .collect();
    hits = merge_top_k(hits, req.k);
    hits
}

/// Graph search of every segment of a shard. Without a user filter the index runs unfiltered
/// (its fastest path) and results are checked against the row map afterwards; only if that
/// drops a result (a row being applied or just deleted) is the search redone with the
/// visibility filter, so the answer is always the top-k of the visible rows.
fn index_shard(
    shard: &Shard,
    col: usize,
    req: &SearchRequest<'_>,
    aside: &[usize],
) -> Result<Vec<SearchHit>> {
    let mut hits = Vec::new();
    for seg in shard.segments() {
        let Some(index) = seg.index_on(col) else {
            continue;
        };
        let visible = |id: u64| {
            shard.rows.get_id(id).is_some_and(|r| {
                shard.accepts(&r, aside, req.filter, req.filter_columns, Some(seg))
            })
        };
        // The unindexed tail first, exactly: a version a linker moves meanwhile is in the
        // graph before it leaves the tail, so it is found in one or the other (or both).
        let tail_visible = |r: &Row| {
            shard.rows.contains_id(r.row_id)
                && shard.accepts(r, aside, req.filter, req.filter_columns, None)
        };
        for (distance, row) in seg.search_tail(col, index.metric(), req.query, req.k, &tail_visible)
        {
            hits.push(SearchHit { distance, row });
        }
        if index.is_empty() {
            continue;
        }
        let mut opts = SearchOptions {
            k: req.k,
            ef: req.ef.unwrap_or(0),
            filter: req
                .filter
                .is_some()
                .then_some(&visible as &dyn crate::index::RowFilter),
            ..Default::default()
        };
        let mut found = index.search_with(req.query, &opts)?;
        if opts.filter.is_none() && found.iter().any(|(id, _)| !shard.rows.contains_id(*id)) {
            opts.filter = Some(&visible);
            found = index.search_with(req.query, &opts)?;
        }
        for (id, distance) in found {
            if let Some(row) = shard.rows.get_id(id) {
                hits.push(SearchHit { distance, row });
            }
        }
    }
    Ok(merge_top_k(hits, req.k))
}

impl Table {
    /// k-nearest-neighbour search (see the module docs).
    pub fn search(&self, req: &SearchRequest<'_>) -> Result<Vec<SearchHit>> {
        let span = tracing::debug_span!("search", table = %self.schema.name, column = req.column, k = req.k);
        let _enter = span.enter();
        let started = Instant::now();
        let (col, def) =
            self.schema
                .column(req.column)
                .ok_or_else(|| EngineError::UnknownColumn {
                    table: self.schema.name.clone(),
                    column: req.column.to_string(),
                })?;
        let Some(dim) = def.ty.vector_dim() else {
            return Err(EngineError::InvalidData {
                column: def.name.clone(),
                reason: "not a vector column".into(),
            });
        };
        check_query(req.query, dim)?;
        if req.k == 0 {
            return Err(EngineError::ZeroK);
        }
        let index_def = self.schema.index_on(req.column);
        let metric = req
            .metric
            .or(index_def.map(|d| d.metric))
            .unwrap_or(Metric::L2);
        let use_index = !req.exact && index_def.is_some_and(|d| d.metric == metric);
        let shards = self.state.read();
        let run = |(i, shard): (usize, &Shard)| {
            let t = Instant::now();
            let aside = &self.aside[..];
            let r = if use_index {
                index_shard(shard, col, req, aside)
            } else {
                Ok(exact_shard(shard, col, metric, req, aside))
            };
            // The shard's top k go out whole (vectors left to the graphs filled in).
            let r = r.map(|hits| {
                hits.into_iter()
                    .map(|h| SearchHit {
                        distance: h.distance,
                        row: shard.fill_row(h.row, aside),
                    })
                    .collect::<Vec<_>>()
            });
            if let Some(c) = self.shard_counters.get(i) {
                inc(&c.searches, 1);
                c.search_latency.record(t.elapsed());
            }
            r
        };
        let per_shard: Vec<Result<Vec<SearchHit>>> = if shards.len() == 1 {
            shards.iter().enumerate().map(run).collect()
        } else {
            shards.par_iter().enumerate().map(run).collect()
        };
        drop(shards);
        let mut all = Vec::new();
        for r in per_shard {
            all.extend(r?);
        }
        let hits = merge_top_k(all, req.k);
        inc(&self.counters.searches, 1);
        self.counters.search_latency.record(started.elapsed());
        Ok(hits)
    }

    /// Every live row passing `filter`, ordered by primary key (one consistent snapshot).
    pub fn scan(&self, filter: Option<RowPredicate<'_>>) -> Vec<Arc<Row>> {
        self.scan_filled(filter, None, &self.aside)
    }

    /// [`Table::scan`] for a reader of `columns` only: a vector left to a graph is filled in
    /// only where its column is among them (the others read NULL in such rows). `filter`
    /// still sees whole rows; `filter_columns`, the columns it reads if known, spares copies.
    pub fn scan_columns(
        &self,
        filter: Option<RowPredicate<'_>>,
        filter_columns: Option<&[usize]>,
        columns: &[usize],
    ) -> Vec<Arc<Row>> {
        let fill: Vec<usize> = self
            .aside
            .iter()
            .copied()
            .filter(|c| columns.contains(c))
            .collect();
        self.scan_filled(filter, filter_columns, &fill)
    }

    /// The live rows passing `filter` (on whole rows), with the vectors of `fill` filled in.
    fn scan_filled(
        &self,
        filter: Option<RowPredicate<'_>>,
        filter_columns: Option<&[usize]>,
        fill: &[usize],
    ) -> Vec<Arc<Row>> {
        let shards = self.state.read();
        let aside = &self.aside[..];
        let mut rows: Vec<Arc<Row>> = shards
            .par_iter()
            .flat_map_iter(|s| {
                s.rows
                    .rows()
                    .filter(|r| s.accepts(r, aside, filter, filter_columns, None))
                    .map(|r| s.fill_row(r, fill))
                    .collect::<Vec<_>>()
            })
            .collect();
        drop(shards);
        rows.par_sort_unstable_by(|a, b| a.key_ref().cmp(&b.key_ref()));
        rows
    }

    /// The live row with this key.
    pub fn get(&self, key: &crate::catalog::Key) -> Option<Arc<Row>> {
        let shards = self.state.read();
        let s = crate::table::shard_of(key, shards.len());
        shards
            .get(s)
            .and_then(|sh| sh.rows.get(key).map(|r| sh.fill_row(r, &self.aside)))
    }

    /// Number of live rows.
    pub fn len(&self) -> usize {
        self.state.read().iter().map(|s| s.rows.len()).sum()
    }
}
