use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bff_server::{Config, ServeError, serve};
use tokio::sync::oneshot;

use crate::helpers::{spawn_front_door, test_config};

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let started_tx = Arc::new(Mutex::new(Some(started_tx)));
    let routes = Router::new().route(
        "/work",
        get(move || {
            let started_tx = Arc::clone(&started_tx);
            async move {
                if let Some(tx) = started_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                tokio::time::sleep(Duration::from_millis(400)).await;
                "done"
            }
        }),
    );
    let mut server = spawn_front_door(routes, &test_config()).await;
    let url = server.url("/work");
    let client = server.client.clone();
    let in_flight = tokio::spawn(async move {
        let response = client.get(url).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    });

    started_rx.await.unwrap();
    server.signal_shutdown();

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "done");

    let addr = server.addr;
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("the server stops once drained")
        .unwrap();
    // No longer accepting connections.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn serve_reports_an_address_in_use() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        listen: taken.local_addr().unwrap(),
        ..test_config()
    };
    let error = serve(Router::new(), &config).await.unwrap_err();
    assert!(matches!(error, ServeError::Bind { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&config.listen.to_string()), "{message}");
    assert!(message.contains("BFF_LISTEN"), "{message}");
}
