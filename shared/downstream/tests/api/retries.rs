//! Retries: idempotent calls only, retryable failures only, within the
//! deadline and the service's retry budget. Devstack's counters are the proof.

use std::time::Duration;

use devstack_services::Fault;
use downstream::models::PlaceOrderRequest;
use downstream::{BreakerConfig, DownstreamError, RetryConfig, Service};
use tokio::time::Instant;

use crate::{Harness, ctx};

const GET_PRODUCT: &str = "GET /products/{id}";

/// Retries only: the breaker stays out of the way.
async fn harness() -> Harness {
    Harness::with_config(|config| {
        config.breaker = BreakerConfig {
            enabled: false,
            ..BreakerConfig::default()
        };
    })
    .await
}

#[tokio::test]
async fn with_five_percent_503s_every_get_succeeds() {
    let h = Harness::start().await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503).rate(0.05));
    for _ in 0..100 {
        h.downstream.products.get(&ctx(), "p1").await.unwrap();
    }
    // Every 20th request failed and was retried once.
    assert_eq!(h.services.product.control.count(GET_PRODUCT), 105);
}

#[tokio::test]
async fn with_sixty_percent_503s_retries_stay_within_the_budget() {
    let h = harness().await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503).rate(0.6));
    let calls = 200;
    let mut failed = 0;
    for _ in 0..calls {
        failed += usize::from(h.downstream.products.get(&ctx(), "p1").await.is_err());
    }
    let reached = h.services.product.control.count(GET_PRODUCT);
    let budget = RetryConfig::default();
    let allowed = calls
        + calls * u64::from(budget.budget_percent) / 100
        + u64::from(budget.budget_min_retries);
    assert!(reached > calls, "some failures were retried: {reached}");
    assert!(reached <= allowed, "{reached} requests for {calls} calls");
    assert!(failed > 0, "the budget ran out, so some calls failed");
}

#[tokio::test]
async fn post_orders_with_a_503_is_not_retried() {
    let h = harness().await;
    h.services
        .order
        .control
        .set_fault(Fault::new("/orders").method("POST").status(503));
    let request = PlaceOrderRequest {
        user_id: "u1".into(),
        items: vec![downstream::models::CartItem {
            product_id: "p1".into(),
            quantity: 1,
        }],
        address_id: "a1".into(),
        shipping_option_id: "standard".into(),
        payment_method_id: "pm1".into(),
    };
    let error = h
        .downstream
        .orders
        .place(&ctx(), "key-1", &request)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Unavailable {
            service: Service::Order,
            status: Some(503)
        }
    );
    assert_eq!(h.services.order.control.count("POST /orders"), 1);
}

#[tokio::test]
async fn patch_is_not_retried() {
    let h = harness().await;
    h.services
        .device
        .control
        .set_fault(Fault::new("/devices").method("PATCH").status(503));
    let patch = downstream::models::DeviceSettingsPatch {
        target_temperature: Some(20.0),
        ..Default::default()
    };
    h.downstream
        .devices
        .update_settings(&ctx(), "d1", &patch)
        .await
        .unwrap_err();
    assert_eq!(
        h.services
            .device
            .control
            .count("PATCH /devices/{id}/settings"),
        1
    );
}

#[tokio::test]
async fn only_retryable_failures_are_retried() {
    let h = harness().await;
    let control = &h.services.product.control;
    for (status, tries) in [(500, 1), (404, 1), (400, 1), (502, 3), (503, 3), (504, 3)] {
        control.clear_faults();
        control.reset();
        control.set_fault(Fault::new("/products").status(status));
        h.downstream.products.get(&ctx(), "p1").await.unwrap_err();
        assert_eq!(control.count(GET_PRODUCT), tries, "status {status}");
    }
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_is_not_waited_for() {
    let h = harness().await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503).retry_after(5));
    let deadline = Duration::from_millis(500);
    let started = Instant::now();
    let error = h
        .downstream
        .products
        .get(&ctx().with_timeout(deadline), "p1")
        .await
        .unwrap_err();
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    assert_eq!(
        error,
        DownstreamError::Unavailable {
            service: Service::Product,
            status: Some(503)
        }
    );
    assert_eq!(h.services.product.control.count(GET_PRODUCT), 1);
}

#[tokio::test]
async fn a_call_ends_by_its_own_timeout_or_the_deadline_whichever_is_first() {
    let h = Harness::with_config(|config| {
        config.product.timeout_ms = Some(200);
        config.breaker.enabled = false;
    })
    .await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").hang());
    // The service's timeout bounds the whole call (tries and back-off), so a
    // hanging service leaves the rest of the request's time to later rounds.
    for (deadline, bound) in [(2_000, 200), (120, 120)] {
        let started = Instant::now();
        let error = h
            .downstream
            .products
            .get(&ctx().with_timeout(Duration::from_millis(deadline)), "p1")
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(
            error,
            DownstreamError::Timeout {
                service: Service::Product
            }
        );
        assert!(
            elapsed < Duration::from_millis(bound + 100),
            "{elapsed:?} with a {deadline} ms deadline"
        );
    }
    let tries = h.services.product.control.count(GET_PRODUCT);
    assert_eq!(tries, 2, "one try per call: no time was left to retry");
}

#[tokio::test]
async fn with_a_per_try_timeout_slow_tries_are_retried_within_the_call() {
    let h = Harness::with_config(|config| {
        config.product.timeout_ms = Some(1_000);
        config.retry.per_try_timeout_ms = Some(100);
        config.breaker.enabled = false;
    })
    .await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").hang());
    let started = Instant::now();
    let error = h
        .downstream
        .products
        .get(&ctx().with_timeout(Duration::from_secs(5)), "p1")
        .await
        .unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Timeout {
            service: Service::Product
        }
    );
    // Three tries of 100 ms (plus back-off), well inside the 1 s call.
    assert!(started.elapsed() < Duration::from_millis(1_000));
    assert_eq!(h.services.product.control.count(GET_PRODUCT), 3);
}
