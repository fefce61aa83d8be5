//! `/healthz` and `/readyz`, on the public listener (for probes that only
//! know the service port) and on the admin listener, and the admin
//! listener's own router (`/metrics` too: never on the public port).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use downstream::Service;
use http::StatusCode;
use serde_json::json;
use tokio::sync::watch;
use url::{Host, Url};

use crate::config::Config;
use crate::metrics::READY;

/// Upper bound on one readiness TCP connect: a healthy service answers a
/// handshake in milliseconds, and orchestrators poll often.
pub const READINESS_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Whether the process is shutting down, shared by its listeners: from the
/// moment the public listener stops accepting, `/readyz` answers 503 on
/// every listener, so a load balancer takes the replica out.
#[derive(Debug, Clone)]
pub struct Draining(Arc<watch::Sender<bool>>);

impl Draining {
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }

    pub(crate) fn start(&self) {
        self.0.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

impl Default for Draining {
    fn default() -> Self {
        Self::new()
    }
}

/// What `/readyz` checks: that each downstream service the BFF calls
/// accepts a TCP connection.
#[derive(Debug)]
pub(crate) struct Readiness {
    targets: Vec<ReadinessTarget>,
}

#[derive(Debug)]
struct ReadinessTarget {
    service: Service,
    url: Url,
    timeout: Duration,
}

impl Readiness {
    pub(crate) fn from_config(config: &Config) -> Arc<Self> {
        let targets = config
            .services
            .iter()
            .map(|&service| ReadinessTarget {
                service,
                url: config.downstream.service(service).url.clone(),
                timeout: config
                    .downstream
                    .timeout(service)
                    .min(READINESS_CONNECT_TIMEOUT),
            })
            .collect();
        Arc::new(Self { targets })
    }

    /// `/healthz` and `/readyz`.
    pub(crate) fn routes(self: Arc<Self>) -> Router {
        Router::new().route("/healthz", get(healthz)).route(
            "/readyz",
            get(move |request: Request| readyz(self, request)),
        )
    }
}

/// The admin listener's router (`BFF_ADMIN_LISTEN`): `/metrics`
/// (Prometheus text), `/healthz`, `/readyz`. No auth, no limits: bind it
/// where only the platform reaches (a pod port not behind the Service's
/// public port, or loopback).
pub fn admin_router(config: &Config) -> Router {
    crate::metrics::install_prometheus();
    Readiness::from_config(config)
        .routes()
        .route("/metrics", get(crate::metrics::metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when not draining and every target accepts a TCP connection. Only
/// service names go in the body: URLs would map the internal network for
/// anyone who asks.
async fn readyz(readiness: Arc<Readiness>, request: Request) -> Response {
    // Served by `serve`, each request knows whether the process drains.
    let draining = request
        .extensions()
        .get::<Draining>()
        .is_some_and(Draining::is_draining);
    if draining {
        metrics::gauge!(READY).set(0.0);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response();
    }
    let checks = readiness.targets.iter().map(|target| async move {
        let reachable = tokio::time::timeout(target.timeout, connect(&target.url))
            .await
            .is_ok_and(|connected| connected.is_ok());
        (target.service, reachable)
    });
    let unreachable: Vec<&str> = futures::future::join_all(checks)
        .await
        .into_iter()
        .filter(|(_, reachable)| !reachable)
        .map(|(service, _)| service.name())
        .collect();
    if unreachable.is_empty() {
        metrics::gauge!(READY).set(1.0);
        Json(json!({ "status": "ready" })).into_response()
    } else {
        metrics::gauge!(READY).set(0.0);
        tracing::warn!(?unreachable, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "unreachable": unreachable })),
        )
            .into_response()
    }
}

async fn connect(url: &Url) -> std::io::Result<()> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| std::io::Error::other("URL without a port"))?;
    // `host_str` keeps IPv6 brackets, which a resolver does not accept.
    let _stream = match url.host() {
        Some(Host::Domain(domain)) => tokio::net::TcpStream::connect((domain, port)).await?,
        Some(Host::Ipv4(ip)) => tokio::net::TcpStream::connect((ip, port)).await?,
        Some(Host::Ipv6(ip)) => tokio::net::TcpStream::connect((ip, port)).await?,
        None => return Err(std::io::Error::other("URL without a host")),
    };
    Ok(())
}
