//! web-bff: the web SPA's Backend-for-Frontend. A rich GraphQL API (see
//! `schema/web.graphql`) over the user, product, order and recommendation
//! services.

use bff_server::config::{Defaults, loopback};
use downstream::Service;

mod http;
pub mod schema;

pub use http::app;

/// The web BFF's defaults: port 4000 (admin 9400), a 2 s deadline, and the
/// four services its pages are made of.
pub const DEFAULTS: Defaults = Defaults {
    listen: loopback(4000),
    admin_listen: loopback(9400),
    request_timeout_ms: 2_000,
    services: &[
        Service::User,
        Service::Product,
        Service::Order,
        Service::Recommendation,
    ],
};
