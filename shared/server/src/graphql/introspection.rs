//! Introspection refused as a request error where it is off (the prod
//! profile).
//!
//! async-graphql's own switch (`disable_introspection`) answers `__schema`
//! and `__type` with `null` and no error: a non-null field null without a
//! reason, which tells a client nothing and breaks the spec. So, before
//! anything runs, a document that selects either anywhere (in any
//! operation or fragment, under any alias) is refused with one
//! BAD_USER_INPUT error and no `data`, as graphql-js's
//! `NoSchemaIntrospectionCustomRule` and Apollo Server do. `__typename` is
//! not introspection of the schema and stays allowed.

use async_graphql::Positioned;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::error::BffError;

/// The meta-fields that read the schema.
const SCHEMA_FIELDS: [&str; 2] = ["__schema", "__type"];

/// Refuses `document` if it selects `__schema` or `__type` anywhere.
pub(crate) fn refuse_introspection(document: &ExecutableDocument) -> Result<(), BffError> {
    if selects_schema(document) {
        return Err(BffError::BadUserInput(
            "introspection is disabled on this server: the query may not select \
             `__schema` or `__type`"
                .into(),
        ));
    }
    Ok(())
}

/// Whether any selection set of the document selects a schema meta-field.
/// Every operation and fragment is looked at, so no fragment walk is
/// needed; an explicit stack keeps a deeply nested document from
/// recursing.
fn selects_schema(document: &ExecutableDocument) -> bool {
    let mut pending: Vec<&Positioned<SelectionSet>> = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set),
        )
        .collect();
    while let Some(set) = pending.pop() {
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) => {
                    // The name, not the response key: an alias hides nothing.
                    if SCHEMA_FIELDS.contains(&field.node.name.node.as_str()) {
                        return true;
                    }
                    pending.push(&field.node.selection_set);
                }
                Selection::InlineFragment(fragment) => {
                    pending.push(&fragment.node.selection_set);
                }
                // Named fragments are looked at once, as definitions.
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(query: &str) -> bool {
        let document = async_graphql::parser::parse_query(query).unwrap();
        refuse_introspection(&document).is_err()
    }

    #[test]
    fn schema_fields_are_found_wherever_they_hide() {
        for query in [
            "{ __schema { queryType { name } } }",
            "{ __type(name: \"Query\") { name } }",
            "{ s: __schema { types { name } } }",
            "{ ...F } fragment F on Query { __schema { queryType { name } } }",
            "{ ... on Query { ... on Query { __type(name: \"X\") { name } } } }",
            "query A { __typename } query B { __schema { queryType { name } } }",
            "{ product(id: \"p1\") { __type(name: \"X\") { name } } }",
        ] {
            assert!(refused(query), "{query}");
        }
    }

    #[test]
    fn typename_and_ordinary_fields_pass() {
        for query in [
            "{ __typename }",
            "{ product(id: \"p1\") { __typename name } }",
            "{ schema: product(id: \"p1\") { type: name } }",
            "{ ...F } fragment F on Query { __typename }",
        ] {
            assert!(!refused(query), "{query}");
        }
    }
}
