use std::collections::HashSet;

#[cfg(feature = "graphql")]
use async_graphql::ErrorExtensions;
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use bff_server::auth::AuthError;
use bff_server::error::standard_error_body;
use bff_server::{BffError, ErrorCode};
use downstream::{DownstreamError, Service};
use http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{spawn_front_door, test_config};

/// Every variant with its status, code and client message.
fn cases() -> Vec<(BffError, StatusCode, &'static str, &'static str)> {
    let product = Service::Product;
    vec![
        (
            BffError::Unauthenticated,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "authentication required",
        ),
        (
            BffError::InvalidToken(AuthError::Expired),
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "invalid token",
        ),
        (
            BffError::Forbidden("not your order".into()),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "forbidden: not your order",
        ),
        (
            BffError::BadUserInput("limit must be at most 100".into()),
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "limit must be at most 100",
        ),
        (
            BffError::NotFound("order".into()),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "order not found",
        ),
        (
            DownstreamError::NotFound { service: product }.into(),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "product not found",
        ),
        (
            DownstreamError::Rejected {
                service: product,
                status: 422,
            }
            .into(),
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "product service rejected the request",
        ),
        (
            DownstreamError::Rejected {
                service: Service::Order,
                status: 403,
            }
            .into(),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "forbidden: the order service refused this for the viewer",
        ),
        (
            DownstreamError::Unavailable {
                service: product,
                status: Some(503),
            }
            .into(),
            StatusCode::BAD_GATEWAY,
            "DOWNSTREAM_UNAVAILABLE",
            "product service unavailable",
        ),
        (
            DownstreamError::BadResponse { service: product }.into(),
            StatusCode::BAD_GATEWAY,
            "DOWNSTREAM_UNAVAILABLE",
            "product service unavailable",
        ),
        (
            DownstreamError::Timeout { service: product }.into(),
            StatusCode::GATEWAY_TIMEOUT,
            "DOWNSTREAM_TIMEOUT",
            "product service timed out",
        ),
        (
            BffError::RateLimited {
                retry_after_secs: 7,
            },
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "too many requests: retry in 7 s",
        ),
        (
            BffError::PersistedQueryNotFound,
            // What Apollo clients expect, to resend with the text.
            StatusCode::OK,
            "PERSISTED_QUERY_NOT_FOUND",
            "PersistedQueryNotFound",
        ),
        (
            BffError::PayloadTooLarge { limit_bytes: 10 },
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "request body is larger than 10 bytes",
        ),
        (
            BffError::RequestTimeout { timeout_ms: 2000 },
            StatusCode::GATEWAY_TIMEOUT,
            "REQUEST_TIMEOUT",
            "request did not complete within 2000 ms",
        ),
        (
            BffError::ClientTimeout { timeout_ms: 10_000 },
            StatusCode::REQUEST_TIMEOUT,
            "CLIENT_TIMEOUT",
            "request body did not arrive within 10000 ms",
        ),
        (
            BffError::internal("db pool exhausted at 10.1.2.3"),
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "internal server error",
        ),
    ]
}

async fn body_json(response: axum::response::Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn codes_are_distinct_screaming_snake_case() {
    let names: HashSet<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(names.len(), ErrorCode::ALL.len());
    for name in names {
        assert!(
            name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
            "{name}"
        );
    }
    assert_eq!(
        serde_json::to_value(ErrorCode::DownstreamTimeout).unwrap(),
        json!("DOWNSTREAM_TIMEOUT")
    );
}

#[test]
fn each_error_maps_to_its_status_code_and_message() {
    for (error, status, code, message) in cases() {
        assert_eq!(error.code().as_str(), code, "{error:?}");
        assert_eq!(error.http_status(), status, "{error:?}");
        assert_eq!(error.code().http_status(), status, "{error:?}");
        assert_eq!(error.client_message(), message, "{error:?}");
    }
}

#[tokio::test]
async fn each_error_becomes_a_json_response() {
    for (error, status, code, message) in cases() {
        let response = error.into_response();
        assert_eq!(response.status(), status);
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{code}"
        );
        assert_eq!(
            body_json(response).await,
            json!({ "error": { "code": code, "message": message } })
        );
    }
}

#[tokio::test]
async fn status_specific_headers_are_set() {
    let rate_limited = BffError::RateLimited {
        retry_after_secs: 7,
    }
    .into_response();
    assert_eq!(rate_limited.headers()["retry-after"], "7");
    let anonymous = BffError::Unauthenticated.into_response();
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let invalid = BffError::InvalidToken(AuthError::BadSignature).into_response();
    assert_eq!(
        invalid.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let slow_client = BffError::ClientTimeout { timeout_ms: 10 }.into_response();
    assert_eq!(slow_client.headers()["connection"], "close");
}

#[tokio::test]
async fn internals_never_reach_the_client() {
    let error = BffError::internal("db pool exhausted at 10.1.2.3");
    let body = body_json(error.into_response()).await.to_string();
    assert!(!body.contains("10.1.2.3"), "{body}");
    let downstream: BffError = DownstreamError::Unavailable {
        service: Service::Order,
        status: Some(503),
    }
    .into();
    let body = body_json(downstream.into_response()).await.to_string();
    assert!(!body.contains("503"), "{body}");
}

#[tokio::test]
async fn the_body_shape_is_the_callers_choice() {
    let response = BffError::NotFound("device".into())
        .into_response_with(|_code, message| json!({ "e": message }));
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body_json(response).await,
        json!({ "e": "device not found" })
    );
    assert_eq!(
        standard_error_body(ErrorCode::Forbidden, "no"),
        json!({ "error": { "code": "FORBIDDEN", "message": "no" } })
    );
}

#[tokio::test]
async fn handlers_return_errors_over_http() {
    let routes = Router::new().route(
        "/v1/devices/{id}",
        get(|| async {
            Err::<String, BffError>(
                DownstreamError::Timeout {
                    service: Service::Device,
                }
                .into(),
            )
        }),
    );
    let server = spawn_front_door(routes, &test_config()).await;
    let response = server
        .client
        .get(server.url("/v1/devices/d-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "error": { "code": "DOWNSTREAM_TIMEOUT", "message": "device service timed out" } })
    );
}

#[cfg(feature = "graphql")]
#[test]
fn graphql_errors_carry_the_code() {
    for (error, _, code, message) in cases() {
        let graphql = error.extend();
        assert_eq!(graphql.message, message);
        let extensions = graphql.extensions.unwrap();
        assert_eq!(
            extensions.get("code"),
            Some(&async_graphql::Value::from(code)),
            "{code}"
        );
    }
    let limited = BffError::RateLimited {
        retry_after_secs: 3,
    }
    .extend();
    assert_eq!(
        limited.extensions.unwrap().get("retryAfterSecs"),
        Some(&async_graphql::Value::from(3))
    );
}

/// The front door's GraphQL-shaped answers: plain JSON, no GraphQL code.
#[test]
fn graphql_bodies_carry_the_code() {
    for (error, _, code, message) in cases() {
        let body = error.graphql_body();
        let errors = body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{body}");
        assert_eq!(errors[0]["message"], message);
        assert_eq!(errors[0]["extensions"]["code"], code);
        assert_eq!(body.as_object().unwrap().len(), 1, "only `errors`: {body}");
    }
    let limited = BffError::RateLimited {
        retry_after_secs: 3,
    };
    assert_eq!(
        limited.graphql_body()["errors"][0]["extensions"],
        json!({ "code": "RATE_LIMITED", "retryAfterSecs": 3 })
    );
}
