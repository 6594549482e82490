//! DML: INSERT (VALUES or SELECT, ON CONFLICT (key) DO NOTHING / DO UPDATE), UPDATE and DELETE.
//!
//! Binding resolves target columns and builds a source plan (the rows to insert, or the rows an
//! UPDATE/DELETE touches, planned like a SELECT so primary-key equality becomes a point lookup).
//! Execution turns rows into [`WriteOp`]s: values are assigned to columns with PostgreSQL's
//! assignment casts (text -> vector with pgvector's dimension check, double -> bigint rounding),
//! NOT NULL is enforced (`23502`), and conflicts are decided against the engine plus the
//! statement's own earlier rows. All of a statement's operations go to the engine as one batch.

use std::collections::HashMap;

use sqlparser::ast::{
    Assignment, AssignmentTarget, ConflictTarget, Delete, FromTable, Insert, OnConflictAction,
    OnInsert, TableFactor, TableObject, Update,
};
use vela_engine::catalog::{Key, TableSchema, Value};

use crate::engine::{row_key, Row, WriteOp};
use crate::error::{QueryError, Result};
use crate::exec::{execute, source, ExecContext};
use crate::expr::bind::{coerce, ident_name, Binder};
use crate::expr::cast::cast_value;
use crate::expr::eval::{eval, eval_predicate};
use crate::expr::{BExpr, Scope, ScopeColumn};
use crate::plan::optimizer::optimize;
use crate::plan::{Plan, QueryPlan};
use crate::select::{bind_query, object_name, with_init_plans, BindContext};
use crate::types::SqlType;

/// What INSERT does with a row whose key exists.
#[derive(Debug, Clone, PartialEq)]
pub enum OnConflict {
    /// Fail with `23505`.
    Error,
    DoNothing,
    /// Assign these columns, evaluated over `existing row ++ EXCLUDED row`, if `filter` holds.
    DoUpdate {
        assignments: Vec<(usize, BExpr)>,
        filter: Option<BExpr>,
    },
}

/// A bound INSERT.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertPlan {
    pub schema: TableSchema,
    /// For each source column, the target column's position.
    pub targets: Vec<usize>,
    pub source: QueryPlan,
    pub on_conflict: OnConflict,
}

/// A bound UPDATE: the rows to change and the new values, over the old row.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    pub schema: TableSchema,
    pub source: Plan,
    pub assignments: Vec<(usize, BExpr)>,
}

/// A bound DELETE.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletePlan {
    pub schema: TableSchema,
    pub source: Plan,
}

fn table_scope(schema: &TableSchema, qualifier: &str) -> Scope {
    Scope {
        columns: schema
            .columns
            .iter()
            .map(|c| ScopeColumn {
                qualifier: Some(qualifier.to_string()),
                name: c.name.clone(),
                ty: SqlType::of_column(c.ty),
            })
            .collect(),
    }
}

fn lookup_table(ctx: &BindContext<'_>, name: &str) -> Result<TableSchema> {
    ctx.engine
        .table(name)?
        .ok_or_else(|| QueryError::UndefinedTable(name.to_string()))
}

/// Binds `SET col = expr, ...` over `scope`; values are coerced to the column types.
fn bind_assignments(
    assignments: &[Assignment],
    schema: &TableSchema,
    scope: &Scope,
    ctx: &mut BindContext<'_>,
) -> Result<Vec<(usize, BExpr)>> {
    let mut out = Vec::with_capacity(assignments.len());
    for a in assignments {
        let AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(QueryError::unsupported("tuple assignments"));
        };
        let col = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(ident_name)
            .unwrap_or_default();
        let (i, def) = schema.column(&col).ok_or_else(|| {
            QueryError::UndefinedColumn(format!("{col}\" of relation \"{}", schema.name))
        })?;
        if out.iter().any(|(j, _)| *j == i) {
            return Err(QueryError::InvalidReference(format!(
                "multiple assignments to same column \"{col}\""
            )));
        }
        let target = SqlType::of_column(def.ty);
        let t = Binder::new(scope, ctx.params)
            .with_engine(ctx.engine)
            .bind(&a.value)?;
        out.push((i, assign_coerce(t, target, &col, ctx)?));
    }
    Ok(out)
}

/// Assignment coercion: implicit coercions plus double -> bigint (PostgreSQL's assignment cast).
fn assign_coerce(
    t: crate::expr::bind::Typed,
    target: SqlType,
    column: &str,
    ctx: &mut BindContext<'_>,
) -> Result<BExpr> {
    let from = t.ty;
    if from == SqlType::Double && target == SqlType::BigInt {
        return Ok(BExpr::Cast(Box::new(t.expr), target));
    }
    coerce(t, target, ctx.params).map_err(|e| match e {
        QueryError::DatatypeMismatch(_) => QueryError::mismatch(format!(
            "column \"{column}\" is of type {target} but expression is of type {from}"
        )),
        other => other,
    })
}

/// Binds INSERT.
pub fn bind_insert(ins: &Insert, ctx: &mut BindContext<'_>) -> Result<InsertPlan> {
    if ins.returning.is_some() {
        return Err(QueryError::unsupported("RETURNING"));
    }
    let TableObject::TableName(name) = &ins.table else {
        return Err(QueryError::unsupported("INSERT INTO a table function"));
    };
    let schema = lookup_table(ctx, &object_name(name)?)?;
    let targets: Vec<usize> = if ins.columns.is_empty() {
        (0..schema.columns.len()).collect()
    } else {
        let mut t = Vec::with_capacity(ins.columns.len());
        for c in &ins.columns {
            let cname =
                c.0.last()
                    .and_then(|p| p.as_ident())
                    .map(ident_name)
                    .unwrap_or_default();
            let (i, _) = schema.column(&cname).ok_or_else(|| {
                QueryError::UndefinedColumn(format!("{cname}\" of relation \"{}", schema.name))
            })?;
            if t.contains(&i) {
                return Err(QueryError::InvalidReference(format!(
                    "column \"{cname}\" specified more than once"
                )));
            }
            t.push(i);
        }
        t
    };
    let Some(source) = &ins.source else {
        return Err(QueryError::unsupported("INSERT without VALUES or SELECT"));
    };
    let mut source = bind_query(source, ctx)?;
    if source.columns.len() > targets.len() {
        return Err(QueryError::Syntax {
            message: "INSERT has more expressions than target columns".into(),
            line: 0,
            column: 0,
        });
    }
    let targets: Vec<usize> = targets.into_iter().take(source.columns.len()).collect();
    for (c, &t) in source.columns.iter().zip(&targets) {
        let Some(def) = schema.columns.get(t) else {
            continue;
        };
        let want = SqlType::of_column(def.ty);
        let ok = c.ty == want
            || c.ty.is_untyped()
            || (c.ty.is_numeric() && want.is_numeric())
            || (c.ty.is_vector() && want.is_vector());
        if !ok {
            return Err(QueryError::mismatch(format!(
                "column \"{}\" is of type {want} but expression is of type {}",
                def.name, c.ty
            )));
        }
    }
    let on_conflict = match &ins.on {
        None => OnConflict::Error,
        Some(OnInsert::OnConflict(oc)) => {
            match &oc.conflict_target {
                None => {}
                Some(ConflictTarget::Columns {
                    columns: cols,
                    predicate: None,
                }) => {
                    let pk = &schema.primary_key_column().name;
                    if !(cols.len() == 1 && cols.first().map(ident_name).as_ref() == Some(pk)) {
                        return Err(QueryError::InvalidReference(
                            "there is no unique or exclusion constraint matching the ON CONFLICT specification".into(),
                        ));
                    }
                }
                Some(_) => {
                    return Err(QueryError::unsupported(
                        "ON CONFLICT ON CONSTRAINT or with a predicate",
                    ))
                }
            }
            match &oc.action {
                OnConflictAction::DoNothing => OnConflict::DoNothing,
                OnConflictAction::DoUpdate(du) => {
                    if oc.conflict_target.is_none() {
                        return Err(QueryError::InvalidReference(
                            "ON CONFLICT DO UPDATE requires inference specification or constraint name".into(),
                        ));
                    }
                    let mut scope = table_scope(&schema, &schema.name);
                    scope
                        .columns
                        .extend(table_scope(&schema, "excluded").columns);
                    let assignments = bind_assignments(&du.assignments, &schema, &scope, ctx)?;
                    let filter = du
                        .selection
                        .as_ref()
                        .map(|w| {
                            Binder::new(&scope, ctx.params).bind_as(w, SqlType::Boolean, "WHERE")
                        })
                        .transpose()?;
                    OnConflict::DoUpdate {
                        assignments,
                        filter,
                    }
                }
            }
        }
        Some(other) => return Err(QueryError::unsupported(format!("{other}"))),
    };
    // The subqueries of the source and of ON CONFLICT DO UPDATE run under one InitPlans root:
    // the assignments are evaluated after the source has run, with its init plans' values.
    source.root = with_init_plans(optimize(source.root), ctx.params);
    Ok(InsertPlan {
        schema,
        targets,
        source,
        on_conflict,
    })
}

/// The single target table of UPDATE/DELETE and its qualifier.
fn target_table(factor: &TableFactor) -> Result<(String, String)> {
    match factor {
        TableFactor::Table { name, alias, .. } => {
            let table = object_name(name)?;
            let q = alias
                .as_ref()
                .map_or(table.clone(), |a| ident_name(&a.name));
            Ok((table, q))
        }
        _ => Err(QueryError::unsupported("UPDATE/DELETE of a non-table")),
    }
}

/// The rows an UPDATE or DELETE changes: the table's rows for which `predicate` holds, under
/// the init plans of the statement's uncorrelated subqueries (in SET or WHERE), which run
/// first, and its correlated ones (run per target row), all on the table as it was before the
/// statement.
fn filtered_scan(schema: TableSchema, predicate: Option<BExpr>, ctx: &mut BindContext<'_>) -> Plan {
    let scan = Plan::Scan {
        schema,
        filter: None,
        columns: None,
    };
    let plan = optimize(match predicate {
        Some(predicate) => Plan::Filter {
            input: Box::new(scan),
            predicate,
        },
        None => scan,
    });
    with_init_plans(plan, ctx.params)
}

/// Binds an UPDATE's or DELETE's WHERE clause over the target table.
fn bind_where(
    selection: Option<&sqlparser::ast::Expr>,
    scope: &Scope,
    ctx: &mut BindContext<'_>,
) -> Result<Option<BExpr>> {
    selection
        .map(|w| {
            Binder::new(scope, ctx.params)
                .with_engine(ctx.engine)
                .bind_as(w, SqlType::Boolean, "WHERE")
        })
        .transpose()
}

/// Binds UPDATE.
pub fn bind_update(up: &Update, ctx: &mut BindContext<'_>) -> Result<UpdatePlan> {
    if up.from.is_some()
        || up.returning.is_some()
        || !up.table.joins.is_empty()
        || up.limit.is_some()
    {
        return Err(QueryError::unsupported(
            "UPDATE with FROM, joins, LIMIT or RETURNING",
        ));
    }
    let (table, q) = target_table(&up.table.relation)?;
    let schema = lookup_table(ctx, &table)?;
    let scope = table_scope(&schema, &q);
    let assignments = bind_assignments(&up.assignments, &schema, &scope, ctx)?;
    let predicate = bind_where(up.selection.as_ref(), &scope, ctx)?;
    Ok(UpdatePlan {
        source: filtered_scan(schema.clone(), predicate, ctx),
        schema,
        assignments,
    })
}

/// Binds DELETE.
pub fn bind_delete(del: &Delete, ctx: &mut BindContext<'_>) -> Result<DeletePlan> {
    if del.using.is_some()
        || del.returning.is_some()
        || del.limit.is_some()
        || !del.tables.is_empty()
    {
        return Err(QueryError::unsupported(
            "DELETE with USING, LIMIT or RETURNING",
        ));
    }
    let from = match &del.from {
        FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
    };
    let [one] = from.as_slice() else {
        return Err(QueryError::unsupported("DELETE from several tables"));
    };
    if !one.joins.is_empty() {
        return Err(QueryError::unsupported("joins"));
    }
    let (table, q) = target_table(&one.relation)?;
    let schema = lookup_table(ctx, &table)?;
    let scope = table_scope(&schema, &q);
    let predicate = bind_where(del.selection.as_ref(), &scope, ctx)?;
    Ok(DeletePlan {
        source: filtered_scan(schema.clone(), predicate, ctx),
        schema,
    })
}

/// Casts a value into a column and enforces NOT NULL.
fn assign(schema: &TableSchema, col: usize, v: Value) -> Result<Value> {
    let def = schema
        .columns
        .get(col)
        .ok_or_else(|| QueryError::Internal("column out of range".into()))?;
    let v = cast_value(v, SqlType::of_column(def.ty))?;
    if v == Value::Null && !def.nullable {
        return Err(QueryError::NotNullViolation {
            table: schema.name.clone(),
            column: def.name.clone(),
        });
    }
    Ok(v)
}

fn check_not_null(schema: &TableSchema, row: &[Value]) -> Result<()> {
    for (def, v) in schema.columns.iter().zip(row) {
        if *v == Value::Null && !def.nullable {
            return Err(QueryError::NotNullViolation {
                table: schema.name.clone(),
                column: def.name.clone(),
            });
        }
    }
    Ok(())
}

/// The row with `key` as the statement sees it: its own earlier writes, then the session's and
/// the engine's state.
fn current_row(
    ctx: &ExecContext<'_>,
    schema: &TableSchema,
    key: &Key,
    written: &HashMap<Key, Option<Row>>,
) -> Result<Option<Row>> {
    if let Some(r) = written.get(key) {
        return Ok(r.clone());
    }
    let key_expr = BExpr::Literal(match key {
        Key::BigInt(i) => Value::BigInt(*i),
        Key::Text(s) => Value::Text(s.clone()),
    });
    Ok(source::point_lookup(ctx, schema, &key_expr, None)?
        .into_iter()
        .next())
}

/// Runs INSERT: the operations to apply and the number of rows inserted or updated.
pub fn run_insert(plan: &InsertPlan, ctx: &mut ExecContext<'_>) -> Result<(Vec<WriteOp>, u64)> {
    let schema = &plan.schema;
    let rows = execute(&plan.source.root, ctx)?;
    let mut ops = Vec::with_capacity(rows.len());
    let mut written: HashMap<Key, Option<Row>> = HashMap::new();
    let mut count = 0u64;
    let check_conflicts = plan.on_conflict != OnConflict::Error || !ctx.pending.is_empty();
    for src in rows {
        let mut row = vec![Value::Null; schema.columns.len()];
        for (v, &t) in src.into_iter().zip(&plan.targets) {
            let v = assign(schema, t, v)?;
            if let Some(slot) = row.get_mut(t) {
                *slot = v;
            }
        }
        check_not_null(schema, &row)?;
        let key = row_key(schema, &row)?;
        if !check_conflicts {
            if written.insert(key.clone(), Some(row.clone())).is_some() {
                return Err(duplicate(schema, &key));
            }
            ops.push(WriteOp::Insert(row));
            count += 1;
            continue;
        }
        let existing = current_row(ctx, schema, &key, &written)?;
        match (&plan.on_conflict, existing) {
            (_, None) => {
                written.insert(key, Some(row.clone()));
                ops.push(WriteOp::Upsert(row));
                count += 1;
            }
            (OnConflict::Error, Some(_)) => return Err(duplicate(schema, &key)),
            (OnConflict::DoNothing, Some(_)) => {}
            (
                OnConflict::DoUpdate {
                    assignments,
                    filter,
                },
                Some(old),
            ) => {
                let mut both = old.clone();
                both.extend(row.iter().cloned());
                let ectx = ctx.eval_ctx();
                if let Some(f) = filter {
                    if !eval_predicate(f, &both, &ectx)? {
                        continue;
                    }
                }
                let mut new = old;
                for (col, e) in assignments {
                    let v = assign(schema, *col, eval(e, &both, &ectx)?)?;
                    if let Some(slot) = new.get_mut(*col) {
                        *slot = v;
                    }
                }
                let new_key = row_key(schema, &new)?;
                if new_key != key {
                    return Err(QueryError::unsupported(
                        "ON CONFLICT DO UPDATE of the primary key",
                    ));
                }
                written.insert(key, Some(new.clone()));
                ops.push(WriteOp::Upsert(new));
                count += 1;
            }
        }
    }
    Ok((ops, count))
}

fn duplicate(schema: &TableSchema, key: &Key) -> QueryError {
    QueryError::UniqueViolation {
        table: schema.name.clone(),
        column: schema.primary_key_column().name.clone(),
        key: key.to_string(),
    }
}

/// Runs UPDATE: operations and the number of rows updated.
pub fn run_update(plan: &UpdatePlan, ctx: &mut ExecContext<'_>) -> Result<(Vec<WriteOp>, u64)> {
    let schema = &plan.schema;
    let rows = execute(&plan.source, ctx)?;
    let ectx = ctx.eval_ctx();
    let mut ops = Vec::with_capacity(rows.len());
    let mut new_keys: HashMap<Key, ()> = HashMap::new();
    let old_keys: Vec<Key> = rows
        .iter()
        .map(|r| row_key(schema, r))
        .collect::<Result<_>>()?;
    let count = rows.len() as u64;
    for (old, old_key) in rows.into_iter().zip(old_keys.iter()) {
        let mut new = old.clone();
        for (col, e) in &plan.assignments {
            let v = assign(schema, *col, eval(e, &old, &ectx)?)?;
            if let Some(slot) = new.get_mut(*col) {
                *slot = v;
            }
        }
        let key = row_key(schema, &new)?;
        if new_keys.insert(key.clone(), ()).is_some() {
            return Err(duplicate(schema, &key));
        }
        if key != *old_key {
            let moved_onto_untouched = !old_keys.contains(&key)
                && current_row(ctx, schema, &key, &HashMap::new())?.is_some();
            if moved_onto_untouched {
                return Err(duplicate(schema, &key));
            }
            ops.push(WriteOp::Delete(old_key.clone()));
        }
        ops.push(WriteOp::Upsert(new));
    }
    // Deletes of moved keys must precede the upserts that may reuse them.
    ops.sort_by_key(|op| !matches!(op, WriteOp::Delete(_)));
    Ok((ops, count))
}

/// Runs DELETE: operations and the number of rows deleted.
pub fn run_delete(plan: &DeletePlan, ctx: &mut ExecContext<'_>) -> Result<(Vec<WriteOp>, u64)> {
    let rows = execute(&plan.source, ctx)?;
    let ops = rows
        .iter()
        .map(|r| row_key(&plan.schema, r).map(WriteOp::Delete))
        .collect::<Result<Vec<_>>>()?;
    let n = ops.len() as u64;
    Ok((ops, n))
}
