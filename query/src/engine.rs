//! The seam between SQL and storage: the narrow [`Engine`] trait the query layer runs against.
//!
//! The trait holds exactly what the SQL needs: the catalog (list, describe, create and drop tables
//! and vector indexes), atomic write batches (a statement's or a transaction's row operations in
//! one call, so the engine can log them as one WAL entry), full scans and point lookups, and a
//! top-k vector search with a row predicate pushed in. Rows are `Vec<Value>` in the table's column
//! order. The facade implements it for the real engine with thin glue; [`crate::MemoryEngine`]
//! implements it for tests.

use vela_engine::catalog::{Key, TableSchema, Value, VectorIndexDef};
use vela_engine::Metric;

use crate::error::Result;

/// One row of a table, values in column order.
pub type Row = Vec<Value>;

/// A predicate over a table row, pushed into scans and searches.
pub type RowPredicate<'a> = dyn Fn(&[Value]) -> bool + Sync + 'a;

/// One row operation of a write batch.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Insert a new row; a row with the same primary key must not exist (`23505`).
    Insert(Row),
    /// Insert or replace the row with this primary key.
    Upsert(Row),
    /// Delete the row with this primary key, if any.
    Delete(Key),
}

/// A row operation on a named table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableWrite {
    pub table: String,
    pub op: WriteOp,
}

/// A top-k vector search through a column's index.
pub struct SearchRequest<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub query: &'a [f32],
    pub k: usize,
    pub metric: Metric,
    /// `SET hnsw.ef_search`; `None` for the engine's default.
    pub ef_search: Option<usize>,
    /// Only rows for which this holds may be returned.
    pub filter: Option<&'a RowPredicate<'a>>,
    /// Exact top-k over every row (the planner's choice for a column without a matching index);
    /// `false` lets the engine use the column's index.
    pub exact: bool,
    /// The column positions the caller reads from the hit rows; the engine may return
    /// NULL in the others instead of copying them (say, a 512-byte vector when only `id` is
    /// selected). `None`: every column.
    pub columns: Option<&'a [usize]>,
    /// The column positions `filter` reads (`None`: unknown, any). The engine can then skip
    /// fetching vectors the filter does not look at (rows loaded from the store keep theirs
    /// only in the index).
    pub filter_columns: Option<&'a [usize]>,
}

impl SearchRequest<'_> {
    /// `row` as a hit of this request: whole, or with the columns not in
    /// [`SearchRequest::columns`] set to NULL (copying only what is read).
    pub fn hit_row(&self, row: &[Value]) -> Row {
        match self.columns {
            None => row.to_vec(),
            Some(keep) => row
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if keep.contains(&i) {
                        v.clone()
                    } else {
                        Value::Null
                    }
                })
                .collect(),
        }
    }
}

/// One search result: the row and its distance under the request's metric.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub row: Row,
    pub distance: f32,
}

/// Durability of commits (`SET synchronous = full | normal | off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Full,
    Normal,
    Off,
}

impl Synchronous {
    /// The setting's SQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
            Synchronous::Off => "off",
        }
    }
}

/// What the query layer needs from a database engine.
pub trait Engine: Send + Sync {
    /// Names of all tables, sorted.
    fn table_names(&self) -> Result<Vec<String>>;
    /// A table's schema, `None` if it does not exist.
    fn table(&self, name: &str) -> Result<Option<TableSchema>>;
    /// A number that changes whenever any table's schema may change (and may change more
    /// often), read before reading schemas: while it is unchanged, schemas read after it are
    /// current. The plan cache compares it instead of every table's schema. `None` (the
    /// default): no such number, schemas are compared.
    fn catalog_version(&self) -> Option<u64> {
        None
    }
    /// Creates a table; the schema has been validated. Fails if the name exists.
    fn create_table(&self, schema: TableSchema) -> Result<()>;
    /// Drops a table and its rows. Fails if it does not exist.
    fn drop_table(&self, name: &str) -> Result<()>;
    /// Builds a vector index on a table's column.
    fn create_index(&self, table: &str, index: VectorIndexDef) -> Result<()>;
    /// Drops a table's vector index by name.
    fn drop_index(&self, table: &str, index: &str) -> Result<()>;
    /// Deletes every row of a table.
    fn truncate(&self, table: &str) -> Result<()>;
    /// Applies a batch of row operations atomically: all or nothing. Returns rows changed.
    fn write(&self, writes: Vec<TableWrite>) -> Result<u64>;
    /// All rows of a table (for which `filter` holds, when given), in no particular order.
    fn scan(&self, table: &str, filter: Option<&RowPredicate<'_>>) -> Result<Vec<Row>>;
    /// [`Engine::scan`] for a reader of `columns` only (sorted): the other columns of the
    /// rows returned read NULL. `filter` is evaluated on whole rows; `filter_columns`, the
    /// columns it reads, lets an engine spare copies. The default scans and blanks.
    fn scan_columns(
        &self,
        table: &str,
        filter: Option<&RowPredicate<'_>>,
        filter_columns: Option<&[usize]>,
        columns: &[usize],
    ) -> Result<Vec<Row>> {
        let _ = filter_columns;
        let mut rows = self.scan(table, filter)?;
        for row in &mut rows {
            for (i, v) in row.iter_mut().enumerate() {
                if columns.binary_search(&i).is_err() {
                    *v = Value::Null;
                }
            }
        }
        Ok(rows)
    }
    /// All rows of a table (for which `filter` holds), handed to `f` in chunks of at most
    /// `chunk_rows` rows together with the total row count, so a caller such as `COPY t TO`
    /// holds one chunk of copied rows at a time. The default scans, then splits.
    fn scan_chunks(
        &self,
        table: &str,
        filter: Option<&RowPredicate<'_>>,
        chunk_rows: usize,
        f: &mut dyn FnMut(Vec<Row>, u64) -> Result<()>,
    ) -> Result<()> {
        let rows = self.scan(table, filter)?;
        let total = rows.len() as u64;
        let mut it = rows.into_iter();
        loop {
            let chunk: Vec<Row> = it.by_ref().take(chunk_rows.max(1)).collect();
            if chunk.is_empty() {
                return Ok(());
            }
            f(chunk, total)?;
        }
    }
    /// The row with this primary key.
    fn get(&self, table: &str, key: &Key) -> Result<Option<Row>>;
    /// Top-k nearest first: approximate through the column's index, or exact over every row when
    /// `request.exact` (or the column has no index of the request's metric). Rows whose vector is
    /// NULL are never returned.
    fn search(&self, request: &SearchRequest<'_>) -> Result<Vec<SearchHit>>;
    /// [`Engine::search`], handing each hit's row and distance to `visit` (nearest first)
    /// instead of returning copies; returns the number of hits. The columns not in
    /// [`SearchRequest::columns`] may hold anything. The default searches, then visits.
    fn search_visit(
        &self,
        request: &SearchRequest<'_>,
        visit: &mut dyn FnMut(&[Value], f32),
    ) -> Result<usize> {
        let hits = self.search(request)?;
        for h in &hits {
            visit(&h.row, h.distance);
        }
        Ok(hits.len())
    }
    /// Sets commit durability. Engines without the notion accept and ignore it.
    fn set_synchronous(&self, _mode: Synchronous) -> Result<()> {
        Ok(())
    }
}

/// The primary key of a row of `schema`.
pub fn row_key(schema: &TableSchema, row: &[Value]) -> Result<Key> {
    match row.get(schema.primary_key) {
        Some(Value::BigInt(v)) => Ok(Key::BigInt(*v)),
        Some(Value::Text(v)) => Ok(Key::Text(v.clone())),
        Some(Value::Null) | None => Err(crate::error::QueryError::NotNullViolation {
            table: schema.name.clone(),
            column: schema
                .columns
                .get(schema.primary_key)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        }),
        Some(other) => Err(crate::error::QueryError::Internal(format!(
            "primary key of \"{}\" holds {other:?}",
            schema.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_row_keeps_only_the_requested_columns() {
        let row = vec![
            Value::BigInt(7),
            Value::Vector(vec![1.0, 2.0]),
            Value::Text("t".into()),
        ];
        let mut req = SearchRequest {
            table: "t",
            column: "v",
            query: &[1.0, 2.0],
            k: 1,
            metric: Metric::L2,
            ef_search: None,
            filter: None,
            exact: false,
            columns: None,
            filter_columns: None,
        };
        assert_eq!(req.hit_row(&row), row);
        // Unsorted and out-of-range positions are accepted.
        let keep = [2, 0, 9];
        req.columns = Some(&keep);
        assert_eq!(
            req.hit_row(&row),
            vec![Value::BigInt(7), Value::Null, Value::Text("t".into())]
        );
        req.columns = Some(&[]);
        assert_eq!(req.hit_row(&row), vec![Value::Null; 3]);
    }
}
