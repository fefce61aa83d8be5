//! Requests the BFF refuses: nothing reaches a downstream service.

use serde_json::{Value, json};

use crate::helpers::{
    PREFLIGHT, assert_failed, assert_no_internals, data, error_codes, json_200, spawn_app,
};

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    for body in ["{not json", "", "[1, 2", "\"just a string\""] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            !message.contains("Error(") && !message.contains("line"),
            "{message}"
        );
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn syntax_and_validation_errors_call_nothing() {
    let app = spawn_app().await;
    for query in [
        // syntax
        "{ product(id: \"p1\") { name ",
        "{ product(id: ) { name } }",
        // validation: unknown field, unknown argument, wrong type, missing argument
        "{ product(id: \"p1\") { name nope } }",
        "{ product(id: \"p1\", colour: \"red\") { name } }",
        "{ products(categoryId: \"electronics\", first: \"ten\") { totalCount } }",
        "{ product { name } }",
        // a selection set on a scalar, none on an object
        "{ product(id: \"p1\") { name { length } } }",
        "{ dashboard }",
    ] {
        let response = app.query(query, json!({})).await;
        assert!(
            !error_codes(&response).is_empty(),
            "{query} did not fail: {response}"
        );
        assert_eq!(response["data"], Value::Null, "{query}");
        assert_eq!(
            app.downstream_total(),
            0,
            "{query} reached a downstream service"
        );
    }
    // The same holds for a signed-in viewer.
    let response = app
        .query_as("u1", "{ dashboard { user { nope } } }", json!({}))
        .await;
    assert!(!error_codes(&response).is_empty());
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn out_of_range_list_sizes_are_bad_user_input() {
    let app = spawn_app().await;
    for first in [51, 0, -1] {
        let response = app
            .query(
                "query($first: Int!) { products(categoryId: \"electronics\", first: $first) { totalCount } }",
                json!({ "first": first }),
            )
            .await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "first: {first}");
        assert_eq!(response["errors"][0]["path"], json!(["products"]));
        assert_eq!(app.downstream_total(), 0, "first: {first}");
    }
    // The cap is 50.
    let response = app
        .query(
            "{ products(categoryId: \"electronics\", first: 50) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&response)["products"]["totalCount"], 20);

    // Nested lists are capped too; the rest of the response still arrives.
    let response = app
        .query(
            "{ product(id: \"p1\") { name reviews(first: 51) { id } relatedProducts(first: -1) { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT", "BAD_USER_INPUT"]);
    let product = &response["data"]["product"];
    assert_eq!(product["name"], "Wireless Noise-Cancelling Headphones");
    assert_failed(product, "reviews");
    assert_failed(product, "relatedProducts");
    assert_eq!(
        app.services
            .product
            .control
            .count("GET /products/{id}/reviews"),
        0
    );
    let response = app
        .query_as(
            "u1",
            "{ dashboard { orders(first: 51) { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"]);
    assert_eq!(
        response["errors"][0]["path"],
        json!(["dashboard", "orders"])
    );
}

#[tokio::test]
async fn invalid_cursors_are_bad_user_input() {
    let app = spawn_app().await;
    let query = "query($after: String) {
        products(categoryId: \"electronics\", first: 5, after: $after) { totalCount } }";
    for after in [
        "garbage",
        "",
        "zz",
        "7031",           // "p1"
        "70313a2d31",     // "p1:-1"
        "70323a35",       // "p2:5": another scheme's cursor
        &"a".repeat(100), // too long
        "cDE6NQ==",       // base64 of "p1:5"
    ] {
        let response = app.query(query, json!({ "after": after })).await;
        assert_eq!(
            error_codes(&response),
            ["BAD_USER_INPUT"],
            "after: {after:?}"
        );
        assert_eq!(response["errors"][0]["message"], "invalid cursor");
        assert_no_internals(&response);
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn get_serves_queries_but_not_mutations() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .header(PREFLIGHT.0, PREFLIGHT.1)
        .query(&[(
            "query",
            "{ product(id: \"p3\") { name price { formatted } } }",
        )])
        .send()
        .await
        .unwrap();
    let body = json_200(response).await;
    assert_eq!(
        data(&body)["product"],
        json!({ "name": "4K Ultra HD Smart Television, 55-inch", "price": { "formatted": "$1,234.50" } })
    );

    app.services.reset();
    let token = app.token("u1");
    for query in [
        "mutation { addToWishlist(productId: \"p9\") { id } }",
        "mutation Add { addToWishlist(productId: \"p9\") { id } }",
    ] {
        let response = app
            .client
            .get(app.url("/graphql"))
            .header(PREFLIGHT.0, PREFLIGHT.1)
            .bearer_auth(&token)
            .query(&[("query", query)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{query}");
        assert_eq!(response.headers()["allow"], "POST");
    }
    // Picking the mutation of a two-operation document by name is refused too.
    let response = app
        .client
        .get(app.url("/graphql"))
        .header(PREFLIGHT.0, PREFLIGHT.1)
        .bearer_auth(&token)
        .query(&[
            (
                "query",
                "query Q { me { id } } mutation M { addToWishlist(productId: \"p9\") { id } }",
            ),
            ("operationName", "M"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(app.downstream_total(), 0);
    // Nothing was added.
    let response = app
        .query_as("u1", "{ product(id: \"p9\") { inWishlist } }", json!({}))
        .await;
    assert_eq!(data(&response)["product"]["inWishlist"], false);
}
