//! Where the downstream services live and how long a call to each may take.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::Service;

pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
pub const DEFAULT_CACHE_TTL_MS: u64 = 30_000;
pub const DEFAULT_CACHE_MAX_ENTRIES: u64 = 10_000;

/// Settings of the five downstream services. Read from the BFF's config file
/// (`[downstream]`) and the `BFF_*_SERVICE_URL` variables.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownstreamConfig {
    pub user: ServiceConfig,
    pub product: ServiceConfig,
    pub order: ServiceConfig,
    pub recommendation: ServiceConfig,
    pub device: ServiceConfig,
    /// Deadline of one downstream call when the service sets none of its own.
    pub timeout_ms: u64,
    /// Entity caches (users, products).
    pub cache: CacheConfig,
}

/// One downstream service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Base URL, e.g. `http://127.0.0.1:7101`.
    pub url: Url,
    /// Overrides `DownstreamConfig::timeout_ms` for this service.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// How long a cached entity is served without asking its service again.
    pub ttl_ms: u64,
    /// Upper bound on entities kept per cache.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl_ms: DEFAULT_CACHE_TTL_MS,
            max_entries: DEFAULT_CACHE_MAX_ENTRIES,
        }
    }
}

impl ServiceConfig {
    pub fn new(url: Url) -> Self {
        Self {
            url,
            timeout_ms: None,
        }
    }
}

impl Default for DownstreamConfig {
    /// Points at devstack's default ports.
    fn default() -> Self {
        let local = |service: Service| {
            let url = format!("http://127.0.0.1:{}", service.default_port());
            ServiceConfig::new(Url::parse(&url).expect("a literal loopback URL parses"))
        };
        Self {
            user: local(Service::User),
            product: local(Service::Product),
            order: local(Service::Order),
            recommendation: local(Service::Recommendation),
            device: local(Service::Device),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            cache: CacheConfig::default(),
        }
    }
}

impl DownstreamConfig {
    /// All five services at the given base URLs (in `Service::ALL` order).
    pub fn with_urls(urls: [Url; 5]) -> Self {
        let [user, product, order, recommendation, device] = urls.map(ServiceConfig::new);
        Self {
            user,
            product,
            order,
            recommendation,
            device,
            ..Self::default()
        }
    }

    pub fn service(&self, service: Service) -> &ServiceConfig {
        match service {
            Service::User => &self.user,
            Service::Product => &self.product,
            Service::Order => &self.order,
            Service::Recommendation => &self.recommendation,
            Service::Device => &self.device,
        }
    }

    pub fn service_mut(&mut self, service: Service) -> &mut ServiceConfig {
        match service {
            Service::User => &mut self.user,
            Service::Product => &mut self.product,
            Service::Order => &mut self.order,
            Service::Recommendation => &mut self.recommendation,
            Service::Device => &mut self.device,
        }
    }

    pub fn timeout(&self, service: Service) -> Duration {
        Duration::from_millis(self.service(service).timeout_ms.unwrap_or(self.timeout_ms))
    }
}
