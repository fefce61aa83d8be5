//! `GET /metrics` on the admin listener (never on the public one): the downstream crate's metrics in the Prometheus text
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

    let text = app.metrics().await;
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

/// A value of the Prometheus text `text` for the series `series` (0 when
/// it is not there yet).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A dashboard repeated takes the remembered-validation path (same
/// executor, lighter validation); the first of its kind the full one. Other
/// tests add to the process-wide counters, so only lower bounds hold.
#[tokio::test]
async fn repeated_dashboards_take_the_remembered_validation_path() {
    let app = spawn_app().await;
    let scrape = || async {
        let text = app.metrics().await;
        (
            sample(&text, r#"graphql_requests_total{validation="full"}"#),
            sample(&text, r#"graphql_requests_total{validation="remembered"}"#),
        )
    };
    // A query text no other test sends.
    let query = "query RepeatedDashboardForMetrics { dashboard { orders(first: 2) { id } } }";
    let (full, remembered) = scrape().await;
    for _ in 0..3 {
        let response = app.query_as("u1", query, json!({})).await;
        assert!(response.get("errors").is_none(), "{response}");
    }
    let (full_after, remembered_after) = scrape().await;
    assert!(full_after >= full + 1.0, "{full} → {full_after}");
    assert!(
        remembered_after >= remembered + 2.0,
        "{remembered} → {remembered_after}"
    );
}

#[tokio::test]
async fn metrics_are_not_on_the_public_listener() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
