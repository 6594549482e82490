//! Statement binding: one sqlparser `Statement` -> one [`Bound`] statement.
//!
//! Each SQL construct is bound by its own module ([`crate::select`], [`crate::dml`],
//! [`crate::ddl`]); this file dispatches and handles the small ones (SET/RESET/SHOW, transactions,
//! EXPLAIN, PREPARE/EXECUTE/DEALLOCATE). Anything else is `0A000`, never a panic.

use sqlparser::ast::{ObjectType, Reset, Set, Statement, Value as AstValue};
use vela_engine::catalog::{TableSchema, VectorIndexDef};

use crate::copy::{bind_copy, CopyPlan};
use crate::ddl::{bind_create_index, bind_create_table};
use crate::dml::{bind_delete, bind_insert, bind_update, DeletePlan, InsertPlan, UpdatePlan};
use crate::error::{QueryError, Result};
use crate::expr::bind::{bind_constant, ident_name};
use crate::expr::BExpr;
use crate::plan::QueryPlan;
use crate::select::{object_name, plan_query, BindContext};

/// A bound statement, ready to run (and, for queries and DML, to cache).
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Query(QueryPlan),
    Insert(InsertPlan),
    Update(UpdatePlan),
    Delete(DeletePlan),
    CreateTable {
        schema: TableSchema,
        if_not_exists: bool,
    },
    DropTable {
        names: Vec<String>,
        if_exists: bool,
    },
    CreateIndex {
        table: String,
        index: VectorIndexDef,
        if_not_exists: bool,
    },
    DropIndex {
        names: Vec<String>,
        if_exists: bool,
    },
    Truncate {
        tables: Vec<String>,
    },
    /// `SET name = value`; `None` resets to the default (`RESET`, `SET x TO DEFAULT`).
    Set {
        name: String,
        value: Option<String>,
    },
    ResetAll,
    Show {
        name: String,
    },
    ShowTables,
    Begin,
    Commit,
    Rollback,
    Explain {
        analyze: bool,
        inner: Box<Bound>,
    },
    Prepare {
        name: String,
        statement: Box<Statement>,
    },
    Execute {
        name: String,
        params: Vec<BExpr>,
    },
    Deallocate {
        name: Option<String>,
    },
    /// `COPY ... FROM 'file'` / `COPY ... TO 'file'` ([`crate::copy`]).
    Copy(Box<CopyPlan>),
}

impl Bound {
    /// Whether the bound form may be cached and reused while the tables it reads are unchanged.
    pub fn cacheable(&self) -> bool {
        matches!(
            self,
            Bound::Query(_) | Bound::Insert(_) | Bound::Update(_) | Bound::Delete(_)
        )
    }

    /// The schemas a cached plan depends on.
    pub fn tables(&self) -> Vec<TableSchema> {
        let mut out = Vec::new();
        match self {
            Bound::Query(q) => q.root.tables(&mut out),
            Bound::Insert(i) => {
                out.push(i.schema.clone());
                i.source.root.tables(&mut out);
            }
            Bound::Update(u) => {
                out.push(u.schema.clone());
                u.source.tables(&mut out);
            }
            Bound::Delete(d) => {
                out.push(d.schema.clone());
                d.source.tables(&mut out);
            }
            Bound::Copy(c) => match c.as_ref() {
                CopyPlan::From { schema, .. } => out.push(schema.clone()),
                CopyPlan::To { source, .. } => match source {
                    crate::copy::CopyFromQuery::Table { schema, .. } => out.push(schema.clone()),
                    crate::copy::CopyFromQuery::Query(q) => q.root.tables(&mut out),
                },
            },
            _ => {}
        }
        out
    }
}

/// A SET value as text: identifiers, strings, numbers, booleans.
fn set_value(e: &sqlparser::ast::Expr) -> Result<String> {
    use sqlparser::ast::Expr;
    Ok(match e {
        Expr::Identifier(id) => ident_name(id),
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => n.clone(),
            AstValue::SingleQuotedString(s) => s.clone(),
            AstValue::Boolean(b) => b.to_string(),
            other => other.to_string(),
        },
        Expr::UnaryOp { .. } => e.to_string().replace(' ', ""),
        other => return Err(QueryError::unsupported(format!("SET value {other}"))),
    })
}

fn variable_name(parts: &[sqlparser::ast::Ident]) -> String {
    parts.iter().map(ident_name).collect::<Vec<_>>().join(".")
}

/// Binds one statement.
pub fn bind_statement(stmt: &Statement, ctx: &mut BindContext<'_>) -> Result<Bound> {
    Ok(match stmt {
        Statement::Query(q) => Bound::Query(plan_query(q, ctx)?),
        Statement::Insert(ins) => Bound::Insert(bind_insert(ins, ctx)?),
        Statement::Update(up) => Bound::Update(bind_update(up, ctx)?),
        Statement::Delete(del) => Bound::Delete(bind_delete(del, ctx)?),
        Statement::CreateTable(ct) => Bound::CreateTable {
            schema: bind_create_table(ct)?,
            if_not_exists: ct.if_not_exists,
        },
        Statement::CreateIndex(ci) => {
            let table = object_name(&ci.table_name)?;
            let schema = ctx
                .engine
                .table(&table)?
                .ok_or_else(|| QueryError::UndefinedTable(table.clone()))?;
            if ci.if_not_exists {
                if let Some(name) = &ci.name {
                    let name = object_name(name)?;
                    if schema.indexes.iter().any(|i| i.name == name) {
                        return Ok(Bound::CreateIndex {
                            table,
                            index: schema
                                .indexes
                                .iter()
                                .find(|i| i.name == name)
                                .cloned()
                                .ok_or_else(|| QueryError::Internal("index vanished".into()))?,
                            if_not_exists: true,
                        });
                    }
                }
            }
            Bound::CreateIndex {
                index: bind_create_index(ci, &schema)?,
                table,
                if_not_exists: ci.if_not_exists,
            }
        }
        Statement::Drop {
            object_type,
            if_exists,
            names,
            ..
        } => {
            let names = names.iter().map(object_name).collect::<Result<Vec<_>>>()?;
            match object_type {
                ObjectType::Table => Bound::DropTable {
                    names,
                    if_exists: *if_exists,
                },
                ObjectType::Index => Bound::DropIndex {
                    names,
                    if_exists: *if_exists,
                },
                other => return Err(QueryError::unsupported(format!("DROP {other}"))),
            }
        }
        Statement::Truncate(t) => Bound::Truncate {
            tables: t
                .table_names
                .iter()
                .map(|n| object_name(&n.name))
                .collect::<Result<Vec<_>>>()?,
        },
        Statement::Set(Set::SingleAssignment {
            variable, values, ..
        }) => {
            let name = variable
                .0
                .iter()
                .filter_map(|p| p.as_ident().map(ident_name))
                .collect::<Vec<_>>()
                .join(".");
            let value = match values.as_slice() {
                [v] => {
                    let text = set_value(v)?;
                    (text != "default").then_some(text)
                }
                _ => return Err(QueryError::unsupported("SET with several values")),
            };
            Bound::Set { name, value }
        }
        Statement::Reset(r) => match &r.reset {
            Reset::ALL => Bound::ResetAll,
            Reset::ConfigurationParameter(name) => Bound::Set {
                name: name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident().map(ident_name))
                    .collect::<Vec<_>>()
                    .join("."),
                value: None,
            },
            other => return Err(QueryError::unsupported(format!("RESET {other:?}"))),
        },
        Statement::ShowVariable { variable } => {
            let name = variable_name(variable);
            if name == "tables" {
                Bound::ShowTables
            } else {
                Bound::Show { name }
            }
        }
        Statement::ShowTables { .. } => Bound::ShowTables,
        Statement::StartTransaction { .. } => Bound::Begin,
        Statement::Commit { chain: false, .. } => Bound::Commit,
        Statement::Rollback {
            chain: false,
            savepoint: None,
        } => Bound::Rollback,
        Statement::Explain {
            analyze, statement, ..
        } => Bound::Explain {
            analyze: *analyze,
            inner: Box::new(bind_statement(statement, ctx)?),
        },
        Statement::Prepare {
            name, statement, ..
        } => Bound::Prepare {
            name: ident_name(name),
            statement: statement.clone(),
        },
        Statement::Execute {
            name: Some(name),
            parameters,
            using,
            immediate: false,
            into,
            ..
        } if using.is_empty() && into.is_empty() => Bound::Execute {
            name: object_name(name)?,
            params: parameters
                .iter()
                .map(|p| bind_constant(p, ctx.params).map(|t| t.expr))
                .collect::<Result<Vec<_>>>()?,
        },
        Statement::Deallocate { name, .. } => {
            let n = ident_name(name);
            Bound::Deallocate {
                name: (n != "all").then_some(n),
            }
        }
        Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            payload: None,
        } => Bound::Copy(Box::new(bind_copy(
            source,
            *to,
            target,
            options,
            legacy_options,
            ctx,
        )?)),
        other => {
            let text = other.to_string();
            let head: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            return Err(QueryError::unsupported(head));
        }
    })
}
