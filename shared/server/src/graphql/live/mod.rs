//! GraphQL subscriptions on `/graphql`, beside the plain HTTP handlers:
//! graphql-transport-ws (`ws.rs`), GraphQL over SSE in the distinct
//! connections mode (`sse.rs`) and Apollo's multipart HTTP subscriptions
//! (`multipart.rs`). What they share lives here: the caps, the per
//! subscription pump with its bounded buffer, why a subscription ends, and
//! the order event feed the BFFs' `orderUpdates` resolvers read.
//!
//! Every operation runs through [`GraphQlEndpoint::execute_stream`]: the
//! same abuse limits and validation as a query over HTTP.
//!
//! A BFF mounts it on its GraphQL route, inside the CSRF check:
//!
//! ```ignore
//! let live = Live::new(&endpoint, downstream, verifier, config.live);
//! Router::new()
//!     .route("/graphql", get(graphql_get).post(graphql_post))
//!     .route_layer(axum::middleware::from_fn_with_state(live, live::serve))
//!     .route_layer(axum::middleware::from_fn(prevent_csrf))
//! ```

mod multipart;
mod sse;
mod ws;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_graphql::{Context, ErrorExtensions, ObjectType, SubscriptionType};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use downstream::events::{OrderEventEntry, SubscriptionError};
use downstream::models::EventId;
use downstream::{Downstream, RequestContext};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream, StreamExt};
use http::{HeaderMap, Method, StatusCode, header};
use tokio::sync::{mpsc, watch};

use super::{GraphQlEndpoint, RequestScope, graphql_error_response, person_or_anonymous};
use crate::auth::{Authentication, JwtVerifier, Viewer, ViewerKind, bearer_token};
use crate::config::LiveConfig;
use crate::error::BffError;
use crate::health::Draining;

/// Runs one request over a subscription transport (the endpoint's
/// [`GraphQlEndpoint::execute_stream`], its schema types erased).
type Execute = Arc<
    dyn Fn(async_graphql::Request) -> BoxStream<'static, async_graphql::Response> + Send + Sync,
>;

/// Turns what a client sent into the request to run (mobile: persisted
/// queries and the safelist), as the BFF's HTTP handler does.
pub type Prepare = Arc<
    dyn Fn(async_graphql::Request) -> BoxFuture<'static, Result<async_graphql::Request, BffError>>
        + Send
        + Sync,
>;

/// The subscription transports of one BFF process. Cheap to clone.
#[derive(Clone)]
pub struct Live {
    inner: Arc<LiveInner>,
}

struct LiveInner {
    execute: Execute,
    prepare: Option<Prepare>,
    downstream: Arc<Downstream>,
    verifier: Arc<JwtVerifier>,
    config: LiveConfig,
    /// Subscriptions open in the process, every transport together.
    open: Arc<AtomicUsize>,
}

impl Live {
    pub fn new<Q, M, S>(
        endpoint: &GraphQlEndpoint<Q, M, S>,
        downstream: Arc<Downstream>,
        verifier: Arc<JwtVerifier>,
        config: LiveConfig,
    ) -> Self
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        let endpoint = endpoint.clone();
        Self {
            inner: Arc::new(LiveInner {
                execute: Arc::new(move |request| endpoint.execute_stream(request)),
                prepare: None,
                downstream,
                verifier,
                config,
                open: Arc::default(),
            }),
        }
    }

    /// Runs `prepare` on every request before it executes.
    pub fn with_prepare(self, prepare: Prepare) -> Self {
        let inner = LiveInner {
            execute: Arc::clone(&self.inner.execute),
            prepare: Some(prepare),
            downstream: Arc::clone(&self.inner.downstream),
            verifier: Arc::clone(&self.inner.verifier),
            config: self.inner.config,
            open: Arc::clone(&self.inner.open),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Subscriptions open in this process now.
    pub fn open_subscriptions(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    fn heartbeat(&self) -> Duration {
        // A zero interval would spin.
        Duration::from_millis(self.inner.config.heartbeat_ms.max(1))
    }

    /// A place under the per-process cap, or `TooManySubscriptions`.
    fn admit(&self) -> Result<Permit, Refusal> {
        let max = self.inner.config.max_per_process;
        let open = &self.inner.open;
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .map_err(|_| Refusal::TooManySubscriptions {
            max,
            scope: "process",
        })?;
        metrics::gauge!(crate::metrics::SUBSCRIPTIONS_OPEN).increment(1.0);
        Ok(Permit(Arc::clone(open)))
    }

    /// Starts running `request` for `viewer` (see [`Pump`]): its responses
    /// flow through a bounded buffer until they end, the client stops
    /// reading, the token expires or the process drains.
    async fn start(&self, start: Start) -> Result<Subscription, Refusal> {
        let permit = self.admit()?;
        let Start {
            request,
            viewer,
            mut ctx,
            expires,
            resume,
            draining,
        } = start;
        let request = match &self.inner.prepare {
            Some(prepare) => prepare(request).await.map_err(Refusal::Refused)?,
            None => request,
        };
        // Each downstream call of a long-lived operation is bounded by its
        // service's timeout, not by the deadline of the request that opened it.
        ctx.deadline = None;
        ctx.user_id = Some(viewer.user_id.clone());
        let operation = Operation {
            execute: Arc::clone(&self.inner.execute),
            downstream: Arc::clone(&self.inner.downstream),
            query: request.query,
            operation_name: request.operation_name,
            variables: request.variables,
            ctx,
            viewer,
        };
        let capacity = self.inner.config.buffer.max(1);
        // One slot more than the buffer: the end reason always fits.
        let (sender, receiver) = mpsc::channel(capacity + 1);
        let armed = Armed::default();
        let pump = Pump {
            operation,
            resume,
            sender,
            expires: expires.map(deadline_of),
            draining,
            armed: armed.clone(),
            _permit: permit,
        };
        tokio::spawn(pump.run());
        // Answered once the operation listens (or already answered): an
        // event the client causes after seeing the answer reaches it.
        armed.0.notified().await;
        Ok(Subscription { receiver })
    }
}

/// What [`Live::start`] needs.
struct Start {
    request: async_graphql::Request,
    viewer: Viewer,
    ctx: RequestContext,
    /// The token's `exp`.
    expires: Option<u64>,
    /// `Last-Event-ID`: resume right after this order event.
    resume: Option<EventId>,
    draining: watch::Receiver<bool>,
}

/// One place under the per-process cap, given back on drop.
struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(crate::metrics::SUBSCRIPTIONS_OPEN).decrement(1.0);
    }
}

/// Why a subscription could not start.
#[derive(Debug, Clone, thiserror::Error)]
enum Refusal {
    #[error("too many subscriptions: at most {max} per {scope}")]
    TooManySubscriptions { max: usize, scope: &'static str },
    #[error(transparent)]
    Refused(BffError),
}

impl Refusal {
    fn code(&self) -> &'static str {
        match self {
            Refusal::TooManySubscriptions { .. } => "TOO_MANY_SUBSCRIPTIONS",
            Refusal::Refused(error) => error.code().as_str(),
        }
    }

    /// As GraphQL errors (a graphql-transport-ws `error` payload).
    fn errors(&self) -> serde_json::Value {
        let message = match self {
            Refusal::Refused(error) => error.to_string(),
            other => other.to_string(),
        };
        serde_json::json!([{ "message": message, "extensions": { "code": self.code() } }])
    }

    /// As an HTTP response (SSE, multipart): 429 over a cap.
    fn into_response(self) -> Response {
        match self {
            Refusal::Refused(error) => graphql_error_response(error),
            over => {
                let body = serde_json::json!({ "errors": over.errors() });
                (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
            }
        }
    }
}

/// Why the server ended a subscription early (beside the operation's own
/// errors, e.g. a subscriber that fell behind the order event hub).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndReason {
    #[error(
        "the client read too slowly: the subscription was ended rather than buffer without bound"
    )]
    SlowClient,
    #[error("the token expired")]
    TokenExpired,
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl EndReason {
    /// Its `reason` label on `graphql_subscriptions_ended_total`.
    fn label(self) -> &'static str {
        match self {
            EndReason::SlowClient => "slow_client",
            EndReason::TokenExpired => "token_expired",
            EndReason::ShuttingDown => "shutting_down",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            EndReason::SlowClient => "SLOW_CONSUMER",
            EndReason::TokenExpired => "UNAUTHENTICATED",
            EndReason::ShuttingDown => "SHUTTING_DOWN",
        }
    }

    /// As GraphQL errors.
    fn errors(self) -> serde_json::Value {
        serde_json::json!([{ "message": self.to_string(), "extensions": { "code": self.code() } }])
    }
}

/// What a pump hands its transport. Boxed, so that a slot is 16 bytes: the
/// buffer's first block of 32 slots is allocated when the subscription
/// starts (with the response inline it was 7.7 KB of every idle one).
enum Outcome {
    /// A response, and the order event behind it (if any: SSE's `id:`).
    Next(Box<(async_graphql::Response, Option<EventId>)>),
    /// The server ends the subscription.
    End(EndReason),
}

/// A running subscription, as its transport reads it. The stream's end
/// without an [`Outcome::End`] is the operation's own completion.
struct Subscription {
    receiver: mpsc::Receiver<Outcome>,
}

impl Stream for Subscription {
    type Item = Outcome;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Outcome>> {
        self.receiver.poll_recv(cx)
    }
}

/// The operation a subscription runs, once per order event: the client's
/// query, variables and viewer. Holding this rather than a running executor
/// keeps an idle subscription small; each event still goes through the
/// endpoint's whole pipeline (limits, remembered validation, extensions,
/// guards, finishing).
struct Operation {
    execute: Execute,
    downstream: Arc<Downstream>,
    query: String,
    operation_name: Option<String>,
    variables: async_graphql::Variables,
    ctx: RequestContext,
    viewer: Viewer,
}

impl Operation {
    /// Runs the operation with `delivery` as what `orderUpdates` yields.
    fn run(&self, delivery: Delivery) -> BoxStream<'static, async_graphql::Response> {
        let mut request =
            async_graphql::Request::new(self.query.clone()).variables(self.variables.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        // Each run says what it served stale (and waited for) by itself.
        let ctx = RequestContext {
            stale: Default::default(),
            waits: Default::default(),
            ..self.ctx.clone()
        };
        let scope = RequestScope::new(Arc::clone(&self.downstream), ctx, Some(self.viewer.clone()));
        (self.execute)(request.data(scope).data(delivery))
    }
}

/// Request data: what the subscription resolver ([`order_events`]) yields
/// in this run of a subscription's operation.
enum Delivery {
    /// Nothing: the first run, which answers at once for a refused
    /// operation (limits, validation, a resolver's refusal) or one that is
    /// not a subscription, and with nothing for one that listens.
    Probe,
    /// One of the viewer's order events.
    Event(Arc<OrderEventEntry>),
    /// The events stopped: the subscriber fell behind, or cannot resume.
    Failed(SubscriptionError),
}

/// Runs one subscription on its own task, so that a client that stops
/// reading cannot stall it: the operation runs once to be checked
/// ([`Delivery::Probe`]), then once per order event of the viewer, and its
/// responses go into a bounded buffer. When the buffer is full the
/// subscription ends with [`EndReason::SlowClient`] (and its event feed is
/// dropped) rather than growing.
struct Pump {
    operation: Operation,
    /// `Last-Event-ID`: the events start right after this one.
    resume: Option<EventId>,
    sender: mpsc::Sender<Outcome>,
    expires: Option<tokio::time::Instant>,
    draining: watch::Receiver<bool>,
    armed: Armed,
    _permit: Permit,
}

/// Why a pump stopped sending.
enum Stop {
    /// The operation completed, or the transport is gone.
    Done,
    /// The server ends it; the transport is told why.
    End(EndReason),
}

impl Pump {
    async fn run(mut self) {
        // However it ends, whoever waits for it to listen stops waiting.
        let _armed = ArmOnDrop(self.armed.clone());
        let expiry = async {
            match self.expires {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let mut expiry = std::pin::pin!(expiry);
        let stop = tokio::select! {
            stop = Self::pump(&self.operation, self.resume, &self.sender, &self.armed) => stop,
            () = &mut expiry => Stop::End(EndReason::TokenExpired),
            () = drained(&mut self.draining) => Stop::End(EndReason::ShuttingDown),
            () = self.sender.closed() => Stop::Done,
        };
        if let Stop::End(reason) = stop {
            tracing::info!(%reason, "subscription ended by the server");
            metrics::counter!(crate::metrics::SUBSCRIPTIONS_ENDED, "reason" => reason.label())
                .increment(1);
            let _ = self.sender.try_send(Outcome::End(reason));
        }
    }

    async fn pump(
        operation: &Operation,
        resume: Option<EventId>,
        sender: &mpsc::Sender<Outcome>,
        armed: &Armed,
    ) -> Stop {
        // A refused operation, or one that is not a subscription, answers
        // here and is done; one that listens answers nothing.
        let mut answered = false;
        let mut responses = operation.run(Delivery::Probe);
        while let Some(response) = responses.next().await {
            answered = true;
            armed.arm();
            if let Err(stop) = send(sender, response, None) {
                return stop;
            }
        }
        drop(responses);
        if answered {
            return Stop::Done;
        }
        let mut events =
            operation
                .downstream
                .order_events
                .subscribe(&operation.viewer.user_id, None, resume);
        armed.arm();
        while let Some(event) = events.next().await {
            let (delivery, id) = match event {
                Ok(entry) => {
                    let id = entry.id;
                    (Delivery::Event(entry), Some(id))
                }
                Err(error) => (Delivery::Failed(error), None),
            };
            let last = id.is_none();
            let mut responses = operation.run(delivery);
            while let Some(response) = responses.next().await {
                if let Err(stop) = send(sender, response, id) {
                    return stop;
                }
            }
            if last {
                break;
            }
        }
        Stop::Done
    }
}

/// Puts a response in the buffer, keeping its last slot for the end reason.
fn send(
    sender: &mpsc::Sender<Outcome>,
    response: async_graphql::Response,
    id: Option<EventId>,
) -> Result<(), Stop> {
    if sender.capacity() <= 1 {
        return Err(Stop::End(EndReason::SlowClient));
    }
    sender
        .try_send(Outcome::Next(Box::new((response, id))))
        .map_err(|_| Stop::Done)
}

/// Resolves once the process drains.
async fn drained(draining: &mut watch::Receiver<bool>) {
    // Err: the server is gone, which is shutting down too. The guard is
    // dropped here: it must not be held across an await.
    let _ = draining.wait_for(|draining| *draining).await;
}

/// The Tokio instant of a token's `exp` (seconds since the epoch).
fn deadline_of(exp: u64) -> tokio::time::Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(exp).saturating_sub(now);
    tokio::time::Instant::now() + left
}

/// The transport a request asks for, if it asks for one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    WebSocket,
    Sse,
    Multipart,
}

impl Transport {
    fn of(method: &Method, headers: &HeaderMap) -> Option<Self> {
        let has = |name: header::HeaderName, part: &str| {
            headers.get_all(name).iter().any(|value| {
                value
                    .to_str()
                    .is_ok_and(|value| value.to_ascii_lowercase().contains(part))
            })
        };
        if method == Method::GET && has(header::UPGRADE, "websocket") {
            return Some(Transport::WebSocket);
        }
        if has(header::ACCEPT, "text/event-stream") {
            return Some(Transport::Sse);
        }
        // `subscriptionSpec=1.0` or `subscriptionSpec="1.0"`.
        let multipart = headers.get_all(header::ACCEPT).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                let value = value.to_ascii_lowercase().replace([' ', '"'], "");
                value.contains("multipart/mixed") && value.contains("subscriptionspec=1.0")
            })
        });
        multipart.then_some(Transport::Multipart)
    }
}

/// Middleware on the GraphQL route: requests for a subscription transport
/// are served here, every other one goes on to the route's handlers.
pub async fn serve(State(live): State<Live>, request: Request, next: Next) -> Response {
    match Transport::of(request.method(), request.headers()) {
        None => next.run(request).await,
        Some(Transport::WebSocket) => ws::upgrade(live, request).await,
        Some(transport) => live.over_http(transport, request).await,
    }
}

impl Live {
    /// SSE and multipart: one subscription per request, the viewer from the
    /// front door's `Authorization` check.
    async fn over_http(&self, transport: Transport, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let viewer = match parts.extensions.get::<Authentication>().cloned() {
            Some(auth) => match person_or_anonymous(auth) {
                Ok(Some(viewer)) => viewer,
                Ok(None) => return graphql_error_response(BffError::Unauthenticated),
                Err(refusal) => return graphql_error_response(refusal),
            },
            None => return graphql_error_response(BffError::Unauthenticated),
        };
        // The front door verified it; only its `exp` is read here.
        let expires = match bearer_token(&parts.headers) {
            Ok(Some(token)) => match self.inner.verifier.verify_until(token).await {
                Ok((_, expires)) => expires,
                Err(error) => return graphql_error_response(BffError::from(error)),
            },
            _ => None,
        };
        let resume = match last_event_id(&parts.headers) {
            Ok(resume) => resume,
            Err(refusal) => return graphql_error_response(refusal),
        };
        let ctx = parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_else(RequestContext::background);
        let draining = parts
            .extensions
            .get::<Draining>()
            .map_or_else(|| Draining::new().subscribe(), Draining::subscribe);
        let method = parts.method.clone();
        let request = Request::from_parts(parts, body);
        let graphql = match <async_graphql_axum::GraphQLRequest as axum::extract::FromRequest<
            (),
        >>::from_request(request, &())
        .await
        {
            Ok(graphql) => graphql.into_inner(),
            Err(rejection) => return super::unreadable_request(rejection),
        };
        // GET must be safe: a link could trigger a mutation.
        if method == Method::GET && is_mutation_operation(&graphql) {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "POST")],
                "mutations are only accepted over POST",
            )
                .into_response();
        }
        let start = Start {
            request: graphql,
            viewer,
            ctx,
            expires,
            resume,
            draining,
        };
        let subscription = match self.start(start).await {
            Ok(subscription) => subscription,
            Err(refusal) => return refusal.into_response(),
        };
        let heartbeat = self.heartbeat();
        match transport {
            Transport::Sse => sse::respond(subscription, heartbeat),
            _ => multipart::respond(subscription, heartbeat),
        }
    }
}

/// Whether the operation `request` runs is a mutation.
fn is_mutation_operation(request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::OperationType;

    super::parse_query(&request.query).is_some_and(|document| {
        super::operation_to_run(&document, request.operation_name.as_deref())
            .is_some_and(|operation| operation.node.ty == OperationType::Mutation)
    })
}

/// `Last-Event-ID`: a decimal event id, or absent.
fn last_event_id(headers: &HeaderMap) -> Result<Option<EventId>, BffError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| {
        BffError::BadUserInput("Last-Event-ID must be an event id this server sent".into())
    })
}

/// Request data: set once the operation listens for events (or has
/// answered), so a transport can tell its client the subscription is on.
#[derive(Debug, Clone, Default)]
struct Armed(Arc<tokio::sync::Notify>);

impl Armed {
    fn arm(&self) {
        // Stores a permit when no one waits yet; more are no-ops.
        self.0.notify_one();
    }
}

struct ArmOnDrop(Armed);

impl Drop for ArmOnDrop {
    fn drop(&mut self) {
        self.0.arm();
    }
}

/// The order events a subscription resolver yields in this run of its
/// operation (see [`Pump`]): the viewer's event being delivered (only if it
/// is about `order_id`, when given), its failure, or nothing.
/// UNAUTHENTICATED without a user viewer.
pub fn order_events(
    ctx: &Context<'_>,
    order_id: Option<&str>,
) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Arc<OrderEventEntry>>> + use<>>
{
    let scope = RequestScope::of(ctx);
    let viewer = scope.viewer()?;
    if viewer.kind != ViewerKind::User {
        return Err(BffError::Forbidden("device tokens cannot use this API".into()).extend());
    }
    let item = match ctx.data_opt::<Delivery>() {
        Some(Delivery::Event(entry)) => order_id
            .is_none_or(|id| entry.event.order_id == id)
            .then(|| Ok(Arc::clone(entry))),
        Some(Delivery::Failed(error)) => Some(Err(subscription_error(error))),
        Some(Delivery::Probe) | None => None,
    };
    Ok(futures::stream::iter(item))
}

fn subscription_error(error: &SubscriptionError) -> async_graphql::Error {
    let code = match error {
        SubscriptionError::Lagged { .. } => "SLOW_CONSUMER",
        SubscriptionError::ResumeUnavailable { .. } => "RESUME_UNAVAILABLE",
    };
    async_graphql::Error::new(error.to_string()).extend_with(|_, extensions| {
        extensions.set("code", code);
    })
}

/// How an HTTP transport writes a subscription into its body.
trait Framing: Send + 'static {
    /// One response; `id`: the order event behind it.
    fn next(&self, response: async_graphql::Response, id: Option<EventId>) -> Bytes;
    /// The last bytes: the operation completed (`None`) or the server ended it.
    fn end(&self, reason: Option<EndReason>) -> Bytes;
    fn heartbeat(&self) -> Bytes;
}

/// The body of an HTTP transport: a heartbeat at once (so the client sees
/// the response start) and every `heartbeat` after, the subscription's
/// responses, and its end.
fn frames<F: Framing>(
    subscription: Subscription,
    heartbeat: Duration,
    framing: F,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let mut ticks = tokio::time::interval(heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = Some((subscription, ticks, framing));
    futures::stream::unfold(state, |state| async move {
        let (mut subscription, mut ticks, framing) = state?;
        tokio::select! {
            outcome = subscription.next() => {
                let (frame, done) = match outcome {
                    Some(Outcome::Next(next)) => {
                        let (response, id) = *next;
                        (framing.next(response, id), false)
                    }
                    Some(Outcome::End(reason)) => (framing.end(Some(reason)), true),
                    None => (framing.end(None), true),
                };
                let state = (!done).then_some((subscription, ticks, framing));
                Some((frame, state))
            }
            _ = ticks.tick() => {
                let frame = framing.heartbeat();
                Some((frame, Some((subscription, ticks, framing))))
            }
        }
    })
}

/// Whether `response` is a request error: refused before anything ran
/// (syntax, validation, limits), so no error has a path.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// A response as JSON text, the way the HTTP endpoint writes it (a request
/// error without `data`, as the GraphQL spec says).
fn response_json(response: async_graphql::Response) -> String {
    let json = if is_request_error(&response) {
        serde_json::to_vec(&serde_json::json!({ "errors": response.errors }))
    } else {
        super::json::response_json(&response)
    };
    json.ok()
        .and_then(|body| String::from_utf8(body).ok())
        .unwrap_or_else(|| {
            r#"{"errors":[{"message":"internal server error","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#
                .into()
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn transport(method: Method, headers: &[(&'static str, &'static str)]) -> Option<Transport> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, http::HeaderValue::from_static(value));
        }
        Transport::of(&method, &map)
    }

    #[test]
    fn the_transport_is_picked_by_the_request() {
        use Transport::*;
        let cases = [
            (Method::GET, vec![("upgrade", "websocket")], Some(WebSocket)),
            (Method::GET, vec![("upgrade", "WebSocket")], Some(WebSocket)),
            (Method::POST, vec![("upgrade", "websocket")], None),
            (
                Method::POST,
                vec![("accept", "text/event-stream")],
                Some(Sse),
            ),
            (
                Method::GET,
                vec![("accept", "text/event-stream")],
                Some(Sse),
            ),
            (
                Method::POST,
                vec![(
                    "accept",
                    "multipart/mixed;subscriptionSpec=1.0,application/json",
                )],
                Some(Multipart),
            ),
            (
                Method::POST,
                vec![(
                    "accept",
                    "multipart/mixed; boundary=\"graphql\"; subscriptionSpec=\"1.0\", application/json",
                )],
                Some(Multipart),
            ),
            // @defer's multipart is not a subscription transport.
            (
                Method::POST,
                vec![("accept", "multipart/mixed;deferSpec=20220824")],
                None,
            ),
            (Method::POST, vec![("accept", "application/json")], None),
            (Method::POST, vec![], None),
        ];
        for (method, headers, expected) in cases {
            assert_eq!(transport(method, &headers), expected, "{headers:?}");
        }
    }

    #[test]
    fn last_event_id_is_an_event_id_or_nothing() {
        let mut headers = HeaderMap::new();
        assert_eq!(last_event_id(&headers).unwrap(), None);
        headers.insert("last-event-id", http::HeaderValue::from_static("42"));
        assert_eq!(last_event_id(&headers).unwrap(), Some(EventId(42)));
        headers.insert("last-event-id", http::HeaderValue::from_static(""));
        assert_eq!(last_event_id(&headers).unwrap(), None);
        headers.insert("last-event-id", http::HeaderValue::from_static("-1"));
        assert!(last_event_id(&headers).is_err());
    }
}
