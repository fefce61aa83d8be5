//! Running a BFF: logging set-up, listening, graceful shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// How long in-flight requests may take to finish after a shutdown signal.
/// Requests are bounded by `request_timeout_ms` already; this also bounds
/// connections that never go idle. Below Kubernetes' default 30 s grace.
pub const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} (BFF_LISTEN): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Installs the global log subscriber: level filter from `RUST_LOG`
/// (default `info`), text or JSON lines. Calling it again keeps the first
/// subscriber, so tests and binaries can both call it.
pub fn init_tracing(format: LogFormat) {
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
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Err only means a subscriber is already installed: keep that one.
    let _already_set = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

/// Listens on `config.listen` and serves `router` until SIGTERM or Ctrl-C,
/// then drains in-flight requests.
pub async fn serve(router: Router, config: &Config) -> Result<(), ServeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    serve_with_shutdown(listener, router, shutdown_signal()).await
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting connections and lets in-flight requests finish (for at most
/// [`SHUTDOWN_DRAIN_TIMEOUT`]). Handlers can extract
/// `ConnectInfo<SocketAddr>` (the client address, for rate limiting).
pub async fn serve_with_shutdown<F>(
    listener: TcpListener,
    router: Router,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let (draining_tx, mut draining_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        // Err: the drain watchdog below is gone, so the server has returned.
        let _ = draining_tx.send(true);
    };
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .into_future();
    let drain_deadline = async move {
        if draining_rx.wait_for(|draining| *draining).await.is_err() {
            // The signal future was dropped without firing: never time out.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(SHUTDOWN_DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        result = server => result?,
        () = drain_deadline => {
            tracing::warn!(?SHUTDOWN_DRAIN_TIMEOUT, "drain deadline passed: dropping open connections");
        }
    }
    tracing::info!("stopped");
    Ok(())
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
    use super::*;

    // Here rather than in the integration tests: a global subscriber there
    // would print every later test's request logs.
    #[test]
    fn init_tracing_can_be_called_twice() {
        init_tracing(LogFormat::Json);
        init_tracing(LogFormat::Text);
        tracing::info!("still logging");
    }
}
