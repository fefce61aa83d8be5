//! Live order events: one upstream stream per process, fanned out.
//!
//! [`OrderEvents`] keeps a single connection to the order service's
//! `GET /order-events` however many subscribers there are. It opens it when
//! the first subscriber arrives and then keeps it for the life of the process
//! (one idle connection per replica is cheap, and a stream that stays open
//! keeps the replay buffer current, so a client can resume on this replica
//! after a gap in its own connection). After a drop it reconnects with
//! exponential backoff and `Last-Event-ID` = the last id it saw, and drops
//! events whose id it has seen already, so nothing is lost or repeated
//! across the reconnect (as far as the service still has the events: it
//! keeps at least its last 1,000).
//!
//! Each subscriber gets the events of one user (and optionally one order),
//! in id order, from a broadcast channel: a subscriber that falls behind
//! does not hold up the others; it gets [`SubscriptionError::Lagged`] and
//! its stream ends. The hub keeps the last [`OrderEventsSettings::replay`]
//! events it saw, so a subscriber can resume after an id
//! ([`OrderEvents::subscribe`]'s `after`).

mod sse;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{BoxStream, Stream};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use url::Url;

use crate::http::HttpClient;
use crate::models::{EventId, ORDER_EVENT_TYPE, ORDER_EVENTS_KEPT, OrderEvent};

use self::sse::{SseError, SseEvent, SseParser};

/// The replay buffer's default size: as many events as the order service
/// keeps, so a client can resume from anything the service could replay.
pub const DEFAULT_REPLAY: usize = ORDER_EVENTS_KEPT;
/// How far a subscriber may fall behind before it is dropped, by default.
pub const DEFAULT_SUBSCRIBER_BACKLOG: usize = 1_024;
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The order service sends a keep-alive every few seconds: this long without
/// a byte means the connection is dead even if TCP has not noticed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Tuning of the hub. [`Default`] is what [`crate::Downstream::new`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEventsSettings {
    /// Events kept for resuming subscribers.
    pub replay: usize,
    /// Events a subscriber may fall behind by before it gets
    /// [`SubscriptionError::Lagged`].
    pub subscriber_backlog: usize,
    /// Reconnect backoff: the first delay (unless the stream sent `retry:`),
    /// doubled per failed attempt up to `max_backoff`, each with jitter
    /// (a uniform 50-100 %).
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// No byte (events or keep-alives) for this long: reconnect.
    pub idle_timeout: Duration,
}

impl Default for OrderEventsSettings {
    fn default() -> Self {
        Self {
            replay: DEFAULT_REPLAY,
            subscriber_backlog: DEFAULT_SUBSCRIBER_BACKLOG,
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// One event as the hub got it: its id and data.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEventEntry {
    pub id: EventId,
    pub event: OrderEvent,
}

/// Why a subscription ended early. Either way the subscriber missed events
/// and must start over (e.g. the transport closes with this as the reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// It fell more than [`OrderEventsSettings::subscriber_backlog`] events
    /// (of all users) behind.
    #[error("subscriber fell behind by {missed} events")]
    Lagged { missed: u64 },
    /// `after` is older than what the hub can replay (evicted from its
    /// buffer, or from before its stream started).
    #[error("cannot resume after event {after}: no longer kept")]
    ResumeUnavailable { after: EventId },
}

/// The order event hub of one process. Cheap to clone (shared); the
/// upstream connection closes when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct OrderEvents {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: Url,
    http: HttpClient,
    settings: OrderEventsSettings,
    shared: Arc<Shared>,
    /// The upstream task, once started.
    task: Mutex<Option<AbortOnDrop>>,
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the upstream task and the subscribers share.
#[derive(Debug)]
struct Shared {
    state: Mutex<HubState>,
    live: broadcast::Sender<Arc<OrderEventEntry>>,
}

#[derive(Debug, Default)]
struct HubState {
    /// The last events seen, oldest first.
    replay: VecDeque<Arc<OrderEventEntry>>,
    capacity: usize,
    /// The hub has seen every event with an id from this one on (`None`:
    /// none seen yet, and the stream did not start from a known id).
    complete_from: Option<EventId>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        // Every update leaves the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps and sends one new event (its id is above every earlier one).
    fn publish(&self, entry: OrderEventEntry) {
        let entry = Arc::new(entry);
        let mut state = self.lock();
        if state.complete_from.is_none() {
            // A stream without Last-Event-ID starts with the next event:
            // nothing with this id or later was published before it.
            state.complete_from = Some(entry.id);
        }
        if state.replay.len() >= state.capacity
            && let Some(evicted) = state.replay.pop_front()
        {
            state.complete_from = Some(EventId(evicted.id.0.saturating_add(1)));
        }
        if state.capacity > 0 {
            state.replay.push_back(entry.clone());
        }
        // Sent under the lock, so that a subscriber's replay and live feed
        // (taken under it too) neither overlap nor leave a gap.
        // No subscriber is not an error.
        let _ = self.live.send(entry);
    }
}

impl OrderEvents {
    /// The hub of the order service at `base` (the stream is
    /// `base/order-events`), on the process's one HTTP client. Opens nothing
    /// until the first [`subscribe`](Self::subscribe).
    pub fn new(base: &Url, http: HttpClient, settings: OrderEventsSettings) -> Self {
        let mut url = base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("order-events");
        }
        let (live, _) = broadcast::channel(settings.subscriber_backlog.max(1));
        let shared = Arc::new(Shared {
            state: Mutex::new(HubState {
                capacity: settings.replay,
                ..HubState::default()
            }),
            live,
        });
        Self {
            inner: Arc::new(Inner {
                url,
                http,
                settings,
                shared,
                task: Mutex::new(None),
            }),
        }
    }

    /// Where the hub connects: `.../order-events`.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// Open subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.inner.shared.live.receiver_count()
    }

    /// The events of `user_id` (only those of `order_id`, if given), in id
    /// order, from the next one on; with `after`, from right after that id.
    /// The stream ends only with an error ([`SubscriptionError`]); drop it to
    /// unsubscribe. The first subscription opens the upstream stream (with
    /// `after` as its `Last-Event-ID`, so a client resuming on a fresh replica
    /// misses nothing the service still keeps). Call it within a Tokio
    /// runtime.
    pub fn subscribe(
        &self,
        user_id: &str,
        order_id: Option<&str>,
        after: Option<EventId>,
    ) -> OrderEventStream {
        self.start(after);
        let filter = Filter {
            user_id: user_id.into(),
            order_id: order_id.map(Into::into),
        };
        let state = self.inner.shared.lock();
        let live = self.inner.shared.live.subscribe();
        let replay = match after {
            None => VecDeque::new(),
            Some(after) => {
                let covered = state
                    .complete_from
                    .is_some_and(|from| after.0.saturating_add(1) >= from.0);
                if !covered {
                    let error = SubscriptionError::ResumeUnavailable { after };
                    return OrderEventStream::new(futures::stream::iter([Err(error)]));
                }
                state
                    .replay
                    .iter()
                    .filter(|e| e.id > after && filter.matches(e))
                    .cloned()
                    .collect()
            }
        };
        drop(state);
        let subscriber = Subscriber {
            replay,
            live,
            filter,
            after,
            ended: false,
        };
        OrderEventStream::new(futures::stream::unfold(subscriber, Subscriber::next))
    }

    /// Starts the upstream task unless it runs.
    fn start(&self, after: Option<EventId>) {
        let mut task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if task.is_some() {
            return;
        }
        if let Some(after) = after {
            // The stream will replay everything after it.
            self.inner.shared.lock().complete_from = Some(EventId(after.0.saturating_add(1)));
        }
        let upstream = Upstream {
            url: self.inner.url.clone(),
            http: self.inner.http.clone(),
            settings: self.inner.settings.clone(),
            shared: self.inner.shared.clone(),
            last: after,
        };
        *task = Some(AbortOnDrop(tokio::spawn(upstream.run())));
    }
}

/// The events one subscription wants.
#[derive(Debug)]
struct Filter {
    user_id: String,
    order_id: Option<String>,
}

impl Filter {
    fn matches(&self, entry: &OrderEventEntry) -> bool {
        entry.event.user_id == self.user_id
            && self
                .order_id
                .as_deref()
                .is_none_or(|id| entry.event.order_id == id)
    }
}

/// A subscription's events, see [`OrderEvents::subscribe`].
pub struct OrderEventStream {
    inner: BoxStream<'static, Result<Arc<OrderEventEntry>, SubscriptionError>>,
}

impl OrderEventStream {
    fn new(
        stream: impl Stream<Item = Result<Arc<OrderEventEntry>, SubscriptionError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }
}

impl std::fmt::Debug for OrderEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderEventStream").finish_non_exhaustive()
    }
}

impl Stream for OrderEventStream {
    type Item = Result<Arc<OrderEventEntry>, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct Subscriber {
    replay: VecDeque<Arc<OrderEventEntry>>,
    live: broadcast::Receiver<Arc<OrderEventEntry>>,
    filter: Filter,
    /// Only events after this id.
    after: Option<EventId>,
    ended: bool,
}

type Step = Option<(Result<Arc<OrderEventEntry>, SubscriptionError>, Subscriber)>;

impl Subscriber {
    async fn next(mut self) -> Step {
        if let Some(entry) = self.replay.pop_front() {
            return Some((Ok(entry), self));
        }
        if self.ended {
            return None;
        }
        loop {
            match self.live.recv().await {
                Ok(entry) => {
                    if self.after.is_some_and(|after| entry.id <= after)
                        || !self.filter.matches(&entry)
                    {
                        continue;
                    }
                    return Some((Ok(entry), self));
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.ended = true;
                    return Some((Err(SubscriptionError::Lagged { missed }), self));
                }
                // The hub is gone.
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

// --------------------------------------------------------------- upstream

/// Why one upstream connection ended (each is followed by a reconnect).
#[derive(Debug, thiserror::Error)]
enum UpstreamError {
    #[error("request failed: {0}")]
    Request(#[source] reqwest::Error),
    #[error("answered {0}")]
    Status(http::StatusCode),
    #[error("not an event stream: content type {0:?}")]
    ContentType(Option<String>),
    #[error("read failed: {0}")]
    Read(#[source] reqwest::Error),
    #[error("nothing received for {0:?}")]
    Idle(Duration),
    #[error("the service ended the stream")]
    Ended,
    #[error(transparent)]
    Parse(#[from] SseError),
}

/// The one connection of a hub, and its reconnects.
struct Upstream {
    url: Url,
    http: HttpClient,
    settings: OrderEventsSettings,
    shared: Arc<Shared>,
    /// The id of the last event seen: sent as `Last-Event-ID`, and every
    /// event up to it is a duplicate.
    last: Option<EventId>,
}

impl Upstream {
    async fn run(mut self) {
        let mut attempt: u32 = 0;
        let mut retry = None;
        loop {
            let mut received = false;
            let result = self.connect(&mut received, &mut retry).await;
            if let Err(error) = result {
                tracing::warn!(url = %self.url, last_event_id = ?self.last.map(|id| id.0), %error, "order event stream lost; reconnecting");
            }
            // A stream that delivered something starts the backoff over.
            attempt = if received {
                0
            } else {
                attempt.saturating_add(1)
            };
            let base = retry.unwrap_or(self.settings.min_backoff);
            tokio::time::sleep(backoff(base, self.settings.max_backoff, attempt)).await;
        }
    }

    /// One connection, until it fails. `received`: whether any byte came;
    /// `retry`: the reconnection time the stream asked for.
    async fn connect(
        &mut self,
        received: &mut bool,
        retry: &mut Option<Duration>,
    ) -> Result<(), UpstreamError> {
        let idle = self.settings.idle_timeout;
        let mut request = self
            .http
            .get(self.url.clone())
            .header(http::header::ACCEPT, "text/event-stream");
        if let Some(last) = self.last {
            request = request.header("last-event-id", last.to_string());
        }
        let mut response = tokio::time::timeout(idle, request.send())
            .await
            .map_err(|_| UpstreamError::Idle(idle))?
            .map_err(UpstreamError::Request)?;
        if !response.status().is_success() {
            return Err(UpstreamError::Status(response.status()));
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(|t| t.starts_with("text/event-stream")) {
            return Err(UpstreamError::ContentType(content_type.map(str::to_owned)));
        }
        tracing::info!(url = %self.url, last_event_id = ?self.last.map(|id| id.0), "order event stream open");
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        loop {
            let chunk = tokio::time::timeout(idle, response.chunk())
                .await
                .map_err(|_| UpstreamError::Idle(idle))?
                .map_err(UpstreamError::Read)?
                .ok_or(UpstreamError::Ended)?;
            *received = true;
            let parsed = parser.feed(&chunk, &mut events);
            *retry = parser.retry().or(*retry);
            // Events completed before a parse error still count.
            for event in events.drain(..) {
                self.accept(event);
            }
            parsed?;
        }
    }

    fn accept(&mut self, event: SseEvent) {
        if event.event.as_deref() != Some(ORDER_EVENT_TYPE) {
            tracing::debug!(event = ?event.event, "not an order event; skipped");
            return;
        }
        let Some(id) = event
            .id
            .as_deref()
            .and_then(|id| id.parse::<EventId>().ok())
        else {
            tracing::warn!(id = ?event.id, "order event without a valid id; skipped");
            return;
        };
        if self.last.is_some_and(|last| id <= last) {
            tracing::debug!(id = id.0, "order event seen already; skipped");
            return;
        }
        // Past it whatever its data: a replay would not make bad data good.
        self.last = Some(id);
        match serde_json::from_str::<OrderEvent>(&event.data) {
            Ok(event) => self.shared.publish(OrderEventEntry { id, event }),
            Err(error) => tracing::warn!(id = id.0, %error, "order event not decoded; skipped"),
        }
    }
}

/// The delay before reconnect attempt `attempt` (0: after a stream that
/// worked): `base * 2^attempt`, at most `max`, times a uniform 50-100 %, so
/// that the replicas do not all reconnect at once.
fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let full = base
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(max);
    full.mul_f64(rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn upstream(last: Option<EventId>) -> Upstream {
        let hub = OrderEvents::new(
            &Url::parse("http://127.0.0.1:9").unwrap(),
            crate::http::build_http_client().unwrap(),
            OrderEventsSettings::default(),
        );
        Upstream {
            url: hub.inner.url.clone(),
            http: hub.inner.http.clone(),
            settings: hub.inner.settings.clone(),
            shared: hub.inner.shared.clone(),
            last,
        }
    }

    fn order_event(id: &str, event: &str, order_id: &str) -> SseEvent {
        SseEvent {
            id: Some(id.into()),
            event: Some(event.into()),
            data: format!(
                r#"{{"event_type":"order.status_changed","order_id":"{order_id}","user_id":"u1","status":"paid","tracking_number":null,"at":"2026-12-06T07:00:00Z"}}"#
            ),
        }
    }

    fn kept(upstream: &Upstream) -> Vec<(u64, String)> {
        let state = upstream.shared.lock();
        let kept = state.replay.iter();
        kept.map(|e| (e.id.0, e.event.order_id.to_string()))
            .collect()
    }

    #[test]
    fn seen_ids_foreign_types_and_bad_events_are_skipped() {
        let mut upstream = upstream(Some(EventId(3)));
        upstream.accept(order_event("3", "order", "o-dup"));
        upstream.accept(order_event("4", "order", "o4"));
        upstream.accept(order_event("4", "order", "o-dup"));
        upstream.accept(order_event("2", "order", "o-old"));
        upstream.accept(order_event("5", "message", "o-other-type"));
        upstream.accept(order_event("x", "order", "o-bad-id"));
        upstream.accept(SseEvent {
            id: None,
            ..order_event("", "order", "o-no-id")
        });
        let mut bad = order_event("6", "order", "o6");
        bad.data = "{}".into();
        upstream.accept(bad);
        upstream.accept(order_event("7", "order", "o7"));
        assert_eq!(kept(&upstream), vec![(4, "o4".into()), (7, "o7".into())]);
        // A bad event still moves the resume point past it.
        assert_eq!(upstream.last, Some(EventId(7)));
        assert_eq!(
            upstream.shared.lock().complete_from,
            Some(EventId(4)),
            "from the first event seen"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(10));
        for _ in 0..100 {
            let first = backoff(base, max, 0);
            assert!(first >= base / 2 && first <= base, "{first:?}");
            let third = backoff(base, max, 2);
            assert!(third >= base * 2 && third <= base * 4, "{third:?}");
            let late = backoff(base, max, 40);
            assert!(late >= max / 2 && late <= max, "{late:?}");
        }
    }
}
