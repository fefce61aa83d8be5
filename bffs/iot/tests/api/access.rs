//! Who may reach which device: 401 without a valid token; a user reaches the
//! devices they own, a device only itself; everything else is a 404 that
//! reads the same whether the device exists or not.

use crate::helpers::{As, GET_DEVICE, PATCH_SETTINGS, Reply, TestApp, spawn_app};

async fn both_routes(app: &TestApp, id: &str, who: As<'_>) -> [Reply; 2] {
    [
        app.get_status(id, who).await,
        app.patch_settings(id, who, r#"{"a":false}"#).await,
    ]
}

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    for reply in both_routes(&app, "d1", As::Nobody).await {
        reply.assert_error(401, "authentication required");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_token_that_does_not_verify_is_401() {
    let app = spawn_app().await;
    for reply in both_routes(&app, "d1", As::Forged).await {
        reply.assert_error(401, "invalid token");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
    }
    for authorization in ["Basic dTE6cGFzcw==", "Bearer", "Bearer not.a.jwt"] {
        let reply = app
            .client
            .get(app.url("/v1/devices/d1"))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        let reply = Reply::of(reply).await;
        assert_eq!(reply.status, 401, "{authorization}");
        assert_eq!(reply.json()["e"], "invalid token");
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_user_reaches_only_the_devices_they_own() {
    let app = spawn_app().await;
    // u1 owns d1 and d4.
    for id in ["d1", "d4"] {
        for reply in both_routes(&app, id, As::User("u1")).await {
            assert_eq!(reply.status, 200, "{id}: {}", reply.text());
        }
    }
    app.services.reset();
    for id in ["d2", "d3", "d999"] {
        for reply in both_routes(&app, id, As::User("u1")).await {
            reply.assert_error(404, "not found");
        }
    }
    // Ownership was looked up, and no PATCH went out for any of them.
    assert_eq!(app.device_calls(GET_DEVICE), 6);
    assert_eq!(app.device_calls(PATCH_SETTINGS), 0);
    assert_eq!(
        app.device_in_service("d2").await["settings"]["auto_mode_enabled"],
        false
    );
    assert_eq!(
        app.device_in_service("d3").await["settings"]["auto_mode_enabled"],
        false
    );
}

#[tokio::test]
async fn someone_elses_device_reads_exactly_like_a_missing_one() {
    let app = spawn_app().await;
    let theirs = app.get_status("d2", As::User("u1")).await;
    let missing = app.get_status("d999", As::User("u1")).await;
    assert_eq!(
        (theirs.status, &theirs.body),
        (missing.status, &missing.body)
    );
    assert_eq!(
        theirs.header("content-type"),
        missing.header("content-type")
    );
    assert_eq!(theirs.header("etag"), None);
}

#[tokio::test]
async fn a_refused_patch_sends_nothing_to_change_the_device() {
    let app = spawn_app().await;
    let before = app.device_in_service("d1").await;
    app.services.reset();
    let reply = app
        .patch_settings("d1", As::User("u2"), r#"{"t":30,"m":"cool"}"#)
        .await;
    reply.assert_error(404, "not found");
    assert_eq!(app.device_calls(PATCH_SETTINGS), 0);
    assert_eq!(app.device_in_service("d1").await, before);
}

#[tokio::test]
async fn a_device_reaches_only_itself() {
    let app = spawn_app().await;
    for reply in both_routes(&app, "d2", As::Device("d2")).await {
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    app.services.reset();
    // Another device, existing or not: refused without asking anyone.
    for id in ["d1", "d3", "d999"] {
        for reply in both_routes(&app, id, As::Device("d2")).await {
            reply.assert_error(404, "not found");
        }
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_device_token_for_a_device_that_does_not_exist() {
    let app = spawn_app().await;
    for reply in both_routes(&app, "d999", As::Device("d999")).await {
        reply.assert_error(404, "not found");
    }
}

#[tokio::test]
async fn token_kinds_are_not_interchangeable() {
    let app = spawn_app().await;
    // A user whose id happens to be a device id is still just a user: d1 is u1's.
    for reply in both_routes(&app, "d1", As::User("d1")).await {
        reply.assert_error(404, "not found");
    }
    // A device token whose subject is u1 is the device "u1", not the user.
    for reply in both_routes(&app, "d1", As::Device("u1")).await {
        reply.assert_error(404, "not found");
    }
    assert_eq!(app.device_calls(PATCH_SETTINGS), 0);
}

#[tokio::test]
async fn unknown_paths_are_compact_404s() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/v1/devices",
        "/v1/devices/d1/status",
        "/v2/devices/d1",
        "/devices/d1",
    ] {
        let reply = Reply::of(
            app.authorize(app.client.get(app.url(path)), As::User("u1"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        reply.assert_error(404, "not found");
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_subject_that_could_not_be_an_id_is_no_viewer() {
    // Signed by us, but no service could hold such an id, and a line break
    // cannot even be sent as `x-user-id`: the token is refused (401) before
    // any call (it was a 502 that blamed the device service).
    let app = spawn_app().await;
    for subject in [
        "u1\n",
        "u1\r\nx-user-id: u2",
        "u1,u2",
        ".",
        &"u".repeat(129),
    ] {
        for reply in both_routes(&app, "d1", As::User(subject)).await {
            reply.assert_error(401, "invalid token");
        }
        assert_eq!(app.downstream_total(), 0, "{subject:?}");
    }
}
