//! Operations generated from a GraphQL schema's exported SDL: for every
//! root query field, one operation selecting every field of every object
//! type reachable from it, so a field added to the schema is covered the
//! moment the SDL is exported, with no test to update.
//!
//! How far it goes: an object type already on the path from the root is
//! expanded to its leaf (scalar and enum) fields only, which bounds the
//! recursion (`Product.relatedProducts` selects the related products'
//! leaves, not theirs). Arguments with a default are left out (the
//! default applies) in [`Variant::Defaults`], and given the value the
//! caller names for them in [`Variant::Other`] (`first: 1`, `page: 2`);
//! required arguments (non-null, no default) become variables of the
//! operation, named after the argument, for the caller to fill from its
//! seed data; nullable arguments without a default are left out.

use std::collections::HashMap;
use std::fmt::Write as _;

use async_graphql::parser::types::{
    BaseType, FieldDefinition, Type, TypeDefinition, TypeKind, TypeSystemDefinition,
};

/// Which values the generated operation gives arguments that have defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Left out: the schema's defaults apply.
    Defaults,
    /// The values named in [`Schema::operations`]'s `other_values`, where
    /// one is named for the argument; left out otherwise.
    Other,
}

/// One generated operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The root query field it selects, e.g. `product`.
    pub root: String,
    pub variant: Variant,
    /// The operation's name, e.g. `product_defaults`.
    pub name: String,
    /// The whole document, one named operation.
    pub query: String,
    /// The variables the operation declares (required arguments), as
    /// (name, GraphQL type), e.g. `("id", "ID!")`.
    pub variables: Vec<(String, String)>,
}

/// A schema read from its SDL.
#[derive(Debug)]
pub struct Schema {
    types: HashMap<String, TypeDefinition>,
    query: String,
}

impl Schema {
    /// Parses `sdl`; panics when it does not parse or has no query type.
    pub fn parse(sdl: &str) -> Self {
        let document = async_graphql::parser::parse_schema(sdl)
            .unwrap_or_else(|error| panic!("the SDL does not parse: {error}"));
        let mut types = HashMap::new();
        let mut query = None;
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Type(definition) => {
                    let definition = definition.node;
                    types.insert(definition.name.node.to_string(), definition);
                }
                TypeSystemDefinition::Schema(schema) => {
                    query = schema.node.query.map(|name| name.node.to_string());
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        let query = query.unwrap_or_else(|| "Query".to_owned());
        assert!(types.contains_key(&query), "no query type `{query}`");
        Self { types, query }
    }

    /// The root query fields, in SDL order.
    pub fn roots(&self) -> Vec<String> {
        self.fields(&self.query)
            .iter()
            .map(|field| field.node.name.node.to_string())
            .collect()
    }

    /// For every root query field and both variants, the operation selecting
    /// everything reachable from it. `other_values` are the argument values
    /// of [`Variant::Other`] by argument name, as GraphQL literals, e.g.
    /// `[("first", "1"), ("page", "2")]`.
    pub fn operations(&self, other_values: &[(&str, &str)]) -> Vec<Operation> {
        let mut operations = Vec::new();
        for field in self.fields(&self.query) {
            for variant in [Variant::Defaults, Variant::Other] {
                operations.push(self.operation(&field.node, variant, other_values));
            }
        }
        operations
    }

    fn operation(
        &self,
        root: &FieldDefinition,
        variant: Variant,
        other_values: &[(&str, &str)],
    ) -> Operation {
        let root_name = root.name.node.to_string();
        let name = match variant {
            Variant::Defaults => format!("{root_name}_defaults"),
            Variant::Other => format!("{root_name}_other"),
        };
        let mut generator = Generator {
            schema: self,
            variant,
            other_values,
            variables: Vec::new(),
        };
        let mut path = vec![self.query.clone()];
        let selection = generator.field(root, &mut path);
        let declared = generator
            .variables
            .iter()
            .map(|(name, ty)| format!("${name}: {ty}"))
            .collect::<Vec<_>>();
        let query = if declared.is_empty() {
            format!("query {name} {{ {selection} }}")
        } else {
            format!("query {name}({}) {{ {selection} }}", declared.join(", "))
        };
        Operation {
            root: root_name,
            variant,
            name,
            query,
            variables: generator.variables,
        }
    }

    fn fields(&self, type_name: &str) -> &[async_graphql::Positioned<FieldDefinition>] {
        match self.types.get(type_name).map(|definition| &definition.kind) {
            Some(TypeKind::Object(object)) => &object.fields,
            Some(TypeKind::Interface(interface)) => &interface.fields,
            _ => &[],
        }
    }

    /// The object types a field of type `type_name` may return.
    fn possible_types(&self, type_name: &str) -> Vec<String> {
        match self.types.get(type_name).map(|definition| &definition.kind) {
            Some(TypeKind::Union(union)) => union
                .members
                .iter()
                .map(|member| member.node.to_string())
                .collect(),
            Some(TypeKind::Interface(_)) => {
                let mut implementors: Vec<String> = self
                    .types
                    .values()
                    .filter(|definition| match &definition.kind {
                        TypeKind::Object(object) => object
                            .implements
                            .iter()
                            .any(|name| name.node.as_str() == type_name),
                        _ => false,
                    })
                    .map(|definition| definition.name.node.to_string())
                    .collect();
                implementors.sort();
                implementors
            }
            _ => vec![type_name.to_owned()],
        }
    }

    fn is_leaf(&self, type_name: &str) -> bool {
        match self.types.get(type_name).map(|definition| &definition.kind) {
            Some(TypeKind::Scalar | TypeKind::Enum(_)) => true,
            Some(_) => false,
            // The built-in scalars are not in the SDL.
            None => true,
        }
    }
}

/// The state of generating one operation.
struct Generator<'a> {
    schema: &'a Schema,
    variant: Variant,
    other_values: &'a [(&'a str, &'a str)],
    /// Declared so far, in order of first use.
    variables: Vec<(String, String)>,
}

impl Generator<'_> {
    /// `name(arguments) { selection }` for `field`; `path` holds the object
    /// types from the root to the field's parent.
    fn field(&mut self, field: &FieldDefinition, path: &mut Vec<String>) -> String {
        let mut out = field.name.node.to_string();
        let arguments = self.arguments(field);
        if !arguments.is_empty() {
            let _ = write!(out, "({})", arguments.join(", "));
        }
        let type_name = named_type(&field.ty.node).to_owned();
        if self.schema.is_leaf(&type_name) {
            return out;
        }
        let possible = self.schema.possible_types(&type_name);
        let mut parts = Vec::new();
        if possible.len() > 1 || possible.first() != Some(&type_name) {
            parts.push("__typename".to_owned());
            for object in &possible {
                let selection = self.selection(object, path);
                parts.push(format!("... on {object} {{ {selection} }}"));
            }
        } else {
            parts.push(self.selection(&type_name, path));
        }
        let _ = write!(out, " {{ {} }}", parts.join(" "));
        out
    }

    /// Every field of the object type `type_name`: its leaves only when it
    /// is already on `path`.
    fn selection(&mut self, type_name: &str, path: &mut Vec<String>) -> String {
        let recursive = path.iter().any(|on_path| on_path == type_name);
        path.push(type_name.to_owned());
        let mut selected = Vec::new();
        for field in self.schema.fields(type_name) {
            let field = &field.node;
            let leaf = self.schema.is_leaf(named_type(&field.ty.node));
            if leaf || !recursive {
                selected.push(self.field(field, path));
            }
        }
        path.pop();
        if selected.is_empty() {
            "__typename".to_owned()
        } else {
            selected.join(" ")
        }
    }

    fn arguments(&mut self, field: &FieldDefinition) -> Vec<String> {
        let mut arguments = Vec::new();
        for argument in &field.arguments {
            let argument = &argument.node;
            let name = argument.name.node.as_str();
            let ty = &argument.ty.node;
            if argument.default_value.is_some() {
                let other = self
                    .other_values
                    .iter()
                    .find(|(argument, _)| *argument == name);
                if let (Variant::Other, Some((_, value))) = (self.variant, other) {
                    arguments.push(format!("{name}: {value}"));
                }
            } else if !ty.nullable {
                let ty = ty.to_string();
                match self.variables.iter().find(|(declared, _)| declared == name) {
                    Some((_, declared)) => assert_eq!(
                        *declared, ty,
                        "two required arguments `{name}` of different types in one operation"
                    ),
                    None => self.variables.push((name.to_owned(), ty)),
                }
                arguments.push(format!("{name}: ${name}"));
            }
        }
        arguments
    }
}

/// `Product` for `[Product!]!`.
fn named_type(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named_type(inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = r#"
        type Query {
            product(id: ID!): Product
            top(first: Int! = 10, after: String): [Product!]!
            thing: Thing
        }
        type Product {
            id: ID!
            price: Money!
            related(first: Int! = 5): [Product!]
            status: Status!
        }
        type Money { cents: Int! }
        enum Status { ON OFF }
        union Thing = Product | Money
        schema { query: Query }
    "#;

    fn query_of(operations: &[Operation], root: &str, variant: Variant) -> String {
        operations
            .iter()
            .find(|operation| operation.root == root && operation.variant == variant)
            .unwrap()
            .query
            .clone()
    }

    #[test]
    fn selects_everything_reachable_and_stops_at_types_on_the_path() {
        let schema = Schema::parse(SDL);
        assert_eq!(schema.roots(), ["product", "top", "thing"]);
        let operations = schema.operations(&[("first", "1")]);
        assert_eq!(operations.len(), 6);
        assert_eq!(
            query_of(&operations, "product", Variant::Defaults),
            "query product_defaults($id: ID!) { product(id: $id) { id price { cents } \
             related { id status } status } }"
        );
        assert_eq!(
            query_of(&operations, "product", Variant::Other),
            "query product_other($id: ID!) { product(id: $id) { id price { cents } \
             related(first: 1) { id status } status } }"
        );
        assert_eq!(
            query_of(&operations, "top", Variant::Other),
            "query top_other { top(first: 1) { id price { cents } related(first: 1) \
             { id status } status } }"
        );
        assert_eq!(
            query_of(&operations, "thing", Variant::Defaults),
            "query thing_defaults { thing { __typename ... on Product { id price { cents } \
             related { id status } status } ... on Money { cents } } }"
        );
        let product = &operations[0];
        assert_eq!(product.variables, [("id".to_owned(), "ID!".to_owned())]);
    }
}
