//! `GET /order-events` and the order service's event control routes.

use std::time::Duration;

use devstack_services::{EVENT_LOG_CAPACITY, Service};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Reply, Stack};

/// Longest wait for anything the services should send at once.
const PATIENCE: Duration = Duration::from_secs(10);

/// One open event stream, read as raw text.
struct EventStream {
    response: reqwest::Response,
    /// Received text not yet returned as a block.
    pending: String,
}

impl EventStream {
    async fn open(stack: &Stack, last_event_id: Option<&str>) -> EventStream {
        // Not the stack's client: its whole-request timeout would end the stream.
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut request = client.get(stack.url(Service::Order, "/order-events"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        EventStream {
            response,
            pending: String::new(),
        }
    }

    /// The next block (the text before a blank line, keep-alives included),
    /// or what ended the stream.
    async fn next_block(&mut self) -> Result<String, String> {
        loop {
            if let Some((block, rest)) = self.pending.split_once("\n\n") {
                let block = block.to_owned();
                self.pending = rest.to_owned();
                return Ok(block);
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("the stream sends something");
            match chunk {
                Ok(Some(bytes)) => self.pending.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(None) => return Err(format!("ended cleanly, {:?} left", self.pending)),
                Err(error) => return Err(format!("failed: {error}")),
            }
        }
    }

    /// How the stream ended (keep-alives before that skipped); events are not
    /// expected.
    async fn end(&mut self) -> String {
        loop {
            match self.next_block().await {
                Ok(block) if block.starts_with(':') => continue,
                Ok(block) => panic!("an event instead of the end: {block:?}"),
                Err(end) => return end,
            }
        }
    }

    /// The next event (keep-alives skipped): its id and data.
    async fn next_event(&mut self) -> (u64, Value) {
        loop {
            let block = self.next_block().await.unwrap();
            if block.starts_with(':') {
                continue;
            }
            let lines: Vec<&str> = block.split('\n').collect();
            assert_eq!(lines.len(), 3, "id, event, data: {block:?}");
            let id = lines[0].strip_prefix("id: ").unwrap().parse().unwrap();
            assert_eq!(lines[1], "event: order");
            let data = serde_json::from_str(lines[2].strip_prefix("data: ").unwrap()).unwrap();
            return (id, data);
        }
    }
}

fn order_body() -> Value {
    json!({
        "user_id": "u1", "items": [{"product_id": "p1", "quantity": 1}],
        "address_id": "a1", "shipping_option_id": "standard", "payment_method_id": "pm1"
    })
}

async fn set_status(stack: &Stack, order_id: &str, body: Value) -> Reply {
    let path = format!("/__control/orders/{order_id}/status");
    stack.post(Service::Order, &path, &body).await
}

async fn set_keep_alive(stack: &Stack, ms: u64) {
    let request = stack
        .request(Service::Order, Method::PUT, "/__control/order-events")
        .json(&json!({ "keep_alive_ms": ms }));
    assert_eq!(stack.send(request).await.status, StatusCode::NO_CONTENT);
}

async fn events_state(stack: &Stack) -> Value {
    stack
        .get_ok(Service::Order, "/__control/order-events")
        .await
}

#[tokio::test]
async fn placing_and_changing_an_order_publish_exact_events() {
    let stack = Stack::new().await;
    // No keep-alive between the events on a slow machine: the bytes are exact.
    set_keep_alive(&stack, 3_600_000).await;
    let mut stream = EventStream::open(&stack, None).await;

    let placed = stack.place_order(Some("events-1"), &order_body()).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let order = placed.json();
    let (order_id, created_at) = (
        order["id"].as_str().unwrap(),
        order["created_at"].as_str().unwrap(),
    );
    assert_eq!(
        stream.next_block().await.unwrap(),
        format!(
            "id: 1\nevent: order\ndata: {{\"event_type\":\"order.placed\",\"order_id\":\"{order_id}\",\
             \"user_id\":\"u1\",\"status\":\"placed\",\"tracking_number\":null,\"at\":\"{created_at}\"}}"
        )
    );

    // An idempotent replay creates nothing and publishes nothing.
    let replay = stack.place_order(Some("events-1"), &order_body()).await;
    assert_eq!(replay.json()["id"], order["id"]);

    let changed = set_status(
        &stack,
        order_id,
        json!({"status": "shipped", "tracking_number": "1Z999AA10123456784"}),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json()["status"], "shipped");
    let fetched = stack
        .get_ok(Service::Order, &format!("/orders/{order_id}"))
        .await;
    assert_eq!(fetched["status"], "shipped");
    assert_eq!(fetched["tracking_number"], "1Z999AA10123456784");

    let (id, data) = stream.next_event().await;
    assert_eq!(id, 2, "the replay published nothing");
    let at = data["at"].as_str().unwrap().to_owned();
    chrono::DateTime::parse_from_rfc3339(&at).unwrap();
    assert_eq!(
        data,
        json!({
            "event_type": "order.status_changed", "order_id": order_id, "user_id": "u1",
            "status": "shipped", "tracking_number": "1Z999AA10123456784", "at": at
        })
    );

    // Tracking number left out: kept. The same again: no change, no event.
    set_status(&stack, order_id, json!({"status": "delivered"})).await;
    set_status(&stack, order_id, json!({"status": "delivered"})).await;
    // null clears it.
    set_status(
        &stack,
        order_id,
        json!({"status": "delivered", "tracking_number": null}),
    )
    .await;
    let (id, data) = stream.next_event().await;
    assert_eq!(
        (id, &data["status"], &data["tracking_number"]),
        (3, &json!("delivered"), &json!("1Z999AA10123456784"))
    );
    let (id, data) = stream.next_event().await;
    assert_eq!(
        (id, &data["status"], &data["tracking_number"]),
        (4, &json!("delivered"), &Value::Null)
    );

    // Seed orders publish too, under their owner.
    set_status(&stack, "o11", json!({"status": "cancelled"})).await;
    let (id, data) = stream.next_event().await;
    assert_eq!((id, &data["order_id"]), (5, &json!("o11")));
    let owner = stack.get_ok(Service::Order, "/orders/o11").await["user_id"].clone();
    assert_eq!(data["user_id"], owner);

    let state = events_state(&stack).await;
    assert_eq!(state["last_event_id"], 5);
    assert_eq!(state["oldest_event_id"], 1);
    assert_eq!(state["open_streams"], 1);
}

#[tokio::test]
async fn a_stream_without_last_event_id_starts_with_the_next_event() {
    let stack = Stack::new().await;
    set_status(&stack, "o11", json!({"status": "paid"})).await;
    let mut stream = EventStream::open(&stack, None).await;
    set_status(&stack, "o11", json!({"status": "shipped"})).await;
    let (id, data) = stream.next_event().await;
    assert_eq!((id, &data["status"]), (2, &json!("shipped")));
}

#[tokio::test]
async fn last_event_id_resumes_right_after_it_and_is_recorded() {
    let stack = Stack::new().await;
    for status in ["paid", "shipped", "delivered"] {
        set_status(&stack, "o11", json!({"status": status})).await;
    }
    let mut stream = EventStream::open(&stack, Some("1")).await;
    assert_eq!(stream.next_event().await.0, 2);
    assert_eq!(stream.next_event().await.0, 3);
    // Then live, with nothing repeated.
    set_status(&stack, "o11", json!({"status": "cancelled"})).await;
    let (id, data) = stream.next_event().await;
    assert_eq!((id, &data["status"]), (4, &json!("cancelled")));

    // The newest id: nothing to replay, live from there.
    let mut caught_up = EventStream::open(&stack, Some("4")).await;
    set_status(&stack, "o12", json!({"status": "cancelled"})).await;
    assert_eq!(caught_up.next_event().await.0, 5);
    assert_eq!(stream.next_event().await.0, 5);

    let control = &stack.services.order.control;
    assert_eq!(control.count("GET /order-events"), 2);
    let streams: Vec<_> = control
        .requests()
        .into_iter()
        .filter(|r| r.route == "GET /order-events")
        .map(|r| r.last_event_id)
        .collect();
    assert_eq!(streams, vec![Some("1".to_owned()), Some("4".to_owned())]);
    assert_eq!(
        control.count("POST /__control/orders/{id}/status"),
        0,
        "control routes are not counted"
    );
}

#[tokio::test]
async fn last_event_id_older_than_the_log_starts_from_the_oldest_kept() {
    let stack = Stack::new().await;
    let published = EVENT_LOG_CAPACITY + 2;
    for n in 0..published {
        let status = if n % 2 == 0 { "paid" } else { "placed" };
        let reply = set_status(&stack, "o11", json!({"status": status})).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let state = events_state(&stack).await;
    assert_eq!(state["last_event_id"], published);
    assert_eq!(state["oldest_event_id"], 3);

    let mut stream = EventStream::open(&stack, Some("1")).await;
    assert_eq!(stream.next_event().await.0, 3);
    assert_eq!(stream.next_event().await.0, 4);
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_400() {
    let stack = Stack::new().await;
    for bad in [
        "abc",
        "-1",
        "+1",
        "1.5",
        "",
        "1 2",
        "99999999999999999999999",
    ] {
        let request = stack
            .request(Service::Order, Method::GET, "/order-events")
            .header("Last-Event-ID", bad);
        let reply = stack.send(request).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(reply.error(), "Last-Event-ID must be a decimal event id");
    }
}

#[tokio::test]
async fn status_control_route_rejects_bad_input() {
    let stack = Stack::new().await;
    let reply = set_status(&stack, "o999", json!({"status": "shipped"})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "order o999 not found");
    for body in [
        json!({"status": "lost"}),
        json!({"tracking_number": "1Z"}),
        json!({"status": "shipped", "tracking_number": 7}),
        json!({"status": "shipped", "carrier": "ups"}),
    ] {
        let reply = set_status(&stack, "o11", body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.error().starts_with("invalid body"), "{}", reply.text);
    }
    // Nothing changed, nothing was published.
    assert_eq!(
        stack.get_ok(Service::Order, "/orders/o11").await["status"],
        "shipped"
    );
    assert_eq!(events_state(&stack).await["last_event_id"], Value::Null);

    let reply = stack
        .send(
            stack
                .request(Service::Order, Method::PUT, "/__control/order-events")
                .json(&json!({"keep_alive_ms": 0})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // The event control routes are the order service's alone.
    let reply = stack.get(Service::Product, "/__control/order-events").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn keep_alives_are_comment_lines_at_the_configured_interval() {
    let stack = Stack::new().await;
    assert_eq!(events_state(&stack).await["keep_alive_ms"], 5000);
    set_keep_alive(&stack, 20).await;
    assert_eq!(events_state(&stack).await["keep_alive_ms"], 20);

    let mut stream = EventStream::open(&stack, None).await;
    assert_eq!(stream.next_block().await.unwrap(), ":");
    assert_eq!(stream.next_block().await.unwrap(), ":");
    set_status(&stack, "o11", json!({"status": "paid"})).await;
    assert_eq!(stream.next_event().await.0, 1);
}

#[tokio::test]
async fn drop_cuts_every_open_stream_and_resuming_loses_nothing() {
    let stack = Stack::new().await;
    let mut first = EventStream::open(&stack, None).await;
    let mut second = EventStream::open(&stack, None).await;
    assert_eq!(events_state(&stack).await["open_streams"], 2);
    set_status(&stack, "o11", json!({"status": "paid"})).await;
    assert_eq!(first.next_event().await.0, 1);
    assert_eq!(second.next_event().await.0, 1);

    let reply = stack
        .post(Service::Order, "/__control/order-events/drop", &json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"dropped": 2}));
    // An event published after the cut reaches neither.
    set_status(&stack, "o11", json!({"status": "shipped"})).await;

    // Cut, not ended: the clients see a failure.
    for stream in [&mut first, &mut second] {
        let ended = stream.end().await;
        assert!(ended.starts_with("failed"), "{ended}");
    }

    let mut resumed = EventStream::open(&stack, Some("1")).await;
    let (id, data) = resumed.next_event().await;
    assert_eq!((id, &data["status"]), (2, &json!("shipped")));
    assert_eq!(stack.services.order.control.count("GET /order-events"), 3);
}
