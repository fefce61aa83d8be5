//! `GET /metrics`: the downstream crate's metrics in the Prometheus text
//! format. The recorder is process-wide, so other tests add to the numbers:
//! only presence is asserted.

use devstack_services::Fault;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn metrics_show_downstream_calls_retries_and_cache_lookups() {
    let app = spawn_app().await;
    app.query(r#"{ product(id: "p2") { id } }"#, json!({}))
        .await;
    app.services
        .product
        .control
        .set_fault(Fault::new("/products").status(503));
    app.query(r#"{ product(id: "p3") { id } }"#, json!({}))
        .await;

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"downstream_calls_total{service="product",outcome="success"}"#,
        r#"downstream_calls_total{service="product",outcome="unavailable"}"#,
        r#"downstream_retries_total{service="product",result="granted"}"#,
        r#"downstream_cache_lookups_total{cache="product",result="miss"}"#,
        "# TYPE downstream_call_duration_seconds histogram",
        r#"downstream_breaker_state{service="product",state="closed"}"#,
        r#"downstream_call_duration_seconds_bucket{service="product",le="0.1"}"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}
