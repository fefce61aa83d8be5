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

use bff_server::config::{Defaults, loopback};
use downstream::Service;

pub mod compact;
pub mod encoding;
pub mod error;
mod http;
pub mod patch;

pub use http::{IOT_BODY_LIMIT_BYTES, ROUTES, SETTINGS_PATH, STATUS_PATH, app};

/// The iot BFF's defaults: port 4002 (admin 9402), and a 500 ms deadline,
/// since a device polling on a timer would rather miss one answer than
/// wait; devices only ever need the device service.
pub const DEFAULTS: Defaults = Defaults {
    listen: loopback(4002),
    admin_listen: loopback(9402),
    request_timeout_ms: 500,
    services: &[Service::Device],
};
