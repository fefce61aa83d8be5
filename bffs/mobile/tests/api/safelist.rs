//! Safelist mode (`BFF_SAFELIST_FILE`): only the manifest's operations run,
//! by hash (or id) or as exactly the same text; a bad manifest stops the start.

use serde_json::{Value, json};

use crate::helpers::{
    DASHBOARD, TempFile, TestApp, apq_extension, data, error_codes, json_200, only_error, sha256,
    spawn_app_with, test_config,
};

const PRODUCT: &str = "query Product($id: ID!) { product(id: $id) { name price } }";
const REFUSED: &str = "forbidden: this server runs only the operations in its safelist, and this one is not among them";

/// The BFF with a manifest of the app's two operations (the product one
/// under its SHA-256, the dashboard under a custom id).
async fn spawn_safelisted() -> (TestApp, TempFile) {
    let manifest = json!({ sha256(PRODUCT): PRODUCT, "Dashboard-v3": DASHBOARD });
    let file = TempFile::with_contents(&manifest.to_string());
    let path = file.0.clone();
    let app = spawn_app_with(|config| config.safelist_file = Some(path)).await;
    (app, file)
}

async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), ["FORBIDDEN"]);
    assert_eq!(only_error(&body)["message"], REFUSED);
}

#[tokio::test]
async fn listed_operations_run_by_hash_id_or_text() {
    let (app, _file) = spawn_safelisted().await;
    let variables = json!({ "id": "p3" });
    let expected = json!({ "product": { "name": "4K Ultra HD Smart Television, 55-inch", "price": "$1,234.50" } });

    // By hash, over POST and GET.
    let by_hash = json!({ "variables": variables, "extensions": apq_extension(&sha256(PRODUCT)) });
    let response = app.post(by_hash.clone(), None).await;
    assert_eq!(data(&json_200(response).await), &expected);
    let response = app.get(by_hash, None).await;
    assert_eq!(data(&json_200(response).await), &expected);
    // By exact text.
    let response = app.query(PRODUCT, variables.clone()).await;
    assert_eq!(data(&response), &expected);
    // Text and hash together.
    let response = app
        .post(
            json!({ "query": PRODUCT, "variables": variables, "extensions": apq_extension(&sha256(PRODUCT)) }),
            None,
        )
        .await;
    assert_eq!(data(&json_200(response).await), &expected);
    // By custom id, as a signed-in viewer.
    let token = app.token("u1");
    let response = app
        .post(
            json!({ "extensions": apq_extension("Dashboard-v3") }),
            Some(&token),
        )
        .await;
    let body = json_200(response).await;
    assert_eq!(data(&body)["dashboard"]["user"]["name"], "Ada Lovelace");
}

#[tokio::test]
async fn anything_else_is_refused_and_nothing_is_called() {
    let (app, _file) = spawn_safelisted().await;
    let other = "{ product(id: \"p1\") { name } }";
    // Unlisted text, over POST and GET.
    assert_refused(app.post(json!({ "query": other }), None).await).await;
    assert_refused(app.get(json!({ "query": other }), None).await).await;
    // A listed operation written differently is not the listed text.
    let reformatted = PRODUCT.replace("  ", " ").replace("{ product", "{product");
    assert_ne!(reformatted, PRODUCT);
    assert_refused(
        app.post(
            json!({ "query": reformatted, "variables": { "id": "p1" } }),
            None,
        )
        .await,
    )
    .await;
    // An unknown hash: refused outright (resending the text cannot help).
    assert_refused(
        app.post(json!({ "extensions": apq_extension(&sha256(other)) }), None)
            .await,
    )
    .await;
    // APQ registration is no way in.
    assert_refused(
        app.post(
            json!({ "query": other, "extensions": apq_extension(&sha256(other)) }),
            None,
        )
        .await,
    )
    .await;
    assert_refused(
        app.post(json!({ "extensions": apq_extension(&sha256(other)) }), None)
            .await,
    )
    .await;
    // Introspection is not listed either.
    assert_refused(
        app.post(
            json!({ "query": "{ __schema { queryType { name } } }" }),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_bad_manifest_stops_the_start() {
    let services = devstack_services::Services::spawn_ephemeral()
        .await
        .unwrap();
    let wrong_hash = json!({ sha256("{ other }"): PRODUCT }).to_string();
    let cases = [
        ("not json", "not a JSON object"),
        ("{}", "it lists no operations"),
        ("{\"op\": \"{ product(id: \"}", "does not parse"),
        (wrong_hash.as_str(), "is not the query's"),
    ];
    for (contents, reason) in cases {
        let file = TempFile::with_contents(contents);
        let mut config = test_config(&services);
        config.safelist_file = Some(file.0.clone());
        let error = mobile_bff::app(&config).err().unwrap().to_string();
        assert!(error.contains("BFF_SAFELIST_FILE"), "{error}");
        assert!(error.contains(reason), "{contents}: {error}");
    }
    let mut config = test_config(&services);
    config.safelist_file = Some("/nonexistent/mobile-safelist.json".into());
    let error = mobile_bff::app(&config).err().unwrap().to_string();
    assert!(
        error.contains("cannot read /nonexistent/mobile-safelist.json"),
        "{error}"
    );
}

#[tokio::test]
async fn without_a_safelist_any_query_runs() {
    // devstack's setting: no manifest, automatic persisted queries.
    let app = crate::helpers::spawn_app().await;
    assert!(app.config.safelist_file.is_none());
    let response = app
        .query("{ product(id: \"p1\") { name } }", json!({}))
        .await;
    assert_eq!(
        data(&response)["product"]["name"],
        "Wireless Noise-Cancelling Headphones"
    );
}

/// Lookups by id count as persisted-query hits or misses (nothing is ever
/// registered in safelist mode). Other tests count into the same
/// process-wide series, so only lower bounds hold.
#[tokio::test]
async fn lookups_by_id_are_counted_as_hits_and_misses() {
    let (app, _file) = spawn_safelisted().await;
    let count = |text: &str, result: &str| {
        testkit::prometheus::value(text, "persisted_queries_total", &[("result", result)])
    };
    let before = app.scrape().await;
    let token = app.token("u1");
    let listed = app
        .post(
            json!({ "extensions": apq_extension("Dashboard-v3") }),
            Some(&token),
        )
        .await;
    assert_eq!(listed.status(), 200);
    assert_refused(
        app.post(json!({ "extensions": apq_extension("Unlisted-v1") }), None)
            .await,
    )
    .await;
    let after = app.scrape().await;
    assert!(count(&after, "hit") >= count(&before, "hit") + 1.0);
    assert!(count(&after, "miss") >= count(&before, "miss") + 1.0);
}
