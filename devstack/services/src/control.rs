//! Per-service request counters, a bounded request log and fault injection.
//!
//! Every service router is wrapped in a middleware, which (for every request
//! except the `/__control` routes) counts it under its route key, logs it, and
//! then applies the matching [`Fault`], if any. Counting happens before the
//! fault, so faulted requests are counted too.
//!
//! The same controls are reachable over HTTP on each service:
//! `GET /__control/counters`, `GET /__control/requests`, `POST /__control/reset`,
//! `GET`/`PUT`/`DELETE /__control/faults`.
//!
//! The order service has three more, which change its data (they are served
//! next to it, in `services/events.rs`):
//! - `POST /__control/orders/{id}/status` with `{"status": "shipped",
//!   "tracking_number": "1Z..."}` moves the order to that status (a
//!   `tracking_number` left out stays as it is, `null` clears it), answers
//!   with the order, and publishes `order.status_changed` on
//!   `GET /order-events` if anything changed. 404 for an unknown order, 400
//!   for a bad status or body.
//! - `GET /__control/order-events`: `{"keep_alive_ms", "open_streams",
//!   "last_event_id", "oldest_event_id"}`; `PUT` with `{"keep_alive_ms": n}`
//!   sets the keep-alive interval of streams opened afterwards (default
//!   [`crate::DEFAULT_KEEP_ALIVE`]).
//! - `POST /__control/order-events/drop` cuts every open event stream (the
//!   client sees its connection fail mid-stream) and answers
//!   `{"dropped": n}`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

/// How many requests [`Control::requests`] keeps (the oldest are dropped).
pub const LOG_CAPACITY: usize = 10_000;

/// Path prefix of the control routes; requests under it are never counted.
pub const CONTROL_PREFIX: &str = "/__control";

/// One request as a service saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The request path, e.g. `/products/p1`.
    pub path: String,
    /// The route key it was counted under, e.g. `GET /products/{id}`.
    pub route: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// The comma-split, decoded `ids` query parameter; empty if none.
    pub ids: Vec<String>,
    /// `x-request-id`
    pub request_id: Option<String>,
    /// `traceparent`
    pub traceparent: Option<String>,
    /// `x-user-id`
    pub user_id: Option<String>,
    /// `idempotency-key`
    pub idempotency_key: Option<String>,
    /// `last-event-id` (event streams resuming)
    #[serde(default)]
    pub last_event_id: Option<String>,
}

/// A fault injected into the requests whose path starts with `prefix` (and,
/// if set, whose method is `method`).
///
/// Latency applies to every matching request. The outcome (`status`/`body`,
/// or `hang`) applies to a deterministic `rate` of them: the n-th matching
/// request gets it iff `floor(n * rate) > floor((n - 1) * rate)`; the others
/// are answered normally after the latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Path prefix, e.g. `/products` or `/` (everything).
    pub prefix: String,
    /// Only this method (case-insensitive); any method if `None`.
    #[serde(default)]
    pub method: Option<String>,
    /// Delay before answering (or before hanging).
    #[serde(default)]
    pub latency_ms: u64,
    /// Answer with this status; the body is `{"error":"injected fault"}`
    /// unless `body` is set.
    #[serde(default)]
    pub status: Option<u16>,
    /// Raw body to send instead of the handler's (status 200 unless `status` is set).
    #[serde(default)]
    pub body: Option<String>,
    /// Fraction of matching requests that get the outcome (status/body/hang).
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Never answer.
    #[serde(default)]
    pub hang: bool,
    /// Adds `Retry-After: N` to injected answers.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

fn default_rate() -> f64 {
    1.0
}

impl Default for Fault {
    /// A fault on every path that does nothing until configured.
    fn default() -> Self {
        Self::new("/")
    }
}

impl Fault {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            method: None,
            latency_ms: 0,
            status: None,
            body: None,
            rate: default_rate(),
            hang: false,
            retry_after_secs: None,
        }
    }

    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into().to_ascii_uppercase());
        self
    }

    pub fn latency(mut self, ms: u64) -> Self {
        self.latency_ms = ms;
        self
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    pub fn hang(mut self) -> Self {
        self.hang = true;
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Why this fault cannot be applied, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !self.prefix.starts_with('/') {
            return Err("prefix must start with '/'".into());
        }
        if !(0.0..=1.0).contains(&self.rate) {
            return Err("rate must be between 0 and 1".into());
        }
        if let Some(status) = self.status
            && StatusCode::from_u16(status).is_err()
        {
            return Err(format!("invalid status {status}"));
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.prefix)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }

    fn same_target(&self, other: &Fault) -> bool {
        self.prefix == other.prefix
            && self.method.as_deref().map(str::to_ascii_uppercase)
                == other.method.as_deref().map(str::to_ascii_uppercase)
    }

    fn has_outcome(&self) -> bool {
        self.hang || self.status.is_some() || self.body.is_some()
    }
}

/// The `n`-th (1-based) request gets the outcome iff the running count of
/// failures `floor(n * rate)` steps up at `n`. The epsilon keeps e.g.
/// `0.29 * 100` (= 28.999…) from losing a step to float rounding.
fn selected(n: u64, rate: f64) -> bool {
    let floor = |k: u64| (k as f64 * rate + 1e-9).floor();
    floor(n) > floor(n - 1)
}

/// `GET /__control/counters`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub total: u64,
    pub routes: BTreeMap<String, u64>,
}

/// Counters, request log and faults of one service. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Control {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    counters: Counters,
    log: VecDeque<RecordedRequest>,
    faults: Vec<ActiveFault>,
}

#[derive(Debug)]
struct ActiveFault {
    fault: Fault,
    /// Matching requests so far, for the deterministic rate.
    seen: u64,
}

/// What the middleware must do with a request.
#[derive(Debug, Default)]
struct Decision {
    latency: Duration,
    outcome: Option<Outcome>,
}

#[derive(Debug)]
enum Outcome {
    Hang,
    Respond {
        status: Option<u16>,
        body: Option<String>,
        retry_after_secs: Option<u64>,
    },
}

impl Control {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave counters half-updated in a way that matters.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests counted under `route`, e.g. `"GET /products/{id}"`.
    pub fn count(&self, route: &str) -> u64 {
        self.lock().counters.routes.get(route).copied().unwrap_or(0)
    }

    /// All requests except the control routes.
    pub fn total(&self) -> u64 {
        self.lock().counters.total
    }

    pub fn counters(&self) -> Counters {
        self.lock().counters.clone()
    }

    /// The last [`LOG_CAPACITY`] requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.iter().cloned().collect()
    }

    /// Adds `fault`, replacing one with the same prefix and method. When several
    /// faults match a request, the longest prefix wins, then a method-specific one.
    pub fn set_fault(&self, fault: Fault) {
        let mut inner = self.lock();
        inner.faults.retain(|f| !f.fault.same_target(&fault));
        inner.faults.push(ActiveFault { fault, seen: 0 });
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.lock().faults.iter().map(|f| f.fault.clone()).collect()
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Clears counters, the log and faults (not the services' data).
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.counters = Counters::default();
        inner.log.clear();
        inner.faults.clear();
    }

    /// Counts and logs the request and decides on its fault, atomically, so
    /// the n-th request of the rate is the n-th to arrive.
    fn record(&self, request: RecordedRequest) -> Decision {
        let mut inner = self.lock();
        inner.counters.total += 1;
        *inner
            .counters
            .routes
            .entry(request.route.clone())
            .or_default() += 1;
        if inner.log.len() >= LOG_CAPACITY {
            inner.log.pop_front();
        }
        let (method, path) = (request.method.clone(), request.path.clone());
        inner.log.push_back(request);

        let Some(active) = inner
            .faults
            .iter_mut()
            .filter(|f| f.fault.matches(&method, &path))
            .max_by_key(|f| (f.fault.prefix.len(), f.fault.method.is_some()))
        else {
            return Decision::default();
        };
        active.seen += 1;
        let fault = &active.fault;
        let outcome = (fault.has_outcome() && selected(active.seen, fault.rate)).then(|| {
            if fault.hang {
                Outcome::Hang
            } else {
                Outcome::Respond {
                    status: fault.status,
                    body: fault.body.clone(),
                    retry_after_secs: fault.retry_after_secs,
                }
            }
        });
        Decision {
            latency: Duration::from_millis(fault.latency_ms),
            outcome,
        }
    }
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn ids_param(query: Option<&str>) -> Vec<String> {
    let Some(query) = query else {
        return Vec::new();
    };
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "ids")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Middleware (`from_fn_with_state`) put around every service router: counts,
/// logs, then applies the matching fault.
pub(crate) async fn track(State(control): State<Control>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path == CONTROL_PREFIX || path.starts_with("/__control/") {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    // Unmatched paths (404s) are counted under their literal path.
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(path.as_str(), MatchedPath::as_str);
    let route = format!("{method} {pattern}");
    let query = req.uri().query().map(str::to_owned);
    let headers = req.headers();
    let recorded = RecordedRequest {
        ids: ids_param(query.as_deref()),
        request_id: header_string(headers, "x-request-id"),
        traceparent: header_string(headers, "traceparent"),
        user_id: header_string(headers, "x-user-id"),
        idempotency_key: header_string(headers, "idempotency-key"),
        last_event_id: header_string(headers, "last-event-id"),
        method,
        path,
        route,
        query,
    };
    let decision = control.record(recorded);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    match decision.outcome {
        None => next.run(req).await,
        Some(Outcome::Hang) => std::future::pending().await,
        Some(Outcome::Respond {
            status,
            body,
            retry_after_secs,
        }) => injected_response(status, body, retry_after_secs),
    }
}

fn injected_response(
    status: Option<u16>,
    body: Option<String>,
    retry_after_secs: Option<u64>,
) -> Response {
    let status = match status {
        // validate() rejects bad statuses over HTTP; the Rust API may still pass one.
        Some(s) => StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        None => StatusCode::OK,
    };
    let body = match body {
        Some(body) => Body::from(body),
        None if status.is_client_error() || status.is_server_error() => {
            Body::from(r#"{"error":"injected fault"}"#)
        }
        None => Body::empty(),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The `/__control` routes of one service.
pub(crate) fn router(control: Control) -> Router {
    Router::new()
        .route("/__control/counters", get(get_counters))
        .route("/__control/requests", get(get_requests))
        .route("/__control/reset", post(post_reset))
        .route(
            "/__control/faults",
            get(get_faults).put(put_fault).delete(delete_faults),
        )
        .with_state(control)
}

async fn get_counters(State(control): State<Control>) -> axum::Json<Counters> {
    axum::Json(control.counters())
}

async fn get_requests(State(control): State<Control>) -> axum::Json<Vec<RecordedRequest>> {
    axum::Json(control.requests())
}

async fn post_reset(State(control): State<Control>) -> StatusCode {
    control.reset();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(control): State<Control>) -> axum::Json<Vec<Fault>> {
    axum::Json(control.faults())
}

async fn put_fault(State(control): State<Control>, body: Bytes) -> Response {
    let fault = match serde_json::from_slice::<Fault>(&body) {
        Ok(fault) => fault,
        Err(e) => return bad_request(format!("invalid fault: {e}")),
    };
    if let Err(e) = fault.validate() {
        return bad_request(e);
    }
    control.set_fault(fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_faults(State(control): State<Control>) -> StatusCode {
    control.clear_faults();
    StatusCode::NO_CONTENT
}

fn bad_request(error: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(downstream::models::ErrorBody { error }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(rate: f64, n: u64) -> Vec<u64> {
        (1..=n).filter(|&k| selected(k, rate)).collect()
    }

    #[test]
    fn rate_is_deterministic_and_exact() {
        assert_eq!(failures(1.0, 5), vec![1, 2, 3, 4, 5]);
        assert_eq!(failures(0.0, 5), Vec::<u64>::new());
        assert_eq!(failures(0.5, 6), vec![2, 4, 6]);
        assert_eq!(failures(0.6, 5), vec![2, 4, 5]);
        assert_eq!(failures(0.29, 100).len(), 29);
        assert_eq!(failures(0.1, 1000).len(), 100);
    }

    #[test]
    fn fault_json_defaults() {
        let fault: Fault = serde_json::from_str(r#"{"prefix":"/products"}"#).unwrap();
        assert_eq!(fault, Fault::new("/products"));
        assert!((fault.rate - 1.0).abs() < f64::EPSILON);
        assert!(serde_json::from_str::<Fault>(r#"{"prefix":"/","sttaus":500}"#).is_err());
    }

    #[test]
    fn most_specific_fault_wins() {
        let control = Control::new();
        control.set_fault(Fault::new("/").status(500));
        control.set_fault(Fault::new("/products").method("get").status(503));
        control.set_fault(Fault::new("/products").method("GET").status(502));
        assert_eq!(control.faults().len(), 2);
        let req = |method: &str, path: &str| RecordedRequest {
            method: method.into(),
            path: path.into(),
            route: format!("{method} {path}"),
            query: None,
            ids: vec![],
            request_id: None,
            traceparent: None,
            user_id: None,
            idempotency_key: None,
            last_event_id: None,
        };
        let status = |d: Decision| match d.outcome {
            Some(Outcome::Respond { status, .. }) => status,
            _ => None,
        };
        assert_eq!(
            status(control.record(req("GET", "/products/p1"))),
            Some(502)
        );
        assert_eq!(
            status(control.record(req("POST", "/products/p1"))),
            Some(500)
        );
        assert_eq!(control.total(), 2);
    }

    #[test]
    fn log_keeps_the_newest_entries() {
        let control = Control::new();
        for n in 0..LOG_CAPACITY + 5 {
            let path = format!("/r/{n}");
            control.record(RecordedRequest {
                method: "GET".into(),
                route: format!("GET {path}"),
                path,
                query: None,
                ids: vec![],
                request_id: None,
                traceparent: None,
                user_id: None,
                idempotency_key: None,
                last_event_id: None,
            });
        }
        let log = control.requests();
        assert_eq!(log.len(), LOG_CAPACITY);
        assert_eq!(log[0].path, "/r/5");
        assert_eq!(control.total(), (LOG_CAPACITY + 5) as u64);
    }

    #[test]
    fn ids_are_decoded_and_split() {
        assert_eq!(
            ids_param(Some("ids=p1%2Cp2,p3&x=1")),
            vec!["p1", "p2", "p3"]
        );
        assert!(ids_param(Some("ids=")).is_empty());
        assert!(ids_param(None).is_empty());
    }
}
