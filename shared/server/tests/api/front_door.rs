use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bff_server::{Config, FrontDoor};
use downstream::{DownstreamConfig, Service};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use url::Url;

use crate::helpers::{probe_routes, spawn, spawn_front_door, test_config, verifier};

#[tokio::test]
async fn healthz_is_ok() {
    let server = spawn_front_door(Router::new(), &test_config()).await;
    let response = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "status": "ok" })
    );
}

/// A listener per service that accepts connections (and never answers).
async fn reachable_services() -> (Vec<TcpListener>, Vec<Url>) {
    let mut listeners = Vec::new();
    let mut urls = Vec::new();
    for _ in Service::ALL {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(
            format!("http://{}", listener.local_addr().unwrap())
                .parse()
                .unwrap(),
        );
        listeners.push(listener);
    }
    (listeners, urls)
}

/// A loopback port nothing listens on.
async fn closed_port_url() -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}").parse().unwrap()
}

fn config_with(urls: Vec<Url>) -> Config {
    let urls: [Url; 5] = urls.try_into().unwrap();
    Config {
        downstream: DownstreamConfig::with_urls(urls),
        ..test_config()
    }
}

#[tokio::test]
async fn readyz_is_ready_when_every_service_accepts_connections() {
    let (_listeners, urls) = reachable_services().await;
    let server = spawn_front_door(Router::new(), &config_with(urls)).await;
    let response = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "status": "ready" })
    );
}

#[tokio::test]
async fn readyz_names_the_unreachable_services_only() {
    let (_listeners, mut urls) = reachable_services().await;
    urls[2] = closed_port_url().await; // order
    urls[4] = closed_port_url().await; // device
    let server = spawn_front_door(Router::new(), &config_with(urls)).await;
    let response = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("127.0.0.1"),
        "no addresses in the body: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({ "status": "unavailable", "unreachable": ["order", "device"] })
    );
}

#[tokio::test]
async fn readyz_checks_only_the_chosen_services() {
    let (_listeners, mut urls) = reachable_services().await;
    urls[0] = closed_port_url().await; // user: not needed by this BFF
    let config = Config {
        services: &[Service::Device],
        ..config_with(urls)
    };
    let router = FrontDoor::new(&config, verifier(&config)).wrap(Router::new());
    let server = spawn(router).await;
    let response = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_answers_quickly_when_a_host_does_not() {
    let (_listeners, mut urls) = reachable_services().await;
    // TEST-NET-1 (RFC 5737): nothing answers there, so a connect either
    // fails at once or hangs until our connect timeout.
    urls[1] = "http://192.0.2.1:7102".parse().unwrap();
    let server = spawn_front_door(Router::new(), &config_with(urls)).await;
    let started = Instant::now();
    let response = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["unreachable"], json!(["product"]));
}

fn small_body_config() -> Config {
    Config {
        body_limit_bytes: 16,
        ..test_config()
    }
}

#[tokio::test]
async fn bodies_within_the_limit_pass() {
    let server = spawn_front_door(probe_routes(), &small_body_config()).await;
    let response = server
        .client
        .post(server.url("/echo"))
        .body("x".repeat(16))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "16");
}

#[tokio::test]
async fn a_declared_oversized_body_is_413() {
    let server = spawn_front_door(probe_routes(), &small_body_config()).await;
    let response = server
        .client
        .post(server.url("/echo"))
        .body("x".repeat(17))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_chunked_oversized_body_is_413_too() {
    let server = spawn_front_door(probe_routes(), &small_body_config()).await;
    let addr = server.addr;
    // reqwest cannot stream a body without its `stream` feature: speak
    // HTTP/1.1 by hand so no Content-Length is sent.
    let response = tokio::task::spawn_blocking(move || raw_chunked_post(addr, "/echo", 40))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("PAYLOAD_TOO_LARGE"), "{response}");
}

fn raw_chunked_post(addr: SocketAddr, path: &str, body_len: usize) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let chunk = "y".repeat(body_len);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    // The server may close before reading all we sent; what arrived is enough.
    let _ = stream.read_to_string(&mut response);
    response
}

#[tokio::test]
async fn a_slow_request_gets_504_quickly() {
    let config = Config {
        request_timeout_ms: 200,
        ..test_config()
    };
    let server = spawn_front_door(probe_routes(), &config).await;
    let started = Instant::now();
    let response = server
        .client
        .get(server.url("/sleep"))
        .header("x-request-id", "slow-1")
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 504);
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(response.headers()["x-request-id"], "slow-1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": { "code": "REQUEST_TIMEOUT", "message": "request did not complete within 200 ms" } })
    );
}

#[tokio::test]
async fn the_error_body_shape_can_be_replaced() {
    let config = Config {
        request_timeout_ms: 100,
        ..test_config()
    };
    let router = FrontDoor::new(&config, verifier(&config))
        .with_error_body(|code, _message| json!({ "e": code.as_str() }))
        .wrap(probe_routes());
    let server = spawn(router).await;
    let response = server
        .client
        .get(server.url("/sleep"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "e": "REQUEST_TIMEOUT" })
    );
}

#[tokio::test]
async fn handlers_see_the_client_address() {
    let server = spawn_front_door(probe_routes(), &test_config()).await;
    let response = server.client.get(server.url("/peer")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "127.0.0.1");
}

#[tokio::test]
async fn routes_of_the_bff_are_served_behind_the_front_door() {
    let routes = Router::new().route("/v1/ping", get(|| async { "pong" }));
    let server = spawn_front_door(routes, &test_config()).await;
    let response = server
        .client
        .get(server.url("/v1/ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.text().await.unwrap(), "pong");
}

/// Collects log output in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_is_logged_with_id_status_and_latency() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread test runtime runs the server's tasks on this thread,
    // so a thread-local subscriber sees them without touching the global one.
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = spawn_front_door(probe_routes(), &test_config()).await;
    let response = server
        .client
        .get(server.url("/whoami?email=someone@example.com"))
        .header("x-request-id", "logged-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The log line may land just after the client has the response.
    let logged = |text: &str| {
        text.lines()
            .find(|line| line.contains(r#"request_id="logged-1""#))
            .map(str::to_owned)
    };
    let mut text = String::new();
    for _ in 0..200 {
        text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        if logged(&text).is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let line = logged(&text).unwrap_or_else(|| panic!("no request log line in:\n{text}"));
    for expected in [
        "method=GET",
        "path=/whoami",
        "status=200",
        "duration_ms=",
        "downstream_calls=0",
    ] {
        assert!(line.contains(expected), "{expected} missing from {line}");
    }
    let lines = text
        .lines()
        .filter(|line| line.contains("logged-1"))
        .count();
    assert_eq!(lines, 1, "one line per request:\n{text}");
    assert!(
        !text.contains("someone@example.com"),
        "query strings stay out of logs"
    );
}

#[tokio::test]
async fn a_panicking_handler_is_a_masked_500_with_the_request_id() {
    let routes = Router::new().route(
        "/panic",
        get(|| async {
            if std::hint::black_box(true) {
                panic!("secret internal detail at db.internal:5432");
            }
            "unreachable"
        }),
    );
    let server = spawn_front_door(routes, &test_config()).await;
    let response = server
        .client
        .get(server.url("/panic"))
        .header("x-request-id", "req-panic")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-request-id"], "req-panic");
    let body = response.text().await.unwrap();
    assert!(body.contains("INTERNAL_SERVER_ERROR"), "{body}");
    assert!(
        !body.contains("secret") && !body.contains("db.internal"),
        "{body}"
    );
    // The server lives on.
    let response = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
