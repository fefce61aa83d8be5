//! Per-device rate limiting: 429 with `Retry-After` and the compact body,
//! nothing sent downstream.

use crate::helpers::{As, spawn_app_with};

#[tokio::test]
async fn a_device_over_its_rate_gets_429_with_retry_after() {
    let app = spawn_app_with(|config| {
        config.rate_limit.rps = 1;
        config.rate_limit.burst = 2;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(app.get_status("d2", As::Device("d2")).await.status, 200);
    }
    app.services.reset();
    let reply = app.get_status("d2", As::Device("d2")).await;
    reply.assert_error(429, "too many requests: retry in 1 s");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(app.downstream_total(), 0);
    // Another device has its own bucket.
    assert_eq!(app.get_status("d1", As::Device("d1")).await.status, 200);
}
