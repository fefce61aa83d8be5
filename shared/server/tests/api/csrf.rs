//! Apollo-style CSRF prevention on GraphQL routes, and the CORS allow-list.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use bff_server::graphql::prevent_csrf;
use bff_server::{Config, ConfigError};
use serde_json::Value;

use crate::helpers::{TestServer, spawn_front_door, test_config};

/// `/graphql` behind the CSRF check, counting the requests that got through.
fn graphql_routes(ran: Arc<AtomicUsize>) -> Router {
    let handler = move || {
        let ran = Arc::clone(&ran);
        async move {
            ran.fetch_add(1, Ordering::SeqCst);
            "ran"
        }
    };
    Router::new()
        .route("/graphql", get(handler.clone()).post(handler))
        .route_layer(axum::middleware::from_fn(prevent_csrf))
}

async fn spawn_graphql(config: &Config) -> (TestServer, Arc<AtomicUsize>) {
    let ran = Arc::new(AtomicUsize::new(0));
    let server = spawn_front_door(graphql_routes(Arc::clone(&ran)), config).await;
    (server, ran)
}

async fn post(server: &TestServer, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = server
        .client
        .post(server.url("/graphql"))
        .body(r#"{"query":"{ a }"}"#);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn get_query(server: &TestServer, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = server
        .client
        .get(server.url("/graphql"))
        .query(&[("query", "{ a }")]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn requests_a_page_could_forge_are_refused_with_400() {
    let (server, ran) = spawn_graphql(&test_config()).await;
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        " Text/Plain ",
    ] {
        let response = post(&server, &[("content-type", content_type)]).await;
        assert_eq!(response.status(), 400, "{content_type}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("cross-site request forgery"), "{message}");
    }
    // No content type at all: a POST, and a GET with an operation.
    assert_eq!(post(&server, &[]).await.status(), 400);
    assert_eq!(get_query(&server, &[]).await.status(), 400);
    // An empty preflight header proves nothing.
    let empty = [("x-apollo-operation-name", "")];
    assert_eq!(get_query(&server, &empty).await.status(), 400);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn preflighted_requests_pass() {
    let (server, ran) = spawn_graphql(&test_config()).await;
    let passing = [
        post(&server, &[("content-type", "application/json")]).await,
        post(
            &server,
            &[("content-type", "application/json; charset=utf-8")],
        )
        .await,
        post(
            &server,
            &[("content-type", "application/graphql-response+json")],
        )
        .await,
        get_query(&server, &[("x-apollo-operation-name", "Products")]).await,
        get_query(&server, &[("apollo-require-preflight", "true")]).await,
        get_query(&server, &[("content-type", "application/json")]).await,
        // No operation at all (GraphiQL's page, or an error from the handler).
        server
            .client
            .get(server.url("/graphql"))
            .send()
            .await
            .unwrap(),
    ];
    for response in passing {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(ran.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn a_preflighted_post_must_still_declare_a_json_body() {
    let (server, ran) = spawn_graphql(&test_config()).await;
    let preflight = ("apollo-require-preflight", "true");
    for content_type in [
        None,
        Some(""),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("application/jsonx"),
    ] {
        let mut headers = vec![preflight];
        headers.extend(content_type.map(|value| ("content-type", value)));
        let response = post(&server, &headers).await;
        assert_eq!(response.status(), 400, "{content_type:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("must be JSON"), "{message}");
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    // JSON under any spelling, and JSON-based types, pass.
    for content_type in [
        "Application/JSON",
        "application/json;charset=utf-8",
        "application/graphql+json",
    ] {
        let response = post(&server, &[preflight, ("content-type", content_type)]).await;
        assert_eq!(response.status(), 200, "{content_type}");
    }
    assert_eq!(ran.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn no_cors_headers_unless_origins_are_configured() {
    let (server, _) = spawn_graphql(&test_config()).await;
    let response = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/graphql"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let response = get_query(
        &server,
        &[
            ("origin", "https://shop.example"),
            ("apollo-require-preflight", "1"),
        ],
    )
    .await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn allowed_origins_get_cors_headers_others_do_not() {
    let mut config = test_config();
    config.cors.allowed_origins = vec!["https://shop.example".into()];
    config.validate().unwrap();
    let (server, ran) = spawn_graphql(&config).await;
    let preflight = |origin: &'static str| {
        server
            .client
            .request(reqwest::Method::OPTIONS, server.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization,apollo-require-preflight",
            )
            .send()
    };
    let response = preflight("https://shop.example").await.unwrap();
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    for header in ["content-type", "authorization", "apollo-require-preflight"] {
        assert!(allowed.contains(header), "{allowed}");
    }
    // The preflight is answered by the front door, not the handler.
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    let response = preflight("https://evil.example").await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let response = post(
        &server,
        &[
            ("origin", "https://shop.example"),
            ("content-type", "application/json"),
        ],
    )
    .await;
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-request-id"), "{exposed}");
}

#[test]
fn origins_come_from_env_and_must_be_origins() {
    let load = |origins: &str| {
        crate::helpers::load_dev(&[
            ("BFF_JWT_SECRET", crate::helpers::SECRET),
            ("BFF_CORS_ALLOWED_ORIGINS", origins),
        ])
    };
    let config = load("https://shop.example, http://localhost:5173").unwrap();
    assert_eq!(
        config.cors.allowed_origins,
        ["https://shop.example", "http://localhost:5173"]
    );
    assert!(load("").unwrap().cors.allowed_origins.is_empty());
    for bad in [
        "*",
        "https://shop.example/",
        "https://shop.example/app",
        "shop.example",
        "ftp://x.example",
    ] {
        let error = load(bad).unwrap_err();
        assert!(
            matches!(error, ConfigError::Invalid { .. }),
            "{bad}: {error}"
        );
        assert!(
            error.to_string().contains("cors.allowed_origins"),
            "{error}"
        );
    }
}
