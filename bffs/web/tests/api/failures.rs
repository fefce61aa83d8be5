//! One failing downstream service never fails the whole response: the failed
//! field has no value, an error at its path says why, the rest arrives, HTTP 200.

use std::time::{Duration, Instant};

use devstack_services::Fault;
use serde_json::{Value, json};

use crate::helpers::{
    assert_failed, assert_no_internals, data, error_at, error_codes, errors, spawn_app,
    spawn_app_with,
};

const DASHBOARD: &str = "{ dashboard {
    user { id name }
    orders(first: 3) { id total { formatted } items { quantity product { id name } } }
    recommendations(first: 3) { score product { id name } }
    analytics { ordersThisMonth }
} }";

#[tokio::test]
async fn product_service_down_leaves_orders_without_products() {
    let app = spawn_app().await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    assert_no_internals(&response);
    let dashboard = &response["data"]["dashboard"];

    // Everything the product service does not provide is there.
    assert_eq!(
        dashboard["user"],
        json!({ "id": "u1", "name": "Ada Lovelace" })
    );
    assert_eq!(dashboard["analytics"], json!({ "ordersThisMonth": 3 }));
    let orders = dashboard["orders"].as_array().unwrap();
    let ids: Vec<&str> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["o14", "o13", "o12"]);
    assert_eq!(orders[0]["total"]["formatted"], "$217.51");

    // Each order line keeps its quantity; its product is missing, with an
    // error at exactly its path.
    let mut lines = 0;
    for (i, order) in orders.iter().enumerate() {
        for (j, item) in order["items"].as_array().unwrap().iter().enumerate() {
            assert!(item["quantity"].as_i64().unwrap() >= 1);
            assert_failed(item, "product");
            let error = error_at(
                &response,
                &[
                    json!("dashboard"),
                    json!("orders"),
                    json!(i),
                    json!("items"),
                    json!(j),
                    json!("product"),
                ],
            );
            assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
            assert_eq!(error["message"], "product service unavailable");
            lines += 1;
        }
    }
    // o14: 2 lines, o13: 4, o12: 1.
    assert_eq!(lines, 7);

    // Recommendations need their products: the list has no value, one error.
    assert_failed(dashboard, "recommendations");
    let error = error_at(&response, &[json!("dashboard"), json!("recommendations")]);
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
    assert_eq!(errors(&response).len(), lines + 1);

    // One batched call for all of them, not one per line (a 503 is retried
    // twice by the downstream crate).
    assert_eq!(app.services.product.control.count("GET /products"), 3);
}

#[tokio::test]
async fn recommendation_service_down_leaves_the_rest_of_the_dashboard() {
    let app = spawn_app().await;
    app.services
        .recommendation
        .control
        .set_fault(Fault::new("/").status(503));
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    assert_no_internals(&response);
    let dashboard = &response["data"]["dashboard"];
    assert_failed(dashboard, "recommendations");
    let error = error_at(&response, &[json!("dashboard"), json!("recommendations")]);
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
    assert_eq!(error["message"], "recommendation service unavailable");
    assert_eq!(error_codes(&response), ["DOWNSTREAM_UNAVAILABLE"]);

    assert_eq!(dashboard["user"]["name"], "Ada Lovelace");
    assert_eq!(dashboard["analytics"]["ordersThisMonth"], 3);
    assert_eq!(dashboard["orders"][0]["id"], "o14");
    assert_eq!(
        dashboard["orders"][0]["items"][0]["product"],
        json!({ "id": "p2", "name": "Smart Watch Series 7" })
    );
}

#[tokio::test]
async fn user_service_down_leaves_orders_and_recommendations() {
    let app = spawn_app().await;
    app.services
        .user
        .control
        .set_fault(Fault::new("/").status(500));
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    assert_no_internals(&response);
    let dashboard = &response["data"]["dashboard"];
    for part in ["user", "analytics"] {
        assert_failed(dashboard, part);
        let error = error_at(&response, &[json!("dashboard"), json!(part)]);
        assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
        assert_eq!(error["message"], "user service unavailable");
    }
    assert_eq!(errors(&response).len(), 2);
    assert_eq!(dashboard["orders"].as_array().unwrap().len(), 3);
    assert_eq!(dashboard["recommendations"][0]["product"]["id"], "p3");
}

#[tokio::test]
async fn a_hanging_service_times_out_at_its_path_promptly() {
    let app = spawn_app_with(|config| config.downstream.timeout_ms = 300).await;
    app.services
        .recommendation
        .control
        .set_fault(Fault::new("/").hang());
    let started = Instant::now();
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "answered before the deadline: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1_000),
        "took {elapsed:?} with a 300 ms downstream deadline"
    );
    assert_no_internals(&response);
    let dashboard = &response["data"]["dashboard"];
    assert_failed(dashboard, "recommendations");
    let error = error_at(&response, &[json!("dashboard"), json!("recommendations")]);
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_TIMEOUT");
    assert_eq!(error["message"], "recommendation service timed out");
    assert_eq!(error_codes(&response), ["DOWNSTREAM_TIMEOUT"]);
    assert_eq!(dashboard["user"]["id"], "u1");
    assert_eq!(dashboard["orders"][0]["items"][0]["product"]["id"], "p2");
}

#[tokio::test]
async fn failing_reviews_or_related_products_leave_the_rest_of_the_product() {
    let app = spawn_app().await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products/p1/reviews").status(500));
    let query = "{ product(id: \"p1\") {
        name price { formatted } availability
        reviews { id } relatedProducts { id }
    } }";
    let response = app.query(query, json!({})).await;
    assert_no_internals(&response);
    let product = &response["data"]["product"];
    assert_eq!(product["name"], "Wireless Noise-Cancelling Headphones");
    assert_eq!(product["price"]["formatted"], "$249.99");
    assert_eq!(product["availability"], "IN_STOCK");
    assert_eq!(product["relatedProducts"].as_array().unwrap().len(), 5);
    assert_failed(product, "reviews");
    let error = error_at(&response, &[json!("product"), json!("reviews")]);
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
    assert_eq!(error_codes(&response), ["DOWNSTREAM_UNAVAILABLE"]);

    // The same for related products.
    app.services.reset();
    app.services
        .product
        .control
        .set_fault(Fault::new("/products/p1/related").status(503));
    let response = app.query(query, json!({})).await;
    let product = &response["data"]["product"];
    assert_eq!(product["reviews"].as_array().unwrap().len(), 20);
    assert_failed(product, "relatedProducts");
    let error = error_at(&response, &[json!("product"), json!("relatedProducts")]);
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
    assert_no_internals(&response);
}

#[tokio::test]
async fn recommendation_service_down_only_fails_personalisation() {
    let app = spawn_app().await;
    app.services
        .recommendation
        .control
        .set_fault(Fault::new("/").status(503));
    let response = app
        .query_as(
            "u1",
            "{ product(id: \"p2\") { name inWishlist personalizedRecommendations { id } } }",
            json!({}),
        )
        .await;
    let product = &response["data"]["product"];
    assert_eq!(product["name"], "Smart Watch Series 7");
    assert_eq!(product["inWishlist"], true);
    assert_failed(product, "personalizedRecommendations");
    let error = error_at(
        &response,
        &[json!("product"), json!("personalizedRecommendations")],
    );
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
}

#[tokio::test]
async fn product_service_down_fails_the_product_field_only() {
    let app = spawn_app_with(|config| config.downstream.timeout_ms = 300).await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/").hang());
    let started = Instant::now();
    let response = app
        .query_as(
            "u1",
            "{ product(id: \"p1\") { name } me { name } }",
            json!({}),
        )
        .await;
    assert!(started.elapsed() < Duration::from_millis(1_000));
    assert_eq!(response["data"]["me"], json!({ "name": "Ada Lovelace" }));
    assert_failed(&response["data"], "product");
    let error = error_at(&response, &[json!("product")]);
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_TIMEOUT");
    assert_no_internals(&response);
}

#[tokio::test]
async fn a_service_that_breaks_the_contract_is_unavailable_not_a_leak() {
    let app = spawn_app().await;
    app.services.order.control.set_fault(
        Fault::new("/users").body("<html>stack trace at http://10.0.0.7:8080/orders</html>"),
    );
    let response = app
        .query_as(
            "u1",
            "{ dashboard { user { id } orders { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data_user(&response), "u1");
    assert_failed(&response["data"]["dashboard"], "orders");
    let error = error_at(&response, &[json!("dashboard"), json!("orders")]);
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
    assert_eq!(error["message"], "order service unavailable");
    let text = response.to_string();
    assert!(
        !text.contains("stack trace") && !text.contains("10.0.0.7"),
        "{text}"
    );
    assert_no_internals(&response);
}

fn data_user(response: &Value) -> &str {
    response["data"]["dashboard"]["user"]["id"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn without_failures_there_are_no_errors() {
    // The baseline the tests above deviate from.
    let app = spawn_app().await;
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    let dashboard = &data(&response)["dashboard"];
    for part in ["user", "orders", "recommendations", "analytics"] {
        assert!(!dashboard[part].is_null(), "{part}");
    }
}

#[tokio::test]
async fn a_failed_non_null_field_nulls_its_nearest_nullable_parent() {
    let app = spawn_app().await;
    // `me` is non-null: without a viewer it fails, so all of `data` is null
    // even though `product` resolved.
    let response = app
        .query("{ me { id } product(id: \"p1\") { name } }", json!({}))
        .await;
    assert_eq!(response["data"], Value::Null, "{response:#}");
    assert_eq!(error_codes(&response), ["UNAUTHENTICATED"]);

    // Recommendation.product is non-null: with the product service down the
    // failure moves up to the nullable `recommendations` list.
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    let response = app
        .query_as(
            "u1",
            "{ dashboard { recommendations(first: 2) { score product { name } } user { name } } }",
            json!({}),
        )
        .await;
    let dashboard = &response["data"]["dashboard"];
    assert_eq!(dashboard["recommendations"], Value::Null, "{response:#}");
    assert_eq!(dashboard["user"]["name"], "Ada Lovelace");
}

#[tokio::test]
async fn an_order_line_whose_only_field_failed_is_still_an_object() {
    let app = spawn_app().await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    let response = app
        .query_as(
            "u1",
            "{ dashboard { orders(first: 1) { items { product { name } } } } }",
            json!({}),
        )
        .await;
    let items = response["data"]["dashboard"]["orders"][0]["items"]
        .as_array()
        .unwrap();
    assert!(!items.is_empty());
    for item in items {
        assert_eq!(item, &json!({ "product": null }), "{response:#}");
    }
}

#[tokio::test]
async fn a_failing_product_service_serves_the_cached_product_marked_stale() {
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 50).await;
    let query = r#"{ product(id: "p1") { id name } }"#;
    let fresh = app.query(query, json!({})).await;
    assert_eq!(fresh["extensions"]["stale"], Value::Null);
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    let stale = app.query(query, json!({})).await;
    assert_eq!(stale["data"], fresh["data"]);
    // By response path: what the app shows from `product` may be old.
    assert_eq!(stale["extensions"]["stale"], json!([["product"]]));
    assert!(stale.get("errors").is_none(), "{stale}");
}

/// Stale data is named where it is in the response: aliases and list
/// indexes included, and only there.
#[tokio::test]
async fn stale_copies_are_named_by_their_response_paths() {
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 50).await;
    let query =
        r#"{ dashboard { recs: recommendations(first: 3) { product { name } } user { name } } }"#;
    let fresh = app.query_as("u1", query, json!({})).await;
    assert_eq!(fresh["extensions"]["stale"], Value::Null, "{fresh}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    let stale = app.query_as("u1", query, json!({})).await;
    assert_eq!(stale["data"], fresh["data"]);
    assert!(stale.get("errors").is_none(), "{stale}");
    // The user came fresh from the user cache's own service: not named.
    assert_eq!(
        stale["extensions"]["stale"],
        json!([
            ["dashboard", "recs", 0, "product"],
            ["dashboard", "recs", 1, "product"],
            ["dashboard", "recs", 2, "product"],
        ])
    );
}
