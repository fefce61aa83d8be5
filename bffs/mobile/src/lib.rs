//! mobile-bff: The mobile app's BFF: trimmed GraphQL with persisted queries.
//!
//! So far only the shared front door (`/healthz`, `/readyz`); its API comes
//! with its own issue.

use std::sync::Arc;

use axum::Router;
use bff_server::{Config, JwtVerifier, StartError};

/// Where the mobile BFF listens unless `BFF_LISTEN` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4001";

/// The whole mobile BFF as a router, front door included.
pub fn app(config: &Config) -> Result<Router, StartError> {
    let verifier = Arc::new(JwtVerifier::from_config(&config.jwt)?);
    Ok(bff_server::front_door(Router::new(), config, verifier))
}
