//! The mobile GraphQL schema (`schema/mobile.graphql`): small answers for a
//! phone on a slow network. Types, resolvers and the per-request scope they
//! share; transport (axum, persisted queries, compression) lives in
//! `crate::http`.

mod dashboard;
mod product;
mod query;

use async_graphql::context::SelectionField;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{Context, EmptyMutation, EmptySubscription, Schema, Value};
use bff_server::auth::Viewer;
use bff_server::error::BffError;
use downstream::loaders::ProductLoader;
use downstream::{Downstream, RequestContext};

pub use query::QueryRoot;

pub type MobileSchema = Schema<QueryRoot, EmptyMutation, EmptySubscription>;

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
        // The contract is shallow: the deepest path is dashboard →
        // recentOrders → field, and a page of 20 cards costs ~140.
        // Introspection (dev only) needs more depth than any real query.
        Self {
            introspection: false,
            max_depth: 10,
            max_complexity: 500,
        }
    }
}

pub fn build_schema(options: SchemaOptions) -> MobileSchema {
    let builder = Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
        .limit_depth(options.max_depth)
        .limit_complexity(options.max_complexity);
    if options.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The schema as SDL, as exported to `schema/mobile.graphql`.
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

/// The sub-fields of `field` the client selected, by name, leaving out those
/// `@skip`ped or not `@include`d (fragments are looked through).
pub(crate) fn selected<'a>(field: &SelectionField<'a>) -> Vec<&'a str> {
    field
        .selection_set()
        .filter(is_included)
        .map(|child| child.name())
        .collect()
}

/// Whether `@skip(if:)` / `@include(if:)` (variables resolved) keep the field.
fn is_included(field: &SelectionField<'_>) -> bool {
    let Ok(directives) = field.directives() else {
        return true;
    };
    directives.iter().all(|directive| {
        let condition = directive
            .arguments
            .iter()
            .find(|(name, _)| name.node.as_str() == "if")
            .map(|(_, value)| &value.node);
        match (directive.name.node.as_str(), condition) {
            ("skip", Some(Value::Boolean(skip))) => !skip,
            ("include", Some(Value::Boolean(include))) => *include,
            _ => true,
        }
    })
}
