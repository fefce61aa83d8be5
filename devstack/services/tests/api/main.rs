//! devstack's integration tests: real services on ephemeral ports, real HTTP.
//! One test binary (modules below) to keep link time down.
#![allow(clippy::unwrap_used)]

mod common;
mod contract;
mod control;
mod events;
mod services;
