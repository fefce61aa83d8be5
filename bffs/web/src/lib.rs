//! web-bff: the web SPA's Backend-for-Frontend. A rich GraphQL API (see
//! `schema/web.graphql`) over the user, product, order and recommendation
//! services.

mod http;
pub mod schema;

pub use http::app;

/// Where the web BFF listens unless `BFF_LISTEN` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";
