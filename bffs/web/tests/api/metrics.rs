//! `GET /metrics` on the admin listener (never on the public one): the
//! front door's and the downstream crate's metrics in the Prometheus text
//! format. The recorder is process-wide, so other tests
//! add to the numbers: only presence and lower bounds are asserted.

use devstack_services::Fault;
use serde_json::json;
use testkit::prometheus;

use crate::helpers::{PREFLIGHT, TestApp, spawn_app};

#[tokio::test]
async fn metrics_show_downstream_calls_retries_and_cache_lookups() {
    let app = spawn_app().await;
    app.query(r#"{ product(id: "p2") { id } }"#, json!({}))
        .await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    app.query(r#"{ product(id: "p3") { id } }"#, json!({}))
        .await;

    let text = scrape(&app).await;
    for (name, labels) in [
        (
            "downstream_calls_total",
            &[("service", "product"), ("outcome", "success")][..],
        ),
        (
            "downstream_calls_total",
            &[("service", "product"), ("outcome", "unavailable")],
        ),
        (
            "downstream_retries_total",
            &[("service", "product"), ("result", "granted")],
        ),
        (
            "downstream_cache_lookups_total",
            &[("cache", "product"), ("result", "miss")],
        ),
        (
            "downstream_breaker_state",
            &[("service", "product"), ("state", "closed")],
        ),
        (
            "downstream_call_duration_seconds_bucket",
            &[("service", "product"), ("le", "0.1")],
        ),
    ] {
        assert!(
            !prometheus::find(&text, name, labels).is_empty(),
            "{name} {labels:?} missing from:\n{text}"
        );
    }
    assert!(text.contains("# TYPE downstream_call_duration_seconds histogram"));
    // Every series names the BFF (here the test binary).
    let bff = bff_server::binary_name();
    assert!(
        prometheus::samples(&text)
            .iter()
            .all(|sample| sample.label("bff") == Some(bff.as_str())),
        "{text}"
    );
}

/// The Prometheus text on `/metrics`.
/// The admin listener's `/metrics` (it is not on the public port).
async fn scrape(app: &TestApp) -> String {
    app.metrics().await
}

/// A dashboard repeated takes the remembered-validation path (same
/// executor, lighter validation); the first of its kind the full one. Other
/// tests add to the process-wide counters, so only lower bounds hold.
#[tokio::test]
async fn repeated_dashboards_take_the_remembered_validation_path() {
    let app = spawn_app().await;
    let counts = || async {
        let text = scrape(&app).await;
        (
            prometheus::value(&text, "graphql_requests_total", &[("validation", "full")]),
            prometheus::value(
                &text,
                "graphql_requests_total",
                &[("validation", "remembered")],
            ),
        )
    };
    // A query text no other test sends.
    let query = "query RepeatedDashboardForMetrics { dashboard { orders(first: 2) { id } } }";
    let (full, remembered) = counts().await;
    for _ in 0..3 {
        let response = app.query_as("u1", query, json!({})).await;
        assert!(response.get("errors").is_none(), "{response}");
    }
    let (full_after, remembered_after) = counts().await;
    assert!(full_after >= full + 1.0, "{full} → {full_after}");
    assert!(
        remembered_after >= remembered + 2.0,
        "{remembered} → {remembered_after}"
    );
}

/// The value of one series in a fresh scrape.
async fn value(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> f64 {
    prometheus::value(&scrape(app).await, name, labels)
}

#[tokio::test]
async fn operations_are_counted_by_name_type_and_client() {
    let app = spawn_app().await;
    let named = [
        ("operation_name", "MetricsNamedOperation"),
        ("operation_type", "query"),
        ("client_name", "web-metrics-test"),
        ("client_version", "9.9.9"),
    ];
    let before = value(&app, "graphql_operations_total", &named).await;
    let response = app
        .graphql_request(
            r#"query MetricsNamedOperation { product(id: "p1") { id } }"#,
            json!({}),
            None,
        )
        .header("apollographql-client-name", "web-metrics-test")
        .header("apollographql-client-version", "9.9.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        value(&app, "graphql_operations_total", &named).await,
        before + 1.0
    );

    // Anonymous, from a client that does not say which: all "".
    app.query(r#"{ product(id: "p1") { id } }"#, json!({}))
        .await;
    let anonymous = [
        ("operation_name", ""),
        ("operation_type", "query"),
        ("client_name", ""),
        ("client_version", ""),
    ];
    assert!(value(&app, "graphql_operations_total", &anonymous).await >= 1.0);
}

#[tokio::test]
async fn errors_are_counted_by_code() {
    let app = spawn_app().await;
    let count = |code: &'static str| {
        let app = &app;
        async move { value(app, "graphql_errors_total", &[("code", code)]).await }
    };
    let (unauthenticated, none) = (count("UNAUTHENTICATED").await, count("none").await);

    // A resolver's error, and the front door's refusal of a bad token.
    let response = app
        .query("{ dashboard { user { name } } }", json!({}))
        .await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    let refused = app
        .post_graphql("{ __typename }", json!({}), Some("not-a-token"))
        .await;
    assert_eq!(refused.status(), 401);
    // A syntax error has no code.
    let response = app.query("{ product(", json!({})).await;
    assert!(response["errors"][0]["extensions"]["code"].is_null());

    assert!(count("UNAUTHENTICATED").await >= unauthenticated + 2.0);
    assert!(count("none").await >= none + 1.0);
}

#[tokio::test]
async fn requests_are_timed_by_route_method_and_status_apart_from_downstream_waits() {
    let app = spawn_app().await;
    let graphql = [
        ("http_route", "/graphql"),
        ("http_request_method", "POST"),
        ("http_response_status_code", "200"),
    ];
    let route = [("http_route", "/graphql")];
    let requests = "http_server_request_duration_seconds_count";
    let (count, waited, own) = (
        value(&app, requests, &graphql).await,
        value(&app, "bff_request_downstream_wait_seconds_sum", &route).await,
        value(&app, "bff_request_self_duration_seconds_count", &route).await,
    );
    // Every product call takes at least 50 ms.
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").latency(50));
    let response = app
        .query(r#"{ product(id: "p7") { id } }"#, json!({}))
        .await;
    assert!(response.get("errors").is_none(), "{response}");

    assert!(value(&app, requests, &graphql).await > count);
    assert!(value(&app, "bff_request_downstream_wait_seconds_sum", &route).await >= waited + 0.05);
    assert!(value(&app, "bff_request_self_duration_seconds_count", &route).await > own);

    // No route: `unmatched`, never the path a client made up.
    let missing = app
        .client
        .get(app.url("/no/such/path/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let text = scrape(&app).await;
    let unmatched = [
        ("http_route", "unmatched"),
        ("http_request_method", "GET"),
        ("http_response_status_code", "404"),
    ];
    assert!(prometheus::value(&text, requests, &unmatched) >= 1.0);
    assert!(!text.contains("/no/such/path"));
    // A request waiting on a slow service is in flight while the admin
    // listener (not counted itself) renders.
    app.services
        .product
        .control
        .set_fault(devstack_services::Fault::new("/products").latency(400));
    let slow = {
        let (client, url) = (app.client.clone(), app.url("/graphql"));
        tokio::spawn(async move {
            client
                .post(url)
                .json(&serde_json::json!({ "query": r#"{ product(id: "p9") { id } }"# }))
                .send()
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let text = scrape(&app).await;
    assert!(prometheus::value(&text, "http_server_active_requests", &[]) >= 1.0);
    assert!(slow.await.unwrap().unwrap().status().is_success());
}

#[tokio::test]
async fn rate_limited_requests_are_counted() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.rate_limit.rps = 1;
        config.rate_limit.burst = 1;
    })
    .await;
    let before = value(&app, "bff_rate_limited_requests_total", &[]).await;
    let mut refused = 0.0;
    for _ in 0..5 {
        let response = app
            .client
            .get(app.url("/graphql?query=%7B__typename%7D"))
            .header(PREFLIGHT.0, PREFLIGHT.1)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            refused += 1.0;
        }
    }
    assert!(refused >= 1.0, "a burst of 5 at 1 per second");
    assert!(value(&app, "bff_rate_limited_requests_total", &[]).await >= before + refused);
}

#[tokio::test]
async fn metrics_are_not_on_the_public_listener() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
