//! An in-memory [`Engine`]: tables as ordered maps from primary key to row, search by brute force.
//!
//! It is the reference the query layer's tests run against, and a model for the real engine's
//! glue: writes are all-or-nothing (validated before anything is applied), duplicate keys fail
//! with `23505`, and search computes exact distances with pgvector's formulas, so "index" plans
//! return exactly what the exact plan returns.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use vela_engine::catalog::{Key, TableSchema, Value, VectorIndexDef};
use vela_engine::Metric;

use crate::engine::{
    row_key, Engine, Row, RowPredicate, SearchHit, SearchRequest, TableWrite, WriteOp,
};
use crate::error::{QueryError, Result};
use crate::vector;

#[derive(Debug, Clone)]
struct MemTable {
    schema: TableSchema,
    rows: BTreeMap<Key, Row>,
}

/// A database held in memory; see the module docs.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    tables: RwLock<BTreeMap<String, MemTable>>,
    /// Bumped after every schema change, under the tables' write lock.
    version: AtomicU64,
}

impl MemoryEngine {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }
}

fn undefined(table: &str) -> QueryError {
    QueryError::UndefinedTable(table.to_string())
}

/// The distance pgvector's operator for `metric` computes.
pub fn metric_distance(metric: Metric, a: &[f32], b: &[f32]) -> Result<f64> {
    match metric {
        Metric::L2 => vector::l2_distance(a, b),
        Metric::Cosine => vector::cosine_distance(a, b),
        Metric::InnerProduct => vector::inner_product(a, b).map(|d| -d),
        Metric::L1 => vector::l1_distance(a, b),
    }
}

impl Engine for MemoryEngine {
    fn table_names(&self) -> Result<Vec<String>> {
        Ok(self.tables.read().keys().cloned().collect())
    }

    fn table(&self, name: &str) -> Result<Option<TableSchema>> {
        Ok(self.tables.read().get(name).map(|t| t.schema.clone()))
    }

    fn catalog_version(&self) -> Option<u64> {
        Some(self.version.load(Ordering::Acquire))
    }

    fn create_table(&self, schema: TableSchema) -> Result<()> {
        let mut tables = self.tables.write();
        if tables.contains_key(&schema.name) {
            return Err(QueryError::DuplicateTable(schema.name));
        }
        tables.insert(
            schema.name.clone(),
            MemTable {
                schema,
                rows: BTreeMap::new(),
            },
        );
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn drop_table(&self, name: &str) -> Result<()> {
        let mut tables = self.tables.write();
        tables.remove(name).ok_or_else(|| undefined(name))?;
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn create_index(&self, table: &str, index: VectorIndexDef) -> Result<()> {
        let mut tables = self.tables.write();
        let t = tables.get_mut(table).ok_or_else(|| undefined(table))?;
        let mut schema = t.schema.clone();
        schema.indexes.push(index);
        schema
            .validate()
            .map_err(|e| QueryError::InvalidParameterValue(e.to_string()))?;
        t.schema = schema;
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn drop_index(&self, table: &str, index: &str) -> Result<()> {
        let mut tables = self.tables.write();
        let t = tables.get_mut(table).ok_or_else(|| undefined(table))?;
        let before = t.schema.indexes.len();
        t.schema.indexes.retain(|i| i.name != index);
        if t.schema.indexes.len() == before {
            return Err(QueryError::UndefinedObject(format!(
                "index \"{index}\" does not exist"
            )));
        }
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn truncate(&self, table: &str) -> Result<()> {
        let mut tables = self.tables.write();
        let t = tables.get_mut(table).ok_or_else(|| undefined(table))?;
        t.rows.clear();
        Ok(())
    }

    fn write(&self, writes: Vec<TableWrite>) -> Result<u64> {
        let mut tables = self.tables.write();
        // Validate against a copy of the touched tables, then swap them in: all or nothing.
        let mut staged: BTreeMap<String, MemTable> = BTreeMap::new();
        let mut changed = 0u64;
        for write in writes {
            if !staged.contains_key(&write.table) {
                let t = tables
                    .get(&write.table)
                    .ok_or_else(|| undefined(&write.table))?;
                staged.insert(write.table.clone(), t.clone());
            }
            let t = staged
                .get_mut(&write.table)
                .ok_or_else(|| QueryError::Internal("staged table vanished".into()))?;
            match write.op {
                WriteOp::Insert(row) => {
                    let key = row_key(&t.schema, &row)?;
                    if t.rows.contains_key(&key) {
                        return Err(QueryError::UniqueViolation {
                            table: t.schema.name.clone(),
                            column: t.schema.primary_key_column().name.clone(),
                            key: key.to_string(),
                        });
                    }
                    t.rows.insert(key, row);
                    changed += 1;
                }
                WriteOp::Upsert(row) => {
                    let key = row_key(&t.schema, &row)?;
                    t.rows.insert(key, row);
                    changed += 1;
                }
                WriteOp::Delete(key) => {
                    if t.rows.remove(&key).is_some() {
                        changed += 1;
                    }
                }
            }
        }
        for (name, table) in staged {
            tables.insert(name, table);
        }
        Ok(changed)
    }

    fn scan(&self, table: &str, filter: Option<&RowPredicate<'_>>) -> Result<Vec<Row>> {
        let tables = self.tables.read();
        let t = tables.get(table).ok_or_else(|| undefined(table))?;
        Ok(t.rows
            .values()
            .filter(|r| filter.is_none_or(|f| f(r)))
            .cloned()
            .collect())
    }

    fn get(&self, table: &str, key: &Key) -> Result<Option<Row>> {
        let tables = self.tables.read();
        let t = tables.get(table).ok_or_else(|| undefined(table))?;
        Ok(t.rows.get(key).cloned())
    }

    fn search(&self, request: &SearchRequest<'_>) -> Result<Vec<SearchHit>> {
        let tables = self.tables.read();
        let t = tables
            .get(request.table)
            .ok_or_else(|| undefined(request.table))?;
        let (col, _) = t
            .schema
            .column(request.column)
            .ok_or_else(|| QueryError::UndefinedColumn(request.column.to_string()))?;
        let mut hits = Vec::new();
        for row in t.rows.values() {
            if request.filter.is_some_and(|f| !f(row)) {
                continue;
            }
            if let Some(Value::Vector(v)) = row.get(col) {
                let d = metric_distance(request.metric, v, request.query)?;
                if !d.is_nan() {
                    hits.push(SearchHit {
                        row: request.hit_row(row),
                        distance: d as f32,
                    });
                }
            }
        }
        hits.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        hits.truncate(request.k);
        Ok(hits)
    }
}
