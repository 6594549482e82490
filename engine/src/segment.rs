//! A segment: the HNSW graphs (one per indexed vector column) over a set of row versions of one
//! shard. A shard has one *appendable* segment, which grows as rows arrive, and a few *sealed*
//! ones, which take no new rows (deletes only tombstone them).
//!
//! Rows themselves (scalars and vectors) live in the shard's row map and in the store's `rows`
//! column family; a segment only holds graphs and the ids of the row versions they cover. A row
//! version is live when the shard's row map points at its id; a segment's other ids are
//! tombstones (deleted in the graphs so searches skip them, still traversed).
//!
//! Persistence: a segment serializes to one blob (see [`Segment::to_bytes`]), stored in chunks in
//! the store's `index` column family, with a manifest in `meta`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::catalog::{TableSchema, VectorIndexDef};
use crate::codec::{put_str, put_u32, put_u64, Reader};
use crate::error::{EngineError, Result};
use crate::index::{HnswIndex, HnswParams};
use crate::table::Row;

/// Magic and version of the segment blob format.
const SEGMENT_MAGIC: &[u8; 8] = b"VELASEG2";

/// One HNSW index of a segment, on the column at `column` (position in the schema).
pub(crate) struct SegmentIndex {
    pub column: usize,
    pub name: String,
    pub index: HnswIndex,
}

/// A segment of a shard.
pub(crate) struct Segment {
    pub id: u64,
    pub indexes: Vec<SegmentIndex>,
    /// Every row version id ever inserted into this segment (live or not), in insertion order.
    ids: Mutex<Vec<u64>>,
    /// Row versions whose graph inserts are deferred (WAL replay, rows loaded without a
    /// covering blob), in arrival order; [`Segment::flush_deferred`] inserts them in bulk.
    deferred: Mutex<Vec<Arc<Row>>>,
    /// Set once the segment takes no more rows.
    sealed: AtomicBool,
    /// Number of ids when the segment was last persisted (a blob covering them exists).
    persisted_len: AtomicU64,
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
            ids: Mutex::new(Vec::new()),
            deferred: Mutex::new(Vec::new()),
            sealed: AtomicBool::new(false),
            persisted_len: AtomicU64::new(0),
        })
    }

    pub fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }
    pub fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
    }
    /// Row versions ever inserted (deferred ones included).
    pub fn len(&self) -> usize {
        self.ids.lock().len() + self.deferred.lock().len()
    }
    /// Whether every id is covered by the last persisted blob.
    pub fn is_persisted(&self) -> bool {
        self.persisted_len.load(Ordering::Acquire) == self.len() as u64
    }
    pub fn mark_persisted(&self, len: u64) {
        self.persisted_len.store(len, Ordering::Release);
    }
    pub fn ids(&self) -> Vec<u64> {
        self.ids.lock().clone()
    }

    /// Adds one row version: its vectors go into each index whose column is not NULL.
    pub fn insert(&self, row_id: u64, values: &[crate::catalog::Value]) -> Result<()> {
        if self.indexes.is_empty() {
            return Ok(());
        }
        for ix in &self.indexes {
            if let Some(crate::catalog::Value::Vector(v)) = values.get(ix.column) {
                if !ix.index.contains(row_id) {
                    ix.index.insert(row_id, v)?;
                }
            }
        }
        self.ids.lock().push(row_id);
        Ok(())
    }

    /// Adds one row version whose graph inserts wait for [`Segment::flush_deferred`]. It counts
    /// in [`Segment::len`] at once (sealing decisions stay those of [`Segment::insert`]).
    pub fn defer(&self, row: Arc<Row>) {
        if !self.indexes.is_empty() {
            self.deferred.lock().push(row);
        }
    }

    /// Row versions waiting for their graph inserts.
    pub fn deferred_len(&self) -> usize {
        self.deferred.lock().len()
    }

    /// Inserts the deferred row versions that are still live (`live`) into every index with
    /// [`HnswIndex::insert_batch`] (parallel linking); the others were superseded or deleted
    /// meanwhile and never enter the graphs, exactly as if inserted then tombstoned. Every id
    /// joins the segment's ids in arrival order.
    pub fn flush_deferred(&self, live: &dyn Fn(u64) -> bool) -> Result<()> {
        let rows = std::mem::take(&mut *self.deferred.lock());
        if rows.is_empty() {
            return Ok(());
        }
        for ix in &self.indexes {
            let dim = ix.index.dim();
            let mut ids = Vec::with_capacity(rows.len());
            let mut vectors = Vec::with_capacity(rows.len() * dim);
            for r in &rows {
                if let Some(crate::catalog::Value::Vector(v)) = r.values.get(ix.column) {
                    if live(r.row_id) && !ix.index.contains(r.row_id) {
                        ids.push(r.row_id);
                        vectors.extend_from_slice(v);
                    }
                }
            }
            ix.index.insert_batch(&ids, &vectors)?;
        }
        self.ids.lock().extend(rows.iter().map(|r| r.row_id));
        Ok(())
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

    /// Serializes the ids and every index's graph (`HnswIndex::to_bytes`: vectors, graph,
    /// id map, tombstones, checksummed), so loading needs no rebuild.
    pub fn to_bytes(&self) -> (Vec<u8>, u64) {
        let ids = self.ids();
        let graphs: Vec<Vec<u8>> = self.indexes.iter().map(|ix| ix.index.to_bytes()).collect();
        let total: usize = graphs.iter().map(|g| g.len() + 64).sum();
        let mut out = Vec::with_capacity(64 + ids.len() * 8 + total);
        out.extend_from_slice(SEGMENT_MAGIC);
        put_u64(&mut out, self.id);
        put_u32(&mut out, ids.len() as u32);
        for id in &ids {
            put_u64(&mut out, *id);
        }
        put_u32(&mut out, self.indexes.len() as u32);
        for (ix, g) in self.indexes.iter().zip(&graphs) {
            put_str(&mut out, &ix.name);
            put_u32(&mut out, ix.column as u32);
            put_u64(&mut out, g.len() as u64);
            out.extend_from_slice(g);
        }
        (out, ids.len() as u64)
    }

    /// Loads a segment serialized by [`Segment::to_bytes`] for `schema`. `live` says which ids
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
        *seg.ids.lock() = ids;
        seg.mark_persisted(len);
        Ok(seg)
    }

    /// Ids of this segment, as a set.
    pub fn id_set(&self) -> HashSet<u64> {
        self.ids.lock().iter().copied().collect()
    }
}
