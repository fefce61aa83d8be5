//! mobile-bff: the mobile app's Backend-for-Frontend. Trimmed GraphQL (see
//! `schema/mobile.graphql`) for a phone on a slow network: small answers,
//! persisted queries (automatic, or a safelist in production), CDN-cacheable
//! GETs and gzip/brotli compression.

use bff_server::config::{Defaults, loopback};
use downstream::Service;

mod http;
pub mod persisted;
pub mod schema;

pub use http::app;

/// The mobile BFF's defaults: port 4001 (admin 9401), a 1.5 s deadline (a
/// phone on a slow network has spent part of its patience on the way), and
/// the three services its screens need.
pub const DEFAULTS: Defaults = Defaults {
    listen: loopback(4001),
    admin_listen: loopback(9401),
    request_timeout_ms: 1_500,
    services: &[Service::User, Service::Product, Service::Order],
};
