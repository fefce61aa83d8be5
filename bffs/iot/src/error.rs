//! The compact error body. Statuses and headers stay the shared contract's
//! (`bff_server::ErrorCode`, e.g. 401 with `WWW-Authenticate: Bearer`);
//! only the body is shortened to `{"e": "..."}`.

use axum::response::Response;
use bff_server::{BffError, ErrorCode};
use serde_json::{Value, json};

/// `{"e": message}`. Every not-found says just "not found": a device that
/// exists but is someone else's must read exactly like one that does not.
pub fn compact_error_body(code: ErrorCode, message: &str) -> Value {
    let message = match code {
        ErrorCode::NotFound => "not found",
        _ => message,
    };
    json!({ "e": message })
}

/// The response for `error`: standard status and headers, compact body.
/// Always JSON, whatever the client asked for: the front door's own errors
/// (408, 413, 504) cannot negotiate, and one error encoding is simpler for a
/// device than two.
pub fn error_response(error: BffError) -> Response {
    error.into_response_with(compact_error_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_never_names_anything() {
        assert_eq!(
            compact_error_body(ErrorCode::NotFound, "device not found"),
            json!({"e": "not found"})
        );
        assert_eq!(
            compact_error_body(ErrorCode::BadUserInput, "unknown key: x"),
            json!({"e": "unknown key: x"})
        );
    }
}
