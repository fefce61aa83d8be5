//! Per-client rate limiting: a token bucket (GCRA, `governor`) per client,
//! refilled at `rps` per second and holding at most `burst` requests.
//!
//! The client is the token's subject when signed in (so one user behind a
//! shared NAT does not starve the others), the client IP otherwise: the
//! peer address, or the right-most entry of a configured header written by
//! a trusted reverse proxy. A request over the limit gets 429 with
//! `Retry-After`; a GraphQL BFF's body is a GraphQL error RATE_LIMITED with
//! `extensions.retryAfterSecs`, a REST BFF's its usual error body.
//!
//! With Redis (`BFF_REDIS_URL`) a client has one bucket across all replicas:
//! the same GCRA, run by one atomic script on Redis with Redis' clock. When
//! Redis does not answer in time, each replica falls back to its own bucket
//! for that client, so an outage loosens the limit to per replica rather
//! than refusing or admitting everyone.

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
use redis::Script;
use shared_state::SharedState;

use crate::auth::Authentication;
use crate::config::RateLimitConfig;
use crate::error::{BffError, ErrorBody, graphql_error_response};

/// Paths never limited: orchestrators and scrapers poll them from one address.
const EXEMPT_PATHS: [&str; 2] = ["/healthz", "/readyz"];

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

/// GCRA on Redis, atomically. `KEYS[1]` holds the client's theoretical
/// arrival time (TAT) in microseconds of Redis' clock; `ARGV[1]` is the
/// emission interval (µs per request), `ARGV[2]` the burst. Returns 0 when
/// the request may pass, else the µs to wait. Same arithmetic as
/// `governor`: `burst` requests at once, then one per interval.
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return allow_at - now
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
";

/// The per-client limiter of one BFF process.
#[derive(Clone)]
pub(crate) struct ClientRateLimit {
    /// The replica's own buckets: the limit without Redis, the fallback with it.
    limiter: Arc<RateLimiter<ClientKey, DefaultKeyedStateStore<ClientKey>, DefaultClock>>,
    /// The buckets every replica shares (when Redis is configured).
    shared: SharedState,
    script: Script,
    interval_micros: u64,
    burst: u64,
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
    pub(crate) fn new(
        config: &RateLimitConfig,
        shape: RefusalShape,
        shared: SharedState,
    ) -> Option<Self> {
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
            shared,
            script: Script::new(GCRA),
            interval_micros: (1_000_000 / u64::from(rps.get())).max(1),
            burst: u64::from(burst.get()),
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

    /// `Err(seconds to wait)` when the client's bucket is empty: the
    /// shared one when Redis answers, the replica's own otherwise.
    async fn check(&self, key: &ClientKey) -> Result<(), u64> {
        if self.shared.is_enabled() {
            let args = [self.interval_micros, self.burst];
            let shared = self
                .shared
                .run_script::<u64>("rate_limit", &self.script, &key.redis_key(), &args)
                .await;
            if let Ok(wait_micros) = shared {
                return match wait_micros {
                    0 => Ok(()),
                    // Whole seconds, rounded up: retrying earlier would fail again.
                    wait => Err(wait.div_ceil(1_000_000)),
                };
            }
        }
        self.check_locally(key)
    }

    fn check_locally(&self, key: &ClientKey) -> Result<(), u64> {
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

impl ClientKey {
    /// The client's bucket on Redis (under the process's key prefix).
    fn redis_key(&self) -> String {
        match self {
            ClientKey::Subject(subject) => format!("rate:sub:{subject}"),
            ClientKey::Ip(ip) => format!("rate:ip:{ip}"),
            ClientKey::Unknown => "rate:unknown".to_owned(),
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
    pub(crate) fn refuse(
        &self,
        request: &Request,
    ) -> impl Future<Output = Option<Response>> + Send + '_ {
        // Read now, not in the future: a request is not `Sync`, so the
        // future must not hold a reference to it.
        let key = self.limited_client(request);
        async move {
            let key = key?;
            self.check(&key).await.err().map(|retry_after_secs| {
                static REFUSED: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
                crate::metrics::kept(&REFUSED, || metrics::counter!(crate::metrics::RATE_LIMITED))
                    .increment(1);
                self.refusal(retry_after_secs)
            })
        }
    }

    /// The client whose bucket the request draws on; `None` for paths
    /// never limited.
    fn limited_client(&self, request: &Request) -> Option<ClientKey> {
        let path = request.uri().path();
        if EXEMPT_PATHS.contains(&path) || is_static_asset(path) {
            return None;
        }
        Some(self.key(request))
    }
}

/// GraphiQL's files (dev profile): one page load fetches them all at once.
#[cfg(feature = "graphql")]
fn is_static_asset(path: &str) -> bool {
    crate::graphql::graphiql::is_asset_path(path)
}

#[cfg(not(feature = "graphql"))]
fn is_static_asset(_path: &str) -> bool {
    false
}
