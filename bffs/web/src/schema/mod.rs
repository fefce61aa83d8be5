//! The web GraphQL schema: types, resolvers and the per-request scope they
//! share. Transport (axum) lives in `crate::http`.

mod checkout;
mod dashboard;
mod money;
mod mutation;
mod order;
mod product;
mod query;
mod user;

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{Context, EmptySubscription, Schema};
use bff_server::auth::Viewer;
use bff_server::error::BffError;
use downstream::loaders::ProductLoader;
use downstream::{Downstream, DownstreamError, RequestContext, models};

pub use mutation::MutationRoot;
pub use query::QueryRoot;

use self::product::Product;

pub type WebSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Products fetched ahead of their resolvers, shared by every field that shows them.
pub(crate) type ProductMap = Result<Arc<HashMap<String, Arc<models::Product>>>, DownstreamError>;

/// The schema's limits and switches.
#[derive(Debug, Clone, Copy)]
pub struct SchemaOptions {
    /// Lets tools (GraphiQL, codegen) read the schema; off in production.
    pub introspection: bool,
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        Self {
            introspection: false,
            max_depth: 12,
            max_complexity: 2_000,
        }
    }
}

pub fn build_schema(options: SchemaOptions) -> WebSchema {
    let builder = Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .limit_depth(options.max_depth)
        .limit_complexity(options.max_complexity);
    if options.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The schema as SDL, as exported to `schema/web.graphql`.
pub fn sdl() -> String {
    build_schema(SchemaOptions::default()).sdl()
}

/// What every resolver of one client request shares.
pub struct RequestScope {
    pub(crate) downstream: Downstream,
    pub(crate) ctx: RequestContext,
    pub(crate) viewer: Option<Viewer>,
    /// Batches every product lookup of this request into one call per round.
    pub(crate) products: DataLoader<ProductLoader, HashMapCache>,
}

impl RequestScope {
    pub fn new(downstream: Downstream, ctx: RequestContext, viewer: Option<Viewer>) -> Self {
        let products = ProductLoader::data_loader(downstream.products.clone(), ctx.clone());
        Self {
            downstream,
            ctx,
            viewer,
            products,
        }
    }

    /// The scope the HTTP handler attached to this request.
    pub(crate) fn of<'a>(ctx: &Context<'a>) -> &'a RequestScope {
        // The only way into the schema is `crate::http`, which always attaches it.
        ctx.data_unchecked::<RequestScope>()
    }

    /// The signed-in viewer, or UNAUTHENTICATED.
    pub(crate) fn viewer(&self) -> async_graphql::Result<&Viewer> {
        self.viewer
            .as_ref()
            .ok_or_else(|| BffError::Unauthenticated.into())
    }
}

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
) -> async_graphql::Result<Vec<Product>> {
    let found = scope.products.load_many(ids.iter().cloned()).await?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(id).cloned().map(Product))
        .collect())
}
