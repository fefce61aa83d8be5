//! Payload bytes: the mobile dashboard vs the web dashboard for the seed's
//! first user (BENCHMARKS.md, "Mobile payload bytes"). The figures are
//! printed as the table BENCHMARKS.md shows:
//! `cargo test -p mobile-bff --test api bytes -- --nocapture`.

use std::io::Write;

use bff_server::ViewerKind;
use serde_json::{Value, json};

use crate::helpers::{DASHBOARD, TestApp, client, data, serve, spawn_app, token};

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

async fn body(request: reqwest::RequestBuilder) -> Vec<u8> {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap().to_vec();
    let json: Value = serde_json::from_slice(&body).unwrap();
    data(&json);
    body
}

/// What the phone receives for the dashboard with `accept-encoding`.
async fn mobile_wire(app: &TestApp, accept_encoding: &str) -> usize {
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(app.token("u1"))
        .header("accept-encoding", accept_encoding)
        .json(&json!({ "query": DASHBOARD }))
        .send()
        .await
        .unwrap();
    response.bytes().await.unwrap().len()
}

#[tokio::test]
async fn the_mobile_dashboard_is_at_most_40_percent_of_the_web_one() {
    let app = spawn_app().await;
    // The web BFF against the same services, as the same user.
    let web = serve(web_bff::app(&app.config).unwrap()).await;
    let web_token = token(&app.config, "u1", ViewerKind::User);
    let web_body = |query: &str| {
        client()
            .post(format!("http://{}/graphql", web.addr))
            .bearer_auth(&web_token)
            .json(&json!({ "query": query }))
    };

    let mobile_body = body(
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(app.token("u1"))
            .header("accept-encoding", "identity")
            .json(&json!({ "query": DASHBOARD })),
    )
    .await;
    let mobile = Sizes::of(&mobile_body);
    let web_screen = Sizes::of(&body(web_body(WEB_DASHBOARD)).await);
    let web_same = Sizes::of(&body(web_body(WEB_SAME_FIELDS)).await);
    let wire = [
        mobile_wire(&app, "identity").await,
        mobile_wire(&app, "gzip").await,
        mobile_wire(&app, "br").await,
    ];

    let percent = |m: usize, w: usize| 100.0 * m as f64 / w as f64;
    println!("| u1's dashboard | raw | gzip | brotli |");
    println!("|---|---:|---:|---:|");
    let row = |label: &str, sizes: [usize; 3]| {
        let cells: Vec<String> = sizes.iter().map(|s| format!("{s} B")).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    row("mobile (`DASHBOARD`)", mobile.0);
    row("mobile, as sent by the BFF (`Content-Encoding`)", wire);
    row("web, dashboard screen (`WEB_DASHBOARD`)", web_screen.0);
    row("web, same fields (`WEB_SAME_FIELDS`)", web_same.0);
    let ratios = |web: Sizes| {
        let cells: Vec<String> = (0..3)
            .map(|i| format!("{:.1} %", percent(mobile.0[i], web.0[i])))
            .collect();
        cells.join(" | ")
    };
    println!("| mobile / web dashboard screen | {} |", ratios(web_screen));
    println!("| mobile / web same fields | {} |", ratios(web_same));
    println!("mobile body: {}", String::from_utf8_lossy(&mobile_body));

    for (i, encoding) in ENCODINGS.iter().enumerate() {
        assert!(
            mobile.0[i] * 100 <= web_screen.0[i] * 40,
            "{encoding}: mobile {} B is over 40 % of the web dashboard's {} B",
            mobile.0[i],
            web_screen.0[i]
        );
        assert!(
            mobile.0[i] < web_same.0[i],
            "{encoding}: mobile {} B is not smaller than the web's {} B for the same fields",
            mobile.0[i],
            web_same.0[i]
        );
    }
    // The BFF really compresses (within a few bytes of the encoders above:
    // framing and flush points differ).
    assert_eq!(wire[0], mobile.0[0]);
    assert!(wire[1] < wire[0] && wire[2] < wire[0], "{wire:?}");
    assert!(wire[1].abs_diff(mobile.0[1]) <= 16, "{wire:?} {mobile:?}");
    assert!(wire[2].abs_diff(mobile.0[2]) <= 16, "{wire:?} {mobile:?}");
}
