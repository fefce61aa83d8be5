//! Entity caches (moka): bounded in size, entries expire after a TTL, and
//! concurrent misses for the same id — from any number of client requests —
//! share one downstream call. Past its TTL an entity is kept, for a bounded
//! time, as a stale copy: served (and marked in the request's
//! [`StaleMarks`](crate::context::StaleMarks)) when its service fails.
//!
//! With Redis configured, each cache has a second level every replica
//! shares ([`crate::second_level`]): ids missing from memory are looked up
//! there in one round trip before the service is called, and what a
//! replica fetches is stored there for the others. Entities the BFF itself
//! writes (wishlists) then live in the second level only, so a write
//! through one replica is what every replica reads next.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared_state::SharedState;

use crate::models::CompactString;
use crate::second_level::{Found, SecondLevel};
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

/// An entity in the first level: fresh until `until`, a TTL after it was
/// fetched (by this replica or, through the second level, by another); kept
/// until `expires`, the end of the revalidate window, answered but due for
/// a refresh in between.
struct Fresh<V> {
    value: Arc<V>,
    until: std::time::Instant,
    expires: std::time::Instant,
}

impl<V> Clone for Fresh<V> {
    fn clone(&self) -> Self {
        Self {
            value: Arc::clone(&self.value),
            until: self.until,
            expires: self.expires,
        }
    }
}

/// The first level: fresh entities, each expiring at its own `until`.
type FreshCache<V> = moka::future::Cache<String, Fresh<V>, IdHasher>;

/// Expires each entry at its `until`.
struct UntilExpiry;

impl<V> moka::Expiry<String, Fresh<V>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _id: &String,
        entry: &Fresh<V>,
        created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.expires.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _id: &String,
        entry: &Fresh<V>,
        updated_at: std::time::Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.expires.saturating_duration_since(updated_at))
    }
}

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
    ttl: Duration,
    /// The stale-while-revalidate window past the TTL (zero: off).
    revalidate: Duration,
    /// Ids this replica is refreshing in the background now.
    refreshing: std::sync::Mutex<std::collections::HashSet<String>>,
    /// First level: this replica's memory.
    entries: Option<FreshCache<V>>,
    /// Second level: Redis, shared by the replicas.
    shared: Option<SecondLevel>,
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

/// Whether the BFF writes the entities itself (and so must read what any
/// replica wrote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Only the service changes them: a TTL bounds how old a copy is.
    Elsewhere,
    /// Changed through the BFF (wishlists): with a second level, no
    /// replica keeps its own copy.
    ThroughTheBff,
}

impl<V: Serialize + DeserializeOwned + Send + Sync + 'static> EntityCache<V> {
    /// Entities of `service`; `kind` names them in stale marks, metrics and
    /// second-level keys (`product`).
    pub fn new(
        service: Service,
        kind: &'static str,
        config: &CacheConfig,
        shared: &SharedState,
        writes: Writes,
    ) -> Self {
        let enabled = config.ttl_ms > 0 && config.max_entries > 0;
        let shared = enabled
            .then(|| SecondLevel::new(shared, kind, config))
            .flatten();
        let first_level =
            enabled && config.first_level && !(shared.is_some() && writes == Writes::ThroughTheBff);
        Self {
            inner: Arc::new(Inner {
                service,
                kind,
                ttl: Duration::from_millis(config.ttl_ms),
                revalidate: Duration::from_millis(config.revalidate_ms),
                refreshing: Default::default(),
                entries: first_level.then(|| {
                    moka::future::Cache::builder()
                        .max_capacity(config.max_entries)
                        .expire_after(UntilExpiry)
                        .build_with_hasher(IdHasher::default())
                }),
                shared,
                stale: (first_level && config.stale_ms > 0).then(|| {
                    moka::future::Cache::builder()
                        .max_capacity(config.max_entries)
                        .time_to_live(Duration::from_millis(
                            config.ttl_ms.saturating_add(config.stale_ms),
                        ))
                        .build_with_hasher(IdHasher::default())
                }),
                lookups: telemetry::CacheCounters::default(),
            }),
        }
    }

    fn fresh(&self, value: Arc<V>, fresh_for: Duration) -> Fresh<V> {
        let until = std::time::Instant::now() + fresh_for;
        Fresh {
            value,
            until,
            expires: until + self.inner.revalidate,
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
    /// memory; the rest are looked up in the second level (one round trip,
    /// when Redis is configured), and what is still missing is fetched by
    /// ONE call to `fetch_batch`, unless another request is already fetching
    /// some of them, in which case those are awaited rather than fetched again.
    ///
    /// When the fetch fails with the service's fault (unavailable, timed out,
    /// circuit open, bad response) and every id it was for has a stale copy,
    /// those are served instead and recorded in `ctx.stale`.
    ///
    /// Entities answered from inside the revalidate window (past their TTL)
    /// are handed to `revalidate`, which starts their refresh in the
    /// background (see [`Self::refresh`]) without making this request wait.
    pub async fn get_many<S, F, Fut, R>(
        &self,
        ctx: &RequestContext,
        ids: &[S],
        fetch_batch: F,
        revalidate: R,
    ) -> Result<IdMap<Arc<V>>, DownstreamError>
    where
        S: AsRef<str> + Sync,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<(String, V)>, DownstreamError>>,
        R: FnOnce(Vec<String>),
    {
        let mut due = Vec::new();
        let found = self.get_many_noting(ctx, ids, fetch_batch, &mut due).await;
        if !due.is_empty() {
            revalidate(due);
        }
        found
    }

    async fn get_many_noting<S, F, Fut>(
        &self,
        ctx: &RequestContext,
        ids: &[S],
        fetch_batch: F,
        due: &mut Vec<String>,
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
        if inner.entries.is_none() && inner.shared.is_none() {
            let ids: Vec<String> = ids.map(str::to_owned).collect();
            self.count(telemetry::CacheEvent::Miss, ids.len());
            let fetched = fetch_batch(ids).await?;
            return Ok(fetched
                .into_iter()
                .map(|(id, v)| (id.into(), Arc::new(v)))
                .collect());
        }

        let mut found = IdMap::with_capacity_and_hasher(capacity, IdHasher::default());
        let mut missing = Vec::new();
        let mut hits = 0;
        let now = std::time::Instant::now();
        for id in ids {
            let cached = match &inner.entries {
                Some(entries) => entries.get(id).await,
                None => None,
            };
            match cached {
                Some(entry) => {
                    hits += 1;
                    if entry.until <= now {
                        due.push(id.to_owned());
                    }
                    found.insert(id.into(), entry.value);
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

        // The second level, for all of them in one round trip.
        let mut shared_stale = IdMap::with_hasher(IdHasher::default());
        if let Some(shared) = &inner.shared {
            let answers = shared.get_many::<V>(&missing).await;
            let mut still_missing = Vec::with_capacity(missing.len());
            let mut shared_hits = 0;
            for (id, answer) in missing.into_iter().zip(answers) {
                match answer {
                    Found::Fresh { value, fresh_for } => {
                        shared_hits += 1;
                        let value = Arc::new(value);
                        if let Some(entries) = &inner.entries {
                            entries
                                .insert(id.clone(), self.fresh(Arc::clone(&value), fresh_for))
                                .await;
                        }
                        found.insert(id.as_str().into(), value);
                    }
                    Found::Revalidate(value) => {
                        shared_hits += 1;
                        due.push(id.clone());
                        found.insert(id.as_str().into(), Arc::new(value));
                    }
                    Found::Absent => shared_hits += 1,
                    Found::Stale(value) => {
                        shared_stale.insert(id.as_str().into(), Arc::new(value));
                        still_missing.push(id);
                    }
                    Found::Unknown => still_missing.push(id),
                }
            }
            self.count(telemetry::CacheEvent::SharedHit, shared_hits);
            missing = still_missing;
            if missing.is_empty() {
                return Ok(found);
            }
        }
        self.count(telemetry::CacheEvent::Miss, missing.len());

        // One batch for all our misses, polled only if at least one of them is
        // not already being loaded by someone else; what it brings is stored
        // in the second level for the other replicas.
        let shared = inner.shared.as_ref();
        let asked = missing.clone();
        let fetch = fetch_batch(missing.clone());
        let batch = async move {
            let values = fetch.await?;
            if let Some(shared) = shared {
                // Encoded first: only owned data is held across the await.
                shared.put_many(shared.encode(&asked, &values)).await;
            }
            Ok::<_, DownstreamError>(Arc::new(
                values
                    .into_iter()
                    .map(|(id, v)| (id.into(), Arc::new(v)))
                    .collect::<IdMap<_>>(),
            ))
        }
        .shared();

        let Some(entries) = &inner.entries else {
            // No first level (a written-through entity with a second level):
            // nothing to share the call with in memory either.
            return match batch.await {
                Ok(values) => {
                    for id in &missing {
                        if let Some(value) = values.get(id.as_str()) {
                            found.insert(id.as_str().into(), Arc::clone(value));
                        }
                    }
                    Ok(found)
                }
                Err(error) => {
                    let failed: Vec<&String> = missing.iter().collect();
                    self.serve_stale_into(ctx, &mut found, &failed, &error, &shared_stale)
                        .await
                        .ok_or(error)?;
                    Ok(found)
                }
            };
        };
        let ttl = inner.ttl;
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
                        Ok(self.fresh(value, ttl))
                    }
                    Err(error) => Err(Miss::Failed(error)),
                }
            })
        });
        // Another request may be fetching some of these with a later
        // deadline than ours: wait no longer than our own.
        let joined = join_all(lookups);
        // Also when another request's call is the one in flight.
        let waiting = ctx.waits.enter();
        let results = match ctx.deadline {
            None => joined.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, joined).await {
                Ok(results) => results,
                Err(_elapsed) => {
                    let error = DownstreamError::Timeout {
                        service: inner.service,
                    };
                    let ids: Vec<&String> = missing.iter().collect();
                    self.serve_stale_into(ctx, &mut found, &ids, &error, &shared_stale)
                        .await
                        .ok_or(error)?;
                    return Ok(found);
                }
            },
        };
        drop(waiting);
        let mut failed = Vec::new();
        let mut failure = None;
        for (id, result) in missing.iter().zip(results) {
            match result {
                Ok(entry) => {
                    found.insert(id.as_str().into(), entry.value);
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
        self.serve_stale_into(ctx, &mut found, &failed, &error, &shared_stale)
            .await
            .ok_or(error)?;
        Ok(found)
    }

    /// Puts stale copies of all of `ids` into `found` (marking them in
    /// `ctx.stale`), if the failure is the service's and each has one, in
    /// this replica's memory or in the second level; `None` otherwise.
    async fn serve_stale_into(
        &self,
        ctx: &RequestContext,
        found: &mut IdMap<Arc<V>>,
        ids: &[&String],
        error: &DownstreamError,
        shared_stale: &IdMap<Arc<V>>,
    ) -> Option<()> {
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
            let local = match &self.inner.stale {
                Some(stale) => stale.get(*id).await,
                None => None,
            };
            let copy = local.or_else(|| shared_stale.get(id.as_str()).cloned())?;
            copies.push(((*id).clone(), copy));
        }
        tracing::debug!(kind = self.inner.kind, count = copies.len(), %error, "serving stale copies");
        self.count(telemetry::CacheEvent::Stale, copies.len());
        for (id, value) in copies {
            ctx.stale.record(self.inner.kind, &id);
            found.insert(id.into(), value);
        }
        Some(())
    }

    /// Refreshes `ids` (answered from inside the revalidate window) from the
    /// service with `fetch_batch`, once per id at a time on this replica and,
    /// with a second level, on one replica of the fleet per TTL: an id
    /// another replica is refreshing is dropped from this replica's memory,
    /// so its next read takes the fresh copy from the second level. Meant
    /// to run in a task of its own; a failure leaves the old copies.
    pub async fn refresh<F, Fut>(&self, ids: Vec<String>, fetch_batch: F)
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<(String, V)>, DownstreamError>>,
    {
        let inner = &*self.inner;
        let mine: Vec<String> = {
            let mut refreshing = inner
                .refreshing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ids.into_iter()
                .filter(|id| refreshing.insert(id.clone()))
                .collect()
        };
        if mine.is_empty() {
            return;
        }
        let claimed = match &inner.shared {
            Some(shared) => shared.claim_refresh(&mine).await,
            None => mine.clone(),
        };
        if let Some(entries) = &inner.entries {
            for id in mine.iter().filter(|id| !claimed.contains(id)) {
                entries.invalidate(id).await;
            }
        }
        if !claimed.is_empty() {
            match fetch_batch(claimed.clone()).await {
                Ok(values) => {
                    if let Some(shared) = &inner.shared {
                        shared.put_many(shared.encode(&claimed, &values)).await;
                    }
                    for id in &claimed {
                        if !values.iter().any(|(found, _)| found == id)
                            && let Some(entries) = &inner.entries
                        {
                            entries.invalidate(id).await;
                        }
                    }
                    for (id, value) in values {
                        let value = Arc::new(value);
                        if let Some(stale) = &inner.stale {
                            stale.insert(id.clone(), Arc::clone(&value)).await;
                        }
                        if let Some(entries) = &inner.entries {
                            entries.insert(id, self.fresh(value, inner.ttl)).await;
                        }
                    }
                }
                Err(error) => {
                    tracing::debug!(kind = inner.kind, %error, "background refresh failed: the copies stay until the window ends");
                }
            }
        }
        let mut refreshing = inner
            .refreshing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in &mine {
            refreshing.remove(id);
        }
    }

    /// Forgets `id`, its stale copy too (it is known to be out of date), on
    /// this replica and in the second level.
    pub async fn invalidate(&self, id: &str) {
        if let Some(entries) = &self.inner.entries {
            entries.invalidate(id).await;
        }
        if let Some(stale) = &self.inner.stale {
            stale.invalidate(id).await;
        }
        if let Some(shared) = &self.inner.shared {
            shared.forget(id).await;
        }
    }
}
