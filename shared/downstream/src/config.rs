//! Where the downstream services live and how long a call to each may take.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::Service;

pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
pub const DEFAULT_CACHE_TTL_MS: u64 = 30_000;
pub const DEFAULT_CACHE_MAX_ENTRIES: u64 = 10_000;
pub const DEFAULT_CACHE_STALE_MS: u64 = 300_000;
pub const DEFAULT_MAX_RETRIES: u32 = 2;
pub const DEFAULT_RETRY_BASE_BACKOFF_MS: u64 = 25;
pub const DEFAULT_RETRY_MAX_BACKOFF_MS: u64 = 250;
pub const DEFAULT_RETRY_BUDGET_PERCENT: u32 = 10;
pub const DEFAULT_RETRY_BUDGET_MIN_RETRIES: u32 = 10;
pub const DEFAULT_RETRY_BUDGET_WINDOW_MS: u64 = 10_000;
pub const DEFAULT_BREAKER_WINDOW_SIZE: u32 = 20;
pub const DEFAULT_BREAKER_MINIMUM_CALLS: u32 = 10;
pub const DEFAULT_BREAKER_FAILURE_RATE_PERCENT: u32 = 50;
pub const DEFAULT_BREAKER_SLOW_CALL_MS: u64 = 1_000;
pub const DEFAULT_BREAKER_OPEN_MS: u64 = 5_000;
pub const DEFAULT_BREAKER_HALF_OPEN_CALLS: u32 = 3;

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
    /// Retries of idempotent calls, for services that set none of their own.
    pub retry: RetryConfig,
    /// Circuit breakers, for services that set none of their own.
    pub breaker: BreakerConfig,
    /// Identical GETs in flight at the same time (same URL, same viewer)
    /// share one call. Off only to measure what it saves.
    pub coalesce_gets: bool,
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
    /// Overrides fields of `DownstreamConfig::retry` for this service.
    #[serde(default)]
    pub retry: RetryOverrides,
    /// Overrides fields of `DownstreamConfig::breaker` for this service.
    #[serde(default)]
    pub breaker: BreakerOverrides,
}

/// Per-service overrides of [`RetryConfig`], merged field by field over the
/// global settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryOverrides {
    pub max_retries: Option<u32>,
    pub base_backoff_ms: Option<u64>,
    pub max_backoff_ms: Option<u64>,
    pub budget_percent: Option<u32>,
    pub budget_min_retries: Option<u32>,
    pub budget_window_ms: Option<u64>,
    pub per_try_timeout_ms: Option<u64>,
}

/// Per-service overrides of [`BreakerConfig`], merged field by field over
/// the global settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerOverrides {
    pub enabled: Option<bool>,
    pub window_size: Option<u32>,
    pub minimum_calls: Option<u32>,
    pub failure_rate_percent: Option<u32>,
    pub slow_call_ms: Option<u64>,
    pub open_ms: Option<u64>,
    pub half_open_calls: Option<u32>,
}

/// A setting that cannot work, with its key (e.g. `downstream.product.breaker.window_size`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidSetting {
    pub key: String,
    pub reason: String,
}

impl RetryConfig {
    fn validate(&self, prefix: &str) -> Result<(), InvalidSetting> {
        let invalid = |field: &str, reason: &str| InvalidSetting {
            key: format!("{prefix}.retry.{field}"),
            reason: reason.into(),
        };
        if self.budget_percent > 100 {
            return Err(invalid("budget_percent", "must be at most 100"));
        }
        if self.budget_window_ms == 0 {
            return Err(invalid("budget_window_ms", "must be greater than 0"));
        }
        if self.base_backoff_ms > self.max_backoff_ms {
            return Err(invalid("base_backoff_ms", "must not exceed max_backoff_ms"));
        }
        if self.per_try_timeout_ms == Some(0) {
            return Err(invalid("per_try_timeout_ms", "must be greater than 0"));
        }
        Ok(())
    }
}

impl BreakerConfig {
    fn validate(&self, prefix: &str) -> Result<(), InvalidSetting> {
        let invalid = |field: &str, reason: &str| InvalidSetting {
            key: format!("{prefix}.breaker.{field}"),
            reason: reason.into(),
        };
        for (field, value) in [
            ("window_size", self.window_size),
            ("minimum_calls", self.minimum_calls),
            ("half_open_calls", self.half_open_calls),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        if !(1..=100).contains(&self.failure_rate_percent) {
            return Err(invalid("failure_rate_percent", "must be between 1 and 100"));
        }
        if self.open_ms == 0 {
            return Err(invalid("open_ms", "must be greater than 0"));
        }
        Ok(())
    }
}

impl RetryConfig {
    /// These settings with `overrides` applied.
    pub fn merged(&self, overrides: &RetryOverrides) -> Self {
        let o = overrides;
        Self {
            max_retries: o.max_retries.unwrap_or(self.max_retries),
            base_backoff_ms: o.base_backoff_ms.unwrap_or(self.base_backoff_ms),
            max_backoff_ms: o.max_backoff_ms.unwrap_or(self.max_backoff_ms),
            budget_percent: o.budget_percent.unwrap_or(self.budget_percent),
            budget_min_retries: o.budget_min_retries.unwrap_or(self.budget_min_retries),
            budget_window_ms: o.budget_window_ms.unwrap_or(self.budget_window_ms),
            per_try_timeout_ms: o.per_try_timeout_ms.or(self.per_try_timeout_ms),
        }
    }
}

impl BreakerConfig {
    /// These settings with `overrides` applied.
    pub fn merged(&self, overrides: &BreakerOverrides) -> Self {
        let o = overrides;
        Self {
            enabled: o.enabled.unwrap_or(self.enabled),
            window_size: o.window_size.unwrap_or(self.window_size),
            minimum_calls: o.minimum_calls.unwrap_or(self.minimum_calls),
            failure_rate_percent: o.failure_rate_percent.unwrap_or(self.failure_rate_percent),
            slow_call_ms: o.slow_call_ms.unwrap_or(self.slow_call_ms),
            open_ms: o.open_ms.unwrap_or(self.open_ms),
            half_open_calls: o.half_open_calls.unwrap_or(self.half_open_calls),
        }
    }
}

/// Retries of idempotent calls (GET): only after a connection error, a
/// 502/503/504 or a per-try timeout, with jittered exponential back-off
/// (honouring `Retry-After`), within the request's deadline and the
/// service's retry budget.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first try; 0 turns retries off.
    pub max_retries: u32,
    /// Back-off before the n-th retry is uniformly random in
    /// `0..=min(max_backoff_ms, base_backoff_ms * 2^(n-1))` ("full jitter").
    pub base_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Retry budget: over the last `budget_window_ms`, retries may be at most
    /// this percentage of calls ...
    pub budget_percent: u32,
    /// ... plus this many, so that a quiet service can still retry.
    pub budget_min_retries: u32,
    pub budget_window_ms: u64,
    /// Deadline of one try (Envoy's `per_try_timeout`). Unset, a try may
    /// use the whole call's time (the service's timeout), so a try that
    /// timed out leaves none for a retry; set it below the service's
    /// timeout to retry slow tries within the call.
    pub per_try_timeout_ms: Option<u64>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            base_backoff_ms: DEFAULT_RETRY_BASE_BACKOFF_MS,
            max_backoff_ms: DEFAULT_RETRY_MAX_BACKOFF_MS,
            budget_percent: DEFAULT_RETRY_BUDGET_PERCENT,
            budget_min_retries: DEFAULT_RETRY_BUDGET_MIN_RETRIES,
            budget_window_ms: DEFAULT_RETRY_BUDGET_WINDOW_MS,
            per_try_timeout_ms: None,
        }
    }
}

/// A circuit breaker with resilience4j's semantics: over a count-based
/// sliding window of the last `window_size` calls (once at least
/// `minimum_calls` were made), a failure rate at or above
/// `failure_rate_percent` opens it; open, it fails calls at once for
/// `open_ms`; then it lets `half_open_calls` probes through, closing when all
/// succeed and opening again on the first failure. Failures are connection
/// errors, 5xx answers, timeouts and calls slower than `slow_call_ms`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// `false` never opens the breaker.
    pub enabled: bool,
    pub window_size: u32,
    pub minimum_calls: u32,
    pub failure_rate_percent: u32,
    pub slow_call_ms: u64,
    pub open_ms: u64,
    pub half_open_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_size: DEFAULT_BREAKER_WINDOW_SIZE,
            minimum_calls: DEFAULT_BREAKER_MINIMUM_CALLS,
            failure_rate_percent: DEFAULT_BREAKER_FAILURE_RATE_PERCENT,
            slow_call_ms: DEFAULT_BREAKER_SLOW_CALL_MS,
            open_ms: DEFAULT_BREAKER_OPEN_MS,
            half_open_calls: DEFAULT_BREAKER_HALF_OPEN_CALLS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// How long a cached entity is served without asking its service again.
    pub ttl_ms: u64,
    /// Upper bound on entities kept per cache.
    pub max_entries: u64,
    /// How long past its TTL an entity is kept to be served, marked stale,
    /// when its service fails (stale-if-error); 0 turns that off.
    pub stale_ms: u64,
    /// Stale-while-revalidate: an entity past its TTL by less than this is
    /// answered at once and refreshed in the background (by one replica of
    /// the fleet when Redis is shared); 0 (the default) turns it off.
    pub revalidate_ms: u64,
    /// Each replica keeps entities in its own memory. Off only to measure
    /// the shared second level (Redis) alone.
    pub first_level: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl_ms: DEFAULT_CACHE_TTL_MS,
            max_entries: DEFAULT_CACHE_MAX_ENTRIES,
            stale_ms: DEFAULT_CACHE_STALE_MS,
            revalidate_ms: 0,
            first_level: true,
        }
    }
}

impl ServiceConfig {
    pub fn new(url: Url) -> Self {
        Self {
            url,
            timeout_ms: None,
            retry: RetryOverrides::default(),
            breaker: BreakerOverrides::default(),
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
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            coalesce_gets: true,
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

    /// Checks the resilience settings, globally and for each service with
    /// its overrides.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.retry.validate("downstream")?;
        self.breaker.validate("downstream")?;
        for service in Service::ALL {
            let prefix = format!("downstream.{}", service.name());
            self.retry(service).validate(&prefix)?;
            self.breaker(service).validate(&prefix)?;
        }
        Ok(())
    }

    /// The retry settings of `service`: the global ones with its overrides.
    pub fn retry(&self, service: Service) -> RetryConfig {
        self.retry.merged(&self.service(service).retry)
    }

    /// The circuit-breaker settings of `service`: the global ones with its
    /// overrides.
    pub fn breaker(&self, service: Service) -> BreakerConfig {
        self.breaker.merged(&self.service(service).breaker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_overrides_are_merged_field_by_field_over_the_global_settings() {
        let config: DownstreamConfig = serde_json::from_value(serde_json::json!({
            "retry": { "max_retries": 1 },
            "breaker": { "open_ms": 1000 },
            "product": {
                "url": "http://127.0.0.1:7102",
                "breaker": { "minimum_calls": 4 },
            },
        }))
        .expect("valid settings");
        assert_eq!(config.retry(Service::Product).max_retries, 1);
        assert_eq!(config.breaker(Service::User).open_ms, 1_000);
        let product = config.breaker(Service::Product);
        assert_eq!(product.minimum_calls, 4);
        // Merged field by field: the global open_ms, the default window.
        assert_eq!(product.open_ms, 1_000);
        assert_eq!(product.window_size, DEFAULT_BREAKER_WINDOW_SIZE);
        assert_eq!(config.cache.stale_ms, DEFAULT_CACHE_STALE_MS);
    }

    #[test]
    fn settings_that_cannot_work_are_refused_with_their_key() {
        assert_eq!(DownstreamConfig::default().validate(), Ok(()));
        let mut config = DownstreamConfig::default();
        config.product.breaker.failure_rate_percent = Some(0);
        assert_eq!(
            config.validate().unwrap_err().key,
            "downstream.product.breaker.failure_rate_percent"
        );
        let mut config = DownstreamConfig::default();
        config.retry.budget_percent = 200;
        assert_eq!(
            config.validate().unwrap_err().key,
            "downstream.retry.budget_percent"
        );
    }

    #[test]
    fn unknown_resilience_keys_are_refused() {
        for bad in [
            serde_json::json!({ "retry": { "max_retry": 1 } }),
            serde_json::json!({ "breaker": { "threshold": 50 } }),
            serde_json::json!({ "cache": { "stale": 1 } }),
        ] {
            assert!(
                serde_json::from_value::<DownstreamConfig>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
