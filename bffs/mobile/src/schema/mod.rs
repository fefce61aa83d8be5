//! The mobile GraphQL schema (`schema/mobile.graphql`): small answers for a
//! phone on a slow network. Types, resolvers and the per-request scope they
//! share; transport (axum, persisted queries, compression) lives in
//! `crate::http`.

mod dashboard;
mod product;
mod query;

use async_graphql::context::SelectionField;
use async_graphql::{EmptyMutation, EmptySubscription, Schema, SchemaBuilder};
pub use bff_server::graphql::RequestScope;
use bff_server::graphql::{SchemaLimits, selected_fields};

pub use query::QueryRoot;

pub type MobileSchema = Schema<QueryRoot, EmptyMutation, EmptySubscription>;

/// Limits for a shallow contract: the deepest path is dashboard →
/// recentOrders → field, and a page of 20 cards costs ~140.
const MAX_DEPTH: usize = 10;
const MAX_COMPLEXITY: usize = 500;

/// `introspection`: let tools (GraphiQL, codegen) read the schema; off in production.
pub fn build_schema(introspection: bool) -> MobileSchema {
    limits(introspection).finish(builder())
}

pub(crate) fn limits(introspection: bool) -> SchemaLimits {
    SchemaLimits {
        introspection,
        max_depth: MAX_DEPTH,
        max_complexity: MAX_COMPLEXITY,
    }
}

pub(crate) fn builder() -> SchemaBuilder<QueryRoot, EmptyMutation, EmptySubscription> {
    Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
}

/// The schema as SDL, as exported to `schema/mobile.graphql`.
pub fn sdl() -> String {
    build_schema(false).sdl()
}

/// The names of the sub-fields of `field` the client selected (see
/// [`selected_fields`]).
pub(crate) fn selected<'a>(field: &SelectionField<'a>) -> Vec<&'a str> {
    selected_fields(field)
        .iter()
        .map(|child| child.name())
        .collect()
}
