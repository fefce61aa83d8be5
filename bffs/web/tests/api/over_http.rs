//! GraphQL over HTTP (the spec): `application/graphql-response+json` with
//! 4xx for requests that produce no data, legacy `application/json` with
//! 200, UTF-8 throughout.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

const MODERN: &str = "application/graphql-response+json";

async fn post(
    app: &crate::helpers::TestApp,
    accept: Option<&str>,
    query: &str,
) -> (u16, String, Value) {
    let mut request = app.graphql_request(query, json!({}), None);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    (status, content_type, body)
}

#[tokio::test]
async fn graphql_response_json_clients_get_4xx_when_nothing_ran() {
    let app = spawn_app().await;
    let (status, content_type, body) =
        post(&app, Some(MODERN), "{ product(id: \"p1\") { id } }").await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/graphql-response+json; charset=utf-8"
    );
    assert_eq!(body["data"]["product"]["id"], "p1");

    for query in [
        "{ product(id: \"p1\") { id ",      // syntax
        "{ product(id: \"p1\") { nope } }", // validation
        &format!(
            "{{ product(id: \"p1\") {{ {} }} }}",
            (0..40).map(|i| format!("a{i}: id ")).collect::<String>()
        ), // abuse limit
    ] {
        let (status, content_type, body) = post(&app, Some(MODERN), query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(content_type.starts_with(MODERN));
        assert!(body["data"].is_null(), "{body}");
        assert!(!body["errors"].as_array().unwrap().is_empty());
    }
    // An execution error is still a 200: the request was valid and ran.
    let (status, _, body) = post(&app, Some(MODERN), "{ me { name } }").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(
        app.downstream_total(),
        1,
        "only the valid product query called out"
    );
}

#[tokio::test]
async fn legacy_json_clients_get_200_for_graphql_errors() {
    let app = spawn_app().await;
    for accept in [None, Some("application/json"), Some("*/*")] {
        let (status, content_type, body) =
            post(&app, accept, "{ product(id: \"p1\") { nope } }").await;
        assert_eq!(status, 200, "{accept:?}");
        assert_eq!(
            content_type, "application/json; charset=utf-8",
            "{accept:?}"
        );
        assert!(!body["errors"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_accept_header_is_ranked() {
    let app = spawn_app().await;
    let bad = "{ product(id: \"p1\") { nope } }";
    let (status, content_type, _) = post(
        &app,
        Some("application/json;q=0.9, application/graphql-response+json"),
        bad,
    )
    .await;
    assert_eq!((status, content_type.starts_with(MODERN)), (400, true));
    let (status, content_type, _) = post(
        &app,
        Some("application/graphql-response+json;q=0.5, application/json"),
        bad,
    )
    .await;
    assert_eq!(
        (status, content_type.starts_with("application/json")),
        (200, true)
    );
}

#[tokio::test]
async fn bodies_are_utf8_both_ways() {
    let app = spawn_app().await;
    // A non-ASCII argument travels intact and the error echoes it in UTF-8.
    let (status, _, body) = post(&app, Some(MODERN), "{ product(id: \"p1\") { nämé } }").await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nämé"),
        "{body}"
    );
    // A body that is not UTF-8 is not a GraphQL request.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(vec![b'{', b'"', b'q', 0xff, 0xfe, b'"', b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(app.downstream_total(), 0);
}
