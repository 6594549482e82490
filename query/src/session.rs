//! A SQL session: the entry point the facade and the shell call.
//!
//! [`Session::execute`] parses (or takes from the plan cache), binds, plans and runs each
//! statement of a string and returns one [`StatementResult`] per statement: Arrow batches plus a
//! psql-style tag (`INSERT 0 3`, `SELECT 2`). The session holds the settings (`hnsw.ef_search`,
//! `synchronous`), the open transaction (its writes are buffered, read back through an overlay,
//! and handed to the engine as one batch at COMMIT: all or nothing), prepared statements
//! (`PREPARE`/`EXECUTE` in SQL, or [`Session::prepare`]) and the plan cache, whose entries are
//! reused only while the schemas of the tables they read are unchanged.
//!
//! The plan cache is keyed by the statement text, so a statement carrying a new literal each
//! time (a query vector written into the text) would never hit it. Such statements are
//! *auto-parameterized* ([`crate::autoparam`]): a single query, INSERT, UPDATE or DELETE whose
//! string literals total at least [`crate::autoparam::MIN_LITERAL_BYTES`] has a template key (the
//! text with the literals' contents taken out). The first text of a key runs the ordinary way
//! and marks the key seen (a key that never recurs, say one with a new number in each text,
//! costs nothing more); the second also binds its AST with the literals turned into `$1..$n`,
//! kept as the key's template only if that binding is cacheable, infers a type for every `$k`,
//! and has the literal binding's output columns (names and types) and tables; otherwise the key
//! is remembered as having none (until the catalog version moves). A later text with the key converts each
//! literal to its `$k`'s type with the cast a literal in that place gets at bind time, and runs
//! the template's plan as a prepared statement; if a conversion fails it takes the ordinary path,
//! so the user gets the literal statement's own error. Templates follow schema changes like the
//! plan cache's entries (a stale one is dropped and learnt again).

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

use crate::autoparam::{self, Scan};
use crate::copy::{run_copy, ProgressFn};
use crate::engine::{Engine, Synchronous, TableWrite};
use crate::error::{QueryError, Result};
use crate::exec::batch::{flat_to_batches_cached, rows_to_batches_cached};
use crate::exec::timing::with_span_timer;
use crate::exec::{execute, ExecContext};
use crate::expr::bind::ParamTypes;
use crate::expr::cast::cast_value;
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

/// Auto-parameterization's templates, by template key ([`autoparam::scan`]).
type TemplateCache = HashMap<String, TemplateSlot, BuildHasherDefault<TextHasher>>;

/// What a template key is known to give.
#[derive(Debug, Clone)]
enum TemplateSlot {
    /// One text of the key has run; the template is built when a second one comes, so that
    /// statements whose keys never recur (a new number in each) never pay for building one.
    Seen,
    /// The parameterized statement, bound.
    Ready(Arc<Template>),
    /// No template: it did not bind as the literals do (or the statement is not a candidate).
    /// Tried again once the catalog version moves past this one (`None`: never remembered).
    Refused(Option<u64>),
}

/// A statement with its string literals as `$1..$n`, bound once.
#[derive(Debug)]
struct Template {
    /// The parameterized AST and its bound plan (always `Some`).
    statement: CachedStatement,
    /// The type each `$k` was inferred to have: literal `k` is converted to it.
    slots: Vec<crate::types::SqlType>,
}

/// Counts of what auto-parameterization did in a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AutoParamStats {
    /// Statements run through a template.
    pub hits: u64,
    /// Texts with a template that took the ordinary path (a literal did not convert).
    pub fallbacks: u64,
    /// Templates built.
    pub learnt: u64,
    /// Keys found to have no template.
    pub refused: u64,
}

/// What looking a text up among the templates found.
enum TemplateLookup {
    /// The template ran (or failed running): this is the statement's result.
    Ran(Result<StatementResult>),
    /// Known to have no template, or a literal did not convert: take the ordinary path only.
    Ordinary,
    /// A key not seen before: take the ordinary path, then remember the key.
    Remember,
    /// A key seen before (or a stale template or refusal): take the ordinary path, then build
    /// the template.
    Learn,
}

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
    templates: TemplateCache,
    /// Whether statements are auto-parameterized (on unless turned off).
    auto_parameterize: bool,
    autoparam_stats: AutoParamStats,
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
            templates: TemplateCache::default(),
            auto_parameterize: true,
            autoparam_stats: AutoParamStats::default(),
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

    /// Turns auto-parameterization (see the module docs) on or off; it is on in a new session.
    /// Off, every statement takes the text-keyed plan cache only (the results are the same).
    pub fn set_auto_parameterize(&mut self, on: bool) {
        self.auto_parameterize = on;
        if !on {
            self.templates.clear();
        }
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
        let mut scan = None;
        if self.auto_parameterize && params.is_empty() {
            scan = autoparam::scan(sql);
        }
        if let Some(found) = &scan {
            match self.run_template(found) {
                TemplateLookup::Ran(result) => return result.map(|r| vec![r]),
                TemplateLookup::Ordinary => scan = None,
                TemplateLookup::Remember => {
                    if let Some(found) = scan.take() {
                        self.insert_template(found.key, TemplateSlot::Seen);
                    }
                }
                TemplateLookup::Learn => {}
            }
        }
        let statements = self.parse_cached(sql)?;
        if let Some(found) = scan {
            self.learn_template(sql, found, &statements);
        }
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

    /// Runs the template of `scan`'s key with its literals, if there is a valid one and every
    /// literal converts to its parameter's type.
    fn run_template(&mut self, scan: &Scan<'_>) -> TemplateLookup {
        let template = match self.templates.get(scan.key.as_str()) {
            None => return TemplateLookup::Remember,
            Some(TemplateSlot::Seen) => return TemplateLookup::Learn,
            Some(TemplateSlot::Refused(at)) => {
                return match at {
                    Some(v) if Some(*v) == self.engine.catalog_version() => {
                        TemplateLookup::Ordinary
                    }
                    _ => TemplateLookup::Learn,
                }
            }
            Some(TemplateSlot::Ready(t)) => t.clone(),
        };
        let Some(entry) = &template.statement.bound else {
            return TemplateLookup::Learn;
        };
        if !matches!(self.still_valid(entry), Ok(true)) {
            self.templates.remove(scan.key.as_str());
            return TemplateLookup::Learn;
        }
        let mut values = Vec::with_capacity(template.slots.len());
        for (literal, &ty) in scan.literals.iter().zip(&template.slots) {
            // The conversion a literal in this place gets at bind time (`coerce`, `cast_to`).
            match cast_value(Value::Text(literal.text.to_owned()), ty) {
                Ok(v) => values.push(v),
                Err(_) => {
                    self.autoparam_stats.fallbacks += 1;
                    return TemplateLookup::Ordinary;
                }
            }
        }
        self.autoparam_stats.hits += 1;
        TemplateLookup::Ran(self.run_cached(&template.statement, &values))
    }

    /// Builds (or refuses) the template of `scan`'s key from the statement the text parsed to.
    fn learn_template(&mut self, sql: &str, scan: Scan<'_>, statements: &[CachedStatement]) {
        let version = self.engine.catalog_version();
        let slot = match self.build_template(sql, &scan, statements) {
            Ok(template) => {
                self.autoparam_stats.learnt += 1;
                TemplateSlot::Ready(Arc::new(template))
            }
            Err(reason) => {
                self.autoparam_stats.refused += 1;
                debug!(key = %scan.key, reason, "no template");
                TemplateSlot::Refused(version)
            }
        };
        self.insert_template(scan.key, slot);
    }

    /// Stores what a key gives (the cache is cleared when full, as the plan cache is).
    fn insert_template(&mut self, key: String, slot: TemplateSlot) {
        if self.templates.len() >= PLAN_CACHE_CAPACITY && !self.templates.contains_key(&key) {
            self.templates.clear();
        }
        self.templates.insert(key, slot);
    }

    /// The template, or why there is none.
    fn build_template(
        &self,
        sql: &str,
        scan: &Scan<'_>,
        statements: &[CachedStatement],
    ) -> std::result::Result<Template, &'static str> {
        let [statement] = statements else {
            return Err("not one statement");
        };
        if !binds_cacheably(&statement.ast) {
            return Err("not a query, INSERT, UPDATE or DELETE");
        }
        // The literal statement's binding: the cached one while still valid, else anew (the
        // text may have been cached when its table did not exist yet, or looked different).
        let fresh;
        let literal = match &statement.bound {
            Some(e) if matches!(self.still_valid(e), Ok(true)) => e,
            _ => {
                fresh = self
                    .try_bind_cacheable(&statement.ast)
                    .ok_or("the literal statement does not bind")?;
                &fresh
            }
        };
        let mut ast = statement.ast.clone();
        if !autoparam::parameterize(&mut ast, sql, &scan.literals) {
            return Err("the literals are not the scanner's expressions");
        }
        let entry = self.bind(&ast).map_err(|_| "the template does not bind")?;
        if !entry.bound.cacheable() {
            return Err("the template is not cacheable");
        }
        let slots = entry.params.types.clone();
        if slots.len() != scan.literals.len() || slots.iter().any(|t| t.is_untyped()) {
            return Err("a parameter's type is not inferred");
        }
        if output_columns(&entry.bound) != output_columns(&literal.bound)
            || entry.tables != literal.tables
        {
            return Err("the template's columns or tables differ from the literal binding's");
        }
        Ok(Template {
            statement: CachedStatement {
                ast,
                bound: Some(entry),
            },
            slots,
        })
    }

    fn try_bind_cacheable(&self, ast: &Statement) -> Option<BoundEntry> {
        if !binds_cacheably(ast) {
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

/// Whether a statement's bound form may be cached: queries and DML (their binding depends only
/// on the schemas of the tables they touch).
fn binds_cacheably(ast: &Statement) -> bool {
    matches!(
        ast,
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    )
}

/// A statement's output columns (names and types), if it returns rows.
fn output_columns(bound: &Bound) -> Option<&[crate::plan::OutputColumn]> {
    match bound {
        Bound::Query(q) => Some(&q.columns),
        _ => None,
    }
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

    /// Auto-parameterization: a session with it and one without run the same statements on
    /// two engines; results (tag, rows, schema, batches) or errors must be identical, and so
    /// must the tables afterwards.
    mod auto_param {
        use super::*;
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;

        const DIM: usize = 8;

        const SETUP: &str =
            "CREATE TABLE t (id BIGINT PRIMARY KEY, tag TEXT, v VECTOR(8), ts TIMESTAMP);
             CREATE INDEX t_v ON t USING hnsw (v vector_l2_ops);
             INSERT INTO t VALUES
               (1, 'alpha', '[0,0,0,0,0,0,0,0]', '2024-01-01 00:00:00'),
               (2, NULL, '[1,0,0,0,0,0,0,0]', NULL),
               (3, 'beta', '[0,2,0,0,0,0,0,1]', '2024-06-01 12:00:00'),
               (4, 'alphabet', NULL, '2023-01-01 00:00:00'),
               (5, 'gamma', '[3,3,3,3,3,3,3,3]', '2025-01-01 00:00:00')";

        /// Two sessions over two engines set up alike, auto-parameterization on and off.
        struct Pair {
            on: Session,
            off: Session,
        }

        impl Pair {
            fn new() -> Self {
                let mut on = Session::new(Arc::new(MemoryEngine::new()));
                let mut off = Session::new(Arc::new(MemoryEngine::new()));
                off.set_auto_parameterize(false);
                on.execute(SETUP, &[]).expect("setup");
                off.execute(SETUP, &[]).expect("setup");
                Pair { on, off }
            }

            /// Runs `sql` on both and checks they agree; returns the result (or error).
            fn run(&mut self, sql: &str) -> Result<Vec<StatementResult>> {
                let a = self.on.execute(sql, &[]);
                let b = self.off.execute(sql, &[]);
                match (&a, &b) {
                    (Ok(x), Ok(y)) => {
                        assert_eq!(x.len(), y.len(), "{sql}");
                        for (x, y) in x.iter().zip(y) {
                            assert_eq!(x.tag, y.tag, "{sql}");
                            assert_eq!(x.rows_affected, y.rows_affected, "{sql}");
                            assert_eq!(x.returns_rows, y.returns_rows, "{sql}");
                            assert_eq!(x.schema, y.schema, "{sql}");
                            assert_eq!(x.batches, y.batches, "{sql}");
                        }
                    }
                    (Err(x), Err(y)) => {
                        assert_eq!(x, y, "{sql}");
                        assert_eq!(x.code(), y.code(), "{sql}");
                    }
                    _ => panic!("{sql}: {a:?} vs {b:?}"),
                }
                a
            }

            /// Both databases hold the same rows.
            fn same_state(&mut self) {
                self.run("SELECT id, tag, v, ts FROM t ORDER BY id")
                    .expect("state");
                assert!(!self.on.in_transaction() || self.off.in_transaction());
            }

            fn slot(&self, sql: &str) -> Option<&TemplateSlot> {
                self.on
                    .templates
                    .get(&crate::autoparam::scan(sql).expect("a candidate").key)
            }

            fn has_template(&self, sql: &str) -> bool {
                matches!(self.slot(sql), Some(TemplateSlot::Ready(_)))
            }

            fn refused(&self, sql: &str) -> bool {
                matches!(self.slot(sql), Some(TemplateSlot::Refused(_)))
            }
        }

        /// A vector literal of `dim` elements, ~10 bytes each so one passes the size threshold.
        fn vector(seed: u32, dim: usize) -> String {
            let parts: Vec<String> = (0..dim)
                .map(|i| format!("{:.7}", ((seed as usize * 31 + i * 7) % 97) as f64 / 13.0))
                .collect();
            format!("[{}]", parts.join(","))
        }

        fn long_tag(seed: u32) -> String {
            format!("tag-{seed}-{}", "x".repeat(70))
        }

        /// A text with a key seen before runs its template (it is not parsed: the text-keyed
        /// cache never sees it), and gives what the ordinary path gives.
        #[test]
        fn a_second_text_with_the_key_runs_the_template() {
            let mut p = Pair::new();
            let q = |seed| {
                format!(
                    "SELECT id FROM t ORDER BY v <-> '{}' LIMIT 3",
                    vector(seed, DIM)
                )
            };
            // The first text only marks its key seen; the second builds the template.
            p.run(&q(1)).expect("first");
            assert!(matches!(p.slot(&q(1)), Some(TemplateSlot::Seen)));
            p.run(&q(2)).expect("second");
            assert!(p.has_template(&q(1)));
            assert!(p.on.cache.contains_key(&q(2)));
            for seed in 3..7 {
                let out = p.run(&q(seed)).expect("hit");
                assert_eq!(out[0].rows_affected, 3);
                assert!(!p.on.cache.contains_key(&q(seed)), "parsed: {}", q(seed));
            }
            // Off, nothing is learnt.
            assert!(p.off.templates.is_empty());
        }

        /// Where a string literal and an untyped `$k` would bind differently, there is no
        /// template; where they bind alike, there is one and it agrees with the literals.
        #[test]
        fn binder_differences_refuse_or_agree() {
            let mut p = Pair::new();
            let v = vector(7, DIM);
            let tag = long_tag(1);
            // A bare literal is `unknown` (a `?column?` of text); a parameter there has no
            // type: no template.
            for sql in [
                format!("SELECT '{tag}'"),
                format!("SELECT '{tag}' AS x, id FROM t"),
                // INSERT ... VALUES leaves literals untyped until assignment.
                format!("INSERT INTO t VALUES (10, '{tag}', '{v}', NULL)"),
                format!("INSERT INTO t (id, tag) VALUES (11, 'x'), (12, '{tag}')"),
                // LIKE ... ESCAPE is unsupported whatever the pattern.
                format!("SELECT id FROM t WHERE tag LIKE '{tag}' ESCAPE '!'"),
            ] {
                p.run(&sql).ok();
                p.run(&sql).ok();
                assert!(p.refused(&sql), "{sql}");
                p.run(&sql.replace("x", "y")).ok();
            }
            // Typed by context: templates that must agree with the literal path.
            for (sql, again) in [
                (
                    format!("SELECT '{tag}'::text AS a, id FROM t ORDER BY id"),
                    format!("SELECT '{}'::text AS a, id FROM t ORDER BY id", long_tag(2)),
                ),
                (
                    format!("SELECT tag || '{tag}' FROM t ORDER BY id"),
                    format!("SELECT tag || '{}' FROM t ORDER BY id", long_tag(3)),
                ),
                (
                    format!("SELECT id FROM t WHERE tag LIKE 'alpha%' AND v <-> '{v}' < 100 ORDER BY id"),
                    format!("SELECT id FROM t WHERE tag LIKE '%a' AND v <-> '{v}' < 100 ORDER BY id"),
                ),
                (
                    format!("SELECT vector_dims('{v}'), '{v}'::vector(8) <-> v FROM t ORDER BY id"),
                    format!("SELECT vector_dims('{}'), '{v}'::vector(8) <-> v FROM t ORDER BY id", vector(9, 3)),
                ),
                (
                    format!("SELECT id FROM t WHERE ts < '2024-03-01 00:00:00' AND tag <> '{tag}' ORDER BY id"),
                    format!(
                        "SELECT id FROM t WHERE ts < '2025-03-01 00:00:00' AND tag <> '{}' ORDER BY id",
                        long_tag(4)
                    ),
                ),
                (
                    format!("SELECT count(*), max(tag) FROM t WHERE tag > '{tag}' OR v = '{v}'"),
                    format!("SELECT count(*), max(tag) FROM t WHERE tag > 'a' OR v = '{}'", vector(1, DIM)),
                ),
                (
                    format!("SELECT id FROM t WHERE id = '{}' OR tag = '{tag}'", " 3 "),
                    format!("SELECT id FROM t WHERE id = '{}' OR tag = '{tag}'", "2"),
                ),
            ] {
                p.run(&sql).expect(&sql);
                p.run(&sql).expect(&sql);
                assert!(p.has_template(&sql), "{sql}");
                let hits = p.on.autoparam_stats.hits;
                p.run(&again).expect(&again);
                assert_eq!(p.on.autoparam_stats.hits, hits + 1, "{again}");
            }
            // A `'..'::vector(2)` of the wrong dimension fails at bind time with the literal;
            // with the template the conversion fails and the ordinary path gives that error.
            let cast =
                |v: &str| format!("SELECT id FROM t ORDER BY v <-> '{v}'::vector(8) LIMIT 2");
            p.run(&cast(&vector(1, DIM))).expect("right dimension");
            p.run(&cast(&vector(3, DIM))).expect("right dimension");
            assert!(p.has_template(&cast(&vector(1, DIM))));
            let err = p.run(&cast(&vector(2, 9))).expect_err("wrong dimension");
            assert_eq!(err.code(), "22000");
            let err = p
                .run(&cast(
                    "[1,2,x,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23]",
                ))
                .expect_err("malformed");
            assert_eq!(err.code(), "22P02");
            // ON CONFLICT DO UPDATE: typed by the assignment.
            let upsert = |id: u32, seed: u32| {
                format!(
                    "INSERT INTO t (id) VALUES ({id}) ON CONFLICT (id) DO UPDATE SET v = '{}', tag = '{}'",
                    vector(seed, DIM),
                    long_tag(seed)
                )
            };
            p.run(&upsert(1, 1)).expect("upsert");
            p.run(&upsert(2, 2)).expect("upsert");
            p.run(&upsert(20, 3)).expect("insert");
            p.same_state();
        }

        /// A template is dropped and learnt again when a table it reads changes under it
        /// (DROP/CREATE INDEX, a table dropped and created anew, made through the engine by
        /// another session).
        #[test]
        fn schema_changes_invalidate_templates() {
            let engine = Arc::new(MemoryEngine::new());
            let mut s = Session::new(engine.clone());
            s.execute(SETUP, &[]).expect("setup");
            let mut other = Session::new(engine.clone());
            let q = |v: &str| format!("SELECT id FROM t ORDER BY v <-> '{v}' LIMIT 2");
            let template_tables = |s: &Session, sql: &str| match s
                .templates
                .get(&crate::autoparam::scan(sql).expect("candidate").key)
            {
                Some(TemplateSlot::Ready(t)) => {
                    t.statement.bound.as_ref().expect("bound").tables.clone()
                }
                other => panic!("{other:?}"),
            };
            s.execute(&q(&vector(1, DIM)), &[]).expect("query");
            s.execute(&q(&vector(5, DIM)), &[]).expect("query");
            assert_eq!(template_tables(&s, &q(&vector(1, DIM)))[0].indexes.len(), 1);
            other.execute("DROP INDEX t_v", &[]).expect("drop index");
            let out = s.execute(&q(&vector(2, DIM)), &[]).expect("query");
            assert_eq!(out[0].rows_affected, 2);
            assert!(template_tables(&s, &q(&vector(2, DIM)))[0]
                .indexes
                .is_empty());
            other
                .execute(
                    "CREATE INDEX t_v2 ON t USING hnsw (v vector_cosine_ops)",
                    &[],
                )
                .expect("create index");
            s.execute(&q(&vector(3, DIM)), &[]).expect("query");
            assert_eq!(template_tables(&s, &q(&vector(3, DIM)))[0].indexes.len(), 1);
            // The table anew with 3-d vectors: an 8-d literal now fails as the literal does,
            // and a 3-d one runs.
            other
                .execute(
                    "DROP TABLE t; CREATE TABLE t (id BIGINT PRIMARY KEY, v VECTOR(3));
                     INSERT INTO t VALUES (1, '[1,2,3]'), (2, '[0,0,1]')",
                    &[],
                )
                .expect("recreate");
            let mut fresh = Session::new(engine.clone());
            fresh.set_auto_parameterize(false);
            let sql = q(&vector(4, DIM));
            assert_eq!(
                s.execute(&sql, &[]).map(|r| r[0].rows_affected),
                fresh.execute(&sql, &[]).map(|r| r[0].rows_affected)
            );
            let three = q(&format!("[{}]", ["1.0000000000000000000000"; 3].join(",")));
            let out = s.execute(&three, &[]).expect("3-d");
            assert_eq!(out[0].rows_affected, 2);
            assert_eq!(template_tables(&s, &three)[0].columns.len(), 2);
            // A refusal is forgotten when the catalog moves: the table is dropped, the query
            // fails (no template), the table comes back, the template is learnt.
            other.execute("DROP TABLE t", &[]).expect("drop");
            assert!(s.execute(&three, &[]).is_err());
            other
                .execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v VECTOR(3))", &[])
                .expect("create");
            s.execute(&three, &[]).expect("3-d again");
            assert!(!template_tables(&s, &three).is_empty());
        }

        /// Inside a transaction the template path keeps PostgreSQL's rule: after a failure
        /// only COMMIT/ROLLBACK are accepted.
        #[test]
        fn transactions_and_aborted_blocks_agree() {
            let mut p = Pair::new();
            let upd = |seed| format!("UPDATE t SET v = '{}' WHERE id = 1", vector(seed, DIM));
            p.run(&upd(1)).expect("seen");
            p.run(&upd(5)).expect("learn");
            p.run("BEGIN").expect("begin");
            p.run(&upd(2)).expect("in tx");
            p.run(&format!(
                "SELECT id FROM t ORDER BY v <-> '{}' LIMIT 2",
                vector(2, DIM)
            ))
            .expect("reads its writes");
            p.run(&upd(3).replace("WHERE id = 1", "WHERE id = 1 AND v <-> '[1]' < 1"))
                .expect_err("dimension error aborts");
            p.run(&upd(4)).expect_err("aborted");
            p.run("COMMIT").expect("rolls back");
            p.same_state();
        }

        /// Statement pieces for the property test: literal texts good and bad.
        fn vector_text() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => (0u32..1000).prop_map(|s| vector(s, DIM)),
                2 => (0u32..1000, 1usize..12).prop_map(|(s, d)| vector(s, d)),
                2 => proptest::sample::select(&[
                    "[1,2,3,4,5,6,7,8",
                    "[1,,2,3,4,5,6,7,8]",
                    "[NaN,0,0,0,0,0,0,0]",
                    "[inf,0,0,0,0,0,0,0]",
                    "[1e39,0,0,0,0,0,0,0]",
                    "[]",
                    " [ 1 , 2 ,3,4,5,6,7, 8 ] ",
                    "1,2,3,4,5,6,7,8",
                    "[1,2,3,4,5,6,7,8] x",
                    "[0.000000000000000000000000000000000000000000001,0,0,0,0,0,0,0]",
                ][..]).prop_map(|s| format!("{s}{}", " ".repeat(40))),
            ]
        }

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                2 => proptest::sample::select(&["alpha", "beta", "", "NULL", "alp%", "%a_", "gamma"][..])
                    .prop_map(str::to_string),
                1 => (0u32..5).prop_map(long_tag),
            ]
        }

        /// A statement shape: `§v` and `§t` stand for a vector and a text literal.
        fn shape() -> impl Strategy<Value = String> {
            prop_oneof![
                (0u32..6).prop_map(|k| format!("SELECT id FROM t ORDER BY v <-> '§v' LIMIT {k}")),
                (1u32..6).prop_map(|k| format!(
                    "SELECT id, tag FROM t WHERE tag = '§t' ORDER BY v <-> '§v' LIMIT {k}"
                )),
                (0u32..30).prop_map(|r| format!(
                    "SELECT id, v <=> '§v' FROM t WHERE tag LIKE '§t' OR v <-> '§v' < {r} ORDER BY id"
                )),
                Just("SELECT count(*) FROM t WHERE tag > '§t' AND v <+> '§v' > 1".to_string()),
                (1u32..12).prop_map(|id| format!("INSERT INTO t VALUES ({id}, '§t', '§v', NULL)")),
                (1u32..12).prop_map(|id| format!(
                    "INSERT INTO t (id) VALUES ({id}) ON CONFLICT (id) DO UPDATE SET tag = '§t', v = '§v'"
                )),
                (1u32..12).prop_map(|id| format!("UPDATE t SET v = '§v', tag = '§t' WHERE id = {id}")),
                (0u32..4).prop_map(|r| format!("UPDATE t SET tag = NULL WHERE v <-> '§v' < {r}")),
                (0u32..8).prop_map(|r| format!("DELETE FROM t WHERE v <#> '§v' > -{r}")),
                Just("DELETE FROM t WHERE tag = '§t' AND v <> '§v'".to_string()),
                Just("SELECT '§t', '§v'".to_string()),
                Just("SELECT '§t'::text, '§v'::vector(8), tag || '§t' FROM t ORDER BY id".to_string()),
                Just("SELECT id FROM t WHERE ts > '§t' AND v <-> '§v' < 5".to_string()),
                Just("SELECT vector_dims('§v'), vector_norm('§v')".to_string()),
                Just("BEGIN".to_string()),
                Just("COMMIT".to_string()),
                Just("ROLLBACK".to_string()),
            ]
        }

        /// `shape` with its markers filled from `vectors` and `texts` in turn.
        fn fill(shape: &str, vectors: &[String], texts: &[String]) -> String {
            let (mut vs, mut ts) = (vectors.iter().cycle(), texts.iter().cycle());
            let mut out = String::new();
            for (i, piece) in shape.split('§').enumerate() {
                if i == 0 {
                    out.push_str(piece);
                    continue;
                }
                let (filler, rest) = match piece.as_bytes().first() {
                    Some(b'v') => (vs.next(), &piece[1..]),
                    Some(b't') => (ts.next(), &piece[1..]),
                    _ => (None, piece),
                };
                out.push_str(filler.map_or("", String::as_str));
                out.push_str(rest);
            }
            out
        }

        /// Statements: shapes each run with one to five sets of literals, so that keys recur.
        fn statements() -> impl Strategy<Value = Vec<String>> {
            let fills = (
                proptest::collection::vec(vector_text(), 2),
                proptest::collection::vec(text(), 2),
            );
            let group =
                (shape(), proptest::collection::vec(fills, 1..6)).prop_map(|(shape, fills)| {
                    fills
                        .iter()
                        .map(|(v, t)| fill(&shape, v, t))
                        .collect::<Vec<_>>()
                });
            proptest::collection::vec(group, 1..16).prop_map(|g| g.concat())
        }

        /// Runs `statements` through a [`Pair`] (which checks every result) and compares the
        /// tables at the end; returns what the auto-parameterizing session did.
        fn check(statements: &[String]) -> AutoParamStats {
            let mut p = Pair::new();
            for sql in statements {
                let _ = p.run(sql);
            }
            p.run("ROLLBACK").ok();
            p.same_state();
            p.on.autoparam_stats
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]

            #[test]
            fn auto_parameterization_changes_no_result(statements in statements()) {
                check(&statements);
            }
        }

        /// The property test's statements do exercise templates: hits, fallbacks to the
        /// ordinary path, learnt and refused keys, over a fixed sample.
        #[test]
        fn the_property_test_runs_templates() {
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let mut total = AutoParamStats::default();
            for _ in 0..40 {
                let statements = statements()
                    .new_tree(&mut runner)
                    .expect("sample")
                    .current();
                let s = check(&statements);
                total.hits += s.hits;
                total.fallbacks += s.fallbacks;
                total.learnt += s.learnt;
                total.refused += s.refused;
            }
            assert!(total.hits > 100, "{total:?}");
            assert!(total.fallbacks > 10, "{total:?}");
            assert!(total.learnt > 40, "{total:?}");
            assert!(total.refused > 20, "{total:?}");
        }
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
