//! The equivalence check of a GraphQL BFF: each generated operation
//! ([`crate::selection`]) is sent to the BFF over HTTP twice (the first
//! time it is validated in full, the repeat takes the endpoint's fast path)
//! and run once on async-graphql's plain executor, and
//!
//! - the first and the repeated answer are identical;
//! - the BFF's `data` is what the plain execution gives, and its errors
//!   have the same paths (their messages and codes may differ: the
//!   endpoint rewrites them);
//! - with every service up, neither has any error; with one failing,
//!   every error the BFF sends carries `extensions.code`;
//! - and byte for byte: the two answers, and the BFF's `data` and the
//!   plain execution's. Answers that agree in every value but not in the
//!   order of some object's fields or of the errors are counted apart
//!   ([`Checked`]), for the caller to assert on after every other check
//!   has run.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::selection::Operation;

/// Requests in flight at once: enough to keep a debug build busy.
const CONCURRENCY: usize = 8;

/// The longest query text the endpoint keeps parsed, and so may answer on
/// its fast path (`MAX_CACHED_QUERY_BYTES` in
/// `shared/server/src/graphql/endpoint.rs`); past it the repeat would be
/// validated in full again and the comparison would prove nothing.
const MAX_FAST_PATH_QUERY_BYTES: usize = 16 * 1024;

/// What the generated operations are run with.
#[derive(Debug, Clone, Copy)]
pub struct Seeds<'a> {
    /// The values each required argument is tried with, by argument name;
    /// an operation runs once per combination.
    pub arguments: &'a [(&'a str, &'a [Value])],
    /// Root fields that need a signed-in viewer: run as every user, never
    /// signed out.
    pub viewer_roots: &'a [&'a str],
    /// The seed's user ids. Other roots run signed out and as one of them
    /// (a different one from case to case).
    pub users: &'a [&'a str],
    /// (root field, user) the seed refuses with an error by design, e.g.
    /// checkout for a user who may not check out: errors are expected
    /// there even with every service up.
    pub refused: &'a [(&'a str, &'a str)],
}

/// One request to run both ways.
#[derive(Debug, Clone)]
pub struct Case {
    /// e.g. `product_defaults {"id":"p1"} as u2`
    pub label: String,
    pub query: String,
    pub variables: Value,
    pub user: Option<String>,
    /// The seed refuses this request (see [`Seeds::refused`]).
    pub refused: bool,
}

/// Every operation with every combination of its required arguments' seed
/// values, as the viewers [`Seeds`] says. Panics when an operation has a
/// required argument the seeds give no values for.
pub fn cases(operations: &[Operation], seeds: &Seeds<'_>) -> Vec<Case> {
    let mut cases = Vec::new();
    for operation in operations {
        let mut combinations = vec![serde_json::Map::new()];
        for (name, _) in &operation.variables {
            let values = seeds
                .arguments
                .iter()
                .find(|(argument, _)| argument == name)
                .map(|(_, values)| *values)
                .unwrap_or_else(|| {
                    panic!(
                        "`{}` takes the required argument `{name}`: give the seeds values for it",
                        operation.root
                    )
                });
            combinations = combinations
                .into_iter()
                .flat_map(|combination| {
                    values.iter().map(move |value| {
                        let mut combination = combination.clone();
                        combination.insert(name.clone(), value.clone());
                        combination
                    })
                })
                .collect();
        }
        for (index, variables) in combinations.into_iter().enumerate() {
            let users: Vec<Option<&str>> = if seeds.viewer_roots.contains(&&*operation.root) {
                seeds.users.iter().copied().map(Some).collect()
            } else {
                vec![None, Some(seeds.users[index % seeds.users.len()])]
            };
            for user in users {
                let variables = Value::Object(variables.clone());
                cases.push(Case {
                    label: format!(
                        "{} {variables} as {}",
                        operation.name,
                        user.unwrap_or("nobody")
                    ),
                    query: operation.query.clone(),
                    variables,
                    user: user.map(str::to_owned),
                    refused: user.is_some_and(|user| {
                        seeds.refused.contains(&(operation.root.as_str(), user))
                    }),
                });
            }
        }
    }
    cases
}

/// The BFF under test, over HTTP.
pub struct Bff<'a> {
    /// Its GraphQL endpoint, e.g. `http://127.0.0.1:1234/graphql`.
    pub url: String,
    pub client: reqwest::Client,
    /// A bearer token for a user id.
    pub token: &'a dyn Fn(&str) -> String,
}

/// async-graphql's own execution of the BFF's schema, against the same
/// services.
pub trait PlainExecution {
    /// Runs `request` (variables set) as `user`, or signed out.
    fn execute(
        &self,
        request: async_graphql::Request,
        user: Option<&str>,
    ) -> impl Future<Output = async_graphql::Response>;
}

/// The BFF's configuration for these tests: caches off (both executions
/// see the services as they are), no retries and no circuit breaker (a
/// failing service fails every call alike, for the BFF and the plain
/// execution), and room for operations that select everything (the abuse
/// limits have their own tests).
pub fn configure(config: &mut bff_server::Config) {
    config.downstream.cache.ttl_ms = 0;
    config.downstream.cache.stale_ms = 0;
    config.downstream.retry.max_retries = 0;
    config.downstream.breaker.enabled = false;
    config.graphql.max_cost = 1_000_000;
}

/// A BFF's schema executed by async-graphql alone, against the app's
/// services, with the request scope the BFF's HTTP handler would attach;
/// then, as the endpoint does, spec null propagation (async-graphql leaves
/// a failed field out of its parent instead of making it null, see
/// `shared/server/src/graphql/nulls.rs`).
pub struct PlainSchema<Q, M, S> {
    schema: async_graphql::Schema<Q, M, S>,
    downstream: std::sync::Arc<downstream::Downstream>,
    nulls: bff_server::graphql::NullPropagation,
}

impl<Q, M, S> PlainSchema<Q, M, S> {
    /// `schema` as the BFF builds it, `sdl` its export, `config` the
    /// app's (for the services it calls).
    pub fn new(
        schema: async_graphql::Schema<Q, M, S>,
        sdl: &str,
        config: &bff_server::Config,
    ) -> Self {
        let http = downstream::http::build_http_client().unwrap();
        Self {
            schema,
            downstream: std::sync::Arc::new(downstream::Downstream::new(&config.downstream, http)),
            nulls: bff_server::graphql::NullPropagation::from_sdl(sdl).unwrap(),
        }
    }
}

impl<Q, M, S> PlainExecution for PlainSchema<Q, M, S>
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    async fn execute(
        &self,
        request: async_graphql::Request,
        user: Option<&str>,
    ) -> async_graphql::Response {
        let mut ctx = downstream::RequestContext::background();
        ctx.user_id = user.map(str::to_owned);
        let viewer = user.map(|user| bff_server::Viewer {
            user_id: user.to_owned(),
            roles: Vec::new(),
            kind: bff_server::ViewerKind::User,
        });
        let scope = bff_server::graphql::RequestScope::new(
            std::sync::Arc::clone(&self.downstream),
            ctx,
            viewer,
        );
        let (query, operation) = (request.query.clone(), request.operation_name.clone());
        let mut response = self.schema.execute(request.data(scope)).await;
        if !response.errors.is_empty() {
            self.nulls
                .apply(&query, operation.as_deref(), &mut response);
        }
        response
    }
}

/// What was checked in one round.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub cases: usize,
    /// Cases the BFF answered with at least one error.
    pub with_errors: usize,
    /// Cases whose three answers agree in every value but not byte for
    /// byte: some object's fields (the spec wants them in the order the
    /// operation selects them), or the errors, come in another order.
    pub reordered: usize,
    /// The first such case, its answers and its query.
    pub first_reordered: Option<String>,
}

/// Runs every case both ways and checks the answers (see the module docs);
/// `failing` says a service is down, so errors are expected. `round` names
/// the round in failures, and in a comment in every query, so that a
/// request is new to the BFF in every round (validated in full the first
/// time, the fast path the second). Panics listing every case that fails.
pub async fn check(
    bff: &Bff<'_>,
    plain: &impl PlainExecution,
    cases: &[Case],
    round: &str,
    failing: bool,
) -> Checked {
    let outcomes: Vec<Result<Outcome, String>> = futures::stream::iter(cases)
        .map(|case| check_case(bff, plain, case, round, failing))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut report = String::new();
    let mut failed = 0;
    for outcome in &outcomes {
        if let Err(failure) = outcome {
            failed += 1;
            if failed <= 5 {
                let _ = writeln!(report, "\n{failure}");
            }
        }
    }
    assert!(
        failed == 0,
        "{round}: {failed} of {} cases failed; the first:{report}",
        cases.len()
    );
    let passed: Vec<Outcome> = outcomes.into_iter().filter_map(Result::ok).collect();
    let reordered: Vec<String> = passed.iter().filter_map(|o| o.reordered.clone()).collect();
    Checked {
        cases: cases.len(),
        with_errors: passed.iter().filter(|o| o.with_errors).count(),
        reordered: reordered.len(),
        first_reordered: reordered.into_iter().next(),
    }
}

/// What the BFF answered `case` with, or why the case fails.
async fn check_case(
    bff: &Bff<'_>,
    plain: &impl PlainExecution,
    case: &Case,
    round: &str,
    failing: bool,
) -> Result<Outcome, String> {
    let viewer = case.user.as_deref().unwrap_or("nobody");
    let query = format!("# {round}, as {viewer}\n{}", case.query);
    let label = format!("[{round}] {}", case.label);
    if query.len() > MAX_FAST_PATH_QUERY_BYTES {
        return Err(format!(
            "{label}: {} bytes of query, too long for the fast path",
            query.len()
        ));
    }
    let first = post(bff, &query, &case.variables, case.user.as_deref()).await;
    let repeat = post(bff, &query, &case.variables, case.user.as_deref()).await;
    let variables = async_graphql::Variables::from_json(case.variables.clone());
    let request = async_graphql::Request::new(query.clone()).variables(variables);
    let plain = plain.execute(request, case.user.as_deref()).await;
    let first = first.map_err(|error| format!("{label}: {error}"))?;
    let repeat = repeat.map_err(|error| format!("{label}: {error}"))?;

    let answer = unordered(&first).map_err(|e| format!("{label}: {e}"))?;
    let repeated = unordered(&repeat).map_err(|e| format!("{label}: {e}"))?;
    if answer != repeated {
        return Err(format!(
            "{label}: the repeated request (fast path) answered differently: {}\n\
             first:  {first}\nrepeat: {repeat}\nquery: {query}",
            difference(&answer, &repeated, "")
        ));
    }
    let plain_value = json!(plain.data);
    if answer["data"] != plain_value {
        return Err(format!(
            "{label}: the BFF's data differs from async-graphql's plain execution: {}\n\
             BFF:   {first}\nplain: {}\nquery: {query}",
            difference(&answer["data"], &plain_value, "data"),
            json!({ "data": plain.data, "errors": plain.errors })
        ));
    }
    let plain_data = serde_json::to_string(&plain.data).map_err(|e| e.to_string())?;
    let prefix = format!("{{\"data\":{plain_data}");
    let same_bytes = first == repeat
        && first
            .strip_prefix(&prefix)
            .is_some_and(|rest| rest.starts_with([',', '}']));
    let errors = answer["errors"].as_array().cloned().unwrap_or_default();
    let bff_paths: BTreeSet<String> = errors.iter().map(|e| e["path"].to_string()).collect();
    let plain_paths: BTreeSet<String> = plain
        .errors
        .iter()
        .map(|error| json!(error.path).to_string())
        .collect();
    if bff_paths != plain_paths {
        return Err(format!(
            "{label}: the BFF's errors are at other paths than the plain execution's\n\
             BFF:   {bff_paths:?}\nplain: {plain_paths:?}\nanswer: {first}"
        ));
    }
    if !failing && !case.refused && (!errors.is_empty() || !plain.errors.is_empty()) {
        return Err(format!(
            "{label}: errors with every service up\nBFF: {first}\nplain errors: {}",
            json!(plain.errors)
        ));
    }
    if let Some(uncoded) = errors.iter().find(|e| !e["extensions"]["code"].is_string()) {
        return Err(format!(
            "{label}: an error without extensions.code: {uncoded}"
        ));
    }
    Ok(Outcome {
        with_errors: !errors.is_empty(),
        reordered: (!same_bytes).then(|| {
            format!(
                "{label}\nfirst:  {first}\nrepeat: {repeat}\nplain:  {plain_data}\nquery: {query}"
            )
        }),
    })
}

/// What one case that passed showed.
struct Outcome {
    with_errors: bool,
    /// The answers when they agree but for the order of some object's
    /// fields.
    reordered: Option<String>,
}

/// The body of the BFF's answer to `POST /graphql`, which must be a 200.
async fn post(
    bff: &Bff<'_>,
    query: &str,
    variables: &Value,
    user: Option<&str>,
) -> Result<String, String> {
    let request = bff
        .client
        .post(&bff.url)
        .json(&json!({ "query": query, "variables": variables }));
    let request = match user {
        Some(user) => request.bearer_auth((bff.token)(user)),
        None => request,
    };
    let response = request.send().await.map_err(|error| error.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|error| error.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok(body)
}

/// An answer to compare whatever the order of its fields and errors (`Value`
/// equality ignores the order of an object's keys; the errors are sorted):
/// the order is checked apart, byte for byte.
fn unordered(body: &str) -> Result<Value, serde_json::Error> {
    let mut answer: Value = serde_json::from_str(body)?;
    if let Some(errors) = answer.get_mut("errors").and_then(Value::as_array_mut) {
        errors.sort_by_cached_key(Value::to_string);
    }
    Ok(answer)
}

/// Where `a` and `b` first differ, e.g. `at data.dashboard.user: null vs {...}`.
fn difference(a: &Value, b: &Value, at: &str) -> String {
    match (a, b) {
        (Value::Object(a_fields), Value::Object(b_fields)) => {
            for (key, a_value) in a_fields {
                match b_fields.get(key) {
                    Some(b_value) if b_value == a_value => {}
                    Some(b_value) => return difference(a_value, b_value, &format!("{at}.{key}")),
                    None => return format!("at {at}: `{key}` only in the first"),
                }
            }
            let extra = b_fields.keys().find(|key| !a_fields.contains_key(*key));
            format!("at {at}: `{}` only in the second", extra.map_or("?", |k| k))
        }
        (Value::Array(a_items), Value::Array(b_items)) if a_items.len() == b_items.len() => a_items
            .iter()
            .zip(b_items)
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(index, (a, b))| difference(a, b, &format!("{at}[{index}]")))
            .unwrap_or_default(),
        _ => {
            let shorten = |value: &Value| value.to_string().chars().take(300).collect::<String>();
            format!("at {at}: {} vs {}", shorten(a), shorten(b))
        }
    }
}
