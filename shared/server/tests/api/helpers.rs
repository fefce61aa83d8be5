//! Spawning the front door on an ephemeral port, and making tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use axum::{Json, Router};
use bff_server::{
    Authentication, BffError, Config, Defaults, FrontDoor, JwtVerifier, RequestCtx, ServeError,
    serve_with_shutdown,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// 44 bytes: comfortably over the 32-byte minimum.
pub(crate) const SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstu";
pub(crate) const ISSUER: &str = "devstack";
pub(crate) const AUDIENCE: &str = "bff";

pub(crate) fn defaults() -> Defaults {
    Defaults {
        listen: "127.0.0.1:4000".parse().unwrap(),
    }
}

pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// Defaults plus the test secret, validated.
pub(crate) fn test_config() -> Config {
    Config::load(defaults(), env(&[("BFF_JWT_SECRET", SECRET)])).unwrap()
}

pub(crate) fn verifier(config: &Config) -> Arc<JwtVerifier> {
    Arc::new(JwtVerifier::from_config(&config.jwt).unwrap())
}

pub(crate) fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// An HS256 token with exactly these claims.
pub(crate) fn token(claims: &Value) -> String {
    token_with(Algorithm::HS256, SECRET, claims)
}

pub(crate) fn token_with(algorithm: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Claims of a valid user token for `sub`, to be tweaked per test.
pub(crate) fn user_claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600 })
}

/// A server on 127.0.0.1:0, stopped by `shutdown`.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends the shutdown signal without waiting for the server to stop.
    pub(crate) fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Signals shutdown and waits until the server has drained and stopped.
    pub(crate) async fn stop(mut self) -> Result<(), ServeError> {
        self.signal_shutdown();
        self.handle.await.unwrap()
    }
}

pub(crate) async fn spawn(router: Router) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, signal) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve_with_shutdown(listener, router, async move {
        let _ = signal.await;
    }));
    TestServer {
        addr,
        client: reqwest::Client::new(),
        shutdown: Some(shutdown),
        handle,
    }
}

/// `routes` behind the standard front door built from `config`.
pub(crate) async fn spawn_front_door(routes: Router, config: &Config) -> TestServer {
    spawn(FrontDoor::new(config, verifier(config)).wrap(routes)).await
}

/// Routes that show what the front door recorded about a request.
pub(crate) fn probe_routes() -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/private", get(private))
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route(
            "/sleep",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                "woke up"
            }),
        )
}

async fn whoami(auth: Authentication, RequestCtx(ctx): RequestCtx) -> Json<Value> {
    let auth = match auth {
        Authentication::Anonymous => json!("anonymous"),
        Authentication::Viewer(viewer) => json!({ "viewer": viewer }),
        Authentication::Invalid(reason) => json!({ "invalid": reason.to_string() }),
    };
    Json(json!({
        "auth": auth,
        "request_id": ctx.request_id,
        "traceparent": ctx.trace.to_string(),
        "user_id": ctx.user_id,
    }))
}

/// A REST handler that needs a viewer.
async fn private(auth: Authentication) -> Result<Json<Value>, BffError> {
    let viewer = auth.require_viewer()?;
    Ok(Json(json!({ "hello": viewer.user_id })))
}

/// A file under the system temp dir, removed on drop.
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    pub(crate) fn new(contents: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "bff-server-test-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    pub(crate) fn path_str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
