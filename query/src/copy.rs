//! `COPY`: bulk load from, and export to, Parquet and CSV files, streaming through `vela-datasets`.
//!
//! ```sql
//! COPY items FROM 'items.parquet';
//! COPY items (id, embedding) FROM 'items.csv' WITH (FORMAT csv, HEADER true, DELIMITER ',');
//! COPY items TO 'out.parquet';
//! COPY (SELECT id, embedding FROM items WHERE id < 100) TO 'out.csv' WITH (FORMAT csv);
//! ```
//!
//! Paths are files on the machine running Vela, relative to the process's working directory.
//! The format comes from `WITH (FORMAT parquet | csv)` or the file name (`.parquet`, `.pq`,
//! `.csv`, `.csv.gz`, `.tsv`; `COPY FROM` also reads `.fvecs`/`.bvecs`, ids being row numbers).
//! CSV vectors are pgvector text (`[1,2,3]`). `HEADER` defaults to **true** (unlike PostgreSQL,
//! whose CSV default is false): the files Vela exchanges with data tools nearly always carry
//! one; say `HEADER false` for a headerless file, whose columns are then taken in the table's
//! (or the column list's) order. With a header, or in Parquet, columns are matched by name.
//! A column list names the file's columns; table columns not in it load as NULL.
//!
//! # `COPY ... FROM`: streaming, and what an interruption leaves
//!
//! The file is read as a stream of batches ([`vela_datasets::TableSource`]: at most one decoded
//! chunk plus the current batch in memory, whatever the file's size). Each batch is sized by
//! [`vela_datasets::BatchSizer`] (about 4 MiB of rows once the first batch shows the row size,
//! 256-65,536 rows, at most 16 MiB; it moves to twice or half that only on a clear, confirmed
//! gain in rows/s), mapped onto the table ([`vela_datasets::TableMapping`]: every value checked,
//! errors naming the file, the row counted from 1 and the column) and written through
//! [`Engine::write`] as **one engine write batch, which the engine logs as one WAL entry and
//! applies all or nothing**. Then the next batch is read. So:
//!
//! - COPY is *not* one transaction. Batches are committed one after the other; a COPY that
//!   fails (a bad row, a duplicate key, a disk error) or is killed (`kill -9`, power loss with
//!   `synchronous = full`) leaves the table with the rows of the batches committed before the
//!   failure — whole batches, a prefix of the file in file order — and none of the failing or
//!   later batches: never half a batch. The error message says how many rows were committed
//!   and which file rows the rejected batch held, so a user can resume with the rest of the file
//!   (or `DELETE` the committed prefix).
//! - A row-level error (wrong vector length, NULL or NaN vector, NULL key, a key repeated in the
//!   file or already in the table) names the file, the row and the column; its batch is not
//!   applied.
//! - The file's schema is checked before any row is read: a mismatch lists every offending
//!   column and nothing is written.
//! - COPY is refused inside `BEGIN ... COMMIT` (`0A000`), since it commits as it goes.
//!
//! # `COPY ... TO`
//!
//! Rows go through [`vela_datasets::BatchWriter`] into a temporary file beside the target, which
//! is fsynced and renamed over the target only when every row is written: a failed export leaves
//! the old file (or no file), never half of one. `COPY t TO` reads the table through
//! [`Engine::scan_chunks`] and holds one chunk of rows at a time (the engine's snapshot of the
//! table is shared, not copied); `COPY (SELECT ...) TO` runs the query (the executor materializes
//! its result) and writes it in batches of [`BATCH_ROWS`].
//!
//! # Progress
//!
//! A session's progress hook ([`crate::Session::set_progress`]) is called after every batch with
//! the rows done so far and the total when known (Parquet and vecs files know their row count,
//! CSV does not; exports know it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget};
use vela_datasets::{
    BatchSizer, BatchWriter, CsvOptions, DatasetError, ExportOptions, Format, ImportOptions,
    MapOptions, SizerConfig, SourceOptions, TableSource,
};
use vela_engine::catalog::{Key, TableSchema, Value};

use crate::engine::{row_key, Row, TableWrite, WriteOp};
use crate::error::{QueryError, Result};
use crate::exec::batch::{arrow_schema, build_batch, result_types, BATCH_ROWS};
use crate::exec::{execute, ExecContext};
use crate::expr::bind::ident_name;
use crate::plan::{OutputColumn, QueryPlan};
use crate::select::{object_name, plan_query, BindContext};
use crate::types::SqlType;

/// The progress hook: `(rows_done, rows_total)` after each batch of a COPY.
pub type ProgressFn = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// Options of a COPY (`WITH (...)`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyOptions {
    /// `FORMAT`; `None` tells it from the file name.
    pub format: Option<Format>,
    /// CSV `HEADER`; `None` is true (see the module doc).
    pub header: Option<bool>,
    /// CSV `DELIMITER`.
    pub delimiter: Option<u8>,
}

/// What a COPY exports.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyFromQuery {
    /// `COPY t [(cols)] TO`: these columns of the table, in this order.
    Table {
        schema: TableSchema,
        columns: Vec<usize>,
    },
    /// `COPY (SELECT ...) TO`.
    Query(QueryPlan),
}

/// A bound COPY statement.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyPlan {
    /// `COPY t [(cols)] FROM 'file'`.
    From {
        schema: TableSchema,
        /// The column list, as positions in the table; `None` for all columns.
        columns: Option<Vec<usize>>,
        path: PathBuf,
        options: CopyOptions,
    },
    /// `COPY t TO 'file'` / `COPY (SELECT ...) TO 'file'`.
    To {
        source: CopyFromQuery,
        path: PathBuf,
        options: CopyOptions,
    },
}

fn delimiter(c: char) -> Result<u8> {
    u8::try_from(c)
        .ok()
        .filter(|b| b.is_ascii() && *b != b'\n' && *b != b'\r')
        .ok_or_else(|| {
            QueryError::InvalidParameterValue(format!(
                "COPY delimiter must be a single one-byte character, not '{c}'"
            ))
        })
}

fn bind_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyOptions> {
    let mut out = CopyOptions::default();
    for o in options {
        match o {
            CopyOption::Format(name) => {
                let name = ident_name(name);
                out.format = Some(match Format::from_name(&name) {
                    Some(f) => f,
                    None if name == "text" || name == "binary" => {
                        return Err(QueryError::unsupported(format!(
                            "COPY format \"{name}\" (use parquet or csv)"
                        )))
                    }
                    None => {
                        return Err(QueryError::InvalidParameterValue(format!(
                            "COPY format \"{name}\" not recognized (parquet, csv, fvecs or bvecs)"
                        )))
                    }
                });
            }
            CopyOption::Header(h) => out.header = Some(*h),
            CopyOption::Delimiter(c) => out.delimiter = Some(delimiter(*c)?),
            other => return Err(QueryError::unsupported(format!("COPY option {other}"))),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(csv) => {
                out.format = Some(Format::Csv);
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => out.header = Some(true),
                        other => {
                            return Err(QueryError::unsupported(format!("COPY option {other}")))
                        }
                    }
                }
            }
            CopyLegacyOption::Header => out.header = Some(true),
            CopyLegacyOption::Parquet => out.format = Some(Format::Parquet),
            CopyLegacyOption::Delimiter(c) => out.delimiter = Some(delimiter(*c)?),
            other => return Err(QueryError::unsupported(format!("COPY option {other}"))),
        }
    }
    Ok(out)
}

fn column_positions(schema: &TableSchema, names: &[sqlparser::ast::Ident]) -> Result<Vec<usize>> {
    let mut out: Vec<usize> = Vec::with_capacity(names.len());
    for n in names {
        let name = ident_name(n);
        let (pos, _) = schema
            .column(&name)
            .ok_or_else(|| QueryError::UndefinedColumn(name.clone()))?;
        if out.contains(&pos) {
            return Err(QueryError::InvalidReference(format!(
                "column \"{name}\" specified more than once"
            )));
        }
        out.push(pos);
    }
    Ok(out)
}

/// Binds `COPY source TO|FROM target WITH (options)`.
pub fn bind_copy(
    source: &CopySource,
    to: bool,
    target: &CopyTarget,
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
    ctx: &mut BindContext<'_>,
) -> Result<CopyPlan> {
    let path = match target {
        CopyTarget::File { filename } if !filename.is_empty() => PathBuf::from(filename),
        CopyTarget::File { .. } => {
            return Err(QueryError::InvalidParameterValue(
                "COPY needs a file name".into(),
            ))
        }
        CopyTarget::Stdin | CopyTarget::Stdout => {
            return Err(QueryError::unsupported(
                "COPY from STDIN or to STDOUT (name a Parquet or CSV file)",
            ))
        }
        CopyTarget::Program { .. } => return Err(QueryError::unsupported("COPY PROGRAM")),
    };
    let options = bind_options(options, legacy)?;
    match source {
        CopySource::Table {
            table_name,
            columns,
        } => {
            let name = object_name(table_name)?;
            let schema = ctx
                .engine
                .table(&name)?
                .ok_or_else(|| QueryError::UndefinedTable(name.clone()))?;
            let list = column_positions(&schema, columns)?;
            if to {
                let columns = if list.is_empty() {
                    (0..schema.columns.len()).collect()
                } else {
                    list
                };
                Ok(CopyPlan::To {
                    source: CopyFromQuery::Table { schema, columns },
                    path,
                    options,
                })
            } else {
                Ok(CopyPlan::From {
                    columns: (!list.is_empty()).then_some(list),
                    schema,
                    path,
                    options,
                })
            }
        }
        CopySource::Query(q) => {
            if !to {
                return Err(QueryError::Syntax {
                    message: "COPY (query) FROM is not valid; use COPY table FROM".into(),
                    line: 0,
                    column: 0,
                });
            }
            Ok(CopyPlan::To {
                source: CopyFromQuery::Query(plan_query(q, ctx)?),
                path,
                options,
            })
        }
    }
}

/// Runs a bound COPY; `ctx` carries the engine and parameters (no pending transaction writes:
/// the session refuses COPY inside a transaction). Returns the rows copied.
pub fn run_copy(
    plan: &CopyPlan,
    ctx: &mut ExecContext<'_>,
    progress: Option<&ProgressFn>,
) -> Result<u64> {
    match plan {
        CopyPlan::From {
            schema,
            columns,
            path,
            options,
        } => copy_from(ctx, schema, columns.as_deref(), path, options, progress),
        CopyPlan::To {
            source,
            path,
            options,
        } => copy_to(ctx, source, path, options, progress),
    }
}

/// The table as the file sees it: the listed columns only (the key must be among them).
fn listed_schema(schema: &TableSchema, columns: &[usize]) -> Result<TableSchema> {
    let key = columns
        .iter()
        .position(|&c| c == schema.primary_key)
        .ok_or_else(|| QueryError::NotNullViolation {
            table: schema.name.clone(),
            column: schema.primary_key_column().name.clone(),
        })?;
    if let Some(missing) = schema
        .columns
        .iter()
        .enumerate()
        .find(|(i, c)| !c.nullable && !columns.contains(i))
    {
        return Err(QueryError::NotNullViolation {
            table: schema.name.clone(),
            column: missing.1.name.clone(),
        });
    }
    Ok(TableSchema {
        name: schema.name.clone(),
        columns: columns
            .iter()
            .filter_map(|&c| schema.columns.get(c).cloned())
            .collect(),
        primary_key: key,
        shards: schema.shards,
        indexes: Vec::new(),
    })
}

/// How far a COPY FROM got before an error.
#[derive(Debug, Clone, Copy, Default)]
struct Committed {
    rows: u64,
    batches: u64,
}

impl Committed {
    fn describe(self) -> String {
        match self.batches {
            0 => "no rows were committed".to_string(),
            1 => format!(
                "{} row{} in 1 earlier batch were committed and stay in the table",
                self.rows,
                if self.rows == 1 { "" } else { "s" }
            ),
            n => format!(
                "{} rows in {n} earlier batches were committed and stay in the table",
                self.rows
            ),
        }
    }
}

fn rows_span(first: u64, n: u64) -> String {
    if n == 1 {
        format!("file row {}", first + 1)
    } else {
        format!("file rows {}-{}", first + 1, first + n)
    }
}

fn copy_from(
    ctx: &mut ExecContext<'_>,
    schema: &TableSchema,
    columns: Option<&[usize]>,
    path: &Path,
    options: &CopyOptions,
    progress: Option<&ProgressFn>,
) -> Result<u64> {
    let table = &schema.name;
    let target = match columns {
        Some(cols) => listed_schema(schema, cols)?,
        None => schema.clone(),
    };
    let import = ImportOptions {
        source: SourceOptions {
            format: options.format,
            csv: CsvOptions {
                header: options.header.unwrap_or(true),
                delimiter: options.delimiter,
                ..CsvOptions::default()
            },
            ..SourceOptions::default()
        },
        mapping: MapOptions::default(),
    };
    let mut source = TableSource::open(path, &target, &import).map_err(|e| QueryError::Copy {
        code: e.code(),
        message: format!("COPY {table} FROM: {e}; nothing was written"),
    })?;
    let total = source.total_rows();
    let mut sizer = BatchSizer::new(SizerConfig::default());
    let mut done = Committed::default();
    loop {
        let started = Instant::now();
        // Rows straight from the file's decoded chunks: the batch never exists as Arrow data.
        let batch = match source.next_rows(sizer.next_rows(), sizer.byte_budget()) {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                return Err(QueryError::Copy {
                    code: e.code(),
                    message: format!(
                        "COPY {table} FROM: {e}; this batch (from file row {}) was not applied; {}",
                        source.rows_done() + 1,
                        done.describe()
                    ),
                })
            }
        };
        let (n, first, bytes) = (batch.len() as u64, batch.first_row, batch.bytes);
        let bad_batch = |code: &'static str, what: String| QueryError::Copy {
            code,
            message: format!(
                "COPY {table} FROM: {}: {what}; this batch ({}) was not applied; {}",
                path.display(),
                rows_span(first, n),
                done.describe()
            ),
        };
        let rows: Vec<Row> = match columns {
            None => batch.rows,
            Some(cols) => batch
                .rows
                .into_iter()
                .map(|r| {
                    let mut full = vec![Value::Null; schema.columns.len()];
                    for (v, &c) in r.into_iter().zip(cols) {
                        if let Some(slot) = full.get_mut(c) {
                            *slot = v;
                        }
                    }
                    full
                })
                .collect(),
        };
        let keys = rows
            .iter()
            .map(|r| row_key(schema, r))
            .collect::<Result<Vec<Key>>>()?;
        let writes: Vec<TableWrite> = rows
            .into_iter()
            .map(|r| TableWrite {
                table: table.clone(),
                op: WriteOp::Insert(r),
            })
            .collect();
        if let Err(e) = ctx.engine.write(writes) {
            return Err(match e.code() {
                "23505" => duplicate_error(ctx, schema, &keys, first, &bad_batch, &e),
                code => bad_batch(code, e.to_string()),
            });
        }
        done.rows += n;
        done.batches += 1;
        sizer.record(n as usize, bytes, started.elapsed());
        if let Some(p) = progress {
            p(done.rows, total);
        }
    }
    Ok(done.rows)
}

/// Names the file row whose key the engine found already in the table.
fn duplicate_error(
    ctx: &ExecContext<'_>,
    schema: &TableSchema,
    keys: &[Key],
    first: u64,
    bad_batch: &dyn Fn(&'static str, String) -> QueryError,
    engine_error: &QueryError,
) -> QueryError {
    // The batch was not applied, so any of its keys present now was there before the batch.
    for (i, key) in keys.iter().enumerate() {
        if let Ok(Some(_)) = ctx.engine.get(&schema.name, key) {
            return bad_batch(
                "23505",
                format!(
                    "row {}, column \"{}\": duplicate key value {key} already exists in \"{}\"",
                    first + i as u64 + 1,
                    schema.primary_key_column().name,
                    schema.name
                ),
            );
        }
    }
    bad_batch("23505", engine_error.to_string())
}

fn copy_to(
    ctx: &mut ExecContext<'_>,
    source: &CopyFromQuery,
    path: &Path,
    options: &CopyOptions,
    progress: Option<&ProgressFn>,
) -> Result<u64> {
    let export = ExportOptions {
        format: options.format,
        header: options.header.unwrap_or(true),
        delimiter: options.delimiter.unwrap_or(b','),
        ..ExportOptions::default()
    };
    let io = |e: DatasetError| QueryError::Copy {
        code: e.code(),
        message: format!("COPY TO: {e}; the file was not written"),
    };
    match source {
        CopyFromQuery::Table { schema, columns } => {
            let out: Vec<OutputColumn> = columns
                .iter()
                .filter_map(|&c| schema.columns.get(c))
                .map(|c| OutputColumn {
                    name: c.name.clone(),
                    ty: SqlType::of_column(c.ty),
                })
                .collect();
            let types = result_types(&out, &[])?;
            let arrow = arrow_schema(&out, &types);
            let mut writer = BatchWriter::create(path, arrow.clone(), &export).map_err(io)?;
            let all: bool = columns.iter().copied().eq(0..schema.columns.len());
            let mut done = 0u64;
            ctx.engine
                .scan_chunks(&schema.name, None, BATCH_ROWS, &mut |rows, total| {
                    let rows: Vec<Row> = if all {
                        rows
                    } else {
                        rows.into_iter()
                            .map(|r| {
                                columns
                                    .iter()
                                    .map(|&c| r.get(c).cloned().unwrap_or(Value::Null))
                                    .collect()
                            })
                            .collect()
                    };
                    let batch = build_batch(&arrow, &types, &rows)?;
                    writer.write(&batch).map_err(io)?;
                    done += rows.len() as u64;
                    if let Some(p) = progress {
                        p(done, Some(total));
                    }
                    Ok(())
                })?;
            writer.finish().map_err(io)?;
            Ok(done)
        }
        CopyFromQuery::Query(q) => {
            let rows = execute(&q.root, ctx)?;
            let types = result_types(&q.columns, &rows)?;
            let arrow = arrow_schema(&q.columns, &types);
            let mut writer = BatchWriter::create(path, arrow.clone(), &export).map_err(io)?;
            let total = rows.len() as u64;
            let mut done = 0u64;
            for chunk in rows.chunks(BATCH_ROWS) {
                writer
                    .write(&build_batch(&arrow, &types, chunk)?)
                    .map_err(io)?;
                done += chunk.len() as u64;
                if let Some(p) = progress {
                    p(done, Some(total));
                }
            }
            writer.finish().map_err(io)?;
            Ok(done)
        }
    }
}
