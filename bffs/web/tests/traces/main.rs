//! Traces end to end: the web BFF exporting OpenTelemetry spans over
//! OTLP/HTTP to a collector inside the test (`testkit::otlp`), in front of
//! devstack.
//!
//! A binary of its own: the tracer provider and the log subscriber are the
//! process's. Every test starts with `collector()` and holds `SERIAL`.
#![allow(clippy::unwrap_used)]

#[path = "../api/helpers.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use devstack_services::Fault;
use serde_json::json;
use testkit::otlp::{
    CLIENT, ERROR, INTERNAL, QUEUE, SERIAL, SERVER, arrival, collector, named, of_kind,
    one_of_kind, one_trace_id, spans_dropped, traceparent, wait_for_trace, within,
};

use helpers::{PREFLIGHT, TestApp, data, json_200, spawn_app, spawn_app_with};

const DASHBOARD: &str = "query Dashboard { dashboard {
    user { name }
    orders { id items { quantity product { id name } } }
    recommendations { score product { id name } }
    analytics { ordersThisMonth }
} }";

/// The one trace id of every downstream call the app recorded.
fn recorded_trace_id(app: &TestApp) -> String {
    let requests = app.downstream_requests();
    one_trace_id(
        requests
            .iter()
            .map(|request| request.traceparent.as_deref().unwrap()),
    )
}

/// Dashboards until one's whole trace arrives: after the collector was
/// slow or down, the spans of the export under way when it recovered may
/// be lost, but not all that follow.
async fn traces_flow_again(app: &TestApp) {
    for _ in 0..5 {
        app.services.reset();
        dashboards_answer_promptly(app, 1).await;
        let trace_id = recorded_trace_id(app);
        if arrival(&trace_id, 7, Duration::from_secs(5)).await.is_ok() {
            return;
        }
    }
    panic!("no trace arrived after the collector recovered");
}

#[tokio::test]
async fn a_dashboard_is_one_trace_server_then_operation_then_one_client_span_per_call() {
    collector();
    let _serial = SERIAL.lock().await;
    let app = spawn_app().await;
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    assert_eq!(
        data(&response)["dashboard"]["orders"]
            .as_array()
            .unwrap()
            .len(),
        10
    );

    let recorded = app.downstream_requests();
    assert_eq!(recorded.len(), 5, "{recorded:#?}");
    let trace_id = recorded_trace_id(&app);
    let spans = wait_for_trace(&trace_id, 2 + recorded.len()).await;
    assert_eq!(spans.len(), 7, "{spans:#?}");

    let server = one_of_kind(&spans, SERVER);
    assert_eq!(server.name(), "POST /graphql");
    assert_eq!(server.parent_id(), None);
    assert_eq!(server.str("http.request.method"), Some("POST"));
    assert_eq!(server.str("http.route"), Some("/graphql"));
    assert_eq!(server.str("url.path"), Some("/graphql"));
    assert_eq!(
        server.int("http.response.status_code"),
        Some(200),
        "{server:#?}"
    );
    assert_ne!(server.status_code(), ERROR);
    let binary = bff_server::binary_name();
    assert_eq!(server.resource_str("service.name"), Some(binary.as_str()));

    let operation = one_of_kind(&spans, INTERNAL);
    assert_eq!(operation.name(), "query");
    assert_eq!(operation.parent_id(), Some(server.span_id()));
    assert_eq!(operation.str("graphql.operation.type"), Some("query"));
    assert_eq!(operation.str("graphql.operation.name"), Some("Dashboard"));
    let hash = bff_server::graphql::sha256_hex(DASHBOARD);
    assert_eq!(operation.str("graphql.document.hash"), Some(hash.as_str()));
    assert!(within(operation, server), "{operation:#?} {server:#?}");

    // One client span per call, a child of the operation; each call's
    // traceparent names its span.
    let clients = of_kind(&spans, CLIENT);
    assert_eq!(clients.len(), recorded.len());
    let mut seen = BTreeSet::new();
    for request in &recorded {
        let (_, parent, flags) = traceparent(request.traceparent.as_deref().unwrap());
        assert_eq!(flags, "01");
        let client = clients
            .iter()
            .find(|client| client.span_id() == parent)
            .unwrap_or_else(|| panic!("no client span {parent} for {request:#?}"));
        assert!(seen.insert(parent.clone()), "two calls sent span {parent}");
        assert_eq!(client.name(), request.route);
        assert_eq!(client.parent_id(), Some(operation.span_id()));
        assert_eq!(client.str("http.request.method"), Some("GET"));
        let template = request.route.strip_prefix("GET ").unwrap();
        assert_eq!(client.str("url.template"), Some(template));
        assert_eq!(client.int("http.response.status_code"), Some(200));
        assert_eq!(client.int("http.request.resend_count"), None);
        assert_eq!(client.str("server.address"), Some("127.0.0.1"));
        assert!(client.int("server.port").is_some());
        assert_ne!(client.status_code(), ERROR);
        assert!(within(client, operation), "{client:#?} {operation:#?}");
    }

    // Two rounds: the products of the orders and recommendations in one
    // batch, once both are in.
    let span = |name: &str| named(&clients, name);
    let products = span("GET /products");
    for first in ["GET /users/{id}/orders", "GET /users/{id}/recommendations"] {
        assert!(
            products.span.start_time_unix_nano >= span(first).span.end_time_unix_nano,
            "{products:#?} before {first}"
        );
    }
    assert_eq!(
        span("GET /users/{id}/orders").str("peer.service"),
        Some("order")
    );
    assert_eq!(products.str("peer.service"), Some("product"));
    // The entity caches' misses.
    assert_eq!(products.str("bff.cache.name"), Some("product"));
    assert_eq!(products.str("bff.cache.result"), Some("miss"));
    assert_eq!(span("GET /users").str("bff.cache.name"), Some("user"));
    assert_eq!(
        span("GET /users/{id}/analytics").str("bff.cache.name"),
        None
    );
}

#[tokio::test]
async fn an_incoming_traceparent_is_continued_and_its_sampling_decision_kept() {
    collector();
    let _serial = SERIAL.lock().await;
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    let token = app.token("u1");
    let sampled = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let response = app
        .graphql_request(DASHBOARD, json!({}), Some(&token))
        .header("traceparent", format!("00-{sampled}-{client_span}-01"))
        .send()
        .await
        .unwrap();
    data(&json_200(response).await);
    assert_eq!(recorded_trace_id(&app), sampled);
    let spans = wait_for_trace(sampled, 7).await;
    assert_eq!(spans.len(), 7, "{spans:#?}");
    let server = one_of_kind(&spans, SERVER);
    assert_eq!(server.parent_id().as_deref(), Some(client_span));

    // The client did not sample its trace: it goes on downstream, not
    // sampled, and nothing is exported.
    app.services.reset();
    let unsampled = "5ce0a2f9d6b7e4c3a1f0e9d8c7b6a5f4";
    let response = app
        .graphql_request(DASHBOARD, json!({}), Some(&token))
        .header("traceparent", format!("00-{unsampled}-{client_span}-00"))
        .send()
        .await
        .unwrap();
    data(&json_200(response).await);
    assert_eq!(recorded_trace_id(&app), unsampled);
    for request in app.downstream_requests() {
        let (_, parent, flags) = traceparent(request.traceparent.as_deref().unwrap());
        assert_eq!(flags, "00");
        assert_ne!(parent, client_span, "the BFF's own span goes downstream");
    }
    // A sampled request after it: once its spans are in, the unsampled
    // ones would have been too.
    app.services.reset();
    app.query_as("u1", DASHBOARD, json!({})).await;
    wait_for_trace(&recorded_trace_id(&app), 7).await;
    assert!(collector().trace(unsampled).is_empty());
}

#[tokio::test]
async fn no_attribute_holds_a_variable_a_token_or_the_query_string() {
    collector();
    let _serial = SERIAL.lock().await;
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    let token = app.token("u1");
    let secret = "zz-secret-variable-4f1c";
    let query = "query Look($id: ID!) { product(id: $id) { name } me { name } }";
    let variables = json!({ "id": secret });
    let post = app
        .client
        .post(app.url("/graphql?who=zz-secret-query-string"))
        .json(&json!({ "query": query, "variables": variables }));
    // Over GET, the query and its variables are the URL's query string.
    let get = app
        .client
        .get(app.url("/graphql"))
        .header(PREFLIGHT.0, PREFLIGHT.1)
        .query(&[("query", query), ("variables", &variables.to_string())]);
    for request in [post, get] {
        app.services.reset();
        let body = json_200(request.bearer_auth(&token).send().await.unwrap()).await;
        assert_eq!(data(&body)["product"], json!(null));
        let recorded = app.downstream_requests();
        // The secret id did go downstream, in the batch's query string.
        assert!(
            recorded
                .iter()
                .any(|request| request.ids.iter().any(|id| id == secret)),
            "{recorded:#?}"
        );
        let trace_id = recorded_trace_id(&app);
        let spans = wait_for_trace(&trace_id, 2 + recorded.len()).await;
        let operation = one_of_kind(&spans, INTERNAL);
        assert_eq!(operation.str("graphql.operation.name"), Some("Look"));
        let server = one_of_kind(&spans, SERVER);
        assert_eq!(server.str("url.path"), Some("/graphql"));
        let signature = token.rsplit('.').next().unwrap();
        for span in &spans {
            for value in span.all_values() {
                for leak in [secret, &token, signature, "zz-secret-query-string", "$id"] {
                    assert!(!value.contains(leak), "{leak:?} in {value} of {span:#?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn retries_and_calls_refused_by_an_open_breaker_are_client_spans() {
    collector();
    let _serial = SERIAL.lock().await;
    let app = spawn_app_with(|config| {
        let downstream = &mut config.downstream;
        downstream.retry.max_retries = 1;
        downstream.retry.base_backoff_ms = 1;
        downstream.retry.max_backoff_ms = 5;
        let breaker = &mut downstream.breaker;
        breaker.window_size = 2;
        breaker.minimum_calls = 2;
        breaker.failure_rate_percent = 50;
        breaker.open_ms = 60_000;
    })
    .await;
    app.services
        .user
        .control
        .set_fault(Fault::new("/users/u1/analytics").status(503));
    let token = app.token("u1");
    let query = "{ dashboard { analytics { ordersThisMonth } } }";
    let client_span = "00f067aa0ba902b7";
    let [failing, refused] = [
        "6a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "7b2c3d4e5f60718293a4b5c6d7e8f90a",
    ];
    for trace_id in [failing, refused] {
        let response = app
            .graphql_request(query, json!({}), Some(&token))
            .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
            .send()
            .await
            .unwrap();
        assert!(
            !json_200(response).await["errors"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    // The first request tried twice; the breaker then opened, and the
    // second request's call never left.
    assert_eq!(
        app.services.user.control.count("GET /users/{id}/analytics"),
        2
    );

    let spans = wait_for_trace(failing, 4).await;
    let mut tries = of_kind(&spans, CLIENT);
    assert_eq!(tries.len(), 2, "{spans:#?}");
    tries.sort_by_key(|span| span.span.start_time_unix_nano);
    assert_eq!(tries[0].int("http.request.resend_count"), None);
    assert_eq!(tries[1].int("http.request.resend_count"), Some(1));
    for try_span in &tries {
        assert_eq!(try_span.name(), "GET /users/{id}/analytics");
        assert_eq!(try_span.int("http.response.status_code"), Some(503));
        assert_eq!(try_span.str("error.type"), Some("unavailable"));
        assert_eq!(try_span.status_code(), ERROR);
    }

    let spans = wait_for_trace(refused, 3).await;
    let refusal = one_of_kind(&spans, CLIENT);
    assert_eq!(refusal.name(), "GET /users/{id}/analytics");
    assert_eq!(refusal.str("error.type"), Some("circuit_open"));
    assert_eq!(refusal.status_code(), ERROR);
    assert_eq!(refusal.int("http.response.status_code"), None);
    assert_eq!(
        refusal.parent_id(),
        Some(one_of_kind(&spans, INTERNAL).span_id())
    );
}

/// `count` dashboards, each answered in full and promptly.
async fn dashboards_answer_promptly(app: &TestApp, count: usize) {
    for _ in 0..count {
        let started = Instant::now();
        let response = app.query_as("u1", DASHBOARD, json!({})).await;
        let took = started.elapsed();
        assert!(response.get("errors").is_none(), "{response}");
        assert_eq!(
            data(&response)["dashboard"]["orders"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
        assert!(took < Duration::from_secs(1), "a dashboard took {took:?}");
    }
}

#[tokio::test]
async fn a_slow_collector_neither_slows_nor_fails_requests_and_drops_are_counted() {
    let collector = collector();
    let _serial = SERIAL.lock().await;
    // No cache: every dashboard makes its 5 calls, 7 spans in all.
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    collector.set_slow(true);
    // Once an export is held, the exporter waits on it: spans only queue.
    let exports = collector.exports();
    dashboards_answer_promptly(&app, 1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while collector.exports() == exports {
        assert!(Instant::now() < deadline, "no export started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dropped = spans_dropped();
    let dashboards = 20;
    dashboards_answer_promptly(&app, dashboards).await;
    // Only the queue's worth of their spans could be kept.
    let at_least = (dashboards * 7 - QUEUE) as f64;
    let now_dropped = spans_dropped();
    assert!(
        now_dropped - dropped >= at_least,
        "dropped {} spans, expected at least {at_least}",
        now_dropped - dropped
    );

    // Fast again: traces flow again, once the queue is handed over.
    let exports = collector.exports();
    collector.set_slow(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while collector.exports() == exports {
        assert!(
            Instant::now() < deadline,
            "no export after the collector recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    traces_flow_again(&app).await;
}

#[tokio::test]
async fn a_collector_that_is_down_neither_slows_nor_fails_requests() {
    let collector = collector();
    let _serial = SERIAL.lock().await;
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    collector.down();
    // Exports are tried (every 50 ms) and fail meanwhile.
    dashboards_answer_promptly(&app, 10).await;

    // Back up, on the same port: traces flow again.
    collector.up();
    traces_flow_again(&app).await;
}

/// A subscription's runs (the check when it starts, then one per event)
/// are operation spans in the trace of the request that opened it, each
/// the parent of its own downstream calls.
#[tokio::test]
async fn each_subscription_event_is_an_operation_span_in_the_trace_that_opened_it() {
    collector();
    let _serial = SERIAL.lock().await;
    let app = spawn_app().await;
    let trace_id = "6a1e3f0b2c4d5e6f708192a3b4c5d6e7";
    let client_span = "1122334455667788";
    let query = "subscription Updates { orderUpdates { eventId order { id status } } }";
    let mut response = app
        .graphql_request(query, json!({}), Some(&app.token("u1")))
        .header("accept", "text/event-stream")
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let moved = app
        .client
        .post(format!(
            "{}/__control/orders/o14/status",
            app.services.order.url()
        ))
        .json(&json!({ "status": "shipped" }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let mut stream = String::new();
    while !stream.contains("event: next") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("no event within 10 s")
            .unwrap()
            .expect("the stream ended");
        stream.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(stream.contains("\"status\":\"SHIPPED\""), "{stream}");

    // The request, its check, the event's run and the event's order fetch.
    let spans = wait_for_trace(trace_id, 4).await;
    let server = one_of_kind(&spans, SERVER);
    assert_eq!(server.parent_id().as_deref(), Some(client_span));
    let runs = of_kind(&spans, INTERNAL);
    assert_eq!(runs.len(), 2, "{spans:#?}");
    for run in &runs {
        assert_eq!(run.name(), "subscription");
        assert_eq!(run.str("graphql.operation.type"), Some("subscription"));
        assert_eq!(run.str("graphql.operation.name"), Some("Updates"));
        assert_eq!(run.parent_id(), Some(server.span_id()), "{run:#?}");
    }
    let fetch = one_of_kind(&spans, CLIENT);
    assert_eq!(fetch.name(), "GET /orders/{id}");
    assert!(
        runs.iter()
            .any(|run| fetch.parent_id() == Some(run.span_id())),
        "{fetch:#?} {runs:#?}"
    );
}
