//! Traces in end-to-end tests: an OTLP/HTTP collector inside the test
//! process, and the process's traces exported to it.
//!
//! The collector accepts `POST /v1/traces` (protobuf), decodes every
//! export and keeps its spans. It can be made slow (an export is answered
//! only once it is fast again) or taken down (its port closed, its
//! connections dropped) and brought back up on the same port, which the
//! process's one exporter keeps pointing at.
//!
//! The tracer provider and the log subscriber are the process's: a test
//! binary that uses this module calls [`collector`] first in every test
//! (before it builds an app: the front door reads whether traces are on
//! when it is built), holds [`SERIAL`] (its tests share the collector and
//! the export queue), and does nothing else with logging.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use bff_server::LogFormat;
use bff_server::telemetry::{self, TraceConfig, Traces};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// How long a slow collector holds an export at most.
const SLOW_FOR_AT_MOST: Duration = Duration::from_secs(60);

/// Spans the export queue holds: small, so that a slow collector fills it.
pub const QUEUE: usize = 64;

/// Span kinds and a status code as OTLP encodes them.
pub const INTERNAL: i32 = 1;
pub const SERVER: i32 = 2;
pub const CLIENT: i32 = 3;
pub const ERROR: i32 = 2;

/// One test at a time: the tests of a binary share the collector (and make
/// it slow or take it down) and the export queue.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process's collector, with traces turned on and exported to it (as
/// an operator would set them, read as the process reads them).
pub fn collector() -> &'static Collector {
    static SETUP: OnceLock<(Collector, Traces)> = OnceLock::new();
    &SETUP
        .get_or_init(|| {
            let collector = Collector::start();
            let endpoint = collector.endpoint();
            let config = TraceConfig::from_lookup(|name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                "OTEL_BSP_SCHEDULE_DELAY" => Some("50".into()),
                "OTEL_BSP_MAX_QUEUE_SIZE" => Some(QUEUE.to_string()),
                // A slow collector holds an export until the test lets it go.
                "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("60000".into()),
                _ => None,
            })
            .unwrap();
            let traces = telemetry::init_with(LogFormat::Text, config)
                .unwrap()
                .expect("traces are on");
            assert!(telemetry::enabled());
            (collector, traces)
        })
        .0
}

/// The spans of trace `trace_id`, once at least `count` arrived (and a
/// moment more, for any straggler).
pub async fn wait_for_trace(trace_id: &str, count: usize) -> Vec<Received> {
    match arrival(trace_id, count, Duration::from_secs(30)).await {
        Ok(spans) => spans,
        Err(found) => panic!(
            "trace {trace_id}: {} of {count} spans arrived: {found:#?}",
            found.len()
        ),
    }
}

/// The spans of trace `trace_id` once `count` arrived, or what did
/// within `patience`.
pub async fn arrival(
    trace_id: &str,
    count: usize,
    patience: Duration,
) -> Result<Vec<Received>, Vec<Received>> {
    let deadline = Instant::now() + patience;
    loop {
        let found = collector().trace(trace_id);
        if found.len() >= count {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(collector().trace(trace_id));
        }
        if Instant::now() >= deadline {
            return Err(found);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `(trace id, parent span id, flags)` of a `traceparent` header.
pub fn traceparent(header: &str) -> (String, String, String) {
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[0], "00", "{header}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

/// The one trace id of these `traceparent` headers.
pub fn one_trace_id<'a>(headers: impl IntoIterator<Item = &'a str>) -> String {
    let ids: BTreeSet<String> = headers
        .into_iter()
        .map(|header| traceparent(header).0)
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids.into_iter().next().unwrap()
}

pub fn of_kind(spans: &[Received], kind: i32) -> Vec<&Received> {
    spans.iter().filter(|span| span.span.kind == kind).collect()
}

pub fn one_of_kind(spans: &[Received], kind: i32) -> &Received {
    let found = of_kind(spans, kind);
    assert_eq!(found.len(), 1, "{kind}: {spans:#?}");
    found[0]
}

pub fn named<'a>(spans: &[&'a Received], name: &str) -> &'a Received {
    let found: Vec<_> = spans.iter().filter(|span| span.name() == name).collect();
    assert_eq!(found.len(), 1, "{name}: {spans:#?}");
    found[0]
}

/// Whether `inner` ran within `outer`.
pub fn within(inner: &Received, outer: &Received) -> bool {
    inner.span.start_time_unix_nano >= outer.span.start_time_unix_nano
        && inner.span.end_time_unix_nano <= outer.span.end_time_unix_nano
}

/// The value of `bff_trace_spans_dropped_total`, 0 before the first drop.
pub fn spans_dropped() -> f64 {
    let rendered = bff_server::metrics::install_prometheus().unwrap().render();
    rendered
        .lines()
        .filter(|line| line.starts_with(telemetry::TRACE_SPANS_DROPPED))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One span as received, with the resource it came with.
#[derive(Debug, Clone)]
pub struct Received {
    pub span: Span,
    pub resource: Vec<KeyValue>,
}

impl Received {
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// `None` for a root span.
    pub fn parent_id(&self) -> Option<String> {
        (!self.span.parent_span_id.is_empty()).then(|| hex(&self.span.parent_span_id))
    }

    pub fn name(&self) -> &str {
        &self.span.name
    }

    /// A string attribute.
    pub fn str(&self, key: &str) -> Option<&str> {
        match value(&self.span.attributes, key)? {
            any_value::Value::StringValue(text) => Some(text),
            _ => None,
        }
    }

    /// An integer attribute.
    pub fn int(&self, key: &str) -> Option<i64> {
        match value(&self.span.attributes, key)? {
            any_value::Value::IntValue(number) => Some(*number),
            _ => None,
        }
    }

    pub fn resource_str(&self, key: &str) -> Option<&str> {
        match value(&self.resource, key)? {
            any_value::Value::StringValue(text) => Some(text),
            _ => None,
        }
    }

    /// Every attribute value of the span and its resource, as text.
    pub fn all_values(&self) -> Vec<String> {
        self.span
            .attributes
            .iter()
            .chain(&self.resource)
            .chain(self.span.events.iter().flat_map(|event| &event.attributes))
            .filter_map(|attribute| attribute.value.as_ref())
            .map(|value| format!("{value:?}"))
            .chain([self.span.name.clone()])
            .collect()
    }

    /// The status code: 0 unset, 1 ok, 2 error.
    pub fn status_code(&self) -> i32 {
        self.span.status.as_ref().map_or(0, |status| status.code)
    }
}

fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)?
        .value
        .as_ref()
        .and_then(|value: &AnyValue| value.value.as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[derive(Debug)]
struct Shared {
    spans: Mutex<Vec<Received>>,
    /// Exports received (decoded or not).
    exports: AtomicUsize,
    slow: watch::Sender<bool>,
}

/// The collector. Its server runs on a runtime of its own, so that it
/// outlives the test (each has its runtime) that started it.
#[derive(Debug)]
pub struct Collector {
    port: u16,
    shared: Arc<Shared>,
    runtime: Mutex<Option<Runtime>>,
}

impl Collector {
    /// A collector up on an ephemeral port.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let collector = Self {
            port: listener.local_addr().unwrap().port(),
            shared: Arc::new(Shared {
                spans: Mutex::default(),
                exports: AtomicUsize::new(0),
                slow: watch::Sender::new(false),
            }),
            runtime: Mutex::default(),
        };
        collector.serve(listener);
        collector
    }

    /// The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn serve(&self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(Arc::clone(&self.shared));
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        *self.runtime.lock().unwrap() = Some(runtime);
    }

    /// Closes the port and every connection to it (returns once a connect
    /// is refused: the runtime drops its tasks in the background).
    pub fn down(&self) {
        if let Some(runtime) = self.runtime.lock().unwrap().take() {
            runtime.shutdown_background();
        }
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let closed = (0..100).any(|_| {
            let refused = std::net::TcpStream::connect(address).is_err();
            if !refused {
                std::thread::sleep(Duration::from_millis(20));
            }
            refused
        });
        assert!(closed, "the collector's port stayed open");
    }

    /// Listens again, on the same port.
    pub fn up(&self) {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        // The old socket may take a moment to be released.
        let listener = (0..50)
            .find_map(|_| {
                std::net::TcpListener::bind(address)
                    .inspect_err(|_| std::thread::sleep(Duration::from_millis(100)))
                    .ok()
            })
            .unwrap();
        self.serve(listener);
    }

    /// Slow: each export is held until the collector is fast again.
    pub fn set_slow(&self, slow: bool) {
        self.shared.slow.send_replace(slow);
    }

    pub fn exports(&self) -> usize {
        self.shared.exports.load(Ordering::SeqCst)
    }

    /// Every span received so far of trace `trace_id` (hex).
    pub fn trace(&self, trace_id: &str) -> Vec<Received> {
        self.shared
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|received| received.trace_id() == trace_id)
            .cloned()
            .collect()
    }
}

async fn receive(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    shared.exports.fetch_add(1, Ordering::SeqCst);
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    {
        let mut spans = shared.spans.lock().unwrap();
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|resource| resource.attributes)
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                spans.extend(scope_spans.spans.into_iter().map(|span| Received {
                    span,
                    resource: resource.clone(),
                }));
            }
        }
    }
    let mut slow = shared.slow.subscribe();
    let _ = tokio::time::timeout(SLOW_FOR_AT_MOST, slow.wait_for(|slow| !slow)).await;
    StatusCode::OK
}
