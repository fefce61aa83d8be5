//! What the front door records of every request: its metrics (duration by
//! route, method and status; the requests in flight; its own time apart
//! from its downstream wait; the GraphQL operation it ran) and its one log
//! line (request id, trace id, GraphQL operation name, status, duration,
//! downstream tries; never headers, tokens or variables). A request
//! abandoned before its answer (its future dropped: the client went away)
//! is recorded with status [`CLIENT_CLOSED_REQUEST`] (499).
//!
//! The GraphQL endpoint, deeper in, tells this layer which operation ran
//! through a task-local note ([`note_graphql_operation`]): the endpoint's
//! answer is an `async_graphql::Response`, which has no room for it, and
//! the handler between the two is each BFF's own.
//!
//! Label values a client chooses are bounded: per label, the first values
//! seen are kept ([`MAX_OPERATION_NAMES`], ...) and the rest count as
//! [`OTHER`]; `graphql_operations_total` has at most
//! [`MAX_OPERATION_SERIES`] series. Process-wide and first come, first
//! kept: a client that invents names early takes slots for good (they
//! show up on the dashboard, which is how an operator notices).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::task::{Context, Poll, ready};

use axum::extract::MatchedPath;
use downstream::context::DownstreamWaits;
use downstream::{IdHasher, RequestContext};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use metrics::{Counter, Gauge, Histogram, SharedString};
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::metrics::{
    ACTIVE_REQUESTS, DOWNSTREAM_WAIT, GRAPHQL_OPERATIONS, REQUEST_DURATION, SELF_DURATION, kept,
};

/// The headers Apollo clients name themselves with.
pub const CLIENT_NAME_HEADER: HeaderName = HeaderName::from_static("apollographql-client-name");
pub const CLIENT_VERSION_HEADER: HeaderName =
    HeaderName::from_static("apollographql-client-version");

/// Distinct values kept per client-chosen label; later ones count as
/// [`OTHER`]. An app has a few clients, each a few live versions.
pub const MAX_OPERATION_NAMES: usize = 200;
pub const MAX_CLIENT_NAMES: usize = 20;
pub const MAX_CLIENT_VERSIONS: usize = 50;
/// Most series of `graphql_operations_total`: once that many combinations
/// were seen, new ones count as `other` (name, client and version) of
/// their operation type.
pub const MAX_OPERATION_SERIES: usize = 1000;
/// Longer label values count as [`OTHER`].
pub const MAX_LABEL_LEN: usize = 100;
/// The label value of whatever is not kept.
pub const OTHER: &str = "other";
/// Route templates kept; a router has a handful.
const MAX_ROUTES: usize = 256;
const UNMATCHED: &str = "unmatched";

/// Installs [`Observe`]: inside the request context (it reads the request
/// id, trace and downstream waits) and the request span (its log line
/// belongs to it), outside everything that answers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// See the module docs. A hand-written service rather than an axum
/// middleware: that boxes a future and clones the inner service per
/// request.
#[derive(Debug, Clone)]
pub(crate) struct Observe<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Observe<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let observation = Observation::start(&request);
        ObservedFuture {
            inner: NOTES.scope(RefCell::default(), self.inner.call(request)),
            observation: Some(observation),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, with the task-local note the GraphQL
    /// endpoint writes to; records the request when it completes, or when
    /// it is dropped unfinished.
    pub(crate) struct ObservedFuture<F> {
        #[pin]
        inner: TaskLocalFuture<RefCell<Notes>, F>,
        observation: Option<Observation>,
    }

    impl<F> PinnedDrop for ObservedFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Abandoned before its answer: the client went away, or the
            // shutdown's drain ran out.
            if let Some(observation) = this.observation.take() {
                let notes = this.inner.take_value().map(RefCell::into_inner);
                let status = StatusCode::from_u16(CLIENT_CLOSED_REQUEST)
                    .unwrap_or(StatusCode::REQUEST_TIMEOUT);
                observation.finish(status, notes.unwrap_or_default());
            }
        }
    }
}

/// The status recorded for a request abandoned before its answer
/// (nginx's "client closed request"; no response is sent).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

impl<F, B, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = ready!(this.inner.as_mut().poll(cx));
        let notes = this
            .inner
            .take_value()
            .map(RefCell::into_inner)
            .unwrap_or_default();
        if let (Some(observation), Ok(response)) = (this.observation.take(), &result) {
            observation.finish(response.status(), notes);
        }
        Poll::Ready(result)
    }
}

tokio::task_local! {
    /// What the request's handler noted for the front door.
    static NOTES: RefCell<Notes>;
}

#[derive(Debug, Default)]
struct Notes {
    operation: Option<GraphQlOperation>,
}

#[derive(Debug)]
struct GraphQlOperation {
    /// Empty for an anonymous operation.
    name: String,
    kind: OperationKind,
}

/// The type of a GraphQL operation (OTel's `graphql.operation.type`).
#[cfg_attr(not(feature = "graphql"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

/// How many [`OperationKind`]s there are.
const OPERATION_KINDS: usize = 3;

impl OperationKind {
    fn name(self) -> &'static str {
        match self {
            OperationKind::Query => "query",
            OperationKind::Mutation => "mutation",
            OperationKind::Subscription => "subscription",
        }
    }
}

/// Notes the operation this request runs (`None`: anonymous), for the
/// front door's metrics and log line. Outside a request behind the front
/// door (e.g. a test running the endpoint directly) it does nothing.
#[cfg_attr(not(feature = "graphql"), allow(dead_code))]
pub(crate) fn note_graphql_operation(name: Option<&str>, kind: OperationKind) {
    let _outside = NOTES.try_with(|notes| {
        notes.borrow_mut().operation = Some(GraphQlOperation {
            name: name.unwrap_or_default().to_owned(),
            kind,
        });
    });
}

/// What is known of a request when it arrives.
struct Observation {
    started: Instant,
    route: &'static Interned,
    method: &'static str,
    request_id: String,
    trace_id: u128,
    waits: Option<DownstreamWaits>,
    client_name: Option<HeaderValue>,
    client_version: Option<HeaderValue>,
    _active: Active,
}

impl Observation {
    fn start<B>(request: &Request<B>) -> Self {
        let started = Instant::now();
        let series = series();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED, MatchedPath::as_str);
        let context = request.extensions().get::<RequestContext>();
        let headers = request.headers();
        Self {
            started,
            route: series.routes.intern(route),
            method: method_label(request.method()),
            request_id: context
                .map(|ctx| ctx.request_id.clone())
                .unwrap_or_default(),
            trace_id: context.map_or(0, |ctx| ctx.trace.trace_id),
            waits: context.map(|ctx| ctx.waits.clone()),
            client_name: headers.get(CLIENT_NAME_HEADER).cloned(),
            client_version: headers.get(CLIENT_VERSION_HEADER).cloned(),
            _active: Active::enter(),
        }
    }

    fn finish(self, status: StatusCode, notes: Notes) {
        let took = self.started.elapsed();
        let waited = self
            .waits
            .as_ref()
            .map(DownstreamWaits::waited)
            .unwrap_or_default()
            .min(took);
        let handles = series().request(self.route, self.method, status);
        handles.duration.record(took.as_secs_f64());
        handles.self_time.record((took - waited).as_secs_f64());
        handles.downstream_wait.record(waited.as_secs_f64());
        if let Some(operation) = &notes.operation {
            series()
                .operation(
                    operation,
                    self.client_name.as_ref(),
                    self.client_version.as_ref(),
                )
                .increment(1);
        }
        let duration_ms = took.as_secs_f64() * 1e3;
        let downstream_calls = self.waits.as_ref().map_or(0, DownstreamWaits::tries);
        let operation_name = notes.operation.as_ref().map(|op| op.name.as_str());
        let (request_id, trace_id) = (self.request_id.as_str(), TraceId(self.trace_id));
        let status = status.as_u16();
        // A 5xx is worth a look (the error itself is logged where it is
        // made, at the level it deserves); the rest is routine.
        if status >= 500 {
            tracing::warn!(
                request_id,
                %trace_id,
                operation_name,
                status,
                duration_ms,
                downstream_calls,
                "request"
            );
        } else {
            tracing::info!(
                request_id,
                %trace_id,
                operation_name,
                status,
                duration_ms,
                downstream_calls,
                "request"
            );
        }
    }
}

/// 32 hex digits, as in `traceparent`.
struct TraceId(u128);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// One request in `http_server_active_requests` while it lives.
struct Active(Gauge);

impl Active {
    fn enter() -> Self {
        static GAUGE: OnceLock<Gauge> = OnceLock::new();
        let gauge = kept(&GAUGE, || metrics::gauge!(ACTIVE_REQUESTS));
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// OTel's `http.request.method`: the standard methods, `_OTHER` for any
/// other (a client can invent methods).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PATCH, "PATCH"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("_OTHER", |(_, label)| label)
}

/// A kept label value and its id among its label's values.
#[derive(Debug)]
struct Interned {
    id: u16,
    label: SharedString,
}

/// The values of one label: the first `max` distinct ones are kept, the
/// rest are [`OTHER`] (id 0). `""` (none given) is always kept.
struct BoundedLabels {
    max: usize,
    values: RwLock<HashMap<Box<str>, &'static Interned, IdHasher>>,
}

static OTHER_VALUE: Interned = Interned {
    id: 0,
    label: SharedString::const_str(OTHER),
};

impl BoundedLabels {
    fn new(max: usize) -> Self {
        let labels = Self {
            max: max.min(usize::from(u16::MAX) - 1),
            values: RwLock::default(),
        };
        labels.intern("");
        labels
    }

    /// `value`'s label. Kept values are leaked: there are at most `max`.
    fn intern(&self, value: &str) -> &'static Interned {
        if value.len() > MAX_LABEL_LEN {
            return &OTHER_VALUE;
        }
        if let Some(kept) = self
            .values
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(value)
        {
            return kept;
        }
        let mut values = self.values.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = values.get(value) {
            return kept;
        }
        // `""` plus `max` values.
        if values.len() > self.max {
            return &OTHER_VALUE;
        }
        let id = u16::try_from(values.len() + 1).unwrap_or(0);
        let interned: &'static Interned = Box::leak(Box::new(Interned {
            id,
            label: SharedString::from_shared(Arc::<str>::from(value)),
        }));
        values.insert(value.into(), interned);
        interned
    }

    /// The label of a header's value: `""` without one, [`OTHER`] for one
    /// that is not visible ASCII.
    fn of_header(&self, value: Option<&HeaderValue>) -> &'static Interned {
        match value.map(HeaderValue::to_str) {
            None => self.intern(""),
            Some(Ok(text)) => self.intern(text),
            Some(Err(_)) => &OTHER_VALUE,
        }
    }
}

/// The handles of one request's series.
#[derive(Clone)]
struct RequestHandles {
    duration: Histogram,
    self_time: Histogram,
    downstream_wait: Histogram,
}

/// The process's series and label values, and the handles of each series
/// once made: registering a series hashes its name and labels, which
/// costs far more than recording into it.
struct Series {
    routes: BoundedLabels,
    operation_names: BoundedLabels,
    client_names: BoundedLabels,
    client_versions: BoundedLabels,
    /// By route id, method, status.
    requests: Handles<(u16, &'static str, u16), RequestHandles>,
    /// By operation name id, type, client name id, client version id.
    operations: Handles<(u16, OperationKind, u16, u16), Counter>,
}

/// Metric handles by what tells their series apart.
type Handles<K, V> = RwLock<HashMap<K, V, IdHasher>>;

fn series() -> &'static Series {
    static SERIES: OnceLock<Series> = OnceLock::new();
    SERIES.get_or_init(|| Series {
        routes: BoundedLabels::new(MAX_ROUTES),
        operation_names: BoundedLabels::new(MAX_OPERATION_NAMES),
        client_names: BoundedLabels::new(MAX_CLIENT_NAMES),
        client_versions: BoundedLabels::new(MAX_CLIENT_VERSIONS),
        requests: RwLock::default(),
        operations: RwLock::default(),
    })
}

impl Series {
    fn request(
        &self,
        route: &'static Interned,
        method: &'static str,
        status: StatusCode,
    ) -> RequestHandles {
        let key = (route.id, method, status.as_u16());
        let make = || {
            let status = SharedString::from_owned(status.as_str().to_owned());
            let route = route.label.clone();
            RequestHandles {
                duration: metrics::histogram!(
                    REQUEST_DURATION,
                    "http_route" => route.clone(),
                    "http_request_method" => method,
                    "http_response_status_code" => status,
                ),
                self_time: metrics::histogram!(SELF_DURATION, "http_route" => route.clone()),
                downstream_wait: metrics::histogram!(DOWNSTREAM_WAIT, "http_route" => route),
            }
        };
        cached(&self.requests, key, make)
    }

    fn operation(
        &self,
        operation: &GraphQlOperation,
        client_name: Option<&HeaderValue>,
        client_version: Option<&HeaderValue>,
    ) -> Counter {
        let kind = operation.kind;
        let labels = [
            self.operation_names.intern(&operation.name),
            self.client_names.of_header(client_name),
            self.client_versions.of_header(client_version),
        ];
        let make = |[name, client, version]: [&'static Interned; 3]| {
            metrics::counter!(
                GRAPHQL_OPERATIONS,
                "operation_name" => name.label.clone(),
                "operation_type" => kind.name(),
                "client_name" => client.label.clone(),
                "client_version" => version.label.clone(),
            )
        };
        let key = (labels[0].id, kind, labels[1].id, labels[2].id);
        if !crate::metrics::installed() {
            return make(labels);
        }
        if let Some(found) = self
            .operations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return found.clone();
        }
        let mut operations = self
            .operations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = operations.get(&key) {
            return found.clone();
        }
        // Room is kept for the overflow series of each type.
        let (key, labels) = if operations.len() + OPERATION_KINDS < MAX_OPERATION_SERIES {
            (key, labels)
        } else {
            ((0, kind, 0, 0), [&OTHER_VALUE; 3])
        };
        operations
            .entry(key)
            .or_insert_with(|| make(labels))
            .clone()
    }
}

/// The handle under `key`, made and kept on first use (once the recorder
/// is installed: see [`kept`]).
fn cached<K, V>(handles: &Handles<K, V>, key: K, make: impl FnOnce() -> V) -> V
where
    K: std::hash::Hash + Eq,
    V: Clone,
{
    if !crate::metrics::installed() {
        return make();
    }
    if let Some(found) = handles
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return found.clone();
    }
    handles
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_insert_with(make)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_the_first_values_then_say_other() {
        let labels = BoundedLabels::new(3);
        let ids: Vec<u16> = ["a", "b", "a", "c", "d", "e"]
            .into_iter()
            .map(|value| labels.intern(value).id)
            .collect();
        assert_eq!(ids, [2, 3, 2, 4, 0, 0]);
        assert_eq!(labels.intern("").id, 1, "none given is always kept");
        assert_eq!(&*labels.intern("b").label, "b");
        assert_eq!(&*labels.intern("e").label, OTHER);
        let long = "x".repeat(MAX_LABEL_LEN + 1);
        assert_eq!(BoundedLabels::new(3).intern(&long).id, 0);
    }

    #[test]
    fn header_values_that_are_not_text_are_other() {
        let labels = BoundedLabels::new(3);
        let binary = HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
        assert_eq!(labels.of_header(Some(&binary)).id, 0);
        assert_eq!(&*labels.of_header(None).label, "");
        let app = HeaderValue::from_static("ios-app");
        assert_eq!(&*labels.of_header(Some(&app)).label, "ios-app");
    }

    #[test]
    fn methods_outside_the_standard_ones_are_other() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "_OTHER");
    }
}
