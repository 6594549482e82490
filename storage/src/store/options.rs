//! Every RocksDB option the segment store sets, in one place, each with the reason.
//!
//! The workload: write batches arrive with RocksDB's WAL off (Vela's WAL covers them), flushes
//! are explicit at Vela checkpoints, rows and vectors are read by key (point lookups and short
//! range scans), sealed HNSW graphs are written once and read back in one sequential scan when a
//! segment loads. The machines are small (2 cores), so background work and memory are bounded.

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options};

use super::cf::Cf;

/// Knobs the caller may set when opening a [`super::SegmentStore`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Create the store directory (and its parents) and an empty store if missing. Default true.
    pub create_if_missing: bool,
    /// Capacity of the LRU block cache shared by all column families. Default 64 MiB.
    pub block_cache_bytes: usize,
    /// Memtable size per column family. Default 32 MiB.
    pub write_buffer_bytes: usize,
    /// Cap on all memtables together; RocksDB flushes the largest one beyond it. Default 256 MiB.
    pub db_write_buffer_bytes: usize,
    /// Background flush + compaction threads. Default 2 (one per core on these machines).
    pub background_jobs: i32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            create_if_missing: true,
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 32 << 20,
            db_write_buffer_bytes: 256 << 20,
            background_jobs: 2,
        }
    }
}

impl StoreOptions {
    /// Sets `create_if_missing`.
    pub fn with_create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Sets the block cache capacity in bytes.
    pub fn with_block_cache_bytes(mut self, bytes: usize) -> Self {
        self.block_cache_bytes = bytes;
        self
    }
}

/// DB-wide options.
pub(crate) fn db_options(opts: &StoreOptions) -> Options {
    let mut o = Options::default();
    o.create_if_missing(opts.create_if_missing);
    // The set of column families is fixed by this code; create any that an older store lacks.
    o.create_missing_column_families(true);
    // Bounded background work on a small machine.
    o.set_max_background_jobs(opts.background_jobs.max(1));
    // Bounded memory: RocksDB flushes the biggest memtable when all together exceed this.
    o.set_db_write_buffer_size(opts.db_write_buffer_bytes);
    // Smooth out writeback of large SSTs instead of one huge fsync at the end of a flush.
    o.set_bytes_per_sync(1 << 20);
    // Level sizes follow the data, so a small store does not get many nearly empty levels.
    o.set_level_compaction_dynamic_level_bytes(true);
    // RocksDB's info LOG files: keep a few small ones, not an unbounded history.
    o.set_keep_log_file_num(4);
    o.set_max_log_file_size(8 << 20);
    // Our writes skip RocksDB's WAL, so its WAL files stay nearly empty; a small cap makes it
    // recycle them promptly (only the rare WAL-enabled write would ever land there).
    o.set_max_total_wal_size(64 << 20);
    // Check checksums and stop on inconsistencies rather than serving wrong data.
    o.set_paranoid_checks(true);
    o
}

/// Per-column-family options. `cache` is shared by all column families so the bound holds.
pub(crate) fn cf_options(cf: Cf, opts: &StoreOptions, cache: &Cache) -> Options {
    let mut o = Options::default();
    o.set_write_buffer_size(opts.write_buffer_bytes);
    o.set_level_compaction_dynamic_level_bytes(true);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    // Index and filter blocks live in the bounded cache too (otherwise they sit on the heap
    // outside any bound); L0's are pinned since every read consults them.
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    // Format 5: the faster full filters and smaller index blocks (RocksDB >= 6.6).
    table.set_format_version(5);
    match cf {
        Cf::Rows => {
            // Rows are written (every applied batch) and scanned whole when the engine loads;
            // no read path looks one up by key but the applied-LSN marker. Scalar rows compress
            // well, but only the bottommost level is compressed: flushes (and compactions
            // above it) write blocks as they are. Rows holding vectors barely compress
            // (RocksDB then stores the block raw anyway), and LZ4 at every flush cost over a
            // quarter of WAL replay's instructions (its 16 KiB state is reset per block).
            o.set_compression_type(DBCompressionType::None);
            o.set_bottommost_compression_type(DBCompressionType::Lz4);
            table.set_bloom_filter(10.0, false);
            // Bigger blocks for the load's scans and a cheaper LZ4 (fewer state resets).
            table.set_block_size(16 << 10);
        }
        Cf::Tombstones => {
            // Tombstone keys compress well and cheaply.
            o.set_compression_type(DBCompressionType::Lz4);
            // Point lookups by key dominate: a 10 bits/key bloom filter (~1% false positives).
            table.set_bloom_filter(10.0, false);
        }
        Cf::Vectors => {
            // Float vectors are nearly incompressible: LZ4 would cost CPU for ~nothing.
            o.set_compression_type(DBCompressionType::None);
            table.set_bloom_filter(10.0, false);
            // Vectors are 0.5-6 KiB each; bigger blocks keep the index small.
            table.set_block_size(16 << 10);
        }
        Cf::Index => {
            // Chunked blobs (HNSW graphs: neighbour lists of u32 ids) are written once and read
            // back sequentially: Zstd's better ratio is worth its CPU here. Each 1 MiB chunk
            // becomes its own block, so no bloom filter (blobs are found by a seek, not a get).
            o.set_compression_type(DBCompressionType::Zstd);
            o.set_bottommost_compression_type(DBCompressionType::Zstd);
            table.set_block_size(64 << 10);
        }
        Cf::Catalog | Cf::Meta => {
            // Tiny and hot: no compression; small memtables flush fast at every checkpoint.
            o.set_compression_type(DBCompressionType::None);
            o.set_write_buffer_size((4 << 20).min(opts.write_buffer_bytes));
        }
    }
    o.set_block_based_table_factory(&table);
    o
}
