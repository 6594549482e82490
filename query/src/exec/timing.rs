//! EXPLAIN ANALYZE's clock: the busy time of the tracing spans a statement enters.
//!
//! The executor wraps every plan node in a `plan_node` span (TRACE; fields `node`, the node's
//! pre-order number as EXPLAIN prints the tree, and `rows`, recorded when the node is done),
//! the session wraps binding and optimizing in `bind` (EXPLAIN ANALYZE's "Planning Time",
//! timed on its own before the run), the plan's run in `execute_plan` and the Arrow conversion
//! in `arrow`, and the engine wraps each vector search in its own `search` span. While EXPLAIN
//! ANALYZE runs, a [`SpanTimer`] is the thread's default subscriber
//! (`tracing::dispatcher::with_default`): it sums, per span, the time between each enter and
//! the matching exit (the "busy" time `tracing-subscriber`'s fmt layer reports) and hands the
//! totals to a [`SpanTimes`] when the span closes. Afterwards the interest cache and the global maximum level are rebuilt (with
//! no subscriber at all, under one that wants nothing: the "none" dispatcher gives no level
//! hint, which would leave every `trace!` callsite enabled-checked at TRACE).
//!
//! It does not take the application's subscriber away. Every call is also forwarded to the
//! dispatcher that was the default before (the application's global subscriber, or none):
//! spans it wants are created by it, keep its ids and see every enter, exit, record and
//! close; events it wants reach it. Spans only the timer wants get ids of their own, with the
//! top bit set, that are never shown to the application's subscriber. Work that the engine
//! runs on other threads (rayon) is inside the span that waits for it, so it counts there.
//!
//! `tracing-subscriber`'s `Layer` is not used: a layer needs a `Registry` that owns the span
//! ids, and forwarding to the application's subscriber would then need its ids mapped to
//! ours; a forwarding `Subscriber` keeps the application's ids as they are.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::{Interest, NoSubscriber};
use tracing::{Dispatch, Event, Metadata, Subscriber};

/// Name of the executor's per-node span.
pub const NODE_SPAN: &str = "plan_node";

/// Ids of spans that only the timer tracks.
const PRIVATE: u64 = 1 << 63;

/// Whether the timer measures spans of this callsite: Vela's own spans.
fn timed(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with("vela")
}

/// What the timed spans of one statement measured.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SpanTimes {
    /// `plan_node` spans by node number: busy time and the `rows` they recorded, summed over
    /// the node's runs, and the number of runs (a correlated subplan's nodes run once per
    /// distinct outer value).
    pub nodes: HashMap<u64, (Duration, u64, u64)>,
    /// Every other timed span, by name: busy time summed over its spans.
    pub stages: HashMap<&'static str, Duration>,
}

impl SpanTimes {
    /// The summed busy time of the spans called `name`, zero if none ran.
    pub fn stage(&self, name: &str) -> Duration {
        self.stages.get(name).copied().unwrap_or_default()
    }
}

/// One live timed span.
struct Live {
    name: &'static str,
    node: Option<u64>,
    rows: u64,
    /// Start of each enter not exited yet (a span may be entered again while entered).
    entered: Vec<Instant>,
    busy: Duration,
    /// Handles open on the span (`clone_span` adds one, `try_close` removes one).
    refs: usize,
}

/// Picks the `node` and `rows` fields out of a span's values.
struct Fields<'a>(&'a mut Live);

impl Visit for Fields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "node" => self.0.node = Some(value),
            "rows" => self.0.rows = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

#[derive(Default)]
struct State {
    next_private: u64,
    live: HashMap<u64, Live>,
    done: SpanTimes,
}

/// The forwarding subscriber described in the module docs.
pub struct SpanTimer {
    inner: Dispatch,
    state: Arc<Mutex<State>>,
}

/// Reads what a [`SpanTimer`] measured.
#[derive(Clone)]
pub struct SpanTimerHandle {
    state: Arc<Mutex<State>>,
}

impl SpanTimerHandle {
    /// The totals of the spans closed so far.
    pub fn times(&self) -> SpanTimes {
        self.state.lock().done.clone()
    }
}

impl SpanTimer {
    /// A timer forwarding to the current default dispatcher, and a handle to read it with.
    pub fn new() -> (SpanTimer, SpanTimerHandle) {
        let inner = tracing::dispatcher::get_default(Dispatch::clone);
        let state = Arc::new(Mutex::new(State::default()));
        let handle = SpanTimerHandle {
            state: state.clone(),
        };
        (SpanTimer { inner, state }, handle)
    }

    fn is_private(id: &Id) -> bool {
        id.into_u64() & PRIVATE != 0
    }
}

/// Runs `f` with a [`SpanTimer`] as this thread's default subscriber; returns its result and
/// what the timer measured. The interest cache and the global maximum level are rebuilt
/// afterwards, so callsites the timer enabled cost nothing extra once it is gone.
pub fn with_span_timer<T>(f: impl FnOnce() -> T) -> (T, SpanTimes) {
    let (timer, handle) = SpanTimer::new();
    let without_subscriber = timer.inner.is::<NoSubscriber>();
    let out = tracing::dispatcher::with_default(&Dispatch::new(timer), f);
    if without_subscriber {
        // With no subscriber at all, a rebuild asks the "none" dispatcher, which gives no
        // level hint and so counts as TRACE: every disabled `trace!` in the process would
        // then pay for a callsite check. Rebuild under a subscriber that wants nothing.
        tracing::dispatcher::with_default(
            &Dispatch::new(WantsNothing),
            tracing::callsite::rebuild_interest_cache,
        );
    } else {
        tracing::callsite::rebuild_interest_cache();
    }
    (out, handle.times())
}

/// A subscriber that enables nothing and says so ([`LevelFilter::OFF`]), for rebuilding the
/// interest cache when the application has no subscriber.
struct WantsNothing;

impl Subscriber for WantsNothing {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::never()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::OFF)
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(PRIVATE)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Subscriber for SpanTimer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        let inner = self.inner.register_callsite(meta);
        if timed(meta) {
            Interest::sometimes()
        } else {
            inner
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        timed(meta) || self.inner.enabled(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let meta = attrs.metadata();
        let id = if self.inner.enabled(meta) {
            match attrs.parent() {
                // The application's subscriber never saw this parent: let it pick its own.
                Some(p) if Self::is_private(p) => {
                    self.inner.new_span(&Attributes::new(meta, attrs.values()))
                }
                _ => self.inner.new_span(attrs),
            }
        } else {
            let mut state = self.state.lock();
            state.next_private += 1;
            Id::from_u64(PRIVATE | state.next_private)
        };
        if timed(meta) {
            let mut live = Live {
                name: meta.name(),
                node: None,
                rows: 0,
                entered: Vec::new(),
                busy: Duration::ZERO,
                refs: 1,
            };
            attrs.record(&mut Fields(&mut live));
            self.state.lock().live.insert(id.into_u64(), live);
        }
        id
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(live) = self.state.lock().live.get_mut(&span.into_u64()) {
            values.record(&mut Fields(live));
        }
        if !Self::is_private(span) {
            self.inner.record(span, values);
        }
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        if !Self::is_private(span) && !Self::is_private(follows) {
            self.inner.record_follows_from(span, follows);
        }
    }

    fn event_enabled(&self, event: &Event<'_>) -> bool {
        self.inner.enabled(event.metadata())
    }

    fn event(&self, event: &Event<'_>) {
        if self.inner.enabled(event.metadata()) {
            self.inner.event(event);
        }
    }

    fn enter(&self, span: &Id) {
        if let Some(live) = self.state.lock().live.get_mut(&span.into_u64()) {
            live.entered.push(Instant::now());
        }
        if !Self::is_private(span) {
            self.inner.enter(span);
        }
    }

    fn exit(&self, span: &Id) {
        if let Some(live) = self.state.lock().live.get_mut(&span.into_u64()) {
            if let Some(start) = live.entered.pop() {
                live.busy += start.elapsed();
            }
        }
        if !Self::is_private(span) {
            self.inner.exit(span);
        }
    }

    fn clone_span(&self, id: &Id) -> Id {
        if let Some(live) = self.state.lock().live.get_mut(&id.into_u64()) {
            live.refs += 1;
        }
        if Self::is_private(id) {
            id.clone()
        } else {
            self.inner.clone_span(id)
        }
    }

    fn try_close(&self, id: Id) -> bool {
        let closed_here = {
            let mut state = self.state.lock();
            let key = id.into_u64();
            let last = match state.live.get_mut(&key) {
                Some(live) => {
                    live.refs = live.refs.saturating_sub(1);
                    live.refs == 0
                }
                None => false,
            };
            if last {
                if let Some(live) = state.live.remove(&key) {
                    match live.node {
                        Some(n) if live.name == NODE_SPAN => {
                            let slot = state.done.nodes.entry(n).or_default();
                            slot.0 += live.busy;
                            slot.1 += live.rows;
                            slot.2 += 1;
                        }
                        _ => *state.done.stages.entry(live.name).or_default() += live.busy,
                    }
                }
            }
            last
        };
        if Self::is_private(&id) {
            closed_here
        } else {
            self.inner.try_close(id)
        }
    }

    fn current_span(&self) -> tracing_core::span::Current {
        self.inner.current_span()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use tracing::Level;

    use super::*;
    use crate::{MemoryEngine, Session};

    /// An application's subscriber: takes spans and events up to `max`, and records what it
    /// saw under the ids it issued.
    struct AppSubscriber {
        max: Level,
        next: AtomicU64,
        log: Mutex<AppLog>,
    }

    #[derive(Default)]
    struct AppLog {
        /// Span names by id, and whether each is still open.
        spans: HashMap<u64, (&'static str, bool)>,
        depth: HashMap<u64, i64>,
        events: Vec<String>,
        unknown_ids: usize,
    }

    impl AppSubscriber {
        fn new(max: Level) -> Arc<Self> {
            Arc::new(AppSubscriber {
                max,
                next: AtomicU64::new(1),
                log: Mutex::new(AppLog::default()),
            })
        }

        fn touch(&self, id: &Id, f: impl FnOnce(&mut AppLog, u64)) {
            let mut log = self.log.lock();
            if log.spans.contains_key(&id.into_u64()) {
                f(&mut log, id.into_u64());
            } else {
                log.unknown_ids += 1;
            }
        }
    }

    /// The subscriber as installed (the test keeps another handle to read the log).
    struct App(Arc<AppSubscriber>);

    impl std::ops::Deref for App {
        type Target = AppSubscriber;
        fn deref(&self) -> &AppSubscriber {
            &self.0
        }
    }

    impl Subscriber for App {
        fn enabled(&self, meta: &Metadata<'_>) -> bool {
            *meta.level() <= self.max
        }
        fn new_span(&self, attrs: &Attributes<'_>) -> Id {
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            self.log
                .lock()
                .spans
                .insert(id, (attrs.metadata().name(), true));
            Id::from_u64(id)
        }
        fn record(&self, span: &Id, _values: &Record<'_>) {
            self.touch(span, |_, _| {});
        }
        fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
        fn event(&self, event: &Event<'_>) {
            self.log
                .lock()
                .events
                .push(event.metadata().name().to_string());
        }
        fn enter(&self, span: &Id) {
            self.touch(span, |log, id| *log.depth.entry(id).or_default() += 1);
        }
        fn exit(&self, span: &Id) {
            self.touch(span, |log, id| *log.depth.entry(id).or_default() -= 1);
        }
        fn try_close(&self, id: Id) -> bool {
            self.touch(&id, |log, id| {
                if let Some(s) = log.spans.get_mut(&id) {
                    s.1 = false;
                }
            });
            true
        }
    }

    fn session() -> Session {
        let mut s = Session::new(Arc::new(MemoryEngine::new()));
        s.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, emb VECTOR(2), tag TEXT);
             INSERT INTO t VALUES (1, '[0,0]', 'a'), (2, '[1,0]', 'b'), (3, '[0,2]', 'a');
             CREATE INDEX ON t USING hnsw (emb vector_l2_ops)",
            &[],
        )
        .expect("schema");
        s
    }

    const QUERY: &str = "EXPLAIN ANALYZE SELECT id FROM t WHERE tag = 'a' \
                         ORDER BY emb <-> '[0,0]' LIMIT 5";

    fn explain_analyze(s: &mut Session) -> Vec<String> {
        let batches = s.query(QUERY, &[]).expect("explain analyze");
        batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows()).filter_map(move |r| crate::cell_text(b.column(0).as_ref(), r))
            })
            .collect()
    }

    /// Every node line carries its span's row count, and the stage lines are there.
    fn check_output(lines: &[String]) {
        let rows: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.split("rows=").nth(1))
            .collect();
        // Project, Limit, Top-N, index search: two rows with tag 'a' at each level.
        assert_eq!(rows, ["2)", "2)", "2)", "2)"], "{lines:#?}");
        assert!(lines.iter().all(|l| !l.contains("never executed")));
        assert!(lines.iter().any(|l| l.starts_with("Planning Time: ")));
        assert!(lines.iter().any(|l| l.starts_with("Execution Time: ")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("Arrow Conversion Time: ")));
    }

    #[test]
    fn explain_analyze_times_nodes_without_any_subscriber() {
        let mut s = session();
        check_output(&explain_analyze(&mut s));
    }

    #[test]
    fn the_applications_subscriber_keeps_seeing_what_it_wants() {
        for max in [Level::INFO, Level::TRACE] {
            let app = AppSubscriber::new(max);
            let mut s = session();
            let lines = tracing::subscriber::with_default(App(app.clone()), || {
                tracing::info!("before");
                let lines = explain_analyze(&mut s);
                tracing::info!("after");
                lines
            });
            check_output(&lines);
            let log = app.log.lock();
            assert_eq!(log.unknown_ids, 0, "the timer's own ids leaked ({max})");
            assert!(log.depth.values().all(|d| *d == 0), "unbalanced enter/exit");
            assert!(
                log.spans.values().all(|(_, open)| !open),
                "a span never closed"
            );
            let names: Vec<&str> = log.spans.values().map(|(n, _)| *n).collect();
            // The session's INFO spans reach it either way; the executor's TRACE spans only
            // when it asks for TRACE.
            assert!(
                names.contains(&"execute") && names.contains(&"parse"),
                "{names:?}"
            );
            assert_eq!(names.contains(&NODE_SPAN), max == Level::TRACE, "{names:?}");
            assert_eq!(log.events.len(), 2, "{:?}", log.events);
        }
    }

    #[test]
    fn busy_time_counts_only_while_entered() {
        // 2 x 5 ms inside the span, 300 ms outside it: however a loaded machine stretches
        // the sleeps, the busy time stays below the time spent outside.
        let ((), times) = with_span_timer(|| {
            let span = tracing::trace_span!("stage_probe");
            {
                let _in = span.enter();
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(300));
            let _in = span.enter();
            std::thread::sleep(Duration::from_millis(5));
        });
        let busy = times.stage("stage_probe");
        assert!(busy >= Duration::from_millis(10), "{busy:?}");
        assert!(
            busy < Duration::from_millis(300),
            "{busy:?}: counted time outside the span"
        );
    }
}
