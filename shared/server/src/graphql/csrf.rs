//! Apollo-style CSRF prevention for GraphQL endpoints.
//!
//! A browser sends a cross-origin request without a CORS preflight only
//! when it is "simple": GET or POST, no content type or one of
//! `application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`,
//! and no custom headers. Such a request could come from any web page the
//! user visits, so, like Apollo Server's `csrfPrevention`, the endpoint
//! refuses it with 400 unless it carries `apollo-require-preflight` or
//! `x-apollo-operation-name` (which a page can only add after a preflight
//! the CORS policy decides). JSON POSTs (`application/json`) are never
//! simple; GET clients (Apollo iOS/Kotlin, persisted queries) send
//! `x-apollo-operation-name`. A GET without any query string carries no
//! operation (it gets GraphiQL or an error), so it is let through.
//!
//! A preflighted POST must still say its body is JSON: one without a
//! `Content-Type`, or with another one, is refused with 400 too (the
//! GraphQL-over-HTTP spec's POST body is `application/json`; graphql-http
//! audit 9ABE). async-graphql would otherwise read any body as JSON.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, Method, header};

use super::graphql_error_response;
use crate::error::BffError;
pub use crate::front_door::PREFLIGHT_HEADERS;

/// Content types a browser sends cross-origin without a preflight.
const SIMPLE_CONTENT_TYPES: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// Whether a browser could have sent a request with these headers from any
/// page without a preflight.
pub fn could_be_cross_site(headers: &HeaderMap) -> bool {
    let has_preflight_header = PREFLIGHT_HEADERS.iter().any(|name| {
        headers
            .get(name)
            .is_some_and(|value| !value.as_bytes().is_empty())
    });
    if has_preflight_header {
        return false;
    }
    content_type_essence(headers).is_none_or(|essence| {
        SIMPLE_CONTENT_TYPES
            .iter()
            .any(|simple| essence.eq_ignore_ascii_case(simple))
    })
}

/// Whether the body is declared JSON: `application/json`, or a JSON-based
/// `application/*+json` type (RFC 6839).
fn declares_json(headers: &HeaderMap) -> bool {
    content_type_essence(headers).is_some_and(|essence| {
        // `get`, not slicing: a non-ASCII value has no char boundary at 12.
        let starts = essence
            .get(..12)
            .is_some_and(|start| start.eq_ignore_ascii_case("application/"));
        let ends = essence
            .get(essence.len().saturating_sub(5)..)
            .is_some_and(|end| end.eq_ignore_ascii_case("+json"));
        essence.eq_ignore_ascii_case("application/json") || (starts && ends)
    })
}

/// The MIME essence of the content type (before parameters, trimmed; any
/// case), compared without allocating on every request. `None` without
/// the header.
fn content_type_essence(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let value = value.to_str().unwrap_or_default();
    Some(value.split(';').next().unwrap_or_default().trim())
}

/// Middleware for GraphQL routes: refuses with 400 a request a browser
/// could have sent cross-site without a preflight, and a POST whose body is
/// not declared JSON (see the module docs).
pub async fn prevent_csrf(request: Request, next: Next) -> Response {
    let carries_no_operation =
        request.method() == Method::GET && request.uri().query().is_none_or(str::is_empty);
    if !carries_no_operation && could_be_cross_site(request.headers()) {
        return graphql_error_response(BffError::BadUserInput(
            "this request has been blocked as a potential cross-site request forgery: \
             send it with a Content-Type of application/json, or with a non-empty \
             `x-apollo-operation-name` or `apollo-require-preflight` header"
                .into(),
        ));
    }
    if request.method() == Method::POST && !declares_json(request.headers()) {
        return graphql_error_response(BffError::BadUserInput(
            "a GraphQL POST body must be JSON: send it with a Content-Type of application/json"
                .into(),
        ));
    }
    next.run(request).await
}
