//! What the resolvers of a GraphQL BFF share: the per-request scope, the
//! schema's limits, and look-ahead at what the client selected.

use std::sync::{Arc, OnceLock};

use async_graphql::context::SelectionField;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{
    Context, ObjectType, Schema, SchemaBuilder, SubscriptionType, ValidationMode, Value,
};
use downstream::{Downstream, RequestContext};

use super::GraphQlEndpoint;
use super::loaders::ProductLoader;
use crate::StartError;
use crate::auth::Viewer;
use crate::error::BffError;

/// What every resolver of one client request shares. The HTTP handler
/// attaches it to the request (`request.data(scope)`).
pub struct RequestScope {
    /// Shared by every request: one reference count per request rather than
    /// one per client and cache.
    pub downstream: Arc<Downstream>,
    pub ctx: RequestContext,
    pub viewer: Option<Viewer>,
    /// Made on first use: many requests (the dashboard's) batch on their own.
    products: OnceLock<DataLoader<ProductLoader, HashMapCache>>,
}

impl RequestScope {
    pub fn new(downstream: Arc<Downstream>, ctx: RequestContext, viewer: Option<Viewer>) -> Self {
        Self {
            downstream,
            ctx,
            viewer,
            products: OnceLock::new(),
        }
    }

    /// Batches every product lookup of this request into one call per round.
    pub fn products(&self) -> &DataLoader<ProductLoader, HashMapCache> {
        self.products.get_or_init(|| {
            ProductLoader::data_loader(self.downstream.products.clone(), self.ctx.clone())
        })
    }

    /// The scope the HTTP handler attached to this request.
    pub fn of<'a>(ctx: &Context<'a>) -> &'a RequestScope {
        // Every BFF's only way into its schema is its HTTP handler, which
        // always attaches the scope.
        ctx.data_unchecked::<RequestScope>()
    }

    /// The signed-in viewer, or UNAUTHENTICATED.
    pub fn viewer(&self) -> async_graphql::Result<&Viewer> {
        self.viewer
            .as_ref()
            .ok_or_else(|| BffError::Unauthenticated.into())
    }
}

/// Resolver guard: the signed-in viewer must hold `role` (the token's
/// `roles` claim); FORBIDDEN otherwise, UNAUTHENTICATED without a viewer.
///
/// ```ignore
/// #[graphql(guard = "RoleGuard::new(\"support\")")]
/// async fn any_order(&self, ctx: &Context<'_>, id: ID) -> Result<Order> { ... }
/// ```
#[derive(Debug, Clone)]
pub struct RoleGuard {
    role: String,
}

impl RoleGuard {
    pub fn new(role: impl Into<String>) -> Self {
        Self { role: role.into() }
    }
}

impl async_graphql::Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let viewer = ctx
            .data_opt::<RequestScope>()
            .and_then(|scope| scope.viewer.as_ref());
        let outcome = match viewer {
            None => Err(BffError::Unauthenticated),
            Some(viewer) => viewer.require_role(&self.role),
        };
        outcome.map_err(|error| async_graphql::ErrorExtensions::extend(&error))
    }
}

/// A schema's limits and switches.
#[derive(Debug, Clone, Copy)]
pub struct SchemaLimits {
    /// Lets tools (GraphiQL, codegen) read the schema, and validation
    /// errors suggest field names; both off in production.
    pub introspection: bool,
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl SchemaLimits {
    /// The schema, validating every request in full.
    pub fn finish<Q, M, S>(self, builder: SchemaBuilder<Q, M, S>) -> Schema<Q, M, S>
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        self.finish_with(builder, ValidationMode::Strict)
    }

    /// The schema for requests that already passed full validation once
    /// (the very same document, operation and variables): it checks only
    /// depth, complexity and fragment cycles. See
    /// [`GraphQlEndpoint::with_fast_path`](super::GraphQlEndpoint::with_fast_path).
    pub fn finish_fast<Q, M, S>(self, builder: SchemaBuilder<Q, M, S>) -> Schema<Q, M, S>
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        self.finish_with(builder, ValidationMode::Fast)
    }

    /// The endpoint serving the schema `builder` makes: validating in full
    /// the first time a request is seen, on the fast path after that.
    pub fn endpoint<Q, M, S>(
        self,
        builder: impl Fn() -> SchemaBuilder<Q, M, S>,
        graphiql: bool,
    ) -> Result<GraphQlEndpoint<Q, M, S>, StartError>
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        let endpoint = GraphQlEndpoint::new(self.finish(builder()), graphiql)?;
        Ok(endpoint.with_fast_path(self.finish_fast(builder())))
    }

    fn finish_with<Q, M, S>(
        self,
        builder: SchemaBuilder<Q, M, S>,
        mode: ValidationMode,
    ) -> Schema<Q, M, S>
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        let builder = builder
            .validation_mode(mode)
            .limit_depth(self.max_depth)
            .limit_complexity(self.max_complexity);
        if self.introspection {
            builder.finish()
        } else {
            // "Did you mean …?" in validation errors would let a client map
            // the schema field by field with introspection off.
            builder
                .disable_introspection()
                .disable_suggestions()
                .finish()
        }
    }
}

/// The sub-fields of `field` the client selected, by name, leaving out those
/// `@skip`ped or not `@include`d (fragments are looked through), so a
/// resolver that fetches ahead fetches only what will be shown.
pub fn selected_fields<'a>(field: &SelectionField<'a>) -> Vec<SelectionField<'a>> {
    field.selection_set().filter(is_included).collect()
}

/// Whether `@skip(if:)` / `@include(if:)` (variables resolved) keep the field.
pub fn is_included(field: &SelectionField<'_>) -> bool {
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
