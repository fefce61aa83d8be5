//! What every BFF process does at its front door: configuration, bearer-token
//! authentication, request ids and traces, body and time limits, request
//! logging, health and readiness, the one error contract, and serving
//! (header-read and keep-alive timeouts, a cap on open connections, graceful
//! shutdown).
//!
//! A BFF's `main` is then:
//!
//! ```ignore
//! let config = Config::from_env(Defaults { listen: "127.0.0.1:4000".parse()? })?;
//! let traces = bff_server::telemetry::init(config.log_format)?; // logs, and traces if asked for
//! let http = downstream::http::build_http_client()?; // the process's one client
//! let verifier = Arc::new(JwtVerifier::from_config(&config.jwt, &http)?);
//! let router = bff_server::front_door(web_bff::routes(&config), &config, verifier);
//! bff_server::serve(router, &config).await?;
//! if let Some(traces) = traces { traces.shutdown().await } // the last spans, bounded
//! ```

pub mod auth;
pub mod config;
pub mod context;
pub mod error;
mod front_door;
/// The GraphQL endpoint plumbing (feature `graphql`: web-bff and mobile-bff).
#[cfg(feature = "graphql")]
pub mod graphql;
pub mod metrics;
mod rate_limit;
mod run;
mod serve;
pub mod telemetry;

pub use auth::{Authentication, JwtVerifier, Viewer, ViewerKind};
pub use config::{Config, ConfigError, ConnectionConfig, Defaults, LogFormat, Profile};
pub use context::RequestCtx;
pub use error::{BffError, ErrorCode, graphql_error_response};
pub use front_door::{FrontDoor, PREFLIGHT_HEADERS, READINESS_CONNECT_TIMEOUT, front_door};
pub use run::{StartError, run};

/// The allocator every BFF binary installs: under many small, short-lived
/// allocations from several threads (GraphQL values, JSON) glibc's malloc
/// spent ~40% of the BFF's CPU in the benchmark profile (BENCHMARKS.md).
pub use mimalloc::MiMalloc as Allocator;
pub use serve::{
    SHUTDOWN_DRAIN_TIMEOUT, ServeError, init_tracing, serve, serve_with_config,
    serve_with_shutdown, shutdown_signal,
};

/// The running binary's file name (`web-bff`, `mobile-bff`, `iot-bff`, or
/// `devstack` when the launcher hosts all three): the default OTel
/// `service.name` and the `bff` label of every metric.
pub fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "bff".to_owned())
}
