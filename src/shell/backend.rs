//! What the shell needs from a database: run SQL, list the catalog. The binary runs on the real
//! database through the facade; the unit tests run on the query layer's in-memory engine.

use vela::TableSchema;
use vela_query::StatementResult;

/// An error as the shell prints it: `ERROR <code>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: String,
    pub message: String,
}

impl SqlError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        SqlError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// `ERROR 42703: column "emb" does not exist`.
    pub fn report(&self) -> String {
        format!("ERROR {}: {}", self.code, self.message)
    }
}

impl From<vela_query::QueryError> for SqlError {
    fn from(e: vela_query::QueryError) -> Self {
        SqlError::new(e.code(), e.to_string())
    }
}

impl From<vela::Error> for SqlError {
    fn from(e: vela::Error) -> Self {
        SqlError::new(e.code(), e.to_string())
    }
}

/// A database the shell can drive.
pub trait Backend {
    /// Runs one statement (the text may hold several; the shell passes one at a time).
    fn execute(&mut self, sql: &str) -> Result<Vec<StatementResult>, SqlError>;
    /// Every table's schema, sorted by name.
    fn tables(&self) -> Vec<TableSchema>;
    /// Closes the database (checkpoint); later calls may fail.
    fn close(&mut self) -> Result<(), SqlError> {
        Ok(())
    }
}

impl Backend for vela_query::Session {
    fn execute(&mut self, sql: &str) -> Result<Vec<StatementResult>, SqlError> {
        Ok(vela_query::Session::execute(self, sql, &[])?)
    }

    fn tables(&self) -> Vec<TableSchema> {
        let engine = self.engine();
        let names = engine.table_names().unwrap_or_default();
        names
            .iter()
            .filter_map(|n| engine.table(n).ok().flatten())
            .collect()
    }
}
