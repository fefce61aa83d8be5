//! GraphiQL without the internet: in the dev profile the page and all it
//! loads come from the BFF itself (checked over HTTP, then in headless
//! Chromium, where a query typed into the editor returns data); in prod
//! neither is served.

use testkit::graphiql::{
    BrowserStep, assert_graphiql_absent, assert_graphiql_served, assert_graphiql_works_in_a_browser,
};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn dev_serves_the_page_and_its_assets_from_the_binary_prod_neither() {
    let dev = spawn_app().await;
    let assets = assert_graphiql_served(&dev.url("/graphql")).await;
    // Only the hashed names are served, and nothing beside them.
    for path in [
        "/graphiql/assets/graphiql.min.js",
        "/graphiql/assets/nope.js",
        "/graphiql/assets/",
        "/graphiql/assets/..%2F..%2FCargo.toml",
    ] {
        let response = dev.client.get(dev.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // HEAD too.
    let response = dev.client.head(assets[0].url.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(dev.downstream_total(), 0);

    let prod = spawn_app_with(|config| config.profile = bff_server::Profile::Prod).await;
    assert_graphiql_absent(&prod.url("/graphql"), &assets).await;
}

#[tokio::test]
async fn loading_the_assets_is_not_rate_limited() {
    // One request a second, none in reserve: the page takes the only one.
    let app = spawn_app_with(|config| {
        config.rate_limit.rps = 1;
        config.rate_limit.burst = 1;
    })
    .await;
    let assets = assert_graphiql_served(&app.url("/graphql")).await;
    // Twenty at once would take the limit twenty seconds to allow.
    let statuses = |requests: Vec<reqwest::RequestBuilder>| async {
        let responses = futures::future::join_all(requests.into_iter().map(|r| r.send())).await;
        let statuses: Vec<u16> = responses
            .into_iter()
            .map(|response| response.unwrap().status().as_u16())
            .collect();
        statuses
    };
    let asset_requests = (0..20)
        .map(|_| app.client.get(assets[0].url.clone()))
        .collect();
    assert!(
        statuses(asset_requests)
            .await
            .iter()
            .all(|status| *status == 200)
    );
    // The limit still holds for the endpoint itself.
    let graphql_requests = (0..20)
        .map(|_| app.graphql_request("{ __typename }", serde_json::json!({}), None))
        .collect();
    assert!(statuses(graphql_requests).await.contains(&429));
}

/// The editor renders, a query typed into it returns data, and one typed
/// with the launcher's kind of dev token in the headers editor runs as that
/// viewer; nothing is fetched from anywhere but the BFF.
#[tokio::test]
async fn a_query_typed_into_graphiql_in_a_real_browser_returns_data() {
    let app = spawn_app().await;
    let token = app.token("u1");
    let steps = [
        BrowserStep {
            query: "{ product(id: \"p1\") { id name } }".into(),
            headers: None,
            expect: vec!["\"id\": \"p1\"".into()],
        },
        BrowserStep {
            query: "{ me { id } }".into(),
            headers: Some(format!("{{\"Authorization\": \"Bearer {token}\"}}")),
            expect: vec!["\"me\"".into(), "\"id\": \"u1\"".into()],
        },
    ];
    let results = assert_graphiql_works_in_a_browser(app.url("/graphql"), &steps).await;
    for result in &results {
        assert!(!result.contains("errors"), "{result}");
    }
}
