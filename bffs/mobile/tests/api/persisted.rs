//! Automatic persisted queries, as Apollo Client, Apollo iOS and Apollo
//! Kotlin speak them, over POST and GET, and which answers a CDN may cache.

use serde_json::{Value, json};

use crate::helpers::{
    DASHBOARD, TestApp, apq_extension, data, error_codes, header, json_200, only_error, sha256,
    spawn_app,
};

const PRODUCT: &str = "query Product { product(id: \"p1\") { name price } }";

fn expected_product() -> Value {
    json!({ "product": { "name": "Wireless Noise-Cancelling Headphones", "price": "$249.99" } })
}

/// Sends `body` over POST or GET, signed out.
async fn send(app: &TestApp, get: bool, body: Value) -> reqwest::Response {
    if get {
        app.get(body, None).await
    } else {
        app.post(body, None).await
    }
}

/// The miss an Apollo client expects before resending the query.
fn assert_not_found(response: &Value) {
    assert_eq!(
        response,
        &json!({ "errors": [{
            "message": "PersistedQueryNotFound",
            "extensions": { "code": "PERSISTED_QUERY_NOT_FOUND" },
        }] })
    );
}

#[tokio::test]
async fn the_apq_dance_over_post_and_get() {
    for get in [false, true] {
        let app = spawn_app().await;
        let hash = sha256(PRODUCT);
        let by_hash = json!({ "extensions": apq_extension(&hash) });

        // 1. The hash alone, unknown: HTTP 200 (Apollo iOS/Kotlin resend
        //    only then), PersistedQueryNotFound, not cacheable.
        let response = send(&app, get, by_hash.clone()).await;
        assert_eq!(
            header(&response, "cache-control"),
            Some("private, no-store")
        );
        assert_not_found(&json_200(response).await);
        assert_eq!(app.downstream_total(), 0);

        // 2. The query with its hash: executed and stored.
        let response = send(
            &app,
            get,
            json!({ "query": PRODUCT, "extensions": apq_extension(&hash) }),
        )
        .await;
        assert_eq!(data(&json_200(response).await), &expected_product());

        // 3. From now on the hash alone is enough.
        let response = send(&app, get, by_hash.clone()).await;
        assert_eq!(
            data(&json_200(response).await),
            &expected_product(),
            "get: {get}"
        );
    }
}

#[tokio::test]
async fn a_query_registered_over_post_runs_by_hash_over_get_and_the_reverse() {
    let app = spawn_app().await;
    let hash = sha256(PRODUCT);
    let response = app
        .post(
            json!({ "query": PRODUCT, "extensions": apq_extension(&hash) }),
            None,
        )
        .await;
    json_200(response).await;
    let response = app
        .get(json!({ "extensions": apq_extension(&hash) }), None)
        .await;
    assert_eq!(data(&json_200(response).await), &expected_product());

    let other = "{ product(id: \"p6\") { name } }";
    let other_hash = sha256(other);
    let response = app
        .get(
            json!({ "query": other, "extensions": apq_extension(&other_hash) }),
            None,
        )
        .await;
    json_200(response).await;
    let response = app
        .post(json!({ "extensions": apq_extension(&other_hash) }), None)
        .await;
    assert_eq!(
        data(&json_200(response).await)["product"]["name"],
        "USB-C Charging Cable (2 metre)"
    );
}

#[tokio::test]
async fn a_mismatching_hash_is_refused_and_nothing_runs() {
    for get in [false, true] {
        let app = spawn_app().await;
        let wrong = sha256("{ product(id: \"p2\") { name } }");
        let response = send(
            &app,
            get,
            json!({ "query": PRODUCT, "extensions": apq_extension(&wrong) }),
        )
        .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_codes(&body), ["BAD_USER_INPUT"]);
        assert_eq!(
            only_error(&body)["message"],
            "persistedQuery.sha256Hash does not match the query: nothing was run"
        );
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
        assert_eq!(app.downstream_total(), 0, "get: {get}");

        // Nothing was stored, under either hash.
        for hash in [wrong.clone(), sha256(PRODUCT)] {
            let response = send(&app, get, json!({ "extensions": apq_extension(&hash) })).await;
            assert_not_found(&json_200(response).await);
        }
        assert_eq!(app.downstream_total(), 0);
    }
}

#[tokio::test]
async fn other_versions_and_malformed_extensions_are_refused() {
    let app = spawn_app().await;
    let hash = sha256(PRODUCT);
    let cases = [
        (
            json!({ "version": 2, "sha256Hash": hash }),
            "extensions.persistedQuery: version 2 is not supported; only version 1 is",
        ),
        (
            json!({ "version": 0, "sha256Hash": hash }),
            "extensions.persistedQuery: version 0 is not supported; only version 1 is",
        ),
        (
            json!({ "sha256Hash": hash }),
            "extensions.persistedQuery: version is required and must be 1",
        ),
        (
            json!({ "version": 1 }),
            "extensions.persistedQuery: sha256Hash is required and must be a hex string",
        ),
        (
            json!({ "version": 1, "sha256Hash": "not-a-hash" }),
            "persistedQuery.sha256Hash must be the 64 hex digits of the query's SHA-256",
        ),
    ];
    for get in [false, true] {
        for (extension, message) in &cases {
            for query in [Some(PRODUCT), None] {
                let mut body = json!({ "extensions": { "persistedQuery": extension } });
                if let Some(query) = query {
                    body["query"] = json!(query);
                }
                let response = send(&app, get, body).await;
                assert_eq!(response.status(), 400);
                let body: Value = response.json().await.unwrap();
                assert_eq!(error_codes(&body), ["BAD_USER_INPUT"]);
                assert_eq!(only_error(&body)["message"], *message);
            }
        }
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn hashes_are_case_insensitive() {
    let app = spawn_app().await;
    let hash = sha256(PRODUCT);
    let response = app
        .post(
            json!({ "query": PRODUCT, "extensions": apq_extension(&hash.to_uppercase()) }),
            None,
        )
        .await;
    json_200(response).await;
    let response = app
        .get(json!({ "extensions": apq_extension(&hash) }), None)
        .await;
    assert_eq!(data(&json_200(response).await), &expected_product());
}

#[tokio::test]
async fn only_anonymous_gets_by_hash_are_cacheable() {
    let app = spawn_app().await;
    let hash = sha256(PRODUCT);
    let registered = app
        .post(
            json!({ "query": PRODUCT, "extensions": apq_extension(&hash) }),
            None,
        )
        .await;
    // POST: never for a CDN.
    assert_eq!(
        header(&registered, "cache-control"),
        Some("private, no-store")
    );
    json_200(registered).await;

    // GET by hash, signed out, no errors: a CDN may keep it.
    let response = app
        .get(json!({ "extensions": apq_extension(&hash) }), None)
        .await;
    assert_eq!(
        header(&response, "cache-control"),
        Some("public, max-age=60")
    );
    let vary: Vec<&str> = response
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        vary.iter().any(|v| v.eq_ignore_ascii_case("authorization")),
        "{vary:?}"
    );
    json_200(response).await;

    // The same GET with a token: private.
    let token = app.token("u1");
    let response = app
        .get(json!({ "extensions": apq_extension(&hash) }), Some(&token))
        .await;
    assert_eq!(
        header(&response, "cache-control"),
        Some("private, no-store")
    );
    assert_eq!(data(&json_200(response).await), &expected_product());

    // GET with the query text instead of a hash: private (long, unstable URLs).
    let response = app.get(json!({ "query": PRODUCT }), None).await;
    assert_eq!(
        header(&response, "cache-control"),
        Some("private, no-store")
    );
    json_200(response).await;

    // The viewer's dashboard by hash over GET: private.
    let dashboard = sha256(DASHBOARD);
    let response = app
        .post(
            json!({ "query": DASHBOARD, "extensions": apq_extension(&dashboard) }),
            Some(&token),
        )
        .await;
    json_200(response).await;
    let response = app
        .get(
            json!({ "extensions": apq_extension(&dashboard) }),
            Some(&token),
        )
        .await;
    assert_eq!(
        header(&response, "cache-control"),
        Some("private, no-store")
    );
    let body = json_200(response).await;
    assert_eq!(data(&body)["dashboard"]["user"]["name"], "Ada Lovelace");
    // ... and signed out it is an error, which is not cacheable either.
    let response = app
        .get(json!({ "extensions": apq_extension(&dashboard) }), None)
        .await;
    assert_eq!(
        header(&response, "cache-control"),
        Some("private, no-store")
    );
    assert_eq!(error_codes(&json_200(response).await), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn a_failed_answer_is_not_cacheable() {
    let app = spawn_app().await;
    app.services
        .product
        .control
        .set_fault(devstack_services::Fault::new("/products").status(503));
    let query = "{ product(id: \"p1\") { name } }";
    let hash = sha256(query);
    // Registered even though this run failed: the text is fine.
    let response = app
        .post(
            json!({ "query": query, "extensions": apq_extension(&hash) }),
            None,
        )
        .await;
    assert_eq!(
        error_codes(&json_200(response).await),
        ["DOWNSTREAM_UNAVAILABLE"]
    );
    let response = app
        .get(json!({ "extensions": apq_extension(&hash) }), None)
        .await;
    assert_eq!(
        header(&response, "cache-control"),
        Some("private, no-store")
    );
    assert_eq!(
        error_codes(&json_200(response).await),
        ["DOWNSTREAM_UNAVAILABLE"]
    );

    // Once the service is back, the same GET is cacheable.
    app.services.product.control.clear_faults();
    let response = app
        .get(json!({ "extensions": apq_extension(&hash) }), None)
        .await;
    assert_eq!(
        header(&response, "cache-control"),
        Some("public, max-age=60")
    );
    json_200(response).await;
}

#[tokio::test]
async fn mutations_stay_off_get_even_by_hash() {
    let app = spawn_app().await;
    let mutation = "mutation { noSuchThing }";
    let hash = sha256(mutation);
    // Registered over POST (it fails validation: the schema has no mutations).
    let response = app
        .post(
            json!({ "query": mutation, "extensions": apq_extension(&hash) }),
            None,
        )
        .await;
    assert!(!json_200(response).await["errors"].is_null());
    let response = app
        .get(json!({ "extensions": apq_extension(&hash) }), None)
        .await;
    assert_eq!(response.status(), 405);
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn abuse_limits_apply_to_persisted_queries_too() {
    let app = spawn_app().await;
    let fields: String = (0..1_000).map(|i| format!("n{i}: name ")).collect();
    let query = format!("{{ product(id: \"p1\") {{ {fields} }} }}");
    let hash = sha256(&query);
    let register = json!({ "query": query, "extensions": apq_extension(&hash) });
    let body: Value = app.post(register, None).await.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("aliases")
    );
    // By hash afterwards (registered or not): still nothing runs.
    let by_hash = json!({ "extensions": apq_extension(&hash) });
    let body: Value = app.get(by_hash, None).await.json().await.unwrap();
    assert!(
        body["errors"][0]["extensions"]["code"].is_string(),
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_stale_answer_says_so_and_is_never_cacheable() {
    let app = crate::helpers::spawn_app_with(|config| config.downstream.cache.ttl_ms = 50).await;
    let hash = sha256(PRODUCT);
    let fresh = app
        .post(
            json!({ "query": PRODUCT, "extensions": apq_extension(&hash) }),
            None,
        )
        .await;
    assert_eq!(json_200(fresh).await["extensions"]["stale"], Value::Null);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    app.services
        .product
        .control
        .set_fault(devstack_services::Fault::new("/products").status(503));

    // The product service is down: the cached copy past its TTL is served,
    // marked stale, and a CDN must not keep it.
    let response = app
        .get(json!({ "extensions": apq_extension(&hash) }), None)
        .await;
    assert_eq!(
        header(&response, "cache-control"),
        Some("private, no-store")
    );
    let body = json_200(response).await;
    assert_eq!(data(&body), &expected_product());
    assert_eq!(body["extensions"]["stale"], json!([["product"]]));
}
