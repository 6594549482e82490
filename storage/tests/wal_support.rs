//! Test support shared by the WAL's integration tests (`#[path]`-included by `wal_model.rs`
//! and `wal_faults.rs`; as a test target of its own it only runs its self-checks):
//!
//! * `SimFs`, a `WalFs` that models the page cache: each file has its *written* bytes (what
//!   reads see) and its *durable* bytes (what survives a power loss), and each directory its
//!   live and durable entries. `power_loss` returns the image a reboot would see, optionally
//!   with the writes since the last fsync kept up to a random, torn point. An fsync can be
//!   made to fail; as on Linux after 2018's "fsyncgate", the pages it failed to write are
//!   then dropped from the durable path (still readable, never durable). An fsync can also be
//!   held at a gate, to line up commit groups deterministically.
//! * `frames`, an independent parser of WAL files, and `test_seed`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vela_storage::wal::format::{FrameHead, FRAME_HEAD_LEN, HEADER_LEN};
use vela_storage::wal::{WalFile, WalFs};

/// The seed of a randomised test: `VELA_TEST_SEED` if set, else a fresh one; printed either
/// way so that a failure can be replayed.
pub fn test_seed(test: &str) -> u64 {
    let seed = match std::env::var("VELA_TEST_SEED") {
        Ok(s) => s.trim().parse().expect("VELA_TEST_SEED must be a u64"),
        Err(_) => rand::rng().random(),
    };
    eprintln!("{test}: VELA_TEST_SEED={seed}");
    seed
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Operations since the last successful fsync, oldest first.
    pending: Vec<Pending>,
}

#[derive(Debug, Clone)]
enum Pending {
    Write { off: u64, bytes: Vec<u8> },
    SetLen(u64),
}

fn apply(v: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { off, bytes } => {
            let off = *off as usize;
            if v.len() < off + bytes.len() {
                v.resize(off + bytes.len(), 0);
            }
            v[off..off + bytes.len()].copy_from_slice(bytes);
        }
        Pending::SetLen(n) => v.resize(*n as usize, 0),
    }
}

/// A failed fsync: the byte ranges it failed to make durable.
#[derive(Debug, Clone)]
pub struct FailedSync {
    pub path: PathBuf,
    pub ranges: Vec<(u64, u64)>,
}

#[derive(Debug, Default, Clone)]
struct Sim {
    dead: bool,
    next_ino: u64,
    inodes: HashMap<u64, Inode>,
    live: BTreeMap<PathBuf, u64>,
    durable: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    sync_calls: u64,
    fail_sync_calls: BTreeSet<u64>,
    fail_next_writes: u64,
    failed_syncs: Vec<FailedSync>,
}

#[derive(Debug, Default)]
struct Gate {
    held: bool,
    waiting: usize,
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    sim: Arc<Mutex<Sim>>,
    gate: Arc<(Mutex<Gate>, Condvar)>,
}

/// How `power_loss` treats the writes since each file's last fsync.
#[derive(Debug, Clone, Copy)]
pub enum Tear {
    /// All lost.
    DropAll,
    /// Kept in order up to a random point, the last one kept torn at a random byte.
    RandomPrefix(u64),
}

fn dead() -> io::Error {
    io::Error::other("simulated power loss: the device is gone")
}

impl SimFs {
    pub fn new() -> SimFs {
        SimFs::default()
    }

    pub fn handle(&self) -> Arc<dyn WalFs> {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Sim> {
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of `sync_data` calls so far.
    pub fn sync_calls(&self) -> u64 {
        self.lock().sync_calls
    }

    /// Makes the `n`th `sync_data` call (1-based, counting all so far) fail with EIO.
    pub fn fail_sync_call(&self, n: u64) {
        self.lock().fail_sync_calls.insert(n);
    }

    /// Makes the next `n` `write_all_at` calls fail (ENOSPC), writing nothing.
    pub fn fail_next_writes(&self, n: u64) {
        self.lock().fail_next_writes = n;
    }

    pub fn failed_syncs(&self) -> Vec<FailedSync> {
        self.lock().failed_syncs.clone()
    }

    /// While held, `sync_data` calls block (before counting) until released.
    pub fn hold_syncs(&self, held: bool) {
        let (m, cv) = &*self.gate;
        m.lock().unwrap_or_else(|e| e.into_inner()).held = held;
        cv.notify_all();
    }

    /// Threads blocked at the sync gate.
    pub fn syncs_waiting(&self) -> usize {
        self.gate
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting
    }

    /// An independent copy of the current (live) state, as if the process had exited.
    pub fn fork(&self) -> SimFs {
        let mut sim = self.lock().clone();
        sim.fail_sync_calls.clear();
        sim.fail_next_writes = 0;
        SimFs {
            sim: Arc::new(Mutex::new(sim)),
            gate: Arc::default(),
        }
    }

    /// Cuts the power: this instance fails every later operation, and the returned instance
    /// holds what a reboot would find.
    pub fn power_loss(&self, tear: Tear) -> SimFs {
        let mut sim = self.lock();
        sim.dead = true;
        let mut rng = match tear {
            Tear::RandomPrefix(seed) => Some(StdRng::seed_from_u64(seed)),
            Tear::DropAll => None,
        };
        let mut img = Sim {
            next_ino: sim.next_ino,
            dirs: sim.dirs.clone(),
            live: sim.durable.clone(),
            durable: sim.durable.clone(),
            ..Sim::default()
        };
        for ino in sim.durable.values() {
            let Some(node) = sim.inodes.get(ino) else {
                continue;
            };
            let mut data = node.durable.clone();
            if let Some(rng) = rng.as_mut() {
                if !node.pending.is_empty() {
                    let k = rng.random_range(0..node.pending.len());
                    for op in &node.pending[..k] {
                        apply(&mut data, op);
                    }
                    match &node.pending[k] {
                        Pending::Write { off, bytes } => {
                            let keep = rng.random_range(0..=bytes.len());
                            let torn = Pending::Write {
                                off: *off,
                                bytes: bytes[..keep].to_vec(),
                            };
                            apply(&mut data, &torn);
                        }
                        op => apply(&mut data, op),
                    }
                }
            }
            img.inodes.insert(
                *ino,
                Inode {
                    durable: data.clone(),
                    data,
                    pending: Vec::new(),
                },
            );
        }
        SimFs {
            sim: Arc::new(Mutex::new(img)),
            gate: Arc::default(),
        }
    }

    /// Names of the live files in `dir`, sorted.
    pub fn names(&self, dir: &Path) -> Vec<String> {
        let sim = self.lock();
        sim.live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect()
    }

    /// The live bytes of a file.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let sim = self.lock();
        let ino = sim.live.get(path)?;
        sim.inodes.get(ino).map(|n| n.data.clone())
    }

    /// Replaces a file's bytes, durably (as if damaged on disk).
    pub fn write(&self, path: &Path, bytes: &[u8]) {
        let mut sim = self.lock();
        let ino = *sim.live.get(path).expect("file exists");
        let node = sim.inodes.get_mut(&ino).expect("inode");
        node.data = bytes.to_vec();
        node.durable = bytes.to_vec();
        node.pending.clear();
    }
}

#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    ino: u64,
    path: PathBuf,
}

impl WalFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        let sim = self.fs.lock();
        if sim.dead {
            return Err(dead());
        }
        Ok(sim.inodes.get(&self.ino).map_or(0, |n| n.data.len() as u64))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let sim = self.fs.lock();
        if sim.dead {
            return Err(dead());
        }
        let data = sim.inodes.get(&self.ino).map_or(&[][..], |n| &n.data[..]);
        let off = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - off);
        buf[..n].copy_from_slice(&data[off..off + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut sim = self.fs.lock();
        if sim.dead {
            return Err(dead());
        }
        if sim.fail_next_writes > 0 {
            sim.fail_next_writes -= 1;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated ENOSPC",
            ));
        }
        let node = sim.inodes.entry(self.ino).or_default();
        let op = Pending::Write {
            off: offset,
            bytes: buf.to_vec(),
        };
        apply(&mut node.data, &op);
        node.pending.push(op);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        {
            let (m, cv) = &*self.fs.gate;
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            g.waiting += 1;
            while g.held {
                g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            g.waiting -= 1;
        }
        let mut sim = self.fs.lock();
        if sim.dead {
            return Err(dead());
        }
        sim.sync_calls += 1;
        let n = sim.sync_calls;
        let fail = sim.fail_sync_calls.remove(&n);
        let node = sim.inodes.entry(self.ino).or_default();
        let pending = std::mem::take(&mut node.pending);
        if fail {
            // fsyncgate: the pages are marked clean without being written.
            let ranges = pending
                .iter()
                .filter_map(|op| match op {
                    Pending::Write { off, bytes } => Some((*off, off + bytes.len() as u64)),
                    Pending::SetLen(_) => None,
                })
                .collect();
            let failed = FailedSync {
                path: self.path.clone(),
                ranges,
            };
            sim.failed_syncs.push(failed);
            return Err(io::Error::other("simulated EIO on fsync"));
        }
        for op in &pending {
            apply(&mut node.durable, op);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut sim = self.fs.lock();
        if sim.dead {
            return Err(dead());
        }
        let node = sim.inodes.entry(self.ino).or_default();
        let op = Pending::SetLen(len);
        apply(&mut node.data, &op);
        node.pending.push(op);
        Ok(())
    }
}

impl WalFs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut sim = self.lock();
        if sim.dead {
            return Err(dead());
        }
        sim.dirs.insert(dir.to_path_buf());
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        if self.lock().dead {
            return Err(dead());
        }
        Ok(self.names(dir))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let sim = self.lock();
        if sim.dead {
            return Err(dead());
        }
        let ino = *sim.live.get(path).ok_or(io::ErrorKind::NotFound)?;
        Ok(Arc::new(SimFile {
            fs: self.clone(),
            ino,
            path: path.to_path_buf(),
        }))
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let mut sim = self.lock();
        if sim.dead {
            return Err(dead());
        }
        if sim.live.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        sim.next_ino += 1;
        let ino = sim.next_ino;
        sim.inodes.insert(ino, Inode::default());
        sim.live.insert(path.to_path_buf(), ino);
        Ok(Arc::new(SimFile {
            fs: self.clone(),
            ino,
            path: path.to_path_buf(),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.lock();
        if sim.dead {
            return Err(dead());
        }
        sim.live.remove(path).ok_or(io::ErrorKind::NotFound)?;
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut sim = self.lock();
        if sim.dead {
            return Err(dead());
        }
        let ino = sim.live.remove(from).ok_or(io::ErrorKind::NotFound)?;
        sim.live.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut sim = self.lock();
        if sim.dead {
            return Err(dead());
        }
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        let live: Vec<(PathBuf, u64)> = sim
            .live
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        sim.durable.retain(|p, _| !in_dir(p));
        sim.durable.extend(live);
        Ok(())
    }
}

/// One frame found by `frames`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub offset: u64,
    pub head: FrameHead,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn end(&self) -> u64 {
        self.offset + self.head.frame_len()
    }
}

/// The valid frames of one WAL file's bytes (header skipped), stopping at the first invalid
/// one. Written independently of the WAL's recovery, from the documented format.
pub fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut off = HEADER_LEN as usize;
    while off + FRAME_HEAD_LEN as usize <= bytes.len() {
        let mut hb = [0u8; 16];
        hb.copy_from_slice(&bytes[off..off + 16]);
        let head = FrameHead::decode(&hb);
        let end = off + 16 + head.len as usize;
        if end > bytes.len() || crc32fast::hash(&bytes[off + 8..end]) != head.crc {
            break;
        }
        out.push(Frame {
            offset: off as u64,
            head,
            payload: bytes[off + 16..end].to_vec(),
        });
        off = end;
    }
    out
}

#[test]
fn sim_fs_models_durability() {
    let fs = SimFs::new();
    let dir = Path::new("/d");
    fs.create_dir_all(dir).unwrap();
    let f = fs.create_new(&dir.join("a")).unwrap();
    f.write_all_at(b"hello", 0).unwrap();
    // Not synced, directory not synced: gone after a power loss.
    assert!(fs.fork().power_loss(Tear::DropAll).names(dir).is_empty());
    fs.sync_dir(dir).unwrap();
    f.sync_data().unwrap();
    f.write_all_at(b" world", 5).unwrap();
    let img = fs.power_loss(Tear::DropAll);
    assert_eq!(img.read(&dir.join("a")).unwrap(), b"hello");
    assert!(f.write_all_at(b"x", 0).is_err(), "old instance is dead");
    // A failed fsync's pages never become durable, even after a later successful fsync.
    let g = img.open(&dir.join("a")).unwrap();
    g.write_all_at(b"HELLO", 0).unwrap();
    img.fail_sync_call(img.sync_calls() + 1);
    assert!(g.sync_data().is_err());
    g.sync_data().unwrap();
    assert_eq!(img.read(&dir.join("a")).unwrap(), b"HELLO");
    assert_eq!(
        img.power_loss(Tear::DropAll).read(&dir.join("a")).unwrap(),
        b"hello"
    );
}
