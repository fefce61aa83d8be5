//! The entity caches' second level: Redis, shared by every replica of the
//! BFF (`BFF_REDIS_URL`). A replica that misses in its own memory asks
//! Redis for all its missing ids in one `MGET`, and stores what it fetched
//! (and which ids the service does not know) in one pipeline. Entries keep
//! when they were fetched, so a replica serves them fresh only for what is
//! left of the TTL, and as stale copies (stale-if-error) after that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shared_state::SharedState;

use crate::CacheConfig;

/// How long an id the service does not know is remembered as absent: long
/// enough to absorb a burst of lookups of a bad id, short enough that a new
/// entity shows up quickly.
pub(crate) const ABSENT_TTL: Duration = Duration::from_secs(5);

/// What Redis holds for one id.
#[derive(Serialize, Deserialize)]
struct Stored<V> {
    /// When it was fetched from the service (ms since the Unix epoch).
    fetched_ms: u64,
    /// `None`: the service does not know the id.
    value: Option<V>,
}

/// One id as the second level knows it.
pub(crate) enum Found<V> {
    /// Within its TTL; `fresh_for` is what is left of it.
    Fresh { value: V, fresh_for: Duration },
    /// Past its TTL, inside the revalidate window: answered, and refreshed
    /// in the background.
    Revalidate(V),
    /// The service does not know it (remembered for [`ABSENT_TTL`]).
    Absent,
    /// Past its TTL, inside the stale window: only for when the service fails.
    Stale(V),
    /// Not there (or unreadable, or Redis did not answer).
    Unknown,
}

/// The second level of one entity cache (`kind`).
pub(crate) struct SecondLevel {
    state: SharedState,
    kind: &'static str,
    ttl: Duration,
    /// TTL plus the revalidate window.
    revalidate_until: Duration,
    /// TTL plus the stale window (or the revalidate window, if longer):
    /// how long Redis keeps an entry.
    keep: Duration,
}

impl SecondLevel {
    /// `None` when Redis is not configured or the cache is off.
    pub(crate) fn new(
        state: &SharedState,
        kind: &'static str,
        config: &CacheConfig,
    ) -> Option<Self> {
        let enabled = state.is_enabled() && config.ttl_ms > 0;
        enabled.then(|| Self {
            state: state.clone(),
            kind,
            ttl: Duration::from_millis(config.ttl_ms),
            revalidate_until: Duration::from_millis(
                config.ttl_ms.saturating_add(config.revalidate_ms),
            ),
            keep: Duration::from_millis(
                config
                    .ttl_ms
                    .saturating_add(config.stale_ms.max(config.revalidate_ms)),
            ),
        })
    }

    fn key(&self, id: &str) -> String {
        format!("entity:{}:{id}", self.kind)
    }

    /// What Redis knows of each of `ids`, in order; all `Unknown` when it
    /// does not answer in time. One round trip.
    pub(crate) async fn get_many<V: DeserializeOwned>(&self, ids: &[String]) -> Vec<Found<V>> {
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        let Ok(values) = self.state.get_many(&keys).await else {
            return ids.iter().map(|_| Found::Unknown).collect();
        };
        let now = now_ms();
        values
            .into_iter()
            .map(|value| {
                let Some(stored) =
                    value.and_then(|text| serde_json::from_str::<Stored<V>>(&text).ok())
                else {
                    return Found::Unknown;
                };
                let age = Duration::from_millis(now.saturating_sub(stored.fetched_ms));
                match stored.value {
                    None if age < ABSENT_TTL => Found::Absent,
                    None => Found::Unknown,
                    Some(value) if age < self.ttl => Found::Fresh {
                        value,
                        fresh_for: self.ttl - age,
                    },
                    Some(value) if age < self.revalidate_until => Found::Revalidate(value),
                    Some(value) => Found::Stale(value),
                }
            })
            .collect()
    }

    /// Stores `entries` (from [`Self::encode`]). One round trip; a Redis
    /// that does not answer only costs the other replicas a fetch of their own.
    pub(crate) async fn put_many(&self, entries: Vec<(String, String, Duration)>) {
        // Err: Redis did not answer; it is only a cache.
        let _ = self.state.set_many_with_ttl(&entries).await;
    }

    /// What one batch fetched (`values`), and which of the `asked` ids the
    /// service does not know, as Redis entries (key, text, time to keep).
    pub(crate) fn encode<V: Serialize>(
        &self,
        asked: &[String],
        values: &[(String, V)],
    ) -> Vec<(String, String, Duration)> {
        let fetched_ms = now_ms();
        let mut entries: Vec<(String, String, Duration)> = Vec::with_capacity(asked.len());
        for (id, value) in values {
            let stored = Stored {
                fetched_ms,
                value: Some(value),
            };
            if let Ok(text) = serde_json::to_string(&stored) {
                entries.push((self.key(id), text, self.keep));
            }
        }
        for id in asked {
            if values.iter().any(|(found, _)| found == id) {
                continue;
            }
            let stored: Stored<&V> = Stored {
                fetched_ms,
                value: None,
            };
            if let Ok(text) = serde_json::to_string(&stored) {
                entries.push((self.key(id), text, ABSENT_TTL));
            }
        }
        entries
    }

    /// Of `ids` (due for a background refresh), those this replica is the
    /// one to refresh: each id is claimed by one replica of the fleet for a
    /// TTL. All of them when Redis does not answer (each replica then
    /// refreshes its own).
    pub(crate) async fn claim_refresh(&self, ids: &[String]) -> Vec<String> {
        let keys: Vec<String> = ids
            .iter()
            .map(|id| format!("refresh:{}:{id}", self.kind))
            .collect();
        let claim_for = self.ttl.max(Duration::from_secs(1));
        match self.state.claim_many(&keys, claim_for).await {
            Ok(claimed) => ids
                .iter()
                .zip(claimed)
                .filter(|(_, claimed)| *claimed)
                .map(|(id, _)| id.clone())
                .collect(),
            Err(_) => ids.to_vec(),
        }
    }

    /// Forgets `id` on every replica's next read (they read through to
    /// Redis for entities written through the BFF).
    pub(crate) async fn forget(&self, id: &str) {
        // Err: Redis did not answer: the entry ages out with its TTL.
        let _ = self.state.delete(&self.key(id)).await;
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
