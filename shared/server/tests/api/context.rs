use bff_server::context::{MAX_REQUEST_ID_LEN, is_sane_request_id};
use serde_json::Value;

use crate::helpers::{probe_routes, spawn_front_door, test_config};

const CLIENT_TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn is_generated_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn whoami(headers: &[(&str, &str)]) -> (Option<String>, Value) {
    let server = spawn_front_door(probe_routes(), &test_config()).await;
    let mut request = server.client.get(server.url("/whoami"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let echoed = response
        .headers()
        .get("x-request-id")
        .map(|value| value.to_str().unwrap().to_owned());
    (echoed, response.json().await.unwrap())
}

#[test]
fn sane_request_ids() {
    assert!(is_sane_request_id("abc-DEF_123.4"));
    assert!(is_sane_request_id(&"a".repeat(MAX_REQUEST_ID_LEN)));
    for insane in [
        String::new(),
        "a".repeat(MAX_REQUEST_ID_LEN + 1),
        "has space".into(),
        "quote\"".into(),
        "new\nline".into(),
        "ünïcode".into(),
        "a/b".into(),
    ] {
        assert!(!is_sane_request_id(&insane), "{insane:?}");
    }
}

#[tokio::test]
async fn a_sane_client_request_id_is_kept_and_echoed() {
    let (echoed, body) = whoami(&[("x-request-id", "client-req_1.2")]).await;
    assert_eq!(echoed.as_deref(), Some("client-req_1.2"));
    assert_eq!(body["request_id"], "client-req_1.2");
}

#[tokio::test]
async fn a_missing_request_id_is_generated_and_echoed() {
    let (echoed, body) = whoami(&[]).await;
    let echoed = echoed.unwrap();
    assert!(is_generated_id(&echoed), "{echoed}");
    assert_eq!(body["request_id"], echoed);
}

#[tokio::test]
async fn an_insane_request_id_is_replaced() {
    let long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
    for insane in ["two words", "<script>", long.as_str()] {
        let (echoed, body) = whoami(&[("x-request-id", insane)]).await;
        let echoed = echoed.unwrap();
        assert!(is_generated_id(&echoed), "{insane}: {echoed}");
        assert_eq!(body["request_id"], echoed);
    }
}

#[tokio::test]
async fn a_client_trace_is_continued_with_a_new_span() {
    let (_, body) = whoami(&[("traceparent", CLIENT_TRACE)]).await;
    let trace = body["traceparent"].as_str().unwrap();
    assert!(
        trace.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{trace}"
    );
    assert!(trace.ends_with("-01"), "{trace}");
    assert_ne!(&trace[36..52], "00f067aa0ba902b7", "a span of our own");
}

#[tokio::test]
async fn without_a_valid_trace_a_new_one_starts() {
    for headers in [vec![], vec![("traceparent", "garbage")]] {
        let (_, body) = whoami(&headers).await;
        let trace = body["traceparent"].as_str().unwrap();
        assert_eq!(trace.len(), 55, "{trace}");
        assert!(trace.starts_with("00-"), "{trace}");
        assert!(!trace.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
    }
}

#[tokio::test]
async fn responses_without_a_route_carry_the_request_id_too() {
    let server = spawn_front_door(probe_routes(), &test_config()).await;
    let response = server
        .client
        .get(server.url("/no-such-route"))
        .header("x-request-id", "lost-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-request-id"], "lost-1");
}
