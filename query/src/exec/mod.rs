//! Execution: runs a [`Plan`] against an [`Engine`] and returns its rows.
//!
//! Operators are materializing (each node returns all its rows), which keeps them short and
//! obviously bounded; results become Arrow batches in [`batch`]. Table access goes through
//! [`source`], which overlays the session's uncommitted transaction writes on what the engine
//! returns, so a transaction reads its own writes. Every node runs inside a TRACE `plan_node`
//! span numbered in pre-order (EXPLAIN's order) that records its row count; EXPLAIN ANALYZE
//! reads its timings from those spans ([`timing`]). A top-k index search under a plain column
//! projection skips the operators and copies only the projected values of the engine's hits
//! ([`top_k_projection`]); the session uses it for queries and runs the plan otherwise.
//! Correlated subqueries are subplans run by the expressions that use them (this context is
//! their [`SubPlanRunner`]): a nested loop, once per distinct tuple of outer values, with the
//! results cached for the statement ([`MAX_SUBPLAN_CACHE_VALUES`]).

pub mod batch;
pub mod source;
pub mod timing;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;

use vela_engine::catalog::Value;

use crate::engine::{Engine, Row, TableWrite};
use crate::error::{QueryError, Result};
use crate::expr::aggregate::Accumulator;
use crate::expr::eval::{
    compare_values, eval, eval_predicate, EvalContext, SubPlanRunner, SubqueryValue,
};
use crate::expr::BExpr;
use crate::plan::{InitPlan, Plan, SortKey, SubPlan, SubqueryKind};

/// Largest k sent to an index search; larger LIMITs run as an exact scan.
pub const MAX_INDEX_K: usize = 16_384;

/// Largest number of groups an aggregation may hold.
pub const MAX_GROUPS: usize = 10_000_000;

/// Largest number of values (a scalar counts one, an IN list its length) a statement keeps
/// cached from its correlated subplans; beyond it, new results are not cached.
pub const MAX_SUBPLAN_CACHE_VALUES: usize = 1_000_000;

/// Everything a plan needs to run.
pub struct ExecContext<'a> {
    pub engine: &'a dyn Engine,
    pub params: &'a [Value],
    /// `SET hnsw.ef_search`.
    pub ef_search: Option<usize>,
    /// The session's uncommitted writes, overlaid on reads.
    pub pending: &'a [TableWrite],
    /// Pre-order number of the next plan node to run (its `plan_node` span's `node`).
    pub next_node: u64,
    /// Values of the init plans run so far (set by [`Plan::InitPlans`]; `None`, not an
    /// allocation, for a statement without any).
    pub subqueries: Option<Arc<Vec<SubqueryValue>>>,
    /// The statement's correlated subplans and their results so far (set by
    /// [`Plan::InitPlans`]).
    pub subplans: Option<Arc<SubPlans>>,
    /// Inside a correlated subplan: the enclosing row's values it was run with.
    pub outer: &'a [Value],
}

/// A statement's correlated subplans while it runs, and their cached results by arguments.
pub struct SubPlans {
    plans: Arc<[SubPlan]>,
    /// Pre-order number of each subplan's root node (EXPLAIN's numbering).
    first_node: Vec<u64>,
    cache: Mutex<SubPlanCache>,
}

#[derive(Default)]
struct SubPlanCache {
    results: HashMap<SubPlanKey, Arc<SubqueryValue>>,
    /// Values held in `results` (bounded by [`MAX_SUBPLAN_CACHE_VALUES`]).
    values: usize,
}

/// A subplan and the argument values it ran with. Values compare bit for bit (a NaN argument
/// finds its own result), which is all a cache needs.
struct SubPlanKey(usize, Vec<Value>);

impl PartialEq for SubPlanKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
            && self.1.len() == other.1.len()
            && self.1.iter().zip(&other.1).all(|(a, b)| same_value(a, b))
    }
}

impl Eq for SubPlanKey {}

impl Hash for SubPlanKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h);
        for v in &self.1 {
            std::mem::discriminant(v).hash(h);
            match v {
                Value::Null => {}
                Value::BigInt(i) | Value::Timestamp(i) => i.hash(h),
                Value::Double(d) => d.to_bits().hash(h),
                Value::Text(t) => t.hash(h),
                Value::Boolean(b) => b.hash(h),
                Value::Vector(v) => v.iter().for_each(|x| x.to_bits().hash(h)),
            }
        }
    }
}

/// Bitwise equality of two values (floats by their bits).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        (Value::Vector(x), Value::Vector(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        }
        _ => a == b,
    }
}

impl<'a> ExecContext<'a> {
    /// A context for one statement: no init-plan values or subplans yet.
    pub fn new(
        engine: &'a dyn Engine,
        params: &'a [Value],
        ef_search: Option<usize>,
        pending: &'a [TableWrite],
    ) -> Self {
        ExecContext {
            engine,
            params,
            ef_search,
            pending,
            next_node: 0,
            subqueries: None,
            subplans: None,
            outer: &[],
        }
    }

    /// What expressions evaluated here can read: parameters, init-plan values, the outer
    /// values of the subplan being run, and the subplans themselves.
    pub fn eval_ctx(&self) -> EvalContext<'_> {
        EvalContext {
            params: self.params,
            subqueries: self.subqueries.as_deref().map_or(&[], Vec::as_slice),
            outer: self.outer,
            runner: Some(self),
        }
    }
}

impl SubPlanRunner for ExecContext<'_> {
    /// Runs subplan `slot` with `args` as its outer values (a nested loop: once per distinct
    /// argument tuple, then from the cache), on the same snapshot and pending writes.
    fn run_subplan(&self, slot: usize, args: Vec<Value>) -> Result<Arc<SubqueryValue>> {
        let state = self
            .subplans
            .as_ref()
            .ok_or_else(|| QueryError::Internal(format!("SubPlan {} is not set up", slot + 1)))?;
        let key = SubPlanKey(slot, args);
        if let Some(v) = state.cache.lock().results.get(&key) {
            return Ok(v.clone());
        }
        let (Some(sub), Some(&first_node)) = (state.plans.get(slot), state.first_node.get(slot))
        else {
            return Err(QueryError::Internal(format!(
                "SubPlan {} out of range",
                slot + 1
            )));
        };
        let value = {
            let mut child = ExecContext {
                engine: self.engine,
                params: self.params,
                ef_search: self.ef_search,
                pending: self.pending,
                next_node: first_node,
                subqueries: self.subqueries.clone(),
                subplans: self.subplans.clone(),
                outer: &key.1,
            };
            let rows = execute(&sub.plan, &mut child)?;
            Arc::new(subquery_value(sub.kind, rows)?)
        };
        let size = match &*value {
            SubqueryValue::Scalar(_) => 1,
            SubqueryValue::List(l) => l.len().max(1),
        };
        let mut cache = state.cache.lock();
        if cache.values + size <= MAX_SUBPLAN_CACHE_VALUES {
            cache.values += size;
            cache.results.insert(key, value.clone());
        }
        Ok(value)
    }
}

/// Runs one init plan and reduces its rows to the value its expression reads.
fn run_init_plan(p: &InitPlan, ctx: &mut ExecContext<'_>) -> Result<SubqueryValue> {
    let rows = execute(&p.plan, ctx)?;
    subquery_value(p.kind, rows)
}

/// A subquery's rows reduced to what its expression reads: a scalar (NULL for no row,
/// `21000` for more than one), EXISTS's boolean, or IN's list of values.
fn subquery_value(kind: SubqueryKind, rows: Vec<Row>) -> Result<SubqueryValue> {
    Ok(match kind {
        SubqueryKind::Scalar => {
            if rows.len() > 1 {
                return Err(QueryError::CardinalityViolation(
                    "more than one row returned by a subquery used as an expression".into(),
                ));
            }
            SubqueryValue::Scalar(
                rows.into_iter()
                    .next()
                    .and_then(|r| r.into_iter().next())
                    .unwrap_or(Value::Null),
            )
        }
        SubqueryKind::Exists => SubqueryValue::Scalar(Value::Boolean(!rows.is_empty())),
        SubqueryKind::In => SubqueryValue::List(
            rows.into_iter()
                .map(|r| r.into_iter().next().unwrap_or(Value::Null))
                .collect(),
        ),
    })
}

/// Runs `plan` and returns its rows.
pub fn execute(plan: &Plan, ctx: &mut ExecContext<'_>) -> Result<Vec<Row>> {
    let span = node_span(ctx);
    let _entered = span.enter();
    let rows = run(plan, ctx)?;
    span.record("rows", rows.len());
    Ok(rows)
}

/// The span the next plan node runs in (disabled, and nearly free, unless a subscriber such as
/// EXPLAIN ANALYZE's [`timing::SpanTimer`] wants TRACE spans of this crate).
fn node_span(ctx: &mut ExecContext<'_>) -> tracing::Span {
    let node = ctx.next_node;
    ctx.next_node += 1;
    // The name is timing::NODE_SPAN (a macro needs the literal).
    tracing::trace_span!("plan_node", node, rows = tracing::field::Empty)
}

/// A [`Plan::VectorSearch`]'s table, search and pushed-down filter; `None` for other nodes.
fn search_parts(
    plan: &Plan,
) -> Option<(
    &vela_engine::catalog::TableSchema,
    source::SearchSpec<'_>,
    Option<&BExpr>,
)> {
    let Plan::VectorSearch {
        schema,
        column,
        metric,
        query,
        k,
        filter,
        exact,
        columns,
    } = plan
    else {
        return None;
    };
    let spec = source::SearchSpec {
        column: *column,
        metric: *metric,
        query,
        k,
        k_value: None,
        exact: *exact,
        columns: columns.as_deref(),
    };
    Some((schema, spec, filter.as_ref()))
}

/// [`execute`] for a [`Plan::VectorSearch`], also returning the hits' distances (`None` when
/// the search ran as a scan).
fn execute_search(plan: &Plan, ctx: &mut ExecContext<'_>) -> Result<(Vec<Row>, Option<Vec<f32>>)> {
    let Some((schema, spec, filter)) = search_parts(plan) else {
        return Ok((execute(plan, ctx)?, None));
    };
    let span = node_span(ctx);
    let _entered = span.enter();
    let out = source::vector_search_hits(ctx, schema, spec, filter)?;
    span.record("rows", out.0.len());
    Ok(out)
}

/// The `k` rows nearest by `distances` (one per row), ties in input order. Rows already in
/// order (the engine's hits always are) are only truncated.
fn top_n_by_distance(mut rows: Vec<Row>, distances: &[f32], k: usize) -> Vec<Row> {
    if rows.len() == distances.len() && distances.windows(2).any(|w| w[0].total_cmp(&w[1]).is_gt())
    {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]));
        let mut slots: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
        rows = order
            .into_iter()
            .take(k)
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect();
    }
    rows.truncate(k);
    rows
}

/// The last column when every projected expression is a plain column reference and their
/// positions strictly increase (`SELECT id, tag` in table order): each row can then be
/// compacted in place ([`select_in_place`]) instead of copied into a new one.
fn increasing_columns(exprs: &[BExpr]) -> Option<usize> {
    let mut last: Option<usize> = None;
    for e in exprs {
        match e {
            BExpr::Column(c) if last.is_none_or(|l| *c > l) => last = Some(*c),
            _ => return None,
        }
    }
    last
}

/// `row` projected onto `exprs` (strictly increasing column references, all in range: see
/// [`increasing_columns`]), reusing its allocation: output slot `i` takes the value of column
/// `c_i >= i`, which no earlier slot has overwritten.
fn select_in_place(mut row: Row, exprs: &[BExpr]) -> Row {
    for (i, e) in exprs.iter().enumerate() {
        if let BExpr::Column(c) = e {
            if *c != i {
                let v = row
                    .get_mut(*c)
                    .map_or(Value::Null, |v| std::mem::replace(v, Value::Null));
                if let Some(slot) = row.get_mut(i) {
                    *slot = v;
                }
            }
        }
    }
    row.truncate(exprs.len());
    row
}

/// `SELECT <columns> FROM t [WHERE ..] ORDER BY <distance> LIMIT n [OFFSET m]` run over an
/// index search without per-row copies: a plan that is exactly Project (plain columns) ->
/// [Limit ->] Top-N (ascending, on the search's distance) -> Vector Search hands the engine's
/// hits to a visitor that copies only the projected values, row after row, into one flat
/// vector (`exprs.len()` values per row, returned with it). `None` when the plan has another shape, a count or
/// the query does not evaluate, or the search would not return exactly the engine's hits in
/// order: the caller then runs the plan with [`execute`], which gives the same rows (or the
/// error: nothing evaluated here reports one). EXPLAIN ANALYZE always runs the plan (its nodes' spans).
pub fn top_k_projection(plan: &Plan, ctx: &ExecContext<'_>) -> Option<(Vec<Value>, usize)> {
    let Plan::Project { input, exprs, .. } = plan else {
        return None;
    };
    if exprs.is_empty() || !exprs.iter().all(|e| matches!(e, BExpr::Column(_))) {
        return None;
    }
    let (limit, offset, input) = match &**input {
        Plan::Limit {
            input,
            limit,
            offset,
        } => (limit.as_ref(), offset.as_ref(), &**input),
        other => (None, None, other),
    };
    let Plan::TopN {
        input,
        keys,
        k: top_k,
    } = input
    else {
        return None;
    };
    let ([key], Some((schema, mut spec, filter))) = (keys.as_slice(), search_parts(input)) else {
        return None;
    };
    if !key.asc {
        return None;
    }
    // Counts that do not evaluate are left to `execute`, which reports them in its order.
    let count = |e: Option<&BExpr>, what, code| match e {
        Some(e) => eval_count(e, ctx, what, code).ok(),
        None => Some(None),
    };
    // Each count is evaluated once: the Top-N's k is LIMIT itself when there is no OFFSET, and
    // the search's k is the Top-N's.
    let limit_value = count(limit, "LIMIT", "2201W");
    let top_k_value = match (limit, offset) {
        (Some(l), None) if l == top_k => limit_value,
        _ => count(Some(top_k), "LIMIT", "2201W"),
    };
    let (Some(limit), Some(Some(offset)), Some(Some(top_k_n))) = (
        limit_value,
        count(offset, "OFFSET", "2201X").map(|o| Some(o.unwrap_or(0))),
        top_k_value,
    ) else {
        return None;
    };
    if spec.k == top_k {
        spec.k_value = Some(Some(top_k_n));
    }
    let top_k = top_k_n;
    // Hits `offset..end` of the Top-N's first `top_k` are the result.
    let end = top_k.min(offset.saturating_add(limit.unwrap_or(usize::MAX)));
    let mut values = Vec::with_capacity(end.saturating_sub(offset).min(MAX_INDEX_K) * exprs.len());
    let mut seen = 0usize;
    let mut last = f32::NEG_INFINITY;
    let mut in_order = true;
    let mut in_range = true;
    let mut visit = |row: &[Value], distance: f32| {
        in_order &= last.total_cmp(&distance).is_le();
        last = distance;
        if (offset..end).contains(&seen) {
            for e in exprs {
                if let BExpr::Column(c) = e {
                    match row.get(*c) {
                        // The usual projected key, copied without the generic clone.
                        Some(Value::BigInt(x)) => values.push(Value::BigInt(*x)),
                        Some(v) => values.push(v.clone()),
                        None => in_range = false,
                    }
                }
            }
        }
        seen += 1;
    };
    // An error (say in the pushed-down filter) is left to `execute` too.
    let visited = source::visit_search_hits(ctx, schema, spec, filter, &mut visit);
    (matches!(visited, Ok(Some(_))) && in_order && in_range).then_some((values, exprs.len()))
}

/// Evaluates a LIMIT/OFFSET-like count: a non-negative integer or NULL (no limit).
pub fn eval_count(
    e: &crate::expr::BExpr,
    ctx: &ExecContext<'_>,
    what: &str,
    code: &'static str,
) -> Result<Option<usize>> {
    // A literal count (the usual `LIMIT 10`) or a bigint parameter is read in place.
    let in_place = match e {
        BExpr::Literal(v) => Some(v),
        BExpr::Cast(p, crate::types::SqlType::BigInt) => match p.as_ref() {
            BExpr::Param(i) => ctx
                .params
                .get(*i)
                .filter(|v| matches!(v, Value::BigInt(_) | Value::Null)),
            _ => None,
        },
        _ => None,
    };
    match in_place {
        Some(v) => count_value(v, what, code),
        None => count_value(&eval(e, &[], &ctx.eval_ctx())?, what, code),
    }
}

/// A count's value: a non-negative integer or NULL (no limit).
fn count_value(v: &Value, what: &str, code: &'static str) -> Result<Option<usize>> {
    match v {
        Value::Null => Ok(None),
        Value::BigInt(n) if *n < 0 => Err(QueryError::InvalidRowCount {
            code,
            message: format!("{what} must not be negative"),
        }),
        Value::BigInt(n) => Ok(Some(usize::try_from(*n).unwrap_or(usize::MAX))),
        other => Err(QueryError::mismatch(format!(
            "argument of {what} must be type bigint, not {other:?}"
        ))),
    }
}

fn run(plan: &Plan, ctx: &mut ExecContext<'_>) -> Result<Vec<Row>> {
    match plan {
        Plan::OneRow => Ok(vec![Vec::new()]),
        Plan::Values { rows, .. } => {
            let ectx = ctx.eval_ctx();
            rows.iter()
                .map(|r| r.iter().map(|e| eval(e, &[], &ectx)).collect())
                .collect()
        }
        Plan::Scan {
            schema,
            filter,
            columns,
        } => source::scan(ctx, schema, filter.as_ref(), columns.as_deref()),
        Plan::PointLookup {
            schema,
            key,
            filter,
        } => source::point_lookup(ctx, schema, key, filter.as_ref()),
        Plan::VectorSearch { .. } => match search_parts(plan) {
            Some((schema, spec, filter)) => source::vector_search(ctx, schema, spec, filter),
            None => Err(QueryError::Internal("not a vector search".into())),
        },
        Plan::Filter { input, predicate } => {
            let rows = execute(input, ctx)?;
            let ectx = ctx.eval_ctx();
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                if eval_predicate(predicate, &row, &ectx)? {
                    out.push(row);
                }
            }
            Ok(out)
        }
        Plan::Project { input, exprs, .. } => {
            let rows = execute(input, ctx)?;
            if let Some(last) = increasing_columns(exprs) {
                if rows.iter().all(|r| last < r.len()) {
                    return Ok(rows
                        .into_iter()
                        .map(|row| select_in_place(row, exprs))
                        .collect());
                }
            }
            let ectx = ctx.eval_ctx();
            rows.iter()
                .map(|row| exprs.iter().map(|e| eval(e, row, &ectx)).collect())
                .collect()
        }
        Plan::Aggregate {
            input,
            groups,
            calls,
        } => {
            let rows = execute(input, ctx)?;
            aggregate(rows, groups, calls, ctx)
        }
        Plan::Sort { input, keys } => {
            let rows = execute(input, ctx)?;
            sort(rows, keys, ctx)
        }
        Plan::TopN { input, keys, k } => {
            let k = eval_count(k, ctx, "LIMIT", "2201W")?;
            // The optimizer puts a VectorSearch only under the Top-N on its own distance key:
            // order by the engine's hit distances (no per-row distance recomputation, and no
            // sort at all when the hits come in order, as the engine returns them).
            if let (Some(k), [key], Plan::VectorSearch { .. }) = (k, keys.as_slice(), &**input) {
                if key.asc {
                    let (rows, distances) = execute_search(input, ctx)?;
                    return match distances {
                        Some(d) => Ok(top_n_by_distance(rows, &d, k)),
                        None => top_n(rows, keys, k, ctx),
                    };
                }
            }
            let rows = execute(input, ctx)?;
            match k {
                Some(k) => top_n(rows, keys, k, ctx),
                None => sort(rows, keys, ctx),
            }
        }
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            let limit = match limit {
                Some(l) => eval_count(l, ctx, "LIMIT", "2201W")?,
                None => None,
            };
            let offset = match offset {
                Some(o) => eval_count(o, ctx, "OFFSET", "2201X")?.unwrap_or(0),
                None => 0,
            };
            let rows = execute(input, ctx)?;
            if offset == 0 && limit.is_none_or(|l| rows.len() <= l) {
                return Ok(rows);
            }
            Ok(rows
                .into_iter()
                .skip(offset)
                .take(limit.unwrap_or(usize::MAX))
                .collect())
        }
        Plan::InitPlans {
            plans,
            subplans,
            input,
        } => {
            // Nodes are numbered as EXPLAIN prints them: the init plans', the subplans', then
            // the query's. Subplans are set up first: an init plan may run one.
            let mut next = ctx.next_node + plans.iter().map(|p| p.plan.node_count()).sum::<u64>();
            let first_node = subplans
                .iter()
                .map(|p| {
                    let first = next;
                    next += p.plan.node_count();
                    first
                })
                .collect();
            ctx.subplans = (!subplans.is_empty()).then(|| {
                Arc::new(SubPlans {
                    plans: subplans.clone(),
                    first_node,
                    cache: Mutex::default(),
                })
            });
            // Slots are numbered statement-wide, in the order `plans` lists them.
            ctx.subqueries = None;
            for p in plans {
                let v = run_init_plan(p, ctx)?;
                Arc::make_mut(ctx.subqueries.get_or_insert_with(Arc::default)).push(v);
            }
            ctx.next_node = next;
            execute(input, ctx)
        }
        Plan::Distinct { input } => {
            let rows = execute(input, ctx)?;
            let mut out: Vec<Row> = Vec::new();
            let mut seen: HashMap<String, ()> = HashMap::new();
            for row in rows {
                if seen.insert(format!("{row:?}"), ()).is_none() {
                    out.push(row);
                }
            }
            Ok(out)
        }
    }
}

fn aggregate(
    rows: Vec<Row>,
    groups: &[crate::expr::BExpr],
    calls: &[crate::expr::aggregate::AggCall],
    ctx: &ExecContext<'_>,
) -> Result<Vec<Row>> {
    let ectx = ctx.eval_ctx();
    // Group key (debug text of the values: total, NULL-safe) -> (group values, accumulators).
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut states: Vec<(Row, Vec<Accumulator>)> = Vec::new();
    if groups.is_empty() {
        states.push((Vec::new(), calls.iter().map(Accumulator::new).collect()));
        index.insert(format!("{:?}", Vec::<Value>::new()), 0);
    }
    for row in &rows {
        let key_values = groups
            .iter()
            .map(|g| eval(g, row, &ectx))
            .collect::<Result<Vec<_>>>()?;
        let key = format!("{key_values:?}");
        let slot = match index.get(&key) {
            Some(i) => *i,
            None => {
                if states.len() >= MAX_GROUPS {
                    return Err(QueryError::ProgramLimitExceeded(format!(
                        "more than {MAX_GROUPS} groups"
                    )));
                }
                states.push((key_values, calls.iter().map(Accumulator::new).collect()));
                index.insert(key, states.len() - 1);
                states.len() - 1
            }
        };
        let Some((_, accs)) = states.get_mut(slot) else {
            return Err(QueryError::Internal("group slot out of range".into()));
        };
        for (acc, call) in accs.iter_mut().zip(calls) {
            let v = match &call.arg {
                Some(a) => eval(a, row, &ectx)?,
                None => Value::Boolean(true),
            };
            acc.update(v)?;
        }
    }
    states
        .into_iter()
        .map(|(mut group, accs)| {
            for (acc, call) in accs.iter().zip(calls) {
                group.push(acc.finish(call.ty)?);
            }
            Ok(group)
        })
        .collect()
}

/// Orders two rows' sort-key values; a comparison error is kept in `error` (the first one).
fn compare_keys(
    a: &[Value],
    b: &[Value],
    keys: &[SortKey],
    error: &mut Option<QueryError>,
) -> Ordering {
    for ((x, y), key) in a.iter().zip(b).zip(keys) {
        let o = match (x, y) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => {
                if key.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (_, Value::Null) => {
                if key.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            _ => {
                let o = compare_values(x, y).unwrap_or_else(|e| {
                    error.get_or_insert(e);
                    Ordering::Equal
                });
                if key.asc {
                    o
                } else {
                    o.reverse()
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn sort_keys(row: &Row, keys: &[SortKey], ectx: &EvalContext<'_>) -> Result<Vec<Value>> {
    keys.iter().map(|k| eval(&k.expr, row, ectx)).collect()
}

fn sort(rows: Vec<Row>, keys: &[SortKey], ctx: &ExecContext<'_>) -> Result<Vec<Row>> {
    let ectx = ctx.eval_ctx();
    let mut keyed = Vec::with_capacity(rows.len());
    for row in rows {
        keyed.push((sort_keys(&row, keys, &ectx)?, row));
    }
    let mut error = None;
    keyed.sort_by(|(a, _), (b, _)| compare_keys(a, b, keys, &mut error));
    if let Some(e) = error {
        return Err(e);
    }
    Ok(keyed.into_iter().map(|(_, r)| r).collect())
}

/// The first `k` rows of `rows` in `keys` order, exactly what [`sort`] then taking `k` gives
/// (ties in input order), in O(n + k log k) time and O(k) extra memory: rows go into a buffer of
/// at most `2k`; when it is full, a selection keeps its best `k`.
fn top_n(rows: Vec<Row>, keys: &[SortKey], k: usize, ctx: &ExecContext<'_>) -> Result<Vec<Row>> {
    if k == 0 {
        return Ok(Vec::new());
    }
    if rows.len() <= k {
        return sort(rows, keys, ctx);
    }
    let ectx = ctx.eval_ctx();
    let cap = k.saturating_mul(2).min(rows.len());
    let mut buf: Vec<(Vec<Value>, usize, Row)> = Vec::with_capacity(cap);
    let mut error = None;
    let mut cmp = |a: &(Vec<Value>, usize, Row), b: &(Vec<Value>, usize, Row)| {
        compare_keys(&a.0, &b.0, keys, &mut error).then(a.1.cmp(&b.1))
    };
    for (seq, row) in rows.into_iter().enumerate() {
        buf.push((sort_keys(&row, keys, &ectx)?, seq, row));
        if buf.len() >= cap {
            buf.select_nth_unstable_by(k - 1, &mut cmp);
            buf.truncate(k);
        }
    }
    buf.sort_by(&mut cmp);
    buf.truncate(k);
    if let Some(e) = error {
        return Err(e);
    }
    Ok(buf.into_iter().map(|(_, _, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize) -> Row {
        (0..n)
            .map(|i| match i % 3 {
                0 => Value::BigInt(i as i64),
                1 => Value::Vector(vec![i as f32; 4]),
                _ => Value::Null,
            })
            .collect()
    }

    #[test]
    fn in_place_projection_equals_evaluation() {
        let ectx = EvalContext::new(&[]);
        // Every strictly increasing selection of up to 5 of 5 columns (bit masks).
        for mask in 1u32..32 {
            let exprs: Vec<BExpr> = (0..5)
                .filter(|c| mask & (1 << c) != 0)
                .map(BExpr::Column)
                .collect();
            let last = increasing_columns(&exprs).expect("increasing");
            assert_eq!(Some(last), (0..5).rev().find(|c| mask & (1 << c) != 0));
            let want: Row = exprs
                .iter()
                .map(|e| eval(e, &row(5), &ectx).expect("eval"))
                .collect();
            assert_eq!(select_in_place(row(5), &exprs), want, "mask {mask:b}");
        }
    }

    #[test]
    fn only_plain_increasing_columns_are_projected_in_place() {
        use BExpr::Column;
        assert_eq!(increasing_columns(&[]), None);
        assert_eq!(increasing_columns(&[Column(1), Column(0)]), None);
        assert_eq!(increasing_columns(&[Column(1), Column(1)]), None);
        assert_eq!(
            increasing_columns(&[Column(0), BExpr::Literal(Value::BigInt(1))]),
            None
        );
        assert_eq!(increasing_columns(&[Column(0), Column(3)]), Some(3));
    }
}
