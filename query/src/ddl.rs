//! DDL: CREATE TABLE (with `VECTOR(n)`, PRIMARY KEY, NOT NULL, `WITH (shards = n)`), CREATE INDEX
//! `USING hnsw (col <opclass>) WITH (m, ef_construction)`, and the names DROP TABLE / DROP INDEX /
//! TRUNCATE act on. Binding produces catalog values ([`TableSchema`], [`VectorIndexDef`]) checked
//! with the catalog's own validation, so a bad definition never reaches the engine.

use sqlparser::ast::{
    ColumnOption, CreateIndex, CreateTable, CreateTableOptions, Expr, IndexType, SqlOption,
    TableConstraint, Value as AstValue,
};
use vela_engine::catalog::{ColumnDef, HnswConfig, TableSchema, VectorIndexDef};
use vela_engine::Metric;

use crate::error::{QueryError, Result};
use crate::expr::bind::ident_name;
use crate::select::object_name;
use crate::types::{column_type, resolve_ast_type};

/// Default shard count of a new table.
pub const DEFAULT_SHARDS: u32 = 1;

fn option_number(name: &str, value: &Expr) -> Result<i64> {
    let bad = || {
        QueryError::InvalidParameterValue(format!(
            "invalid value for parameter \"{name}\": \"{value}\""
        ))
    };
    match value {
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => n.parse().map_err(|_| bad()),
            AstValue::SingleQuotedString(s) => s.trim().parse().map_err(|_| bad()),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// Binds CREATE TABLE into a validated schema.
pub fn bind_create_table(ct: &CreateTable) -> Result<TableSchema> {
    if ct.query.is_some() || ct.like.is_some() || ct.clone.is_some() {
        return Err(QueryError::unsupported("CREATE TABLE AS/LIKE/CLONE"));
    }
    if ct.or_replace {
        return Err(QueryError::unsupported("CREATE OR REPLACE TABLE"));
    }
    let name = object_name(&ct.name)?;
    let mut columns = Vec::with_capacity(ct.columns.len());
    let mut primary_key: Option<usize> = None;
    let set_pk = |pk: &mut Option<usize>, i: usize| {
        if pk.is_some_and(|p| p != i) {
            return Err(QueryError::InvalidReference(format!(
                "multiple primary keys for table \"{name}\" are not allowed"
            )));
        }
        *pk = Some(i);
        Ok(())
    };
    for (i, c) in ct.columns.iter().enumerate() {
        let cname = ident_name(&c.name);
        let ty = column_type(resolve_ast_type(&c.data_type)?, &cname)?;
        let mut nullable = true;
        for opt in &c.options {
            match &opt.option {
                ColumnOption::NotNull => nullable = false,
                ColumnOption::Null => nullable = true,
                ColumnOption::PrimaryKey(_) => {
                    set_pk(&mut primary_key, i)?;
                    nullable = false;
                }
                other => return Err(QueryError::unsupported(format!("column option {other}"))),
            }
        }
        columns.push(ColumnDef {
            name: cname,
            ty,
            nullable,
        });
    }
    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let [col] = pk.columns.as_slice() else {
                    return Err(QueryError::unsupported("composite primary keys"));
                };
                let Expr::Identifier(id) = &col.column.expr else {
                    return Err(QueryError::unsupported("primary key on an expression"));
                };
                let cname = ident_name(id);
                let i = columns
                    .iter()
                    .position(|c| c.name == cname)
                    .ok_or_else(|| {
                        QueryError::UndefinedColumn(format!(
                            "{cname}\" named in key does not exist (column \"{cname}"
                        ))
                    })?;
                set_pk(&mut primary_key, i)?;
                if let Some(c) = columns.get_mut(i) {
                    c.nullable = false;
                }
            }
            other => return Err(QueryError::unsupported(format!("constraint {other}"))),
        }
    }
    let Some(primary_key) = primary_key else {
        return Err(QueryError::unsupported(format!(
            "table \"{name}\" without a PRIMARY KEY (Vela tables need one BIGINT or TEXT key)"
        )));
    };
    let mut shards = DEFAULT_SHARDS;
    let options: &[SqlOption] = match &ct.table_options {
        CreateTableOptions::None => &[],
        CreateTableOptions::With(o) => o,
        _ => {
            return Err(QueryError::unsupported(
                "table options other than WITH (...)",
            ))
        }
    };
    for o in options {
        match o {
            SqlOption::KeyValue { key, value }
                if key.to_string().eq_ignore_ascii_case("shards") =>
            {
                let n = option_number("shards", value)?;
                shards = u32::try_from(n).map_err(|_| {
                    QueryError::InvalidParameterValue(format!(
                        "shard count must be between 1 and 1024, not {n}"
                    ))
                })?;
            }
            other => {
                return Err(QueryError::InvalidParameterValue(format!(
                    "unrecognized parameter \"{other}\""
                )))
            }
        }
    }
    let schema = TableSchema {
        name,
        columns,
        primary_key,
        shards,
        indexes: Vec::new(),
    };
    schema.validate().map_err(|e| match e {
        vela_engine::catalog::SchemaError::DuplicateColumn(c) => {
            QueryError::DuplicateObject(format!("column \"{c}\" specified more than once"))
        }
        vela_engine::catalog::SchemaError::PrimaryKeyType { .. } => {
            QueryError::mismatch(e.to_string())
        }
        other => QueryError::InvalidParameterValue(other.to_string()),
    })?;
    Ok(schema)
}

/// The metric of a pgvector operator class.
fn opclass_metric(opclass: &str) -> Result<Metric> {
    Ok(match opclass {
        "vector_l2_ops" => Metric::L2,
        "vector_cosine_ops" => Metric::Cosine,
        "vector_ip_ops" => Metric::InnerProduct,
        "vector_l1_ops" => Metric::L1,
        other => {
            return Err(QueryError::UndefinedObject(format!(
                "operator class \"{other}\" does not exist for access method \"hnsw\""
            )))
        }
    })
}

/// Binds CREATE INDEX against the table's schema: (table, index definition).
pub fn bind_create_index(ci: &CreateIndex, schema: &TableSchema) -> Result<VectorIndexDef> {
    match &ci.using {
        Some(IndexType::Custom(id)) if ident_name(id) == "hnsw" => {}
        None => {
            return Err(QueryError::unsupported(
                "indexes other than hnsw (write CREATE INDEX ... USING hnsw (col vector_l2_ops))",
            ))
        }
        Some(other) => return Err(QueryError::unsupported(format!("index method {other}"))),
    }
    if ci.unique || ci.predicate.is_some() || !ci.include.is_empty() {
        return Err(QueryError::unsupported(
            "UNIQUE, partial and INCLUDE indexes",
        ));
    }
    let [col] = ci.columns.as_slice() else {
        return Err(QueryError::unsupported(
            "hnsw indexes on more than one column",
        ));
    };
    let Expr::Identifier(id) = &col.column.expr else {
        return Err(QueryError::unsupported("hnsw indexes on expressions"));
    };
    let column = ident_name(id);
    let (_, def) = schema
        .column(&column)
        .ok_or_else(|| QueryError::UndefinedColumn(column.clone()))?;
    if def.ty.vector_dim().is_none() {
        return Err(QueryError::mismatch(format!(
            "column \"{column}\" is of type {}; hnsw indexes need a vector column",
            def.ty
        )));
    }
    let opclass = match &col.operator_class {
        Some(name) => name.to_string().to_ascii_lowercase(),
        None => "vector_l2_ops".into(),
    };
    let metric = opclass_metric(&opclass)?;
    let mut hnsw = HnswConfig::default();
    for w in &ci.with {
        let Expr::BinaryOp {
            left,
            op: sqlparser::ast::BinaryOperator::Eq,
            right,
        } = w
        else {
            return Err(QueryError::InvalidParameterValue(format!(
                "invalid index option {w}"
            )));
        };
        let key = left.to_string().to_ascii_lowercase();
        let n = option_number(&key, right)?;
        match key.as_str() {
            "m" if (2..=100).contains(&n) => hnsw.m = n as usize,
            "m" => {
                return Err(QueryError::InvalidParameterValue(format!(
                    "value {n} out of bounds for option \"m\" (valid values are between \"2\" and \"100\")"
                )))
            }
            "ef_construction" if (4..=1000).contains(&n) => hnsw.ef_construction = n as usize,
            "ef_construction" => {
                return Err(QueryError::InvalidParameterValue(format!(
                    "value {n} out of bounds for option \"ef_construction\" (valid values are between \"4\" and \"1000\")"
                )))
            }
            other => {
                return Err(QueryError::InvalidParameterValue(format!(
                    "unrecognized parameter \"{other}\""
                )))
            }
        }
    }
    if hnsw.ef_construction < 2 * hnsw.m {
        return Err(QueryError::InvalidParameterValue(
            "ef_construction must be greater than or equal to 2 * m".into(),
        ));
    }
    let name = match &ci.name {
        Some(n) => object_name(n)?,
        None => format!("{}_{column}_idx", schema.name),
    };
    if schema.index_on(&column).is_some() {
        return Err(QueryError::DuplicateObject(format!(
            "column \"{column}\" of \"{}\" already has a vector index",
            schema.name
        )));
    }
    Ok(VectorIndexDef {
        name,
        column,
        metric,
        hnsw,
    })
}
