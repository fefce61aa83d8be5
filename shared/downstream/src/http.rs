//! The HTTP plumbing under every typed client: one shared pooled client
//! (reqwest, with rustls), contract-aware status mapping, deadlines and the
//! propagated headers.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use tokio::time::Instant;
use url::Url;

use crate::is_valid_id;
use crate::resilience::{CircuitBreaker, RetryPolicy, is_retryable};
use crate::spans::{self, ClientSpan, TryInfo};
use crate::{DownstreamConfig, DownstreamError, RequestContext, Service, TraceParent, telemetry};

/// Pool tuning for one process talking to a handful of services on a fast network.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const POOL_MAX_IDLE_PER_HOST: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest URI the `http` crate (and so reqwest) can send: a longer
/// URL is refused before the breaker is asked, like any unsendable request.
const MAX_URI_LEN: usize = u16::MAX as usize - 1;
/// Least time a retry must have left before the deadline to be worth making.
const MIN_RETRY_TRY: Duration = Duration::from_millis(20);

// The propagated headers, named once rather than parsed from a `&str` per call.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The process's one HTTP client (reqwest): every downstream call and the
/// JWKS fetch go through it. HTTP/1.1 with a keep-alive pool, plain or TLS
/// (rustls, Mozilla's roots; no OpenSSL). Redirects are never followed:
/// downstream base URLs are configured, and following one would let a
/// service send the BFF (and its headers) elsewhere. No proxy is taken from
/// the environment: where calls go is what the config says.
pub type HttpClient = reqwest::Client;

/// Why the client could not be built: the TLS backend refused its settings.
pub type HttpClientError = reqwest::Error;

/// Builds the process-wide HTTP client. Call once at start-up and clone the
/// result (it is an `Arc`); fails only when the TLS backend cannot start.
pub fn build_http_client() -> Result<HttpClient, HttpClientError> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .http1_only()
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        // Retries are ours (GET only, budgeted, by deadline). With no retry
        // left to make, reqwest also skips copying every request in case
        // of one.
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .build()
}

/// The body of a GET several callers wait for (`Bytes`: shared, not copied).
type Flight = Shared<BoxFuture<'static, Result<Bytes, DownstreamError>>>;

/// GETs in flight, by viewer and URL.
type Flights = Arc<Mutex<HashMap<String, Flight>>>;

/// One downstream service: where it lives and how long a call may take.
/// Cheap to clone (one `Arc`): every client request clones the clients.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint(Arc<EndpointInner>);

impl std::ops::Deref for Endpoint {
    type Target = EndpointInner;

    fn deref(&self) -> &EndpointInner {
        &self.0
    }
}

#[derive(Debug)]
pub(crate) struct EndpointInner {
    service: Service,
    base: Url,
    timeout: Duration,
    http: HttpClient,
    retry: Arc<RetryPolicy>,
    breaker: CircuitBreaker,
    in_flight: Flights,
    coalesce_gets: bool,
}

/// A request being built against an [`Endpoint`].
pub(crate) struct Call<'a> {
    endpoint: &'a Endpoint,
    method: Method,
    url: Url,
    /// Route pattern for logs, e.g. `GET /products/{id}`: never ids or query strings.
    route: &'static str,
    body: Option<Bytes>,
    idempotency_key: Option<&'a str>,
    /// Set when the call must not be made (an invalid id): sending it
    /// answers this error without touching the service.
    refused: Option<DownstreamError>,
    /// The entity cache whose misses this call fetches (for its trace span).
    cache: Option<&'static str>,
    /// A GET that must not join one already in flight (it must see a change
    /// made after that one started).
    fresh: bool,
}

impl Endpoint {
    pub(crate) fn new(service: Service, config: &DownstreamConfig, http: HttpClient) -> Self {
        let mut base = config.service(service).url.clone();
        // Keep any path prefix of the base URL (`http://gw/user-svc`) when
        // appending segments.
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty();
        }
        Self(Arc::new(EndpointInner {
            service,
            base,
            timeout: config.timeout(service),
            http,
            retry: Arc::new(RetryPolicy::new(&config.retry(service))),
            breaker: CircuitBreaker::new(service, &config.breaker(service)),
            in_flight: Flights::default(),
            coalesce_gets: config.coalesce_gets,
        }))
    }

    /// When a call (every try and back-off) must end: the service's timeout
    /// from now, or the request's deadline if that comes first. Bounding the
    /// whole call, not each try, keeps one hanging service from eating the
    /// time a later round of the same request (e.g. the dashboard's product
    /// batch) needs.
    fn call_deadline(&self, ctx: &RequestContext) -> Instant {
        let own = Instant::now() + self.timeout;
        ctx.deadline.map_or(own, |deadline| deadline.min(own))
    }

    /// Starts a call to `base/segments...`. Each segment is percent-encoded
    /// and must be a valid id ([`is_valid_id`]; the fixed ones are): the
    /// url crate silently drops `.` and `..` segments, so without the check
    /// a client id could change the path. A call with an invalid segment is
    /// refused when sent, without reaching the service.
    pub(crate) fn call<'a>(
        &'a self,
        method: Method,
        route: &'static str,
        segments: &[&str],
    ) -> Call<'a> {
        let mut url = self.base.clone();
        let refused = if segments.iter().all(|segment| is_valid_id(segment)) {
            if let Ok(mut path) = url.path_segments_mut() {
                path.extend(segments);
            }
            None
        } else {
            tracing::debug!(service = %self.service, route, "invalid id: call refused");
            Some(DownstreamError::InvalidId {
                service: self.service,
            })
        };
        Call {
            endpoint: self,
            method,
            url,
            route,
            body: None,
            idempotency_key: None,
            refused,
            cache: None,
            fresh: false,
        }
    }
}

impl<'a> Call<'a> {
    pub(crate) fn query(mut self, key: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(key, value);
        self
    }

    /// A query parameter holding an id, checked like a path segment.
    pub(crate) fn query_id(self, key: &str, id: &str) -> Self {
        if is_valid_id(id) {
            self.query(key, id)
        } else {
            let service = self.endpoint.service;
            Self {
                refused: Some(DownstreamError::InvalidId { service }),
                ..self
            }
        }
    }

    pub(crate) fn json<B: Serialize>(mut self, body: &B) -> Self {
        // Our own models always serialize; an empty body would fail loudly downstream.
        self.body = serde_json::to_vec(body).ok().map(Bytes::from);
        self
    }

    /// Never shares an identical GET already in flight: its answer must
    /// reflect everything that happened before this call.
    pub(crate) fn fresh(mut self) -> Self {
        self.fresh = true;
        self
    }

    pub(crate) fn idempotency_key(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// Marks the call as the one `cache` makes for its misses (its trace
    /// span says so).
    pub(crate) fn for_cache(mut self, cache: Option<&'static str>) -> Self {
        self.cache = cache;
        self
    }

    /// Sends the call and decodes a JSON body. Identical GETs in flight at
    /// the same time (same URL, same viewer) share one call.
    pub(crate) async fn fetch<T: DeserializeOwned>(
        self,
        ctx: &RequestContext,
    ) -> Result<T, DownstreamError> {
        let service = self.endpoint.service;
        let route = self.route;
        // UTF-8 checked once for the whole body: `from_slice` checks each
        // string on its own, which cost more (~3% of a dashboard request).
        let decode = |bytes: &[u8]| {
            let text = std::str::from_utf8(bytes).map_err(|error| {
                tracing::warn!(%service, route, %error, "downstream response is not UTF-8");
                DownstreamError::BadResponse { service }
            })?;
            serde_json::from_str(text).map_err(|error| {
                tracing::warn!(%service, route, %error, "downstream response breaks the contract");
                DownstreamError::BadResponse { service }
            })
        };
        if let Some(refusal) = self.refused {
            telemetry::call(service, telemetry::Outcome::Refused, None);
            return Err(refusal);
        }
        // Back-off and waiting on a call another request started count too.
        let _waiting = ctx.waits.enter();
        if self.method == Method::GET
            && self.body.is_none()
            && self.endpoint.coalesce_gets
            && !self.fresh
        {
            decode(&self.send_coalesced(ctx).await?)
        } else {
            decode(&self.send(ctx).await?)
        }
    }

    /// [`Call::send`], shared with identical GETs already in flight. The
    /// shared call runs as its own task (bounded by the deadline of the
    /// caller that started it), so a caller that gives up cancels no one
    /// else. A caller that joined a call which then timed out still has its
    /// own time left: it then makes its own call.
    async fn send_coalesced(self, ctx: &RequestContext) -> Result<Bytes, DownstreamError> {
        let endpoint = self.endpoint;
        let service = endpoint.service;
        let deadline = endpoint.call_deadline(ctx);
        let (user, url) = (ctx.user_id.as_deref().unwrap_or(""), self.url.as_str());
        let mut key = String::with_capacity(user.len() + 1 + url.len());
        key.extend([user, "\n", url]);
        // `own`: this call, kept only when it joined another's (it may
        // have to be made after all).
        let (flight, own) = {
            let mut flights = endpoint
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match flights.entry(key) {
                Entry::Occupied(entry) => (entry.get().clone(), Some(self)),
                Entry::Vacant(entry) => {
                    let flight = self.spawn_flight(ctx, entry.key().clone());
                    entry.insert(flight.clone());
                    (flight, None)
                }
            }
        };
        let Ok(result) = tokio::time::timeout_at(deadline, flight).await else {
            return Err(DownstreamError::Timeout { service });
        };
        match (result, own) {
            (Err(DownstreamError::Timeout { .. }), Some(call))
                if deadline.saturating_duration_since(Instant::now()) >= MIN_RETRY_TRY =>
            {
                call.send_by(ctx, deadline).await
            }
            (result, _) => result,
        }
    }

    /// Starts this GET as a task that leaves `in_flight` when done.
    fn spawn_flight(self, ctx: &RequestContext, key: String) -> Flight {
        let endpoint = self.endpoint.clone();
        let (url, route, cache) = (self.url, self.route, self.cache);
        let ctx = ctx.clone();
        let service = endpoint.service;
        let task = tokio::spawn(async move {
            // Leaves `in_flight` however the task ends.
            let _leave = LeaveOnDrop {
                flights: Arc::clone(&endpoint.in_flight),
                key,
            };
            let call = Call {
                endpoint: &endpoint,
                method: Method::GET,
                url,
                route,
                body: None,
                idempotency_key: None,
                refused: None,
                cache,
                fresh: false,
            };
            call.send(&ctx).await
        });
        async move {
            task.await.unwrap_or_else(|error| {
                tracing::error!(%service, route, %error, "downstream call task failed");
                Err(DownstreamError::Unavailable {
                    service,
                    status: None,
                })
            })
        }
        .boxed()
        .shared()
    }

    /// Sends the call and expects no body (204).
    pub(crate) async fn execute(self, ctx: &RequestContext) -> Result<(), DownstreamError> {
        let _waiting = ctx.waits.enter();
        self.send(ctx).await.map(drop)
    }

    /// Sends the call through the service's circuit breaker, retrying an
    /// idempotent (GET) call after a retryable failure while the budget and
    /// the deadline allow, and reads the whole body of a 2xx answer. A call
    /// that is refused or cannot be built fails at once: it is never
    /// retried and counts neither against the breaker nor as a call for
    /// the retry budget.
    async fn send(self, ctx: &RequestContext) -> Result<Bytes, DownstreamError> {
        let deadline = self.endpoint.call_deadline(ctx);
        self.send_by(ctx, deadline).await
    }

    /// [`Call::send`], ending by `deadline`.
    async fn send_by(
        self,
        ctx: &RequestContext,
        deadline: Instant,
    ) -> Result<Bytes, DownstreamError> {
        let endpoint = self.endpoint;
        let service = endpoint.service;
        let route = self.route;
        if let Some(refusal) = &self.refused {
            telemetry::call(service, telemetry::Outcome::Refused, None);
            return Err(refusal.clone());
        }
        let max_retries = if self.method == Method::GET {
            endpoint.retry.max_retries
        } else {
            0
        };
        let mut retries = 0;
        loop {
            // `None` while traces are off: then the request's own trace
            // context goes downstream.
            let span = self.client_span(ctx, retries);
            let trace = span
                .as_ref()
                .map_or(ctx.trace, |span| span.trace(ctx.trace));
            let try_timeout = endpoint
                .retry
                .per_try_timeout
                .unwrap_or(endpoint.timeout)
                .min(deadline.saturating_duration_since(Instant::now()));
            if try_timeout.is_zero() {
                tracing::debug!(%service, route, "request deadline passed before the call");
                telemetry::call(service, telemetry::Outcome::Timeout, None);
                spans::end(span, telemetry::Outcome::Timeout, None);
                return Err(DownstreamError::Timeout { service });
            }
            // Built before the breaker is asked: a request that cannot be
            // sent must take no permit (it would be recorded as a success).
            let request = match self.request(ctx, &trace) {
                Ok(request) => request,
                Err(error) => {
                    spans::end(span, telemetry::Outcome::Refused, None);
                    return Err(error);
                }
            };
            if retries == 0 {
                endpoint.retry.record_call();
            }
            let Some(permit) = endpoint.breaker.try_acquire() else {
                telemetry::call(service, telemetry::Outcome::CircuitOpen, None);
                spans::end(span, telemetry::Outcome::CircuitOpen, None);
                return Err(DownstreamError::CircuitOpen { service });
            };
            let started = Instant::now();
            ctx.waits.count_try();
            // The request moves into reqwest's (boxed) future here rather
            // than through `try_once`'s arguments, which would keep copies of
            // it in every enclosing future (+6% instructions per dashboard,
            // mostly moving those futures).
            let sent = endpoint.http.execute(request);
            let (outcome, status, retry_after) = match self.try_once(ctx, sent, try_timeout).await {
                Ok((status, body)) => (Ok(body), Some(status.as_u16()), None),
                Err(failure) => {
                    let status = status_of(&failure.error);
                    (Err(failure.error), status, failure.retry_after)
                }
            };
            let named = telemetry::Outcome::of(&outcome);
            telemetry::call(service, named, Some(started.elapsed()));
            spans::end(span, named, status);
            permit.record(&outcome);
            let error = match outcome {
                Ok(body) => return Ok(body),
                Err(error) => error,
            };
            if retries >= max_retries || !is_retryable(&error) {
                return Err(error);
            }
            retries += 1;
            let wait = endpoint
                .retry
                .backoff(retries)
                .max(retry_after.unwrap_or_default());
            // A retry without time for a real try would only turn the
            // service's error into a timeout.
            if Instant::now() + wait + MIN_RETRY_TRY >= deadline {
                tracing::debug!(%service, route, ?wait, "no time left to retry");
                return Err(error);
            }
            if !endpoint.retry.try_withdraw() {
                tracing::debug!(%service, route, "retry budget exhausted");
                telemetry::retry(service, false);
                return Err(error);
            }
            telemetry::retry(service, true);
            tracing::debug!(%service, route, retry = retries, ?wait, %error, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// The client span of try number `retries` (0 for the first), when
    /// traces are on.
    fn client_span(&self, ctx: &RequestContext, retries: u32) -> Option<ClientSpan> {
        if !spans::client_spans_enabled() {
            return None;
        }
        let base = &self.endpoint.base;
        ClientSpan::start(
            ctx,
            &TryInfo {
                service: self.endpoint.service,
                method: &self.method,
                route: self.route,
                host: base.host_str(),
                port: base.port_or_known_default(),
                resend_count: retries,
                cache: self.cache,
            },
        )
    }

    /// One try: the status and body of a 2xx answer, all of it read within
    /// `timeout`.
    async fn try_once(
        &self,
        ctx: &RequestContext,
        sent: impl Future<Output = reqwest::Result<reqwest::Response>>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), TryFailure> {
        let service = self.endpoint.service;
        let started = Instant::now();
        let outcome = tokio::time::timeout(timeout, self.exchange(ctx, sent)).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        match outcome {
            Ok(answer) => answer,
            Err(_elapsed) => {
                tracing::debug!(%service, route = self.route, elapsed_ms, "downstream call timed out");
                Err(DownstreamError::Timeout { service }.into())
            }
        }
    }

    /// Waits for the answer to the sent request and reads it.
    async fn exchange(
        &self,
        ctx: &RequestContext,
        sent: impl Future<Output = reqwest::Result<reqwest::Response>>,
    ) -> Result<(StatusCode, Bytes), TryFailure> {
        let endpoint = self.endpoint;
        let (service, route) = (endpoint.service, self.route);
        let response = sent
            .await
            .map_err(|error| map_transport_error(service, route, error))?;
        let status = response.status();
        tracing::debug!(%service, route, status = status.as_u16(), request_id = %ctx.request_id, "downstream call");
        let error = match status {
            s if s.is_success() => {
                return response
                    .bytes()
                    .await
                    .map(|body| (s, body))
                    .map_err(|error| map_transport_error(service, route, error).into());
            }
            StatusCode::NOT_FOUND => DownstreamError::NotFound { service },
            s if s.is_client_error() => DownstreamError::Rejected {
                service,
                status: s.as_u16(),
            },
            s => DownstreamError::Unavailable {
                service,
                status: Some(s.as_u16()),
            },
        };
        Err(TryFailure {
            error,
            retry_after: retry_after(response.headers()),
        })
    }

    /// The HTTP request of this call, sending `trace` as `traceparent`, or
    /// [`DownstreamError::Unsendable`] when a value does not fit in its URI
    /// (over 64 KiB) or a header.
    fn request(
        &self,
        ctx: &RequestContext,
        trace: &TraceParent,
    ) -> Result<reqwest::Request, DownstreamError> {
        self.build_request(ctx, trace).map_err(|reason| {
            let (service, route) = (self.endpoint.service, self.route);
            tracing::debug!(%service, route, reason, "downstream request cannot be sent");
            telemetry::call(service, telemetry::Outcome::Refused, None);
            DownstreamError::Unsendable { service }
        })
    }

    /// The HTTP request of this call, with the propagated headers. Checked
    /// here, before the breaker is asked, for everything reqwest would
    /// refuse only once sent: the URI's length (the url crate's output is
    /// otherwise always a valid URI) and each header value.
    fn build_request(
        &self,
        ctx: &RequestContext,
        trace: &TraceParent,
    ) -> Result<reqwest::Request, &'static str> {
        if self.url.as_str().len() > MAX_URI_LEN {
            return Err("URI too long");
        }
        let mut request = reqwest::Request::new(self.method.clone(), self.url.clone());
        if let Some(body) = &self.body {
            *request.body_mut() = Some(body.clone().into());
        }
        let invalid = |_| "invalid header value";
        let headers = request.headers_mut();
        headers.reserve(5);
        headers.insert(
            X_REQUEST_ID,
            HeaderValue::from_str(&ctx.request_id).map_err(invalid)?,
        );
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_bytes(&trace.header_bytes()).map_err(invalid)?,
        );
        if let Some(user_id) = &ctx.user_id {
            headers.insert(X_USER_ID, HeaderValue::from_str(user_id).map_err(invalid)?);
        }
        if let Some(key) = self.idempotency_key {
            headers.insert(
                IDEMPOTENCY_KEY,
                HeaderValue::from_str(key).map_err(invalid)?,
            );
        }
        if self.body.is_some() {
            headers.insert(http::header::CONTENT_TYPE, APPLICATION_JSON);
        }
        Ok(request)
    }
}

/// Removes a finished GET from its endpoint's `in_flight`.
struct LeaveOnDrop {
    flights: Flights,
    key: String,
}

impl Drop for LeaveOnDrop {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// A failed try, and how long the service asked us to wait before the next.
struct TryFailure {
    error: DownstreamError,
    retry_after: Option<Duration>,
}

impl From<DownstreamError> for TryFailure {
    fn from(error: DownstreamError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// The HTTP status a failed try was answered with, if it was answered.
fn status_of(error: &DownstreamError) -> Option<u16> {
    match error {
        DownstreamError::NotFound { .. } => Some(StatusCode::NOT_FOUND.as_u16()),
        DownstreamError::Rejected { status, .. } => Some(*status),
        DownstreamError::Unavailable { status, .. } => *status,
        _ => None,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by our services
/// and is ignored).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A connection, write or read failure: the service is unavailable (and a
/// GET may be retried). The URL is dropped from the error before it is
/// logged: the route names the call without the ids in its path.
fn map_transport_error(service: Service, route: &str, error: reqwest::Error) -> DownstreamError {
    use std::error::Error as _;
    let error = error.without_url();
    tracing::debug!(%service, route, %error, source = ?error.source(), "downstream transport error");
    if error.is_builder() {
        // Unreachable while `build_request` checks what reqwest checks.
        return DownstreamError::Unsendable { service };
    }
    DownstreamError::Unavailable {
        service,
        status: None,
    }
}
