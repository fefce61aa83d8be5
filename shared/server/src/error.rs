//! The one error contract every client sees.
//!
//! `ErrorCode` is the only place codes map to HTTP statuses. `BffError` is
//! what handlers and resolvers return: its `Display` is the client-safe
//! message, internals stay in its fields and are logged by `BffError::log`,
//! once, where the error leaves the process (an HTTP response or a GraphQL
//! error).

use axum::Json;
use axum::response::{IntoResponse, Response};
use downstream::DownstreamError;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::AuthError;

/// Machine-readable error codes: GraphQL `extensions.code`, REST `error.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    BadUserInput,
    NotFound,
    DownstreamUnavailable,
    DownstreamTimeout,
    RateLimited,
    PersistedQueryNotFound,
    PayloadTooLarge,
    RequestTimeout,
    ClientTimeout,
    InternalServerError,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::BadUserInput,
        ErrorCode::NotFound,
        ErrorCode::DownstreamUnavailable,
        ErrorCode::DownstreamTimeout,
        ErrorCode::RateLimited,
        ErrorCode::PersistedQueryNotFound,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::ClientTimeout,
        ErrorCode::InternalServerError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::DownstreamUnavailable => "DOWNSTREAM_UNAVAILABLE",
            ErrorCode::DownstreamTimeout => "DOWNSTREAM_TIMEOUT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::ClientTimeout => "CLIENT_TIMEOUT",
            ErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The status of a response that ends with this error. GraphQL responses
    /// stay 200 with the code in `extensions`; this is for REST and for the
    /// front door (auth, limits, timeouts).
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            // The BFF is up; the service behind it is not: a gateway error.
            ErrorCode::DownstreamUnavailable => StatusCode::BAD_GATEWAY,
            ErrorCode::DownstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            // The client must resend with the query text. 200, as Apollo
            // clients expect (iOS and Kotlin take any other status for a
            // transport failure and would not resend), on every transport.
            ErrorCode::PersistedQueryNotFound => StatusCode::OK,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            // Not 408: that means the client was too slow; here we were.
            ErrorCode::RequestTimeout => StatusCode::GATEWAY_TIMEOUT,
            // The client did not send its request in time.
            ErrorCode::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An error that ends (part of) a client request. `Display` is the message
/// the client sees, so it never contains internals; those stay in the
/// fields (`Debug`) and reach only the logs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BffError {
    /// No (valid) viewer where one is required.
    #[error("authentication required")]
    Unauthenticated,
    /// A bearer token was sent but does not verify. The reason is logged at
    /// debug level only: telling clients why helps forgers.
    #[error("invalid token")]
    InvalidToken(#[source] AuthError),
    /// The viewer may not do this; the reason is written for the client.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The client's input is wrong; the message is written for the client.
    #[error("{0}")]
    BadUserInput(String),
    /// The named thing does not exist, e.g. `NotFound("product".into())`.
    #[error("{0} not found")]
    NotFound(String),
    /// A downstream call failed; the client learns only which service.
    #[error("{}", downstream_message(.0))]
    Downstream(#[source] DownstreamError),
    #[error("too many requests: retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Apollo clients match this exact message to resend the full query.
    #[error("PersistedQueryNotFound")]
    PersistedQueryNotFound,
    #[error("request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("request did not complete within {timeout_ms} ms")]
    RequestTimeout { timeout_ms: u64 },
    /// The request body did not arrive in time.
    #[error("request body did not arrive within {timeout_ms} ms")]
    ClientTimeout { timeout_ms: u64 },
    /// A bug or an unexpected condition; the detail is logged, never sent.
    #[error("internal server error")]
    Internal(String),
}

fn downstream_message(error: &DownstreamError) -> String {
    let service = error.service();
    match error {
        // An id no entity can have: as good as unknown.
        DownstreamError::NotFound { .. } | DownstreamError::InvalidId { .. } => {
            format!("{service} not found")
        }
        DownstreamError::Unsendable { .. } => format!(
            "the request cannot be sent to the {service} service: an argument is too long \
             or holds characters it cannot take"
        ),
        DownstreamError::Rejected { status: 403, .. } => {
            format!("forbidden: the {service} service refused this for the viewer")
        }
        DownstreamError::Rejected { .. } => format!("{service} service rejected the request"),
        // A contract-breaking body is the service's fault, not the client's:
        // to the client it is just unavailable.
        DownstreamError::Unavailable { .. }
        | DownstreamError::CircuitOpen { .. }
        | DownstreamError::BadResponse { .. } => {
            format!("{service} service unavailable")
        }
        DownstreamError::Timeout { .. } => format!("{service} service timed out"),
    }
}

impl BffError {
    /// An internal error: `detail` goes to the logs, the client sees only
    /// "internal server error".
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        BffError::Internal(detail.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            BffError::Unauthenticated | BffError::InvalidToken(_) => ErrorCode::Unauthenticated,
            BffError::Forbidden(_) => ErrorCode::Forbidden,
            BffError::BadUserInput(_) => ErrorCode::BadUserInput,
            BffError::NotFound(_) => ErrorCode::NotFound,
            BffError::Downstream(error) => match error {
                DownstreamError::NotFound { .. } | DownstreamError::InvalidId { .. } => {
                    ErrorCode::NotFound
                }
                DownstreamError::Unsendable { .. } => ErrorCode::BadUserInput,
                // The service refused this viewer (e.g. an account that may
                // not check out): the client's own standing, not bad input.
                DownstreamError::Rejected { status: 403, .. } => ErrorCode::Forbidden,
                DownstreamError::Rejected { .. } => ErrorCode::BadUserInput,
                DownstreamError::Unavailable { .. }
                | DownstreamError::CircuitOpen { .. }
                | DownstreamError::BadResponse { .. } => ErrorCode::DownstreamUnavailable,
                DownstreamError::Timeout { .. } => ErrorCode::DownstreamTimeout,
            },
            BffError::RateLimited { .. } => ErrorCode::RateLimited,
            BffError::PersistedQueryNotFound => ErrorCode::PersistedQueryNotFound,
            BffError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            BffError::RequestTimeout { .. } => ErrorCode::RequestTimeout,
            BffError::ClientTimeout { .. } => ErrorCode::ClientTimeout,
            BffError::Internal(_) => ErrorCode::InternalServerError,
        }
    }

    pub fn http_status(&self) -> StatusCode {
        self.code().http_status()
    }

    /// The message for the client (same as `Display`).
    pub fn client_message(&self) -> String {
        self.to_string()
    }

    /// Logs what the client is not told, at a level matching whose fault it
    /// is. Called where the error leaves the process, so each is logged once.
    pub fn log(&self) {
        match self {
            BffError::Internal(detail) => {
                tracing::error!(code = %self.code(), %detail, "internal error")
            }
            BffError::Downstream(error) => match error {
                DownstreamError::NotFound { .. } | DownstreamError::Rejected { .. } => {
                    tracing::debug!(code = %self.code(), %error, "downstream refused");
                }
                _ => tracing::warn!(code = %self.code(), %error, "downstream failed"),
            },
            BffError::InvalidToken(reason) => {
                tracing::debug!(code = %self.code(), %reason, "bearer token rejected");
            }
            BffError::RequestTimeout { .. } => {
                tracing::warn!(code = %self.code(), "request timed out")
            }
            _ => tracing::debug!(code = %self.code(), message = %self, "request failed"),
        }
    }

    /// Headers the status calls for: `WWW-Authenticate` on 401 (RFC 6750),
    /// `Retry-After` on 429, `Connection: close` on 408 (RFC 9110: the
    /// server gave up on this connection; the rest of the body may follow).
    pub fn response_headers(&self) -> Vec<(header::HeaderName, HeaderValue)> {
        match self {
            BffError::Unauthenticated => {
                vec![(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))]
            }
            BffError::InvalidToken(_) => vec![(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            )],
            BffError::RateLimited { retry_after_secs } => {
                vec![(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs))]
            }
            BffError::ClientTimeout { .. } => {
                vec![(header::CONNECTION, HeaderValue::from_static("close"))]
            }
            _ => Vec::new(),
        }
    }

    /// The response for this error with a body of the caller's shape (e.g.
    /// IoT's compact `{"e": ...}`); status and headers stay the standard ones.
    pub fn into_response_with(self, body: ErrorBody) -> Response {
        self.log();
        let mut response = (
            self.http_status(),
            Json(body(self.code(), &self.to_string())),
        )
            .into_response();
        response.headers_mut().extend(self.response_headers());
        response
    }
}

/// Shapes the JSON body of an error response from the code and the
/// client-safe message. A plain `fn` so it is `Copy` and cheap to share.
pub type ErrorBody = fn(ErrorCode, &str) -> Value;

/// `{"error": {"code": "NOT_FOUND", "message": "product not found"}}`.
pub fn standard_error_body(code: ErrorCode, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

impl BffError {
    /// `{"errors": [{"message": ..., "extensions": {"code": ...}}]}`: the
    /// GraphQL shape of this error (plus `extensions.retryAfterSecs` when
    /// rate limited), for answers made without running an operation. Plain
    /// JSON, so the front door answers GraphQL-shaped without the GraphQL code.
    pub fn graphql_body(&self) -> Value {
        let mut extensions = serde_json::Map::new();
        extensions.insert("code".into(), json!(self.code()));
        if let BffError::RateLimited { retry_after_secs } = self {
            extensions.insert("retryAfterSecs".into(), json!(retry_after_secs));
        }
        json!({ "errors": [{ "message": self.to_string(), "extensions": extensions }] })
    }
}

/// A GraphQL response that carries only `errors`, with the error's HTTP
/// status and headers: for requests refused before execution (e.g. an
/// invalid bearer token → 401 with `WWW-Authenticate`).
pub fn graphql_error_response(error: BffError) -> Response {
    error.log();
    crate::metrics::count_graphql_error(Some(error.code().as_str()));
    let mut response = (error.http_status(), Json(error.graphql_body())).into_response();
    response.headers_mut().extend(error.response_headers());
    response
}

impl From<DownstreamError> for BffError {
    fn from(error: DownstreamError) -> Self {
        BffError::Downstream(error)
    }
}

impl From<AuthError> for BffError {
    fn from(error: AuthError) -> Self {
        BffError::InvalidToken(error)
    }
}

impl IntoResponse for BffError {
    fn into_response(self) -> Response {
        self.into_response_with(standard_error_body)
    }
}

#[cfg(feature = "graphql")]
impl async_graphql::ErrorExtensions for BffError {
    /// A GraphQL error with `extensions.code` (and `retryAfterSecs` when rate
    /// limited). async-graphql's blanket `From<T: Display>` already turns a
    /// `BffError` into an error with the right message but no code; the
    /// endpoint adds the code to those after execution
    /// (`graphql::apply_error_codes`), so `?` works in resolvers. This is
    /// for code that builds errors by hand.
    fn extend(&self) -> async_graphql::Error {
        self.log();
        let code = self.code();
        let retry_after = match self {
            BffError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", code.as_str());
            if let Some(secs) = retry_after {
                extensions.set("retryAfterSecs", secs);
            }
        })
    }
}
