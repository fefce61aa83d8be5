//! Answering objects whose data is already in hand without a future per
//! field, and without building async-graphql's value tree.
//!
//! async-graphql resolves every field of every object through a boxed future
//! polled in a `FuturesUnordered`, and collects the answer in a tree of
//! `IndexMap`s that is then serialised and dropped. For a screen of
//! prefetched data (a dashboard: ten orders with their lines and products,
//! ten recommendations) that machinery was most of the BFF's CPU per
//! request (BENCHMARKS.md). [`Eager`] wraps a value of such a type: it walks
//! the selection set itself and writes the subtree's JSON directly
//! ([`json`](super::json) splices it into the response), and falls back to
//! the derived (async) resolver, unchanged, as soon as any field asks for
//! more than plain data: I/O, an error, an argument it cannot read, a
//! fragment on another type, a custom directive. The fallback produces the
//! exact response, errors and paths included, so the eager path only has to
//! be right when it answers at all.
//!
//! Written JSON cannot be merged: when a response key is selected twice in
//! one selection set, async-graphql resolves both and merges the values, so
//! [`GraphQlEndpoint`](super::GraphQlEndpoint) allows the eager path only
//! for documents without repeated response keys (`EagerAllowed`); other
//! documents take the derived resolvers throughout.
//!
//! The walk skips async-graphql's per-field extension hooks; the BFF schemas
//! register no extensions (error codes are applied after execution).

use std::borrow::Cow;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, Selection, SelectionSet,
};
use async_graphql::registry::Registry;
use async_graphql::{
    ContextBase, ContextSelectionSet, EnumType, InputType, OutputType, Positioned, ServerResult,
    Value,
};

pub use super::json::JsonWriter;

/// An object type whose fields can (often) be written without waiting.
pub trait EagerObject: OutputType {
    /// Writes the value of the selected `field` to `out`, or answers `None`
    /// when it needs the type's derived resolver (the whole value then
    /// takes that path, and what was written is dropped).
    fn eager_field(&self, field: &EagerField<'_>, out: &mut JsonWriter) -> Option<()>;
}

/// Something [`Eager`] can write against a selection set: an
/// [`EagerObject`], or a list or option of them.
pub trait EagerValue: OutputType {
    fn eager(&self, ctx: &ContextSelectionSet<'_>, out: &mut JsonWriter) -> Option<()>;
}

impl<T: EagerObject> EagerValue for T {
    fn eager(&self, ctx: &ContextSelectionSet<'_>, out: &mut JsonWriter) -> Option<()> {
        let start = out.position();
        out.byte(b'{');
        let mut written = 0;
        write_fields(self, ctx, out, &mut written)?;
        if written == 0 {
            // As the derived resolver: an object with nothing selected is null.
            out.truncate(start);
            out.null();
        } else {
            out.byte(b'}');
        }
        Some(())
    }
}

impl<T: EagerObject> EagerValue for Vec<T> {
    fn eager(&self, ctx: &ContextSelectionSet<'_>, out: &mut JsonWriter) -> Option<()> {
        out.byte(b'[');
        for (index, item) in self.iter().enumerate() {
            if index > 0 {
                out.byte(b',');
            }
            item.eager(ctx, out)?;
        }
        out.byte(b']');
        Some(())
    }
}

impl<T: EagerObject> EagerValue for Option<T> {
    fn eager(&self, ctx: &ContextSelectionSet<'_>, out: &mut JsonWriter) -> Option<()> {
        match self {
            Some(value) => value.eager(ctx, out),
            None => {
                out.null();
                Some(())
            }
        }
    }
}

/// One selected field of an [`EagerObject`].
pub struct EagerField<'a> {
    ctx: ContextBase<'a, &'a Positioned<Field>>,
}

impl EagerField<'_> {
    /// The field's schema name (not its alias).
    pub fn name(&self) -> &str {
        self.ctx.item.node.name.node.as_str()
    }

    /// The argument `name` (its default when absent); `None` when it does
    /// not parse, which the derived resolver then reports.
    pub fn argument<T: InputType>(&self, name: &str, default: fn() -> T) -> Option<T> {
        self.ctx
            .param_value(name, Some(default))
            .ok()
            .map(|(_, value)| value)
    }

    /// Writes an object (or list or option of objects) this field returns,
    /// with the field's own selection set.
    pub fn nested<V: EagerValue>(&self, value: &V, out: &mut JsonWriter) -> Option<()> {
        let selection = self
            .ctx
            .with_selection_set(&self.ctx.item.node.selection_set);
        value.eager(&selection, out)
    }
}

/// An enum's value, e.g. `SHIPPED`, by its name in the schema.
pub fn enum_value<E: EnumType>(value: E, out: &mut JsonWriter) {
    match E::items().iter().find(|item| item.value == value) {
        Some(item) => out.string(item.name),
        None => out.null(),
    }
}

/// Writes the selected fields of `object`, counting them in `written`. No
/// response key repeats (the document was checked: [`allows_eager`]), so
/// each is written once and nothing needs merging.
fn write_fields<T: EagerObject>(
    object: &T,
    ctx: &ContextSelectionSet<'_>,
    out: &mut JsonWriter,
    written: &mut usize,
) -> Option<()> {
    for selection in &ctx.item.node.items {
        match &selection.node {
            Selection::Field(field) => {
                let custom = &ctx.schema_env.custom_directives;
                let has_custom_directive =
                    !custom.is_empty()
                        && field.node.directives.iter().any(|directive| {
                            custom.contains_key(directive.node.name.node.as_str())
                        });
                if has_custom_directive {
                    return None;
                }
                if *written > 0 {
                    out.byte(b',');
                }
                *written += 1;
                out.key(field.node.response_key().node.as_str());
                if field.node.name.node == "__typename" {
                    out.string(&object.introspection_type_name());
                } else {
                    object.eager_field(
                        &EagerField {
                            ctx: ctx.with_field(field),
                        },
                        out,
                    )?;
                }
            }
            Selection::FragmentSpread(spread) => {
                let fragment = ctx
                    .query_env
                    .fragments
                    .get(&spread.node.fragment_name.node)?;
                if fragment.node.type_condition.node.on.node.as_str() != T::type_name() {
                    return None;
                }
                let selection = ctx.with_selection_set(&fragment.node.selection_set);
                write_fields(object, &selection, out, written)?;
            }
            Selection::InlineFragment(fragment) => {
                let condition = fragment.node.type_condition.as_ref();
                if condition
                    .is_some_and(|condition| condition.node.on.node.as_str() != T::type_name())
                {
                    return None;
                }
                let selection = ctx.with_selection_set(&fragment.node.selection_set);
                write_fields(object, &selection, out, written)?;
            }
        }
    }
    Some(())
}

/// Request data: the document repeats no response key in any selection set,
/// so written JSON never needs merging. Without it, [`Eager`] values take
/// their derived resolvers.
#[derive(Clone, Copy)]
pub(crate) struct EagerAllowed;

/// Whether no selection set of `document` (fragments expanded in place)
/// selects a response key twice. Conservative: a repeat under exclusive
/// type conditions, or a document too large to check quickly, counts too.
pub(crate) fn allows_eager(document: &ExecutableDocument) -> bool {
    let mut budget = 10_000_usize;
    let mut unique = |selection_set: &SelectionSet| {
        let mut keys = Vec::new();
        unique_keys(document, selection_set, &mut keys, &mut budget, 0)
    };
    match &document.operations {
        DocumentOperations::Single(operation) => unique(&operation.node.selection_set.node),
        DocumentOperations::Multiple(operations) => operations
            .values()
            .all(|operation| unique(&operation.node.selection_set.node)),
    }
}

/// Nesting (fields and fragments) deeper than any real operation; also
/// stops fragment cycles, which validation reports later.
const MAX_NESTING: usize = 64;

/// Adds the response keys of `selection_set` (and of the fragments spread
/// in it) to `keys`; false on a repeat, anywhere below too.
fn unique_keys<'a>(
    document: &'a ExecutableDocument,
    selection_set: &'a SelectionSet,
    keys: &mut Vec<&'a str>,
    budget: &mut usize,
    nesting: usize,
) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    for selection in &selection_set.items {
        let Some(left) = budget.checked_sub(1) else {
            return false;
        };
        *budget = left;
        let unique = match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                let first = !keys.contains(&key);
                keys.push(key);
                first
                    && unique_keys(
                        document,
                        &field.node.selection_set.node,
                        &mut Vec::new(),
                        budget,
                        nesting + 1,
                    )
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .is_some_and(|fragment| {
                    let selection_set = &fragment.node.selection_set.node;
                    unique_keys(document, selection_set, keys, budget, nesting + 1)
                }),
            Selection::InlineFragment(fragment) => {
                let selection_set = &fragment.node.selection_set.node;
                unique_keys(document, selection_set, keys, budget, nesting + 1)
            }
        };
        if !unique {
            return false;
        }
    }
    true
}

/// A value answered by walking its selection set when it can be (see the
/// module docs), by its derived resolver otherwise. To the schema it is
/// exactly `T`.
pub struct Eager<T>(pub T);

impl<T: EagerValue> OutputType for Eager<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        if ctx.data_opt::<EagerAllowed>().is_some() {
            let mut out = JsonWriter::new();
            if let Some(()) = self.0.eager(ctx, &mut out) {
                return Ok(out.into_value());
            }
        }
        self.0.resolve(ctx, field).await
    }
}
