//! Null propagation as the GraphQL spec defines it ("Handling Field
//! Errors"): a field that failed is `null`, and when its type is non-null the
//! null moves up to the nearest nullable parent (or makes all of `data` null).
//!
//! async-graphql 7.2 instead leaves a failed field out of its parent object
//! and never moves the null up, so a client would get `{"dashboard": {"user":
//! {...}}}` with no `"recommendations": null`, and partial objects where the
//! contract promises non-null fields. [`NullPropagation::apply`] repairs a
//! response after execution, from the error paths, the query and the schema.
//! A response without errors is left untouched, so the happy path costs nothing.

use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, Type, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{Name, PathSegment, Response, Value};

/// The field types of one schema, indexed for walking error paths.
#[derive(Debug, Clone)]
pub struct NullPropagation {
    /// type name → field name → field type
    fields: HashMap<String, HashMap<String, Type>>,
    query_root: String,
    mutation_root: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the schema's SDL does not parse: {0}")]
pub struct SdlError(String);

impl NullPropagation {
    /// Indexes the schema from its SDL (e.g. `Schema::sdl()`); call once at start-up.
    pub fn from_sdl(sdl: &str) -> Result<Self, SdlError> {
        let document =
            async_graphql::parser::parse_schema(sdl).map_err(|e| SdlError(e.to_string()))?;
        let mut fields = HashMap::new();
        let (mut query_root, mut mutation_root) = ("Query".to_owned(), "Mutation".to_owned());
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    if let Some(query) = &schema.node.query {
                        query_root = query.node.to_string();
                    }
                    if let Some(mutation) = &schema.node.mutation {
                        mutation_root = mutation.node.to_string();
                    }
                }
                TypeSystemDefinition::Type(ty) => {
                    let object_fields = match &ty.node.kind {
                        TypeKind::Object(object) => &object.fields,
                        TypeKind::Interface(interface) => &interface.fields,
                        _ => continue,
                    };
                    let by_name = object_fields
                        .iter()
                        .map(|f| (f.node.name.node.to_string(), f.node.ty.node.clone()))
                        .collect();
                    fields.insert(ty.node.name.node.to_string(), by_name);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        Ok(Self {
            fields,
            query_root,
            mutation_root,
        })
    }

    /// Makes `response.data` follow the spec's null rules for every error
    /// that has a path. `query` and `operation_name` are the request's.
    pub fn apply(&self, query: &str, operation_name: Option<&str>, response: &mut Response) {
        if response.errors.is_empty() {
            return;
        }
        let Some(document) = super::parse_query(query) else {
            return;
        };
        let Some((root, selection_set)) = self.operation(&document, operation_name) else {
            return;
        };
        let mut targets: Vec<Option<Vec<PathSegment>>> = Vec::new();
        for error in response
            .errors
            .iter()
            .filter(|error| !error.path.is_empty())
        {
            match self.nearest_nullable(&document, root, selection_set, &error.path) {
                Some(depth) => targets.push(depth.map(|depth| error.path[..depth].to_vec())),
                // Nulling more than the spec asks would lose good data: the
                // value at the path is left as the executor made it.
                None => tracing::warn!(
                    path = ?error.path,
                    "an error path the schema does not explain; data left as it is"
                ),
            }
        }
        // Deepest first, so a null set higher up wins over one set inside it.
        targets.sort_by_key(|target| std::cmp::Reverse(target.as_ref().map_or(0, Vec::len)));
        for target in targets {
            match target {
                Some(path) => set_null(&mut response.data, &path),
                None => response.data = Value::Null,
            }
        }
    }

    fn operation<'d>(
        &self,
        document: &'d ExecutableDocument,
        operation_name: Option<&str>,
    ) -> Option<(&str, &'d SelectionSet)> {
        let operation = super::operation_to_run(document, operation_name)?;
        let root = match operation.node.ty {
            OperationType::Query => &self.query_root,
            OperationType::Mutation => &self.mutation_root,
            OperationType::Subscription => return None,
        };
        Some((root, &operation.node.selection_set.node))
    }

    /// How many segments of `path` lead to the deepest value that may be
    /// null (`Some(None)` when only `data` itself may); `None` when the path
    /// names a field the document or the schema does not have.
    fn nearest_nullable(
        &self,
        document: &ExecutableDocument,
        root: &str,
        selection_set: &SelectionSet,
        path: &[PathSegment],
    ) -> Option<Option<usize>> {
        let mut nullable_depth = None;
        let mut object_type = root.to_owned();
        let mut selection_sets = vec![selection_set];
        let mut current: Option<Type> = None;
        for (index, segment) in path.iter().enumerate() {
            let ty = match segment {
                PathSegment::Field(key) => {
                    let fields = fields_with_key(document, &selection_sets, key);
                    let name = fields.first()?.name.node.as_str();
                    let ty = self.fields.get(&object_type)?.get(name)?.clone();
                    object_type = named_type(&ty).to_owned();
                    selection_sets = fields.iter().map(|f| &f.selection_set.node).collect();
                    ty
                }
                PathSegment::Index(_) => match current?.base {
                    BaseType::List(item) => *item,
                    BaseType::Named(_) => return None,
                },
            };
            if ty.nullable {
                nullable_depth = Some(index + 1);
            }
            current = Some(ty);
        }
        Some(nullable_depth)
    }
}

/// Every field of the selection sets answering to response key `key`,
/// looking through fragments.
fn fields_with_key<'d>(
    document: &'d ExecutableDocument,
    selection_sets: &[&'d SelectionSet],
    key: &str,
) -> Vec<&'d async_graphql::parser::types::Field> {
    let mut found = Vec::new();
    let mut pending: Vec<&SelectionSet> = selection_sets.to_vec();
    while let Some(set) = pending.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    if field.node.response_key().node.as_str() == key {
                        found.push(&field.node);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        pending.push(&fragment.node.selection_set.node);
                    }
                }
                Selection::InlineFragment(inline) => {
                    pending.push(&inline.node.selection_set.node);
                }
            }
        }
    }
    found
}

fn named_type(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(item) => named_type(item),
    }
}

/// Sets the value at `path` to null. An object that async-graphql collapsed
/// to null (all its fields failed) is reopened so a nullable field in it can
/// be set; a shallower null, set later, wins anyway.
fn set_null(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut value = data;
    for segment in parents {
        value = match (segment, value) {
            (PathSegment::Field(key), value) => {
                if matches!(value, Value::Null) {
                    *value = Value::Object(Default::default());
                }
                let Value::Object(map) = value else { return };
                map.entry(Name::new(key)).or_insert(Value::Null)
            }
            (PathSegment::Index(i), Value::List(items)) => match items.get_mut(*i) {
                Some(item) => item,
                None => return,
            },
            (PathSegment::Index(_), _) => return,
        };
    }
    match (last, value) {
        (PathSegment::Field(key), value) => {
            if matches!(value, Value::Null) {
                *value = Value::Object(Default::default());
            }
            if let Value::Object(map) = value {
                map.insert(Name::new(key), Value::Null);
            }
        }
        (PathSegment::Index(i), Value::List(items)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        (PathSegment::Index(_), _) => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Pos, ServerError};
    use serde_json::json;

    use super::*;

    const SDL: &str = r#"
        type Query { dashboard: Dashboard! me: User! product(id: ID!): Product }
        type Dashboard { user: User orders: [Order!] recommendations: [Rec!] }
        type User { name: String! }
        type Order { id: ID! items: [Item!]! }
        type Item { product: Product quantity: Int! }
        type Product { name: String! reviews: [String!] }
        type Rec { product: Product! score: Float! }
    "#;

    fn run(query: &str, data: serde_json::Value, paths: &[&[PathSegment]]) -> serde_json::Value {
        let nulls = NullPropagation::from_sdl(SDL).unwrap();
        let mut response = Response::new(Value::from_json(data).unwrap());
        for path in paths {
            let mut error = ServerError::new("failed", Some(Pos::default()));
            error.path = path.to_vec();
            response.errors.push(error);
        }
        nulls.apply(query, None, &mut response);
        response.data.into_json().unwrap()
    }

    fn f(key: &str) -> PathSegment {
        PathSegment::Field(key.into())
    }

    #[test]
    fn a_failed_nullable_field_is_null_not_missing() {
        let data = run(
            "{ dashboard { user { name } recommendations { score } } }",
            json!({"dashboard": {"user": {"name": "Ada"}}}),
            &[&[f("dashboard"), f("recommendations")]],
        );
        assert_eq!(
            data,
            json!({"dashboard": {"user": {"name": "Ada"}, "recommendations": null}})
        );
    }

    #[test]
    fn a_failed_non_null_field_nulls_its_nearest_nullable_parent() {
        // Rec.product is non-null: the list item is non-null too, so the
        // whole (nullable) list goes.
        let data = run(
            "{ dashboard { recommendations { score product { name } } } }",
            json!({"dashboard": {"recommendations": [{"score": 1.0}, {"score": 0.5, "product": {"name": "x"}}]}}),
            &[&[
                f("dashboard"),
                f("recommendations"),
                PathSegment::Index(0),
                f("product"),
            ]],
        );
        assert_eq!(data, json!({"dashboard": {"recommendations": null}}));
    }

    #[test]
    fn a_non_null_root_field_failing_nulls_all_data() {
        let data = run(
            "{ me { name } product(id: \"p1\") { name } }",
            json!({"product": {"name": "x"}}),
            &[&[f("me")]],
        );
        assert_eq!(data, serde_json::Value::Null);
    }

    #[test]
    fn an_object_collapsed_to_null_is_reopened_for_its_nullable_field() {
        let data = run(
            "{ dashboard { orders { items { product { name } } } } }",
            json!({"dashboard": {"orders": [{"items": [null, null]}]}}),
            &[
                &[
                    f("dashboard"),
                    f("orders"),
                    PathSegment::Index(0),
                    f("items"),
                    PathSegment::Index(0),
                    f("product"),
                ],
                &[
                    f("dashboard"),
                    f("orders"),
                    PathSegment::Index(0),
                    f("items"),
                    PathSegment::Index(1),
                    f("product"),
                ],
            ],
        );
        assert_eq!(
            data,
            json!({"dashboard": {"orders": [{"items": [{"product": null}, {"product": null}]}]}})
        );
    }

    #[test]
    fn aliases_and_fragments_are_followed() {
        let data = run(
            "query { a: product(id: \"p1\") { ...P } } fragment P on Product { name r: reviews }",
            json!({"a": {"name": "x"}}),
            &[&[f("a"), f("r")]],
        );
        assert_eq!(data, json!({"a": {"name": "x", "r": null}}));
    }

    #[test]
    fn a_single_named_operation_needs_no_operation_name() {
        let data = run(
            "query Dashboard { dashboard { user { name } recommendations { score } } }",
            json!({"dashboard": {"user": {"name": "Ada"}}}),
            &[&[f("dashboard"), f("recommendations")]],
        );
        assert_eq!(
            data,
            json!({"dashboard": {"user": {"name": "Ada"}, "recommendations": null}})
        );
    }

    #[test]
    fn a_shallower_null_wins() {
        let data = run(
            "{ dashboard { user { name } orders { id } } }",
            json!({"dashboard": {"orders": [{"id": "o1"}]}}),
            &[
                &[f("dashboard"), f("user"), f("name")],
                &[f("dashboard"), f("orders")],
            ],
        );
        assert_eq!(data, json!({"dashboard": {"user": null, "orders": null}}));
    }

    #[test]
    fn an_error_path_the_schema_does_not_explain_leaves_data_alone() {
        let data = json!({"dashboard": {"user": {"name": "Ada"}}});
        for path in [
            &[f("dashboard"), f("nope")][..],
            &[f("nope")],
            &[f("dashboard"), f("user"), PathSegment::Index(0)],
        ] {
            let answer = run("{ dashboard { user { name } } }", data.clone(), &[path]);
            assert_eq!(answer, data, "{path:?}");
        }
        // And a root error only nulls `data` when the root field is non-null.
        let answer = run("{ me { name } }", json!({"me": null}), &[&[f("me")]]);
        assert_eq!(answer, serde_json::Value::Null);
    }
}
