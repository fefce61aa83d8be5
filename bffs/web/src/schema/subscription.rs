//! `subscription { orderUpdates }`: the signed-in viewer's order changes,
//! from the process's one order event stream (the transports live in
//! `bff_server::graphql::live`).

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result, Subscription};
use bff_server::graphql::live::order_events;
use downstream::events::OrderEventEntry;
use futures::{Stream, StreamExt};

use super::RequestScope;
use super::order::{Order, OrderStatus};

pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The signed-in viewer's order changes (all their orders, or the one with orderId), as the order service publishes them.
    async fn order_updates(
        &self,
        ctx: &Context<'_>,
        order_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<OrderUpdate>> + use<>> {
        let events = order_events(ctx, order_id.as_ref().map(|id| id.as_str()))?;
        Ok(events.map(|event| event.map(OrderUpdate)))
    }
}

/// One change of one of the viewer's orders.
pub(crate) struct OrderUpdate(Arc<OrderEventEntry>);

#[Object]
impl OrderUpdate {
    /// The order service's event id: where a resumed stream starts after.
    async fn event_id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn order_id(&self) -> ID {
        ID(self.0.event.order_id.to_string())
    }

    async fn status(&self) -> OrderStatus {
        self.0.event.status.into()
    }

    async fn tracking_number(&self) -> Option<&str> {
        self.0.event.tracking_number.as_deref()
    }

    /// When the change happened.
    async fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.event.at
    }

    /// The order as it is now, fetched only when selected. Null, with an error, when the order service fails.
    async fn order(&self, ctx: &Context<'_>) -> Result<Option<Order>> {
        let scope = RequestScope::of(ctx);
        // Never a shared or cached copy: it could predate the event.
        let order = Box::pin(
            scope
                .downstream
                .orders
                .get_fresh(&scope.ctx, &self.0.event.order_id),
        )
        .await?;
        Ok(Some(Order::new(Arc::new(order), None)))
    }
}
