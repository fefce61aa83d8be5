//! User service: users, analytics, wishlists, payment methods.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Datelike, Utc};
use downstream::models::{OrderStatus, PaymentMethod, User, UserAnalytics, Wishlist};

use super::{ApiError, ApiResult, PathParams, QueryParams, Route, SharedState, parse_ids, route};
use crate::seed::{CURRENCY, NEWEST_ORDER_AT};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/users", get_users),
        route(Method::GET, "/users/{id}", get_user),
        route(Method::GET, "/users/{id}/analytics", get_analytics),
        route(Method::GET, "/users/{id}/wishlist", get_wishlist),
        route(
            Method::PUT,
            "/users/{id}/wishlist/{product_id}",
            put_wishlist_item,
        ),
        route(
            Method::DELETE,
            "/users/{id}/wishlist/{product_id}",
            delete_wishlist_item,
        ),
        route(
            Method::GET,
            "/users/{id}/payment-methods",
            get_payment_methods,
        ),
    ]
}

fn find_user<'a>(state: &'a SharedState, id: &str) -> ApiResult<&'a User> {
    state
        .seed
        .user(id)
        .ok_or_else(|| ApiError::not_found(format_args!("user {id}")))
}

async fn get_users(
    State(state): State<SharedState>,
    query: QueryParams,
) -> ApiResult<Json<Vec<User>>> {
    let raw = query
        .get("ids")
        .ok_or_else(|| ApiError::bad_request("ids is required"))?;
    let users = parse_ids(raw)?
        .iter()
        .filter_map(|id| state.seed.user(id).cloned())
        .collect();
    Ok(Json(users))
}

async fn get_user(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<User>> {
    find_user(&state, &id).cloned().map(Json)
}

async fn get_analytics(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<UserAnalytics>> {
    find_user(&state, &id)?;
    // "This month" is the month of the newest seed order, so results do not
    // depend on when the tests run.
    let this_month = DateTime::parse_from_rfc3339(NEWEST_ORDER_AT)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let data = state.data();
    let orders = data
        .user_orders
        .get(&id)
        .into_iter()
        .flatten()
        .filter_map(|oid| data.orders.get(oid));
    let mut total_spent_cents = 0;
    let mut orders_this_month = 0;
    let mut quantity_by_category: BTreeMap<&str, i64> = BTreeMap::new();
    for order in orders {
        if order.status != OrderStatus::Cancelled {
            total_spent_cents += order.total_cents;
        }
        if order.created_at.year() == this_month.year()
            && order.created_at.month() == this_month.month()
        {
            orders_this_month += 1;
        }
        for item in &order.items {
            if let Some(product) = state.seed.product(&item.product_id) {
                *quantity_by_category
                    .entry(&product.category_id)
                    .or_default() += item.quantity;
            }
        }
    }
    let mut categories: Vec<(&str, i64)> = quantity_by_category.into_iter().collect();
    // Most items first; ties by category id (the map's order, kept by a stable sort).
    categories.sort_by_key(|&(_, quantity)| std::cmp::Reverse(quantity));
    Ok(Json(UserAnalytics {
        total_spent_cents,
        currency: CURRENCY.into(),
        orders_this_month,
        favorite_categories: categories
            .into_iter()
            .take(3)
            .map(|(c, _)| c.into())
            .collect(),
    }))
}

async fn get_wishlist(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Wishlist>> {
    find_user(&state, &id)?;
    let product_ids = state.data().wishlists.get(&id).cloned().unwrap_or_default();
    Ok(Json(Wishlist { product_ids }))
}

async fn put_wishlist_item(
    State(state): State<SharedState>,
    PathParams((id, product_id)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    find_user(&state, &id)?;
    if state.seed.product(&product_id).is_none() {
        return Err(ApiError::not_found(format_args!("product {product_id}")));
    }
    let mut data = state.data();
    let list = data.wishlists.entry(id).or_default();
    if !list.contains(&product_id) {
        list.push(product_id);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Idempotent: removing a product that is not there (or does not exist) is fine.
async fn delete_wishlist_item(
    State(state): State<SharedState>,
    PathParams((id, product_id)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    find_user(&state, &id)?;
    if let Some(list) = state.data().wishlists.get_mut(&id) {
        list.retain(|p| p != &product_id);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn get_payment_methods(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Vec<PaymentMethod>>> {
    find_user(&state, &id)?;
    Ok(Json(
        state
            .seed
            .payment_methods
            .get(&id)
            .cloned()
            .unwrap_or_default(),
    ))
}
