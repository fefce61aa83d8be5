//! mobile-bff: the mobile app's Backend-for-Frontend. Trimmed GraphQL (see
//! `schema/mobile.graphql`) for a phone on a slow network: small answers,
//! persisted queries (automatic, or a safelist in production), CDN-cacheable
//! GETs and gzip/brotli compression.

mod http;
pub mod persisted;
pub mod schema;

pub use http::app;

/// Where the mobile BFF listens unless `BFF_LISTEN` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4001";
