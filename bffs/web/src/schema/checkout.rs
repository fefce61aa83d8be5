//! Checkout initialisation: validate the cart, then price it, with everything
//! the checkout page needs fetched in parallel.

use bff_server::graphql::Tracked;
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use bff_server::error::BffError;
use downstream::models::{self, CartItem, QuoteRequest};

use super::RequestScope;
use super::money::Money;
use super::product::{Product, ShippingOption};
use super::user::{Address, PaymentMethod};

/// Most distinct lines in one cart, and most units of one line.
const MAX_CART_LINES: usize = 50;
const MAX_QUANTITY: i32 = 99;

#[derive(InputObject, Clone)]
pub(crate) struct CartItemInput {
    pub(crate) product_id: ID,
    /// 1 to 99.
    pub(crate) quantity: i32,
}

/// Checks a cart before anything is sent downstream: not empty, known-sane
/// ids, positive quantities; repeated products are merged into one line.
pub(crate) fn validate_cart(items: &[CartItemInput]) -> Result<Vec<CartItem>, BffError> {
    if items.is_empty() {
        return Err(BffError::BadUserInput("the cart is empty".into()));
    }
    let mut cart: Vec<CartItem> = Vec::with_capacity(items.len());
    for item in items {
        let product_id = item.product_id.as_str().trim();
        if !downstream::is_valid_id(product_id) {
            return Err(BffError::BadUserInput(format!(
                "a product id is invalid: {}",
                downstream::ID_RULE
            )));
        }
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return Err(BffError::BadUserInput(format!(
                "quantity of product {product_id} must be between 1 and {MAX_QUANTITY}"
            )));
        }
        match cart.iter_mut().find(|line| line.product_id == product_id) {
            Some(line) => line.quantity += i64::from(item.quantity),
            None => cart.push(CartItem {
                product_id: product_id.to_owned(),
                quantity: i64::from(item.quantity),
            }),
        }
    }
    if cart.len() > MAX_CART_LINES {
        return Err(BffError::BadUserInput(format!(
            "a cart holds at most {MAX_CART_LINES} products"
        )));
    }
    Ok(cart)
}

pub(crate) struct Checkout {
    items: Vec<CheckoutItem>,
    quote: models::Quote,
    payment_methods: Vec<models::PaymentMethod>,
    user: Arc<models::User>,
}

impl Checkout {
    pub(crate) async fn initialise(
        ctx: &Context<'_>,
        user_id: &str,
        items: &[CartItemInput],
    ) -> Result<Self> {
        let cart = validate_cart(items)?;
        let scope = RequestScope::of(ctx);
        let downstream = &scope.downstream;
        let rc = &scope.ctx;

        let ids = [user_id];
        let user = downstream
            .users
            .lookup(rc, &ids)
            .await?
            .remove(user_id)
            .ok_or(BffError::NotFound("user".into()))?;
        if !user.can_checkout {
            return Err(BffError::Forbidden("this account cannot check out".into()).into());
        }

        let default_address = user.addresses.iter().find(|a| a.is_default);
        let quote_request = QuoteRequest {
            user_id: user_id.to_owned(),
            items: cart.clone(),
            address_id: default_address.map(|a| a.id.clone()),
        };
        let product_ids: Vec<String> = cart.iter().map(|line| line.product_id.clone()).collect();
        let (products, quote, payment_methods) = tokio::join!(
            scope.products().load_many(product_ids),
            downstream.orders.quote(rc, &quote_request),
            downstream.users.payment_methods(rc, user_id),
        );
        let products = products?;
        let items = cart
            .into_iter()
            .map(|line| match products.get(&line.product_id) {
                Some(product) => Ok(CheckoutItem {
                    product: Arc::clone(product),
                    quantity: line.quantity,
                }),
                None => Err(BffError::BadUserInput(format!(
                    "unknown product {}",
                    line.product_id
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            items,
            quote: quote?,
            payment_methods: payment_methods?,
            user,
        })
    }
}

#[Object]
impl Checkout {
    /// The cart's lines with current prices.
    async fn items(&self) -> &[CheckoutItem] {
        &self.items
    }

    /// Priced by the order service.
    async fn pricing(&self) -> Pricing {
        let currency = &self.quote.currency;
        Pricing {
            subtotal: Money::new(self.quote.subtotal_cents, currency),
            discount: Money::new(self.quote.discount_cents, currency),
            shipping: Money::new(self.quote.shipping_cents, currency),
            tax: Money::new(self.quote.tax_cents, currency),
            total: Money::new(self.quote.total_cents, currency),
        }
    }

    async fn shipping_options(&self) -> Vec<ShippingOption> {
        ShippingOption::list(&self.quote.shipping_options, &self.quote.currency)
    }

    async fn payment_methods(&self) -> Vec<PaymentMethod> {
        self.payment_methods
            .iter()
            .map(PaymentMethod::from)
            .collect()
    }

    async fn addresses(&self) -> Vec<Address> {
        self.user.addresses.iter().map(Address::from).collect()
    }

    /// The viewer's default payment method, if any.
    async fn default_payment_method(&self) -> Option<PaymentMethod> {
        self.payment_methods
            .iter()
            .find(|method| method.is_default)
            .map(PaymentMethod::from)
    }
}

pub(crate) struct CheckoutItem {
    product: Arc<models::Product>,
    quantity: i64,
}

#[Object]
impl CheckoutItem {
    async fn product(&self) -> Tracked<Product> {
        Product::tracked(Arc::clone(&self.product))
    }

    async fn quantity(&self) -> i64 {
        self.quantity
    }

    /// Current unit price times quantity.
    async fn line_total(&self) -> Money {
        Money::new(
            self.product.price_cents * self.quantity,
            &self.product.currency,
        )
    }
}

#[derive(SimpleObject)]
pub(crate) struct Pricing {
    subtotal: Money,
    discount: Money,
    shipping: Money,
    tax: Money,
    total: Money,
}
