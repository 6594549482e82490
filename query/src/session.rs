//! A SQL session: the entry point the facade and the shell call.
//!
//! [`Session::execute`] parses (or takes from the plan cache), binds, plans and runs each
//! statement of a string and returns one [`StatementResult`] per statement: Arrow batches plus a
//! psql-style tag (`INSERT 0 3`, `SELECT 2`). The session holds the settings (`hnsw.ef_search`,
//! `synchronous`), the open transaction (its writes are buffered, read back through an overlay,
//! and handed to the engine as one batch at COMMIT: all or nothing), prepared statements
//! (`PREPARE`/`EXECUTE` in SQL, or [`Session::prepare`]) and the plan cache, whose entries are
//! reused only while the schemas of the tables they read are unchanged.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sqlparser::ast::Statement;
use tracing::{debug, info_span, trace_span};
use vela_engine::catalog::Value;

use crate::copy::{run_copy, ProgressFn};
use crate::engine::{Engine, Synchronous, TableWrite};
use crate::error::{QueryError, Result};
use crate::exec::batch::{flat_to_batches_cached, rows_to_batches_cached};
use crate::exec::timing::with_span_timer;
use crate::exec::{execute, ExecContext};
use crate::expr::bind::ParamTypes;
use crate::expr::eval::{eval, EvalContext};
use crate::parser::parse_sql;
use crate::plan::explain::{explain, NodeStats};
use crate::plan::{Plan, QueryPlan};
use crate::select::BindContext;
use crate::statement::{bind_statement, Bound};

/// Plan-cache capacity (statements); the cache is cleared when full.
pub const PLAN_CACHE_CAPACITY: usize = 256;

/// The plan cache's hasher: FxHash (rustc's), a word at a time. The keys are the session's own
/// SQL texts (no untrusted party picks them to collide), and a statement carrying a 128-d
/// vector literal (~1.3 KB) hashes several times faster than with the default SipHash, twice
/// per new text (lookup, insert).
#[derive(Default, Clone, Copy)]
struct TextHasher(u64);

impl Hasher for TextHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &b in words.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type PlanCache = HashMap<String, Arc<Vec<CachedStatement>>, BuildHasherDefault<TextHasher>>;

/// Largest number of operations one transaction may buffer.
pub const MAX_TRANSACTION_OPS: usize = 1_000_000;

/// The outcome of one statement.
#[derive(Debug, Clone)]
pub struct StatementResult {
    /// psql's command tag: `SELECT 2`, `INSERT 0 1`, `CREATE TABLE`, ...
    pub tag: String,
    /// Rows returned (queries) or changed (DML).
    pub rows_affected: u64,
    /// Schema of the returned rows (empty for statements that return none).
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Whether the statement returns rows (a query, SHOW, EXPLAIN) even if there are none.
    pub returns_rows: bool,
}

impl StatementResult {
    fn command(tag: impl Into<String>, rows_affected: u64) -> Self {
        StatementResult {
            tag: tag.into(),
            rows_affected,
            schema: Arc::new(Schema::empty()),
            batches: Vec::new(),
            returns_rows: false,
        }
    }

    fn text_column(tag: &str, column: &str, lines: Vec<String>) -> Result<Self> {
        let schema = Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, false)]));
        let n = lines.len() as u64;
        let array: ArrayRef = Arc::new(StringArray::from(lines));
        let batch = RecordBatch::try_new(schema.clone(), vec![array])
            .map_err(|e| QueryError::Internal(format!("arrow: {e}")))?;
        Ok(StatementResult {
            tag: tag.into(),
            rows_affected: n,
            schema,
            batches: vec![batch],
            returns_rows: true,
        })
    }
}

/// A statement parsed once and, when possible, bound once.
#[derive(Debug, Clone)]
pub struct PreparedStatement {
    sql: String,
    statements: Arc<Vec<CachedStatement>>,
}

impl PreparedStatement {
    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Number of `$n` parameters the statement uses (as far as binding could tell).
    pub fn param_count(&self) -> usize {
        self.statements
            .iter()
            .filter_map(|s| s.bound.as_ref().map(|b| b.params.types.len()))
            .max()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
struct BoundEntry {
    bound: Bound,
    params: ParamTypes,
    tables: Vec<vela_engine::catalog::TableSchema>,
    /// The engine's catalog version at which `tables` were last known current.
    checked: CheckedAt,
}

/// A catalog version (`u64::MAX`: none), updated when a cached plan is found still valid.
#[derive(Debug)]
struct CheckedAt(AtomicU64);

impl CheckedAt {
    fn new(version: Option<u64>) -> Self {
        CheckedAt(AtomicU64::new(version.unwrap_or(u64::MAX)))
    }

    fn is(&self, version: Option<u64>) -> bool {
        version.is_some_and(|v| v != u64::MAX && self.0.load(Ordering::Relaxed) == v)
    }

    fn set(&self, version: Option<u64>) {
        self.0.store(version.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl Clone for CheckedAt {
    fn clone(&self) -> Self {
        CheckedAt(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

#[derive(Debug, Clone)]
struct CachedStatement {
    ast: Statement,
    bound: Option<BoundEntry>,
}

/// Per-session settings.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    ef_search: Option<usize>,
    synchronous: Synchronous,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ef_search: None,
            synchronous: Synchronous::Full,
        }
    }
}

/// pgvector's default `hnsw.ef_search`.
pub const DEFAULT_EF_SEARCH: usize = 40;

/// One connection's SQL state over an [`Engine`].
pub struct Session {
    engine: Arc<dyn Engine>,
    settings: Settings,
    /// `Some` while a transaction is open: its buffered writes.
    transaction: Option<Vec<TableWrite>>,
    /// A statement failed inside the open transaction: as in PostgreSQL, everything up to the
    /// end of the block is refused (25P02) and COMMIT rolls back.
    aborted: bool,
    prepared: HashMap<String, PreparedStatement>,
    cache: PlanCache,
    progress: Option<ProgressFn>,
    /// The planning time of the EXPLAIN ANALYZE about to run (measured while binding it).
    planning_time: Option<Duration>,
}

impl Session {
    /// A session over `engine`.
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Session {
            engine,
            settings: Settings::default(),
            transaction: None,
            aborted: false,
            prepared: HashMap::new(),
            cache: PlanCache::default(),
            progress: None,
            planning_time: None,
        }
    }

    /// Installs (or, with `None`, removes) the progress hook of bulk statements: after every
    /// batch a `COPY` writes (or exports), it is called on the session's thread with
    /// `(rows_done, rows_total)` — rows committed (or written) so far, and the total when known
    /// (Parquet and fvecs/bvecs files and exports know it; CSV files do not). It runs between
    /// batches, so a slow hook slows the COPY; it must not call back into the session. A shell
    /// attaches a progress bar here:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let mut session = vela_query::Session::new(Arc::new(vela_query::MemoryEngine::new()));
    /// session.set_progress(Some(Arc::new(|done: u64, total: Option<u64>| {
    ///     eprintln!("{done} of {total:?} rows");
    /// })));
    /// ```
    pub fn set_progress(&mut self, hook: Option<ProgressFn>) {
        self.progress = hook;
    }

    /// The engine this session runs on.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// Runs every statement in `sql` with `params` bound to `$1..$n`; stops at the first error.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<Vec<StatementResult>> {
        let statements = self.parse_cached(sql)?;
        let mut results = Vec::with_capacity(statements.len());
        for s in statements.iter() {
            results.push(self.run_cached(s, params)?);
        }
        Ok(results)
    }

    /// Runs one statement and returns its batches (the last statement's, if there are several).
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<RecordBatch>> {
        Ok(self
            .execute(sql, params)?
            .pop()
            .map(|r| r.batches)
            .unwrap_or_default())
    }

    /// Parses and binds `sql` once for repeated execution.
    pub fn prepare(&mut self, sql: &str) -> Result<PreparedStatement> {
        let statements = self.parse_cached(sql)?;
        Ok(PreparedStatement {
            sql: sql.to_string(),
            statements,
        })
    }

    /// Runs a prepared statement.
    pub fn execute_prepared(
        &mut self,
        prepared: &PreparedStatement,
        params: &[Value],
    ) -> Result<Vec<StatementResult>> {
        let mut results = Vec::with_capacity(prepared.statements.len());
        for s in prepared.statements.iter() {
            results.push(self.run_cached(s, params)?);
        }
        Ok(results)
    }

    fn parse_cached(&mut self, sql: &str) -> Result<Arc<Vec<CachedStatement>>> {
        if let Some(hit) = self.cache.get(sql) {
            return Ok(hit.clone());
        }
        let span = info_span!("parse", bytes = sql.len());
        let _enter = span.enter();
        let asts = parse_sql(sql)?;
        let mut statements = Vec::with_capacity(asts.len());
        for ast in asts {
            // Bind now when it is safe to keep the result; DDL and anything that fails to bind
            // (say, a table created by an earlier statement of the same string) binds at run time.
            let bound = self.try_bind_cacheable(&ast);
            statements.push(CachedStatement { ast, bound });
        }
        let statements = Arc::new(statements);
        if self.cache.len() >= PLAN_CACHE_CAPACITY {
            self.cache.clear();
        }
        self.cache.insert(sql.to_string(), statements.clone());
        Ok(statements)
    }

    fn try_bind_cacheable(&self, ast: &Statement) -> Option<BoundEntry> {
        if !matches!(
            ast,
            Statement::Query(_)
                | Statement::Insert(_)
                | Statement::Update(_)
                | Statement::Delete(_)
        ) {
            return None;
        }
        self.bind(ast).ok().filter(|b| b.bound.cacheable())
    }

    fn bind(&self, ast: &Statement) -> Result<BoundEntry> {
        let span = info_span!("bind");
        let _enter = span.enter();
        // Read before the schemas: a schema change after this bumps it past what is stored.
        let version = self.engine.catalog_version();
        let mut params = ParamTypes::default();
        let mut ctx = BindContext::new(self.engine.as_ref(), &mut params);
        let bound = bind_statement(ast, &mut ctx)?;
        let tables = bound.tables();
        Ok(BoundEntry {
            bound,
            params,
            tables,
            checked: CheckedAt::new(version),
        })
    }

    /// Whether the schemas a cached plan was bound against are still current: at once when
    /// the engine's catalog version has not moved since they were last checked, else by
    /// comparing every schema (and, when they all match, remembering the version).
    fn still_valid(&self, entry: &BoundEntry) -> Result<bool> {
        let version = self.engine.catalog_version();
        if entry.checked.is(version) {
            return Ok(true);
        }
        for t in &entry.tables {
            if self.engine.table(&t.name)?.as_ref() != Some(t) {
                return Ok(false);
            }
        }
        entry.checked.set(version);
        Ok(true)
    }

    /// Runs one statement, keeping PostgreSQL's transaction rule: after a failure inside
    /// `BEGIN`, only COMMIT (which then rolls back) and ROLLBACK are accepted.
    fn run_cached(&mut self, s: &CachedStatement, params: &[Value]) -> Result<StatementResult> {
        let ends_block = matches!(s.ast, Statement::Commit { .. } | Statement::Rollback { .. });
        if self.aborted && !ends_block {
            return Err(QueryError::TransactionState {
                code: "25P02",
                message: "current transaction is aborted, commands ignored until end of \
                          transaction block"
                    .into(),
            });
        }
        if self.aborted {
            self.aborted = false;
            self.transaction = None;
            return Ok(StatementResult::command("ROLLBACK", 0));
        }
        let result = self.run_statement(s, params);
        if result.is_err() && self.transaction.is_some() {
            self.aborted = true;
        }
        result
    }

    fn run_statement(&mut self, s: &CachedStatement, params: &[Value]) -> Result<StatementResult> {
        // A valid cached entry runs in place (no copy of its plan per execution).
        let fresh;
        let entry = match &s.bound {
            Some(e) if self.still_valid(e)? => e,
            _ if matches!(s.ast, Statement::Explain { analyze: true, .. }) => {
                // EXPLAIN ANALYZE's "Planning Time": the busy time of the `bind` span (binding
                // and optimizing; parsing is not planning, as in PostgreSQL).
                let (bound, times) = with_span_timer(|| self.bind(&s.ast));
                fresh = bound?;
                self.planning_time = Some(times.stage("bind"));
                &fresh
            }
            _ => {
                fresh = self.bind(&s.ast)?;
                &fresh
            }
        };
        if !matches!(entry.bound, Bound::Explain { analyze: false, .. }) {
            check_params(&entry.params, params)?;
        }
        self.run(&entry.bound, params)
    }

    fn run(&mut self, bound: &Bound, params: &[Value]) -> Result<StatementResult> {
        let span = info_span!("execute");
        let _enter = span.enter();
        match bound {
            Bound::Query(q) => {
                if let Some((values, width)) = self.run_top_k(&q.root, params) {
                    if width == q.columns.len() {
                        let n = values.len() / width;
                        let (schema, batches) =
                            flat_to_batches_cached(&q.columns, &values, &q.arrow_schema)?;
                        return Ok(rows_result(n as u64, schema, batches));
                    }
                }
                let rows = self.run_plan(&q.root, params)?;
                query_result(q, &rows)
            }
            Bound::Insert(_) | Bound::Update(_) | Bound::Delete(_) => self.run_dml(bound, params),
            Bound::Explain { analyze, inner } => self.explain(*analyze, inner, params),
            Bound::CreateTable {
                schema,
                if_not_exists,
            } => {
                self.require_no_transaction("CREATE TABLE")?;
                if self.engine.table(&schema.name)?.is_some() {
                    if *if_not_exists {
                        return Ok(StatementResult::command("CREATE TABLE", 0));
                    }
                    return Err(QueryError::DuplicateTable(schema.name.clone()));
                }
                self.engine.create_table(schema.clone())?;
                Ok(StatementResult::command("CREATE TABLE", 0))
            }
            Bound::DropTable { names, if_exists } => {
                self.require_no_transaction("DROP TABLE")?;
                for n in names {
                    if self.engine.table(n)?.is_none() {
                        if *if_exists {
                            continue;
                        }
                        return Err(QueryError::UndefinedTable(n.clone()));
                    }
                }
                for n in names {
                    if self.engine.table(n)?.is_some() {
                        self.engine.drop_table(n)?;
                    }
                }
                Ok(StatementResult::command("DROP TABLE", 0))
            }
            Bound::CreateIndex {
                table,
                index,
                if_not_exists,
            } => {
                self.require_no_transaction("CREATE INDEX")?;
                let schema = self
                    .engine
                    .table(table)?
                    .ok_or_else(|| QueryError::UndefinedTable(table.clone()))?;
                if schema.indexes.iter().any(|i| i.name == index.name) {
                    if *if_not_exists {
                        return Ok(StatementResult::command("CREATE INDEX", 0));
                    }
                    return Err(QueryError::DuplicateObject(format!(
                        "relation \"{}\" already exists",
                        index.name
                    )));
                }
                self.engine.create_index(table, index.clone())?;
                Ok(StatementResult::command("CREATE INDEX", 0))
            }
            Bound::DropIndex { names, if_exists } => {
                self.require_no_transaction("DROP INDEX")?;
                for n in names {
                    let owner = self.index_owner(n)?;
                    match owner {
                        Some(table) => self.engine.drop_index(&table, n)?,
                        None if *if_exists => {}
                        None => {
                            return Err(QueryError::UndefinedObject(format!(
                                "index \"{n}\" does not exist"
                            )))
                        }
                    }
                }
                Ok(StatementResult::command("DROP INDEX", 0))
            }
            Bound::Truncate { tables } => {
                self.require_no_transaction("TRUNCATE")?;
                for t in tables {
                    if self.engine.table(t)?.is_none() {
                        return Err(QueryError::UndefinedTable(t.clone()));
                    }
                }
                for t in tables {
                    self.engine.truncate(t)?;
                }
                Ok(StatementResult::command("TRUNCATE TABLE", 0))
            }
            Bound::Set { name, value } => {
                self.set(name, value.as_deref())?;
                Ok(StatementResult::command(
                    if value.is_some() { "SET" } else { "RESET" },
                    0,
                ))
            }
            Bound::ResetAll => {
                self.settings = Settings::default();
                self.engine.set_synchronous(self.settings.synchronous)?;
                Ok(StatementResult::command("RESET", 0))
            }
            Bound::Show { name } => {
                let value = self.show(name)?;
                StatementResult::text_column("SHOW", name, vec![value])
            }
            Bound::ShowTables => {
                let names = self.engine.table_names()?;
                StatementResult::text_column("SHOW", "name", names)
            }
            Bound::Begin => {
                if self.transaction.is_some() {
                    // PostgreSQL warns and carries on; so do we.
                    tracing::warn!("there is already a transaction in progress");
                } else {
                    self.transaction = Some(Vec::new());
                }
                Ok(StatementResult::command("BEGIN", 0))
            }
            Bound::Commit => {
                match self.transaction.take() {
                    Some(writes) if !writes.is_empty() => {
                        self.engine.write(writes)?;
                    }
                    Some(_) => {}
                    None => tracing::warn!("there is no transaction in progress"),
                }
                Ok(StatementResult::command("COMMIT", 0))
            }
            Bound::Rollback => {
                self.transaction = None;
                Ok(StatementResult::command("ROLLBACK", 0))
            }
            Bound::Prepare { name, statement } => {
                if self.prepared.contains_key(name) {
                    return Err(QueryError::DuplicateObject(format!(
                        "prepared statement \"{name}\" already exists"
                    )));
                }
                let bound = self.try_bind_cacheable(statement);
                let prepared = PreparedStatement {
                    sql: statement.to_string(),
                    statements: Arc::new(vec![CachedStatement {
                        ast: statement.as_ref().clone(),
                        bound,
                    }]),
                };
                self.prepared.insert(name.clone(), prepared);
                Ok(StatementResult::command("PREPARE", 0))
            }
            Bound::Execute { name, params: args } => {
                let prepared = self.prepared.get(name).cloned().ok_or_else(|| {
                    QueryError::UndefinedObject(format!(
                        "prepared statement \"{name}\" does not exist"
                    ))
                })?;
                let ectx = EvalContext::new(params);
                let values = args
                    .iter()
                    .map(|a| eval(a, &[], &ectx))
                    .collect::<Result<Vec<_>>>()?;
                let mut results = self.execute_prepared(&prepared, &values)?;
                results
                    .pop()
                    .ok_or_else(|| QueryError::Internal("empty prepared statement".into()))
            }
            Bound::Copy(plan) => {
                self.require_no_transaction("COPY")?;
                let mut ctx =
                    ExecContext::new(self.engine.as_ref(), params, self.settings.ef_search, &[]);
                let n = run_copy(plan, &mut ctx, self.progress.as_ref())?;
                Ok(StatementResult::command(format!("COPY {n}"), n))
            }
            Bound::Deallocate { name } => {
                match name {
                    Some(n) => {
                        if self.prepared.remove(n).is_none() {
                            return Err(QueryError::UndefinedObject(format!(
                                "prepared statement \"{n}\" does not exist"
                            )));
                        }
                    }
                    None => self.prepared.clear(),
                }
                Ok(StatementResult::command("DEALLOCATE", 0))
            }
        }
    }

    fn require_no_transaction(&self, what: &str) -> Result<()> {
        if self.transaction.is_some() {
            return Err(QueryError::unsupported(format!(
                "{what} inside a transaction block"
            )));
        }
        Ok(())
    }

    fn index_owner(&self, index: &str) -> Result<Option<String>> {
        for t in self.engine.table_names()? {
            if let Some(schema) = self.engine.table(&t)? {
                if schema.indexes.iter().any(|i| i.name == index) {
                    return Ok(Some(t));
                }
            }
        }
        Ok(None)
    }

    /// [`crate::exec::top_k_projection`]: a top-k index search's projected values, flat, and
    /// the row width; `None` to run the plan.
    fn run_top_k(&self, plan: &Plan, params: &[Value]) -> Option<(Vec<Value>, usize)> {
        crate::exec::top_k_projection(plan, &self.exec_context(params))
    }

    fn run_plan(&self, plan: &Plan, params: &[Value]) -> Result<Vec<crate::engine::Row>> {
        execute(plan, &mut self.exec_context(params))
    }

    /// What a plan of this session runs with: its engine, settings and pending writes.
    fn exec_context<'a>(&'a self, params: &'a [Value]) -> ExecContext<'a> {
        ExecContext::new(
            self.engine.as_ref(),
            params,
            self.settings.ef_search,
            self.transaction.as_deref().unwrap_or(&[]),
        )
    }

    fn run_dml(&mut self, bound: &Bound, params: &[Value]) -> Result<StatementResult> {
        let pending: &[TableWrite] = self.transaction.as_deref().unwrap_or(&[]);
        let mut ctx = ExecContext::new(
            self.engine.as_ref(),
            params,
            self.settings.ef_search,
            pending,
        );
        let (table, (ops, count), tag) = match bound {
            Bound::Insert(p) => (
                &p.schema.name,
                crate::dml::run_insert(p, &mut ctx)?,
                "INSERT 0",
            ),
            Bound::Update(p) => (
                &p.schema.name,
                crate::dml::run_update(p, &mut ctx)?,
                "UPDATE",
            ),
            Bound::Delete(p) => (
                &p.schema.name,
                crate::dml::run_delete(p, &mut ctx)?,
                "DELETE",
            ),
            _ => return Err(QueryError::Internal("not DML".into())),
        };
        let writes: Vec<TableWrite> = ops
            .into_iter()
            .map(|op| TableWrite {
                table: table.clone(),
                op,
            })
            .collect();
        debug!(table = %table, ops = writes.len(), "dml");
        match self.transaction.as_mut() {
            Some(tx) => {
                if tx.len() + writes.len() > MAX_TRANSACTION_OPS {
                    return Err(QueryError::ProgramLimitExceeded(format!(
                        "a transaction may buffer at most {MAX_TRANSACTION_OPS} row operations"
                    )));
                }
                tx.extend(writes);
            }
            None if writes.is_empty() => {}
            None => {
                self.engine.write(writes)?;
            }
        }
        Ok(StatementResult::command(format!("{tag} {count}"), count))
    }

    fn explain(
        &mut self,
        analyze: bool,
        inner: &Bound,
        params: &[Value],
    ) -> Result<StatementResult> {
        let (plan, query) = match inner {
            Bound::Query(q) => (&q.root, q),
            Bound::Update(u) => {
                let lines = prefix_lines("Update on", &u.schema.name, explain(&u.source, None));
                return StatementResult::text_column("EXPLAIN", "QUERY PLAN", lines);
            }
            Bound::Delete(d) => {
                let lines = prefix_lines("Delete on", &d.schema.name, explain(&d.source, None));
                return StatementResult::text_column("EXPLAIN", "QUERY PLAN", lines);
            }
            Bound::Insert(i) => {
                let lines =
                    prefix_lines("Insert on", &i.schema.name, explain(&i.source.root, None));
                return StatementResult::text_column("EXPLAIN", "QUERY PLAN", lines);
            }
            _ => return Err(QueryError::unsupported("EXPLAIN of this statement")),
        };
        if !analyze {
            return StatementResult::text_column("EXPLAIN", "QUERY PLAN", explain(plan, None));
        }
        // The timings come from the spans the executor, this session and the engine enter
        // (exec::timing): the plan's nodes, the whole run, the engine's searches, the Arrow
        // conversion.
        let (result, times) = with_span_timer(|| {
            let rows = {
                let _run = trace_span!("execute_plan").entered();
                self.run_plan(plan, params)?
            };
            let _arrow = trace_span!("arrow").entered();
            query_result(query, &rows)
        });
        result?;
        let stats: HashMap<u64, NodeStats> = times
            .nodes
            .iter()
            .map(|(&n, &(elapsed, rows, loops))| {
                (
                    n,
                    NodeStats {
                        elapsed,
                        rows,
                        loops,
                    },
                )
            })
            .collect();
        let mut lines = explain(plan, Some(&stats));
        if let Some(planning) = self.planning_time.take() {
            lines.push(format!("Planning Time: {:.3} ms", ms(planning)));
        }
        lines.push(format!(
            "Execution Time: {:.3} ms",
            ms(times.stage("execute_plan"))
        ));
        if let Some(search) = times.stages.get("search") {
            lines.push(format!("Engine Search Time: {:.3} ms", ms(*search)));
        }
        lines.push(format!(
            "Arrow Conversion Time: {:.3} ms",
            ms(times.stage("arrow"))
        ));
        StatementResult::text_column("EXPLAIN", "QUERY PLAN", lines)
    }

    fn set(&mut self, name: &str, value: Option<&str>) -> Result<()> {
        match name {
            "hnsw.ef_search" => {
                self.settings.ef_search = match value {
                    None => None,
                    Some(v) => {
                        let n: i64 = v.parse().map_err(|_| {
                            QueryError::InvalidParameterValue(format!(
                                "invalid value for parameter \"hnsw.ef_search\": \"{v}\""
                            ))
                        })?;
                        if !(1..=1000).contains(&n) {
                            return Err(QueryError::InvalidParameterValue(format!(
                                "{n} is outside the valid range for parameter \"hnsw.ef_search\" (1 .. 1000)"
                            )));
                        }
                        Some(n as usize)
                    }
                };
            }
            "synchronous" => {
                let mode = match value.map(|v| v.to_ascii_lowercase()).as_deref() {
                    None | Some("full") | Some("on") => Synchronous::Full,
                    Some("normal") => Synchronous::Normal,
                    Some("off") => Synchronous::Off,
                    Some(other) => {
                        return Err(QueryError::InvalidParameterValue(format!(
                            "invalid value for parameter \"synchronous\": \"{other}\" (full, normal or off)"
                        )))
                    }
                };
                self.engine.set_synchronous(mode)?;
                self.settings.synchronous = mode;
            }
            // Accepted and ignored for compatibility with pgvector scripts and drivers.
            "client_encoding"
            | "search_path"
            | "statement_timeout"
            | "hnsw.iterative_scan"
            | "maintenance_work_mem"
            | "max_parallel_maintenance_workers"
            | "work_mem"
            | "enable_seqscan"
            | "application_name"
            | "datestyle"
            | "timezone" => {}
            other => {
                return Err(QueryError::UndefinedObject(format!(
                    "unrecognized configuration parameter \"{other}\""
                )))
            }
        }
        Ok(())
    }

    fn show(&self, name: &str) -> Result<String> {
        Ok(match name {
            "hnsw.ef_search" => self
                .settings
                .ef_search
                .unwrap_or(DEFAULT_EF_SEARCH)
                .to_string(),
            "synchronous" => self.settings.synchronous.as_str().to_string(),
            "server_version" => format!("16.0 (Vela {})", env!("CARGO_PKG_VERSION")),
            other => {
                return Err(QueryError::UndefinedObject(format!(
                    "unrecognized configuration parameter \"{other}\""
                )))
            }
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn prefix_lines(verb: &str, table: &str, inner: Vec<String>) -> Vec<String> {
    let mut lines = vec![format!("{verb} {table}")];
    lines.extend(inner.into_iter().map(|l| format!("  ->  {l}")));
    lines
}

/// Checks that every parameter the statement uses was supplied.
fn check_params(types: &ParamTypes, params: &[Value]) -> Result<()> {
    if params.len() < types.types.len() {
        return Err(QueryError::UndefinedParameter(params.len() + 1));
    }
    Ok(())
}

fn query_result<R: AsRef<[Value]>>(q: &QueryPlan, rows: &[R]) -> Result<StatementResult> {
    let (schema, batches) = rows_to_batches_cached(&q.columns, rows, &q.arrow_schema)?;
    Ok(rows_result(rows.len() as u64, schema, batches))
}

/// A query's result of `n` rows.
fn rows_result(n: u64, schema: SchemaRef, batches: Vec<RecordBatch>) -> StatementResult {
    StatementResult {
        tag: select_tag(n),
        rows_affected: n,
        schema,
        batches,
        returns_rows: true,
    }
}

/// `SELECT n`, written without the formatting machinery (a query's result tag, built on every
/// query).
fn select_tag(n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut tag = String::with_capacity(7 + digits.len() - at);
    tag.push_str("SELECT ");
    tag.extend(digits[at..].iter().map(|&d| char::from(d)));
    tag
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryEngine;

    fn columns(results: &[StatementResult]) -> usize {
        results[0].schema.fields().len()
    }

    /// A cached plan is rebound after a schema change made behind the session's back (straight
    /// through the engine), and stays cached while the catalog version does not move.
    #[test]
    fn cached_plans_follow_schema_changes_made_elsewhere() {
        let engine = Arc::new(MemoryEngine::new());
        let mut s = Session::new(engine.clone());
        s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, a TEXT)", &[])
            .expect("create");
        let prepared = s.prepare("SELECT * FROM t").expect("prepare");
        let v0 = engine.catalog_version();
        assert_eq!(
            columns(&s.execute_prepared(&prepared, &[]).expect("run")),
            2
        );
        s.execute("INSERT INTO t VALUES (1, 'x')", &[])
            .expect("insert");
        assert_eq!(
            engine.catalog_version(),
            v0,
            "DML moved the catalog version"
        );

        let mut other = Session::new(engine.clone());
        other
            .execute(
                "DROP TABLE t; CREATE TABLE t (id BIGINT PRIMARY KEY, a TEXT, b BIGINT)",
                &[],
            )
            .expect("recreate");
        assert_ne!(engine.catalog_version(), v0);
        assert_eq!(
            columns(&s.execute_prepared(&prepared, &[]).expect("run")),
            3
        );
        // The same text through the plan cache, too.
        assert_eq!(columns(&s.execute("SELECT * FROM t", &[]).expect("run")), 3);
    }

    #[test]
    fn select_tags() {
        for n in [0u64, 7, 10, 99, 100, 12_345, u64::MAX] {
            assert_eq!(select_tag(n), format!("SELECT {n}"));
        }
    }

    /// A correlated subquery runs once per distinct outer value (NULL included), not once per
    /// outer row: EXPLAIN ANALYZE's row counts are summed over the subplan's runs.
    #[test]
    fn a_correlated_subquery_runs_once_per_distinct_outer_value() {
        let mut s = Session::new(Arc::new(MemoryEngine::new()));
        s.execute(
            "CREATE TABLE d (id BIGINT PRIMARY KEY, name TEXT);
             CREATE TABLE e (id BIGINT PRIMARY KEY, d BIGINT);
             INSERT INTO d VALUES (1, 'a'), (2, 'b'), (3, 'c');
             INSERT INTO e VALUES (1, 1), (2, 1), (3, 2), (4, 2), (5, 1), (6, NULL), (7, NULL), (8, 3)",
            &[],
        )
        .expect("setup");
        let sql = "SELECT id, (SELECT name FROM d WHERE d.id = e.d) FROM e";
        let out = s
            .execute(&format!("EXPLAIN ANALYZE {sql}"), &[])
            .expect("explain analyze");
        let text = arrow::util::pretty::pretty_format_batches(&out[0].batches)
            .expect("format")
            .to_string();
        let lookup = text
            .lines()
            .find(|l| l.contains("Point Lookup on d"))
            .unwrap_or_else(|| panic!("no lookup in\n{text}"));
        // Four distinct outer values (1, 2, 3, NULL): four runs, three lookups find a row,
        // NULL none; a run per outer row would give 8 runs and 6 rows.
        assert!(lookup.contains("rows=3 loops=4)"), "{text}");
        assert!(text.contains("SubPlan 1 ($outer1 = e.d)"), "{text}");
        let rows: usize = s
            .query(sql, &[])
            .expect("run")
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 8);
    }

    /// The top-k fast path (exec::top_k_projection) returns exactly the rows the plan gives,
    /// across projections, LIMIT/OFFSET (literal and `$n`), filters, NULLs and exact search;
    /// other shapes and fallbacks (NULL query, pending writes) are left to the plan.
    #[test]
    fn top_k_fast_path_equals_the_plan() {
        let engine = Arc::new(MemoryEngine::new());
        let mut s = Session::new(engine);
        s.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, tag TEXT, v VECTOR(2));
             CREATE INDEX ON t USING hnsw (v vector_l2_ops);
             INSERT INTO t VALUES (1, 'a', '[0,0]'), (2, NULL, '[1,0]'), (3, 'b', '[0,2]'),
               (4, 'a', NULL), (5, 'b', '[3,3]'), (6, NULL, '[0.5,0.5]')",
            &[],
        )
        .expect("setup");
        let q = Value::Vector(vec![0.1, 0.0]);
        let fast = [
            "SELECT id FROM t ORDER BY v <-> $1 LIMIT 3",
            "SELECT tag, id FROM t ORDER BY v <-> $1 LIMIT 4 OFFSET 1",
            "SELECT id, id, v FROM t ORDER BY v <-> $1 LIMIT $2 OFFSET $3",
            "SELECT id FROM t WHERE tag = 'b' ORDER BY v <-> $1 LIMIT 5",
            "SELECT id FROM t ORDER BY v <-> $1 LIMIT 10 OFFSET 7",
        ];
        let run = |s: &mut Session, sql: &str, params: &[Value]| {
            let prepared = s.prepare(sql).expect("prepare");
            let Some(Bound::Query(q)) = prepared.statements[0]
                .bound
                .as_ref()
                .map(|b| b.bound.clone())
            else {
                panic!("not a query: {sql}");
            };
            let top_k = s.run_top_k(&q.root, params);
            let rows = s.run_plan(&q.root, params).expect("plan");
            (top_k, rows)
        };
        let params = [q.clone(), Value::BigInt(2), Value::BigInt(1)];
        for sql in fast {
            let (top_k, rows) = run(&mut s, sql, &params);
            let (values, width) = top_k.unwrap_or_else(|| panic!("no fast path: {sql}"));
            let flat: Vec<&[Value]> = values.chunks_exact(width).collect();
            let want: Vec<&[Value]> = rows.iter().map(Vec::as_slice).collect();
            assert_eq!(flat, want, "{sql}");
        }
        // Not this shape, or falling back to a scan: the plan runs.
        for (sql, params) in [
            (
                "SELECT id + 1 FROM t ORDER BY v <-> $1 LIMIT 3",
                vec![q.clone()],
            ),
            (
                "SELECT id FROM t ORDER BY v <-> $1 DESC LIMIT 3",
                vec![q.clone()],
            ),
            (
                "SELECT id FROM t ORDER BY v <-> $1 LIMIT 3",
                vec![Value::Null],
            ),
        ] {
            assert_eq!(run(&mut s, sql, &params).0, None, "{sql}");
        }
        s.execute("BEGIN; INSERT INTO t VALUES (7, 'c', '[0.1,0]')", &[])
            .expect("begin");
        let (top_k, rows) = run(&mut s, "SELECT id FROM t ORDER BY v <-> $1 LIMIT 1", &[q]);
        assert_eq!(top_k, None);
        assert_eq!(rows, vec![vec![Value::BigInt(7)]]);
    }

    #[test]
    fn checked_at_remembers_one_version() {
        let c = CheckedAt::new(Some(3));
        assert!(c.is(Some(3)));
        assert!(!c.is(Some(4)) && !c.is(None));
        c.set(Some(4));
        assert!(c.is(Some(4)) && !c.is(Some(3)));
        let none = CheckedAt::new(None);
        assert!(!none.is(None) && !none.is(Some(u64::MAX)));
    }
}
