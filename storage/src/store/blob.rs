//! Chunked blobs: large values (sealed segments' HNSW graphs) stored as a header record plus
//! fixed-size chunks, so a blob of any size is written in one batch and read back in one
//! sequential range scan.
//!
//! Layout for a blob at key `K` in a column family:
//!
//! ```text
//! K                      header: magic "VBL1" | total_len u64 LE | chunk_count u32 LE
//!                                | chunk_size u32 LE | crc32 u32 LE            (24 bytes)
//! K ++ 0u32 BE           chunk 0 (chunk_size bytes)
//! K ++ 1u32 BE           chunk 1
//! ...
//! K ++ (n-1) BE          last chunk (the remainder; 1..=chunk_size bytes)
//! ```
//!
//! A 0-byte blob has a header and no chunks. The crc32 covers the whole blob's bytes. Blob keys
//! in one column family must be prefix-free (no blob key a proper prefix of another, e.g. all
//! fixed-width), since a blob owns every key `K ++ <4 bytes>`.

use rocksdb::ReadOptions;

use super::batch::StoreBatch;
use super::cf::Cf;
use super::SegmentStore;
use crate::error::{Result, StorageError};

/// Chunk size for new blobs: big enough that per-key overhead vanishes, small enough that a
/// chunk is a comfortable RocksDB value and memtable entry.
pub const BLOB_CHUNK_BYTES: usize = 1 << 20;

const MAGIC: &[u8; 4] = b"VBL1";
const HEADER_LEN: usize = 24;
/// Read-ahead for the sequential blob scan.
const BLOB_READAHEAD: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    total_len: u64,
    chunk_count: u32,
    chunk_size: u32,
    crc: u32,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(MAGIC);
        b[4..12].copy_from_slice(&self.total_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.chunk_count.to_le_bytes());
        b[16..20].copy_from_slice(&self.chunk_size.to_le_bytes());
        b[20..24].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> std::result::Result<Header, String> {
        let b: &[u8; HEADER_LEN] = b
            .try_into()
            .map_err(|_| format!("header is {} bytes, expected {HEADER_LEN}", b.len()))?;
        if &b[0..4] != MAGIC {
            return Err("bad header magic".to_string());
        }
        let le32 = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&b[4..12]);
        let h = Header {
            total_len: u64::from_le_bytes(len),
            chunk_count: le32(12),
            chunk_size: le32(16),
            crc: le32(20),
        };
        if h.chunk_size == 0 {
            return Err("chunk size 0".to_string());
        }
        if u64::from(h.chunk_count) != h.total_len.div_ceil(u64::from(h.chunk_size)) {
            return Err(format!(
                "{} chunks of {} bytes cannot hold {} bytes",
                h.chunk_count, h.chunk_size, h.total_len
            ));
        }
        Ok(h)
    }

    /// Expected length of chunk `i`.
    fn chunk_len(&self, i: u32) -> u64 {
        let start = u64::from(i) * u64::from(self.chunk_size);
        (self.total_len - start).min(u64::from(self.chunk_size))
    }
}

fn chunk_key(key: &[u8], i: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 4);
    k.extend_from_slice(key);
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// Exclusive end of all possible chunk keys of `key`: `key ++ FF FF FF FF 00`.
fn chunks_end(key: &[u8]) -> Vec<u8> {
    let mut k = chunk_key(key, u32::MAX);
    k.push(0);
    k
}

/// Hex rendering of a key for error messages (truncated for very long keys).
pub(crate) fn hex_key(key: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(2 * key.len().min(64) + 3);
    for b in key.iter().take(64) {
        let _ = write!(s, "{b:02x}");
    }
    if key.len() > 64 {
        s.push_str("...");
    }
    s
}

impl StoreBatch<'_> {
    /// Adds a blob at `key` in `cf`, replacing any previous blob there (its leftover chunks are
    /// deleted in the same batch). See the module docs for the layout.
    pub fn put_blob(&mut self, cf: Cf, key: &[u8], bytes: &[u8]) {
        self.put_blob_chunked(cf, key, bytes, BLOB_CHUNK_BYTES);
    }

    pub(crate) fn put_blob_chunked(&mut self, cf: Cf, key: &[u8], bytes: &[u8], chunk: usize) {
        let (Ok(chunk_size), Ok(chunk_count), Ok(total_len)) = (
            u32::try_from(chunk.max(1)),
            u32::try_from(bytes.len().div_ceil(chunk.max(1))),
            u64::try_from(bytes.len()),
        ) else {
            self.refuse("blob too large for the chunk size");
            return;
        };
        if cf == Cf::Meta && super::meta::is_reserved(key) {
            self.refuse("blob at a reserved meta key (first byte 0x00)");
            return;
        }
        let Some(h) = self.handle(cf) else { return };
        let header = Header {
            total_len,
            chunk_count,
            chunk_size,
            crc: crc32fast::hash(bytes),
        };
        self.inner
            .delete_range_cf(h, chunk_key(key, 0), chunks_end(key));
        self.inner.put_cf(h, key, header.encode());
        for (i, part) in (0u32..).zip(bytes.chunks(chunk_size as usize)) {
            self.inner.put_cf(h, chunk_key(key, i), part);
        }
    }

    /// Deletes the blob at `key` in `cf` (header and every chunk); a no-op if absent.
    pub fn delete_blob(&mut self, cf: Cf, key: &[u8]) {
        if cf == Cf::Meta && super::meta::is_reserved(key) {
            self.refuse("blob at a reserved meta key (first byte 0x00)");
            return;
        }
        let Some(h) = self.handle(cf) else { return };
        self.inner.delete_cf(h, key);
        self.inner
            .delete_range_cf(h, chunk_key(key, 0), chunks_end(key));
    }
}

impl SegmentStore {
    /// Reads the blob at `key` in `cf` in one sequential scan, verifying its length, chunk
    /// sequence and crc32. `Ok(None)` if there is no blob there; `StorageError::Corrupt`
    /// (naming the store directory, column family and key) if it does not verify.
    pub fn get_blob(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let handle = self.handle(cf)?;
        let mut ro = ReadOptions::default();
        // A segment is loaded once into memory; don't evict hot row blocks for it.
        ro.fill_cache(false);
        ro.set_readahead_size(BLOB_READAHEAD);
        ro.set_iterate_upper_bound(chunks_end(key));
        let mut it = self.db.raw_iterator_cf_opt(handle, ro);
        it.seek(key);
        let corrupt = |reason: String| StorageError::Corrupt {
            path: self.path.clone(),
            reason: format!("blob {cf}/{}: {reason}", hex_key(key)),
        };
        let header = match it.item() {
            Some((k, v)) if k == key => Header::decode(v).map_err(corrupt)?,
            _ => {
                it.status().map_err(|e| self.rocks(e))?;
                return Ok(None);
            }
        };
        // Grow as chunks arrive rather than trusting the header with one huge allocation.
        let mut out =
            Vec::with_capacity(usize::try_from(header.total_len.min(64 << 20)).unwrap_or(0));
        let mut hasher = crc32fast::Hasher::new();
        for i in 0..header.chunk_count {
            it.next();
            let expected = chunk_key(key, i);
            match it.item() {
                Some((k, v)) if k == expected.as_slice() => {
                    if v.len() as u64 != header.chunk_len(i) {
                        return Err(corrupt(format!(
                            "chunk {i} is {} bytes, expected {}",
                            v.len(),
                            header.chunk_len(i)
                        )));
                    }
                    hasher.update(v);
                    out.extend_from_slice(v);
                }
                _ => {
                    it.status().map_err(|e| self.rocks(e))?;
                    return Err(corrupt(format!(
                        "chunk {i} of {} is missing",
                        header.chunk_count
                    )));
                }
            }
        }
        if out.len() as u64 != header.total_len {
            return Err(corrupt(format!(
                "length {} != header length {}",
                out.len(),
                header.total_len
            )));
        }
        let crc = hasher.finalize();
        if crc != header.crc {
            return Err(corrupt(format!(
                "crc32 {crc:08x} != header crc32 {:08x}",
                header.crc
            )));
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_validation() {
        let h = Header {
            total_len: (1 << 20) + 1,
            chunk_count: 2,
            chunk_size: 1 << 20,
            crc: 0xdead_beef,
        };
        assert_eq!(Header::decode(&h.encode()), Ok(h));
        assert_eq!(h.chunk_len(0), 1 << 20);
        assert_eq!(h.chunk_len(1), 1);
        let mut bad = h.encode();
        bad[12] = 3;
        assert!(Header::decode(&bad).is_err());
        assert!(Header::decode(&bad[..10]).is_err());
        let mut zero = h.encode();
        zero[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert!(Header::decode(&zero).is_err());
        let mut magic = h.encode();
        magic[0] = b'X';
        assert!(Header::decode(&magic).is_err());
    }

    #[test]
    fn chunk_keys_sort_after_header_and_before_end() {
        let k = b"seg\x00\x01";
        assert!(k.as_slice() < chunk_key(k, 0).as_slice());
        assert!(chunk_key(k, 0) < chunk_key(k, 1));
        assert!(chunk_key(k, 255) < chunk_key(k, 256));
        assert!(chunk_key(k, u32::MAX) < chunks_end(k));
        assert_eq!(hex_key(b"\x00\xff"), "00ff");
    }
}
