//! Every way a settings patch is refused: 400 naming the key (or 413), and
//! nothing at all sent downstream, not even the ownership lookup.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{As, TestApp, spawn_app};

/// Sends `body` as a JSON patch to d1 as its owner and as the device itself,
/// and checks the compact 400 and that no service saw a single request.
async fn refused(app: &TestApp, body: &str, message: &str) {
    for who in [As::User("u1"), As::Device("d1")] {
        app.services.reset();
        let reply = app.patch_settings("d1", who, body).await;
        assert_eq!(
            (reply.status, reply.text()),
            (400, json!({ "e": message }).to_string().as_str()),
            "{body} as {who:?}"
        );
        assert_eq!(
            app.downstream_total(),
            0,
            "{body}: something was sent downstream"
        );
    }
}

#[tokio::test]
async fn unknown_keys_are_named() {
    let app = spawn_app().await;
    refused(&app, r#"{"x":1}"#, "unknown key: x").await;
    // The seed passed these through; we do not, even next to valid keys.
    refused(&app, r#"{"t":22,"fan":"max"}"#, "unknown key: fan").await;
    // The device service's own names are not the API's.
    refused(
        &app,
        r#"{"target_temperature":22}"#,
        "unknown key: target_temperature",
    )
    .await;
    refused(&app, r#"{"T":22}"#, "unknown key: T").await;
    refused(&app, r#"{"t":22,"t":23}"#, "duplicate key: t").await;
}

#[tokio::test]
async fn target_temperature_must_be_a_number_from_5_to_35() {
    let app = spawn_app().await;
    let message = "bad value for t: a number from 5 to 35";
    for body in [
        r#"{"t":4.9}"#,
        r#"{"t":35.1}"#,
        r#"{"t":-20}"#,
        r#"{"t":1e9}"#,
        r#"{"t":"22"}"#,
        r#"{"t":null}"#,
        r#"{"t":true}"#,
        r#"{"t":[22]}"#,
        r#"{"m":"heat","t":40}"#,
    ] {
        refused(&app, body, message).await;
    }
}

#[tokio::test]
async fn mode_must_be_one_of_the_contract_values() {
    let app = spawn_app().await;
    let message = "bad value for m: one of off, heat, cool, auto, eco";
    for body in [
        r#"{"m":"turbo"}"#,
        r#"{"m":"Heat"}"#,
        r#"{"m":""}"#,
        r#"{"m":1}"#,
        r#"{"m":null}"#,
        r#"{"m":{"heat":true}}"#,
    ] {
        refused(&app, body, message).await;
    }
}

#[tokio::test]
async fn schedule_must_be_1_to_64_characters_or_null() {
    let app = spawn_app().await;
    let message = "bad value for s: 1 to 64 characters, or null to clear";
    let too_long = json!({ "s": "x".repeat(65) }).to_string();
    for body in [
        too_long.as_str(),
        r#"{"s":""}"#,
        r#"{"s":7}"#,
        r#"{"s":false}"#,
        r#"{"s":["mon"]}"#,
    ] {
        refused(&app, body, message).await;
    }
}

#[tokio::test]
async fn schedule_refuses_control_characters() {
    let app = spawn_app().await;
    let message = "bad value for s: no control characters";
    for schedule in [
        "\0",
        "weekdays\0",
        "\r",
        "\n",
        "06:30\r\nx-injected: 1",
        "\t",
        "\u{1b}[2J",
        "\u{7f}",
        "\u{85}",
        "\u{9f}",
    ] {
        refused(&app, &json!({ "s": schedule }).to_string(), message).await;
    }
    // Escapes in the JSON text decode to the same characters.
    refused(&app, r#"{"s":"a\u0000b"}"#, message).await;
    refused(&app, r#"{"m":"eco","s":"\u000d\u000a"}"#, message).await;
    assert_eq!(
        app.device_in_service("d1").await["settings"]["schedule"],
        "weekdays 06:30-22:00",
        "the schedule is untouched"
    );
}

#[tokio::test]
async fn auto_mode_must_be_a_boolean() {
    let app = spawn_app().await;
    let message = "bad value for a: true or false";
    for body in [
        r#"{"a":"true"}"#,
        r#"{"a":1}"#,
        r#"{"a":0}"#,
        r#"{"a":null}"#,
    ] {
        refused(&app, body, message).await;
    }
}

#[tokio::test]
async fn empty_non_object_and_non_json_bodies() {
    let app = spawn_app().await;
    refused(&app, "{}", "no settings to change").await;
    for body in ["[]", r#"[{"t":22}]"#, "22", r#""t""#, "null", "true"] {
        refused(&app, body, "body must be an object").await;
    }
    for body in [
        "",
        "t=22",
        r#"{"t":22"#,
        r#"{'t':22}"#,
        r#"{"t":22}{"m":"eco"}"#,
        "\u{feff}{}",
    ] {
        refused(&app, body, "body is not valid JSON").await;
    }
}

#[tokio::test]
async fn unsupported_content_type() {
    let app = spawn_app().await;
    let reply = app
        .settings_request("d1", As::User("u1"))
        .header("content-type", "text/plain")
        .body(r#"{"t":22}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    assert_eq!(
        reply.text().await.unwrap(),
        r#"{"e":"content type must be application/json or application/cbor"}"#
    );
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn bad_input_is_400_before_ownership_is_looked_up() {
    // u1 does not own d2: the body is refused before anyone asks.
    let app = spawn_app().await;
    refused_as(&app, "d2", As::User("u1"), r#"{"x":1}"#, 400).await;
}

async fn refused_as(app: &TestApp, id: &str, who: As<'_>, body: &str, status: u16) {
    app.services.reset();
    let reply = app.patch_settings(id, who, body).await;
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(app.downstream_total(), 0);
}

/// `{"t":22}` padded with spaces to exactly `len` bytes.
fn padded(len: usize) -> String {
    let body = r#"{"t":22}"#;
    format!("{}{body}", " ".repeat(len - body.len()))
}

#[tokio::test]
async fn bodies_over_1_kib_are_413_and_1_kib_is_fine() {
    let app = spawn_app().await;
    app.services.reset();
    let reply = app
        .patch_settings("d1", As::User("u1"), &padded(1025))
        .await;
    reply.assert_error(413, "request body is larger than 1024 bytes");
    assert_eq!(app.downstream_total(), 0);

    let reply = app
        .patch_settings("d1", As::User("u1"), &padded(1024))
        .await;
    assert_eq!(
        reply.ok_json(),
        r#"{"t":22,"m":"heat","s":"weekdays 06:30-22:00","a":true}"#
    );
}

#[tokio::test]
async fn a_chunked_body_over_1_kib_is_413_too() {
    // No Content-Length to refuse up front: the limit is hit while reading.
    let app = spawn_app().await;
    let token = {
        let request = app
            .authorize(app.client.get("http://unused"), As::User("u1"))
            .build()
            .unwrap();
        request.headers()["authorization"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let body = padded(2000);
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "PATCH /v1/devices/d1/settings HTTP/1.1\r\nHost: {}\r\nAuthorization: {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.as_bytes().chunks(500) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains(r#"{"e":"request body is larger than 1024 bytes"}"#),
        "{response}"
    );
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_configured_limit_above_1_kib_is_capped_and_one_below_applies() {
    let app = crate::helpers::spawn_app_with(|config| config.body_limit_bytes = 64 * 1024).await;
    let reply = app
        .patch_settings("d1", As::User("u1"), &padded(1025))
        .await;
    assert_eq!(reply.status, 413);

    let app = crate::helpers::spawn_app_with(|config| config.body_limit_bytes = 100).await;
    let reply = app.patch_settings("d1", As::User("u1"), &padded(101)).await;
    reply.assert_error(413, "request body is larger than 100 bytes");
    let reply = app.patch_settings("d1", As::User("u1"), &padded(100)).await;
    assert_eq!(reply.status, 200);
}
