//! The endpoint itself: GraphiQL and introspection follow the profile.

use bff_server::Profile;
use serde_json::json;

use crate::helpers::{data, spawn_app, spawn_app_with};

const INTROSPECTION: &str = "{ __schema { queryType { name } mutationType { name } } }";

#[tokio::test]
async fn dev_serves_graphiql_and_introspection() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(page.to_lowercase().contains("graphiql"));
    // Served by the BFF itself (graphiql.rs).
    assert!(page.contains("graphiql/assets/"));

    let response = app.query(INTROSPECTION, json!({})).await;
    assert_eq!(
        data(&response)["__schema"],
        json!({ "queryType": { "name": "Query" }, "mutationType": { "name": "Mutation" } })
    );
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn prod_serves_neither() {
    let app = spawn_app_with(|config| config.profile = Profile::Prod).await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let is_html = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
    assert!(!is_html, "GraphiQL served in prod");

    // Introspection is refused as a request error (graphql_http.rs).
    let response = app.query(INTROSPECTION, json!({})).await;
    assert!(response.get("data").is_none(), "{response}");
    assert!(!response.to_string().contains("Mutation"), "{response}");
    // Queries work as usual.
    let response = app
        .query("{ product(id: \"p3\") { price { formatted } } }", json!({}))
        .await;
    assert_eq!(
        data(&response)["product"]["price"]["formatted"],
        "$1,234.50"
    );
}

#[tokio::test]
async fn health_is_served_behind_the_same_front_door() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}
