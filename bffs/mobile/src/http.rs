//! The mobile BFF over HTTP: `POST /graphql` and `GET /graphql` (queries
//! only), with persisted queries, `Cache-Control` and response compression,
//! mounted behind the shared front door.

use std::sync::Arc;

use async_graphql::EmptyMutation;
use async_graphql_axum::GraphQLRequest;
use async_graphql_axum::rejection::GraphQLRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bff_server::auth::{Authentication, JwtVerifier};
use bff_server::config::{Config, ConfigError};
use bff_server::graphql::live::{self, Live};
use bff_server::graphql::{
    GraphQlEndpoint, SchemaOptions, graphql_error_response, person_or_anonymous, prevent_csrf,
    respond, unreadable_request,
};
use bff_server::{FrontDoor, StartError};
use downstream::{Downstream, RequestContext};
use tower_http::compression::predicate::{NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, DefaultPredicate};

use crate::persisted::{PersistedQueries, Safelist};
use crate::schema::{self, QueryRoot, RequestScope, SubscriptionRoot};

/// For answers a shared cache (CDN) may keep: anonymous GETs by hash. A
/// minute: prices and stock change, and the BFF's own entity cache already
/// absorbs the load behind a miss.
const PUBLIC: &str = "public, max-age=60";
/// Everything else: viewer data, errors, POSTs.
const PRIVATE: HeaderValue = HeaderValue::from_static("private, no-store");

struct AppState {
    graphql: GraphQlEndpoint<QueryRoot, EmptyMutation, SubscriptionRoot>,
    downstream: Arc<Downstream>,
    persisted: PersistedQueries,
}

/// The whole mobile BFF as a router, front door included. With
/// `safelist_file` set, only the operations listed there run; a manifest that
/// cannot be read or is not valid stops the start.
pub fn app(config: &Config) -> Result<Router, StartError> {
    // The process's one HTTP client: downstream calls and the JWKS fetch.
    let http = downstream::http::build_http_client().map_err(StartError::HttpClient)?;
    let verifier = Arc::new(JwtVerifier::from_config(&config.jwt, &http)?);
    let persisted = match &config.safelist_file {
        Some(path) => {
            let safelist = Safelist::load(path).map_err(|error| ConfigError::Invalid {
                key: "BFF_SAFELIST_FILE (safelist_file)".into(),
                reason: error.to_string(),
            })?;
            tracing::info!(
                operations = safelist.len(),
                "safelist mode: only the listed operations run"
            );
            PersistedQueries::safelist(safelist)
        }
        None => PersistedQueries::automatic(),
    };
    let shared = bff_server::connect_shared_state(config)?;
    let persisted = persisted.with_shared_state(shared.clone());
    let dev = config.profile.is_dev();
    let state = AppState {
        graphql: SchemaOptions { introspection: dev }.endpoint(
            schema::builder,
            dev,
            config.graphql,
        )?,
        downstream: Arc::new(Downstream::with_shared_state(
            &config.downstream,
            http,
            &shared,
        )),
        persisted,
    };
    let graphiql = state.graphql.graphiql_routes();
    // Subscriptions (WebSocket, SSE, multipart) on the same path, through
    // the same persisted queries (and safelist) as any request.
    let persisted = state.persisted.clone();
    let live = Live::new(
        &state.graphql,
        Arc::clone(&state.downstream),
        Arc::clone(&verifier),
        config.live,
    )
    .with_prepare(Arc::new(move |request| {
        let persisted = persisted.clone();
        Box::pin(async move { Ok(persisted.resolve(request).await?.request) })
    }));
    let routes = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route_layer(axum::middleware::from_fn_with_state(live, live::serve))
        // Refuses requests a browser could send cross-site unpreflighted.
        .route_layer(axum::middleware::from_fn(prevent_csrf))
        // GraphiQL's assets (dev profile), already gzipped where it pays.
        .merge(graphiql)
        .with_state(Arc::new(state))
        // gzip or brotli, whichever the client prefers; tiny bodies stay as
        // is; never a subscription's stream (it would be held back to fill
        // the compressor's blocks).
        .layer(CompressionLayer::new().compress_when(
            DefaultPredicate::new().and(NotForContentType::const_new("multipart/mixed")),
        ));
    Ok(FrontDoor::new(config, verifier)
        .for_graphql()
        .with_shared_state(shared)
        .wrap(routes))
}

async fn graphql_post(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    auth: Authentication,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    match request {
        Ok(request) => execute(&state, ctx, auth, &headers, request.into_inner(), false).await,
        Err(rejection) => private(unreadable_request(rejection)),
    }
}

async fn graphql_get(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    auth: Authentication,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    match request {
        Ok(request) => execute(&state, ctx, auth, &headers, request.into_inner(), true).await,
        Err(rejection) => private(unreadable_request(rejection)),
    }
}

/// Runs one request; for a GET (`get`) the GET rules apply and its answer
/// may be cacheable.
async fn execute(
    state: &AppState,
    ctx: RequestContext,
    auth: Authentication,
    headers: &HeaderMap,
    request: async_graphql::Request,
    get: bool,
) -> Response {
    // No Authorization header at all: nothing in the answer can be the viewer's.
    let anonymous = matches!(auth, Authentication::Anonymous);
    let viewer = match person_or_anonymous(auth) {
        Ok(viewer) => viewer,
        Err(refusal) => return private(graphql_error_response(refusal)),
    };
    let resolved = match state.persisted.resolve(request).await {
        Ok(resolved) => resolved,
        Err(error) => return private(graphql_error_response(error)),
    };
    if get && let Some(answer) = state.graphql.answer_get(&resolved.request, headers) {
        return private(answer);
    }
    let scope = RequestScope::new(Arc::clone(&state.downstream), ctx, viewer);
    let response = state.graphql.execute(resolved.request.data(scope)).await;
    // Stale or partial answers are for this client only, never for a CDN.
    let cacheable = get
        && resolved.by_hash
        && anonymous
        && response.errors.is_empty()
        && response.extensions.is_empty();
    let mut answer = respond(headers, response);
    let headers = answer.headers_mut();
    if cacheable {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(PUBLIC));
        // A shared cache must not hand this to a signed-in request as its
        // own answer, nor the reverse.
        headers.append(header::VARY, HeaderValue::from_static("authorization"));
    } else {
        headers.insert(header::CACHE_CONTROL, PRIVATE);
    }
    answer
}

fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, PRIVATE);
    response
}
