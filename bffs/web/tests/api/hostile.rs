//! Hostile requests (issue "Hardening"): input nested to overflow a stack,
//! ids that cannot be sent or would change a downstream path, refused
//! arguments and missing variables. Each is refused with a clear error,
//! costs nothing downstream, and leaves the BFF (and its breakers) serving
//! everyone else.

use serde_json::{Value, json};

use crate::helpers::{PREFLIGHT, TestApp, data, error_codes, errors, spawn_app};

/// The one error of a request refused before it ran (no `data`, no path).
fn request_error(response: &Value) -> (&str, &str) {
    assert!(
        response.get("data").is_none_or(Value::is_null),
        "a refused request has no data: {response}"
    );
    let errors = errors(response);
    assert_eq!(errors.len(), 1, "{response}");
    assert!(errors[0].get("path").is_none(), "{response}");
    (
        errors[0]["extensions"]["code"].as_str().unwrap_or_default(),
        errors[0]["message"].as_str().unwrap_or_default(),
    )
}

/// The BFF still answers a normal signed-in dashboard in full.
async fn assert_still_serving(app: &TestApp) {
    let response = app
        .query_as(
            "u1",
            "{ dashboard { user { name } orders(first: 1) { id } } }",
            json!({}),
        )
        .await;
    assert!(errors(&response).is_empty(), "{response}");
    assert_eq!(data(&response)["dashboard"]["user"]["name"], "Ada Lovelace");
}

fn nested(open: &str, inner: &str, close: &str, levels: usize) -> String {
    format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
}

#[tokio::test]
async fn deeply_nested_argument_values_are_refused_before_parsing() {
    let app = spawn_app().await;
    for levels in [33, 400, 1_500, 5_000] {
        for value in [
            nested("[", "\"p1\"", "]", levels),
            nested("{a: ", "\"p1\"", "}", levels),
        ] {
            let query = format!("{{ product(id: {value}) {{ name }} }}");
            let response = app.query(&query, json!({})).await;
            let (code, message) = request_error(&response);
            assert_eq!(code, "BAD_USER_INPUT", "{levels}: {response}");
            assert!(message.contains("nest at most 32"), "{message}");

            // The same over GET, whose mutation check parses first.
            let answer = app
                .client
                .get(app.url("/graphql"))
                .header(PREFLIGHT.0, PREFLIGHT.1)
                .query(&[("query", &query)])
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{levels}");
            let response: Value = answer.json().await.unwrap();
            assert_eq!(request_error(&response).0, "BAD_USER_INPUT");
        }
    }
    // Also in a variable's default value and a variable's type.
    for query in [
        format!(
            "query($id: ID = {}) {{ product(id: $id) {{ name }} }}",
            nested("[", "1", "]", 40)
        ),
        format!(
            "query($id: {}) {{ product(id: \"p1\") {{ name }} }}",
            nested("[", "ID", "]", 40)
        ),
        format!(
            "{{ product(id: \"p1\") @include(if: {}) {{ name }} }}",
            nested("[", "true", "]", 40)
        ),
    ] {
        let response = app.query(&query, json!({})).await;
        assert_eq!(request_error(&response).0, "BAD_USER_INPUT", "{response}");
    }
    assert_eq!(app.downstream_total(), 0);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn values_within_the_nesting_limit_get_the_usual_validation() {
    let app = spawn_app().await;
    let query = format!(
        "{{ product(id: {}) {{ name }} }}",
        nested("[", "\"p1\"", "]", 32)
    );
    let response = app.query(&query, json!({})).await;
    let (code, message) = request_error(&response);
    assert!(
        message.contains("Invalid value for argument"),
        "{code}: {message}"
    );
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn deeply_nested_selections_are_refused() {
    let app = spawn_app().await;
    for levels in [70, 3_000] {
        let query = format!(
            "{{ {} }}",
            nested("dashboard { ", "__typename", " }", levels)
        );
        let response = app.query(&query, json!({})).await;
        let (code, message) = request_error(&response);
        assert_eq!(code, "BAD_USER_INPUT", "{response}");
        assert!(message.contains("nested deeper"), "{message}");
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn deeply_nested_variables_are_refused() {
    let app = spawn_app().await;
    let query = "query($id: ID!) { product(id: $id) { name } }";
    for levels in [33, 100, 120] {
        let mut value = json!("p1");
        for _ in 0..levels {
            value = json!([value]);
        }
        let response = app.query(query, json!({ "id": value })).await;
        let (code, message) = request_error(&response);
        assert_eq!(code, "BAD_USER_INPUT", "{levels}: {response}");
        assert!(message.contains("nest at most 32"), "{message}");
        let object = (0..levels).fold(json!("p1"), |inner, _| json!({ "a": inner }));
        let response = app.query(query, json!({ "id": object })).await;
        assert_eq!(request_error(&response).0, "BAD_USER_INPUT", "{levels}");
    }
    // Deeper than JSON decoding goes: not a readable request at all.
    let body = format!(
        "{{\"query\":\"{{ __typename }}\",\"variables\":{{\"v\":{}}}}}",
        nested("[", "1", "]", 5_000)
    );
    let answer = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let response: Value = answer.json().await.unwrap();
    let (code, message) = request_error(&response);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("nest at most 32"), "{message}");
    assert_eq!(app.downstream_total(), 0);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn a_missing_required_variable_is_a_request_error() {
    let app = spawn_app().await;
    let query = "query($id: ID!) { product(id: $id) { name } }";
    for variables in [json!({}), json!({ "id": null }), json!({ "other": "p1" })] {
        let response = app.query(query, variables.clone()).await;
        let (code, message) = request_error(&response);
        assert_eq!(code, "BAD_USER_INPUT", "{variables}: {response}");
        assert_eq!(
            message,
            "variable \"$id\" of required type \"ID!\" was not provided"
        );
    }
    // The operation that runs is the one checked: a named one's variables,
    // and a default that stands in for a missing value.
    let two = "query A($id: ID!) { product(id: $id) { name } } query B { __typename }";
    let response = json_of(&app, two, json!({}), Some("B")).await;
    assert_eq!(data(&response)["__typename"], "Query", "{response}");
    let response = json_of(&app, two, json!({}), Some("A")).await;
    assert_eq!(request_error(&response).0, "BAD_USER_INPUT");
    let defaulted = "query($id: ID! = \"p1\") { product(id: $id) { name } }";
    let response = app.query(defaulted, json!({})).await;
    assert!(errors(&response).is_empty(), "{response}");
    assert_eq!(
        app.services.product.control.total(),
        1,
        "only the defaulted query ran"
    );
}

async fn json_of(app: &TestApp, query: &str, variables: Value, operation: Option<&str>) -> Value {
    app.client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables, "operationName": operation }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn refused_list_sizes_cost_nothing_downstream() {
    let app = spawn_app().await;
    for query in [
        "{ dashboard { orders(first: -1) { id } } }",
        "{ dashboard { orders(first: 100000) { id } } }",
        "{ dashboard { recommendations(first: -5) { score } } }",
    ] {
        // Repeated: the first run takes the schema's path, the next ones
        // the already-validated one.
        for _ in 0..3 {
            let response = app.query_as("u1", query, json!({})).await;
            assert_eq!(
                error_codes(&response),
                ["BAD_USER_INPUT"],
                "{query}: {response}"
            );
        }
    }
    assert_eq!(app.downstream_total(), 0, "{:?}", app.downstream_requests());
}

/// Ids that cannot be sent (70,000 characters, 11,000 × "é") once made
/// the BFF report the product service down, retry, and count failures
/// against its breaker: a few anonymous requests opened it for everyone.
#[tokio::test]
async fn unsendable_ids_never_open_a_breaker() {
    let app = spawn_app().await;
    let huge = "x".repeat(70_000);
    let accents = "é".repeat(11_000);
    for _ in 0..20 {
        let response = app
            .query(
                "query($id: ID!) { product(id: $id) { name } }",
                json!({ "id": huge }),
            )
            .await;
        assert_eq!(data(&response)["product"], Value::Null, "{response}");
        assert!(
            errors(&response).is_empty(),
            "an id no product has is no product: {response}"
        );
        let literal = format!("{{ product(id: \"{accents}\") {{ name }} }}");
        let response = app.query(&literal, json!({})).await;
        assert_eq!(data(&response)["product"], Value::Null, "{response}");
    }
    assert_eq!(app.downstream_total(), 0);
    let response = app
        .query("{ product(id: \"p1\") { name } }", json!({}))
        .await;
    assert!(
        errors(&response).is_empty(),
        "the breaker stayed closed: {response}"
    );
    assert_eq!(app.services.product.control.total(), 1);
}

#[tokio::test]
async fn dot_segments_never_change_the_wishlist_path() {
    let app = spawn_app().await;
    for id in [".", "..", "", "p1,p2", "p\n1"] {
        for mutation in ["addToWishlist", "removeFromWishlist"] {
            let query = format!("mutation($id: ID!) {{ {mutation}(productId: $id) {{ id }} }}");
            let response = app.query_as("u1", &query, json!({ "id": id })).await;
            assert_eq!(
                error_codes(&response),
                ["BAD_USER_INPUT"],
                "{id:?}: {response}"
            );
        }
    }
    assert_eq!(app.downstream_total(), 0, "{:?}", app.downstream_requests());

    // Odd but valid ids reach the service as one literal segment.
    for id in ["...", "%2e%2e", "../p1"] {
        let query = "mutation($id: ID!) { removeFromWishlist(productId: $id) { id } }";
        app.query_as("u1", query, json!({ "id": id })).await;
    }
    let routes: Vec<String> = app
        .services
        .user
        .control
        .requests()
        .into_iter()
        .map(|request| request.route)
        .collect();
    assert_eq!(routes, ["DELETE /users/{id}/wishlist/{product_id}"; 3]);
}
