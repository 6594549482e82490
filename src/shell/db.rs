//! The real database behind the shell: a [`vela::Connection`] on the directory's database.

use vela::{Connection, Database, TableSchema};
use vela_query::StatementResult;

use super::backend::{Backend, SqlError};

/// The database in `dir` (created if missing) with a SQL session on it.
pub fn open(dir: &str) -> Result<Box<dyn Backend>, SqlError> {
    let db = Database::open(dir)?;
    let mut conn = db.connect();
    // COPY ... FROM shows `vela import`'s progress bar (on a terminal only).
    let progress = crate::import::CopyProgress::new();
    conn.set_progress(progress.hook());
    Ok(Box::new(DbBackend { db, conn, progress }))
}

struct DbBackend {
    db: Database,
    conn: Connection,
    progress: crate::import::CopyProgress,
}

impl Backend for DbBackend {
    fn execute(&mut self, sql: &str) -> Result<Vec<StatementResult>, SqlError> {
        let result = self.conn.execute(sql, &[]);
        self.progress.finish();
        Ok(result?)
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
