//! Same speed rules as the web BFF, proven with devstack's request counters:
//! lazy (nothing unrequested is fetched), batched, cached and parallel.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use devstack_services::Fault;
use serde_json::json;

use crate::helpers::{DASHBOARD, data, spawn_app};

#[tokio::test]
async fn the_dashboard_fetches_only_the_selected_parts() {
    let cases: [(&str, &[&str]); 6] = [
        ("__typename", &[]),
        ("notificationsCount", &["GET /users"]),
        ("user { name }", &["GET /users"]),
        ("user { avatarUrl } notificationsCount", &["GET /users"]),
        ("recentOrders { id }", &["GET /users/{id}/orders"]),
        (
            "user { name } recentOrders { date } notificationsCount",
            &["GET /users", "GET /users/{id}/orders"],
        ),
    ];
    for (selection, routes) in cases {
        // A fresh app each time: the user cache must not hide a call.
        let app = spawn_app().await;
        let response = app
            .query_as(
                "u1",
                &format!("{{ dashboard {{ {selection} }} }}"),
                json!({}),
            )
            .await;
        data(&response);
        assert_eq!(app.downstream_routes(), routes, "{selection}");
    }
}

#[tokio::test]
async fn skipped_parts_and_fragments_are_followed() {
    let app = spawn_app().await;
    let response = app
        .query_as(
            "u1",
            "query($no: Boolean!) { dashboard {
                notificationsCount
                recentOrders @include(if: $no) { id }
                user @skip(if: true) { name }
            } }",
            json!({ "no": false }),
        )
        .await;
    assert_eq!(
        data(&response)["dashboard"],
        json!({ "notificationsCount": 3 })
    );
    assert_eq!(app.downstream_routes(), ["GET /users"]);

    let app = spawn_app().await;
    let response = app
        .query_as(
            "u1",
            "query { dashboard { ...Orders } } fragment Orders on MobileDashboard { recentOrders { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&response)["dashboard"]["recentOrders"][0]["id"], "o14");
    assert_eq!(app.downstream_routes(), ["GET /users/{id}/orders"]);
}

#[tokio::test]
async fn a_page_number_alone_calls_nothing() {
    let app = spawn_app().await;
    let response = app
        .query(
            "{ products(categoryId: \"home\", page: 3) { page } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&response)["products"], json!({ "page": 3 }));
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn product_views_are_batched_and_cached() {
    let app = spawn_app().await;
    let query = "{ a: product(id: \"p1\") { name } b: product(id: \"p6\") { price }
                   c: product(id: \"p21\") { summary } d: product(id: \"p1\") { rating } }";
    let response = app.query(query, json!({})).await;
    assert_eq!(data(&response)["b"]["price"], "$12.99");
    // One call for all of them, each id once; nothing else.
    assert_eq!(app.downstream_routes(), ["GET /products"]);
    let batch = &app.services.product.control.requests()[0];
    let ids: BTreeSet<&str> = batch.ids.iter().map(String::as_str).collect();
    assert_eq!(ids, BTreeSet::from(["p1", "p21", "p6"]));
    assert_eq!(batch.ids.len(), 3);

    // The next request is served from the BFF's cache.
    app.services.reset();
    let response = app.query(query, json!({})).await;
    data(&response);
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn the_viewer_is_cached_between_dashboards() {
    let app = spawn_app().await;
    for _ in 0..3 {
        let response = app.query_as("u1", DASHBOARD, json!({})).await;
        data(&response);
    }
    assert_eq!(app.services.user.control.count("GET /users"), 1);
    // Orders change: fetched every time.
    assert_eq!(
        app.services.order.control.count("GET /users/{id}/orders"),
        3
    );
}

#[tokio::test]
async fn the_dashboard_parts_are_fetched_in_parallel() {
    let app = spawn_app().await;
    for service in [&app.services.user, &app.services.order] {
        service.control.set_fault(Fault::new("/").latency(300));
    }
    let started = Instant::now();
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    let took = started.elapsed();
    data(&response);
    // One after the other would take 600 ms or more.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(550), "{took:?}");
}
