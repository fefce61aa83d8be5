//! Per-client rate limiting in the front door: token buckets per subject or
//! client IP, exhaustion and refill, 429 with `Retry-After`.

use std::time::Duration;

use bff_server::{Config, FrontDoor};
use serde_json::Value;

use crate::helpers::{
    TestServer, probe_routes, spawn, spawn_front_door, test_config, token, user_claims, verifier,
};

fn limited(rps: u32, burst: u32) -> Config {
    let mut config = test_config();
    config.rate_limit.rps = rps;
    config.rate_limit.burst = burst;
    config
}

async fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = server.client.get(server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn statuses(server: &TestServer, n: usize, headers: &[(&str, &str)]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(get(server, "/whoami", headers).await.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn off_by_default() {
    let server = spawn_front_door(probe_routes(), &test_config()).await;
    assert!(statuses(&server, 50, &[]).await.iter().all(|s| *s == 200));
}

#[tokio::test]
async fn a_burst_exhausts_the_bucket_then_429_with_retry_after() {
    let server = spawn_front_door(probe_routes(), &limited(1, 3)).await;
    assert_eq!(statuses(&server, 3, &[]).await, [200, 200, 200]);
    let response = get(&server, "/whoami", &[]).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    // Health checks are never limited.
    assert_eq!(get(&server, "/healthz", &[]).await.status(), 200);
}

#[tokio::test]
async fn the_bucket_refills_at_the_configured_rate() {
    // 5 per second: one token every 200 ms.
    let server = spawn_front_door(probe_routes(), &limited(5, 2)).await;
    assert_eq!(statuses(&server, 3, &[]).await, [200, 200, 429]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(statuses(&server, 2, &[]).await, [200, 429]);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(statuses(&server, 3, &[]).await, [200, 200, 429]);
}

#[tokio::test]
async fn signed_in_clients_have_their_own_buckets() {
    let server = spawn_front_door(probe_routes(), &limited(1, 1)).await;
    let alice = format!("Bearer {}", token(&user_claims("alice")));
    let bob = format!("Bearer {}", token(&user_claims("bob")));
    // Same IP, three clients: anonymous (by IP), alice and bob (by subject).
    assert_eq!(statuses(&server, 2, &[]).await, [200, 429]);
    assert_eq!(
        statuses(&server, 2, &[("authorization", &alice)]).await,
        [200, 429]
    );
    assert_eq!(
        statuses(&server, 2, &[("authorization", &bob)]).await,
        [200, 429]
    );
}

#[tokio::test]
async fn a_trusted_proxy_header_names_the_client() {
    let mut config = limited(1, 1);
    config.rate_limit.client_ip_header = Some("X-Forwarded-For".into());
    config.validate().unwrap();
    let server = spawn_front_door(probe_routes(), &config).await;
    let xff = |value: &'static str| [("x-forwarded-for", value)];
    assert_eq!(statuses(&server, 1, &xff("10.0.0.1")).await, [200]);
    assert_eq!(statuses(&server, 1, &xff("10.0.0.2")).await, [200]);
    // The right-most entry is the one the proxy wrote; the rest is the
    // client's to forge.
    assert_eq!(statuses(&server, 1, &xff("6.6.6.6, 10.0.0.1")).await, [429]);
    assert_eq!(statuses(&server, 1, &xff("10.0.0.3:5000")).await, [200]);

    config.rate_limit.client_ip_header = Some("not a header".into());
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("rate_limit.client_ip_header"), "{error}");
}

#[tokio::test]
async fn graphql_front_doors_answer_with_a_graphql_error() {
    let config = limited(1, 1);
    let router = FrontDoor::new(&config, verifier(&config))
        .for_graphql()
        .wrap(probe_routes());
    let server = spawn(router).await;
    assert_eq!(statuses(&server, 1, &[]).await, [200]);
    let response = get(&server, "/whoami", &[]).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(error["extensions"]["retryAfterSecs"], 1);
    assert_eq!(error["message"], "too many requests: retry in 1 s");
}

#[test]
fn env_configures_the_limit() {
    let config = crate::helpers::load_dev(&[
        ("BFF_JWT_SECRET", crate::helpers::SECRET),
        ("BFF_RATE_LIMIT_RPS", "5"),
        ("BFF_RATE_LIMIT_BURST", "10"),
        ("BFF_RATE_LIMIT_CLIENT_IP_HEADER", "X-Real-IP"),
    ])
    .unwrap();
    assert!(config.rate_limit.is_enabled());
    assert_eq!(
        config.rate_limit.client_ip_header.as_deref(),
        Some("x-real-ip")
    );
}
