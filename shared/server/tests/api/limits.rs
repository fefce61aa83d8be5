//! GraphQL abuse limits on `GraphQlEndpoint`: refused before anything runs,
//! on fresh and cached documents alike.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};
use bff_server::config::{
    DEFAULT_GRAPHQL_MAX_ALIASES, DEFAULT_GRAPHQL_MAX_DEPTH, DEFAULT_GRAPHQL_MAX_ROOT_FIELDS,
    GraphQlConfig,
};
use bff_server::graphql::{GraphQlEndpoint, SchemaOptions};
use serde_json::{Value, json};

/// Counts resolver calls, standing in for downstream calls.
#[derive(Default)]
struct Calls(AtomicUsize);

#[derive(SimpleObject)]
#[graphql(complex)]
struct Item {
    id: i32,
}

#[async_graphql::ComplexObject]
impl Item {
    /// A list that pages like the BFFs' lists (`first`, default 10).
    async fn children(&self, ctx: &Context<'_>, #[graphql(default = 10)] first: i32) -> Vec<Item> {
        ctx.data_unchecked::<Arc<Calls>>()
            .0
            .fetch_add(1, Ordering::SeqCst);
        (0..first.min(3)).map(|id| Item { id }).collect()
    }
}

struct Query;

#[Object]
impl Query {
    async fn item(&self, ctx: &Context<'_>) -> Item {
        ctx.data_unchecked::<Arc<Calls>>()
            .0
            .fetch_add(1, Ordering::SeqCst);
        Item { id: 0 }
    }

    async fn items(&self, ctx: &Context<'_>, limit: i32) -> Vec<Item> {
        ctx.data_unchecked::<Arc<Calls>>()
            .0
            .fetch_add(1, Ordering::SeqCst);
        (0..limit.min(3)).map(|id| Item { id }).collect()
    }
}

type TestEndpoint = GraphQlEndpoint<Query, EmptyMutation, EmptySubscription>;

fn endpoint(config: GraphQlConfig) -> TestEndpoint {
    SchemaOptions {
        introspection: false,
    }
    .endpoint(
        || Schema::build(Query, EmptyMutation, EmptySubscription),
        false,
        config,
    )
    .unwrap()
}

/// Runs `query` (with `variables`); the response and the resolver calls.
async fn run(endpoint: &TestEndpoint, query: &str, variables: Value) -> (Value, usize) {
    let calls = Arc::new(Calls::default());
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(Arc::clone(&calls));
    let response = endpoint.execute(request).await;
    (
        serde_json::to_value(response).unwrap(),
        calls.0.load(Ordering::SeqCst),
    )
}

/// Asserts `query` is refused with a BAD_USER_INPUT whose message contains
/// `reason`, and that nothing ran.
async fn assert_refused(endpoint: &TestEndpoint, query: &str, variables: Value, reason: &str) {
    let (response, calls) = run(endpoint, query, variables).await;
    assert_eq!(calls, 0, "a refused operation ran resolvers: {response}");
    assert!(
        response.get("data").is_none_or(Value::is_null),
        "{response}"
    );
    let error = &response["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{response}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(reason), "{message:?} lacks {reason:?}");
}

fn nested(depth: usize) -> String {
    let mut query = String::from("{ item { ");
    for _ in 2..depth {
        query.push_str("children(first: 1) { ");
    }
    query.push_str("id");
    query.push_str(&" }".repeat(depth));
    query
}

#[test]
fn defaults_follow_the_cheat_sheet() {
    let config = GraphQlConfig::default();
    assert_eq!(config.max_depth, 12);
    assert_eq!(DEFAULT_GRAPHQL_MAX_DEPTH, 12);
    assert_eq!(config.max_aliases, 30);
    assert_eq!(DEFAULT_GRAPHQL_MAX_ALIASES, 30);
    assert_eq!(config.max_root_fields, 20);
    assert_eq!(DEFAULT_GRAPHQL_MAX_ROOT_FIELDS, 20);
    assert!(config.max_tokens > 0 && config.max_cost > 0 && config.max_query_bytes > 0);
}

#[test]
fn limits_are_configurable_in_the_file_and_checked() {
    let file = crate::helpers::TempFile::new(
        "[graphql]\nmax_depth = 5\nmax_cost = 100\nmax_aliases = 0\nmax_root_fields = 3\nmax_tokens = 500\nmax_query_bytes = 2048\n",
    );
    let config = crate::helpers::load_dev(&[
        ("BFF_JWT_SECRET", crate::helpers::SECRET),
        ("BFF_CONFIG_FILE", file.path_str()),
    ])
    .unwrap();
    assert_eq!(
        config.graphql,
        GraphQlConfig {
            max_depth: 5,
            max_cost: 100,
            max_aliases: 0,
            max_root_fields: 3,
            max_tokens: 500,
            max_query_bytes: 2048,
        }
    );

    let typo = crate::helpers::TempFile::new("[graphql]\nmax_dept = 5\n");
    let error = crate::helpers::load_dev(&[
        ("BFF_JWT_SECRET", crate::helpers::SECRET),
        ("BFF_CONFIG_FILE", typo.path_str()),
    ])
    .unwrap_err();
    assert!(error.to_string().contains("max_dept"), "{error}");

    let zero = crate::helpers::TempFile::new("[graphql]\nmax_depth = 0\n");
    let error = crate::helpers::load_dev(&[
        ("BFF_JWT_SECRET", crate::helpers::SECRET),
        ("BFF_CONFIG_FILE", zero.path_str()),
    ])
    .unwrap_err();
    assert!(error.to_string().contains("graphql.max_depth"), "{error}");
}

#[tokio::test]
async fn deep_operations_are_refused_before_running() {
    let endpoint = endpoint(GraphQlConfig::default());
    let (response, calls) = run(&endpoint, &nested(12), json!({})).await;
    assert!(response.get("errors").is_none(), "{response}");
    assert!(calls > 0);
    assert_refused(&endpoint, &nested(13), json!({}), "deeper than 12").await;
    assert_refused(&endpoint, &nested(50), json!({}), "deeper than 12").await;
}

#[tokio::test]
async fn depth_counts_through_fragments() {
    let endpoint = endpoint(GraphQlConfig {
        max_depth: 3,
        ..GraphQlConfig::default()
    });
    let query =
        "{ item { ...F } } fragment F on Item { children { ... on Item { children { id } } } }";
    assert_refused(&endpoint, query, json!({}), "deeper than 3").await;
}

#[tokio::test]
async fn limits_apply_to_cached_documents_too() {
    let endpoint = endpoint(GraphQlConfig::default());
    let query = nested(20);
    for _ in 0..3 {
        assert_refused(&endpoint, &query, json!({}), "deeper than 12").await;
    }
    // And a document cached while allowed is still checked per request:
    // its cost depends on the variables.
    let query = "query Q($n: Int!) { items(limit: $n) { children(first: $n) { id } } }";
    let (response, _) = run(&endpoint, query, json!({ "n": 3 })).await;
    assert!(response.get("errors").is_none(), "{response}");
    assert_refused(&endpoint, query, json!({ "n": 1000 }), "too expensive").await;
}

#[tokio::test]
async fn aliases_are_capped() {
    let endpoint = endpoint(GraphQlConfig::default());
    let aliased = |n: usize| {
        let fields: String = (0..n).map(|i| format!("a{i}: id ")).collect();
        format!("{{ item {{ {fields} }} }}")
    };
    let (response, _) = run(&endpoint, &aliased(30), json!({})).await;
    assert!(response.get("errors").is_none(), "{response}");
    assert_refused(&endpoint, &aliased(31), json!({}), "more than 30 aliases").await;
    assert_refused(
        &endpoint,
        &aliased(1_000),
        json!({}),
        "more than 30 aliases",
    )
    .await;
}

#[tokio::test]
async fn root_fields_are_capped() {
    let endpoint = endpoint(GraphQlConfig {
        max_aliases: 1_000,
        ..GraphQlConfig::default()
    });
    let fields = |n: usize| -> String { (0..n).map(|i| format!("r{i}: item {{ id }} ")).collect() };
    let roots = |n: usize| format!("{{ {} }}", fields(n));
    let (response, calls) = run(&endpoint, &roots(20), json!({})).await;
    assert!(response.get("errors").is_none(), "{response}");
    assert_eq!(calls, 20);
    assert_refused(&endpoint, &roots(21), json!({}), "more than 20 root fields").await;
    // Fragments at the root are looked through.
    let spread = format!("{{ ...R }} fragment R on Query {{ {} }}", fields(21));
    assert_refused(&endpoint, &spread, json!({}), "more than 20 root fields").await;
}

#[tokio::test]
async fn list_fields_are_weighted_by_their_size() {
    let endpoint = endpoint(GraphQlConfig {
        max_cost: 100,
        ..GraphQlConfig::default()
    });
    // items(limit: 10) { children(first: 5) { id } }: 1 + 10 × (1 + 5 × 1) = 61.
    let query = "{ items(limit: 10) { children(first: 5) { id } } }";
    let (response, _) = run(&endpoint, query, json!({})).await;
    assert!(response.get("errors").is_none(), "{response}");
    // 1 + 10 × (1 + 10 × 1) = 111: over, with `first` from the schema default.
    let query = "{ items(limit: 10) { children { id } } }";
    assert_refused(
        &endpoint,
        query,
        json!({}),
        "too expensive (estimated cost over 100)",
    )
    .await;
    // From a variable: refused even right after the same query with a small
    // value passed (and was remembered as checked), and every time after.
    let query = "query Q($n: Int!) { items(limit: $n) { id } }";
    for _ in 0..2 {
        let (response, calls) = run(&endpoint, query, json!({ "n": 3 })).await;
        assert!(response.get("errors").is_none(), "{response}");
        assert_eq!(calls, 1);
        assert_refused(&endpoint, query, json!({ "n": 500 }), "too expensive").await;
    }
}

#[tokio::test]
async fn fragment_bombs_stop_the_check_early() {
    let endpoint = endpoint(GraphQlConfig::default());
    // Each fragment spreads the next twice: 2^30 fields once expanded.
    let mut query = String::from("{ item { ...F0 } }");
    for i in 0..30 {
        query.push_str(&format!(
            " fragment F{i} on Item {{ children(first: 1) {{ ...F{next} ...F{next} }} }}",
            next = i + 1
        ));
    }
    query.push_str(" fragment F30 on Item { id }");
    let started = std::time::Instant::now();
    let (response, calls) = run(&endpoint, &query, json!({})).await;
    assert_eq!(calls, 0, "{response}");
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // A fragment cycle does not hang the check either; validation reports it.
    let cycle = "{ item { ...A } } fragment A on Item { ...B } fragment B on Item { ...A }";
    let (response, calls) = run(&endpoint, cycle, json!({})).await;
    assert_eq!(calls, 0);
    assert!(response["errors"][0]["message"].is_string(), "{response}");
}

#[tokio::test]
async fn token_count_and_size_are_checked_before_parsing() {
    let endpoint = endpoint(GraphQlConfig {
        max_tokens: 50,
        max_query_bytes: 4096,
        ..GraphQlConfig::default()
    });
    let many = format!("{{ item {{ {} }} }}", "id ".repeat(60));
    assert_refused(&endpoint, &many, json!({}), "more than 50 tokens").await;
    // Not even parsable: still refused by the count, not by the parser.
    let garbage = "{ ( ".repeat(40);
    assert_refused(&endpoint, &garbage, json!({}), "more than 50 tokens").await;
    let large = format!("{{ item {{ id }} }} # {}", "x".repeat(5000));
    assert_refused(&endpoint, &large, json!({}), "larger than 4096 bytes").await;
}

#[tokio::test]
async fn production_schemas_suggest_no_field_names() {
    let endpoint = endpoint(GraphQlConfig::default());
    let (response, _) = run(&endpoint, "{ item { childre { id } } }", json!({})).await;
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("childre"), "{message}");
    assert!(!message.contains("Did you mean"), "{message}");

    let dev = SchemaOptions {
        introspection: true,
    }
    .finish(Schema::build(Query, EmptyMutation, EmptySubscription));
    let response = dev.execute("{ item { childre { id } } }").await;
    assert!(
        response.errors[0].message.contains("Did you mean"),
        "{:?}",
        response.errors
    );
}
