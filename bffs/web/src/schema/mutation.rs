use async_graphql::{Context, ID, InputObject, Object, Result};
use bff_server::error::BffError;
use bff_server::graphql::Tracked;
use downstream::models::PlaceOrderRequest;

use super::RequestScope;
use super::checkout::{CartItemInput, validate_cart};
use super::order::Order;
use super::product::Product;

pub struct MutationRoot;

#[derive(InputObject)]
pub(crate) struct PlaceOrderInput {
    items: Vec<CartItemInput>,
    address_id: ID,
    shipping_option_id: ID,
    payment_method_id: ID,
    /// Same key, same order: a retried mutation never orders twice.
    idempotency_key: String,
}

/// Longest idempotency key accepted (a UUID is 36).
const MAX_IDEMPOTENCY_KEY: usize = 128;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Adds a product to the viewer's wishlist; returns it with `inWishlist` true.
    async fn add_to_wishlist(&self, ctx: &Context<'_>, product_id: ID) -> Result<Tracked<Product>> {
        change_wishlist(ctx, product_id, true).await
    }

    /// Removes a product from the viewer's wishlist; returns it with `inWishlist` false.
    async fn remove_from_wishlist(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
    ) -> Result<Tracked<Product>> {
        change_wishlist(ctx, product_id, false).await
    }

    /// Places an order. Forwarded once (never retried by the BFF) with the
    /// idempotency key, so the same key always yields the same order.
    async fn place_order(&self, ctx: &Context<'_>, input: PlaceOrderInput) -> Result<Order> {
        let scope = RequestScope::of(ctx);
        let viewer = scope.viewer()?;
        let items = validate_cart(&input.items)?;
        let key = input.idempotency_key.trim();
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY
            || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(BffError::BadUserInput(format!(
                "idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            ))
            .into());
        }
        let request = PlaceOrderRequest {
            user_id: viewer.user_id.clone(),
            items,
            address_id: input.address_id.to_string(),
            shipping_option_id: input.shipping_option_id.to_string(),
            payment_method_id: input.payment_method_id.to_string(),
        };
        let order = scope
            .downstream
            .orders
            .place(&scope.ctx, key, &request)
            .await?;
        Ok(Order::new(order.into(), None))
    }
}

async fn change_wishlist(ctx: &Context<'_>, product_id: ID, add: bool) -> Result<Tracked<Product>> {
    let scope = RequestScope::of(ctx);
    let viewer = scope.viewer()?;
    let product_id = product_id.to_string();
    if !downstream::is_valid_id(&product_id) {
        return Err(BffError::BadUserInput(format!(
            "productId is invalid: {}",
            downstream::ID_RULE
        ))
        .into());
    }
    let users = &scope.downstream.users;
    if add {
        users
            .add_to_wishlist(&scope.ctx, &viewer.user_id, &product_id)
            .await
    } else {
        users
            .remove_from_wishlist(&scope.ctx, &viewer.user_id, &product_id)
            .await
    }?;
    scope
        .products()
        .load_one(product_id)
        .await?
        .map(Product::tracked)
        .ok_or_else(|| BffError::NotFound("product".into()).into())
}
