//! Query plans: a tree of relational operators over rows.
//!
//! The SELECT binder ([`crate::select`]) builds the *logical* shape (Scan -> Filter -> Aggregate ->
//! Sort -> Limit -> Project); [`optimizer::optimize`] then rewrites it into the *physical* choice
//! of access path, pushing filters into scans, turning `ORDER BY <distance> LIMIT k` on an indexed
//! column into a [`Plan::VectorSearch`], and primary-key equality into a [`Plan::PointLookup`].
//! The same enum serves both stages: each node is also an operator [`crate::exec`] runs.
//! [`explain`] renders a plan for EXPLAIN (and EXPLAIN ANALYZE, with per-node timings).

pub mod explain;
pub mod optimizer;

use std::sync::{Arc, OnceLock};

use arrow::datatypes::SchemaRef;
use vela_engine::catalog::TableSchema;
use vela_engine::Metric;

use crate::expr::aggregate::AggCall;
use crate::expr::BExpr;
use crate::types::SqlType;

/// One output column of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: String,
    pub ty: SqlType,
}

/// A sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub expr: BExpr,
    pub asc: bool,
    pub nulls_first: bool,
}

/// What an init plan's rows become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubqueryKind {
    /// `(SELECT x ...)`: one value; no row is NULL, more than one is `21000`.
    Scalar,
    /// `EXISTS (SELECT ...)`: whether there is a row.
    Exists,
    /// `x IN (SELECT y ...)`: every row's value.
    In,
}

/// An uncorrelated subquery, planned on its own and run once before the query that uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct InitPlan {
    pub plan: Plan,
    pub kind: SubqueryKind,
}

/// A correlated subquery, planned on its own and run for each distinct tuple of the enclosing
/// row's values it reads (its arguments, [`BExpr::Outer`] inside its plan; see
/// [`BExpr::SubPlan`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SubPlan {
    pub plan: Plan,
    pub kind: SubqueryKind,
    /// How each argument reads in the enclosing query (`t.a`), for EXPLAIN.
    pub arg_names: Vec<String>,
}

/// A plan node.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// A single row with no columns (`SELECT 1`).
    OneRow,
    /// Literal rows (`VALUES (...), (...)`).
    Values {
        rows: Vec<Vec<BExpr>>,
        names: Vec<String>,
    },
    /// Every row of a table for which `filter` holds (the filter is pushed into the engine).
    Scan {
        schema: TableSchema,
        filter: Option<BExpr>,
        /// The columns the nodes above read (`None`: all), set by the optimizer: the engine
        /// copies only these out of its rows, the others read NULL (a `count(*)` copies no
        /// vectors). The filter is evaluated inside the engine on whole rows.
        columns: Option<Vec<usize>>,
    },
    /// The row whose primary key equals `key`, if `filter` holds for it.
    PointLookup {
        schema: TableSchema,
        key: BExpr,
        filter: Option<BExpr>,
    },
    /// Up to `k` rows nearest to `query`, filter pushed in: through the column's vector index, or
    /// (`exact`) the engine's exact top-k over every row, for a column without an index of this
    /// metric. The Top-N and Limit above it stay: they order by the SQL distance and apply OFFSET.
    VectorSearch {
        schema: TableSchema,
        column: usize,
        metric: Metric,
        query: BExpr,
        /// LIMIT + OFFSET, evaluated at run time (it may be a parameter).
        k: BExpr,
        filter: Option<BExpr>,
        /// Exact search (no usable index) rather than an index search.
        exact: bool,
        /// The column positions the nodes above read (`None`: all of them). The engine copies
        /// only these out of its hit rows; the others come back NULL (rows from a fallback scan
        /// stay whole). Set by the optimizer's column pruning.
        columns: Option<Vec<usize>>,
    },
    Filter {
        input: Box<Plan>,
        predicate: BExpr,
    },
    Project {
        input: Box<Plan>,
        exprs: Vec<BExpr>,
        names: Vec<String>,
    },
    /// Output row: the group values, then one value per aggregate call.
    Aggregate {
        input: Box<Plan>,
        groups: Vec<BExpr>,
        calls: Vec<AggCall>,
    },
    Sort {
        input: Box<Plan>,
        keys: Vec<SortKey>,
    },
    /// The first `k` rows in `keys` order (a Sort under a LIMIT; `k` = LIMIT + OFFSET), kept in a
    /// bounded buffer instead of sorting every row. Ties keep input order, as Sort does.
    TopN {
        input: Box<Plan>,
        keys: Vec<SortKey>,
        k: BExpr,
    },
    Limit {
        input: Box<Plan>,
        limit: Option<BExpr>,
        offset: Option<BExpr>,
    },
    /// Drops duplicate rows, keeping the first of each.
    Distinct {
        input: Box<Plan>,
    },
    /// Runs `plans` in order (init plan `n` may use the values of those before it), then `input`,
    /// whose expressions read their values as [`BExpr::Subquery`] / [`BExpr::InSubquery`].
    /// `subplans` are the statement's correlated subqueries, run on demand by the expressions
    /// ([`BExpr::SubPlan`] / [`BExpr::InSubPlan`]) of the nodes below and of the init plans.
    InitPlans {
        plans: Vec<InitPlan>,
        subplans: Arc<[SubPlan]>,
        input: Box<Plan>,
    },
}

impl Plan {
    /// Names of the columns this node outputs (for EXPLAIN and error messages).
    pub fn output_names(&self) -> Vec<String> {
        match self {
            Plan::OneRow => Vec::new(),
            Plan::Values { names, .. } | Plan::Project { names, .. } => names.clone(),
            Plan::Scan { schema, .. }
            | Plan::PointLookup { schema, .. }
            | Plan::VectorSearch { schema, .. } => {
                schema.columns.iter().map(|c| c.name.clone()).collect()
            }
            Plan::Aggregate {
                input,
                groups,
                calls,
            } => {
                let names = input.output_names();
                let mut out: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        crate::expr::ExprDisplay {
                            expr: g,
                            names: &names,
                        }
                        .to_string()
                    })
                    .collect();
                for c in calls {
                    let arg = match &c.arg {
                        Some(a) => crate::expr::ExprDisplay {
                            expr: a,
                            names: &names,
                        }
                        .to_string(),
                        None => "*".into(),
                    };
                    let distinct = if c.distinct { "DISTINCT " } else { "" };
                    out.push(format!("{}({distinct}{arg})", c.func.name()));
                }
                out
            }
            Plan::Filter { input, .. }
            | Plan::Sort { input, .. }
            | Plan::TopN { input, .. }
            | Plan::Limit { input, .. }
            | Plan::InitPlans { input, .. }
            | Plan::Distinct { input } => input.output_names(),
        }
    }

    /// The tables this plan reads, with the schemas it was planned against.
    pub fn tables(&self, out: &mut Vec<TableSchema>) {
        match self {
            Plan::OneRow | Plan::Values { .. } => {}
            Plan::Scan { schema, .. }
            | Plan::PointLookup { schema, .. }
            | Plan::VectorSearch { schema, .. } => out.push(schema.clone()),
            Plan::Filter { input, .. }
            | Plan::Project { input, .. }
            | Plan::Aggregate { input, .. }
            | Plan::Sort { input, .. }
            | Plan::TopN { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Distinct { input } => input.tables(out),
            Plan::InitPlans {
                plans,
                subplans,
                input,
            } => {
                for p in plans {
                    p.plan.tables(out);
                }
                for p in subplans.iter() {
                    p.plan.tables(out);
                }
                input.tables(out);
            }
        }
    }

    /// The number of nodes of this plan (its own and its descendants'), as EXPLAIN numbers them.
    pub fn node_count(&self) -> u64 {
        1 + self.children().iter().map(|c| c.node_count()).sum::<u64>()
    }

    /// The node's children, in EXPLAIN order (an InitPlans node's init plans come first, then
    /// its correlated subplans).
    pub fn children(&self) -> Vec<&Plan> {
        match self {
            Plan::InitPlans {
                plans,
                subplans,
                input,
            } => {
                let mut out: Vec<&Plan> = plans.iter().map(|p| &p.plan).collect();
                out.extend(subplans.iter().map(|p| &p.plan));
                out.push(input.as_ref());
                out
            }
            Plan::Filter { input, .. }
            | Plan::Project { input, .. }
            | Plan::Aggregate { input, .. }
            | Plan::Sort { input, .. }
            | Plan::TopN { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Distinct { input } => vec![input.as_ref()],
            _ => Vec::new(),
        }
    }
}

/// A bound SELECT: its plan and output columns.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPlan {
    pub root: Plan,
    pub columns: Vec<OutputColumn>,
    /// The result's Arrow schema, built on first use when it does not depend on the data (see
    /// [`crate::exec::batch::rows_to_batches_cached`]): a cached plan builds it once.
    pub arrow_schema: OnceLock<SchemaRef>,
}

impl QueryPlan {
    /// A plan returning `columns`.
    pub fn new(root: Plan, columns: Vec<OutputColumn>) -> Self {
        QueryPlan {
            root,
            columns,
            arrow_schema: OnceLock::new(),
        }
    }
}
