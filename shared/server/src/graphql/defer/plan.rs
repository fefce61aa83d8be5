//! How a query with active `@defer` fragments is split into documents the
//! executor can run: async-graphql validates `@defer` but does not act on it.
//!
//! - The initial document is the query with every active deferred fragment
//!   wrapped in `... @skip(if: true) { <fragment> }`: validation still sees
//!   it, the executor drops it before anything resolves (so look-ahead, e.g.
//!   the dashboard's, does not fetch what it asks for).
//! - Each deferred fragment gets a document selecting only the fields on
//!   the way down to it (same arguments and aliases; named fragments on the
//!   way inlined) and the fragment itself.
//!
//! A fragment under a list field is delivered per item: its document runs
//! once, and the result is split by item. `@defer` nested inside a deferred
//! fragment is delivered with its parent (the spec lets a server do that).

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, InlineFragment, OperationDefinition,
    OperationType, Selection, SelectionSet,
};
use async_graphql::{InputType, Name, Positioned, Variables};

/// The documents one request with active `@defer` runs.
pub(crate) struct Plan {
    pub initial: ExecutableDocument,
    pub parts: Vec<Part>,
}

/// One deferred fragment.
pub(crate) struct Part {
    pub document: ExecutableDocument,
    pub label: Option<String>,
    /// Response keys of the fields from the root down to the fragment
    /// (list indexes come from the data).
    pub path: Vec<Name>,
}

/// A deferred fragment below a selection set: that selection set pruned
/// to the way down to it.
struct Site {
    selection: SelectionSet,
    label: Option<String>,
    path: Vec<Name>,
}

/// The plan for the operation `operation_name` picks, `None` when it defers
/// nothing (no `@defer`, or every one `if: false` or skipped) or is not a
/// query: a part re-runs the fields on the way to its fragment, which for
/// a mutation would run it twice (its `@defer` is delivered inline).
pub(crate) fn plan(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Option<Plan> {
    let operation = super::super::operation_to_run(document, operation_name)?;
    if operation.node.ty != OperationType::Query {
        return None;
    }
    let mut sites = Vec::new();
    collect_sites(
        document,
        &operation.node.selection_set.node,
        variables,
        &mut Vec::new(),
        &mut sites,
    );
    if sites.is_empty() {
        return None;
    }
    let mut initial = document.clone();
    if let Some(operation) = operation_mut(&mut initial, operation_name) {
        wrap_deferred(&mut operation.node.selection_set.node, variables);
    }
    for fragment in initial.fragments.values_mut() {
        wrap_deferred(&mut fragment.node.selection_set.node, variables);
    }
    let parts = sites
        .into_iter()
        .filter_map(|site| {
            let mut part = document.clone();
            operation_mut(&mut part, operation_name)?
                .node
                .selection_set
                .node = site.selection;
            Some(Part {
                document: part,
                label: site.label,
                path: site.path,
            })
        })
        .collect();
    Some(Plan { initial, parts })
}

/// The same document with the operation's whole selection wrapped in
/// `@skip(if: true)`: validating it validates the query (deferred parts
/// included) and executing it runs no resolver.
pub(crate) fn validation_only(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> ExecutableDocument {
    let mut check = document.clone();
    if let Some(operation) = operation_mut(&mut check, operation_name) {
        let set = &mut operation.node.selection_set;
        let pos = set.pos;
        let items = std::mem::take(&mut set.node.items);
        set.node.items = vec![skipped(SelectionSet { items }, pos)];
    }
    check
}

/// [`super::super::operation_to_run`], mutably.
fn operation_mut<'a>(
    document: &'a mut ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a mut Positioned<OperationDefinition>> {
    match (&mut document.operations, name) {
        (DocumentOperations::Single(operation), None) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get_mut(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values_mut().next()
        }
        _ => None,
    }
}

fn collect_sites(
    document: &ExecutableDocument,
    set: &SelectionSet,
    variables: &Variables,
    visiting: &mut Vec<Name>,
    out: &mut Vec<Site>,
) {
    for item in &set.items {
        if is_skipped(item.node.directives(), variables) {
            continue;
        }
        let wrap = |selection: Selection| SelectionSet {
            items: vec![Positioned::new(selection, item.pos)],
        };
        match &item.node {
            Selection::Field(field) => {
                let mut inner = Vec::new();
                collect_sites(
                    document,
                    &field.node.selection_set.node,
                    variables,
                    visiting,
                    &mut inner,
                );
                for site in inner {
                    let mut pruned = field.clone();
                    pruned.node.selection_set.node = site.selection;
                    let mut path = vec![field.node.response_key().node.clone()];
                    path.extend(site.path);
                    out.push(Site {
                        selection: wrap(Selection::Field(pruned)),
                        label: site.label,
                        path,
                    });
                }
            }
            Selection::InlineFragment(fragment) => {
                if let Some(label) = deferred(&fragment.node.directives, variables) {
                    out.push(Site {
                        selection: wrap(item.node.clone()),
                        label,
                        path: Vec::new(),
                    });
                    continue;
                }
                let mut inner = Vec::new();
                collect_sites(
                    document,
                    &fragment.node.selection_set.node,
                    variables,
                    visiting,
                    &mut inner,
                );
                for site in inner {
                    let mut pruned = fragment.clone();
                    pruned.node.selection_set.node = site.selection;
                    out.push(Site {
                        selection: wrap(Selection::InlineFragment(pruned)),
                        label: site.label,
                        path: site.path,
                    });
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                // Unknown fragments and cycles: validation refuses them.
                let Some(definition) = document.fragments.get(name) else {
                    continue;
                };
                if visiting.contains(name) {
                    continue;
                }
                // Inlined: the definition may be spread elsewhere too.
                let inline = |selection_set: SelectionSet| {
                    Selection::InlineFragment(Positioned::new(
                        InlineFragment {
                            type_condition: Some(definition.node.type_condition.clone()),
                            directives: spread.node.directives.clone(),
                            selection_set: Positioned::new(
                                selection_set,
                                definition.node.selection_set.pos,
                            ),
                        },
                        spread.pos,
                    ))
                };
                if let Some(label) = deferred(&spread.node.directives, variables) {
                    out.push(Site {
                        selection: wrap(inline(definition.node.selection_set.node.clone())),
                        label,
                        path: Vec::new(),
                    });
                    continue;
                }
                visiting.push(name.clone());
                let mut inner = Vec::new();
                collect_sites(
                    document,
                    &definition.node.selection_set.node,
                    variables,
                    visiting,
                    &mut inner,
                );
                visiting.pop();
                for site in inner {
                    out.push(Site {
                        selection: wrap(inline(site.selection)),
                        label: site.label,
                        path: site.path,
                    });
                }
            }
        }
    }
}

/// Wraps every active deferred fragment of `set` (at any depth) in
/// `@skip(if: true)`.
fn wrap_deferred(set: &mut SelectionSet, variables: &Variables) {
    for item in &mut set.items {
        let directives = item.node.directives();
        if !is_skipped(directives, variables) && deferred(directives, variables).is_some() {
            let pos = item.pos;
            let original = item.clone();
            *item = skipped(
                SelectionSet {
                    items: vec![original],
                },
                pos,
            );
            continue;
        }
        match &mut item.node {
            Selection::Field(field) => {
                wrap_deferred(&mut field.node.selection_set.node, variables);
            }
            Selection::InlineFragment(fragment) => {
                wrap_deferred(&mut fragment.node.selection_set.node, variables);
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}

/// `... @skip(if: true) { <set> }`.
fn skipped(set: SelectionSet, pos: async_graphql::Pos) -> Positioned<Selection> {
    let skip = Directive {
        name: Positioned::new(Name::new("skip"), pos),
        arguments: vec![(
            Positioned::new(Name::new("if"), pos),
            Positioned::new(async_graphql::Value::Boolean(true).into(), pos),
        )],
    };
    Positioned::new(
        Selection::InlineFragment(Positioned::new(
            InlineFragment {
                type_condition: None,
                directives: vec![Positioned::new(skip, pos)],
                selection_set: Positioned::new(set, pos),
            },
            pos,
        )),
        pos,
    )
}

/// `Some(label)` when `directives` hold an active `@defer` (`if` true, its
/// default).
fn deferred(directives: &[Positioned<Directive>], variables: &Variables) -> Option<Option<String>> {
    let defer = directives
        .iter()
        .find(|directive| directive.node.name.node == "defer")?;
    let active = argument(&defer.node, "if", variables)
        .map(|value| bool::parse(Some(value)).unwrap_or(true))
        .unwrap_or(true);
    active.then(|| {
        argument(&defer.node, "label", variables).and_then(|value| match value {
            async_graphql::Value::String(label) => Some(label),
            _ => None,
        })
    })
}

/// Whether `@skip`/`@include` leave the selection out, as the executor
/// decides it.
fn is_skipped(directives: &[Positioned<Directive>], variables: &Variables) -> bool {
    directives.iter().any(|directive| {
        let include = match directive.node.name.node.as_str() {
            "skip" => false,
            "include" => true,
            _ => return false,
        };
        argument(&directive.node, "if", variables)
            .is_some_and(|value| bool::parse(Some(value)).unwrap_or_default() != include)
    })
}

fn argument(
    directive: &Directive,
    name: &str,
    variables: &Variables,
) -> Option<async_graphql::Value> {
    directive
        .get_argument(name)?
        .node
        .clone()
        .into_const_with(|variable| variables.get(&variable).cloned().ok_or(()))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).unwrap()
    }

    #[test]
    fn nothing_deferred_is_no_plan() {
        let vars = Variables::default();
        assert!(plan(&parse("{ a { b } }"), None, &vars).is_none());
        assert!(plan(&parse("{ a { ... @defer(if: false) { b } } }"), None, &vars).is_none());
        let skipped = parse("{ a { ... @defer @skip(if: true) { b } } }");
        assert!(plan(&skipped, None, &vars).is_none());
        let by_variable = parse("query($d: Boolean!) { a { ... @defer(if: $d) { b } } }");
        let off = Variables::from_json(serde_json::json!({"d": false}));
        assert!(plan(&by_variable, None, &off).is_none());
        let on = Variables::from_json(serde_json::json!({"d": true}));
        assert_eq!(plan(&by_variable, None, &on).unwrap().parts.len(), 1);
        // A mutation's fields run once: its deferred fragments come inline.
        let mutation = parse("mutation { m { id ... @defer { b } } }");
        assert!(plan(&mutation, None, &vars).is_none());
    }

    #[test]
    fn parts_have_their_paths_and_labels() {
        let document = parse(
            "query Q { x: a(n: 1) { id ...F @defer(label: \"f\") } c { ... @defer { d } } } \
             fragment F on A { b { ... @defer(label: \"inner\") { e } } }",
        );
        let plan = plan(&document, Some("Q"), &Variables::default()).unwrap();
        let found: Vec<_> = plan
            .parts
            .iter()
            .map(|part| {
                let path: Vec<&str> = part.path.iter().map(Name::as_str).collect();
                (path, part.label.clone())
            })
            .collect();
        assert_eq!(
            found,
            vec![(vec!["x"], Some("f".to_owned())), (vec!["c"], None)]
        );
    }

    #[test]
    fn a_nested_defer_comes_with_its_parent() {
        let document = parse("{ a { ... @defer { b { ... @defer { c } } } } }");
        let plan = plan(&document, None, &Variables::default()).unwrap();
        assert_eq!(plan.parts.len(), 1);
        assert_eq!(plan.parts[0].path, [Name::new("a")]);
    }
}
