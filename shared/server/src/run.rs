//! The whole life of a BFF process, so each `main.rs` is one line.

use std::process::ExitCode;

use axum::Router;
use shared_state::SharedState;

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
    #[error("BFF_REDIS_URL (redis.url): {0}")]
    SharedState(#[from] shared_state::InvalidRedisUrl),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
}

/// The process's handle on the state its replicas share: Redis when
/// `BFF_REDIS_URL` is set (connected lazily; a Redis that is down never
/// stops the start), each replica's own state otherwise.
pub fn connect_shared_state(config: &Config) -> Result<SharedState, StartError> {
    Ok(match config.redis.client_config() {
        Some(redis) => SharedState::connect(&redis)?,
        None => SharedState::local_only(),
    })
}

/// Loads config from the environment (over the BFF's `defaults`), starts
/// logging, builds the app and serves it until SIGTERM/Ctrl-C. Any
/// start-up problem is printed and the exit code is 1.
pub async fn run(defaults: Defaults, app: fn(&Config) -> Result<Router, StartError>) -> ExitCode {
    match try_run(defaults, app).await {
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
    defaults: Defaults,
    app: fn(&Config) -> Result<Router, StartError>,
) -> Result<(), StartError> {
    let config = Config::from_env(defaults)?;
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
