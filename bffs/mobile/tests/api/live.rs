//! Subscriptions end to end on the mobile BFF: `orderUpdates` over GraphQL
//! over SSE and Apollo's multipart subscriptions (what Apollo iOS and
//! Kotlin speak), and the graphql-ws, graphql-sse and Apollo Client
//! libraries (`tests/live-clients/clients.mjs`).

use serde_json::{Value, json};
use testkit::live::{MultipartReader, Part, SseReader, move_order};

use crate::helpers::{TestApp, apq_extension, sha256, spawn_app_with};

const UPDATES: &str = "subscription { orderUpdates { eventId orderId status date } }";

async fn spawn_live() -> TestApp {
    spawn_app_with(|config| config.live.heartbeat_ms = 100).await
}

fn update(payload: &Value) -> &Value {
    assert!(payload.get("errors").is_none(), "{payload}");
    &payload["data"]["orderUpdates"]
}

#[tokio::test]
async fn an_order_moved_reaches_its_owner_with_a_short_date() {
    let app = spawn_live().await;
    let token = app.token("u1");
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": UPDATES }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut sse = SseReader::new(response);
    let order_url = app.services.order.url();
    move_order(&app.client, &order_url, "o15", "cancelled").await; // u2's
    move_order(&app.client, &order_url, "o14", "shipped").await;
    let (id, payload) = sse.next_payload().await;
    let update = update(&payload);
    assert_eq!(update["orderId"], "o14");
    assert_eq!(update["status"], "SHIPPED");
    assert_eq!(id.as_deref(), update["eventId"].as_str());
    let date = update["date"].as_str().unwrap();
    assert!(
        date.len() == 5 && date.as_bytes()[2] == b'/',
        "short date: {date}"
    );
}

#[tokio::test]
async fn multipart_subscriptions_are_never_compressed_and_take_persisted_queries() {
    let app = spawn_live().await;
    let token = app.token("u1");
    // Apollo Kotlin and iOS send the hash with the query the first time.
    let body = json!({ "query": UPDATES, "extensions": apq_extension(&sha256(UPDATES)) });
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header(
            "accept",
            "multipart/mixed;subscriptionSpec=\"1.0\", application/json",
        )
        .header("accept-encoding", "gzip, br")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-encoding").is_none());
    let mut parts = MultipartReader::new(response);
    assert_eq!(parts.next_part().await, Part::Heartbeat);
    drop(parts);
    // Then by hash alone.
    let body = json!({ "extensions": apq_extension(&sha256(UPDATES)) });
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("accept", "multipart/mixed;subscriptionSpec=1.0")
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut parts = MultipartReader::new(response);
    assert_eq!(parts.next_part().await, Part::Heartbeat);
    move_order(&app.client, &app.services.order.url(), "o13", "delivered").await;
    let Part::Json(part) = parts.next_json().await else {
        panic!("no update")
    };
    assert_eq!(update(&part["payload"])["status"], "DELIVERED");
}

#[tokio::test]
async fn graphql_ws_graphql_sse_and_apollo_client_get_the_viewers_updates() {
    let app = spawn_live().await;
    testkit::live::assert_live_clients_pass(
        app.url("/graphql"),
        app.services.order.url(),
        "mobile",
        app.token("u1"),
        app.token("u2"),
    )
    .await;
}

/// A hash the BFF does not know, over SSE or multipart: the APQ miss as
/// Apollo clients expect it on every transport (HTTP 200, the error in the
/// body), so they resend with the text.
#[tokio::test]
async fn an_unknown_persisted_subscription_is_the_usual_apq_miss() {
    let app = spawn_live().await;
    let query = "subscription Unknown { orderUpdates { eventId status } }";
    let body = json!({ "extensions": apq_extension(&sha256(query)) });
    for accept in [
        "text/event-stream",
        "multipart/mixed;subscriptionSpec=1.0, application/json",
    ] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(app.token("u1"))
            .header("accept", accept)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{accept}");
        let miss: Value = response.json().await.unwrap();
        assert_eq!(
            miss["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
            "{accept}: {miss}"
        );
        assert_eq!(miss["errors"][0]["message"], "PersistedQueryNotFound");
    }
}
