//! `GraphQlEndpoint`'s fast path: a request (document, operation,
//! variables) that passed full validation once skips it afterwards. Every
//! answer, first or repeated, must be what full validation gives.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use bff_server::config::GraphQlConfig;
use bff_server::graphql::{GraphQlEndpoint, SchemaOptions};
use serde_json::{Value, json};

struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> &str {
        "hi"
    }

    async fn double(&self, n: i32) -> i32 {
        n.saturating_mul(2)
    }
}

type Endpoint = GraphQlEndpoint<Query, EmptyMutation, EmptySubscription>;

const OPTIONS: SchemaOptions = SchemaOptions {
    introspection: false,
};

fn builder() -> async_graphql::SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription)
}

async fn run(
    endpoint: &Endpoint,
    query: &str,
    operation: Option<&str>,
    variables: &Value,
) -> Value {
    let mut request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables.clone()));
    if let Some(operation) = operation {
        request = request.operation_name(operation);
    }
    serde_json::to_value(endpoint.execute(request).await).unwrap()
}

/// Sends each request three times to an endpoint with the fast path and
/// once to one validating everything; the answers must all agree. Returns
/// the answers, in order.
async fn agree(requests: &[(&str, Option<&str>, Value)]) -> Vec<Value> {
    let limits = GraphQlConfig::default();
    let fast = OPTIONS.endpoint(builder, false, limits).unwrap();
    let strict = GraphQlEndpoint::new(OPTIONS.finish(builder()), false, limits).unwrap();
    let mut answers = Vec::new();
    for _round in 0..3 {
        for (query, operation, variables) in requests {
            let expected = run(&strict, query, *operation, variables).await;
            let answer = run(&fast, query, *operation, variables).await;
            assert_eq!(answer, expected, "{query} {operation:?} {variables}");
            answers.push(answer);
        }
    }
    answers.truncate(requests.len());
    answers
}

fn is_refused(response: &Value) -> bool {
    response.get("data").is_none_or(Value::is_null)
        && response["errors"]
            .as_array()
            .is_some_and(|errors| !errors.is_empty())
}

#[tokio::test]
async fn variables_that_fail_validation_are_refused_after_good_ones() {
    let query = "query($n: Int!) { hello double(n: $n) }";
    let answers = agree(&[
        (query, None, json!({ "n": 2 })),
        (query, None, json!({ "n": "two" })),
        (query, None, json!({ "n": 2.5 })),
        (query, None, json!({})),
        (query, None, json!({ "n": 3 })),
    ])
    .await;
    assert_eq!(
        answers[0],
        json!({ "data": { "hello": "hi", "double": 4 } })
    );
    assert!(answers[1..4].iter().all(is_refused), "{answers:?}");
    assert_eq!(answers[4]["data"]["double"], 6);
}

#[tokio::test]
async fn an_invalid_document_is_refused_every_time() {
    let answers = agree(&[
        ("{ nope }", None, json!({})),
        ("{ hello(x: 1) }", None, json!({})),
        ("{ double }", None, json!({})),
        ("{ hello { deeper } }", None, json!({})),
        ("{ hello ", None, json!({})),
    ])
    .await;
    assert!(answers.iter().all(is_refused), "{answers:?}");
}

#[tokio::test]
async fn each_operation_of_a_document_is_validated_on_its_own() {
    let document = "query A { hello } query B($n: Int!) { double(n: $n) }";
    let answers = agree(&[
        (document, Some("A"), json!({})),
        (document, Some("B"), json!({ "n": "x" })),
        (document, Some("B"), json!({ "n": 5 })),
        (document, Some("C"), json!({})),
        (document, None, json!({})),
    ])
    .await;
    assert_eq!(answers[0], json!({ "data": { "hello": "hi" } }));
    assert!(is_refused(&answers[1]), "{answers:?}");
    assert_eq!(answers[2], json!({ "data": { "double": 10 } }));
    assert!(
        is_refused(&answers[3]) && is_refused(&answers[4]),
        "{answers:?}"
    );
}
