//! Ids a client chose can never change the call: invalid ones are refused
//! before anything is sent, odd but valid ones reach the service as one
//! literal path segment, and a call that cannot be built never counts
//! against the service's breaker or retries.

use downstream::models::{DeviceSettingsPatch, PlaceOrderRequest};
use downstream::{DownstreamError, MAX_ID_LEN, RequestContext, Service};

use crate::{Harness, ctx};

/// Ids no call may be made with: each would change the path (`.` and `..`
/// are dropped by URL normalisation), split a batch (`,`), break a header
/// or log line (control characters), or the URI limit (length).
fn refused_ids() -> Vec<String> {
    vec![
        String::new(),
        ".".into(),
        "..".into(),
        "p1,p2".into(),
        "p1\n".into(),
        "a\rb".into(),
        "\0".into(),
        "x".repeat(MAX_ID_LEN + 1),
        "é".repeat(11_000),
        "x".repeat(70_000),
    ]
}

/// Every client method that takes an id, with `id` in each id position
/// (the user id of the viewer's own routes too); the outcome of each.
async fn call_every_route(
    h: &Harness,
    id: &str,
) -> Vec<(&'static str, Result<(), DownstreamError>)> {
    let d = &h.downstream;
    let c = ctx();
    let patch = DeviceSettingsPatch {
        target_temperature: Some(21.0),
        ..DeviceSettingsPatch::default()
    };
    vec![
        ("users.get", d.users.get(&c, id).await.map(drop)),
        ("users.analytics", d.users.analytics(&c, id).await.map(drop)),
        ("users.wishlist", d.users.wishlist(&c, id).await.map(drop)),
        (
            "users.add_to_wishlist user",
            d.users.add_to_wishlist(&c, id, "p1").await,
        ),
        (
            "users.add_to_wishlist product",
            d.users.add_to_wishlist(&c, "u1", id).await,
        ),
        (
            "users.remove_from_wishlist user",
            d.users.remove_from_wishlist(&c, id, "p1").await,
        ),
        (
            "users.remove_from_wishlist product",
            d.users.remove_from_wishlist(&c, "u1", id).await,
        ),
        (
            "users.payment_methods",
            d.users.payment_methods(&c, id).await.map(drop),
        ),
        ("products.get", d.products.get(&c, id).await.map(drop)),
        (
            "products.reviews",
            d.products.reviews(&c, id, 5).await.map(drop),
        ),
        (
            "products.related",
            d.products.related(&c, id, 5).await.map(drop),
        ),
        (
            "products.by_category",
            d.products.by_category(&c, id, 1, 5).await.map(drop),
        ),
        (
            "orders.for_user",
            d.orders.for_user(&c, id, 5).await.map(drop),
        ),
        ("orders.get", d.orders.get(&c, id).await.map(drop)),
        (
            "recommendations.for_user",
            d.recommendations.for_user(&c, id, 5).await.map(drop),
        ),
        (
            "recommendations.similar product",
            d.recommendations
                .similar(&c, id, Some("u1"), 5)
                .await
                .map(drop),
        ),
        (
            "recommendations.similar user",
            d.recommendations
                .similar(&c, "p1", Some(id), 5)
                .await
                .map(drop),
        ),
        ("devices.get", d.devices.get(&c, id).await.map(drop)),
        (
            "devices.update_settings",
            d.devices.update_settings(&c, id, &patch).await.map(drop),
        ),
    ]
}

fn total_calls(h: &Harness) -> u64 {
    h.services
        .all()
        .iter()
        .map(|handle| handle.control.total())
        .sum()
}

#[tokio::test]
async fn invalid_ids_are_refused_on_every_route_without_a_call() {
    let h = Harness::start().await;
    for id in refused_ids() {
        for (route, outcome) in call_every_route(&h, &id).await {
            let error = outcome.unwrap_err();
            assert!(
                matches!(error, DownstreamError::InvalidId { .. }),
                "{route} with {:?}: {error:?}",
                id.chars().take(20).collect::<String>()
            );
        }
    }
    assert_eq!(
        total_calls(&h),
        0,
        "{:?}",
        h.services.product.control.requests()
    );
}

#[tokio::test]
async fn invalid_ids_in_batches_are_left_out() {
    let h = Harness::start().await;
    let c = ctx();
    let mut ids = refused_ids();
    ids.push("p1".into());
    let found = h.downstream.products.lookup(&c, &ids).await.unwrap();
    assert_eq!(
        found.keys().map(|id| id.as_str()).collect::<Vec<_>>(),
        ["p1"]
    );
    let requests = h.services.product.control.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].ids, ["p1"], "only the valid id is asked for");

    // Nothing valid left: no call at all.
    let none = h
        .downstream
        .users
        .get_many(&c, &refused_ids())
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(h.services.user.control.total(), 0);
}

#[tokio::test]
async fn odd_but_valid_ids_reach_the_service_as_one_literal_segment() {
    let h = Harness::start().await;
    let c = ctx();
    for id in [
        "...", "%2e%2e", "%2E", "a/b", "../p1", "a b", "?x=1#y", "é", "p1;x", "\\..",
    ] {
        h.services.reset();
        let error = h.downstream.products.get(&c, id).await.unwrap_err();
        assert_eq!(
            error,
            DownstreamError::NotFound {
                service: Service::Product
            },
            "{id}"
        );
        let requests = h.services.product.control.requests();
        assert_eq!(requests.len(), 1, "{id}");
        assert_eq!(
            requests[0].route, "GET /products/{id}",
            "{id}: {requests:?}"
        );
        assert!(requests[0].query.is_none(), "{id}: {requests:?}");

        h.services.reset();
        h.downstream
            .users
            .remove_from_wishlist(&c, "u1", id)
            .await
            .unwrap();
        let requests = h.services.user.control.requests();
        assert_eq!(
            requests[0].route, "DELETE /users/{id}/wishlist/{product_id}",
            "{id}: {requests:?}"
        );
    }
}

/// A request the BFF cannot build (here: a request id or idempotency key
/// that is no header value) fails at once as `Unsendable`: no try, no
/// retry, and no failure recorded, so the breaker stays closed for everyone.
#[tokio::test]
async fn unsendable_requests_never_open_the_breaker() {
    let h = Harness::start().await;
    let bad = RequestContext {
        request_id: "bad\nid".into(),
        ..ctx()
    };
    for _ in 0..50 {
        let error = h.downstream.products.get(&bad, "p1").await.unwrap_err();
        assert_eq!(
            error,
            DownstreamError::Unsendable {
                service: Service::Product
            }
        );
        let order = PlaceOrderRequest {
            user_id: "u1".into(),
            items: vec![],
            address_id: "a1".into(),
            shipping_option_id: "standard".into(),
            payment_method_id: "pm1".into(),
        };
        let error = h
            .downstream
            .orders
            .place(&ctx(), "key\r\n1", &order)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            DownstreamError::Unsendable {
                service: Service::Order
            }
        );
    }
    assert_eq!(total_calls(&h), 0);
    // Both breakers are still closed: a good call goes straight through.
    h.downstream.products.get(&ctx(), "p1").await.unwrap();
    h.downstream.orders.get(&ctx(), "o1").await.unwrap();
    assert_eq!(
        h.services.product.control.total(),
        1,
        "one call, no retries before it"
    );
}
