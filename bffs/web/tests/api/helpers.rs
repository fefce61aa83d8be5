//! The harness: devstack's five services and the web BFF, each on an
//! ephemeral port, and a client that speaks GraphQL to the BFF over HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use bff_server::config::loopback;
use bff_server::{Config, Defaults, Profile};
use devstack_services::{RecordedRequest, Services};
use devstack_services::{TokenKind, issue_dev_token};
use downstream::DownstreamConfig;
use serde_json::{Value, json};
pub(crate) use testkit::{
    assert_failed, assert_no_internals, data, error_at, error_codes, errors, json_200, only_error,
    usd,
};
use tokio::task::JoinHandle;

/// 45 bytes: over the 32-byte minimum HS256 secret.
pub(crate) const SECRET: &str = "web-bff-e2e-test-secret-0123456789-abcdefghij";

/// The header that tells the BFF's CSRF prevention a GET was not sent by a
/// page on another site (a plain GET with no content type is what any page
/// can make a browser send); Apollo's mobile clients send
/// `x-apollo-operation-name`, web clients `apollo-require-preflight`.
pub(crate) const PREFLIGHT: (&str, &str) = ("apollo-require-preflight", "true");

/// The web BFF in front of its own devstack. Dropping it stops both.
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    /// The admin listener (`/metrics`).
    pub(crate) admin_addr: SocketAddr,
    pub(crate) services: Services,
    pub(crate) client: reqwest::Client,
    pub(crate) config: Config,
    server: JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A token for `subject` (a user's or a device's) valid for `ttl`, signed
/// as `config` verifies.
pub(crate) fn token_for(config: &Config, subject: &str, ttl: Duration, kind: TokenKind) -> String {
    let jwt = &config.jwt;
    issue_dev_token(
        jwt.secret.as_deref().unwrap(),
        &jwt.issuer,
        &jwt.audience,
        subject,
        ttl,
        kind,
    )
}

/// The configuration the tests start from: `services`' URLs, the test
/// secret, the dev profile.
pub(crate) fn test_config(services: &Services) -> Config {
    let mut config = Config::new(Defaults {
        listen: loopback(0),
        ..web_bff::DEFAULTS
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

/// The BFF with `tweak` applied to the configuration before it is built
/// (short downstream timeouts, cache TTL 0, ...).
pub(crate) async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let services = Services::spawn_ephemeral().await.unwrap();
    let mut config = test_config(&services);
    tweak(&mut config);
    config.validate().unwrap();

    let router = web_bff::app(&config).unwrap();
    // Both listeners, as `web-bff` serves them.
    let listeners = bff_server::Listeners {
        public: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let addr = listeners.public.local_addr().unwrap();
    let admin_addr = listeners.admin.local_addr().unwrap();
    let server = {
        let config = config.clone();
        tokio::spawn(async move {
            bff_server::serve_listeners(listeners, router, &config, std::future::pending())
                .await
                .unwrap();
        })
    };
    TestApp {
        addr,
        admin_addr,
        services,
        client: reqwest::Client::new(),
        config,
        server,
    }
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The Prometheus text of the admin listener's `/metrics`.
    pub(crate) async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.admin_addr);
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        response.text().await.unwrap()
    }

    /// A valid bearer token for `user_id`, signed with the BFF's secret.
    pub(crate) fn token(&self, user_id: &str) -> String {
        token_for(
            &self.config,
            user_id,
            Duration::from_secs(600),
            TokenKind::User,
        )
    }

    /// `POST /graphql` with `{query, variables}` and, if given, a bearer token.
    pub(crate) async fn post_graphql(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        self.graphql_request(query, variables, token)
            .send()
            .await
            .unwrap()
    }

    /// The request `post_graphql` sends, for tests that add headers.
    pub(crate) fn graphql_request(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A signed-out query; the response must be HTTP 200.
    pub(crate) async fn query(&self, query: &str, variables: Value) -> Value {
        json_200(self.post_graphql(query, variables, None).await).await
    }

    /// A query as `user_id` (bearer token from `issue_dev_token`); the
    /// response must be HTTP 200.
    pub(crate) async fn query_as(&self, user_id: &str, query: &str, variables: Value) -> Value {
        let token = self.token(user_id);
        json_200(self.post_graphql(query, variables, Some(&token)).await).await
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

    /// `GET /products` calls (id batches and category pages).
    pub(crate) fn product_batches(&self) -> Vec<RecordedRequest> {
        self.services
            .product
            .control
            .requests()
            .into_iter()
            .filter(|r| r.route == "GET /products")
            .collect()
    }
}

/// `{amountCents, currency, formatted}` of a USD amount.
pub(crate) fn money(cents: i64) -> Value {
    json!({ "amountCents": cents, "currency": "USD", "formatted": usd(cents) })
}

/// The seed the services started from (the same on every run).
pub(crate) fn seed() -> devstack_services::seed::Seed {
    devstack_services::seed::Seed::new()
}
