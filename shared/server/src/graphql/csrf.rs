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
    match headers.get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => {
            // The MIME essence: before parameters, trimmed, any case.
            let essence = value
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            SIMPLE_CONTENT_TYPES.contains(&essence.as_str())
        }
    }
}

/// Middleware for GraphQL routes: refuses with 400 a request a browser
/// could have sent cross-site without a preflight (see the module docs).
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
    next.run(request).await
}
