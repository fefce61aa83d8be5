//! `GET /metrics`: the process's metrics (the downstream crate's calls,
//! retries, breakers and caches; see `downstream::telemetry`; and the
//! front door's client connections, below) in the Prometheus text format.
//!
//! | metric | labels |
//! |---|---|
//! | `http_connections_open` (gauge) | — |
//! | `http_connections_refused_total` (over `connections.max_open`) | — |
//! | `http_connections_timed_out_total` | `timeout` = `header_read` / `keep_alive` |
//! | `http_accept_errors_total` (e.g. out of file descriptors) | — |

use std::sync::OnceLock;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use downstream::telemetry::CALL_DURATION;
use http::{StatusCode, header};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of the downstream call-duration histogram, in seconds.
const CALL_DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
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

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's metrics recorder, once;
/// `None` if another recorder was installed first.
pub fn install_prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(CALL_DURATION.to_owned()),
                    &CALL_DURATION_BUCKETS,
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

/// Help texts of the front door's own metrics.
fn describe_metrics() {
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
