//! Batch loaders for async-graphql's `DataLoader`: every product (or user)
//! lookup of one GraphQL request that happens in the same tick becomes one
//! `GET /products?ids=` (or `/users?ids=`) call.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};

use crate::clients::{ProductClient, UserClient};
use crate::models::{Product, User};
use crate::{DownstreamError, RequestContext};

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

/// Loads users by id for one client request.
pub struct UserLoader {
    users: UserClient,
    ctx: RequestContext,
}

impl UserLoader {
    pub fn new(users: UserClient, ctx: RequestContext) -> Self {
        Self { users, ctx }
    }

    /// A per-request `DataLoader` (see [`ProductLoader::data_loader`]).
    pub fn data_loader(users: UserClient, ctx: RequestContext) -> DataLoader<Self, HashMapCache> {
        DataLoader::with_cache(Self::new(users, ctx), tokio::spawn, HashMapCache::default())
            .max_batch_size(MAX_BATCH_SIZE)
    }
}

impl Loader<String> for UserLoader {
    type Value = Arc<User>;
    type Error = DownstreamError;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Arc<User>>, DownstreamError> {
        let found = self.users.lookup(&self.ctx, ids).await?;
        Ok(found
            .into_iter()
            .map(|(id, value)| (id.into(), value))
            .collect())
    }
}
