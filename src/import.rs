//! `vela import DIR --table T FILE`: bulk-loads a Parquet, CSV, fvecs or bvecs file into a table.
//!
//! The file is streamed through [`vela_datasets::TableSource`] (bounded memory, the schema
//! checked before any row is read) in batches sized by [`vela_datasets::BatchSizer`] (about 4
//! MiB, at most 16 MiB; `--batch-rows` fixes the rows, at most 32 MiB), each read straight into
//! engine rows ([`vela_datasets::TableSource::next_rows`]). Each batch is one
//! [`vela::Database::write`]: one engine write, one WAL entry, applied all or nothing. So an import that fails or is killed
//! leaves the table with a whole number of batches (the rows before the failing batch), never
//! part of one; the error says how many rows stayed.
//!
//! Progress: an `indicatif` bar (rows/s, ETA) when standard error is a terminal, otherwise only
//! the final summary line. Errors print as `ERROR <SQLSTATE>: <message>` on standard error and
//! the exit status is 1 (2 for bad arguments).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vela::engine::EngineError;
use vela::{Database, Error as VelaError, Op, Value};
use vela_datasets::{
    key_index, BatchSizer, CsvOptions, DatasetError, Format, ImportOptions, MapOptions,
    SizerConfig, SourceOptions, TableSource,
};

use crate::shell::args::OptionArg;

pub const USAGE: &str = "\
Usage: vela import DIR --table TABLE FILE [OPTIONS]

Loads FILE (.parquet, .csv, .csv.gz, .tsv, .fvecs or .bvecs) into table TABLE of the Vela
database in DIR (created if missing). Columns are matched by name; fvecs/bvecs rows are
(row number, vector) and go into a table's BIGINT key and its only vector column.

Options:
  -t, --table TABLE     the table to load (required)
      --create          create TABLE from the file's schema first (key: --key, else the
                        column \"id\"; no index is created)
      --key COLUMN      the primary key column for --create
      --format FORMAT   parquet, csv, fvecs or bvecs (default: from the file name)
      --header BOOL     CSV: whether the first line names the columns (default true)
      --batch-rows N    rows per batch, fixed (a batch still stops at 32 MiB); default:
                        adaptive, about 4 MiB a batch (256 to 65,536 rows, at most 16 MiB)
  -h, --help            print this help

Atomicity: every batch is one write-ahead-log entry, applied all or nothing. An import
that fails (bad row, duplicate key) or is interrupted (Ctrl-C, kill -9, power loss) leaves
the table with the rows of the batches committed before it, i.e. rows 1..n of the file
for some n at a batch boundary, never part of a batch; the error says how many rows stayed.
With --create the table stays created. Re-running an interrupted import stops at the first
duplicate key: delete the loaded rows (or drop the table) and run it again.

Progress goes to standard error: a bar with rows/s and ETA on a terminal, otherwise one
summary line at the end. Errors print as `ERROR <SQLSTATE>: <message>` (naming the file,
row and column) with exit status 1; bad arguments exit with status 2.
HDF5 (ann-benchmarks .hdf5) is not supported: convert it to Parquet or fvecs first.";

/// Parsed `vela import` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportArgs {
    pub dir: String,
    pub file: PathBuf,
    pub table: String,
    pub create: bool,
    pub key: Option<String>,
    pub format: Option<Format>,
    pub header: bool,
    pub batch_rows: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Parsed {
    Run(ImportArgs),
    Help,
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Some(true),
        "false" | "off" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Parses the arguments after `import`.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut positional = Vec::new();
    let (mut table, mut key, mut format, mut batch_rows) = (None, None, None, None);
    let (mut create, mut header) = (false, true);
    let mut only_positional = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if only_positional || arg == "-" || !arg.starts_with('-') {
            positional.push(arg);
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        let opt = OptionArg::split(&arg, false);
        let mut value = |what: &str| opt.value(&mut it, what);
        match opt.name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-t" | "--table" => table = Some(value("a table name")?),
            "--create" => create = true,
            "--key" => key = Some(value("a column name")?),
            "--format" => {
                let v = value("a format")?;
                format = Some(Format::from_name(&v).ok_or_else(|| {
                    format!("unknown format \"{v}\": use parquet, csv, fvecs or bvecs")
                })?);
            }
            "--header" => {
                let v = value("true or false")?;
                header = parse_bool(&v)
                    .ok_or_else(|| format!("--header takes true or false, not \"{v}\""))?;
            }
            "--batch-rows" => {
                let v = value("a number of rows")?;
                batch_rows = Some(
                    v.replace('_', "")
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            format!("--batch-rows takes a positive number, not \"{v}\"")
                        })?,
                );
            }
            _ => return Err(format!("unknown option \"{arg}\"")),
        }
    }
    let table = table.ok_or("--table TABLE is required")?;
    if table.is_empty() {
        return Err("--table needs a non-empty name".into());
    }
    if key.is_some() && !create {
        return Err("--key only applies with --create".into());
    }
    let mut positional = positional.into_iter();
    let (Some(dir), Some(file)) = (positional.next(), positional.next()) else {
        return Err(
            "expected a database directory and a file: vela import DIR --table T FILE".into(),
        );
    };
    if let Some(extra) = positional.next() {
        return Err(format!(
            "unexpected argument \"{extra}\" (one file at a time)"
        ));
    }
    Ok(Parsed::Run(ImportArgs {
        dir,
        file: PathBuf::from(file),
        table,
        create,
        key,
        format,
        header,
        batch_rows,
    }))
}

/// An import error as printed: `ERROR <code>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERROR {}: {}", self.code, self.message)
    }
}

impl From<VelaError> for ImportError {
    fn from(e: VelaError) -> Self {
        ImportError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub rows: u64,
    pub batches: u64,
    pub elapsed: Duration,
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Summary {
    /// `imported 2,000 rows into docs in 1.2 s (1,650 rows/s, 3 batches)`.
    pub fn line(&self, table: &str) -> String {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            (self.rows as f64 / secs).round() as u64
        } else {
            self.rows
        };
        format!(
            "imported {} row{} into {table} in {secs:.1} s ({} rows/s, {} batch{})",
            thousands(self.rows),
            if self.rows == 1 { "" } else { "s" },
            thousands(rate),
            thousands(self.batches),
            if self.batches == 1 { "" } else { "es" },
        )
    }
}

fn committed(rows: u64, batches: u64) -> String {
    match batches {
        0 => "nothing was written".to_string(),
        1 => format!("{rows} rows in 1 earlier batch were committed and stay in the table"),
        n => format!("{rows} rows in {n} earlier batches were committed and stay in the table"),
    }
}

fn rows_span(first: u64, n: u64) -> String {
    if n == 1 {
        format!("file row {}", first + 1)
    } else {
        format!("file rows {}-{}", first + 1, first + n)
    }
}

/// Progress of a bulk load on standard error: a bar when it is a terminal, nothing otherwise.
/// Shared by `vela import` and the shell's `COPY ... FROM` (see [`copy_progress`]).
#[derive(Debug, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Whether the bar counts bytes of the file (CSV: the row count is unknown).
    bytes: bool,
}

const ROWS_TEMPLATE: &str =
    "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({msg}, ETA {eta})";
const BYTES_TEMPLATE: &str =
    "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({msg}, ETA {eta})";
const SPINNER_TEMPLATE: &str = "{spinner} [{elapsed_precise}] {human_pos} rows ({msg})";

impl Progress {
    /// A bar when standard error is a terminal, else a no-op.
    pub fn new(total_rows: Option<u64>, total_bytes: Option<u64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::default();
        }
        Progress::to(ProgressDrawTarget::stderr(), total_rows, total_bytes)
    }

    fn to(target: ProgressDrawTarget, total_rows: Option<u64>, total_bytes: Option<u64>) -> Self {
        let (bar, bytes) = match (total_rows, total_bytes) {
            (Some(rows), _) => (ProgressBar::with_draw_target(Some(rows), target), false),
            (None, Some(b)) => (ProgressBar::with_draw_target(Some(b), target), true),
            (None, None) => (ProgressBar::with_draw_target(None, target), false),
        };
        let template = match (total_rows, bytes) {
            (Some(_), _) => ROWS_TEMPLATE,
            (None, true) => BYTES_TEMPLATE,
            (None, false) => SPINNER_TEMPLATE,
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar: Some(bar),
            bytes,
        }
    }

    /// After a batch: `rows` loaded so far, `bytes` of the file read so far (CSV).
    pub fn update(&self, rows: u64, bytes: Option<u64>, rows_per_sec: f64) {
        let Some(bar) = &self.bar else { return };
        if self.bytes {
            bar.set_position(bytes.unwrap_or(0));
            bar.set_message(format!(
                "{} rows, {} rows/s",
                thousands(rows),
                thousands(rows_per_sec.round() as u64)
            ));
        } else {
            bar.set_position(rows);
            bar.set_message(format!("{} rows/s", thousands(rows_per_sec.round() as u64)));
        }
    }

    /// Removes the bar (the caller prints the summary or the error).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A progress hook for the shell's `COPY ... FROM` (`vela::Connection::set_progress`): a bar on
/// standard error when it is a terminal. The hook gets `(rows_done, rows_total)` after every
/// batch; a bar is started by a COPY's first batch and cleared when it reaches the total, when
/// a new COPY starts, or by [`CopyProgress::finish`] (call it after each statement: CSV has no
/// total).
#[derive(Debug, Clone, Default)]
pub struct CopyProgress {
    state: Arc<Mutex<Option<(Progress, Instant, u64)>>>,
}

impl CopyProgress {
    pub fn new() -> CopyProgress {
        CopyProgress::default()
    }

    /// The hook to install with `Connection::set_progress`.
    pub fn hook(&self) -> impl Fn(u64, Option<u64>) + Send + Sync + 'static {
        let state = self.state.clone();
        move |done, total| {
            if !std::io::stderr().is_terminal() {
                return;
            }
            let Ok(mut s) = state.lock() else { return };
            if matches!(&*s, Some((_, _, last)) if done < *last) {
                if let Some((p, _, _)) = s.take() {
                    p.finish();
                }
            }
            let (p, started, last) =
                s.get_or_insert_with(|| (Progress::new(total, None), Instant::now(), 0));
            *last = done;
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
            p.update(done, None, rate);
            if total.is_some_and(|t| done >= t) {
                if let Some((p, _, _)) = s.take() {
                    p.finish();
                }
            }
        }
    }

    /// Clears a bar left by the last statement.
    pub fn finish(&self) {
        if let Ok(mut s) = self.state.lock() {
            if let Some((p, _, _)) = s.take() {
                p.finish();
            }
        }
    }
}

/// Opens the file for the table: checks or creates the table. Nothing is written on error.
fn open_source(
    db: &Database,
    args: &ImportArgs,
    options: &ImportOptions,
) -> Result<TableSource, ImportError> {
    let opened = |e: DatasetError| ImportError {
        code: e.code(),
        message: format!("import into {}: {e}; nothing was written", args.table),
    };
    if args.create {
        if db.schema(&args.table).is_ok() {
            return Err(ImportError {
                code: "42P07",
                message: format!(
                    "table \"{}\" already exists (drop --create to load into it); nothing was written",
                    args.table
                ),
            });
        }
        let source =
            TableSource::open_create(&args.file, &args.table, args.key.as_deref(), options)
                .map_err(opened)?;
        db.create_table(source.table().clone())?;
        tracing::info!(table = %args.table, "created the table from the file's schema");
        Ok(source)
    } else {
        let schema = db.schema(&args.table)?;
        TableSource::open(&args.file, &schema, options).map_err(opened)
    }
}

/// Runs an import on an open database; returns the summary or the first error (after which the
/// table holds whole batches only).
pub fn import(db: &Database, args: &ImportArgs) -> Result<Summary, ImportError> {
    let span = tracing::info_span!("import", table = %args.table, file = %args.file.display());
    let _enter = span.enter();
    let started = Instant::now();
    let options = ImportOptions {
        source: SourceOptions {
            format: args.format,
            csv: CsvOptions {
                header: args.header,
                ..CsvOptions::default()
            },
            ..SourceOptions::default()
        },
        mapping: MapOptions::default(),
    };
    let mut source = open_source(db, args, &options)?;
    let table = args.table.as_str();
    let path: &Path = &args.file;
    let mut sizer = match args.batch_rows {
        Some(n) => BatchSizer::fixed(n),
        None => BatchSizer::new(SizerConfig::default()),
    };
    let progress = Progress::new(
        source.total_rows(),
        source.progress_bytes().map(|(_, total)| total),
    );
    let (mut rows, mut batches) = (0u64, 0u64);
    let key_column = source.table().primary_key_column().name.clone();
    let pk = source.table().primary_key;
    let result = loop {
        let batch_started = Instant::now();
        // Rows straight from the file's decoded chunks: the batch never exists as Arrow data.
        let batch = match source.next_rows(sizer.next_rows(), sizer.byte_budget()) {
            Ok(Some(b)) => b,
            Ok(None) => break Ok(()),
            Err(e) => {
                break Err(ImportError {
                    code: e.code(),
                    message: format!(
                        "import into {table}: {e}; the batch holding that row was not applied; {}",
                        committed(rows, batches)
                    ),
                })
            }
        };
        let (n, first, bytes) = (batch.len() as u64, batch.first_row, batch.bytes);
        // The rows move into the write; only their keys are kept, to name a duplicate.
        let keys: Vec<Value> = batch
            .rows
            .iter()
            .map(|r| r.get(pk).cloned().unwrap_or(Value::Null))
            .collect();
        let ops = batch.rows.into_iter().map(Op::Insert).collect();
        if let Err(e) = db.write(table, ops) {
            let what = match &e {
                VelaError::Engine(EngineError::DuplicateKey { key, .. }) => {
                    match key_index(&keys, key) {
                        Some(i) => format!(
                            "row {}, column \"{key_column}\": duplicate key value {key} already exists in \"{table}\"",
                            first + i as u64 + 1,
                        ),
                        None => e.to_string(),
                    }
                }
                _ => e.to_string(),
            };
            break Err(ImportError {
                code: e.code(),
                message: format!(
                    "import into {table}: {}: {what}; this batch ({}) was not applied; {}",
                    path.display(),
                    rows_span(first, n),
                    committed(rows, batches)
                ),
            });
        }
        rows += n;
        batches += 1;
        let took = batch_started.elapsed();
        sizer.record(n as usize, bytes, took);
        tracing::debug!(
            rows = n,
            bytes,
            took_ms = took.as_millis() as u64,
            next = sizer.next_rows(),
            "batch"
        );
        let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
        progress.update(rows, source.progress_bytes().map(|(b, _)| b), rate);
    };
    progress.finish();
    result.map(|()| Summary {
        rows,
        batches,
        elapsed: started.elapsed(),
    })
}

/// Runs `vela import` with the arguments after `import`.
/// How `vela import` opens the database: RocksDB memtables of 8 MiB per column family and 32 MiB
/// in all (instead of 32 / 256 MiB). An import writes each row once into `rows` and each sealed
/// segment's blob into `index` and reads neither back, so big memtables only raise its peak
/// memory (they filled to ~2 x 32 MiB per column family, at the close's blob writes too);
/// smaller ones flush sooner. Durability and every other setting are the defaults.
fn import_options() -> vela::Options {
    let mut options = vela::Options::default();
    options.store.write_buffer_bytes = 8 << 20;
    options.store.db_write_buffer_bytes = 32 << 20;
    options
}

pub fn main_with(args: Vec<String>) -> ExitCode {
    let args = match parse(args) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "vela import: {e}\nTry \"vela import --help\"."
            );
            return ExitCode::from(2);
        }
    };
    crate::shell::init_logging();
    let mut stderr = std::io::stderr();
    let db = match Database::open_with(&args.dir, import_options()) {
        Ok(db) => db,
        Err(e) => {
            let _ = writeln!(stderr, "{}", ImportError::from(e));
            return ExitCode::FAILURE;
        }
    };
    let result = import(&db, &args);
    // Closing checkpoints: the rows move from the WAL into the segment store.
    let closed = db.close();
    match (result, closed) {
        (Ok(summary), Ok(())) => {
            let _ = writeln!(stderr, "{}", summary.line(&args.table));
            ExitCode::SUCCESS
        }
        (Ok(_), Err(e)) => {
            let _ = writeln!(stderr, "{}", ImportError::from(e));
            ExitCode::FAILURE
        }
        (Err(e), _) => {
            let _ = writeln!(stderr, "{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_the_documented_forms() {
        let Parsed::Run(a) = p(&[
            "db",
            "--table",
            "t",
            "f.csv",
            "--create",
            "--key=k",
            "--format",
            "CSV",
            "--header",
            "false",
            "--batch-rows",
            "10_000",
        ])
        .unwrap() else {
            panic!("not a run")
        };
        assert_eq!(
            a,
            ImportArgs {
                dir: "db".into(),
                file: "f.csv".into(),
                table: "t".into(),
                create: true,
                key: Some("k".into()),
                format: Some(Format::Csv),
                header: false,
                batch_rows: Some(10_000),
            }
        );
        assert_eq!(p(&["-h"]).unwrap(), Parsed::Help);
        for bad in [
            &["db", "f.parquet"][..],
            &["db", "-t", "t"],
            &["db", "-t", "t", "a", "b"],
            &["db", "-t", "t", "f", "--batch-rows", "0"],
            &["db", "-t", "t", "f", "--format", "hdf5"],
            &["db", "-t", "t", "f", "--header", "maybe"],
            &["db", "-t", "t", "f", "--key", "id"],
            &["db", "-t", "t", "f", "--bogus"],
            &["db", "-t"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn summary_line_reads_well() {
        let s = Summary {
            rows: 2000,
            batches: 1,
            elapsed: Duration::from_millis(1200),
        };
        assert_eq!(
            s.line("docs"),
            "imported 2,000 rows into docs in 1.2 s (1,667 rows/s, 1 batch)"
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn hidden_progress_is_a_no_op() {
        let p = Progress::to(ProgressDrawTarget::hidden(), Some(10), None);
        p.update(5, None, 1.0);
        p.finish();
        let c = CopyProgress::new();
        (c.hook())(1, Some(2));
        c.finish();
    }
}
