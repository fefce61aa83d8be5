//! The whole life of a BFF process, so each `main.rs` is one line.

use std::process::ExitCode;

use axum::Router;

use crate::config::{Config, ConfigError, Defaults};
use crate::serve::{ServeError, serve};
use crate::telemetry::{self, TelemetryError};

/// Why a BFF could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot build the downstream HTTP client: {0}")]
    HttpClient(#[source] downstream::http::HttpClientError),
    #[error("the GraphQL schema is inconsistent: {0}")]
    Schema(String),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
}

/// Loads config from the environment (default listen address
/// `default_listen`), starts logging, builds the app and serves it until
/// SIGTERM/Ctrl-C. Any start-up problem is printed and the exit code is 1.
pub async fn run(default_listen: &str, app: fn(&Config) -> Result<Router, StartError>) -> ExitCode {
    match try_run(default_listen, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Logging may not be up (bad config), so say it on stderr too.
            eprintln!("error: {error}");
            tracing::error!(%error, "exiting");
            ExitCode::FAILURE
        }
    }
}

async fn try_run(
    default_listen: &str,
    app: fn(&Config) -> Result<Router, StartError>,
) -> Result<(), StartError> {
    let listen = default_listen.parse().map_err(|_| ConfigError::Invalid {
        key: "BFF_LISTEN".into(),
        reason: format!("default listen address {default_listen:?} is not host:port"),
    })?;
    let config = Config::from_env(Defaults { listen })?;
    let traces = telemetry::init(config.log_format)?;
    let served = match app(&config) {
        Ok(router) => serve(router, &config).await.map_err(StartError::from),
        Err(error) => Err(error),
    };
    // The last spans, within a bounded time, whatever ended the process.
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    served
}
