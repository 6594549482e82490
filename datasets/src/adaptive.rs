//! [`BatchSizer`]: picks how many rows the next import batch should hold.
//!
//! A batch has a fixed cost (a WAL entry and its fsync, a store write batch, locks) and a
//! per-row cost that grows once a batch stops fitting in caches or makes the HNSW insert
//! contend. So rows/s first rises with the batch size, then flattens or falls. The sizer climbs
//! that curve: it keeps moving the size in one direction (×`step`) while rows/s improves by more
//! than `tolerance`, turns around (and takes smaller steps) when rows/s falls, and holds when
//! the difference is within the noise, probing again every few windows so it follows a load that
//! changes under it. The size always stays within `[min_rows, max_rows]` and within
//! `byte_budget` at the observed bytes per row.
//!
//! A size's rows/s is the **median over a window** of `window` batches at that size, not one
//! batch's: single batches stall (a memtable flush, another process, an engine that defers work
//! and makes a later batch pay for it), and a stall right after a step looks like the step's
//! fault. Comparing single batches, the sizer chased those stalls (seen on a loaded machine:
//! 1M x 128 rows without an index, the size swinging between 1k and 32k rows from one batch to
//! the next; the `deferred_work_*` test models an engine with a bounded backlog). The tolerance
//! also grows with the noise seen within windows (their relative spread), so that noise is not
//! taken for a change of rate.

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
    /// Windows held at one size (within the noise) before probing again.
    pub probe_every: u32,
    /// Batches measured at one size before deciding; the median of their rows/s is the size's
    /// rate (see the module doc).
    pub window: u32,
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
            probe_every: 4,
            window: 3,
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
    /// The size of the last measured window.
    last_size: Option<f64>,
    /// Relative spread of rows/s within windows (moving average): the noise level.
    noise: Option<f64>,
    /// Average Arrow bytes per row, once seen.
    row_bytes: Option<f64>,
    held: u32,
    /// rows/s of the batches measured at the current size so far.
    window: Vec<f64>,
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
            last_size: None,
            noise: None,
            row_bytes: None,
            held: 0,
            window: Vec::new(),
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
        self.size = self.clamp(self.size);
        // A short batch (the last of a file) says little about its size.
        if (rows as f64) < 0.5 * self.size {
            return;
        }
        self.window
            .push(rows as f64 / elapsed.as_secs_f64().max(1e-9));
        if self.window.len() < self.cfg.window.max(1) as usize {
            return;
        }
        let rate = median(&mut self.window);
        // The window's spread (max - min over the median, 0 for a window of one) estimates the
        // noise: differences smaller than that are not taken as signal.
        let spread = match (self.window.first(), self.window.last()) {
            (Some(lo), Some(hi)) if rate > 0.0 => (hi - lo) / rate,
            _ => 0.0,
        };
        self.noise = Some(self.noise.map_or(spread, |n| 0.7 * n + 0.3 * spread));
        self.window.clear();
        let tol = self.cfg.tolerance.max(self.noise.unwrap_or(0.0));
        let moved = self.last_size.is_some_and(|s| s != self.size);
        self.last_size = Some(self.size);
        match self.last_rate {
            None => self.move_size(),
            // Same size, different speed: the load changed under us. Probe again from a full step.
            Some(last) if !moved && (rate - last).abs() > tol * last => {
                self.step = self.cfg.step;
                self.move_size();
            }
            // Better: go on, or hold at a bound.
            Some(last) if moved && rate > last * (1.0 + tol) => {
                if self.stepped() == self.size {
                    self.held += 1;
                } else {
                    self.move_size();
                }
            }
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
        self.size = self.clamp(self.size);
    }

    /// The size one step in the current direction (within bounds).
    fn stepped(&self) -> f64 {
        self.clamp(if self.direction > 0.0 {
            self.size * self.step
        } else {
            self.size / self.step
        })
    }

    /// Moves one step in the current direction; at a bound, one step the other way.
    fn move_size(&mut self) {
        self.held = 0;
        self.window.clear();
        if self.stepped() == self.size {
            self.direction = -self.direction;
        }
        self.size = self.stepped();
    }
}

/// The median of `v` (reorders it); `v` is not empty.
fn median(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
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

    fn run(
        sizer: &mut BatchSizer,
        total: usize,
        f: &mut dyn FnMut(usize) -> f64,
    ) -> (f64, Vec<usize>) {
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
        let mut curve = |n: usize| cost(n, 2e-3, 1e-6, 16_384.0);
        // The best fixed size, by brute force over the allowed range.
        let best = (1024..=65_536)
            .step_by(256)
            .map(|n| (n, n as f64 / curve(n)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let total = 5_000_000;
        let (adaptive, sizes) = run(
            &mut BatchSizer::new(SizerConfig::default()),
            total,
            &mut curve,
        );
        let (small, _) = run(&mut BatchSizer::fixed(1024), total, &mut curve);
        let (large, _) = run(&mut BatchSizer::fixed(65_536), total, &mut curve);
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
        let (_, sizes) = run(&mut s, 6_000_000, &mut |n| 5e-3 + 1e-7 * n as f64);
        assert_eq!(late_median(&sizes), 65_536);
    }

    #[test]
    fn shrinks_when_the_load_changes() {
        let mut s = BatchSizer::new(SizerConfig::default());
        let (_, sizes) = run(&mut s, 6_000_000, &mut |n| 5e-3 + 1e-7 * n as f64);
        assert_eq!(late_median(&sizes), 65_536);
        // Now large batches hurt (e.g. the machine got loaded): it must come down.
        let (_, sizes) = run(&mut s, 3_000_000, &mut |n| cost(n, 1e-4, 1e-6, 2048.0));
        assert!(
            late_median(&sizes) <= 8192,
            "still at {}",
            late_median(&sizes)
        );
    }

    /// A deterministic noise source in [0, 1).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// The median of the sizes of the second half of a run.
    fn late_median(sizes: &[usize]) -> usize {
        let mut late = sizes[sizes.len() / 2..].to_vec();
        late.sort_unstable();
        late[late.len() / 2]
    }

    #[test]
    fn noisy_timings_do_not_drag_it_to_small_batches() {
        // Bigger is always better (5 ms per batch, 1 us per row: an fsync'd WAL entry per
        // batch, no index), but batch times vary by +-20% and one batch in ten stalls for
        // 20-200 ms (a memtable flush, another process), as on a loaded machine: the sizer
        // must still end up with large batches.
        for seed in 1..=5 {
            let mut rng = Lcg(seed);
            let mut noisy = |n: usize| {
                let stall = if rng.next() < 0.1 {
                    0.02 + 0.18 * rng.next()
                } else {
                    0.0
                };
                (5e-3 + 1e-6 * n as f64) * (0.8 + 0.4 * rng.next()) + stall
            };
            let total = 20_000_000;
            let (secs, sizes) = run(
                &mut BatchSizer::new(SizerConfig::default()),
                total,
                &mut noisy,
            );
            // Expected times of fixed sizes under the same noise (mean factor 1, mean stall 11 ms).
            let fixed = |n: f64| (total as f64 / n).ceil() * (5e-3 + 1e-6 * n + 0.011);
            let (best, small) = (fixed(65_536.0), fixed(1024.0));
            assert!(
                secs < best * 1.2 && secs < small * 0.5,
                "seed {seed}: {secs:.1} s vs {best:.1} s at 65,536 rows ({small:.1} s at 1,024)"
            );
            let late = late_median(&sizes);
            assert!(late >= 16_384, "seed {seed}: median late size {late}");
        }
    }

    #[test]
    fn deferred_work_does_not_drag_it_to_small_batches() {
        // An engine that takes a batch fast while a background backlog has room (50,000 rows)
        // and makes the batch that overflows it pay for the whole backlog: per-batch rows/s
        // swings 20x whatever the size, while the sustained cost per row is the same at every
        // size and each batch still costs 5 ms.
        let mut backlog = 0.0;
        let mut deferred = |n: usize| {
            let n = n as f64;
            if backlog + n <= 50_000.0 {
                backlog += n;
                5e-3 + 1e-7 * n
            } else {
                let t = 5e-3 + 2e-6 * (backlog + n);
                backlog = 0.0;
                t
            }
        };
        let total = 20_000_000;
        let (secs, sizes) = run(
            &mut BatchSizer::new(SizerConfig::default()),
            total,
            &mut deferred,
        );
        let per_row = 2e-6 * 0.95;
        let small = total as f64 * (per_row + 5e-3 / 1024.0);
        let best = total as f64 * (per_row + 5e-3 / 65_536.0);
        // Comparing single batches gave 48.1 s here (1.22x).
        assert!(
            secs < best * 1.17 && secs < small * 0.5,
            "{secs:.1} s vs {best:.1} s at 65,536 rows ({small:.1} s at 1,024)"
        );
        let late = late_median(&sizes);
        assert!(late >= 8192, "median late size {late}");
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
