//! Runs `tests/sql/*.slt` through the facade's SQL entry point against the real engine (RocksDB
//! store and WAL in a temporary directory), each file in a fresh database. The query crate runs
//! the same files against its in-memory engine.

#[path = "../query/tests/support/slt_db.rs"]
mod slt_db;

use std::path::PathBuf;
use std::sync::Arc;

use vela_query::Session;

#[test]
fn slt_files_pass_on_the_real_engine() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    slt_db::run_slt_dir(&dir, |file| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = vela::Database::open(tmp.path()).expect("open database");
        slt_db::run_slt_file(file, "vela", move || {
            Session::new(Arc::new(vela::EngineAdapter::new(db.clone())))
        })
    });
}
