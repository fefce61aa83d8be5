//! Metrics of the downstream calls, caches and breakers, recorded through
//! the `metrics` facade: the process decides where they go (bff-server
//! renders them on `/metrics`); without a recorder they cost next to nothing.
//!
//! | metric | labels |
//! |---|---|
//! | `downstream_calls_total` (tries, and calls refused before trying) | `service`, `outcome` |
//! | `downstream_call_duration_seconds` (histogram, tries only) | `service` |
//! | `downstream_retries_total` | `service`, `result` = `granted` / `budget_exhausted` |
//! | `downstream_breaker_state` (1 for the current state, 0 for the others) | `service`, `state` |
//! | `downstream_breaker_transitions_total` | `service`, `to` |
//! | `downstream_cache_lookups_total` (per id) | `cache` (the entity: `user`, `product`, ...), `result` = `hit` / `shared_hit` (in Redis, the second level) / `miss` / `stale` |
//!
//! `outcome` is one of `success`, `not_found`, `rejected`, `unavailable`,
//! `timeout`, `bad_response`, `circuit_open`, `refused`; `state` and `to`
//! are `closed`, `open`, `half_open`. A `miss` is an id not in the cache
//! (or any id when the cache is off); `stale` counts the misses whose fetch
//! failed and which were served from their stale copy (so they are counted
//! as a miss too).
//!
//! Per client request, [`crate::context::DownstreamWaits`] keeps the tries
//! sent and the time waited on them; the front door turns them into its
//! own metrics and log line.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Counter, Histogram, Recorder, Unit, counter, describe_counter, describe_gauge,
    describe_histogram, gauge, histogram,
};

use crate::resilience::BreakerState;
use crate::{DownstreamError, Service};

pub const CALLS: &str = "downstream_calls_total";
pub const CALL_DURATION: &str = "downstream_call_duration_seconds";
pub const RETRIES: &str = "downstream_retries_total";
pub const BREAKER_STATE: &str = "downstream_breaker_state";
pub const BREAKER_TRANSITIONS: &str = "downstream_breaker_transitions_total";
pub const CACHE_LOOKUPS: &str = "downstream_cache_lookups_total";

/// Every metric this crate records (bff-server lists them with its own).
pub const METRIC_NAMES: [&str; 6] = [
    CALLS,
    CALL_DURATION,
    RETRIES,
    BREAKER_STATE,
    BREAKER_TRANSITIONS,
    CACHE_LOOKUPS,
];

/// Registers help texts and units; call once after installing a recorder.
pub fn describe_metrics() {
    describe_counter!(
        CALLS,
        "Downstream tries by outcome, plus calls refused before trying (circuit_open, or timeout when the deadline had passed)."
    );
    describe_histogram!(
        CALL_DURATION,
        Unit::Seconds,
        "Duration of one downstream try, body included."
    );
    describe_counter!(
        RETRIES,
        "Retries of idempotent downstream calls, granted or refused by the retry budget."
    );
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state: 1 for the current state."
    );
    describe_counter!(
        BREAKER_TRANSITIONS,
        "Circuit breaker state changes, by the state entered."
    );
    describe_counter!(
        CACHE_LOOKUPS,
        "Entity cache lookups per id: hit, miss, or stale (served a stale copy because the service failed)."
    );
}

/// How one try (or a call refused before trying) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    NotFound,
    Rejected,
    Unavailable,
    Timeout,
    BadResponse,
    CircuitOpen,
    /// Never sent: an invalid id or a request that cannot be built.
    Refused,
}

impl Outcome {
    const COUNT: usize = 8;

    pub(crate) fn of<T>(result: &Result<T, DownstreamError>) -> Self {
        match result {
            Ok(_) => Outcome::Success,
            Err(DownstreamError::NotFound { .. }) => Outcome::NotFound,
            Err(DownstreamError::Rejected { .. }) => Outcome::Rejected,
            Err(DownstreamError::Unavailable { .. }) => Outcome::Unavailable,
            Err(DownstreamError::Timeout { .. }) => Outcome::Timeout,
            Err(DownstreamError::BadResponse { .. }) => Outcome::BadResponse,
            Err(DownstreamError::CircuitOpen { .. }) => Outcome::CircuitOpen,
            Err(DownstreamError::InvalidId { .. } | DownstreamError::Unsendable { .. }) => {
                Outcome::Refused
            }
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::NotFound => "not_found",
            Outcome::Rejected => "rejected",
            Outcome::Unavailable => "unavailable",
            Outcome::Timeout => "timeout",
            Outcome::BadResponse => "bad_response",
            Outcome::CircuitOpen => "circuit_open",
            Outcome::Refused => "refused",
        }
    }
}

pub(crate) fn call(service: Service, outcome: Outcome, took: Option<Duration>) {
    let register = || counter!(CALLS, "service" => service.name(), "outcome" => outcome.name());
    SERVICES.with(|handles| match handles {
        Some(handles) => handles.calls[service as usize][outcome as usize]
            .get_or_init(register)
            .increment(1),
        None => register().increment(1),
    });
    if let Some(took) = took {
        let register = || histogram!(CALL_DURATION, "service" => service.name());
        let seconds = took.as_secs_f64();
        SERVICES.with(|handles| match handles {
            Some(handles) => handles.durations[service as usize]
                .get_or_init(register)
                .record(seconds),
            None => register().record(seconds),
        });
    }
}

pub(crate) fn retry(service: Service, granted: bool) {
    let result = if granted {
        "granted"
    } else {
        "budget_exhausted"
    };
    let register = || counter!(RETRIES, "service" => service.name(), "result" => result);
    SERVICES.with(|handles| match handles {
        Some(handles) => handles.retries[service as usize][usize::from(granted)]
            .get_or_init(register)
            .increment(1),
        None => register().increment(1),
    });
}

const STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
];

pub(crate) fn breaker_state(service: Service, current: BreakerState) {
    for state in STATES {
        gauge!(BREAKER_STATE, "service" => service.name(), "state" => state.name())
            .set(f64::from(u8::from(state == current)));
    }
}

pub(crate) fn breaker_transition(service: Service, to: BreakerState) {
    counter!(BREAKER_TRANSITIONS, "service" => service.name(), "to" => to.name()).increment(1);
    breaker_state(service, to);
}

/// What a cache lookup of one id did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheEvent {
    Hit,
    /// Missed in this replica's memory, found in the second level (Redis).
    SharedHit,
    Miss,
    /// Served a stale copy because the service failed.
    Stale,
}

impl CacheEvent {
    const COUNT: usize = 4;

    fn name(self) -> &'static str {
        match self {
            CacheEvent::Hit => "hit",
            CacheEvent::SharedHit => "shared_hit",
            CacheEvent::Miss => "miss",
            CacheEvent::Stale => "stale",
        }
    }
}

/// The lookup counters of one entity cache (one `kind`), kept by the cache.
#[derive(Debug, Default)]
pub(crate) struct CacheCounters(Memo<[OnceLock<Counter>; CacheEvent::COUNT]>);

impl CacheCounters {
    /// Counts `lookups` ids of the cache `kind` that ended as `event`.
    pub(crate) fn add(&self, kind: &'static str, event: CacheEvent, lookups: u64) {
        if lookups == 0 {
            return;
        }
        let register = || counter!(CACHE_LOOKUPS, "cache" => kind, "result" => event.name());
        self.0.with(|handles| match handles {
            Some(handles) => handles[event as usize]
                .get_or_init(register)
                .increment(lookups),
            None => register().increment(lookups),
        });
    }
}

/// The per-service handles, registered with the recorder on first use of
/// each label combination (so /metrics lists only what happened, as when
/// every event registered its own).
#[derive(Debug, Default)]
struct ServiceHandles {
    calls: [[OnceLock<Counter>; Outcome::COUNT]; Service::ALL.len()],
    durations: [OnceLock<Histogram>; Service::ALL.len()],
    /// By `granted`: budget_exhausted, granted.
    retries: [[OnceLock<Counter>; 2]; Service::ALL.len()],
}

static SERVICES: Memo<ServiceHandles> = Memo::new();

/// Metric handles kept for the recorder that was current when they were
/// first needed: registering a metric hashes its name and labels and looks
/// it up in the recorder's registry, which costs far more than the atomic
/// add of an event. A handle belongs to the recorder that issued it (one
/// issued before a recorder was installed is a no-op forever), so the memo
/// is only used while that recorder is still the current one; under any
/// other recorder every event registers afresh, as the macros do. (A
/// thread-local recorder of the same size at the address of an earlier,
/// dropped one would pass for it; nothing here uses local recorders.)
#[derive(Debug)]
struct Memo<T> {
    cell: OnceLock<(RecorderId, T)>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Memo<T> {
    const fn new() -> Self {
        Self {
            cell: OnceLock::new(),
        }
    }
}

impl<T: Default> Memo<T> {
    /// Runs `f` with the handles of the current recorder, or `None` when
    /// they are not kept (see [`RecorderId::of`]) or were kept for another.
    fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        metrics::with_recorder(|recorder| {
            let Some(id) = RecorderId::of(recorder) else {
                return f(None);
            };
            let (kept_for, handles) = self.cell.get_or_init(|| (id, T::default()));
            f((*kept_for == id).then_some(handles))
        })
    }
}

/// Which recorder a memo belongs to: where it lives, and its size and
/// alignment to tell apart a recorder from one nested at the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecorderId {
    addr: usize,
    size: usize,
    align: usize,
}

impl RecorderId {
    /// `None` for a zero-sized recorder (the no-op one the facade uses
    /// until one is installed): such values share addresses, so their
    /// handles are never kept, and the installed recorder's can be.
    fn of(recorder: &dyn Recorder) -> Option<Self> {
        let size = std::mem::size_of_val(recorder);
        (size != 0).then(|| Self {
            addr: std::ptr::from_ref(recorder).cast::<()>().addr(),
            size,
            align: std::mem::align_of_val(recorder),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use metrics::{Gauge, Key, KeyName, Metadata, SharedString};

    use super::*;

    /// Counts events and registrations per key (`name{labels}`).
    #[derive(Default)]
    struct TestRecorder {
        counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
        registrations: Mutex<HashMap<String, u64>>,
    }

    impl TestRecorder {
        fn value(&self, key: &str) -> u64 {
            let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            counters.get(key).map_or(0, |c| c.load(Ordering::Relaxed))
        }

        fn registrations(&self, key: &str) -> u64 {
            let registrations = self.registrations.lock().unwrap_or_else(|e| e.into_inner());
            registrations.get(key).copied().unwrap_or(0)
        }
    }

    impl Recorder for TestRecorder {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}=\"{}\"", label.key(), label.value()))
                .collect();
            let key = format!("{}{{{}}}", key.name(), labels.join(", "));
            *self
                .registrations
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.clone())
                .or_default() += 1;
            let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            Counter::from_arc(Arc::clone(counters.entry(key).or_default()))
        }

        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }

        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// The only test of this binary that installs a recorder (the others
    /// then record into it, on other keys).
    #[test]
    fn kept_handles_count_into_the_installed_recorder_only() {
        // Before any recorder: nothing kept, nothing breaks.
        call(Service::Device, Outcome::Success, None);
        let cache = CacheCounters::default();
        cache.add("device-test", CacheEvent::Hit, 2);

        let global: &'static TestRecorder = Box::leak(Box::default());
        assert!(metrics::set_global_recorder(global).is_ok());
        for _ in 0..3 {
            call(Service::Device, Outcome::Success, None);
            cache.add("device-test", CacheEvent::Hit, 2);
        }
        retry(Service::Device, false);
        cache.add("device-test", CacheEvent::Stale, 0);

        let calls = r#"downstream_calls_total{service="device", outcome="success"}"#;
        let hits = r#"downstream_cache_lookups_total{cache="device-test", result="hit"}"#;
        let refused = r#"downstream_retries_total{service="device", result="budget_exhausted"}"#;
        let stale = r#"downstream_cache_lookups_total{cache="device-test", result="stale"}"#;
        assert_eq!(global.value(calls), 3);
        assert_eq!(global.value(hits), 6);
        assert_eq!(global.value(refused), 1);
        assert_eq!(global.registrations(stale), 0, "nothing to count");
        assert_eq!(global.registrations(calls), 1, "registered once, then kept");
        assert_eq!(global.registrations(hits), 1);

        // Another recorder, current on this thread: gets its own counts.
        let local = TestRecorder::default();
        metrics::with_local_recorder(&local, || {
            call(Service::Device, Outcome::Success, None);
            cache.add("device-test", CacheEvent::Hit, 1);
        });
        assert_eq!(local.value(calls), 1);
        assert_eq!(local.value(hits), 1);
        assert_eq!(global.value(calls), 3);
        assert_eq!(global.value(hits), 6);
    }
}
