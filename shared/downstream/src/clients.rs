//! One typed client per downstream service, one method per contract endpoint.

use crate::cache::IdMap;
use std::sync::Arc;

use http::Method;

use crate::cache::{EntityCache, Writes};
use crate::events::{OrderEvents, OrderEventsSettings};
use crate::http::{Endpoint, HttpClient};
use crate::models::{
    Device, DeviceSettingsPatch, Order, PaymentMethod, PlaceOrderRequest, Product, ProductPage,
    Quote, QuoteRequest, Recommendation, RelatedProducts, Review, SimilarProduct, User,
    UserAnalytics, Wishlist,
};
use crate::{DownstreamConfig, DownstreamError, RequestContext, Service};
use shared_state::SharedState;

type Result<T> = std::result::Result<T, DownstreamError>;

/// The `ids` parameter of a batch call: the valid ids, comma-separated;
/// `None` when there are none (no call is needed).
fn batch_list(ids: &[String]) -> Option<String> {
    let mut valid = ids.iter().filter(|id| crate::is_valid_id(id)).peekable();
    valid.peek()?;
    Some(valid.map(String::as_str).collect::<Vec<_>>().join(","))
}

/// Clients for all five services, sharing one connection pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Downstream {
    pub users: UserClient,
    pub products: ProductClient,
    pub orders: OrderClient,
    pub recommendations: RecommendationClient,
    pub devices: DeviceClient,
    /// The order service's event stream: one connection per process, opened
    /// by the first subscriber (shared by every clone).
    pub order_events: OrderEvents,
}

impl Downstream {
    /// `http` is the process's one client (see [`crate::http::build_http_client`]).
    /// Caches in this replica's memory only.
    pub fn new(config: &DownstreamConfig, http: HttpClient) -> Self {
        Self::with_shared_state(config, http, &SharedState::local_only())
    }

    /// Entity caches with a second level in `shared` (Redis), which every
    /// replica reads and fills.
    pub fn with_shared_state(
        config: &DownstreamConfig,
        http: HttpClient,
        shared: &SharedState,
    ) -> Self {
        let endpoint = |service| Endpoint::new(service, config, http.clone());
        let cache = &config.cache;
        Self {
            users: UserClient {
                endpoint: endpoint(Service::User),
                users: EntityCache::new(Service::User, "user", cache, shared, Writes::Elsewhere),
                wishlists: EntityCache::new(
                    Service::User,
                    "wishlist",
                    cache,
                    shared,
                    Writes::ThroughTheBff,
                ),
            },
            products: ProductClient {
                endpoint: endpoint(Service::Product),
                products: EntityCache::new(
                    Service::Product,
                    "product",
                    cache,
                    shared,
                    Writes::Elsewhere,
                ),
            },
            orders: OrderClient {
                endpoint: endpoint(Service::Order),
            },
            recommendations: RecommendationClient {
                endpoint: endpoint(Service::Recommendation),
            },
            devices: DeviceClient {
                endpoint: endpoint(Service::Device),
            },
            order_events: OrderEvents::new(
                &config.order.url,
                http.clone(),
                OrderEventsSettings::default(),
            ),
        }
    }
}

/// The user service. Users and wishlists are cached (see [`EntityCache`]).
#[derive(Debug, Clone)]
pub struct UserClient {
    endpoint: Endpoint,
    users: EntityCache<User>,
    wishlists: EntityCache<Wishlist>,
}

impl UserClient {
    /// Users by id through the cache; unknown ids are left out.
    pub async fn lookup<S: AsRef<str> + Sync>(
        &self,
        ctx: &RequestContext,
        ids: &[S],
    ) -> Result<IdMap<Arc<User>>> {
        let revalidate = |due| {
            let client = self.clone();
            tokio::spawn(async move {
                let ctx = RequestContext::background();
                let fetch = |missing| client.users_for_cache(&ctx, missing);
                client.users.refresh(due, fetch).await;
            });
        };
        self.users
            .get_many(
                ctx,
                ids,
                |missing| self.users_for_cache(ctx, missing),
                revalidate,
            )
            .await
    }

    /// The users the cache is missing, as it stores them.
    async fn users_for_cache(
        &self,
        ctx: &RequestContext,
        missing: Vec<String>,
    ) -> Result<Vec<(String, User)>> {
        let users = self
            .fetch_many(ctx, &missing, Some(self.users.kind()))
            .await?;
        Ok(users.into_iter().map(|u| (u.id.clone(), u)).collect())
    }

    /// The wishlists (by user id) the cache is missing, as it stores them.
    async fn wishlists_for_cache(
        &self,
        ctx: &RequestContext,
        missing: Vec<String>,
    ) -> Result<Vec<(String, Wishlist)>> {
        let cache = Some(self.wishlists.kind());
        let mut wishlists = Vec::with_capacity(missing.len());
        for id in missing {
            let wishlist = self.fetch_wishlist(ctx, &id, cache).await?;
            wishlists.push((id, wishlist));
        }
        Ok(wishlists)
    }

    /// The viewer's wishlist through the cache; wishlist changes made through
    /// this client invalidate it.
    pub async fn cached_wishlist(&self, ctx: &RequestContext, id: &str) -> Result<Arc<Wishlist>> {
        let ids = [id.to_owned()];
        let revalidate = |due| {
            let client = self.clone();
            tokio::spawn(async move {
                let ctx = RequestContext::background();
                let fetch = |missing| client.wishlists_for_cache(&ctx, missing);
                client.wishlists.refresh(due, fetch).await;
            });
        };
        let mut found = self
            .wishlists
            .get_many(
                ctx,
                &ids,
                |missing| self.wishlists_for_cache(ctx, missing),
                revalidate,
            )
            .await?;
        found.remove(id).ok_or(DownstreamError::NotFound {
            service: Service::User,
        })
    }

    /// `GET /users/{id}`
    pub async fn get(&self, ctx: &RequestContext, id: &str) -> Result<User> {
        self.endpoint
            .call(Method::GET, "GET /users/{id}", &["users", id])
            .fetch(ctx)
            .await
    }

    /// `GET /users?ids=a,b,c`: unknown ids are left out (invalid ones, see
    /// [`crate::is_valid_id`], without asking).
    pub async fn get_many(&self, ctx: &RequestContext, ids: &[String]) -> Result<Vec<User>> {
        self.fetch_many(ctx, ids, None).await
    }

    /// [`UserClient::get_many`], made for `cache`'s misses if given.
    async fn fetch_many(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        cache: Option<&'static str>,
    ) -> Result<Vec<User>> {
        let Some(ids) = batch_list(ids) else {
            return Ok(Vec::new());
        };
        self.endpoint
            .call(Method::GET, "GET /users", &["users"])
            .query("ids", &ids)
            .for_cache(cache)
            .fetch(ctx)
            .await
    }

    /// `GET /users/{id}/analytics`
    pub async fn analytics(&self, ctx: &RequestContext, id: &str) -> Result<UserAnalytics> {
        self.endpoint
            .call(
                Method::GET,
                "GET /users/{id}/analytics",
                &["users", id, "analytics"],
            )
            .fetch(ctx)
            .await
    }

    /// `GET /users/{id}/wishlist`
    pub async fn wishlist(&self, ctx: &RequestContext, id: &str) -> Result<Wishlist> {
        self.fetch_wishlist(ctx, id, None).await
    }

    /// [`UserClient::wishlist`], made for `cache`'s miss if given.
    async fn fetch_wishlist(
        &self,
        ctx: &RequestContext,
        id: &str,
        cache: Option<&'static str>,
    ) -> Result<Wishlist> {
        self.endpoint
            .call(
                Method::GET,
                "GET /users/{id}/wishlist",
                &["users", id, "wishlist"],
            )
            .for_cache(cache)
            .fetch(ctx)
            .await
    }

    /// `PUT /users/{id}/wishlist/{product_id}`
    pub async fn add_to_wishlist(
        &self,
        ctx: &RequestContext,
        id: &str,
        product_id: &str,
    ) -> Result<()> {
        let route = "PUT /users/{id}/wishlist/{product_id}";
        self.change_wishlist(ctx, Method::PUT, route, id, product_id)
            .await
    }

    /// `DELETE /users/{id}/wishlist/{product_id}`
    pub async fn remove_from_wishlist(
        &self,
        ctx: &RequestContext,
        id: &str,
        product_id: &str,
    ) -> Result<()> {
        let route = "DELETE /users/{id}/wishlist/{product_id}";
        self.change_wishlist(ctx, Method::DELETE, route, id, product_id)
            .await
    }

    /// One wishlist change; the cached wishlist is dropped so the next read
    /// shows it.
    async fn change_wishlist(
        &self,
        ctx: &RequestContext,
        method: Method,
        route: &'static str,
        id: &str,
        product_id: &str,
    ) -> Result<()> {
        self.endpoint
            .call(method, route, &["users", id, "wishlist", product_id])
            .execute(ctx)
            .await?;
        self.wishlists.invalidate(id).await;
        Ok(())
    }

    /// `GET /users/{id}/payment-methods`
    pub async fn payment_methods(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<Vec<PaymentMethod>> {
        self.endpoint
            .call(
                Method::GET,
                "GET /users/{id}/payment-methods",
                &["users", id, "payment-methods"],
            )
            .fetch(ctx)
            .await
    }
}

/// The product service. Products are cached (see [`EntityCache`]).
#[derive(Debug, Clone)]
pub struct ProductClient {
    endpoint: Endpoint,
    products: EntityCache<Product>,
}

impl ProductClient {
    /// Products by id through the cache; unknown ids are left out.
    pub async fn lookup<S: AsRef<str> + Sync>(
        &self,
        ctx: &RequestContext,
        ids: &[S],
    ) -> Result<IdMap<Arc<Product>>> {
        let revalidate = |due| {
            let client = self.clone();
            tokio::spawn(async move {
                let ctx = RequestContext::background();
                let fetch = |missing| client.products_for_cache(&ctx, missing);
                client.products.refresh(due, fetch).await;
            });
        };
        self.products
            .get_many(
                ctx,
                ids,
                |missing| self.products_for_cache(ctx, missing),
                revalidate,
            )
            .await
    }

    /// The products the cache is missing, as it stores them.
    async fn products_for_cache(
        &self,
        ctx: &RequestContext,
        missing: Vec<String>,
    ) -> Result<Vec<(String, Product)>> {
        let cache = Some(self.products.kind());
        let products = self.fetch_many(ctx, &missing, cache).await?;
        Ok(products.into_iter().map(|p| (p.id.clone(), p)).collect())
    }

    /// `GET /products/{id}`
    pub async fn get(&self, ctx: &RequestContext, id: &str) -> Result<Product> {
        self.endpoint
            .call(Method::GET, "GET /products/{id}", &["products", id])
            .fetch(ctx)
            .await
    }

    /// `GET /products?ids=a,b`: unknown ids are left out (invalid ones, see
    /// [`crate::is_valid_id`], without asking).
    pub async fn get_many(&self, ctx: &RequestContext, ids: &[String]) -> Result<Vec<Product>> {
        self.fetch_many(ctx, ids, None).await
    }

    /// [`ProductClient::get_many`], made for `cache`'s misses if given.
    async fn fetch_many(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        cache: Option<&'static str>,
    ) -> Result<Vec<Product>> {
        let Some(ids) = batch_list(ids) else {
            return Ok(Vec::new());
        };
        self.endpoint
            .call(Method::GET, "GET /products", &["products"])
            .query("ids", &ids)
            .for_cache(cache)
            .fetch(ctx)
            .await
    }

    /// `GET /products?category_id=c&page=p&limit=l` (pages start at 1).
    pub async fn by_category(
        &self,
        ctx: &RequestContext,
        category_id: &str,
        page: u32,
        page_size: u32,
    ) -> Result<ProductPage> {
        self.endpoint
            .call(Method::GET, "GET /products", &["products"])
            .query_id("category_id", category_id)
            .query("page", &page.to_string())
            .query("limit", &page_size.to_string())
            .fetch(ctx)
            .await
    }

    /// `GET /products/{id}/reviews?limit=n`
    pub async fn reviews(&self, ctx: &RequestContext, id: &str, max: u32) -> Result<Vec<Review>> {
        self.endpoint
            .call(
                Method::GET,
                "GET /products/{id}/reviews",
                &["products", id, "reviews"],
            )
            .query("limit", &max.to_string())
            .fetch(ctx)
            .await
    }

    /// `GET /products/{id}/related?limit=n`
    pub async fn related(
        &self,
        ctx: &RequestContext,
        id: &str,
        max: u32,
    ) -> Result<RelatedProducts> {
        self.endpoint
            .call(
                Method::GET,
                "GET /products/{id}/related",
                &["products", id, "related"],
            )
            .query("limit", &max.to_string())
            .fetch(ctx)
            .await
    }
}

/// The order service.
#[derive(Debug, Clone)]
pub struct OrderClient {
    endpoint: Endpoint,
}

impl OrderClient {
    /// `GET /users/{id}/orders?limit=n`, newest first.
    pub async fn for_user(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        max: u32,
    ) -> Result<Vec<Order>> {
        self.endpoint
            .call(
                Method::GET,
                "GET /users/{id}/orders",
                &["users", user_id, "orders"],
            )
            .query("limit", &max.to_string())
            .fetch(ctx)
            .await
    }

    /// `GET /orders/{id}`
    pub async fn get(&self, ctx: &RequestContext, id: &str) -> Result<Order> {
        self.endpoint
            .call(Method::GET, "GET /orders/{id}", &["orders", id])
            .fetch(ctx)
            .await
    }

    /// `GET /orders/{id}` as it is now: never shared with an identical call
    /// already in flight, which may have started before a change the
    /// caller knows of (an order event).
    pub async fn get_fresh(&self, ctx: &RequestContext, id: &str) -> Result<Order> {
        self.endpoint
            .call(Method::GET, "GET /orders/{id}", &["orders", id])
            .fresh()
            .fetch(ctx)
            .await
    }

    /// `POST /checkout/quote`
    pub async fn quote(&self, ctx: &RequestContext, request: &QuoteRequest) -> Result<Quote> {
        self.endpoint
            .call(Method::POST, "POST /checkout/quote", &["checkout", "quote"])
            .json(request)
            .fetch(ctx)
            .await
    }

    /// `POST /orders` with `Idempotency-Key`: the same key returns the same order.
    pub async fn place(
        &self,
        ctx: &RequestContext,
        idempotency_key: &str,
        request: &PlaceOrderRequest,
    ) -> Result<Order> {
        self.endpoint
            .call(Method::POST, "POST /orders", &["orders"])
            .idempotency_key(idempotency_key)
            .json(request)
            .fetch(ctx)
            .await
    }
}

/// The recommendation service.
#[derive(Debug, Clone)]
pub struct RecommendationClient {
    endpoint: Endpoint,
}

impl RecommendationClient {
    /// `GET /users/{id}/recommendations?limit=n`
    pub async fn for_user(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        max: u32,
    ) -> Result<Vec<Recommendation>> {
        self.endpoint
            .call(
                Method::GET,
                "GET /users/{id}/recommendations",
                &["users", user_id, "recommendations"],
            )
            .query("limit", &max.to_string())
            .fetch(ctx)
            .await
    }

    /// `GET /products/{id}/similar?user_id=u&limit=n`
    pub async fn similar(
        &self,
        ctx: &RequestContext,
        product_id: &str,
        user_id: Option<&str>,
        max: u32,
    ) -> Result<Vec<SimilarProduct>> {
        let mut call = self.endpoint.call(
            Method::GET,
            "GET /products/{id}/similar",
            &["products", product_id, "similar"],
        );
        if let Some(user_id) = user_id {
            call = call.query_id("user_id", user_id);
        }
        call.query("limit", &max.to_string()).fetch(ctx).await
    }
}

/// The device service.
#[derive(Debug, Clone)]
pub struct DeviceClient {
    endpoint: Endpoint,
}

impl DeviceClient {
    /// `GET /devices/{id}`
    pub async fn get(&self, ctx: &RequestContext, id: &str) -> Result<Device> {
        self.endpoint
            .call(Method::GET, "GET /devices/{id}", &["devices", id])
            .fetch(ctx)
            .await
    }

    /// `PATCH /devices/{id}/settings` → the updated device.
    pub async fn update_settings(
        &self,
        ctx: &RequestContext,
        id: &str,
        patch: &DeviceSettingsPatch,
    ) -> Result<Device> {
        self.endpoint
            .call(
                Method::PATCH,
                "PATCH /devices/{id}/settings",
                &["devices", id, "settings"],
            )
            .json(patch)
            .fetch(ctx)
            .await
    }
}
