//! Spawning the front door on an ephemeral port, and making tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use axum::{Json, Router};
use bff_server::config::loopback;
use bff_server::{
    Authentication, BffError, Config, ConnectionConfig, Defaults, FrontDoor, JwtVerifier,
    RequestCtx, ServeError, serve_with_config,
};
use downstream::Service;
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
        listen: loopback(4000),
        admin_listen: loopback(9400),
        request_timeout_ms: 2_000,
        services: &Service::ALL,
    }
}

/// What the prod profile requires, with devstack's URLs and the test secret.
pub(crate) const PROD_REQUIRED: [(&str, &str); 8] = [
    ("BFF_USER_SERVICE_URL", "http://127.0.0.1:7101"),
    ("BFF_PRODUCT_SERVICE_URL", "http://127.0.0.1:7102"),
    ("BFF_ORDER_SERVICE_URL", "http://127.0.0.1:7103"),
    ("BFF_RECOMMENDATION_SERVICE_URL", "http://127.0.0.1:7104"),
    ("BFF_DEVICE_SERVICE_URL", "http://127.0.0.1:7105"),
    ("BFF_JWT_ISSUER", ISSUER),
    ("BFF_JWT_AUDIENCE", AUDIENCE),
    ("BFF_JWT_SECRET", SECRET),
];

pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// `Config::load` in the dev profile (unless `pairs` name another: later
/// duplicates win), over [`defaults`].
pub(crate) fn load_dev(pairs: &[(&str, &str)]) -> Result<Config, bff_server::ConfigError> {
    let mut vars = env(&[("BFF_PROFILE", "dev")]);
    vars.extend(env(pairs));
    Config::load(defaults(), vars)
}

/// The prod profile with what it requires, validated.
pub(crate) fn test_config() -> Config {
    Config::load(defaults(), env(&PROD_REQUIRED)).unwrap()
}

pub(crate) fn verifier(config: &Config) -> Arc<JwtVerifier> {
    Arc::new(JwtVerifier::from_config(&config.jwt, &http()).unwrap())
}

/// The HTTP client a BFF process builds once (here: one per use).
pub(crate) fn http() -> downstream::http::HttpClient {
    downstream::http::build_http_client().unwrap()
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
    spawn_with_connections(router, ConnectionConfig::default()).await
}

/// `router` served with these connection settings.
pub(crate) async fn spawn_with_connections(
    router: Router,
    connections: ConnectionConfig,
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, signal) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve_with_config(
        listener,
        router,
        connections,
        async move {
            let _ = signal.await;
        },
    ));
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

/// The value of one series on `/metrics` (e.g.
/// `http_connections_timed_out_total{timeout="header_read"}`); 0 when not
/// recorded yet. The recorder is global: every server of this test binary
/// counts into it, so compare with `>=`.
pub(crate) async fn metric(series: &str) -> f64 {
    let server = spawn(bff_server::admin_router(&test_config())).await;
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .map(without_bff_label)
        .find_map(|line| Some(line.strip_prefix(series)?.strip_prefix(' ')?.to_owned()))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// `line` without the `bff` label every series carries (the binary's
/// name), so that series can be written as the front door records them.
fn without_bff_label(line: &str) -> String {
    let Some(start) = line.find("{bff=\"") else {
        return line.to_owned();
    };
    let value = start + "{bff=\"".len();
    let end = value + line[value..].find('"').unwrap() + 1;
    match &line[end..] {
        rest if rest.starts_with('}') => format!("{}{}", &line[..start], &rest[1..]),
        rest => format!("{}{{{}", &line[..start], rest.trim_start_matches(',')),
    }
}

/// Speaking HTTP/1.x by hand over a real socket, for what a well-behaved
/// client (reqwest) never does: stall, leave headers out, trickle a body.
pub(crate) mod raw {
    use std::time::Duration;

    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Upper bound on anything the server should do promptly.
    pub(crate) const PROMPTLY: Duration = Duration::from_secs(5);

    pub(crate) struct RawResponse {
        pub(crate) status: u16,
        pub(crate) head: String,
        pub(crate) body: String,
    }

    impl RawResponse {
        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().skip(1).find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim())
            })
        }

        pub(crate) fn json(&self) -> Value {
            serde_json::from_str(&self.body)
                .unwrap_or_else(|error| panic!("{error}: {}\n{}", self.head, self.body))
        }
    }

    pub(crate) async fn connect(addr: std::net::SocketAddr) -> TcpStream {
        TcpStream::connect(addr).await.unwrap()
    }

    pub(crate) async fn send(stream: &mut TcpStream, bytes: &str) {
        stream.write_all(bytes.as_bytes()).await.unwrap();
    }

    /// One response (the head, then as many body bytes as Content-Length
    /// says, or up to the close), within [`PROMPTLY`].
    pub(crate) async fn read_response(stream: &mut TcpStream) -> RawResponse {
        tokio::time::timeout(PROMPTLY, read_response_now(stream))
            .await
            .expect("a response within 5 s")
    }

    async fn read_response_now(stream: &mut TcpStream) -> RawResponse {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            if let Some(at) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
                break at + 4;
            }
            let read = stream.read(&mut buf).await.unwrap();
            assert!(
                read > 0,
                "closed before a whole head: {:?}",
                String::from_utf8_lossy(&bytes)
            );
            bytes.extend_from_slice(&buf[..read]);
        };
        let head = String::from_utf8(bytes[..head_end].to_vec()).unwrap();
        let mut response = RawResponse {
            status: head[9..12].parse().unwrap(),
            head,
            body: String::new(),
        };
        // No body after these, whatever the headers say.
        let length = if matches!(response.status, 101 | 204 | 304) {
            Some(0)
        } else {
            response
                .header("content-length")
                .map(|length| length.parse::<usize>().unwrap())
        };
        let mut body = bytes[head_end..].to_vec();
        while length.is_none_or(|length| body.len() < length) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(read) => body.extend_from_slice(&buf[..read]),
            }
        }
        response.body = String::from_utf8(body).unwrap();
        response
    }

    /// Whether the server closes the connection within `limit` (reading and
    /// dropping whatever it sends first); a reset counts as closed.
    pub(crate) async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 8192];
        tokio::time::timeout(limit, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    /// `GET path` on a kept-alive connection.
    pub(crate) fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
    }
}
