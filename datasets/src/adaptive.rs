//! [`BatchSizer`]: picks how many rows the next import batch should hold.
//!
//! A batch has a fixed cost (a WAL entry and its fsync, a store write batch, locks) and a
//! per-row cost that grows once a batch stops fitting in caches or makes the HNSW insert
//! contend. So rows/s first rises with the batch size, then flattens or falls. The sizer climbs
//! that curve: it keeps moving the size in one direction (×`step`) while rows/s improves by more
//! than `tolerance`, turns around (and takes smaller steps) when rows/s falls, and holds when
//! the difference is within the noise, probing again every few batches so it follows a load that
//! changes under it. The size always stays within `[min_rows, max_rows]` and within
//! `byte_budget` at the observed bytes per row.

use std::time::Duration;

/// Bounds and tuning of a [`BatchSizer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizerConfig {
    pub min_rows: usize,
    pub max_rows: usize,
    /// Largest batch in bytes (Arrow memory of one batch), whatever `max_rows` says.
    pub byte_budget: usize,
    /// First batch size.
    pub initial_rows: usize,
    /// First multiplicative step (> 1).
    pub step: f64,
    /// Smallest step after turning around (> 1).
    pub min_step: f64,
    /// Relative change of rows/s taken as noise.
    pub tolerance: f64,
    /// Batches held at one size before probing again.
    pub probe_every: u32,
}

impl Default for SizerConfig {
    fn default() -> Self {
        SizerConfig {
            min_rows: 1024,
            max_rows: 65_536,
            byte_budget: 16 << 20,
            initial_rows: 4096,
            step: 2.0,
            min_step: 1.25,
            tolerance: 0.05,
            probe_every: 8,
        }
    }
}

/// The adaptive batch-size controller (see the module doc). Call [`BatchSizer::next_rows`] for
/// the size of the next batch, then [`BatchSizer::record`] with what that batch took.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    cfg: SizerConfig,
    size: f64,
    step: f64,
    /// +1 growing, -1 shrinking.
    direction: f64,
    last_rate: Option<f64>,
    /// Rows of the last measured batch.
    last_rows: Option<usize>,
    /// Average Arrow bytes per row, once seen.
    row_bytes: Option<f64>,
    held: u32,
}

impl BatchSizer {
    pub fn new(cfg: SizerConfig) -> BatchSizer {
        let min = cfg.min_rows.max(1);
        let cfg = SizerConfig {
            min_rows: min,
            max_rows: cfg.max_rows.max(min),
            step: if cfg.step > 1.0 { cfg.step } else { 2.0 },
            min_step: if cfg.min_step > 1.0 {
                cfg.min_step
            } else {
                1.1
            },
            ..cfg
        };
        let mut sizer = BatchSizer {
            cfg,
            size: cfg.initial_rows as f64,
            step: cfg.step,
            direction: 1.0,
            last_rate: None,
            last_rows: None,
            row_bytes: None,
            held: 0,
        };
        sizer.size = sizer.clamp(sizer.size);
        sizer
    }

    /// A sizer that always answers `rows` (the fixed-size baseline of the benchmark).
    pub fn fixed(rows: usize) -> BatchSizer {
        let rows = rows.max(1);
        BatchSizer::new(SizerConfig {
            min_rows: rows,
            max_rows: rows,
            initial_rows: rows,
            byte_budget: usize::MAX,
            ..SizerConfig::default()
        })
    }

    /// Rows for the next batch.
    pub fn next_rows(&self) -> usize {
        self.size.floor() as usize
    }

    /// The largest batch in bytes (for `TableSource::next_rows`, which stops a batch there even
    /// before any row size is known).
    pub fn byte_budget(&self) -> usize {
        self.cfg.byte_budget
    }

    /// The largest size the byte budget allows at the observed row size.
    fn upper(&self) -> f64 {
        let by_bytes = match self.row_bytes {
            Some(b) if b > 0.0 => self.cfg.byte_budget as f64 / b,
            _ => f64::INFINITY,
        };
        (self.cfg.max_rows as f64)
            .min(by_bytes)
            .max(self.cfg.min_rows as f64)
    }

    fn clamp(&self, size: f64) -> f64 {
        size.clamp(self.cfg.min_rows as f64, self.upper())
    }

    /// Reports a finished batch: `rows` rows of `bytes` Arrow bytes took `elapsed`.
    pub fn record(&mut self, rows: usize, bytes: usize, elapsed: Duration) {
        if rows == 0 {
            return;
        }
        let per_row = bytes as f64 / rows as f64;
        self.row_bytes = Some(match self.row_bytes {
            Some(b) => 0.8 * b + 0.2 * per_row,
            None => per_row,
        });
        // A short batch (the last of a file) says little about its size: only re-apply bounds.
        if (rows as f64) < 0.5 * self.size {
            self.size = self.clamp(self.size);
            return;
        }
        let rate = rows as f64 / elapsed.as_secs_f64().max(1e-9);
        let tol = self.cfg.tolerance;
        let moved = self.last_rows.is_some_and(|r| r != rows);
        match self.last_rate {
            None => self.move_size(),
            // Same size, different speed: the load changed under us. Probe again from a full step.
            Some(last) if !moved && (rate - last).abs() > tol * last => {
                self.step = self.cfg.step;
                self.move_size();
            }
            Some(last) if moved && rate > last * (1.0 + tol) => self.move_size(),
            Some(last) if moved && rate < last * (1.0 - tol) => {
                self.direction = -self.direction;
                self.step = (1.0 + (self.step - 1.0) / 2.0).max(self.cfg.min_step);
                self.move_size();
            }
            Some(last) => {
                // Within the noise: hold, and probe the more promising way now and then.
                if moved && rate < last {
                    self.direction = -self.direction;
                }
                self.held += 1;
                if self.held >= self.cfg.probe_every {
                    self.move_size();
                }
            }
        }
        self.last_rate = Some(rate);
        self.last_rows = Some(rows);
        self.size = self.clamp(self.size);
    }

    fn move_size(&mut self) {
        self.held = 0;
        let next = if self.direction > 0.0 {
            self.size * self.step
        } else {
            self.size / self.step
        };
        let clamped = self.clamp(next);
        // At a bound, the next move goes the other way.
        if clamped != next {
            self.direction = -self.direction;
        }
        self.size = clamped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds a batch of `n` rows takes: a fixed cost per batch, a per-row cost, and a penalty
    /// once a batch outgrows the cache (`knee` rows). rows/s peaks a little above `knee`.
    fn cost(n: usize, fixed: f64, per_row: f64, knee: f64) -> f64 {
        let n = n as f64;
        let over = (n - knee).max(0.0);
        fixed + per_row * n + per_row * over * over / knee
    }

    fn run(sizer: &mut BatchSizer, total: usize, f: &dyn Fn(usize) -> f64) -> (f64, Vec<usize>) {
        let mut done = 0;
        let mut secs = 0.0;
        let mut sizes = Vec::new();
        while done < total {
            let n = sizer.next_rows().min(total - done);
            let t = f(n);
            secs += t;
            // 128-byte rows: 65,536 of them fit the default 16 MiB budget.
            sizer.record(n, n * 128, Duration::from_secs_f64(t));
            sizes.push(n);
            done += n;
        }
        (secs, sizes)
    }

    #[test]
    fn converges_near_the_best_size_and_beats_fixed_sizes() {
        let curve = |n: usize| cost(n, 2e-3, 1e-6, 16_384.0);
        // The best fixed size, by brute force over the allowed range.
        let best = (1024..=65_536)
            .step_by(256)
            .map(|n| (n, n as f64 / curve(n)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let total = 5_000_000;
        let (adaptive, sizes) = run(&mut BatchSizer::new(SizerConfig::default()), total, &curve);
        let (small, _) = run(&mut BatchSizer::fixed(1024), total, &curve);
        let (large, _) = run(&mut BatchSizer::fixed(65_536), total, &curve);
        let ideal = total as f64 / best.1;
        assert!(
            adaptive < small * 0.5,
            "adaptive {adaptive}s vs fixed 1024 {small}s"
        );
        assert!(
            adaptive < large,
            "adaptive {adaptive}s vs fixed 65536 {large}s"
        );
        assert!(
            adaptive < ideal * 1.15,
            "adaptive {adaptive}s vs ideal {ideal}s"
        );
        // It settles around the optimum instead of wandering to the bounds.
        let tail = &sizes[sizes.len() - 50..sizes.len() - 1];
        for &n in tail {
            assert!(
                (n as f64) > best.0 as f64 / 2.5 && (n as f64) < best.0 as f64 * 2.5,
                "size {n} far from the best {}",
                best.0
            );
        }
    }

    #[test]
    fn grows_to_the_maximum_when_bigger_is_always_better() {
        let mut s = BatchSizer::new(SizerConfig::default());
        run(&mut s, 2_000_000, &|n| 5e-3 + 1e-7 * n as f64);
        assert_eq!(s.next_rows(), 65_536);
    }

    #[test]
    fn shrinks_when_the_load_changes() {
        let mut s = BatchSizer::new(SizerConfig::default());
        run(&mut s, 2_000_000, &|n| 5e-3 + 1e-7 * n as f64);
        assert_eq!(s.next_rows(), 65_536);
        // Now large batches hurt (e.g. the machine got loaded): it must come down.
        run(&mut s, 3_000_000, &|n| cost(n, 1e-4, 1e-6, 2048.0));
        assert!(s.next_rows() <= 8192, "still at {}", s.next_rows());
    }

    #[test]
    fn the_byte_budget_caps_the_size() {
        let mut s = BatchSizer::new(SizerConfig {
            byte_budget: 4 << 20,
            ..SizerConfig::default()
        });
        // 1,536-byte rows (384-d f32): 4 MiB holds 2,730 of them.
        let mut largest = 0;
        for _ in 0..50 {
            let n = s.next_rows();
            largest = largest.max(n);
            assert!(n * 1536 <= 4 << 20 || n == 4096, "{n}");
            s.record(n, n * 1536, Duration::from_secs_f64(1e-3 + 1e-8 * n as f64));
            assert!(s.next_rows() * 1536 <= 4 << 20, "{}", s.next_rows());
        }
        assert_eq!(
            largest, 4096,
            "the first batch, before any row size is known"
        );
        assert_eq!(s.next_rows(), (4 << 20) / 1536);
    }

    #[test]
    fn stays_in_bounds_with_nonsense_input() {
        let mut s = BatchSizer::new(SizerConfig::default());
        for i in 0..100u64 {
            s.record(s.next_rows(), 0, Duration::from_nanos(i % 3));
            assert!((1024..=65_536).contains(&s.next_rows()));
        }
        s.record(0, 0, Duration::ZERO);
        let fixed = BatchSizer::fixed(0);
        assert_eq!(fixed.next_rows(), 1);
    }
}
