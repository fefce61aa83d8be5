//! The GraphQL endpoint every GraphQL BFF shares, and the GraphQL side of
//! the error contract: every error a resolver returns with `?` leaves with
//! an `extensions.code` and a client-safe message.
//!
//! async-graphql turns any `Display` error into a GraphQL error through a
//! blanket `From`, keeping the original as the error's `source` but adding
//! no code (that blanket impl also rules out our own
//! `From<BffError> for async_graphql::Error`). So codes are added to the
//! response after execution, by [`apply_error_codes`], which the endpoint
//! runs on every response:
//!
//! | error source | message | `extensions.code` |
//! |---|---|---|
//! | already has a `code` (e.g. `BffError::extend()`) | unchanged | unchanged |
//! | `BffError`, `DownstreamError`, `AuthError` | `BffError`'s client message | its `ErrorCode` |
//! | `String` / `&str` (`Err("…".into())`) | unchanged: text written for the client | none |
//! | any other type (`serde_json::Error`, `io::Error`, …) | "internal server error" | `INTERNAL_SERVER_ERROR` |
//! | none (parse, validation, argument errors) | unchanged | none |

mod csrf;
pub mod defer;
mod endpoint;
pub(crate) mod graphiql;
mod hash;
mod introspection;
pub mod json;
mod limits;
pub mod live;
mod loaders;
mod nulls;
mod scope;
mod stale;

pub use crate::error::graphql_error_response;
pub use csrf::{PREFLIGHT_HEADERS, could_be_cross_site, prevent_csrf};
pub use defer::{DeferDirective, Incremental, IncrementalFormat, respond_multipart};
pub use endpoint::{
    GRAPHQL_RESPONSE_JSON, GraphQlEndpoint, person_or_anonymous, respond, unreadable_request,
};
pub use hash::sha256_hex;
pub use limits::{LimitError, MAX_VALUE_NESTING, OperationLimits, parse_query};
pub use loaders::{MAX_BATCH_SIZE, ProductLoader};
pub use nulls::{NullPropagation, SdlError};
pub use scope::{RequestScope, RoleGuard, SchemaOptions};
pub use stale::{Entity, Tracked};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::{Positioned, Response, ServerError};
use downstream::DownstreamError;

use crate::auth::AuthError;
use crate::error::{BffError, ErrorCode};

/// Gives every error of `response` its code and a client-safe message (see
/// the module docs).
pub fn apply_error_codes(response: &mut Response) {
    for error in &mut response.errors {
        apply_error_code(error);
    }
}

fn apply_error_code(error: &mut ServerError) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|extensions| extensions.get("code").is_some());
    if has_code {
        return;
    }
    let bff_error = if let Some(bff_error) = error.source::<BffError>() {
        bff_error.clone()
    } else if let Some(downstream) = error.source::<DownstreamError>() {
        BffError::from(downstream.clone())
    } else if let Some(auth) = error.source::<AuthError>() {
        BffError::from(auth.clone())
    } else if error.source::<String>().is_some() || error.source::<&'static str>().is_some() {
        return;
    } else if error.source.is_some() {
        // An error type nobody mapped: its text may describe internals.
        BffError::internal(&error.message)
    } else {
        return;
    };
    bff_error.log();
    error.message = bff_error.to_string();
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", bff_error.code().as_str());
    if let BffError::RateLimited { retry_after_secs } = bff_error {
        extensions.set("retryAfterSecs", retry_after_secs);
    }
}

/// Gives each INTERNAL_SERVER_ERROR (whose message is already the generic
/// one) `extensions.requestId`, so a client can quote it and the detail be
/// found in the logs.
pub(crate) fn tag_internal_errors(response: &mut Response, request_id: &str) {
    for error in &mut response.errors {
        let Some(extensions) = error.extensions.as_mut() else {
            continue;
        };
        let is_internal = matches!(
            extensions.get("code"),
            Some(async_graphql::Value::String(code))
                if code == ErrorCode::InternalServerError.as_str()
        );
        if is_internal {
            extensions.set("requestId", request_id);
        }
    }
}

/// Whether the operation `request` would run is a mutation (or
/// subscription): such requests must not run over GET, where a link or a
/// prefetch could trigger them. A query that does not parse is not one; it
/// fails later with the parser's error.
pub fn is_mutation(request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::OperationType;

    let Some(document) = parse_query(&request.query) else {
        return false;
    };
    let is_write = |ty: OperationType| ty != OperationType::Query;
    match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(operation), _) => is_write(operation.node.ty),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .get(name)
            .is_some_and(|operation| is_write(operation.node.ty)),
        // Several operations and no name: execution reports the ambiguity.
        (DocumentOperations::Multiple(operations), None) => operations
            .values()
            .any(|operation| is_write(operation.node.ty)),
    }
}

/// Notes, for the front door's metrics and log line, the operation
/// `document` runs for a request naming `name` (nothing when there is none
/// to run: the executor reports that).
pub(crate) fn note_operation(document: &ExecutableDocument, name: Option<&str>) {
    use crate::observe::{OperationKind, note_graphql_operation};
    use async_graphql::parser::types::OperationType;

    let Some((name, operation)) = named_operation_to_run(document, name) else {
        return;
    };
    let kind = match operation.node.ty {
        OperationType::Query => OperationKind::Query,
        OperationType::Mutation => OperationKind::Mutation,
        OperationType::Subscription => OperationKind::Subscription,
    };
    note_graphql_operation(name, kind);
}

/// Counts the errors of a finished response by `extensions.code`.
pub(crate) fn count_errors(response: &Response) {
    for error in &response.errors {
        let code = error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"));
        match code {
            None => crate::metrics::count_graphql_error(None),
            Some(async_graphql::Value::String(code)) => {
                crate::metrics::count_graphql_error(Some(code));
            }
            // A code that is not a string is no code of ours.
            Some(_) => crate::metrics::count_graphql_error(Some("")),
        }
    }
}

/// The operation a request runs, picked as async-graphql's executor picks
/// it: by name when one is given, else the document's only operation.
pub(crate) fn operation_to_run<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), None) => Some(operation),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        // One named operation (`query Dashboard { ... }`) parses as
        // `Multiple`; without an operation name it is the one that runs.
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// [`operation_to_run`] with the operation's name: the one asked for, or
/// the only operation's own (`None` for an anonymous one).
pub(crate) fn named_operation_to_run<'a>(
    document: &'a ExecutableDocument,
    name: Option<&'a str>,
) -> Option<(Option<&'a str>, &'a Positioned<OperationDefinition>)> {
    let operation = operation_to_run(document, name)?;
    let name = match &document.operations {
        DocumentOperations::Single(_) => None,
        DocumentOperations::Multiple(operations) => {
            name.or_else(|| operations.keys().next().map(|name| name.as_str()))
        }
    };
    Some((name, operation))
}
