//! Two replicas of mobile-bff sharing one Redis (a real `redis-server` of
//! the test's own) and one devstack: persisted queries and rate limits are
//! shared; with Redis down every request still answers from local state;
//! without `BFF_REDIS_URL` each replica keeps its own, as before.

use std::time::{Duration, Instant};

use bff_server::Config;
use devstack_services::{Services, TokenKind};
use mobile_bff::persisted::sha256_hex;
use serde_json::{Value, json};
use testkit::redis::RedisServer;

use crate::helpers::{Server, client, data, error_codes, serve, test_config, token};

const QUERY: &str = "query ReplicaProducts { products(categoryId: \"home\") { page hasNextPage } }";

/// A replica: its own app (own caches, own local limiter) on its own port.
async fn replica(config: &Config) -> Server {
    serve(mobile_bff::app(config).unwrap()).await
}

fn shared_config(services: &Services, redis: Option<&RedisServer>) -> Config {
    let mut config = test_config(services);
    config.redis.url = redis.map(RedisServer::url);
    config.validate().unwrap();
    config
}

fn persisted(hash: &str, query: Option<&str>) -> Value {
    let mut body = json!({
        "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } }
    });
    if let Some(query) = query {
        body["query"] = json!(query);
    }
    body
}

async fn post(server: &Server, body: &Value, bearer: Option<&str>) -> (u16, Value) {
    let request = client()
        .post(format!("http://{}/graphql", server.addr))
        .json(body);
    let request = match bearer {
        Some(bearer) => request.bearer_auth(bearer),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_query_registered_on_one_replica_is_served_by_hash_on_another() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let services = Services::spawn_ephemeral().await.unwrap();
    let config = shared_config(&services, Some(&redis));
    let (a, b) = (replica(&config).await, replica(&config).await);
    let hash = sha256_hex(QUERY);

    let (_, registered) = post(&a, &persisted(&hash, Some(QUERY)), None).await;
    let expected = data(&registered).clone();
    let (status, served) = post(&b, &persisted(&hash, None), None).await;
    assert_eq!(status, 200);
    assert_eq!(data(&served), &expected, "replica B: {served:#}");

    // Without Redis, B's own store is all there is: today's behaviour.
    let alone = replica(&shared_config(&services, None)).await;
    let (_, unknown) = post(&alone, &persisted(&hash, None), None).await;
    assert_eq!(error_codes(&unknown), ["PERSISTED_QUERY_NOT_FOUND"]);

    // Redis down: answers from local state, quickly, never a 5xx.
    redis.kill();
    let c = replica(&config).await;
    let started = Instant::now();
    let (status, miss) = post(&c, &persisted(&hash, None), None).await;
    assert_eq!(status, 200);
    assert_eq!(error_codes(&miss), ["PERSISTED_QUERY_NOT_FOUND"]);
    let (status, own) = post(&a, &persisted(&hash, None), None).await;
    assert_eq!((status, data(&own)), (200, &expected));
    let (status, reregistered) = post(&c, &persisted(&hash, Some(QUERY)), None).await;
    assert_eq!((status, data(&reregistered)), (200, &expected));
    // Bounded by the Redis timeout (50 ms) and the cool-down, not a hang.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Redis back (empty, as after a crash): sharing resumes by itself once
    // the replicas' cool-down is over.
    redis.resume().await;
    let d = replica(&config).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        post(&c, &persisted(&hash, Some(QUERY)), None).await;
        let (_, body) = post(&d, &persisted(&hash, None), None).await;
        if body.get("data").is_some_and(|data| data == &expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sharing did not resume: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_burst_split_across_replicas_is_limited_as_one_bucket() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let services = Services::spawn_ephemeral().await.unwrap();
    let limited = |redis: Option<&RedisServer>| {
        let mut config = shared_config(&services, redis);
        // A burst of 4, then one a second: the burst is what counts.
        config.rate_limit.rps = 1;
        config.rate_limit.burst = 4;
        config
    };
    let query = json!({ "query": "{ __typename }" });
    let count_ok = |results: &[(u16, Value)]| results.iter().filter(|(s, _)| *s == 200).count();

    let config = limited(Some(&redis));
    let (a, b) = (replica(&config).await, replica(&config).await);
    let bearer = token(&config, "u1", TokenKind::User);
    let mut results = Vec::new();
    for round in 0..8 {
        let server = if round % 2 == 0 { &a } else { &b };
        results.push(post(server, &query, Some(&bearer)).await);
    }
    // 4, or 5 if a slow machine took over a second (one refill).
    assert!((4..=5).contains(&count_ok(&results)), "{results:?}");
    let (_, refused) = results.iter().find(|(status, _)| *status == 429).unwrap();
    assert_eq!(error_codes(refused), ["RATE_LIMITED"]);

    // Another user has a bucket of their own.
    let other = token(&config, "u2", TokenKind::User);
    assert_eq!(post(&a, &query, Some(&other)).await.0, 200);

    // Without Redis each replica has its own bucket: twice the burst passes.
    let config = limited(None);
    let (c, d) = (replica(&config).await, replica(&config).await);
    let mut results = Vec::new();
    for round in 0..10 {
        let server = if round % 2 == 0 { &c } else { &d };
        results.push(post(server, &query, Some(&bearer)).await);
    }
    assert!(count_ok(&results) >= 8, "{results:?}");

    // Redis down: each replica falls back to its own bucket; nothing fails.
    redis.kill();
    let config = limited(Some(&redis));
    let (e, f) = (replica(&config).await, replica(&config).await);
    let fresh = token(&config, "u3", TokenKind::User);
    let mut results = Vec::new();
    for round in 0..10 {
        let server = if round % 2 == 0 { &e } else { &f };
        results.push(post(server, &query, Some(&fresh)).await);
    }
    assert!(
        results.iter().all(|(s, _)| *s == 200 || *s == 429),
        "{results:?}"
    );
    assert!(count_ok(&results) >= 8, "{results:?}");
}
