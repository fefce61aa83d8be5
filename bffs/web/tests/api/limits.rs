//! Abuse limits (OWASP GraphQL Cheat Sheet) end to end: a refused operation
//! never reaches a downstream service (devstack's counters stay at 0).

use serde_json::{Value, json};

use crate::helpers::{data, json_200, only_error, spawn_app};

/// `product { relatedProducts { relatedProducts { … id } } }`, `depth` levels.
fn nested(depth: usize) -> String {
    let mut query = String::from("{ product(id: \"p1\") { ");
    for _ in 2..depth {
        query.push_str("relatedProducts(first: 1) { ");
    }
    query.push_str("id");
    query.push_str(&" }".repeat(depth));
    query
}

fn assert_refused(response: &Value, reason: &str) {
    let error = only_error(response);
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{response}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(reason), "{message:?} lacks {reason:?}");
    assert!(
        response.get("data").is_none_or(Value::is_null),
        "{response}"
    );
}

#[tokio::test]
async fn a_50_level_deep_query_is_refused_without_a_downstream_call() {
    let app = spawn_app().await;
    let response = app.query(&nested(50), json!({})).await;
    assert_refused(&response, "nested deeper than 12 levels");
    assert_eq!(app.downstream_total(), 0);
    // Sent again, it is refused again (the parsed document may be cached).
    let response = app.query(&nested(50), json!({})).await;
    assert_refused(&response, "nested deeper than 12 levels");
    assert_eq!(app.downstream_total(), 0);
    // Twelve levels are fine.
    let response = app.query(&nested(12), json!({})).await;
    assert!(data(&response)["product"]["relatedProducts"].is_array());
}

#[tokio::test]
async fn a_1000_alias_query_is_refused_without_a_downstream_call() {
    let app = spawn_app().await;
    let fields: String = (0..1_000).map(|i| format!("n{i}: name ")).collect();
    let query = format!("{{ product(id: \"p1\") {{ {fields} }} }}");
    let response = app.query(&query, json!({})).await;
    assert_refused(&response, "more than 30 aliases");
    assert_eq!(app.downstream_total(), 0);

    // Aliased root fields: also more than 20 root fields.
    let roots: String = (0..1_000)
        .map(|i| format!("p{i}: product(id: \"p1\") {{ id }} "))
        .collect();
    let response = app.query(&format!("{{ {roots} }}"), json!({})).await;
    assert_refused(&response, "more than 30 aliases");
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn too_many_root_fields_are_refused() {
    let app = spawn_app().await;
    // Repeating a field under its own name needs no alias.
    let roots = "product(id: \"p1\") { id } ".repeat(21);
    let response = app.query(&format!("{{ {roots} }}"), json!({})).await;
    assert_refused(&response, "more than 20 root fields");
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn list_sizes_weigh_on_the_cost() {
    let app = spawn_app().await;
    // 50 products × 20 reviews × 6 fields, and more: far over 5,000.
    let query = "{ products(categoryId: \"electronics\", first: 50) { edges { node { \
                 reviews(first: 20) { id rating title body authorName createdAt } \
                 relatedProducts(first: 10) { reviews(first: 20) { id } } } } } }";
    let response = app.query(query, json!({})).await;
    assert_refused(&response, "too expensive");
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn batched_requests_are_refused() {
    let app = spawn_app().await;
    let batch = json!([{ "query": "{ product(id: \"p1\") { id } }" }, { "query": "{ product(id: \"p2\") { id } }" }]);
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn limits_follow_the_config() {
    let app = crate::helpers::spawn_app_with(|config| config.graphql.max_depth = 3).await;
    let response = app.query(&nested(4), json!({})).await;
    assert_refused(&response, "nested deeper than 3 levels");
    let response = json_200(app.post_graphql(&nested(3), json!({}), None).await).await;
    assert!(data(&response)["product"]["relatedProducts"].is_array());
}

#[tokio::test]
async fn a_client_over_its_rate_gets_rate_limited() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.rate_limit.rps = 1;
        config.rate_limit.burst = 1;
    })
    .await;
    let query = "{ product(id: \"p1\") { id } }";
    let response = app.query(query, json!({})).await;
    assert_eq!(data(&response)["product"]["id"], "p1");
    app.services.reset();
    let response = app.post_graphql(query, json!({}), None).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    let error = only_error(&body);
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(error["extensions"]["retryAfterSecs"], 1);
    assert_eq!(app.downstream_total(), 0);
    // A signed-in viewer is counted apart from the anonymous client.
    let response = app.query_as("u1", query, json!({})).await;
    assert_eq!(data(&response)["product"]["id"], "p1");
}

#[tokio::test]
async fn requests_a_page_could_forge_are_refused_without_a_downstream_call() {
    let app = spawn_app().await;
    let query = "{ product(id: \"p1\") { id } }";
    let body = json!({ "query": query }).to_string();
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let plain_get = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", query)])
        .send()
        .await
        .unwrap();
    assert_eq!(plain_get.status(), 400);
    assert_eq!(app.downstream_total(), 0);
    // The same GET with Apollo's header runs.
    let response = app
        .client
        .get(app.url("/graphql"))
        .header("x-apollo-operation-name", "Product")
        .query(&[("query", query)])
        .send()
        .await
        .unwrap();
    let response = json_200(response).await;
    assert_eq!(data(&response)["product"]["id"], "p1");
}
