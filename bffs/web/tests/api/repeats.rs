//! A request the BFF has seen pass validation before skips the limits and
//! full validation the second time (the endpoint's fast path): the repeat
//! must answer exactly as the first time (data, errors, paths) and make the
//! same downstream calls.

use devstack_services::Fault;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

/// Aliases, `__typename` at the root and below, fragments on the root and
/// on the dashboard, `@skip`/`@include` by variable, a variable with a
/// default, and an argument by variable.
const DASHBOARD: &str = "query Dash($orders: Int = 3, $withAnalytics: Boolean!, $noUser: Boolean!) {
    __typename
    ...Board
    ... on Query { kind: __typename }
}
fragment Board on Query {
    board: dashboard {
        __typename
        user @skip(if: $noUser) { name avatarUrl membershipLevel loyaltyPoints }
        orders(first: $orders) { id status date total { formatted } itemsCount trackingNumber
            items { quantity product { id name thumbnailUrl } } }
        ... on WebDashboard { recommendations(first: 2) { score reason product { id name price { formatted } } } }
        analytics @include(if: $withAnalytics) { totalSpent { formatted } ordersThisMonth favoriteCategories }
    }
}";

/// The app with caches off, so every request makes every call.
async fn uncached_app() -> TestApp {
    spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await
}

/// The answer to each of `times` identical requests as `u1`, with the
/// downstream calls each made.
async fn repeated(app: &TestApp, query: &str, variables: Value, times: usize) -> Vec<(Value, u64)> {
    let mut answers = Vec::new();
    for _ in 0..times {
        let before = app.downstream_total();
        let answer = app.query_as("u1", query, variables.clone()).await;
        answers.push((answer, app.downstream_total() - before));
    }
    answers
}

fn assert_all_equal(answers: &[(Value, u64)]) {
    let (first, first_calls) = &answers[0];
    for (index, (answer, calls)) in answers.iter().enumerate().skip(1) {
        assert_eq!(answer, first, "request {index} answered differently");
        assert_eq!(calls, first_calls, "request {index} made other calls");
    }
}

#[tokio::test]
async fn a_repeated_dashboard_answers_exactly_as_the_first_time() {
    let app = uncached_app().await;
    for variables in [
        json!({ "withAnalytics": true, "noUser": false }),
        json!({ "withAnalytics": false, "noUser": true, "orders": 1 }),
    ] {
        let answers = repeated(&app, DASHBOARD, variables.clone(), 3).await;
        assert_all_equal(&answers);
        let (answer, calls) = &answers[0];
        assert!(answer.get("errors").is_none(), "{answer}");
        let data = &answer["data"];
        assert_eq!(data["__typename"], "Query");
        assert_eq!(data["kind"], "Query");
        let board = &data["board"];
        assert_eq!(board["__typename"], "WebDashboard");
        assert_eq!(board["recommendations"].as_array().unwrap().len(), 2);
        assert_eq!(board["orders"][0]["id"], "o14");
        assert_eq!(board["orders"][0]["date"], "November 25, 2026");
        if variables["noUser"] == true {
            assert!(board.get("user").is_none(), "{board}");
            assert!(board.get("analytics").is_none(), "{board}");
            assert_eq!(board["orders"].as_array().unwrap().len(), 1);
            // orders, recommendations, one product batch: no user, no analytics.
            assert_eq!(*calls, 3);
        } else {
            assert_eq!(board["user"]["name"], "Ada Lovelace");
            assert_eq!(board["analytics"]["ordersThisMonth"], 3);
            assert_eq!(board["orders"].as_array().unwrap().len(), 3);
            assert_eq!(*calls, 5);
        }
    }
}

#[tokio::test]
async fn a_repeated_dashboard_with_a_failed_part_reports_it_and_fetches_once() {
    let app = uncached_app().await;
    // 400: not retried, so each request calls the service exactly once.
    app.services
        .recommendation
        .control
        .set_fault(Fault::new("/").status(400));
    let variables = json!({ "withAnalytics": true, "noUser": false });
    let answers = repeated(&app, DASHBOARD, variables, 3).await;
    assert_all_equal(&answers);
    let (answer, calls) = &answers[0];
    assert!(
        answer["data"]["board"]["recommendations"].is_null(),
        "{answer}"
    );
    assert_eq!(answer["data"]["board"]["user"]["name"], "Ada Lovelace");
    assert_eq!(
        answer["errors"][0]["path"],
        json!(["board", "recommendations"])
    );
    // user, orders, recommendations (failed), analytics, one product batch.
    assert_eq!(*calls, 5);
}

#[tokio::test]
async fn a_repeated_dashboard_needing_more_than_was_loaded_fetches_the_rest_once() {
    let app = uncached_app().await;
    // Addresses come with the profile as it was loaded.
    let query = "{ dashboard { user { name addresses { city } } orders(first: 2) { id } } }";
    let answers = repeated(&app, query, json!({}), 3).await;
    assert_all_equal(&answers);
    let (answer, calls) = &answers[0];
    assert!(answer.get("errors").is_none(), "{answer}");
    assert!(answer["data"]["dashboard"]["user"]["addresses"].is_array());
    // user (with addresses), orders.
    assert_eq!(*calls, 2);

    // A bad argument is reported the same every time, after the same calls.
    let query = "{ dashboard { orders(first: 51) { id } } }";
    let answers = repeated(&app, query, json!({}), 3).await;
    assert_all_equal(&answers);
    assert_eq!(
        answers[0].0["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn repeated_requests_with_several_root_fields_answer_as_before() {
    let app = uncached_app().await;
    // Another root field next to the dashboard.
    let query = "{ me { name } dashboard { orders(first: 1) { id } } }";
    let answers = repeated(&app, query, json!({}), 3).await;
    assert_all_equal(&answers);
    assert_eq!(answers[0].0["data"]["me"]["name"], "Ada Lovelace");
    assert_eq!(answers[0].0["data"]["dashboard"]["orders"][0]["id"], "o14");

    // Signed out: UNAUTHENTICATED every time, and nothing called.
    let query = "{ dashboard { orders { id } } }";
    for _ in 0..3 {
        let before = app.downstream_total();
        let answer = app.query(query, json!({})).await;
        assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(app.downstream_total(), before);
    }

    // One operation of several, picked by name.
    let query = "query A { dashboard { orders(first: 1) { id } } } query B { me { name } }";
    for operation in ["A", "B", "A"] {
        let token = app.token("u1");
        let answer = app
            .graphql_request(query, json!({}), Some(&token))
            .json(&json!({ "query": query, "operationName": operation }))
            .send()
            .await
            .unwrap();
        let answer: Value = answer.json().await.unwrap();
        assert!(answer.get("errors").is_none(), "{answer}");
        let expected = if operation == "A" { "dashboard" } else { "me" };
        assert!(answer["data"].get(expected).is_some(), "{answer}");
    }
}
