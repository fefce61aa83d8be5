//! The layers and routes every BFF puts in front of its own router.
//!
//! Outermost first, each request passes: request context (request id,
//! trace) → tracing → panic guard → CORS → admission: the whole body read
//! (bounded by the body limit and the body-read timeout), then within the
//! whole-request timeout, which starts once the body is in:
//! authentication → per-client rate limit (when configured) → the BFF's
//! routes, plus `/healthz` and `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use downstream::{RequestContext, Service};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;
use url::{Host, Url};

use crate::auth::{JwtVerifier, authenticate_request};
use crate::config::{Config, RateLimitConfig};
use crate::context::{REQUEST_ID_HEADER, TRACEPARENT_HEADER};
use crate::context::{downstream_budget, request_context, restart_deadline};
use crate::error::{BffError, ErrorBody, graphql_error_response, standard_error_body};
use crate::rate_limit::{ClientRateLimit, RefusalShape};

/// Upper bound on one readiness TCP connect: a healthy service answers a
/// handshake in milliseconds, and orchestrators poll often.
pub const READINESS_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

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
    targets: Vec<ReadinessTarget>,
    error_body: ErrorBody,
    rate_limit: RateLimitConfig,
    graphql: bool,
    cors_origins: Vec<HeaderValue>,
}

/// One downstream service `/readyz` connects to.
#[derive(Debug, Clone)]
struct ReadinessTarget {
    service: Service,
    url: Url,
    timeout: Duration,
}

/// Wraps `router` in the standard front door; see [`FrontDoor`] to change
/// the error body shape or the services `/readyz` checks.
pub fn front_door(router: Router, config: &Config, verifier: Arc<JwtVerifier>) -> Router {
    FrontDoor::new(config, verifier).wrap(router)
}

impl FrontDoor {
    pub fn new(config: &Config, verifier: Arc<JwtVerifier>) -> Self {
        let targets = Service::ALL
            .into_iter()
            .map(|service| ReadinessTarget {
                service,
                url: config.downstream.service(service).url.clone(),
                timeout: config
                    .downstream
                    .timeout(service)
                    .min(READINESS_CONNECT_TIMEOUT),
            })
            .collect();
        Self {
            verifier,
            body_limit_bytes: config.body_limit_bytes,
            body_read_timeout: config.body_read_timeout(),
            request_timeout: config.request_timeout(),
            targets,
            error_body: standard_error_body,
            rate_limit: config.rate_limit.clone(),
            graphql: false,
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

    /// Shape of the body of the errors the front door itself answers with
    /// (413, 408, 504) on REST routes; default [`standard_error_body`].
    pub fn with_error_body(mut self, error_body: ErrorBody) -> Self {
        self.error_body = error_body;
        self
    }

    /// Only these services decide readiness (e.g. iot-bff needs only the
    /// device service); default all five.
    pub fn with_readiness_services(mut self, services: impl IntoIterator<Item = Service>) -> Self {
        let wanted: Vec<Service> = services.into_iter().collect();
        self.targets
            .retain(|target| wanted.contains(&target.service));
        self
    }

    /// Adds `/healthz` and `/readyz` to `router` and wraps all of it (also
    /// its fallback) in the front-door layers. `router` must not define those
    /// two paths itself.
    pub fn wrap(self, router: Router) -> Router {
        // Before any request, so that no downstream metric is lost.
        crate::metrics::install_prometheus();
        let targets = Arc::new(self.targets);
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
            rate_limit: ClientRateLimit::new(&self.rate_limit, shape),
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
            .on_response(
                DefaultOnResponse::new()
                    .level(Level::INFO)
                    .latency_unit(LatencyUnit::Millis),
            )
            .on_failure(
                // The error behind a 5xx is already logged where it is
                // created (`BffError::log`) at the level it deserves; this is
                // a second, coarser line, and must not page anyone.
                DefaultOnFailure::new()
                    .level(Level::WARN)
                    .latency_unit(LatencyUnit::Millis),
            );

        let layers = ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(
                downstream_budget(self.request_timeout),
                request_context,
            ))
            .layer(trace)
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

        router
            .route("/healthz", get(healthz))
            .route("/metrics", get(crate::metrics::metrics))
            .route("/readyz", get(move || readyz(Arc::clone(&targets))))
            .layer(layers)
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

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when every target accepts a TCP connection. Only service names go
/// in the body: URLs would map the internal network for anyone who asks.
async fn readyz(targets: Arc<Vec<ReadinessTarget>>) -> Response {
    let checks = targets.iter().map(|target| async move {
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
        Json(json!({ "status": "ready" })).into_response()
    } else {
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
        if let Some(refusal) = self
            .rate_limit
            .as_ref()
            .and_then(|rate_limit| rate_limit.refuse(&request))
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
