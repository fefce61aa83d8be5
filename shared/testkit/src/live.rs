//! Readers of the subscription transports' HTTP bodies (GraphQL over SSE,
//! Apollo's multipart subscriptions) for end-to-end tests, and the order
//! service's control route that makes order events happen.

use std::time::Duration;

use serde_json::{Value, json};

/// How long a test waits for the next piece of a stream before failing
/// (a hang is a failure, not a test that never ends).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One SSE event (comments are heartbeats: counted, not returned).
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// `data` as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Reads a `text/event-stream` body event by event.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
    /// `:` comments seen so far.
    pub heartbeats: usize,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "not an event stream: {content_type}"
        );
        Self {
            response,
            buffer: String::new(),
            heartbeats: 0,
        }
    }

    /// The next event; `None` when the body ended.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    id: None,
                    data: String::new(),
                };
                let mut comment_only = true;
                for line in block.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    comment_only = false;
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => event.event = value.into(),
                        "id" => event.id = Some(value.into()),
                        "data" => {
                            if !event.data.is_empty() {
                                event.data.push('\n');
                            }
                            event.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if comment_only {
                    self.heartbeats += 1;
                    continue;
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("no SSE bytes in time")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `next` event's payload, asserting that is what comes.
    pub async fn next_payload(&mut self) -> (Option<String>, Value) {
        let event = self.next_event().await.expect("the stream ended");
        assert_eq!(event.event, "next", "{event:?}");
        (event.id.clone(), event.json())
    }

    /// Reads until `heartbeats` more heartbeats came, asserting no event
    /// comes meanwhile.
    pub async fn expect_only_heartbeats(&mut self, heartbeats: usize) {
        let until = self.heartbeats + heartbeats;
        while self.heartbeats < until {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = &self.buffer[..end];
                assert!(
                    block.lines().all(|line| line.starts_with(':')),
                    "unexpected event: {block}"
                );
                self.buffer.drain(..end + 2);
                self.heartbeats += 1;
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("no heartbeat in time")
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

/// Reads an Apollo multipart subscription body part by part (boundary
/// `graphql`).
pub struct MultipartReader {
    response: reqwest::Response,
    buffer: String,
    ended: bool,
}

/// One part of a multipart subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// `{}`
    Heartbeat,
    /// `{"payload": …}` or `{"payload": null, "errors": […]}`
    Json(Value),
    /// The closing boundary.
    End,
}

impl MultipartReader {
    pub fn new(response: reqwest::Response) -> Self {
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("multipart/mixed") && content_type.contains("boundary"),
            "not multipart: {content_type}"
        );
        Self {
            response,
            buffer: String::new(),
            ended: false,
        }
    }

    /// The next part.
    pub async fn next_part(&mut self) -> Part {
        assert!(!self.ended, "read past the end");
        loop {
            // A part is complete once the next delimiter follows it.
            if let Some(start) = self.buffer.find("--graphql") {
                let after = &self.buffer[start + "--graphql".len()..];
                if after.starts_with("--") {
                    self.ended = true;
                    return Part::End;
                }
                if let Some(next) = after.find("\r\n--graphql") {
                    let part = after[..next].to_owned();
                    self.buffer.drain(..start + "--graphql".len() + next);
                    let (_headers, body) = part.split_once("\r\n\r\n").unwrap();
                    let value: Value = serde_json::from_str(body.trim()).unwrap();
                    return if value == json!({}) {
                        Part::Heartbeat
                    } else {
                        Part::Json(value)
                    };
                }
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("no multipart bytes in time")
                .unwrap()
                .expect("the body ended without the closing boundary");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next part that is not a heartbeat.
    pub async fn next_json(&mut self) -> Part {
        loop {
            match self.next_part().await {
                Part::Heartbeat => continue,
                part => return part,
            }
        }
    }
}

/// Moves an order of the devstack order service at `order_url` to `status`:
/// an `order.status_changed` event.
pub async fn move_order(client: &reqwest::Client, order_url: &str, order_id: &str, status: &str) {
    let response = client
        .post(format!("{order_url}/__control/orders/{order_id}/status"))
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// Runs `tests/live-clients/clients.mjs`: the `graphql-ws`, `graphql-sse`
/// and Apollo Client (multipart subscriptions) libraries against the BFF at `url` (`flavour`: `web` or
/// `mobile`), u1's and u2's tokens, orders moved at `order_url`. Needs Node
/// and the script's `node_modules` (`npm ci --prefix tests/live-clients`,
/// which `.ci/run` does); where they are missing it is skipped loudly,
/// except under CI, where it fails.
pub async fn assert_live_clients_pass(
    url: String,
    order_url: String,
    flavour: &str,
    token_u1: String,
    token_u2: String,
) {
    let clients = crate::node::NodePackage::new("live-clients");
    let libraries = ["graphql-ws", "graphql-sse", "ws", "@apollo/client"];
    if !clients.ready("live client libraries", &libraries, None) {
        return;
    }
    let args = vec![url, order_url, flavour.to_owned(), token_u1, token_u2];
    clients
        .run("live clients", "clients.mjs", args, Vec::new())
        .await;
}
