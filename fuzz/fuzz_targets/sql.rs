//! Arbitrary bytes as SQL through parse, bind, plan and execute, against a small real database
//! (a temporary directory, created once): no input may panic, abort or hang the process.
//!
//! Statements that change the database (or the session's settings) are followed by a rebuild of
//! the fixture, so every input runs against the same few rows. `COPY ... TO` is skipped (it
//! writes files). Errors with the internal code `XX000` ("this is a bug") do not stop the run;
//! each distinct one is printed once on stderr as `VELA-FUZZ XX000: <message> <- <input>`, and
//! `VELA_FUZZ_INTERNAL=panic` turns them into crashes.

#![no_main]

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use vela::{Connection, Database, Durability, Options};

const FIXTURE: &str = "
CREATE TABLE items (
    id BIGINT PRIMARY KEY,
    name TEXT,
    score DOUBLE PRECISION,
    flag BOOLEAN NOT NULL,
    ts TIMESTAMP,
    emb VECTOR(3)
) WITH (shards = 2);
INSERT INTO items VALUES
    (1, 'one', 1.5, true, '2024-01-01 00:00:00', '[1,2,3]'),
    (2, 'two', -0.5, false, NULL, '[0,0,0]'),
    (3, NULL, NULL, true, '2024-02-29 12:30:00', '[0.5,-1,2]'),
    (4, 'four', 4e10, false, NULL, NULL),
    (5, 'five', 0, true, NULL, '[-3,1e-3,7]');
CREATE INDEX items_emb_idx ON items USING hnsw (emb vector_l2_ops) WITH (m = 4, ef_construction = 16);
CREATE TABLE docs (key TEXT PRIMARY KEY, body TEXT, v VECTOR(2));
INSERT INTO docs VALUES ('a', 'alpha', '[1,0]'), ('b', 'beta', '[0,1]'), ('c', NULL, NULL);
";

struct State {
    _dir: tempfile::TempDir,
    db: Database,
    conn: Connection,
    internal: HashSet<String>,
    panic_on_internal: bool,
}

impl State {
    fn new() -> State {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = Options {
            durability: Durability::Off,
            ..Options::default()
        };
        let db = Database::open_with(dir.path().join("db"), options).expect("open database");
        let conn = db.connect();
        let mut s = State {
            _dir: dir,
            db,
            conn,
            internal: HashSet::new(),
            panic_on_internal: std::env::var("VELA_FUZZ_INTERNAL").as_deref() == Ok("panic"),
        };
        s.rebuild();
        s
    }

    /// Drops every table and creates the fixture again, on a fresh session.
    fn rebuild(&mut self) {
        self.conn = self.db.connect();
        for t in self.db.tables() {
            self.db.drop_table(&t.name).expect("drop table");
        }
        self.conn
            .execute("SET synchronous = off", &[])
            .expect("set synchronous");
        self.conn.execute(FIXTURE, &[]).expect("fixture");
    }
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| Mutex::new(State::new()))
}

/// Words after which the fixture may have changed.
const CHANGES: &[&str] = &[
    "insert",
    "update",
    "delete",
    "create",
    "drop",
    "truncate",
    "copy",
    "set",
    "reset",
    "begin",
    "start",
    "commit",
    "end",
    "rollback",
    "abort",
    "prepare",
    "execute",
    "deallocate",
    "alter",
];

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let lower = sql.to_ascii_lowercase();
    if lower.contains("copy") && lower.contains("to") {
        return;
    }
    let mut s = state().lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = s.conn.execute(sql, &[]) {
        if e.code() == "XX000" {
            let msg = e.to_string();
            if s.panic_on_internal {
                panic!("internal error: {msg}\ninput: {sql:?}");
            }
            if s.internal.insert(msg.clone()) {
                eprintln!("VELA-FUZZ XX000: {msg} <- {sql:?}");
            }
        }
    }
    if CHANGES.iter().any(|w| lower.contains(w)) || s.conn.in_transaction() {
        s.rebuild();
    }
});
