//! Integration tests of bff-server over real HTTP: one binary, servers on
//! ephemeral ports, no process environment touched.
#![allow(clippy::unwrap_used)]

mod admin;
mod auth;
#[cfg(feature = "graphql")]
mod body;
mod config;
mod connections;
mod context;
#[cfg(feature = "graphql")]
mod csrf;
mod deploy_metrics;
mod errors;
mod front_door;
#[cfg(feature = "graphql")]
mod graphql;
mod helpers;
#[cfg(feature = "graphql")]
mod introspection;
mod jwks;
#[cfg(feature = "graphql")]
mod limits;
#[cfg(feature = "graphql")]
mod loaders;
#[cfg(feature = "graphql")]
mod pipeline;
mod rate_limit;
mod serve;
mod token_bounds;
#[cfg(feature = "graphql")]
mod validation;
