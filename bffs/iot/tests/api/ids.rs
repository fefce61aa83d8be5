//! Path ids the BFF refuses itself (404 `{"e":"not found"}`, no call at
//! all): `.` and `..` in every spelling, empty, over 128 bytes, control
//! characters, commas. Every other id reaches the device service as exactly
//! one literal path segment.

use crate::helpers::{As, GET_DEVICE, PATCH_SETTINGS, Reply, TestApp, spawn_app};

const PATCH_BODY: &[u8] = br#"{"a":false}"#;

/// Both routes with `id` spelled as-is in the path, as a user and as a device.
async fn both_routes(app: &TestApp, id: &str) -> Vec<(String, Reply)> {
    let mut replies = Vec::new();
    for who in [As::User("u1"), As::Device("d1")] {
        let status = format!("/v1/devices/{id}");
        let settings = format!("/v1/devices/{id}/settings");
        replies.push((
            format!("GET {status} as {who:?}"),
            app.raw("GET", &status, who, b"").await,
        ));
        replies.push((
            format!("PATCH {settings} as {who:?}"),
            app.raw("PATCH", &settings, who, PATCH_BODY).await,
        ));
    }
    replies
}

/// Every reply is the compact 404 and not one request left the BFF.
async fn refused(app: &TestApp, id: &str) {
    app.services.reset();
    for (request, reply) in both_routes(app, id).await {
        let shown: String = request.chars().take(120).collect();
        assert_eq!(
            (reply.status, reply.text()),
            (404, r#"{"e":"not found"}"#),
            "{shown}"
        );
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
    assert_eq!(app.device_calls(GET_DEVICE), 0, "{id:.120}");
    assert_eq!(app.device_calls(PATCH_SETTINGS), 0, "{id:.120}");
    assert_eq!(app.downstream_total(), 0, "{id:.120}");
}

#[tokio::test]
async fn dot_segments_are_refused_in_every_spelling() {
    let app = spawn_app().await;
    for id in [
        ".", "..", "%2e", "%2E", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%2E%2e",
    ] {
        refused(&app, id).await;
    }
}

#[tokio::test]
async fn empty_ids_are_refused() {
    let app = spawn_app().await;
    refused(&app, "").await;
}

#[tokio::test]
async fn ids_over_128_bytes_are_refused() {
    let app = spawn_app().await;
    refused(&app, &"a".repeat(129)).await;
    refused(&app, &"a".repeat(25_000)).await;
    // 65 × "é" is 65 characters but 130 bytes.
    refused(&app, &"%C3%A9".repeat(65)).await;
    // The issue's probe: 25,000 × `{`, percent-encoded (75 KB of path).
    app.services.reset();
    for (request, reply) in both_routes(&app, &"%7B".repeat(25_000)).await {
        assert!(
            (400..500).contains(&reply.status),
            "{request:.60}: {}",
            reply.status
        );
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn control_characters_and_commas_are_refused() {
    let app = spawn_app().await;
    for id in [
        "%00", "d1%00", "d1%0A", "%0D%0Ad1", "d1%09", "%7F", "%C2%85", "d1,d2", "d1%2Cd2",
    ] {
        refused(&app, id).await;
    }
}

#[tokio::test]
async fn ids_that_do_not_decode_are_refused() {
    let app = spawn_app().await;
    for id in ["%FF", "d1%C3", "%C0%AE%C0%AE"] {
        refused(&app, id).await;
    }
}

/// The paths the device service received since the last reset.
fn received(app: &TestApp) -> Vec<String> {
    app.services
        .device
        .control
        .requests()
        .into_iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect()
}

#[tokio::test]
async fn any_other_id_is_one_literal_segment_downstream() {
    let app = spawn_app().await;
    // (id in the client's path, the path the device service must see)
    let cases = [
        ("...", "/devices/..."),
        ("%2e%2e%2e", "/devices/..."),
        (".d1", "/devices/.d1"),
        ("..%2Fd1", "/devices/..%2Fd1"),
        ("%2e%2e%2fsettings", "/devices/..%2Fsettings"),
        ("d1%2F..", "/devices/d1%2F.."),
        ("%3F", "/devices/%3F"),
        ("%23", "/devices/%23"),
        ("a%20b", "/devices/a%20b"),
        ("%C3%A9", "/devices/%C3%A9"),
    ];
    for (id, expected) in cases {
        app.services.reset();
        let reply = app
            .raw("GET", &format!("/v1/devices/{id}"), As::User("u1"), b"")
            .await;
        reply.assert_error(404, "not found");
        // A user's PATCH looks the device up first, and stops at its 404.
        let reply = app
            .raw(
                "PATCH",
                &format!("/v1/devices/{id}/settings"),
                As::User("u1"),
                PATCH_BODY,
            )
            .await;
        reply.assert_error(404, "not found");
        let expected = format!("GET {expected}");
        assert_eq!(received(&app), [expected.clone(), expected], "{id}");
    }
}

#[tokio::test]
async fn ids_of_up_to_128_bytes_are_looked_up() {
    let app = spawn_app().await;
    for id in ["a".repeat(128), "%C3%A9".repeat(64)] {
        app.services.reset();
        let reply = app
            .raw("GET", &format!("/v1/devices/{id}"), As::User("u1"), b"")
            .await;
        reply.assert_error(404, "not found");
        assert_eq!(app.device_calls(GET_DEVICE), 1, "{id}");
        assert_eq!(received(&app), [format!("GET /devices/{id}")]);
    }
    // And the seed's own ids still work through the raw path.
    app.services.reset();
    let reply = app.raw("GET", "/v1/devices/d1", As::User("u1"), b"").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = app
        .raw(
            "PATCH",
            "/v1/devices/d1/settings",
            As::Device("d1"),
            PATCH_BODY,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        received(&app),
        ["GET /devices/d1", "PATCH /devices/d1/settings"]
    );
}
