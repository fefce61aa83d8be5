//! State the replicas of one BFF share through Redis (`BFF_REDIS_URL`):
//! persisted queries, rate-limit buckets, entity caches.
//!
//! Redis is never needed for a correct answer. Every call is bounded by a
//! short timeout; a failed or slow call returns [`Unavailable`] and the
//! caller goes on with its local state (its own cache, its own limiter).
//! After a failure, calls fail at once for [`COOL_DOWN`] instead of each
//! waiting out the timeout, so a Redis that black-holes packets costs one
//! timeout per cool-down, not one per request. The connection manager
//! reconnects by itself; nothing here fails the process, and readiness
//! never depends on Redis.
//!
//! | metric | labels |
//! |---|---|
//! | `bff_redis_calls_total` | `op`, `result` = `ok` / `error` / `timeout` / `skipped` (cooling down or not connected) |

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, FromRedisValue, Script};
use url::Url;

/// Default bound of one Redis call: an in-cluster round trip takes about a
/// millisecond; past this the local state answers.
pub const DEFAULT_TIMEOUT_MS: u64 = 50;
/// How long calls are skipped after one failed.
pub const COOL_DOWN: Duration = Duration::from_secs(1);
/// At most one warning per this interval while Redis fails.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub const CALLS: &str = "bff_redis_calls_total";

/// Where Redis is and how long a call may take. `Debug` hides a password
/// in the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://` or `rediss://` (TLS), with an optional user, password
    /// and database number (`BFF_REDIS_URL`).
    pub url: Url,
    /// Bound of one call, connecting included.
    pub timeout: Duration,
    /// Prepended to every key, so BFFs (or environments) sharing one Redis
    /// keep apart.
    pub key_prefix: String,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut url = self.url.clone();
        if url.password().is_some() {
            // Err only for URLs that cannot have one.
            let _ = url.set_password(Some("<redacted>"));
        }
        f.debug_struct("RedisConfig")
            .field("url", &url.as_str())
            .field("timeout", &self.timeout)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Why a URL cannot name a Redis.
#[derive(Debug, thiserror::Error)]
#[error("not a Redis URL (redis:// or rediss://): {0}")]
pub struct InvalidRedisUrl(String);

impl RedisConfig {
    /// Checks `url` the way the client will read it.
    pub fn validate_url(url: &Url) -> Result<(), InvalidRedisUrl> {
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(InvalidRedisUrl(format!(
                "scheme `{}` is not redis or rediss",
                url.scheme()
            )));
        }
        redis::Client::open(url.as_str())
            .map(|_| ())
            .map_err(|error| InvalidRedisUrl(error.to_string()))
    }
}

/// A call that did not give an answer: go on with local state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("redis unavailable")]
pub struct Unavailable;

/// The process's handle on the shared state; cheap to clone. Without a
/// configured Redis every call is [`Unavailable`] at once.
#[derive(Clone, Default)]
pub struct SharedState {
    redis: Option<Arc<Redis>>,
}

struct Redis {
    connection: ConnectionManager,
    timeout: Duration,
    key_prefix: String,
    /// Calls are skipped until this instant (ms since `started`).
    cool_until_ms: AtomicU64,
    /// When the last warning was logged (ms since `started`, +1; 0 = never).
    logged_at_ms: AtomicU64,
    started: Instant,
}

impl fmt::Debug for SharedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedState")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl SharedState {
    /// No Redis: every replica keeps its own state.
    pub fn local_only() -> Self {
        Self { redis: None }
    }

    /// A lazily connecting, self-reconnecting client. Never fails on a
    /// Redis that is down: the first calls are then [`Unavailable`].
    pub fn connect(config: &RedisConfig) -> Result<Self, InvalidRedisUrl> {
        RedisConfig::validate_url(&config.url)?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|error| InvalidRedisUrl(error.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            // Reconnects happen in the background of later calls; the
            // cool-down keeps requests from waiting on them.
            .set_number_of_retries(1)
            .set_max_delay(COOL_DOWN);
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|error| InvalidRedisUrl(error.to_string()))?;
        Ok(Self {
            redis: Some(Arc::new(Redis {
                connection,
                timeout: config.timeout,
                key_prefix: config.key_prefix.clone(),
                cool_until_ms: AtomicU64::new(0),
                logged_at_ms: AtomicU64::new(0),
                started: Instant::now(),
            })),
        })
    }

    /// A Redis is configured (it may still be down).
    pub fn is_enabled(&self) -> bool {
        self.redis.is_some()
    }

    /// `GET prefix+key`.
    pub async fn get(&self, key: &str) -> Result<Option<String>, Unavailable> {
        self.call(
            "get",
            |mut connection, key| async move { connection.get::<_, Option<String>>(key).await },
            key,
        )
        .await
    }

    /// `SET prefix+key value PX ttl`.
    pub async fn set_with_ttl(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let value = value.to_owned();
        self.call(
            "set",
            |mut connection, key| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(millis)
                    .query_async::<()>(&mut connection)
                    .await
            },
            key,
        )
        .await
    }

    /// `MGET` of prefix+each key, in order: one round trip.
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, Unavailable> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let Some(prefix) = self.prefix() else {
            return Err(Unavailable);
        };
        let keys: Vec<String> = keys.iter().map(|key| format!("{prefix}{key}")).collect();
        self.call_raw("mget", |mut connection| async move {
            redis::cmd("MGET")
                .arg(&keys)
                .query_async::<Vec<Option<String>>>(&mut connection)
                .await
        })
        .await
    }

    /// `SET prefix+key value PX ttl` for each entry, pipelined: one round trip.
    pub async fn set_many_with_ttl(
        &self,
        entries: &[(String, String, Duration)],
    ) -> Result<(), Unavailable> {
        if entries.is_empty() {
            return Ok(());
        }
        let Some(prefix) = self.prefix() else {
            return Err(Unavailable);
        };
        let mut pipeline = redis::pipe();
        for (key, value, ttl) in entries {
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            pipeline
                .cmd("SET")
                .arg(format!("{prefix}{key}"))
                .arg(value)
                .arg("PX")
                .arg(millis)
                .ignore();
        }
        self.call_raw("set_many", |mut connection| async move {
            pipeline.query_async::<()>(&mut connection).await
        })
        .await
    }

    /// `SET prefix+key 1 NX PX ttl` for each key, pipelined: which keys this
    /// call created (claimed), in order. One round trip.
    pub async fn claim_many(
        &self,
        keys: &[String],
        ttl: Duration,
    ) -> Result<Vec<bool>, Unavailable> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let Some(prefix) = self.prefix() else {
            return Err(Unavailable);
        };
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipeline = redis::pipe();
        for key in keys {
            pipeline
                .cmd("SET")
                .arg(format!("{prefix}{key}"))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis);
        }
        let replies = self
            .call_raw("claim", |mut connection| async move {
                pipeline
                    .query_async::<Vec<Option<String>>>(&mut connection)
                    .await
            })
            .await?;
        Ok(replies.into_iter().map(|reply| reply.is_some()).collect())
    }

    /// `DEL prefix+key`.
    pub async fn delete(&self, key: &str) -> Result<(), Unavailable> {
        self.call(
            "del",
            |mut connection, key| async move { connection.del::<_, ()>(key).await },
            key,
        )
        .await
    }

    fn prefix(&self) -> Option<&str> {
        self.redis.as_ref().map(|redis| redis.key_prefix.as_str())
    }

    /// Runs `script` with `KEYS[1]` = prefix+key and `args`, in one atomic
    /// step on the server.
    pub async fn run_script<T>(
        &self,
        op: &'static str,
        script: &Script,
        key: &str,
        args: &[u64],
    ) -> Result<T, Unavailable>
    where
        T: FromRedisValue + Send + 'static,
    {
        self.call(
            op,
            |mut connection, key| async move {
                let mut invocation = script.key(key);
                for arg in args {
                    invocation.arg(*arg);
                }
                invocation.invoke_async::<T>(&mut connection).await
            },
            key,
        )
        .await
    }

    /// [`Self::call_raw`] on one key, prefixed.
    async fn call<T, F, Fut>(&self, op: &'static str, run: F, key: &str) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager, String) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let Some(prefix) = self.prefix() else {
            return Err(Unavailable);
        };
        let key = format!("{prefix}{key}");
        self.call_raw(op, |connection| run(connection, key)).await
    }

    /// One bounded call: skipped while cooling down, timed out past the
    /// bound; a failure starts a cool-down and (rate-limited) says so.
    async fn call_raw<T, F, Fut>(&self, op: &'static str, run: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let Some(redis) = &self.redis else {
            return Err(Unavailable);
        };
        if redis.cooling_down() {
            metrics::counter!(CALLS, "op" => op, "result" => "skipped").increment(1);
            return Err(Unavailable);
        }
        let outcome = tokio::time::timeout(redis.timeout, run(redis.connection.clone())).await;
        match outcome {
            Ok(Ok(value)) => {
                metrics::counter!(CALLS, "op" => op, "result" => "ok").increment(1);
                Ok(value)
            }
            Ok(Err(error)) => {
                metrics::counter!(CALLS, "op" => op, "result" => "error").increment(1);
                redis.failed(op, &error.to_string());
                Err(Unavailable)
            }
            Err(_elapsed) => {
                metrics::counter!(CALLS, "op" => op, "result" => "timeout").increment(1);
                redis.failed(op, "timed out");
                Err(Unavailable)
            }
        }
    }
}

impl Redis {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn cooling_down(&self) -> bool {
        self.now_ms() < self.cool_until_ms.load(Ordering::Relaxed)
    }

    fn failed(&self, op: &str, reason: &str) {
        let now = self.now_ms();
        let cool_down = u64::try_from(COOL_DOWN.as_millis()).unwrap_or(u64::MAX);
        self.cool_until_ms
            .store(now.saturating_add(cool_down), Ordering::Relaxed);
        let last = self.logged_at_ms.load(Ordering::Relaxed);
        let log_every = u64::try_from(LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
        let due = last == 0 || now.saturating_sub(last - 1) >= log_every;
        if due
            && self
                .logged_at_ms
                .compare_exchange(last, now + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                op,
                reason,
                "redis unavailable: answering from local state (this warning repeats at most every 10 s; bff_redis_calls_total counts each call)"
            );
        }
    }
}
