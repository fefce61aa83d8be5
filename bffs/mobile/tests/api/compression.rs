//! Response compression: gzip or brotli when the client accepts it,
//! identity otherwise.

use serde_json::{Value, json};

use crate::helpers::{
    DASHBOARD, PREFLIGHT, apq_extension, gunzip, header, sha256, spawn_app, unbrotli,
};

/// A page of 20 cards: a body worth compressing.
const CARDS: &str = "{ products(categoryId: \"electronics\") { items { id name price imageUrl rating hasDiscount } } }";

async fn fetch(
    request: reqwest::RequestBuilder,
    accept_encoding: &str,
) -> (Option<String>, Vec<u8>) {
    let response = request
        .header("accept-encoding", accept_encoding)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let encoding = header(&response, "content-encoding").map(str::to_owned);
    let vary = response.headers().get_all("vary").iter().any(|v| {
        v.to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")
    });
    assert!(vary, "no Vary: accept-encoding");
    (encoding, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn gzip_and_brotli_when_accepted() {
    let app = spawn_app().await;
    let post = || {
        app.client
            .post(app.url("/graphql"))
            .json(&json!({ "query": CARDS }))
    };
    let (encoding, plain) = fetch(post(), "identity").await;
    assert_eq!(encoding, None);
    let expected: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(
        expected["data"]["products"]["items"]
            .as_array()
            .unwrap()
            .len(),
        20
    );

    let (encoding, gzipped) = fetch(post(), "gzip").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert!(
        gzipped.len() * 3 < plain.len(),
        "{} vs {}",
        gzipped.len(),
        plain.len()
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&gunzip(&gzipped)).unwrap(),
        expected
    );

    let (encoding, brotlied) = fetch(post(), "br").await;
    assert_eq!(encoding.as_deref(), Some("br"));
    assert!(
        brotlied.len() * 3 < plain.len(),
        "{} vs {}",
        brotlied.len(),
        plain.len()
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&unbrotli(&brotlied)).unwrap(),
        expected
    );

    // What Apollo iOS / OkHttp send: the preferred one is used.
    let (encoding, body) = fetch(post(), "gzip, deflate, br").await;
    assert_eq!(encoding.as_deref(), Some("br"));
    assert_eq!(
        serde_json::from_slice::<Value>(&unbrotli(&body)).unwrap(),
        expected
    );
    let (encoding, body) = fetch(post(), "br;q=0.5, gzip;q=1.0").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(
        serde_json::from_slice::<Value>(&gunzip(&body)).unwrap(),
        expected
    );
    // Nothing it can produce: identity.
    let (encoding, body) = fetch(post(), "compress").await;
    assert_eq!(encoding, None);
    assert_eq!(body, plain);
}

#[tokio::test]
async fn persisted_gets_and_the_dashboard_are_compressed_too() {
    let app = spawn_app().await;
    let hash = sha256(CARDS);
    let register = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": CARDS, "extensions": apq_extension(&hash) }));
    let (_, plain) = fetch(register, "identity").await;
    let get = app
        .client
        .get(app.url("/graphql"))
        .header(PREFLIGHT.0, PREFLIGHT.1)
        .query(&[("extensions", apq_extension(&hash).to_string())]);
    let (encoding, body) = fetch(get, "gzip").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(gunzip(&body), plain);

    let token = app.token("u1");
    let dashboard = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": DASHBOARD }));
    let (encoding, body) = fetch(dashboard, "br").await;
    assert_eq!(encoding.as_deref(), Some("br"));
    let json: Value = serde_json::from_slice(&unbrotli(&body)).unwrap();
    assert_eq!(json["data"]["dashboard"]["user"]["name"], "Ada Lovelace");
}
