//! GraphiQL without the internet, as the web BFF's tests check it (there in
//! more detail): the dev profile serves the page and its assets itself, and
//! a query typed into it in headless Chromium returns data; prod serves
//! neither.

use bff_server::Profile;
use testkit::graphiql::{
    BrowserStep, assert_graphiql_absent, assert_graphiql_served, assert_graphiql_works_in_a_browser,
};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn dev_serves_graphiql_from_the_binary_and_it_works_in_a_browser_prod_neither() {
    let dev = spawn_app().await;
    let assets = assert_graphiql_served(&dev.url("/graphql")).await;
    let steps = [BrowserStep {
        query: "{ product(id: \"p1\") { id } }".into(),
        headers: None,
        expect: vec!["\"id\": \"p1\"".into()],
    }];
    assert_graphiql_works_in_a_browser(dev.url("/graphql"), &steps).await;

    let prod = spawn_app_with(|config| config.profile = Profile::Prod).await;
    assert_graphiql_absent(&prod.url("/graphql"), &assets).await;
}
