//! Chaos soak: concurrent calls to every service while random latency,
//! errors and hangs come and go on all of them. Nothing panics, nothing
//! outlives its deadline, every call ends in a value or a service-failure
//! error, and the caches stay within their bounds.
//!
//! CI runs 2,000 calls; a longer run:
//! `CHAOS_CALLS=50000 cargo test -p downstream --test api chaos -- --nocapture`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use devstack_services::Fault;
use downstream::models::DeviceSettingsPatch;
use downstream::{BreakerConfig, Downstream, DownstreamError};
use rand::Rng;
use tokio::time::Instant;

use crate::{Harness, ctx};

const DEFAULT_CALLS: usize = 2_000;
const WORKERS: usize = 16;
const DEADLINE: Duration = Duration::from_millis(250);
/// The bound on how late an answer may come, past the deadline.
const SLACK: Duration = Duration::from_millis(100);

fn calls() -> usize {
    std::env::var("CHAOS_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CALLS)
}

/// A random fault on everything a service serves.
fn random_fault(rng: &mut impl Rng) -> Fault {
    let mut fault = Fault::new("/").latency(rng.random_range(0..30));
    match rng.random_range(0..10) {
        0..=2 => {} // latency only
        3 => fault = fault.hang().rate(rng.random_range(0.0..0.2)),
        4 => fault = fault.status(500).rate(rng.random_range(0.0..0.5)),
        5 => fault = fault.status(429).rate(rng.random_range(0.0..0.3)),
        _ => {
            let status = [502, 503, 504][rng.random_range(0..3)];
            fault = fault.status(status).rate(rng.random_range(0.0..1.0));
        }
    }
    fault
}

/// One random call; `Err` only for the errors a failing service may cause.
async fn random_call(downstream: &Downstream, rng_seed: u64) -> Result<(), String> {
    let ctx = ctx().with_timeout(DEADLINE);
    let pick = rng_seed % 9;
    let n = rng_seed / 9 % 12 + 1;
    let result = match pick {
        0 => downstream
            .products
            .get(&ctx, &format!("p{n}"))
            .await
            .map(drop),
        1 => downstream
            .products
            .lookup(&ctx, &[format!("p{n}"), format!("p{}", n % 12 + 1)])
            .await
            .map(drop),
        2 => downstream.users.lookup(&ctx, &["u1"]).await.map(drop),
        3 => downstream.users.cached_wishlist(&ctx, "u1").await.map(drop),
        4 => downstream.orders.for_user(&ctx, "u1", 3).await.map(drop),
        5 => downstream
            .recommendations
            .for_user(&ctx, "u1", 3)
            .await
            .map(drop),
        6 => downstream.devices.get(&ctx, "d1").await.map(drop),
        7 => downstream
            .devices
            .update_settings(
                &ctx,
                "d1",
                &DeviceSettingsPatch {
                    target_temperature: Some(21.0),
                    ..DeviceSettingsPatch::default()
                },
            )
            .await
            .map(drop),
        _ => downstream
            .products
            .reviews(&ctx, &format!("p{n}"), 5)
            .await
            .map(drop),
    };
    match result {
        Ok(())
        | Err(
            DownstreamError::Unavailable { .. }
            | DownstreamError::Timeout { .. }
            | DownstreamError::CircuitOpen { .. },
        ) => Ok(()),
        // Injected 429s.
        Err(DownstreamError::Rejected { status: 429, .. }) => Ok(()),
        Err(other) => Err(format!("call {pick}: unexpected {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_ends_every_call_in_time_with_a_value_or_a_service_error() {
    let h = Harness::with_config(|config| {
        config.timeout_ms = 150;
        config.cache.ttl_ms = 20;
        config.cache.stale_ms = 200;
        config.cache.max_entries = 8;
        config.breaker = BreakerConfig {
            open_ms: 50,
            ..BreakerConfig::default()
        };
    })
    .await;
    let h = Arc::new(h);

    // The chaos: every 25 ms a new random fault on every service.
    let done = Arc::new(AtomicBool::new(false));
    let chaos = tokio::spawn({
        let (h, done) = (Arc::clone(&h), Arc::clone(&done));
        async move {
            while !done.load(Ordering::Relaxed) {
                {
                    let mut rng = rand::rng();
                    for service in h.services.all() {
                        service.control.set_fault(random_fault(&mut rng));
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    });

    let total = calls();
    let workers = (0..WORKERS).map(|_| {
        let h = Arc::clone(&h);
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..total / WORKERS {
                let seed = rand::rng().random::<u64>();
                let started = Instant::now();
                let outcome =
                    tokio::time::timeout(DEADLINE + SLACK, random_call(&h.downstream, seed)).await;
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(unexpected)) => failures.push(unexpected),
                    Err(_) => failures.push(format!(
                        "call {} hung past its deadline ({:?})",
                        seed % 9,
                        started.elapsed()
                    )),
                }
            }
            failures
        })
    });
    let mut failures = Vec::new();
    for worker in futures::future::join_all(workers).await {
        failures.extend(worker.expect("no worker panics"));
    }
    done.store(true, Ordering::Relaxed);
    chaos.await.unwrap();

    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    // The services were really exercised, faults and all.
    let reached: u64 = h.services.all().iter().map(|s| s.control.total()).sum();
    assert!(reached > 0);
}
