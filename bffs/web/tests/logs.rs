//! The request log: one JSON line per request (the format `prod` logs in)
//! with request id, trace id, operation name, status, duration and
//! downstream calls, and never a token or a variable's value. Its own test
//! binary: it installs the process's tracing subscriber, writing to memory.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bff_server::{Config, Defaults, Profile};
use devstack_services::{Fault, Services, TokenKind, issue_dev_token};
use downstream::DownstreamConfig;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

const SECRET: &str = "web-bff-log-test-secret-0123456789-abcdefghij";

/// Everything the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for Captured {
    type Writer = Captured;

    fn make_writer(&self) -> Captured {
        self.clone()
    }
}

/// The JSON log of this process at `info` (as `BFF_LOG_FORMAT=json`).
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_max_level(LevelFilter::INFO)
            .with_writer(captured.clone())
            .init();
        captured
    })
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The request lines of the request with id `request_id`.
    fn request_lines(&self, request_id: &str) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| {
                line["fields"]["message"] == "request" && line["fields"]["request_id"] == request_id
            })
            .collect()
    }
}

struct App {
    url: String,
    config: Config,
    services: Services,
    server: JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn spawn_app() -> App {
    let services = Services::spawn_ephemeral().await.unwrap();
    let mut config = Config::new(Defaults {
        listen: bff_server::config::loopback(0),
        ..web_bff::DEFAULTS
    });
    config.profile = Profile::Dev;
    config.downstream = DownstreamConfig::with_urls(services.urls());
    config.jwt.secret = Some(SECRET.to_owned());
    config.validate().unwrap();
    let router = web_bff::app(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        bff_server::serve_with_shutdown(listener, router, std::future::pending())
            .await
            .unwrap();
    });
    App {
        url,
        config,
        services,
        server,
    }
}

#[tokio::test]
async fn one_line_per_request_with_its_ids_operation_status_duration_and_calls() {
    let logs = logs();
    let app = spawn_app().await;
    let jwt = &app.config.jwt;
    let token = issue_dev_token(
        SECRET,
        &jwt.issuer,
        &jwt.audience,
        "u1",
        Duration::from_secs(600),
        TokenKind::User,
    );
    // A variable value that appears nowhere else.
    let variable = "zq8secretvariable";
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&token)
        .header("apollo-require-preflight", "true")
        .header("x-request-id", "log-test-graphql")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({
            "query": "query LoggedProduct($id: ID!) { product(id: $id) { id } }",
            "variables": { "id": variable },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["product"], Value::Null, "{body}");

    let lines = logs.request_lines("log-test-graphql");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let fields = &lines[0]["fields"];
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(fields["trace_id"], trace_id);
    assert_eq!(fields["operation_name"], "LoggedProduct");
    assert_eq!(fields["status"], 200);
    assert!(fields["duration_ms"].as_f64().unwrap() > 0.0, "{fields}");
    assert!(
        fields["downstream_calls"].as_u64().unwrap() >= 1,
        "{fields}"
    );

    // A REST route: no operation, no downstream call.
    let health = reqwest::Client::new()
        .get(format!("{}/healthz", app.url))
        .header("x-request-id", "log-test-health")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let lines = logs.request_lines("log-test-health");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let fields = &lines[0]["fields"];
    assert!(fields.get("operation_name").is_none(), "{fields}");
    assert_eq!(fields["downstream_calls"], 0);
    assert_eq!(fields["trace_id"].as_str().unwrap().len(), 32);

    let text = logs.text();
    for secret in [token.as_str(), variable, "Bearer", "authorization"] {
        assert!(!text.contains(secret), "{secret:?} logged:\n{text}");
    }
}

#[tokio::test]
async fn a_refused_request_is_one_line_too() {
    let logs = logs();
    let app = spawn_app().await;
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.url))
        .bearer_auth("not.a.token")
        .header("apollo-require-preflight", "true")
        .header("x-request-id", "log-test-refused")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let lines = logs.request_lines("log-test-refused");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["fields"]["status"], 401);
    assert!(!logs.text().contains("not.a.token"));
}

/// A client that gives up before the answer: the request still gets its
/// line, with status 499, once the server notices.
#[tokio::test]
async fn an_abandoned_request_is_one_line_with_status_499() {
    let logs = logs();
    let app = spawn_app().await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").hang());
    let gave_up = reqwest::Client::new()
        .post(format!("{}/graphql", app.url))
        .header("apollo-require-preflight", "true")
        .header("x-request-id", "log-test-abandoned")
        .json(&json!({ "query": r#"query Abandoned { product(id: "p1") { id } }"# }))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());
    // The server learns of it when it sees the connection close.
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = logs.request_lines("log-test-abandoned");
        if !lines.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["fields"]["status"], 499);
    assert_eq!(lines[0]["fields"]["operation_name"], "Abandoned");
}
