//! The order event hub against devstack's `GET /order-events`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use devstack_services::{Fault, Services};
use downstream::events::{
    OrderEventEntry, OrderEventStream, OrderEvents, OrderEventsSettings, SubscriptionError,
};
use downstream::models::{EventId, OrderEventType, OrderStatus};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use crate::Harness;

/// Longest wait for anything that should happen at once.
const PATIENCE: Duration = Duration::from_secs(10);

/// The route key devstack counts the stream under.
const ROUTE: &str = "GET /order-events";

/// Quick reconnects, for the tests that drop the stream.
fn quick(adjust: impl FnOnce(&mut OrderEventsSettings)) -> OrderEventsSettings {
    let mut settings = OrderEventsSettings {
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        ..OrderEventsSettings::default()
    };
    adjust(&mut settings);
    settings
}

fn hub(services: &Services, settings: OrderEventsSettings) -> OrderEvents {
    let http = downstream::http::build_http_client().unwrap();
    OrderEvents::new(&services.urls()[2], http, settings)
}

/// Talks to devstack's control routes.
struct Control {
    client: reqwest::Client,
    order_url: String,
}

impl Control {
    fn new(services: &Services) -> Self {
        Self {
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            order_url: services.order.url(),
        }
    }

    /// Moves `order_id` to `status` (it must be a change: that publishes one event).
    async fn set_status(&self, order_id: &str, status: &str) {
        let response = self
            .client
            .post(format!(
                "{}/__control/orders/{order_id}/status",
                self.order_url
            ))
            .json(&json!({ "status": status }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{order_id} → {status}");
    }

    async fn state(&self) -> Value {
        self.client
            .get(format!("{}/__control/order-events", self.order_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the service has `n` streams open (the hub's connection is
    /// live: every event from now on reaches it).
    async fn wait_for_streams(&self, n: u64) {
        tokio::time::timeout(PATIENCE, async {
            while self.state().await["open_streams"] != n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} open streams"));
    }

    /// Keep-alive interval of streams opened from now on.
    async fn set_keep_alive(&self, ms: u64) {
        let response = self
            .client
            .put(format!("{}/__control/order-events", self.order_url))
            .json(&json!({ "keep_alive_ms": ms }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    async fn drop_streams(&self) -> Value {
        self.client
            .post(format!("{}/__control/order-events/drop", self.order_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn next(stream: &mut OrderEventStream) -> Arc<OrderEventEntry> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("an event")
        .expect("the stream goes on")
        .expect("not an error")
}

/// (order id, status) of the next `n` events, checking their ids increase.
async fn take(stream: &mut OrderEventStream, n: usize) -> Vec<(String, OrderStatus)> {
    let mut last = None;
    let mut seen = Vec::new();
    for _ in 0..n {
        let entry = next(stream).await;
        assert!(last < Some(entry.id), "{last:?} then {:?}", entry.id);
        last = Some(entry.id);
        seen.push((entry.event.order_id.to_string(), entry.event.status));
    }
    seen
}

/// Nothing more is ready on `stream` right now (the hub has processed
/// everything a faster subscriber already got).
fn nothing_ready(stream: &mut OrderEventStream) {
    assert!(stream.next().now_or_never().is_none(), "nothing more");
}

#[tokio::test]
async fn each_subscriber_sees_only_its_viewers_events_exactly_once() {
    let harness = Harness::start().await;
    let control = Control::new(&harness.services);
    let events = &harness.downstream.order_events;
    assert_eq!(events.url().path(), "/order-events");
    let mut ada = events.subscribe("u1", None, None);
    let mut grace = events.subscribe("u2", None, None);
    control.wait_for_streams(1).await;

    for (order, status) in [
        ("o11", "paid"),
        ("o15", "shipped"),
        ("o12", "paid"),
        ("o16", "delivered"),
        ("o13", "shipped"),
    ] {
        control.set_status(order, status).await;
    }
    use OrderStatus::*;
    let expected_ada = [("o11", Paid), ("o12", Paid), ("o13", Shipped)];
    let expected_grace = [("o15", Shipped), ("o16", Delivered)];
    let seen = take(&mut ada, 3).await;
    assert_eq!(seen, expected_ada.map(|(o, s)| (o.to_owned(), s)));
    let seen = take(&mut grace, 2).await;
    assert_eq!(seen, expected_grace.map(|(o, s)| (o.to_owned(), s)));

    // Exactly once: the next event of each is a new one.
    control.set_status("o14", "cancelled").await;
    control.set_status("o15", "delivered").await;
    let entry = next(&mut ada).await;
    assert_eq!(
        (entry.id, entry.event.order_id.as_str()),
        (EventId(6), "o14")
    );
    assert_eq!(entry.event.event_type, OrderEventType::StatusChanged);
    assert_eq!(entry.event.user_id, "u1");
    let entry = next(&mut grace).await;
    assert_eq!(
        (entry.id, entry.event.order_id.as_str()),
        (EventId(7), "o15")
    );
    nothing_ready(&mut ada);
    assert_eq!(harness.services.order.control.count(ROUTE), 1);
}

#[tokio::test]
async fn placed_orders_reach_their_viewer() {
    let harness = Harness::start().await;
    let control = Control::new(&harness.services);
    let mut ada = harness.downstream.order_events.subscribe("u1", None, None);
    control.wait_for_streams(1).await;
    let placed: Value = control
        .client
        .post(format!("{}/orders", control.order_url))
        .header("Idempotency-Key", "hub-1")
        .json(&json!({
            "user_id": "u1", "items": [{"product_id": "p1", "quantity": 1}],
            "address_id": "a1", "shipping_option_id": "standard", "payment_method_id": "pm1"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = next(&mut ada).await;
    assert_eq!(entry.event.event_type, OrderEventType::Placed);
    assert_eq!(entry.event.order_id, placed["id"].as_str().unwrap());
    assert_eq!(entry.event.status, OrderStatus::Placed);
    assert_eq!(entry.event.tracking_number, None);
}

#[tokio::test]
async fn fifty_subscribers_share_one_upstream_connection() {
    let harness = Harness::start().await;
    let control = Control::new(&harness.services);
    // Clones of the clients share the hub.
    let clients: Vec<_> = (0..50).map(|_| harness.downstream.clone()).collect();
    let mut streams: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(n, d)| {
            let user = if n % 2 == 0 { "u1" } else { "u2" };
            d.order_events.subscribe(user, None, None)
        })
        .collect();
    assert_eq!(harness.downstream.order_events.subscriber_count(), 50);
    control.wait_for_streams(1).await;

    control.set_status("o11", "paid").await;
    control.set_status("o15", "shipped").await;
    for (n, stream) in streams.iter_mut().enumerate() {
        let order = if n % 2 == 0 { "o11" } else { "o15" };
        assert_eq!(next(stream).await.event.order_id, order, "subscriber {n}");
    }
    assert_eq!(harness.services.order.control.count(ROUTE), 1);
    assert_eq!(control.state().await["open_streams"], 1);

    // Unsubscribing is dropping the stream.
    streams.truncate(10);
    assert_eq!(harness.downstream.order_events.subscriber_count(), 10);
}

#[tokio::test]
async fn a_drop_mid_burst_loses_and_repeats_nothing() {
    const BURST: usize = 200;
    let services = Services::spawn_ephemeral().await.unwrap();
    let control = Arc::new(Control::new(&services));
    let events = hub(&services, quick(|_| {}));
    let mut ada = events.subscribe("u1", None, None);
    control.wait_for_streams(1).await;

    let received = Arc::new(AtomicUsize::new(0));
    let publisher = tokio::spawn({
        let (control, received) = (control.clone(), received.clone());
        let service = services.order.control.clone();
        async move {
            let mut published = Vec::new();
            for n in 0..BURST {
                if n == BURST / 2 {
                    // Once the hub has seen something, so that it resumes from an id.
                    while received.load(Ordering::SeqCst) == 0 {
                        tokio::task::yield_now().await;
                    }
                    // Cut, and keep the hub out for a while: what is
                    // published meanwhile only a resume can bring.
                    service.set_fault(Fault::new("/order-events").status(503));
                    assert_eq!(control.drop_streams().await, json!({"dropped": 1}));
                }
                if n == BURST * 3 / 4 {
                    tokio::time::timeout(PATIENCE, async {
                        while service.count(ROUTE) < 2 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    })
                    .await
                    .expect("a failed reconnect");
                    service.clear_faults();
                }
                let (order, status) = match n % 4 {
                    0 => ("o13", "shipped"),
                    1 => ("o14", "paid"),
                    2 => ("o13", "paid"),
                    _ => ("o14", "placed"),
                };
                control.set_status(order, status).await;
                published.push((order.to_owned(), status.to_owned()));
            }
            published
        }
    });

    let mut seen = Vec::new();
    for n in 1..=BURST {
        let entry = next(&mut ada).await;
        assert_eq!(entry.id, EventId(n as u64), "every id once, in order");
        received.fetch_add(1, Ordering::SeqCst);
        let status = serde_json::to_value(entry.event.status).unwrap();
        seen.push((
            entry.event.order_id.to_string(),
            status.as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(seen, publisher.await.unwrap());
    // Nothing after them either.
    control.set_status("o13", "cancelled").await;
    assert_eq!(next(&mut ada).await.id, EventId(BURST as u64 + 1));

    let streams: Vec<_> = services
        .order
        .control
        .requests()
        .into_iter()
        .filter(|r| r.route == ROUTE)
        .map(|r| r.last_event_id)
        .collect();
    assert!(
        streams.len() >= 3,
        "refused reconnects, then one: {streams:?}"
    );
    assert_eq!(streams[0], None);
    let resumed_after: u64 = streams[1].as_deref().unwrap().parse().unwrap();
    assert!(
        (1..=BURST as u64 / 2).contains(&resumed_after),
        "Last-Event-ID {resumed_after}: what the hub had seen at the drop"
    );
    assert!(
        streams[1..]
            .iter()
            .all(|id| id.as_deref() == Some(&*resumed_after.to_string())),
        "every reconnect resumes from there: {streams:?}"
    );
    assert_eq!(control.state().await["open_streams"], 1);
}

#[tokio::test]
async fn an_order_filter_passes_only_that_order() {
    let harness = Harness::start().await;
    let control = Control::new(&harness.services);
    let events = &harness.downstream.order_events;
    let mut everything = events.subscribe("u1", None, None);
    let mut o12 = events.subscribe("u1", Some("o12"), None);
    // Someone else's order: never anything, exactly like an order that never changes.
    let mut not_mine = events.subscribe("u1", Some("o15"), None);
    control.wait_for_streams(1).await;

    for (order, status) in [
        ("o11", "paid"),
        ("o12", "paid"),
        ("o15", "shipped"),
        ("o13", "shipped"),
        ("o12", "delivered"),
    ] {
        control.set_status(order, status).await;
    }
    assert_eq!(
        take(&mut o12, 2).await,
        vec![
            ("o12".to_owned(), OrderStatus::Paid),
            ("o12".to_owned(), OrderStatus::Delivered)
        ]
    );
    // The unfiltered one has had all four of u1's events: the hub has passed
    // them all on, and the filtered ones skipped the rest.
    assert_eq!(take(&mut everything, 4).await.len(), 4);
    nothing_ready(&mut o12);
    nothing_ready(&mut not_mine);
}

#[tokio::test]
async fn a_slow_subscriber_lags_without_holding_up_a_fast_one() {
    let services = Services::spawn_ephemeral().await.unwrap();
    let control = Control::new(&services);
    let events = hub(&services, quick(|s| s.subscriber_backlog = 8));
    let mut slow = events.subscribe("u1", None, None);
    let mut fast = events.subscribe("u1", None, None);
    control.wait_for_streams(1).await;

    // The fast one keeps up (reads each event before the next); the slow
    // one reads nothing.
    for n in 1..=30 {
        control
            .set_status("o11", if n % 2 == 0 { "shipped" } else { "paid" })
            .await;
        assert_eq!(next(&mut fast).await.id, EventId(n));
    }

    let lagged = tokio::time::timeout(PATIENCE, slow.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lagged, Err(SubscriptionError::Lagged { missed: 22 }));
    assert!(slow.next().await.is_none(), "a lagged subscription ends");

    // The fast one goes on.
    control.set_status("o11", "delivered").await;
    assert_eq!(next(&mut fast).await.id, EventId(31));
}

#[tokio::test]
async fn a_subscriber_resumes_after_an_id_from_the_hubs_buffer() {
    let harness = Harness::start().await;
    let control = Control::new(&harness.services);
    let events = &harness.downstream.order_events;
    let mut live = events.subscribe("u1", None, None);
    control.wait_for_streams(1).await;
    for (order, status) in [
        ("o11", "paid"),
        ("o15", "shipped"),
        ("o12", "paid"),
        ("o13", "shipped"),
        ("o16", "delivered"),
        ("o14", "paid"),
    ] {
        control.set_status(order, status).await;
    }
    let ids: Vec<EventId> = {
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(next(&mut live).await.id);
        }
        ids
    };
    assert_eq!(ids, [1, 3, 4, 6].map(EventId));

    // After u1's second event: the two after it (not u2's), then live.
    let mut resumed = events.subscribe("u1", None, Some(EventId(3)));
    assert_eq!(
        take(&mut resumed, 2).await,
        vec![
            ("o13".to_owned(), OrderStatus::Shipped),
            ("o14".to_owned(), OrderStatus::Paid)
        ]
    );
    control.set_status("o11", "shipped").await;
    assert_eq!(next(&mut resumed).await.id, EventId(7));
    // With an order filter too.
    let mut o13 = events.subscribe("u1", Some("o13"), Some(EventId(1)));
    assert_eq!(next(&mut o13).await.id, EventId(4));
    nothing_ready(&mut o13);
    // From the buffer: no second connection.
    assert_eq!(harness.services.order.control.count(ROUTE), 1);
}

#[tokio::test]
async fn resuming_before_the_buffer_is_an_error() {
    let services = Services::spawn_ephemeral().await.unwrap();
    let control = Control::new(&services);
    let events = hub(&services, quick(|s| s.replay = 3));
    let mut live = events.subscribe("u1", None, None);
    control.wait_for_streams(1).await;
    for n in 0..5 {
        control
            .set_status("o11", if n % 2 == 0 { "paid" } else { "shipped" })
            .await;
    }
    assert_eq!(take(&mut live, 5).await.len(), 5);
    // Events 1 and 2 are gone from the buffer: after 2 still works, after 1 not.
    let mut ok = events.subscribe("u1", None, Some(EventId(2)));
    assert_eq!(next(&mut ok).await.id, EventId(3));
    let mut gone = events.subscribe("u1", None, Some(EventId(1)));
    assert_eq!(
        gone.next().await,
        Some(Err(SubscriptionError::ResumeUnavailable {
            after: EventId(1)
        }))
    );
    assert_eq!(gone.next().await, None);
}

#[tokio::test]
async fn the_first_subscriber_resumes_through_the_service() {
    let services = Services::spawn_ephemeral().await.unwrap();
    let control = Control::new(&services);
    for status in ["paid", "shipped", "delivered"] {
        control.set_status("o11", status).await;
    }
    // A client resuming on a replica whose hub has not started yet.
    let events = hub(&services, quick(|_| {}));
    let mut resumed = events.subscribe("u1", None, Some(EventId(1)));
    assert_eq!(
        take(&mut resumed, 2).await,
        vec![
            ("o11".to_owned(), OrderStatus::Shipped),
            ("o11".to_owned(), OrderStatus::Delivered)
        ]
    );
    let log = services.order.control.requests();
    assert_eq!(log[log.len() - 1].route, ROUTE);
    assert_eq!(log[log.len() - 1].last_event_id.as_deref(), Some("1"));
}

#[tokio::test]
async fn the_hub_retries_until_the_service_answers() {
    let services = Services::spawn_ephemeral().await.unwrap();
    let control = Control::new(&services);
    services
        .order
        .control
        .set_fault(Fault::new("/order-events").status(503));
    let events = hub(&services, quick(|_| {}));
    let mut ada = events.subscribe("u1", None, None);
    tokio::time::timeout(PATIENCE, async {
        while services.order.control.count(ROUTE) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("reconnect attempts");
    services.order.control.clear_faults();
    control.wait_for_streams(1).await;
    control.set_status("o11", "paid").await;
    assert_eq!(next(&mut ada).await.id, EventId(1));
}

#[tokio::test]
async fn dropping_the_last_hub_handle_closes_the_connection() {
    let services = Services::spawn_ephemeral().await.unwrap();
    let control = Control::new(&services);
    // The service notices a closed connection when it next writes.
    control.set_keep_alive(20).await;
    let events = hub(&services, quick(|_| {}));
    let stream = events.subscribe("u1", None, None);
    control.wait_for_streams(1).await;
    drop(events);
    drop(stream);
    control.wait_for_streams(0).await;
}

/// An upstream that frames events in every way the SSE format allows (BOM,
/// CRLF, CR, comments, split lines, data over two lines, a foreign event
/// type) and replays an event on the reconnect: the hub gets each once.
#[tokio::test]
async fn any_valid_framing_and_a_replayed_duplicate_read_as_the_contract() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn data(id: u32) -> String {
        format!(
            r#"{{"event_type":"order.status_changed","order_id":"o{id}","user_id":"u1","status":"paid","tracking_number":null,"at":"2026-12-06T07:00:00Z"}}"#
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let server = tokio::spawn(async move {
        let mut last_event_ids = Vec::new();
        for connection in 0..2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                socket.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
            last_event_ids.push(
                head.lines()
                    .find_map(|l| l.strip_prefix("last-event-id: "))
                    .map(str::to_owned),
            );
            let mut pieces: Vec<String> = vec![
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                    .into(),
            ];
            if connection == 0 {
                // Two data lines, joined with a newline: still JSON.
                let first = data(1);
                let (one, two) = first.split_at(first.find(',').unwrap() + 1);
                pieces.extend([
                    "\u{feff}: hello\r\n\r\nid: 1\r\nevent: order\r\nda".to_owned(),
                    format!("ta: {one}\r\ndata:{two}\r"),
                    "\n\r\nid: 9\nevent: ping\ndata: x\n\n".to_owned(),
                    format!("id: 2\revent: order\rdata: {}\r\r", data(2)),
                ]);
            } else {
                // The reconnect: a duplicate of 2, then 3.
                pieces.extend([
                    format!("id: 2\nevent: order\ndata: {}\n\n", data(2)),
                    format!(": keep-alive\n\nid: 3\nevent: order\ndata: {}\n\n", data(3)),
                ]);
            }
            for piece in pieces {
                socket.write_all(piece.as_bytes()).await.unwrap();
                socket.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            if connection == 1 {
                // Stay open until the client goes.
                let _ = socket.read(&mut [0u8; 1]).await;
            }
        }
        last_event_ids
    });

    let http = downstream::http::build_http_client().unwrap();
    let events = OrderEvents::new(&base, http, quick(|_| {}));
    let mut ada = events.subscribe("u1", None, None);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let entry = next(&mut ada).await;
        ids.push((entry.id.0, entry.event.order_id.to_string()));
    }
    assert_eq!(
        ids,
        vec![(1, "o1".into()), (2, "o2".into()), (3, "o3".into())]
    );
    drop((ada, events));
    assert_eq!(
        server.await.unwrap(),
        vec![None, Some("2".to_owned())],
        "the reconnect resumed after the last id seen"
    );
}
