//! Traces of the REST BFF: a request is one server span named by its route
//! template, the parent of its downstream calls; a 5xx answer is an error.
//! Exported over OTLP/HTTP to a collector inside the test (`testkit::otlp`).
//!
//! A binary of its own: the tracer provider and the log subscriber are the
//! process's. Every test starts with `collector()` and holds `SERIAL`.
#![allow(clippy::unwrap_used)]

#[path = "api/helpers.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

use devstack_services::Fault;
use testkit::otlp::{
    CLIENT, ERROR, SERIAL, SERVER, collector, of_kind, one_of_kind, one_trace_id, traceparent,
    wait_for_trace, within,
};

use helpers::{As, GET_DEVICE, TestApp, spawn_app};

/// The one trace id of every downstream call the app recorded.
fn recorded_trace_id(app: &TestApp) -> String {
    let requests = app.services.device.control.requests();
    one_trace_id(
        requests
            .iter()
            .map(|request| request.traceparent.as_deref().unwrap()),
    )
}

#[tokio::test]
async fn a_device_status_is_a_server_span_named_by_its_route_then_its_call() {
    collector();
    let _serial = SERIAL.lock().await;
    let app = spawn_app().await;
    let reply = app.get_status("d1", As::User("u1")).await;
    assert_eq!(reply.status, 200);

    let trace_id = recorded_trace_id(&app);
    let spans = wait_for_trace(&trace_id, 2).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server = one_of_kind(&spans, SERVER);
    assert_eq!(server.name(), "GET /v1/devices/{id}");
    assert_eq!(server.str("http.route"), Some("/v1/devices/{id}"));
    assert_eq!(server.str("url.path"), Some("/v1/devices/d1"));
    assert_eq!(server.int("http.response.status_code"), Some(200));
    assert_ne!(server.status_code(), ERROR);

    let client = one_of_kind(&spans, CLIENT);
    assert_eq!(client.name(), GET_DEVICE);
    assert_eq!(client.str("url.template"), Some("/devices/{id}"));
    assert_eq!(client.str("peer.service"), Some("device"));
    assert_eq!(client.parent_id(), Some(server.span_id()));
    assert!(within(client, server));
    let recorded = app.services.device.control.requests();
    let (_, parent, _) = traceparent(recorded[0].traceparent.as_deref().unwrap());
    assert_eq!(parent, client.span_id());
}

#[tokio::test]
async fn a_failing_service_makes_a_5xx_server_span_an_error() {
    collector();
    let _serial = SERIAL.lock().await;
    let app = spawn_app().await;
    app.services
        .device
        .control
        .set_fault(Fault::new("/devices").status(503));
    let reply = app.get_status("d1", As::User("u1")).await;
    assert_eq!(reply.status, 502);

    let trace_id = recorded_trace_id(&app);
    let tries = app.services.device.control.count(GET_DEVICE);
    let spans = wait_for_trace(&trace_id, 1 + usize::try_from(tries).unwrap()).await;
    let server = one_of_kind(&spans, SERVER);
    assert_eq!(server.int("http.response.status_code"), Some(502));
    assert_eq!(server.str("error.type"), Some("502"));
    assert_eq!(server.status_code(), ERROR);
    let clients = of_kind(&spans, CLIENT);
    assert_eq!(clients.len() as u64, tries);
    for client in clients {
        assert_eq!(client.int("http.response.status_code"), Some(503));
        assert_eq!(client.status_code(), ERROR);
        assert_eq!(client.parent_id(), Some(server.span_id()));
    }
}

#[tokio::test]
async fn an_unknown_path_is_named_by_its_method_alone() {
    collector();
    let _serial = SERIAL.lock().await;
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/v1/no/such/thing"))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let spans = wait_for_trace("0af7651916cd43dd8448eb211c80319c", 1).await;
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let server = one_of_kind(&spans, SERVER);
    // No route template: never the raw path, which could be anything.
    assert_eq!(server.name(), "GET");
    assert_eq!(server.str("http.route"), None);
    assert_eq!(server.int("http.response.status_code"), Some(404));
    assert_ne!(server.status_code(), ERROR);
    assert_eq!(server.parent_id().as_deref(), Some("b7ad6b7169203331"));
}
