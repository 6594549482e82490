//! Process-crash test of the WAL: a child process (this test binary, re-run with
//! `VELA_WAL_CRASH_CHILD` set, as Qdrant's `lib/wal/tests/process_crash.rs` does) appends with
//! `Durability::Full` from several threads and prints each acknowledged LSN with a checksum of
//! its payload; the parent SIGKILLs it at a random moment, reopens the WAL and checks that
//! every acknowledged entry is there, intact, at its LSN. Rounds reuse one directory, so each
//! child also recovers what the previous one left.
//!
//! `VELA_TEST_SEED` replays the random choices; `VELA_WAL_CRASH_ROUNDS` sets the number of
//! rounds (default 20).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vela::storage::wal::{Durability, Lsn, Wal, WalOptions};

const CHILD_ENV: &str = "VELA_WAL_CRASH_CHILD";
const SEED_ENV: &str = "VELA_WAL_CRASH_CHILD_SEED";
const THREADS: u64 = 4;

/// FNV-1a, 64-bit: the payload checksum the child prints and the parent checks.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn options() -> WalOptions {
    WalOptions::default()
        .with_durability(Durability::Full)
        .with_max_file_bytes(32 * 1024)
}

/// The child: append forever (until killed), printing `ACK <lsn> <checksum>` per
/// acknowledged entry. A no-op unless `VELA_WAL_CRASH_CHILD` names a directory.
#[test]
fn wal_crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let wal = Arc::new(Wal::open(&dir, options()).expect("child: open WAL"));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed ^ (t + 1));
                for i in 0..1_000_000u64 {
                    let mut p = format!("seed{seed}-t{t}-i{i}-").into_bytes();
                    let fill = rng.random_range(0..3000);
                    p.extend((0..fill).map(|_| rng.random::<u8>()));
                    let lsn = wal.append(&p).expect("child: append");
                    // Written straight to fd 1 (not through the test harness's capture),
                    // one whole line per write.
                    let line = format!("ACK {lsn} {}\n", checksum(&p));
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).expect("child: stdout");
                    out.flush().expect("child: flush");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("child: writer thread");
    }
}

/// Runs one child until a random moment after its first acknowledgement, SIGKILLs it, and
/// returns the acknowledged `(lsn, checksum)`s it printed.
fn crash_round(dir: &Path, seed: u64, rng: &mut StdRng) -> Vec<(Lsn, u64)> {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args([
            "wal_crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env(SEED_ENV, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // A line cut by the kill has no newline: not an acknowledgement we can check.
            let Some(rest) = line.strip_prefix("ACK ").and_then(|l| l.strip_suffix('\n')) else {
                continue;
            };
            let mut it = rest.split(' ').map(|x| x.parse::<u64>());
            if let (Some(Ok(lsn)), Some(Ok(sum))) = (it.next(), it.next()) {
                if acks.is_empty() {
                    let _ = tx.send(());
                }
                acks.push((lsn, sum));
            }
        }
        acks
    });
    let started = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    std::thread::sleep(Duration::from_millis(rng.random_range(0..60)));
    let exited_early = child.try_wait().expect("try_wait").is_some();
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("wait for the child");
    let acks = reader.join().expect("reader thread");
    assert!(started, "the child acknowledged nothing within 60 s");
    assert!(!exited_early, "the child exited on its own: {status:?}");
    acks
}

#[test]
fn wal_keeps_every_acknowledged_entry_across_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return; // we are the child; only `wal_crash_child` runs there
    }
    let seed = match std::env::var("VELA_TEST_SEED") {
        Ok(s) => s.trim().parse().expect("VELA_TEST_SEED must be a u64"),
        Err(_) => rand::rng().random(),
    };
    eprintln!("wal_keeps_every_acknowledged_entry_across_sigkill: VELA_TEST_SEED={seed}");
    let rounds: u64 = std::env::var("VELA_WAL_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: BTreeMap<Lsn, u64> = BTreeMap::new();
    for round in 0..rounds {
        let round_seed = rng.random();
        for (lsn, sum) in crash_round(dir.path(), round_seed, &mut rng) {
            assert!(
                acked.insert(lsn, sum).is_none(),
                "LSN {lsn} acknowledged twice (round {round}, seed {seed})"
            );
        }
        let wal = Wal::open(dir.path(), options()).expect("reopen after SIGKILL");
        let mut found: BTreeMap<Lsn, u64> = BTreeMap::new();
        for (expect_lsn, e) in (1..).zip(wal.reader_from(1).expect("reader")) {
            let (lsn, p) = e.expect("read recovered entry");
            assert_eq!(lsn, expect_lsn, "recovered LSNs are contiguous");
            found.insert(lsn, checksum(&p));
        }
        for (lsn, sum) in &acked {
            assert_eq!(
                found.get(lsn),
                Some(sum),
                "acknowledged LSN {lsn} lost or damaged after round {round} (VELA_TEST_SEED={seed})"
            );
        }
        eprintln!(
            "round {round}: {} acknowledged so far, {} recovered, {} bytes dropped",
            acked.len(),
            found.len(),
            wal.recovery().bytes_dropped
        );
    }
    assert!(!acked.is_empty());
}
