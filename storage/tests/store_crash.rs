//! Crash test: a child process writes with RocksDB's WAL off, flushes part of it, keeps
//! writing, and is SIGKILLed. Reopening must report exactly the flushed LSN, and every write
//! at or below it must be intact; later writes may or may not be there (and are intact if so).
//!
//! The test re-runs its own binary as the child (`CHILD_ENV` names the store directory).
//! libtest prints "test name ... " before the child's own output, so the parent matches line
//! ends.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use vela_storage::{Cf, SegmentStore, StoreOptions};

const CHILD_ENV: &str = "VELA_STORE_CRASH_CHILD_DIR";
const FLUSHED: u64 = 120;
const WRITTEN: u64 = 200;
const ROWS_PER_LSN: u64 = 25;

fn key(lsn: u64, i: u64) -> Vec<u8> {
    let mut k = lsn.to_be_bytes().to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn value(lsn: u64, i: u64) -> Vec<u8> {
    format!("lsn {lsn} row {i} {}", "x".repeat(100)).into_bytes()
}

fn blob(lsn: u64) -> Vec<u8> {
    vec![lsn as u8; 100_000 + lsn as usize]
}

fn write_lsn(s: &SegmentStore, lsn: u64) {
    let mut b = s.batch();
    for i in 0..ROWS_PER_LSN {
        b.put(Cf::Rows, &key(lsn, i), &value(lsn, i));
    }
    b.put_blob(Cf::Index, &lsn.to_be_bytes(), &blob(lsn));
    s.write(b, lsn).unwrap();
}

/// The child: only does anything when started by `killed_process_keeps_everything_flushed`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let s = SegmentStore::open(Path::new(&dir), &StoreOptions::default()).unwrap();
    for lsn in 1..=FLUSHED {
        write_lsn(&s, lsn);
        if lsn == FLUSHED / 2 {
            s.flush(lsn).unwrap();
        }
    }
    s.flush(FLUSHED).unwrap();
    for lsn in FLUSHED + 1..=WRITTEN {
        write_lsn(&s, lsn);
    }
    println!("READY");
    // Wait to be killed (bounded, so a stray child cannot live forever).
    std::thread::sleep(Duration::from_secs(120));
    std::process::exit(3);
}

#[test]
fn killed_process_keeps_everything_flushed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.trim_end().ends_with("READY"));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(ready, "child did not get ready (status {status:?})");

    let s = SegmentStore::open(&dir, &StoreOptions::default()).unwrap();
    assert_eq!(s.flushed_lsn(), FLUSHED);
    for lsn in 1..=FLUSHED {
        for i in 0..ROWS_PER_LSN {
            assert_eq!(s.get(Cf::Rows, &key(lsn, i)).unwrap(), Some(value(lsn, i)));
        }
        assert_eq!(
            s.get_blob(Cf::Index, &lsn.to_be_bytes()).unwrap(),
            Some(blob(lsn))
        );
    }
    let mut survived = 0;
    for lsn in FLUSHED + 1..=WRITTEN {
        for i in 0..ROWS_PER_LSN {
            if let Some(v) = s.get(Cf::Rows, &key(lsn, i)).unwrap() {
                assert_eq!(v, value(lsn, i));
                survived += 1;
            }
        }
        // A blob is written in one batch, so it is all there or all gone.
        if let Some(b) = s.get_blob(Cf::Index, &lsn.to_be_bytes()).unwrap() {
            assert_eq!(b, blob(lsn));
        }
    }
    eprintln!(
        "unflushed rows that survived the SIGKILL: {survived} of {}",
        (WRITTEN - FLUSHED) * ROWS_PER_LSN
    );
}
