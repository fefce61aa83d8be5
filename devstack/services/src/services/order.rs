//! Order service: order history, quotes, idempotent order placement; its
//! event stream is in `events`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use chrono::{SubsecRound, Utc};
use downstream::models::{
    CartItem, Cents, Order, OrderEventType, OrderItem, OrderStatus, PlaceOrderRequest, Quote,
    QuoteRequest, User,
};

use super::{ApiError, ApiResult, JsonBody, PathParams, QueryParams, Route, SharedState, route};
use crate::seed::{self, CURRENCY};

/// Largest quantity of one cart line (keeps the arithmetic far from overflow).
const MAX_QUANTITY: i64 = 1000;
/// Largest number of cart lines.
const MAX_LINES: usize = 100;

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/users/{id}/orders", get_user_orders),
        route(Method::GET, "/orders/{id}", get_order),
        route(Method::POST, "/checkout/quote", post_quote),
        route(Method::POST, "/orders", post_order),
    ]
    .into_iter()
    .chain(super::events::routes())
    .collect()
}

/// Newest first; orders placed through `POST /orders` come before seed orders.
async fn get_user_orders(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> ApiResult<Json<Vec<Order>>> {
    if state.seed.user(&id).is_none() {
        return Err(ApiError::not_found(format_args!("user {id}")));
    }
    let limit = query.limit(10)?;
    let data = state.data();
    let orders = data
        .user_orders
        .get(&id)
        .into_iter()
        .flatten()
        .filter_map(|oid| data.orders.get(oid))
        .take(limit)
        .cloned()
        .collect();
    Ok(Json(orders))
}

async fn get_order(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Order>> {
    state
        .data()
        .orders
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format_args!("order {id}")))
}

/// A validated cart: lines at current prices and their subtotal.
struct Cart {
    items: Vec<OrderItem>,
    subtotal_cents: Cents,
}

fn find_user<'a>(state: &'a SharedState, id: &str) -> ApiResult<&'a User> {
    state
        .seed
        .user(id)
        .ok_or_else(|| ApiError::not_found(format_args!("user {id}")))
}

fn validate_cart(state: &SharedState, items: &[CartItem]) -> ApiResult<Cart> {
    if items.is_empty() {
        return Err(ApiError::bad_request("items must not be empty"));
    }
    if items.len() > MAX_LINES {
        return Err(ApiError::bad_request(format!("at most {MAX_LINES} items")));
    }
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        let product = state
            .seed
            .product(&item.product_id)
            .ok_or_else(|| ApiError::bad_request(format!("unknown product {}", item.product_id)))?;
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return Err(ApiError::bad_request(format!(
                "quantity of {} must be from 1 to {MAX_QUANTITY}",
                item.product_id
            )));
        }
        lines.push(OrderItem {
            product_id: product.id.as_str().into(),
            quantity: item.quantity,
            unit_price_cents: product.price_cents,
        });
    }
    let subtotal_cents = lines.iter().map(|l| l.unit_price_cents * l.quantity).sum();
    Ok(Cart {
        items: lines,
        subtotal_cents,
    })
}

fn check_address(user: &User, address_id: &str) -> ApiResult<()> {
    if user.addresses.iter().any(|a| a.id == address_id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "unknown address {address_id}"
        )))
    }
}

async fn post_quote(
    State(state): State<SharedState>,
    JsonBody(request): JsonBody<QuoteRequest>,
) -> ApiResult<Json<Quote>> {
    let user = find_user(&state, &request.user_id)?;
    let cart = validate_cart(&state, &request.items)?;
    if let Some(address_id) = &request.address_id {
        check_address(user, address_id)?;
    }
    seed::quote(&user.membership_level, cart.subtotal_cents, "standard")
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no standard shipping"))
}

/// Creates an order once per (user, `Idempotency-Key`); repeating the key
/// returns the first order, whatever the body.
async fn post_order(
    State(state): State<SharedState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PlaceOrderRequest>,
) -> ApiResult<(StatusCode, Json<Order>)> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::bad_request("Idempotency-Key header is required"))?
        .to_owned();

    // Held from the key lookup to the insert so that concurrent retries of one
    // key cannot create two orders. Validation only reads the immutable seed.
    let mut data = state.data();
    let idempotency_key = (request.user_id.clone(), key);
    if let Some(existing) = data
        .idempotency
        .get(&idempotency_key)
        .and_then(|id| data.orders.get(id))
    {
        return Ok((StatusCode::CREATED, Json(existing.clone())));
    }

    let user = find_user(&state, &request.user_id)?;
    if !user.can_checkout {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("user {} cannot check out", user.id),
        ));
    }
    let cart = validate_cart(&state, &request.items)?;
    check_address(user, &request.address_id)?;
    let quote = seed::quote(
        &user.membership_level,
        cart.subtotal_cents,
        &request.shipping_option_id,
    )
    .ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown shipping option {}",
            request.shipping_option_id
        ))
    })?;
    let payment_known = state
        .seed
        .payment_methods
        .get(&user.id)
        .is_some_and(|methods| methods.iter().any(|m| m.id == request.payment_method_id));
    if !payment_known {
        return Err(ApiError::bad_request(format!(
            "unknown payment method {}",
            request.payment_method_id
        )));
    }

    let id = format!("o{}", data.next_order_number);
    data.next_order_number += 1;
    let order = Order {
        id: id.as_str().into(),
        user_id: user.id.as_str().into(),
        status: OrderStatus::Placed,
        total_cents: quote.total_cents,
        currency: CURRENCY.into(),
        created_at: Utc::now().trunc_subsecs(0),
        items: cart.items,
        tracking_number: None,
    };
    data.orders.insert(id.clone(), order.clone());
    data.user_orders
        .entry(user.id.clone())
        .or_default()
        .insert(0, id.clone());
    data.idempotency.insert(idempotency_key, id);
    // Not on a replay of the key (returned above): nothing happened then.
    super::events::publish(&state.hub, &mut data.events, OrderEventType::Placed, &order);
    Ok((StatusCode::CREATED, Json(order)))
}
