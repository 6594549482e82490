//! EXPLAIN ANALYZE turns on TRACE spans for its statement only: afterwards the global maximum
//! level (`LevelFilter::current()`, which every disabled `trace!` callsite checks first) is
//! what the application's subscriber asked for again, also when there is no subscriber at
//! all. Its own test binary: the level is process-wide state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use vela_query::{MemoryEngine, Session};

/// An application's subscriber that wants INFO and above.
struct InfoOnly {
    next: AtomicU64,
}

impl Subscriber for InfoOnly {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= tracing::Level::INFO
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs an EXPLAIN ANALYZE (twice) and checks the global max level is `want` afterwards, on this
/// thread and another.
fn explain_analyze_leaves(s: &mut Session, want: LevelFilter) {
    for _ in 0..2 {
        s.execute(
            "EXPLAIN ANALYZE SELECT id FROM t ORDER BY v <-> '[0,1]' LIMIT 1",
            &[],
        )
        .expect("explain analyze");
        assert_eq!(
            LevelFilter::current(),
            want,
            "EXPLAIN ANALYZE left the global max level raised"
        );
    }
    std::thread::spawn(move || assert_eq!(LevelFilter::current(), want))
        .join()
        .expect("thread");
}

#[test]
fn explain_analyze_restores_the_global_max_level() {
    let mut s = Session::new(Arc::new(MemoryEngine::new()));
    s.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v VECTOR(2));
         INSERT INTO t VALUES (1, '[0,0]'), (2, '[1,1]')",
        &[],
    )
    .expect("setup");
    // No subscriber at all: nothing is enabled before or after.
    assert_eq!(LevelFilter::current(), LevelFilter::OFF);
    explain_analyze_leaves(&mut s, LevelFilter::OFF);
    // An application subscriber that wants INFO: INFO again afterwards.
    tracing::subscriber::set_global_default(InfoOnly {
        next: AtomicU64::new(1),
    })
    .expect("first global subscriber");
    assert_eq!(LevelFilter::current(), LevelFilter::INFO);
    explain_analyze_leaves(&mut s, LevelFilter::INFO);
}
