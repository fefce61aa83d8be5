//! GraphiQL as a GraphQL BFF serves it in the dev profile: over plain HTTP
//! (the page, every file it loads, their headers and integrity hashes; none
//! of it in prod), and in a real browser, headless Chromium driven by
//! `tests/graphiql-browser/graphiql.mjs` (puppeteer-core).
//!
//! The browser check needs Node, the script's `node_modules` (`npm ci` in
//! `tests/graphiql-browser`, which `.ci/run` does) and Chromium
//! (`$CHROMIUM_PATH`, default `/usr/bin/chromium`, Debian's `chromium`).
//! Where one is missing it is skipped with a loud message; under CI it
//! fails instead, as the graphql-http audit does.

use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use reqwest::Url;
use serde_json::Value;
use sha2::{Digest, Sha384};

use crate::node::NodePackage;

/// Where the script finds Chromium, when not at [`DEFAULT_CHROMIUM`].
pub const CHROMIUM_ENV: &str = "CHROMIUM_PATH";
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// One file the page loads: where, and the `integrity` it is loaded with.
#[derive(Debug, Clone)]
pub struct PageAsset {
    pub url: Url,
    pub integrity: String,
}

/// Fetches the GraphiQL page at `page_url` (as a browser asks for it) and
/// checks it and every file it loads: the page's security headers, each
/// file's content type and long-lived caching, gzip only for clients that
/// accept it, and that the bytes match the page's `integrity` hash. Returns
/// the files, so the prod check can ask for the same ones.
pub async fn assert_graphiql_served(page_url: &str) -> Vec<PageAsset> {
    let client = local_client();
    let response = client
        .get(page_url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert!(header("content-type").starts_with("text/html"));
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(
        !policy.contains("http") && !policy.contains("unsafe"),
        "{policy}"
    );
    let page = response.text().await.unwrap();
    let assets = page_assets(page_url, &page);
    let kinds: Vec<&str> = assets
        .iter()
        .map(|asset| asset.url.path().rsplit('.').next().unwrap())
        .collect();
    assert!(kinds.contains(&"js") && kinds.contains(&"css"), "{page}");

    for asset in &assets {
        let url = asset.url.clone();
        assert_eq!(url.host(), Url::parse(page_url).unwrap().host(), "{url}");
        let expected_type = if url.path().ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        for (accept_encoding, gzipped) in [(None, false), (Some("gzip, deflate, br"), true)] {
            let mut request = client.get(url.clone());
            if let Some(accept_encoding) = accept_encoding {
                request = request.header("accept-encoding", accept_encoding);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            let headers = response.headers().clone();
            let header = |name: &str| headers.get(name).map(|value| value.to_str().unwrap());
            let content_type = header("content-type").unwrap();
            assert!(
                content_type.starts_with(expected_type),
                "{url}: {content_type}"
            );
            let cache_control = header("cache-control").unwrap();
            assert!(
                cache_control.contains("immutable"),
                "{url}: {cache_control}"
            );
            assert_eq!(header("x-content-type-options"), Some("nosniff"), "{url}");
            let encoding = header("content-encoding");
            assert_eq!(encoding.is_some(), gzipped, "{url}: {encoding:?}");
            let body = response.bytes().await.unwrap();
            let body = if gzipped {
                assert_eq!(encoding, Some("gzip"));
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                assert!(plain.len() > body.len(), "{url}");
                plain
            } else {
                body.to_vec()
            };
            let digest = base64::engine::general_purpose::STANDARD.encode(Sha384::digest(&body));
            assert_eq!(asset.integrity, format!("sha384-{digest}"), "{url}");
        }
    }
    assets
}

/// The files the page's `<script src>` and `<link href>` load, resolved
/// against `page_url`; each must carry an `integrity` hash.
fn page_assets(page_url: &str, page: &str) -> Vec<PageAsset> {
    let base = Url::parse(page_url).unwrap();
    page.split('<')
        .filter(|tag| tag.starts_with("script") || tag.starts_with("link"))
        .filter_map(|tag| {
            let target = attribute(tag, "src").or_else(|| attribute(tag, "href"))?;
            // Inline (the empty favicon): nothing to fetch.
            if target.starts_with("data:") {
                return None;
            }
            let integrity = attribute(tag, "integrity");
            assert!(integrity.is_some(), "no integrity on <{tag}");
            Some(PageAsset {
                url: base.join(target).unwrap(),
                integrity: integrity.unwrap().to_owned(),
            })
        })
        .collect()
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let length = tag[start..].find('"')?;
    Some(&tag[start..start + length])
}

/// In prod neither the page nor any of `assets` (the paths a dev-profile
/// server serves them at, asked of the server at `page_url`) is served.
pub async fn assert_graphiql_absent(page_url: &str, assets: &[PageAsset]) {
    let client = local_client();
    let response = client
        .get(page_url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        !content_type.starts_with("text/html"),
        "GraphiQL served in prod"
    );
    assert!(!assets.is_empty());
    let server = Url::parse(page_url).unwrap();
    for asset in assets {
        let url = server.join(asset.url.path()).unwrap();
        let response = client.get(url.clone()).send().await.unwrap();
        assert_eq!(response.status(), 404, "{url} served in prod");
    }
}

/// One thing to do on the page: type `query` (and `headers`, a JSON object
/// as text, into the headers editor when given), run it, and wait for the
/// result pane to contain each of `expect`.
#[derive(Debug, Clone)]
pub struct BrowserStep {
    pub query: String,
    pub headers: Option<String>,
    pub expect: Vec<String>,
}

/// Drives the GraphiQL page at `page_url` in headless Chromium through
/// `steps`; asserts each result showed what was expected, and that the page
/// requested nothing but the BFF's own URLs, broke no Content-Security-
/// Policy rule, threw no error and got no failed response. Returns the
/// result pane's text of each step.
pub async fn assert_graphiql_works_in_a_browser(
    page_url: String,
    steps: &[BrowserStep],
) -> Vec<String> {
    let browser = NodePackage::new("graphiql-browser");
    let chromium = std::env::var(CHROMIUM_ENV).unwrap_or_else(|_| DEFAULT_CHROMIUM.to_owned());
    let no_chromium = (!Path::new(&chromium).is_file()).then(|| {
        format!("Chromium is not at {chromium} (`apt-get install chromium`, or set {CHROMIUM_ENV})")
    });
    if !browser.ready("GraphiQL browser test", &["puppeteer-core"], no_chromium) {
        return Vec::new();
    }
    let steps_json = Value::Array(
        steps
            .iter()
            .map(|step| {
                serde_json::json!({
                    "query": step.query,
                    "headers": step.headers,
                    "expect": step.expect,
                })
            })
            .collect(),
    )
    .to_string();
    let origin = Url::parse(&page_url)
        .unwrap()
        .origin()
        .ascii_serialization();
    let stdout = browser
        .run(
            "the GraphiQL page",
            "graphiql.mjs",
            vec![page_url, steps_json],
            vec![(CHROMIUM_ENV.to_owned(), chromium)],
        )
        .await;
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("no report ({error}):\n{stdout}"));
    for problem in [
        "foreignRequests",
        "failedRequests",
        "errorResponses",
        "violations",
        "pageErrors",
        "consoleErrors",
    ] {
        assert_eq!(
            report[problem],
            serde_json::json!([]),
            "{problem}: {report:#}"
        );
    }
    let requests = report["requests"].as_array().unwrap();
    assert!(!requests.is_empty(), "{report:#}");
    for request in requests {
        let request = request.as_str().unwrap();
        assert!(request.starts_with(&origin), "{request} is not the BFF's");
    }
    let results: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(results.len(), steps.len(), "{report:#}");
    for (step, result) in steps.iter().zip(&results) {
        for part in &step.expect {
            assert!(result.contains(part.as_str()), "{}: {result}", step.query);
        }
    }
    results
}

/// Talks to local servers only, whatever proxy the environment names.
fn local_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}
