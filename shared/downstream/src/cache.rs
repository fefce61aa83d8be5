//! Entity caches (moka): bounded in size, entries expire after a TTL, and
//! concurrent misses for the same id — from any number of client requests —
//! share one downstream call.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;

use crate::{CacheConfig, DownstreamError};

/// Cache of one entity type keyed by id. Cheap to clone; a TTL of 0 disables it.
#[derive(Clone)]
pub struct EntityCache<V> {
    entries: Option<moka::future::Cache<String, Arc<V>>>,
}

impl<V> std::fmt::Debug for EntityCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityCache")
            .field("entries", &self.entries.as_ref().map(|c| c.entry_count()))
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
    pub fn new(config: &CacheConfig) -> Self {
        let entries = (config.ttl_ms > 0 && config.max_entries > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(Duration::from_millis(config.ttl_ms))
                .build()
        });
        Self { entries }
    }

    /// Values for `ids` (unknown ids are left out). Cached ids are served from
    /// memory; the rest are fetched by ONE call to `fetch_batch`, unless another
    /// request is already fetching some of them, in which case those are awaited
    /// rather than fetched again.
    pub async fn get_many<F, Fut>(
        &self,
        ids: &[String],
        fetch_batch: F,
    ) -> Result<HashMap<String, Arc<V>>, DownstreamError>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<(String, V)>, DownstreamError>>,
    {
        let Some(entries) = &self.entries else {
            let fetched = fetch_batch(ids.to_vec()).await?;
            return Ok(fetched
                .into_iter()
                .map(|(id, v)| (id, Arc::new(v)))
                .collect());
        };

        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match entries.get(id).await {
                Some(value) => {
                    found.insert(id.clone(), value);
                }
                None if !missing.contains(id) => missing.push(id.clone()),
                None => {}
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }

        // One batch for all our misses, polled only if at least one of them is
        // not already being loaded by someone else.
        let batch = fetch_batch(missing.clone())
            .map(|result| {
                result.map(|values| {
                    Arc::new(
                        values
                            .into_iter()
                            .map(|(id, v)| (id, Arc::new(v)))
                            .collect::<HashMap<_, _>>(),
                    )
                })
            })
            .shared();
        let lookups = missing.iter().map(|id| {
            let batch = batch.clone();
            entries.try_get_with_by_ref(id.as_str(), async move {
                match batch.await {
                    Ok(values) => values.get(id).cloned().ok_or(Miss::Absent),
                    Err(error) => Err(Miss::Failed(error)),
                }
            })
        });
        for (id, result) in missing.iter().zip(join_all(lookups).await) {
            match result {
                Ok(value) => {
                    found.insert(id.clone(), value);
                }
                Err(miss) => match &*miss {
                    Miss::Absent => {}
                    Miss::Failed(error) => return Err(error.clone()),
                },
            }
        }
        Ok(found)
    }

    pub async fn invalidate(&self, id: &str) {
        if let Some(entries) = &self.entries {
            entries.invalidate(id).await;
        }
    }
}
