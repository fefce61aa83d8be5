//! GraphQL over HTTP, the parts every GraphQL BFF shares: running a request
//! and finishing its response (error codes, spec nulls), GET rules
//! (GraphiQL for browsers, no mutations), unreadable requests, and who may
//! call a people-facing API.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ObjectType, Schema, SubscriptionType};
use async_graphql_axum::rejection::GraphQLRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::introspection::refuse_introspection;
use super::limits::{MAX_VALUE_NESTING, OperationLimits};
use super::stale::StaleReport;
use super::{
    NullPropagation, RequestScope, apply_error_codes, graphql_error_response, is_mutation,
    tag_internal_errors,
};
use crate::StartError;
use crate::auth::{Authentication, Viewer, ViewerKind};
use crate::config::GraphQlConfig;
use crate::error::BffError;

/// Parsed operations kept, weighed by query text plus a fixed allowance for
/// the document and its validated variants, and the largest query worth
/// keeping: clients send the same few operations over and over, and parsing
/// was ~12% of the BFF's CPU per dashboard request (BENCHMARKS.md).
const DOCUMENT_CACHE_BYTES: u64 = 32 * 1024 * 1024;
const DOCUMENT_OVERHEAD_BYTES: usize = 4 * 1024;
const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;
/// Validated (operation, variables) pairs remembered per document, and the
/// largest variables worth remembering.
const MAX_VALIDATED_VARIANTS: usize = 8;
const MAX_REMEMBERED_VARIABLES_BYTES: usize = 512;

/// A schema ready to serve: it finishes every response the same way.
pub struct GraphQlEndpoint<Q, M, S> {
    schema: Schema<Q, M, S>,
    /// The same schema without the full validation, for requests that
    /// passed it before (see [`GraphQlEndpoint::with_fast_path`]).
    fast_schema: Option<Schema<Q, M, S>>,
    nulls: Arc<NullPropagation>,
    graphiql: bool,
    /// Whether `__schema`/`__type` may be asked for; when not, a document
    /// that does is refused before it runs (see `introspection.rs`).
    introspection: bool,
    /// By query text; foldhash: SipHash over a whole query was ~0.3% of a
    /// request.
    documents: moka::future::Cache<String, Arc<CachedDocument>, downstream::IdHasher>,
    limits: Arc<OperationLimits>,
}

/// What a request adds to its query text: operation name, variables as JSON.
type Variant = (Option<String>, String);

/// A parsed query and the requests of it already checked in full.
struct CachedDocument {
    document: ExecutableDocument,
    /// (operation name, variables as JSON) that passed the abuse limits and
    /// full validation: the outcome of both depends on nothing else.
    validated: RwLock<Vec<Variant>>,
}

impl CachedDocument {
    fn is_validated(&self, variant: &Variant) -> bool {
        self.validated
            .read()
            .is_ok_and(|validated| validated.contains(variant))
    }

    fn remember(&self, variant: Variant) {
        if let Ok(mut validated) = self.validated.write()
            && validated.len() < MAX_VALIDATED_VARIANTS
            && !validated.contains(&variant)
        {
            validated.push(variant);
        }
    }
}

/// How a request got past [`GraphQlEndpoint::admit`].
enum Admitted {
    /// Exactly this request passed everything before.
    Validated(Arc<CachedDocument>),
    /// Checked against the limits now; the schema validates it in full.
    /// Remember it in the document when that passes.
    Checked(Option<(Arc<CachedDocument>, Variant)>),
}

impl<Q, M, S> Clone for GraphQlEndpoint<Q, M, S> {
    fn clone(&self) -> Self {
        Self {
            schema: self.schema.clone(),
            fast_schema: self.fast_schema.clone(),
            nulls: Arc::clone(&self.nulls),
            graphiql: self.graphiql,
            introspection: self.introspection,
            documents: self.documents.clone(),
            limits: Arc::clone(&self.limits),
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
    /// Every operation is checked against `limits` before it runs.
    pub fn new(
        schema: Schema<Q, M, S>,
        graphiql: bool,
        limits: GraphQlConfig,
    ) -> Result<Self, StartError> {
        let sdl = schema.sdl();
        let nulls = NullPropagation::from_sdl(&sdl)
            .map_err(|error| StartError::Schema(error.to_string()))?;
        let limits = OperationLimits::new(limits, &sdl);
        let documents = moka::future::Cache::builder()
            .max_capacity(DOCUMENT_CACHE_BYTES)
            .weigher(|query: &String, _| {
                u32::try_from(query.len() + DOCUMENT_OVERHEAD_BYTES).unwrap_or(u32::MAX)
            })
            .build_with_hasher(downstream::IdHasher::default());
        Ok(Self {
            schema,
            fast_schema: None,
            nulls: Arc::new(nulls),
            graphiql,
            introspection: false,
            documents,
            limits: Arc::new(limits),
        })
    }

    /// Lets documents select `__schema` and `__type` (off by default: they
    /// are refused as a request error). Turn it on only with the schema's
    /// own introspection ([`SchemaOptions`](super::SchemaOptions) does both).
    pub fn with_introspection(mut self, allowed: bool) -> Self {
        self.introspection = allowed;
        self
    }

    /// Runs a request that passed the abuse limits and full validation
    /// before (same query text, operation name and variables) on `fast`,
    /// the same schema built with
    /// [`SchemaOptions::finish_fast`](super::SchemaOptions::finish_fast):
    /// both outcomes depend only on those three, so neither is repeated
    /// (together they were ~11% of the instructions per dashboard request).
    pub fn with_fast_path(mut self, fast: Schema<Q, M, S>) -> Self {
        self.fast_schema = Some(fast);
        self
    }

    /// Checks the request against the abuse limits and hands it its parsed
    /// document, from the cache or freshly parsed (and cached when small).
    /// The limits run on every request but one that passed them (and
    /// validation) before. Unparsable queries are left to the schema, which
    /// reports the syntax error.
    async fn admit(&self, request: &mut async_graphql::Request) -> Result<Admitted, BffError> {
        let cacheable = request.query.len() <= MAX_CACHED_QUERY_BYTES;
        let cached = if cacheable {
            self.documents.get(&request.query).await
        } else {
            None
        };
        let variant = self.fast_schema.as_ref().and_then(|_| variant_of(request));
        if let (Some(cached), Some(variant)) = (&cached, &variant)
            && cached.is_validated(variant)
        {
            super::note_operation(&cached.document, request.operation_name.as_deref());
            return Ok(Admitted::Validated(Arc::clone(cached)));
        }
        self.limits.check_text(&request.query)?;
        self.limits.check_variables(&request.variables)?;
        let cached = match cached {
            Some(cached) => cached,
            None => {
                let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
                    return Ok(Admitted::Checked(None));
                };
                let parsed = Arc::new(CachedDocument {
                    document,
                    validated: RwLock::default(),
                });
                if cacheable {
                    self.documents
                        .insert(request.query.clone(), Arc::clone(&parsed))
                        .await;
                }
                parsed
            }
        };
        // Before the document's limits: a refused operation still counts.
        super::note_operation(&cached.document, request.operation_name.as_deref());
        self.limits
            .check_document(&cached.document, &request.variables)?;
        if !self.introspection {
            refuse_introspection(&cached.document)?;
        }
        check_required_variables(&cached.document, request)?;
        admit_document(request, &cached);
        Ok(Admitted::Checked(variant.map(|variant| (cached, variant))))
    }

    /// Runs `request` unless it breaks an abuse limit (then the response is
    /// one BAD_USER_INPUT error and nothing runs); errors get their
    /// `extensions.code` and failed fields are nulled as the spec says.
    pub async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        let response = self.run(request).await;
        super::count_errors(&response);
        response
    }

    /// [`GraphQlEndpoint::execute`] but for counting its errors.
    async fn run(&self, mut request: async_graphql::Request) -> async_graphql::Response {
        match self.admit(&mut request).await {
            Ok(admitted) => self.run_admitted(request, admitted).await,
            Err(refusal) => refused(&refusal),
        }
    }

    /// Runs a request [`GraphQlEndpoint::admit`] let through.
    async fn run_admitted(
        &self,
        mut request: async_graphql::Request,
        admitted: Admitted,
    ) -> async_graphql::Response {
        // With traces on: the operation's span, the parent of its
        // downstream calls; it ends with this function.
        let span =
            crate::telemetry::enabled().then(|| operation_span(&mut request, &admitted, None));
        let validation = match admitted {
            Admitted::Validated(_) => "remembered",
            Admitted::Checked(_) => "full",
        };
        metrics::counter!(crate::metrics::GRAPHQL_REQUESTS, "validation" => validation)
            .increment(1);
        let (schema, memo) = match admitted {
            Admitted::Validated(cached) => {
                admit_document(&mut request, &cached);
                (self.fast_schema.as_ref().unwrap_or(&self.schema), None)
            }
            Admitted::Checked(memo) => (&self.schema, memo),
        };
        let mut finishing = Finishing::of(&request, span, memo);
        // Boxed: async-graphql's execution future is large, and unboxed it
        // is copied each time an enclosing future moves (handler, layers),
        // which was ~2.5% of the instructions per request.
        let mut response = Box::pin(schema.execute(request)).await;
        finishing.apply(self, &mut response);
        response
    }

    /// The responses of a request sent over a subscription transport
    /// (`live/`): a subscription's, one per event, or a query's one. It
    /// passes the same abuse limits and validation as
    /// [`GraphQlEndpoint::execute`] (refused: one response with the refusal
    /// and no `data`), and each response is finished the same way (error
    /// codes, spec nulls).
    pub fn execute_stream(
        &self,
        mut request: async_graphql::Request,
    ) -> futures::stream::BoxStream<'static, async_graphql::Response> {
        use futures::StreamExt;

        let endpoint = self.clone();
        let responses = async move {
            let admitted = match endpoint.admit(&mut request).await {
                Ok(admitted) => admitted,
                Err(refusal) => {
                    let response = refused(&refusal);
                    super::count_errors(&response);
                    return futures::stream::iter([response]).boxed();
                }
            };
            // With traces on, each run (a subscription runs once per event,
            // on its own task) is an operation span in the trace of the
            // request that opened it, the parent of its downstream calls;
            // the span ends with the run.
            let span = crate::telemetry::enabled().then(|| {
                let parent = scope_of(&request).map(|scope| scope.ctx.trace);
                operation_span(&mut request, &admitted, parent)
            });
            let (schema, memo) = match admitted {
                Admitted::Validated(cached) => {
                    admit_document(&mut request, &cached);
                    let fast = endpoint.fast_schema.as_ref();
                    (fast.unwrap_or(&endpoint.schema), None)
                }
                Admitted::Checked(memo) => (&endpoint.schema, memo),
            };
            // A subscription's later runs of the same request take the
            // remembered path once its first response passed.
            let mut finishing = Finishing::of(&request, span, memo);
            let finisher = endpoint.clone();
            schema
                .execute_stream(request)
                .map(move |mut response| {
                    finishing.apply(&finisher, &mut response);
                    super::count_errors(&response);
                    response
                })
                .boxed()
        };
        // Boxed apart, so that the admission's state is freed once it has
        // run instead of staying inline for the life of a subscription.
        futures::stream::once(Box::pin(responses)).flatten().boxed()
    }

    /// Orders the errors of an executed response, gives them their codes
    /// and nulls failed fields as the spec says (`query`: the request's
    /// whole query). Whether it had errors.
    fn finish(
        &self,
        response: &mut async_graphql::Response,
        query: &str,
        operation_name: Option<&str>,
        request_id: Option<&str>,
    ) -> bool {
        if response.errors.is_empty() {
            return false;
        }
        sort_errors(&mut response.errors);
        apply_error_codes(response);
        if let Some(request_id) = request_id {
            tag_internal_errors(response, request_id);
        }
        self.nulls.apply(query, operation_name, response);
        true
    }

    /// [`GraphQlEndpoint::execute`] for a client that accepts incremental
    /// delivery (`defer/`): `Ok` with the initial and deferred executions
    /// when the operation has active `@defer` fragments (the limits and
    /// full validation passed for the whole query first), else `Err` with
    /// the one complete response (also for a refused request).
    pub async fn execute_incremental(
        &self,
        mut request: async_graphql::Request,
    ) -> Result<super::defer::Incremental, async_graphql::Response> {
        let admitted = match self.admit(&mut request).await {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let response = refused(&refusal);
                super::count_errors(&response);
                return Err(response);
            }
        };
        if let Admitted::Validated(cached) = &admitted {
            admit_document(&mut request, cached);
        }
        let operation_name = request.operation_name.clone();
        let variables = request.variables.clone();
        let plan = match (&self.fast_schema, scope_of(&request).cloned()) {
            (Some(_), Some(scope)) => request.parsed_query().ok().and_then(|document| {
                super::defer::plan::plan(document, operation_name.as_deref(), &variables)
                    .map(|plan| (plan, document.clone(), scope))
            }),
            _ => None,
        };
        let Some((plan, document, scope)) = plan else {
            let response = self.run_admitted(request, admitted).await;
            super::count_errors(&response);
            return Err(response);
        };
        let query = request.query.clone();
        let request_id = Some(scope.ctx.request_id.clone());
        let validation = match &admitted {
            Admitted::Validated(_) => "remembered",
            Admitted::Checked(_) => "full",
        };
        metrics::counter!(crate::metrics::GRAPHQL_REQUESTS, "validation" => validation)
            .increment(1);
        let span =
            crate::telemetry::enabled().then(|| operation_span(&mut request, &admitted, None));
        // The scope the span retraced, when traced.
        let scope = scope_of(&request).cloned().unwrap_or(scope);
        let make = |document: ExecutableDocument| {
            let mut part = async_graphql::Request::new(query.clone())
                .variables(request.variables.clone())
                .data(scope.clone());
            part.operation_name.clone_from(&operation_name);
            part.set_parsed_query(document);
            part
        };
        if let Admitted::Checked(memo) = admitted {
            // The whole query, deferred parts included, validated once
            // before any of it runs; no resolver runs here.
            let check = make(super::defer::plan::validation_only(
                &document,
                operation_name.as_deref(),
            ));
            let mut response = Box::pin(self.schema.execute(check)).await;
            if !response.errors.is_empty() {
                self.finish(
                    &mut response,
                    &query,
                    operation_name.as_deref(),
                    request_id.as_deref(),
                );
                super::count_errors(&response);
                return Err(response);
            }
            if let Some((cached, variant)) = memo {
                cached.remember(variant);
            }
        }
        // Every document runs on the fast schema: the whole query passed
        // validation, and the parts, cut from it, can leave variables and
        // fragments unused.
        let initial = {
            let endpoint = self.clone();
            let request = make(plan.initial);
            let stale = scope.stale_report();
            let (query, operation_name, request_id) =
                (query.clone(), operation_name.clone(), request_id.clone());
            Box::pin(async move {
                let mut response = endpoint.run_fast(request).await;
                if let Some(paths) = stale.extension() {
                    response.extensions.insert("stale".to_owned(), paths);
                }
                endpoint.finish(
                    &mut response,
                    &query,
                    operation_name.as_deref(),
                    request_id.as_deref(),
                );
                super::count_errors(&response);
                response
            }) as std::pin::Pin<Box<dyn Future<Output = _> + Send>>
        };
        let mut sites = Vec::with_capacity(plan.parts.len());
        let mut parts = Vec::with_capacity(plan.parts.len());
        for (index, part) in plan.parts.into_iter().enumerate() {
            sites.push((part.path.clone(), part.label.clone()));
            let endpoint = self.clone();
            let request = make(part.document);
            let (query, operation_name, request_id) =
                (query.clone(), operation_name.clone(), request_id.clone());
            parts.push(Box::pin(async move {
                let mut response = endpoint.run_fast(request).await;
                endpoint.finish(
                    &mut response,
                    &query,
                    operation_name.as_deref(),
                    request_id.as_deref(),
                );
                super::count_errors(&response);
                super::defer::PartResult {
                    response,
                    label: part.label,
                    path: part.path,
                    index,
                }
            })
                as std::pin::Pin<Box<dyn Future<Output = _> + Send>>);
        }
        Ok(super::defer::Incremental {
            initial,
            parts,
            sites,
            span,
            stale: Some(scope.stale_report()),
        })
    }

    async fn run_fast(&self, request: async_graphql::Request) -> async_graphql::Response {
        let schema = self.fast_schema.as_ref().unwrap_or(&self.schema);
        Box::pin(schema.execute(request)).await
    }

    /// The routes of the GraphiQL page's assets (built into the binary) when
    /// this endpoint serves the page, none otherwise: merge them into the
    /// BFF's router, outside the GraphQL route's own layers.
    pub fn graphiql_routes<T>(&self) -> axum::Router<T>
    where
        T: Clone + Send + Sync + 'static,
    {
        if self.graphiql {
            super::graphiql::routes()
        } else {
            axum::Router::new()
        }
    }

    /// What a GET request gets instead of execution, if anything: the
    /// GraphiQL page (`graphiql.rs`) for a browser asking for no query (when enabled), 405
    /// for a mutation (GET must be safe: a link could trigger it).
    pub fn answer_get(
        &self,
        request: &async_graphql::Request,
        headers: &HeaderMap,
    ) -> Option<Response> {
        if request.query.is_empty() && self.graphiql && accepts_html(headers) {
            return Some(super::graphiql::page());
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

/// The response to a request the abuse limits refused: one error, no
/// location (the whole operation is refused), nothing ran.
fn refused(refusal: &BffError) -> async_graphql::Response {
    let error = async_graphql::ErrorExtensions::extend(refusal);
    let mut refusal = async_graphql::ServerError::new(error.message, None);
    refusal.extensions = error.extensions;
    async_graphql::Response::from_errors(vec![refusal])
}

/// The scope the HTTP handler attached to `request`.
fn scope_of(request: &async_graphql::Request) -> Option<&RequestScope> {
    request
        .data
        .get(&TypeId::of::<RequestScope>())
        .and_then(|data| data.downcast_ref::<RequestScope>())
}

/// The OpenTelemetry span of the operation `request` runs, as the GraphQL
/// conventions have it (`graphql.operation.type`, `graphql.operation.name`)
/// but named by the type alone (names are the client's to choose: unbounded);
/// `graphql.document.hash` is the query's SHA-256 (its APQ hash). Never
/// variables: they can hold personal data. The request's scope takes the
/// span's trace, so its downstream calls are the span's children.
/// `parent`: the trace to continue when no request's span is current.
fn operation_span(
    request: &mut async_graphql::Request,
    admitted: &Admitted,
    parent: Option<downstream::TraceParent>,
) -> tracing::Span {
    use async_graphql::parser::types::OperationType;

    let asked = request.operation_name.clone();
    let document = match admitted {
        Admitted::Validated(cached) | Admitted::Checked(Some((cached, _))) => {
            Some(&cached.document)
        }
        // Parsed by `admit` (unless it does not parse, then nothing is known).
        Admitted::Checked(None) => request.parsed_query().ok(),
    };
    let (name, kind) = document
        .and_then(|document| super::named_operation_to_run(document, asked.as_deref()))
        .map(|(name, operation)| {
            let kind = match operation.node.ty {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            };
            (name.map(str::to_owned), Some(kind))
        })
        .unwrap_or_default();
    let span = tracing::trace_span!(
        target: crate::telemetry::TARGET,
        "graphql",
        otel.name = kind.unwrap_or("GraphQL Operation"),
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
        graphql.operation.type = kind,
        graphql.operation.name = name,
        graphql.document.hash = super::sha256_hex(&request.query),
    );
    if let Some(parent) = &parent {
        crate::telemetry::continue_trace(&span, parent);
    }
    if let Some(trace) = crate::telemetry::trace_of(&span) {
        super::RequestScope::retrace(request, trace);
    }
    span
}

/// Puts errors in document order (by where the field is selected, then by
/// path, list indexes numerically): the executor records them as fields
/// complete, so identical requests would otherwise answer different bytes.
fn sort_errors(errors: &mut [async_graphql::ServerError]) {
    use async_graphql::PathSegment;
    use std::cmp::Ordering;

    fn segment_order(a: &PathSegment, b: &PathSegment) -> Ordering {
        match (a, b) {
            (PathSegment::Index(a), PathSegment::Index(b)) => a.cmp(b),
            (PathSegment::Field(a), PathSegment::Field(b)) => a.cmp(b),
            (PathSegment::Index(_), PathSegment::Field(_)) => Ordering::Less,
            (PathSegment::Field(_), PathSegment::Index(_)) => Ordering::Greater,
        }
    }
    errors.sort_by(|a, b| {
        let location = |error: &async_graphql::ServerError| {
            error.locations.first().map(|pos| (pos.line, pos.column))
        };
        location(a).cmp(&location(b)).then_with(|| {
            a.path
                .iter()
                .zip(&b.path)
                .map(|(a, b)| segment_order(a, b))
                .find(|order| order.is_ne())
                .unwrap_or_else(|| a.path.len().cmp(&b.path.len()))
        })
    });
}

/// Refuses a request that leaves out a variable its operation requires
/// (non-null, without a default): the spec makes that a request error, so
/// nothing runs, rather than a null field with an error.
fn check_required_variables(
    document: &ExecutableDocument,
    request: &async_graphql::Request,
) -> Result<(), BffError> {
    let Some(operation) = super::operation_to_run(document, request.operation_name.as_deref())
    else {
        return Ok(()); // the executor reports the missing operation
    };
    for definition in &operation.node.variable_definitions {
        let definition = &definition.node;
        let provided = request
            .variables
            .get(&definition.name.node)
            .is_some_and(|value| *value != async_graphql::Value::Null);
        if !definition.var_type.node.nullable && definition.default_value.is_none() && !provided {
            return Err(BffError::BadUserInput(format!(
                "variable \"${}\" of required type \"{}\" was not provided",
                definition.name.node, definition.var_type.node
            )));
        }
    }
    Ok(())
}

/// Hands `request` its parsed document.
/// What finishing an executed request's responses needs, taken from the
/// request before it runs.
struct Finishing {
    query: String,
    operation_name: Option<String>,
    request_id: Option<String>,
    stale: Option<StaleReport>,
    /// The operation's span, when traced: marked as an error on failure.
    span: Option<tracing::Span>,
    /// A request validated in full now: remembered once its first response
    /// shows it passed.
    memo: Option<(Arc<CachedDocument>, Variant)>,
}

impl Finishing {
    fn of(
        request: &async_graphql::Request,
        span: Option<tracing::Span>,
        memo: Option<(Arc<CachedDocument>, Variant)>,
    ) -> Self {
        let scope = scope_of(request);
        Self {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            request_id: scope.map(|scope| scope.ctx.request_id.clone()),
            stale: scope.map(RequestScope::stale_report),
            span,
            memo,
        }
    }

    /// Remembers a passed validation, names the stale paths, and finishes
    /// the response ([`GraphQlEndpoint::finish`]).
    fn apply<Q, M, S>(
        &mut self,
        endpoint: &GraphQlEndpoint<Q, M, S>,
        response: &mut async_graphql::Response,
    ) where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        // Request errors (syntax, validation, limits) have no path; field
        // errors always have one.
        if let Some((document, variant)) = self.memo.take()
            && response.errors.iter().all(|error| !error.path.is_empty())
        {
            document.remember(variant);
        }
        // Data served from stale copies because a service failed, by
        // response path: the client may tell its user exactly what can be
        // out of date.
        if let Some(paths) = self.stale.as_ref().and_then(StaleReport::extension) {
            response.extensions.insert("stale".to_owned(), paths);
        }
        let failed = endpoint.finish(
            response,
            &self.query,
            self.operation_name.as_deref(),
            self.request_id.as_deref(),
        );
        if failed && let Some(span) = &self.span {
            span.record("otel.status_code", "ERROR");
        }
    }
}

fn admit_document(request: &mut async_graphql::Request, cached: &CachedDocument) {
    request.set_parsed_query(cached.document.clone());
}

/// What, beside the query text, the limits and validation depend on: the
/// operation name and the variables (as JSON: `Variables` is an ordered
/// map, so equal variables give equal text). `None` for variables too large
/// to remember.
fn variant_of(request: &async_graphql::Request) -> Option<Variant> {
    let variables = serde_json::to_string(&request.variables).ok()?;
    (variables.len() <= MAX_REMEMBERED_VARIABLES_BYTES)
        .then(|| (request.operation_name.clone(), variables))
}

/// The GraphQL-over-HTTP media type; `application/json` is the legacy one.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const GRAPHQL_RESPONSE_JSON_UTF8: &str = "application/graphql-response+json; charset=utf-8";
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The HTTP response for an executed (or refused) request, as the
/// GraphQL-over-HTTP spec says: a client that accepts
/// `application/graphql-response+json` gets that media type, and 400 for a
/// request error (syntax, validation, abuse limits, introspection off:
/// nothing ran); any other client gets `application/json` and 200 (the
/// legacy behaviour existing clients rely on). A request error's body has
/// no `data` key for either, as the GraphQL spec says of an error raised
/// before execution ("data" present would claim execution began). Bodies
/// are UTF-8 JSON, and say so.
pub fn respond(headers: &HeaderMap, mut response: async_graphql::Response) -> Response {
    let modern = prefers_graphql_response_json(headers);
    // A request error: nothing ran, so no error has a path (an execution
    // error that nulls all of `data` has one).
    let no_data = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty());
    let status = if modern && no_data {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let content_type = if modern {
        GRAPHQL_RESPONSE_JSON_UTF8
    } else {
        JSON_UTF8
    };
    let extra_headers = std::mem::take(&mut response.http_headers);
    let body = if no_data {
        request_error_body(&response).map(bytes::Bytes::from)
    } else {
        super::json::response_body(response)
    };
    let body = match body {
        Ok(body) => body,
        Err(error) => return graphql_error_response(BffError::internal(error)),
    };
    let mut answer = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    answer.headers_mut().extend(extra_headers);
    answer
}

/// The body of a request error: `errors` (and `extensions`, if any), no
/// `data`.
fn request_error_body(response: &async_graphql::Response) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct RequestError<'a> {
        errors: &'a [async_graphql::ServerError],
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        extensions: &'a BTreeMap<String, async_graphql::Value>,
    }
    serde_json::to_vec(&RequestError {
        errors: &response.errors,
        extensions: &response.extensions,
    })
}

/// Whether the `Accept` header ranks `application/graphql-response+json`
/// at least as high as `application/json` (and above zero).
fn prefers_graphql_response_json(headers: &HeaderMap) -> bool {
    let (mut modern, mut legacy) = (0.0_f32, 0.0_f32);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                GRAPHQL_RESPONSE_JSON => modern = modern.max(quality),
                "application/json" => legacy = legacy.max(quality),
                _ => {}
            }
        }
    }
    modern > 0.0 && modern >= legacy
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
    let message = if nests_too_deep(&rejection.0) {
        format!(
            "the request nests JSON too deep (argument values and variables may nest at most \
             {MAX_VALUE_NESTING} levels)"
        )
    } else {
        "the request is not a GraphQL request (expected JSON with a \"query\")".into()
    };
    graphql_error_response(BffError::BadUserInput(message))
}

/// Whether JSON decoding stopped at serde_json's recursion limit (128
/// levels; [`MAX_VALUE_NESTING`] applies to what decodes).
fn nests_too_deep(error: &async_graphql::ParseRequestError) -> bool {
    match error {
        async_graphql::ParseRequestError::InvalidRequest(error) => error
            .downcast_ref::<serde_json::Error>()
            .is_some_and(|error| error.to_string().starts_with("recursion limit exceeded")),
        _ => false,
    }
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
