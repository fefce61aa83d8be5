//! Reference implementations of the five downstream services (user, product,
//! order, recommendation, device) for end-to-end tests and local development.
//!
//! - [`seed`]: the deterministic data they start from (documented facts).
//! - [`control`]: per-route request counters, a request log and fault injection,
//!   from Rust ([`Control`]) or over HTTP (`/__control/...` on each service).
//! - The order service's event stream, `GET /order-events` (server-sent
//!   events, resumable with `Last-Event-ID` over the last
//!   [`EVENT_LOG_CAPACITY`] events), with control routes that change an
//!   order's status and cut the open streams (see [`control`]).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use devstack_services::{Fault, Service, Services};
//! let services = Services::spawn_ephemeral().await?;
//! let config = downstream::DownstreamConfig::with_urls(services.urls());
//! services.product.control.set_fault(Fault::new("/products").status(503).rate(0.5));
//! // ... exercise a BFF built from `config` ...
//! assert_eq!(services.get(Service::Product).control.count("GET /products/{id}"), 1);
//! # Ok(()) }
//! ```
//!
//! All five services of one [`Services`] share one state (the order service
//! prices quotes from the catalog, analytics derive from orders); separate
//! `Services` instances are independent, so tests can run in parallel.

pub mod control;
pub mod seed;
mod services;
pub mod tokens;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use control::{Control, Counters, Fault, RecordedRequest};
pub use downstream::Service;
pub use services::{DEFAULT_KEEP_ALIVE, EVENT_LOG_CAPACITY};
pub use tokens::{TokenKind, issue_dev_token};

/// The five services, each running on its own listener. Dropping this stops
/// accepting connections on all five, so keep it alive for as long as you use
/// the services.
#[derive(Debug)]
pub struct Services {
    pub user: ServiceHandle,
    pub product: ServiceHandle,
    pub order: ServiceHandle,
    pub recommendation: ServiceHandle,
    pub device: ServiceHandle,
}

/// One running service.
#[derive(Debug)]
pub struct ServiceHandle {
    pub service: Service,
    /// The bound address (the real port when spawned on port 0).
    pub addr: SocketAddr,
    pub control: Control,
    _task: AbortOnDrop,
}

/// Aborts the server task when its handle goes away.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ServiceHandle {
    /// Base URL, e.g. `http://127.0.0.1:7101` (a wildcard bind address is
    /// reported as loopback, which is where a local client connects).
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }
}

impl Services {
    /// Each service on `127.0.0.1:0` (tests).
    pub async fn spawn_ephemeral() -> std::io::Result<Services> {
        Self::spawn_with(|_| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await
    }

    /// Each service on `ip:service.default_port()` (the dev binary).
    pub async fn spawn_on(ip: IpAddr) -> std::io::Result<Services> {
        Self::spawn_with(|service| SocketAddr::new(ip, service.default_port())).await
    }

    async fn spawn_with(addr: impl Fn(Service) -> SocketAddr) -> std::io::Result<Services> {
        let state = Arc::new(services::AppState::new(seed::Seed::new()));
        let spawn = |service| spawn_service(service, addr(service), state.clone());
        Ok(Services {
            user: spawn(Service::User).await?,
            product: spawn(Service::Product).await?,
            order: spawn(Service::Order).await?,
            recommendation: spawn(Service::Recommendation).await?,
            device: spawn(Service::Device).await?,
        })
    }

    pub fn get(&self, service: Service) -> &ServiceHandle {
        match service {
            Service::User => &self.user,
            Service::Product => &self.product,
            Service::Order => &self.order,
            Service::Recommendation => &self.recommendation,
            Service::Device => &self.device,
        }
    }

    /// In [`Service::ALL`] order.
    pub fn all(&self) -> [&ServiceHandle; 5] {
        Service::ALL.map(|s| self.get(s))
    }

    /// Base URLs in [`Service::ALL`] order, e.g. for
    /// `downstream::DownstreamConfig::with_urls`.
    pub fn urls(&self) -> [url::Url; 5] {
        self.all()
            .map(|h| url::Url::parse(&h.url()).expect("a socket address makes a valid URL"))
    }

    /// Resets every service's counters, log and faults (not the data).
    pub fn reset(&self) {
        for handle in self.all() {
            handle.control.reset();
        }
    }
}

async fn spawn_service(
    service: Service,
    addr: SocketAddr,
    state: Arc<services::AppState>,
) -> std::io::Result<ServiceHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let control = Control::new();
    let app = services::app(service, state, control.clone());
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%service, %error, "devstack service stopped");
        }
    });
    tracing::debug!(%service, %addr, "devstack service listening");
    Ok(ServiceHandle {
        service,
        addr,
        control,
        _task: AbortOnDrop(task),
    })
}

/// `(method, path pattern)` of every route `service` serves, `/__control`
/// aside, e.g. `("GET", "/products/{id}")`. The routers are built from the
/// same tables, so this is exactly what is served.
pub fn routes(service: Service) -> Vec<(&'static str, &'static str)> {
    services::routes(service)
        .into_iter()
        .map(|(method, path)| (method_name(&method), path))
        .collect()
}

fn method_name(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
