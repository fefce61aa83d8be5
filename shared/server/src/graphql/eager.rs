//! Resolving objects whose data is already in hand without a future per
//! field.
//!
//! async-graphql resolves every field of every object through a boxed future
//! polled in a `FuturesUnordered`, whether or not it waits for anything.
//! For a screen of prefetched data (a dashboard: ten orders with their lines
//! and products, ten recommendations) that machinery was the largest part of
//! the BFF's CPU per request (BENCHMARKS.md). [`Eager`] wraps a value of such
//! a type: it walks the selection set itself and builds the response value
//! directly, and falls back to the derived (async) resolver, unchanged, as
//! soon as any field asks for more than plain data: arguments, I/O, an
//! error, a fragment on another type, a custom directive. The fallback
//! produces the exact response, errors and paths included, so the eager path
//! only has to be right when it answers at all.
//!
//! The walk skips async-graphql's per-field extension hooks; the BFF schemas
//! register no extensions (error codes are applied after execution).

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::{
    ContextBase, ContextSelectionSet, InputType, Name, OutputType, Positioned, ScalarType,
    ServerResult, Value,
};

/// An object type whose fields can (often) be computed without waiting.
pub trait EagerObject: OutputType {
    /// The value of the selected `field`, or `None` when it needs the
    /// type's derived resolver (the whole value then takes that path).
    fn eager_field(&self, field: &EagerField<'_>) -> Option<Value>;
}

/// Something [`Eager`] can resolve against a selection set: an
/// [`EagerObject`], or a list or option of them.
pub trait EagerValue: OutputType {
    fn eager(&self, ctx: &ContextSelectionSet<'_>) -> Option<Value>;
}

impl<T: EagerObject> EagerValue for T {
    fn eager(&self, ctx: &ContextSelectionSet<'_>) -> Option<Value> {
        let mut fields = IndexMap::with_capacity(ctx.item.node.items.len());
        collect_fields(self, ctx, &mut fields)?;
        // As the derived resolver: an object with nothing selected is null.
        Some(if fields.is_empty() {
            Value::Null
        } else {
            Value::Object(fields)
        })
    }
}

impl<T: EagerObject> EagerValue for Vec<T> {
    fn eager(&self, ctx: &ContextSelectionSet<'_>) -> Option<Value> {
        let items = self.iter().map(|item| item.eager(ctx));
        Some(Value::List(items.collect::<Option<_>>()?))
    }
}

impl<T: EagerObject> EagerValue for Option<T> {
    fn eager(&self, ctx: &ContextSelectionSet<'_>) -> Option<Value> {
        match self {
            Some(value) => value.eager(ctx),
            None => Some(Value::Null),
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

    /// The value of an object (or list or option of objects) this field
    /// returns, resolved with the field's own selection set.
    pub fn nested<V: EagerValue>(&self, value: &V) -> Option<Value> {
        value.eager(
            &self
                .ctx
                .with_selection_set(&self.ctx.item.node.selection_set),
        )
    }
}

/// A scalar's response value, exactly as its derived resolver gives it.
pub fn scalar<S: ScalarType>(value: &S) -> Value {
    value.to_value()
}

/// An enum's response value, e.g. `SHIPPED`.
pub fn enum_value<E: InputType>(value: &E) -> Value {
    value.to_value()
}

/// A nullable leaf: `null` when absent.
pub fn optional(value: Option<Value>) -> Value {
    value.unwrap_or(Value::Null)
}

fn collect_fields<T: EagerObject>(
    object: &T,
    ctx: &ContextSelectionSet<'_>,
    fields: &mut IndexMap<Name, Value>,
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
                let key = field.node.response_key().node.clone();
                let value = if field.node.name.node == "__typename" {
                    Value::String(object.introspection_type_name().into_owned())
                } else {
                    object.eager_field(&EagerField {
                        ctx: ctx.with_field(field),
                    })?
                };
                insert_value(fields, key, value);
            }
            Selection::FragmentSpread(spread) => {
                let fragment = ctx
                    .query_env
                    .fragments
                    .get(&spread.node.fragment_name.node)?;
                if fragment.node.type_condition.node.on.node.as_str() != T::type_name() {
                    return None;
                }
                collect_fields(
                    object,
                    &ctx.with_selection_set(&fragment.node.selection_set),
                    fields,
                )?;
            }
            Selection::InlineFragment(fragment) => {
                let condition = fragment.node.type_condition.as_ref();
                if condition
                    .is_some_and(|condition| condition.node.on.node.as_str() != T::type_name())
                {
                    return None;
                }
                collect_fields(
                    object,
                    &ctx.with_selection_set(&fragment.node.selection_set),
                    fields,
                )?;
            }
        }
    }
    Some(())
}

/// A response key selected twice (`{ a { x } a { y } }`, or through
/// fragments) gets the merge of both, as async-graphql's executor does.
/// One hash per key (`entry`): objects are keyed with SipHash, and this runs
/// for every field of the response.
fn insert_value(target: &mut IndexMap<Name, Value>, name: Name, value: Value) {
    use async_graphql::indexmap::map::Entry;
    match (target.entry(name), value) {
        (Entry::Vacant(vacant), value) => {
            vacant.insert(value);
        }
        (Entry::Occupied(mut occupied), value) => match (occupied.get_mut(), value) {
            (Value::Object(existing), Value::Object(more)) => {
                for (key, value) in more {
                    insert_value(existing, key, value);
                }
            }
            (Value::List(existing), Value::List(more)) => {
                for (existing, more) in existing.iter_mut().zip(more) {
                    if let (Value::Object(existing), Value::Object(more)) = (existing, more) {
                        for (key, value) in more {
                            insert_value(existing, key, value);
                        }
                    }
                }
            }
            _ => {}
        },
    }
}

/// A value resolved by walking its selection set when it can be (see the
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
        match self.0.eager(ctx) {
            Some(value) => Ok(value),
            None => self.0.resolve(ctx, field).await,
        }
    }
}
