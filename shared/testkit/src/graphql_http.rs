//! The graphql-http server audit (the GraphQL-over-HTTP spec's conformance
//! checks, from the `graphql-http` npm package) run against a live BFF by
//! `tests/graphql-http-audit/audit.mjs`.
//!
//! The audits are run by the package itself rather than rewritten here, so
//! the suite checks exactly what the spec's reference audit checks and
//! follows it by bumping one pinned version. It needs Node and the
//! package's `node_modules` (see [`crate::node`]).

use crate::node::NodePackage;

/// Runs every audit against the GraphQL endpoint at `url`; panics with the
/// audit's report when any ends in an error or a warning.
pub async fn assert_graphql_http_audit_passes(url: String) {
    let audit = NodePackage::new("graphql-http-audit");
    if !audit.ready("graphql-http audit", &["graphql-http"], None) {
        return;
    }
    audit
        .run("graphql-http audit", "audit.mjs", vec![url], Vec::new())
        .await;
}
