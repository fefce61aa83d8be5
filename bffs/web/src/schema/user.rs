use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use downstream::models;

use super::RequestScope;

/// The signed-in viewer's profile.
pub(crate) struct UserProfile(pub(crate) Arc<models::User>);

impl bff_server::graphql::Entity for UserProfile {
    const KIND: &'static str = "user";

    fn entity_id(&self) -> &str {
        &self.0.id
    }
}

#[Object]
impl UserProfile {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    /// High-resolution avatar.
    async fn avatar_url(&self) -> &str {
        &self.0.avatar.high_res_url
    }

    async fn membership_level(&self) -> &str {
        &self.0.membership_level
    }

    async fn loyalty_points(&self) -> i64 {
        self.0.loyalty_points
    }

    async fn unread_notifications_count(&self) -> i64 {
        self.0.unread_notifications_count
    }

    async fn addresses(&self) -> Vec<Address> {
        self.0.addresses.iter().map(Address::from).collect()
    }

    /// Null, with an error, when the payment methods cannot be fetched.
    async fn payment_methods(&self, ctx: &Context<'_>) -> Result<Option<Vec<PaymentMethod>>> {
        let scope = RequestScope::of(ctx);
        let methods = Box::pin(
            scope
                .downstream
                .users
                .payment_methods(&scope.ctx, &self.0.id),
        )
        .await?;
        Ok(Some(methods.iter().map(PaymentMethod::from).collect()))
    }
}

#[derive(SimpleObject)]
pub(crate) struct Address {
    id: ID,
    line1: String,
    city: String,
    postal_code: String,
    country: String,
    is_default: bool,
}

impl From<&models::Address> for Address {
    fn from(address: &models::Address) -> Self {
        Self {
            id: ID(address.id.clone()),
            line1: address.line1.clone(),
            city: address.city.clone(),
            postal_code: address.postal_code.clone(),
            country: address.country.clone(),
            is_default: address.is_default,
        }
    }
}

#[derive(SimpleObject)]
pub(crate) struct PaymentMethod {
    id: ID,
    /// e.g. "Visa •••• 4242"
    label: String,
    is_default: bool,
}

impl From<&models::PaymentMethod> for PaymentMethod {
    fn from(method: &models::PaymentMethod) -> Self {
        Self {
            id: ID(method.id.clone()),
            label: method.label.clone(),
            is_default: method.is_default,
        }
    }
}
