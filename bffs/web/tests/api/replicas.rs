//! Two replicas of web-bff sharing one Redis (a real `redis-server` of the
//! test's own) and one devstack: the entity caches' second level. A product
//! fetched through one replica is served by the other without a call; a
//! wishlist change through one is what the other reads next; with Redis
//! down every request still answers; without `BFF_REDIS_URL`, as before.

use std::time::{Duration, Instant};

use bff_server::Config;
use devstack_services::{Services, TokenKind};
use serde_json::{Value, json};
use testkit::redis::RedisServer;
use tokio::task::JoinHandle;

use crate::helpers::{data, test_config, token_for};

const PRODUCT: &str =
    r#"query ReplicaProduct($id: ID!) { product(id: $id) { id name inWishlist } }"#;

struct Replica {
    url: String,
    task: JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn replica(config: &Config) -> Replica {
    let router = web_bff::app(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        bff_server::serve_with_shutdown(listener, router, std::future::pending())
            .await
            .unwrap();
    });
    Replica { url, task }
}

fn shared_config(services: &Services, redis: &RedisServer) -> Config {
    let mut config = test_config(services);
    config.redis.url = Some(redis.url());
    config.validate().unwrap();
    config
}

fn bearer(config: &Config, user: &str) -> String {
    token_for(config, user, Duration::from_secs(600), TokenKind::User)
}

async fn query(replica: &Replica, token: Option<&str>, query: &str, variables: Value) -> Value {
    let request = reqwest::Client::new()
        .post(&replica.url)
        .json(&json!({ "query": query, "variables": variables }));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn product_calls(services: &Services) -> u64 {
    services.product.control.total()
}

#[tokio::test]
async fn a_product_fetched_through_one_replica_is_served_by_another_without_a_call() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let services = Services::spawn_ephemeral().await.unwrap();
    let config = shared_config(&services, &redis);
    let (a, b) = (replica(&config).await, replica(&config).await);

    let through_a = query(&a, None, PRODUCT, json!({ "id": "p3" })).await;
    let calls = product_calls(&services);
    assert!(calls >= 1, "A fetched it from the service");
    let through_b = query(&b, None, PRODUCT, json!({ "id": "p3" })).await;
    assert_eq!(data(&through_b), data(&through_a));
    assert_eq!(
        product_calls(&services),
        calls,
        "B asked the product service"
    );

    // An id the service does not know is remembered as absent too.
    let unknown = query(&a, None, PRODUCT, json!({ "id": "p-none" })).await;
    let calls = product_calls(&services);
    let again = query(&b, None, PRODUCT, json!({ "id": "p-none" })).await;
    assert_eq!(again["data"], unknown["data"]);
    assert_eq!(
        product_calls(&services),
        calls,
        "B asked again for an unknown id"
    );

    // Without Redis, B would have called the service itself: today's behaviour.
    let alone = test_config(&services);
    alone.validate().unwrap();
    let c = replica(&alone).await;
    let calls = product_calls(&services);
    query(&c, None, PRODUCT, json!({ "id": "p3" })).await;
    assert_eq!(product_calls(&services), calls + 1);
}

#[tokio::test]
async fn a_wishlist_change_through_one_replica_is_what_the_other_reads_next() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let services = Services::spawn_ephemeral().await.unwrap();
    let config = shared_config(&services, &redis);
    let (a, b) = (replica(&config).await, replica(&config).await);
    let token = bearer(&config, "u1");
    let in_wishlist = |response: &Value| data(response)["product"]["inWishlist"].clone();

    // Both replicas have read (and cached) the wishlist before the change.
    let before_a = query(&a, Some(&token), PRODUCT, json!({ "id": "p7" })).await;
    let before_b = query(&b, Some(&token), PRODUCT, json!({ "id": "p7" })).await;
    assert_eq!(in_wishlist(&before_a), in_wishlist(&before_b));
    let was = in_wishlist(&before_b) == json!(true);
    let (change, now) = if was {
        (
            "mutation { removeFromWishlist(productId: \"p7\") { id inWishlist } }",
            false,
        )
    } else {
        (
            "mutation { addToWishlist(productId: \"p7\") { id inWishlist } }",
            true,
        )
    };
    query(&a, Some(&token), change, json!({})).await;
    let after_b = query(&b, Some(&token), PRODUCT, json!({ "id": "p7" })).await;
    assert_eq!(in_wishlist(&after_b), json!(now), "{after_b:#}");
}

#[tokio::test]
async fn with_redis_down_every_request_answers_and_sharing_resumes_when_it_is_back() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let services = Services::spawn_ephemeral().await.unwrap();
    let config = shared_config(&services, &redis);
    let (a, b) = (replica(&config).await, replica(&config).await);
    let token = bearer(&config, "u2");

    redis.kill();
    for (round, id) in ["p1", "p2", "p3", "p4", "p5", "p6"].into_iter().enumerate() {
        let replica = if round % 2 == 0 { &a } else { &b };
        let started = Instant::now();
        let answer = query(replica, Some(&token), PRODUCT, json!({ "id": id })).await;
        assert_eq!(data(&answer)["product"]["id"], id, "{answer:#}");
        // Bounded by the Redis timeout (50 ms), never a hang.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    redis.resume().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        query(&a, None, PRODUCT, json!({ "id": "p8" })).await;
        let calls = product_calls(&services);
        // B's own memory does not have p8 (nor, after the first round, fresh
        // copies from A unless Redis has them again).
        let c = replica(&config).await;
        query(&c, None, PRODUCT, json!({ "id": "p8" })).await;
        if product_calls(&services) == calls {
            break;
        }
        assert!(Instant::now() < deadline, "sharing did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stale-while-revalidate: past its TTL (inside the revalidate window) a
/// product is answered at once, while the service hangs, and refreshed in
/// the background by one replica of the two.
#[tokio::test]
async fn past_its_ttl_an_entity_is_answered_at_once_and_refreshed_by_one_replica() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let services = Services::spawn_ephemeral().await.unwrap();
    let mut config = shared_config(&services, &redis);
    config.downstream.cache.ttl_ms = 200;
    config.downstream.cache.revalidate_ms = 60_000;
    config.downstream.timeout_ms = 300;
    config.downstream.retry.max_retries = 0;
    let (a, b) = (replica(&config).await, replica(&config).await);
    let fresh = query(&a, None, PRODUCT, json!({ "id": "p5" })).await;
    query(&b, None, PRODUCT, json!({ "id": "p5" })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Past the TTL, the service hanging: answered from the cache, neither
    // an error nor marked stale (a request that waited for the service
    // would have timed out and served a stale-marked copy).
    services
        .product
        .control
        .set_fault(devstack_services::Fault::new("/products").hang());
    for replica in [&a, &b] {
        let answer = query(replica, None, PRODUCT, json!({ "id": "p5" })).await;
        assert_eq!(data(&answer), data(&fresh));
        assert!(answer["extensions"]["stale"].is_null(), "{answer:#}");
    }
    services.product.control.clear_faults();

    // Once the failed refresh's claim (a TTL, at least 1 s) has passed, both
    // replicas are due again; one of them refreshes.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let before = product_calls(&services);
    let (on_a, on_b) = tokio::join!(
        query(&a, None, PRODUCT, json!({ "id": "p5" })),
        query(&b, None, PRODUCT, json!({ "id": "p5" })),
    );
    assert_eq!(data(&on_a), data(&fresh));
    assert_eq!(data(&on_b), data(&fresh));
    let deadline = Instant::now() + Duration::from_secs(5);
    while product_calls(&services) == before {
        assert!(Instant::now() < deadline, "no background refresh");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        product_calls(&services),
        before + 1,
        "refreshed once for the fleet"
    );
    // Fresh again: no call.
    query(&a, None, PRODUCT, json!({ "id": "p5" })).await;
    query(&b, None, PRODUCT, json!({ "id": "p5" })).await;
    assert_eq!(product_calls(&services), before + 1);
}

/// Redis killed while clients keep asking: every request answers (no 5xx,
/// no errors), readiness never depends on Redis, and when Redis is back
/// the replicas share again.
#[tokio::test]
async fn redis_killed_in_the_middle_of_a_run_costs_no_request() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let services = Services::spawn_ephemeral().await.unwrap();
    let config = shared_config(&services, &redis);
    let (a, b) = (replica(&config).await, replica(&config).await);
    let token = bearer(&config, "u3");
    let run = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let clients: Vec<_> = [a.url.clone(), b.url.clone()]
        .into_iter()
        .map(|url| {
            let (run, token) = (run.clone(), token.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut answered = 0;
                let ids = ["p1", "p2", "p3", "p4"];
                while run.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = ids[answered % ids.len()];
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({ "query": PRODUCT, "variables": { "id": id } }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    let body: Value = response.json().await.unwrap();
                    assert!(body.get("errors").is_none(), "{body:#}");
                    assert_eq!(body["data"]["product"]["id"], id);
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Readiness is about the services the BFF calls, not about Redis.
    let readyz = a.url.replace("/graphql", "/readyz");
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 200);
    redis.resume().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.store(false, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        assert!(client.await.unwrap() > 0);
    }
}
