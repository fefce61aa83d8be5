//! Per-client rate limiting: a token bucket (GCRA, `governor`) per client,
//! refilled at `rps` per second and holding at most `burst` requests.
//!
//! The client is the token's subject when signed in (so one user behind a
//! shared NAT does not starve the others), the client IP otherwise: the
//! peer address, or the right-most entry of a configured header written by
//! a trusted reverse proxy. A request over the limit gets 429 with
//! `Retry-After`; a GraphQL BFF's body is a GraphQL error RATE_LIMITED with
//! `extensions.retryAfterSecs`, a REST BFF's its usual error body.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::{HeaderMap, HeaderName};

use crate::auth::Authentication;
use crate::config::RateLimitConfig;
use crate::error::{BffError, ErrorBody, graphql_error_response};

/// Paths never limited: orchestrators and scrapers poll them from one address.
const EXEMPT_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Every this many checks, buckets that are full again are dropped, so
/// clients seen once do not stay in memory.
const CLEANUP_EVERY: u64 = 4_096;

/// Who a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    Subject(String),
    Ip(IpAddr),
    /// No peer address and no proxy header (e.g. an in-process test
    /// request): all such requests share one bucket.
    Unknown,
}

/// How a refusal is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RefusalShape {
    /// `{"errors": [{"message", "extensions": {"code", "retryAfterSecs"}}]}`.
    GraphQl,
    /// The BFF's REST error body.
    Rest(ErrorBody),
}

/// The per-client limiter of one BFF process.
#[derive(Clone)]
pub(crate) struct ClientRateLimit {
    limiter: Arc<RateLimiter<ClientKey, DefaultKeyedStateStore<ClientKey>, DefaultClock>>,
    client_ip_header: Option<HeaderName>,
    checks: Arc<AtomicU64>,
    pub(crate) shape: RefusalShape,
}

impl std::fmt::Debug for ClientRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRateLimit")
            .field("client_ip_header", &self.client_ip_header)
            .finish_non_exhaustive()
    }
}

impl ClientRateLimit {
    /// `None` when the config turns rate limiting off.
    pub(crate) fn new(config: &RateLimitConfig, shape: RefusalShape) -> Option<Self> {
        let rps = NonZeroU32::new(config.rps)?;
        let burst = NonZeroU32::new(config.burst)?;
        let client_ip_header = config
            .client_ip_header
            .as_deref()
            .and_then(|name| HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok());
        Some(Self {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rps).allow_burst(burst),
            )),
            client_ip_header,
            checks: Arc::new(AtomicU64::new(0)),
            shape,
        })
    }

    fn key(&self, request: &Request) -> ClientKey {
        if let Some(Authentication::Viewer(viewer)) = request.extensions().get::<Authentication>() {
            return ClientKey::Subject(viewer.user_id.clone());
        }
        if let Some(name) = &self.client_ip_header {
            return forwarded_ip(request.headers(), name).map_or(ClientKey::Unknown, ClientKey::Ip);
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(ClientKey::Unknown, |ConnectInfo(peer)| {
                ClientKey::Ip(peer.ip())
            })
    }

    /// `Err(seconds to wait)` when the client's bucket is empty.
    fn check(&self, key: &ClientKey) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % CLEANUP_EVERY == CLEANUP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            // Whole seconds, rounded up: retrying earlier would fail again.
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    fn refusal(&self, retry_after_secs: u64) -> Response {
        let error = BffError::RateLimited {
            retry_after_secs: retry_after_secs.max(1),
        };
        match self.shape {
            RefusalShape::Rest(body) => error.into_response_with(body),
            RefusalShape::GraphQl => graphql_error_response(error),
        }
    }
}

/// The right-most address in `name` (a proxy appends the peer it saw).
fn forwarded_ip(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    let last = headers.get_all(name).iter().next_back()?;
    let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

impl ClientRateLimit {
    /// The refusal for a client over its rate; `None` lets the request
    /// through. Call it after authentication (it reads the
    /// [`Authentication`]).
    pub(crate) fn refuse(&self, request: &Request) -> Option<Response> {
        if EXEMPT_PATHS.contains(&request.uri().path()) {
            return None;
        }
        let key = self.key(request);
        self.check(&key).err().map(|retry_after_secs| {
            static REFUSED: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
            crate::metrics::kept(&REFUSED, || metrics::counter!(crate::metrics::RATE_LIMITED))
                .increment(1);
            self.refusal(retry_after_secs)
        })
    }
}
