//! The request's deadline bounds every downstream call, retries included.

use std::time::Duration;

use devstack_services::Fault;
use downstream::{DownstreamError, Service};
use tokio::time::Instant;

use crate::{Harness, ctx};

const DEADLINE: Duration = Duration::from_millis(300);
/// How late past the deadline the error may arrive. Generous, because a
/// loaded 2-core CI machine can delay a wake-up by hundreds of ms; what the
/// tests tell apart is the deadline (300 ms) from the service's 5 s timeout.
const SLACK: Duration = Duration::from_secs(1);

#[tokio::test]
async fn hanging_service_times_out_within_the_request_deadline() {
    let h = Harness::with_config(|config| config.timeout_ms = 5_000).await;
    h.services
        .device
        .control
        .set_fault(Fault::new("/devices").hang());
    let started = Instant::now();
    let error = h
        .downstream
        .devices
        .get(&ctx().with_timeout(DEADLINE), "d1")
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        error,
        DownstreamError::Timeout {
            service: Service::Device
        }
    );
    assert!(elapsed < DEADLINE + SLACK, "{elapsed:?}");
}

#[tokio::test]
async fn the_service_timeout_bounds_the_call_within_a_longer_deadline() {
    let h = Harness::with_config(|config| config.product.timeout_ms = Some(200)).await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").hang());
    let deadline = Duration::from_secs(5);
    let started = Instant::now();
    let error = h
        .downstream
        .products
        .get(&ctx().with_timeout(deadline), "p1")
        .await
        .unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Timeout {
            service: Service::Product
        }
    );
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_passed_deadline_calls_nothing() {
    let h = Harness::start().await;
    let ctx = ctx().with_deadline(Instant::now());
    let error = h.downstream.products.get(&ctx, "p1").await.unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Timeout {
            service: Service::Product
        }
    );
    assert_eq!(h.services.product.control.total(), 0);
}
