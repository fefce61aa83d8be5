//! Who the viewer is: only ever the bearer token's subject.

use std::time::Duration;

use devstack_services::{TokenKind, issue_dev_token};
use serde_json::{Value, json};

use crate::helpers::{SECRET, data, error_codes, only_error, spawn_app, spawn_app_with};

/// Operations that need a signed-in viewer.
const VIEWER_ONLY: [&str; 6] = [
    "{ me { id } }",
    "{ dashboard { user { id } orders { id } recommendations { score } analytics { ordersThisMonth } } }",
    "{ checkout(items: [{ productId: \"p1\", quantity: 1 }]) { pricing { total { amountCents } } } }",
    "mutation { addToWishlist(productId: \"p1\") { id } }",
    "mutation { removeFromWishlist(productId: \"p2\") { id } }",
    "mutation { placeOrder(input: { items: [{ productId: \"p1\", quantity: 1 }], addressId: \"a1\",
        shippingOptionId: \"standard\", paymentMethodId: \"pm1\", idempotencyKey: \"k1\" }) { id } }",
];

#[tokio::test]
async fn viewer_only_operations_need_a_token_and_call_nothing_without_one() {
    let app = spawn_app().await;
    for query in VIEWER_ONLY {
        let response = app.query(query, json!({})).await;
        let error = only_error(&response);
        assert_eq!(error["extensions"]["code"], "UNAUTHENTICATED", "{query}");
        assert_eq!(error["message"], "authentication required", "{query}");
        assert_eq!(response["data"], Value::Null, "{query}");
        assert_eq!(app.downstream_total(), 0, "{query} called a service");
    }
}

/// Sends `{ product(id: "p1") { name } }`, which needs no viewer, with this
/// `Authorization` header value, and expects a 401.
async fn assert_refused(app: &crate::helpers::TestApp, authorization: &str) {
    for query in ["{ product(id: \"p1\") { name } }", VIEWER_ONLY[0]] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("authorization", authorization)
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{authorization}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_codes(&body), ["UNAUTHENTICATED"], "{body}");
        assert_eq!(body["errors"][0]["message"], "invalid token");
        assert_eq!(app.downstream_total(), 0, "{authorization}");
    }
}

#[tokio::test]
async fn invalid_tokens_are_refused_with_401() {
    let app = spawn_app().await;
    let jwt = &app.config.jwt;
    let other_secret = issue_dev_token(
        "another-secret-that-is-long-enough-0123456789",
        &jwt.issuer,
        &jwt.audience,
        "u1",
        Duration::from_secs(600),
        TokenKind::User,
    );
    let wrong_audience = issue_dev_token(
        SECRET,
        &jwt.issuer,
        "mobile",
        "u1",
        Duration::from_secs(600),
        TokenKind::User,
    );
    let wrong_issuer = issue_dev_token(
        SECRET,
        "someone-else",
        &jwt.audience,
        "u1",
        Duration::from_secs(600),
        TokenKind::User,
    );
    let valid = app.token("u1");
    let tampered = format!("{}x", &valid[..valid.len() - 1]);
    for authorization in [
        "Bearer not-a-jwt".to_owned(),
        format!("Bearer {other_secret}"),
        format!("Bearer {wrong_audience}"),
        format!("Bearer {wrong_issuer}"),
        format!("Bearer {tampered}"),
        format!("Basic {valid}"),
    ] {
        assert_refused(&app, &authorization).await;
    }
}

#[tokio::test]
async fn expired_tokens_are_refused_with_401() {
    let app = spawn_app_with(|config| config.jwt.leeway_secs = 0).await;
    let jwt = &app.config.jwt;
    let token = issue_dev_token(
        SECRET,
        &jwt.issuer,
        &jwt.audience,
        "u1",
        Duration::ZERO,
        TokenKind::User,
    );
    // `exp` is the issuing second: once the clock has moved past it, the token is expired.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_refused(&app, &format!("Bearer {token}")).await;
}

#[tokio::test]
async fn the_viewer_comes_from_the_token_only() {
    let app = spawn_app().await;
    // A client-sent x-user-id is not who the viewer is...
    let response = app
        .graphql_request(
            "{ me { id name } dashboard { orders(first: 1) { id } } }",
            json!({}),
            Some(&app.token("u2")),
        )
        .header("x-user-id", "u1")
        .send()
        .await
        .unwrap();
    let body = crate::helpers::json_200(response).await;
    assert_eq!(
        data(&body),
        &json!({
            "me": { "id": "u2", "name": "Grace Hopper" },
            "dashboard": { "orders": [{ "id": "o17" }] },
        })
    );
    // ...and downstream services are told the token's subject.
    let requests = app.downstream_requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.user_id.as_deref(), Some("u2"), "{request:?}");
        assert!(!request.path.contains("u1"), "{request:?}");
    }

    // Without a token, the header makes nobody a viewer.
    app.services.reset();
    let response = app
        .graphql_request("{ me { id } }", json!({}), None)
        .header("x-user-id", "u1")
        .send()
        .await
        .unwrap();
    let body = crate::helpers::json_200(response).await;
    assert_eq!(error_codes(&body), ["UNAUTHENTICATED"]);
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn wishlist_and_personalisation_are_null_signed_out() {
    let app = spawn_app().await;
    let query = "{ product(id: \"p2\") { name inWishlist personalizedRecommendations { id } } }";
    let response = app.query(query, json!({})).await;
    assert_eq!(
        data(&response)["product"],
        json!({ "name": "Smart Watch Series 7", "inWishlist": null, "personalizedRecommendations": null })
    );
    // Signed out, neither the wishlist nor the recommendation service is asked.
    assert_eq!(app.services.user.control.total(), 0);
    assert_eq!(app.services.recommendation.control.total(), 0);

    let response = app.query_as("u1", query, json!({})).await;
    let product = &data(&response)["product"];
    assert_eq!(product["inWishlist"], true);
    assert_eq!(
        product["personalizedRecommendations"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    // Someone else's wishlist does not hold p2.
    let response = app.query_as("u3", query, json!({})).await;
    assert_eq!(data(&response)["product"]["inWishlist"], false);
}

#[tokio::test]
async fn device_tokens_are_refused() {
    let app = spawn_app().await;
    let jwt = &app.config.jwt;
    let device_token = issue_dev_token(
        SECRET,
        &jwt.issuer,
        &jwt.audience,
        "u1",
        Duration::from_secs(600),
        TokenKind::Device,
    );
    let response = app
        .post_graphql("{ me { id } }", json!({}), Some(&device_token))
        .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), ["FORBIDDEN"]);
    assert_eq!(app.downstream_total(), 0);
}
