//! The web GraphQL schema: types, resolvers and the per-request scope they
//! share. Transport (axum) lives in `crate::http`.
//!
//! A resolver that awaits a downstream call boxes that future
//! (`Box::pin(scope.downstream....).await`): async-graphql boxes every
//! selected field's future at the size of its type's largest field future,
//! so one inline call (~3 KB) would make each `id` and `name` of the type a
//! 4 KB allocation and copy (BENCHMARKS.md, "One GraphQL pipeline").

mod checkout;
mod dashboard;
mod money;
mod mutation;
mod order;
mod product;
mod query;
mod subscription;
mod user;

use bff_server::graphql::Tracked;
use std::sync::Arc;

use async_graphql::{Schema, SchemaBuilder};
use bff_server::error::BffError;
pub use bff_server::graphql::RequestScope;
use bff_server::graphql::SchemaOptions;
use downstream::{DownstreamError, IdMap, models};

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

use self::product::Product;

pub type WebSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Products fetched ahead of their resolvers, shared by every field that shows them.
pub(crate) type ProductMap = Result<Arc<IdMap<Arc<models::Product>>>, DownstreamError>;

/// `introspection`: let tools (GraphiQL, codegen) read the schema; off in production.
pub fn build_schema(introspection: bool) -> WebSchema {
    SchemaOptions { introspection }.finish(builder())
}

/// `@defer` is declared here; the endpoint delivers it (`bff_server::graphql::defer`).
pub(crate) fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .directive(bff_server::graphql::DeferDirective)
}

/// The schema as SDL, as exported to `schema/web.graphql`.
pub fn sdl() -> String {
    build_schema(false).sdl()
}

/// Most items one list field returns (orders, recommendations, reviews,
/// related products).
pub(crate) const MAX_LIST: i32 = 50;

/// Checks a list argument (`first`) against its cap.
pub(crate) fn list_size(first: i32, max: i32) -> async_graphql::Result<u32> {
    match u32::try_from(first) {
        Ok(n) if first <= max => Ok(n),
        _ => Err(BffError::BadUserInput(format!("first must be between 0 and {max}")).into()),
    }
}

/// Products by id through the request's loader, in the given order; ids the
/// catalogue does not know are left out.
pub(crate) async fn load_products_in_order(
    scope: &RequestScope,
    ids: Vec<String>,
) -> async_graphql::Result<Vec<Tracked<Product>>> {
    let found = scope.products().load_many(ids.iter().cloned()).await?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(id).cloned().map(Product::tracked))
        .collect())
}
