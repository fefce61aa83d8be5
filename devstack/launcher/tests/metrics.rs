//! Every metric the BFFs export (`bff_server::metrics::exported_metric_names`,
//! the list dashboards and alert rules may name) shows up on `/metrics`
//! once web-bff, mobile-bff and iot-bff have served a workload that
//! provokes it; and client-chosen label values stay bounded. Here because
//! the launcher is the one package that depends on every BFF. The recorder
//! is process-wide: the three BFFs of this binary share one, so one scrape
//! shows them all.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use bff_server::config::loopback;
use bff_server::metrics::{
    MAX_CLIENT_NAMES, MAX_CLIENT_VERSIONS, MAX_OPERATION_NAMES, MAX_OPERATION_SERIES, OTHER,
    exported_metric_names,
};
use bff_server::{Config, ConnectionConfig, Defaults, Profile};
use devstack_services::{Fault, Services, TokenKind, issue_dev_token};
use downstream::{BreakerConfig, CacheConfig, DownstreamConfig};
use serde_json::{Value, json};
use testkit::prometheus;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const SECRET: &str = "devstack-metrics-test-secret-0123456789-abcdef";
/// What GraphQL clients send so that CSRF prevention lets a request in.
const PREFLIGHT: (&str, &str) = ("apollo-require-preflight", "true");

/// One BFF on an ephemeral port; dropping it stops it.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn serve(router: Router, connections: ConnectionConfig) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        bff_server::serve_with_config(listener, router, connections, std::future::pending())
            .await
            .unwrap();
    });
    Server { addr, task }
}

fn config(services: &Services, tweak: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::new(Defaults {
        listen: loopback(0),
        admin_listen: loopback(0),
        request_timeout_ms: 2_000,
        services: &downstream::Service::ALL,
    });
    config.profile = Profile::Dev;
    config.downstream = DownstreamConfig::with_urls(services.urls());
    config.jwt.secret = Some(SECRET.to_owned());
    tweak(&mut config);
    config.validate().unwrap();
    config
}

fn token(config: &Config, subject: &str, kind: TokenKind, lifetime: Duration) -> String {
    let jwt = &config.jwt;
    issue_dev_token(SECRET, &jwt.issuer, &jwt.audience, subject, lifetime, kind)
}

/// The Prometheus text on the admin listener's `/metrics` (the recorder
/// is the process's: `server` is only what the caller scraped for).
async fn scrape(_server: &Server) -> String {
    let config = Config::new(Defaults {
        listen: loopback(0),
        admin_listen: loopback(0),
        request_timeout_ms: 2_000,
        services: &[],
    });
    let admin = serve(
        bff_server::admin_router(&config),
        ConnectionConfig::default(),
    )
    .await;
    let response = reqwest::get(admin.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn post(server: &Server, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/graphql"))
        .header(PREFLIGHT.0, PREFLIGHT.1)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// One test, two parts in a fixed order: the label bounds are
/// process-wide and first come, first served, so the flood of client-chosen
/// names must come after the workload whose operation names it checks.
#[tokio::test]
async fn exported_metrics_then_bounded_labels() {
    every_exported_metric_shows_up_under_a_workload_of_the_three_bffs().await;
    client_chosen_label_values_stay_bounded().await;
}

async fn every_exported_metric_shows_up_under_a_workload_of_the_three_bffs() {
    let services = Services::spawn_ephemeral().await.unwrap();

    // web-bff: entity caches with a short TTL and a long stale time, and a
    // breaker that opens after two failures of four.
    let web_config = config(&services, |config| {
        config.downstream.cache = CacheConfig {
            ttl_ms: 1,
            stale_ms: 60_000,
            ..CacheConfig::default()
        };
        config.downstream.breaker = BreakerConfig {
            window_size: 4,
            minimum_calls: 2,
            failure_rate_percent: 50,
            ..BreakerConfig::default()
        };
    });
    let web = serve(web_bff::app(&web_config).unwrap(), web_config.connections).await;
    let product = json!({ "query": r#"query Product { product(id: "p1") { id name } }"# });
    let response = post(&web, product.clone()).await;
    assert_eq!(response.status(), 200);
    // Past the TTL, with the product service failing: served stale.
    tokio::time::sleep(Duration::from_millis(20)).await;
    services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    let stale: Value = post(&web, product.clone()).await.json().await.unwrap();
    assert_eq!(
        stale["extensions"]["stale"],
        json!([["product"]]),
        "{stale}"
    );
    // Failures of another id (no stale copy) open the breaker.
    for _ in 0..4 {
        post(&web, json!({ "query": r#"{ product(id: "p2") { id } }"# })).await;
    }
    services.product.control.reset();
    // A GraphQL error with a code.
    let unauthenticated: Value = post(&web, json!({ "query": "{ dashboard { user { name } } }" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        unauthenticated["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );

    // A subscription over SSE whose token expires within a second: open
    // while it runs, then ended by the server.
    let expiring = token(&web_config, "u1", TokenKind::User, Duration::from_secs(1));
    let mut subscription = reqwest::Client::new()
        .post(web.url("/graphql"))
        .header(PREFLIGHT.0, PREFLIGHT.1)
        .header("accept", "text/event-stream")
        .bearer_auth(expiring)
        .json(&json!({ "query": "subscription { orderUpdates { eventId } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(subscription.status(), 200);
    let mut stream = String::new();
    while let Some(chunk) = subscription.chunk().await.unwrap() {
        stream.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(stream.contains("UNAUTHENTICATED"), "{stream}");

    // web-bff again, over its rate after one request.
    let limited_config = config(&services, |config| {
        config.rate_limit.rps = 1;
        config.rate_limit.burst = 1;
    });
    let limited = serve(
        web_bff::app(&limited_config).unwrap(),
        limited_config.connections,
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = post(&limited, json!({ "query": "{ __typename }" })).await;
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    // mobile-bff: an automatic persisted query missed, registered, hit,
    // with its replicas' shared state in a Redis of the test's own (when
    // redis-server is installed; under CI it must be).
    let redis = testkit::redis::RedisServer::start().await;
    let mobile_config = config(&services, |config| {
        config.redis.url = redis.as_ref().map(testkit::redis::RedisServer::url);
    });
    let mobile = serve(
        mobile_bff::app(&mobile_config).unwrap(),
        mobile_config.connections,
    )
    .await;
    let query = r#"query MetricsApq { product(id: "p1") { id } }"#;
    let hash = mobile_bff::persisted::sha256_hex(query);
    let by_hash =
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    let miss: Value = post(&mobile, by_hash.clone()).await.json().await.unwrap();
    assert_eq!(
        miss["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    let mut with_text = by_hash.clone();
    with_text["query"] = json!(query);
    assert_eq!(post(&mobile, with_text).await.status(), 200);
    assert_eq!(post(&mobile, by_hash).await.status(), 200);

    // iot-bff: a device's status, read by its owner.
    let iot_config = config(&services, |_| {});
    let iot = serve(iot_bff::app(&iot_config).unwrap(), iot_config.connections).await;
    let owner = devstack_services::seed::Seed::new()
        .device("d1")
        .unwrap()
        .owner_id
        .clone();
    let status = reqwest::Client::new()
        .get(iot.url("/v1/devices/d1"))
        .bearer_auth(token(
            &iot_config,
            &owner,
            TokenKind::User,
            Duration::from_secs(600),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);

    // Another iot-bff that takes one connection at a time, nobody else's:
    // one that sends nothing holds the slot (the next is refused) until
    // the header-read timeout closes it.
    let connections = ConnectionConfig {
        header_read_timeout_ms: 500,
        max_open: 1,
        ..ConnectionConfig::default()
    };
    let narrow = serve(iot_bff::app(&iot_config).unwrap(), connections).await;
    let mut idle = TcpStream::connect(narrow.addr).await.unwrap();
    let mut refused = TcpStream::connect(narrow.addr).await.unwrap();
    let mut byte = [0_u8; 1];
    assert_eq!(refused.read(&mut byte).await.unwrap_or(0), 0, "refused");
    assert_eq!(idle.read(&mut byte).await.unwrap_or(0), 0, "timed out");

    // Readiness, as an orchestrator asks it.
    for server in [&web, &mobile, &iot] {
        reqwest::get(server.url("/readyz")).await.unwrap();
    }

    let text = scrape(&web).await;
    let missing: Vec<&str> = exported_metric_names()
        .into_iter()
        .filter(|name| redis.is_some() || *name != shared_state::CALLS)
        .filter(|name| !prometheus::has_family(&text, name))
        .collect();
    assert!(missing.is_empty(), "{missing:?} missing from:\n{text}");

    // The labels the workload must have produced.
    for (name, labels) in [
        ("persisted_queries_total", &[("result", "hit")][..]),
        ("persisted_queries_total", &[("result", "miss")]),
        ("persisted_queries_total", &[("result", "registered")]),
        ("graphql_errors_total", &[("code", "UNAUTHENTICATED")]),
        (
            "graphql_errors_total",
            &[("code", "PERSISTED_QUERY_NOT_FOUND")],
        ),
        ("graphql_errors_total", &[("code", "RATE_LIMITED")]),
        (
            "graphql_subscriptions_ended_total",
            &[("reason", "token_expired")],
        ),
        (
            "downstream_cache_lookups_total",
            &[("cache", "product"), ("result", "stale")],
        ),
        (
            "downstream_breaker_transitions_total",
            &[("service", "product"), ("to", "open")],
        ),
        (
            "http_connections_timed_out_total",
            &[("timeout", "header_read")],
        ),
        (
            "graphql_operations_total",
            &[
                ("operation_name", "MetricsApq"),
                ("operation_type", "query"),
            ],
        ),
        (
            "http_server_request_duration_seconds_count",
            &[
                ("http_route", "/v1/devices/{id}"),
                ("http_request_method", "GET"),
                ("http_response_status_code", "200"),
            ],
        ),
    ] {
        assert!(
            prometheus::find(&text, name, labels)
                .iter()
                .any(|sample| sample.value > 0.0),
            "{name} {labels:?} not counted in:\n{text}"
        );
    }
    for name in [
        "bff_rate_limited_requests_total",
        "http_connections_refused_total",
    ] {
        assert!(prometheus::value(&text, name, &[]) > 0.0, "{name}");
    }
    let bff = bff_server::binary_name();
    assert!(
        prometheus::samples(&text)
            .iter()
            .all(|sample| sample.label("bff") == Some(bff.as_str()))
    );
}

/// 10,000 requests, each with its own operation name, client name and
/// client version: `graphql_operations_total` keeps at most
/// `MAX_OPERATION_SERIES` series, each label its bounded set of values
/// (plus `""` and `other`).
async fn client_chosen_label_values_stay_bounded() {
    const REQUESTS: usize = 10_000;
    const WORKERS: usize = 16;
    let services = Services::spawn_ephemeral().await.unwrap();
    let web_config = config(&services, |_| {});
    let web = serve(web_bff::app(&web_config).unwrap(), web_config.connections).await;
    let client = reqwest::Client::new();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (client, url) = (client.clone(), web.url("/graphql"));
            tokio::spawn(async move {
                for i in (worker..REQUESTS).step_by(WORKERS) {
                    let response = client
                        .post(&url)
                        .header(PREFLIGHT.0, PREFLIGHT.1)
                        .header("apollographql-client-name", format!("client-{i}"))
                        .header("apollographql-client-version", format!("1.0.{i}"))
                        .json(&json!({ "query": format!("query Flood{i} {{ __typename }}") }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }

    let text = scrape(&web).await;
    let series = prometheus::find(&text, "graphql_operations_total", &[]);
    assert!(
        series.len() <= MAX_OPERATION_SERIES,
        "{} series of graphql_operations_total",
        series.len()
    );
    let total: f64 = series.iter().map(|sample| sample.value).sum();
    assert!(total >= REQUESTS as f64, "every operation counted: {total}");
    let values = |label: &str| -> BTreeSet<String> {
        series
            .iter()
            .filter_map(|sample| sample.label(label).map(str::to_owned))
            .collect()
    };
    for (label, max) in [
        ("operation_name", MAX_OPERATION_NAMES),
        ("client_name", MAX_CLIENT_NAMES),
        ("client_version", MAX_CLIENT_VERSIONS),
    ] {
        let values = values(label);
        assert!(values.contains(OTHER), "{label}: no {OTHER}");
        // The kept ones, `""` (none given) and `other`.
        assert!(values.len() <= max + 2, "{label}: {} values", values.len());
    }
}
