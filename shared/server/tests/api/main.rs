//! Integration tests of bff-server over real HTTP: one binary, servers on
//! ephemeral ports, no process environment touched.
#![allow(clippy::unwrap_used)]

mod auth;
mod body;
mod config;
mod connections;
mod context;
mod csrf;
mod errors;
mod front_door;
mod graphql;
mod helpers;
mod introspection;
mod jwks;
mod limits;
mod pipeline;
mod rate_limit;
mod serve;
mod token_bounds;
mod validation;
