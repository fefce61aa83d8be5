//! iot-bff: The IoT devices' BFF: compact REST.
//!
//! So far only the shared front door (`/healthz`, `/readyz`); its API comes
//! with its own issue.

use std::sync::Arc;

use axum::Router;
use bff_server::{Config, JwtVerifier, StartError};

/// Where the iot BFF listens unless `BFF_LISTEN` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4002";

/// The whole iot BFF as a router, front door included.
pub fn app(config: &Config) -> Result<Router, StartError> {
    let verifier = Arc::new(JwtVerifier::from_config(&config.jwt)?);
    Ok(bff_server::front_door(Router::new(), config, verifier))
}
