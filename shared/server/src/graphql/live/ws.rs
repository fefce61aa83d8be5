//! graphql-transport-ws, the `graphql-ws` library's protocol
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>),
//! written out here rather than taken from async-graphql, whose version
//! closes a refused `connection_init` with 1002 instead of 4403 and has
//! neither the `error` message nor caps.
//!
//! The token comes in `connection_init`'s payload as `{"authorization":
//! "Bearer …"}`; none, or one the verifier refuses, closes with 4403
//! Forbidden, as does its expiry later. The close codes are the protocol's:
//! 4400 invalid message, 4401 `subscribe` before `connection_ack`, 4406 no
//! `graphql-transport-ws` subprotocol, 4408 no `connection_init` in time,
//! 4409 an id already in use, 4429 a second `connection_init`; 1001 when
//! the process shuts down (a client reconnects elsewhere).

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use downstream::RequestContext;
use futures::stream::{AbortHandle, Abortable, SelectAll, SplitSink};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;

use super::{EndReason, Live, Outcome, Refusal, Start};
use crate::auth::{Viewer, ViewerKind};
use crate::health::Draining;

const PROTOCOL: &str = "graphql-transport-ws";
/// Largest client message: a `subscribe` is a query and its variables,
/// which the endpoint's own limits bound far below this.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Answers the upgrade request; the protocol runs on the upgraded socket.
pub(super) async fn upgrade(live: Live, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let ctx = parts
        .extensions
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(RequestContext::background);
    let draining = parts
        .extensions
        .get::<Draining>()
        .map_or_else(|| Draining::new().subscribe(), Draining::subscribe);
    let upgrade = upgrade
        .protocols([PROTOCOL])
        .max_message_size(MAX_MESSAGE_BYTES);
    let speaks_protocol = upgrade.selected_protocol().is_some();
    upgrade.on_upgrade(move |socket| async move {
        let (sink, stream) = socket.split();
        let mut connection = Connection {
            live,
            ctx,
            draining,
            sink,
            active: HashMap::new(),
        };
        if !speaks_protocol {
            connection.close(4406, "Subprotocol not acceptable").await;
            return;
        }
        connection.run(stream).await;
    })
}

/// A message from the client (read once each, so a large variant is fine).
#[derive(Debug, Deserialize)]
#[allow(clippy::large_enum_variant)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Ping {
        #[serde(default)]
        #[allow(dead_code)]
        payload: Option<serde_json::Value>,
    },
    Pong {
        #[serde(default)]
        #[allow(dead_code)]
        payload: Option<serde_json::Value>,
    },
    Subscribe {
        id: String,
        payload: async_graphql::Request,
    },
    Complete {
        id: String,
    },
}

/// One subscription's outcomes, tagged with its id; `None` once it ended.
type Tagged = futures::stream::BoxStream<'static, (String, Option<Outcome>)>;

struct Connection {
    live: Live,
    ctx: RequestContext,
    draining: watch::Receiver<bool>,
    sink: SplitSink<WebSocket, Message>,
    /// Running subscriptions by id: how to stop each, and whether it has
    /// sent anything yet.
    active: HashMap<String, (AbortHandle, bool)>,
}

/// The viewer of an acknowledged connection.
struct Signed {
    viewer: Viewer,
    /// The token's `exp`, as a Tokio instant.
    expires: Option<tokio::time::Instant>,
    exp: Option<u64>,
}

/// What the loop does after one step.
enum Step {
    Go,
    /// Close with this code and reason.
    Close(u16, String),
    /// The client went away.
    Gone,
}

impl Connection {
    async fn run(&mut self, mut incoming: futures::stream::SplitStream<WebSocket>) {
        let init_timeout =
            std::time::Duration::from_millis(self.live.inner.config.init_timeout_ms.max(1));
        let init_deadline = tokio::time::sleep(init_timeout);
        let mut init_deadline = std::pin::pin!(init_deadline);
        let mut signed: Option<Signed> = None;
        let mut subscriptions: SelectAll<Tagged> = SelectAll::new();
        let heartbeat = self.live.heartbeat();
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut draining = self.draining.clone();
        loop {
            let expires = signed.as_ref().and_then(|signed| signed.expires);
            let expiry = async move {
                match expires {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let step = tokio::select! {
                message = incoming.next() => match message {
                    Some(Ok(message)) => {
                        self.receive(message, &mut signed, &mut subscriptions).await
                    }
                    Some(Err(_)) | None => Step::Gone,
                },
                Some((id, outcome)) = subscriptions.next(), if !subscriptions.is_empty() => {
                    self.deliver(id, outcome).await
                }
                _ = ticks.tick(), if signed.is_some() => {
                    self.send(r#"{"type":"ping"}"#.to_owned()).await
                }
                () = &mut init_deadline, if signed.is_none() => {
                    Step::Close(4408, "Connection initialisation timeout".into())
                }
                () = expiry => Step::Close(4403, "Forbidden: the token expired".into()),
                () = super::drained(&mut draining) => {
                    Step::Close(1001, "the server is shutting down".into())
                }
            };
            match step {
                Step::Go => {}
                Step::Close(code, reason) => {
                    self.close(code, &reason).await;
                    break;
                }
                Step::Gone => break,
            }
        }
        for (handle, _) in self.active.values() {
            handle.abort();
        }
    }

    async fn receive(
        &mut self,
        message: Message,
        signed: &mut Option<Signed>,
        subscriptions: &mut SelectAll<Tagged>,
    ) -> Step {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Step::Gone,
            // WebSocket-level pings are answered by the library.
            Message::Ping(_) | Message::Pong(_) => return Step::Go,
            Message::Binary(_) => {
                return Step::Close(4400, "Binary messages are not accepted".into());
            }
        };
        let message = match serde_json::from_str::<ClientMessage>(text.as_str()) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, "invalid graphql-transport-ws message");
                return Step::Close(4400, "Invalid message received".into());
            }
        };
        match message {
            ClientMessage::ConnectionInit { .. } if signed.is_some() => {
                Step::Close(4429, "Too many initialisation requests".into())
            }
            ClientMessage::ConnectionInit { payload } => match self.authenticate(payload).await {
                Some(viewer) => {
                    *signed = Some(viewer);
                    self.send(r#"{"type":"connection_ack"}"#.to_owned()).await
                }
                None => Step::Close(4403, "Forbidden".into()),
            },
            ClientMessage::Ping { .. } => self.send(r#"{"type":"pong"}"#.to_owned()).await,
            ClientMessage::Pong { .. } => Step::Go,
            ClientMessage::Subscribe { id, payload } => {
                let Some(signed) = signed.as_ref() else {
                    return Step::Close(4401, "Unauthorized".into());
                };
                if self.active.contains_key(&id) {
                    return Step::Close(4409, format!("Subscriber for {id} already exists"));
                }
                self.subscribe(id, payload, signed, subscriptions).await
            }
            ClientMessage::Complete { id } => {
                if let Some((handle, _)) = self.active.remove(&id) {
                    handle.abort();
                }
                Step::Go
            }
        }
    }

    /// The viewer of `connection_init`'s `authorization`, if it names one.
    async fn authenticate(&self, payload: Option<serde_json::Value>) -> Option<Signed> {
        let payload = payload?;
        let authorization = payload.as_object()?.iter().find_map(|(key, value)| {
            key.eq_ignore_ascii_case("authorization")
                .then(|| value.as_str())
                .flatten()
        })?;
        let (scheme, token) = authorization.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        match self.live.inner.verifier.verify_until(token.trim()).await {
            Ok((viewer, exp)) if viewer.kind == ViewerKind::User => Some(Signed {
                viewer,
                expires: exp.map(super::deadline_of),
                exp,
            }),
            Ok(_) => None,
            Err(reason) => {
                tracing::debug!(%reason, "connection_init token refused");
                None
            }
        }
    }

    async fn subscribe(
        &mut self,
        id: String,
        request: async_graphql::Request,
        signed: &Signed,
        subscriptions: &mut SelectAll<Tagged>,
    ) -> Step {
        let max = self.live.inner.config.max_per_connection;
        if self.active.len() >= max {
            let refusal = Refusal::TooManySubscriptions {
                max,
                scope: "connection",
            };
            return self.send_error(&id, &refusal.errors()).await;
        }
        let start = Start {
            request,
            viewer: signed.viewer.clone(),
            ctx: self.ctx.clone(),
            expires: signed.exp,
            resume: None,
            draining: self.draining.clone(),
        };
        let subscription = match self.live.start(start).await {
            Ok(subscription) => subscription,
            Err(refusal) => return self.send_error(&id, &refusal.errors()).await,
        };
        let (handle, registration) = AbortHandle::new_pair();
        let tag = id.clone();
        let tagged = Abortable::new(subscription, registration)
            .map(move |outcome| (tag.clone(), Some(outcome)))
            .chain(futures::stream::once({
                let id = id.clone();
                async move { (id, None) }
            }))
            .boxed();
        subscriptions.push(tagged);
        self.active.insert(id, (handle, false));
        Step::Go
    }

    /// Passes on what a subscription produced.
    async fn deliver(&mut self, id: String, outcome: Option<Outcome>) -> Step {
        let Some((_, started)) = self.active.get_mut(&id) else {
            return Step::Go; // the client completed it
        };
        let first = !*started;
        *started = true;
        match outcome {
            Some(Outcome::Next(next)) => {
                let (response, _) = *next;
                // Refused before it ran (validation, limits): the protocol's
                // `error`, which ends the operation.
                if first && super::is_request_error(&response) {
                    self.active.remove(&id);
                    let errors = serde_json::to_value(&response.errors).unwrap_or_default();
                    return self.send_error(&id, &errors).await;
                }
                let payload = super::response_json(response);
                let id = serde_json::Value::from(id);
                self.send(format!(
                    r#"{{"id":{id},"type":"next","payload":{payload}}}"#
                ))
                .await
            }
            Some(Outcome::End(EndReason::SlowClient)) => {
                self.active.remove(&id);
                self.send_error(&id, &EndReason::SlowClient.errors()).await
            }
            Some(Outcome::End(EndReason::TokenExpired)) => {
                Step::Close(4403, "Forbidden: the token expired".into())
            }
            Some(Outcome::End(EndReason::ShuttingDown)) => {
                Step::Close(1001, "the server is shutting down".into())
            }
            None => {
                self.active.remove(&id);
                let message = serde_json::json!({ "id": id, "type": "complete" });
                self.send(message.to_string()).await
            }
        }
    }

    async fn send_error(&mut self, id: &str, errors: &serde_json::Value) -> Step {
        let message = serde_json::json!({ "id": id, "type": "error", "payload": errors });
        self.send(message.to_string()).await
    }

    async fn send(&mut self, text: String) -> Step {
        match self.sink.send(Message::Text(text.into())).await {
            Ok(()) => Step::Go,
            Err(_) => Step::Gone,
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.sink.send(Message::Close(Some(frame))).await;
        let _ = self.sink.close().await;
    }
}
