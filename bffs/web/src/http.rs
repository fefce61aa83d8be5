//! The web BFF over HTTP: `POST /graphql`, `GET /graphql` (queries only, or
//! GraphiQL for browsers when enabled, with its assets under
//! `/graphiql/assets/`), mounted behind the shared front door.

use std::sync::Arc;

use async_graphql_axum::GraphQLRequest;
use async_graphql_axum::rejection::GraphQLRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bff_server::auth::{Authentication, JwtVerifier};
use bff_server::config::Config;
use bff_server::graphql::live::{self, Live};
use bff_server::graphql::{
    GraphQlEndpoint, IncrementalFormat, SchemaOptions, graphql_error_response, person_or_anonymous,
    prevent_csrf, respond, respond_multipart, unreadable_request,
};
use bff_server::{FrontDoor, StartError};
use downstream::{Downstream, RequestContext};

use crate::schema::{self, MutationRoot, QueryRoot, RequestScope, SubscriptionRoot};

struct AppState {
    graphql: GraphQlEndpoint<QueryRoot, MutationRoot, SubscriptionRoot>,
    downstream: Arc<Downstream>,
}

/// The whole web BFF as a router, front door included.
pub fn app(config: &Config) -> Result<Router, StartError> {
    // The process's one HTTP client: downstream calls and the JWKS fetch.
    let http = downstream::http::build_http_client().map_err(StartError::HttpClient)?;
    let verifier = Arc::new(JwtVerifier::from_config(&config.jwt, &http)?);
    let shared = bff_server::connect_shared_state(config)?;
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
    };
    let graphiql = state.graphql.graphiql_routes();
    // Subscriptions (WebSocket, SSE, multipart) on the same path.
    let live = Live::new(
        &state.graphql,
        Arc::clone(&state.downstream),
        Arc::clone(&verifier),
        config.live,
    );
    let routes = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route_layer(axum::middleware::from_fn_with_state(live, live::serve))
        // Refuses requests a browser could send cross-site unpreflighted.
        .route_layer(axum::middleware::from_fn(prevent_csrf))
        .merge(graphiql)
        .with_state(Arc::new(state));
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
        Ok(request) => execute(&state, ctx, auth, &headers, request.into_inner()).await,
        Err(rejection) => unreadable_request(rejection),
    }
}

async fn graphql_get(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    auth: Authentication,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let request = match request {
        Ok(request) => request.into_inner(),
        Err(rejection) => return unreadable_request(rejection),
    };
    if let Some(answer) = state.graphql.answer_get(&request, &headers) {
        return answer;
    }
    execute(&state, ctx, auth, &headers, request).await
}

async fn execute(
    state: &AppState,
    ctx: RequestContext,
    auth: Authentication,
    headers: &HeaderMap,
    request: async_graphql::Request,
) -> Response {
    let viewer = match person_or_anonymous(auth) {
        Ok(viewer) => viewer,
        Err(refusal) => return graphql_error_response(refusal),
    };
    let scope = RequestScope::new(Arc::clone(&state.downstream), ctx, viewer);
    let request = request.data(scope);
    // `@defer` is delivered to clients that accept multipart; others get
    // one complete response.
    if let Some(format) = IncrementalFormat::accepted(headers) {
        return match state.graphql.execute_incremental(request).await {
            Ok(incremental) => respond_multipart(incremental, format).await,
            Err(response) => respond(headers, response),
        };
    }
    let response = state.graphql.execute(request).await;
    respond(headers, response)
}
