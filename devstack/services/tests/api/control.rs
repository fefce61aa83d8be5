//! Counters, the request log, faults and reset, from Rust and over HTTP.

use std::time::{Duration, Instant};

use devstack_services::{Fault, RecordedRequest, Service};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::Stack;

#[tokio::test]
async fn counters_use_method_and_route_pattern() {
    let stack = Stack::new().await;
    let products = &stack.services.product.control;
    stack.get_ok(Service::Product, "/products/p1").await;
    stack.get_ok(Service::Product, "/products/p2").await;
    stack.get(Service::Product, "/products/p999").await; // 404s count too
    stack.get_ok(Service::Product, "/products?ids=p1,p2").await;
    stack
        .get_ok(Service::Product, "/products?category_id=home")
        .await;
    stack
        .get_ok(Service::Product, "/products/p1/reviews?limit=2")
        .await;
    let missing = stack.get(Service::Product, "/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!missing.error().is_empty());
    let wishlist = "/users/u1/wishlist/p9";
    let put = stack
        .send(stack.request(Service::User, Method::PUT, wishlist))
        .await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);

    assert_eq!(products.count("GET /products/{id}"), 3);
    assert_eq!(products.count("GET /products"), 2);
    assert_eq!(products.count("GET /products/{id}/reviews"), 1);
    assert_eq!(
        products.count("GET /nope"),
        1,
        "unmatched paths count under their path"
    );
    assert_eq!(products.count("POST /products"), 0);
    assert_eq!(products.total(), 7);
    let users = &stack.services.user.control;
    assert_eq!(users.count("PUT /users/{id}/wishlist/{product_id}"), 1);
    assert_eq!(
        stack.services.order.control.total(),
        0,
        "services count separately"
    );

    // Over HTTP; control routes themselves are not counted.
    let counters = stack.get_ok(Service::Product, "/__control/counters").await;
    assert_eq!(counters["total"], 7);
    assert_eq!(counters["routes"]["GET /products/{id}"], 3);
    assert_eq!(counters["routes"]["GET /products"], 2);
    stack.get_ok(Service::Product, "/__control/requests").await;
    assert_eq!(products.total(), 7);
    assert_eq!(products.counters().routes.len(), 4);
}

#[tokio::test]
async fn request_log_captures_headers_and_ids() {
    let stack = Stack::new().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let request = stack
        .request(
            Service::Product,
            Method::GET,
            "/products?ids=p1,%20p2,,p3&x=1",
        )
        .header("x-request-id", "req-42")
        .header("traceparent", traceparent)
        .header("x-user-id", "u1");
    stack.send(request).await;
    let order = stack
        .request(Service::Order, Method::POST, "/orders")
        .header("Idempotency-Key", "key-1")
        .json(&json!({}));
    assert_eq!(stack.send(order).await.status, StatusCode::BAD_REQUEST);
    stack.get(Service::Product, "/products/p1").await;

    let log = stack.services.product.control.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[0],
        RecordedRequest {
            method: "GET".into(),
            path: "/products".into(),
            route: "GET /products".into(),
            query: Some("ids=p1,%20p2,,p3&x=1".into()),
            ids: vec!["p1".into(), "p2".into(), "p3".into()],
            request_id: Some("req-42".into()),
            traceparent: Some(traceparent.into()),
            user_id: Some("u1".into()),
            idempotency_key: None,
            last_event_id: None,
        }
    );
    assert_eq!(log[1].route, "GET /products/{id}");
    assert_eq!(log[1].request_id, None);
    assert!(log[1].ids.is_empty());

    let orders = stack.services.order.control.requests();
    assert_eq!(orders[0].idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(orders[0].route, "POST /orders");

    // The same log over HTTP.
    let over_http: Vec<RecordedRequest> =
        serde_json::from_value(stack.get_ok(Service::Product, "/__control/requests").await)
            .unwrap();
    assert_eq!(over_http, log);
}

#[tokio::test]
async fn latency_fault_delays_matching_requests_only() {
    let stack = Stack::new().await;
    stack
        .services
        .product
        .control
        .set_fault(Fault::new("/products/p1").latency(300));
    let started = Instant::now();
    let body = stack.get_ok(Service::Product, "/products/p1").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        body["id"], "p1",
        "a latency-only fault still answers normally"
    );
    let started = Instant::now();
    stack.get_ok(Service::Product, "/products/p2").await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn status_fault_answers_error_json_with_retry_after() {
    let stack = Stack::new().await;
    let control = &stack.services.product.control;
    control.set_fault(Fault::new("/products").status(503).retry_after(7));
    let reply = stack.get(Service::Product, "/products/p1").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json(), json!({"error": "injected fault"}));
    assert_eq!(reply.headers["retry-after"], "7");
    assert_eq!(
        control.count("GET /products/{id}"),
        1,
        "faulted requests are counted"
    );
    assert_eq!(control.requests().len(), 1);
    // Other prefixes are untouched.
    stack
        .get_ok(Service::Recommendation, "/products/p1/similar")
        .await;

    // Method filter: only POST is faulted.
    let orders = &stack.services.order.control;
    orders.set_fault(Fault::new("/").method("post").status(500));
    stack.get_ok(Service::Order, "/orders/o1").await;
    let reply = stack
        .post(
            Service::Order,
            "/checkout/quote",
            &json!({"user_id": "u1", "items": [{"product_id": "p1", "quantity": 1}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn body_fault_replaces_the_answer() {
    let stack = Stack::new().await;
    let control = &stack.services.user.control;
    control.set_fault(Fault::new("/users/u1").body("{\"id\": 42"));
    let reply = stack.get(Service::User, "/users/u1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text, "{\"id\": 42");
    assert_eq!(reply.headers["content-type"], "application/json");

    // Replacing the fault (same prefix and method) with status + body.
    control.set_fault(
        Fault::new("/users/u1")
            .status(429)
            .body("{\"error\":\"slow down\"}"),
    );
    assert_eq!(control.faults().len(), 1);
    let reply = stack.get(Service::User, "/users/u1").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.error(), "slow down");
}

#[tokio::test]
async fn hang_fault_never_answers() {
    let stack = Stack::new().await;
    stack
        .services
        .device
        .control
        .set_fault(Fault::new("/devices").hang());
    let started = Instant::now();
    let error = stack
        .request(Service::Device, Method::GET, "/devices/d1")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(stack.services.device.control.count("GET /devices/{id}"), 1);
    // The rest of the service still answers.
    stack.services.device.control.clear_faults();
    stack.get_ok(Service::Device, "/devices/d1").await;
}

#[tokio::test]
async fn rate_is_deterministic() {
    let stack = Stack::new().await;
    stack
        .services
        .product
        .control
        .set_fault(Fault::new("/products/").status(500).rate(0.6));
    let mut failed = Vec::new();
    for n in 1..=10 {
        let reply = stack.get(Service::Product, "/products/p1").await;
        if reply.status == StatusCode::INTERNAL_SERVER_ERROR {
            failed.push(n);
        } else {
            assert_eq!(reply.status, StatusCode::OK);
        }
    }
    // floor(0.6 n) steps up at n = 2, 4, 5, 7, 9, 10.
    assert_eq!(failed, [2, 4, 5, 7, 9, 10]);
}

#[tokio::test]
async fn faults_over_http() {
    let stack = Stack::new().await;
    let put = |body: serde_json::Value| {
        stack
            .request(Service::Order, Method::PUT, "/__control/faults")
            .json(&body)
    };
    let reply = stack
        .send(put(
            json!({"prefix": "/orders", "status": 502, "retry_after_secs": 3}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let faults = stack.get_ok(Service::Order, "/__control/faults").await;
    assert_eq!(faults[0]["rate"], 1.0);
    let reply = stack.get(Service::Order, "/orders/o1").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.headers["retry-after"], "3");

    for bad in [
        json!({"prefix": "/orders", "statsu": 500}),
        json!({"prefix": "orders"}),
        json!({"prefix": "/", "rate": 1.5}),
        json!({"prefix": "/", "status": 1000}),
        json!({"status": 500}),
    ] {
        let reply = stack.send(put(bad.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!reply.error().is_empty());
    }

    let reply = stack
        .send(stack.request(Service::Order, Method::DELETE, "/__control/faults"))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    stack.get_ok(Service::Order, "/orders/o1").await;
}

#[tokio::test]
async fn reset_clears_counters_log_and_faults_but_not_data() {
    let stack = Stack::new().await;
    let user = &stack.services.user.control;
    user.set_fault(Fault::new("/users/u2").status(500));
    let put = stack.request(Service::User, Method::PUT, "/users/u1/wishlist/p9");
    assert_eq!(stack.send(put).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        stack.get(Service::User, "/users/u2").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(user.total(), 2);

    user.reset();
    assert_eq!(user.total(), 0);
    assert_eq!(user.count("GET /users/{id}"), 0);
    assert!(user.requests().is_empty());
    assert!(user.faults().is_empty());
    stack.get_ok(Service::User, "/users/u2").await;
    let wishlist = stack.get_ok(Service::User, "/users/u1/wishlist").await;
    assert_eq!(wishlist["product_ids"], json!(["p2", "p5", "p9"]));

    // Over HTTP.
    let reply = stack
        .send(stack.request(Service::User, Method::POST, "/__control/reset"))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(user.total(), 0);

    // Services::reset resets all five.
    stack.get_ok(Service::Device, "/devices/d1").await;
    stack.services.reset();
    assert!(stack.services.all().iter().all(|h| h.control.total() == 0));
}

#[tokio::test]
async fn instances_are_independent() {
    let a = Stack::new().await;
    let b = Stack::new().await;
    let put = a.request(Service::User, Method::PUT, "/users/u3/wishlist/p1");
    assert_eq!(a.send(put).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        a.get_ok(Service::User, "/users/u3/wishlist").await["product_ids"],
        json!(["p1"])
    );
    assert_eq!(
        b.get_ok(Service::User, "/users/u3/wishlist").await["product_ids"],
        json!([])
    );
    assert_eq!(b.services.user.control.total(), 1);
    assert_ne!(a.services.user.addr, b.services.user.addr);
    let urls = a.services.urls();
    for (url, handle) in urls.iter().zip(a.services.all()) {
        assert_eq!(url.as_str().trim_end_matches('/'), handle.url());
        assert!(handle.url().starts_with("http://127.0.0.1:"));
    }
    assert_eq!(a.services.all().map(|h| h.service), Service::ALL);
}
