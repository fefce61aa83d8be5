use bff_server::graphql::Tracked;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Result};
use downstream::models;

use super::money::Money;
use super::product::Product;
use super::{ProductMap, RequestScope};

/// An order the viewer placed.
pub(crate) struct Order {
    order: Arc<models::Order>,
    /// Products fetched ahead for this order's items (the dashboard fetches all
    /// products of a screen in one round); `None` loads them on demand.
    products: Option<ProductMap>,
}

impl Order {
    pub(crate) fn new(order: Arc<models::Order>, products: Option<ProductMap>) -> Self {
        Self { order, products }
    }
}

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.order.id.to_string())
    }

    async fn status(&self) -> OrderStatus {
        self.order.status.into()
    }

    async fn total(&self) -> Money {
        self.total_money()
    }

    /// Full date, e.g. "November 25, 2026".
    async fn date(&self) -> String {
        shaping::long_date(&self.order.created_at)
    }

    /// When the order was placed.
    async fn placed_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.order.created_at
    }

    /// Number of units across all lines.
    async fn items_count(&self) -> i64 {
        self.units()
    }

    /// Set once the order has shipped.
    async fn tracking_number(&self) -> Option<&str> {
        self.order.tracking_number.as_deref()
    }

    async fn items(&self) -> Vec<OrderItem> {
        self.lines()
    }
}

impl Order {
    fn total_money(&self) -> Money {
        Money::new(self.order.total_cents, &self.order.currency)
    }

    fn units(&self) -> i64 {
        self.order.items.iter().map(|item| item.quantity).sum()
    }

    fn lines(&self) -> Vec<OrderItem> {
        self.line_iter().collect()
    }

    fn line_iter(&self) -> impl Iterator<Item = OrderItem> + '_ {
        (0..self.order.items.len()).map(|index| OrderItem {
            order: Arc::clone(&self.order),
            index,
            products: self.products.clone(),
        })
    }
}

/// One line of an order.
pub(crate) struct OrderItem {
    order: Arc<models::Order>,
    index: usize,
    products: Option<ProductMap>,
}

impl OrderItem {
    fn item(&self) -> &models::OrderItem {
        &self.order.items[self.index]
    }
}

#[Object]
impl OrderItem {
    /// Null when the product no longer exists, or (with an error) when the
    /// product service cannot be reached.
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Tracked<Product>>> {
        let id = &self.item().product_id;
        let product = match &self.products {
            Some(prefetched) => prefetched.clone()?.get(id.as_str()).cloned(),
            None => {
                RequestScope::of(ctx)
                    .products()
                    .load_one(id.to_string())
                    .await?
            }
        };
        Ok(product.map(Product::tracked))
    }

    async fn quantity(&self) -> i64 {
        self.item().quantity
    }

    /// Price of one unit when the order was placed.
    async fn unit_price(&self) -> Money {
        self.unit_money()
    }
}

impl OrderItem {
    fn unit_money(&self) -> Money {
        Money::new(self.item().unit_price_cents, &self.order.currency)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub(crate) enum OrderStatus {
    Placed,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl From<models::OrderStatus> for OrderStatus {
    fn from(status: models::OrderStatus) -> Self {
        match status {
            models::OrderStatus::Placed => OrderStatus::Placed,
            models::OrderStatus::Paid => OrderStatus::Paid,
            models::OrderStatus::Shipped => OrderStatus::Shipped,
            models::OrderStatus::Delivered => OrderStatus::Delivered,
            models::OrderStatus::Cancelled => OrderStatus::Cancelled,
        }
    }
}
