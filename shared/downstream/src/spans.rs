//! OpenTelemetry client spans: one per downstream try, made only once the
//! process turned traces on ([`enable_client_spans`]); until then nothing
//! here runs but one atomic load per try.
//!
//! A span's parent is the request's trace ([`RequestContext::trace`]: the
//! BFF's server span, or its GraphQL operation span), given explicitly
//! rather than taken from the task, so calls made from spawned tasks
//! (DataLoader batches, shared GETs) join the right trace. The
//! `traceparent` sent with the try carries the client span's own id, so the
//! service's spans hang under it.
//!
//! Attributes follow the OpenTelemetry HTTP client conventions:
//! `http.request.method`, `url.template` (the route, never the path with
//! its ids, nor the query), `server.address`, `server.port`,
//! `peer.service`, `http.request.resend_count` (retries),
//! `http.response.status_code`, `error.type` (the outcome of a failed try,
//! as `downstream_calls_total` names it); a call an entity cache made for
//! its misses has `bff.cache.name` and `bff.cache.result` = `miss`. A call
//! refused before trying (circuit open, deadline passed) is a span too,
//! with an error status.

use std::borrow::Cow;
use std::sync::OnceLock;

use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};

use crate::telemetry::Outcome;
use crate::{RequestContext, Service, TraceParent};

/// The tracer of client spans; set once traces are on.
static TRACER: OnceLock<BoxedTracer> = OnceLock::new();

/// Turns client spans on for the rest of the process, through the global
/// tracer provider (set that first). bff-server calls it when it starts
/// exporting traces.
pub fn enable_client_spans() {
    TRACER.get_or_init(|| opentelemetry::global::tracer("downstream"));
}

/// Whether client spans are made.
pub fn client_spans_enabled() -> bool {
    TRACER.get().is_some()
}

/// What a client span says about the try it covers, known before it starts.
pub(crate) struct TryInfo<'a> {
    pub(crate) service: Service,
    pub(crate) method: &'a http::Method,
    /// `GET /users/{id}`: the span's name.
    pub(crate) route: &'static str,
    pub(crate) host: Option<&'a str>,
    pub(crate) port: Option<u16>,
    /// Retries before this try (0 for the first).
    pub(crate) resend_count: u32,
    /// The entity cache this call fills, if any.
    pub(crate) cache: Option<&'static str>,
}

/// One started client span. Just the span (one pointer pair): it is kept
/// across the try's await, in every enclosing future.
pub(crate) struct ClientSpan {
    span: BoxedSpan,
}

impl ClientSpan {
    /// A started span for the try `info` describes, a child of `ctx`'s
    /// trace; `None` while traces are off.
    pub(crate) fn start(ctx: &RequestContext, info: &TryInfo<'_>) -> Option<Self> {
        let tracer = TRACER.get()?;
        let parent = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(ctx.trace.trace_id),
            SpanId::from(ctx.trace.span_id),
            if ctx.trace.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            false,
            TraceState::NONE,
        ));
        let template = info
            .route
            .split_once(' ')
            .map_or(info.route, |(_, path)| path);
        let mut attributes = Vec::with_capacity(9);
        attributes.extend([
            KeyValue::new("http.request.method", info.method.as_str().to_owned()),
            KeyValue::new("url.template", template),
            KeyValue::new("peer.service", info.service.name()),
        ]);
        if let Some(host) = info.host {
            attributes.push(KeyValue::new("server.address", host.to_owned()));
        }
        if let Some(port) = info.port {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        if info.resend_count > 0 {
            attributes.push(KeyValue::new(
                "http.request.resend_count",
                i64::from(info.resend_count),
            ));
        }
        if let Some(cache) = info.cache {
            attributes.push(KeyValue::new("bff.cache.name", cache));
            attributes.push(KeyValue::new("bff.cache.result", "miss"));
        }
        let span = tracer
            .span_builder(info.route)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        Some(Self { span })
    }

    /// The `traceparent` this try sends, a child of `parent`: the client
    /// span's id (`parent` itself if the tracer made no real span).
    pub(crate) fn trace(&self, parent: TraceParent) -> TraceParent {
        trace_parent_of(self.span.span_context()).unwrap_or(parent)
    }

    /// Ends the span with how the try went and the status it answered, if
    /// it answered.
    pub(crate) fn end(mut self, outcome: Outcome, status: Option<u16>) {
        if let Some(status) = status {
            self.span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if outcome != Outcome::Success {
            self.span
                .set_attribute(KeyValue::new("error.type", outcome.name()));
            self.span.set_status(Status::Error {
                description: Cow::Borrowed(outcome.name()),
            });
        }
        self.span.end();
    }
}

/// The `traceparent` naming `span`; `None` for an invalid (no-op) span.
pub fn trace_parent_of(span: &SpanContext) -> Option<TraceParent> {
    span.is_valid().then(|| TraceParent {
        trace_id: u128::from_be_bytes(span.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(span.span_id().to_bytes()),
        sampled: span.is_sampled(),
    })
}

/// The remote span context `trace` names: the parent of spans that
/// continue a trace outside the request that started it.
pub fn span_context_of(trace: &TraceParent) -> SpanContext {
    let flags = if trace.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(
        TraceId::from_bytes(trace.trace_id.to_be_bytes()),
        SpanId::from_bytes(trace.span_id.to_be_bytes()),
        flags,
        true,
        TraceState::default(),
    )
}

/// Ends `span`, if there is one (see [`ClientSpan::end`]).
pub(crate) fn end(span: Option<ClientSpan>, outcome: Outcome, status: Option<u16>) {
    if let Some(span) = span {
        span.end(outcome, status);
    }
}
