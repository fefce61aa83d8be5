//! The layers and routes every BFF puts in front of its own router.
//!
//! Outermost first, each request passes: request context (request id,
//! trace) → tracing → metrics and the request's log line (`observe.rs`) →
//! panic guard → CORS → admission: the whole body read
//! (bounded by the body limit and the body-read timeout), then within the
//! whole-request timeout, which starts once the body is in:
//! authentication → per-client rate limit (when configured) → the BFF's
//! routes, plus `/healthz` and `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use downstream::RequestContext;
use http::{HeaderName, HeaderValue, Method, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnRequest, TraceLayer};
use tracing::Level;

use crate::auth::{JwtVerifier, authenticate_request};
use crate::config::{Config, RateLimitConfig};
use crate::context::{REQUEST_ID_HEADER, TRACEPARENT_HEADER};
use crate::context::{downstream_budget, request_context, restart_deadline};
use crate::error::{BffError, ErrorBody, graphql_error_response, standard_error_body};
use crate::health::Readiness;
use crate::rate_limit::{ClientRateLimit, RefusalShape};
use shared_state::SharedState;

/// Headers whose presence proves the request was preflighted: a page of
/// another origin cannot add them without a CORS preflight. GraphQL
/// endpoints require one of them (CSRF prevention); CORS allows them.
pub const PREFLIGHT_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("apollo-require-preflight"),
    HeaderName::from_static("x-apollo-operation-name"),
];

/// How long a browser may cache a CORS preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// Builds the front door once from the config; [`FrontDoor::wrap`] applies it.
#[derive(Debug, Clone)]
pub struct FrontDoor {
    verifier: Arc<JwtVerifier>,
    body_limit_bytes: usize,
    body_read_timeout: Duration,
    request_timeout: Duration,
    readiness: Arc<Readiness>,
    error_body: ErrorBody,
    rate_limit: RateLimitConfig,
    graphql: bool,
    cors_origins: Vec<HeaderValue>,
    shared: SharedState,
}

/// Wraps `router` in the standard front door; see [`FrontDoor`] to change
/// the error body shape.
pub fn front_door(router: Router, config: &Config, verifier: Arc<JwtVerifier>) -> Router {
    FrontDoor::new(config, verifier).wrap(router)
}

impl FrontDoor {
    pub fn new(config: &Config, verifier: Arc<JwtVerifier>) -> Self {
        Self {
            verifier,
            body_limit_bytes: config.body_limit_bytes,
            body_read_timeout: config.body_read_timeout(),
            request_timeout: config.request_timeout(),
            readiness: Readiness::from_config(config),
            error_body: standard_error_body,
            rate_limit: config.rate_limit.clone(),
            graphql: false,
            shared: SharedState::local_only(),
            // `Config::validate` checked these are plain origins.
            cors_origins: config
                .cors
                .allowed_origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok())
                .collect(),
        }
    }

    /// The routes are a GraphQL API: the front door's own errors (413, 408,
    /// 504, 429 with `extensions.retryAfterSecs`, a masked 500) are GraphQL
    /// errors `{"errors": [{"message", "extensions": {"code"}}]}` rather
    /// than the REST error body.
    pub fn for_graphql(mut self) -> Self {
        self.graphql = true;
        self
    }

    /// State shared with the other replicas (one rate-limit bucket per
    /// client across all of them); default: this replica's own.
    pub fn with_shared_state(mut self, shared: SharedState) -> Self {
        self.shared = shared;
        self
    }

    /// Shape of the body of the errors the front door itself answers with
    /// (413, 408, 504) on REST routes; default [`standard_error_body`].
    pub fn with_error_body(mut self, error_body: ErrorBody) -> Self {
        self.error_body = error_body;
        self
    }

    /// Adds `/healthz` and `/readyz` to `router` and wraps all of it (also
    /// its fallback) in the front-door layers. `router` must not define those
    /// two paths itself.
    pub fn wrap(self, router: Router) -> Router {
        // Before any request, so that no downstream metric is lost.
        crate::metrics::install_prometheus();
        // So alert rules compare latency with the deadline in force, not a copy.
        metrics::gauge!(crate::metrics::REQUEST_DEADLINE).set(self.request_timeout.as_secs_f64());
        let shape = if self.graphql {
            RefusalShape::GraphQl
        } else {
            RefusalShape::Rest(self.error_body)
        };
        let admission = Arc::new(Admission {
            shape,
            body: BodyLimit {
                bytes: self.body_limit_bytes,
                read_timeout: self.body_read_timeout,
            },
            request_timeout: self.request_timeout,
            budget: downstream_budget(self.request_timeout),
            verifier: self.verifier,
            rate_limit: ClientRateLimit::new(&self.rate_limit, shape, self.shared),
        });
        let cors = (!self.cors_origins.is_empty()).then(|| cors_layer(self.cors_origins));
        // Decided once: with traces off, requests take no OpenTelemetry path.
        let traces = crate::telemetry::enabled();
        let trace = TraceLayer::new_for_http()
            .make_span_with(|request: &Request| {
                let request_id = request
                    .extensions()
                    .get::<RequestContext>()
                    .map_or("", |context| context.request_id.as_str());
                // The path only: query strings can carry personal data.
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %request_id,
                )
            })
            .on_request(DefaultOnRequest::new().level(Level::DEBUG))
            // The one line per request is `observe`'s.
            .on_response(())
            .on_failure(());

        let layers = ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(
                downstream_budget(self.request_timeout),
                request_context,
            ))
            .layer(trace)
            .layer(crate::observe::ObserveLayer)
            // With traces on, the OpenTelemetry server span.
            .layer(crate::telemetry::ServerSpanLayer { traces })
            // A panicking handler or resolver: 500 with the usual body (and
            // the request id header); the panic message stays in the log.
            .layer(CatchPanicLayer::custom(
                move |panic: Box<dyn std::any::Any + Send>| {
                    let detail = panic
                        .downcast_ref::<&str>()
                        .map(|text| (*text).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".into());
                    shape.respond(BffError::internal(format!("panic: {detail}")))
                },
            ))
            // Preflights are answered here, before deadlines, auth and limits.
            .option_layer(cors)
            .layer(middleware::from_fn_with_state(admission, admit));

        router.merge(self.readiness.routes()).layer(layers)
    }
}

/// CORS for the allowed origins: the methods and headers the BFFs' clients
/// send, and the response headers they may read.
fn cors_layer(origins: Vec<HeaderValue>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PATCH])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_NONE_MATCH,
            REQUEST_ID_HEADER,
            TRACEPARENT_HEADER,
            PREFLIGHT_HEADERS[0].clone(),
            PREFLIGHT_HEADERS[1].clone(),
        ])
        .expose_headers([REQUEST_ID_HEADER, header::RETRY_AFTER, header::ETAG])
        .max_age(CORS_MAX_AGE)
}

impl RefusalShape {
    /// The response for an error the front door itself answers with.
    fn respond(self, error: BffError) -> Response {
        match self {
            RefusalShape::Rest(body) => error.into_response_with(body),
            RefusalShape::GraphQl => graphql_error_response(error),
        }
    }
}

/// What a request must pass before the routes, in order: its whole body
/// arriving, then within the whole-request deadline authentication and the
/// client's rate. One middleware rather than one each: axum boxes a future
/// and clones the inner service per middleware per request (~2% of the
/// instructions of a dashboard request for the three it replaced).
struct Admission {
    shape: RefusalShape,
    body: BodyLimit,
    request_timeout: Duration,
    /// What of `request_timeout` downstream calls may use.
    budget: Duration,
    verifier: Arc<JwtVerifier>,
    rate_limit: Option<ClientRateLimit>,
}

/// Reads the body, then runs the rest within the request deadline: 504 past
/// it. Dropping the inner future cancels whatever it was waiting on,
/// downstream calls included.
async fn admit(State(admission): State<Arc<Admission>>, request: Request, next: Next) -> Response {
    // The body first, on its own clock: a client's slow uplink is a 408 for
    // that client, and must not eat the time the BFF needs downstream.
    let mut request = match admission.body.read(request).await {
        Ok(request) => request,
        Err(error) => return admission.shape.respond(error),
    };
    restart_deadline(request.extensions_mut(), admission.budget);
    let timeout = admission.request_timeout;
    match tokio::time::timeout(timeout, admission.pass(request, next)).await {
        Ok(response) => response,
        Err(_elapsed) => admission.shape.respond(BffError::RequestTimeout {
            timeout_ms: millis(timeout),
        }),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Admission {
    async fn pass(&self, mut request: Request, next: Next) -> Response {
        authenticate_request(&self.verifier, &mut request).await;
        if let Some(rate_limit) = &self.rate_limit
            && let Some(refusal) = rate_limit.refuse(&request).await
        {
            return refusal;
        }
        next.run(request).await
    }
}

/// The body limit and the time a client has to send its body.
#[derive(Clone, Copy)]
struct BodyLimit {
    bytes: usize,
    read_timeout: Duration,
}

impl BodyLimit {
    /// The request with its whole body read into memory: 413 at once when
    /// `Content-Length` is over the limit, or as soon as the bytes read
    /// (chunked too) cross it; 408 when the body takes longer than the
    /// read timeout. Handlers and extractors then read it from memory.
    async fn read(self, mut request: Request) -> Result<Request, BffError> {
        let too_large = BffError::PayloadTooLarge {
            limit_bytes: self.bytes,
        };
        if self.declared_too_large(&request) {
            return Err(too_large);
        }
        // Axum's extractors (Bytes, Json, ...) apply this instead of their
        // 2 MiB default: a body within our limit must pass them.
        DefaultBodyLimit::max(self.bytes).apply(&mut request);
        if request.body().is_end_stream() {
            // GET and friends: nothing to wait for.
            return Ok(request);
        }
        let (parts, body) = request.into_parts();
        let read = Limited::new(body, self.bytes).collect();
        let bytes = match tokio::time::timeout(self.read_timeout, read).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(too_large);
            }
            Ok(Err(error)) => {
                // Broken chunked framing, or the client went away.
                tracing::debug!(%error, "cannot read the request body");
                return Err(BffError::BadUserInput(
                    "the request body could not be read".into(),
                ));
            }
            Err(_elapsed) => {
                return Err(BffError::ClientTimeout {
                    timeout_ms: millis(self.read_timeout),
                });
            }
        };
        Ok(Request::from_parts(parts, Body::from(bytes)))
    }

    fn declared_too_large(self, request: &Request) -> bool {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        declared.is_some_and(|length| length > self.bytes as u64)
    }
}
