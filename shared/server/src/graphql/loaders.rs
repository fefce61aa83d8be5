//! async-graphql `DataLoader`s over the downstream clients' batch lookups:
//! every product lookup of one GraphQL request that happens in the same tick
//! becomes one `GET /products?ids=` call. They live with the GraphQL code
//! because the `downstream` crate knows no GraphQL; it offers the lookups.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use downstream::clients::ProductClient;
use downstream::models::Product;
use downstream::{DownstreamError, RequestContext};

/// Keeps one batch URL well under common URL length limits.
pub const MAX_BATCH_SIZE: usize = 100;

/// Loads products by id for one client request.
pub struct ProductLoader {
    products: ProductClient,
    ctx: RequestContext,
}

impl ProductLoader {
    pub fn new(products: ProductClient, ctx: RequestContext) -> Self {
        Self { products, ctx }
    }

    /// A per-request `DataLoader` that also remembers what it loaded, so one
    /// request never asks for the same product twice.
    pub fn data_loader(
        products: ProductClient,
        ctx: RequestContext,
    ) -> DataLoader<Self, HashMapCache> {
        DataLoader::with_cache(
            Self::new(products, ctx),
            tokio::spawn,
            HashMapCache::default(),
        )
        .max_batch_size(MAX_BATCH_SIZE)
    }
}

impl Loader<String> for ProductLoader {
    type Value = Arc<Product>;
    type Error = DownstreamError;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Arc<Product>>, DownstreamError> {
        // The DataLoader wants std's map.
        let found = self.products.lookup(&self.ctx, ids).await?;
        Ok(found
            .into_iter()
            .map(|(id, value)| (id.into(), value))
            .collect())
    }
}
