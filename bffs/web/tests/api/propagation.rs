//! What every downstream call carries from the client request.

use serde_json::json;

use crate::helpers::{data, json_200, spawn_app_with};

/// Touches every service the web BFF uses: user (profile, analytics,
/// wishlist, payment methods), order, recommendation (both routes), product
/// (batch, reviews, related).
const EVERYTHING: &str = "{
    me { paymentMethods { id } }
    dashboard {
        user { id } analytics { ordersThisMonth }
        orders(first: 2) { items { product { id } } }
        recommendations(first: 2) { product { id } }
    }
    product(id: \"p1\") {
        inWishlist reviews(first: 1) { id } relatedProducts(first: 1) { id }
        personalizedRecommendations(first: 1) { id }
    }
}";

#[tokio::test]
async fn the_request_id_reaches_every_downstream_call() {
    // No cache, so the profile is fetched twice (me, dashboard).
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    let response = app
        .graphql_request(EVERYTHING, json!({}), Some(&app.token("u1")))
        .header("x-request-id", "test-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "test-123");
    let body = json_200(response).await;
    data(&body);

    let requests = app.downstream_requests();
    let mut routes: Vec<&str> = requests.iter().map(|r| r.route.as_str()).collect();
    routes.sort_unstable();
    routes.dedup();
    assert_eq!(
        routes,
        [
            "GET /products",
            "GET /products/{id}/related",
            "GET /products/{id}/reviews",
            "GET /products/{id}/similar",
            "GET /users",
            "GET /users/{id}/analytics",
            "GET /users/{id}/orders",
            "GET /users/{id}/payment-methods",
            "GET /users/{id}/recommendations",
            "GET /users/{id}/wishlist",
        ]
    );
    for request in &requests {
        assert_eq!(
            request.request_id.as_deref(),
            Some("test-123"),
            "{request:?}"
        );
        assert_eq!(request.user_id.as_deref(), Some("u1"), "{request:?}");
    }
}

#[tokio::test]
async fn one_generated_id_and_trace_per_client_request() {
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = app
        .graphql_request(EVERYTHING, json!({}), Some(&app.token("u1")))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    data(&json_200(response).await);
    assert!(!echoed.is_empty());
    let requests = app.downstream_requests();
    assert!(requests.len() >= 10);
    for request in &requests {
        // The id the BFF made up (none was sent) is the one it echoed.
        assert_eq!(request.request_id.as_deref(), Some(echoed.as_str()));
        // The client's trace continues downstream.
        let traceparent = request.traceparent.as_deref().unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{trace_id}-")),
            "{traceparent}"
        );
    }

    // A second client request gets another id.
    app.services.reset();
    let response = app
        .graphql_request("{ product(id: \"p2\") { name } }", json!({}), None)
        .send()
        .await
        .unwrap();
    let second = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, echoed);
    let requests = app.downstream_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].request_id.as_deref(), Some(second.as_str()));
    // Signed out: no user id goes downstream.
    assert_eq!(requests[0].user_id, None);
}
