//! `GET /metrics`: the process's metrics in the Prometheus text format.
//! Every series carries the label `bff` = the binary's name
//! ([`crate::binary_name`]: `web-bff`, `mobile-bff`, `iot-bff`).
//! [`exported_metric_names`] lists them all (dashboards and alert rules
//! may name only those). The downstream crate's calls, retries, breakers
//! and caches are in `downstream::telemetry`; the front door's own:
//!
//! | metric | labels |
//! |---|---|
//! | `http_server_request_duration_seconds` (histogram) | `http_route` (the route template, e.g. `/v1/devices/{id}/status`; `unmatched` when no route matched), `http_request_method` (`_OTHER` for non-standard ones), `http_response_status_code` (499 for a request abandoned before its answer) |
//! | `http_server_active_requests` (gauge) | — |
//! | `bff_request_self_duration_seconds` (histogram): the request's time minus its downstream wait | `http_route` |
//! | `bff_request_downstream_wait_seconds` (histogram): wall time with at least one downstream call in flight (back-off between tries included) | `http_route` |
//! | `graphql_operations_total` | `operation_name` (`""` for an anonymous operation), `operation_type` (`query` / `mutation` / `subscription`), `client_name`, `client_version` (the `apollographql-client-name` / `-version` headers; `""` without) |
//! | `graphql_errors_total` (each error of a GraphQL response, the front door's GraphQL-shaped refusals included) | `code` (`extensions.code`: an [`ErrorCode`]; `other` for any other code, `none` without one, e.g. a syntax or validation error) |
//! | `graphql_requests_total` | `validation` = `full` / `remembered` |
//! | `bff_rate_limited_requests_total` | — |
//! | `persisted_queries_total` (mobile-bff) | `result` = `hit` / `miss` / `registered` |
//! | `graphql_subscriptions_open` (gauge; WebSocket, SSE and multipart together) | — |
//! | `graphql_subscriptions_ended_total` (ended by the server) | `reason` = `slow_client` / `token_expired` / `shutting_down` |
//! | `http_connections_open` (gauge) | — |
//! | `http_connections_refused_total` (over `connections.max_open`) | — |
//! | `http_connections_timed_out_total` | `timeout` = `header_read` / `keep_alive` |
//! | `http_accept_errors_total` (e.g. out of file descriptors) | — |
//!
//! Label values that clients choose (operation and client names and
//! versions) are bounded (see `observe.rs`): per label the first values
//! seen are kept, later ones are counted as `other`, and
//! `graphql_operations_total` has at most [`MAX_OPERATION_SERIES`] series.

use std::sync::OnceLock;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use downstream::telemetry::CALL_DURATION;
use http::{StatusCode, header};
use metrics::{Counter, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ErrorCode;
pub use crate::observe::{
    CLIENT_CLOSED_REQUEST, CLIENT_NAME_HEADER, CLIENT_VERSION_HEADER, MAX_CLIENT_NAMES,
    MAX_CLIENT_VERSIONS, MAX_LABEL_LEN, MAX_OPERATION_NAMES, MAX_OPERATION_SERIES, OTHER,
};

/// Buckets of the downstream call-duration histogram, in seconds.
const CALL_DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets of the request-duration and downstream-wait histograms, in
/// seconds (OTel's for `http.server.request.duration`).
const REQUEST_DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Buckets of the self-time histogram: the BFF's own work is mostly well
/// under a millisecond.
const SELF_DURATION_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

pub const CONNECTIONS_OPEN: &str = "http_connections_open";
pub const CONNECTIONS_REFUSED: &str = "http_connections_refused_total";
pub const CONNECTIONS_TIMED_OUT: &str = "http_connections_timed_out_total";
pub const ACCEPT_ERRORS: &str = "http_accept_errors_total";
/// GraphQL requests run, by `validation`: `full` (first seen) or
/// `remembered` (passed the limits and full validation before, so only
/// the fast check runs).
pub const GRAPHQL_REQUESTS: &str = "graphql_requests_total";
pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
pub const ACTIVE_REQUESTS: &str = "http_server_active_requests";
pub const SELF_DURATION: &str = "bff_request_self_duration_seconds";
pub const DOWNSTREAM_WAIT: &str = "bff_request_downstream_wait_seconds";
pub const GRAPHQL_OPERATIONS: &str = "graphql_operations_total";
pub const GRAPHQL_ERRORS: &str = "graphql_errors_total";
pub const RATE_LIMITED: &str = "bff_rate_limited_requests_total";
pub const PERSISTED_QUERIES: &str = "persisted_queries_total";
/// GraphQL subscriptions open now, every transport together.
pub const SUBSCRIPTIONS_OPEN: &str = "graphql_subscriptions_open";
/// Subscriptions the server ended, by `reason`: `slow_client`,
/// `token_expired`, `shutting_down`.
pub const SUBSCRIPTIONS_ENDED: &str = "graphql_subscriptions_ended_total";
/// 1 while the last readiness check passed, 0 otherwise (a service
/// unreachable, or the process draining).
pub const READY: &str = "bff_ready";
/// The whole-request deadline in force (`BFF_REQUEST_TIMEOUT_MS`), in
/// seconds: alert rules compare latency with it rather than with a copy.
pub const REQUEST_DEADLINE: &str = "bff_request_deadline_seconds";

/// The front door's own metrics.
const FRONT_DOOR_METRICS: &[&str] = &[
    REQUEST_DURATION,
    ACTIVE_REQUESTS,
    SELF_DURATION,
    DOWNSTREAM_WAIT,
    GRAPHQL_OPERATIONS,
    GRAPHQL_ERRORS,
    GRAPHQL_REQUESTS,
    RATE_LIMITED,
    PERSISTED_QUERIES,
    SUBSCRIPTIONS_OPEN,
    SUBSCRIPTIONS_ENDED,
    READY,
    REQUEST_DEADLINE,
    crate::telemetry::TRACE_SPANS_DROPPED,
    shared_state::CALLS,
    CONNECTIONS_OPEN,
    CONNECTIONS_REFUSED,
    CONNECTIONS_TIMED_OUT,
    ACCEPT_ERRORS,
];

/// Every metric a BFF exports: the front door's and the downstream
/// crate's. A dashboard or alert rule may name only these.
pub fn exported_metric_names() -> Vec<&'static str> {
    FRONT_DOOR_METRICS
        .iter()
        .copied()
        .chain(downstream::telemetry::METRIC_NAMES)
        .collect()
}

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's metrics recorder, once;
/// `None` if another recorder was installed first.
pub fn install_prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .add_global_label("bff", crate::binary_name())
                .set_buckets_for_metric(
                    Matcher::Full(CALL_DURATION.to_owned()),
                    &CALL_DURATION_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(REQUEST_DURATION.to_owned()),
                    &REQUEST_DURATION_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(DOWNSTREAM_WAIT.to_owned()),
                    &REQUEST_DURATION_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(SELF_DURATION.to_owned()),
                    &SELF_DURATION_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
                return None;
            }
            downstream::describe_metrics();
            describe_metrics();
            // Series without labels exist from the start (at 0), so that
            // a rate over them is defined before the first event.
            for name in [
                CONNECTIONS_REFUSED,
                ACCEPT_ERRORS,
                RATE_LIMITED,
                crate::telemetry::TRACE_SPANS_DROPPED,
            ] {
                metrics::counter!(name).absolute(0);
            }
            metrics::gauge!(ACTIVE_REQUESTS).set(0.0);
            crate::telemetry::describe_metrics();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "no metrics upkeep thread; scrapes still fold samples");
            }
            Some(handle)
        })
        .as_ref()
}

/// Whether [`install_prometheus`] installed the recorder: metric handles
/// are kept only then (one made before counts nowhere, forever).
pub(crate) fn installed() -> bool {
    PROMETHEUS.get().is_some_and(Option::is_some)
}

/// The handle in `cell`, made by `make` and kept once the recorder is
/// installed; before, a fresh one each time.
pub(crate) fn kept<T: Clone>(cell: &OnceLock<T>, make: impl FnOnce() -> T) -> T {
    if installed() {
        cell.get_or_init(make).clone()
    } else {
        make()
    }
}

/// What a persisted-query lookup did (mobile-bff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistedQuery {
    /// The hash (or safelist id) named a known query.
    Hit,
    /// It named none: the client must send the text.
    Miss,
    /// The client sent text and hash; the text is stored.
    Registered,
}

impl PersistedQuery {
    fn name(self) -> &'static str {
        match self {
            PersistedQuery::Hit => "hit",
            PersistedQuery::Miss => "miss",
            PersistedQuery::Registered => "registered",
        }
    }
}

/// Counts one persisted-query lookup.
pub fn count_persisted_query(result: PersistedQuery) {
    static HANDLES: [OnceLock<Counter>; 3] = [const { OnceLock::new() }; 3];
    let make = || metrics::counter!(PERSISTED_QUERIES, "result" => result.name());
    kept(&HANDLES[result as usize], make).increment(1);
}

/// Counts one GraphQL error by its `extensions.code`: `None` for an error
/// without one, `Some` of anything not an [`ErrorCode`] counts as `other`.
pub fn count_graphql_error(code: Option<&str>) {
    const OTHER_CODE: usize = ErrorCode::ALL.len();
    const NO_CODE: usize = OTHER_CODE + 1;
    static HANDLES: [OnceLock<Counter>; NO_CODE + 1] = [const { OnceLock::new() }; NO_CODE + 1];
    let index = match code {
        None => NO_CODE,
        Some(code) => ErrorCode::ALL
            .iter()
            .position(|known| known.as_str() == code)
            .unwrap_or(OTHER_CODE),
    };
    let label = match index {
        NO_CODE => "none",
        OTHER_CODE => OTHER,
        known => ErrorCode::ALL[known].as_str(),
    };
    kept(
        &HANDLES[index],
        || metrics::counter!(GRAPHQL_ERRORS, "code" => label),
    )
    .increment(1);
}

/// Help texts of the front door's own metrics.
fn describe_metrics() {
    metrics::describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Duration of HTTP requests, until the response head is ready, by route template, method and status."
    );
    metrics::describe_gauge!(ACTIVE_REQUESTS, "HTTP requests being answered now.");
    metrics::describe_gauge!(
        READY,
        "1 while the last readiness check passed; 0 while a downstream service is unreachable or the process drains."
    );
    metrics::describe_gauge!(
        REQUEST_DEADLINE,
        Unit::Seconds,
        "The whole-request deadline in force (BFF_REQUEST_TIMEOUT_MS)."
    );
    metrics::describe_counter!(
        shared_state::CALLS,
        "Calls to Redis (state shared by the replicas) by op and result: ok, error, timeout, skipped (cooling down after a failure)."
    );
    metrics::describe_histogram!(
        SELF_DURATION,
        Unit::Seconds,
        "Per request, the time spent in the BFF itself: its duration minus its downstream wait."
    );
    metrics::describe_histogram!(
        DOWNSTREAM_WAIT,
        Unit::Seconds,
        "Per request, the wall time during which at least one downstream call (or back-off between its tries) was in flight."
    );
    metrics::describe_counter!(
        GRAPHQL_OPERATIONS,
        "GraphQL operations by name, type and client (apollographql-client-name/-version); client-chosen values beyond a fixed number count as other."
    );
    metrics::describe_counter!(
        GRAPHQL_ERRORS,
        "Errors in GraphQL responses by extensions.code (none: without a code, e.g. syntax or validation)."
    );
    metrics::describe_counter!(
        RATE_LIMITED,
        "Requests refused with 429 because their client was over its rate."
    );
    metrics::describe_counter!(
        PERSISTED_QUERIES,
        "Persisted-query lookups: hit, miss (the client must send the text), registered."
    );
    metrics::describe_gauge!(
        SUBSCRIPTIONS_OPEN,
        "GraphQL subscriptions open now (WebSocket, SSE and multipart together)."
    );
    metrics::describe_counter!(
        SUBSCRIPTIONS_ENDED,
        "GraphQL subscriptions the server ended, by reason: slow_client (its buffer was full), token_expired, shutting_down."
    );
    metrics::describe_gauge!(CONNECTIONS_OPEN, "Client connections open now.");
    metrics::describe_counter!(
        CONNECTIONS_REFUSED,
        "Client connections closed on accept because connections.max_open were open."
    );
    metrics::describe_counter!(
        CONNECTIONS_TIMED_OUT,
        "Client connections closed waiting for a request head: header_read (too slow to send it) or keep_alive (idle too long)."
    );
    metrics::describe_counter!(
        GRAPHQL_REQUESTS,
        "GraphQL requests run, by validation: full (first seen) or remembered (seen pass before; same executor, lighter validation)."
    );
    metrics::describe_counter!(
        ACCEPT_ERRORS,
        "Failed accepts other than clients that went away (e.g. out of file descriptors); each pauses accepting briefly."
    );
}

/// `GET /metrics`
pub async fn metrics() -> Response {
    match install_prometheus() {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                handle.render(),
            )
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
