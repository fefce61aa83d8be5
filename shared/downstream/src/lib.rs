//! Typed clients for the five downstream services every BFF calls, their
//! serde models, and batch lookups by ids (`lookup`), over which the GraphQL
//! BFFs build their DataLoaders to avoid N+1 calls.
//!
//! No axum and no GraphQL here: this crate only knows the downstream
//! contract (`schema/downstream.openapi.json`) and how to call it well.

pub mod cache;
pub mod clients;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
pub mod http;
mod ids;
pub mod models;
pub mod resilience;
mod second_level;
mod service;
pub mod spans;
pub mod telemetry;

pub use cache::{IdHasher, IdMap};
pub use clients::Downstream;
pub use config::{
    BreakerConfig, BreakerOverrides, CacheConfig, DownstreamConfig, InvalidSetting, RetryConfig,
    RetryOverrides, ServiceConfig,
};
pub use context::{RequestContext, StaleMarks, TraceParent};
pub use error::DownstreamError;
pub use events::OrderEvents;
pub use ids::{ID_RULE, MAX_ID_LEN, is_valid_id};
pub use service::Service;
pub use telemetry::describe_metrics;
