//! The IoT BFF end to end: devstack's reference services on ephemeral ports,
//! the BFF on an ephemeral port, real HTTP in between.
#![allow(clippy::unwrap_used)]

mod access;
mod bad_input;
mod cbor;
mod failures;
mod fuzz;
mod helpers;
mod ids;
mod polling;
mod rate_limit;
mod schema;
mod settings;
mod status;
