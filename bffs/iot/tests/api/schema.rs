//! `schema/iot.openapi.json` against the running BFF: the documented
//! operations are exactly the served ones, every answer of a walk through
//! the API has a documented status and matches the documented schema (JSON
//! and CBOR alike), and undocumented methods and paths are not served.

use std::collections::BTreeSet;

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, IF_NONE_MATCH};
use serde_json::{Value, json};
use testkit::openapi::{check, resolve};

use crate::helpers::{
    As, CBOR, Reply, TestApp, cbor_bytes, raw_exchange, spawn_app, spawn_app_with,
};

const DOC: &str = include_str!("../../../../schema/iot.openapi.json");
const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "options", "head"];

fn doc() -> Value {
    serde_json::from_str(DOC).unwrap()
}

/// The documented operations as (METHOD, path template).
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((method.to_uppercase(), template.clone()));
            }
        }
    }
    operations
}

/// What the router serves: the API's routes and the front door's two.
fn served() -> BTreeSet<(String, String)> {
    iot_bff::ROUTES
        .into_iter()
        .chain([("GET", "/healthz"), ("GET", "/readyz")])
        .map(|(method, path)| (method.to_owned(), path.to_owned()))
        .collect()
}

#[test]
fn the_document_describes_exactly_the_served_routes() {
    let doc = doc();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(documented(&doc), served());
}

#[test]
fn examples_match_their_schemas() {
    let doc = doc();
    let mut errors = Vec::new();
    let mut seen = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            check(
                &doc,
                schema,
                example,
                &format!("schema {name}"),
                &mut errors,
            );
            seen += 1;
        }
    }
    let mut media_examples = |owner: String, content: &Value| {
        for (media, entry) in content.as_object().into_iter().flatten() {
            if let Some(example) = entry.get("example") {
                check(
                    &doc,
                    &entry["schema"],
                    example,
                    &format!("{owner} {media}"),
                    &mut errors,
                );
                seen += 1;
            }
        }
    };
    for (name, response) in doc["components"]["responses"].as_object().unwrap() {
        media_examples(format!("response {name}"), &response["content"]);
    }
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            media_examples(
                format!("{method} {template} request"),
                &operation["requestBody"]["content"],
            );
            for (status, response) in operation["responses"].as_object().unwrap() {
                media_examples(
                    format!("{method} {template} {status}"),
                    &response["content"],
                );
            }
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(seen >= 10, "only {seen} examples checked");
}

/// One request of the walk through the API.
struct Case {
    method: &'static str,
    /// The documented path template.
    template: &'static str,
    path: &'static str,
    who: As<'static>,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    accept: Option<&'static str>,
    /// Sends `If-None-Match: *`.
    if_none_match: bool,
    status: u16,
}

fn case(method: &'static str, template: &'static str, path: &'static str, status: u16) -> Case {
    Case {
        method,
        template,
        path,
        who: As::User("u1"),
        body: None,
        content_type: None,
        accept: None,
        if_none_match: false,
        status,
    }
}

impl Case {
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.content_type = Some("application/json");
        self
    }
    fn cbor(mut self, body: &ciborium::Value) -> Self {
        self.body = Some(cbor_bytes(body));
        self.content_type = Some(CBOR);
        self
    }
    fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self.content_type = Some("application/json");
        self
    }
    fn accept_cbor(mut self) -> Self {
        self.accept = Some(CBOR);
        self
    }
    fn who(mut self, who: As<'static>) -> Self {
        self.who = who;
        self
    }
    fn if_none_match(mut self) -> Self {
        self.if_none_match = true;
        self
    }
}

const STATUS: &str = "/v1/devices/{id}";
const SETTINGS: &str = "/v1/devices/{id}/settings";

fn cases() -> Vec<Case> {
    let cbor_patch = ciborium::Value::Map(vec![(
        ciborium::Value::Text("m".into()),
        ciborium::Value::Text("eco".into()),
    )]);
    vec![
        case("GET", STATUS, "/v1/devices/d1", 200),
        case("GET", STATUS, "/v1/devices/d3", 200).who(As::Device("d3")),
        case("GET", STATUS, "/v1/devices/d2", 200)
            .who(As::User("u2"))
            .accept_cbor(),
        case("GET", STATUS, "/v1/devices/d1", 304).if_none_match(),
        case("GET", STATUS, "/v1/devices/d1", 401).who(As::Nobody),
        case("GET", STATUS, "/v1/devices/d1", 401).who(As::Forged),
        case("GET", STATUS, "/v1/devices/d2", 404),
        case("GET", STATUS, "/v1/devices/d999", 404),
        case("PATCH", SETTINGS, "/v1/devices/d1/settings", 200).json(json!({"t": 22, "s": null})),
        case("PATCH", SETTINGS, "/v1/devices/d4/settings", 200).json(json!({"s": "daily"})),
        case("PATCH", SETTINGS, "/v1/devices/d4/settings", 200)
            .cbor(&cbor_patch)
            .accept_cbor(),
        case("PATCH", SETTINGS, "/v1/devices/d1/settings", 400).json(json!({"x": 1})),
        case("PATCH", SETTINGS, "/v1/devices/d1/settings", 400).json(json!({"t": 99})),
        case("PATCH", SETTINGS, "/v1/devices/d1/settings", 400).json(json!({})),
        case("PATCH", SETTINGS, "/v1/devices/d1/settings", 400).raw("t=22"),
        case("PATCH", SETTINGS, "/v1/devices/d1/settings", 401)
            .who(As::Nobody)
            .json(json!({"t": 22})),
        case("PATCH", SETTINGS, "/v1/devices/d2/settings", 404).json(json!({"t": 22})),
        case("PATCH", SETTINGS, "/v1/devices/d1/settings", 413)
            .raw(&format!("{{\"t\":22}}{}", " ".repeat(1100))),
        case("GET", "/healthz", "/healthz", 200).who(As::Nobody),
        case("GET", "/readyz", "/readyz", 200).who(As::Nobody),
    ]
}

async fn send(app: &TestApp, case: &Case) -> Reply {
    let method = Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = app.authorize(app.client.request(method, app.url(case.path)), case.who);
    if let Some(body) = &case.body {
        request = request.body(body.clone());
    }
    if let Some(content_type) = case.content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(accept) = case.accept {
        request = request.header(ACCEPT, accept);
    }
    if case.if_none_match {
        request = request.header(IF_NONE_MATCH, "*");
    }
    Reply::of(request.send().await.unwrap()).await
}

#[tokio::test]
async fn every_answer_is_documented_and_matches_its_schema() {
    let doc = doc();
    let app = spawn_app().await;
    let mut errors = Vec::new();
    let mut exercised = BTreeSet::new();
    for case in cases() {
        let label = format!("{} {} ({:?})", case.method, case.path, case.who);
        let operation = &doc["paths"][case.template][case.method.to_lowercase()];
        assert!(operation.is_object(), "{label}: not documented");
        let reply = send(&app, &case).await;
        assert_eq!(
            reply.status,
            case.status,
            "{label}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let status = reply.status.to_string();
        let Some(response) = operation["responses"].get(&status) else {
            errors.push(format!("{label}: status {status} is not documented"));
            continue;
        };
        let response = resolve(&doc, response);
        exercised.insert((case.method, case.template, status.clone()));
        for name in response["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(n, _)| n)
        {
            if reply.header(name).is_none() {
                errors.push(format!("{label}: documented header {name} is missing"));
            }
        }
        let content = &response["content"];
        if content.is_null() {
            if !reply.body.is_empty() {
                errors.push(format!("{label}: a body where none is documented"));
            }
            continue;
        }
        let media = reply.header("content-type").unwrap_or_default().to_owned();
        let Some(schema) = content.get(&media).map(|entry| &entry["schema"]) else {
            errors.push(format!("{label}: content type {media} is not documented"));
            continue;
        };
        let body = if media == CBOR {
            reply.cbor()
        } else {
            reply.json()
        };
        check(&doc, schema, &body, &label, &mut errors);
    }
    assert!(errors.is_empty(), "{errors:#?}");

    // Every documented status of the API's operations was seen, except the
    // downstream failures (failures.rs covers those), 503 readiness and the
    // slow body's 408 (its own test below: it needs a stalled connection).
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in operation["responses"].as_object().unwrap().keys() {
                if ["502", "504", "503", "408"].contains(&status.as_str()) {
                    continue;
                }
                let method = method.to_uppercase();
                assert!(
                    exercised
                        .iter()
                        .any(|(m, t, s)| *m == method && t == template && s == status),
                    "{method} {template} {status} was never exercised"
                );
            }
        }
    }
}

#[tokio::test]
async fn undocumented_methods_and_paths_are_not_served() {
    let doc = doc();
    let app = spawn_app().await;
    let documented = documented(&doc);
    for (template, _) in doc["paths"].as_object().unwrap() {
        let path = template.replace("{id}", "d1");
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            if documented.contains(&(method.to_owned(), template.clone())) {
                continue;
            }
            let request = app.client.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&path),
            );
            let reply = app.authorize(request, As::User("u1")).send().await.unwrap();
            assert_eq!(reply.status(), 405, "{method} {path}");
        }
    }
    for path in [
        "/v1",
        "/v1/devices",
        "/v1/devices/d1/settings/t",
        "/v1/users/u1",
        "/graphql",
    ] {
        let request = app.authorize(app.client.get(app.url(path)), As::User("u1"));
        let reply = Reply::of(request.send().await.unwrap()).await;
        reply.assert_error(404, "not found");
    }
    assert_eq!(app.downstream_total(), 0);
}

#[tokio::test]
async fn a_slow_body_gets_the_documented_408() {
    let doc = doc();
    let app = spawn_app_with(|config| config.body_read_timeout_ms = 200).await;
    let authorization = app.authorization(As::User("u1")).unwrap();
    // Ten bytes are promised, two arrive, then nothing.
    let head = format!(
        "PATCH /v1/devices/d1/settings HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: 10\r\nAuthorization: {authorization}\r\n\r\n",
        app.addr
    );
    let reply = raw_exchange(app.addr, head.as_bytes(), b"{\"").await;
    assert_eq!(reply.status, 408, "{}", reply.text());
    let operation = &doc["paths"][SETTINGS]["patch"];
    let response = resolve(&doc, &operation["responses"]["408"]);
    let mut errors = Vec::new();
    let schema = &response["content"]["application/json"]["schema"];
    check(&doc, schema, &reply.json(), "PATCH 408", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(app.downstream_total(), 0);
}
