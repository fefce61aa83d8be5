//! Chaos soak through the web BFF: random latency, errors and hangs on every
//! downstream service while concurrent clients query. Every answer is HTTP
//! 200 GraphQL JSON with data or the downstream error codes, in time.
//!
//! CI runs 300 requests; a longer run:
//! `CHAOS_REQUESTS=5000 cargo test -p web-bff --test api chaos`

use std::time::Duration;

use devstack_services::Fault;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::helpers::{TestApp, spawn_app_with};

const DEFAULT_REQUESTS: usize = 300;
const CLIENTS: usize = 8;
const DOWNSTREAM_TIMEOUT_MS: u64 = 150;

const QUERIES: [&str; 4] = [
    "{ dashboard { user { id name } orders(first: 3) { id items { product { id name } } } recommendations(first: 3) { product { id name } } analytics { ordersThisMonth } } }",
    r#"{ product(id: "p1") { id name } me { name } }"#,
    r#"{ product(id: "p7") { id name } }"#,
    "{ me { name } }",
];

/// xorshift64: enough randomness for chaos, without a dependency.
struct Dice(u64);

impl Dice {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self(u64::from(nanos) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// A fraction in `0..max`.
    fn rate(&mut self, max: f64) -> f64 {
        self.below(1_000) as f64 / 1_000.0 * max
    }
}

fn random_fault(dice: &mut Dice) -> Fault {
    let mut fault = Fault::new("/").latency(dice.below(30));
    match dice.below(8) {
        0..=1 => {}
        2 => fault = fault.hang().rate(dice.rate(0.3)),
        3 => fault = fault.status(500).rate(dice.rate(0.5)),
        _ => {
            let status = [502, 503, 504][dice.below(3) as usize];
            fault = fault.status(status).rate(dice.rate(1.0));
        }
    }
    fault
}

/// Why `response` is not a valid answer, if it is not.
fn invalid(response: &Value) -> Option<String> {
    let has_data = response.get("data").is_some_and(|d| !d.is_null());
    let errors = response.get("errors").and_then(Value::as_array);
    if !has_data && errors.is_none_or(Vec::is_empty) {
        return Some(format!("neither data nor errors: {response}"));
    }
    for error in errors.into_iter().flatten() {
        let code = error["extensions"]["code"].as_str().unwrap_or("");
        if !matches!(code, "DOWNSTREAM_UNAVAILABLE" | "DOWNSTREAM_TIMEOUT") {
            return Some(format!("unexpected error: {error}"));
        }
    }
    None
}

async fn one_request(app: &TestApp, token: &str, query: &str) -> Result<(), String> {
    let response = app
        .graphql_request(query, json!({}), Some(token))
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("status {status}, not JSON: {e}"))?;
    if status != 200 {
        return Err(format!("status {status}: {body}"));
    }
    invalid(&body).map_or(Ok(()), Err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_every_answer_is_valid_graphql_in_time() {
    let app = std::sync::Arc::new(
        spawn_app_with(|config| config.downstream.timeout_ms = DOWNSTREAM_TIMEOUT_MS).await,
    );
    let token = app.token("u1");
    let deadline = app.config.request_timeout() + Duration::from_millis(500);
    let total: usize = std::env::var("CHAOS_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_REQUESTS);

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chaos = tokio::spawn({
        let (app, done) = (app.clone(), done.clone());
        async move {
            let mut dice = Dice::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for service in app.services.all() {
                    service.control.set_fault(random_fault(&mut dice));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    });

    let clients = (0..CLIENTS).map(|_| {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move {
            let mut dice = Dice::new();
            let mut failures = Vec::new();
            for _ in 0..total / CLIENTS {
                let query = QUERIES[dice.below(QUERIES.len() as u64) as usize];
                let started = Instant::now();
                match tokio::time::timeout(deadline, one_request(&app, &token, query)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(failure)) => failures.push(failure),
                    Err(_) => failures.push(format!("no answer in {:?}", started.elapsed())),
                }
            }
            failures
        })
    });
    let mut failures = Vec::new();
    for client in futures::future::join_all(clients).await {
        failures.extend(client.expect("no client panics"));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    chaos.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
