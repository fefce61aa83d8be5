//! CBOR both ways: `Accept: application/cbor` answers the same compact object
//! in CBOR; `Content-Type: application/cbor` patches are read by the same
//! rules as JSON ones. Errors stay JSON.

use ciborium::Value as Cbor;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::json;

use crate::helpers::{As, CBOR, PATCH_SETTINGS, Reply, cbor_bytes, seed, spawn_app};

fn text(s: &str) -> Cbor {
    Cbor::Text(s.into())
}

fn map(entries: Vec<(&str, Cbor)>) -> Cbor {
    Cbor::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

#[tokio::test]
async fn status_in_cbor_is_the_same_object_in_fewer_bytes() {
    let app = spawn_app().await;
    for device in seed().devices {
        let who = As::User(&device.owner_id);
        let json = app.get_status(&device.id, who).await;
        let cbor = Reply::of(
            app.status_request(&device.id, who)
                .header(ACCEPT, CBOR)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(cbor.status, 200);
        assert_eq!(cbor.header("content-type"), Some(CBOR));
        assert_eq!(cbor.cbor(), json.json(), "{}", device.id);
        assert!(cbor.body.len() < json.body.len(), "{}", device.id);
    }
}

#[tokio::test]
async fn cbor_keys_are_text_and_numbers_are_integers() {
    let app = spawn_app().await;
    let reply = Reply::of(
        app.status_request("d2", As::User("u2"))
            .header(ACCEPT, CBOR)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let value: Cbor = ciborium::from_reader(reply.body.as_slice()).unwrap();
    assert_eq!(
        value,
        map(vec![
            ("s", text("offline")),
            ("t", Cbor::Integer((-3).into())),
            ("b", Cbor::Integer(15.into())),
            ("ts", Cbor::Integer(1_764_009_900.into())),
        ])
    );
}

#[tokio::test]
async fn json_stays_the_default_unless_cbor_is_preferred() {
    let app = spawn_app().await;
    let cases = [
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (
            "application/cbor;q=0.5, application/json",
            "application/json",
        ),
        ("text/html", "application/json"),
        ("application/json;q=0.5, application/cbor", CBOR),
        ("application/cbor, */*;q=0.1", CBOR),
    ];
    for (accept, expected) in cases {
        let reply = app
            .status_request("d1", As::User("u1"))
            .header(ACCEPT, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.headers()["content-type"], expected, "{accept}");
    }
}

#[tokio::test]
async fn a_cbor_patch_is_expanded_and_answered_in_cbor() {
    let app = spawn_app().await;
    let patch = map(vec![
        ("t", Cbor::Float(19.5)),
        ("m", text("eco")),
        ("s", Cbor::Null),
        ("a", Cbor::Bool(false)),
    ]);
    let reply = app.patch_settings_cbor("d1", As::User("u1"), &patch).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some(CBOR));
    assert_eq!(reply.cbor(), json!({"t": 19.5, "m": "eco", "a": false}));
    assert_eq!(
        app.device_in_service("d1").await["settings"],
        json!({"target_temperature": 19.5, "mode": "eco", "schedule": null, "auto_mode_enabled": false})
    );
}

#[tokio::test]
async fn either_direction_alone() {
    let app = spawn_app().await;
    // CBOR in, JSON (the default) out.
    let reply = app
        .settings_request("d4", As::Device("d4"))
        .header(CONTENT_TYPE, CBOR)
        .body(cbor_bytes(&map(vec![("t", Cbor::Integer(22.into()))])))
        .send()
        .await
        .unwrap();
    let reply = Reply::of(reply).await;
    assert_eq!(
        reply.ok_json(),
        r#"{"t":22,"m":"auto","s":"daily 07:00-23:00","a":true}"#
    );
    // JSON in, CBOR out.
    let reply = app
        .settings_request("d4", As::Device("d4"))
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, CBOR)
        .body(r#"{"a":false}"#)
        .send()
        .await
        .unwrap();
    let reply = Reply::of(reply).await;
    assert_eq!(reply.header("content-type"), Some(CBOR));
    assert_eq!(
        reply.cbor(),
        json!({"t": 22, "m": "auto", "s": "daily 07:00-23:00", "a": false})
    );
}

#[tokio::test]
async fn cbor_patches_are_refused_by_the_same_rules_in_json() {
    let app = spawn_app().await;
    let cases = [
        (
            cbor_bytes(&map(vec![("x", Cbor::Bool(true))])),
            "unknown key: x",
        ),
        (
            cbor_bytes(&map(vec![("t", Cbor::Integer(36.into()))])),
            "bad value for t: a number from 5 to 35",
        ),
        (
            cbor_bytes(&map(vec![("t", Cbor::Float(f64::NAN))])),
            "bad value for t: a number from 5 to 35",
        ),
        (
            cbor_bytes(&map(vec![("m", text("turbo"))])),
            "bad value for m: one of off, heat, cool, auto, eco",
        ),
        (
            cbor_bytes(&map(vec![("s", text(&"x".repeat(65)))])),
            "bad value for s: 1 to 64 characters, or null to clear",
        ),
        (
            cbor_bytes(&map(vec![("a", Cbor::Integer(1.into()))])),
            "bad value for a: true or false",
        ),
        (
            cbor_bytes(&map(vec![("a", Cbor::Bytes(vec![1]))])),
            "bad value for a: true or false",
        ),
        (cbor_bytes(&map(vec![])), "no settings to change"),
        (cbor_bytes(&Cbor::Array(vec![])), "body must be an object"),
        (
            cbor_bytes(&Cbor::Map(vec![(
                Cbor::Integer(1.into()),
                Cbor::Bool(true),
            )])),
            "keys must be strings",
        ),
        (br#"{"t":22}"#.to_vec(), "body is not valid CBOR"),
        (vec![0xff], "body is not valid CBOR"),
        (Vec::new(), "body is not valid CBOR"),
    ];
    for (body, message) in cases {
        app.services.reset();
        let reply = app
            .settings_request("d1", As::User("u1"))
            .header(CONTENT_TYPE, CBOR)
            .header(ACCEPT, CBOR)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let reply = Reply::of(reply).await;
        // Errors are JSON even for a client that asked for CBOR.
        reply.assert_error(400, message);
        assert_eq!(app.downstream_total(), 0, "{message}");
    }
    assert_eq!(app.device_calls(PATCH_SETTINGS), 0);
}

/// `body` (raw CBOR) as a PATCH of d1's settings by its owner.
async fn patch_raw_cbor(app: &crate::helpers::TestApp, body: &[u8]) -> Reply {
    let reply = app
        .settings_request("d1", As::User("u1"))
        .header(CONTENT_TYPE, CBOR)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    Reply::of(reply).await
}

#[tokio::test]
async fn undefined_is_a_bad_value_and_only_null_clears_the_schedule() {
    let app = spawn_app().await;
    let message = "bad value for s: 1 to 64 characters, or null to clear";
    let refused: [&[u8]; 5] = [
        // {"s": undefined}
        b"\xa1\x61s\xf7",
        // simple value 23 in its two-byte spelling
        b"\xa1\x61s\xf8\x17",
        // {_ "s": undefined} (indefinite-length map)
        b"\xbf\x61s\xf7\xff",
        // {"a": false, "s": undefined}: nothing of it is applied
        b"\xa2\x61a\xf4\x61s\xf7",
        // {"s": [undefined]}
        b"\xa1\x61s\x81\xf7",
    ];
    for body in refused {
        app.services.reset();
        patch_raw_cbor(&app, body).await.assert_error(400, message);
        assert_eq!(app.downstream_total(), 0, "{body:x?}");
    }
    // Undefined is no more a target temperature than null is.
    app.services.reset();
    patch_raw_cbor(&app, b"\xa2\x61s\xf6\x61t\xf7")
        .await
        .assert_error(400, "bad value for t: a number from 5 to 35");
    assert_eq!(app.downstream_total(), 0);
    assert_eq!(
        app.device_in_service("d1").await["settings"]["schedule"],
        "weekdays 06:30-22:00",
        "no refused patch cleared it"
    );

    // CBOR null, and only null, clears it: looked up, then patched, once each.
    app.services.reset();
    let reply = patch_raw_cbor(&app, b"\xa1\x61s\xf6").await;
    assert_eq!(reply.ok_json(), r#"{"t":21.5,"m":"heat","a":true}"#);
    assert_eq!(app.device_calls(crate::helpers::GET_DEVICE), 1);
    assert_eq!(app.device_calls(PATCH_SETTINGS), 1);
    assert_eq!(
        app.device_in_service("d1").await["settings"]["schedule"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn cbor_schedules_refuse_control_characters() {
    let app = spawn_app().await;
    for schedule in ["\0", "a\r\nb", "\u{85}"] {
        app.services.reset();
        let body = cbor_bytes(&map(vec![("s", text(schedule))]));
        patch_raw_cbor(&app, &body)
            .await
            .assert_error(400, "bad value for s: no control characters");
        assert_eq!(app.downstream_total(), 0, "{schedule:?}");
    }
}
