use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use downstream::models::{self, InventoryStatus};

use super::money::Money;
use super::{MAX_LIST, RequestScope, list_size, load_products_in_order};
use bff_server::graphql::{Entity, Tracked};

/// A product with everything the product page shows.
#[derive(Clone)]
pub(crate) struct Product(pub(crate) Arc<models::Product>);

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The full description.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// What it costs now.
    async fn price(&self) -> Money {
        self.current_price()
    }

    /// The price before any discount.
    async fn original_price(&self) -> Money {
        self.price_before_discount()
    }

    async fn discount_percentage(&self) -> i64 {
        self.0.discount_percentage
    }

    async fn thumbnail_url(&self) -> &str {
        &self.0.thumbnail_url
    }

    /// The image gallery, in display order.
    async fn images(&self) -> &[String] {
        &self.0.image_gallery
    }

    /// Average review rating, 0 to 5.
    async fn rating(&self) -> f64 {
        self.0.average_rating
    }

    async fn review_count(&self) -> i64 {
        self.0.review_count
    }

    /// Technical specifications as name/value pairs, ordered by name.
    async fn specifications(&self) -> Vec<Specification> {
        self.0
            .specifications
            .iter()
            .map(|(name, value)| Specification {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    }

    async fn availability(&self) -> Availability {
        self.0.inventory_status.into()
    }

    async fn shipping_options(&self) -> Vec<ShippingOption> {
        ShippingOption::list(&self.0.shipping_options, &self.0.currency)
    }

    /// Null, with an error, when the reviews cannot be fetched.
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Option<Vec<Review>>> {
        let first = list_size(first, MAX_LIST)?;
        let scope = RequestScope::of(ctx);
        let reviews = Box::pin(
            scope
                .downstream
                .products
                .reviews(&scope.ctx, &self.0.id, first),
        )
        .await?;
        Ok(Some(reviews.into_iter().map(Review).collect()))
    }

    /// Null, with an error, when the related products cannot be fetched.
    async fn related_products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Option<Vec<Tracked<Product>>>> {
        let first = list_size(first, MAX_LIST)?;
        let scope = RequestScope::of(ctx);
        let related = Box::pin(
            scope
                .downstream
                .products
                .related(&scope.ctx, &self.0.id, first),
        )
        .await?;
        Ok(Some(
            Box::pin(load_products_in_order(scope, related.product_ids)).await?,
        ))
    }

    /// Null when signed out.
    async fn in_wishlist(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        let scope = RequestScope::of(ctx);
        let Some(viewer) = scope.viewer.as_ref() else {
            return Ok(None);
        };
        let wishlist = Box::pin(
            scope
                .downstream
                .users
                .cached_wishlist(&scope.ctx, &viewer.user_id),
        )
        .await?;
        scope.note_if_stale("wishlist", &viewer.user_id, ctx.path_node.as_ref());
        Ok(Some(wishlist.product_ids.contains(&self.0.id)))
    }

    /// Products similar to this one for the signed-in viewer. Null when signed out.
    async fn personalized_recommendations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Option<Vec<Tracked<Product>>>> {
        let first = list_size(first, MAX_LIST)?;
        let scope = RequestScope::of(ctx);
        let Some(viewer) = scope.viewer.as_ref() else {
            return Ok(None);
        };
        let similar = Box::pin(scope.downstream.recommendations.similar(
            &scope.ctx,
            &self.0.id,
            Some(&viewer.user_id),
            first,
        ))
        .await?;
        let ids = similar.into_iter().map(|s| s.product_id).collect();
        Ok(Some(Box::pin(load_products_in_order(scope, ids)).await?))
    }
}

impl Entity for Product {
    const KIND: &'static str = "product";

    fn entity_id(&self) -> &str {
        &self.0.id
    }
}

impl Product {
    /// The product as resolvers return it: noting its path when stale.
    pub(crate) fn tracked(product: Arc<models::Product>) -> Tracked<Self> {
        Tracked(Self(product))
    }

    fn current_price(&self) -> Money {
        Money::new(self.0.price_cents, &self.0.currency)
    }

    fn price_before_discount(&self) -> Money {
        Money::new(self.0.original_price_cents, &self.0.currency)
    }
}

#[derive(SimpleObject)]
pub(crate) struct Specification {
    name: String,
    value: String,
}

// The names are the contract's.
#[allow(clippy::enum_variant_names)]
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub(crate) enum Availability {
    InStock,
    LowStock,
    OutOfStock,
}

impl From<InventoryStatus> for Availability {
    fn from(status: InventoryStatus) -> Self {
        match status {
            InventoryStatus::InStock => Availability::InStock,
            InventoryStatus::LowStock => Availability::LowStock,
            InventoryStatus::OutOfStock => Availability::OutOfStock,
        }
    }
}

/// A way to ship an order.
pub(crate) struct ShippingOption {
    option: models::ShippingOption,
    currency: String,
}

impl ShippingOption {
    pub(crate) fn list(options: &[models::ShippingOption], currency: &str) -> Vec<Self> {
        options
            .iter()
            .map(|option| ShippingOption {
                option: option.clone(),
                currency: currency.to_owned(),
            })
            .collect()
    }
}

#[Object]
impl ShippingOption {
    async fn id(&self) -> ID {
        ID(self.option.id.clone())
    }

    async fn label(&self) -> &str {
        &self.option.label
    }

    async fn price(&self) -> Money {
        Money::new(self.option.price_cents, &self.currency)
    }

    async fn estimated_days(&self) -> i64 {
        self.option.estimated_days
    }
}

/// A customer review.
pub(crate) struct Review(models::Review);

#[Object]
impl Review {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn author_name(&self) -> &str {
        &self.0.author_name
    }

    /// 1 to 5 stars.
    async fn rating(&self) -> i64 {
        self.0.rating
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.created_at
    }
}
