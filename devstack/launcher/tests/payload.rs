//! Payload bytes: the mobile dashboard against the web dashboard for the
//! seed's first user (BENCHMARKS.md, "Mobile payload bytes"). Here because
//! the launcher is the one package that depends on every BFF: a BFF's own
//! tests know only that BFF. Prints the table BENCHMARKS.md shows:
//! `cargo test -p devstack --test payload -- --nocapture`.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use bff_server::config::loopback;
use bff_server::{Config, Defaults, Profile};
use devstack_services::Services;
use devstack_services::{TokenKind, issue_dev_token};
use downstream::DownstreamConfig;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const SECRET: &str = "devstack-payload-test-secret-0123456789-abcdef";

/// The mobile app's dashboard screen.
const MOBILE_DASHBOARD: &str = "query Dashboard { dashboard { user { name avatarUrl } recentOrders { id status total date } notificationsCount } }";

/// The web app's dashboard screen, as the web BFF serves it (the query of
/// the load benchmark, `bench/`): profile, last 10 orders with their lines,
/// recommendations with their products, analytics.
const WEB_DASHBOARD: &str = "{ dashboard { user { name avatarUrl membershipLevel loyaltyPoints } \
    orders(first: 10) { id status date total { formatted } itemsCount trackingNumber items { quantity product { id name thumbnailUrl } } } \
    recommendations(first: 10) { score reason product { id name price { formatted } } } \
    analytics { totalSpent { formatted } ordersThisMonth favoriteCategories } } }";

/// The web BFF asked for exactly what the mobile screen shows: name and
/// avatar, the 3 most recent orders with status, total and date, the unread
/// notification count.
const WEB_SAME_FIELDS: &str = "{ dashboard { user { name avatarUrl unreadNotificationsCount } \
    orders(first: 3) { id status total { formatted } date } } }";

/// One BFF on an ephemeral port; dropping it stops it.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(router: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        bff_server::serve_with_shutdown(listener, router, std::future::pending())
            .await
            .unwrap();
    });
    Server { addr, task }
}

/// gzip at the level tower-http's `CompressionLayer` uses by default (6).
fn gzip(bytes: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap().len()
}

/// brotli at the quality tower-http's `CompressionLayer` uses by default (4).
fn brotli(bytes: &[u8]) -> usize {
    let mut out = Vec::new();
    {
        let mut encoder = brotli::CompressorWriter::new(&mut out, 4096, 4, 22);
        encoder.write_all(bytes).unwrap();
    }
    out.len()
}

/// Raw, gzip and brotli sizes of one response body.
#[derive(Debug, Clone, Copy)]
struct Sizes([usize; 3]);

impl Sizes {
    fn of(body: &[u8]) -> Self {
        Self([body.len(), gzip(body), brotli(body)])
    }
}

const ENCODINGS: [&str; 3] = ["raw", "gzip", "brotli"];

/// The body of a 200 answer with `data` and no errors, as sent with
/// `accept-encoding`.
async fn body(
    client: &reqwest::Client,
    server: &Server,
    query: &str,
    token: &str,
    accept_encoding: &str,
) -> Vec<u8> {
    let response = client
        .post(format!("http://{}/graphql", server.addr))
        .bearer_auth(token)
        .header("accept-encoding", accept_encoding)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap().to_vec();
    if accept_encoding == "identity" {
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            json["data"].is_object() && json.get("errors").is_none(),
            "{json}"
        );
    }
    body
}

#[tokio::test]
async fn the_mobile_dashboard_is_at_most_40_percent_of_the_web_one() {
    let services = Services::spawn_ephemeral().await.unwrap();
    let mut config = Config::new(Defaults {
        listen: loopback(0),
        ..web_bff::DEFAULTS
    });
    config.profile = Profile::Dev;
    config.downstream = DownstreamConfig::with_urls(services.urls());
    config.jwt.secret = Some(SECRET.to_owned());
    // Both BFFs against the same services, as the same user.
    let web = serve(web_bff::app(&config).unwrap()).await;
    let mobile = serve(mobile_bff::app(&config).unwrap()).await;
    let token = issue_dev_token(
        SECRET,
        &config.jwt.issuer,
        &config.jwt.audience,
        "u1",
        Duration::from_secs(600),
        TokenKind::User,
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let mobile_body = body(&client, &mobile, MOBILE_DASHBOARD, &token, "identity").await;
    let mobile_sizes = Sizes::of(&mobile_body);
    let mut wire = [0; 3];
    for (sent, encoding) in wire.iter_mut().zip(["identity", "gzip", "br"]) {
        *sent = body(&client, &mobile, MOBILE_DASHBOARD, &token, encoding)
            .await
            .len();
    }
    let web_screen = Sizes::of(&body(&client, &web, WEB_DASHBOARD, &token, "identity").await);
    let web_same = Sizes::of(&body(&client, &web, WEB_SAME_FIELDS, &token, "identity").await);

    let percent = |m: usize, w: usize| 100.0 * m as f64 / w as f64;
    println!("| u1's dashboard | raw | gzip | brotli |");
    println!("|---|---:|---:|---:|");
    let row = |label: &str, sizes: [usize; 3]| {
        let cells: Vec<String> = sizes.iter().map(|s| format!("{s} B")).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    row("mobile", mobile_sizes.0);
    row("mobile, as sent by the BFF (`Content-Encoding`)", wire);
    row("web, dashboard screen", web_screen.0);
    row("web, same fields", web_same.0);
    let ratios = |web: Sizes| {
        let cells: Vec<String> = (0..3)
            .map(|i| format!("{:.1} %", percent(mobile_sizes.0[i], web.0[i])))
            .collect();
        cells.join(" | ")
    };
    println!("| mobile / web dashboard screen | {} |", ratios(web_screen));
    println!("| mobile / web same fields | {} |", ratios(web_same));
    println!("mobile body: {}", String::from_utf8_lossy(&mobile_body));

    for (i, encoding) in ENCODINGS.iter().enumerate() {
        assert!(
            mobile_sizes.0[i] * 100 <= web_screen.0[i] * 40,
            "{encoding}: mobile {} B is over 40 % of the web dashboard's {} B",
            mobile_sizes.0[i],
            web_screen.0[i]
        );
        assert!(
            mobile_sizes.0[i] < web_same.0[i],
            "{encoding}: mobile {} B is not smaller than the web's {} B for the same fields",
            mobile_sizes.0[i],
            web_same.0[i]
        );
    }
}
