//! `subscription { orderUpdates }`: the signed-in viewer's order changes,
//! shaped small (the transports live in `bff_server::graphql::live`).

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result, Subscription};
use bff_server::graphql::live::order_events;
use downstream::events::OrderEventEntry;
use futures::{Stream, StreamExt};

use super::dashboard::OrderStatus;

pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The signed-in viewer's order changes.
    async fn order_updates(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<OrderSummaryUpdate>> + use<>> {
        let events = order_events(ctx, None)?;
        Ok(events.map(|event| event.map(OrderSummaryUpdate)))
    }
}

/// One change of one of the viewer's orders.
pub(crate) struct OrderSummaryUpdate(Arc<OrderEventEntry>);

#[Object]
impl OrderSummaryUpdate {
    async fn event_id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn order_id(&self) -> ID {
        ID(self.0.event.order_id.to_string())
    }

    async fn status(&self) -> OrderStatus {
        self.0.event.status.into()
    }

    /// Short date of the change, e.g. "11/25".
    async fn date(&self) -> String {
        shaping::short_date(&self.0.event.at)
    }
}
