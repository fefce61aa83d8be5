//! Per-request context: the request id and trace every downstream call
//! carries, taken from the client when sane, made up otherwise.

use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use downstream::context::generate_request_id;
use downstream::{RequestContext, TraceParent};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::BffError;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT_HEADER: HeaderName = HeaderName::from_static("traceparent");
/// Longer client ids are replaced: they would bloat every log line.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client-sent request id is safe to log and forward as is:
/// 1..=128 characters of `[A-Za-z0-9._-]` (no spaces, quotes or control
/// characters that could forge log lines or headers).
pub fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The context of a request with these headers, before authentication
/// (`user_id` is filled in by the auth middleware).
pub fn context_from_headers(headers: &HeaderMap) -> RequestContext {
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane_request_id(id))
        .map_or_else(generate_request_id, str::to_owned);
    let trace = headers
        .get(TRACEPARENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::child_of)
        .unwrap_or_else(TraceParent::new_root);
    RequestContext {
        request_id,
        trace,
        user_id: None,
        // Set by `request_context` from the request timeout.
        deadline: None,
        stale: Default::default(),
        waits: Default::default(),
    }
}

/// How much of the request's time downstream calls (and their retries) may
/// use: the rest is kept so the BFF can still answer with what it has, and
/// name the late part, before the front door's own 504.
pub fn downstream_budget(request_timeout: Duration) -> Duration {
    request_timeout.saturating_sub((request_timeout / 10).min(MAX_ANSWER_RESERVE))
}

const MAX_ANSWER_RESERVE: Duration = Duration::from_millis(100);

/// Starts the request's deadline (set by [`request_context`] on arrival)
/// again, `budget` from now: the front door calls it once the body is in,
/// so the time a client takes to send it is not taken from downstream calls.
pub(crate) fn restart_deadline(extensions: &mut http::Extensions, budget: Duration) {
    if let Some(context) = extensions.get_mut::<RequestContext>() {
        context.deadline = Some(tokio::time::Instant::now() + budget);
    }
}

/// Middleware: puts a [`RequestContext`] into the request extensions, with
/// a deadline `budget` from now, and echoes its request id on the response,
/// so a client can quote it in a bug report. Install it outermost, so every
/// response carries the id.
pub async fn request_context(
    State(budget): State<Duration>,
    mut request: Request,
    next: Next,
) -> Response {
    let context = context_from_headers(request.headers()).with_timeout(budget);
    // The id is sane or generated hex, so it is always a valid header value;
    // the fallback only keeps this free of panics.
    let echoed = HeaderValue::from_str(&context.request_id).ok();
    request.extensions_mut().insert(context);
    let mut response = next.run(request).await;
    if let Some(id) = echoed {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    response
}

/// Extracts the request's [`RequestContext`] (with the viewer's user id when
/// the auth middleware ran). A newtype because both the trait and the type
/// are foreign to this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCtx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for RequestCtx {
    type Rejection = BffError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .map(RequestCtx)
            .ok_or_else(|| {
                BffError::internal(
                    "RequestCtx extractor used without the request-context middleware",
                )
            })
    }
}
