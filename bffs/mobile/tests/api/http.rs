//! The endpoint itself: GET rules, unreadable requests, GraphiQL and
//! introspection by profile, health behind the same front door.

use bff_server::Profile;
use serde_json::{Value, json};

use crate::helpers::{PREFLIGHT, data, error_codes, header, spawn_app, spawn_app_with};

const INTROSPECTION: &str = "{ __schema { queryType { name } } }";

#[tokio::test]
async fn unreadable_requests_get_a_json_400() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        header(&response, "cache-control"),
        Some("private, no-store")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"]);

    let response = app
        .client
        .get(app.url("/graphql?extensions=%7Bbroken"))
        .header(PREFLIGHT.0, PREFLIGHT.1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn queries_run_over_get_mutations_do_not() {
    let app = spawn_app().await;
    let response = app
        .get(
            json!({ "query": "query P($id: ID!) { product(id: $id) { price } }", "variables": { "id": "p3" } }),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(data(&body)["product"]["price"], "$1,234.50");

    let response = app.get(json!({ "query": "mutation { x }" }), None).await;
    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow"), Some("POST"));
}

#[tokio::test]
async fn dev_serves_graphiql_and_introspection_prod_neither() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let response = app.query(INTROSPECTION, json!({})).await;
    assert_eq!(data(&response)["__schema"]["queryType"]["name"], "Query");

    let app = spawn_app_with(|config| config.profile = Profile::Prod).await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let is_html = header(&response, "content-type").is_some_and(|v| v.starts_with("text/html"));
    assert!(!is_html, "GraphiQL served in prod");
    // Refused as a request error (graphql_http.rs).
    let response = app.query(INTROSPECTION, json!({})).await;
    assert!(response.get("data").is_none(), "{response}");
}

#[tokio::test]
async fn health_is_served_behind_the_same_front_door() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(header(&response, "x-request-id").is_some());
    }
}
