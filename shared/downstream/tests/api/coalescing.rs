//! Identical GETs in flight at the same time share one call.

use std::time::Duration;

use devstack_services::Fault;
use futures::future::join_all;

use crate::{Harness, ctx};

const REVIEWS: &str = "GET /products/{id}/reviews";

#[tokio::test]
async fn identical_concurrent_gets_share_one_call() {
    let h = Harness::start().await;
    // Slow enough that every call below starts while the first is in flight.
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").latency(100));
    let ctx = ctx();
    let calls = (0..10).map(|_| h.downstream.products.reviews(&ctx, "p1", 5));
    let results = join_all(calls).await;
    let first = results[0].as_ref().unwrap();
    assert!(results.iter().all(|r| r.as_ref().unwrap() == first));
    assert_eq!(h.services.product.control.count(REVIEWS), 1);

    // Done calls are not reused.
    h.downstream.products.reviews(&ctx, "p1", 5).await.unwrap();
    assert_eq!(h.services.product.control.count(REVIEWS), 2);
}

#[tokio::test]
async fn different_urls_or_viewers_do_not_share() {
    let h = Harness::start().await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").latency(100));
    let products = &h.downstream.products;
    let (u1, u2) = (ctx(), ctx().with_user("u2"));
    let (a, b, c) = tokio::join!(
        products.reviews(&u1, "p1", 5),
        products.reviews(&u1, "p1", 3),
        products.reviews(&u2, "p1", 5),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    assert_eq!(h.services.product.control.count(REVIEWS), 3);
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_cancel_the_others() {
    let h = Harness::start().await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").latency(150));
    let products = &h.downstream.products;
    let (impatient, patient) = (ctx(), ctx());
    let (gave_up, waited) = tokio::join!(
        tokio::time::timeout(
            Duration::from_millis(20),
            products.reviews(&impatient, "p1", 5)
        ),
        async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            products.reviews(&patient, "p1", 5).await
        },
    );
    assert!(gave_up.is_err());
    waited.unwrap();
    assert_eq!(h.services.product.control.count(REVIEWS), 1);
}
