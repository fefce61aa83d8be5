//! Connection hygiene over real sockets: header-read and keep-alive
//! timeouts, the cap on open connections, `Host` on HTTP/1.1, shutdown with
//! idle connections open.

use std::time::Duration;

use axum::Router;
use bff_server::{ConnectionConfig, FrontDoor};
use tokio::net::TcpStream;

use crate::helpers::raw::{self, PROMPTLY, closed_within, read_response, send};
use crate::helpers::{
    TestServer, metric, probe_routes, spawn_with_connections, test_config, verifier,
};

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(60);

fn millis(duration: Duration) -> u64 {
    duration.as_millis().try_into().unwrap()
}

/// The probe routes behind the front door (which adds `/healthz`).
fn routes() -> Router {
    let config = test_config();
    FrontDoor::new(&config, verifier(&config)).wrap(probe_routes())
}

async fn spawn_with(header_read: Duration, keep_alive: Duration) -> TestServer {
    spawn_with_connections(
        routes(),
        ConnectionConfig {
            header_read_timeout_ms: millis(header_read),
            keep_alive_timeout_ms: millis(keep_alive),
            ..ConnectionConfig::default()
        },
    )
    .await
}

/// A kept-alive connection that has been answered once.
async fn answered_once(server: &TestServer) -> TcpStream {
    let mut stream = raw::connect(server.addr).await;
    send(&mut stream, &raw::get("/healthz")).await;
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 200, "{}", response.head);
    stream
}

const HEADER_READ_TIMEOUTS: &str = r#"http_connections_timed_out_total{timeout="header_read"}"#;
const KEEP_ALIVE_TIMEOUTS: &str = r#"http_connections_timed_out_total{timeout="keep_alive"}"#;

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    // The long keep-alive timeout must not apply to a new connection.
    let server = spawn_with(SHORT, LONG).await;
    let before = metric(HEADER_READ_TIMEOUTS).await;
    let mut stream = raw::connect(server.addr).await;
    assert!(closed_within(&mut stream, PROMPTLY).await);
    assert!(metric(HEADER_READ_TIMEOUTS).await > before);
}

#[tokio::test]
async fn a_head_stalled_halfway_is_closed() {
    let server = spawn_with(SHORT, LONG).await;
    let mut stream = raw::connect(server.addr).await;
    send(&mut stream, "GET /healthz HTTP/1.1\r\nHost: te").await;
    assert!(closed_within(&mut stream, PROMPTLY).await);
}

#[tokio::test]
async fn a_head_trickled_byte_by_byte_is_closed_all_the_same() {
    let server = spawn_with(SHORT, LONG).await;
    let mut stream = raw::connect(server.addr).await;
    let trickle = async {
        for byte in "GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".chars()
        {
            // Err: the server closed, which is the point.
            if tokio::io::AsyncWriteExt::write_all(&mut stream, &[byte as u8])
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::future::pending::<()>().await;
    };
    // Each byte is well within the timeout; the head as a whole is not.
    assert!(tokio::time::timeout(PROMPTLY, trickle).await.is_ok());
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let server = spawn_with(LONG, SHORT).await;
    let before = metric(KEEP_ALIVE_TIMEOUTS).await;
    let mut stream = answered_once(&server).await;
    assert!(closed_within(&mut stream, PROMPTLY).await);
    assert!(metric(KEEP_ALIVE_TIMEOUTS).await > before);
}

#[tokio::test]
async fn keep_alive_outlasts_the_header_read_timeout_until_a_head_starts() {
    let header_read = Duration::from_millis(200);
    let server = spawn_with(header_read, LONG).await;
    let mut stream = answered_once(&server).await;
    // Idle for several header-read timeouts: still open, and serving.
    assert!(!closed_within(&mut stream, header_read * 5).await);
    send(&mut stream, &raw::get("/healthz")).await;
    assert_eq!(read_response(&mut stream).await.status, 200);
    // A head begun and left unfinished gets only the header-read timeout.
    send(&mut stream, "GET /healthz HTTP/1.1\r\n").await;
    assert!(closed_within(&mut stream, PROMPTLY).await);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_counted() {
    let server = spawn_with_connections(
        routes(),
        ConnectionConfig {
            max_open: 2,
            ..ConnectionConfig::default()
        },
    )
    .await;
    let refused_before = metric("http_connections_refused_total").await;
    let first = answered_once(&server).await;
    let _second = answered_once(&server).await;

    let mut third = raw::connect(server.addr).await;
    // Err: reset by the server, also a refusal.
    let _ = tokio::io::AsyncWriteExt::write_all(&mut third, raw::get("/healthz").as_bytes()).await;
    assert!(closed_within(&mut third, PROMPTLY).await);
    assert!(metric("http_connections_refused_total").await > refused_before);
    assert!(metric("http_connections_open").await >= 2.0);

    // A closed connection frees its place.
    drop(first);
    let served_again = async {
        loop {
            let mut stream = raw::connect(server.addr).await;
            send(&mut stream, &raw::get("/healthz")).await;
            let mut buf = [0u8; 12];
            if tokio::io::AsyncReadExt::read_exact(&mut stream, &mut buf)
                .await
                .is_ok()
            {
                assert_eq!(&buf, b"HTTP/1.1 200");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PROMPTLY, served_again).await.unwrap();
}

#[tokio::test]
async fn http_1_1_without_host_is_400() {
    let server = spawn_with_connections(routes(), ConnectionConfig::default()).await;
    let mut stream = raw::connect(server.addr).await;
    send(&mut stream, "GET /healthz HTTP/1.1\r\n\r\n").await;
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 400, "{}", response.head);
    assert_eq!(response.json()["error"]["code"], "BAD_USER_INPUT");
    assert!(response.body.contains("Host"), "{}", response.body);
}

#[tokio::test]
async fn http_1_0_without_host_is_served() {
    let server = spawn_with_connections(routes(), ConnectionConfig::default()).await;
    let mut stream = raw::connect(server.addr).await;
    send(&mut stream, "GET /healthz HTTP/1.0\r\n\r\n").await;
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.json()["status"], "ok");
}

#[tokio::test]
async fn two_host_headers_or_a_bad_one_are_400() {
    let server = spawn_with_connections(routes(), ConnectionConfig::default()).await;
    for head in [
        "GET /healthz HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        "GET /healthz HTTP/1.0\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n",
    ] {
        let mut stream = raw::connect(server.addr).await;
        send(&mut stream, head).await;
        let response = read_response(&mut stream).await;
        assert_eq!(response.status, 400, "{head:?}: {}", response.head);
    }
    // An empty Host is allowed (a target without an authority).
    let mut stream = raw::connect(server.addr).await;
    send(&mut stream, "GET /healthz HTTP/1.1\r\nHost:\r\n\r\n").await;
    assert_eq!(read_response(&mut stream).await.status, 200);
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    // Idle connections must not hold the drain up until its deadline (25 s).
    let mut server = spawn_with(LONG, LONG).await;
    let mut idle = answered_once(&server).await;
    server.signal_shutdown();
    assert!(closed_within(&mut idle, PROMPTLY).await);
    tokio::time::timeout(PROMPTLY, server.stop())
        .await
        .expect("stopped promptly")
        .unwrap();
}

/// Upgrades to a protocol that echoes 5 bytes (as WebSocket would carry
/// GraphQL subscriptions).
async fn upgrade_to_echo(mut request: axum::extract::Request) -> axum::response::Response {
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let mut buf = [0u8; 5];
        if tokio::io::AsyncReadExt::read_exact(&mut io, &mut buf)
            .await
            .is_ok()
        {
            let _ = tokio::io::AsyncWriteExt::write_all(&mut io, &buf).await;
        }
    });
    axum::response::Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(axum::body::Body::empty())
        .unwrap()
}

#[tokio::test]
async fn upgraded_connections_work_and_still_count_against_the_cap() {
    let server = spawn_with_connections(
        Router::new().route("/echo", axum::routing::get(upgrade_to_echo)),
        ConnectionConfig {
            max_open: 1,
            ..ConnectionConfig::default()
        },
    )
    .await;
    let mut upgraded = raw::connect(server.addr).await;
    send(
        &mut upgraded,
        "GET /echo HTTP/1.1\r\nHost: test\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await;
    assert_eq!(read_response(&mut upgraded).await.status, 101);

    // The upgraded socket still holds the only place.
    let mut other = raw::connect(server.addr).await;
    assert!(closed_within(&mut other, PROMPTLY).await);

    send(&mut upgraded, "hello").await;
    let mut echoed = [0u8; 5];
    tokio::time::timeout(
        PROMPTLY,
        tokio::io::AsyncReadExt::read_exact(&mut upgraded, &mut echoed),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&echoed, b"hello");
}
