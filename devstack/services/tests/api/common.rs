//! A spawned stack plus a small JSON client.

use std::time::Duration;

use devstack_services::{Service, Services};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub(crate) struct Stack {
    pub(crate) services: Services,
    pub(crate) client: reqwest::Client,
}

/// What came back: status, headers and the body (JSON if it parses, else a string).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub(crate) fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_owned()
    }
}

impl Stack {
    pub(crate) async fn new() -> Stack {
        let services = Services::spawn_ephemeral().await.unwrap();
        // No proxy: the services are on loopback whatever the environment says.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Stack { services, client }
    }

    pub(crate) fn url(&self, service: Service, path: &str) -> String {
        format!("{}{path}", self.services.get(service).url())
    }

    pub(crate) fn request(
        &self,
        service: Service,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(service, path))
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&self, service: Service, path: &str) -> Reply {
        self.send(self.request(service, Method::GET, path)).await
    }

    /// GET that must answer 200 with JSON.
    pub(crate) async fn get_ok(&self, service: Service, path: &str) -> Value {
        let reply = self.get(service, path).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.text);
        reply.json()
    }

    pub(crate) async fn post(&self, service: Service, path: &str, body: &Value) -> Reply {
        self.send(self.request(service, Method::POST, path).json(body))
            .await
    }

    pub(crate) async fn place_order(&self, key: Option<&str>, body: &Value) -> Reply {
        let mut request = self
            .request(Service::Order, Method::POST, "/orders")
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }
}

pub(crate) fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            item.get("id")
                .or_else(|| item.get("product_id"))
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect()
}
