//! The five reference services. Each module lists its routes as a table
//! ([`Route`]); the router is built from that table, so [`routes`] is exactly
//! what is served.

mod device;
mod events;
mod order;
mod product;
mod recommendation;
mod user;

pub use events::{DEFAULT_KEEP_ALIVE, EVENT_LOG_CAPACITY};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use downstream::Service;
use downstream::models::{Device, ErrorBody, Order};
use serde::de::DeserializeOwned;

use crate::control::{self, Control};
use crate::seed::{FIRST_NEW_ORDER_NUMBER, Seed};

/// Largest `ids` list a batch endpoint takes.
pub(crate) const MAX_BATCH: usize = 200;

/// Data shared by the five services of one `Services` instance.
pub(crate) struct AppState {
    /// The immutable part (users, catalog, reviews, recommendations).
    seed: Seed,
    data: Mutex<Data>,
    /// The open order event streams.
    hub: events::EventHub,
}

/// The mutable part.
struct Data {
    wishlists: HashMap<String, Vec<String>>,
    orders: HashMap<String, Order>,
    /// Order ids by user, newest first (placed orders go to the front).
    user_orders: HashMap<String, Vec<String>>,
    /// (user id, Idempotency-Key) → order id.
    idempotency: HashMap<(String, String), String>,
    devices: HashMap<String, Device>,
    next_order_number: u64,
    /// Order events (`GET /order-events`), appended with the change they report.
    events: events::EventLog,
}

pub(crate) type SharedState = Arc<AppState>;

impl AppState {
    pub(crate) fn new(seed: Seed) -> Self {
        let mut user_orders: HashMap<String, Vec<String>> = HashMap::new();
        let mut by_date: Vec<&Order> = seed.orders.iter().collect();
        by_date.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        for order in by_date {
            user_orders
                .entry(order.user_id.to_string())
                .or_default()
                .push(order.id.to_string());
        }
        let data = Data {
            wishlists: seed.wishlists.clone().into_iter().collect(),
            orders: seed
                .orders
                .iter()
                .map(|o| (o.id.to_string(), o.clone()))
                .collect(),
            user_orders,
            idempotency: HashMap::new(),
            devices: seed
                .devices
                .iter()
                .map(|d| (d.id.clone(), d.clone()))
                .collect(),
            next_order_number: FIRST_NEW_ORDER_NUMBER,
            events: events::EventLog::default(),
        };
        Self {
            seed,
            data: Mutex::new(data),
            hub: events::EventHub::default(),
        }
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        // Handlers never leave Data half-updated across a panic point.
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ---------------------------------------------------------------- routing

/// One served route.
pub(crate) struct Route {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    handler: MethodRouter<SharedState>,
}

/// A route whose method filter is derived from `method`, so the table cannot
/// disagree with what is served.
fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, SharedState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("route tables use standard methods");
    Route {
        method,
        path,
        handler: on(filter, handler),
    }
}

fn table(service: Service) -> Vec<Route> {
    match service {
        Service::User => user::routes(),
        Service::Product => product::routes(),
        Service::Order => order::routes(),
        Service::Recommendation => recommendation::routes(),
        Service::Device => device::routes(),
    }
}

/// (method, path pattern) of every route `service` serves, `/__control` aside.
pub(crate) fn routes(service: Service) -> Vec<(Method, &'static str)> {
    table(service)
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

/// The whole app of one service: its routes, the control routes, a JSON 404,
/// all wrapped in the counting/fault middleware.
pub(crate) fn app(service: Service, state: SharedState, control: Control) -> Router {
    let mut routes = table(service)
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handler));
    if service == Service::Order {
        routes = routes.merge(events::control_router());
    }
    routes
        .with_state(state)
        .merge(control::router(control.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(control, control::track))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

// ----------------------------------------------------------------- errors

/// A contract error: `{"error": "..."}` with a 4xx/5xx status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// `what` is e.g. "product p99".
    pub(crate) fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

// ------------------------------------------------------------- extractors

/// Path parameters; a bad one is a JSON 400 rather than axum's plain text.
pub(crate) struct PathParams<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Self(t))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Decoded query parameters (the last of repeated keys wins). Never fails.
pub(crate) struct QueryParams(pub(crate) HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(Self(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl QueryParams {
    /// `key` as an integer in `min..=max`, `default` when absent.
    pub(crate) fn int(&self, key: &str, default: i64, min: i64, max: i64) -> ApiResult<i64> {
        let Some(raw) = self.0.get(key) else {
            return Ok(default);
        };
        match raw.trim().parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(ApiError::bad_request(format!(
                "{key} must be an integer from {min} to {max}"
            ))),
        }
    }

    /// `limit` of list endpoints: 1..=100.
    pub(crate) fn limit(&self, default: i64) -> ApiResult<usize> {
        // In range 1..=100, so the conversion cannot fail.
        self.int("limit", default, 1, 100)
            .map(|l| usize::try_from(l).unwrap_or(1))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// Splits a batch `ids` parameter: non-empty, at most [`MAX_BATCH`], duplicates
/// collapsed (first occurrence kept).
pub(crate) fn parse_ids(raw: &str) -> ApiResult<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for id in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !ids.iter().any(|seen| seen == id) {
            ids.push(id.to_owned());
        }
    }
    if ids.is_empty() {
        return Err(ApiError::bad_request("ids must not be empty"));
    }
    if ids.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BATCH} ids per request"
        )));
    }
    Ok(ids)
}

/// A JSON body; malformed JSON or a wrong shape is a JSON 400 naming the problem.
/// The content type is not checked (the reference services are lenient there).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
    }
}
