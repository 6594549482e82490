//! Counters and latency histograms kept by the engine, per table and per shard, readable through
//! [`crate::Engine::metrics`] (the server exports them to Prometheus).
//!
//! Histograms are lock-free: 4 buckets per power of two of microseconds (≤ 19% relative error),
//! from 1 µs to about 70 minutes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SUB: usize = 4;
const BUCKETS: usize = 32 * SUB;

/// A latency histogram.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

fn bucket_of(us: u64) -> usize {
    if us < 1 {
        return 0;
    }
    let log = 63 - us.leading_zeros() as usize;
    let frac = if log >= 2 {
        ((us >> (log - 2)) & 3) as usize
    } else {
        ((us << (2 - log)) & 3) as usize
    };
    (log * SUB + frac).min(BUCKETS - 1)
}

fn bucket_upper_us(b: usize) -> u64 {
    let log = b / SUB;
    let frac = (b % SUB) as u64;
    let base = 1u64 << log;
    base + (base * (frac + 1)) / SUB as u64
}

impl Histogram {
    /// Records one observation.
    pub fn record(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        if let Some(b) = self.buckets.get(bucket_of(us)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// A consistent-enough copy (relaxed loads).
    pub fn snapshot(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| -> u64 {
            if total == 0 {
                return 0;
            }
            let target = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut acc = 0;
            for (i, c) in counts.iter().enumerate() {
                acc += c;
                if acc >= target {
                    return bucket_upper_us(i);
                }
            }
            bucket_upper_us(BUCKETS - 1)
        };
        LatencySummary {
            count: self.count.load(Ordering::Relaxed),
            sum_us: self.sum_us.load(Ordering::Relaxed),
            p50_us: quantile(0.5),
            p99_us: quantile(0.99),
        }
    }
}

/// Count and quantiles of a histogram (quantiles are bucket upper bounds, in microseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    pub count: u64,
    pub sum_us: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Live counters of one table.
#[derive(Default)]
pub struct TableCounters {
    pub batches: AtomicU64,
    pub batches_rejected: AtomicU64,
    pub rows_inserted: AtomicU64,
    pub rows_updated: AtomicU64,
    pub rows_deleted: AtomicU64,
    pub searches: AtomicU64,
    pub seals: AtomicU64,
    pub merges: AtomicU64,
    pub write_latency: Histogram,
    pub search_latency: Histogram,
}

/// Live counters of one shard.
#[derive(Default)]
pub struct ShardCounters {
    pub searches: AtomicU64,
    pub search_latency: Histogram,
}

/// A snapshot of one table's metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableMetrics {
    pub table: String,
    pub live_rows: u64,
    pub batches: u64,
    pub batches_rejected: u64,
    pub rows_inserted: u64,
    pub rows_updated: u64,
    pub rows_deleted: u64,
    pub searches: u64,
    pub seals: u64,
    pub merges: u64,
    /// Versions in unindexed tails (searched exactly until the linker links them).
    pub unlinked_rows: u64,
    pub write_latency: LatencySummary,
    pub search_latency: LatencySummary,
    pub shards: Vec<ShardMetrics>,
}

/// A snapshot of one shard's metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardMetrics {
    pub shard: u32,
    pub live_rows: u64,
    pub segments: usize,
    pub searches: u64,
    pub search_latency: LatencySummary,
}

/// A snapshot of the whole engine's metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineMetrics {
    pub applied_lsn: u64,
    pub flushed_lsn: u64,
    pub checkpoints: u64,
    pub replayed_entries: u64,
    /// Time the WAL replay of the last open took (after loading the store), in microseconds.
    pub replay_micros: u64,
    pub tables: Vec<TableMetrics>,
}

pub(crate) fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub(crate) fn inc(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 1000);
        assert!((500..=640).contains(&s.p50_us), "{s:?}");
        assert!((990..=1280).contains(&s.p99_us), "{s:?}");
    }
}
