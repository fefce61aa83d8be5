//! Order events: `GET /order-events` (server-sent events), the bounded log a
//! stream resumes from, and the order service's control routes that make
//! events happen (`/__control/orders/{id}/status`) or drop the open streams
//! (`/__control/order-events/drop`).
//!
//! Every event is appended to the log and sent to the open streams while the
//! order data is locked, so ids follow the order of the changes, and a stream
//! that starts takes its replay from the log and its live feed in one step:
//! nothing between them is lost or sent twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{SubsecRound, Utc};
use downstream::models::{
    EventId, ORDER_EVENT_TYPE, ORDER_EVENTS_KEPT, Order, OrderEvent, OrderEventType, OrderStatus,
};
use futures::Stream;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::{broadcast, watch};

use super::{ApiError, ApiResult, JsonBody, PathParams, Route, SharedState, route};

/// Events the log keeps (the oldest are dropped): the contract's minimum.
pub const EVENT_LOG_CAPACITY: usize = ORDER_EVENTS_KEPT;

/// Interval of the `:` keep-alive comments, until
/// `PUT /__control/order-events` sets another.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Events buffered per open stream. A stream that falls further behind is
/// ended; its client resumes from the log with `Last-Event-ID`.
const LIVE_CAPACITY: usize = 1_024;

/// One published event.
#[derive(Debug)]
pub(crate) struct Logged {
    id: EventId,
    event: OrderEvent,
}

/// The last [`EVENT_LOG_CAPACITY`] events, oldest first. Lives in the order
/// data so that an event is logged under the same lock as its change.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    entries: VecDeque<Arc<Logged>>,
    /// The id of the newest event ever published (0: none yet). Ids never restart.
    last_id: u64,
}

/// The open streams of one `Services` instance.
#[derive(Debug)]
pub(crate) struct EventHub {
    live: broadcast::Sender<Arc<Logged>>,
    /// Bumped by the drop control route; every open stream holds a receiver,
    /// so its receiver count is the number of open streams.
    drop_all: watch::Sender<()>,
    keep_alive_ms: AtomicU64,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            live: broadcast::channel(LIVE_CAPACITY).0,
            drop_all: watch::channel(()).0,
            keep_alive_ms: AtomicU64::new(duration_ms(DEFAULT_KEEP_ALIVE)),
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl EventHub {
    fn keep_alive(&self) -> Duration {
        Duration::from_millis(self.keep_alive_ms.load(Ordering::Relaxed))
    }

    fn open_streams(&self) -> usize {
        self.drop_all.receiver_count()
    }
}

/// Appends an event about `order` (as it is now) and sends it to the open
/// streams. Call with the order data locked (`log` is part of it).
pub(crate) fn publish(
    hub: &EventHub,
    log: &mut EventLog,
    event_type: OrderEventType,
    order: &Order,
) {
    log.last_id += 1;
    let at = match event_type {
        OrderEventType::Placed => order.created_at,
        OrderEventType::StatusChanged => Utc::now().trunc_subsecs(0),
    };
    let entry = Arc::new(Logged {
        id: EventId(log.last_id),
        event: OrderEvent {
            event_type,
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
            status: order.status,
            tracking_number: order.tracking_number.clone(),
            at,
        },
    });
    if log.entries.len() >= EVENT_LOG_CAPACITY {
        log.entries.pop_front();
    }
    log.entries.push_back(entry.clone());
    // No open stream is not an error: the log still has it.
    let _ = hub.live.send(entry);
}

pub(super) fn routes() -> Vec<Route> {
    vec![route(Method::GET, "/order-events", get_order_events)]
}

/// The order service's control routes (they change order data, so they live
/// with it rather than in [`crate::control`]).
pub(super) fn control_router() -> Router<SharedState> {
    Router::new()
        .route("/__control/orders/{id}/status", post(post_order_status))
        .route(
            "/__control/order-events",
            get(get_events_control).put(put_events_control),
        )
        .route("/__control/order-events/drop", post(post_drop_streams))
}

// ------------------------------------------------------------ the stream

/// `GET /order-events`. Without `Last-Event-ID`: from the next event on.
/// With it: every logged event after that id; an id older than the log
/// starts from the oldest event kept (what is older is gone), one not yet
/// published waits for the events after it. A malformed id is a 400.
async fn get_order_events(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, StreamDropped>>>> {
    let after = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|s| s.parse::<EventId>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a decimal event id"))?,
        ),
    };
    let (replay, live) = {
        let data = state.data();
        let replay = match after {
            Some(after) => data
                .events
                .entries
                .iter()
                .filter(|e| e.id > after)
                .cloned()
                .collect(),
            None => VecDeque::new(),
        };
        // Subscribed under the lock: every later event is on `live`.
        (replay, state.hub.live.subscribe())
    };
    let stream = OpenStream {
        replay,
        live,
        dropped: state.hub.drop_all.subscribe(),
        last: after,
        done: false,
    };
    let keep_alive = KeepAlive::new().interval(state.hub.keep_alive());
    Ok(Sse::new(futures::stream::unfold(stream, OpenStream::next)).keep_alive(keep_alive))
}

/// Ends a stream abruptly (the connection is cut, as by a network failure).
#[derive(Debug, thiserror::Error)]
#[error("order event stream dropped by /__control/order-events/drop")]
pub(crate) struct StreamDropped;

struct OpenStream {
    replay: VecDeque<Arc<Logged>>,
    live: broadcast::Receiver<Arc<Logged>>,
    dropped: watch::Receiver<()>,
    /// The id of the last event sent (or of `Last-Event-ID`).
    last: Option<EventId>,
    done: bool,
}

impl OpenStream {
    async fn next(mut self) -> Option<(Result<Event, StreamDropped>, Self)> {
        if self.done {
            return None;
        }
        loop {
            let entry = match self.replay.pop_front() {
                Some(entry) => entry,
                None => tokio::select! {
                    // A drop wins over pending events: a cut loses what was in flight.
                    biased;
                    changed = self.dropped.changed() => {
                        // Err: the services are gone; end quietly.
                        changed.ok()?;
                        self.done = true;
                        return Some((Err(StreamDropped), self));
                    }
                    received = self.live.recv() => match received {
                        Ok(entry) => entry,
                        // Too far behind, or the services are gone: end the
                        // stream; the client resumes from the log.
                        Err(_) => return None,
                    },
                },
            };
            if self.last.is_some_and(|last| entry.id <= last) {
                continue;
            }
            match Event::default()
                .id(entry.id.to_string())
                .event(ORDER_EVENT_TYPE)
                .json_data(&entry.event)
            {
                Ok(event) => {
                    self.last = Some(entry.id);
                    return Some((Ok(event), self));
                }
                Err(error) => tracing::error!(%error, id = %entry.id, "order event not encoded"),
            }
        }
    }
}

// ------------------------------------------------------- control routes

/// `POST /__control/orders/{id}/status`: `status` is required;
/// `tracking_number` absent keeps the current one, `null` clears it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: OrderStatus,
    #[serde(default, deserialize_with = "deserialize_some")]
    tracking_number: Option<Option<String>>,
}

/// Distinguishes an explicit `null` (Some(None)) from an absent field (None).
fn deserialize_some<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Moves the order to `status` (and sets its tracking number); publishes
/// `order.status_changed` when either changed. Answers with the order.
async fn post_order_status(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
    JsonBody(change): JsonBody<StatusChange>,
) -> ApiResult<Json<Order>> {
    let mut data = state.data();
    let data = &mut *data;
    let order = data
        .orders
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(format_args!("order {id}")))?;
    let tracking_number = match change.tracking_number {
        Some(tracking) => tracking.map(Into::into),
        None => order.tracking_number.clone(),
    };
    if order.status != change.status || order.tracking_number != tracking_number {
        order.status = change.status;
        order.tracking_number = tracking_number;
        publish(
            &state.hub,
            &mut data.events,
            OrderEventType::StatusChanged,
            order,
        );
    }
    Ok(Json(order.clone()))
}

/// `GET`/`PUT /__control/order-events`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsSettings {
    /// Interval of the keep-alive comments of streams opened from now on.
    keep_alive_ms: u64,
}

/// `GET /__control/order-events`: the settings and the log's state.
#[derive(Debug, Serialize)]
struct EventsState {
    keep_alive_ms: u64,
    open_streams: usize,
    /// The id of the newest event (null: none yet).
    last_event_id: Option<EventId>,
    /// The id of the oldest event the log still keeps (null: empty).
    oldest_event_id: Option<EventId>,
}

async fn get_events_control(State(state): State<SharedState>) -> Json<EventsState> {
    let data = state.data();
    Json(EventsState {
        keep_alive_ms: duration_ms(state.hub.keep_alive()),
        open_streams: state.hub.open_streams(),
        last_event_id: (data.events.last_id > 0).then_some(EventId(data.events.last_id)),
        oldest_event_id: data.events.entries.front().map(|e| e.id),
    })
}

async fn put_events_control(
    State(state): State<SharedState>,
    JsonBody(settings): JsonBody<EventsSettings>,
) -> ApiResult<StatusCode> {
    if settings.keep_alive_ms == 0 {
        return Err(ApiError::bad_request("keep_alive_ms must be at least 1"));
    }
    state
        .hub
        .keep_alive_ms
        .store(settings.keep_alive_ms, Ordering::Relaxed);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /__control/order-events/drop`: cuts every open stream (their
/// clients see the connection fail) and says how many there were.
#[derive(Debug, Serialize)]
struct Dropped {
    dropped: usize,
}

async fn post_drop_streams(State(state): State<SharedState>) -> Json<Dropped> {
    let dropped = state.hub.open_streams();
    state.hub.drop_all.send_replace(());
    Json(Dropped { dropped })
}
