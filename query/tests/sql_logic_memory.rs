//! Runs the repository's `tests/sql/*.slt` files against the in-memory engine, each file in a
//! fresh database. The root crate runs the same files against the real engine.

#[path = "support/slt_db.rs"]
mod slt_db;

use std::path::PathBuf;
use std::sync::Arc;

use vela_query::{MemoryEngine, Session};

#[test]
fn slt_files_pass_on_the_memory_engine() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/sql");
    slt_db::run_slt_dir(&dir, |file| {
        let engine = Arc::new(MemoryEngine::new());
        slt_db::run_slt_file(file, "memory", move || Session::new(engine.clone()))
    });
}
