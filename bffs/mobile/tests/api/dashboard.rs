//! The dashboard: shaped for the phone, the viewer from the token only, each
//! part failing on its own, and only the selected parts fetched.

use devstack_services::Fault;
use devstack_services::TokenKind;
use serde_json::{Value, json};

use crate::helpers::{
    DASHBOARD, assert_failed, data, error_at, error_codes, errors, header, json_200, only_error,
    seed, spawn_app, token, usd,
};

/// u1's 3 newest orders as the dashboard shows them, derived from the seed.
fn recent_orders(user_id: &str) -> Value {
    let seed = seed();
    let mut orders: Vec<_> = seed
        .orders
        .iter()
        .filter(|o| o.user_id == user_id)
        .collect();
    orders.sort_by_key(|o| std::cmp::Reverse(o.created_at));
    orders
        .iter()
        .take(3)
        .map(|order| {
            let status = serde_json::to_value(order.status).unwrap();
            json!({
                "id": order.id,
                "status": status.as_str().unwrap().to_uppercase(),
                "total": usd(order.total_cents),
                "date": order.created_at.format("%m/%d").to_string(),
            })
        })
        .collect()
}

#[tokio::test]
async fn the_dashboard_is_shaped_for_the_phone() {
    let app = spawn_app().await;
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    assert_eq!(
        data(&response)["dashboard"],
        json!({
            "user": {
                "name": "Ada Lovelace",
                "avatarUrl": "https://cdn.example.com/avatars/u1/thumb.jpg",
            },
            "recentOrders": [
                { "id": "o14", "status": "PLACED", "total": "$217.51", "date": "11/25" },
                { "id": "o13", "status": "PAID", "total": usd(seed().order("o13").unwrap().total_cents), "date": "11/17" },
                { "id": "o12", "status": "SHIPPED", "total": usd(seed().order("o12").unwrap().total_cents), "date": "11/03" },
            ],
            "notificationsCount": 3,
        })
    );
    assert_eq!(
        data(&response)["dashboard"]["recentOrders"],
        recent_orders("u1")
    );
}

#[tokio::test]
async fn the_order_service_is_asked_for_3_orders() {
    let app = spawn_app().await;
    let response = app
        .query_as("u1", "{ dashboard { recentOrders { id } } }", json!({}))
        .await;
    assert_eq!(
        data(&response)["dashboard"]["recentOrders"],
        json!([{ "id": "o14" }, { "id": "o13" }, { "id": "o12" }])
    );
    let calls = app.services.order.control.requests();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].route, "GET /users/{id}/orders");
    assert_eq!(calls[0].path, "/users/u1/orders");
    assert_eq!(calls[0].query.as_deref(), Some("limit=3"));
    assert_eq!(calls[0].user_id.as_deref(), Some("u1"));
}

#[tokio::test]
async fn every_user_gets_their_own_dashboard() {
    let app = spawn_app().await;
    for (user, name, unread) in [
        ("u2", "Grace Hopper", 0),
        ("u3", "Alan Turing", 1),
        ("u4", "Katherine Johnson", 12),
    ] {
        let response = app.query_as(user, DASHBOARD, json!({})).await;
        let dashboard = &data(&response)["dashboard"];
        assert_eq!(dashboard["user"]["name"], name);
        assert_eq!(
            dashboard["user"]["avatarUrl"],
            format!("https://cdn.example.com/avatars/{user}/thumb.jpg")
        );
        assert_eq!(dashboard["notificationsCount"], unread);
        assert_eq!(dashboard["recentOrders"], recent_orders(user), "{user}");
    }
    // u4 has no orders: an empty list, not null.
    let response = app
        .query_as("u4", "{ dashboard { recentOrders { id } } }", json!({}))
        .await;
    assert_eq!(data(&response)["dashboard"]["recentOrders"], json!([]));
}

#[tokio::test]
async fn the_dashboard_needs_a_signed_in_person() {
    let app = spawn_app().await;

    // No token: UNAUTHENTICATED, nothing fetched.
    let response = app.query(DASHBOARD, json!({})).await;
    assert_eq!(response["data"], Value::Null);
    let error = only_error(&response);
    assert_eq!(error["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(error["message"], "authentication required");
    assert_eq!(error["path"], json!(["dashboard"]));
    assert_eq!(app.downstream_total(), 0);

    // A token that does not verify: 401 with WWW-Authenticate, nothing run.
    let forged = token(
        &{
            let mut config = app.config.clone();
            config.jwt.secret = Some("another-secret-another-secret-another-secret".into());
            config
        },
        "u1",
        TokenKind::User,
    );
    let response = app.post(json!({ "query": DASHBOARD }), Some(&forged)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(&response, "www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), ["UNAUTHENTICATED"]);

    // A device token: this API is for people.
    let device = token(&app.config, "d1", TokenKind::Device);
    let response = app.post(json!({ "query": DASHBOARD }), Some(&device)).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), ["FORBIDDEN"]);
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn the_viewer_comes_from_the_token_only() {
    let app = spawn_app().await;
    // There is no argument to name another user; trying is a validation error.
    let response = app
        .query_as(
            "u2",
            "{ dashboard(userId: \"u1\") { user { name } } }",
            json!({}),
        )
        .await;
    assert!(!errors(&response).is_empty());
    assert!(response["data"].is_null(), "{response}");
    assert_eq!(app.downstream_total(), 0);
    let response = app
        .query_as("u2", "{ dashboard { user { name } } }", json!({}))
        .await;
    assert_eq!(data(&response)["dashboard"]["user"]["name"], "Grace Hopper");
    let calls = app.downstream_requests();
    assert!(
        calls
            .iter()
            .all(|call| call.user_id.as_deref() == Some("u2"))
    );
}

#[tokio::test]
async fn order_service_down_leaves_the_user_and_the_count() {
    let app = spawn_app().await;
    app.services
        .order
        .control
        .set_fault(Fault::new("/").status(503));
    let response = json_200(
        app.post(json!({ "query": DASHBOARD }), Some(&app.token("u1")))
            .await,
    )
    .await;
    let dashboard = &response["data"]["dashboard"];
    assert_failed(dashboard, "recentOrders");
    assert_eq!(dashboard["user"]["name"], "Ada Lovelace");
    assert_eq!(
        dashboard["user"]["avatarUrl"],
        "https://cdn.example.com/avatars/u1/thumb.jpg"
    );
    assert_eq!(dashboard["notificationsCount"], 3);
    let error = only_error(&response);
    assert_eq!(error["path"], json!(["dashboard", "recentOrders"]));
    assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
    assert_eq!(error["message"], "order service unavailable");
    // No internals leak to the phone.
    let text = response.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("http://127"),
        "{text}"
    );
}

#[tokio::test]
async fn user_service_down_leaves_the_orders() {
    let app = spawn_app().await;
    app.services
        .user
        .control
        .set_fault(Fault::new("/").status(500));
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    let dashboard = &response["data"]["dashboard"];
    assert_failed(dashboard, "user");
    assert_failed(dashboard, "notificationsCount");
    assert_eq!(dashboard["recentOrders"], recent_orders("u1"));
    for part in ["user", "notificationsCount"] {
        let error = error_at(&response, &[json!("dashboard"), json!(part)]);
        assert_eq!(error["extensions"]["code"], "DOWNSTREAM_UNAVAILABLE");
        assert_eq!(error["message"], "user service unavailable");
    }
    assert_eq!(errors(&response).len(), 2);
    // One attempt at the user service for both parts.
    assert_eq!(app.services.user.control.total(), 1);
}

#[tokio::test]
async fn a_slow_order_service_times_out_only_its_part() {
    let app = spawn_app_with_short_deadline().await;
    app.services.order.control.set_fault(Fault::new("/").hang());
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    let dashboard = &response["data"]["dashboard"];
    assert_failed(dashboard, "recentOrders");
    assert_eq!(dashboard["notificationsCount"], 3);
    assert_eq!(error_codes(&response), ["DOWNSTREAM_TIMEOUT"]);
}

async fn spawn_app_with_short_deadline() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(|config| config.downstream.timeout_ms = 200).await
}
