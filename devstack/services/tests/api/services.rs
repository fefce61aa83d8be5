//! Behaviour of the five services.

use devstack_services::Service;
use devstack_services::seed::Seed;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Stack, ids};

#[tokio::test]
async fn batch_endpoints_omit_unknown_ids_and_keep_order() {
    let stack = Stack::new().await;
    let products = stack
        .get_ok(Service::Product, "/products?ids=p2,p99,p1,p2")
        .await;
    assert_eq!(ids(&products), ["p2", "p1"]);
    let products = stack.get_ok(Service::Product, "/products?ids=p404").await;
    assert_eq!(products, json!([]));
    let users = stack.get_ok(Service::User, "/users?ids=u9,u3,u1").await;
    assert_eq!(ids(&users), ["u3", "u1"]);

    let many: Vec<String> = (1..=200).map(|n| format!("p{n}")).collect();
    let all = stack
        .get_ok(
            Service::Product,
            &format!("/products?ids={}", many.join(",")),
        )
        .await;
    assert_eq!(all.as_array().unwrap().len(), 60);

    let too_many: Vec<String> = (1..=201).map(|n| format!("p{n}")).collect();
    for path in [
        "/products?ids=".to_owned(),
        "/products?ids=,,".to_owned(),
        "/products".to_owned(),
        "/products?ids=p1&category_id=home".to_owned(),
        "/products?category_id=".to_owned(),
        format!("/products?ids={}", too_many.join(",")),
    ] {
        let reply = stack.get(Service::Product, &path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(!reply.error().is_empty());
    }
    for path in ["/users?ids=", "/users"] {
        assert_eq!(
            stack.get(Service::User, path).await.status,
            StatusCode::BAD_REQUEST
        );
    }
}

#[tokio::test]
async fn category_pages_have_no_gaps_or_duplicates() {
    let stack = Stack::new().await;
    let mut seen = Vec::new();
    for page in 1..=4 {
        let body = stack
            .get_ok(
                Service::Product,
                &format!("/products?category_id=electronics&page={page}&limit=7"),
            )
            .await;
        assert_eq!(body["total"], 20);
        assert_eq!(body["page"], page);
        assert_eq!(body["limit"], 7);
        let page_ids = ids(&body["items"]);
        assert_eq!(page_ids.len(), [7, 7, 6, 0][page as usize - 1]);
        seen.extend(page_ids);
    }
    let expected: Vec<String> = (1..=20).map(|n| format!("p{n}")).collect();
    assert_eq!(seen, expected);

    let defaults = stack
        .get_ok(Service::Product, "/products?category_id=outdoors")
        .await;
    assert_eq!(
        (defaults["page"].clone(), defaults["limit"].clone()),
        (json!(1), json!(20))
    );
    assert_eq!(
        ids(&defaults["items"]).first().map(String::as_str),
        Some("p41")
    );

    let unknown = stack
        .get_ok(Service::Product, "/products?category_id=toys")
        .await;
    assert_eq!(
        unknown,
        json!({"items": [], "total": 0, "page": 1, "limit": 20})
    );

    for query in [
        "page=0",
        "page=-1",
        "limit=0",
        "limit=101",
        "page=x",
        "limit=2.5",
    ] {
        let reply = stack
            .get(
                Service::Product,
                &format!("/products?category_id=home&{query}"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn products_reviews_and_related() {
    let stack = Stack::new().await;
    let p3 = stack.get_ok(Service::Product, "/products/p3").await;
    assert_eq!(p3["price_cents"], 123_450);
    assert_eq!(p3["currency"], "USD");
    let not_found = stack.get(Service::Product, "/products/p61").await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert_eq!(not_found.error(), "product p61 not found");

    let reviews = stack.get_ok(Service::Product, "/products/p1/reviews").await;
    assert_eq!(reviews.as_array().unwrap().len(), 20);
    let all = stack
        .get_ok(Service::Product, "/products/p1/reviews?limit=30")
        .await;
    let dates: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["created_at"].as_str().unwrap())
        .collect();
    assert_eq!(dates.len(), 27);
    assert!(
        dates.windows(2).all(|w| w[0] > w[1]),
        "newest first: {dates:?}"
    );
    assert!(dates.iter().all(|d| d.starts_with("2026-")));
    assert_eq!(
        stack.get_ok(Service::Product, "/products/p7/reviews").await,
        json!([])
    );

    let related = stack.get_ok(Service::Product, "/products/p1/related").await;
    let related = related["product_ids"].as_array().unwrap();
    assert!((4..=10).contains(&related.len()));
    assert!(!related.contains(&json!("p1")));
    let two = stack
        .get_ok(Service::Product, "/products/p1/related?limit=2")
        .await;
    assert_eq!(two["product_ids"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn quote_arithmetic() {
    let stack = Stack::new().await;
    let quote = async |body: Value| stack.post(Service::Order, "/checkout/quote", &body).await;

    // Gold: 5 % off 51297 = 2564 (down); free standard shipping; 8 % of 48733 = 3898.64 → 3899.
    let reply = quote(json!({
        "user_id": "u1",
        "items": [{"product_id": "p1", "quantity": 2}, {"product_id": "p6", "quantity": 1}],
        "address_id": "a2"
    }))
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let q = reply.json();
    assert_eq!(q["subtotal_cents"], 51_297);
    assert_eq!(q["discount_cents"], 2_564);
    assert_eq!(q["shipping_cents"], 0);
    assert_eq!(q["tax_cents"], 3_899);
    assert_eq!(q["total_cents"], 52_632);
    assert_eq!(q["currency"], "USD");
    assert_eq!(
        q["shipping_options"],
        json!([
            {"id": "standard", "label": "Standard shipping", "price_cents": 0, "estimated_days": 5},
            {"id": "express", "label": "Express shipping", "price_cents": 1499, "estimated_days": 2}
        ])
    );

    // No discount below gold; standard shipping 499 under $50; 8 % of 1299 = 103.92 → 104.
    let q = quote(json!({"user_id": "u3", "items": [{"product_id": "p6", "quantity": 1}]}))
        .await
        .json();
    assert_eq!(
        [
            &q["subtotal_cents"],
            &q["discount_cents"],
            &q["shipping_cents"],
            &q["tax_cents"],
            &q["total_cents"]
        ],
        [1299, 0, 499, 104, 1902]
    );
    assert_eq!(q["shipping_options"][0]["price_cents"], 499);

    // Platinum: 10 % off 123450 = 12345; 8 % of 111105 = 8888.4 → 8888.
    let q = quote(json!({"user_id": "u2", "items": [{"product_id": "p3", "quantity": 1}]}))
        .await
        .json();
    assert_eq!(
        [&q["discount_cents"], &q["tax_cents"], &q["total_cents"]],
        [12_345, 8_888, 119_993]
    );

    let bad = [
        (json!({"user_id": "u1", "items": []}), "items"),
        (
            json!({"user_id": "u1", "items": [{"product_id": "p1", "quantity": 0}]}),
            "p1",
        ),
        (
            json!({"user_id": "u1", "items": [{"product_id": "p2", "quantity": -3}]}),
            "p2",
        ),
        (
            json!({"user_id": "u1", "items": [{"product_id": "p999", "quantity": 1}]}),
            "p999",
        ),
        (
            json!({"user_id": "u1", "items": [{"product_id": "p1", "quantity": 1}], "address_id": "a3"}),
            "a3",
        ),
        (json!({"user_id": "u1"}), "items"),
        (json!("nonsense"), "invalid"),
    ];
    for (body, named) in bad {
        let reply = quote(body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.error().contains(named), "{body}: {}", reply.error());
    }
    let reply =
        quote(json!({"user_id": "u9", "items": [{"product_id": "p1", "quantity": 1}]})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

fn order_body(user: &str) -> Value {
    json!({
        "user_id": user,
        "items": [{"product_id": "p1", "quantity": 1}],
        "address_id": "a1",
        "shipping_option_id": "express",
        "payment_method_id": "pm2"
    })
}

async fn order_ids(stack: &Stack, user: &str) -> Vec<String> {
    ids(&stack
        .get_ok(Service::Order, &format!("/users/{user}/orders?limit=100"))
        .await)
}

#[tokio::test]
async fn placing_an_order_is_idempotent() {
    let stack = Stack::new().await;
    assert_eq!(order_ids(&stack, "u1").await.len(), 14);

    let first = stack.place_order(Some("key-A"), &order_body("u1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let order = first.json();
    assert_eq!(order["id"], "o19");
    assert_eq!(order["status"], "placed");
    assert_eq!(order["tracking_number"], Value::Null);
    assert_eq!(
        order["items"],
        json!([{"product_id": "p1", "quantity": 1, "unit_price_cents": 24999}])
    );
    // Gold: 24999 - 1249 + express 1499 + 8 % of 23750 (1900).
    assert_eq!(order["total_cents"], 27_149);

    // The same key, even with another body, is the same order.
    let again = stack.place_order(Some("key-A"), &order_body("u1")).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.json(), order);
    let mut other_body = order_body("u1");
    other_body["items"][0]["quantity"] = json!(5);
    assert_eq!(
        stack.place_order(Some("key-A"), &other_body).await.json(),
        order
    );

    let history = order_ids(&stack, "u1").await;
    assert_eq!(history.len(), 15);
    assert_eq!(history[0], "o19", "new orders come first");
    assert_eq!(stack.get_ok(Service::Order, "/orders/o19").await, order);
    let recent = stack
        .get_ok(Service::Order, "/users/u1/orders?limit=3")
        .await;
    assert_eq!(ids(&recent), ["o19", "o14", "o13"]);

    // Concurrent retries of one key make one order.
    let body = order_body("u1");
    let retries = (0..5).map(|_| stack.place_order(Some("key-B"), &body));
    let replies = futures_join_all(retries).await;
    let ids_b: Vec<Value> = replies.iter().map(|r| r.json()["id"].clone()).collect();
    assert!(ids_b.iter().all(|id| id == &json!("o20")), "{ids_b:?}");
    assert_eq!(order_ids(&stack, "u1").await.len(), 16);

    // Analytics see the new orders. "This month" is November 2026 whatever the
    // clock says, and new orders are created now, which may or may not be then.
    let new_in_november = [&order, &replies[0].json()]
        .iter()
        .filter(|o| o["created_at"].as_str().unwrap().starts_with("2026-11-"))
        .count();
    let analytics = stack.get_ok(Service::User, "/users/u1/analytics").await;
    let seed = Seed::new();
    let seed_spent: i64 = seed
        .orders
        .iter()
        .filter(|o| o.user_id == "u1" && o.status != downstream::models::OrderStatus::Cancelled)
        .map(|o| o.total_cents)
        .sum();
    assert_eq!(analytics["total_spent_cents"], seed_spent + 2 * 27_149);
    assert_eq!(analytics["orders_this_month"], 3 + new_in_november);
}

#[tokio::test]
async fn placing_an_order_validates_everything() {
    let stack = Stack::new().await;
    let missing = stack.place_order(None, &order_body("u1")).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.error().contains("Idempotency-Key"));
    assert_eq!(
        stack.place_order(Some(" "), &order_body("u1")).await.status,
        StatusCode::BAD_REQUEST
    );

    let u5 = json!({
        "user_id": "u5", "items": [{"product_id": "p1", "quantity": 1}],
        "address_id": "a6", "shipping_option_id": "standard", "payment_method_id": "pm6"
    });
    assert_eq!(
        stack.place_order(Some("k5"), &u5).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stack
            .place_order(Some("k9"), &order_body("u9"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let cases = [
        ("address_id", json!("a3"), "a3"),
        ("shipping_option_id", json!("teleport"), "teleport"),
        ("payment_method_id", json!("pm3"), "pm3"),
        ("items", json!([]), "items"),
        ("items", json!([{"product_id": "p0", "quantity": 1}]), "p0"),
        ("items", json!([{"product_id": "p1", "quantity": 0}]), "p1"),
    ];
    for (i, (field, value, named)) in cases.into_iter().enumerate() {
        let mut body = order_body("u1");
        body[field] = value;
        let reply = stack.place_order(Some(&format!("bad-{i}")), &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.error().contains(named), "{}", reply.error());
    }
    assert_eq!(
        order_ids(&stack, "u1").await.len(),
        14,
        "failures create nothing"
    );
    assert_eq!(order_ids(&stack, "u5").await.len(), 0);

    // A key is per user: u2 reusing u1's key gets its own order.
    let mut u2 = order_body("u2");
    u2["address_id"] = json!("a3");
    u2["payment_method_id"] = json!("pm3");
    let a = stack
        .place_order(Some("shared"), &order_body("u1"))
        .await
        .json();
    let b = stack.place_order(Some("shared"), &u2).await.json();
    assert_ne!(a["id"], b["id"]);
    assert_eq!(b["user_id"], "u2");
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    // Runs them concurrently on one task without a futures dependency.
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn orders_history_and_analytics() {
    let stack = Stack::new().await;
    let orders = stack.get_ok(Service::Order, "/users/u1/orders").await;
    let order_ids = ids(&orders);
    assert_eq!(order_ids.len(), 10);
    assert_eq!(order_ids[..3], ["o14", "o13", "o12"]);
    assert_eq!(orders[0]["created_at"], "2026-11-25T14:30:00Z");
    let shipped = stack.get_ok(Service::Order, "/orders/o11").await;
    assert_eq!(shipped["status"], "shipped");
    assert!(shipped["tracking_number"].is_string());
    assert_eq!(
        stack.get_ok(Service::Order, "/users/u4/orders").await,
        json!([])
    );

    let analytics = stack.get_ok(Service::User, "/users/u1/analytics").await;
    assert_eq!(analytics["orders_this_month"], 3);
    assert_eq!(analytics["currency"], "USD");
    assert_eq!(
        analytics["favorite_categories"],
        json!(["electronics", "home", "outdoors"])
    );
    let spent: i64 = Seed::new()
        .orders
        .iter()
        .filter(|o| o.user_id == "u1" && !["o3", "o7"].contains(&o.id.as_str()))
        .map(|o| o.total_cents)
        .sum();
    assert_eq!(analytics["total_spent_cents"], spent);
    assert_eq!(spent, 174_068, "the figure the seed docs quote");
    assert_eq!(
        stack.get_ok(Service::Order, "/orders/o14").await["total_cents"],
        21_751
    );
    let u2 = stack.get_ok(Service::User, "/users/u2/analytics").await;
    assert_eq!(
        u2["favorite_categories"],
        json!(["outdoors", "electronics"])
    );
    assert_eq!(u2["orders_this_month"], 1);
    let u4 = stack.get_ok(Service::User, "/users/u4/analytics").await;
    assert_eq!(
        u4,
        json!({"total_spent_cents": 0, "currency": "USD", "orders_this_month": 0, "favorite_categories": []})
    );
}

#[tokio::test]
async fn wishlist_changes_are_idempotent() {
    let stack = Stack::new().await;
    let call = |method: Method, product: &str| {
        stack.send(stack.request(
            Service::User,
            method,
            &format!("/users/u1/wishlist/{product}"),
        ))
    };
    assert_eq!(call(Method::PUT, "p5").await.status, StatusCode::NO_CONTENT);
    assert_eq!(call(Method::PUT, "p9").await.status, StatusCode::NO_CONTENT);
    assert_eq!(call(Method::PUT, "p9").await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(Method::DELETE, "p2").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Method::DELETE, "p2").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Method::DELETE, "p999").await.status,
        StatusCode::NO_CONTENT
    );
    let unknown = call(Method::PUT, "p999").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.error().contains("p999"));
    let wishlist = stack.get_ok(Service::User, "/users/u1/wishlist").await;
    assert_eq!(wishlist, json!({"product_ids": ["p5", "p9"]}));
    assert_eq!(
        stack.get(Service::User, "/users/u9/wishlist").await.status,
        StatusCode::NOT_FOUND
    );
    let put = stack.request(Service::User, Method::PUT, "/users/u9/wishlist/p1");
    assert_eq!(stack.send(put).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn users_and_payment_methods() {
    let stack = Stack::new().await;
    let u1 = stack.get_ok(Service::User, "/users/u1").await;
    assert_eq!(u1["name"], "Ada Lovelace");
    assert_eq!(u1["membership_level"], "gold");
    assert_eq!(u1["loyalty_points"], 1250);
    assert_eq!(u1["unread_notifications_count"], 3);
    assert_eq!(
        u1["avatar"]["high_res_url"],
        "https://cdn.example.com/avatars/u1/full.jpg"
    );
    let methods = stack
        .get_ok(Service::User, "/users/u1/payment-methods")
        .await;
    assert_eq!(ids(&methods), ["pm1", "pm2"]);
    assert_eq!(methods[0]["is_default"], true);
    assert_eq!(
        stack.get_ok(Service::User, "/users/u5").await["can_checkout"],
        false
    );
}

#[tokio::test]
async fn recommendations_and_similar() {
    let stack = Stack::new().await;
    let recs = stack
        .get_ok(Service::Recommendation, "/users/u1/recommendations")
        .await;
    let scores: Vec<f64> = recs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores.len(), 10);
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(recs[0]["product_id"], "p3");
    let all = stack
        .get_ok(
            Service::Recommendation,
            "/users/u1/recommendations?limit=50",
        )
        .await;
    assert_eq!(all.as_array().unwrap().len(), 12);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"].is_null())
    );
    assert_eq!(
        stack
            .get(Service::Recommendation, "/users/u9/recommendations")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let anonymous = ids(&stack
        .get_ok(Service::Recommendation, "/products/p1/similar?limit=19")
        .await);
    assert_eq!(anonymous.len(), 19);
    assert!(anonymous.contains(&"p2".to_owned()) && anonymous.contains(&"p5".to_owned()));
    assert!(!anonymous.contains(&"p1".to_owned()));
    let for_u1 = ids(&stack
        .get_ok(
            Service::Recommendation,
            "/products/p1/similar?user_id=u1&limit=19",
        )
        .await);
    assert_eq!(for_u1.len(), 17, "u1's wishlist (p2, p5) is left out");
    assert!(!for_u1.contains(&"p2".to_owned()) && !for_u1.contains(&"p5".to_owned()));
    let default = stack
        .get_ok(Service::Recommendation, "/products/p1/similar")
        .await;
    assert_eq!(default.as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn devices_and_settings_patch_validation() {
    let stack = Stack::new().await;
    let d1 = stack.get_ok(Service::Device, "/devices/d1").await;
    assert_eq!(d1["status"], "online");
    assert_eq!(d1["temperature"], 21.7);
    assert_eq!(d1["battery_level"], 87);
    assert_eq!(d1["last_update"], "2025-11-25T00:00:00Z");
    assert_eq!(
        stack.get_ok(Service::Device, "/devices/d2").await["temperature"],
        -3.6
    );
    let d3 = stack.get_ok(Service::Device, "/devices/d3").await;
    assert_eq!(
        (
            d3["status"].clone(),
            d3["temperature"].clone(),
            d3["battery_level"].clone()
        ),
        (json!("error"), Value::Null, Value::Null)
    );

    let patch = |id: &str, body: Value| {
        stack.send(
            stack
                .request(
                    Service::Device,
                    Method::PATCH,
                    &format!("/devices/{id}/settings"),
                )
                .json(&body),
        )
    };
    let updated = patch("d1", json!({"target_temperature": 23.5})).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let updated = updated.json();
    assert_eq!(updated["settings"]["target_temperature"], 23.5);
    assert_eq!(updated["settings"]["mode"], "heat", "untouched fields stay");
    assert_eq!(updated["last_update"], "2025-11-25T00:00:00Z");
    let cleared = patch(
        "d1",
        json!({"schedule": null, "mode": "eco", "auto_mode_enabled": false}),
    )
    .await
    .json();
    assert_eq!(
        cleared["settings"],
        json!({"target_temperature": 23.5, "mode": "eco", "schedule": null, "auto_mode_enabled": false})
    );
    assert_eq!(stack.get_ok(Service::Device, "/devices/d1").await, cleared);

    for body in [
        json!({}),
        json!({"mode": "turbo"}),
        json!({"mode": null}),
        json!({"target_temperature": "warm"}),
        json!({"fan_speed": 3}),
        json!({"mode": "eco", "extra": true}),
        json!([{"mode": "eco"}]),
    ] {
        let reply = patch("d1", body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!reply.error().is_empty());
    }
    let malformed = stack
        .send(
            stack
                .request(Service::Device, Method::PATCH, "/devices/d1/settings")
                .header("content-type", "application/json")
                .body("{\"mode\":"),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        stack.get_ok(Service::Device, "/devices/d1").await,
        cleared,
        "bad patches change nothing"
    );
    assert_eq!(
        patch("d9", json!({"mode": "eco"})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        stack.get(Service::Device, "/devices/d9").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let stack = Stack::new().await;
    let reply = stack
        .send(stack.request(Service::Product, Method::DELETE, "/products/p1"))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!reply.error().is_empty());
}
