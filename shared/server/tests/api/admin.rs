//! The admin listener: `/metrics` only there, health on both listeners,
//! and `/readyz` 503 while the process drains.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bff_server::{Config, FrontDoor, Listeners, serve_listeners};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

use crate::helpers::{test_config, verifier};

struct Process {
    public: SocketAddr,
    admin: SocketAddr,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<Result<(), bff_server::ServeError>>,
}

impl Process {
    fn url(addr: SocketAddr, path: &str) -> String {
        format!("http://{addr}{path}")
    }

    async fn get(&self, addr: SocketAddr, path: &str) -> (StatusCode, String) {
        let response = self.client.get(Self::url(addr, path)).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

/// A BFF process as `serve` runs it: `routes` behind the front door on the
/// public listener, the admin router on the admin one.
async fn spawn_process(routes: Router) -> Process {
    // No services to check: readiness depends on the drain alone.
    let config = Config {
        services: &[],
        ..test_config()
    };
    let listeners = Listeners {
        public: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let public = listeners.public.local_addr().unwrap();
    let admin = listeners.admin.local_addr().unwrap();
    let router = FrontDoor::new(&config, verifier(&config)).wrap(routes);
    let (shutdown, signal) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        serve_listeners(listeners, router, &config, async {
            let _ = signal.await;
        })
        .await
    });
    Process {
        public,
        admin,
        client: reqwest::Client::new(),
        shutdown: Some(shutdown),
        served,
    }
}

#[tokio::test]
async fn metrics_are_served_only_on_the_admin_listener() {
    let process = spawn_process(Router::new()).await;
    let (status, text) = process.get(process.admin, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    // The front door's own series are there once a connection was served.
    assert!(text.contains("http_connections_open"), "{text}");

    let (status, _) = process.get(process.public, "/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Probes work on either port.
    for addr in [process.public, process.admin] {
        let (status, body) = process.get(addr, "/healthz").await;
        assert_eq!(status, StatusCode::OK, "{addr}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["status"],
            "ok"
        );
        let (status, body) = process.get(addr, "/readyz").await;
        assert_eq!(status, StatusCode::OK, "{addr}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["status"],
            "ready"
        );
    }
}

#[tokio::test]
async fn readyz_answers_503_while_the_process_drains() {
    // A request the test holds open, so the drain lasts as long as needed.
    let release = std::sync::Arc::new(Notify::new());
    let started = std::sync::Arc::new(Notify::new());
    let routes = {
        let (release, started) = (release.clone(), started.clone());
        Router::new().route(
            "/slow",
            get(move || async move {
                started.notify_one();
                release.notified().await;
                "done"
            }),
        )
    };
    let mut process = spawn_process(routes).await;
    let slow = {
        let client = process.client.clone();
        let url = Process::url(process.public, "/slow");
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    started.notified().await;

    process.shutdown.take().unwrap().send(()).unwrap();
    // The admin listener reports the drain until it is over.
    let mut draining = None;
    for _ in 0..100 {
        let (status, body) = process.get(process.admin, "/readyz").await;
        if status == StatusCode::SERVICE_UNAVAILABLE && body.contains("draining") {
            draining = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = draining.expect("readyz never said draining");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({"status": "draining"})
    );
    let (status, metrics) = process.get(process.admin, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    // (Its value is shared with concurrent tests of this binary.)
    assert!(metrics.contains("bff_ready"), "{metrics}");
    // The public listener no longer takes connections.
    assert!(
        process
            .client
            .get(Process::url(process.public, "/healthz"))
            .send()
            .await
            .is_err(),
        "the public listener still accepts during the drain"
    );

    // The in-flight request finishes; then both listeners stop.
    release.notify_one();
    assert_eq!(slow.await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), process.served)
        .await
        .expect("the process did not stop after the drain")
        .unwrap()
        .unwrap();
    assert!(
        process
            .client
            .get(Process::url(process.admin, "/healthz"))
            .send()
            .await
            .is_err()
    );
}
