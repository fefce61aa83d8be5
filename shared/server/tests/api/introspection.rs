//! `GraphQlEndpoint` with introspection off: `__schema`/`__type` are
//! refused as a request error before any resolver runs (async-graphql alone
//! would answer null), and `respond` writes that error without `data`.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use bff_server::graphql::{GRAPHQL_RESPONSE_JSON, GraphQlEndpoint, SchemaOptions, respond};
use serde_json::{Value, json};

/// Resolver runs. Only `off_refuses_schema_fields_before_any_resolver_runs`
/// selects `counted` where introspection is allowed or refused, so the
/// tests may run in parallel.
static RAN: AtomicUsize = AtomicUsize::new(0);

struct Query;

#[Object]
impl Query {
    async fn counted(&self) -> i32 {
        RAN.fetch_add(1, Ordering::SeqCst);
        1
    }
}

type Endpoint = GraphQlEndpoint<Query, EmptyMutation, EmptySubscription>;

fn endpoint(introspection: bool) -> Endpoint {
    SchemaOptions { introspection }
        .endpoint(
            || Schema::build(Query, EmptyMutation, EmptySubscription),
            false,
            Default::default(),
        )
        .unwrap()
}

async fn run(endpoint: &Endpoint, query: &str) -> async_graphql::Response {
    endpoint.execute(async_graphql::Request::new(query)).await
}

/// Introspection alone, for the tests where it may run.
const SCHEMA_ONLY: &str = "{ __schema { queryType { name } } }";

const ASKS: [&str; 3] = [
    "{ counted __schema { queryType { name } } }",
    "{ counted t: __type(name: \"Query\") { name } }",
    "{ counted ...F } fragment F on Query { ... on Query { __schema { types { name } } } }",
];

#[tokio::test]
async fn off_refuses_schema_fields_before_any_resolver_runs() {
    let endpoint = endpoint(false);
    // Twice: the second time the document is cached.
    for query in ASKS.iter().chain(ASKS.iter()) {
        let before = RAN.load(Ordering::SeqCst);
        let response = serde_json::to_value(run(&endpoint, query).await).unwrap();
        assert_eq!(RAN.load(Ordering::SeqCst), before, "{query} ran");
        assert!(response["data"].is_null(), "{response}");
        let errors = response["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{response}");
        assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT");
        let message = errors[0]["message"].as_str().unwrap();
        assert!(message.contains("introspection is disabled"), "{message}");
    }
    let response = serde_json::to_value(run(&endpoint, "{ __typename counted }").await).unwrap();
    assert_eq!(
        response,
        json!({ "data": { "__typename": "Query", "counted": 1 } })
    );
}

#[tokio::test]
async fn on_answers_them() {
    let endpoint = endpoint(true);
    let response = serde_json::to_value(run(&endpoint, SCHEMA_ONLY).await).unwrap();
    assert_eq!(response["data"]["__schema"]["queryType"]["name"], "Query");
    assert!(response.get("errors").is_none(), "{response}");
}

#[tokio::test]
async fn an_endpoint_refuses_them_unless_told_otherwise() {
    // The schema would answer, but the endpoint was not told introspection
    // is wanted: the safe default holds.
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
    let endpoint = GraphQlEndpoint::new(schema.clone(), false, Default::default()).unwrap();
    let response = run(&endpoint, SCHEMA_ONLY).await;
    assert_eq!(response.errors.len(), 1);
    let endpoint = GraphQlEndpoint::new(schema, false, Default::default())
        .unwrap()
        .with_introspection(true);
    assert!(run(&endpoint, SCHEMA_ONLY).await.errors.is_empty());
}

#[tokio::test]
async fn a_request_error_is_written_without_data() {
    let endpoint = endpoint(false);
    for (accept, status, content_type) in [
        (
            GRAPHQL_RESPONSE_JSON,
            400,
            "application/graphql-response+json; charset=utf-8",
        ),
        ("application/json", 200, "application/json; charset=utf-8"),
    ] {
        let mut headers = http::HeaderMap::new();
        headers.insert("accept", accept.parse().unwrap());
        let answer = respond(&headers, run(&endpoint, SCHEMA_ONLY).await);
        assert_eq!(answer.status(), status);
        assert_eq!(answer.headers()["content-type"], content_type);
        let bytes = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    // A field error keeps `data`, even when it is null.
    let response = async_graphql::Response::from_errors(vec![
        async_graphql::ServerError::new("boom", None)
            .with_path(vec![async_graphql::PathSegment::Field("counted".into())]),
    ]);
    let answer = respond(&http::HeaderMap::new(), response);
    let bytes = axum::body::to_bytes(answer.into_body(), 4096)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(body.get("data").is_some_and(Value::is_null), "{body}");
}
