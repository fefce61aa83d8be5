//! The web BFF over HTTP: `POST /graphql`, `GET /graphql` (queries only, or
//! GraphiQL for browsers when enabled), mounted behind the shared front door.

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use std::sync::Arc;

use bff_server::StartError;
use bff_server::auth::{Authentication, JwtVerifier, ViewerKind};
use bff_server::config::Config;
use bff_server::error::BffError;
use bff_server::graphql::{
    NullPropagation, apply_error_codes, graphql_error_response, is_mutation,
};
use downstream::{Downstream, RequestContext};

use crate::schema::{RequestScope, SchemaOptions, WebSchema, build_schema};

#[derive(Clone)]
struct AppState {
    schema: WebSchema,
    nulls: Arc<NullPropagation>,
    downstream: Downstream,
    graphiql: bool,
}

/// The whole web BFF as a router, front door included.
pub fn app(config: &Config) -> Result<Router, StartError> {
    let verifier = Arc::new(JwtVerifier::from_config(&config.jwt)?);
    let http = downstream::http::build_http_client().map_err(StartError::HttpClient)?;
    let dev = config.profile.is_dev();
    let schema = build_schema(SchemaOptions {
        introspection: dev,
        ..SchemaOptions::default()
    });
    let nulls = NullPropagation::from_sdl(&schema.sdl())
        .map_err(|error| StartError::Schema(error.to_string()))?;
    let state = AppState {
        schema,
        nulls: Arc::new(nulls),
        downstream: Downstream::new(&config.downstream, http),
        graphiql: dev,
    };
    let routes = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .with_state(state);
    Ok(bff_server::front_door(routes, config, verifier))
}

async fn graphql_post(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    auth: Authentication,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    match request {
        Ok(request) => execute(&state, ctx, auth, request.into_inner()).await,
        Err(rejection) => bad_request(rejection),
    }
}

/// A body or query string that is not a GraphQL request: 400 in the same
/// error shape as everything else, without the parser's internals.
fn bad_request(rejection: GraphQLRejection) -> Response {
    tracing::debug!(error = %rejection.0, "unreadable GraphQL request");
    graphql_error_response(BffError::BadUserInput(
        "the request is not a GraphQL request (expected JSON with a \"query\")".into(),
    ))
}

async fn graphql_get(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    auth: Authentication,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let request = match request {
        Ok(request) => request.into_inner(),
        Err(rejection) => return bad_request(rejection),
    };
    // A browser opening the endpoint: no query, wants a page.
    if request.query.is_empty() && state.graphiql && accepts_html(&headers) {
        return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
    }
    // GET must be safe: a mutation over GET could be triggered by a link.
    if is_mutation(&request) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "mutations are only accepted over POST",
        )
            .into_response();
    }
    execute(&state, ctx, auth, request).await
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

async fn execute(
    state: &AppState,
    ctx: RequestContext,
    auth: Authentication,
    request: async_graphql::Request,
) -> Response {
    let viewer = match auth {
        Authentication::Anonymous => None,
        // The web API is for people; a device token is valid but not here.
        Authentication::Viewer(viewer) if viewer.kind == ViewerKind::Device => {
            return graphql_error_response(BffError::Forbidden(
                "device tokens cannot use this API".into(),
            ));
        }
        Authentication::Viewer(viewer) => Some(viewer),
        Authentication::Invalid(error) => return graphql_error_response(BffError::from(error)),
    };
    let scope = RequestScope::new(state.downstream.clone(), ctx, viewer);
    let query = request.query.clone();
    let operation_name = request.operation_name.clone();
    let mut response = state.schema.execute(request.data(scope)).await;
    if !response.errors.is_empty() {
        apply_error_codes(&mut response);
        state
            .nulls
            .apply(&query, operation_name.as_deref(), &mut response);
    }
    GraphQLResponse::from(response).into_response()
}
