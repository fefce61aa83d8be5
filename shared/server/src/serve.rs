//! Running a BFF: logging set-up, listening, connection hygiene (header-read
//! and keep-alive timeouts, a cap on open connections, `Host` checks),
//! graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::uri::Authority;
use http::{Request, Version, header};
use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, ConnectionConfig, ENV_ADMIN_LISTEN, ENV_LISTEN, LogFormat};
use crate::error::BffError;
use crate::health::{Draining, admin_router};

/// How long in-flight requests may take to finish after a shutdown signal.
/// Requests are bounded by `request_timeout_ms` already; this also bounds
/// connections that never go idle. Below Kubernetes' default 30 s grace.
pub const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} ({var}): {source}")]
    Bind {
        addr: SocketAddr,
        var: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Installs the global log subscriber: level filter from `RUST_LOG`
/// (default `info`), text or JSON lines. Calling it again keeps the first
/// subscriber, so tests and binaries can both call it. Traces:
/// [`crate::telemetry::init`].
pub fn init_tracing(format: LogFormat) {
    install_subscriber(format, None);
}

/// [`init_tracing`], plus, given a tracer, the OpenTelemetry layer that
/// exports the spans meant for traces ([`crate::telemetry`]); the log lines
/// are the same either way. Whether this call installed the subscriber.
pub(crate) fn install_subscriber(
    format: LogFormat,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) -> bool {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, fmt};

    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(error) => {
            if std::env::var_os(EnvFilter::DEFAULT_ENV).is_some() {
                // Logging is not up yet, so this cannot go through tracing.
                eprintln!("ignoring invalid RUST_LOG ({error}); logging at info");
            }
            EnvFilter::new("info")
        }
    };
    // Err only means a subscriber is already installed: keep that one.
    let Some(tracer) = tracer else {
        // Without traces, the subscriber as it always was: one global
        // filter, no per-layer filtering on the way of every event.
        let builder = tracing_subscriber::fmt().with_env_filter(filter);
        return match format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().with_current_span(true).try_init(),
        }
        .is_ok();
    };
    // The log filter applies to the log lines only: the trace spans are
    // made whatever `RUST_LOG` says.
    let registry = tracing_subscriber::registry();
    match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_filter(filter))
            .with(crate::telemetry::layer(tracer))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_filter(filter),
            )
            .with(crate::telemetry::layer(tracer))
            .try_init(),
    }
    .is_ok()
}

/// Listens on `config.listen` (the BFF's routes) and `config.admin_listen`
/// ([`admin_router`]) and serves both until SIGTERM or Ctrl-C, then drains
/// in-flight requests.
pub async fn serve(router: Router, config: &Config) -> Result<(), ServeError> {
    let listeners = Listeners::bind(config).await?;
    serve_listeners(listeners, router, config, shutdown_signal()).await
}

/// A BFF's two bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// Clients: the BFF's routes behind the front door.
    pub public: TcpListener,
    /// The platform: [`admin_router`].
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds `config.listen` and `config.admin_listen`.
    pub async fn bind(config: &Config) -> Result<Self, ServeError> {
        let bind = |addr: SocketAddr, var: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, var, source })
        };
        Ok(Self {
            public: bind(config.listen, ENV_LISTEN).await?,
            admin: bind(config.admin_listen, ENV_ADMIN_LISTEN).await?,
        })
    }
}

/// Serves `router` on the public listener and [`admin_router`] on the
/// admin one until `shutdown` completes. Then the public listener stops
/// accepting and drains (see [`serve_with_config`]) while the admin
/// listener keeps answering, `/readyz` with 503, and `/metrics`; it stops
/// once the drain is over.
pub async fn serve_listeners<F>(
    listeners: Listeners,
    router: Router,
    config: &Config,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let draining = Draining::new();
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(accept_loop(
        listeners.admin,
        admin_router(config),
        config.connections,
        async {
            // Err: the sender is gone, which also means stop.
            let _ = admin_stopped.await;
        },
        Draining::new(),
        draining.clone(),
    ));
    let served = accept_loop(
        listeners.public,
        router,
        config.connections,
        shutdown,
        draining.clone(),
        draining,
    )
    .await;
    // Err: the admin loop already ended.
    let _ = stop_admin.send(());
    match admin.await {
        Ok(admin_served) => admin_served?,
        Err(error) => tracing::error!(%error, "the admin listener failed"),
    }
    served
}

/// [`serve_with_config`] with the default [`ConnectionConfig`].
pub async fn serve_with_shutdown<F>(
    listener: TcpListener,
    router: Router,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_with_config(listener, router, ConnectionConfig::default(), shutdown).await
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting connections and lets in-flight requests finish (for at most
/// [`SHUTDOWN_DRAIN_TIMEOUT`]). Handlers can extract
/// `ConnectInfo<SocketAddr>` (the client address, for rate limiting).
///
/// Each connection is an HTTP/1.1 connection of hyper's, with the
/// header-read and keep-alive timeouts of `connections`; at most
/// `connections.max_open` are open at once (more are closed on accept and
/// counted). An accept error (out of file descriptors, say) is logged and
/// waited out, never the end of the server.
pub async fn serve_with_config<F>(
    listener: TcpListener,
    router: Router,
    connections: ConnectionConfig,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let draining = Draining::new();
    accept_loop(
        listener,
        router,
        connections,
        shutdown,
        draining.clone(),
        draining,
    )
    .await
}

/// Where connections come from: a `TcpListener`, or in unit tests one that
/// fails on purpose.
pub(crate) trait Accept: Send {
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(TcpStream, SocketAddr)>> + Send;
    fn local_addr(&self) -> std::io::Result<SocketAddr>;
}

impl Accept for TcpListener {
    async fn accept(&mut self) -> std::io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self).await
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

/// Serves until `shutdown`, then starts `draining` and waits for open
/// connections. Each request carries `reported` (whether the process
/// drains, for `/readyz`): the admin listener reports the public one's.
pub(crate) async fn accept_loop<L, F>(
    mut listener: L,
    router: Router,
    connections: ConnectionConfig,
    shutdown: F,
    draining: Draining,
    reported: Draining,
) -> Result<(), ServeError>
where
    L: Accept,
    F: Future<Output = ()> + Send + 'static,
{
    // Before the first connection, so that no connection metric is lost.
    crate::metrics::install_prometheus();
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let http = http1_builder(&connections);
    let header_read_timeout = connections.header_read_timeout();
    let slots = Arc::new(Semaphore::new(connections.max_open));
    let mut open = JoinSet::new();
    let mut accept_errors = AcceptErrors::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            // Reaps finished connection tasks so the set does not grow.
            Some(finished) = open.join_next(), if !open.is_empty() => {
                if let Err(error) = finished {
                    tracing::error!(%error, "a connection task failed");
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                accept_errors.reset();
                accepted
            }
            Err(error) => {
                let Some(pause) = accept_errors.pause_after(&error) else {
                    continue;
                };
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Over the cap: closing at once costs nothing, and a client
            // (or load balancer) sees the refusal right away.
            metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
            drop(stream);
            continue;
        };
        let connection = Connection {
            http: http.clone(),
            header_read_timeout,
            router: router.clone(),
            peer,
            draining: draining.subscribe(),
            reported: reported.clone(),
            slot,
        };
        open.spawn(connection.serve(stream));
    }
    // Stop accepting first: new connections now fail instead of waiting.
    drop(listener);
    tracing::info!(
        connections = open.len(),
        "shutting down: draining in-flight requests"
    );
    draining.start();
    let drained = tokio::time::timeout(SHUTDOWN_DRAIN_TIMEOUT, async {
        while open.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            ?SHUTDOWN_DRAIN_TIMEOUT,
            connections = open.len(),
            "drain deadline passed: dropping open connections"
        );
        open.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The HTTP/1 settings every connection shares.
///
/// Why hyper's `header_read_timeout` is set to the keep-alive timeout:
/// hyper starts that timer whenever it waits for a request head, which on a
/// kept-alive connection is also the idle wait for the next request
/// (`proto/h1/conn.rs`, `poll_read_head`). One timer cannot be both 10 s to
/// send a head and 75 s to idle, so each connection gets its own
/// [`HeadTimer`], which shortens the wait to the header-read timeout on a
/// new connection and as soon as the first byte of a head arrives.
fn http1_builder(connections: &ConnectionConfig) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.header_read_timeout(connections.keep_alive_timeout());
    builder
}

/// One accepted connection and what it needs to be served.
struct Connection {
    http: http1::Builder,
    header_read_timeout: Duration,
    router: Router,
    peer: SocketAddr,
    draining: watch::Receiver<bool>,
    reported: Draining,
    slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let Connection {
            mut http,
            header_read_timeout,
            router,
            peer,
            mut draining,
            reported,
            slot,
        } = self;
        // Responses are written whole; Nagle would only hold the last
        // segment back waiting for an ACK.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let reads = Arc::new(AtomicU64::new(0));
        http.timer(HeadTimer {
            reads: Arc::clone(&reads),
            header_read_timeout,
            first_wait: AtomicBool::new(true),
        });
        let io = TokioIo::new(ClientSocket {
            stream,
            reads,
            _slot: slot,
            _open: OpenConnection::new(),
        });
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            let reported = reported.clone();
            // Boxed: hyper keeps the slot of a request's future for the
            // connection's life, so inline its ~1.4 KB would stay with every
            // idle or streaming connection; boxed, it is freed with the response.
            let answer: BoxFuture<'static, Result<Response, Infallible>> =
                Box::pin(async move { Ok(handle(router, peer, reported, request).await) });
            answer
        });
        // Upgrades: GraphQL subscriptions over WebSocket.
        let connection = http.serve_connection(io, service).with_upgrades();
        let mut connection = std::pin::pin!(connection);
        let mut shutting_down = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        // Timeouts and clients that went away are routine.
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                    break;
                }
                // Err: the server is gone; finish the connection anyway.
                _ = draining.wait_for(|draining| *draining), if !shutting_down => {
                    shutting_down = true;
                    // Idle connections close now; busy ones after their response.
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Answers one request: the `Host` rule of RFC 9112, then the router, with
/// the client's address for `ConnectInfo<SocketAddr>`.
async fn handle(
    router: Router,
    peer: SocketAddr,
    draining: Draining,
    request: Request<Incoming>,
) -> Response {
    if let Some(problem) = host_problem(&request) {
        return BffError::BadUserInput(problem.into()).into_response();
    }
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(ConnectInfo(peer));
    request.extensions_mut().insert(draining);
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without
/// a `Host` header, and to any request with more than one or an invalid one.
fn host_problem<B>(request: &Request<B>) -> Option<&'static str> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if request.version() == Version::HTTP_11 => {
            Some("an HTTP/1.1 request needs a Host header")
        }
        (Some(_), Some(_)) => Some("a request may have only one Host header"),
        // Empty is allowed: a target without an authority (RFC 9112 §3.2).
        (Some(host), None)
            if !host.is_empty()
                && host
                    .to_str()
                    .ok()
                    .and_then(|host| host.parse::<Authority>().ok())
                    .is_none() =>
        {
            Some("the Host header is not a host")
        }
        _ => None,
    }
}

/// Keeps the open-connections gauge: one up while it lives.
struct OpenConnection;

impl OpenConnection {
    fn new() -> Self {
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).increment(1.0);
        Self
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// A client's socket, counting the reads that returned data: how
/// [`HeadWait`] sees the first byte of a request head arrive. It holds the
/// connection's place under the cap and in the open-connections gauge, so
/// both last as long as the socket, also after an upgrade to WebSocket
/// (when hyper's connection is done and the socket lives on).
struct ClientSocket {
    stream: TcpStream,
    reads: Arc<AtomicU64>,
    _slot: OwnedSemaphorePermit,
    _open: OpenConnection,
}

impl AsyncRead for ClientSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The timer of one connection. hyper asks it for one sleep per wait for a
/// request head (and for nothing else on an HTTP/1 server connection), with
/// the deadline of the keep-alive timeout (see [`http1_builder`]).
struct HeadTimer {
    reads: Arc<AtomicU64>,
    header_read_timeout: Duration,
    /// A new connection has no idle time: it must send its head promptly.
    first_wait: AtomicBool,
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(std::time::Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        let first = self.first_wait.swap(false, Ordering::Relaxed);
        let deadline = if first {
            tokio::time::Instant::now() + self.header_read_timeout
        } else {
            tokio::time::Instant::from_std(deadline)
        };
        Box::pin(HeadWait {
            reads: Arc::clone(&self.reads),
            reads_at_start: self.reads.load(Ordering::Relaxed),
            header_read_timeout: self.header_read_timeout,
            phase: if first { Phase::Head } else { Phase::Idle },
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        })
    }
}

/// One wait for a request head: idle (keep-alive timeout) until a byte
/// arrives, then the header-read timeout from that byte. hyper polls it
/// right after every read that did not complete the head, so the switch
/// happens at the read that brought the first byte.
///
/// Bytes of the next request that arrived together with the previous
/// request's body are already read: such a head counts as idle, which
/// gives a client nothing it could not get by idling.
struct HeadWait {
    reads: Arc<AtomicU64>,
    reads_at_start: u64,
    header_read_timeout: Duration,
    phase: Phase,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Head,
}

impl Future for HeadWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.phase == Phase::Idle && this.reads.load(Ordering::Relaxed) != this.reads_at_start {
            this.phase = Phase::Head;
            let deadline = tokio::time::Instant::now() + this.header_read_timeout;
            this.sleep.as_mut().reset(deadline);
        }
        ready!(this.sleep.as_mut().poll(cx));
        let timeout = match this.phase {
            Phase::Idle => "keep_alive",
            Phase::Head => "header_read",
        };
        metrics::counter!(crate::metrics::CONNECTIONS_TIMED_OUT, "timeout" => timeout).increment(1);
        Poll::Ready(())
    }
}

impl Sleep for HeadWait {}

/// Accept errors: per-connection ones (the client reset before we got to
/// it) are skipped; the others (out of file descriptors or memory) are
/// logged at most every [`ACCEPT_ERROR_LOG_INTERVAL`] and waited out with a
/// growing pause, as the condition usually lasts until connections close.
#[derive(Default)]
struct AcceptErrors {
    pause: Option<Duration>,
    last_logged: Option<tokio::time::Instant>,
    unlogged: u64,
}

const ACCEPT_ERROR_FIRST_PAUSE: Duration = Duration::from_millis(10);
const ACCEPT_ERROR_MAX_PAUSE: Duration = Duration::from_secs(1);
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl AcceptErrors {
    fn reset(&mut self) {
        self.pause = None;
    }

    /// How long to stop accepting after `error`; `None`: accept again now.
    fn pause_after(&mut self, error: &std::io::Error) -> Option<Duration> {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionRefused | ConnectionReset
        ) {
            return None;
        }
        metrics::counter!(crate::metrics::ACCEPT_ERRORS).increment(1);
        let now = tokio::time::Instant::now();
        if self
            .last_logged
            .is_none_or(|logged| now.duration_since(logged) >= ACCEPT_ERROR_LOG_INTERVAL)
        {
            tracing::error!(%error, suppressed = self.unlogged, "cannot accept connections; pausing");
            self.last_logged = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        let pause = self.pause.map_or(ACCEPT_ERROR_FIRST_PAUSE, |pause| {
            (pause * 2).min(ACCEPT_ERROR_MAX_PAUSE)
        });
        self.pause = Some(pause);
        Some(pause)
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what orchestrators send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;

    use super::*;

    /// A listener out of file descriptors for its first `failures` accepts.
    struct Exhausted {
        inner: TcpListener,
        failures: usize,
    }

    impl Accept for Exhausted {
        async fn accept(&mut self) -> std::io::Result<(TcpStream, SocketAddr)> {
            if self.failures > 0 {
                self.failures -= 1;
                // Let the loop's other branches run, as a real accept would.
                tokio::task::yield_now().await;
                return Err(std::io::Error::from_raw_os_error(24)); // EMFILE
            }
            self.inner.accept().await
        }

        fn local_addr(&self) -> std::io::Result<SocketAddr> {
            self.inner.local_addr()
        }
    }

    async fn spawn_exhausted(
        failures: usize,
    ) -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), ServeError>>,
    ) {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let listener = Exhausted { inner, failures };
        let router = Router::new().route("/", get(|| async { "up" }));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let draining = Draining::new();
            accept_loop(
                listener,
                router,
                ConnectionConfig::default(),
                shutdown,
                draining.clone(),
                draining,
            )
            .await
        });
        (addr, stop, server)
    }

    #[tokio::test]
    async fn accept_errors_pause_the_server_but_never_end_it() {
        let (addr, stop, server) = spawn_exhausted(6).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
            .await
            .unwrap()
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("up"), "{response}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_shutdown_ends_a_pause_after_accept_errors() {
        let (_addr, stop, server) = spawn_exhausted(usize::MAX).await;
        // Long enough for the pauses to reach their longest (1 s).
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[test]
    fn accept_errors_back_off_up_to_a_second_and_reset() {
        let mut errors = AcceptErrors::default();
        let emfile = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<Duration> = (0..10)
            .map(|_| errors.pause_after(&emfile).unwrap())
            .collect();
        assert_eq!(pauses[0], ACCEPT_ERROR_FIRST_PAUSE);
        assert_eq!(pauses[1], ACCEPT_ERROR_FIRST_PAUSE * 2);
        assert_eq!(pauses[9], ACCEPT_ERROR_MAX_PAUSE);
        errors.reset();
        assert_eq!(errors.pause_after(&emfile), Some(ACCEPT_ERROR_FIRST_PAUSE));
        // A client that reset before we accepted it: accept again at once.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(errors.pause_after(&reset), None);
    }

    // Here rather than in the integration tests: a global subscriber there
    // would print every later test's request logs.
    #[test]
    fn init_tracing_can_be_called_twice() {
        init_tracing(LogFormat::Json);
        init_tracing(LogFormat::Text);
        tracing::info!("still logging");
    }
}
