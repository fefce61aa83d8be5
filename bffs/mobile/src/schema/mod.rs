//! The mobile GraphQL schema (`schema/mobile.graphql`): small answers for a
//! phone on a slow network. Types, resolvers and the per-request scope they
//! share; transport (axum, persisted queries, compression) lives in
//! `crate::http`.

mod dashboard;
mod product;
mod query;
mod subscription;

use async_graphql::context::SelectionField;
use async_graphql::{EmptyMutation, Schema, SchemaBuilder};
pub use bff_server::graphql::RequestScope;
use bff_server::graphql::SchemaOptions;

pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

pub type MobileSchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

/// `introspection`: let tools (GraphiQL, codegen) read the schema; off in production.
pub fn build_schema(introspection: bool) -> MobileSchema {
    SchemaOptions { introspection }.finish(builder())
}

pub(crate) fn builder() -> SchemaBuilder<QueryRoot, EmptyMutation, SubscriptionRoot> {
    Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
}

/// The schema as SDL, as exported to `schema/mobile.graphql`.
pub fn sdl() -> String {
    build_schema(false).sdl()
}

/// The names of the sub-fields of `field` the client selected, fragments
/// looked through (async-graphql has already dropped what `@skip` and
/// `@include` leave out).
pub(crate) fn selected<'a>(field: &SelectionField<'a>) -> Vec<&'a str> {
    field.selection_set().map(|child| child.name()).collect()
}
