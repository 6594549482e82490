//! The directory lock across processes: a child holding the lock makes the parent's acquire
//! fail with "database is locked by pid <child pid>"; killing the child releases it.
//!
//! The test re-runs its own binary as the child (`CHILD_ENV` names the directory). libtest
//! prints "test name ... " before the child's own output, so the parent matches line ends.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use vela_storage::{DataDir, DirLock, StorageError};

const CHILD_ENV: &str = "VELA_LOCK_CHILD_DIR";

#[test]
fn lock_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let _lock = DirLock::acquire(std::path::Path::new(&dir)).unwrap();
    println!("LOCKED {}", std::process::id());
    std::thread::sleep(Duration::from_secs(120));
    std::process::exit(3);
}

#[test]
fn lock_held_by_child_process_names_its_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, tmp.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let locked = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.trim_end().ends_with(&format!("LOCKED {child_pid}")));
    if !locked {
        let _ = child.kill();
        let _ = child.wait();
        panic!("child did not take the lock");
    }

    let err = DirLock::acquire(tmp.path()).unwrap_err();
    let msg = err.to_string();
    let result = match err {
        StorageError::Locked { pid, ref path } => (
            pid == child_pid && *path == DataDir::new(tmp.path()).lock_path(),
            msg.clone(),
        ),
        _ => (false, msg.clone()),
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(result.0, "unexpected error: {}", result.1);
    assert!(
        msg.starts_with(&format!("database is locked by pid {child_pid}")),
        "{msg}"
    );

    // The kernel released the dead child's lock: acquiring now works and records our pid.
    let lock = DirLock::acquire(tmp.path()).unwrap();
    let pid = std::fs::read_to_string(lock.path()).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
}

#[test]
fn two_acquires_in_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let first = DirLock::acquire(tmp.path()).unwrap();
    let msg = DirLock::acquire(tmp.path()).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!("database is locked by pid {}", std::process::id())),
        "{msg}"
    );
    drop(first);
    DirLock::acquire(tmp.path()).unwrap();
}

#[test]
fn lock_on_missing_dir_or_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    assert_eq!(
        DirLock::acquire(&missing).unwrap_err().to_string(),
        format!("database directory does not exist: {}", missing.display())
    );
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    assert_eq!(
        DirLock::acquire(&file).unwrap_err().to_string(),
        format!("not a directory: {}", file.display())
    );
}
