//! An OTLP/HTTP collector inside the test: it accepts `POST /v1/traces`
//! (protobuf), decodes every export and keeps its spans. It can be made
//! slow (an export is answered only once it is fast again) or taken down
//! (its port closed, its connections dropped) and brought back up on the
//! same port, which the process's one exporter keeps pointing at.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// How long a slow collector holds an export at most.
const SLOW_FOR_AT_MOST: Duration = Duration::from_secs(60);

/// One span as received, with the resource it came with.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) span: Span,
    pub(crate) resource: Vec<KeyValue>,
}

impl Received {
    pub(crate) fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub(crate) fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// `None` for a root span.
    pub(crate) fn parent_id(&self) -> Option<String> {
        (!self.span.parent_span_id.is_empty()).then(|| hex(&self.span.parent_span_id))
    }

    pub(crate) fn name(&self) -> &str {
        &self.span.name
    }

    /// A string attribute.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        match value(&self.span.attributes, key)? {
            any_value::Value::StringValue(text) => Some(text),
            _ => None,
        }
    }

    /// An integer attribute.
    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        match value(&self.span.attributes, key)? {
            any_value::Value::IntValue(number) => Some(*number),
            _ => None,
        }
    }

    pub(crate) fn resource_str(&self, key: &str) -> Option<&str> {
        match value(&self.resource, key)? {
            any_value::Value::StringValue(text) => Some(text),
            _ => None,
        }
    }

    /// Every attribute value of the span and its resource, as text.
    pub(crate) fn all_values(&self) -> Vec<String> {
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
    pub(crate) fn status_code(&self) -> i32 {
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
pub(crate) struct Collector {
    port: u16,
    shared: Arc<Shared>,
    runtime: Mutex<Option<Runtime>>,
}

impl Collector {
    /// A collector up on an ephemeral port.
    pub(crate) fn start() -> Self {
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
    pub(crate) fn endpoint(&self) -> String {
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
    pub(crate) fn down(&self) {
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
    pub(crate) fn up(&self) {
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
    pub(crate) fn set_slow(&self, slow: bool) {
        self.shared.slow.send_replace(slow);
    }

    pub(crate) fn exports(&self) -> usize {
        self.shared.exports.load(Ordering::SeqCst)
    }

    /// Every span received so far of trace `trace_id` (hex).
    pub(crate) fn trace(&self, trace_id: &str) -> Vec<Received> {
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
