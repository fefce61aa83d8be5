//! Stale-if-error: past their TTL, cached entities are still served (and
//! marked) while their service fails, up to the stale bound.

use std::time::Duration;

use devstack_services::Fault;
use downstream::{BreakerOverrides, DownstreamError, Service};

use crate::{Harness, ctx};

const TTL: Duration = Duration::from_millis(50);

async fn harness(stale_ms: u64) -> Harness {
    Harness::with_config(|config| {
        config.cache.ttl_ms = TTL.as_millis() as u64;
        config.cache.stale_ms = stale_ms;
    })
    .await
}

async fn past_the_ttl() {
    tokio::time::sleep(TTL * 2).await;
}

#[tokio::test]
async fn a_failing_service_serves_the_stale_copy_and_marks_it() {
    let h = harness(60_000).await;
    let products = &h.downstream.products;
    let warm = ctx();
    let fresh = products.lookup(&warm, &["p1"]).await.unwrap();
    assert!(warm.stale.is_empty());
    past_the_ttl().await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));

    let ctx = ctx();
    let served = products.lookup(&ctx, &["p1", "p2"]).await.unwrap_err();
    // p2 was never cached: the batch fails as a whole.
    assert!(matches!(served, DownstreamError::Unavailable { .. }));
    assert!(ctx.stale.is_empty());

    let ctx = crate::ctx();
    let served = products.lookup(&ctx, &["p1"]).await.unwrap();
    assert_eq!(served["p1"], fresh["p1"]);
    assert_eq!(ctx.stale.list(), ["product:p1"]);
    // The service was asked (and failed) before the stale copy was served.
    assert!(h.services.product.control.count("GET /products") > 1);
}

#[tokio::test]
async fn past_the_stale_bound_it_is_an_error() {
    let h = harness(100).await;
    let products = &h.downstream.products;
    products.lookup(&ctx(), &["p1"]).await.unwrap();
    tokio::time::sleep(TTL + Duration::from_millis(100) * 3).await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    let ctx = ctx();
    let error = products.lookup(&ctx, &["p1"]).await.unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Unavailable {
            service: Service::Product,
            status: Some(503)
        }
    );
    assert!(ctx.stale.is_empty());
}

#[tokio::test]
async fn with_the_breaker_open_stale_copies_are_served_without_calling() {
    let h = Harness::with_config(|config| {
        config.cache.ttl_ms = TTL.as_millis() as u64;
        config.product.breaker = BreakerOverrides {
            minimum_calls: Some(2),
            open_ms: Some(60_000),
            ..BreakerOverrides::default()
        };
        config.product.retry.max_retries = Some(0);
    })
    .await;
    let products = &h.downstream.products;
    products.lookup(&ctx(), &["p1"]).await.unwrap();
    let control = &h.services.product.control;
    control.set_fault(Fault::new("/products/").status(503));
    for _ in 0..2 {
        products.get(&ctx(), "p2").await.unwrap_err();
    }
    past_the_ttl().await;
    let before = control.total();
    let ctx = ctx();
    let served = products.lookup(&ctx, &["p1"]).await.unwrap();
    assert!(served.contains_key("p1"));
    assert_eq!(ctx.stale.list(), ["product:p1"]);
    assert_eq!(
        control.total(),
        before,
        "the open breaker kept the call home"
    );
}

#[tokio::test]
async fn refusals_are_not_masked_by_stale_copies() {
    let h = harness(60_000).await;
    let users = &h.downstream.users;
    users.lookup(&ctx(), &["u1"]).await.unwrap();
    past_the_ttl().await;
    h.services
        .user
        .control
        .set_fault(Fault::new("/users").status(403));
    let ctx = ctx();
    let error = users.lookup(&ctx, &["u1"]).await.unwrap_err();
    assert!(matches!(
        error,
        DownstreamError::Rejected { status: 403, .. }
    ));
    assert!(ctx.stale.is_empty());
}
