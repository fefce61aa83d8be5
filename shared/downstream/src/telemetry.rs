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
//! | `downstream_cache_lookups_total` (per id) | `cache`, `result` = `hit` / `miss` / `stale` |

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use crate::resilience::BreakerState;
use crate::{DownstreamError, Service};

pub const CALLS: &str = "downstream_calls_total";
pub const CALL_DURATION: &str = "downstream_call_duration_seconds";
pub const RETRIES: &str = "downstream_retries_total";
pub const BREAKER_STATE: &str = "downstream_breaker_state";
pub const BREAKER_TRANSITIONS: &str = "downstream_breaker_transitions_total";
pub const CACHE_LOOKUPS: &str = "downstream_cache_lookups_total";

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
}

impl Outcome {
    pub(crate) fn of<T>(result: &Result<T, DownstreamError>) -> Self {
        match result {
            Ok(_) => Outcome::Success,
            Err(DownstreamError::NotFound { .. }) => Outcome::NotFound,
            Err(DownstreamError::Rejected { .. }) => Outcome::Rejected,
            Err(DownstreamError::Unavailable { .. }) => Outcome::Unavailable,
            Err(DownstreamError::Timeout { .. }) => Outcome::Timeout,
            Err(DownstreamError::BadResponse { .. }) => Outcome::BadResponse,
            Err(DownstreamError::CircuitOpen { .. }) => Outcome::CircuitOpen,
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
        }
    }
}

pub(crate) fn call(service: Service, outcome: Outcome, took: Option<Duration>) {
    counter!(CALLS, "service" => service.name(), "outcome" => outcome.name()).increment(1);
    if let Some(took) = took {
        histogram!(CALL_DURATION, "service" => service.name()).record(took.as_secs_f64());
    }
}

pub(crate) fn retry(service: Service, granted: bool) {
    let result = if granted {
        "granted"
    } else {
        "budget_exhausted"
    };
    counter!(RETRIES, "service" => service.name(), "result" => result).increment(1);
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
    Miss,
    /// Served a stale copy because the service failed.
    Stale,
}

pub(crate) fn cache(kind: &'static str, event: CacheEvent) {
    let result = match event {
        CacheEvent::Hit => "hit",
        CacheEvent::Miss => "miss",
        CacheEvent::Stale => "stale",
    };
    counter!(CACHE_LOOKUPS, "cache" => kind, "result" => result).increment(1);
}
