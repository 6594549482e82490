//! A segment: the HNSW graphs (one per indexed vector column) over a set of row versions of one
//! shard. A shard has one *appendable* segment, which grows as rows arrive, and a few *sealed*
//! ones, which take no new rows (deletes only tombstone them).
//!
//! Rows themselves (scalars and vectors) live in the shard's row map and in the store's `rows`
//! column family; a segment holds graphs and the ids of the row versions they cover. A row
//! version is live when the shard's row map points at its id; a segment's other ids are
//! tombstones (deleted in the graphs so searches skip them, still traversed). A live row leaves
//! a vector to a segment's graph that has a node for its version when that graph stores
//! vectors as given (all but an old cosine graph: [`Segment::raw_vector`]), so memory holds it once: rows loaded
//! from sealed segments, and linked versions of any segment, appendable or sealed, once an
//! optimizer pass reaches them (`Table::release_vectors`, up to a per-segment watermark into
//! the linked ids: [`Segment::unreleased`]); versions in a tail keep theirs until linked. The
//! row reads NULL there until `Shard::full_row` fills it in (the graph's vector reads never
//! wait behind its writers: `HnswIndex::vector_into`).
//!
//! **Unindexed tail.** A segment's row versions are either *linked* (nodes of its graphs) or in
//! its *tail*: versions that arrived by WAL replay, by loading rows no blob covers, or by a
//! small live write, and wait for the background linker ([`Segment::link_tail`], chunks
//! through `HnswIndex::insert_batch`). Searches cover the tail by exact search
//! ([`Segment::search_tail`]) and the graphs by HNSW. A linker inserts a chunk into the graphs
//! *before* it leaves the tail, and a search scans the tail *before* the graphs, so a search
//! racing a linker sees each version at least once (duplicates are merged by row id).
//!
//! Persistence: a segment serializes to one blob (see [`PersistGuard::write_to`]) covering its
//! linked versions only, streamed in pieces into chunks of the store's `index` column family
//! (never held whole in memory), with a manifest. Tail
//! versions are not in the blob: on load they are rows no blob covers, and go to the appendable
//! segment's tail again. A sealed segment is written by the background only once its tail is
//! empty (a checkpoint may write a partial blob, rewritten once the tail is linked).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::catalog::{TableSchema, Value, VectorIndexDef};
use crate::codec::{put_str, put_u32, put_u64, Reader};
use crate::error::{EngineError, Result};
use crate::index::{HnswIndex, HnswParams, Metric};
use crate::table::Row;

/// Magic and version of the segment blob format.
const SEGMENT_MAGIC: &[u8; 8] = b"VELASEG2";

/// One HNSW index of a segment, on the column at `column` (position in the schema).
pub(crate) struct SegmentIndex {
    pub column: usize,
    pub name: String,
    pub index: HnswIndex,
}

/// The row versions of a segment.
#[derive(Default)]
struct Members {
    /// Versions linked into the graphs (live or not), in link order.
    linked: Vec<u64>,
    /// Versions not linked yet, in arrival order.
    tail: Vec<Arc<Row>>,
    /// Versions ever removed from the front of `tail` (tail position `i` is sequence number
    /// `front + i`).
    front: u64,
    /// Per index of the segment (same order): the tail's vectors of its column, contiguous, so
    /// an exact search reads memory in order instead of chasing three pointers per row.
    columns: Vec<TailColumn>,
}

/// The tail's vectors of one indexed column.
#[derive(Default)]
struct TailColumn {
    /// Sequence number of the row of each vector (rows whose column is NULL have none).
    seq: Vec<u64>,
    /// The vectors, row-major.
    data: Vec<f32>,
}

impl Members {
    /// Appends rows to the tail; `indexes` are the segment's (their columns are read in place:
    /// no list of positions is built per call, which WAL replay makes once per entry).
    fn push_tail(&mut self, indexes: &[SegmentIndex], rows: impl IntoIterator<Item = Arc<Row>>) {
        if self.columns.len() != indexes.len() {
            self.columns.resize_with(indexes.len(), TailColumn::default);
        }
        for row in rows {
            let seq = self.front + self.tail.len() as u64;
            for (c, ix) in self.columns.iter_mut().zip(indexes) {
                if let Some(Value::Vector(v)) = row.values.get(ix.column) {
                    c.seq.push(seq);
                    c.data.extend_from_slice(v);
                }
            }
            self.tail.push(row);
        }
    }

    /// Removes the first `n` tail rows.
    fn drain_front(&mut self, n: usize) {
        self.tail.drain(..n.min(self.tail.len()));
        self.front += n as u64;
        let front = self.front;
        for c in &mut self.columns {
            let gone = c.seq.partition_point(|&s| s < front);
            let dim = c.data.len().checked_div(c.seq.len()).unwrap_or(0);
            c.seq.drain(..gone);
            c.data.drain(..gone * dim);
            trim(&mut c.seq);
            trim(&mut c.data);
        }
        trim(&mut self.tail);
    }

    /// Keeps the tail rows `keep` accepts (columns rebuilt).
    fn retain_tail(&mut self, indexes: &[SegmentIndex], keep: impl Fn(&Row) -> bool) {
        let rows: Vec<Arc<Row>> = std::mem::take(&mut self.tail)
            .into_iter()
            .filter(|r| keep(r))
            .collect();
        self.columns.clear();
        self.push_tail(indexes, rows);
    }
}

/// Gives back most of a tail list's memory once it has drained to under a quarter of its
/// capacity (to twice its length, room for the next appends). Without this, every segment
/// kept the tail buffers of its largest backlog for good: a sealed segment's tail is empty,
/// but its vectors' buffer could still hold thousands of rows' worth (~40 MiB over a 1M-row
/// import).
fn trim<T>(list: &mut Vec<T>) {
    if list.len() < list.capacity() / 4 {
        list.shrink_to(list.len() * 2);
    }
}

/// A segment of a shard.
pub(crate) struct Segment {
    pub id: u64,
    pub indexes: Vec<SegmentIndex>,
    members: RwLock<Members>,
    /// Held while a chunk of the tail is linked and while the blob is serialized, so a blob's
    /// graphs hold exactly its linked ids.
    linking: Mutex<()>,
    /// Set once the segment takes no more rows.
    sealed: AtomicBool,
    /// Number of ids when the segment was last persisted (a blob covering them exists).
    persisted_len: AtomicU64,
    /// How many of the linked ids (a prefix, in link order) `Table::release_vectors` has
    /// been through: their live rows were given versions that leave their vectors to the
    /// graphs.
    released: AtomicUsize,
}

pub(crate) fn params_of(def: &VectorIndexDef) -> HnswParams {
    HnswParams {
        m: def.hnsw.m,
        ef_construction: def.hnsw.ef_construction,
        ..HnswParams::default()
    }
}

impl Segment {
    /// An empty segment with one index per index definition of `schema`.
    pub fn new(id: u64, schema: &TableSchema) -> Result<Self> {
        let mut indexes = Vec::new();
        for def in &schema.indexes {
            let (column, col) = schema.column(&def.column).ok_or_else(|| {
                EngineError::Corrupt(format!("index on missing column {}", def.column))
            })?;
            let dim = col.ty.vector_dim().unwrap_or(0);
            indexes.push(SegmentIndex {
                column,
                name: def.name.clone(),
                index: HnswIndex::new(dim, def.metric, params_of(def))?,
            });
        }
        Ok(Segment {
            id,
            indexes,
            members: RwLock::new(Members::default()),
            linking: Mutex::new(()),
            sealed: AtomicBool::new(false),
            persisted_len: AtomicU64::new(0),
            released: AtomicUsize::new(0),
        })
    }

    pub fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }
    pub fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
    }
    /// Whether linked versions remain that `Table::release_vectors` has not been through
    /// (their live rows may still hold copies of vectors this segment's graphs hold). Any
    /// segment qualifies, the appendable one too: a filter may fetch a vector from a graph its
    /// own search holds read-locked while a writer waits to append to it
    /// (`HnswIndex::vector_into`).
    pub fn releasable(&self) -> bool {
        self.released.load(Ordering::Acquire) < self.members.read().linked.len()
    }
    /// The linked versions `Table::release_vectors` has not been through, with their position
    /// in the linked ids (the watermark).
    pub fn unreleased(&self) -> (usize, Vec<u64>) {
        let m = self.members.read();
        let from = self.released.load(Ordering::Acquire).min(m.linked.len());
        (from, m.linked[from..].to_vec())
    }
    /// Records that the live rows of the first `upto` linked versions no longer hold the
    /// vectors this segment's graphs hold (the watermark only moves forward).
    pub fn mark_released(&self, upto: usize) {
        self.released.fetch_max(upto, Ordering::AcqRel);
    }
    /// Row versions ever added (linked and tail).
    pub fn len(&self) -> usize {
        let m = self.members.read();
        m.linked.len() + m.tail.len()
    }
    /// Row versions waiting in the tail.
    pub fn tail_len(&self) -> usize {
        self.members.read().tail.len()
    }
    /// Whether every id is covered by the last persisted blob.
    pub fn is_persisted(&self) -> bool {
        self.persisted_len.load(Ordering::Acquire) == self.len() as u64
    }
    pub fn mark_persisted(&self, len: u64) {
        self.persisted_len.store(len, Ordering::Release);
    }
    /// Every row version id of the segment, linked ones first, then the tail's.
    pub fn ids(&self) -> Vec<u64> {
        let m = self.members.read();
        let mut ids = Vec::with_capacity(m.linked.len() + m.tail.len());
        ids.extend_from_slice(&m.linked);
        ids.extend(m.tail.iter().map(|r| r.row_id));
        ids
    }

    /// Adds one row version: its vectors go into each index whose column is not NULL.
    pub fn insert(&self, row_id: u64, values: &[Value]) -> Result<()> {
        if self.indexes.is_empty() {
            return Ok(());
        }
        for ix in &self.indexes {
            if let Some(Value::Vector(v)) = values.get(ix.column) {
                if !ix.index.contains(row_id) {
                    ix.index.insert(row_id, v)?;
                }
            }
        }
        self.members.write().linked.push(row_id);
        Ok(())
    }

    /// Adds row versions in bulk: every index links the non-NULL vectors of the rows `keep`
    /// accepts with [`HnswIndex::insert_batch`] (in parallel on the current rayon pool); the
    /// others count as linked tombstones. Every id joins the linked ids.
    pub fn insert_rows(&self, rows: &[Arc<Row>], keep: &dyn Fn(&Row) -> bool) -> Result<()> {
        if self.indexes.is_empty() || rows.is_empty() {
            return Ok(());
        }
        self.link_rows(rows, keep)?;
        self.members
            .write()
            .linked
            .extend(rows.iter().map(|r| r.row_id));
        Ok(())
    }

    fn link_rows(&self, rows: &[Arc<Row>], keep: &dyn Fn(&Row) -> bool) -> Result<()> {
        for ix in &self.indexes {
            let dim = ix.index.dim();
            let mut ids = Vec::with_capacity(rows.len());
            let mut vectors = Vec::with_capacity(rows.len() * dim);
            for r in rows {
                if let Some(Value::Vector(v)) = r.values.get(ix.column) {
                    if keep(r) && !ix.index.contains(r.row_id) {
                        ids.push(r.row_id);
                        vectors.extend_from_slice(v);
                    }
                }
            }
            ix.index.insert_batch(&ids, &vectors)?;
        }
        Ok(())
    }

    /// Adds row versions to the tail: searchable at once (exactly), linked later.
    pub fn append_tail(&self, rows: impl IntoIterator<Item = Arc<Row>>) {
        if !self.indexes.is_empty() {
            self.members.write().push_tail(&self.indexes, rows);
        }
    }

    /// Removes versions of a rejected batch from the tail.
    pub fn remove_from_tail(&self, ids: &HashSet<u64>) {
        let _linker = self.linking.lock();
        self.members
            .write()
            .retain_tail(&self.indexes, |r| !ids.contains(&r.row_id));
    }

    /// Links the oldest `max` versions of the tail into the graphs ([`Segment::insert_rows`]
    /// with `live` deciding, once for the chunk, which versions still deserve a node) and only
    /// then moves them from the tail to the linked ids. Returns the ids moved (the caller
    /// tombstones those that died while they were linked).
    pub fn link_tail(
        &self,
        max: usize,
        live: &dyn Fn(&[Arc<Row>]) -> Vec<bool>,
    ) -> Result<Vec<u64>> {
        let _linker = self.linking.lock();
        let chunk: Vec<Arc<Row>> = self.members.read().tail.iter().take(max).cloned().collect();
        if chunk.is_empty() {
            return Ok(Vec::new());
        }
        let alive: HashSet<u64> = chunk
            .iter()
            .zip(live(&chunk))
            .filter(|(_, l)| *l)
            .map(|(r, _)| r.row_id)
            .collect();
        self.link_rows(&chunk, &|r| alive.contains(&r.row_id))?;
        let ids: Vec<u64> = chunk.iter().map(|r| r.row_id).collect();
        let mut m = self.members.write();
        // Only linkers (holding `linking`) remove from the tail, and appends go to its end, so
        // the chunk is still its prefix.
        let prefix = m.tail.len() >= chunk.len()
            && m.tail.iter().zip(&chunk).all(|(a, b)| Arc::ptr_eq(a, b));
        if !prefix {
            return Err(EngineError::Corrupt(format!(
                "segment {}: the tail changed under its linker",
                self.id
            )));
        }
        m.drain_front(chunk.len());
        m.linked.extend_from_slice(&ids);
        Ok(ids)
    }

    /// The `k` nearest tail versions `visible` accepts, by exact search on column position
    /// `column` under `metric`, nearest first. Distances are computed for every tail version;
    /// `visible` (a row-map lookup and the user's filter) only for candidates taken in distance
    /// order until `k` pass.
    pub fn search_tail(
        &self,
        column: usize,
        metric: Metric,
        query: &[f32],
        k: usize,
        visible: &dyn Fn(&Row) -> bool,
    ) -> Vec<(f32, Arc<Row>)> {
        let m = self.members.read();
        let Some(j) = self.indexes.iter().position(|i| i.column == column) else {
            return Vec::new();
        };
        let Some(col) = m.columns.get(j).filter(|c| !c.seq.is_empty() && k > 0) else {
            return Vec::new();
        };
        let dim = col.data.len() / col.seq.len();
        let mut cands: Vec<(f32, u32)> = col
            .data
            .chunks_exact(dim)
            .zip(&col.seq)
            .map(|(v, &seq)| (metric.distance(query, v), (seq - m.front) as u32))
            .collect();
        let order = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        let mut hits = Vec::with_capacity(k);
        let mut start = 0;
        while hits.len() < k && start < cands.len() {
            let rest = &mut cands[start..];
            let take = (2 * (k - hits.len())).max(16).min(rest.len());
            if take < rest.len() {
                rest.select_nth_unstable_by(take - 1, order);
            }
            let batch = &mut rest[..take];
            batch.sort_unstable_by(order);
            for &(d, i) in batch.iter() {
                if let Some(r) = m.tail.get(i as usize).filter(|r| visible(r)) {
                    hits.push((d, r.clone()));
                    if hits.len() == k {
                        break;
                    }
                }
            }
            start += take;
        }
        hits
    }

    /// Tombstones a row version in every index (no-op for ids this segment does not hold).
    pub fn delete(&self, row_id: u64) {
        for ix in &self.indexes {
            ix.index.delete(row_id);
        }
    }

    /// The index on column position `column`.
    pub fn index_on(&self, column: usize) -> Option<&HnswIndex> {
        self.indexes
            .iter()
            .find(|i| i.column == column)
            .map(|i| &i.index)
    }

    /// The vector of version `row_id` in column position `col` exactly as it was written, from
    /// a graph of this segment that stores vectors as given (`HnswIndex::holds_given`: every
    /// graph but a cosine one loaded from a format-1 blob, which holds them normalised). `None`
    /// if no such graph has a node for the version.
    pub fn raw_vector(&self, row_id: u64, col: usize) -> Option<Vec<f32>> {
        self.indexes
            .iter()
            .filter(|i| i.column == col && i.index.holds_given())
            .find_map(|i| i.index.vector(row_id))
    }

    /// [`Segment::raw_vector`] into `out` (reusing its allocation); whether it was found.
    pub fn raw_vector_into(&self, row_id: u64, col: usize, out: &mut Vec<f32>) -> bool {
        self.indexes
            .iter()
            .filter(|i| i.column == col && i.index.holds_given())
            .any(|i| i.index.vector_into(row_id, out))
    }

    /// Whether a graph of this segment that stores vectors as given has a node for version
    /// `row_id` in column position `col` (see [`Segment::raw_vector`]).
    pub fn has_raw_vector(&self, row_id: u64, col: usize) -> bool {
        self.indexes
            .iter()
            .any(|i| i.column == col && i.index.holds_given() && i.index.contains(row_id))
    }

    /// Holds the segment for persisting: while the guard lives no linker changes its linked
    /// ids or graphs, and no other persist of it runs. `None` when `wait` is false and a
    /// linker is busy with the tail (the graphs hold versions the ids do not list yet).
    pub fn lock_for_persist(&self, wait: bool) -> Option<PersistGuard<'_>> {
        let linker = if wait {
            self.linking.lock()
        } else {
            self.linking.try_lock()?
        };
        Some(PersistGuard {
            seg: self,
            _linker: linker,
        })
    }

    /// Loads a segment serialized by [`PersistGuard::write_to`] for `schema`. `live` says which ids
    /// are live; the others are tombstoned. An index of the blob that the schema no longer has
    /// is skipped; one the schema has but the blob lacks is rebuilt empty (the caller inserts
    /// uncovered rows).
    pub fn from_bytes(
        bytes: &[u8],
        schema: &TableSchema,
        live: &dyn Fn(u64) -> bool,
    ) -> Result<Self> {
        let mut r = Reader::new(bytes);
        if r.bytes(8)? != SEGMENT_MAGIC {
            return Err(EngineError::Corrupt("segment blob: bad magic".into()));
        }
        let id = r.u64()?;
        let mut seg = Segment::new(id, schema)?;
        let n = r.len(8)?;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(r.u64()?);
        }
        let nix = r.len(1)?;
        for _ in 0..nix {
            let name = r.str()?;
            let _column = r.u32()?;
            let len = r.u64()? as usize;
            let graph = r.bytes(len)?;
            if let Some(t) = seg.indexes.iter_mut().find(|i| i.name == name) {
                let index = HnswIndex::from_bytes(graph)?;
                if index.dim() == t.index.dim() && index.metric() == t.index.metric() {
                    t.index = index;
                }
            }
        }
        let len = ids.len() as u64;
        for &d in ids.iter().filter(|i| !live(**i)) {
            seg.delete(d);
        }
        seg.members.get_mut().linked = ids;
        seg.mark_persisted(len);
        Ok(seg)
    }

    /// Ids of this segment (linked and tail), as a set.
    pub fn id_set(&self) -> HashSet<u64> {
        self.ids().into_iter().collect()
    }
}

/// A segment held for persisting (see [`Segment::lock_for_persist`]).
pub struct PersistGuard<'a> {
    seg: &'a Segment,
    _linker: parking_lot::MutexGuard<'a, ()>,
}

impl PersistGuard<'_> {
    /// Streams the segment's blob into `w`: magic, segment id, the linked ids, then each
    /// index's name, column and graph (`HnswIndex::write_to`: vectors, graph, id map,
    /// tombstones, checksummed; its length first), so loading needs no rebuild. The tail is not
    /// included. Memory: the ids plus the graph writer's 64 KiB pieces, whatever the blob's
    /// size. Returns the number of ids the blob covers.
    pub fn write_to(&self, w: &mut dyn std::io::Write) -> std::io::Result<u64> {
        let seg = self.seg;
        let ids = seg.members.read().linked.clone();
        let mut head = Vec::with_capacity(24 + ids.len() * 8);
        head.extend_from_slice(SEGMENT_MAGIC);
        put_u64(&mut head, seg.id);
        put_u32(&mut head, ids.len() as u32);
        for id in &ids {
            put_u64(&mut head, *id);
        }
        put_u32(&mut head, seg.indexes.len() as u32);
        w.write_all(&head)?;
        for ix in &seg.indexes {
            head.clear();
            put_str(&mut head, &ix.name);
            put_u32(&mut head, ix.column as u32);
            w.write_all(&head)?;
            ix.index.write_to(w, true)?;
        }
        Ok(ids.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::schema;

    fn rows(n: u64) -> Vec<Arc<Row>> {
        (0..n)
            .map(|i| {
                let v: Vec<f32> = (0..3).map(|d| ((i * 31 + d * 7) % 101) as f32).collect();
                let values = vec![
                    Value::BigInt(i as i64),
                    if i % 10 == 3 {
                        Value::Null
                    } else {
                        Value::Vector(v)
                    },
                ];
                Arc::new(Row::new(i, 0, values.into_boxed_slice()).unwrap())
            })
            .collect()
    }

    /// Exact top 5 of the tail (as `(distance, id)`) vs brute force over `rows` accepted by
    /// `keep` and `visible`.
    fn check_top5(seg: &Segment, rows: &[Arc<Row>], keep: &dyn Fn(u64) -> bool, modulus: u64) {
        let q = [50.0, 20.0, 70.0];
        let visible = |r: &Row| r.row_id.is_multiple_of(modulus);
        let got: Vec<(f32, u64)> = seg
            .search_tail(1, Metric::L2, &q, 5, &visible)
            .iter()
            .map(|(d, r)| (*d, r.row_id))
            .collect();
        let mut want: Vec<(f32, u64)> = rows
            .iter()
            .filter(|r| visible(r) && keep(r.row_id))
            .filter_map(|r| match &r.values[1] {
                Value::Vector(v) => Some((Metric::L2.distance(&q, v), r.row_id)),
                _ => None,
            })
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        want.truncate(5);
        assert_eq!(got, want, "visible: id % {modulus} == 0");
    }

    /// The tail search equals brute force under selective visibility (several candidate
    /// rounds), also after a linked prefix and a rejected batch left the tail; linking in
    /// chunks moves every version (dead ones get no node).
    #[test]
    fn tail_search_is_brute_force_and_linking_keeps_every_version() {
        let seg = Segment::new(1, &schema()).unwrap();
        let all = rows(1000);
        seg.append_tail(all.iter().cloned());
        for modulus in [1u64, 2, 97, 1001] {
            check_top5(&seg, &all, &|_| true, modulus);
        }
        // Versions 500.. are dead: they get no node but are moved all the same.
        let live = |rs: &[Arc<Row>]| rs.iter().map(|r| r.row_id < 500).collect();
        let mut moved = seg.link_tail(300, &live).unwrap().len();
        check_top5(&seg, &all, &|id| id >= 300, 1);
        let rejected: HashSet<u64> = (600..700).collect();
        seg.remove_from_tail(&rejected);
        for modulus in [1u64, 3] {
            check_top5(
                &seg,
                &all,
                &|id| id >= 300 && !rejected.contains(&id),
                modulus,
            );
        }
        loop {
            let n = seg.link_tail(300, &live).unwrap().len();
            if n == 0 {
                break;
            }
            moved += n;
        }
        assert_eq!((moved, seg.tail_len(), seg.len()), (900, 0, 900));
        assert!(seg
            .search_tail(1, Metric::L2, &[0.0; 3], 5, &|_| true)
            .is_empty());
        let index = seg.index_on(1).unwrap();
        assert_eq!(index.len(), 450, "live rows with a vector");
        assert!(index.contains(0) && !index.contains(3) && !index.contains(600));
        // The drained tail gave its buffers back.
        let m = seg.members.read();
        let held = m.tail.capacity() + m.columns.iter().map(|c| c.data.capacity()).sum::<usize>();
        assert_eq!(held, 0, "an empty tail holds no memory");
    }

    /// Accepts `room` bytes, then fails (a store write failing mid-blob).
    struct FailAfter {
        room: usize,
        got: Vec<u8>,
    }

    impl std::io::Write for FailAfter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::other("full"));
            }
            let n = b.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The streamed blob is byte for byte the format the loader reads (magic, id, ids, then
    /// each index's name, column, length and `HnswIndex::to_bytes`), round-trips, and a sink
    /// failing mid-way is an error, not a short blob.
    #[test]
    fn streamed_blob_is_the_loaded_format_and_sink_errors_surface() {
        let seg = Segment::new(7, &schema()).unwrap();
        let all = rows(3000);
        seg.append_tail(all.iter().cloned());
        let live = |rs: &[Arc<Row>]| rs.iter().map(|r| r.row_id != 5).collect();
        while !seg.link_tail(1000, &live).unwrap().is_empty() {}
        let mut streamed = Vec::new();
        let n = seg
            .lock_for_persist(true)
            .unwrap()
            .write_to(&mut streamed)
            .unwrap();
        assert_eq!(n, 3000);

        let mut want = Vec::new();
        want.extend_from_slice(SEGMENT_MAGIC);
        put_u64(&mut want, 7);
        put_u32(&mut want, 3000);
        for id in 0..3000u64 {
            put_u64(&mut want, id);
        }
        put_u32(&mut want, seg.indexes.len() as u32);
        for ix in &seg.indexes {
            let g = ix.index.to_bytes();
            put_str(&mut want, &ix.name);
            put_u32(&mut want, ix.column as u32);
            put_u64(&mut want, g.len() as u64);
            want.extend_from_slice(&g);
        }
        assert!(want.len() > 64 << 10, "several 64 KiB pieces");
        assert_eq!(streamed, want);

        let back = Segment::from_bytes(&streamed, &schema(), &|i| i != 5).unwrap();
        assert_eq!(back.ids(), seg.ids());
        let index = back.index_on(1).unwrap();
        assert!(index.contains(0) && !index.contains(3) && !index.contains(5));

        // A linker holds the segment: no snapshot without waiting.
        let busy = seg.linking.lock();
        assert!(seg.lock_for_persist(false).is_none());
        drop(busy);
        for room in [0, 10, 70_000] {
            let mut sink = FailAfter {
                room,
                got: Vec::new(),
            };
            let guard = seg.lock_for_persist(false).unwrap();
            assert!(guard.write_to(&mut sink).is_err(), "room {room}");
            assert_eq!(sink.got[..], want[..room]);
        }
    }
}
