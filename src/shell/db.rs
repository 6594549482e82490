//! The real database behind the shell: a [`vela::Connection`] on the directory's database.

use vela::{Connection, Database, TableSchema};
use vela_query::StatementResult;

use super::backend::{Backend, SqlError};

/// The database in `dir` (created if missing) with a SQL session on it.
pub fn open(dir: &str) -> Result<Box<dyn Backend>, SqlError> {
    let db = Database::open(dir)?;
    let conn = db.connect();
    Ok(Box::new(DbBackend { db, conn }))
}

struct DbBackend {
    db: Database,
    conn: Connection,
}

impl Backend for DbBackend {
    fn execute(&mut self, sql: &str) -> Result<Vec<StatementResult>, SqlError> {
        Ok(self.conn.execute(sql, &[])?)
    }

    fn tables(&self) -> Vec<TableSchema> {
        let mut t = self.db.tables();
        t.sort_by(|a, b| a.name.cmp(&b.name));
        t
    }

    fn close(&mut self) -> Result<(), SqlError> {
        Ok(self.db.close()?)
    }
}
