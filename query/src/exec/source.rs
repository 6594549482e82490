//! Leaf operators: table scan, point lookup and index search, through the [`Engine`] seam.
//!
//! Filters are pushed into the engine as a row predicate; an error inside the predicate (say a
//! division by zero) is captured and returned after the engine call. When the session has
//! uncommitted writes on a table, reads of that table scan the engine unfiltered and overlay the
//! pending operations (last write wins), so the transaction sees its own writes; an index search
//! then runs as an exact scan (the Sort and Limit above it order the rows).

use std::collections::BTreeMap;

use parking_lot::Mutex;
use vela_engine::catalog::{Key, TableSchema, Value};
use vela_engine::Metric;

use super::{eval_count, ExecContext, MAX_INDEX_K};
use crate::engine::{row_key, Row, RowPredicate, SearchRequest, WriteOp};
use crate::error::{QueryError, Result};
use crate::expr::eval::{eval, eval_predicate, EvalContext};
use crate::expr::BExpr;
use crate::types::SqlType;

fn has_pending(ctx: &ExecContext<'_>, table: &str) -> bool {
    ctx.pending.iter().any(|w| w.table == table)
}

/// Applies the session's pending writes on `table` to `rows`.
fn overlay(ctx: &ExecContext<'_>, schema: &TableSchema, rows: Vec<Row>) -> Result<Vec<Row>> {
    let mut by_key: BTreeMap<Key, Row> = BTreeMap::new();
    for row in rows {
        by_key.insert(row_key(schema, &row)?, row);
    }
    for w in ctx.pending.iter().filter(|w| w.table == schema.name) {
        match &w.op {
            WriteOp::Insert(row) | WriteOp::Upsert(row) => {
                by_key.insert(row_key(schema, row)?, row.clone());
            }
            WriteOp::Delete(key) => {
                by_key.remove(key);
            }
        }
    }
    Ok(by_key.into_values().collect())
}

/// Runs an engine call with `filter` as a pushed-down predicate, surfacing evaluation errors.
fn with_predicate<T>(
    ectx: &EvalContext<'_>,
    filter: Option<&BExpr>,
    call: impl FnOnce(Option<&(dyn Fn(&[Value]) -> bool + Sync)>) -> Result<T>,
) -> Result<T> {
    let Some(filter) = filter else {
        return call(None);
    };
    let error: Mutex<Option<QueryError>> = Mutex::new(None);
    let predicate = |row: &[Value]| match eval_predicate(filter, row, ectx) {
        Ok(b) => b,
        Err(e) => {
            error.lock().get_or_insert(e);
            false
        }
    };
    let out = call(Some(&predicate))?;
    match error.into_inner() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn filter_rows(rows: Vec<Row>, filter: Option<&BExpr>, ectx: &EvalContext<'_>) -> Result<Vec<Row>> {
    let Some(f) = filter else { return Ok(rows) };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if eval_predicate(f, &row, ectx)? {
            out.push(row);
        }
    }
    Ok(out)
}

/// Every row of the table for which `filter` holds.
///
/// `columns`: the columns read above (`None`: all); the engine copies only those out (the
/// others read NULL), except under a transaction's pending writes, whose overlay is whole.
pub fn scan(
    ctx: &ExecContext<'_>,
    schema: &TableSchema,
    filter: Option<&BExpr>,
    columns: Option<&[usize]>,
) -> Result<Vec<Row>> {
    let ectx = ctx.eval_ctx();
    if has_pending(ctx, &schema.name) {
        let rows = overlay(ctx, schema, ctx.engine.scan(&schema.name, None)?)?;
        return filter_rows(rows, filter, &ectx);
    }
    let Some(columns) = columns else {
        return with_predicate(&ectx, filter, |p| ctx.engine.scan(&schema.name, p));
    };
    let reads = filter.map(filter_columns);
    with_predicate(&ectx, filter, |p| {
        ctx.engine
            .scan_columns(&schema.name, p, reads.as_deref(), columns)
    })
}

/// The row with the key `key` evaluates to, if it passes `filter`.
pub fn point_lookup(
    ctx: &ExecContext<'_>,
    schema: &TableSchema,
    key: &BExpr,
    filter: Option<&BExpr>,
) -> Result<Vec<Row>> {
    let ectx = ctx.eval_ctx();
    let key = match eval(key, &[], &ectx)? {
        Value::BigInt(i) => Key::BigInt(i),
        Value::Text(s) => Key::Text(s),
        Value::Null => return Ok(Vec::new()),
        other => {
            return Err(QueryError::Internal(format!(
                "primary key lookup with {other:?}"
            )))
        }
    };
    let mut row = ctx.engine.get(&schema.name, &key)?;
    for w in ctx.pending.iter().filter(|w| w.table == schema.name) {
        match &w.op {
            WriteOp::Insert(r) | WriteOp::Upsert(r) if row_key(schema, r)? == key => {
                row = Some(r.clone())
            }
            WriteOp::Delete(k) if *k == key => row = None,
            _ => {}
        }
    }
    filter_rows(row.into_iter().collect(), filter, &ectx)
}

/// What a [`Plan::VectorSearch`](crate::plan::Plan::VectorSearch) asks for.
pub struct SearchSpec<'p> {
    pub column: usize,
    pub metric: Metric,
    pub query: &'p BExpr,
    pub k: &'p BExpr,
    /// `k` already evaluated (by the caller, who needed it too), so it is not evaluated again.
    pub k_value: Option<Option<usize>>,
    /// The engine's exact top-k (no usable index).
    pub exact: bool,
    /// The columns read from the hits (`None`: all); see [`SearchRequest::columns`].
    pub columns: Option<&'p [usize]>,
}

/// Up to k candidate rows nearest to the query, through the engine's index search or exact
/// top-k; a scan where neither applies (pending transaction writes, a NULL query, k above
/// [`MAX_INDEX_K`]). An exact search that finds fewer than k rows falls back to a scan, so rows
/// whose vector is NULL (which the engine's search skips) still come last, as in a full sort.
pub fn vector_search(
    ctx: &ExecContext<'_>,
    schema: &TableSchema,
    spec: SearchSpec<'_>,
    filter: Option<&BExpr>,
) -> Result<Vec<Row>> {
    Ok(vector_search_hits(ctx, schema, spec, filter)?.0)
}

/// What an index search needs once its arguments are evaluated.
enum SearchArgs<'q> {
    /// Run a scan instead (NULL query, pending writes, k above [`MAX_INDEX_K`]).
    Scan,
    /// `k = 0`: no rows.
    Empty,
    Search {
        query: &'q [f32],
        k: usize,
        column: &'q str,
    },
}

/// Evaluates a search's k and query vector (a parameter or literal vector is borrowed; an
/// evaluated one is kept in `evaluated`) and checks the query's dimension.
fn search_args<'q>(
    ctx: &'q ExecContext<'_>,
    schema: &'q TableSchema,
    spec: &SearchSpec<'q>,
    evaluated: &'q mut Option<Value>,
) -> Result<SearchArgs<'q>> {
    let k = match spec.k_value {
        Some(k) => k,
        None => eval_count(spec.k, ctx, "LIMIT", "2201W")?,
    };
    let borrowed = match spec.query {
        BExpr::Param(i) => Some(
            ctx.params
                .get(*i)
                .ok_or(QueryError::UndefinedParameter(i + 1))?,
        ),
        BExpr::Literal(v) => Some(v),
        // `$1` cast to the column's vector type: a vector parameter of that dimension is
        // borrowed as it is (the cast would only check it and copy it).
        BExpr::Cast(p, SqlType::Vector(dim)) => match p.as_ref() {
            BExpr::Param(i) => ctx.params.get(*i).filter(
                |v| matches!(v, Value::Vector(x) if dim.is_none_or(|d| d as usize == x.len())),
            ),
            _ => None,
        },
        _ => None,
    };
    let query_value = match borrowed {
        Some(v) => v,
        None => evaluated.insert(eval(spec.query, &[], &ctx.eval_ctx())?),
    };
    let query: &[f32] = match query_value {
        Value::Vector(v) => v,
        // `ORDER BY emb <-> NULL`: every distance is NULL; the exact path orders them.
        _ => return Ok(SearchArgs::Scan),
    };
    let k = match k {
        Some(k) if k <= MAX_INDEX_K && !has_pending(ctx, &schema.name) => k,
        _ => return Ok(SearchArgs::Scan),
    };
    if k == 0 {
        return Ok(SearchArgs::Empty);
    }
    let column_def = schema
        .columns
        .get(spec.column)
        .ok_or_else(|| QueryError::Internal("search column out of range".into()))?;
    if let Some(dim) = column_def.ty.vector_dim() {
        if dim != query.len() {
            return Err(QueryError::DataException(format!(
                "different vector dimensions {dim} and {}",
                query.len()
            )));
        }
    }
    Ok(SearchArgs::Search {
        query,
        k,
        column: &column_def.name,
    })
}

/// The engine request of a search whose arguments are evaluated (`(query, k, column)`, see
/// [`search_args`]), with `filter` pushed down.
fn request<'a>(
    ctx: &'a ExecContext<'_>,
    schema: &'a TableSchema,
    spec: &SearchSpec<'a>,
    (query, k, column): (&'a [f32], usize, &'a str),
    filter: Option<&'a RowPredicate<'a>>,
    filter_columns: Option<&'a [usize]>,
) -> SearchRequest<'a> {
    SearchRequest {
        table: &schema.name,
        column,
        query,
        k,
        metric: spec.metric,
        ef_search: ctx.ef_search,
        filter,
        exact: spec.exact,
        columns: spec.columns,
        filter_columns,
    }
}

/// The sorted, distinct column positions a pushed-down filter reads.
fn filter_columns(filter: &BExpr) -> Vec<usize> {
    let mut columns = Vec::new();
    filter.columns_into(&mut columns);
    columns.sort_unstable();
    columns.dedup();
    columns
}

/// [`vector_search`] with each row's distance under the search metric when the rows are the
/// engine's hits (`None` when it fell back to a scan). The engine's distance orders rows as
/// the SQL distance operator does (for L2 it is the square of `<->`: monotone), so a Top-N
/// on the searched distance can order by it instead of recomputing every distance.
pub fn vector_search_hits(
    ctx: &ExecContext<'_>,
    schema: &TableSchema,
    spec: SearchSpec<'_>,
    filter: Option<&BExpr>,
) -> Result<(Vec<Row>, Option<Vec<f32>>)> {
    let mut evaluated = None;
    let (query, k, column) = match search_args(ctx, schema, &spec, &mut evaluated)? {
        SearchArgs::Scan => return Ok((scan(ctx, schema, filter, None)?, None)),
        SearchArgs::Empty => return Ok((Vec::new(), None)),
        SearchArgs::Search { query, k, column } => (query, k, column),
    };
    let ectx = ctx.eval_ctx();
    let filter_columns = filter.map(filter_columns);
    let hits = with_predicate(&ectx, filter, |p| {
        ctx.engine.search(&request(
            ctx,
            schema,
            &spec,
            (query, k, column),
            p,
            filter_columns.as_deref(),
        ))
    })?;
    if spec.exact && hits.len() < k {
        return Ok((scan(ctx, schema, filter, None)?, None));
    }
    // One pass, both vectors at their final size (no shrinking in-place collect).
    let mut rows = Vec::with_capacity(hits.len());
    let mut distances = Vec::with_capacity(hits.len());
    for h in hits {
        rows.push(h.row);
        distances.push(h.distance);
    }
    Ok((rows, Some(distances)))
}

/// The engine's hits of the search [`vector_search_hits`] would run, handed to `visit`
/// (row, distance) without copying them; the number of hits. `None` (nothing visited) where
/// [`vector_search_hits`] would not return exactly the engine's hits: it scans instead, or k
/// is 0. An exact search that finds fewer than k rows has visited them and gives `None` too.
pub fn visit_search_hits(
    ctx: &ExecContext<'_>,
    schema: &TableSchema,
    spec: SearchSpec<'_>,
    filter: Option<&BExpr>,
    visit: &mut dyn FnMut(&[Value], f32),
) -> Result<Option<usize>> {
    let mut evaluated = None;
    let SearchArgs::Search { query, k, column } = search_args(ctx, schema, &spec, &mut evaluated)?
    else {
        return Ok(None);
    };
    let ectx = ctx.eval_ctx();
    let filter_columns = filter.map(filter_columns);
    let n = with_predicate(&ectx, filter, |p| {
        ctx.engine.search_visit(
            &request(
                ctx,
                schema,
                &spec,
                (query, k, column),
                p,
                filter_columns.as_deref(),
            ),
            visit,
        )
    })?;
    Ok((!spec.exact || n >= k).then_some(n))
}
