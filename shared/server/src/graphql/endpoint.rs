//! GraphQL over HTTP, the parts every GraphQL BFF shares: running a request
//! and finishing its response (error codes, spec nulls), GET rules
//! (GraphiQL for browsers, no mutations), unreadable requests, and who may
//! call a people-facing API.

use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql::{ObjectType, Schema, SubscriptionType};
use async_graphql_axum::rejection::GraphQLRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::{NullPropagation, apply_error_codes, graphql_error_response, is_mutation};
use crate::StartError;
use crate::auth::{Authentication, Viewer, ViewerKind};
use crate::error::BffError;

/// A schema ready to serve: it finishes every response the same way.
pub struct GraphQlEndpoint<Q, M, S> {
    schema: Schema<Q, M, S>,
    nulls: Arc<NullPropagation>,
    graphiql: bool,
}

impl<Q, M, S> Clone for GraphQlEndpoint<Q, M, S> {
    fn clone(&self) -> Self {
        Self {
            schema: self.schema.clone(),
            nulls: Arc::clone(&self.nulls),
            graphiql: self.graphiql,
        }
    }
}

impl<Q, M, S> GraphQlEndpoint<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    /// `graphiql`: serve the GraphiQL page to browsers on `GET /graphql`.
    pub fn new(schema: Schema<Q, M, S>, graphiql: bool) -> Result<Self, StartError> {
        let nulls = NullPropagation::from_sdl(&schema.sdl())
            .map_err(|error| StartError::Schema(error.to_string()))?;
        Ok(Self {
            schema,
            nulls: Arc::new(nulls),
            graphiql,
        })
    }

    /// Runs `request`; errors get their `extensions.code` and failed fields
    /// are nulled as the spec says.
    pub async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        let query = request.query.clone();
        let operation_name = request.operation_name.clone();
        let mut response = self.schema.execute(request).await;
        if !response.errors.is_empty() {
            apply_error_codes(&mut response);
            self.nulls
                .apply(&query, operation_name.as_deref(), &mut response);
        }
        response
    }

    /// What a GET request gets instead of execution, if anything: the
    /// GraphiQL page for a browser asking for no query (when enabled), 405
    /// for a mutation (GET must be safe: a link could trigger it).
    pub fn answer_get(
        &self,
        request: &async_graphql::Request,
        headers: &HeaderMap,
    ) -> Option<Response> {
        if request.query.is_empty() && self.graphiql && accepts_html(headers) {
            let page = GraphiQLSource::build().endpoint("/graphql").finish();
            return Some(Html(page).into_response());
        }
        is_mutation(request).then(|| {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "POST")],
                "mutations are only accepted over POST",
            )
                .into_response()
        })
    }
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// A body or query string that is not a GraphQL request: 400 in the usual
/// error shape, without the parser's internals.
pub fn unreadable_request(rejection: GraphQLRejection) -> Response {
    tracing::debug!(error = %rejection.0, "unreadable GraphQL request");
    graphql_error_response(BffError::BadUserInput(
        "the request is not a GraphQL request (expected JSON with a \"query\")".into(),
    ))
}

/// The viewer of an API for people: anonymous is fine (resolvers decide), a
/// refused token is UNAUTHENTICATED (401), a device token FORBIDDEN (403).
/// Answer an `Err` with [`graphql_error_response`].
pub fn person_or_anonymous(auth: Authentication) -> Result<Option<Viewer>, BffError> {
    match auth {
        Authentication::Anonymous => Ok(None),
        Authentication::Viewer(viewer) if viewer.kind == ViewerKind::Device => Err(
            BffError::Forbidden("device tokens cannot use this API".into()),
        ),
        Authentication::Viewer(viewer) => Ok(Some(viewer)),
        Authentication::Invalid(error) => Err(BffError::from(error)),
    }
}
