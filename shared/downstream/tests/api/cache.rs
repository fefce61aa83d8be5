//! Entity caches: hits skip the service, concurrent misses share one call.

use std::time::Duration;

use devstack_services::Fault;
use futures::future::join_all;

use crate::{Harness, ctx};

#[tokio::test]
async fn cached_products_are_not_fetched_again() {
    let h = Harness::start().await;
    let products = &h.downstream.products;
    let first = products.lookup(&ctx(), &["p1", "p2"]).await.unwrap();
    assert_eq!(first.len(), 2);
    let second = products.lookup(&ctx(), &["p2", "p3"]).await.unwrap();
    assert_eq!(second.len(), 2);
    let calls: Vec<_> = h.services.product.control.requests();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].ids, ["p3"], "only the miss is fetched");
}

#[tokio::test]
async fn concurrent_misses_for_the_same_id_share_one_call() {
    let h = Harness::start().await;
    // Slow enough that every lookup below starts while the first is in flight.
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").latency(100));
    let (ctx, ids) = (ctx(), ["p9".to_owned()]);
    let lookups = (0..10).map(|_| h.downstream.products.lookup(&ctx, &ids));
    let results = join_all(lookups).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().contains_key("p9"))
    );
    assert_eq!(h.services.product.control.count("GET /products"), 1);
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let h = Harness::with_config(|config| config.cache.ttl_ms = 50).await;
    h.downstream.users.lookup(&ctx(), &["u1"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    h.downstream.users.lookup(&ctx(), &["u1"]).await.unwrap();
    assert_eq!(h.services.user.control.count("GET /users"), 2);
}

#[tokio::test]
async fn unknown_ids_and_failures_are_not_cached() {
    let h = Harness::start().await;
    let products = &h.downstream.products;
    assert!(products.lookup(&ctx(), &["p404"]).await.unwrap().is_empty());
    assert!(products.lookup(&ctx(), &["p404"]).await.unwrap().is_empty());
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").status(500));
    assert!(products.lookup(&ctx(), &["p1"]).await.is_err());
    h.services.product.control.clear_faults();
    assert!(
        products
            .lookup(&ctx(), &["p1"])
            .await
            .unwrap()
            .contains_key("p1")
    );
    assert_eq!(h.services.product.control.count("GET /products"), 4);
}

#[tokio::test]
async fn wishlist_changes_invalidate_the_cached_wishlist() {
    let h = Harness::start().await;
    let users = &h.downstream.users;
    let before = users.cached_wishlist(&ctx(), "u1").await.unwrap();
    assert!(!before.product_ids.contains(&"p9".to_owned()));
    let _ = users.cached_wishlist(&ctx(), "u1").await.unwrap();
    assert_eq!(h.services.user.control.count("GET /users/{id}/wishlist"), 1);
    users.add_to_wishlist(&ctx(), "u1", "p9").await.unwrap();
    let after = users.cached_wishlist(&ctx(), "u1").await.unwrap();
    assert!(after.product_ids.contains(&"p9".to_owned()));
    assert_eq!(h.services.user.control.count("GET /users/{id}/wishlist"), 2);
}

#[tokio::test]
async fn a_shared_miss_is_awaited_no_longer_than_the_own_deadline() {
    let h = Harness::start().await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").latency(500));
    let products = &h.downstream.products;
    let ids = ["p5".to_owned()];
    let patient = ctx().with_timeout(Duration::from_secs(5));
    let hurried = ctx().with_timeout(Duration::from_millis(100));
    let (slow, fast) = tokio::join!(products.lookup(&patient, &ids), async {
        // Joins the patient request's fetch already in flight.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let started = tokio::time::Instant::now();
        (products.lookup(&hurried, &ids).await, started.elapsed())
    });
    assert!(slow.unwrap().contains_key("p5"));
    let (result, waited) = fast;
    assert_eq!(
        result.unwrap_err(),
        downstream::DownstreamError::Timeout {
            service: downstream::Service::Product
        }
    );
    assert!(waited < Duration::from_millis(200), "{waited:?}");
    assert_eq!(h.services.product.control.count("GET /products"), 1);
}
