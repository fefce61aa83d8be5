//! The viewer's dashboard: one parallel round for the parts the client
//! asked for, nothing else. The user service answers `user` and
//! `notificationsCount` with one (cached) call; the order service is asked
//! for exactly the 3 orders shown.

use bff_server::graphql::{Entity, Tracked};
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Result};
use downstream::{DownstreamError, Service, models};
use futures::future::{OptionFuture, join};

use super::{RequestScope, selected};

/// How many recent orders the dashboard shows (and asks the order service for).
pub(crate) const RECENT_ORDERS: u32 = 3;

type Part<T> = Option<Result<T, DownstreamError>>;

pub(crate) struct MobileDashboard {
    user: Part<Arc<models::User>>,
    orders: Part<Arc<Vec<models::Order>>>,
}

impl MobileDashboard {
    pub(crate) async fn load(ctx: &Context<'_>, user_id: &str) -> Self {
        let scope = RequestScope::of(ctx);
        let wanted = selected(&ctx.field());
        let wants = |name: &str| wanted.contains(&name);
        let downstream = &scope.downstream;
        let rc = &scope.ctx;

        // An async block does nothing until polled: building one for a part
        // that is not wanted costs no call.
        let user = async {
            let ids = [user_id];
            let mut found = downstream.users.lookup(rc, &ids).await?;
            found.remove(user_id).ok_or(DownstreamError::NotFound {
                service: Service::User,
            })
        };
        let orders = async {
            let orders = downstream
                .orders
                .for_user(rc, user_id, RECENT_ORDERS)
                .await?;
            Ok(Arc::new(orders))
        };
        let user =
            OptionFuture::from((wants("user") || wants("notificationsCount")).then_some(user));
        let orders = OptionFuture::from(wants("recentOrders").then_some(orders));
        let (user, orders) = join(user, orders).await;
        Self { user, orders }
    }
}

/// A part that was fetched because it was selected; resolvers of unselected
/// parts never run.
fn fetched<T: Clone>(part: &Part<T>) -> Result<T> {
    match part {
        Some(result) => result.clone().map_err(Into::into),
        None => Err(async_graphql::Error::new(
            "dashboard part was not prefetched",
        )),
    }
}

// Each part can fail on its own: a failed part is null, with an error at its
// path, and the rest still arrives.
#[Object]
impl MobileDashboard {
    async fn user(&self) -> Result<Option<Tracked<MobileUser>>> {
        fetched(&self.user).map(|user| Some(Tracked(MobileUser(user))))
    }

    /// The 3 most recent orders.
    async fn recent_orders(&self) -> Result<Option<Vec<OrderSummary>>> {
        let orders = fetched(&self.orders)?;
        Ok(Some(
            (0..orders.len().min(RECENT_ORDERS as usize))
                .map(|index| OrderSummary {
                    orders: Arc::clone(&orders),
                    index,
                })
                .collect(),
        ))
    }

    async fn notifications_count(&self) -> Result<Option<i64>> {
        fetched(&self.user).map(|user| Some(user.unread_notifications_count))
    }
}

pub(crate) struct MobileUser(Arc<models::User>);

impl Entity for MobileUser {
    const KIND: &'static str = "user";

    fn entity_id(&self) -> &str {
        &self.0.id
    }
}

#[Object]
impl MobileUser {
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Thumbnail avatar.
    async fn avatar_url(&self) -> &str {
        &self.0.avatar.thumbnail_url
    }
}

pub(crate) struct OrderSummary {
    orders: Arc<Vec<models::Order>>,
    index: usize,
}

impl OrderSummary {
    fn order(&self) -> &models::Order {
        &self.orders[self.index]
    }
}

#[Object]
impl OrderSummary {
    async fn id(&self) -> ID {
        ID(self.order().id.to_string())
    }

    async fn status(&self) -> OrderStatus {
        self.order().status.into()
    }

    /// Formatted, e.g. "$129.99".
    async fn total(&self) -> String {
        let order = self.order();
        shaping::format_money(order.total_cents, &order.currency)
    }

    /// Short date, e.g. "11/25".
    async fn date(&self) -> String {
        shaping::short_date(&self.order().created_at)
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
