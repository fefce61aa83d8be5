//! What the resolvers of a GraphQL BFF share: the per-request scope, a
//! role guard, and how a schema is finished.

use std::any::TypeId;
use std::sync::{Arc, OnceLock};

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{
    Context, ObjectType, QueryPathNode, Schema, SchemaBuilder, SubscriptionType, ValidationMode,
};
use downstream::{Downstream, RequestContext, TraceParent};

use super::GraphQlEndpoint;
use super::loaders::ProductLoader;
use super::stale::{StalePaths, StaleReport};
use crate::StartError;
use crate::auth::Viewer;
use crate::config::GraphQlConfig;
use crate::error::BffError;

/// What every resolver of one client request shares. The HTTP handler
/// attaches it to the request (`request.data(scope)`). Clones share the
/// product loader and the stale report: the executions of one `@defer`
/// request (`defer/`) batch and report as one.
#[derive(Clone)]
pub struct RequestScope {
    /// Shared by every request: one reference count per request rather than
    /// one per client and cache.
    pub downstream: Arc<Downstream>,
    pub ctx: RequestContext,
    pub viewer: Option<Viewer>,
    /// Made on first use: many requests (the dashboard's) batch on their own.
    products: Arc<OnceLock<DataLoader<ProductLoader, HashMapCache>>>,
    /// Where stale copies ended up in the response.
    stale_paths: Arc<StalePaths>,
}

impl RequestScope {
    pub fn new(downstream: Arc<Downstream>, ctx: RequestContext, viewer: Option<Viewer>) -> Self {
        Self {
            downstream,
            ctx,
            viewer,
            products: Arc::default(),
            stale_paths: Arc::default(),
        }
    }

    /// Notes `path` as holding data served from a stale copy when the
    /// entity `kind`/`id` was served stale in this request (see
    /// [`super::Tracked`]; resolvers that compute a field from an entity
    /// call it with their own path).
    pub fn note_if_stale(&self, kind: &str, id: &str, path: Option<&QueryPathNode<'_>>) {
        if let Some(mark) = self.ctx.stale.mark_of(kind, id) {
            self.stale_paths.note(mark, path);
        }
    }

    /// What tells, once the request ran, where its stale data is.
    pub(crate) fn stale_report(&self) -> StaleReport {
        StaleReport {
            marks: self.ctx.stale.clone(),
            paths: Arc::clone(&self.stale_paths),
        }
    }

    /// Batches every product lookup of this request into one call per round.
    pub fn products(&self) -> &DataLoader<ProductLoader, HashMapCache> {
        self.products.get_or_init(|| {
            ProductLoader::data_loader(self.downstream.products.clone(), self.ctx.clone())
        })
    }

    /// Makes the downstream calls of `request` children of `trace` (its
    /// operation's span): the scope the handler attached is replaced by
    /// the same one with that trace. Before execution only, while nothing
    /// has used the scope yet.
    pub(crate) fn retrace(request: &mut async_graphql::Request, trace: TraceParent) {
        let Some(scope) = request
            .data
            .get(&TypeId::of::<RequestScope>())
            .and_then(|data| data.downcast_ref::<RequestScope>())
        else {
            return;
        };
        let ctx = RequestContext {
            trace,
            ..scope.ctx.clone()
        };
        let retraced = RequestScope::new(Arc::clone(&scope.downstream), ctx, scope.viewer.clone());
        request.data.insert(retraced);
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

/// How every BFF schema is finished. The abuse limits (depth, cost,
/// aliases, ...) are not here: the endpoint checks the config's `[graphql]`
/// values before a request reaches the schema, the one place they live.
#[derive(Debug, Clone, Copy)]
pub struct SchemaOptions {
    /// Lets tools (GraphiQL, codegen) read the schema, and validation
    /// errors suggest field names; both off in production.
    pub introspection: bool,
}

impl SchemaOptions {
    /// The schema, validating every request in full.
    pub fn finish<Q, M, S>(self, builder: SchemaBuilder<Q, M, S>) -> Schema<Q, M, S>
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        self.finish_with(builder, ValidationMode::Strict)
    }

    /// The same schema for requests that already passed full validation
    /// once (the very same document, operation and variables): it runs no
    /// validation rule (`ValidationMode::Skip`, patched into the vendored
    /// async-graphql: its `Fast` still walked the whole document, ~50K
    /// instructions per dashboard). See
    /// [`GraphQlEndpoint::with_fast_path`](super::GraphQlEndpoint::with_fast_path).
    pub fn finish_fast<Q, M, S>(self, builder: SchemaBuilder<Q, M, S>) -> Schema<Q, M, S>
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        self.finish_with(builder, ValidationMode::Skip)
    }

    /// The endpoint serving the schema `builder` makes, refusing operations
    /// over `limits`: validating in full the first time a request is seen,
    /// on the fast path after that.
    pub fn endpoint<Q, M, S>(
        self,
        builder: impl Fn() -> SchemaBuilder<Q, M, S>,
        graphiql: bool,
        limits: GraphQlConfig,
    ) -> Result<GraphQlEndpoint<Q, M, S>, StartError>
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        let endpoint = GraphQlEndpoint::new(self.finish(builder()), graphiql, limits)?
            .with_introspection(self.introspection);
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
        let builder = builder.validation_mode(mode);
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
