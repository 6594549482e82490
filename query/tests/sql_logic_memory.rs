//! Runs the repository's `tests/sql/*.slt` files against the in-memory engine, each file in a
//! fresh database. The root crate runs the same files against the real engine.

#[path = "support/slt_db.rs"]
mod slt_db;

use std::path::PathBuf;
use std::sync::Arc;

use slt_db::{SltDb, SltError};
use vela_query::{MemoryEngine, Session};

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn slt_files_pass_on_the_memory_engine() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let mut failures = Vec::new();
    for file in files {
        let mut runner = sqllogictest::Runner::new(|| async {
            Ok::<_, SltError>(SltDb(Session::new(Arc::new(MemoryEngine::new()))))
        });
        runner.add_label("memory");
        if let Err(e) = runner.run_file(&file) {
            failures.push(format!("{}: {}", file.display(), e.display(true)));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
