//! The downstream clients against devstack's reference services, over real HTTP.
#![allow(clippy::unwrap_used)]

mod breaker;
mod cache;
mod chaos;
mod clients;
mod coalescing;
mod deadlines;
mod errors;
mod events;
mod hostile_ids;
mod lookups;
mod retries;
mod stale;

use std::time::Duration;

use devstack_services::Services;
use downstream::{Downstream, DownstreamConfig, RequestContext};

/// Reference services on ephemeral ports and clients pointed at them.
pub(crate) struct Harness {
    pub(crate) services: Services,
    pub(crate) downstream: Downstream,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        Self::with_config(|_| {}).await
    }

    pub(crate) async fn with_config(adjust: impl FnOnce(&mut DownstreamConfig)) -> Self {
        let services = Services::spawn_ephemeral().await.unwrap();
        let mut config = DownstreamConfig::with_urls(services.urls());
        adjust(&mut config);
        let http = downstream::http::build_http_client().unwrap();
        Self {
            downstream: Downstream::new(&config, http),
            services,
        }
    }
}

pub(crate) fn ctx() -> RequestContext {
    RequestContext::background().with_user("u1")
}

pub(crate) const SHORT_TIMEOUT: Duration = Duration::from_millis(300);
