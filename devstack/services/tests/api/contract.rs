//! `schema/downstream.openapi.json` against the running services: every
//! documented operation is called, every answer is checked against the schema
//! the document declares for its status, and every served route is documented.

use std::collections::BTreeSet;

use devstack_services::Service;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::openapi::{check, resolve};

use crate::common::Stack;

const DOC: &str = include_str!("../../../../schema/downstream.openapi.json");

fn doc() -> Value {
    serde_json::from_str(DOC).unwrap()
}

fn service_named(name: &str) -> Service {
    Service::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("unknown x-service {name}"))
}

/// One request of the walk through the document.
struct Case {
    method: Method,
    /// The documented path template, e.g. `/products/{id}`.
    template: &'static str,
    /// The concrete path and query.
    path: &'static str,
    body: Option<Value>,
    idempotency_key: Option<&'static str>,
    last_event_id: Option<&'static str>,
    status: u16,
}

fn case(method: Method, template: &'static str, path: &'static str, status: u16) -> Case {
    Case {
        method,
        template,
        path,
        body: None,
        idempotency_key: None,
        last_event_id: None,
        status,
    }
}

impl Case {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn key(mut self, key: &'static str) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    fn last_event_id(mut self, id: &'static str) -> Self {
        self.last_event_id = Some(id);
        self
    }
}

fn cases() -> Vec<Case> {
    use Method as M;
    let order = json!({
        "user_id": "u1", "items": [{"product_id": "p1", "quantity": 1}],
        "address_id": "a1", "shipping_option_id": "express", "payment_method_id": "pm2"
    });
    vec![
        // user
        case(M::GET, "/users", "/users?ids=u2,u404,u1", 200),
        case(M::GET, "/users", "/users", 400),
        case(M::GET, "/users/{id}", "/users/u1", 200),
        case(M::GET, "/users/{id}", "/users/u404", 404),
        case(M::GET, "/users/{id}/analytics", "/users/u1/analytics", 200),
        case(M::GET, "/users/{id}/analytics", "/users/u4/analytics", 200),
        case(M::GET, "/users/{id}/wishlist", "/users/u1/wishlist", 200),
        case(M::PUT, "/users/{id}/wishlist/{product_id}", "/users/u1/wishlist/p7", 204),
        case(M::PUT, "/users/{id}/wishlist/{product_id}", "/users/u1/wishlist/p999", 404),
        case(M::DELETE, "/users/{id}/wishlist/{product_id}", "/users/u1/wishlist/p7", 204),
        case(M::DELETE, "/users/{id}/wishlist/{product_id}", "/users/u404/wishlist/p7", 404),
        case(M::GET, "/users/{id}/payment-methods", "/users/u1/payment-methods", 200),
        case(M::GET, "/users/{id}/payment-methods", "/users/u404/payment-methods", 404),
        // product
        case(M::GET, "/products", "/products?ids=p1,p21,p3", 200),
        case(M::GET, "/products", "/products?category_id=home&page=2&limit=5", 200),
        case(M::GET, "/products", "/products?ids=", 400),
        case(M::GET, "/products/{id}", "/products/p1", 200),
        case(M::GET, "/products/{id}", "/products/p999", 404),
        case(M::GET, "/products/{id}/reviews", "/products/p1/reviews", 200),
        case(M::GET, "/products/{id}/reviews", "/products/p1/reviews?limit=0", 400),
        case(M::GET, "/products/{id}/reviews", "/products/p999/reviews", 404),
        case(M::GET, "/products/{id}/related", "/products/p1/related?limit=3", 200),
        case(M::GET, "/products/{id}/related", "/products/p999/related", 404),
        // order
        case(M::GET, "/users/{id}/orders", "/users/u1/orders", 200),
        case(M::GET, "/users/{id}/orders", "/users/u1/orders?limit=x", 400),
        case(M::GET, "/users/{id}/orders", "/users/u404/orders", 404),
        case(M::GET, "/orders/{id}", "/orders/o11", 200),
        case(M::GET, "/orders/{id}", "/orders/o999", 404),
        case(M::POST, "/checkout/quote", "/checkout/quote", 200)
            .body(json!({"user_id": "u1", "items": [{"product_id": "p1", "quantity": 2}], "address_id": "a1"})),
        case(M::POST, "/checkout/quote", "/checkout/quote", 400)
            .body(json!({"user_id": "u1", "items": []})),
        case(M::POST, "/checkout/quote", "/checkout/quote", 404)
            .body(json!({"user_id": "u404", "items": [{"product_id": "p1", "quantity": 1}]})),
        case(M::POST, "/orders", "/orders", 201).body(order.clone()).key("contract-1"),
        case(M::POST, "/orders", "/orders", 400).body(order.clone()),
        case(M::POST, "/orders", "/orders", 403)
            .body(json!({
                "user_id": "u5", "items": [{"product_id": "p1", "quantity": 1}],
                "address_id": "a6", "shipping_option_id": "standard", "payment_method_id": "pm6"
            }))
            .key("contract-2"),
        case(M::POST, "/orders", "/orders", 404)
            .body(json!({
                "user_id": "u404", "items": [{"product_id": "p1", "quantity": 1}],
                "address_id": "a1", "shipping_option_id": "standard", "payment_method_id": "pm1"
            }))
            .key("contract-3"),
        // From the start of the log: replays the order placed above.
        case(M::GET, "/order-events", "/order-events", 200).last_event_id("0"),
        case(M::GET, "/order-events", "/order-events", 400).last_event_id("-1"),
        // recommendation
        case(M::GET, "/users/{id}/recommendations", "/users/u1/recommendations", 200),
        case(M::GET, "/users/{id}/recommendations", "/users/u1/recommendations?limit=101", 400),
        case(M::GET, "/users/{id}/recommendations", "/users/u404/recommendations", 404),
        case(M::GET, "/products/{id}/similar", "/products/p1/similar?user_id=u1&limit=5", 200),
        case(M::GET, "/products/{id}/similar", "/products/p1/similar?limit=-1", 400),
        case(M::GET, "/products/{id}/similar", "/products/p999/similar", 404),
        // device
        case(M::GET, "/devices/{id}", "/devices/d1", 200),
        case(M::GET, "/devices/{id}", "/devices/d3", 200),
        case(M::GET, "/devices/{id}", "/devices/d999", 404),
        case(M::PATCH, "/devices/{id}/settings", "/devices/d2/settings", 200)
            .body(json!({"mode": "heat", "schedule": null})),
        case(M::PATCH, "/devices/{id}/settings", "/devices/d2/settings", 400)
            .body(json!({"fan": "max"})),
        case(M::PATCH, "/devices/{id}/settings", "/devices/d999/settings", 404)
            .body(json!({"mode": "heat"})),
    ]
}

/// The documented operations: (service, METHOD, template).
fn documented(doc: &Value) -> BTreeSet<(Service, String, String)> {
    let mut operations = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let service = service_named(item["x-service"].as_str().unwrap());
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                operations.insert((service, method.to_uppercase(), template.clone()));
            }
        }
    }
    operations
}

#[test]
fn every_served_route_is_documented_and_vice_versa() {
    let doc = doc();
    let served: BTreeSet<_> = Service::ALL
        .into_iter()
        .flat_map(|service| {
            devstack_services::routes(service)
                .into_iter()
                .map(move |(method, path)| (service, method.to_owned(), path.to_owned()))
        })
        .collect();
    let documented = documented(&doc);
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(Service, String, String)>::new(),
        "served but not documented"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&(Service, String, String)>::new(),
        "documented but not served"
    );
}

#[test]
fn request_examples_match_their_schemas() {
    let doc = doc();
    let mut errors = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if let Some(media) = operation.pointer("/requestBody/content/application~1json") {
                let at = format!("{method} {template} example");
                check(&doc, &media["schema"], &media["example"], &at, &mut errors);
            }
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let doc = doc();
    let stack = Stack::new().await;
    let mut errors = Vec::new();
    let mut exercised = BTreeSet::new();
    for case in cases() {
        let item = &doc["paths"][case.template];
        assert!(item.is_object(), "{} is not documented", case.template);
        let service = service_named(item["x-service"].as_str().unwrap());
        let method = case.method.as_str().to_lowercase();
        let operation = &item[&method];
        assert!(
            operation.is_object(),
            "{method} {} is not documented",
            case.template
        );

        let mut request = stack.request(service, case.method.clone(), case.path);
        if let Some(body) = &case.body {
            request = request.json(body);
        }
        if let Some(key) = case.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(id) = case.last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let label = format!("{} {} ({})", case.method, case.path, service);
        let status = case.status.to_string();
        if let Some(stream) = operation["responses"]
            .get(&status)
            .map(|r| resolve(&doc, r))
            .and_then(|r| r.pointer("/content/text~1event-stream"))
        {
            // A stream does not end: check its first event and leave.
            let event = first_event(request).await;
            check(&doc, &stream["x-event-data"], &event, &label, &mut errors);
            exercised.insert((
                service,
                case.method.as_str().to_owned(),
                case.template.to_owned(),
            ));
            continue;
        }
        let reply = stack.send(request).await;
        if reply.status.as_u16() != case.status {
            errors.push(format!(
                "{label}: status {} (expected {}): {}",
                reply.status, case.status, reply.text
            ));
            continue;
        }
        let Some(response) = operation["responses"].get(&status) else {
            errors.push(format!("{label}: status {status} is not documented"));
            continue;
        };
        let response = resolve(&doc, response);
        match response.pointer("/content/application~1json/schema") {
            Some(schema) => check(&doc, schema, &reply.json(), &label, &mut errors),
            None if reply.text.is_empty() => {}
            None => errors.push(format!("{label}: undocumented body {}", reply.text)),
        }
        if reply.status.is_success() {
            exercised.insert((
                service,
                case.method.as_str().to_owned(),
                case.template.to_owned(),
            ));
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
    let missing: Vec<_> = documented(&doc).difference(&exercised).cloned().collect();
    assert!(
        missing.is_empty(),
        "operations never answered with success: {missing:?}"
    );
}

/// The `data:` of the first event of an event stream, as JSON.
async fn first_event(request: reqwest::RequestBuilder) -> Value {
    let mut response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "content type of a stream"
    );
    let mut text = String::new();
    loop {
        // Only complete blocks (ended by a blank line); keep-alives (`:`
        // lines) have no data.
        if let Some(data) = text
            .rsplit_once("\n\n")
            .into_iter()
            .flat_map(|(complete, _)| complete.lines())
            .find_map(|line| line.strip_prefix("data: "))
        {
            return serde_json::from_str(data).unwrap();
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), response.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}
