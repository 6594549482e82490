//! SQL transactions spanning tables: COMMIT is ONE engine write (one WAL entry), all or nothing.

use arrow::array::{Array, Int64Array, StringArray};
use vela::Database;

fn ids(db: &Database, table: &str) -> Vec<i64> {
    let batches = db
        .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
        .unwrap();
    let mut out = Vec::new();
    for b in batches {
        let col = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        out.extend((0..col.len()).map(|i| col.value(i)));
    }
    out
}

fn setup(db: &Database) {
    db.execute(
        "CREATE TABLE a (id BIGINT PRIMARY KEY, v VECTOR(2)); \
         CREATE TABLE b (id BIGINT PRIMARY KEY, note TEXT)",
        &[],
    )
    .unwrap();
}

#[test]
fn commit_across_tables_is_one_wal_entry_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        setup(&db);
        let mut conn = db.connect();
        conn.execute(
            "BEGIN; \
             INSERT INTO a VALUES (1, '[1, 0]'), (2, '[0, 1]'); \
             INSERT INTO b VALUES (10, 'x'), (11, 'y'); \
             DELETE FROM b WHERE id = 11",
            &[],
        )
        .unwrap();
        // Nothing reaches the engine before COMMIT.
        assert_eq!(ids(&db, "a"), Vec::<i64>::new());
        let before = db.metrics().applied_lsn;
        conn.execute("COMMIT", &[]).unwrap();
        assert_eq!(db.metrics().applied_lsn, before + 1, "one WAL entry");
        assert_eq!(ids(&db, "a"), vec![1, 2]);
        assert_eq!(ids(&db, "b"), vec![10]);
        db.close().unwrap();
    }
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(ids(&db, "a"), vec![1, 2]);
    assert_eq!(ids(&db, "b"), vec![10]);
}

/// Another connection commits a conflicting key while the transaction is open: the engine
/// rejects the whole transaction at COMMIT (23505), so neither table gets any of its rows.
#[test]
fn a_duplicate_key_at_commit_leaves_every_table_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    setup(&db);
    db.execute("INSERT INTO b VALUES (1, 'old')", &[]).unwrap();
    let mut conn = db.connect();
    conn.execute(
        "BEGIN; \
         INSERT INTO a VALUES (1, '[1, 0]'), (2, '[0, 1]'); \
         INSERT INTO b VALUES (20, 'new'); \
         UPDATE b SET note = 'changed' WHERE id = 1",
        &[],
    )
    .unwrap();
    // Meanwhile, a concurrent autocommit insert takes key 2 of `a`.
    db.execute("INSERT INTO a VALUES (2, '[5, 5]')", &[])
        .unwrap();
    let err = conn.execute("COMMIT", &[]).unwrap_err();
    assert_eq!(err.code(), "23505", "{}", err.report());
    assert!(!conn.in_transaction());
    assert_eq!(ids(&db, "a"), vec![2]);
    assert_eq!(ids(&db, "b"), vec![1]);
    let note = db
        .query("SELECT note FROM b WHERE id = 1", &[])
        .unwrap()
        .remove(0);
    let note = note
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .value(0)
        .to_string();
    assert_eq!(note, "old");
    // The same after a reopen (the rejected entry is in the WAL and is rejected again).
    drop(conn);
    db.close().unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(ids(&db, "a"), vec![2]);
    assert_eq!(ids(&db, "b"), vec![1]);
}

/// The second INSERT of a transaction hits a committed key: the statement fails with 23505 (the
/// query layer checks keys while buffering), and rolling back leaves both tables unchanged.
#[test]
fn a_duplicate_key_in_the_second_insert_fails_and_rollback_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    setup(&db);
    db.execute("INSERT INTO b VALUES (1, 'old')", &[]).unwrap();
    let mut conn = db.connect();
    conn.execute("BEGIN; INSERT INTO a VALUES (5, '[1, 1]')", &[])
        .unwrap();
    let err = conn
        .execute("INSERT INTO b VALUES (2, 'x'), (1, 'dup')", &[])
        .unwrap_err();
    assert_eq!(err.code(), "23505", "{}", err.report());
    conn.execute("ROLLBACK", &[]).unwrap();
    assert_eq!(ids(&db, "a"), Vec::<i64>::new());
    assert_eq!(ids(&db, "b"), vec![1]);
}
