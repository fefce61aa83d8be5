//! iot-bff: the Backend-for-Frontend of devices on constrained links.
//!
//! Compact REST (`schema/iot.openapi.json`) over the device service:
//!
//! - `GET /v1/devices/{id}` → `{"s":"online","t":21,"b":87,"ts":1764028800}`,
//!   with an `ETag` so polling with `If-None-Match` costs a bodiless 304;
//! - `PATCH /v1/devices/{id}/settings` with `{"t","m","s","a"}`, checked
//!   strictly before anything is sent downstream;
//! - JSON by default, CBOR both ways (`Accept` / `Content-Type:
//!   application/cbor`); errors are always JSON `{"e": "..."}`.
//!
//! The modules: [`compact`] (the client-facing shapes), [`patch`] (reading
//! and checking a settings patch), [`encoding`] (content negotiation, ETags),
//! [`error`] (the compact error body) and the router in `http`.

pub mod compact;
pub mod encoding;
pub mod error;
mod http;
pub mod patch;

pub use http::{IOT_BODY_LIMIT_BYTES, ROUTES, SETTINGS_PATH, STATUS_PATH, app};

/// Where the iot BFF listens unless `BFF_LISTEN` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4002";
