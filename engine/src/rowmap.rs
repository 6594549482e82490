//! A shard's live rows, found by primary key and by row id.
//!
//! Rows are held in one of two forms:
//! * **Whole**: an `Arc<Row>`, in two `hashbrown` [`HashTable`]s (one found by key, one by row
//!   id) that both hold the same `Arc`, each entry beside its key's hash or its row id (16
//!   bytes plus a control byte). The key itself is read from the row; keeping the hash and the
//!   id in the entry spares a growing table a trip into every row to rehash it (with 8-byte
//!   entries, WAL replay of a million rows ran ~15% slower: cache misses, not instructions).
//! * **Bare**: a row whose primary key is a `BIGINT` and whose every other column reads NULL,
//!   held as its `(key, row id)` only, in a dense list, found through two tables of 4-byte
//!   positions into it, and rebuilt as a `Row` when read ([`RowMap::get`], [`RowMap::get_id`], [`RowMap::rows`]). That is the
//!   common shape of a vector table (an id and an embedding) once its rows have left their
//!   vectors to the segments' graphs (`Table::release_vectors`, and every row loaded from a
//!   sealed segment): such a row would otherwise cost its `Arc<Row>` (48 bytes) and its values
//!   (32 bytes a column), ~112 bytes more at two columns: ~100 MiB at a million rows.
//!
//! Reading a bare row allocates the row it rebuilds; rows that hold anything besides their key
//! are whole and are read without allocating. A key is in at most one of the two forms.
//!
//! Keys come from users, so their hash stays keyed (aHash with per-process random keys). Row
//! ids are made by the engine (`lsn << 20 | position`), never by a user, so they get a fixed
//! mixing function.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::catalog::{Key, KeyRef, Value};
use crate::table::Row;

/// The live rows of one shard: at most one version per key, each also found by its row id.
/// Invariants: `by_key` and `by_id` hold the same `Arc`s; `bare_by_key` and `bare_by_id`
/// each hold every position of `bare` once; no key is both whole and bare.
pub(crate) struct RowMap {
    /// Whole rows with their key's hash, found by key.
    by_key: HashTable<(u64, Arc<Row>)>,
    /// Whole rows with their row id, found by row id.
    by_id: HashTable<(u64, Arc<Row>)>,
    /// Bare rows, `(key, row id)`, densely (a removal moves the last one into the hole).
    bare: Vec<(i64, u64)>,
    /// Positions in `bare`, found by key.
    bare_by_key: HashTable<u32>,
    /// Positions in `bare`, found by row id.
    bare_by_id: HashTable<u32>,
    hasher: ahash::RandomState,
    /// The table's number of columns and its primary key's position (to rebuild bare rows).
    columns: usize,
    pk: usize,
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

/// The hashers the bare tables rehash with: a position's key hash and row id hash, read from
/// `list` (a position past its end, which the invariants rule out, hashes as 0).
fn bare_rehash<'a>(
    hasher: &'a ahash::RandomState,
    list: &'a [(i64, u64)],
) -> (impl Fn(&u32) -> u64 + 'a, impl Fn(&u32) -> u64 + 'a) {
    let at = move |i: &u32| list.get(*i as usize).copied().unwrap_or_default();
    (
        move |i: &u32| hasher.hash_one(KeyRef::BigInt(at(i).0)),
        move |i: &u32| hash_row_id(at(i).1),
    )
}

impl RowMap {
    /// An empty map for rows of `columns` values whose primary key is at position `pk`.
    pub fn new(columns: usize, pk: usize) -> Self {
        RowMap {
            by_key: HashTable::new(),
            by_id: HashTable::new(),
            bare: Vec::new(),
            bare_by_key: HashTable::new(),
            bare_by_id: HashTable::new(),
            hasher: ahash::RandomState::new(),
            columns,
            pk,
        }
    }

    /// Live rows.
    pub fn len(&self) -> usize {
        self.by_key.len() + self.bare.len()
    }

    fn hash_key(&self, key: KeyRef<'_>) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The key of `row` if it can be held bare: a `BIGINT` key and NULL everywhere else (and
    /// room for one more bare row: positions are `u32`).
    fn bare_key(&self, row: &Row) -> Option<i64> {
        let KeyRef::BigInt(key) = row.key_ref() else {
            return None;
        };
        let bare = self.bare.len() < u32::MAX as usize
            && row.values.len() == self.columns
            && row
                .values
                .iter()
                .enumerate()
                .all(|(i, v)| i == self.pk || matches!(v, Value::Null));
        bare.then_some(key)
    }

    /// The row a bare entry stands for.
    fn rebuild(&self, row_id: u64, key: i64) -> Arc<Row> {
        Arc::new(Row::bare(row_id, self.pk, self.columns, key))
    }

    /// The live version of `key` (a bare row is rebuilt: a new `Arc` on every call).
    pub fn get(&self, key: &Key) -> Option<Arc<Row>> {
        let key = key.as_key_ref();
        let hash = self.hash_key(key);
        if let Some((_, row)) = self
            .by_key
            .find(hash, |(h, r)| *h == hash && r.key_ref() == key)
        {
            return Some(row.clone());
        }
        let KeyRef::BigInt(k) = key else {
            return None;
        };
        let at = self.bare_at_key(hash, k)?;
        let &(k, row_id) = self.bare.get(at)?;
        Some(self.rebuild(row_id, k))
    }

    /// The position in `bare` of key `k` (`hash`: its hash).
    fn bare_at_key(&self, hash: u64, k: i64) -> Option<usize> {
        let bare = &self.bare;
        self.bare_by_key
            .find(hash, |&i| bare.get(i as usize).is_some_and(|b| b.0 == k))
            .map(|&i| i as usize)
    }

    /// The position in `bare` of version `row_id`.
    fn bare_at_id(&self, row_id: u64) -> Option<usize> {
        let bare = &self.bare;
        self.bare_by_id
            .find(hash_row_id(row_id), |&i| {
                bare.get(i as usize).is_some_and(|b| b.1 == row_id)
            })
            .map(|&i| i as usize)
    }

    /// The live version with id `row_id`, if that version is live (a bare row is rebuilt).
    pub fn get_id(&self, row_id: u64) -> Option<Arc<Row>> {
        let hash = hash_row_id(row_id);
        if let Some((_, row)) = self.by_id.find(hash, |(id, _)| *id == row_id) {
            return Some(row.clone());
        }
        let &(k, row_id) = self.bare.get(self.bare_at_id(row_id)?)?;
        Some(self.rebuild(row_id, k))
    }

    /// Whether version `row_id` is live.
    pub fn contains_id(&self, row_id: u64) -> bool {
        let hash = hash_row_id(row_id);
        self.by_id.find(hash, |(id, _)| *id == row_id).is_some()
            || self.bare_at_id(row_id).is_some()
    }

    /// Every live row, in no particular order (bare rows rebuilt).
    pub fn rows(&self) -> impl Iterator<Item = Arc<Row>> + '_ {
        self.by_key
            .iter()
            .map(|(_, r)| r.clone())
            .chain(self.bare.iter().map(|&(k, row_id)| self.rebuild(row_id, k)))
    }

    /// The ids of every live version, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_id
            .iter()
            .map(|(id, _)| *id)
            .chain(self.bare.iter().map(|&(_, id)| id))
    }

    /// Room for `rows` without rehashing, sized for the form each will take.
    pub fn reserve_for(&mut self, rows: &[Arc<Row>]) {
        let bare = rows.iter().filter(|r| self.bare_key(r).is_some()).count();
        self.reserve(rows.len() - bare, bare);
    }

    /// Room for `whole` more whole rows and `bare` more bare ones without rehashing.
    pub fn reserve(&mut self, whole: usize, bare: usize) {
        let hasher = &self.hasher;
        self.by_key.reserve(whole, |(h, _)| *h);
        self.by_id.reserve(whole, |(id, _)| hash_row_id(*id));
        let (by_key, by_id) = bare_rehash(hasher, &self.bare);
        self.bare_by_key.reserve(bare, by_key);
        self.bare_by_id.reserve(bare, by_id);
        self.bare.reserve(bare);
    }

    /// Makes `row` the live version of its key; returns the id of the version it replaces.
    pub fn put(&mut self, row: Arc<Row>) -> Option<u64> {
        let key = row.key_ref();
        let hash = self.hash_key(key);
        let old = self.remove_hashed(hash, key);
        let hasher = &self.hasher;
        match self.bare_key(&row) {
            Some(k) => {
                // `bare_key` left room for one more `u32` position.
                let at = self.bare.len() as u32;
                self.bare.push((k, row.row_id));
                let (by_key, by_id) = bare_rehash(hasher, &self.bare);
                self.bare_by_key.insert_unique(hash, at, by_key);
                self.bare_by_id
                    .insert_unique(hash_row_id(row.row_id), at, by_id);
            }
            None => {
                let id = row.row_id;
                self.by_key
                    .insert_unique(hash, (hash, row.clone()), |(h, _)| *h);
                self.by_id
                    .insert_unique(hash_row_id(id), (id, row), |(id, _)| hash_row_id(*id));
            }
        }
        old
    }

    /// Removes the live version of `key`; returns its id.
    pub fn remove(&mut self, key: &Key) -> Option<u64> {
        let key = key.as_key_ref();
        self.remove_hashed(self.hash_key(key), key)
    }

    /// [`RowMap::remove`] given the key's hash.
    fn remove_hashed(&mut self, hash: u64, key: KeyRef<'_>) -> Option<u64> {
        if let Ok(e) = self
            .by_key
            .find_entry(hash, |(h, r)| *h == hash && r.key_ref() == key)
        {
            let ((_, old), _) = e.remove();
            let id = old.row_id;
            if let Ok(e) = self.by_id.find_entry(hash_row_id(id), |(i, _)| *i == id) {
                e.remove();
            }
            return Some(id);
        }
        let KeyRef::BigInt(k) = key else {
            return None;
        };
        let at = self.bare_at_key(hash, k)?;
        Some(self.remove_bare(at))
    }

    /// Removes the bare row at position `at` (from a lookup, so in range; the last one moves
    /// into its place); returns its id.
    fn remove_bare(&mut self, at: usize) -> u64 {
        let (k, row_id) = self.bare[at];
        let last = self.bare.len() - 1;
        let (lk, lid) = self.bare[last];
        let (hash, last_hash) = (
            self.hash_key(KeyRef::BigInt(k)),
            self.hash_key(KeyRef::BigInt(lk)),
        );
        let slot = at as u32;
        if let Ok(e) = self.bare_by_key.find_entry(hash, |&i| i == slot) {
            e.remove();
        }
        if let Ok(e) = self
            .bare_by_id
            .find_entry(hash_row_id(row_id), |&i| i == slot)
        {
            e.remove();
        }
        if at != last {
            let moved = last as u32;
            if let Some(i) = self.bare_by_key.find_mut(last_hash, |&i| i == moved) {
                *i = slot;
            }
            if let Some(i) = self.bare_by_id.find_mut(hash_row_id(lid), |&i| i == moved) {
                *i = slot;
            }
        }
        self.bare.swap_remove(at);
        row_id
    }

    /// Puts `new` (the same version: same key and row id) where `old` is the live version,
    /// held whole; whether it did (`old` may have been replaced meanwhile; a bare row is never
    /// `old`, as every read of it is a new `Arc`). `new` is held bare if it can be.
    pub fn swap_version(&mut self, old: &Arc<Row>, new: &Arc<Row>) -> bool {
        debug_assert!(old.row_id == new.row_id && old.key_ref() == new.key_ref());
        let hash = self.hash_key(old.key_ref());
        if self
            .by_key
            .find(hash, |(_, r)| Arc::ptr_eq(r, old))
            .is_none()
        {
            return false;
        }
        if self.bare_key(new).is_some() {
            self.put(new.clone());
            return true;
        }
        if let Some((_, by_key)) = self.by_key.find_mut(hash, |(_, r)| Arc::ptr_eq(r, old)) {
            *by_key = new.clone();
        }
        if let Some((_, by_id)) = self
            .by_id
            .find_mut(hash_row_id(old.row_id), |(_, r)| Arc::ptr_eq(r, old))
        {
            *by_id = new.clone();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Row `key` of a `(id BIGINT, note TEXT)` table: whole with a note, bare without.
    fn row(row_id: u64, key: i64, note: bool) -> Arc<Row> {
        let note = if note {
            Value::Text(format!("n{row_id}"))
        } else {
            Value::Null
        };
        Arc::new(Row::new(row_id, 0, Box::new([Value::BigInt(key), note])).unwrap())
    }

    #[derive(Debug, Clone)]
    enum Step {
        Put(i64, bool),
        Remove(i64),
        /// Swap the live version for a copy with (`true`) or without a note.
        Swap(i64, bool),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0i64..40, any::<bool>()).prop_map(|(k, n)| Step::Put(k, n)),
            (0i64..40).prop_map(Step::Remove),
            (0i64..40, any::<bool>()).prop_map(|(k, n)| Step::Swap(k, n)),
        ]
    }

    proptest! {
        /// The map against a `HashMap<Key, Arc<Row>>` model, with rows moving between the
        /// whole and the bare form: same live versions (same values), found by key and by
        /// id; replaced and removed ids are gone.
        #[test]
        fn behaves_like_a_key_map(steps in prop::collection::vec(step(), 0..300)) {
            let mut map = RowMap::new(2, 0);
            let mut model: HashMap<Key, Arc<Row>> = HashMap::new();
            let mut dead = Vec::new();
            for (i, s) in steps.into_iter().enumerate() {
                let id = i as u64 + 1;
                match s {
                    Step::Put(k, note) => {
                        let old = map.put(row(id, k, note));
                        let expected = model.insert(Key::BigInt(k), row(id, k, note));
                        prop_assert_eq!(old, expected.as_ref().map(|o| o.row_id));
                        dead.extend(expected.map(|o| o.row_id));
                    }
                    Step::Remove(k) => {
                        let old = map.remove(&Key::BigInt(k));
                        let expected = model.remove(&Key::BigInt(k));
                        prop_assert_eq!(old, expected.as_ref().map(|o| o.row_id));
                        dead.extend(expected.map(|o| o.row_id));
                    }
                    Step::Swap(k, note) => {
                        if let Some(old) = map.get(&Key::BigInt(k)) {
                            let whole = matches!(old.values[1], Value::Text(_));
                            let new = row(old.row_id, k, note);
                            // Only a whole row is ever the live `Arc` a swap replaces.
                            prop_assert_eq!(map.swap_version(&old, &new), whole);
                            prop_assert!(!map.swap_version(&old, &new), "replaced already");
                            if whole {
                                model.insert(Key::BigInt(k), new);
                            }
                        }
                    }
                }
                prop_assert_eq!(map.len(), model.len());
                // Every bare position is found by its key and by its id, once.
                prop_assert_eq!(map.bare_by_key.len(), map.bare.len());
                prop_assert_eq!(map.bare_by_id.len(), map.bare.len());
                for (i, &(k, id)) in map.bare.iter().enumerate() {
                    prop_assert_eq!(map.bare_at_key(map.hash_key(KeyRef::BigInt(k)), k), Some(i));
                    prop_assert_eq!(map.bare_at_id(id), Some(i));
                }
            }
            for (k, r) in &model {
                prop_assert_eq!(&map.get(k).unwrap(), r);
                prop_assert_eq!(&map.get_id(r.row_id).unwrap(), r);
            }
            for id in dead {
                prop_assert!(!map.contains_id(id) && map.get_id(id).is_none());
            }
            let mut rows: Vec<Arc<Row>> = map.rows().collect();
            rows.sort_by_key(|r| r.row_id);
            let mut want: Vec<Arc<Row>> = model.values().cloned().collect();
            want.sort_by_key(|r| r.row_id);
            prop_assert_eq!(rows, want);
            let mut ids: Vec<u64> = map.ids().collect();
            ids.sort_unstable();
            let mut want_ids: Vec<u64> = model.values().map(|r| r.row_id).collect();
            want_ids.sort_unstable();
            prop_assert_eq!(ids, want_ids);
        }
    }

    /// Only a BIGINT key with NULL everywhere else is held bare, and it reads back equal.
    #[test]
    fn bare_rows_are_bigint_keys_with_nothing_else() {
        let mut map = RowMap::new(2, 1);
        let text_key =
            Arc::new(Row::new(1, 1, Box::new([Value::Null, Value::Text("k".into())])).unwrap());
        let bare = Arc::new(Row::new(2, 1, Box::new([Value::Null, Value::BigInt(5)])).unwrap());
        map.put(text_key.clone());
        map.put(bare.clone());
        assert_eq!((map.by_key.len(), map.bare.len()), (1, 1));
        assert_eq!(map.get(&Key::from("k")).unwrap(), text_key);
        assert_eq!(map.get(&Key::BigInt(5)).unwrap(), bare);
        assert_eq!(map.get_id(2).unwrap(), bare);
        assert!(map.get(&Key::BigInt(1)).is_none() && map.get_id(3).is_none());
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
        let mut map = RowMap::new(2, 0);
        for k in 0..1000 {
            map.put(row(k as u64, k, k % 3 == 0));
            if k % 100 == 0 {
                map.reserve(300, 200);
            }
        }
        assert!((0..1000).all(|k| map.get(&Key::BigInt(k)).is_some() && map.contains_id(k as u64)));
    }
}
