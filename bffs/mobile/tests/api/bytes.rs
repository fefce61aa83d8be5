//! Payload bytes of the mobile dashboard for the seed's first user: a byte
//! budget per encoding, and the BFF compresses as the encoders below do.
//! The comparison with the web dashboard (BENCHMARKS.md, "Mobile payload
//! bytes") is a test of the launcher, the one package that depends on both
//! BFFs: `cargo test -p devstack --test payload -- --nocapture`.

use std::io::Write;

use serde_json::{Value, json};

use crate::helpers::{DASHBOARD, TestApp, data, spawn_app};

/// What the dashboard may weigh for u1, raw / gzip / brotli (345, 236 and
/// 207 B when written; the room is for longer seed names, not new fields).
const BUDGET: [usize; 3] = [400, 280, 250];

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

/// What the phone receives for the dashboard with `accept-encoding`.
async fn wire(app: &TestApp, accept_encoding: &str) -> Vec<u8> {
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(app.token("u1"))
        .header("accept-encoding", accept_encoding)
        .json(&json!({ "query": DASHBOARD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn the_mobile_dashboard_stays_within_its_byte_budget() {
    let app = spawn_app().await;
    let body = wire(&app, "identity").await;
    let json: Value = serde_json::from_slice(&body).unwrap();
    data(&json);
    let sizes = [body.len(), gzip(&body), brotli(&body)];
    let sent = [
        body.len(),
        wire(&app, "gzip").await.len(),
        wire(&app, "br").await.len(),
    ];
    println!("u1's mobile dashboard, raw / gzip / brotli: {sizes:?} B, as sent: {sent:?} B");

    for ((encoding, size), budget) in ["raw", "gzip", "brotli"].iter().zip(sizes).zip(BUDGET) {
        assert!(
            size <= budget,
            "{encoding}: {size} B is over the budget of {budget} B"
        );
    }
    // The BFF really compresses (within a few bytes of the encoders above:
    // framing and flush points differ).
    assert!(sent[1] < sent[0] && sent[2] < sent[0], "{sent:?}");
    assert!(sent[1].abs_diff(sizes[1]) <= 16, "{sent:?} {sizes:?}");
    assert!(sent[2].abs_diff(sizes[2]) <= 16, "{sent:?} {sizes:?}");
}
