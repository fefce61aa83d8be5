//! Queries answered without async-graphql's executor.
//!
//! A request the endpoint has seen pass full validation before (same query
//! text, operation and variables) still paid, on async-graphql's fast
//! path, for a copy of its document, a validation walk it cannot skip
//! (depth and complexity, with registry lookups per field) and the
//! executor's futures: ~20% of the instructions of a dashboard request
//! (BENCHMARKS.md). When every root field of such a query has an eager
//! answer ([`EagerRoots`]), the endpoint loads them itself, concurrently,
//! and writes the whole `data` object as JSON with the [`eager`](super::eager)
//! writers, straight from the cached document.
//!
//! Anything unusual falls back to the schema, which answers exactly:
//! before any I/O (a root field without an eager answer, no viewer, a
//! mutation), the request simply runs through the schema; after it (a
//! loaded value the writers cannot answer, such as a failed part of the
//! dashboard), the schema runs with the loaded values handed to its
//! resolvers ([`preloaded`]), so nothing is fetched twice.

use std::any::{Any, TypeId};
use std::sync::Mutex;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Context, Data, Request, Value};
use futures::future::{BoxFuture, join_all};

use super::eager::{EagerField, EagerValue, JsonWriter, Walk};

/// The root query fields a BFF can answer eagerly, and how to load them.
pub trait EagerRoots: Send + Sync + 'static {
    /// A future loading root field `field` for the request whose data
    /// (what the HTTP handler attached, e.g. the `RequestScope`) is `data`, or
    /// `None` when this field has no eager answer for this request (an
    /// unknown field, no viewer, ...): the request then runs through the
    /// schema, which answers or reports it. Creating the future must not
    /// start any I/O: it is dropped unpolled when another root field has
    /// no eager answer.
    fn load<'a>(
        &'a self,
        field: EagerField<'a>,
        data: RequestData<'a>,
    ) -> Option<BoxFuture<'a, Box<dyn EagerLoaded>>>;
}

/// What the HTTP handler attached to a request (`request.data(...)`).
#[derive(Clone, Copy)]
pub struct RequestData<'a>(&'a Data);

impl<'a> RequestData<'a> {
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&'a T> {
        let data = self.0.get(&TypeId::of::<T>())?;
        data.downcast_ref::<T>()
    }
}

/// A root field's loaded value: written eagerly, or handed to the schema's
/// resolver when it cannot be.
pub trait EagerLoaded: Send + Sync {
    fn write(&self, field: &EagerField<'_>, out: &mut JsonWriter) -> Option<()>;

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send + Sync>;
}

impl<T: EagerValue + Send + Sync + 'static> EagerLoaded for T {
    fn write(&self, field: &EagerField<'_>, out: &mut JsonWriter) -> Option<()> {
        field.nested(self, out)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send + Sync> {
        self
    }
}

/// Request data: root field values the eager path loaded but could not
/// write, by response key, for the schema's resolvers to take.
pub(crate) struct Preloaded(Mutex<Vec<(String, Box<dyn Any + Send + Sync>)>>);

/// The value the eager path already loaded for the root field `ctx`
/// resolves, if any: a resolver takes it instead of loading again.
pub fn preloaded<T: Any>(ctx: &Context<'_>) -> Option<T> {
    let preloaded = ctx.data_opt::<Preloaded>()?;
    let key = ctx.item.node.response_key().node.as_str();
    let mut values = preloaded.0.lock().ok()?;
    let index = values
        .iter()
        .position(|(loaded_key, value)| loaded_key == key && value.is::<T>())?;
    let (_, value) = values.swap_remove(index);
    value.downcast::<T>().ok().map(|value| *value)
}

/// How the eager path took a request.
pub(crate) enum RootAnswer {
    /// Not at all, and nothing was loaded: run it through the schema.
    Declined,
    /// The whole `data` object, as written JSON.
    Written(Value),
    /// Loaded but not writable: run it through the schema with these.
    Loaded(Preloaded),
}

/// Answers `request` (its `document` validated before) from `roots` when
/// every root field it selects has an eager answer. `query_type` is the
/// schema's name for the query root (`__typename`, fragment conditions).
pub(crate) async fn answer(
    roots: &dyn EagerRoots,
    query_type: &str,
    document: &ExecutableDocument,
    request: &Request,
) -> RootAnswer {
    let Some(operation) = super::operation_to_run(document, request.operation_name.as_deref())
    else {
        return RootAnswer::Declined;
    };
    if operation.node.ty != OperationType::Query {
        return RootAnswer::Declined;
    }
    let walk = Walk {
        fragments: &document.fragments,
        variables: &request.variables,
        definitions: &operation.node.variable_definitions,
    };
    let mut fields = Vec::new();
    let selection_set = &operation.node.selection_set.node;
    if root_fields(walk, selection_set, query_type, &mut fields, 0).is_none() || fields.is_empty() {
        return RootAnswer::Declined;
    }
    let mut loads = Vec::with_capacity(fields.len());
    for field in &fields {
        if field.name() == "__typename" {
            continue;
        }
        match roots.load(*field, RequestData(&request.data)) {
            Some(load) => loads.push(load),
            None => return RootAnswer::Declined,
        }
    }
    let mut loaded = join_all(loads).await.into_iter();

    let mut out = JsonWriter::new();
    out.byte(b'{');
    let mut values = Vec::with_capacity(fields.len());
    let mut written = true;
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.byte(b',');
        }
        out.key(field.response_key());
        if field.name() == "__typename" {
            out.string(query_type);
            continue;
        }
        let Some(value) = loaded.next() else {
            return RootAnswer::Declined;
        };
        written = written && value.write(field, &mut out).is_some();
        values.push((field.response_key().to_owned(), value.into_any()));
    }
    if !written {
        return RootAnswer::Loaded(Preloaded(Mutex::new(values)));
    }
    out.byte(b'}');
    RootAnswer::Written(out.into_value())
}

/// Nesting of fragments at the root deeper than any real operation.
const MAX_ROOT_NESTING: usize = 16;

/// The root fields `selection_set` selects, in order, fragments expanded
/// and `@skip`ped ones left out; `None` for what only the executor handles
/// (a custom directive, a fragment on another type).
fn root_fields<'a>(
    walk: Walk<'a>,
    selection_set: &'a SelectionSet,
    query_type: &str,
    fields: &mut Vec<EagerField<'a>>,
    nesting: usize,
) -> Option<()> {
    if nesting > MAX_ROOT_NESTING {
        return None;
    }
    for selection in &selection_set.items {
        if !walk.keeps(selection.node.directives())? {
            continue;
        }
        let (condition, set) = match &selection.node {
            Selection::Field(field) => {
                fields.push(EagerField::new(field, walk));
                continue;
            }
            _ => walk.fragment(&selection.node)?,
        };
        if condition.is_some_and(|condition| condition != query_type) {
            return None;
        }
        root_fields(walk, set, query_type, fields, nesting + 1)?;
    }
    Some(())
}
