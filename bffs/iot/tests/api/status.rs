//! `GET /v1/devices/{id}`: the compact keys, what is left out, truncation.

use devstack_services::Fault;
use serde_json::json;

use crate::helpers::{As, GET_DEVICE, Reply, seed, spawn_app};

/// Each seed device as its owner sees it, written out by hand from the seed
/// (devstack/src/seed.rs), byte for byte.
const SEED_STATUSES: [(&str, &str, &str); 4] = [
    (
        "d1",
        "u1",
        r#"{"s":"online","t":21,"b":87,"ts":1764028800}"#,
    ),
    // -3.6 degrees: truncated toward zero, not floored to -4.
    (
        "d2",
        "u2",
        r#"{"s":"offline","t":-3,"b":15,"ts":1764009900}"#,
    ),
    // No temperature, no battery: neither key.
    ("d3", "u3", r#"{"s":"error","ts":1763625600}"#),
    (
        "d4",
        "u1",
        r#"{"s":"online","t":19,"b":100,"ts":1764050400}"#,
    ),
];

#[tokio::test]
async fn every_seed_device_in_compact_keys_within_64_bytes() {
    let app = spawn_app().await;
    for (id, owner, expected) in SEED_STATUSES {
        let reply = app.get_status(id, As::User(owner)).await;
        assert_eq!(reply.ok_json(), expected, "{id}");
        assert!(reply.body.len() <= 64, "{id}: {} bytes", reply.body.len());
    }
}

#[tokio::test]
async fn keys_follow_the_device_service_for_every_seed_device() {
    // The same facts derived from the seed data rather than written out.
    let app = spawn_app().await;
    for device in seed().devices {
        let reply = app.get_status(&device.id, As::User(&device.owner_id)).await;
        let body = reply.json();
        let object = body.as_object().unwrap();
        assert_eq!(body["s"], serde_json::to_value(device.status).unwrap());
        assert_eq!(body["ts"], device.last_update.timestamp());
        match device.temperature {
            Some(t) => assert_eq!(body["t"], t.trunc() as i64),
            None => assert!(!object.contains_key("t")),
        }
        match device.battery_level {
            Some(b) => assert_eq!(body["b"], b),
            None => assert!(!object.contains_key("b")),
        }
        let keys: Vec<_> = object.keys().map(String::as_str).collect();
        assert!(
            keys.iter().all(|k| ["s", "t", "b", "ts"].contains(k)),
            "{keys:?}"
        );
    }
}

#[tokio::test]
async fn negative_temperature_truncates_toward_zero() {
    let app = spawn_app().await;
    let body = app.get_status("d2", As::User("u2")).await.json();
    assert_eq!(body["t"], -3);
}

/// Device states the seed does not have, served by the device service
/// through an injected body: truncation at the edges, and each omission alone.
#[tokio::test]
async fn truncation_and_omission_for_any_state() {
    let app = spawn_app().await;
    let device = |temperature: serde_json::Value, battery: serde_json::Value| {
        json!({
            "id": "d1", "owner_id": "u1", "status": "online",
            "temperature": temperature, "battery_level": battery,
            "last_update": "2025-11-25T00:00:59.900Z",
            "settings": {"target_temperature": 21.5, "mode": "heat", "schedule": null, "auto_mode_enabled": true}
        })
    };
    let cases = [
        (
            device(json!(-0.4), json!(0)),
            r#"{"s":"online","t":0,"b":0,"ts":1764028859}"#,
        ),
        (
            device(json!(-12.99), json!(3)),
            r#"{"s":"online","t":-12,"b":3,"ts":1764028859}"#,
        ),
        (
            device(json!(35.99), json!(null)),
            r#"{"s":"online","t":35,"ts":1764028859}"#,
        ),
        (
            device(json!(null), json!(50)),
            r#"{"s":"online","b":50,"ts":1764028859}"#,
        ),
        (
            device(json!(20), json!(null)),
            r#"{"s":"online","t":20,"ts":1764028859}"#,
        ),
    ];
    for (served, expected) in cases {
        app.services.device.control.clear_faults();
        app.services.device.control.set_fault(
            Fault::new("/devices/d1")
                .method("GET")
                .body(served.to_string()),
        );
        let reply = app.get_status("d1", As::User("u1")).await;
        assert_eq!(reply.ok_json(), expected, "{served}");
    }
}

#[tokio::test]
async fn one_device_call_per_status_with_the_request_context() {
    let app = spawn_app().await;
    let reply = app
        .status_request("d1", As::User("u1"))
        .header("x-request-id", "poll-42")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["x-request-id"], "poll-42");
    assert_eq!(app.device_calls(GET_DEVICE), 1);
    assert_eq!(app.downstream_total(), 1, "only the device service, once");
    let call = &app.services.device.control.requests()[0];
    assert_eq!(call.path, "/devices/d1");
    assert_eq!(call.request_id.as_deref(), Some("poll-42"));
    assert_eq!(call.user_id.as_deref(), Some("u1"));
}

#[tokio::test]
async fn ids_are_passed_as_one_path_segment() {
    let app = spawn_app().await;
    // `%2F` must not turn into a path separator on the way downstream.
    let reply = app.get_status("d1%2Fsettings", As::User("u1")).await;
    reply.assert_error(404, "not found");
    let call = &app.services.device.control.requests()[0];
    assert_eq!(call.path, "/devices/d1%2Fsettings");
}

#[tokio::test]
async fn other_methods_are_405_with_allow_and_the_compact_body() {
    let app = spawn_app().await;
    let cases = [
        (reqwest::Method::PATCH, "/v1/devices/d1", "GET, HEAD"),
        (reqwest::Method::DELETE, "/v1/devices/d1", "GET, HEAD"),
        (reqwest::Method::GET, "/v1/devices/d1/settings", "PATCH"),
        (reqwest::Method::PUT, "/v1/devices/d1/settings", "PATCH"),
    ];
    for (method, path, allow) in cases {
        let request = app.client.request(method.clone(), app.url(path));
        let reply = Reply::of(app.authorize(request, As::User("u1")).send().await.unwrap()).await;
        reply.assert_error(405, "method not allowed");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
    assert_eq!(app.downstream_total(), 0);
}
