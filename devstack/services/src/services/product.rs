//! Product service: products (single, batch, by category), reviews, related.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use downstream::models::{Product, ProductPage, RelatedProducts, Review};

use super::{ApiError, ApiResult, PathParams, QueryParams, Route, SharedState, parse_ids, route};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/products", get_products),
        route(Method::GET, "/products/{id}", get_product),
        route(Method::GET, "/products/{id}/reviews", get_reviews),
        route(Method::GET, "/products/{id}/related", get_related),
    ]
}

fn find_product<'a>(state: &'a SharedState, id: &str) -> ApiResult<&'a Product> {
    state
        .seed
        .product(id)
        .ok_or_else(|| ApiError::not_found(format_args!("product {id}")))
}

/// `?ids=a,b` (batch) or `?category_id=c&page=1&limit=20` (one page).
async fn get_products(State(state): State<SharedState>, query: QueryParams) -> ApiResult<Response> {
    match (query.get("ids"), query.get("category_id")) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "give either ids or category_id, not both",
        )),
        (Some(ids), None) => {
            let products: Vec<Product> = parse_ids(ids)?
                .iter()
                .filter_map(|id| state.seed.product(id).cloned())
                .collect();
            Ok(Json(products).into_response())
        }
        (None, Some(category)) if !category.trim().is_empty() => {
            let page = query.int("page", 1, 1, i64::from(u32::MAX))?;
            let limit = query.int("limit", 20, 1, 100)?;
            // Seed order is numeric id order, so pages are stable.
            let in_category: Vec<&Product> = state
                .seed
                .products
                .iter()
                .filter(|p| p.category_id == category)
                .collect();
            let skip = usize::try_from((page - 1).saturating_mul(limit)).unwrap_or(usize::MAX);
            let items = in_category
                .iter()
                .skip(skip)
                .take(usize::try_from(limit).unwrap_or(0))
                .map(|&p| p.clone())
                .collect();
            Ok(Json(ProductPage {
                items,
                total: in_category.len() as i64,
                page,
                limit,
            })
            .into_response())
        }
        (None, _) => Err(ApiError::bad_request("ids or category_id is required")),
    }
}

async fn get_product(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Product>> {
    find_product(&state, &id).cloned().map(Json)
}

/// Newest first.
async fn get_reviews(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> ApiResult<Json<Vec<Review>>> {
    find_product(&state, &id)?;
    let limit = query.limit(20)?;
    let reviews = state
        .seed
        .reviews
        .get(&id)
        .into_iter()
        .flatten()
        .take(limit)
        .cloned()
        .collect();
    Ok(Json(reviews))
}

async fn get_related(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> ApiResult<Json<RelatedProducts>> {
    find_product(&state, &id)?;
    let limit = query.limit(10)?;
    let product_ids = state
        .seed
        .related
        .get(&id)
        .into_iter()
        .flatten()
        .take(limit)
        .cloned()
        .collect();
    Ok(Json(RelatedProducts { product_ids }))
}
