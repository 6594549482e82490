//! Model test of the WAL: random appends, batches, syncs, durability changes, truncations and
//! reopens with tiny rollover sizes, checked against a `Vec` of acknowledged entries; then the
//! last entries' file is cut at every byte offset and every byte of the last two entries gets
//! a flipped bit, and each damaged copy must recover to exactly the expected prefix.
//!
//! Runs on `SimFs` (in memory, so thousands of reopens stay fast). Seeded: set
//! `VELA_TEST_SEED` to replay; `VELA_WAL_MODEL_CASES` sets the number of cases (default 48).

#[path = "wal_support.rs"]
mod wal_support;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use vela_storage::wal::format::{parse_file_name, HEADER_LEN};
use vela_storage::wal::{Durability, Lsn, Wal, WalOptions};
use wal_support::{frames, test_seed, SimFs};

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Batch(Vec<Vec<u8>>),
    Sync,
    Reopen,
    SetDurability(Durability),
    TruncateBelow(u8),
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => payload().prop_map(Op::Append),
        2 => prop::collection::vec(payload(), 1..5).prop_map(Op::Batch),
        1 => Just(Op::Sync),
        2 => Just(Op::Reopen),
        1 => prop_oneof![
            Just(Durability::Full),
            Just(Durability::Normal),
            Just(Durability::Off)
        ]
        .prop_map(Op::SetDurability),
        1 => any::<u8>().prop_map(Op::TruncateBelow),
    ]
}

const DIR: &str = "/wal";

fn options(fs: &SimFs, max_file_bytes: u64) -> WalOptions {
    WalOptions::default()
        .with_fs(fs.handle())
        .with_max_file_bytes(max_file_bytes)
}

/// Everything from the oldest retained entry on.
fn read_all(wal: &Wal) -> Vec<(Lsn, Vec<u8>)> {
    let r = wal.reader_from(wal.first_lsn()).expect("reader");
    r.collect::<Result<Vec<_>, _>>().expect("read")
}

/// Where each retained entry is: (file path, frame offset, frame end), in LSN order.
fn layout(fs: &SimFs) -> Vec<(PathBuf, u64, u64)> {
    let dir = Path::new(DIR);
    let mut out = Vec::new();
    for name in fs.names(dir) {
        if parse_file_name(&name).is_none() {
            continue;
        }
        let path = dir.join(&name);
        for f in frames(&fs.read(&path).expect("file")) {
            out.push((path.clone(), f.offset, f.end()));
        }
    }
    out
}

/// Opens the damaged copy and checks it holds exactly `model[..keep]` (from `oldest`).
fn check_recovers(
    fs: &SimFs,
    max_file_bytes: u64,
    model: &[Vec<u8>],
    oldest: Lsn,
    keep: usize,
    what: &str,
) -> Result<(), TestCaseError> {
    let wal = Wal::open(DIR, options(fs, max_file_bytes))
        .map_err(|e| TestCaseError::fail(format!("{what}: open failed: {e}")))?;
    let got = read_all(&wal);
    let want: Vec<(Lsn, Vec<u8>)> = model[(oldest - 1) as usize..keep]
        .iter()
        .enumerate()
        .map(|(i, p)| (oldest + i as u64, p.clone()))
        .collect();
    prop_assert_eq!(got.len(), want.len(), "{}", what);
    prop_assert_eq!(got, want, "{}", what);
    prop_assert_eq!(wal.last_lsn(), keep as u64, "{}", what);
    Ok(())
}

fn run_case(max_file_bytes: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let fs = SimFs::new();
    let mut model: Vec<Vec<u8>> = Vec::new();
    let mut wal = Wal::open(DIR, options(&fs, max_file_bytes)).expect("open");
    for op in ops {
        match op {
            Op::Append(p) => {
                let lsn = wal.append(&p).expect("append");
                model.push(p);
                prop_assert_eq!(lsn, model.len() as u64);
            }
            Op::Batch(ps) => {
                let lsns = wal.append_batch(&ps).expect("batch");
                let first = model.len() as u64 + 1;
                model.extend(ps);
                prop_assert_eq!(lsns, (first..=model.len() as u64).collect::<Vec<_>>());
            }
            Op::Sync => {
                prop_assert_eq!(wal.sync().expect("sync"), model.len() as u64);
            }
            Op::Reopen => {
                let d = wal.durability();
                drop(wal);
                wal = Wal::open(DIR, options(&fs, max_file_bytes).with_durability(d))
                    .expect("reopen");
                prop_assert_eq!(wal.recovery().bytes_dropped, 0);
            }
            Op::SetDurability(d) => wal.set_durability(d),
            Op::TruncateBelow(x) => {
                let lsn = u64::from(x) % (model.len() as u64 + 2);
                let before = wal.first_lsn();
                wal.truncate_below(lsn).expect("truncate");
                // Every entry >= lsn stays; the active file always stays.
                prop_assert!(wal.first_lsn() <= lsn.max(before));
                prop_assert!(wal.first_lsn() <= model.len() as u64 + 1);
            }
        }
        prop_assert_eq!(wal.last_lsn(), model.len() as u64);
    }
    let oldest = wal.first_lsn();
    let got = read_all(&wal);
    prop_assert_eq!(got.len() as u64, model.len() as u64 + 1 - oldest);
    for (lsn, p) in &got {
        prop_assert_eq!(p, &model[(*lsn - 1) as usize]);
    }
    wal.close().expect("close");
    damage_sweep(&fs, max_file_bytes, &model, oldest)
}

/// Cuts the files of the last two entries at every offset and flips a bit in every byte of
/// those entries; each copy must recover exactly the entries before the damage.
fn damage_sweep(
    fs: &SimFs,
    max_file_bytes: u64,
    model: &[Vec<u8>],
    oldest: Lsn,
) -> Result<(), TestCaseError> {
    let lay = layout(fs);
    prop_assert_eq!(lay.len() as u64, model.len() as u64 + 1 - oldest);
    let before = (oldest - 1) as usize; // entries not in the files at all
    let first_target = lay.len().saturating_sub(2);
    let mut cuts: Vec<(PathBuf, u64)> = Vec::new();
    for (i, (path, off, _)) in lay.iter().enumerate().skip(first_target) {
        let first_in_file = i == 0 || lay[i - 1].0 != *path;
        let from = if first_in_file { 0 } else { *off };
        let len = fs.read(path).expect("file").len() as u64;
        cuts.extend((from..len).map(|o| (path.clone(), o)));
    }
    cuts.dedup();
    for (path, o) in cuts {
        let copy = fs.fork();
        let mut bytes = copy.read(&path).expect("file");
        bytes.truncate(o as usize);
        copy.write(&path, &bytes);
        let earlier = lay.iter().take_while(|e| e.0 != path).count();
        let in_file = if o < HEADER_LEN {
            0
        } else {
            lay.iter().filter(|e| e.0 == path && e.2 <= o).count()
        };
        let what = format!("cut {} at {o}", path.display());
        check_recovers(
            &copy,
            max_file_bytes,
            model,
            oldest,
            before + earlier + in_file,
            &what,
        )?;
    }
    for (i, (path, off, end)) in lay.iter().enumerate().skip(first_target) {
        for b in *off..*end {
            let copy = fs.fork();
            let mut bytes = copy.read(path).expect("file");
            bytes[b as usize] ^= 1 << (b % 8);
            copy.write(path, &bytes);
            let what = format!("bit flip in {} byte {b} (entry {})", path.display(), i);
            check_recovers(&copy, max_file_bytes, model, oldest, before + i, &what)?;
        }
    }
    Ok(())
}

#[test]
fn wal_matches_model_and_recovers_every_cut_and_flip() {
    let seed = test_seed("wal_matches_model_and_recovers_every_cut_and_flip");
    let cases = std::env::var("VELA_WAL_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (0u64..300, prop::collection::vec(op(), 1..60));
    let result = runner.run(&strategy, |(max_file_bytes, ops)| {
        run_case(max_file_bytes, ops)
    });
    if let Err(e) = result {
        panic!("{e}\nreplay with VELA_TEST_SEED={seed}");
    }
}
