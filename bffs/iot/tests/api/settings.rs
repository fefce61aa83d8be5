//! `PATCH /v1/devices/{id}/settings`: each compact key reaches the device
//! service under its own name, and the answer is the new settings.

use serde_json::{Value, json};

use crate::helpers::{As, GET_DEVICE, PATCH_SETTINGS, spawn_app};

/// d1's settings in the seed, in the device service's names.
fn d1_settings() -> Value {
    json!({
        "target_temperature": 21.5,
        "mode": "heat",
        "schedule": "weekdays 06:30-22:00",
        "auto_mode_enabled": true
    })
}

#[tokio::test]
async fn each_key_expands_to_the_device_service_name() {
    // (compact patch, device-service field, its value after the patch, compact answer)
    let cases = [
        (
            r#"{"t":23}"#,
            "target_temperature",
            json!(23.0),
            r#"{"t":23,"m":"heat","s":"weekdays 06:30-22:00","a":true}"#,
        ),
        (
            r#"{"t":22.5}"#,
            "target_temperature",
            json!(22.5),
            r#"{"t":22.5,"m":"heat","s":"weekdays 06:30-22:00","a":true}"#,
        ),
        (
            r#"{"m":"cool"}"#,
            "mode",
            json!("cool"),
            r#"{"t":21.5,"m":"cool","s":"weekdays 06:30-22:00","a":true}"#,
        ),
        (
            r#"{"s":"weekends 08:00-12:00"}"#,
            "schedule",
            json!("weekends 08:00-12:00"),
            r#"{"t":21.5,"m":"heat","s":"weekends 08:00-12:00","a":true}"#,
        ),
        // null clears the schedule; the answer then has no `s`.
        (
            r#"{"s":null}"#,
            "schedule",
            Value::Null,
            r#"{"t":21.5,"m":"heat","a":true}"#,
        ),
        (
            r#"{"a":false}"#,
            "auto_mode_enabled",
            json!(false),
            r#"{"t":21.5,"m":"heat","s":"weekdays 06:30-22:00","a":false}"#,
        ),
    ];
    for (patch, field, value, answer) in cases {
        // A fresh stack per case, so each starts from the seed.
        let app = spawn_app().await;
        let reply = app.patch_settings("d1", As::User("u1"), patch).await;
        assert_eq!(reply.ok_json(), answer, "{patch}");
        let mut expected = d1_settings();
        expected[field] = value;
        assert_eq!(
            app.device_in_service("d1").await["settings"],
            expected,
            "{patch}"
        );
        assert_eq!(app.device_calls(PATCH_SETTINGS), 1);
    }
}

#[tokio::test]
async fn every_mode_is_accepted() {
    let app = spawn_app().await;
    for mode in ["off", "heat", "cool", "auto", "eco"] {
        let reply = app
            .patch_settings("d4", As::User("u1"), &json!({ "m": mode }).to_string())
            .await;
        assert_eq!(reply.json()["m"], mode);
        assert_eq!(app.device_in_service("d4").await["settings"]["mode"], mode);
    }
}

#[tokio::test]
async fn all_keys_at_once_and_the_range_ends() {
    let app = spawn_app().await;
    let reply = app
        .patch_settings(
            "d2",
            As::User("u2"),
            r#"{"t":35,"m":"auto","s":"daily 07:00-23:00","a":true}"#,
        )
        .await;
    assert_eq!(
        reply.ok_json(),
        r#"{"t":35,"m":"auto","s":"daily 07:00-23:00","a":true}"#
    );
    assert_eq!(
        app.device_in_service("d2").await["settings"],
        json!({"target_temperature": 35.0, "mode": "auto", "schedule": "daily 07:00-23:00", "auto_mode_enabled": true})
    );
    let reply = app.patch_settings("d2", As::User("u2"), r#"{"t":5}"#).await;
    assert_eq!(reply.json()["t"], 5);
    // A schedule of exactly 64 characters is fine.
    let schedule = "x".repeat(64);
    let reply = app
        .patch_settings("d2", As::User("u2"), &json!({ "s": schedule }).to_string())
        .await;
    assert_eq!(reply.json()["s"], schedule);
}

#[tokio::test]
async fn a_user_checks_ownership_then_patches_once() {
    let app = spawn_app().await;
    app.patch_settings("d1", As::User("u1"), r#"{"a":false}"#)
        .await
        .ok_json();
    assert_eq!(app.device_calls(GET_DEVICE), 1);
    assert_eq!(app.device_calls(PATCH_SETTINGS), 1);
    assert_eq!(app.downstream_total(), 2);
    let patch = app
        .services
        .device
        .control
        .requests()
        .into_iter()
        .find(|r| r.route == PATCH_SETTINGS)
        .unwrap();
    assert_eq!(patch.path, "/devices/d1/settings");
    assert_eq!(patch.user_id.as_deref(), Some("u1"));
}

#[tokio::test]
async fn a_device_patches_itself_without_a_lookup() {
    let app = spawn_app().await;
    let reply = app
        .patch_settings("d3", As::Device("d3"), r#"{"m":"eco"}"#)
        .await;
    assert_eq!(reply.ok_json(), r#"{"t":20,"m":"eco","a":false}"#);
    assert_eq!(app.device_calls(GET_DEVICE), 0);
    assert_eq!(app.device_calls(PATCH_SETTINGS), 1);
    // A device is not a user: no x-user-id downstream.
    assert_eq!(app.services.device.control.requests()[0].user_id, None);
}

#[tokio::test]
async fn a_content_type_with_parameters_and_none_at_all_mean_json() {
    let app = spawn_app().await;
    let reply = app
        .settings_request("d1", As::User("u1"))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"t":24}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let reply = app
        .settings_request("d1", As::User("u1"))
        .body(r#"{"t":25}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        app.device_in_service("d1").await["settings"]["target_temperature"],
        25.0
    );
}
