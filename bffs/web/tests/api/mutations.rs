//! Wishlist changes and placing orders.

use std::time::Duration;

use devstack_services::Fault;
use devstack_services::seed::FIRST_NEW_ORDER_NUMBER;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_no_internals, data, error_codes, only_error, spawn_app, spawn_app_with,
};

async fn in_wishlist(app: &TestApp, user: &str, product: &str) -> Value {
    let response = app
        .query_as(
            user,
            "query($id: ID!) { product(id: $id) { inWishlist } }",
            json!({ "id": product }),
        )
        .await;
    data(&response)["product"]["inWishlist"].clone()
}

#[tokio::test]
async fn adding_to_the_wishlist_shows_at_once() {
    let app = spawn_app().await;
    // Read first, so a stale cached wishlist would show below.
    assert_eq!(in_wishlist(&app, "u1", "p9").await, false);

    let response = app
        .query_as(
            "u1",
            "mutation { addToWishlist(productId: \"p9\") { id name inWishlist } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&response)["addToWishlist"],
        json!({ "id": "p9", "name": "Noise-Isolating In-Ear Monitors with Detachable Cable", "inWishlist": true })
    );
    assert_eq!(
        app.services
            .user
            .control
            .count("PUT /users/{id}/wishlist/{product_id}"),
        1
    );
    assert_eq!(in_wishlist(&app, "u1", "p9").await, true);
    // The seed's entries are still there; other users are unaffected.
    assert_eq!(in_wishlist(&app, "u1", "p2").await, true);
    assert_eq!(in_wishlist(&app, "u3", "p9").await, false);

    // Adding twice is harmless.
    let response = app
        .query_as(
            "u1",
            "mutation { addToWishlist(productId: \"p9\") { inWishlist } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&response)["addToWishlist"]["inWishlist"], true);
}

#[tokio::test]
async fn removing_from_the_wishlist_shows_at_once() {
    let app = spawn_app().await;
    assert_eq!(in_wishlist(&app, "u1", "p2").await, true);
    let response = app
        .query_as(
            "u1",
            "mutation { removeFromWishlist(productId: \"p2\") { id inWishlist } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&response)["removeFromWishlist"],
        json!({ "id": "p2", "inWishlist": false })
    );
    assert_eq!(
        app.services
            .user
            .control
            .count("DELETE /users/{id}/wishlist/{product_id}"),
        1
    );
    assert_eq!(in_wishlist(&app, "u1", "p2").await, false);
    assert_eq!(in_wishlist(&app, "u1", "p5").await, true);
    // Personalised recommendations no longer leave p2 out.
    let response = app
        .query_as(
            "u1",
            "{ product(id: \"p1\") { personalizedRecommendations(first: 50) { id } } }",
            json!({}),
        )
        .await;
    let ids: Vec<&str> = data(&response)["product"]["personalizedRecommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"p2"), "{ids:?}");
    assert!(!ids.contains(&"p5"), "{ids:?}");
}

#[tokio::test]
async fn wishlist_changes_to_unknown_products_fail_cleanly() {
    let app = spawn_app().await;
    let response = app
        .query_as(
            "u1",
            "mutation { addToWishlist(productId: \"p999\") { id } }",
            json!({}),
        )
        .await;
    let error = only_error(&response);
    assert_eq!(error["extensions"]["code"], "NOT_FOUND");
    assert_eq!(response["data"], Value::Null);
    assert_no_internals(&response);
}

fn place_order(items: Value, key: &str) -> (String, Value) {
    let query = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
        id status total { amountCents formatted } itemsCount trackingNumber date placedAt
        items { quantity unitPrice { amountCents } product { id name } }
    } }";
    let variables = json!({ "input": {
        "items": items,
        "addressId": "a1",
        "shippingOptionId": "standard",
        "paymentMethodId": "pm1",
        "idempotencyKey": key,
    } });
    (query.to_owned(), variables)
}

async fn u1_order_ids(app: &TestApp) -> Vec<String> {
    let response = app
        .query_as(
            "u1",
            "{ dashboard { orders(first: 50) { id } } }",
            json!({}),
        )
        .await;
    data(&response)["dashboard"]["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn placing_an_order_twice_with_one_key_orders_once() {
    let app = spawn_app().await;
    let before = u1_order_ids(&app).await;
    assert_eq!(before.len(), 14);
    app.services.reset();

    let (query, variables) = place_order(
        json!([{ "productId": "p1", "quantity": 1 }, { "productId": "p6", "quantity": 2 }]),
        "checkout-7f3a",
    );
    let first = app.query_as("u1", &query, variables.clone()).await;
    let second = app.query_as("u1", &query, variables).await;
    let order = &data(&first)["placeOrder"];
    assert_eq!(data(&second)["placeOrder"], *order);

    let id = format!("o{FIRST_NEW_ORDER_NUMBER}");
    assert_eq!(order["id"], id.as_str());
    assert_eq!(order["status"], "PLACED");
    assert_eq!(order["itemsCount"], 3);
    assert_eq!(order["trackingNumber"], Value::Null);
    // gold: 24999 + 2 × 1299 = 27597; −1379; tax 8 % of 26218 = 2097; free shipping.
    assert_eq!(
        order["total"],
        json!({ "amountCents": 28_315, "formatted": "$283.15" })
    );
    assert_eq!(
        order["items"],
        json!([
            { "quantity": 1, "unitPrice": { "amountCents": 24_999 },
              "product": { "id": "p1", "name": "Wireless Noise-Cancelling Headphones" } },
            { "quantity": 2, "unitPrice": { "amountCents": 1_299 },
              "product": { "id": "p6", "name": "USB-C Charging Cable (2 metre)" } },
        ])
    );
    let placed_at = order["placedAt"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(placed_at).is_ok(),
        "{placed_at}"
    );

    // Both attempts reached the order service, each with the key.
    let posts: Vec<_> = app
        .services
        .order
        .control
        .requests()
        .into_iter()
        .filter(|r| r.route == "POST /orders")
        .collect();
    assert_eq!(posts.len(), 2);
    for post in &posts {
        assert_eq!(post.idempotency_key.as_deref(), Some("checkout-7f3a"));
        assert_eq!(post.user_id.as_deref(), Some("u1"));
    }

    // Exactly one new order, newest first.
    let after = u1_order_ids(&app).await;
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[0], id);
    assert_eq!(after[1..], before[..]);

    // Another key is another order.
    let (query, variables) = place_order(json!([{ "productId": "p1", "quantity": 1 }]), "other");
    let third = app.query_as("u1", &query, variables).await;
    assert_eq!(
        data(&third)["placeOrder"]["id"],
        format!("o{}", FIRST_NEW_ORDER_NUMBER + 1)
    );
    assert_eq!(u1_order_ids(&app).await.len(), before.len() + 2);
}

#[tokio::test]
async fn a_viewer_who_cannot_check_out_cannot_place_an_order() {
    let app = spawn_app().await;
    let query = "mutation { placeOrder(input: { items: [{ productId: \"p1\", quantity: 1 }],
        addressId: \"a6\", shippingOptionId: \"standard\", paymentMethodId: \"pm6\",
        idempotencyKey: \"u5-key\" }) { id } }";
    let response = app.query_as("u5", query, json!({})).await;
    let error = only_error(&response);
    assert_eq!(response["data"], Value::Null);
    assert_eq!(error["path"], json!(["placeOrder"]));
    // The order service refuses with 403: the viewer's standing, not the
    // service being down.
    assert_eq!(error["extensions"]["code"], "FORBIDDEN");
    assert_no_internals(&response);
    assert_eq!(app.services.order.control.count("POST /orders"), 1);
    let response = app
        .query_as("u5", "{ dashboard { orders { id } } }", json!({}))
        .await;
    assert_eq!(data(&response)["dashboard"]["orders"], json!([]));
}

#[tokio::test]
async fn a_failed_order_is_never_retried() {
    let app = spawn_app().await;
    app.services
        .order
        .control
        .set_fault(Fault::new("/orders").method("POST").status(503));
    let (query, variables) = place_order(json!([{ "productId": "p1", "quantity": 1 }]), "k-503");
    let response = app.query_as("u1", &query, variables).await;
    let error = only_error(&response);
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
    assert_eq!(error["message"], "order service unavailable");
    assert_eq!(response["data"], Value::Null);
    assert_no_internals(&response);
    assert_eq!(app.services.order.control.count("POST /orders"), 1);
}

#[tokio::test]
async fn a_timed_out_order_is_never_retried() {
    let app = spawn_app_with(|config| config.downstream.timeout_ms = 300).await;
    app.services
        .order
        .control
        .set_fault(Fault::new("/orders").method("POST").hang());
    let (query, variables) = place_order(json!([{ "productId": "p1", "quantity": 1 }]), "k-hang");
    let response = app.query_as("u1", &query, variables).await;
    assert_eq!(error_codes(&response), ["DOWNSTREAM_TIMEOUT"]);
    // Give a retry, if there were one, time to show up.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(app.services.order.control.count("POST /orders"), 1);
}

#[tokio::test]
async fn invalid_orders_are_refused() {
    let app = spawn_app().await;
    let long_key = "k".repeat(129);
    for (items, key) in [
        (json!([]), "k1"),
        (json!([{ "productId": "p1", "quantity": 0 }]), "k2"),
        (json!([{ "productId": "p1", "quantity": -3 }]), "k3"),
        (json!([{ "productId": "p1", "quantity": 1 }]), ""),
        (json!([{ "productId": "p1", "quantity": 1 }]), "   "),
        (json!([{ "productId": "p1", "quantity": 1 }]), "with space"),
        (
            json!([{ "productId": "p1", "quantity": 1 }]),
            long_key.as_str(),
        ),
    ] {
        let (query, variables) = place_order(items.clone(), key);
        let response = app.query_as("u1", &query, variables).await;
        assert_eq!(
            error_codes(&response),
            ["BAD_USER_INPUT"],
            "{items} {key:?}"
        );
        assert_eq!(app.downstream_total(), 0, "{items} {key:?}");
    }
    // What only the order service can check is refused too, as the client's mistake.
    let (query, mut variables) =
        place_order(json!([{ "productId": "p1", "quantity": 1 }]), "k-addr");
    variables["input"]["addressId"] = json!("a3"); // u2's address
    let response = app.query_as("u1", &query, variables).await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"]);
    assert_eq!(u1_order_ids(&app).await.len(), 14);
}
