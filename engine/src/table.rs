//! A table at run time: its schema, its shards (row maps + segments) and the deterministic
//! application of a write batch.
//!
//! Visibility: a table's shards sit behind one `RwLock`. Applying a batch prepares everything
//! outside it (new versions go into the appendable segments' graphs or unindexed tails under
//! ids no reader can see yet, because readers only accept ids present in the row maps), writes
//! the store, and then takes the write lock only to swap the row-map entries. Readers hold the
//! read lock for a whole search or scan, so they see a prefix of applied batches, never half
//! of one. The background linker (`Table::link_some`) takes the lock only briefly, to learn
//! which tail versions are dead, never while it links.
//!
//! Vectors held once: a live row whose version is linked into a segment's graph (appendable or
//! sealed) holds no copy of a vector that the graph holds as given (`Table::aside` columns)
//! once an optimizer pass has reached it: rows loaded from sealed segments come that way, and
//! [`Table::release_vectors`] (run by each optimizer pass) replaces the versions linked since
//! by such lighter ones. Versions in a tail keep theirs until linked. Every read fills the
//! vectors back in ([`Shard::full_row`], [`Shard::accepts`]), also from a filter running inside
//! a search of the very graph it reads (`HnswIndex::vector_into` never waits behind a writer).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::backend::{Cf, StoreWrite};
use crate::catalog::{ColumnType, Key, KeyRef, ScalarType, TableSchema, Value};
use crate::codec::{put_row_key, put_row_value, with_encoded_key, Op};
use crate::error::{EngineError, Result};
use crate::metrics::{ShardCounters, TableCounters};
use crate::rowmap::{hash_row_id, RowMap};
use crate::search::RowPredicate;
use crate::segment::Segment;

/// Batches with at least this many new rows insert their vectors in parallel.
const PARALLEL_PREPARE_ROWS: usize = 256;

/// Versions [`Table::release_vectors`] looks up under the read lock, then swaps under the write
/// lock, at a time (about a millisecond of map work per lock).
const RELEASE_CHUNK: usize = 4096;

/// Live versions, each with its lighter replacement ([`Table::release_vectors`]).
type Lighter = Vec<(Arc<Row>, Arc<Row>)>;

/// Most operations one batch may hold (row ids are `lsn << 20 | position`).
pub const MAX_BATCH_OPS: usize = 1 << 20;

/// One live row version. The key is not stored apart: it is the value at the primary key's
/// position (a row is one allocation of 48 bytes plus its values; it used to carry a copy of
/// its key, 32 bytes more, at a million rows ~30 MiB).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Unique id of this version: `lsn << 20 | position in the batch`.
    pub row_id: u64,
    /// Every column's value, in schema order (vectors as `Value::Vector`).
    pub values: Box<[Value]>,
    /// Position of the primary key in `values`; that value is a `BigInt` or a `Text`
    /// ([`Row::new`] checks it, and the values of a row never change).
    pk: u32,
}

impl Row {
    /// Version `row_id` of the row `values`, whose primary key is at position `pk`.
    pub(crate) fn new(row_id: u64, pk: usize, values: Box<[Value]>) -> Result<Row> {
        let pk32 = u32::try_from(pk).ok();
        match (pk32, values.get(pk)) {
            (Some(pk), Some(Value::BigInt(_) | Value::Text(_))) => Ok(Row { row_id, values, pk }),
            (_, v) => Err(EngineError::Corrupt(format!(
                "row {row_id}: primary key at column {pk} is {v:?}, not a BIGINT or TEXT"
            ))),
        }
    }

    /// Version `row_id` of a row of `columns` values, all NULL but its `BIGINT` key at
    /// position `pk` (`pk < columns`; see `RowMap`'s bare rows).
    pub(crate) fn bare(row_id: u64, pk: usize, columns: usize, key: i64) -> Row {
        let mut values = vec![Value::Null; columns.max(pk + 1)];
        values[pk] = Value::BigInt(key);
        Row {
            row_id,
            values: values.into_boxed_slice(),
            pk: pk as u32,
        }
    }

    /// The same version with other `values` of the same key (vectors filled in or left to a
    /// graph).
    pub(crate) fn with_values(&self, values: Box<[Value]>) -> Row {
        debug_assert_eq!(
            values.get(self.pk as usize),
            self.values.get(self.pk as usize)
        );
        Row {
            row_id: self.row_id,
            values,
            pk: self.pk,
        }
    }

    /// The primary key, borrowed.
    pub fn key_ref(&self) -> KeyRef<'_> {
        match self.values.get(self.pk as usize) {
            Some(Value::Text(s)) => KeyRef::Text(s),
            Some(Value::BigInt(v)) => KeyRef::BigInt(*v),
            // `Row::new` admits no other value and rows are never changed in place.
            _ => KeyRef::BigInt(i64::MIN),
        }
    }

    /// The primary key.
    pub fn key(&self) -> Key {
        self.key_ref().to_key()
    }

    /// The LSN of the batch that wrote this version.
    pub fn lsn(&self) -> u64 {
        self.row_id >> 20
    }
}

/// A map keyed by row id. Row ids are made by the engine (`lsn << 20 | position`), never by a
/// user, so a fast non-keyed hash is safe here (user keys keep std's keyed SipHash).
pub(crate) type RowIdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<RowIdHasher>>;

/// The hasher of [`RowIdMap`]: the splitmix64 finaliser of the one `u64` written.
#[derive(Default)]
pub(crate) struct RowIdHasher(u64);

impl std::hash::Hasher for RowIdHasher {
    fn finish(&self) -> u64 {
        hash_row_id(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

thread_local! {
    /// The row a filter sees in [`Shard::accepts`] when vectors must be filled in (its vector
    /// buffers are reused from row to row).
    static FILTER_SCRATCH: std::cell::RefCell<Vec<Value>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A shard: its live rows and its segments.
pub(crate) struct Shard {
    pub rows: RowMap,
    pub appendable: Arc<Segment>,
    pub sealed: Vec<Arc<Segment>>,
}

impl Shard {
    pub fn segments(&self) -> impl Iterator<Item = &Arc<Segment>> {
        std::iter::once(&self.appendable).chain(self.sealed.iter())
    }

    /// Versions waiting in the tails of this shard's segments.
    pub fn tail_rows(&self) -> usize {
        self.segments().map(|g| g.tail_len()).sum()
    }

    /// The vector of version `row_id` in column position `col` as a segment's graph holds it.
    pub fn graph_vector(&self, row_id: u64, col: usize) -> Option<Vec<f32>> {
        // Sealed segments hold the vectors rows leave aside: look there first.
        self.sealed
            .iter()
            .chain(std::iter::once(&self.appendable))
            .find_map(|s| s.raw_vector(row_id, col))
    }

    /// [`Shard::graph_vector`] into `out` (reusing its allocation); whether it was found.
    pub fn graph_vector_into(&self, row_id: u64, col: usize, out: &mut Vec<f32>) -> bool {
        self.sealed
            .iter()
            .chain(std::iter::once(&self.appendable))
            .any(|s| s.raw_vector_into(row_id, col, out))
    }

    /// `row`'s values with the vectors it leaves to the graphs filled in: a column of
    /// `aside` (see [`Table::aside`]) that reads NULL holds the graph's vector when a segment
    /// has a node for the version (a true NULL has none). `None` when nothing was left aside.
    pub fn filled(&self, row: &Row, aside: &[usize]) -> Option<Box<[Value]>> {
        let mut out: Option<Box<[Value]>> = None;
        for &c in aside {
            if let Some(v) = self.left_vector(row.row_id, &row.values, c) {
                let values = out.get_or_insert_with(|| row.values.clone());
                if let Some(slot) = values.get_mut(c) {
                    *slot = Value::Vector(v);
                }
            }
        }
        out
    }

    /// The vector that version `row_id`, whose values are `values`, left to a graph in column
    /// position `c`: its value there reads NULL and a segment has a node for it.
    fn left_vector(&self, row_id: u64, values: &[Value], c: usize) -> Option<Vec<f32>> {
        matches!(values.get(c), Some(Value::Null))
            .then(|| self.graph_vector(row_id, c))
            .flatten()
    }

    /// `row` whole (see [`Shard::filled`]): the same `Arc` when it holds every value.
    pub fn full_row(&self, row: &Arc<Row>, aside: &[usize]) -> Arc<Row> {
        match self.filled(row, aside) {
            Some(values) => Arc::new(row.with_values(values)),
            None => row.clone(),
        }
    }

    /// [`Shard::full_row`] taking the row: one nobody else holds (a bare row just rebuilt by
    /// the row map) gets its vectors filled in place, without a second row allocation.
    pub fn fill_row(&self, mut row: Arc<Row>, aside: &[usize]) -> Arc<Row> {
        let Some(own) = Arc::get_mut(&mut row) else {
            return self.full_row(&row, aside);
        };
        for &c in aside {
            if let Some(v) = self.left_vector(own.row_id, &own.values, c) {
                // Aside columns are vectors, never the key: the row keeps its key.
                if let Some(slot) = own.values.get_mut(c) {
                    *slot = Value::Vector(v);
                }
            }
        }
        row
    }

    /// Whether `row`, whole, passes `filter` (`None`: every row does). `reads`: the columns
    /// the filter reads, if known; a row is filtered as held when the filter reads none of
    /// the vectors it leaves to the graphs. Otherwise the filter sees a per-thread copy of the
    /// row with those vectors filled in (segment `near` first): no allocation per row.
    pub fn accepts(
        &self,
        row: &Row,
        aside: &[usize],
        filter: Option<RowPredicate<'_>>,
        reads: Option<&[usize]>,
        near: Option<&Segment>,
    ) -> bool {
        let Some(f) = filter else {
            return true;
        };
        let left = |c: &usize| {
            reads.is_none_or(|r| r.contains(c)) && matches!(row.values.get(*c), Some(Value::Null))
        };
        if !aside.iter().any(left) {
            return f(&row.values);
        }
        let fill = |scratch: &mut Vec<Value>| {
            scratch.truncate(row.values.len());
            for (i, v) in row.values.iter().enumerate() {
                let wanted = aside.contains(&i) && left(&i);
                match scratch.get_mut(i) {
                    Some(Value::Vector(buf)) if wanted => {
                        let found = near.is_some_and(|s| s.raw_vector_into(row.row_id, i, buf))
                            || self.graph_vector_into(row.row_id, i, buf);
                        if !found {
                            scratch[i] = Value::Null;
                        }
                    }
                    Some(slot) => {
                        *slot = if wanted {
                            self.graph_vector(row.row_id, i)
                                .map_or(Value::Null, Value::Vector)
                        } else {
                            v.clone()
                        }
                    }
                    None => scratch.push(if wanted {
                        self.graph_vector(row.row_id, i)
                            .map_or(Value::Null, Value::Vector)
                    } else {
                        v.clone()
                    }),
                }
            }
        };
        FILTER_SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                fill(&mut scratch);
                f(&scratch)
            }
            // A filter that itself filters rows (re-entered): a fresh copy.
            Err(_) => {
                let mut scratch = Vec::new();
                fill(&mut scratch);
                f(&scratch)
            }
        })
    }
}

/// A table at run time.
pub(crate) struct Table {
    pub id: u64,
    pub schema: TableSchema,
    pub state: RwLock<Vec<Shard>>,
    pub counters: TableCounters,
    pub shard_counters: Vec<ShardCounters>,
    pub next_segment: AtomicU64,
    /// LSN of the last batch published into the row maps (written under the write lock).
    pub published: AtomicU64,
    /// Positions of the indexed vector columns, whose values rows leave to the segments'
    /// graphs where a graph holds the version's vector as given ([`Segment::has_raw_vector`]:
    /// every graph but a cosine one loaded from a format-1 blob, whose rows keep their
    /// copies): rows loaded from sealed segments, and rows whose versions were linked since
    /// ([`Table::release_vectors`]). Such a row reads NULL there, and [`Shard::full_row`]
    /// fills the graph's vector in, bit for bit.
    pub aside: Vec<usize>,
}

/// What a write batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// LSN of the batch's WAL entry (0 when nothing was logged).
    pub lsn: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

/// A planned change to one key: the version it replaces and the new one (`None`: deleted).
pub(crate) struct Change {
    pub shard: usize,
    pub key: Key,
    pub old: Option<Arc<Row>>,
    pub new: Option<Arc<Row>>,
}

/// Stable FNV-1a hash of the encoded key: routes a key to its shard, identically across runs.
pub(crate) fn shard_of(key: &Key, shards: usize) -> usize {
    with_encoded_key(key, |b| shard_of_encoded(b, shards))
}

/// [`shard_of`] given the key's encoding (`codec::put_key`), e.g. straight from a store key.
pub(crate) fn shard_of_encoded(key: &[u8], shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// Checks one row against the schema (pure: no state). Returns its key.
pub(crate) fn validate_row(schema: &TableSchema, row: &[Value]) -> Result<Key> {
    if row.len() != schema.columns.len() {
        return Err(EngineError::InvalidData {
            column: schema.name.clone(),
            reason: format!(
                "row has {} values, table has {} columns",
                row.len(),
                schema.columns.len()
            ),
        });
    }
    for (i, (col, v)) in schema.columns.iter().zip(row).enumerate() {
        let bad = |reason: String| EngineError::InvalidData {
            column: col.name.clone(),
            reason,
        };
        match (col.ty, v) {
            (_, Value::Null) => {
                if !col.nullable || i == schema.primary_key {
                    return Err(bad("NULL in a NOT NULL column".into()));
                }
            }
            (ColumnType::Scalar(ScalarType::BigInt), Value::BigInt(_))
            | (ColumnType::Scalar(ScalarType::Double), Value::Double(_))
            | (ColumnType::Scalar(ScalarType::Text), Value::Text(_))
            | (ColumnType::Scalar(ScalarType::Boolean), Value::Boolean(_))
            | (ColumnType::Scalar(ScalarType::Timestamp), Value::Timestamp(_)) => {}
            (ColumnType::Vector { dim }, Value::Vector(x)) => {
                if x.len() != dim as usize {
                    return Err(bad(format!("expected {dim} dimensions, not {}", x.len())));
                }
                if let Some(p) = x.iter().position(|f| !f.is_finite()) {
                    return Err(bad(format!("component {p} is not finite")));
                }
            }
            (ty, v) => return Err(bad(format!("expected {ty}, got {v:?}"))),
        }
    }
    key_of(schema, row)
}

/// The key of a (validated) row.
pub(crate) fn key_of(schema: &TableSchema, row: &[Value]) -> Result<Key> {
    match row.get(schema.primary_key) {
        Some(Value::BigInt(v)) => Ok(Key::BigInt(*v)),
        Some(Value::Text(s)) => Ok(Key::Text(s.clone())),
        _ => Err(EngineError::InvalidData {
            column: schema.primary_key_column().name.clone(),
            reason: "primary key must be a non-null BIGINT or TEXT".into(),
        }),
    }
}

/// Checks a key's type against the schema.
pub(crate) fn validate_key(schema: &TableSchema, key: &Key) -> Result<()> {
    let ok = matches!(
        (schema.primary_key_column().ty, key),
        (ColumnType::Scalar(ScalarType::BigInt), Key::BigInt(_))
            | (ColumnType::Scalar(ScalarType::Text), Key::Text(_))
    );
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidData {
            column: schema.primary_key_column().name.clone(),
            reason: format!("key {key} has the wrong type"),
        })
    }
}

/// Validates a whole batch before anything is logged.
pub(crate) fn validate_ops(schema: &TableSchema, ops: &[Op]) -> Result<()> {
    if ops.len() > MAX_BATCH_OPS {
        return Err(EngineError::NotPossible(format!(
            "a batch holds at most {MAX_BATCH_OPS} operations, not {}",
            ops.len()
        )));
    }
    for op in ops {
        match op {
            Op::Insert(r) | Op::Upsert(r) | Op::Update(r) => {
                validate_row(schema, r)?;
            }
            Op::Delete(k) => validate_key(schema, k)?,
        }
    }
    Ok(())
}

impl Table {
    /// An empty table with fresh segments.
    pub fn new(id: u64, schema: TableSchema) -> Result<Self> {
        let n = schema.shards as usize;
        let mut shards = Vec::with_capacity(n);
        for s in 0..n {
            shards.push(Shard {
                rows: RowMap::new(schema.columns.len(), schema.primary_key),
                appendable: Arc::new(Segment::new(s as u64 + 1, &schema)?),
                sealed: Vec::new(),
            });
        }
        let mut aside: Vec<usize> = schema
            .indexes
            .iter()
            .filter_map(|d| schema.column(&d.column).map(|(i, _)| i))
            .collect();
        aside.sort_unstable();
        aside.dedup();
        Ok(Table {
            id,
            aside,
            shard_counters: (0..n).map(|_| ShardCounters::default()).collect(),
            schema,
            state: RwLock::new(shards),
            counters: TableCounters::default(),
            next_segment: AtomicU64::new(n as u64 + 1),
            published: AtomicU64::new(0),
        })
    }

    pub fn alloc_segment_id(&self) -> u64 {
        self.next_segment
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Plans a batch against the current state: the final change per key, or the batch's
    /// deterministic rejection (duplicate key on insert).
    /// The rows of `ops` move into the new versions (no copy).
    #[cfg(test)]
    pub fn plan(&self, lsn: u64, mut ops: Vec<Op>) -> Result<(Vec<Change>, WriteOutcome)> {
        let mut changes = Vec::new();
        let out = self.plan_into(lsn, &mut ops, &mut changes)?;
        Ok((changes, out))
    }

    /// [`Table::plan`] into `changes` (cleared first), draining `ops`: both keep their
    /// memory, so the caller can reuse them (WAL replay plans one entry after another into
    /// the same lists).
    pub fn plan_into(
        &self,
        lsn: u64,
        ops: &mut Vec<Op>,
        changes: &mut Vec<Change>,
    ) -> Result<WriteOutcome> {
        let shards = self.state.read();
        let nshards = shards.len();
        // Keys seen earlier in the batch (a one-operation batch, the common case in replay,
        // needs no map).
        let mut overlay: HashMap<Key, usize> = HashMap::new();
        let single = ops.len() == 1;
        changes.clear();
        changes.reserve(ops.len());
        let mut out = WriteOutcome {
            lsn,
            ..Default::default()
        };
        for (i, op) in ops.drain(..).enumerate() {
            let key = match &op {
                Op::Insert(r) | Op::Upsert(r) | Op::Update(r) => key_of(&self.schema, r)?,
                Op::Delete(k) => k.clone(),
            };
            let seen = if single { None } else { overlay.get(&key) };
            let slot = match seen {
                Some(&s) => s,
                None => {
                    let shard = shard_of(&key, nshards);
                    let old = shards.get(shard).and_then(|s| s.rows.get(&key));
                    changes.push(Change {
                        shard,
                        key: key.clone(),
                        new: old.clone(),
                        old,
                    });
                    if !single {
                        overlay.insert(key.clone(), changes.len() - 1);
                    }
                    changes.len() - 1
                }
            };
            let Some(ch) = changes.get_mut(slot) else {
                return Err(EngineError::Corrupt("batch plan slot out of range".into()));
            };
            let version = |values: Vec<Value>| {
                Row::new(
                    (lsn << 20) | i as u64,
                    self.schema.primary_key,
                    values.into_boxed_slice(),
                )
                .map(|r| Some(Arc::new(r)))
            };
            match op {
                Op::Insert(r) => {
                    if ch.new.is_some() {
                        return Err(EngineError::DuplicateKey {
                            table: self.schema.name.clone(),
                            key: key.to_string(),
                        });
                    }
                    ch.new = version(r)?;
                    out.inserted += 1;
                }
                Op::Upsert(r) => {
                    if ch.new.is_some() {
                        out.updated += 1;
                    } else {
                        out.inserted += 1;
                    }
                    ch.new = version(r)?;
                }
                Op::Update(r) => {
                    if ch.new.is_some() {
                        ch.new = version(r)?;
                        out.updated += 1;
                    }
                }
                Op::Delete(_) => {
                    if ch.new.take().is_some() {
                        out.deleted += 1;
                    }
                }
            }
        }
        changes.retain(|c| match (&c.old, &c.new) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            (None, None) => false,
            _ => true,
        });
        Ok(out)
    }

    /// Adds the new versions to the appendable segments, invisible until published (readers
    /// accept only ids of the row maps). With `replay` (WAL replay) they all go to the
    /// segments' unindexed tails ([`Segment::append_tail`]) for the background linker. A live
    /// batch does too for each shard whose tails stay within `tail_limit` rows; elsewhere its
    /// vectors are inserted into the graphs now (in bulk and in parallel for large batches):
    /// that is the back-pressure that bounds the exact-search share of a search. On error,
    /// undoes what was added. Returns whether any version went to a tail.
    pub fn prepare(&self, changes: &[Change], replay: bool, tail_limit: usize) -> Result<bool> {
        if self.schema.indexes.is_empty() {
            return Ok(false);
        }
        let shards = self.state.read();
        // A shard's new versions, in batch order. Counted and streamed from `changes` (a few
        // shards: a pass each) so the tail path, all of replay, allocates no list per shard.
        let new_in = |i: usize| {
            changes
                .iter()
                .filter(move |ch| ch.shard == i)
                .filter_map(|ch| ch.new.clone())
        };
        let mut tailed = false;
        let mut r = Ok(());
        for (i, shard) in shards.iter().enumerate() {
            let n = changes
                .iter()
                .filter(|ch| ch.shard == i && ch.new.is_some())
                .count();
            if n == 0 {
                continue;
            }
            if replay || shard.tail_rows() + n <= tail_limit {
                shard.appendable.append_tail(new_in(i));
                tailed = true;
                continue;
            }
            let rows: Vec<Arc<Row>> = new_in(i).collect();
            if rows.len() >= PARALLEL_PREPARE_ROWS {
                r = shard.appendable.insert_rows(&rows, &|_| true);
            } else {
                r = rows
                    .iter()
                    .try_for_each(|row| shard.appendable.insert(row.row_id, &row.values));
            }
            if r.is_err() {
                break;
            }
        }
        drop(shards);
        if r.is_err() {
            self.unprepare(changes);
        }
        r.map(|_| tailed)
    }

    /// Links up to `max` tail versions of one segment (sealed segments first, so they can be
    /// persisted) into its graphs; versions no longer live get no node, and those that die
    /// while being linked are tombstoned after. Holds the table's read lock only briefly, never
    /// while linking. Returns the versions taken from the tail (0: no tail left).
    pub fn link_some(&self, max: usize) -> Result<usize> {
        let work = {
            let shards = self.state.read();
            shards.iter().enumerate().find_map(|(i, sh)| {
                sh.sealed
                    .iter()
                    .chain(std::iter::once(&sh.appendable))
                    .find(|g| g.tail_len() > 0)
                    .map(|g| (i, g.clone()))
            })
        };
        let Some((shard, seg)) = work else {
            return Ok(0);
        };
        let live = |rows: &[Arc<Row>]| -> Vec<bool> {
            let shards = self.state.read();
            rows.iter()
                .map(|r| !self.is_dead(shards.get(shard), r.row_id))
                .collect()
        };
        let linked = seg.link_tail(max, &live)?;
        let shards = self.state.read();
        for &id in &linked {
            if self.is_dead(shards.get(shard), id) {
                seg.delete(id);
            }
        }
        Ok(linked.len())
    }

    /// Whether a version is dead for good: published (its batch's LSN is at most the last
    /// published one) and no longer in the row map. A version of a batch being applied is in a
    /// tail before it is published, and is not dead. Call under the table's lock.
    fn is_dead(&self, shard: Option<&Shard>, row_id: u64) -> bool {
        row_id >> 20 <= self.published.load(Ordering::Acquire)
            && !shard.is_some_and(|s| s.rows.contains_id(row_id))
    }

    /// Gives the live rows of the versions each segment (appendable or sealed) has linked
    /// since the last pass ([`Segment::unreleased`]) versions that leave the vectors of
    /// `aside` columns to its graphs: same row ids and values, NULL where the graph holds the
    /// vector (`Shard::full_row` fills it back in, bit for bit), so memory holds each such
    /// vector once. Versions in a tail keep theirs until linked. Nothing changes in the store.
    /// Readers and writers are never held up for long: the rows are picked under the read lock
    /// and swapped under the write lock in chunks of [`RELEASE_CHUNK`] (map lookups only); the
    /// new versions are built and the old ones dropped outside any lock. A version replaced
    /// meanwhile (updated, deleted, or released by a racing pass) is left alone. A segment's
    /// watermark stops at its first version not yet published (linked by a batch still being
    /// applied): the next pass takes it from there. Returns the versions replaced.
    pub fn release_vectors(&self) -> usize {
        if self.aside.is_empty() {
            return 0;
        }
        let todo: Vec<(usize, Arc<Segment>)> = self
            .state
            .read()
            .iter()
            .enumerate()
            .flat_map(|(i, sh)| sh.segments().map(move |g| (i, g.clone())))
            .filter(|(_, g)| g.releasable())
            .collect();
        let mut released = 0;
        for (shard, seg) in todo {
            let (mut upto, ids) = seg.unreleased();
            for chunk in ids.chunks(RELEASE_CHUNK) {
                let (swapped, settled) = self.release_chunk(shard, &seg, chunk);
                released += swapped;
                upto += settled;
                if settled < chunk.len() {
                    break;
                }
            }
            seg.mark_released(upto);
        }
        released
    }

    /// [`Table::release_vectors`] for the versions `ids` of `seg` in shard `shard`: the
    /// versions swapped, and how many of `ids` (a prefix) were settled, i.e. published.
    fn release_chunk(&self, shard: usize, seg: &Arc<Segment>, ids: &[u64]) -> (usize, usize) {
        let (lighter, settled) = self.lighter_versions(shard, seg, ids);
        let swapped = self.swap_lighter(shard, seg, &lighter);
        // The old versions (and their vectors) are freed here, outside the lock.
        drop(lighter);
        (swapped, settled)
    }

    /// The live versions among the published prefix of `ids` (the versions of batches whose
    /// row maps are swapped; its length is returned too) that hold a vector `seg`'s graphs
    /// hold, each with its lighter replacement (picked under the read lock, built outside it).
    fn lighter_versions(&self, shard: usize, seg: &Segment, ids: &[u64]) -> (Lighter, usize) {
        let (held, settled): (Vec<Arc<Row>>, usize) = {
            let shards = self.state.read();
            let Some(sh) = shards.get(shard) else {
                return (Vec::new(), 0);
            };
            // Published under the write lock, so stable while the read lock is held.
            let published = self.published.load(Ordering::Acquire);
            let settled = ids
                .iter()
                .position(|&id| id >> 20 > published)
                .unwrap_or(ids.len());
            let held = ids[..settled]
                .iter()
                .filter_map(|&id| sh.rows.get_id(id))
                .filter(|r| self.holds_copy(r))
                .collect();
            (held, settled)
        };
        // Outside the lock: the versions without the vectors the segment's graphs hold (a
        // linked version's node stays as long as the version is live).
        let lighter = held
            .into_iter()
            .filter_map(|old| {
                let left: Vec<usize> = self
                    .aside
                    .iter()
                    .copied()
                    .filter(|&c| {
                        matches!(old.values.get(c), Some(Value::Vector(_)))
                            && seg.has_raw_vector(old.row_id, c)
                    })
                    .collect();
                if left.is_empty() {
                    return None;
                }
                let values = old
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if left.contains(&i) {
                            Value::Null
                        } else {
                            v.clone()
                        }
                    })
                    .collect();
                let new = Arc::new(old.with_values(values));
                Some((old, new))
            })
            .collect();
        (lighter, settled)
    }

    /// Swaps the lighter versions in (under the write lock) where the row maps still point at
    /// the versions they replace and `seg` is still one of the shard's segments.
    fn swap_lighter(
        &self,
        shard: usize,
        seg: &Arc<Segment>,
        lighter: &[(Arc<Row>, Arc<Row>)],
    ) -> usize {
        if lighter.is_empty() {
            return 0;
        }
        let mut swapped = 0;
        {
            let mut shards = self.state.write();
            let Some(sh) = shards.get_mut(shard) else {
                return 0;
            };
            // A merge may have replaced the segment meanwhile: its successor is released by
            // a later pass.
            if !sh.segments().any(|g| Arc::ptr_eq(g, seg)) {
                return 0;
            }
            for (old, new) in lighter {
                if sh.rows.swap_version(old, new) {
                    swapped += 1;
                }
            }
        }
        swapped
    }

    /// Live rows holding their own copy of a vector of an `aside` column (the memory
    /// [`Table::release_vectors`] and the load give back).
    #[cfg(test)]
    pub fn vector_copies(&self) -> usize {
        self.state
            .read()
            .iter()
            .flat_map(|sh| sh.rows.rows())
            .filter(|r| self.holds_copy(r))
            .count()
    }

    /// Whether `row` holds its own copy of a vector of an `aside` column.
    fn holds_copy(&self, row: &Row) -> bool {
        self.aside
            .iter()
            .any(|&c| matches!(row.values.get(c), Some(Value::Vector(_))))
    }

    /// Versions waiting in the tails of this table's segments.
    pub fn tail_rows(&self) -> usize {
        self.state.read().iter().map(Shard::tail_rows).sum()
    }

    /// Removes a prepared (never published) batch's new versions from the appendable segments
    /// (graphs: tombstoned; tails: removed): the batch was rejected after `prepare`.
    pub fn unprepare(&self, changes: &[Change]) {
        if self.schema.indexes.is_empty() {
            return;
        }
        let shards = self.state.read();
        let mut tails: Vec<HashSet<u64>> = vec![HashSet::new(); shards.len()];
        for ch in changes {
            if let (Some(new), Some(t)) = (&ch.new, tails.get_mut(ch.shard)) {
                t.insert(new.row_id);
            }
        }
        // Out of the tails first (no linker runs meanwhile), then out of the graphs, which
        // also covers versions a linker took before.
        for (shard, ids) in shards.iter().zip(&tails) {
            if !ids.is_empty() {
                shard.appendable.remove_from_tail(ids);
                for &id in ids {
                    shard.appendable.delete(id);
                }
            }
        }
    }

    /// The store writes of a planned batch, packed into one buffer (`codec::put_row_key`,
    /// `codec::put_row_value`: no allocation per row).
    pub fn store_ops(&self, changes: &[Change], batch: &mut StoreWrite) {
        for ch in changes {
            let key = |out: &mut Vec<u8>| put_row_key(out, self.id, &ch.key);
            match &ch.new {
                Some(row) => batch.packed.put_with(Cf::Rows, key, |out| {
                    put_row_value(out, row.row_id, &row.values)
                }),
                None => batch.packed.delete_with(Cf::Rows, key),
            }
        }
    }

    /// Swaps a planned batch's row-map entries (under the caller's write guard). Changes routed
    /// to a missing shard were rejected by the caller beforehand.
    fn swap_in(shards: &mut [Shard], changes: &[Change]) {
        for ch in changes {
            let Some(shard) = shards.get_mut(ch.shard) else {
                continue;
            };
            match &ch.new {
                Some(new) => {
                    shard.rows.put(new.clone());
                }
                None => {
                    shard.rows.remove(&ch.key);
                }
            }
        }
    }

    /// Seals the appendable segments past `seal_rows` (under the caller's write guard).
    fn seal_full(&self, shards: &mut [Shard], seal_rows: usize) -> Result<Vec<Arc<Segment>>> {
        let mut sealed = Vec::new();
        if !self.schema.indexes.is_empty() {
            for shard in shards.iter_mut() {
                if shard.appendable.len() >= seal_rows.max(1) {
                    let fresh = Arc::new(Segment::new(self.alloc_segment_id(), &self.schema)?);
                    let old = std::mem::replace(&mut shard.appendable, fresh);
                    old.seal();
                    shard.sealed.push(old.clone());
                    sealed.push(old);
                }
            }
        }
        Ok(sealed)
    }

    /// Tombstones the versions a published batch replaced (readers ignore them already).
    fn tombstone_replaced(shards: &[Shard], changes: &[Change]) {
        for ch in changes {
            if let (Some(old), Some(shard)) = (&ch.old, shards.get(ch.shard)) {
                for seg in shard.segments() {
                    seg.delete(old.row_id);
                }
            }
        }
    }
}

/// Makes planned batches of several tables visible together: every table's write lock is
/// taken, in table-id order (readers hold one table's lock at a time, writers are serialised
/// by the turnstile, so this cannot deadlock), the row maps are swapped, and only then are the
/// locks released; a reader sees all of the batches or none. Then the replaced versions are
/// tombstoned under the read locks. `lsn` is the entry's; it becomes each table's `published`.
/// Returns the segments sealed, with the position in `items` of their table, in input order
/// (empty, so not allocated, for nearly every batch).
pub(crate) fn publish_all(
    lsn: u64,
    items: &[(Arc<Table>, Vec<Change>)],
    seal_rows: usize,
) -> Result<Vec<(usize, Vec<Arc<Segment>>)>> {
    // Every change's shard exists before anything is swapped: no half-published batch.
    for (t, changes) in items {
        let n = t.schema.shards as usize;
        if changes.iter().any(|c| c.shard >= n) {
            return Err(EngineError::Corrupt(
                "change routed to a missing shard".into(),
            ));
        }
    }
    if let [(t, changes)] = items {
        // One table (every entry but a multi-table transaction): no lock ordering needed.
        let mut guard = t.state.write();
        Table::swap_in(&mut guard, changes);
        t.published.fetch_max(lsn, Ordering::AcqRel);
        let sealed = t.seal_full(&mut guard, seal_rows)?;
        let guard = parking_lot::RwLockWriteGuard::downgrade(guard);
        Table::tombstone_replaced(&guard, changes);
        return Ok(if sealed.is_empty() {
            Vec::new()
        } else {
            vec![(0, sealed)]
        });
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| items.get(i).map_or(0, |(t, _)| t.id));
    let mut guards = Vec::with_capacity(items.len());
    for &i in &order {
        if let Some((t, _)) = items.get(i) {
            guards.push((i, t.state.write()));
        }
    }
    for (i, guard) in guards.iter_mut() {
        if let Some((t, changes)) = items.get(*i) {
            Table::swap_in(guard, changes);
            t.published.fetch_max(lsn, Ordering::AcqRel);
        }
    }
    let mut sealed = Vec::new();
    for (i, guard) in guards.iter_mut() {
        if let Some((t, _)) = items.get(*i) {
            let segments = t.seal_full(guard, seal_rows)?;
            if !segments.is_empty() {
                sealed.push((*i, segments));
            }
        }
    }
    sealed.sort_by_key(|(i, _)| *i);
    let readers: Vec<_> = guards
        .into_iter()
        .map(|(i, g)| (i, parking_lot::RwLockWriteGuard::downgrade(g)))
        .collect();
    for (i, guard) in &readers {
        if let Some((_, changes)) = items.get(*i) {
            Table::tombstone_replaced(guard, changes);
        }
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::schema;

    fn vector(i: i64) -> Vec<f32> {
        vec![i as f32 * 0.5, -0.0, (i % 7) as f32 - 3.25]
    }

    /// Applies one batch of upserts of `ids` (every seventh with a NULL vector) the way the
    /// engine does: plan, prepare (tails up to `tail_limit` rows per shard), publish.
    fn upsert(t: &Arc<Table>, lsn: u64, ids: std::ops::Range<i64>, tail_limit: usize) {
        let ops = ids
            .map(|i| {
                let v = if i % 7 == 3 {
                    Value::Null
                } else {
                    Value::Vector(vector(i))
                };
                Op::Upsert(vec![Value::BigInt(i), v])
            })
            .collect();
        let (changes, _) = t.plan(lsn, ops).unwrap();
        t.prepare(&changes, false, tail_limit).unwrap();
        publish_all(lsn, &[(t.clone(), changes)], 20).unwrap();
    }

    /// Every live row, whole, as written (bit for bit).
    fn check_whole(t: &Table, ids: &[i64]) {
        let shards = t.state.read();
        let mut seen = 0;
        for sh in shards.iter() {
            for row in sh.rows.rows() {
                let key = &row.key();
                let Key::BigInt(i) = *key else {
                    panic!("key {key}")
                };
                let full = sh.full_row(&row, &t.aside);
                let want = if i % 7 == 3 {
                    Value::Null
                } else {
                    Value::Vector(vector(i))
                };
                let bits = |v: &Value| match v {
                    Value::Vector(x) => Some(x.iter().map(|f| f.to_bits()).collect::<Vec<_>>()),
                    _ => None,
                };
                assert_eq!(bits(&full.values[1]), bits(&want), "row {i}");
                assert!(sh.rows.get_id(row.row_id).unwrap() == row, "maps agree");
                seen += 1;
            }
        }
        assert_eq!(seen, ids.len());
    }

    /// Rows give their vectors to the graphs once their versions are linked, not before (a
    /// tail's rows keep theirs), in sealed and appendable segments alike; reads stay whole.
    #[test]
    fn rows_release_their_vectors_once_linked() {
        let t = Arc::new(Table::new(1, schema()).unwrap());
        // 60 rows in tails (never linked inline): segments seal with their tails.
        upsert(&t, 1, 0..60, usize::MAX);
        let ids: Vec<i64> = (0..60).collect();
        let with_vector = ids.iter().filter(|i| *i % 7 != 3).count();
        assert!(t.state.read().iter().all(|s| !s.sealed.is_empty()));
        assert_eq!(t.vector_copies(), with_vector);
        assert_eq!(t.release_vectors(), 0, "every version is in a tail");
        // Some versions linked: only theirs are released.
        let linked = t.link_some(16).unwrap();
        let released = t.release_vectors();
        assert!(released > 0 && released <= linked, "{released} of {linked}");
        let copies = |t: &Table| {
            let shards = t.state.read();
            shards
                .iter()
                .flat_map(|sh| {
                    sh.segments()
                        .flat_map(|g| {
                            let tail = g.tail_len();
                            let ids = g.ids();
                            let at = ids.len() - tail;
                            ids.into_iter()
                                .enumerate()
                                .map(move |(i, id)| (i >= at, id))
                        })
                        .filter_map(|(in_tail, id)| sh.rows.get_id(id).map(|r| (in_tail, r)))
                        .filter(|(_, r)| t.holds_copy(r))
                        .map(|(in_tail, _)| in_tail)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<bool>>()
        };
        assert!(
            copies(&t).iter().all(|&in_tail| in_tail),
            "only tail versions hold copies"
        );
        while t.link_some(16).unwrap() > 0 {}
        check_whole(&t, &ids);
        t.release_vectors();
        assert_eq!(t.vector_copies(), 0, "every linked row left its vector");
        assert_eq!(t.release_vectors(), 0, "each version is released once");
        check_whole(&t, &ids);

        // Linked inline: updates of released rows (the old versions die), a merge-free
        // reseal, and rows that changed between the pick and the swap are left alone.
        upsert(&t, 2, 0..30, 0);
        check_whole(&t, &ids);
        let before = t.vector_copies();
        let released = t.release_vectors();
        assert!(before > 0 && released == before);
        assert_eq!(t.vector_copies(), 0, "every linked row left its vector");
        check_whole(&t, &ids);
        // The appendable segments' rows, too.
        let shards = t.state.read();
        let live_appendable = shards
            .iter()
            .flat_map(|sh| sh.appendable.ids().into_iter().map(move |id| (sh, id)))
            .filter(|(sh, id)| sh.rows.contains_id(*id))
            .count();
        assert!(live_appendable > 0, "the test needs live appendable rows");
    }

    /// Versions linked inline by a batch not yet published are not in the row maps: a pass
    /// stops its watermark before them, and a later pass releases them once published.
    #[test]
    fn unpublished_versions_are_released_by_a_later_pass() {
        let t = Arc::new(Table::new(1, schema()).unwrap());
        upsert(&t, 1, 0..10, 0);
        let ops = (11..17)
            .map(|i| Op::Upsert(vec![Value::BigInt(i), Value::Vector(vector(i))]))
            .collect();
        let (changes, _) = t.plan(2, ops).unwrap();
        t.prepare(&changes, false, 0).unwrap();
        // Batch 2 is linked into the appendable graphs, not published.
        let with_vector = (0..10).filter(|i| i % 7 != 3).count();
        assert_eq!(t.release_vectors(), with_vector);
        assert_eq!(t.release_vectors(), 0);
        publish_all(2, &[(t.clone(), changes)], 20).unwrap();
        assert_eq!(t.vector_copies(), 6, "batch 2's rows hold theirs");
        assert_eq!(t.release_vectors(), 6);
        assert_eq!(t.vector_copies(), 0);
        check_whole(&t, &(0..10).chain(11..17).collect::<Vec<_>>());
    }

    /// A version replaced between the pick and the swap keeps the replacement, and a segment
    /// merged away meanwhile releases nothing.
    #[test]
    fn a_release_never_overwrites_a_newer_version() {
        let t = Arc::new(Table::new(1, schema()).unwrap());
        upsert(&t, 1, 0..60, 0);
        let all: Vec<i64> = (0..60).collect();
        let (shard, seg) = {
            let shards = t.state.read();
            let (i, sh) = shards
                .iter()
                .enumerate()
                .find(|(_, s)| !s.sealed.is_empty())
                .unwrap();
            (i, sh.sealed[0].clone())
        };
        let (lighter, _) = t.lighter_versions(shard, &seg, &seg.ids());
        assert!(lighter.len() > 2);
        // Rewritten (same values, new versions) between the pick and the swap.
        let Key::BigInt(k) = lighter[0].0.key() else {
            unreachable!()
        };
        upsert(&t, 2, k..k + 1, 0);
        let copies = t.vector_copies();
        assert_eq!(t.swap_lighter(shard, &seg, &lighter), lighter.len() - 1);
        assert_eq!(t.vector_copies(), copies - (lighter.len() - 1));
        check_whole(&t, &all);
        let shards = t.state.read();
        let Some(row) = shards[shard].rows.get(&Key::BigInt(k)) else {
            panic!("row {k}")
        };
        assert!(t.holds_copy(&row), "the newer version keeps its vector");
        drop(shards);
        // The segment leaves the shard (as a merge's victim would): nothing is swapped.
        assert!(
            t.lighter_versions(shard, &seg, &seg.ids()).0.is_empty(),
            "released already"
        );
        let other = 1 - shard;
        let victim = t.state.read()[other].sealed[0].clone();
        let (lighter, _) = t.lighter_versions(other, &victim, &victim.ids());
        assert!(!lighter.is_empty());
        t.state.write()[other].sealed.clear();
        assert_eq!(t.swap_lighter(other, &victim, &lighter), 0);
    }
}
