//! Why the BFF exists: lazy, batched, cached and concurrent downstream calls,
//! proven with devstack's request counters (and one wall-clock bound).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use devstack_services::Fault;
use futures::future::join_all;
use serde_json::json;

use crate::helpers::{TestApp, data, seed, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_product_name_costs_one_batched_product_call() {
    let app = spawn_app().await;
    for user in [None, Some("u1")] {
        app.services.reset();
        let query = "{ product(id: \"p1\") { name } }";
        let response = match user {
            None => app.query(query, json!({})).await,
            Some(user) => app.query_as(user, query, json!({})).await,
        };
        assert_eq!(
            data(&response)["product"]["name"],
            "Wireless Noise-Cancelling Headphones"
        );
        let product = &app.services.product.control;
        if user.is_none() {
            assert_eq!(product.count("GET /products"), 1);
            assert_eq!(app.product_batches()[0].ids, ["p1"]);
        } else {
            // Cached by the first round.
            assert_eq!(product.count("GET /products"), 0);
        }
        assert_eq!(product.total(), product.count("GET /products"), "{user:?}");
        assert_eq!(product.count("GET /products/{id}"), 0);
        assert_eq!(product.count("GET /products/{id}/reviews"), 0);
        assert_eq!(product.count("GET /products/{id}/related"), 0);
        for service in [
            &app.services.user,
            &app.services.order,
            &app.services.recommendation,
            &app.services.device,
        ] {
            assert_eq!(
                service.control.total(),
                0,
                "{:?} ({user:?})",
                service.service
            );
        }
    }
}

#[tokio::test]
async fn each_product_field_calls_only_its_own_route() {
    let app = spawn_app().await;
    let cases: [(&str, &str); 4] = [
        ("reviews { id }", "GET /products/{id}/reviews"),
        ("relatedProducts { id }", "GET /products/{id}/related"),
        ("inWishlist", "GET /users/{id}/wishlist"),
        (
            "personalizedRecommendations { id }",
            "GET /products/{id}/similar",
        ),
    ];
    for (field, route) in cases {
        app.services.reset();
        let query = format!("{{ product(id: \"p1\") {{ {field} }} }}");
        // `GET /products` (p1 itself, the products a list shows) is left out.
        let response = app.query_as("u1", &query, json!({})).await;
        data(&response);
        let calls: Vec<String> = app
            .downstream_requests()
            .into_iter()
            .map(|r| r.route)
            .filter(|r| r != "GET /products")
            .collect();
        assert_eq!(calls, [route], "{field}");
    }
}

#[tokio::test]
async fn the_dashboard_fetches_only_the_selected_parts() {
    let app = spawn_app().await;
    let cases: [(&str, &[&str]); 5] = [
        (
            "analytics { ordersThisMonth }",
            &["GET /users/{id}/analytics"],
        ),
        ("user { name }", &["GET /users"]),
        (
            "orders { id items { quantity } }",
            &["GET /users/{id}/orders"],
        ),
        (
            "recommendations { score }",
            &["GET /users/{id}/recommendations"],
        ),
        (
            "orders { id } recommendations { reason }",
            &["GET /users/{id}/orders", "GET /users/{id}/recommendations"],
        ),
    ];
    for (selection, routes) in cases {
        // A fresh app each time: the user cache must not hide a call.
        let app_case = spawn_app().await;
        let response = app_case
            .query_as(
                "u1",
                &format!("{{ dashboard {{ {selection} }} }}"),
                json!({}),
            )
            .await;
        data(&response);
        let mut calls: Vec<String> = app_case
            .downstream_requests()
            .into_iter()
            .map(|r| r.route)
            .collect();
        calls.sort();
        assert_eq!(calls, routes, "{selection}");
    }
    // Fragments count as selections too.
    let response = app
        .query_as(
            "u1",
            "query { dashboard { ...Parts } } fragment Parts on WebDashboard { analytics { ordersThisMonth } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&response)["dashboard"]["analytics"]["ordersThisMonth"],
        3
    );
    assert_eq!(app.downstream_total(), 1);

    // Parts left out by @skip / @include are not fetched either.
    app.services.reset();
    let response = app
        .query_as(
            "u1",
            "query($no: Boolean!) { dashboard {
                analytics { ordersThisMonth }
                orders @include(if: $no) { items { product { id } } }
                recommendations @skip(if: true) { score }
            } }",
            json!({ "no": false }),
        )
        .await;
    assert_eq!(
        data(&response)["dashboard"],
        json!({ "analytics": { "ordersThisMonth": 3 } })
    );
    assert_eq!(app.downstream_total(), 1);
}

const FULL_DASHBOARD: &str = "{ dashboard {
    user { name }
    orders { id items { quantity product { id name } } }
    recommendations { score product { id name } }
    analytics { ordersThisMonth }
} }";

/// The products u1's dashboard shows: lines of the 10 newest orders and
/// the 10 best recommendations.
fn u1_dashboard_products() -> BTreeSet<String> {
    let seed = seed();
    let mut orders: Vec<_> = seed.orders.iter().filter(|o| o.user_id == "u1").collect();
    orders.sort_by_key(|o| std::cmp::Reverse(o.created_at));
    let mut recs = seed.recommendations["u1"].clone();
    recs.sort_by(|a, b| b.score.total_cmp(&a.score));
    orders
        .iter()
        .take(10)
        .flat_map(|o| o.items.iter().map(|i| i.product_id.to_string()))
        .chain(recs.iter().take(10).map(|r| r.product_id.to_string()))
        .collect()
}

async fn assert_dashboard_is_one_round_then_one_batch(app: &TestApp) {
    let response = app.query_as("u1", FULL_DASHBOARD, json!({})).await;
    let dashboard = &data(&response)["dashboard"];
    assert_eq!(dashboard["orders"].as_array().unwrap().len(), 10);
    assert_eq!(dashboard["recommendations"].as_array().unwrap().len(), 10);

    let batches = app.product_batches();
    assert_eq!(batches.len(), 1, "{batches:#?}");
    let ids = &batches[0].ids;
    let distinct: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(distinct.len(), ids.len(), "duplicate ids in {ids:?}");
    assert_eq!(distinct, u1_dashboard_products());
    // p6 is on two orders (o11, o14), yet asked for once.
    assert!(distinct.contains("p6"));

    let calls =
        |service: &devstack_services::ServiceHandle, route: &str| service.control.count(route);
    assert_eq!(calls(&app.services.order, "GET /users/{id}/orders"), 1);
    assert_eq!(
        calls(
            &app.services.recommendation,
            "GET /users/{id}/recommendations"
        ),
        1
    );
    assert_eq!(calls(&app.services.user, "GET /users/{id}/analytics"), 1);
    assert_eq!(calls(&app.services.user, "GET /users"), 1);
    assert_eq!(app.services.product.control.total(), 1);
    assert_eq!(app.downstream_total(), 5);
}

#[tokio::test]
async fn the_dashboard_batches_all_its_products_into_one_call() {
    let app = spawn_app().await;
    assert_dashboard_is_one_round_then_one_batch(&app).await;
}

#[tokio::test]
async fn the_dashboard_batches_without_the_cache_too() {
    // TTL 0 turns the entity caches off: one call must come from the loader.
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    assert_dashboard_is_one_round_then_one_batch(&app).await;
    // And without a cache the next request asks again, in one batch again.
    app.services.reset();
    assert_dashboard_is_one_round_then_one_batch(&app).await;
}

#[tokio::test]
async fn sibling_product_fields_share_one_batch() {
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    let response = app
        .query(
            "{ a: product(id: \"p1\") { name } b: product(id: \"p2\") { name }
               c: product(id: \"p3\") { name } again: product(id: \"p1\") { id }
               none: product(id: \"p999\") { id } }",
            json!({}),
        )
        .await;
    let found = data(&response);
    assert_eq!(found["c"]["name"], "4K Ultra HD Smart Television, 55-inch");
    assert_eq!(found["again"]["id"], "p1");
    assert!(found["none"].is_null());
    let batches = app.product_batches();
    assert_eq!(batches.len(), 1, "{batches:#?}");
    let ids: BTreeSet<&str> = batches[0].ids.iter().map(String::as_str).collect();
    assert_eq!(ids, BTreeSet::from(["p1", "p2", "p3", "p999"]));
    assert_eq!(batches[0].ids.len(), 4);
    assert_eq!(app.services.product.control.count("GET /products/{id}"), 0);
}

#[tokio::test]
async fn a_second_identical_query_is_served_from_the_cache() {
    let app = spawn_app().await;
    let query = "{ product(id: \"p3\") { name price { formatted } } me { name } }";
    let first = app.query_as("u1", query, json!({})).await;
    assert_eq!(app.services.product.control.count("GET /products"), 1);
    assert_eq!(app.services.user.control.count("GET /users"), 1);
    app.services.reset();
    let second = app.query_as("u1", query, json!({})).await;
    assert_eq!(first, second);
    assert_eq!(data(&second)["product"]["price"]["formatted"], "$1,234.50");
    assert_eq!(app.services.product.control.total(), 0);
    assert_eq!(app.services.user.control.total(), 0);
}

#[tokio::test]
async fn with_a_zero_ttl_nothing_is_cached() {
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    let query = "{ product(id: \"p3\") { name } }";
    app.query(query, json!({})).await;
    app.query(query, json!({})).await;
    assert_eq!(app.services.product.control.count("GET /products"), 2);
}

#[tokio::test]
async fn cached_entities_expire_after_the_ttl() {
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 200).await;
    let query = "{ product(id: \"p3\") { name } me { name } }";
    app.query_as("u1", query, json!({})).await;
    app.query_as("u1", query, json!({})).await;
    assert_eq!(app.services.product.control.count("GET /products"), 1);
    assert_eq!(app.services.user.control.count("GET /users"), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    app.query_as("u1", query, json!({})).await;
    assert_eq!(app.services.product.control.count("GET /products"), 2);
    assert_eq!(app.services.user.control.count("GET /users"), 2);
}

#[tokio::test]
async fn concurrent_identical_queries_share_one_call() {
    let app = spawn_app().await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").latency(100));
    let query = "{ product(id: \"p1\") { name } }";
    let responses = join_all((0..10).map(|_| app.query(query, json!({})))).await;
    for response in &responses {
        assert_eq!(
            data(response)["product"]["name"],
            "Wireless Noise-Cancelling Headphones"
        );
    }
    assert_eq!(app.services.product.control.count("GET /products"), 1);

    // Different products requested concurrently: each is fetched once, and
    // the requests do not wait for each other's products.
    app.services.reset();
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").latency(100));
    let queries: Vec<String> = (0..10)
        .map(|i| format!("{{ product(id: \"p{}\") {{ id }} }}", 11 + i % 5))
        .collect();
    let responses = join_all(queries.iter().map(|q| app.query(q, json!({})))).await;
    for (query, response) in queries.iter().zip(&responses) {
        assert!(data(response)["product"]["id"].is_string(), "{query}");
    }
    let fetched: Vec<String> = app
        .product_batches()
        .into_iter()
        .flat_map(|r| r.ids)
        .collect();
    let distinct: BTreeSet<&String> = fetched.iter().collect();
    assert_eq!(distinct.len(), 5);
    assert_eq!(
        fetched.len(),
        5,
        "some product was fetched twice: {fetched:?}"
    );
}

#[tokio::test]
async fn the_dashboards_first_round_runs_concurrently() {
    // No cache, so each of the three services is really called.
    let app = spawn_app_with(|config| config.downstream.cache.ttl_ms = 0).await;
    let query = "{ dashboard { user { name } orders { id } recommendations { score } } }";
    // Warm up connections to every service before measuring.
    data(&app.query_as("u1", query, json!({})).await);
    app.services.reset();
    for service in [
        &app.services.user,
        &app.services.order,
        &app.services.recommendation,
    ] {
        service.control.set_fault(Fault::new("/").latency(200));
    }

    let started = Instant::now();
    let response = app.query_as("u1", query, json!({})).await;
    let elapsed = started.elapsed();
    let dashboard = &data(&response)["dashboard"];
    assert_eq!(dashboard["user"]["name"], "Ada Lovelace");
    assert_eq!(dashboard["orders"].as_array().unwrap().len(), 10);
    assert_eq!(dashboard["recommendations"].as_array().unwrap().len(), 10);
    for service in [
        &app.services.user,
        &app.services.order,
        &app.services.recommendation,
    ] {
        assert_eq!(service.control.total(), 1, "{:?}", service.service);
    }
    // Sequential calls would take 600 ms; concurrent ones about 200 ms.
    assert!(
        elapsed >= Duration::from_millis(200),
        "faster than the injected latency: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(300),
        "dashboard took {elapsed:?}: its first round is not concurrent"
    );
}
