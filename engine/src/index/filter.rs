//! Filters and search options, and the planner that picks exact search or a filter-aware graph
//! traversal.
//!
//! The planner compares two rough costs, in "distance computations":
//!
//! * exact: `matching + live × FILTER_CHECK_COST` (every live row's filter is checked, every
//!   matching row's distance computed);
//! * graph: `GRAPH_VISIT_FACTOR × ef_eff / s`, where `ef_eff = ef / √s` (capped) is the beam
//!   width the filter-aware traversal uses at selectivity `s`: collecting `ef_eff` matching
//!   nodes means visiting about `ef_eff / s` nodes, each a distance computation.
//!
//! and takes the cheaper. With no filter and no tombstones `s = 1`, so tiny segments are
//! searched exactly; with tombstones only, `s` is the live fraction (known exactly).

/// A predicate on row ids, evaluated during search. Implemented for every
/// `Fn(u64) -> bool + Sync` closure; a bitmap or a column scan can implement it directly.
///
/// It runs while the search holds the segment's graph read lock: it must not call back into
/// the *same* index (an `insert`, `delete` or `len` there could wait behind a pending writer
/// that waits for this search). Reading other indexes or tables is fine.
pub trait RowFilter: Sync {
    /// Whether the row may appear in the results.
    fn matches(&self, row_id: u64) -> bool;
}

impl<F: Fn(u64) -> bool + Sync> RowFilter for F {
    #[inline]
    fn matches(&self, row_id: u64) -> bool {
        self(row_id)
    }
}

/// How a search is executed. `Auto` is right for production; the others exist for tests,
/// benchmarks and `EXPLAIN`-driven overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchStrategy {
    /// Let the planner choose from the estimated selectivity.
    #[default]
    Auto,
    /// Scan every live (matching) row.
    Exact,
    /// Traverse the HNSW graph, collecting only matching rows.
    Graph,
}

/// Options of [`crate::index::HnswIndex::search_with`].
#[derive(Clone, Copy, Default)]
pub struct SearchOptions<'a> {
    /// Number of results wanted; must be at least 1; clamped to the live row count.
    pub k: usize,
    /// Beam width; 0 means the index's `ef_search`. Raised to `k`, capped at the row count.
    pub ef: usize,
    /// Only rows for which the filter returns true are returned.
    pub filter: Option<&'a dyn RowFilter>,
    /// The caller's estimate of the fraction of rows passing `filter` (0..=1), e.g. from
    /// column statistics. Without one the index samples `SELECTIVITY_SAMPLE` rows.
    pub selectivity: Option<f64>,
    /// Execution override.
    pub strategy: SearchStrategy,
}

impl std::fmt::Debug for SearchOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchOptions")
            .field("k", &self.k)
            .field("ef", &self.ef)
            .field("filter", &self.filter.is_some())
            .field("selectivity", &self.selectivity)
            .field("strategy", &self.strategy)
            .finish()
    }
}

/// Rows sampled to estimate a filter's selectivity when the caller gives no estimate.
pub const SELECTIVITY_SAMPLE: usize = 256;
/// Cost of one filter check relative to one distance computation (exact plan).
pub const FILTER_CHECK_COST: f64 = 0.05;
/// Distance computations per unit of beam width (graph plan), measured on 64–128-d data.
pub const GRAPH_VISIT_FACTOR: f64 = 10.0;
/// The filtered beam width never exceeds `ef × EF_FILTER_MAX_FACTOR`.
pub const EF_FILTER_MAX_FACTOR: usize = 16;

/// The plan chosen for one search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Plan {
    Exact,
    Graph { ef: usize },
}

/// Beam width for the filter-aware traversal at selectivity `s`.
pub(crate) fn filtered_ef(ef: usize, s: f64, live: usize) -> usize {
    let s = s.clamp(1e-6, 1.0);
    let scaled = (ef as f64 / s.sqrt()).ceil() as usize;
    scaled
        .min(ef.saturating_mul(EF_FILTER_MAX_FACTOR))
        .min(live)
        .max(ef.min(live))
        .max(1)
}

/// Picks exact or graph search for `live` rows of which a fraction `s` are acceptable.
pub(crate) fn plan(strategy: SearchStrategy, ef: usize, s: f64, live: usize) -> Plan {
    let ef_eff = filtered_ef(ef, s, live);
    match strategy {
        SearchStrategy::Exact => Plan::Exact,
        SearchStrategy::Graph => Plan::Graph { ef: ef_eff },
        SearchStrategy::Auto => {
            let exact = s * live as f64 + live as f64 * FILTER_CHECK_COST;
            let graph = GRAPH_VISIT_FACTOR * ef_eff as f64 / s.max(1e-9);
            if exact <= graph {
                Plan::Exact
            } else {
                Plan::Graph { ef: ef_eff }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planner_prefers_exact_for_tiny_or_selective() {
        assert_eq!(plan(SearchStrategy::Auto, 40, 1.0, 100), Plan::Exact);
        assert_eq!(plan(SearchStrategy::Auto, 64, 0.01, 1_000_000), Plan::Exact);
        assert!(matches!(
            plan(SearchStrategy::Auto, 64, 1.0, 1_000_000),
            Plan::Graph { ef: 64 }
        ));
        assert!(matches!(
            plan(SearchStrategy::Auto, 64, 0.5, 1_000_000),
            Plan::Graph { .. }
        ));
        assert_eq!(plan(SearchStrategy::Exact, 64, 1.0, 1_000_000), Plan::Exact);
    }

    #[test]
    fn filtered_ef_is_bounded() {
        assert_eq!(filtered_ef(64, 1.0, 1000), 64);
        assert!(filtered_ef(64, 0.1, 1_000_000) > 64);
        assert!(filtered_ef(64, 1e-9, 1_000_000) <= 64 * EF_FILTER_MAX_FACTOR);
        assert_eq!(filtered_ef(64, 0.1, 10), 10);
        assert_eq!(filtered_ef(0, 0.1, 0), 1);
    }
}
