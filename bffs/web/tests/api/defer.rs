//! `@defer` over real HTTP: the multipart stream read part by part as it
//! arrives, in both incremental formats; one complete response for clients
//! that do not accept multipart.

use std::time::{Duration, Instant};

use devstack_services::control::Fault;
use serde_json::{Value, json};

use crate::helpers::{TestApp, data, json_200, only_error, spawn_app, spawn_app_with};

/// What Apollo Client 3 sends.
const APOLLO_ACCEPT: &str = "multipart/mixed;deferSpec=20220824,application/json";
const V0_2_ACCEPT: &str = "multipart/mixed;incrementalSpec=v0.2,application/json";

const DASHBOARD: &str = "query Dashboard { dashboard { \
    user { id name } \
    ... @defer(label: \"recommendations\") { recommendations(first: 3) { score product { id name } } } \
} }";

const DASHBOARD_WHOLE: &str = "query Dashboard { dashboard { \
    user { id name } \
    recommendations(first: 3) { score product { id name } } \
} }";

/// A multipart/mixed body read as it arrives.
struct Parts {
    response: reqwest::Response,
    buffer: Vec<u8>,
    closed: bool,
    sent: Instant,
}

/// One JSON part and when it was complete, since the request was sent.
struct Part {
    json: Value,
    after: Duration,
}

impl Parts {
    async fn open(app: &TestApp, accept: &str, query: &str, variables: Value) -> Self {
        let sent = Instant::now();
        let response = app
            .graphql_request(query, variables, Some(&app.token("u1")))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("multipart/mixed; boundary=\"-\""),
            "{content_type}"
        );
        Self {
            response,
            buffer: Vec::new(),
            closed: false,
            sent,
        }
    }

    /// The next part, `None` after the closing delimiter.
    async fn next(&mut self) -> Option<Part> {
        loop {
            if let Some(part) = self.take() {
                return Some(part);
            }
            if self.closed {
                return None;
            }
            let chunk = self.response.chunk().await.unwrap();
            match chunk {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => panic!(
                    "body ended without the closing delimiter: {:?}",
                    String::from_utf8_lossy(&self.buffer)
                ),
            }
        }
    }

    fn take(&mut self) -> Option<Part> {
        const DELIMITER: &[u8] = b"\r\n---";
        if self.buffer.len() < DELIMITER.len() + 2 {
            return None;
        }
        assert!(self.buffer.starts_with(DELIMITER), "{:?}", self.buffer);
        let rest = &self.buffer[DELIMITER.len()..];
        if rest.starts_with(b"--") {
            assert_eq!(rest, b"--\r\n", "trailing bytes after the close");
            self.closed = true;
            self.buffer.clear();
            return None;
        }
        let end = rest.windows(DELIMITER.len()).position(|w| w == DELIMITER)?;
        let part = std::str::from_utf8(&rest[..end]).unwrap().to_owned();
        self.buffer.drain(..DELIMITER.len() + end);
        let (head, body) = part.split_once("\r\n\r\n").unwrap();
        assert_eq!(head.trim(), "Content-Type: application/json; charset=utf-8");
        Some(Part {
            json: serde_json::from_str(body).unwrap(),
            after: self.sent.elapsed(),
        })
    }

    async fn all(mut self) -> Vec<Value> {
        let mut parts = Vec::new();
        while let Some(part) = self.next().await {
            parts.push(part.json);
        }
        parts
    }
}

/// A query with a token for `u1`, as one JSON response.
async fn whole(app: &TestApp, accept: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = app.graphql_request(query, variables, Some(&app.token("u1")));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    json_200(request.send().await.unwrap()).await
}

#[tokio::test]
async fn the_dashboard_leaves_before_slow_recommendations_which_follow() {
    let app = spawn_app().await;
    let expected = whole(&app, None, DASHBOARD_WHOLE, json!({})).await;
    app.services
        .recommendation
        .control
        .set_fault(Fault::new("/").latency(500));

    let mut parts = Parts::open(&app, APOLLO_ACCEPT, DASHBOARD, json!({})).await;
    let first = parts.next().await.unwrap();
    // The recommendation service answers after 500 ms at the earliest;
    // the initial payload did not wait for it.
    assert!(
        first.after < Duration::from_millis(400),
        "{:?}",
        first.after
    );
    assert_eq!(
        first.json,
        json!({
            "data": {"dashboard": {"user": {"id": "u1", "name": "Ada Lovelace"}}},
            "hasNext": true
        })
    );
    let second = parts.next().await.unwrap();
    eprintln!(
        "initial payload after {:?}, deferred part after {:?}",
        first.after, second.after
    );
    assert!(
        second.after >= Duration::from_millis(500),
        "{:?}",
        second.after
    );
    let recommendations = &expected["data"]["dashboard"]["recommendations"];
    assert_eq!(recommendations.as_array().unwrap().len(), 3);
    assert_eq!(
        second.json,
        json!({
            "incremental": [{
                "data": {"recommendations": recommendations},
                "path": ["dashboard"],
                "label": "recommendations"
            }],
            "hasNext": false
        })
    );
    assert!(parts.next().await.is_none());
}

#[tokio::test]
async fn incremental_spec_v0_2_announces_pending_and_completes_by_id() {
    let app = spawn_app().await;
    let expected = whole(&app, None, DASHBOARD_WHOLE, json!({})).await;
    let parts = Parts::open(&app, V0_2_ACCEPT, DASHBOARD, json!({})).await;
    let content_type = parts.response.headers()["content-type"].clone();
    assert!(
        content_type
            .to_str()
            .unwrap()
            .contains("incrementalSpec=v0.2")
    );
    assert_eq!(
        parts.all().await,
        [
            json!({
                "data": {"dashboard": {"user": {"id": "u1", "name": "Ada Lovelace"}}},
                "pending": [{"id": "0", "path": ["dashboard"], "label": "recommendations"}],
                "hasNext": true
            }),
            json!({
                "incremental": [{
                    "id": "0",
                    "data": {"recommendations": expected["data"]["dashboard"]["recommendations"]}
                }],
                "completed": [{"id": "0"}],
                "hasNext": false
            }),
        ]
    );
}

#[tokio::test]
async fn without_multipart_accept_the_response_is_whole_and_the_same() {
    let app = spawn_app().await;
    let expected = whole(&app, None, DASHBOARD_WHOLE, json!({})).await;
    for accept in [
        None,
        Some("application/json"),
        Some("application/graphql-response+json"),
    ] {
        let response = whole(&app, accept, DASHBOARD, json!({})).await;
        assert_eq!(response, expected, "Accept: {accept:?}");
    }
}

#[tokio::test]
async fn defer_if_false_is_not_deferred() {
    let app = spawn_app().await;
    let expected = whole(&app, None, DASHBOARD_WHOLE, json!({})).await;
    let query = "query Dashboard($defer: Boolean!) { dashboard { user { id name } \
        ... @defer(if: $defer) { recommendations(first: 3) { score product { id name } } } } }";
    let response = whole(&app, Some(APOLLO_ACCEPT), query, json!({"defer": false})).await;
    assert_eq!(response, expected);
    let literal = DASHBOARD.replace("@defer(", "@defer(if: false, ");
    let response = whole(&app, Some(APOLLO_ACCEPT), &literal, json!({})).await;
    assert_eq!(response, expected);
    // The same query with the variable true is deferred.
    let parts = Parts::open(&app, APOLLO_ACCEPT, query, json!({"defer": true})).await;
    assert_eq!(parts.all().await.len(), 2);
}

#[tokio::test]
async fn product_lookups_batch_across_parts() {
    let app = spawn_app().await;
    let query = "{ a: product(id: \"p1\") { id name } \
        ... @defer { b: product(id: \"p2\") { id name } } \
        ...Later @defer(label: \"later\") } \
        fragment Later on Query { c: product(id: \"p3\") { id } }";
    let parts = Parts::open(&app, APOLLO_ACCEPT, query, json!({}))
        .await
        .all()
        .await;
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert_eq!(parts[0]["data"]["a"]["id"], "p1");
    assert_eq!(parts[0]["hasNext"], true);
    // One product call for all three parts.
    let batches = app.product_batches();
    assert_eq!(batches.len(), 1, "{batches:?}");
    let mut delivered: Vec<Value> = parts[1..]
        .iter()
        .flat_map(|part| part["incremental"].as_array().unwrap().clone())
        .collect();
    delivered.sort_by_key(|entry| entry["data"].to_string());
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert_eq!(delivered[0]["data"]["b"]["id"], "p2");
    assert!(delivered[0]["data"]["b"]["name"].is_string());
    assert_eq!(delivered[0]["path"], json!([]));
    assert_eq!(
        delivered[1],
        json!({"data": {"c": {"id": "p3"}}, "path": [], "label": "later"})
    );
    assert_eq!(parts[2]["hasNext"], false);
}

#[tokio::test]
async fn an_error_in_a_deferred_part_lands_at_its_path() {
    let app = spawn_app().await;
    app.services
        .recommendation
        .control
        .set_fault(Fault::new("/").status(503));
    let parts = Parts::open(&app, APOLLO_ACCEPT, DASHBOARD, json!({}))
        .await
        .all()
        .await;
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0]["data"]["dashboard"]["user"]["id"], "u1",
        "{}",
        parts[0]
    );
    assert!(parts[0].get("errors").is_none(), "{}", parts[0]);
    let entry = &parts[1]["incremental"][0];
    assert_eq!(entry["path"], json!(["dashboard"]));
    assert_eq!(entry["data"], json!({"recommendations": null}));
    let errors = entry["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{entry}");
    assert_eq!(errors[0]["path"], json!(["dashboard", "recommendations"]));
    assert_eq!(errors[0]["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
}

#[tokio::test]
async fn a_fragment_under_a_list_is_delivered_per_item() {
    let app = spawn_app().await;
    let whole_query = "{ dashboard { orders(first: 2) { id items { quantity } } } }";
    let expected = whole(&app, None, whole_query, json!({})).await;
    let query = "{ dashboard { orders(first: 2) { id ... @defer { items { quantity } } } } }";
    let parts = Parts::open(&app, APOLLO_ACCEPT, query, json!({}))
        .await
        .all()
        .await;
    assert_eq!(parts.len(), 2);
    let orders = expected["data"]["dashboard"]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    let ids: Vec<Value> = orders
        .iter()
        .map(|order| json!({"id": order["id"]}))
        .collect();
    assert_eq!(parts[0]["data"]["dashboard"]["orders"], json!(ids));
    let entries: Vec<Value> = orders
        .iter()
        .enumerate()
        .map(|(index, order)| {
            json!({
                "data": {"items": order["items"]},
                "path": ["dashboard", "orders", index]
            })
        })
        .collect();
    assert_eq!(parts[1]["incremental"], json!(entries));
}

#[tokio::test]
async fn the_limits_count_deferred_fields() {
    let app = spawn_app_with(|config| config.graphql.max_cost = 20).await;
    let query = "{ product(id: \"p1\") { id } \
        ... @defer { dashboard { recommendations(first: 50) { score product { id } } } } }";
    let response = whole(&app, Some(APOLLO_ACCEPT), query, json!({})).await;
    let error = only_error(&response);
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{response}");
    assert_eq!(app.downstream_total(), 0);
    // Without the deferred fields, the same query runs.
    let response = whole(
        &app,
        Some(APOLLO_ACCEPT),
        "{ product(id: \"p1\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(data(&response)["product"]["id"], "p1");
}

#[tokio::test]
async fn an_invalid_deferred_fragment_fails_the_whole_request_before_anything_runs() {
    let app = spawn_app().await;
    let query = "{ product(id: \"p1\") { id ... @defer { noSuchField } } }";
    for accept in [APOLLO_ACCEPT, V0_2_ACCEPT, "application/json"] {
        let response = whole(&app, Some(accept), query, json!({})).await;
        let error = only_error(&response);
        assert!(
            error["message"].as_str().unwrap().contains("noSuchField"),
            "{response}"
        );
        assert!(response.get("data").is_none_or(Value::is_null));
    }
    assert_eq!(app.downstream_total(), 0);
    // @defer on a field is not where the directive may go.
    let query = "{ product(id: \"p1\") @defer { id } }";
    let response = whole(&app, Some(APOLLO_ACCEPT), query, json!({})).await;
    assert!(
        only_error(&response)["message"]
            .as_str()
            .unwrap()
            .contains("defer")
    );
    assert_eq!(app.downstream_total(), 0);
}

/// Runs `script` of the Node package `package` (an Apollo Client) against
/// the web BFF, the recommendation service slow enough that the deferred
/// part cannot come with the initial one; its output. `None` when the
/// package is not installed (skipped loudly; failed under CI).
async fn run_apollo_defer_check(package: &str, check: &str, script: &str) -> Option<String> {
    let apollo = testkit::node::NodePackage::new(package);
    if !apollo.ready(check, &["@apollo/client"], None) {
        return None;
    }
    let app = spawn_app().await;
    app.services
        .recommendation
        .control
        .set_fault(Fault::new("/").latency(300));
    let (url, token) = (app.url("/graphql"), app.token("u1"));
    Some(
        apollo
            .run(check, script, vec![url, token], Vec::new())
            .await,
    )
}

/// Apollo Client (3.14, `tests/defer-client/defer.mjs`) runs the dashboard
/// with `@defer` through its HttpLink and cache (`deferSpec=20220824`): it
/// sees the initial result first, then the completed one. Needs Node and
/// `npm ci --prefix tests/defer-client` (`.ci/run` does it).
#[tokio::test]
async fn apollo_client_gets_the_initial_then_the_completed_result() {
    let check = "Apollo Client 3 @defer check";
    if let Some(stdout) = run_apollo_defer_check("defer-client", check, "defer.mjs").await {
        assert!(stdout.contains("ok: initial result, then the completed one"));
    }
}

/// Apollo Client 4 with its `GraphQL17Alpha9Handler` asks for
/// `incrementalSpec=v0.2` (`pending`, `incremental` by id, `completed`) and
/// merges what it gets: the initial result first, then the completed one
/// (`tests/live-clients/defer-v02.mjs`; `npm ci --prefix tests/live-clients`).
#[tokio::test]
async fn apollo_client_4_gets_the_v0_2_format_initial_then_completed() {
    let check = "Apollo Client 4 @defer (v0.2) check";
    if let Some(stdout) = run_apollo_defer_check("live-clients", check, "defer-v02.mjs").await {
        assert!(
            stdout.contains("ok: initial result, then the completed one (incrementalSpec=v0.2)")
        );
    }
}

/// A part re-runs the fields on the way to its fragment: a mutation's
/// `@defer` is delivered inline, so it runs once.
#[tokio::test]
async fn a_mutation_with_defer_runs_once_and_answers_whole() {
    let app = spawn_app().await;
    let query =
        "mutation { addToWishlist(productId: \"p9\") { id ... @defer { name inWishlist } } }";
    let response = whole(&app, Some(APOLLO_ACCEPT), query, json!({})).await;
    let added = &data(&response)["addToWishlist"];
    assert_eq!(added["id"], "p9");
    assert_eq!(added["inWishlist"], true);
    assert!(added["name"].is_string());
    let writes: Vec<_> = app
        .downstream_requests()
        .into_iter()
        .filter(|request| !request.route.starts_with("GET "))
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
}

/// The front door's request timeout bounds the response head (the initial
/// payload); the deferred part is bounded by the same request's downstream
/// deadline, so a part stuck on a slow service ends with an error at its
/// path and the body still closes properly.
#[tokio::test]
async fn a_part_past_the_request_deadline_ends_with_an_error_and_the_body_closes() {
    let app = spawn_app_with(|config| config.request_timeout_ms = 1_000).await;
    app.services
        .recommendation
        .control
        .set_fault(Fault::new("/").latency(5_000));
    let mut parts = Parts::open(&app, APOLLO_ACCEPT, DASHBOARD, json!({})).await;
    let first = parts.next().await.unwrap();
    assert_eq!(first.json["data"]["dashboard"]["user"]["id"], "u1");
    let second = parts.next().await.unwrap();
    eprintln!("deferred part after {:?}: {}", second.after, second.json);
    // Well before the service would have answered.
    assert!(
        second.after < Duration::from_millis(4_000),
        "{:?}",
        second.after
    );
    let entry = &second.json["incremental"][0];
    assert_eq!(entry["path"], json!(["dashboard"]));
    assert_eq!(entry["data"], json!({"recommendations": null}));
    assert_eq!(
        entry["errors"][0]["path"],
        json!(["dashboard", "recommendations"])
    );
    assert_eq!(
        entry["errors"][0]["extensions"]["code"],
        "DOWNSTREAM_TIMEOUT"
    );
    assert_eq!(second.json["hasNext"], false);
    // The closing delimiter came (`next` panics on a body cut short).
    assert!(parts.next().await.is_none());
}

/// Stale copies served to a deferred part are named, by response path, in
/// the last payload's `extensions.stale` (the whole response's list).
#[tokio::test]
async fn stale_copies_in_a_deferred_part_are_named_in_the_last_payload() {
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 50).await;
    let query = "{ a: product(id: \"p1\") { id name } \
        ... @defer { b: product(id: \"p2\") { id name } } }";
    let fresh = Parts::open(&app, APOLLO_ACCEPT, query, json!({}))
        .await
        .all()
        .await;
    assert!(
        fresh.iter().all(|part| part.get("extensions").is_none()),
        "{fresh:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    let stale = Parts::open(&app, APOLLO_ACCEPT, query, json!({}))
        .await
        .all()
        .await;
    assert_eq!(stale.len(), 2);
    assert_eq!(stale[0]["data"], fresh[0]["data"]);
    assert_eq!(stale[1]["incremental"], fresh[1]["incremental"]);
    assert!(stale.iter().all(|part| part.get("errors").is_none()));
    assert_eq!(stale[1]["extensions"]["stale"], json!([["a"], ["b"]]));
}
