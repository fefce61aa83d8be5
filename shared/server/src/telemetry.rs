//! OpenTelemetry traces, exported over OTLP/HTTP (protobuf). Off unless an
//! OTLP endpoint is set; configured by OpenTelemetry's standard variables
//! with their standard meaning (see [`TraceConfig::from_env`]).
//!
//! # What a trace of a dashboard request looks like
//!
//! One trace per client request, continuing the client's `traceparent`
//! when it sent a valid one. For web-bff's dashboard:
//!
//! ```text
//! POST /graphql                          server    http.request.method=POST
//! │                                                http.route=/graphql url.path=/graphql
//! │                                                http.response.status_code=200
//! └─ query                               internal  graphql.operation.type=query
//!    │                                             graphql.operation.name=Dashboard
//!    │                                             graphql.document.hash=<SHA-256 of the query>
//!    │  first round, side by side:
//!    ├─ GET /users                       client    peer.service=user url.template=/users
//!    │                                             bff.cache.name=user bff.cache.result=miss
//!    ├─ GET /users/{id}/orders           client    peer.service=order
//!    ├─ GET /users/{id}/recommendations  client    peer.service=recommendation
//!    ├─ GET /users/{id}/analytics        client    peer.service=user
//!    │  second round, once the orders and recommendations are in:
//!    └─ GET /products                    client    peer.service=product (one batch)
//!                                                  bff.cache.name=product bff.cache.result=miss
//! ```
//!
//! (With warm entity caches the `GET /users` and `GET /products` spans
//! are missing or carry only the missed ids: a cache hit makes no call.)
//!
//! Each client span is one try (a retry is another span, with
//! `http.request.resend_count`); its `traceparent` header carries that
//! span's id, so the service's own spans hang under it. A call the circuit
//! breaker refused is a client span with `error.type=circuit_open` and an
//! error status; a 5xx answer sets the server span's status to error.
//! Attributes never hold variables, tokens or query strings: the server
//! span has the path only, the operation span a hash of the query text,
//! client spans the route template (`/users/{id}`), not the ids.
//!
//! # Cost
//!
//! With traces off nothing here runs on a request but a branch on a flag
//! read when the router was built, and one atomic load per GraphQL
//! operation and per downstream try. The spans made for traces only are
//! TRACE-level spans of target `otel`: log lines are the same with traces
//! on or off.
//! With traces on, spans go to a bounded queue
//! ([`TraceConfig::max_queue_size`]) that a background thread exports in
//! batches; a slow or absent collector never slows a request: when the
//! queue is full, spans are dropped and counted in
//! `bff_trace_spans_dropped_total`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use downstream::{RequestContext, TraceParent};
use futures::future::{BoxFuture, Either};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
    SpanExporter, SpanProcessor,
};
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;
use url::Url;

use crate::config::LogFormat;

/// Spans dropped because the export queue was full (a slow or absent
/// collector).
pub const TRACE_SPANS_DROPPED: &str = "bff_trace_spans_dropped_total";

/// Registers the help text of [`TRACE_SPANS_DROPPED`].
pub fn describe_metrics() {
    metrics::describe_counter!(
        TRACE_SPANS_DROPPED,
        "Trace spans dropped because the export queue was full (the OTLP collector is slow or down)."
    );
}

/// One export's longest wait for the collector when
/// `OTEL_EXPORTER_OTLP_TIMEOUT` is not set. Shorter than the standard 10 s:
/// while an export waits, spans queue up (and are dropped once the queue is
/// full), and at exit the last export must fit in the shutdown bound.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the process waits at exit for the last spans to be exported.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
/// The standard defaults of the batch processor (`OTEL_BSP_*`).
const DEFAULT_MAX_QUEUE_SIZE: usize = 2048;
const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_millis(5000);
const MAX_EXPORT_BATCH_SIZE: usize = 512;
/// Where OTLP/HTTP receives traces, under `OTEL_EXPORTER_OTLP_ENDPOINT`.
const TRACES_PATH: &str = "v1/traces";

/// Whether this process exports traces: set once, at start-up, when the
/// subscriber with the OpenTelemetry layer was installed.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are on. The front door reads it when it builds the
/// router, so start traces ([`init`]) before building the app.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The standard variables this module reads.
mod var {
    pub(super) const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    pub(super) const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    pub(super) const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
    pub(super) const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
    pub(super) const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
    pub(super) const TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
    pub(super) const TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
    pub(super) const TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
    pub(super) const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
    pub(super) const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
    pub(super) const SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    pub(super) const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
    pub(super) const MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
    pub(super) const SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
}

/// A standard variable with a value this process cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct TraceConfigError {
    /// The variable, e.g. `OTEL_TRACES_SAMPLER`.
    pub var: &'static str,
    /// What is wrong with it. Never quotes a header value or an endpoint:
    /// they can hold credentials.
    pub reason: String,
}

fn invalid(var: &'static str, reason: impl Into<String>) -> TraceConfigError {
    TraceConfigError {
        var,
        reason: reason.into(),
    }
}

/// Why traces could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("traces: {0}")]
    Config(#[from] TraceConfigError),
    #[error("traces: cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A `max_level_*` feature of `tracing` compiled the trace spans out.
    #[error("traces: this build leaves out TRACE-level spans (a max_level feature of tracing)")]
    CompiledOut,
}

/// Which traces are recorded (`OTEL_TRACES_SAMPLER`, with
/// `OTEL_TRACES_SAMPLER_ARG` the ratio of the ratio samplers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerChoice {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    /// The client's decision when it sent a `traceparent`, else always.
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

impl SamplerChoice {
    fn sampler(self) -> Sampler {
        let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
        match self {
            SamplerChoice::AlwaysOn => Sampler::AlwaysOn,
            SamplerChoice::AlwaysOff => Sampler::AlwaysOff,
            SamplerChoice::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
            SamplerChoice::ParentBasedAlwaysOn => parent_based(Sampler::AlwaysOn),
            SamplerChoice::ParentBasedAlwaysOff => parent_based(Sampler::AlwaysOff),
            SamplerChoice::ParentBasedTraceIdRatio(ratio) => {
                parent_based(Sampler::TraceIdRatioBased(ratio))
            }
        }
    }
}

/// How traces are exported. Build it with [`TraceConfig::from_env`].
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// The full URL spans are POSTed to (`…/v1/traces`).
    pub endpoint: Url,
    /// Sent with every export (e.g. an API key), from
    /// `OTEL_EXPORTER_OTLP_HEADERS`.
    pub headers: HashMap<String, String>,
    pub service_name: String,
    pub sampler: SamplerChoice,
    /// One export's longest wait for the collector.
    pub export_timeout: Duration,
    /// Spans waiting for export at most; more are dropped and counted.
    pub max_queue_size: usize,
    /// How often queued spans are exported (sooner when a batch is full).
    pub schedule_delay: Duration,
}

impl TraceConfig {
    /// The configuration from the process environment; `None` when traces
    /// are off: no OTLP endpoint set (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// used as is, or `OTEL_EXPORTER_OTLP_ENDPOINT`, under which spans go
    /// to `/v1/traces`), or `OTEL_SDK_DISABLED=true`. Also read:
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (only `http/protobuf`, the default),
    /// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME` (default: the
    /// binary's name), `OTEL_TRACES_SAMPLER` (default
    /// `parentbased_always_on`) and `OTEL_TRACES_SAMPLER_ARG`,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` (ms, default 2000),
    /// `OTEL_BSP_MAX_QUEUE_SIZE` and `OTEL_BSP_SCHEDULE_DELAY` (ms); the
    /// `_TRACES_` form of a variable wins over the general one. An empty
    /// variable counts as unset; any other value this process cannot use
    /// is an error naming the variable.
    pub fn from_env() -> Result<Option<Self>, TraceConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`TraceConfig::from_env`] over `lookup` instead of the environment.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, TraceConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let get_either = |specific: &'static str, general: &'static str| {
            get(specific)
                .map(|value| (specific, value))
                .or_else(|| get(general).map(|value| (general, value)))
        };
        if let Some(value) = get(var::SDK_DISABLED) {
            match value.trim().to_ascii_lowercase().as_str() {
                "true" => return Ok(None),
                "false" => {}
                _ => {
                    return Err(invalid(
                        var::SDK_DISABLED,
                        format!("{value:?} is neither true nor false"),
                    ));
                }
            }
        }
        let endpoint = match (get(var::TRACES_ENDPOINT), get(var::ENDPOINT)) {
            (Some(traces), _) => parse_endpoint(var::TRACES_ENDPOINT, &traces, false)?,
            (None, Some(base)) => parse_endpoint(var::ENDPOINT, &base, true)?,
            (None, None) => return Ok(None),
        };
        if let Some((name, protocol)) = get_either(var::TRACES_PROTOCOL, var::PROTOCOL)
            && protocol.trim() != "http/protobuf"
        {
            return Err(invalid(
                name,
                format!("{protocol:?} is not supported: the only protocol is http/protobuf"),
            ));
        }
        let headers = match get_either(var::TRACES_HEADERS, var::HEADERS) {
            Some((name, value)) => parse_headers(name, &value)?,
            None => HashMap::new(),
        };
        let export_timeout = match get_either(var::TRACES_TIMEOUT, var::TIMEOUT) {
            Some((name, value)) => Duration::from_millis(parse_number(name, &value)?),
            None => DEFAULT_EXPORT_TIMEOUT,
        };
        let max_queue_size = match get(var::MAX_QUEUE_SIZE) {
            Some(value) => match parse_number(var::MAX_QUEUE_SIZE, &value)? {
                0 => return Err(invalid(var::MAX_QUEUE_SIZE, "must be at least 1")),
                size => usize::try_from(size).unwrap_or(usize::MAX),
            },
            None => DEFAULT_MAX_QUEUE_SIZE,
        };
        let schedule_delay = match get(var::SCHEDULE_DELAY) {
            Some(value) => Duration::from_millis(parse_number(var::SCHEDULE_DELAY, &value)?),
            None => DEFAULT_SCHEDULE_DELAY,
        };
        Ok(Some(Self {
            endpoint,
            headers,
            service_name: get(var::SERVICE_NAME)
                .map_or_else(crate::binary_name, |name| name.trim().to_owned()),
            sampler: parse_sampler(get(var::SAMPLER), get(var::SAMPLER_ARG))?,
            export_timeout,
            max_queue_size,
            schedule_delay,
        }))
    }
}

/// An http(s) URL; with `append_path`, `/v1/traces` under it.
fn parse_endpoint(
    name: &'static str,
    value: &str,
    append_path: bool,
) -> Result<Url, TraceConfigError> {
    let url =
        Url::parse(value.trim()).map_err(|error| invalid(name, format!("not a URL ({error})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(name, "must be an http:// or https:// URL"));
    }
    // They would show in export errors; credentials go in headers.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            name,
            "must not hold credentials: send them with OTEL_EXPORTER_OTLP_HEADERS",
        ));
    }
    if !append_path {
        return Ok(url);
    }
    let mut base = url;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join(TRACES_PATH)
        .map_err(|error| invalid(name, format!("not a URL ({error})")))
}

/// `key=value` pairs separated by commas, values percent-encoded.
fn parse_headers(
    name: &'static str,
    value: &str,
) -> Result<HashMap<String, String>, TraceConfigError> {
    let mut headers = HashMap::new();
    for (index, entry) in value.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let position = index + 1;
        let Some((key, raw)) = entry.split_once('=') else {
            return Err(invalid(name, format!("entry {position} is not key=value")));
        };
        let key = key.trim();
        let decoded = percent_encoding::percent_decode_str(raw.trim())
            .decode_utf8()
            .map_err(|_| invalid(name, format!("the value of {key:?} is not UTF-8")))?;
        if HeaderName::try_from(key).is_err() {
            return Err(invalid(
                name,
                format!("entry {position}: not a header name"),
            ));
        }
        if HeaderValue::try_from(decoded.as_ref()).is_err() {
            return Err(invalid(
                name,
                format!("the value of {key:?} is not a header value"),
            ));
        }
        headers.insert(key.to_owned(), decoded.into_owned());
    }
    Ok(headers)
}

fn parse_number(name: &'static str, value: &str) -> Result<u64, TraceConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(name, format!("{value:?} is not a whole number")))
}

fn parse_sampler(
    sampler: Option<String>,
    arg: Option<String>,
) -> Result<SamplerChoice, TraceConfigError> {
    let ratio = || match &arg {
        None => Ok(1.0),
        Some(arg) => arg
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|ratio| (0.0..=1.0).contains(ratio))
            .ok_or_else(|| {
                invalid(
                    var::SAMPLER_ARG,
                    format!("{arg:?} is not a ratio between 0 and 1"),
                )
            }),
    };
    let Some(sampler) = sampler else {
        return Ok(SamplerChoice::ParentBasedAlwaysOn);
    };
    Ok(match sampler.trim() {
        "always_on" => SamplerChoice::AlwaysOn,
        "always_off" => SamplerChoice::AlwaysOff,
        "traceidratio" => SamplerChoice::TraceIdRatio(ratio()?),
        "parentbased_always_on" => SamplerChoice::ParentBasedAlwaysOn,
        "parentbased_always_off" => SamplerChoice::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => SamplerChoice::ParentBasedTraceIdRatio(ratio()?),
        other => {
            return Err(invalid(
                var::SAMPLER,
                format!(
                    "{other:?} is not supported: use always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                ),
            ));
        }
    })
}

/// The running trace pipeline. Keep it for the life of the process and
/// [`Traces::shutdown`] it at exit, so the last spans are sent.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

/// Starts logging (as [`crate::init_tracing`] does) and, when the
/// environment asks for it ([`TraceConfig::from_env`]), traces. Call it
/// before building the app. `Ok(None)`: no traces.
pub fn init(format: LogFormat) -> Result<Option<Traces>, TelemetryError> {
    init_with(format, TraceConfig::from_env()?)
}

/// [`init`] with the trace configuration given. Traces are on only if
/// this call installs the process's log subscriber (the first call does);
/// a later call starts no traces and returns `Ok(None)`.
pub fn init_with(
    format: LogFormat,
    config: Option<TraceConfig>,
) -> Result<Option<Traces>, TelemetryError> {
    let Some(config) = config else {
        crate::serve::init_tracing(format);
        return Ok(None);
    };
    if tracing::level_filters::STATIC_MAX_LEVEL < tracing::level_filters::LevelFilter::TRACE {
        return Err(TelemetryError::CompiledOut);
    }
    let traces = Traces::new(&config)?;
    if !crate::serve::install_subscriber(format, Some(traces.tracer())) {
        tracing::warn!("a log subscriber was installed first: no traces are exported");
        traces.provider.shutdown().ok();
        return Ok(None);
    }
    opentelemetry::global::set_tracer_provider(traces.provider.clone());
    downstream::spans::enable_client_spans();
    ENABLED.store(true, Ordering::Relaxed);
    tracing::info!(
        endpoint = %config.endpoint.origin().ascii_serialization(),
        service = %config.service_name,
        "exporting traces"
    );
    Ok(Some(traces))
}

impl Traces {
    fn new(config: &TraceConfig) -> Result<Self, TelemetryError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(config.endpoint.as_str())
            .with_timeout(config.export_timeout)
            .with_headers(config.headers.clone())
            .build()?;
        let queued = Arc::new(AtomicUsize::new(0));
        let batches = BatchConfigBuilder::default()
            .with_max_queue_size(config.max_queue_size)
            .with_max_export_batch_size(MAX_EXPORT_BATCH_SIZE.min(config.max_queue_size))
            .with_scheduled_delay(config.schedule_delay)
            .build();
        let exporter = DequeuingExporter {
            inner: exporter,
            queued: Arc::clone(&queued),
            failing: AtomicBool::new(false),
        };
        let processor = BoundedQueue {
            inner: BatchSpanProcessor::new(exporter, batches),
            queued,
            capacity: config.max_queue_size,
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(config.sampler.sampler())
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        Ok(Self { provider })
    }

    fn tracer(&self) -> SdkTracer {
        self.provider.tracer("bff-server")
    }

    /// Exports what is queued and stops, within [`SHUTDOWN_TIMEOUT`] (what
    /// is not sent by then is lost).
    pub async fn shutdown(self) {
        let provider = self.provider;
        let stopped =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
                .await;
        match stopped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "traces: the last spans may be lost"),
            Err(error) => tracing::warn!(%error, "traces: shutdown failed"),
        }
    }
}

/// The OpenTelemetry layer of the log subscriber: it turns the spans made
/// for traces (target [`TARGET`]: the server and GraphQL operation spans)
/// into OpenTelemetry spans, and nothing else (no log events).
pub(crate) fn layer<S>(tracer: SdkTracer) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // No attributes but ours; nothing computed per span that the
        // traces do not need.
        .with_location(false)
        .with_target(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.is_span() && metadata.target() == TARGET
        }))
}

/// The target of the spans made for traces only. They are TRACE-level,
/// so the log filter (`info` by default) leaves them out of the log lines,
/// which stay as they are with traces on or off; the OpenTelemetry layer
/// takes them whatever the level (but a build with a `max_level_*`
/// feature of `tracing` below trace has none: [`init`] refuses to start
/// traces then).
pub(crate) const TARGET: &str = "otel";

/// The OpenTelemetry server span of `request` (name `{method} {route}`), a
/// child of the client's `traceparent` when it sent a valid one.
fn server_span(request: &Request) -> Span {
    let method = request.method();
    let known = known_method(method);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let name = match (known, route) {
        (Some(method), Some(route)) => format!("{method} {route}"),
        (Some(method), None) => method.to_owned(),
        (None, Some(route)) => format!("HTTP {route}"),
        (None, None) => "HTTP".to_owned(),
    };
    let request_id = request
        .extensions()
        .get::<RequestContext>()
        .map(|context| context.request_id.as_str());
    let span = tracing::trace_span!(
        target: TARGET,
        "request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = known.unwrap_or("_OTHER"),
        http.route = route,
        // The path only: query strings can carry personal data.
        url.path = request.uri().path(),
        url.scheme = "http",
        http.response.status_code = Empty,
        error.type = Empty,
        // What the request's log lines carry, to go from one to the other.
        bff.request_id = request_id,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
    if parent.span().span_context().is_valid() {
        // Fails only for a span no layer records: nothing to continue.
        span.set_parent(parent).ok();
    }
    span
}

/// The methods the HTTP conventions name; any other is `_OTHER`.
fn known_method(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => return None,
    })
}

/// The service right inside the front door's trace layer. With traces on,
/// it runs the request in its OpenTelemetry server span ([`server_span`]),
/// the request's context takes that span's trace (so that downstream calls
/// are its children), and the span gets the response's status (an error
/// status for a 5xx). With traces off it only passes the request on (no
/// boxing, unlike a `from_fn` middleware).
#[derive(Debug, Clone)]
pub(crate) struct ServerSpan<S> {
    inner: S,
    traces: bool,
}

/// Makes [`ServerSpan`]s; `traces`: whether traces are on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerSpanLayer {
    pub(crate) traces: bool,
}

impl<S> tower::Layer<S> for ServerSpanLayer {
    type Service = ServerSpan<S>;

    fn layer(&self, inner: S) -> ServerSpan<S> {
        ServerSpan {
            inner,
            traces: self.traces,
        }
    }
}

impl<S, B> tower::Service<Request> for ServerSpan<S>
where
    S: tower::Service<Request, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<http::Response<B>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if !self.traces {
            return Either::Left(self.inner.call(request));
        }
        let span = server_span(&request);
        if let (Some(trace), Some(context)) = (
            trace_of(&span),
            request.extensions_mut().get_mut::<RequestContext>(),
        ) {
            context.trace = trace;
        }
        let answer = span.in_scope(|| self.inner.call(request));
        let recorder = span.clone();
        Either::Right(Box::pin(
            async move {
                let response = answer.await?;
                let status = response.status();
                // As i64: the OpenTelemetry layer would record a u64 as text.
                recorder.record("http.response.status_code", i64::from(status.as_u16()));
                if status.is_server_error() {
                    recorder.record("error.type", status.as_str());
                    recorder.record("otel.status_code", "ERROR");
                }
                Ok(response)
            }
            .instrument(span),
        ))
    }
}

/// The trace context downstream calls made under `span` carry: its trace
/// and span ids, and whether it is sampled. `None` for a span no
/// OpenTelemetry layer records.
pub(crate) fn trace_of(span: &Span) -> Option<TraceParent> {
    downstream::spans::trace_parent_of(span.context().span().span_context())
}

/// Makes `trace` the parent of `span`, a span started where no request's
/// span is current (a subscription's run, on its own task, continues the
/// trace of the request that opened it). Call it before reading the span's
/// context.
#[cfg(feature = "graphql")]
pub(crate) fn continue_trace(span: &Span, trace: &TraceParent) {
    let parent = opentelemetry::Context::new()
        .with_remote_span_context(downstream::spans::span_context_of(trace));
    // Fails only for a span no layer records: nothing to continue.
    span.set_parent(parent).ok();
}

/// A request's headers, as the W3C propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// The batch processor behind a queue bound of our own, which counts what
/// it drops (the SDK's processor drops as silently). Spans count as queued
/// from their end until their batch is handed to the exporter, so the
/// inner queue (of the same capacity) is never the one that is full.
#[derive(Debug)]
struct BoundedQueue {
    inner: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl SpanProcessor for BoundedQueue {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!(TRACE_SPANS_DROPPED).increment(1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, taking each batch it is handed off
/// [`BoundedQueue`]'s count, and logging when exports start failing (once,
/// not per batch) and when they work again.
#[derive(Debug)]
struct DequeuingExporter<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
    failing: AtomicBool,
}

impl<E: SpanExporter> SpanExporter for DequeuingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        // Never below zero, even for spans that did not come through the
        // queue's count.
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
                Some(queued.saturating_sub(spans))
            });
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("traces: exports work again");
                }
            }
            Err(error) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, spans, "traces: export failed; spans are lost until it works again");
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<TraceConfig>, TraceConfigError> {
        TraceConfig::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    fn on(vars: &[(&str, &str)]) -> TraceConfig {
        config(vars).unwrap().unwrap()
    }

    fn error(vars: &[(&str, &str)]) -> TraceConfigError {
        config(vars).unwrap_err()
    }

    const ENDPOINT: (&str, &str) = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");

    #[test]
    fn off_without_an_endpoint_or_when_disabled() {
        assert_eq!(config(&[]), Ok(None));
        assert_eq!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Ok(None));
        assert_eq!(config(&[ENDPOINT, ("OTEL_SDK_DISABLED", "TRUE")]), Ok(None));
        assert!(
            config(&[ENDPOINT, ("OTEL_SDK_DISABLED", "false")])
                .unwrap()
                .is_some()
        );
        // Without an endpoint the other variables are not even read.
        assert_eq!(config(&[("OTEL_TRACES_SAMPLER", "nonsense")]), Ok(None));
    }

    #[test]
    fn defaults() {
        let config = on(&[ENDPOINT]);
        assert_eq!(config.endpoint.as_str(), "http://collector:4318/v1/traces");
        assert!(config.headers.is_empty());
        assert_eq!(config.service_name, crate::binary_name());
        assert_eq!(config.sampler, SamplerChoice::ParentBasedAlwaysOn);
        assert_eq!(config.export_timeout, DEFAULT_EXPORT_TIMEOUT);
        assert_eq!(config.max_queue_size, 2048);
        assert_eq!(config.schedule_delay, Duration::from_secs(5));
    }

    #[test]
    fn the_traces_endpoint_is_used_as_is_and_wins() {
        let traces = (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://x.example/otlp/traces",
        );
        assert_eq!(
            on(&[traces, ENDPOINT]).endpoint.as_str(),
            "https://x.example/otlp/traces"
        );
        // A base with a path keeps it.
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://gw:80/otel/");
        assert_eq!(on(&[base]).endpoint.as_str(), "http://gw/otel/v1/traces");
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://gw/otel");
        assert_eq!(on(&[base]).endpoint.as_str(), "http://gw/otel/v1/traces");
    }

    #[test]
    fn settings() {
        let config = on(&[
            ENDPOINT,
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s%3Dcret, x-tenant = acme ,",
            ),
            ("OTEL_SERVICE_NAME", "web-bff-eu"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]);
        assert_eq!(
            config.headers,
            HashMap::from([
                ("api-key".to_owned(), "s=cret".to_owned()),
                ("x-tenant".to_owned(), "acme".to_owned()),
            ])
        );
        assert_eq!(config.service_name, "web-bff-eu");
        assert_eq!(config.sampler, SamplerChoice::ParentBasedTraceIdRatio(0.25));
        assert_eq!(config.export_timeout, Duration::from_millis(500));
        assert_eq!(config.max_queue_size, 64);
        assert_eq!(config.schedule_delay, Duration::from_millis(100));
        for (name, choice) in [
            ("always_on", SamplerChoice::AlwaysOn),
            ("always_off", SamplerChoice::AlwaysOff),
            ("traceidratio", SamplerChoice::TraceIdRatio(1.0)),
            ("parentbased_always_on", SamplerChoice::ParentBasedAlwaysOn),
            (
                "parentbased_always_off",
                SamplerChoice::ParentBasedAlwaysOff,
            ),
        ] {
            assert_eq!(
                on(&[ENDPOINT, ("OTEL_TRACES_SAMPLER", name)]).sampler,
                choice
            );
        }
        // The signal's own variable wins.
        let config = on(&[
            ENDPOINT,
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
        ]);
        assert_eq!(config.export_timeout, Duration::from_millis(700));
    }

    #[test]
    fn invalid_values_name_their_variable() {
        let cases: [(&[(&str, &str)], &str); 10] = [
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://x/traces")],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ),
            (
                &[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                &[
                    ENDPOINT,
                    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
                ],
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            ),
            (
                &[ENDPOINT, ("OTEL_EXPORTER_OTLP_HEADERS", "novalue")],
                "OTEL_EXPORTER_OTLP_HEADERS",
            ),
            (
                &[ENDPOINT, ("OTEL_TRACES_SAMPLER", "xray")],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                &[
                    ENDPOINT,
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                &[ENDPOINT, ("OTEL_SDK_DISABLED", "yes")],
                "OTEL_SDK_DISABLED",
            ),
            (
                &[ENDPOINT, ("OTEL_EXPORTER_OTLP_TIMEOUT", "2s")],
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ),
            (
                &[ENDPOINT, ("OTEL_BSP_MAX_QUEUE_SIZE", "0")],
                "OTEL_BSP_MAX_QUEUE_SIZE",
            ),
        ];
        for (vars, var) in cases {
            let error = error(vars);
            assert_eq!(error.var, var, "{vars:?}");
            assert!(
                error.to_string().starts_with(&format!("{var}: ")),
                "{error}"
            );
        }
    }

    #[test]
    fn errors_never_quote_header_values_or_endpoints() {
        let secret = "hunter2-secret";
        for vars in [
            [
                ENDPOINT,
                ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=hunter2-secret%0A"),
            ],
            [
                ENDPOINT,
                ("OTEL_EXPORTER_OTLP_HEADERS", "bad key=hunter2-secret"),
            ],
            [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "hunter2-secret:4318"),
                ("OTEL_SERVICE_NAME", "x"),
            ],
            [
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "https://me:hunter2-secret@collector",
                ),
                ("OTEL_SERVICE_NAME", "x"),
            ],
        ] {
            let error = error(&vars).to_string();
            assert!(!error.contains(secret), "{error}");
        }
    }
}
