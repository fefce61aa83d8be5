//! Cheap polling: `ETag` on every status, `If-None-Match` → 304 without a
//! body while nothing changed, a new tag as soon as something did.

use devstack_services::Fault;
use reqwest::header::{ACCEPT, IF_NONE_MATCH};
use serde_json::json;

use crate::helpers::{As, CBOR, Reply, TestApp, spawn_app};

async fn poll(app: &TestApp, id: &str, who: As<'_>, tags: &[&str]) -> Reply {
    let mut request = app.status_request(id, who);
    for tag in tags {
        request = request.header(IF_NONE_MATCH, *tag);
    }
    Reply::of(request.send().await.unwrap()).await
}

fn is_strong_tag(tag: &str) -> bool {
    tag.len() == 18
        && tag.starts_with('"')
        && tag.ends_with('"')
        && tag[1..17].bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn every_status_carries_a_stable_etag() {
    let app = spawn_app().await;
    let first = app.get_status("d1", As::User("u1")).await;
    let tag = first.header("etag").unwrap().to_owned();
    assert!(is_strong_tag(&tag), "{tag}");
    assert_eq!(first.header("vary"), Some("accept"));
    // Same state, same tag; a device token sees the same body and tag.
    assert_eq!(
        app.get_status("d1", As::User("u1")).await.header("etag"),
        Some(tag.as_str())
    );
    assert_eq!(
        app.get_status("d1", As::Device("d1")).await.header("etag"),
        Some(tag.as_str())
    );
    // Different devices, different tags.
    assert_ne!(
        app.get_status("d4", As::User("u1")).await.header("etag"),
        Some(tag.as_str())
    );
}

#[tokio::test]
async fn the_current_tag_gets_304_without_a_body() {
    let app = spawn_app().await;
    let tag = app
        .get_status("d1", As::User("u1"))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let weak = format!("W/{tag}");
    let listed = format!("\"0000000000000000\", {tag}");
    for tags in [
        vec![tag.as_str()],
        vec![&weak],
        vec![&listed],
        vec!["\"0\"", &tag],
        vec!["*"],
    ] {
        let reply = poll(&app, "d1", As::User("u1"), &tags).await;
        assert_eq!(reply.status, 304, "{tags:?}");
        assert!(reply.body.is_empty(), "{tags:?}");
        assert_eq!(reply.header("etag"), Some(tag.as_str()));
        assert_eq!(reply.header("vary"), Some("accept"));
    }
}

#[tokio::test]
async fn a_stale_tag_gets_the_whole_status() {
    let app = spawn_app().await;
    let reply = poll(&app, "d1", As::User("u1"), &["\"0123456789abcdef\""]).await;
    assert_eq!(
        reply.ok_json(),
        r#"{"s":"online","t":21,"b":87,"ts":1764028800}"#
    );
    // Another device's tag is just another stale tag.
    let d4 = app
        .get_status("d4", As::User("u1"))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    assert_eq!(poll(&app, "d1", As::User("u1"), &[&d4]).await.status, 200);
}

#[tokio::test]
async fn a_change_on_the_device_changes_the_tag() {
    let app = spawn_app().await;
    let old = app
        .get_status("d1", As::User("u1"))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    // The device reports in: one degree warmer, a newer timestamp.
    let reported = json!({
        "id": "d1", "owner_id": "u1", "status": "online", "temperature": 22.7,
        "battery_level": 87, "last_update": "2025-11-25T00:05:00Z",
        "settings": {"target_temperature": 21.5, "mode": "heat", "schedule": null, "auto_mode_enabled": true}
    });
    app.services.device.control.set_fault(
        Fault::new("/devices/d1")
            .method("GET")
            .body(reported.to_string()),
    );
    let reply = poll(&app, "d1", As::User("u1"), &[&old]).await;
    assert_eq!(
        reply.ok_json(),
        r#"{"s":"online","t":22,"b":87,"ts":1764029100}"#
    );
    let new = reply.header("etag").unwrap();
    assert_ne!(new, old);
    assert_eq!(poll(&app, "d1", As::User("u1"), &[new]).await.status, 304);
}

#[tokio::test]
async fn json_and_cbor_bodies_have_their_own_tags() {
    let app = spawn_app().await;
    let json_tag = app
        .get_status("d1", As::User("u1"))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let cbor = Reply::of(
        app.status_request("d1", As::User("u1"))
            .header(ACCEPT, CBOR)
            .header(IF_NONE_MATCH, &json_tag)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // The JSON tag does not validate the CBOR body: the full CBOR answer.
    assert_eq!(cbor.status, 200);
    assert_eq!(cbor.header("content-type"), Some(CBOR));
    let cbor_tag = cbor.header("etag").unwrap().to_owned();
    assert_ne!(cbor_tag, json_tag);
    let again = Reply::of(
        app.status_request("d1", As::User("u1"))
            .header(ACCEPT, CBOR)
            .header(IF_NONE_MATCH, &cbor_tag)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((again.status, again.body.len()), (304, 0));
}

#[tokio::test]
async fn a_tag_opens_no_door() {
    let app = spawn_app().await;
    let tag = app
        .get_status("d1", As::User("u1"))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    poll(&app, "d1", As::Nobody, &[&tag])
        .await
        .assert_error(401, "authentication required");
    poll(&app, "d1", As::User("u2"), &[&tag])
        .await
        .assert_error(404, "not found");
    poll(&app, "d1", As::Device("d4"), &["*"])
        .await
        .assert_error(404, "not found");
    poll(&app, "d999", As::User("u1"), &["*"])
        .await
        .assert_error(404, "not found");
}
