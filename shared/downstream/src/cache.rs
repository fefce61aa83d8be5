//! Entity caches (moka): bounded in size, entries expire after a TTL, and
//! concurrent misses for the same id — from any number of client requests —
//! share one downstream call. Past its TTL an entity is kept, for a bounded
//! time, as a stale copy: served (and marked in the request's
//! [`StaleMarks`](crate::context::StaleMarks)) when its service fails.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;

use crate::models::CompactString;
use crate::{CacheConfig, DownstreamError, RequestContext, Service, telemetry};

/// Entities by id (look them up by `&str`). Ids are kept inline, without
/// an allocation each; foldhash rather than std's SipHash: a dashboard
/// hashes ids dozens of times (cache lookups, the map, reads of it), and
/// SipHash was ~5% of its instructions. foldhash is seeded per process, so
/// ids a client chooses cannot be made to collide on purpose.
pub type IdMap<V> = HashMap<CompactString, V, IdHasher>;

/// The hasher of [`IdMap`] and of the entity caches.
pub type IdHasher = foldhash::fast::RandomState;

/// A moka cache keyed by id.
type IdCache<V> = moka::future::Cache<String, Arc<V>, IdHasher>;

/// Cache of one entity type keyed by id. Cheap to clone (one `Arc`: every
/// client request clones the clients); a TTL of 0 disables it.
pub struct EntityCache<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for EntityCache<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<V> {
    /// The service the entities come from.
    service: Service,
    /// What the stale marks and metrics call it, e.g. `product`.
    kind: &'static str,
    entries: Option<IdCache<V>>,
    /// Every entity fetched, kept for TTL + stale time; only read when the
    /// service fails.
    stale: Option<IdCache<V>>,
    lookups: telemetry::CacheCounters,
}

impl<V> std::fmt::Debug for EntityCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.inner;
        f.debug_struct("EntityCache")
            .field("kind", &inner.kind)
            .field("entries", &inner.entries.as_ref().map(|c| c.entry_count()))
            .field("stale", &inner.stale.as_ref().map(|c| c.entry_count()))
            .finish()
    }
}

/// Why one id of a batch produced no value.
#[derive(Debug)]
enum Miss {
    /// The service does not know it (batch endpoints leave such ids out).
    Absent,
    Failed(DownstreamError),
}

impl<V: Send + Sync + 'static> EntityCache<V> {
    /// Entities of `service`; `kind` names them in stale marks and metrics
    /// (`product`).
    pub fn new(service: Service, kind: &'static str, config: &CacheConfig) -> Self {
        let enabled = config.ttl_ms > 0 && config.max_entries > 0;
        let cache = |ttl_ms: u64| {
            moka::future::Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(Duration::from_millis(ttl_ms))
                .build_with_hasher(IdHasher::default())
        };
        Self {
            inner: Arc::new(Inner {
                service,
                kind,
                entries: enabled.then(|| cache(config.ttl_ms)),
                stale: (enabled && config.stale_ms > 0)
                    .then(|| cache(config.ttl_ms.saturating_add(config.stale_ms))),
                lookups: telemetry::CacheCounters::default(),
            }),
        }
    }

    /// What the stale marks and metrics call its entities, e.g. `product`.
    pub fn kind(&self) -> &'static str {
        self.inner.kind
    }

    /// Counts `lookups` ids that ended as `event`.
    fn count(&self, event: telemetry::CacheEvent, lookups: usize) {
        let inner = &self.inner;
        let lookups = u64::try_from(lookups).unwrap_or(u64::MAX);
        inner.lookups.add(inner.kind, event, lookups);
    }

    /// Values for `ids` (unknown ids are left out, and so are invalid ones,
    /// see [`crate::is_valid_id`], without a lookup). Cached ids are served from
    /// memory; the rest are fetched by ONE call to `fetch_batch`, unless another
    /// request is already fetching some of them, in which case those are awaited
    /// rather than fetched again.
    ///
    /// When the fetch fails with the service's fault (unavailable, timed out,
    /// circuit open, bad response) and every id it was for has a stale copy,
    /// those are served instead and recorded in `ctx.stale`.
    pub async fn get_many<S, F, Fut>(
        &self,
        ctx: &RequestContext,
        ids: &[S],
        fetch_batch: F,
    ) -> Result<IdMap<Arc<V>>, DownstreamError>
    where
        S: AsRef<str> + Sync,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<(String, V)>, DownstreamError>>,
    {
        let inner = &*self.inner;
        let capacity = ids.len();
        let ids = ids
            .iter()
            .map(AsRef::as_ref)
            .filter(|id| crate::is_valid_id(id));
        let Some(entries) = &inner.entries else {
            self.count(telemetry::CacheEvent::Miss, 1);
            let fetched = fetch_batch(ids.map(str::to_owned).collect()).await?;
            return Ok(fetched
                .into_iter()
                .map(|(id, v)| (id.into(), Arc::new(v)))
                .collect());
        };

        let mut found = IdMap::with_capacity_and_hasher(capacity, IdHasher::default());
        let mut missing = Vec::new();
        let mut hits = 0;
        for id in ids {
            match entries.get(id).await {
                Some(value) => {
                    hits += 1;
                    found.insert(id.into(), value);
                }
                None if !missing.iter().any(|missed| missed == id) => missing.push(id.to_owned()),
                None => {}
            }
        }
        // Still one count per id, added at once.
        self.count(telemetry::CacheEvent::Hit, hits);
        if missing.is_empty() {
            return Ok(found);
        }
        self.count(telemetry::CacheEvent::Miss, missing.len());

        // One batch for all our misses, polled only if at least one of them is
        // not already being loaded by someone else.
        let batch = fetch_batch(missing.clone())
            .map(|result| {
                result.map(|values| {
                    Arc::new(
                        values
                            .into_iter()
                            .map(|(id, v)| (id.into(), Arc::new(v)))
                            .collect::<IdMap<_>>(),
                    )
                })
            })
            .shared();
        let lookups = missing.iter().map(|id| {
            let batch = batch.clone();
            let stale = inner.stale.as_ref();
            entries.try_get_with_by_ref(id.as_str(), async move {
                match batch.await {
                    Ok(values) => {
                        let value = values.get(id.as_str()).cloned().ok_or(Miss::Absent)?;
                        if let Some(stale) = stale {
                            stale.insert(id.clone(), Arc::clone(&value)).await;
                        }
                        Ok(value)
                    }
                    Err(error) => Err(Miss::Failed(error)),
                }
            })
        });
        // Another request may be fetching some of these with a later
        // deadline than ours: wait no longer than our own.
        let joined = join_all(lookups);
        let results = match ctx.deadline {
            None => joined.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, joined).await {
                Ok(results) => results,
                Err(_elapsed) => {
                    let error = DownstreamError::Timeout {
                        service: inner.service,
                    };
                    let ids: Vec<&String> = missing.iter().collect();
                    let stale = self.serve_stale(&ids, &error).await.ok_or(error)?;
                    self.count(telemetry::CacheEvent::Stale, stale.len());
                    for (id, value) in stale {
                        ctx.stale.record(inner.kind, &id);
                        found.insert(id.into(), value);
                    }
                    return Ok(found);
                }
            },
        };
        let mut failed = Vec::new();
        let mut failure = None;
        for (id, result) in missing.iter().zip(results) {
            match result {
                Ok(value) => {
                    found.insert(id.as_str().into(), value);
                }
                Err(miss) => match &*miss {
                    Miss::Absent => {}
                    Miss::Failed(error) => {
                        failed.push(id);
                        failure.get_or_insert_with(|| error.clone());
                    }
                },
            }
        }
        let Some(error) = failure else {
            return Ok(found);
        };
        let stale = self.serve_stale(&failed, &error).await.ok_or(error)?;
        self.count(telemetry::CacheEvent::Stale, stale.len());
        for (id, value) in stale {
            ctx.stale.record(inner.kind, &id);
            found.insert(id.into(), value);
        }
        Ok(found)
    }

    /// Stale copies of all of `ids`, if the failure is the service's and
    /// each has one.
    async fn serve_stale(
        &self,
        ids: &[&String],
        error: &DownstreamError,
    ) -> Option<Vec<(String, Arc<V>)>> {
        let stale = self.inner.stale.as_ref()?;
        let service_failed = matches!(
            error,
            DownstreamError::Unavailable { .. }
                | DownstreamError::Timeout { .. }
                | DownstreamError::CircuitOpen { .. }
                | DownstreamError::BadResponse { .. }
        );
        if !service_failed {
            return None;
        }
        let mut copies = Vec::with_capacity(ids.len());
        for id in ids {
            copies.push(((*id).clone(), stale.get(*id).await?));
        }
        tracing::debug!(kind = self.inner.kind, count = copies.len(), %error, "serving stale copies");
        Some(copies)
    }

    /// Forgets `id`, its stale copy too (it is known to be out of date).
    pub async fn invalidate(&self, id: &str) {
        if let Some(entries) = &self.inner.entries {
            entries.invalidate(id).await;
        }
        if let Some(stale) = &self.inner.stale {
            stale.invalidate(id).await;
        }
    }
}
