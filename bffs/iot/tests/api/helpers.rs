//! The harness: devstack's five services and the IoT BFF, each on an
//! ephemeral port, and a client that speaks the compact REST API over HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use bff_server::config::loopback;
use bff_server::{Config, Defaults};
use devstack_services::Services;
use devstack_services::{TokenKind, issue_dev_token};
use downstream::DownstreamConfig;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use tokio::task::JoinHandle;

/// 44 bytes: over the 32-byte minimum HS256 secret.
pub(crate) const SECRET: &str = "iot-bff-e2e-test-secret-0123456789-abcdefghi";
pub(crate) const CBOR: &str = "application/cbor";
/// The device service's route keys, as devstack counts them.
pub(crate) const GET_DEVICE: &str = "GET /devices/{id}";
pub(crate) const PATCH_SETTINGS: &str = "PATCH /devices/{id}/settings";

/// The IoT BFF in front of its own devstack. Dropping it stops both.
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
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

/// The BFF with the default test configuration.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The BFF with `tweak` applied to the configuration before it is built.
pub(crate) async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let services = Services::spawn_ephemeral().await.unwrap();
    let mut config = Config::new(Defaults {
        listen: loopback(0),
        ..iot_bff::DEFAULTS
    });
    config.downstream = DownstreamConfig::with_urls(services.urls());
    config.jwt.secret = Some(SECRET.to_owned());
    tweak(&mut config);
    config.validate().unwrap();

    let router = iot_bff::app(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        bff_server::serve_with_shutdown(listener, router, std::future::pending())
            .await
            .unwrap();
    });
    TestApp {
        addr,
        services,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        config,
        server,
    }
}

/// Who a request is sent as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum As<'a> {
    Nobody,
    User(&'a str),
    Device(&'a str),
    /// A header that is not a token this BFF signed.
    Forged,
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn token(&self, subject: &str, kind: TokenKind) -> String {
        let jwt = &self.config.jwt;
        issue_dev_token(
            jwt.secret.as_deref().unwrap(),
            &jwt.issuer,
            &jwt.audience,
            subject,
            Duration::from_secs(600),
            kind,
        )
    }

    /// The `Authorization` header value `who` sends, if any.
    pub(crate) fn authorization(&self, who: As<'_>) -> Option<String> {
        let request = self
            .authorize(self.client.get("http://unused.invalid"), who)
            .build()
            .unwrap();
        request
            .headers()
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned())
    }

    /// `method target` as `who`, over a fresh connection, with the target
    /// exactly as written: reqwest would resolve `.`, `..` and their `%2e`
    /// spellings itself and never send them.
    pub(crate) async fn raw(&self, method: &str, target: &str, who: As<'_>, body: &[u8]) -> Reply {
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(authorization) = self.authorization(who) {
            head.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        head.push_str("\r\n");
        raw_exchange(self.addr, head.as_bytes(), body).await
    }

    /// `request` sent as `who`.
    pub(crate) fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        who: As<'_>,
    ) -> reqwest::RequestBuilder {
        match who {
            As::Nobody => request,
            As::User(id) => request.bearer_auth(self.token(id, TokenKind::User)),
            As::Device(id) => request.bearer_auth(self.token(id, TokenKind::Device)),
            As::Forged => {
                let token = issue_dev_token(
                    "some-other-secret-that-is-long-enough-0123",
                    &self.config.jwt.issuer,
                    &self.config.jwt.audience,
                    "u1",
                    Duration::from_secs(600),
                    TokenKind::User,
                );
                request.bearer_auth(token)
            }
        }
    }

    /// `GET /v1/devices/{id}` builder, as `who`.
    pub(crate) fn status_request(&self, id: &str, who: As<'_>) -> reqwest::RequestBuilder {
        self.authorize(self.client.get(self.url(&format!("/v1/devices/{id}"))), who)
    }

    /// `GET /v1/devices/{id}` as `who`.
    pub(crate) async fn get_status(&self, id: &str, who: As<'_>) -> Reply {
        Reply::of(self.status_request(id, who).send().await.unwrap()).await
    }

    /// `PATCH /v1/devices/{id}/settings` builder, as `who`, without a body.
    pub(crate) fn settings_request(&self, id: &str, who: As<'_>) -> reqwest::RequestBuilder {
        self.authorize(
            self.client
                .patch(self.url(&format!("/v1/devices/{id}/settings"))),
            who,
        )
    }

    /// `PATCH /v1/devices/{id}/settings` with a raw JSON body, as `who`.
    pub(crate) async fn patch_settings(&self, id: &str, who: As<'_>, body: &str) -> Reply {
        let request = self
            .settings_request(id, who)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        Reply::of(request.send().await.unwrap()).await
    }

    /// `PATCH` with a CBOR body (`value` encoded), as `who`, asking for CBOR back.
    pub(crate) async fn patch_settings_cbor(
        &self,
        id: &str,
        who: As<'_>,
        value: &ciborium::Value,
    ) -> Reply {
        let request = self
            .settings_request(id, who)
            .header(CONTENT_TYPE, CBOR)
            .header(ACCEPT, CBOR)
            .body(cbor_bytes(value));
        Reply::of(request.send().await.unwrap()).await
    }

    /// The device as the device service has it now, read directly.
    pub(crate) async fn device_in_service(&self, id: &str) -> Value {
        let url = format!("{}/devices/{id}", self.services.device.url());
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Calls of one device-service route since the last reset.
    pub(crate) fn device_calls(&self, route: &str) -> u64 {
        self.services.device.control.count(route)
    }

    /// Calls every service received since the last reset.
    pub(crate) fn downstream_total(&self) -> u64 {
        self.services.all().iter().map(|s| s.control.total()).sum()
    }
}

/// A response read whole: status, headers, body bytes.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) async fn of(response: reqwest::Response) -> Self {
        Self {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The body decoded from CBOR into a JSON value, for comparisons.
    pub(crate) fn cbor(&self) -> Value {
        ciborium::from_reader(self.body.as_slice()).unwrap()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    /// Asserts a 200 with a JSON body and returns the body's text.
    pub(crate) fn ok_json(&self) -> &str {
        assert_eq!(
            self.status,
            200,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.text()
    }

    /// Asserts the compact error `{"e": message}` with `status`, in JSON.
    pub(crate) fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(
            (self.status, self.text()),
            (
                status,
                serde_json::json!({ "e": message }).to_string().as_str()
            ),
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// Writes `head` and `body` to a new connection to `addr` and reads the
/// whole answer (the request must ask for `Connection: close`).
pub(crate) async fn raw_exchange(addr: SocketAddr, head: &[u8], body: &[u8]) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    parse_answer(&answer)
}

/// An HTTP/1.1 answer's status, headers and body (by `Content-Length`, or
/// de-chunked).
fn parse_answer(answer: &[u8]) -> Reply {
    let end = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {:?}", String::from_utf8_lossy(answer)));
    let head = std::str::from_utf8(&answer[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            value.trim().parse().unwrap(),
        );
    }
    let rest = &answer[end + 4..];
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|value| value.to_str().unwrap().eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        let mut rest = rest;
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = std::str::from_utf8(&rest[..line_end]).unwrap();
            let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub(crate) fn cbor_bytes(value: &ciborium::Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).unwrap();
    bytes
}

/// The seed the services started from (the same on every run).
pub(crate) fn seed() -> devstack_services::seed::Seed {
    devstack_services::seed::Seed::new()
}
