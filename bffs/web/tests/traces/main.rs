//! Traces end to end: the web BFF exporting OpenTelemetry spans over
//! OTLP/HTTP to a collector inside the test, in front of devstack.
//!
//! A binary of its own: the tracer provider and the log subscriber are the
//! process's, set once (see [`collector`]). The tests share that one
//! collector and one exporter, so they run one at a time ([`SERIAL`]).
#![allow(clippy::unwrap_used)]

mod collector;
#[path = "../api/helpers.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bff_server::LogFormat;
use bff_server::telemetry::{self, TraceConfig, Traces};
use devstack_services::{Fault, RecordedRequest};
use serde_json::json;

use collector::{Collector, Received};
use helpers::{TestApp, data, json_200, spawn_app, spawn_app_with};

/// Spans the export queue holds: small, so that a slow collector fills it.
const QUEUE: usize = 64;

/// Span kinds and status codes as OTLP encodes them.
const INTERNAL: i32 = 1;
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const ERROR: i32 = 2;

const DASHBOARD: &str = "query Dashboard { dashboard {
    user { name }
    orders { id items { quantity product { id name } } }
    recommendations { score product { id name } }
    analytics { ordersThisMonth }
} }";

/// One test at a time: they share the collector (and make it slow or take
/// it down) and the export queue.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process's collector, with traces turned on and exported to it.
/// Every test calls it first: the front door reads whether traces are on
/// when an app is built.
fn collector() -> &'static Collector {
    static SETUP: OnceLock<(Collector, Traces)> = OnceLock::new();
    &SETUP
        .get_or_init(|| {
            let collector = Collector::start();
            let endpoint = collector.endpoint();
            // What an operator sets, read as the process would read it.
            let config = TraceConfig::from_lookup(|name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                "OTEL_BSP_SCHEDULE_DELAY" => Some("50".into()),
                "OTEL_BSP_MAX_QUEUE_SIZE" => Some(QUEUE.to_string()),
                // A slow collector holds an export until the test lets it go.
                "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("60000".into()),
                _ => None,
            })
            .unwrap();
            let traces = telemetry::init_with(LogFormat::Text, config)
                .unwrap()
                .expect("traces are on");
            assert!(telemetry::enabled());
            (collector, traces)
        })
        .0
}

/// The spans of trace `trace_id`, once at least `count` arrived (and a
/// moment more, for any straggler).
async fn wait_for_trace(trace_id: &str, count: usize) -> Vec<Received> {
    match arrival(trace_id, count, Duration::from_secs(30)).await {
        Ok(spans) => spans,
        Err(found) => panic!(
            "trace {trace_id}: {} of {count} spans arrived: {found:#?}",
            found.len()
        ),
    }
}

/// The spans of trace `trace_id` once `count` arrived, or what did
/// within `patience`.
async fn arrival(
    trace_id: &str,
    count: usize,
    patience: Duration,
) -> Result<Vec<Received>, Vec<Received>> {
    let deadline = Instant::now() + patience;
    loop {
        let found = collector().trace(trace_id);
        if found.len() >= count {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(collector().trace(trace_id));
        }
        if Instant::now() >= deadline {
            return Err(found);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// The `(trace id, parent span id, flags)` of a recorded `traceparent`.
fn traceparent(request: &RecordedRequest) -> (String, String, String) {
    let header = request.traceparent.as_deref().unwrap();
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[0], "00", "{header}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

/// The one trace id of every downstream call the app recorded.
fn recorded_trace_id(app: &TestApp) -> String {
    let ids: BTreeSet<String> = app
        .downstream_requests()
        .iter()
        .map(|request| traceparent(request).0)
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids.into_iter().next().unwrap()
}

fn of_kind(spans: &[Received], kind: i32) -> Vec<&Received> {
    spans.iter().filter(|span| span.span.kind == kind).collect()
}

fn one_of_kind(spans: &[Received], kind: i32) -> &Received {
    let found = of_kind(spans, kind);
    assert_eq!(found.len(), 1, "{kind}: {spans:#?}");
    found[0]
}

fn named<'a>(spans: &[&'a Received], name: &str) -> &'a Received {
    let found: Vec<_> = spans.iter().filter(|span| span.name() == name).collect();
    assert_eq!(found.len(), 1, "{name}: {spans:#?}");
    found[0]
}

/// The value of `bff_trace_spans_dropped_total`, 0 before the first drop.
fn spans_dropped() -> f64 {
    let rendered = bff_server::metrics::install_prometheus().unwrap().render();
    rendered
        .lines()
        .filter(|line| line.starts_with(telemetry::TRACE_SPANS_DROPPED))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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
    let within = |inner: &Received, outer: &Received| {
        inner.span.start_time_unix_nano >= outer.span.start_time_unix_nano
            && inner.span.end_time_unix_nano <= outer.span.end_time_unix_nano
    };
    assert!(within(operation, server), "{operation:#?} {server:#?}");

    // One client span per call, a child of the operation; each call's
    // traceparent names its span.
    let clients = of_kind(&spans, CLIENT);
    assert_eq!(clients.len(), recorded.len());
    let mut seen = BTreeSet::new();
    for request in &recorded {
        let (_, parent, flags) = traceparent(request);
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
        let (_, parent, flags) = traceparent(&request);
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
    let app = spawn_app().await;
    let token = app.token("u1");
    let secret = "zz-secret-variable-4f1c";
    let query = "query Look($id: ID!) { product(id: $id) { name } me { name } }";
    let response = app
        .client
        .post(app.url("/graphql?who=zz-secret-query-string"))
        .bearer_auth(&token)
        .json(&json!({ "query": query, "variables": { "id": secret } }))
        .send()
        .await
        .unwrap();
    let body = json_200(response).await;
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
