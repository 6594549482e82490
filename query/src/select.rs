//! Binding SELECT (and VALUES) into a [`QueryPlan`].
//!
//! FROM gives the input (a table, a sub-select, or one empty row) and the [`Scope`] names resolve
//! in; WHERE becomes a Filter; aggregates and GROUP BY an Aggregate (the select list, HAVING and
//! ORDER BY then bind in aggregate mode against its output); ORDER BY may name output aliases or
//! positions; LIMIT/OFFSET are constant expressions or parameters. The logical plan is
//! `Project(Limit(Sort(Filter(Aggregate(Filter(input))))))`, handed to the optimizer. Joins,
//! set operations and CTEs are `0A000`.

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, LimitClause, OrderByExpr, OrderByKind, OrderBySort, Query, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, TableFactor, Value as AstValue,
};

use crate::engine::Engine;
use crate::error::{QueryError, Result};
use crate::expr::bind::{
    bind_constant, coerce, has_aggregate, ident_name, AggState, Binder, OuterFrame, ParamTypes,
    Typed,
};
use crate::expr::functions::common_type;
use crate::expr::{BExpr, Scope, ScopeColumn};
use crate::plan::optimizer::optimize;
use crate::plan::{OutputColumn, Plan, QueryPlan, SortKey};
use crate::types::SqlType;

/// Largest number of rows a VALUES list may have.
pub const MAX_VALUES_ROWS: usize = 1_000_000;

/// What binding needs: the catalog, the statement's parameter types (and subqueries), and,
/// inside a subquery, the enclosing queries' names.
pub struct BindContext<'a> {
    pub engine: &'a dyn Engine,
    pub params: &'a mut ParamTypes,
    pub outer: Option<&'a OuterFrame<'a>>,
}

impl<'a> BindContext<'a> {
    /// A context for a statement (not inside a subquery).
    pub fn new(engine: &'a dyn Engine, params: &'a mut ParamTypes) -> Self {
        BindContext {
            engine,
            params,
            outer: None,
        }
    }
}

/// Binds and optimizes a query.
pub fn plan_query(query: &Query, ctx: &mut BindContext<'_>) -> Result<QueryPlan> {
    let logical = bind_query(query, ctx)?;
    Ok(QueryPlan::new(
        with_init_plans(optimize(logical.root), ctx.params),
        logical.columns,
    ))
}

/// Puts the statement's init plans (its uncorrelated subqueries, to run first) and subplans (its
/// correlated ones, run by the expressions below) above `root`.
pub fn with_init_plans(root: Plan, params: &mut ParamTypes) -> Plan {
    let plans = std::mem::take(&mut params.init_plans);
    let subplans = std::mem::take(&mut params.sub_plans);
    if plans.is_empty() && subplans.is_empty() {
        root
    } else {
        Plan::InitPlans {
            plans,
            subplans: subplans.into(),
            input: Box::new(root),
        }
    }
}

/// Binds a query into a logical plan.
pub fn bind_query(query: &Query, ctx: &mut BindContext<'_>) -> Result<QueryPlan> {
    if query.with.is_some() {
        return Err(QueryError::unsupported("WITH (common table expressions)"));
    }
    if query.fetch.is_some() || !query.locks.is_empty() {
        return Err(QueryError::unsupported("FETCH and FOR UPDATE"));
    }
    let order_by: &[OrderByExpr] = match &query.order_by {
        None => &[],
        Some(o) => match &o.kind {
            OrderByKind::Expressions(e) => e,
            OrderByKind::All(_) => return Err(QueryError::unsupported("ORDER BY ALL")),
        },
    };
    let (limit, offset) = match &query.limit_clause {
        None => (None, None),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(QueryError::unsupported("LIMIT BY"));
            }
            (limit.clone(), offset.as_ref().map(|o| o.value.clone()))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            (Some(limit.clone()), Some(offset.clone()))
        }
    };
    let limit = limit.map(|e| bind_count(&e, ctx, "LIMIT")).transpose()?;
    let offset = offset.map(|e| bind_count(&e, ctx, "OFFSET")).transpose()?;
    match query.body.as_ref() {
        SetExpr::Select(select) => bind_select(select, order_by, limit, offset, ctx),
        SetExpr::Query(inner) if order_by.is_empty() && limit.is_none() && offset.is_none() => {
            bind_query(inner, ctx)
        }
        SetExpr::Values(values) => {
            let rows: Vec<Vec<Expr>> = values.rows.iter().map(|r| r.content.clone()).collect();
            let mut plan = bind_values(&rows, ctx.params)?;
            if !order_by.is_empty() {
                return Err(QueryError::unsupported("ORDER BY on VALUES"));
            }
            if limit.is_some() || offset.is_some() {
                plan.root = Plan::Limit {
                    input: Box::new(plan.root),
                    limit,
                    offset,
                };
            }
            Ok(plan)
        }
        SetExpr::SetOperation { .. } => Err(QueryError::unsupported("UNION, INTERSECT and EXCEPT")),
        other => Err(QueryError::unsupported(format!("query {other}"))),
    }
}

/// A LIMIT or OFFSET: a constant or parameter of type bigint.
fn bind_count(e: &Expr, ctx: &mut BindContext<'_>, what: &str) -> Result<BExpr> {
    if let Expr::Value(v) = e {
        if v.value == AstValue::Null {
            return Ok(BExpr::Literal(vela_engine::catalog::Value::Null));
        }
    }
    let t = bind_constant(e, ctx.params).map_err(|err| match err {
        QueryError::UndefinedColumn(_) | QueryError::AmbiguousColumn(_) => {
            QueryError::InvalidReference(format!("argument of {what} must not contain variables"))
        }
        other => other,
    })?;
    let ty = t.ty;
    coerce(t, SqlType::BigInt, ctx.params).map_err(|_| {
        QueryError::mismatch(format!(
            "argument of {what} must be type bigint, not type {ty}"
        ))
    })
}

/// Binds `VALUES (...), (...)`: each column takes the common type of its cells.
pub fn bind_values(rows: &[Vec<Expr>], params: &mut ParamTypes) -> Result<QueryPlan> {
    if rows.len() > MAX_VALUES_ROWS {
        return Err(QueryError::ProgramLimitExceeded(format!(
            "VALUES lists are limited to {MAX_VALUES_ROWS} rows"
        )));
    }
    let width = rows.first().map_or(0, Vec::len);
    let mut bound: Vec<Vec<Typed>> = Vec::with_capacity(rows.len());
    for row in rows {
        if row.len() != width {
            return Err(QueryError::Syntax {
                message: "VALUES lists must all be the same length".into(),
                line: 0,
                column: 0,
            });
        }
        bound.push(
            row.iter()
                .map(|e| bind_constant(e, params))
                .collect::<Result<Vec<_>>>()?,
        );
    }
    let mut types = Vec::with_capacity(width);
    for c in 0..width {
        let col: Vec<SqlType> = bound
            .iter()
            .filter_map(|r| r.get(c).map(|t| t.ty))
            .collect();
        // A column of untyped literals and parameters stays untyped: the INSERT target types it.
        let ty = if col.iter().all(|t| t.is_untyped()) {
            if col.contains(&SqlType::Unknown) {
                SqlType::Unknown
            } else {
                SqlType::Null
            }
        } else {
            common_type(&col).ok_or_else(|| {
                QueryError::mismatch(format!(
                    "VALUES types in column {} cannot be matched",
                    c + 1
                ))
            })?
        };
        types.push(ty);
    }
    let mut out_rows = Vec::with_capacity(bound.len());
    for row in bound {
        let mut out = Vec::with_capacity(width);
        for (t, ty) in row.into_iter().zip(&types) {
            out.push(coerce(t, *ty, params)?);
        }
        out_rows.push(out);
    }
    let names: Vec<String> = (1..=width).map(|i| format!("column{i}")).collect();
    let columns = names
        .iter()
        .zip(&types)
        .map(|(n, t)| OutputColumn {
            name: n.clone(),
            ty: *t,
        })
        .collect();
    Ok(QueryPlan::new(
        Plan::Values {
            rows: out_rows,
            names,
        },
        columns,
    ))
}

/// The FROM clause: the input plan and its scope.
fn bind_from(select: &Select, ctx: &mut BindContext<'_>) -> Result<(Plan, Scope)> {
    match select.from.as_slice() {
        [] => Ok((Plan::OneRow, Scope::default())),
        [one] if one.joins.is_empty() => match &one.relation {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                if args.is_some() {
                    return Err(QueryError::unsupported("table functions"));
                }
                let table = object_name(name)?;
                let schema = ctx
                    .engine
                    .table(&table)?
                    .ok_or_else(|| QueryError::UndefinedTable(table.clone()))?;
                let qualifier = alias.as_ref().map_or(table, |a| ident_name(&a.name));
                let scope = aliased_scope(
                    Some(qualifier),
                    alias.as_ref(),
                    schema
                        .columns
                        .iter()
                        .map(|c| (c.name.clone(), SqlType::of_column(c.ty))),
                );
                Ok((
                    Plan::Scan {
                        schema,
                        filter: None,
                        columns: None,
                    },
                    scope,
                ))
            }
            TableFactor::Derived {
                lateral: false,
                subquery,
                alias,
                ..
            } => {
                let inner = bind_query(subquery, ctx)?;
                let qualifier = alias.as_ref().map(|a| ident_name(&a.name));
                let scope = aliased_scope(
                    qualifier,
                    alias.as_ref(),
                    inner.columns.iter().map(|c| (c.name.clone(), c.ty)),
                );
                Ok((inner.root, scope))
            }
            other => Err(QueryError::unsupported(format!("FROM {other}"))),
        },
        _ => Err(QueryError::unsupported("joins")),
    }
}

/// The scope of a FROM item: its columns under `qualifier`, renamed by the alias's column list
/// (`AS a(x, y)`) where it gives names.
fn aliased_scope(
    qualifier: Option<String>,
    alias: Option<&sqlparser::ast::TableAlias>,
    columns: impl Iterator<Item = (String, SqlType)>,
) -> Scope {
    let renames = alias.map(|a| a.columns.as_slice()).unwrap_or_default();
    let columns = columns
        .enumerate()
        .map(|(i, (name, ty))| ScopeColumn {
            qualifier: qualifier.clone(),
            name: renames.get(i).map_or(name, |r| ident_name(&r.name)),
            ty,
        })
        .collect();
    Scope { columns }
}

/// A table name: `t` or `schema.t` (the schema is ignored), folded like identifiers.
pub fn object_name(name: &sqlparser::ast::ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(ident_name))
        .collect();
    match parts.as_slice() {
        [t] => Ok(t.clone()),
        [s, t] if s == "public" => Ok(t.clone()),
        _ => Err(QueryError::unsupported(format!("qualified name {name}"))),
    }
}

/// The column name PostgreSQL gives an unaliased select item.
fn default_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(id) => ident_name(id),
        Expr::CompoundIdentifier(parts) => parts.last().map_or("?column?".into(), ident_name),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map_or("?column?".into(), |i| i.value.to_lowercase()),
        Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            Expr::Value(_) => data_type.to_string().to_lowercase(),
            inner => default_name(inner),
        },
        Expr::Nested(inner) => default_name(inner),
        _ => "?column?".into(),
    }
}

/// Expands the select list into (AST, name) pairs, wildcards included.
fn expand_projection(select: &Select, scope: &Scope) -> Result<Vec<(Expr, String)>> {
    let mut items = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(e) => items.push((e.clone(), default_name(e))),
            SelectItem::ExprWithAlias { expr, alias } => {
                items.push((expr.clone(), ident_name(alias)))
            }
            SelectItem::Wildcard(_) => {
                if scope.columns.is_empty() {
                    return Err(QueryError::InvalidReference(
                        "SELECT * with no tables specified is not valid".into(),
                    ));
                }
                for c in &scope.columns {
                    items.push((column_ref(c), c.name.clone()));
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                let q = object_name(name)?;
                let cols: Vec<&ScopeColumn> = scope
                    .columns
                    .iter()
                    .filter(|c| c.qualifier.as_deref() == Some(&q))
                    .collect();
                if cols.is_empty() {
                    return Err(QueryError::UndefinedTable(format!(
                        "{q}\" (missing FROM-clause entry for table \"{q}"
                    )));
                }
                for c in cols {
                    items.push((column_ref(c), c.name.clone()));
                }
            }
            other => return Err(QueryError::unsupported(format!("select item {other}"))),
        }
    }
    Ok(items)
}

/// An AST reference to a scope column (qualified when it has a qualifier).
fn column_ref(c: &ScopeColumn) -> Expr {
    let quoted = |s: &str| sqlparser::ast::Ident::with_quote('"', s);
    match &c.qualifier {
        Some(q) => Expr::CompoundIdentifier(vec![quoted(q), quoted(&c.name)]),
        None => Expr::Identifier(quoted(&c.name)),
    }
}

fn bind_select(
    select: &Select,
    order_by: &[OrderByExpr],
    limit: Option<BExpr>,
    offset: Option<BExpr>,
    ctx: &mut BindContext<'_>,
) -> Result<QueryPlan> {
    if select.into.is_some() || select.top.is_some() || select.qualify.is_some() {
        return Err(QueryError::unsupported("SELECT INTO, TOP and QUALIFY"));
    }
    let distinct = match &select.distinct {
        None | Some(Distinct::All) => false,
        Some(Distinct::Distinct) => true,
        Some(Distinct::On(_)) => return Err(QueryError::unsupported("DISTINCT ON")),
    };
    let (mut plan, scope) = bind_from(select, ctx)?;
    let engine = ctx.engine;
    let outer = ctx.outer;
    if let Some(w) = &select.selection {
        let predicate = Binder::new(&scope, ctx.params)
            .with_engine(ctx.engine)
            .with_outer(outer)
            .bind_as(w, SqlType::Boolean, "WHERE")?;
        plan = Plan::Filter {
            input: Box::new(plan),
            predicate,
        };
    }
    let items = expand_projection(select, &scope)?;
    let group_asts = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.clone(),
        _ => {
            return Err(QueryError::unsupported(
                "GROUP BY ALL and grouping modifiers",
            ))
        }
    };
    let aggregating = !group_asts.is_empty()
        || select.having.is_some()
        || items.iter().any(|(e, _)| has_aggregate(e))
        || order_by.iter().any(|o| has_aggregate(&o.expr));

    let mut exprs = Vec::with_capacity(items.len());
    let mut columns = Vec::with_capacity(items.len());
    let mut sort_keys = Vec::new();
    if aggregating {
        let group_asts = resolve_group_by(group_asts, &items, &scope)?;
        let mut agg = AggState::new(scope.clone(), group_asts, ctx.params)?;
        let agg_scope = Scope::default();
        for (e, name) in &items {
            let t = Binder::with_aggregates(&agg_scope, ctx.params, &mut agg)
                .with_engine(ctx.engine)
                .with_outer(outer)
                .bind(e)?;
            columns.push(OutputColumn {
                name: name.clone(),
                ty: t.ty,
            });
            exprs.push(t.expr);
        }
        let having = match &select.having {
            Some(h) => Some(
                Binder::with_aggregates(&agg_scope, ctx.params, &mut agg)
                    .with_engine(ctx.engine)
                    .with_outer(outer)
                    .bind_as(h, SqlType::Boolean, "HAVING")?,
            ),
            None => None,
        };
        for o in order_by {
            let key = bind_sort_key(
                o,
                &items,
                &exprs,
                |e, params| {
                    Binder::with_aggregates(&agg_scope, params, &mut agg)
                        .with_engine(engine)
                        .with_outer(outer)
                        .bind(e)
                },
                ctx.params,
            )?;
            sort_keys.push(key);
        }
        plan = Plan::Aggregate {
            input: Box::new(plan),
            groups: agg.groups.iter().map(|g| g.expr.clone()).collect(),
            calls: agg.calls.clone(),
        };
        if let Some(predicate) = having {
            plan = Plan::Filter {
                input: Box::new(plan),
                predicate,
            };
        }
    } else {
        for (e, name) in &items {
            let t = Binder::new(&scope, ctx.params)
                .with_engine(ctx.engine)
                .with_outer(outer)
                .bind(e)?;
            columns.push(OutputColumn {
                name: name.clone(),
                ty: t.ty,
            });
            exprs.push(t.expr);
        }
        for o in order_by {
            let key = bind_sort_key(
                o,
                &items,
                &exprs,
                |e, params| {
                    Binder::new(&scope, params)
                        .with_engine(engine)
                        .with_outer(outer)
                        .bind(e)
                },
                ctx.params,
            )?;
            sort_keys.push(key);
        }
    }
    if !sort_keys.is_empty() {
        plan = Plan::Sort {
            input: Box::new(plan),
            keys: sort_keys,
        };
    }
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let limited = |plan: Plan| {
        if limit.is_none() && offset.is_none() {
            plan
        } else {
            Plan::Limit {
                input: Box::new(plan),
                limit: limit.clone(),
                offset: offset.clone(),
            }
        }
    };
    let root = if distinct {
        limited(Plan::Distinct {
            input: Box::new(Plan::Project {
                input: Box::new(plan),
                exprs,
                names,
            }),
        })
    } else {
        Plan::Project {
            input: Box::new(limited(plan)),
            exprs,
            names,
        }
    };
    Ok(QueryPlan::new(root, columns))
}

/// GROUP BY items may be positions (`GROUP BY 1`) or output aliases; both become the select
/// item's expression.
fn resolve_group_by(
    group_asts: Vec<Expr>,
    items: &[(Expr, String)],
    scope: &Scope,
) -> Result<Vec<Expr>> {
    group_asts
        .into_iter()
        .map(|g| {
            if let Some(pos) = position(&g) {
                return items
                    .get(pos.wrapping_sub(1))
                    .map(|(e, _)| e.clone())
                    .ok_or_else(|| {
                        QueryError::InvalidReference(format!(
                            "GROUP BY position {pos} is not in select list"
                        ))
                    });
            }
            if let Expr::Identifier(id) = &g {
                let name = ident_name(id);
                if !scope.columns.iter().any(|c| c.name == name) {
                    if let Some((e, _)) = items.iter().find(|(_, n)| *n == name) {
                        return Ok(e.clone());
                    }
                }
            }
            Ok(g)
        })
        .collect()
}

/// An integer literal used as a position (ORDER BY 1, GROUP BY 2).
fn position(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// An ORDER BY item: a position, an output alias, or an expression over the input.
fn bind_sort_key(
    o: &OrderByExpr,
    items: &[(Expr, String)],
    exprs: &[BExpr],
    mut bind: impl FnMut(&Expr, &mut ParamTypes) -> Result<Typed>,
    params: &mut ParamTypes,
) -> Result<SortKey> {
    let asc = match &o.options.sort {
        None | Some(OrderBySort::Asc) => true,
        Some(OrderBySort::Desc) => false,
        Some(OrderBySort::Using(_)) => return Err(QueryError::unsupported("ORDER BY USING")),
    };
    let nulls_first = o.options.nulls_first.unwrap_or(!asc);
    let expr = if let Some(pos) = position(&o.expr) {
        exprs.get(pos.wrapping_sub(1)).cloned().ok_or_else(|| {
            QueryError::InvalidReference(format!("ORDER BY position {pos} is not in select list"))
        })?
    } else {
        let alias = match &o.expr {
            Expr::Identifier(id) => {
                let name = ident_name(id);
                items.iter().position(|(e, n)| {
                    *n == name && !matches!(e, Expr::Identifier(i) if ident_name(i) == name)
                })
            }
            _ => None,
        };
        match alias.and_then(|i| exprs.get(i)) {
            Some(e) => e.clone(),
            None => bind(&o.expr, params)?.expr,
        }
    };
    if o.with_fill.is_some() {
        return Err(QueryError::unsupported("WITH FILL"));
    }
    Ok(SortKey {
        expr,
        asc,
        nulls_first,
    })
}
