//! `GET /metrics`: the process's metrics (the downstream crate's calls,
//! retries, breakers and caches; see `downstream::telemetry`) in the
//! Prometheus text format.

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
