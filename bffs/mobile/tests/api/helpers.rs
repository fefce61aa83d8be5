//! The harness: devstack's five services and the mobile BFF, each on an
//! ephemeral port, and a client that speaks GraphQL (plain and persisted) to
//! the BFF over HTTP.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use bff_server::config::loopback;
use bff_server::{Config, Defaults, Profile};
use devstack_services::{RecordedRequest, Services};
use devstack_services::{TokenKind, issue_dev_token};
use downstream::DownstreamConfig;
use serde_json::{Value, json};
pub(crate) use testkit::{
    assert_failed, data, error_at, error_codes, errors, json_200, only_error, usd,
};
use tokio::task::JoinHandle;

/// 45 bytes: over the 32-byte minimum HS256 secret.
pub(crate) const SECRET: &str = "mobile-bff-e2e-test-secret-0123456789-abcdefg";

/// The header that tells the BFF's CSRF prevention a GET was not sent by a
/// page on another site (a plain GET with no content type is what any page
/// can make a browser send); Apollo's mobile clients send
/// `x-apollo-operation-name`, web clients `apollo-require-preflight`.
pub(crate) const PREFLIGHT: (&str, &str) = ("apollo-require-preflight", "true");

/// The query the app's dashboard screen sends.
pub(crate) const DASHBOARD: &str = "query Dashboard { dashboard { user { name avatarUrl } recentOrders { id status total date } notificationsCount } }";

/// The mobile BFF in front of its own devstack. Dropping it stops both.
pub(crate) struct TestApp {
    pub(crate) services: Services,
    pub(crate) client: reqwest::Client,
    pub(crate) config: Config,
    server: Server,
}

/// A router served on an ephemeral port until dropped.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn serve(router: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        bff_server::serve_with_shutdown(listener, router, std::future::pending())
            .await
            .unwrap();
    });
    Server { addr, task }
}

/// The configuration the tests start from: devstack's URLs, a test secret,
/// the dev profile.
pub(crate) fn test_config(services: &Services) -> Config {
    let mut config = Config::new(Defaults {
        listen: loopback(0),
        ..mobile_bff::DEFAULTS
    });
    config.profile = Profile::Dev;
    config.downstream = DownstreamConfig::with_urls(services.urls());
    config.jwt.secret = Some(SECRET.to_owned());
    config
}

/// The BFF with the default test configuration.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The BFF with `tweak` applied to the configuration before it is built.
pub(crate) async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let services = Services::spawn_ephemeral().await.unwrap();
    let mut config = test_config(&services);
    tweak(&mut config);
    config.validate().unwrap();
    let server = serve(mobile_bff::app(&config).unwrap()).await;
    TestApp {
        services,
        client: client(),
        config,
        server,
    }
}

/// Talks to local servers only, whatever proxy the environment names.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    /// The Prometheus text on the admin listener's `/metrics`. The recorder
    /// is process-wide: every test of this binary counts into it.
    pub(crate) async fn scrape(&self) -> String {
        let admin = serve(bff_server::admin_router(&self.config)).await;
        let url = format!("http://{}/metrics", admin.addr);
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// A valid bearer token for `user_id`, signed with the BFF's secret.
    pub(crate) fn token(&self, user_id: &str) -> String {
        token(&self.config, user_id, TokenKind::User)
    }

    /// `POST /graphql` with `body` (`{query, variables, extensions}`) and,
    /// if given, a bearer token.
    pub(crate) async fn post(&self, body: Value, token: Option<&str>) -> reqwest::Response {
        let request = self.client.post(self.url("/graphql")).json(&body);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().await.unwrap()
    }

    /// `GET /graphql?...` with the GraphQL-over-HTTP parameters of `body`
    /// (objects JSON-encoded, as Apollo clients send them).
    pub(crate) async fn get(&self, body: Value, token: Option<&str>) -> reqwest::Response {
        let params = get_params(&body);
        let request = self
            .client
            .get(self.url("/graphql"))
            .header(PREFLIGHT.0, PREFLIGHT.1)
            .query(&params);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().await.unwrap()
    }

    /// A signed-out query over POST; the response must be HTTP 200.
    pub(crate) async fn query(&self, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables });
        json_200(self.post(body, None).await).await
    }

    /// A query as `user_id` over POST; the response must be HTTP 200.
    pub(crate) async fn query_as(&self, user_id: &str, query: &str, variables: Value) -> Value {
        let token = self.token(user_id);
        let body = json!({ "query": query, "variables": variables });
        json_200(self.post(body, Some(&token)).await).await
    }

    /// Calls every service received since the last reset.
    pub(crate) fn downstream_total(&self) -> u64 {
        self.services.all().iter().map(|s| s.control.total()).sum()
    }

    /// Every request every service recorded since the last reset.
    pub(crate) fn downstream_requests(&self) -> Vec<RecordedRequest> {
        self.services
            .all()
            .iter()
            .flat_map(|s| s.control.requests())
            .collect()
    }

    /// The routes called since the last reset, sorted.
    pub(crate) fn downstream_routes(&self) -> Vec<String> {
        let mut routes: Vec<String> = self
            .downstream_requests()
            .into_iter()
            .map(|r| r.route)
            .collect();
        routes.sort();
        routes
    }
}

pub(crate) fn token(config: &Config, user_id: &str, kind: TokenKind) -> String {
    let jwt = &config.jwt;
    issue_dev_token(
        jwt.secret.as_deref().unwrap(),
        &jwt.issuer,
        &jwt.audience,
        user_id,
        Duration::from_secs(600),
        kind,
    )
}

/// Query-string parameters for a GET: strings as they are, anything else
/// JSON-encoded (`extensions`, `variables`).
fn get_params(body: &Value) -> Vec<(String, String)> {
    body.as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), value)
        })
        .collect()
}

/// `{"persistedQuery": {"version": 1, "sha256Hash": ...}}`.
pub(crate) fn apq_extension(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// The hex SHA-256 of `query`, computed as an Apollo client does (the
/// `sha2` crate straight, not the BFF's helper).
pub(crate) fn sha256(query: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(query.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A header of `response` as text, if present.
pub(crate) fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

/// The seed the services started from (the same on every run).
pub(crate) fn seed() -> devstack_services::seed::Seed {
    devstack_services::seed::Seed::new()
}

pub(crate) fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub(crate) fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A file in the temp directory, removed when dropped.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl TempFile {
    pub(crate) fn with_contents(contents: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "mobile-bff-test-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
