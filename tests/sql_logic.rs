//! Runs `tests/sql/*.slt` through the facade's SQL entry point against the real engine (RocksDB
//! store and WAL in a temporary directory), each file in a fresh database. The query crate runs
//! the same files against its in-memory engine.

#[path = "../query/tests/support/slt_db.rs"]
mod slt_db;

use std::path::PathBuf;

use slt_db::{SltDb, SltError};
use vela_query::Session;

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn slt_files_pass_on_the_real_engine() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let mut failures = Vec::new();
    for file in files {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = vela::Database::open(dir.path()).expect("open database");
        let mut runner = sqllogictest::Runner::new(|| {
            let db = db.clone();
            async move {
                let engine = std::sync::Arc::new(vela::EngineAdapter::new(db));
                Ok::<_, SltError>(SltDb(Session::new(engine)))
            }
        });
        runner.add_label("vela");
        if let Err(e) = runner.run_file(&file) {
            failures.push(format!("{}: {}", file.display(), e.display(true)));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
