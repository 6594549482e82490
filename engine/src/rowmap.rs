//! A shard's live rows, found by primary key and by row id.
//!
//! Both lookups are `hashbrown` [`HashTable`]s of the same `Arc<Row>`s: an entry is one
//! pointer (8 bytes plus a control byte), and the key and the row id are read from the row
//! itself instead of being stored again beside it. Two `HashMap<Key, Arc<Row>>` /
//! `HashMap<u64, Arc<Row>>` cost 40 + 16 bytes per bucket; these cost 8 + 8, which at a million
//! rows is ~80 MiB less (and half that again while a table grows, when the old and the new
//! bucket arrays are both alive).
//!
//! Keys come from users, so their hash stays keyed (aHash with per-process random keys).
//! Row ids are made by the engine (`lsn << 20 | position`), never by a user, so they get a
//! fixed mixing function.

use std::sync::Arc;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use crate::catalog::{Key, KeyRef};
use crate::table::Row;

/// The live rows of one shard: at most one version per key, each also found by its row id.
/// Invariant: both tables hold the same versions (the same `Arc`s).
#[derive(Default)]
pub(crate) struct RowMap {
    by_key: HashTable<Arc<Row>>,
    by_id: HashTable<Arc<Row>>,
    hasher: ahash::RandomState,
}

/// The hash of a row id: the splitmix64 finaliser (ids differ mostly in their low bits and in
/// the LSN part; this spreads both over the whole word).
#[inline]
pub(crate) fn hash_row_id(row_id: u64) -> u64 {
    let mut z = row_id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RowMap {
    /// Live rows.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    fn hash_key(&self, key: KeyRef<'_>) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The live version of `key`.
    pub fn get(&self, key: &Key) -> Option<&Arc<Row>> {
        let key = key.as_key_ref();
        self.by_key.find(self.hash_key(key), |r| r.key_ref() == key)
    }

    /// The live version with id `row_id`, if that version is live.
    pub fn get_id(&self, row_id: u64) -> Option<&Arc<Row>> {
        self.by_id.find(hash_row_id(row_id), |r| r.row_id == row_id)
    }

    /// Whether version `row_id` is live.
    pub fn contains_id(&self, row_id: u64) -> bool {
        self.get_id(row_id).is_some()
    }

    /// Every live row, in no particular order.
    pub fn rows(&self) -> impl Iterator<Item = &Arc<Row>> + '_ {
        self.by_key.iter()
    }

    /// Room for `additional` more rows without rehashing.
    pub fn reserve(&mut self, additional: usize) {
        let hasher = &self.hasher;
        self.by_key
            .reserve(additional, |r| hasher.hash_one(r.key_ref()));
        self.by_id.reserve(additional, |r| hash_row_id(r.row_id));
    }

    /// Makes `row` the live version of its key; returns the version it replaces.
    pub fn put(&mut self, row: Arc<Row>) -> Option<Arc<Row>> {
        let hasher = &self.hasher;
        let key = row.key_ref();
        let old = match self.by_key.entry(
            hasher.hash_one(key),
            |r| r.key_ref() == key,
            |r| hasher.hash_one(r.key_ref()),
        ) {
            Entry::Occupied(mut e) => Some(std::mem::replace(e.get_mut(), row.clone())),
            Entry::Vacant(e) => {
                e.insert(row.clone());
                None
            }
        };
        if let Some(old) = &old {
            self.remove_id(old.row_id);
        }
        self.by_id
            .insert_unique(hash_row_id(row.row_id), row, |r| hash_row_id(r.row_id));
        old
    }

    /// Removes the live version of `key`; returns it.
    pub fn remove(&mut self, key: &Key) -> Option<Arc<Row>> {
        let key = key.as_key_ref();
        let (old, _) = self
            .by_key
            .find_entry(self.hash_key(key), |r| r.key_ref() == key)
            .ok()?
            .remove();
        self.remove_id(old.row_id);
        Some(old)
    }

    fn remove_id(&mut self, row_id: u64) {
        if let Ok(e) = self
            .by_id
            .find_entry(hash_row_id(row_id), |r| r.row_id == row_id)
        {
            e.remove();
        }
    }

    /// Puts `new` (the same version: same key and row id) where `old` is the live version;
    /// whether it did (`old` may have been replaced meanwhile).
    pub fn swap_version(&mut self, old: &Arc<Row>, new: &Arc<Row>) -> bool {
        debug_assert!(old.row_id == new.row_id && old.key_ref() == new.key_ref());
        let hash = self.hash_key(old.key_ref());
        let Some(by_key) = self.by_key.find_mut(hash, |r| Arc::ptr_eq(r, old)) else {
            return false;
        };
        *by_key = new.clone();
        match self
            .by_id
            .find_mut(hash_row_id(old.row_id), |r| Arc::ptr_eq(r, old))
        {
            Some(by_id) => *by_id = new.clone(),
            // Unreachable while the invariant holds; keep the tables consistent anyway.
            None => {
                self.remove_id(old.row_id);
                self.by_id
                    .insert_unique(hash_row_id(new.row_id), new.clone(), |r| {
                        hash_row_id(r.row_id)
                    });
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Value;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn row(row_id: u64, key: i64) -> Arc<Row> {
        Arc::new(Row::new(row_id, 0, Box::new([Value::BigInt(key)])).unwrap())
    }

    #[derive(Debug, Clone)]
    enum Step {
        Put(i64),
        Remove(i64),
        Swap(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0i64..40).prop_map(Step::Put),
            (0i64..40).prop_map(Step::Remove),
            (0i64..40).prop_map(Step::Swap),
        ]
    }

    proptest! {
        /// The map against a `HashMap<Key, Arc<Row>>` model: same live versions, found by
        /// key and by id; replaced and removed ids are gone.
        #[test]
        fn behaves_like_a_key_map(steps in prop::collection::vec(step(), 0..300)) {
            let mut map = RowMap::default();
            let mut model: HashMap<Key, Arc<Row>> = HashMap::new();
            let mut dead = Vec::new();
            for (i, s) in steps.into_iter().enumerate() {
                let id = i as u64 + 1;
                match s {
                    Step::Put(k) => {
                        let r = row(id, k);
                        let old = map.put(r.clone());
                        let expected = model.insert(Key::BigInt(k), r);
                        prop_assert_eq!(old.as_ref().map(|o| o.row_id), expected.as_ref().map(|o| o.row_id));
                        dead.extend(expected.map(|o| o.row_id));
                    }
                    Step::Remove(k) => {
                        let old = map.remove(&Key::BigInt(k));
                        let expected = model.remove(&Key::BigInt(k));
                        prop_assert_eq!(old.as_ref().map(|o| o.row_id), expected.as_ref().map(|o| o.row_id));
                        dead.extend(expected.map(|o| o.row_id));
                    }
                    Step::Swap(k) => {
                        if let Some(old) = model.get(&Key::BigInt(k)).cloned() {
                            let new = row(old.row_id, k);
                            prop_assert!(map.swap_version(&old, &new));
                            // The replaced `Arc` is no longer live: a second swap does nothing.
                            prop_assert!(!map.swap_version(&old, &new));
                            model.insert(Key::BigInt(k), new);
                        }
                    }
                }
                prop_assert_eq!(map.len(), model.len());
            }
            for (k, r) in &model {
                prop_assert!(Arc::ptr_eq(map.get(k).unwrap(), r));
                prop_assert!(Arc::ptr_eq(map.get_id(r.row_id).unwrap(), r));
            }
            for id in dead {
                prop_assert!(!map.contains_id(id));
            }
            prop_assert_eq!(map.rows().count(), model.len());
        }
    }

    /// The table hashes `KeyRef`s; `Key` must hash the same for `Key`-keyed maps elsewhere
    /// (the write plan's overlay) to agree with it.
    #[test]
    fn key_refs_hash_and_order_as_keys() {
        let h = ahash::RandomState::new();
        let keys = [
            Key::BigInt(-3),
            Key::BigInt(7),
            Key::from(""),
            Key::from("ab"),
        ];
        for a in &keys {
            assert_eq!(h.hash_one(a), h.hash_one(a.as_key_ref()));
            assert_eq!(a.as_key_ref().to_key(), *a);
            for b in &keys {
                assert_eq!(a.cmp(b), a.as_key_ref().cmp(&b.as_key_ref()));
            }
        }
    }

    #[test]
    fn reserve_keeps_every_row_findable() {
        let mut map = RowMap::default();
        for k in 0..1000 {
            map.put(row(k as u64, k));
            if k % 100 == 0 {
                map.reserve(500);
            }
        }
        assert!((0..1000).all(|k| map.get(&Key::BigInt(k)).is_some() && map.contains_id(k as u64)));
    }
}
