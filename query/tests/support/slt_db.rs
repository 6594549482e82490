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
