//! SQL on the embedded database: the glue between the query layer (`vela-query`) and the engine.
//!
//! [`EngineAdapter`] implements the query layer's narrow `Engine` trait over a [`Database`]
//! (thin: catalog calls map one to one, a write batch becomes one engine `write_many`, rows
//! are copied out of the engine's `Arc<Row>`s — a search's hits only in the columns the query
//! reads, or not at all when visited in place (`search_visit`) — and `TRUNCATE` deletes every
//! key in one batch).
//! [`Connection`] is a SQL session (settings, transaction, prepared statements, plan cache);
//! [`Database::execute`] and [`Database::query`] run SQL on a fresh connection each call.
//! Errors are [`SqlError`]s (`vela_query::QueryError`) with a SQLSTATE code; engine errors keep the
//! facade's code ([`crate::Error::code`]).

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use vela_engine::{Key, Op, SearchRequest as EngineSearch, TableSchema, Value, VectorIndexDef};
use vela_query::{
    Engine as SqlEngine, PreparedStatement, Row, RowPredicate, SearchHit, SearchRequest, Session,
    StatementResult, Synchronous, TableWrite, WriteOp,
};
use vela_storage::Durability;

use crate::{Database, Error};

/// The error of every SQL entry point: a message with a SQLSTATE code (`err.code()`,
/// `err.report()` for `ERROR 42703: column "emb" does not exist`).
pub use vela_query::QueryError as SqlError;

fn convert(e: Error) -> SqlError {
    SqlError::Engine {
        code: e.code(),
        message: e.to_string(),
    }
}

/// The engine's form of a query-layer search request.
fn engine_search<'a>(request: &SearchRequest<'a>) -> EngineSearch<'a> {
    let mut req = EngineSearch::new(request.column, request.query, request.k);
    req.ef = request.ef_search;
    req.metric = Some(request.metric);
    req.exact = request.exact;
    req.filter = request
        .filter
        .map(|f| f as &(dyn Fn(&[Value]) -> bool + Sync));
    req.filter_columns = request.filter_columns;
    req
}

/// The query layer's view of a [`Database`].
#[derive(Debug, Clone)]
pub struct EngineAdapter {
    db: Database,
}

impl EngineAdapter {
    /// An adapter over `db`.
    pub fn new(db: Database) -> Self {
        EngineAdapter { db }
    }
}

impl SqlEngine for EngineAdapter {
    fn table_names(&self) -> vela_query::Result<Vec<String>> {
        let mut names: Vec<String> = self.db.tables().into_iter().map(|t| t.name).collect();
        names.sort();
        Ok(names)
    }

    fn table(&self, name: &str) -> vela_query::Result<Option<TableSchema>> {
        match self.db.schema(name) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.code() == "42P01" => Ok(None),
            Err(e) => Err(convert(e)),
        }
    }

    fn catalog_version(&self) -> Option<u64> {
        Some(self.db.engine().catalog_version())
    }

    fn create_table(&self, schema: TableSchema) -> vela_query::Result<()> {
        self.db.create_table(schema).map_err(convert)
    }

    fn drop_table(&self, name: &str) -> vela_query::Result<()> {
        self.db.drop_table(name).map_err(convert)
    }

    fn create_index(&self, table: &str, index: VectorIndexDef) -> vela_query::Result<()> {
        self.db.create_index(table, index).map_err(convert)
    }

    fn drop_index(&self, table: &str, index: &str) -> vela_query::Result<()> {
        self.db.drop_index(table, index).map_err(convert)
    }

    fn truncate(&self, table: &str) -> vela_query::Result<()> {
        let keys: Vec<Key> = self
            .db
            .scan(table, None)
            .map_err(convert)?
            .iter()
            .map(|r| r.key())
            .collect();
        if !keys.is_empty() {
            self.db.delete_keys(table, keys).map_err(convert)?;
        }
        Ok(())
    }

    /// One engine `write_many`: ONE WAL entry, all or nothing, however many tables the batch
    /// (a statement, a COPY batch or a whole transaction at COMMIT) touches. Operations are
    /// grouped per table, tables in order of first appearance, each table's operations in
    /// their original order (operations on different tables commute, so this is the batch's
    /// meaning).
    fn write(&self, writes: Vec<TableWrite>) -> vela_query::Result<u64> {
        let mut groups: Vec<(String, Vec<Op>)> = Vec::new();
        for w in writes {
            let op = match w.op {
                WriteOp::Insert(row) => Op::Insert(row),
                WriteOp::Upsert(row) => Op::Upsert(row),
                WriteOp::Delete(key) => Op::Delete(key),
            };
            match groups.iter_mut().find(|(t, _)| *t == w.table) {
                Some((_, ops)) => ops.push(op),
                None => groups.push((w.table, vec![op])),
            }
        }
        if groups.is_empty() {
            return Ok(0);
        }
        let outcomes = self.db.write_many(groups).map_err(convert)?;
        Ok(outcomes
            .iter()
            .map(|o| o.inserted + o.updated + o.deleted)
            .sum())
    }

    fn scan(&self, table: &str, filter: Option<&RowPredicate<'_>>) -> vela_query::Result<Vec<Row>> {
        let filter = filter.map(|f| f as &(dyn Fn(&[Value]) -> bool + Sync));
        Ok(self
            .db
            .scan(table, filter)
            .map_err(convert)?
            .iter()
            .map(|r| r.values.to_vec())
            .collect())
    }

    /// Copies out only `columns`: vectors left to an index are not even filled in for the others.
    fn scan_columns(
        &self,
        table: &str,
        filter: Option<&RowPredicate<'_>>,
        filter_columns: Option<&[usize]>,
        columns: &[usize],
    ) -> vela_query::Result<Vec<Row>> {
        let filter = filter.map(|f| f as &(dyn Fn(&[Value]) -> bool + Sync));
        Ok(self
            .db
            .scan_columns(table, filter, filter_columns, columns)
            .map_err(convert)?
            .iter()
            .map(|r| {
                (0..r.values.len())
                    .map(|i| match columns.binary_search(&i) {
                        Ok(_) => r.values[i].clone(),
                        Err(_) => Value::Null,
                    })
                    .collect()
            })
            .collect())
    }

    /// The engine's scan shares its rows (`Arc`s); only one chunk at a time is copied out.
    fn scan_chunks(
        &self,
        table: &str,
        filter: Option<&RowPredicate<'_>>,
        chunk_rows: usize,
        f: &mut dyn FnMut(Vec<Row>, u64) -> vela_query::Result<()>,
    ) -> vela_query::Result<()> {
        let filter = filter.map(|f| f as &(dyn Fn(&[Value]) -> bool + Sync));
        let rows = self.db.scan(table, filter).map_err(convert)?;
        let total = rows.len() as u64;
        for chunk in rows.chunks(chunk_rows.max(1)) {
            f(chunk.iter().map(|r| r.values.to_vec()).collect(), total)?;
        }
        Ok(())
    }

    fn get(&self, table: &str, key: &Key) -> vela_query::Result<Option<Row>> {
        Ok(self
            .db
            .get(table, key.clone())
            .map_err(convert)?
            .map(|r| r.values.to_vec()))
    }

    fn search(&self, request: &SearchRequest<'_>) -> vela_query::Result<Vec<SearchHit>> {
        Ok(self
            .db
            .search_with(request.table, &engine_search(request))
            .map_err(convert)?
            .into_iter()
            .map(|h| SearchHit {
                row: request.hit_row(&h.row.values),
                distance: h.distance,
            })
            .collect())
    }

    /// The engine's hit rows are visited where they are (shared `Arc`s): nothing is copied.
    fn search_visit(
        &self,
        request: &SearchRequest<'_>,
        visit: &mut dyn FnMut(&[Value], f32),
    ) -> vela_query::Result<usize> {
        let hits = self
            .db
            .search_with(request.table, &engine_search(request))
            .map_err(convert)?;
        for h in &hits {
            visit(&h.row.values, h.distance);
        }
        Ok(hits.len())
    }

    fn set_synchronous(&self, mode: Synchronous) -> vela_query::Result<()> {
        self.db.set_durability(match mode {
            Synchronous::Full => Durability::Full,
            Synchronous::Normal => Durability::Normal,
            Synchronous::Off => Durability::Off,
        });
        Ok(())
    }
}

/// A SQL session on a [`Database`]: `SET`, transactions and prepared statements last as long as
/// the connection. Not `Sync`; open one per thread.
pub struct Connection {
    session: Session,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("in_transaction", &self.session.in_transaction())
            .finish()
    }
}

impl Connection {
    /// Runs every `;`-separated statement of `sql` with `params` as `$1..$n`; one result per
    /// statement (Arrow batches, a psql-style tag such as `INSERT 0 3`, rows affected).
    pub fn execute(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<StatementResult>, SqlError> {
        self.session.execute(sql, params)
    }

    /// Runs `sql` and returns the last statement's rows.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<RecordBatch>, SqlError> {
        self.session.query(sql, params)
    }

    /// Parses and plans `sql` once for repeated [`Connection::execute_prepared`] calls.
    pub fn prepare(&mut self, sql: &str) -> Result<PreparedStatement, SqlError> {
        self.session.prepare(sql)
    }

    /// Runs a prepared statement with new parameters.
    pub fn execute_prepared(
        &mut self,
        statement: &PreparedStatement,
        params: &[Value],
    ) -> Result<Vec<StatementResult>, SqlError> {
        self.session.execute_prepared(statement, params)
    }

    /// Installs the progress hook of bulk statements (`COPY`): after every batch, `hook` gets
    /// `(rows_done, rows_total)`, the total when known (Parquet, fvecs/bvecs, exports; not
    /// CSV). It runs on this thread between batches (keep it cheap, e.g. update an
    /// `indicatif::ProgressBar`) and must not use this connection. See
    /// [`Connection::clear_progress`].
    pub fn set_progress(&mut self, hook: impl Fn(u64, Option<u64>) + Send + Sync + 'static) {
        self.session.set_progress(Some(Arc::new(hook)));
    }

    /// Removes the progress hook.
    pub fn clear_progress(&mut self) {
        self.session.set_progress(None);
    }

    /// Whether a transaction is open (`BEGIN` without `COMMIT`/`ROLLBACK` yet).
    pub fn in_transaction(&self) -> bool {
        self.session.in_transaction()
    }
}

impl Database {
    /// A new SQL session on this database.
    pub fn connect(&self) -> Connection {
        Connection {
            session: Session::new(Arc::new(EngineAdapter::new(self.clone()))),
        }
    }

    /// Runs SQL on a fresh connection (settings and transactions do not carry over between
    /// calls; use [`Database::connect`] for that). One result per statement.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<StatementResult>, SqlError> {
        self.connect().execute(sql, params)
    }

    /// Runs SQL on a fresh connection and returns the last statement's rows.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<RecordBatch>, SqlError> {
        self.connect().query(sql, params)
    }
}
