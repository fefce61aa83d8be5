//! Per-request context every downstream call carries: the ids that let a call
//! be traced back to the client request, and the signed-in viewer.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// What one client request passes to every downstream call it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// Sent as `x-request-id`: the client's own, or one generated for the request.
    pub request_id: String,
    /// Sent as `traceparent`: a child of the client's trace, or the root of a new one.
    pub trace: TraceParent,
    /// Sent as `x-user-id` for a signed-in viewer.
    pub user_id: Option<String>,
    /// When the whole client request must be answered. Every downstream call
    /// (retries and back-off included) ends by then; `None` bounds each call
    /// by its service's timeout only.
    pub deadline: Option<Instant>,
    /// Entities served stale (their service failed) while answering this
    /// request; shared by every clone of the context.
    pub stale: StaleMarks,
    /// Downstream calls made for this request and the time spent waiting
    /// on them; shared by every clone of the context.
    pub waits: DownstreamWaits,
}

impl RequestContext {
    /// A context for work that no client request started (start-up checks, tests).
    pub fn background() -> Self {
        Self {
            request_id: generate_request_id(),
            trace: TraceParent::new_root(),
            user_id: None,
            deadline: None,
            stale: StaleMarks::default(),
            waits: DownstreamWaits::default(),
        }
    }

    /// The same context with a deadline `budget` from now.
    pub fn with_timeout(self, budget: Duration) -> Self {
        self.with_deadline(Instant::now() + budget)
    }

    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Time left before the deadline, if there is one (zero once it passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    pub fn with_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }
}

/// The entities one request was served from stale copies, as `kind:id`
/// (e.g. `product:p1`), so that the response can say so. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct StaleMarks(Arc<Mutex<BTreeSet<String>>>);

impl StaleMarks {
    pub fn record(&self, kind: &str, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(format!("{kind}:{id}"));
    }

    /// The mark of `kind`/`id` (`kind:id`) if it was served stale. Cheap
    /// when nothing was: the usual case.
    pub fn mark_of(&self, kind: &str, id: &str) -> Option<String> {
        let marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if marks.is_empty() {
            return None;
        }
        let mark = format!("{kind}:{id}");
        marks.contains(&mark).then_some(mark)
    }

    /// What was served stale so far, sorted.
    pub fn list(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

/// Equal when they hold the same marks.
impl PartialEq for StaleMarks {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.list() == other.list()
    }
}

impl Eq for StaleMarks {}

/// What one client request waited on downstream: the tries it sent, and
/// the wall time during which at least one of its calls was in flight (the
/// union of the calls' intervals, not their sum: three calls in parallel
/// for 10 ms are 10 ms of waiting). The front door subtracts that from the
/// request's duration to get the time spent in the BFF itself. Clones share
/// it.
#[derive(Debug, Clone, Default)]
pub struct DownstreamWaits(Arc<Mutex<Waits>>);

#[derive(Debug, Default)]
struct Waits {
    tries: u64,
    in_flight: u32,
    /// When `in_flight` last went from 0 to 1.
    since: Option<Instant>,
    /// Closed intervals so far.
    waited: Duration,
}

impl DownstreamWaits {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waits> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A call starts waiting; it stops when the guard is dropped (also when
    /// the call's future is, e.g. past the request's deadline).
    pub fn enter(&self) -> WaitGuard<'_> {
        let mut waits = self.lock();
        if waits.in_flight == 0 {
            waits.since = Some(Instant::now());
        }
        waits.in_flight += 1;
        WaitGuard(self)
    }

    /// One try sent to a service.
    pub fn count_try(&self) {
        self.lock().tries += 1;
    }

    /// Tries sent so far.
    pub fn tries(&self) -> u64 {
        self.lock().tries
    }

    /// Wall time with at least one call in flight, up to now.
    pub fn waited(&self) -> Duration {
        let waits = self.lock();
        let open = waits
            .since
            .filter(|_| waits.in_flight > 0)
            .map(|since| since.elapsed());
        waits.waited + open.unwrap_or_default()
    }
}

/// Equal always: what was measured is no part of a context's identity.
impl PartialEq for DownstreamWaits {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for DownstreamWaits {}

/// Ends a call's wait when dropped; see [`DownstreamWaits::enter`].
#[derive(Debug)]
pub struct WaitGuard<'a>(&'a DownstreamWaits);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let mut waits = self.0.lock();
        waits.in_flight = waits.in_flight.saturating_sub(1);
        if waits.in_flight == 0
            && let Some(since) = waits.since.take()
        {
            waits.waited += since.elapsed();
        }
    }
}

/// A random 128-bit id in hex: unique enough to find one request in the logs.
pub fn generate_request_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// A W3C trace context (`traceparent` header, version 00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    /// Our span: the parent of whatever the downstream service records.
    pub span_id: u64,
    pub sampled: bool,
}

impl TraceParent {
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        Self {
            trace_id: rng.random_range(1..=u128::MAX),
            span_id: rng.random_range(1..=u64::MAX),
            sampled: true,
        }
    }

    /// Continues the caller's trace with a fresh span of ours; `None` when the
    /// header is not a valid version-00 `traceparent`.
    pub fn child_of(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let is_hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if version != "00"
            || parts.next().is_some()
            || !is_hex(trace, 32)
            || !is_hex(parent, 16)
            || !is_hex(flags, 2)
        {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let parent_id = u64::from_str_radix(parent, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        if trace_id == 0 || parent_id == 0 {
            return None;
        }
        Some(Self {
            trace_id,
            span_id: rand::rng().random_range(1..=u64::MAX),
            sampled: flags & 1 == 1,
        })
    }
}

impl TraceParent {
    /// The header text, `00-{trace:032x}-{span:016x}-{flags:02x}`, written
    /// without the formatting machinery: every downstream call sends it.
    pub(crate) fn header_bytes(&self) -> [u8; 55] {
        fn hex(out: &mut [u8], mut value: u128) {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            for byte in out.iter_mut().rev() {
                *byte = DIGITS[(value & 0xf) as usize];
                value >>= 4;
            }
        }
        let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex(&mut out[3..35], self.trace_id);
        hex(&mut out[36..52], u128::from(self.span_id));
        hex(&mut out[53..55], u128::from(u8::from(self.sampled)));
        out
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_trace_with_a_new_span() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let child = TraceParent::child_of(header).expect("valid header");
        let text = child.to_string();
        assert!(text.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(text.ends_with("-01"));
        assert_ne!(&text[36..52], "00f067aa0ba902b7");
    }

    #[test]
    fn rejects_malformed_traces() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::child_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_bytes_are_the_display_form() {
        let cases = [
            TraceParent::new_root(),
            TraceParent {
                trace_id: 1,
                span_id: u64::MAX,
                sampled: false,
            },
            TraceParent {
                trace_id: u128::MAX,
                span_id: 0x00f0_67aa_0ba9_02b7,
                sampled: true,
            },
        ];
        for trace in cases {
            assert_eq!(trace.header_bytes(), trace.to_string().as_bytes());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_are_the_union_of_overlapping_calls() {
        let waits = DownstreamWaits::default();
        let step = Duration::from_millis(10);
        let clone = waits.clone();
        {
            // Overlapping, from two clones: 20 ms, not 30.
            let _first = waits.enter();
            tokio::time::advance(step).await;
            let _second = clone.enter();
            tokio::time::advance(step).await;
        }
        // Nothing in flight: not counted.
        tokio::time::advance(step).await;
        let nested = waits.enter();
        let inner = waits.enter();
        tokio::time::advance(step).await;
        drop(inner);
        tokio::time::advance(step).await;
        assert_eq!(waits.waited(), 4 * step, "open interval counted up to now");
        drop(nested);
        tokio::time::advance(step).await;
        assert_eq!(waits.waited(), 4 * step);
        waits.count_try();
        waits.clone().count_try();
        assert_eq!(waits.tries(), 2);
    }

    #[test]
    fn root_trace_formats_as_version_00() {
        let text = TraceParent::new_root().to_string();
        assert_eq!(text.len(), 55);
        assert!(text.starts_with("00-") && text.ends_with("-01"));
    }
}
