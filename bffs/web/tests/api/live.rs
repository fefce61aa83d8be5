//! Subscriptions end to end: orders moved in devstack (its control route)
//! reach subscribed clients over GraphQL over SSE, Apollo's multipart
//! subscriptions (both read with reqwest here) and graphql-transport-ws
//! (tokio-tungstenite); the `graphql-ws`, `graphql-sse` and Apollo Client
//! libraries themselves run in Node (`tests/live-clients/clients.mjs`,
//! the last test).

use std::time::Duration;

use bff_server::config::Config;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use testkit::live::{MultipartReader, Part, SseReader, move_order};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{TestApp, spawn_app_with};

const UPDATES: &str = "subscription($orderId: ID) { orderUpdates(orderId: $orderId) { eventId orderId status trackingNumber at } }";
const UPDATES_WITH_ORDER: &str =
    "subscription { orderUpdates { eventId orderId status order { id status trackingNumber } } }";

/// Heartbeats every 100 ms: tests read them instead of sleeping.
fn quick(config: &mut Config) {
    config.live.heartbeat_ms = 100;
}

async fn spawn_live() -> TestApp {
    spawn_app_with(quick).await
}

impl TestApp {
    /// A subscription over SSE (POST, the `graphql-sse` client's way).
    async fn sse(&self, query: &str, variables: Value, token: Option<&str>) -> reqwest::Response {
        self.graphql_request(query, variables, token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap()
    }

    async fn sse_as(&self, user: &str, query: &str, variables: Value) -> SseReader {
        let response = self.sse(query, variables, Some(&self.token(user))).await;
        assert_eq!(response.status(), 200);
        SseReader::new(response)
    }

    async fn move_order(&self, order_id: &str, status: &str) {
        move_order(&self.client, &self.services.order.url(), order_id, status).await;
    }

    fn order_gets(&self) -> u64 {
        self.services.order.control.count("GET /orders/{id}")
    }
}

fn update(payload: &Value) -> &Value {
    assert!(payload.get("errors").is_none(), "{payload}");
    &payload["data"]["orderUpdates"]
}

#[tokio::test]
async fn an_order_moved_reaches_its_owner_over_sse_and_no_one_else() {
    let app = spawn_live().await;
    let mut u1 = app.sse_as("u1", UPDATES, json!({})).await;
    let mut u2 = app.sse_as("u2", UPDATES, json!({})).await;
    // Both subscribed (their first heartbeat), then the changes.
    u1.expect_only_heartbeats(1).await;
    u2.expect_only_heartbeats(1).await;
    app.move_order("o14", "paid").await;
    app.move_order("o15", "cancelled").await;
    app.move_order("o14", "shipped").await;

    let (id, first) = u1.next_payload().await;
    let first = update(&first);
    assert_eq!(first["orderId"], "o14");
    assert_eq!(first["status"], "PAID");
    assert_eq!(
        id.as_deref(),
        first["eventId"].as_str(),
        "SSE id: is the eventId"
    );
    let at = first["at"].as_str().unwrap();
    assert!(at.starts_with("20") && at.ends_with("+00:00"), "{first}");
    // u2's order came between: u1 never sees it.
    let (_, second) = u1.next_payload().await;
    assert_eq!(update(&second)["orderId"], "o14");
    assert_eq!(update(&second)["status"], "SHIPPED");

    let (_, theirs) = u2.next_payload().await;
    assert_eq!(update(&theirs)["orderId"], "o15");
    assert_eq!(update(&theirs)["status"], "CANCELLED");
}

#[tokio::test]
async fn order_id_filters_and_another_users_order_yields_nothing() {
    let app = spawn_live().await;
    let mut o13 = app.sse_as("u1", UPDATES, json!({ "orderId": "o13" })).await;
    // u2 asks for u1's order: exactly like an order that never changes.
    let mut snoop = app.sse_as("u2", UPDATES, json!({ "orderId": "o13" })).await;
    o13.expect_only_heartbeats(1).await;
    snoop.expect_only_heartbeats(1).await;
    app.move_order("o12", "delivered").await;
    app.move_order("o13", "shipped").await;
    let (_, update13) = o13.next_payload().await;
    assert_eq!(update(&update13)["orderId"], "o13", "o12 is filtered out");
    // The same event reached the hub for both; the snoop's stream carries
    // heartbeats only.
    snoop.expect_only_heartbeats(3).await;
}

#[tokio::test]
async fn order_is_fetched_once_per_event_when_selected_and_never_otherwise() {
    let app = spawn_live().await;
    let mut bare = app.sse_as("u1", UPDATES, json!({})).await;
    bare.expect_only_heartbeats(1).await;
    let before = app.order_gets();
    app.move_order("o14", "paid").await;
    let (_, payload) = bare.next_payload().await;
    assert_eq!(update(&payload)["status"], "PAID");
    assert_eq!(app.order_gets(), before, "order not selected: no call");
    drop(bare);

    let mut full = app.sse_as("u1", UPDATES_WITH_ORDER, json!({})).await;
    full.expect_only_heartbeats(1).await;
    let before = app.order_gets();
    app.move_order("o14", "shipped").await;
    let (_, payload) = full.next_payload().await;
    // The order as it is after the event, not an older copy.
    assert_eq!(update(&payload)["order"]["status"], "SHIPPED");
    app.move_order("o14", "delivered").await;
    let (_, payload) = full.next_payload().await;
    assert_eq!(update(&payload)["order"]["status"], "DELIVERED");
    assert_eq!(
        app.order_gets(),
        before + 2,
        "one GET /orders/{{id}} per event"
    );
}

#[tokio::test]
async fn sse_resumes_after_last_event_id_without_loss() {
    let app = spawn_live().await;
    let mut first = app.sse_as("u1", UPDATES, json!({})).await;
    first.expect_only_heartbeats(1).await;
    app.move_order("o14", "paid").await;
    let (id, _) = first.next_payload().await;
    let id = id.unwrap();
    drop(first);
    // Missed while disconnected.
    app.move_order("o14", "shipped").await;
    app.move_order("o13", "delivered").await;

    let token = app.token("u1");
    let response = app
        .graphql_request(UPDATES, json!({}), Some(&token))
        .header("accept", "text/event-stream")
        .header("last-event-id", &id)
        .send()
        .await
        .unwrap();
    let mut resumed = SseReader::new(response);
    let (id2, a) = resumed.next_payload().await;
    let (id3, b) = resumed.next_payload().await;
    assert_eq!(
        (update(&a)["orderId"].clone(), update(&a)["status"].clone()),
        (json!("o14"), json!("SHIPPED"))
    );
    assert_eq!(
        (update(&b)["orderId"].clone(), update(&b)["status"].clone()),
        (json!("o13"), json!("DELIVERED"))
    );
    let next = |id: &str| (id.parse::<u64>().unwrap() + 1).to_string();
    assert_eq!(id2.as_deref(), Some(next(&id).as_str()));
    assert_eq!(id3.as_deref(), Some(next(&next(&id)).as_str()));
}

#[tokio::test]
async fn anonymous_and_bad_tokens_are_refused_over_http() {
    let app = spawn_live().await;
    let response = app.sse(UPDATES, json!({}), None).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let response = app.sse(UPDATES, json!({}), Some("not-a-token")).await;
    assert_eq!(response.status(), 401);

    let response = app
        .graphql_request(UPDATES, json!({}), None)
        .header("accept", "multipart/mixed;subscriptionSpec=1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn subscriptions_pass_the_same_limits_and_validation_as_queries() {
    let app = spawn_app_with(|config| {
        quick(config);
        config.graphql.max_depth = 2;
    })
    .await;
    let mut deep = app.sse_as("u1", UPDATES_WITH_ORDER, json!({})).await;
    let event = deep.next_event().await.unwrap();
    assert_eq!(event.event, "next");
    let body = event.json();
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(deep.next_event().await.unwrap().event, "complete");

    let mut unknown = app
        .sse_as("u1", "subscription { orderUpdates { nope } }", json!({}))
        .await;
    let event = unknown.next_event().await.unwrap();
    assert!(
        event.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    assert_eq!(unknown.next_event().await.unwrap().event, "complete");
}

#[tokio::test]
async fn apollo_multipart_subscriptions_stream_parts_and_heartbeats() {
    let app = spawn_live().await;
    let token = app.token("u1");
    for accept in [
        "multipart/mixed;subscriptionSpec=1.0, application/json",
        "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\",application/json",
    ] {
        let response = app
            .graphql_request(UPDATES, json!({ "orderId": "o14" }), Some(&token))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut parts = MultipartReader::new(response);
        assert_eq!(parts.next_part().await, Part::Heartbeat);
        let status = if accept.contains('"') {
            "paid"
        } else {
            "shipped"
        };
        app.move_order("o14", status).await;
        let Part::Json(part) = parts.next_json().await else {
            panic!("no update")
        };
        let update = update(&part["payload"]);
        assert_eq!(update["orderId"], "o14");
        assert_eq!(update["status"], status.to_uppercase());
    }
}

#[tokio::test]
async fn streams_outlive_the_request_timeout() {
    let app = spawn_app_with(|config| {
        quick(config);
        config.request_timeout_ms = 300;
    })
    .await;
    let mut sse = app.sse_as("u1", UPDATES, json!({})).await;
    // 1.5 s of heartbeats: five times the whole-request deadline.
    sse.expect_only_heartbeats(15).await;
    app.move_order("o14", "paid").await;
    let (_, payload) = sse.next_payload().await;
    assert_eq!(update(&payload)["status"], "PAID");
}

#[tokio::test]
async fn token_expiry_ends_the_subscription_with_a_reason() {
    let app = spawn_live().await;
    let token = crate::helpers::token_for(
        &app.config,
        "u1",
        Duration::from_secs(2),
        devstack_services::TokenKind::User,
    );
    let response = app.sse(UPDATES, json!({}), Some(&token)).await;
    let mut sse = SseReader::new(response);
    // While it is open, operators see it.
    let open = app.metrics().await;
    assert!(
        testkit::prometheus::value(&open, "graphql_subscriptions_open", &[]) >= 1.0,
        "{open}"
    );
    let event = sse.next_event().await.unwrap();
    assert_eq!(event.event, "next");
    assert_eq!(
        event.json()["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(sse.next_event().await.unwrap().event, "complete");
    assert!(sse.next_event().await.is_none());
    let metrics = app.metrics().await;
    let ended = testkit::prometheus::value(
        &metrics,
        "graphql_subscriptions_ended_total",
        &[("reason", "token_expired")],
    );
    assert!(ended >= 1.0, "{metrics}");
}

#[tokio::test]
async fn a_slow_reader_is_dropped_with_a_reason() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app_with(|config| {
        quick(config);
        config.live.buffer = 4;
    })
    .await;
    // A client that reads nothing, with a tiny receive window: what the
    // BFF writes piles up in its buffer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut stream = socket.connect(app.addr).await.unwrap();
    let body = json!({ "query": UPDATES_WITH_ORDER }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: bff\r\ncontent-type: application/json\r\naccept: text/event-stream\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n\r\n{body}",
        app.token("u1"),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Wait for the response head before making events.
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // Large events (a 30 KB tracking number, twice in each: the update's
    // and its order's), so that they overflow the kernel's socket buffers
    // too: 300 of them are ~18 MB.
    let order_url = app.services.order.url();
    for i in 0..300 {
        let tracking = format!("{i}-{}", "t".repeat(30_000));
        let response = app
            .client
            .post(format!("{order_url}/__control/orders/o14/status"))
            .json(&json!({ "status": "shipped", "tracking_number": tracking }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // Everything up to the end of the stream (the connection stays open).
    let mut received = Vec::new();
    let ended = |received: &[u8]| {
        let tail = &received[received.len().saturating_sub(64)..];
        String::from_utf8_lossy(tail).contains("event: complete")
    };
    let started = std::time::Instant::now();
    while !ended(&received) {
        // Heartbeats would keep a stream that never ends going.
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no end in time"
        );
        let mut chunk = [0u8; 64 * 1024];
        let n = tokio::time::timeout(testkit::live::PATIENCE, stream.read(&mut chunk))
            .await
            .expect("the stream did not end")
            .unwrap();
        assert!(n > 0, "closed before the end");
        received.extend_from_slice(&chunk[..n]);
        assert!(received.len() < 64 << 20, "no end after 64 MB");
    }
    let text = String::from_utf8_lossy(&received);
    let end = &text[text.len().saturating_sub(1024)..];
    assert!(end.contains("SLOW_CONSUMER"), "no reason at the end: {end}");
    let updates = text.matches("\"orderUpdates\"").count();
    assert!(updates < 300, "all {updates} updates were buffered");
    // Counted for operators (the recorder is process-wide: a lower bound).
    let metrics = app.metrics().await;
    let ended = testkit::prometheus::value(
        &metrics,
        "graphql_subscriptions_ended_total",
        &[("reason", "slow_client")],
    );
    assert!(ended >= 1.0, "{metrics}");
}

#[tokio::test]
async fn streams_complete_cleanly_at_shutdown() {
    let services = devstack_services::Services::spawn_ephemeral()
        .await
        .unwrap();
    let mut config = crate::helpers::test_config(&services);
    quick(&mut config);
    let router = web_bff::app(&config).unwrap();
    let listeners = bff_server::Listeners {
        public: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let addr = listeners.public.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        bff_server::serve_listeners(listeners, router, &config, shutdown)
            .await
            .unwrap();
    });
    let client = reqwest::Client::new();
    let token = crate::helpers::token_for(
        &crate::helpers::test_config(&services),
        "u1",
        Duration::from_secs(600),
        devstack_services::TokenKind::User,
    );
    let sse = client
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": UPDATES }))
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(sse);
    let multipart = client
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(&token)
        .header("accept", "multipart/mixed;subscriptionSpec=1.0")
        .json(&json!({ "query": UPDATES }))
        .send()
        .await
        .unwrap();
    let mut multipart = MultipartReader::new(multipart);
    let (mut ws, _) = ws_connect(addr).await;
    ws_init(&mut ws, Some(&token)).await;
    ws_subscribe(&mut ws, "1", UPDATES).await;
    sse.expect_only_heartbeats(1).await;
    assert_eq!(multipart.next_part().await, Part::Heartbeat);

    stop.send(()).unwrap();
    assert_eq!(sse.next_event().await.unwrap().event, "complete");
    assert!(sse.next_event().await.is_none());
    assert_eq!(multipart.next_json().await, Part::End);
    let (code, _) = ws_close(&mut ws).await;
    assert_eq!(code, CloseCode::Away);
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("the server did not drain")
        .unwrap();
}

// ------------------------------------------------------------ WebSocket

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(addr: std::net::SocketAddr) -> (Ws, Option<String>) {
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|value| value.to_str().unwrap().to_owned());
    (ws, protocol)
}

/// The next protocol message (WebSocket pings and the server's `ping`
/// heartbeats skipped).
async fn ws_next(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(testkit::live::PATIENCE, ws.next())
            .await
            .expect("no message in time")
            .expect("the socket ended")
            .unwrap();
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                if value["type"] == "ping" {
                    ws.send(Message::text(r#"{"type":"pong"}"#)).await.unwrap();
                    continue;
                }
                return value;
            }
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads until the server closes; its code and reason.
async fn ws_close(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        let message = tokio::time::timeout(testkit::live::PATIENCE, ws.next())
            .await
            .expect("no close in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (frame.code, frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => panic!("closed without a code"),
            Some(Ok(_)) => continue,
        }
    }
}

async fn ws_send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

async fn ws_init(ws: &mut Ws, token: Option<&str>) {
    let payload = match token {
        Some(token) => json!({ "authorization": format!("Bearer {token}") }),
        None => json!({}),
    };
    ws_send(ws, json!({ "type": "connection_init", "payload": payload })).await;
    if token.is_some() {
        assert_eq!(ws_next(ws).await["type"], "connection_ack");
    }
}

/// Returns once the server handled every message sent before: it answers
/// in order, and a `subscribe` is handled once the operation listens.
async fn ws_barrier(ws: &mut Ws) {
    ws_send(ws, json!({ "type": "ping" })).await;
    assert_eq!(ws_next(ws).await["type"], "pong");
}

async fn ws_subscribe(ws: &mut Ws, id: &str, query: &str) {
    ws_send(
        ws,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
}

#[tokio::test]
async fn graphql_transport_ws_delivers_the_viewers_updates() {
    let app = spawn_live().await;
    let (mut ws, protocol) = ws_connect(app.addr).await;
    assert_eq!(protocol.as_deref(), Some("graphql-transport-ws"));
    ws_init(&mut ws, Some(&app.token("u1"))).await;
    ws_subscribe(&mut ws, "a", UPDATES).await;
    ws_barrier(&mut ws).await;
    app.move_order("o15", "cancelled").await; // u2's
    app.move_order("o14", "shipped").await;
    let next = ws_next(&mut ws).await;
    assert_eq!(next["type"], "next");
    assert_eq!(next["id"], "a");
    assert_eq!(update(&next["payload"])["orderId"], "o14");
    ws_send(&mut ws, json!({ "id": "a", "type": "complete" })).await;
    ws_barrier(&mut ws).await;
    // Completed by the client: nothing more for it.
    app.move_order("o14", "delivered").await;
    ws_subscribe(&mut ws, "b", UPDATES).await;
    ws_barrier(&mut ws).await;
    app.move_order("o14", "shipped").await;
    let next = ws_next(&mut ws).await;
    assert_eq!((&next["id"], &next["type"]), (&json!("b"), &json!("next")));
}

#[tokio::test]
async fn graphql_transport_ws_closes_with_the_protocols_codes() {
    let app = spawn_live().await;
    // No token, a bad one, a device's: 4403 Forbidden.
    let device = crate::helpers::token_for(
        &app.config,
        "d1",
        Duration::from_secs(600),
        devstack_services::TokenKind::Device,
    );
    for token in [None, Some("bad"), Some(device.as_str())] {
        let (mut ws, _) = ws_connect(app.addr).await;
        let payload = match token {
            Some(token) => json!({ "authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        ws_send(
            &mut ws,
            json!({ "type": "connection_init", "payload": payload }),
        )
        .await;
        assert_eq!(
            ws_close(&mut ws).await.0,
            CloseCode::from(4403),
            "{token:?}"
        );
    }
    // subscribe before connection_ack: 4401 Unauthorized.
    let (mut ws, _) = ws_connect(app.addr).await;
    ws_subscribe(&mut ws, "1", UPDATES).await;
    assert_eq!(ws_close(&mut ws).await.0, CloseCode::from(4401));
    // A second connection_init: 4429.
    let (mut ws, _) = ws_connect(app.addr).await;
    ws_init(&mut ws, Some(&app.token("u1"))).await;
    ws_send(&mut ws, json!({ "type": "connection_init" })).await;
    assert_eq!(ws_close(&mut ws).await.0, CloseCode::from(4429));
    // An id in use: 4409.
    let (mut ws, _) = ws_connect(app.addr).await;
    ws_init(&mut ws, Some(&app.token("u1"))).await;
    ws_subscribe(&mut ws, "1", UPDATES).await;
    ws_subscribe(&mut ws, "1", UPDATES).await;
    assert_eq!(ws_close(&mut ws).await.0, CloseCode::from(4409));
    // Not JSON: 4400.
    let (mut ws, _) = ws_connect(app.addr).await;
    ws.send(Message::text("{")).await.unwrap();
    assert_eq!(ws_close(&mut ws).await.0, CloseCode::from(4400));
}

#[tokio::test]
async fn graphql_transport_ws_caps_subscriptions_per_connection() {
    let app = spawn_app_with(|config| {
        quick(config);
        config.live.max_per_connection = 2;
    })
    .await;
    let (mut ws, _) = ws_connect(app.addr).await;
    ws_init(&mut ws, Some(&app.token("u1"))).await;
    ws_subscribe(&mut ws, "1", UPDATES).await;
    ws_subscribe(&mut ws, "2", UPDATES).await;
    ws_subscribe(&mut ws, "3", UPDATES).await;
    let error = ws_next(&mut ws).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "3");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    // Completing one makes room.
    ws_send(&mut ws, json!({ "id": "1", "type": "complete" })).await;
    ws_subscribe(&mut ws, "4", UPDATES).await;
    ws_barrier(&mut ws).await;
    app.move_order("o14", "paid").await;
    let mut ids = vec![
        ws_next(&mut ws).await["id"].as_str().unwrap().to_owned(),
        ws_next(&mut ws).await["id"].as_str().unwrap().to_owned(),
    ];
    ids.sort();
    assert_eq!(ids, ["2", "4"]);
}

#[tokio::test]
async fn graphql_transport_ws_reports_validation_as_an_error_message() {
    let app = spawn_live().await;
    let (mut ws, _) = ws_connect(app.addr).await;
    ws_init(&mut ws, Some(&app.token("u1"))).await;
    ws_subscribe(&mut ws, "x", "subscription { orderUpdates { nope } }").await;
    let error = ws_next(&mut ws).await;
    assert_eq!(error["type"], "error", "{error}");
    assert!(
        error["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
}

#[tokio::test]
async fn graphql_transport_ws_token_expiry_closes_with_4403() {
    let app = spawn_live().await;
    let token = crate::helpers::token_for(
        &app.config,
        "u1",
        Duration::from_secs(2),
        devstack_services::TokenKind::User,
    );
    let (mut ws, _) = ws_connect(app.addr).await;
    ws_init(&mut ws, Some(&token)).await;
    ws_subscribe(&mut ws, "1", UPDATES).await;
    let (code, reason) = ws_close(&mut ws).await;
    assert_eq!(code, CloseCode::from(4403));
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test]
async fn the_per_process_cap_refuses_further_subscriptions() {
    let app = spawn_app_with(|config| {
        quick(config);
        config.live.max_per_process = 1;
    })
    .await;
    let mut first = app.sse_as("u1", UPDATES, json!({})).await;
    first.expect_only_heartbeats(1).await;
    let second = app.sse(UPDATES, json!({}), Some(&app.token("u2"))).await;
    assert_eq!(second.status(), 429);
    let body: Value = second.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
}

#[tokio::test]
async fn graphql_ws_graphql_sse_and_apollo_client_get_the_viewers_updates() {
    let app = spawn_live().await;
    testkit::live::assert_live_clients_pass(
        app.url("/graphql"),
        app.services.order.url(),
        "web",
        app.token("u1"),
        app.token("u2"),
    )
    .await;
}

#[tokio::test]
async fn graphql_transport_ws_without_the_subprotocol_or_connection_init_is_closed() {
    let app = spawn_app_with(|config| {
        quick(config);
        config.live.init_timeout_ms = 200;
    })
    .await;
    // No `graphql-transport-ws` offered: 4406.
    let request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(ws_close(&mut ws).await.0, CloseCode::from(4406));
    // No connection_init in time: 4408.
    let (mut ws, _) = ws_connect(app.addr).await;
    assert_eq!(ws_close(&mut ws).await.0, CloseCode::from(4408));
}

#[tokio::test]
async fn device_tokens_cannot_subscribe() {
    let app = spawn_live().await;
    let device = crate::helpers::token_for(
        &app.config,
        "d1",
        Duration::from_secs(600),
        devstack_services::TokenKind::Device,
    );
    let response = app.sse(UPDATES, json!({}), Some(&device)).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
}

#[tokio::test]
async fn every_transport_shares_one_upstream_stream() {
    let app = spawn_live().await;
    let _sse_u1 = app.sse_as("u1", UPDATES, json!({})).await;
    let _sse_u2 = app.sse_as("u2", UPDATES, json!({ "orderId": "o15" })).await;
    let multipart = app
        .graphql_request(UPDATES, json!({}), Some(&app.token("u3")))
        .header("accept", "multipart/mixed;subscriptionSpec=1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(multipart.status(), 200);
    let (mut ws, _) = ws_connect(app.addr).await;
    ws_init(&mut ws, Some(&app.token("u1"))).await;
    ws_subscribe(&mut ws, "1", UPDATES).await;
    ws_subscribe(&mut ws, "2", UPDATES_WITH_ORDER).await;
    ws_barrier(&mut ws).await;
    // The hub connects in the background: wait for it, never seeing two.
    let started = std::time::Instant::now();
    loop {
        let state: Value = app
            .client
            .get(format!(
                "{}/__control/order-events",
                app.services.order.url()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let open = state["open_streams"].as_u64().unwrap();
        assert!(open <= 1, "{state}");
        if open == 1 {
            break;
        }
        assert!(started.elapsed() < testkit::live::PATIENCE, "{state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_slow_websocket_reader_gets_an_error_for_its_subscription() {
    let app = spawn_app_with(|config| {
        quick(config);
        config.live.buffer = 4;
    })
    .await;
    // A client that stops reading, with a tiny receive window.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    ws_send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.token("u1")) } }),
    )
    .await;
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"));
    ws_subscribe(&mut ws, "slow", UPDATES_WITH_ORDER).await;
    ws_send(&mut ws, json!({ "type": "ping" })).await;
    loop {
        let message = ws.next().await.unwrap().unwrap();
        if message.to_text().unwrap().contains("pong") {
            break;
        }
    }
    // ~18 MB of updates (30 KB tracking numbers) while nothing is read.
    let order_url = app.services.order.url();
    for i in 0..300 {
        let tracking = format!("{i}-{}", "t".repeat(30_000));
        let response = app
            .client
            .post(format!("{order_url}/__control/orders/o14/status"))
            .json(&json!({ "status": "shipped", "tracking_number": tracking }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let mut updates = 0;
    let error = loop {
        let message = ws_next(&mut ws).await;
        match message["type"].as_str().unwrap() {
            "next" => updates += 1,
            _ => break message,
        }
    };
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "slow");
    assert_eq!(error["payload"][0]["extensions"]["code"], "SLOW_CONSUMER");
    assert!(updates < 300, "all {updates} updates were buffered");
    // The connection itself lives on.
    ws_barrier(&mut ws).await;
}

#[tokio::test]
async fn a_subscription_over_plain_http_is_a_request_error() {
    let app = spawn_live().await;
    let response = app
        .graphql_request(UPDATES, json!({}), Some(&app.token("u1")))
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("ubscription"), "{body}");
    assert!(body.get("data").is_none(), "{body}");
}

/// Each event's run reports by itself, by response path, what it served
/// from a stale copy: here the products of the order, cached before their
/// service failed.
#[tokio::test]
async fn an_event_served_from_stale_products_names_their_paths() {
    let app = spawn_app_with(|config| {
        quick(config);
        config.downstream.cache.ttl_ms = 1;
        config.downstream.cache.stale_ms = 60_000;
    })
    .await;
    let query = "subscription { orderUpdates { eventId order { items { product { id name } } } } }";
    let mut sse = app.sse_as("u1", query, json!({})).await;
    // The first event caches the order's products.
    app.move_order("o14", "shipped").await;
    let fresh = sse.next_event().await.unwrap();
    assert_eq!(fresh.event, "next");
    assert!(fresh.json().get("extensions").is_none(), "{}", fresh.data);
    // Past their TTL, with the product service failing.
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.services
        .product
        .control
        .set_fault(devstack_services::Fault::new("/products").status(503));
    app.move_order("o14", "delivered").await;
    let stale = sse.next_event().await.unwrap().json();
    let items = &update(&stale)["order"]["items"];
    assert_eq!(items.as_array().unwrap().len(), 2, "{stale}");
    assert_eq!(
        stale["extensions"]["stale"],
        json!([
            ["orderUpdates", "order", "items", 0, "product"],
            ["orderUpdates", "order", "items", 1, "product"]
        ]),
        "{stale}"
    );
}
