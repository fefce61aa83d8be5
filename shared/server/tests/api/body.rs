//! Request bodies: read whole by the front door before the request's
//! deadline starts, bounded by the body limit (413, chunked too) and the
//! body-read timeout (408); on GraphQL routes those errors are GraphQL
//! errors.

use std::time::{Duration, Instant};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::post;
use bff_server::graphql::unreadable_request;
use bff_server::{Config, FrontDoor};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::raw::{self, PROMPTLY, read_response, send};
use crate::helpers::{TestServer, probe_routes, spawn, spawn_front_door, test_config, verifier};

struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> &str {
        "world"
    }

    async fn slow(&self) -> i32 {
        tokio::time::sleep(Duration::from_secs(30)).await;
        1
    }
}

/// `/graphql` as the GraphQL BFFs mount it: async-graphql-axum's extractor,
/// unreadable requests answered by `unreadable_request`.
fn graphql_routes() -> Router {
    let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
    Router::new().route(
        "/graphql",
        post(
            move |request: Result<GraphQLRequest, GraphQLRejection>| async move {
                match request {
                    Ok(request) => {
                        GraphQLResponse::from(schema.execute(request.into_inner()).await)
                            .into_response()
                    }
                    Err(rejection) => unreadable_request(rejection),
                }
            },
        ),
    )
}

async fn spawn_graphql(config: &Config) -> TestServer {
    spawn(
        FrontDoor::new(config, verifier(config))
            .for_graphql()
            .wrap(graphql_routes()),
    )
    .await
}

fn graphql_error(code: &str, message: &str) -> Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

/// The head of a POST with a chunked body (no Content-Length).
fn chunked_post(path: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
}

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

#[tokio::test]
async fn a_chunked_10_mb_graphql_body_is_413_in_the_graphql_shape() {
    let server = spawn_graphql(&test_config()).await;
    let stream = raw::connect(server.addr).await;
    let (mut reader, mut writer) = stream.into_split();
    // Written while the answer is read: the server answers (and stops
    // reading) as soon as the limit is crossed.
    let writing = tokio::spawn(async move {
        let head = chunked_post("/graphql");
        let piece = chunk(&format!(
            r#"{{"query":"{{ hello }}","pad":"{}"}}"#,
            "x".repeat(64 * 1024)
        ));
        writer.write_all(head.as_bytes()).await?;
        for _ in 0..160 {
            writer.write_all(piece.as_bytes()).await?;
        }
        writer.write_all(b"0\r\n\r\n").await
    });
    let mut response = String::new();
    let _ = tokio::time::timeout(
        PROMPTLY,
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut response),
    )
    .await;
    writing.abort();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        graphql_error(
            "PAYLOAD_TOO_LARGE",
            "request body is larger than 1048576 bytes"
        )
    );
}

#[tokio::test]
async fn a_declared_oversized_graphql_body_is_413_in_the_graphql_shape() {
    let config = Config {
        body_limit_bytes: 64,
        ..test_config()
    };
    let server = spawn_graphql(&config).await;
    let response = server
        .client
        .post(server.url("/graphql"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"query":"{{ hello }}","pad":"{}"}}"#,
            "x".repeat(100)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        graphql_error("PAYLOAD_TOO_LARGE", "request body is larger than 64 bytes")
    );
}

#[tokio::test]
async fn a_chunked_graphql_body_within_the_limit_is_served() {
    let server = spawn_graphql(&test_config()).await;
    let mut stream = raw::connect(server.addr).await;
    let request = format!(
        "{}{}{}0\r\n\r\n",
        chunked_post("/graphql"),
        chunk(r#"{"query":"#),
        chunk(r#""{ hello }"}"#)
    );
    send(&mut stream, &request).await;
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.json(), json!({ "data": { "hello": "world" } }));
}

/// A POST that declares `declared` body bytes and sends only `sent`.
async fn stalled_post(server: &TestServer, path: &str, declared: usize, sent: &str) -> TcpStream {
    let mut stream = raw::connect(server.addr).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{sent}"
    );
    send(&mut stream, &head).await;
    stream
}

fn slow_body_config() -> Config {
    Config {
        body_read_timeout_ms: 300,
        ..test_config()
    }
}

#[tokio::test]
async fn a_slow_graphql_body_is_408_in_the_graphql_shape() {
    let server = spawn_graphql(&slow_body_config()).await;
    let mut stream = stalled_post(&server, "/graphql", 100, r#"{"query":"#).await;
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 408, "{}", response.head);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(response.header("x-request-id").is_some());
    assert_eq!(
        response.json(),
        graphql_error(
            "CLIENT_TIMEOUT",
            "request body did not arrive within 300 ms"
        )
    );
}

#[tokio::test]
async fn a_slow_rest_body_is_408_in_the_rest_shape() {
    let server = spawn_front_door(probe_routes(), &slow_body_config()).await;
    let mut stream = stalled_post(&server, "/echo", 100, "abc").await;
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 408, "{}", response.head);
    assert_eq!(
        response.json(),
        json!({ "error": { "code": "CLIENT_TIMEOUT", "message": "request body did not arrive within 300 ms" } })
    );
}

#[tokio::test]
async fn the_request_deadline_starts_once_the_body_is_in() {
    // The body takes about three times the request timeout to arrive; the
    // request is answered all the same.
    let config = Config {
        request_timeout_ms: 300,
        ..test_config()
    };
    let server = spawn_graphql(&config).await;
    let body = r#"{"query":"{ hello }"}"#;
    let mut stream = stalled_post(&server, "/graphql", body.len(), "").await;
    let started = Instant::now();
    for piece in body.as_bytes().chunks(body.len() / 4 + 1) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        stream.write_all(piece).await.unwrap();
    }
    let response = read_response(&mut stream).await;
    assert!(started.elapsed() > Duration::from_millis(300));
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.json(), json!({ "data": { "hello": "world" } }));
}

#[tokio::test]
async fn a_graphql_request_past_its_deadline_is_504_in_the_graphql_shape() {
    let config = Config {
        request_timeout_ms: 200,
        ..test_config()
    };
    let server = spawn_graphql(&config).await;
    let response = server
        .client
        .post(server.url("/graphql"))
        .header("content-type", "application/json")
        .body(r#"{"query":"{ slow }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        graphql_error("REQUEST_TIMEOUT", "request did not complete within 200 ms")
    );
}
