//! Recommendation service: per-user recommendations and similar products.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use downstream::models::{Recommendation, SimilarProduct};

use super::{ApiError, ApiResult, PathParams, QueryParams, Route, SharedState, route};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/users/{id}/recommendations",
            get_recommendations,
        ),
        route(Method::GET, "/products/{id}/similar", get_similar),
    ]
}

/// Highest score first.
async fn get_recommendations(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> ApiResult<Json<Vec<Recommendation>>> {
    if state.seed.user(&id).is_none() {
        return Err(ApiError::not_found(format_args!("user {id}")));
    }
    let limit = query.limit(10)?;
    let mut recs = state
        .seed
        .recommendations
        .get(&id)
        .cloned()
        .unwrap_or_default();
    recs.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.product_id.cmp(&b.product_id))
    });
    recs.truncate(limit);
    Ok(Json(recs))
}

/// Products of the same category, closest in price first; scores are
/// `1 / (1 + |price difference| / $50)`, rounded to 3 decimals. With
/// `user_id`, products on that user's wishlist are left out (an unknown
/// `user_id` is ignored: personalisation is best effort).
async fn get_similar(
    State(state): State<SharedState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> ApiResult<Json<Vec<SimilarProduct>>> {
    let product = state
        .seed
        .product(&id)
        .ok_or_else(|| ApiError::not_found(format_args!("product {id}")))?;
    let limit = query.limit(10)?;
    let wishlist = query
        .get("user_id")
        .and_then(|user| state.data().wishlists.get(user).cloned())
        .unwrap_or_default();
    let mut similar: Vec<(i64, SimilarProduct)> = state
        .seed
        .products
        .iter()
        .filter(|p| p.category_id == product.category_id && p.id != product.id)
        .filter(|p| !wishlist.contains(&p.id))
        .map(|p| {
            let distance = (p.price_cents - product.price_cents).abs();
            let score = (1000.0 / (1.0 + distance as f64 / 5000.0)).round() / 1000.0;
            (
                distance,
                SimilarProduct {
                    product_id: p.id.clone(),
                    score,
                },
            )
        })
        .collect();
    // Stable sort keeps seed (numeric id) order among equal distances.
    similar.sort_by_key(|(distance, _)| *distance);
    Ok(Json(
        similar.into_iter().take(limit).map(|(_, s)| s).collect(),
    ))
}
