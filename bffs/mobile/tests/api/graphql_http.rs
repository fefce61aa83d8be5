//! GraphQL over HTTP as the spec says: the graphql-http audit, introspection
//! refused (not nulled) in prod, also as a persisted query, request errors
//! without `data`, and a POST body that must be declared JSON.

use bff_server::Profile;
use serde_json::{Value, json};
use testkit::assert_request_error;
use testkit::graphql_http::assert_graphql_http_audit_passes;

use crate::helpers::{
    PREFLIGHT, TestApp, apq_extension, data, only_error, sha256, spawn_app, spawn_app_with,
};

const MODERN: &str = "application/graphql-response+json";

/// The dev profile (introspection on), as the audit's schema checks expect.
#[tokio::test]
async fn passes_the_graphql_http_audit() {
    let app = spawn_app().await;
    assert_graphql_http_audit_passes(app.url("/graphql")).await;
}

/// A POST of `body` with `accept`; the status and the JSON body.
async fn post(app: &TestApp, accept: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("accept", accept)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn prod_refuses_introspection_as_a_request_error_before_anything_runs() {
    let app = spawn_app_with(|config| config.profile = Profile::Prod).await;
    let asks = [
        "{ __schema { queryType { name } } }",
        "{ t: __type(name: \"ProductView\") { fields { name } } }",
        "query { ...Schema } fragment Schema on Query { __schema { types { name } } }",
        "{ product(id: \"p1\") { id } ... on Query { __type(name: \"Query\") { name } } }",
    ];
    for query in asks {
        for _ in 0..2 {
            let body = json!({ "query": query });
            let (status, answer) = post(&app, "application/json", &body).await;
            assert_eq!(status, 200, "{query}");
            assert_request_error(&answer, "introspection is disabled");
            let (status, answer) = post(&app, MODERN, &body).await;
            assert_eq!(status, 400, "{query}");
            assert_request_error(&answer, "introspection is disabled");
        }
    }
    // Registered as an automatic persisted query, then asked for by hash
    // over GET: refused both times, never a cacheable answer.
    let query = asks[0];
    let extensions = apq_extension(&sha256(query));
    let body = json!({ "query": query, "extensions": extensions });
    let (_, answer) = post(&app, "application/json", &body).await;
    assert_request_error(&answer, "introspection is disabled");
    let response = app.get(json!({ "extensions": extensions }), None).await;
    assert_ne!(
        response.headers()["cache-control"],
        "public, max-age=60",
        "an introspection answer must not be cached"
    );
    let answer: Value = response.json().await.unwrap();
    assert!(answer.get("data").is_none(), "{answer}");
    assert_eq!(app.downstream_total(), 0);

    // `__typename` is not introspection.
    let response = app
        .query(
            "{ __typename product(id: \"p1\") { __typename id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&response),
        &json!({ "__typename": "Query", "product": { "__typename": "ProductView", "id": "p1" } })
    );
}

#[tokio::test]
async fn request_errors_have_no_data_and_400_for_graphql_response_json() {
    let app = spawn_app().await;
    for (query, message_part) in [
        ("{", "expected"),
        ("{ nope }", "nope"),
        ("{ product { id } }", "required"),
    ] {
        let body = json!({ "query": query });
        let (modern_status, modern) = post(&app, MODERN, &body).await;
        let (legacy_status, legacy) = post(&app, "application/json", &body).await;
        assert_eq!(modern_status, 400, "{query}: {modern}");
        assert_eq!(legacy_status, 200, "{query}: {legacy}");
        for answer in [&modern, &legacy] {
            assert!(answer.get("data").is_none(), "{query}: {answer}");
            let message = only_error(answer)["message"].as_str().unwrap();
            assert!(message.contains(message_part), "{query}: {answer}");
        }
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_post_must_declare_a_json_body_even_when_preflighted() {
    let app = spawn_app().await;
    let body = json!({ "query": "{ product(id: \"p1\") { id } }" }).to_string();
    for content_type in [None, Some("text/plain;charset=UTF-8")] {
        let mut request = app
            .client
            .post(app.url("/graphql"))
            .header(PREFLIGHT.0, PREFLIGHT.1)
            .body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{content_type:?}");
        let answer: Value = response.json().await.unwrap();
        assert_request_error(&answer, "Content-Type of application/json");
    }
    assert_eq!(app.downstream_total(), 0);
}
