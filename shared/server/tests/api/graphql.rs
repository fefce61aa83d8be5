//! The error contract of GraphQL responses: `?` in resolvers yields coded
//! errors (the endpoint adds the codes after execution).

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, ErrorExtensions, Object, Schema};
use bff_server::BffError;
use bff_server::auth::AuthError;
use bff_server::graphql::{GraphQlEndpoint, graphql_error_response, is_mutation};
use downstream::{DownstreamError, Service};
use serde_json::{Value, json};

struct Query;

#[Object]
impl Query {
    async fn fine(&self) -> &str {
        "ok"
    }

    async fn missing(&self) -> Result<String, BffError> {
        Err(BffError::NotFound("order".into()))
    }

    async fn broken_product(&self) -> async_graphql::Result<Option<String>> {
        let lookup: Result<String, DownstreamError> = Err(DownstreamError::BadResponse {
            service: Service::Product,
        });
        Ok(Some(lookup?))
    }

    async fn leaky(&self) -> async_graphql::Result<i32> {
        let parsed: Result<i32, _> = serde_json::from_str::<i32>("{internal detail");
        Ok(parsed?)
    }

    async fn deliberate(&self) -> async_graphql::Result<i32> {
        Err("limit must be at most 100".into())
    }

    async fn extended(&self) -> async_graphql::Result<i32> {
        Err(BffError::Forbidden("admins only".into()).extend())
    }

    async fn rate_limited(&self) -> Result<i32, BffError> {
        Err(BffError::RateLimited {
            retry_after_secs: 2,
        })
    }
}

async fn run(query: &str) -> Value {
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
    let endpoint = GraphQlEndpoint::new(schema, false, Default::default()).unwrap();
    serde_json::to_value(endpoint.execute(async_graphql::Request::new(query)).await).unwrap()
}

fn error_at(response: &Value, field: &str) -> Value {
    response["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|error| error["path"][0] == field)
        .cloned()
        .unwrap_or_else(|| panic!("no error at {field}: {response}"))
}

#[tokio::test]
async fn one_failing_field_leaves_the_rest() {
    let response = run("{ fine brokenProduct }").await;
    assert_eq!(response["data"]["fine"], "ok");
    // async-graphql 7.2 leaves an errored nullable field out of `data`
    // rather than writing `null`; either way the client reads null.
    assert!(response["data"]["brokenProduct"].is_null(), "{response}");
    let error = error_at(&response, "brokenProduct");
    assert_eq!(error["message"], "product service unavailable");
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
}

#[tokio::test]
async fn bff_errors_get_their_code() {
    let response = run("{ fine missing rateLimited }").await;
    let error = error_at(&response, "missing");
    assert_eq!(error["message"], "order not found");
    assert_eq!(error["extensions"]["code"], "NOT_FOUND");
    let error = error_at(&response, "rateLimited");
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(error["extensions"]["retryAfterSecs"], 2);
}

#[tokio::test]
async fn unmapped_errors_are_hidden() {
    let response = run("{ leaky }").await;
    let error = error_at(&response, "leaky");
    assert_eq!(error["message"], "internal server error");
    assert_eq!(error["extensions"]["code"], "INTERNAL_SERVER_ERROR");
}

#[tokio::test]
async fn deliberate_messages_and_explicit_codes_are_kept() {
    let response = run("{ deliberate extended }").await;
    let error = error_at(&response, "deliberate");
    assert_eq!(error["message"], "limit must be at most 100");
    let error = error_at(&response, "extended");
    assert_eq!(error["message"], "forbidden: admins only");
    assert_eq!(error["extensions"]["code"], "FORBIDDEN");
}

#[test]
fn mutations_are_told_apart_from_queries() {
    let request = |query: &str| async_graphql::Request::new(query);
    assert!(!is_mutation(&request("{ fine }")));
    assert!(!is_mutation(&request("query Q { fine }")));
    assert!(is_mutation(&request("mutation M { placeOrder }")));
    assert!(!is_mutation(&request("not graphql {")));
    let both = "query Q { fine } mutation M { placeOrder }";
    assert!(!is_mutation(&request(both).operation_name("Q")));
    assert!(is_mutation(&request(both).operation_name("M")));
    assert!(is_mutation(&request(both)), "ambiguous counts as a write");
}

#[tokio::test]
async fn errors_before_execution_are_graphql_shaped() {
    let response = graphql_error_response(BffError::InvalidToken(AuthError::Expired));
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let bytes = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!({ "errors": [{ "message": "invalid token", "extensions": { "code": "UNAUTHENTICATED" } }] })
    );
}

#[tokio::test]
async fn unexpected_errors_carry_the_request_id() {
    use bff_server::graphql::RequestScope;

    let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
    let endpoint = GraphQlEndpoint::new(schema, false, Default::default()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("x-request-id", "req-42".parse().unwrap());
    let ctx = bff_server::context::context_from_headers(&headers);
    let http = downstream::http::build_http_client().unwrap();
    let downstream = downstream::Downstream::new(&downstream::DownstreamConfig::default(), http);
    let request = async_graphql::Request::new("{ fine leaky missing }").data(RequestScope::new(
        Arc::new(downstream),
        ctx,
        None,
    ));
    let response = serde_json::to_value(endpoint.execute(request).await).unwrap();
    let error = error_at(&response, "leaky");
    assert_eq!(error["message"], "internal server error");
    assert_eq!(error["extensions"]["code"], "INTERNAL_SERVER_ERROR");
    assert_eq!(error["extensions"]["requestId"], "req-42");
    assert!(
        !response.to_string().contains("internal detail"),
        "{response}"
    );
    // Errors the client can act on need no id.
    let error = error_at(&response, "missing");
    assert!(error["extensions"].get("requestId").is_none(), "{error}");
}

struct Admin;

#[Object]
impl Admin {
    #[graphql(guard = "bff_server::graphql::RoleGuard::new(\"admin\")")]
    /// Nullable, so a refusal nulls only this field.
    async fn secret(&self) -> Option<&str> {
        Some("only for admins")
    }

    async fn open(&self) -> &str {
        "for everyone"
    }
}

#[tokio::test]
async fn role_guards_answer_forbidden_or_unauthenticated() {
    use bff_server::graphql::RequestScope;
    use bff_server::{Viewer, ViewerKind};

    let schema = Schema::build(Admin, EmptyMutation, EmptySubscription).finish();
    let endpoint = GraphQlEndpoint::new(schema, false, Default::default()).unwrap();
    let run =
        |roles: Option<Vec<&'static str>>| {
            let endpoint = endpoint.clone();
            async move {
                let ctx = bff_server::context::context_from_headers(&http::HeaderMap::new());
                let http = downstream::http::build_http_client().unwrap();
                let downstream =
                    downstream::Downstream::new(&downstream::DownstreamConfig::default(), http);
                let viewer = roles.map(|roles| Viewer {
                    user_id: "u1".into(),
                    roles: roles.into_iter().map(str::to_owned).collect(),
                    kind: ViewerKind::User,
                });
                let request = async_graphql::Request::new("{ open secret }")
                    .data(RequestScope::new(Arc::new(downstream), ctx, viewer));
                serde_json::to_value(endpoint.execute(request).await).unwrap()
            }
        };
    let response = run(Some(vec!["support", "admin"])).await;
    assert_eq!(response["data"]["secret"], "only for admins", "{response}");

    let response = run(Some(vec!["support"])).await;
    let error = error_at(&response, "secret");
    assert_eq!(error["extensions"]["code"], "FORBIDDEN");
    assert_eq!(error["message"], "forbidden: the `admin` role is required");
    assert_eq!(response["data"]["open"], "for everyone");

    let response = run(None).await;
    assert_eq!(
        error_at(&response, "secret")["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}

#[test]
fn require_role_is_forbidden_without_the_role() {
    let viewer = bff_server::Viewer {
        user_id: "u1".into(),
        roles: vec!["support".into()],
        kind: bff_server::ViewerKind::User,
    };
    assert!(viewer.require_role("support").is_ok());
    let error = viewer.require_role("admin").unwrap_err();
    assert_eq!(error.code(), bff_server::ErrorCode::Forbidden);
    assert_eq!(error.http_status(), 403);
}
