//! Abuse limits checked before an operation runs (OWASP GraphQL Cheat
//! Sheet): query size and token count on the text, then aliases, root
//! fields, depth and estimated cost on the parsed document. A refused
//! operation never reaches a resolver, so it makes no downstream call.
//!
//! Cost: every field costs 1 plus its sub-selection's cost, and a list field
//! with a `first`, `last` or `limit` argument (given, from a variable, or
//! the schema's default) counts its sub-selection once per item it may
//! return. Fragments are expanded where they are spread; introspection
//! fields (`__schema`, `__type`) are left to the profile's introspection
//! switch.

use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, Type, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{Value, Variables};

use crate::config::GraphQlConfig;
use crate::error::BffError;

/// Arguments that bound how many items a list field returns.
const LIST_SIZE_ARGUMENTS: [&str; 3] = ["first", "last", "limit"];

/// Why an operation was refused; the message is written for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("the query is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("the query has more than {max} tokens")]
    TooManyTokens { max: usize },
    #[error("the operation uses more than {max} aliases")]
    TooManyAliases { max: usize },
    #[error("the operation selects more than {max} root fields")]
    TooManyRootFields { max: usize },
    #[error("the operation is nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("argument values and variables may nest at most {max} levels (lists, input objects)")]
    NestedTooDeep { max: usize },
    #[error("the operation is too expensive (estimated cost over {max})")]
    TooExpensive { max: usize },
}

impl From<LimitError> for BffError {
    fn from(error: LimitError) -> Self {
        BffError::BadUserInput(error.to_string())
    }
}

/// The limits plus what they need to know about the schema.
#[derive(Debug, Clone)]
pub struct OperationLimits {
    config: GraphQlConfig,
    /// type name → field name → (named type of the field, default list size)
    fields: HashMap<String, HashMap<String, FieldInfo>>,
    roots: [String; 3],
}

#[derive(Debug, Clone)]
struct FieldInfo {
    type_name: String,
    default_size: Option<u64>,
}

impl OperationLimits {
    /// Indexes the schema from its SDL (e.g. `Schema::sdl()`). An SDL that
    /// does not parse leaves the index empty: every limit but the schema's
    /// list-size defaults still applies.
    pub fn new(config: GraphQlConfig, sdl: &str) -> Self {
        let mut fields = HashMap::new();
        let mut roots = [
            "Query".to_owned(),
            "Mutation".to_owned(),
            "Subscription".to_owned(),
        ];
        let definitions = async_graphql::parser::parse_schema(sdl)
            .map(|document| document.definitions)
            .unwrap_or_default();
        for definition in definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    for (slot, name) in [schema.query, schema.mutation, schema.subscription]
                        .into_iter()
                        .enumerate()
                    {
                        if let Some(name) = name {
                            roots[slot] = name.node.to_string();
                        }
                    }
                }
                TypeSystemDefinition::Type(ty) => {
                    let definitions = match &ty.node.kind {
                        TypeKind::Object(object) => &object.fields,
                        TypeKind::Interface(interface) => &interface.fields,
                        _ => continue,
                    };
                    let by_name = definitions
                        .iter()
                        .map(|field| {
                            let field = &field.node;
                            let default_size = field
                                .arguments
                                .iter()
                                .filter(|arg| {
                                    LIST_SIZE_ARGUMENTS.contains(&arg.node.name.node.as_str())
                                })
                                .find_map(|arg| arg.node.default_value.as_ref())
                                .and_then(|value| list_size(&value.node));
                            let info = FieldInfo {
                                type_name: named_type(&field.ty.node).to_owned(),
                                default_size,
                            };
                            (field.name.node.to_string(), info)
                        })
                        .collect();
                    fields.insert(ty.node.name.node.to_string(), by_name);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        Self {
            config,
            fields,
            roots,
        }
    }

    pub fn config(&self) -> &GraphQlConfig {
        &self.config
    }

    /// The checks on the raw text, before any parsing.
    pub fn check_text(&self, query: &str) -> Result<(), LimitError> {
        if query.len() > self.config.max_query_bytes {
            return Err(LimitError::TooLarge {
                max: self.config.max_query_bytes,
            });
        }
        match scan(query, self.config.max_tokens) {
            Ok(_) => Ok(()),
            Err(ScanError::TooManyTokens) => Err(LimitError::TooManyTokens {
                max: self.config.max_tokens,
            }),
            Err(ScanError::ValuesTooDeep) => Err(LimitError::NestedTooDeep {
                max: MAX_VALUE_NESTING,
            }),
            Err(ScanError::SelectionsTooDeep) => Err(LimitError::TooDeep {
                max: self.config.max_depth,
            }),
        }
    }

    /// The check on the request's variables, before any is read.
    pub fn check_variables(&self, variables: &Variables) -> Result<(), LimitError> {
        if variables_nest_within_limit(variables) {
            Ok(())
        } else {
            Err(LimitError::NestedTooDeep {
                max: MAX_VALUE_NESTING,
            })
        }
    }

    /// The checks on the parsed document: every operation in it must pass
    /// (only one runs, but all were sent, and validation reads them all).
    pub fn check_document(
        &self,
        document: &ExecutableDocument,
        variables: &Variables,
    ) -> Result<(), LimitError> {
        for (_, operation) in document.operations.iter() {
            let root = &self.roots[match operation.node.ty {
                OperationType::Query => 0,
                OperationType::Mutation => 1,
                OperationType::Subscription => 2,
            }];
            let selection_set = &operation.node.selection_set.node;
            let mut walk = Walk {
                limits: self,
                document,
                variables,
                aliases: 0,
                max_depth: 0,
                visits: 0,
                fragments: Vec::new(),
            };
            let config = &self.config;
            let too_expensive = LimitError::TooExpensive {
                max: config.max_cost,
            };
            let root_fields = walk
                .count_root_fields(selection_set)
                .ok_or(too_expensive.clone())?;
            walk.visits = 0;
            let cost = walk.cost(selection_set, Some(root), 1);
            if walk.aliases > config.max_aliases {
                return Err(LimitError::TooManyAliases {
                    max: config.max_aliases,
                });
            }
            if root_fields > config.max_root_fields {
                return Err(LimitError::TooManyRootFields {
                    max: config.max_root_fields,
                });
            }
            if walk.max_depth > config.max_depth {
                return Err(LimitError::TooDeep {
                    max: config.max_depth,
                });
            }
            if cost.is_none_or(|cost| cost > config.max_cost as u64) {
                return Err(too_expensive);
            }
        }
        Ok(())
    }
}

/// One operation's walk through its selections, fragments expanded.
struct Walk<'a> {
    limits: &'a OperationLimits,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    aliases: usize,
    max_depth: usize,
    /// Fields visited; a walk that exceeds the cost limit in visits alone
    /// stops, so nested fragment spreads cannot make the check itself slow.
    visits: u64,
    /// Fragments being expanded, to stop at cycles (validation reports them).
    fragments: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    /// Root fields, fragments at the root looked through; `None` once the
    /// walk is over budget.
    fn count_root_fields(&mut self, selection_set: &'a SelectionSet) -> Option<usize> {
        let mut count: usize = 0;
        for selection in &selection_set.items {
            self.visits += 1;
            if self.visits > self.limits.config.max_cost as u64 {
                return None;
            }
            count = count.saturating_add(match &selection.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(fragment) => {
                    self.count_root_fields(&fragment.node.selection_set.node)?
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    else {
                        continue;
                    };
                    if self.fragments.contains(&name) {
                        continue;
                    }
                    self.fragments.push(name);
                    let count = self.count_root_fields(&fragment.node.selection_set.node);
                    self.fragments.pop();
                    count?
                }
            });
        }
        Some(count)
    }

    /// The cost of `selection_set` on type `type_name` (when known) at
    /// `depth`; `None` once the walk is over budget.
    fn cost(
        &mut self,
        selection_set: &'a SelectionSet,
        type_name: Option<&str>,
        depth: usize,
    ) -> Option<u64> {
        let mut total: u64 = 0;
        for selection in &selection_set.items {
            let cost = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.visits += 1;
                    if self.visits > self.limits.config.max_cost as u64 {
                        return None;
                    }
                    if field.alias.is_some() {
                        self.aliases += 1;
                    }
                    self.max_depth = self.max_depth.max(depth);
                    if field.name.node.starts_with("__") {
                        1
                    } else {
                        let info = type_name.and_then(|ty| {
                            self.limits.fields.get(ty)?.get(field.name.node.as_str())
                        });
                        let size = field
                            .arguments
                            .iter()
                            .find(|(name, _)| LIST_SIZE_ARGUMENTS.contains(&name.node.as_str()))
                            .and_then(|(_, value)| {
                                // A variable's value when it is one.
                                let value = value.node.clone().into_const_with(|name| {
                                    self.variables.get(&name).cloned().ok_or(())
                                });
                                list_size(&value.ok()?)
                            })
                            .or(info.and_then(|info| info.default_size))
                            .unwrap_or(1)
                            .max(1);
                        let child_type = info.map(|info| info.type_name.clone());
                        let children =
                            self.cost(&field.selection_set.node, child_type.as_deref(), depth + 1)?;
                        children.saturating_mul(size).saturating_add(1)
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    let on = fragment
                        .type_condition
                        .as_ref()
                        .map(|condition| condition.node.on.node.to_string());
                    self.cost(
                        &fragment.selection_set.node,
                        on.as_deref().or(type_name),
                        depth,
                    )?
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    else {
                        continue; // validation reports the unknown fragment
                    };
                    if self.fragments.contains(&name) {
                        continue; // a cycle; validation reports it
                    }
                    self.fragments.push(name);
                    let on = fragment.node.type_condition.node.on.node.to_string();
                    let cost = self.cost(&fragment.node.selection_set.node, Some(&on), depth);
                    self.fragments.pop();
                    cost?
                }
            };
            total = total.saturating_add(cost);
        }
        Some(total)
    }
}

fn list_size(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

fn named_type(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(item) => named_type(item),
    }
}

/// How deep argument values (lists, input objects), variable types and
/// variables may nest. Deeper input is refused before anything recursive
/// reads it: async-graphql's parser, validator and value conversions
/// recurse once per level, and a few hundred levels overflowed a worker
/// thread's stack and aborted the process.
pub const MAX_VALUE_NESTING: usize = 32;

/// Selection sets nested deeper than this never parse (async-graphql's
/// parser stops at 64); refused before the parser, so its grammar never
/// recurses deeper either.
const MAX_SELECTION_NESTING: usize = 64;

/// What [`scan`] found wrong with a query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanError {
    TooManyTokens,
    ValuesTooDeep,
    SelectionsTooDeep,
}

/// One linear pass over `query` as GraphQL's lexer sees it: the tokens,
/// counted up to just past `max_tokens` (punctuators, names, numbers and
/// strings count one each; white space, commas and comments none), and the
/// nesting of brackets. Brackets inside parentheses (arguments, variable
/// definitions) are values or types and may nest [`MAX_VALUE_NESTING`]
/// deep; the braces of selection sets [`MAX_SELECTION_NESTING`]. Iterative:
/// nothing here recurses, whatever the input.
fn scan(query: &str, max_tokens: usize) -> Result<usize, ScanError> {
    let bytes = query.as_bytes();
    let mut tokens = 0;
    // Open brackets, innermost last; its length is bounded by the limits.
    let mut open: Vec<u8> = Vec::new();
    let mut parens = 0;
    let mut values = 0; // open `[` / `{` inside parentheses
    let mut selections = 0; // open `{` outside them
    let mut i = 0;
    while i < bytes.len() {
        if tokens > max_tokens {
            return Err(ScanError::TooManyTokens);
        }
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'-' | b'+' | b'.'))
                {
                    i += 1;
                }
            }
            bracket @ (b'(' | b'[' | b'{') => {
                match bracket {
                    b'(' => parens += 1,
                    b'{' if parens == 0 => selections += 1,
                    _ => values += 1,
                }
                if values > MAX_VALUE_NESTING {
                    return Err(ScanError::ValuesTooDeep);
                }
                if selections > MAX_SELECTION_NESTING {
                    return Err(ScanError::SelectionsTooDeep);
                }
                open.push(bracket);
                i += 1;
            }
            b')' | b']' | b'}' => {
                // Unbalanced brackets are the parser's to report; the
                // counts only ever need to bound how deep it can go.
                if let Some(bracket) = open.pop() {
                    match bracket {
                        b'(' => parens -= 1,
                        b'{' if parens == 0 => selections -= 1,
                        _ => values -= 1,
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
        tokens += 1;
    }
    if tokens > max_tokens {
        return Err(ScanError::TooManyTokens);
    }
    Ok(tokens)
}

/// Parses `query` once its brackets are known to nest no deeper than the
/// parser can safely go; every parse of client text goes through here (or
/// [`OperationLimits::check_text`] first). `None` for a text that does not
/// parse or nests too deep.
pub fn parse_query(query: &str) -> Option<ExecutableDocument> {
    if let Err(ScanError::ValuesTooDeep | ScanError::SelectionsTooDeep) = scan(query, usize::MAX) {
        return None;
    }
    async_graphql::parser::parse_query(query).ok()
}

/// Whether every value in `variables` nests at most [`MAX_VALUE_NESTING`]
/// deep (a variable itself is level 1, like an argument's value).
fn variables_nest_within_limit(variables: &Variables) -> bool {
    let mut pending: Vec<(&Value, usize)> = variables.values().map(|value| (value, 1)).collect();
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::List(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        if depth >= MAX_VALUE_NESTING {
            return false;
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    true
}

/// Unit tests of the token counter; the limits are tested over HTTP.
#[cfg(test)]
mod tests {
    use super::{ScanError, scan};

    fn count_tokens(query: &str, max: usize) -> usize {
        scan(query, max).unwrap_or(max + 1)
    }

    #[test]
    fn tokens_are_counted_like_the_lexer() {
        assert_eq!(count_tokens("{ a }", 100), 3);
        assert_eq!(
            count_tokens("query Q($n: Int = 5) { a(first: $n) { ...F } }", 100),
            23
        );
        assert_eq!(count_tokens("{ a(s: \"x y, z\") } # a comment", 100), 8);
        assert_eq!(count_tokens("{ a(s: \"\"\"x \\\"\"\" y\"\"\") }", 100), 8);
        assert_eq!(count_tokens("{ a b c d e f }", 3), 4);
    }

    #[test]
    fn nesting_is_bounded_by_where_the_brackets_are() {
        let nested =
            |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
        let value = |n| format!("{{ a(x: {}) }}", nested("[", "]", n));
        assert!(scan(&value(32), usize::MAX).is_ok());
        assert_eq!(scan(&value(33), usize::MAX), Err(ScanError::ValuesTooDeep));
        let selections = |n| nested("{ a ", " }", n);
        assert!(scan(&selections(64), usize::MAX).is_ok());
        assert_eq!(
            scan(&selections(65), usize::MAX),
            Err(ScanError::SelectionsTooDeep)
        );
        // Brackets inside strings and comments are text.
        assert!(
            scan(
                &format!("{{ a(x: \"{}\") }} # {}", "[".repeat(99), "{".repeat(99)),
                usize::MAX
            )
            .is_ok()
        );
    }
}
