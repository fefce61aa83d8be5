//! Per-request context: the request id and trace every downstream call
//! carries, taken from the client when sane, made up otherwise.

use axum::extract::{FromRequestParts, Request};
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
        // The BFF sets it from its request deadline if it wants downstream
        // calls (and their retries) to respect it.
        deadline: None,
        stale: Default::default(),
    }
}

/// Middleware: puts a [`RequestContext`] into the request extensions and
/// echoes its request id on the response, so a client can quote it in a bug
/// report. Install it outermost, so every response carries the id.
pub async fn request_context(mut request: Request, next: Next) -> Response {
    let context = context_from_headers(request.headers());
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
