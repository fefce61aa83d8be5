//! The circuit breaker against a failing service: devstack's counters show
//! which calls reached it.

use std::time::Duration;

use devstack_services::Fault;
use downstream::{BreakerOverrides, DownstreamError, Service};

use crate::{Harness, ctx};

const GET_PRODUCT: &str = "GET /products/{id}";
const MINIMUM_CALLS: u64 = 5;
const COOL_DOWN: Duration = Duration::from_millis(200);

/// A product-service breaker that opens after 5 failed calls and probes once
/// after 200 ms; no retries, so every call is one request.
async fn harness(open_ms: u64) -> Harness {
    Harness::with_config(|config| {
        config.product.breaker = BreakerOverrides {
            window_size: Some(10),
            minimum_calls: Some(MINIMUM_CALLS as u32),
            open_ms: Some(open_ms),
            half_open_calls: Some(1),
            ..BreakerOverrides::default()
        };
        config.product.retry.max_retries = Some(0);
    })
    .await
}

const OPEN: DownstreamError = DownstreamError::CircuitOpen {
    service: Service::Product,
};

#[tokio::test]
async fn with_every_call_failing_it_opens_and_later_calls_do_not_reach_the_service() {
    let h = harness(60_000).await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    for _ in 0..MINIMUM_CALLS {
        let error = h.downstream.products.get(&ctx(), "p1").await.unwrap_err();
        assert!(
            matches!(error, DownstreamError::Unavailable { .. }),
            "{error:?}"
        );
    }
    for _ in 0..20 {
        let error = h.downstream.products.get(&ctx(), "p1").await.unwrap_err();
        assert_eq!(error, OPEN);
    }
    assert_eq!(h.services.product.control.count(GET_PRODUCT), MINIMUM_CALLS);
    // Other services are not affected.
    h.downstream.users.get(&ctx(), "u1").await.unwrap();
}

#[tokio::test]
async fn after_the_cool_down_one_probe_reaches_it_and_recovery_closes_it() {
    let h = harness(COOL_DOWN.as_millis() as u64).await;
    let control = &h.services.product.control;
    control.set_fault(Fault::new("/products").status(503));
    for _ in 0..MINIMUM_CALLS {
        h.downstream.products.get(&ctx(), "p1").await.unwrap_err();
    }
    assert_eq!(
        h.downstream.products.get(&ctx(), "p1").await.unwrap_err(),
        OPEN
    );

    // Still failing: one probe goes through and reopens it.
    tokio::time::sleep(COOL_DOWN + Duration::from_millis(50)).await;
    for _ in 0..5 {
        h.downstream.products.get(&ctx(), "p1").await.unwrap_err();
    }
    assert_eq!(control.count(GET_PRODUCT), MINIMUM_CALLS + 1);

    // Recovered: the next probe succeeds and closes it.
    control.clear_faults();
    tokio::time::sleep(COOL_DOWN + Duration::from_millis(50)).await;
    for _ in 0..10 {
        h.downstream.products.get(&ctx(), "p1").await.unwrap();
    }
    assert_eq!(control.count(GET_PRODUCT), MINIMUM_CALLS + 1 + 10);
}

#[tokio::test]
async fn not_found_answers_do_not_open_it() {
    let h = harness(60_000).await;
    for _ in 0..20 {
        let error = h
            .downstream
            .products
            .get(&ctx(), "nothing")
            .await
            .unwrap_err();
        assert!(matches!(error, DownstreamError::NotFound { .. }));
    }
    assert_eq!(h.services.product.control.count(GET_PRODUCT), 20);
}
