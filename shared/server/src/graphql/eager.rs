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
use std::collections::HashMap;

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, FragmentDefinition, Selection,
    SelectionSet, VariableDefinition,
};
use async_graphql::registry::Registry;
use async_graphql::{
    Context, ContextBase, ContextSelectionSet, EnumType, InputType, Name, OutputType, Positioned,
    ServerResult, Value, Variables,
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
    fn eager(&self, selection: &EagerSelection<'_>, out: &mut JsonWriter) -> Option<()>;
}

impl<T: EagerObject> EagerValue for T {
    fn eager(&self, selection: &EagerSelection<'_>, out: &mut JsonWriter) -> Option<()> {
        let start = out.position();
        out.byte(b'{');
        let mut written = 0;
        write_fields(self, selection, out, &mut written)?;
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
    fn eager(&self, selection: &EagerSelection<'_>, out: &mut JsonWriter) -> Option<()> {
        write_list::<T>(self, selection, out)
    }
}

fn write_list<T: EagerObject>(
    items: impl IntoIterator<Item = impl std::borrow::Borrow<T>>,
    selection: &EagerSelection<'_>,
    out: &mut JsonWriter,
) -> Option<()> {
    out.byte(b'[');
    for (index, item) in items.into_iter().enumerate() {
        if index > 0 {
            out.byte(b',');
        }
        item.borrow().eager(selection, out)?;
    }
    out.byte(b']');
    Some(())
}

impl<T: EagerObject> EagerValue for Option<T> {
    fn eager(&self, selection: &EagerSelection<'_>, out: &mut JsonWriter) -> Option<()> {
        match self {
            Some(value) => value.eager(selection, out),
            None => {
                out.null();
                Some(())
            }
        }
    }
}

/// What walking a request's selection sets needs besides the set at hand:
/// the document's fragments and the request's variables. The executor's own
/// context is not needed, so a walk can also run before (or instead of)
/// async-graphql's execution ([`EagerRoots`](super::EagerRoots)).
#[derive(Clone, Copy)]
pub(crate) struct Walk<'a> {
    pub(crate) fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    pub(crate) variables: &'a Variables,
    /// The operation's variable definitions, for their defaults.
    pub(crate) definitions: &'a [Positioned<VariableDefinition>],
}

impl<'a> Walk<'a> {
    fn of<T>(ctx: &ContextBase<'a, T>) -> Self {
        let env = ctx.query_env;
        Self {
            fragments: &env.fragments,
            variables: &env.variables,
            definitions: &env.operation.node.variable_definitions,
        }
    }

    /// A variable's value as the executor fills it into an argument (the
    /// request's value, else the definition's default).
    fn variable(&self, name: &Name) -> Result<Value, ()> {
        let definition = self
            .definitions
            .iter()
            .find(|definition| definition.node.name.node == *name)
            .ok_or(())?;
        let value = self.variables.get(&definition.node.name.node);
        value
            .or_else(|| definition.node.default_value())
            .cloned()
            .ok_or(())
    }

    /// What a fragment spread or inline fragment selects: its type
    /// condition (none on an inline fragment without one) and its selection
    /// set; `None` for a field, or a spread of a fragment the document lacks.
    pub(crate) fn fragment(
        &self,
        selection: &'a Selection,
    ) -> Option<(Option<&'a str>, &'a SelectionSet)> {
        match selection {
            Selection::Field(_) => None,
            Selection::FragmentSpread(spread) => {
                let fragment = self.fragments.get(&spread.node.fragment_name.node)?;
                let condition = fragment.node.type_condition.node.on.node.as_str();
                Some((Some(condition), &fragment.node.selection_set.node))
            }
            Selection::InlineFragment(fragment) => {
                let condition = fragment.node.type_condition.as_ref();
                let condition = condition.map(|condition| condition.node.on.node.as_str());
                Some((condition, &fragment.node.selection_set.node))
            }
        }
    }

    /// Whether `@skip` / `@include` keep a selection, decided exactly as
    /// async-graphql decides before it executes (the request's variables
    /// only; a missing one counts as false). `None` for any other
    /// directive: a custom one, which only the executor applies.
    pub(crate) fn keeps(&self, directives: &[Positioned<Directive>]) -> Option<bool> {
        for directive in directives {
            let include = match directive.node.name.node.as_str() {
                "skip" => false,
                "include" => true,
                _ => return None,
            };
            if let Some(condition) = directive.node.get_argument("if") {
                let variable = |name: Name| self.variables.get(&name).cloned().ok_or(());
                let value = condition.node.clone().into_const_with(variable);
                let value: bool =
                    InputType::parse(Some(value.unwrap_or_default())).unwrap_or_default();
                if include != value {
                    return Some(false);
                }
            }
        }
        Some(true)
    }
}

/// A selection set being written.
pub struct EagerSelection<'a> {
    set: &'a SelectionSet,
    walk: Walk<'a>,
}

/// One selected field of an [`EagerObject`] (or a root field, see
/// [`EagerRoots`](super::EagerRoots)).
#[derive(Clone, Copy)]
pub struct EagerField<'a> {
    field: &'a Positioned<Field>,
    walk: Walk<'a>,
}

impl<'a> EagerField<'a> {
    pub(crate) fn new(field: &'a Positioned<Field>, walk: Walk<'a>) -> Self {
        Self { field, walk }
    }

    /// The field a resolver is resolving, for look-ahead
    /// ([`EagerField::selected`]).
    pub fn of(ctx: &Context<'a>) -> Self {
        Self::new(ctx.item, Walk::of(ctx))
    }

    /// The field's schema name (not its alias).
    pub fn name(&self) -> &'a str {
        self.field.node.name.node.as_str()
    }

    /// The key the field's value has in the response (its alias, or name).
    pub fn response_key(&self) -> &'a str {
        self.field.node.response_key().node.as_str()
    }

    /// The argument `name` (its default when absent); `None` when it does
    /// not parse, which the derived resolver then reports.
    pub fn argument<T: InputType>(&self, name: &str, default: impl FnOnce() -> T) -> Option<T> {
        match self.field.node.get_argument(name) {
            None => Some(default()),
            Some(value) => {
                let value = value.node.clone();
                let value = value
                    .into_const_with(|name| self.walk.variable(&name))
                    .ok()?;
                T::parse(Some(value)).ok()
            }
        }
    }

    /// Writes an object (or list or option of objects) this field returns,
    /// with the field's own selection set.
    pub fn nested<V: EagerValue>(&self, value: &V, out: &mut JsonWriter) -> Option<()> {
        let selection = EagerSelection {
            set: &self.field.node.selection_set.node,
            walk: self.walk,
        };
        value.eager(&selection, out)
    }

    /// Writes a list of objects this field returns, as [`EagerField::nested`]
    /// does a `Vec` of them, without collecting one.
    pub fn nested_list<T: EagerObject>(
        &self,
        items: impl IntoIterator<Item = T>,
        out: &mut JsonWriter,
    ) -> Option<()> {
        let selection = EagerSelection {
            set: &self.field.node.selection_set.node,
            walk: self.walk,
        };
        write_list::<T>(items, &selection, out)
    }

    /// The fields selected under this one, fragments looked through and
    /// `@skip`ped ones left out, so a resolver that fetches ahead fetches
    /// only what will be shown.
    pub fn selected(&self) -> Vec<EagerField<'a>> {
        let mut fields = Vec::new();
        self.collect(&self.field.node.selection_set.node, &mut fields, 0);
        fields
    }

    fn collect(&self, set: &'a SelectionSet, fields: &mut Vec<EagerField<'a>>, nesting: usize) {
        if nesting > MAX_NESTING {
            return;
        }
        for selection in &set.items {
            if self.walk.keeps(selection.node.directives()) == Some(false) {
                continue;
            }
            if let Selection::Field(field) = &selection.node {
                fields.push(Self::new(field, self.walk));
            } else if let Some((_, set)) = self.walk.fragment(&selection.node) {
                self.collect(set, fields, nesting + 1);
            }
        }
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
    selection: &EagerSelection<'_>,
    out: &mut JsonWriter,
    written: &mut usize,
) -> Option<()> {
    let walk = selection.walk;
    for item in &selection.set.items {
        if !walk.keeps(item.node.directives())? {
            continue;
        }
        let (condition, set) = match &item.node {
            Selection::Field(field) => {
                if *written > 0 {
                    out.byte(b',');
                }
                *written += 1;
                out.key(field.node.response_key().node.as_str());
                if field.node.name.node == "__typename" {
                    out.string(&object.introspection_type_name());
                } else {
                    object.eager_field(&EagerField::new(field, walk), out)?;
                }
                continue;
            }
            _ => walk.fragment(&item.node)?,
        };
        if condition.is_some_and(|condition| condition != T::type_name()) {
            return None;
        }
        write_fields(object, &EagerSelection { set, walk }, out, written)?;
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
            let selection = EagerSelection {
                set: &ctx.item.node,
                walk: Walk::of(ctx),
            };
            if let Some(()) = self.0.eager(&selection, &mut out) {
                return Ok(out.into_value());
            }
        }
        self.0.resolve(ctx, field).await
    }
}
