//! GraphQL over HTTP as the spec says: the graphql-http audit, introspection
//! refused (not nulled) in prod, request errors without `data`, and a POST
//! body that must be declared JSON.

use bff_server::Profile;
use serde_json::{Value, json};
use testkit::assert_request_error;
use testkit::graphql_http::assert_graphql_http_audit_passes;

use crate::helpers::{PREFLIGHT, TestApp, data, only_error, spawn_app, spawn_app_with};

const MODERN: &str = "application/graphql-response+json";

/// The dev profile (introspection on), as the audit's schema checks expect.
#[tokio::test]
async fn passes_the_graphql_http_audit() {
    let app = spawn_app().await;
    assert_graphql_http_audit_passes(app.url("/graphql")).await;
}

/// A POST of `query` with `accept`; the status and the JSON body.
async fn post(app: &TestApp, accept: &str, query: &str) -> (u16, Value) {
    let response = app
        .graphql_request(query, json!({}), None)
        .header("accept", accept)
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
        "{ __type(name: \"Product\") { fields { name } } }",
        // Hidden behind an alias, a fragment, an inline fragment, beside
        // an ordinary field that would call a service.
        "{ s: __schema { types { name } } }",
        "query { ...Schema } fragment Schema on Query { __schema { queryType { name } } }",
        "{ product(id: \"p1\") { id } ... on Query { __type(name: \"Query\") { name } } }",
    ];
    for query in asks {
        // Twice: the second request of a document must not slip past on a
        // path that skips checks it passed before.
        for _ in 0..2 {
            let (status, body) = post(&app, "application/json", query).await;
            assert_eq!(status, 200, "{query}");
            assert_request_error(&body, "introspection is disabled");
            let (status, body) = post(&app, MODERN, query).await;
            assert_eq!(status, 400, "{query}");
            assert_request_error(&body, "introspection is disabled");
        }
    }
    // Over GET too.
    let response = app
        .client
        .get(app.url("/graphql"))
        .header(PREFLIGHT.0, PREFLIGHT.1)
        .query(&[("query", asks[0])])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_request_error(&response.json().await.unwrap(), "introspection");
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
        &json!({ "__typename": "Query", "product": { "__typename": "Product", "id": "p1" } })
    );
}

#[tokio::test]
async fn request_errors_have_no_data_and_400_for_graphql_response_json() {
    let app = spawn_app().await;
    // Over the 30 aliases the default limits allow.
    let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
    let aliases = format!("{{ {aliases}}}");
    let request_errors = [
        ("{", "expected"),                  // syntax
        ("{ nope }", "nope"),               // validation
        ("{ product { id } }", "required"), // validation
        (aliases.as_str(), "aliases"),      // abuse limit
        ("query Q { __typename }", ""),     // runs: the control
    ];
    for (query, message_part) in request_errors {
        let (modern_status, modern) = post(&app, MODERN, query).await;
        let (legacy_status, legacy) = post(&app, "application/json", query).await;
        assert_eq!(legacy_status, 200, "{query}: {legacy}");
        if message_part.is_empty() {
            assert_eq!(modern_status, 200, "{query}: {modern}");
            assert_eq!(data(&modern)["__typename"], "Query");
            continue;
        }
        assert_eq!(modern_status, 400, "{query}: {modern}");
        for body in [&modern, &legacy] {
            assert!(body.get("data").is_none(), "{query}: {body}");
            let message = only_error(body)["message"].as_str().unwrap();
            assert!(message.contains(message_part), "{query}: {body}");
        }
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_field_error_keeps_data_and_200() {
    let app = spawn_app().await;
    // Signed out, `me` is an error at its path; the request itself ran.
    let (status, body) = post(&app, MODERN, "{ me { name } }").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("data").is_some(), "{body}");
    assert_eq!(only_error(&body)["extensions"]["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_post_must_declare_a_json_body_even_when_preflighted() {
    let app = spawn_app().await;
    let body = json!({ "query": "{ product(id: \"p1\") { id } }" }).to_string();
    for content_type in [
        None,
        Some("text/plain;charset=UTF-8"),
        Some("application/xml"),
    ] {
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
    // The same body declared JSON runs.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(data(&answer)["product"]["id"], "p1");
}
