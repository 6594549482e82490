//! A sqllogictest `DB` over a Vela [`Session`], shared by the query crate's in-memory run and the
//! root crate's run against the real engine (included there with `#[path]`).
//!
//! Cells print as psql does (vectors `[1,2,3]`, booleans `t`/`f`, doubles in shortest form), NULL
//! as `NULL` and the empty string as `(empty)`. Errors carry their SQLSTATE so `.slt` files can
//! say `statement error (42703)`, and their message is `ERROR <code>: <text>` so they can also
//! match on text.

use sqllogictest::{DBOutput, DefaultColumnType};
use vela_query::{cell_text, QueryError, Session};

/// The error the runner sees: the query error, rendered with its code.
#[derive(Debug)]
pub struct SltError(pub QueryError);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.report())
    }
}

impl std::error::Error for SltError {}

/// A session under test.
pub struct SltDb(pub Session);

impl sqllogictest::DB for SltDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let mut results = self.0.execute(sql, &[]).map_err(SltError)?;
        let Some(last) = results.pop() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        if !last.returns_rows {
            return Ok(DBOutput::StatementComplete(last.rows_affected));
        }
        let types = vec![DefaultColumnType::Any; last.schema.fields().len()];
        let mut rows = Vec::new();
        for batch in &last.batches {
            for r in 0..batch.num_rows() {
                let row = batch
                    .columns()
                    .iter()
                    .map(|col| match cell_text(col.as_ref(), r) {
                        None => "NULL".to_string(),
                        Some(s) if s.is_empty() => "(empty)".to_string(),
                        Some(s) => s,
                    })
                    .collect();
                rows.push(row);
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    fn engine_name(&self) -> &str {
        "vela"
    }

    fn error_sql_state(err: &SltError) -> Option<String> {
        Some(err.0.code().to_string())
    }
}

/// Runs every `.slt` file in `dir` (in name order) through `run_one`, which runs one file in a
/// fresh database, and fails with every file's error at once.
pub fn run_slt_dir(
    dir: &std::path::Path,
    mut run_one: impl FnMut(&std::path::Path) -> Result<(), String>,
) {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no .slt files found in {}",
        dir.display()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| run_one(file).err())
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Runs one `.slt` file; every connection the file opens is a session from `new_session`.
/// Records labelled `label` (`onlyif label`) apply.
pub fn run_slt_file(
    file: &std::path::Path,
    label: &str,
    new_session: impl Fn() -> Session,
) -> Result<(), String> {
    let mut runner = sqllogictest::Runner::new(|| {
        let db = SltDb(new_session());
        async move { Ok::<_, SltError>(db) }
    });
    runner.add_label(label);
    runner
        .run_file(file)
        .map_err(|e| format!("{}: {}", file.display(), e.display(true)))
}
