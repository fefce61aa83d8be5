//! Assertions the BFFs' end-to-end tests share, so each suite states what it
//! checks rather than how to dig it out of a GraphQL response. Test-only:
//! these panic with the whole response when a check fails.
#![allow(clippy::unwrap_used)]

pub mod equivalence;
pub mod fuzz;
pub mod graphiql;
pub mod graphql_http;
pub mod live;
pub mod node;
pub mod openapi;
pub mod otlp;
pub mod prometheus;
pub mod redis;
pub mod selection;

use serde_json::Value;

/// The JSON body of a response that must be 200.
pub async fn json_200(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "body: {body:#}");
    body
}

/// The response's `data`, asserting it carries no errors.
pub fn data(response: &Value) -> &Value {
    assert!(
        response.get("errors").is_none(),
        "unexpected errors: {:#}",
        response["errors"]
    );
    &response["data"]
}

/// The response's errors (empty when there are none).
pub fn errors(response: &Value) -> Vec<&Value> {
    response["errors"]
        .as_array()
        .map(|errors| errors.iter().collect())
        .unwrap_or_default()
}

/// The `extensions.code` of each error, in order.
pub fn error_codes(response: &Value) -> Vec<&str> {
    errors(response)
        .iter()
        .map(|error| error["extensions"]["code"].as_str().unwrap_or("<none>"))
        .collect()
}

/// The one error of `response`, asserting there is exactly one.
pub fn only_error(response: &Value) -> &Value {
    let errors = errors(response);
    assert_eq!(errors.len(), 1, "expected one error in {response:#}");
    errors[0]
}

/// A request error (refused before anything ran): one BAD_USER_INPUT
/// error whose message contains `message_part`, and no `data` key at all.
pub fn assert_request_error(response: &Value, message_part: &str) {
    assert!(response.get("data").is_none(), "{response}");
    let error = only_error(response);
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{response}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(message_part), "{response}");
}

/// The error whose path is `path`; panics when there is none.
pub fn error_at<'a>(response: &'a Value, path: &[Value]) -> &'a Value {
    let path = Value::Array(path.to_vec());
    errors(response)
        .into_iter()
        .find(|error| error["path"] == path)
        .unwrap_or_else(|| panic!("no error at {path} in {response:#}"))
}

/// `object[key]` is `null` (present, not missing) because its resolver
/// failed: the spec's and the contracts' rule, which the BFFs enforce on top
/// of async-graphql (`bff_server::graphql::NullPropagation`).
pub fn assert_failed(object: &Value, key: &str) {
    assert!(object.is_object(), "not an object: {object}");
    assert_eq!(
        object.get(key),
        Some(&Value::Null),
        "{key} is not null: {object}"
    );
}

/// Errors are for clients: no internal addresses in messages or extensions.
pub fn assert_no_internals(response: &Value) {
    let errors = response["errors"].to_string();
    for internal in ["127.0.0.1", "http://", "localhost"] {
        assert!(
            !errors.contains(internal),
            "errors leak {internal}: {errors}"
        );
    }
}

/// `123450` → `"$1,234.50"`, written independently of the BFFs' formatter.
pub fn usd(cents: i64) -> String {
    assert!(cents >= 0);
    let dollars = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in dollars.chars().enumerate() {
        if i > 0 && (dollars.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("${grouped}.{:02}", cents % 100)
}
