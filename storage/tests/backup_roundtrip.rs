//! Backups: create from a live store + WAL, restore into a new data directory, check the
//! manifest protocol (an interrupted backup is recognised; a non-empty target is refused; a
//! damaged backup is refused).

use vela_storage::backup::{create_backup, restore_backup, verify_backup};
use vela_storage::{
    Cf, DataDir, DirLock, SegmentStore, StorageError, StoreOptions, Wal, WalOptions,
};

/// A little database: WAL entries 1..=n, each applied to the store as row `lsn -> payload`,
/// flushed at `flush_at`.
fn populate(dir: &DataDir, n: u64, flush_at: u64) -> (SegmentStore, Wal) {
    dir.create().unwrap();
    let store = SegmentStore::open(&dir.store_dir(), &StoreOptions::default()).unwrap();
    let wal = Wal::open(dir.wal_dir(), WalOptions::default()).unwrap();
    for i in 1..=n {
        let payload = format!("entry {i}");
        let lsn = wal.append(payload.as_bytes()).unwrap();
        assert_eq!(lsn, i);
        let mut b = store.batch();
        b.put(Cf::Rows, &lsn.to_be_bytes(), payload.as_bytes());
        if i % 10 == 0 {
            b.put_blob(Cf::Index, &lsn.to_be_bytes(), &vec![i as u8; 300_000]);
        }
        store.write(b, lsn).unwrap();
        if i == flush_at {
            store.flush(lsn).unwrap();
        }
    }
    (store, wal)
}

#[test]
fn backup_and_restore_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let live = DataDir::new(tmp.path().join("live"));
    let _lock = {
        live.create().unwrap();
        DirLock::acquire(live.root()).unwrap()
    };
    let (store, wal) = populate(&live, 50, 30);
    let backup_dir = tmp.path().join("backup-1");
    let manifest = create_backup(&store, &wal, &backup_dir).unwrap();
    assert_eq!(manifest.flushed_lsn, 30);
    assert_eq!(manifest.wal_last_lsn, 50);
    assert!(manifest.wal_first_lsn <= 31);
    assert!(manifest.files.iter().any(|(f, _)| f == "store/CURRENT"));
    assert!(manifest.files.iter().any(|(f, _)| f.starts_with("wal/")));
    assert!(DataDir::new(&backup_dir).backup_manifest_path().is_file());

    // The live database goes on; the backup does not change.
    let mut b = store.batch();
    b.put(Cf::Rows, &51u64.to_be_bytes(), b"after the backup");
    store.write(b, 51).unwrap();
    assert_eq!(verify_backup(&backup_dir).unwrap(), manifest);

    let restored = DataDir::new(tmp.path().join("restored"));
    let m2 = restore_backup(&backup_dir, restored.root()).unwrap();
    assert_eq!(m2, manifest);

    // Recover like the engine would: open the store, replay the WAL from flushed_lsn + 1.
    let _rlock = DirLock::acquire(restored.root()).unwrap();
    let rs = SegmentStore::open(&restored.store_dir(), &StoreOptions::default()).unwrap();
    assert_eq!(rs.flushed_lsn(), 30);
    let rw = Wal::open(restored.wal_dir(), WalOptions::default()).unwrap();
    assert_eq!(rw.last_lsn(), 50);
    let mut replayed = 0;
    for entry in rw.reader_from(rs.flushed_lsn() + 1).unwrap() {
        let (lsn, payload) = entry.unwrap();
        let mut b = rs.batch();
        b.put(Cf::Rows, &lsn.to_be_bytes(), &payload);
        rs.write(b, lsn).unwrap();
        replayed += 1;
    }
    assert_eq!(replayed, 20);
    for i in 1..=50u64 {
        assert_eq!(
            rs.get(Cf::Rows, &i.to_be_bytes()).unwrap(),
            Some(format!("entry {i}").into_bytes())
        );
    }
    assert_eq!(rs.get(Cf::Rows, &51u64.to_be_bytes()).unwrap(), None);
    assert_eq!(
        rs.get_blob(Cf::Index, &20u64.to_be_bytes()).unwrap(),
        Some(vec![20u8; 300_000])
    );
}

#[test]
fn restore_refuses_a_non_empty_target_and_backup_refuses_a_non_empty_dest() {
    let tmp = tempfile::tempdir().unwrap();
    let live = DataDir::new(tmp.path().join("live"));
    let (store, wal) = populate(&live, 5, 5);
    let backup_dir = tmp.path().join("b");
    create_backup(&store, &wal, &backup_dir).unwrap();

    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("precious.txt"), b"keep me").unwrap();
    let err = restore_backup(&backup_dir, &target).unwrap_err();
    assert!(
        matches!(err, StorageError::DirectoryNotEmpty { .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read(target.join("precious.txt")).unwrap(),
        b"keep me"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1);

    let err = create_backup(&store, &wal, &backup_dir).unwrap_err();
    assert!(
        matches!(err, StorageError::DirectoryNotEmpty { .. }),
        "{err}"
    );
    // The existing backup is untouched and still valid.
    verify_backup(&backup_dir).unwrap();
}

#[test]
fn incomplete_or_damaged_backups_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let live = DataDir::new(tmp.path().join("live"));
    let (store, wal) = populate(&live, 12, 10);
    let backup_dir = tmp.path().join("b");
    let manifest = create_backup(&store, &wal, &backup_dir).unwrap();
    let manifest_path = DataDir::new(&backup_dir).backup_manifest_path();
    let text = std::fs::read(&manifest_path).unwrap();

    // An interrupted backup has no manifest.
    std::fs::remove_file(&manifest_path).unwrap();
    let err = restore_backup(&backup_dir, &tmp.path().join("r1")).unwrap_err();
    assert!(matches!(err, StorageError::InvalidBackup { .. }), "{err}");
    assert!(err.to_string().contains("incomplete"), "{err}");
    assert!(
        !tmp.path().join("r1").exists(),
        "nothing is created for an invalid backup"
    );

    // A manifest with a flipped byte fails its crc.
    let mut bad = text.clone();
    let pos = bad.len() / 2;
    bad[pos] ^= 0x02;
    std::fs::write(&manifest_path, &bad).unwrap();
    let err = verify_backup(&backup_dir).unwrap_err();
    assert!(matches!(err, StorageError::InvalidBackup { .. }), "{err}");

    // A file shorter than the manifest says.
    std::fs::write(&manifest_path, &text).unwrap();
    let (victim, _) = manifest
        .files
        .iter()
        .find(|(f, len)| f.starts_with("wal/") && *len > 0)
        .unwrap();
    let victim_path = backup_dir.join(victim);
    let len = std::fs::metadata(&victim_path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&victim_path)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let err = restore_backup(&backup_dir, &tmp.path().join("r2")).unwrap_err();
    assert!(err.to_string().contains(victim.as_str()), "{err}");
}

#[test]
fn backup_of_a_missing_source_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    assert!(matches!(
        verify_backup(&missing),
        Err(StorageError::MissingDirectory { path }) if path == missing
    ));
}
