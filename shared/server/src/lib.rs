//! What every BFF process does at its front door: configuration, bearer-token
//! authentication, request ids and traces, body and time limits, request
//! logging, health and readiness, the one error contract, and serving
//! (header-read and keep-alive timeouts, a cap on open connections, graceful
//! shutdown).
//!
//! A BFF's `main` is then:
//!
//! ```ignore
//! bff_server::run(web_bff::DEFAULTS, web_bff::app).await
//! ```
//!
//! which loads the [`Config`] (the BFF's [`Defaults`], a config file, `BFF_*`
//! variables), starts logging, builds the BFF's router (its routes behind
//! [`front_door`]) and [`serve`]s it on the public listener, with
//! [`admin_router`] on the admin listener, until SIGTERM.

pub mod auth;
pub mod config;
pub mod context;
pub mod error;
mod front_door;
/// The GraphQL endpoint plumbing (feature `graphql`: web-bff and mobile-bff).
#[cfg(feature = "graphql")]
pub mod graphql;
pub mod health;
pub mod metrics;
mod observe;
mod rate_limit;
mod run;
mod serve;
pub mod telemetry;

pub use auth::{Authentication, JwtVerifier, Viewer, ViewerKind};
pub use config::{Config, ConfigError, ConnectionConfig, Defaults, LogFormat, Profile};
pub use context::RequestCtx;
pub use error::{BffError, ErrorCode, graphql_error_response};
pub use front_door::{FrontDoor, PREFLIGHT_HEADERS, front_door};
pub use health::{Draining, READINESS_CONNECT_TIMEOUT, admin_router};
pub use run::{StartError, connect_shared_state, run};
pub use shared_state::SharedState;

/// The allocator every BFF binary installs: under many small, short-lived
/// allocations from several threads (GraphQL values, JSON) glibc's malloc
/// spent ~40% of the BFF's CPU in the benchmark profile (BENCHMARKS.md).
pub use mimalloc::MiMalloc as Allocator;
pub use serve::{
    Listeners, SHUTDOWN_DRAIN_TIMEOUT, ServeError, init_tracing, serve, serve_listeners,
    serve_with_config, serve_with_shutdown, shutdown_signal,
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
