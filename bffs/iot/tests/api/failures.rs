//! When the device service fails: 502/504 through the shared error mapping,
//! with the compact body; and the front door's health routes.

use devstack_services::Fault;

use crate::helpers::{As, PATCH_SETTINGS, Reply, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_failing_device_service_is_502() {
    let app = spawn_app().await;
    app.services
        .device
        .control
        .set_fault(Fault::new("/devices").status(503));
    app.get_status("d1", As::User("u1"))
        .await
        .assert_error(502, "device service unavailable");
    app.patch_settings("d1", As::Device("d1"), r#"{"a":false}"#)
        .await
        .assert_error(502, "device service unavailable");
}

#[tokio::test]
async fn a_contract_breaking_answer_is_502() {
    let app = spawn_app().await;
    app.services
        .device
        .control
        .set_fault(Fault::new("/devices/d1").body(r#"{"id":"d1","status":"melting"}"#));
    app.get_status("d1", As::User("u1"))
        .await
        .assert_error(502, "device service unavailable");
}

#[tokio::test]
async fn a_slow_device_service_is_504() {
    let app = spawn_app_with(|config| config.downstream.timeout_ms = 100).await;
    app.services
        .device
        .control
        .set_fault(Fault::new("/devices").latency(1_000));
    app.get_status("d1", As::User("u1"))
        .await
        .assert_error(504, "device service timed out");
}

#[tokio::test]
async fn the_whole_request_has_a_deadline() {
    let app = spawn_app_with(|config| {
        config.downstream.timeout_ms = 5_000;
        config.request_timeout_ms = 200;
    })
    .await;
    app.services
        .device
        .control
        .set_fault(Fault::new("/devices").hang());
    // The downstream call gets the request's deadline (less a reserve to
    // answer in), so the device learns which service was late, in time.
    let started = std::time::Instant::now();
    app.get_status("d1", As::User("u1"))
        .await
        .assert_error(504, "device service timed out");
    assert!(started.elapsed() < std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn a_failed_patch_after_a_good_lookup_is_502_and_changes_nothing() {
    let app = spawn_app().await;
    app.services
        .device
        .control
        .set_fault(Fault::new("/devices/d1/settings").status(500));
    app.patch_settings("d1", As::User("u1"), r#"{"t":30}"#)
        .await
        .assert_error(502, "device service unavailable");
    assert_eq!(app.device_calls(PATCH_SETTINGS), 1);
    app.services.device.control.clear_faults();
    assert_eq!(
        app.device_in_service("d1").await["settings"]["target_temperature"],
        21.5
    );
}

#[tokio::test]
async fn health_and_readiness_depend_on_the_device_service_only() {
    // The other four services point at a port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let app = spawn_app_with(|config| {
        for service in [
            downstream::Service::User,
            downstream::Service::Product,
            downstream::Service::Order,
            downstream::Service::Recommendation,
        ] {
            config.downstream.service_mut(service).url = closed.parse().unwrap();
        }
    })
    .await;
    let get = |path: &'static str| {
        let request = app.client.get(app.url(path));
        async move { Reply::of(request.send().await.unwrap()).await }
    };
    assert_eq!(
        get("/healthz").await.json(),
        serde_json::json!({"status": "ok"})
    );
    assert_eq!(
        get("/readyz").await.json(),
        serde_json::json!({"status": "ready"})
    );

    let app = spawn_app_with(|config| {
        config
            .downstream
            .service_mut(downstream::Service::Device)
            .url = closed.parse().unwrap();
    })
    .await;
    let reply = Reply::of(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "unavailable", "unreachable": ["device"]})
    );
}
