//! `--subscribers N`: many idle SSE subscriptions on one web-bff process.
//!
//! N clients subscribe to `orderUpdates` over GraphQL over SSE (distinct
//! connections, one TCP connection each) as the same viewer, so every event
//! goes to all of them. Measured:
//! - resident memory per idle subscriber: the BFF's RSS with the N
//!   subscriptions open minus its RSS before, over N;
//! - fan-out time: from just before the control request that makes devstack
//!   publish an event to the moment the last of the N subscribers has read
//!   it (client-side parsing included), over `--events` events sent one
//!   after another;
//! - the dashboard's p99 (64 clients, 20 ms downstream latency) before the
//!   subscribers connect, while they are connected, and while an event goes
//!   to all of them every 250 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Bff, DASHBOARD, Outcome, Scenario, print_row, run, set_latency};

/// The subscription every client holds: the update's own fields, no `order`
/// (that would be one order-service call per subscriber per event).
const UPDATES: &str = "subscription { orderUpdates { eventId orderId status trackingNumber at } }";
/// The viewer's order the events are about (devstack's seed: u1 owns o14).
const ORDER: &str = "o14";
/// Subscriptions being opened at once.
const OPENING: usize = 200;
/// The pace of events while the dashboard runs beside them.
const EVENT_EVERY: Duration = Duration::from_millis(250);
/// How long one event may take to reach everyone before the run gives up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the subscribers saw of the `events` events, indexed by the order
/// in which they arrived (each subscriber sees them in the order sent).
struct Deliveries {
    started: Instant,
    received: Vec<AtomicUsize>,
    /// Nanoseconds since `started` at which the last subscriber read it.
    last_read_ns: Vec<AtomicU64>,
    /// Subscriptions whose response head came back 200.
    open: AtomicUsize,
    /// Subscriptions that failed or ended.
    failed: AtomicUsize,
}

pub(crate) async fn bench(
    client: &reqwest::Client,
    token: &str,
    bff: &Bff,
    subscribers: usize,
    events: usize,
    seconds: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let bffs = std::slice::from_ref(bff);
    let dashboard = Scenario {
        name: "dashboard",
        query: DASHBOARD,
        latency_ms: 20,
        concurrency: 64,
    };
    set_latency(client, dashboard.latency_ms).await?;
    run(client, token, &dashboard, Duration::from_secs(1), bffs).await?;
    // The measured dashboard load, the same at each step.
    let dashboards = || {
        run(
            client,
            token,
            &dashboard,
            Duration::from_secs(seconds),
            bffs,
        )
    };
    let queries_before = dashboards().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kb = crate::proc_status_kb(bff.pid, "VmRSS:")?;

    let deliveries = Arc::new(Deliveries {
        started: Instant::now(),
        received: (0..events).map(|_| AtomicUsize::new(0)).collect(),
        last_read_ns: (0..events).map(|_| AtomicU64::new(0)).collect(),
        open: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    });
    // Their own client: the load generator's pool stays as it was.
    let subscriber_client = reqwest::Client::builder().build()?;
    let opening = Arc::new(tokio::sync::Semaphore::new(OPENING));
    let body = Arc::new(serde_json::to_vec(&json!({ "query": UPDATES }))?);
    let authorization = Arc::new(format!("Bearer {token}"));
    let opened_at = Instant::now();
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let (client, url) = (subscriber_client.clone(), bff.url.clone());
            let (body, authorization) = (body.clone(), authorization.clone());
            let (opening, deliveries) = (opening.clone(), deliveries.clone());
            tokio::spawn(async move {
                let permit = opening.acquire_owned().await;
                let response = client
                    .post(url)
                    .header("authorization", authorization.as_str())
                    .header("content-type", "application/json")
                    .header("accept", "text/event-stream")
                    .body(body.as_ref().clone())
                    .send()
                    .await;
                drop(permit);
                match response {
                    Ok(response) if response.status().is_success() => {
                        deliveries.open.fetch_add(1, Ordering::Relaxed);
                        read_events(response, &deliveries).await;
                    }
                    _ => {}
                }
                deliveries.failed.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    while deliveries.open.load(Ordering::Relaxed) + deliveries.failed.load(Ordering::Relaxed)
        < subscribers
    {
        if opened_at.elapsed() > Duration::from_secs(120) {
            return Err("the subscriptions did not open within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_secs = opened_at.elapsed().as_secs_f64();
    let failed = deliveries.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!("{failed} of {subscribers} subscriptions failed").into());
    }
    // Let the BFF finish registering them with its hub and settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle_kb = crate::proc_status_kb(bff.pid, "VmRSS:")?;

    let queries_during = dashboards().await?;

    let cpu_before = crate::cpu_secs(bff.pid)?;
    let control = format!(
        "http://127.0.0.1:{}/__control/orders/{ORDER}/status",
        downstream::Service::Order.default_port()
    );
    let mut fan_out_ms = Vec::with_capacity(events);
    for event in 0..events {
        let sent_ns = deliveries.started.elapsed().as_nanos() as u64;
        client
            .post(&control)
            .json(&json!({ "status": "shipped", "tracking_number": format!("BENCH-{event}") }))
            .send()
            .await?
            .error_for_status()?;
        let waiting = Instant::now();
        while deliveries.received[event].load(Ordering::Acquire) < subscribers {
            if waiting.elapsed() > EVENT_TIMEOUT {
                return Err(format!(
                    "event {event} reached {} of {subscribers} subscribers in {EVENT_TIMEOUT:?}",
                    deliveries.received[event].load(Ordering::Acquire)
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let last_ns = deliveries.last_read_ns[event].load(Ordering::Acquire);
        fan_out_ms.push(last_ns.saturating_sub(sent_ns) as f64 / 1e6);
    }
    let fan_out_cpu = crate::cpu_secs(bff.pid)? - cpu_before;
    let rss_after_events_kb = crate::proc_status_kb(bff.pid, "VmRSS:")?;

    // The dashboard again while an event goes to all of them every
    // `EVENT_EVERY` (the busiest the subscribers make the process).
    let publisher = {
        let (client, control) = (client.clone(), control.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVENT_EVERY);
            for event in 0.. {
                ticks.tick().await;
                let change =
                    json!({ "status": "shipped", "tracking_number": format!("FLOW-{event}") });
                if client.post(&control).json(&change).send().await.is_err() {
                    return;
                }
            }
        })
    };
    let queries_with_events = dashboards().await?;
    publisher.abort();
    fan_out_ms.sort_by(f64::total_cmp);
    let failed = deliveries.failed.load(Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }

    let per_subscriber =
        |after_kb: u64| after_kb.saturating_sub(rss_before_kb) as f64 / subscribers as f64;
    println!("| | |\n|---|---|");
    println!("| subscribers | {subscribers} (opened in {open_secs:.1} s) |");
    println!(
        "| BFF RSS before / idle subscribers / after {events} events | {:.1} / {:.1} / {:.1} MB |",
        rss_before_kb as f64 / 1024.0,
        rss_idle_kb as f64 / 1024.0,
        rss_after_events_kb as f64 / 1024.0,
    );
    println!(
        "| RSS per idle subscriber / after the events | {:.1} / {:.1} KB |",
        per_subscriber(rss_idle_kb),
        per_subscriber(rss_after_events_kb),
    );
    println!(
        "| fan-out to all (event sent → last subscriber read it), {events} events | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        percentile(&fan_out_ms, 0.50),
        percentile(&fan_out_ms, 0.99),
        fan_out_ms.last().copied().unwrap_or(0.0),
    );
    println!(
        "| BFF CPU per event (all subscribers) | {:.1} ms |",
        fan_out_cpu * 1000.0 / events.max(1) as f64
    );
    println!("| subscriptions that ended early | {failed} |");
    println!();
    print_header();
    print_row(&dashboard, &queries_before, " before |");
    print_row(&dashboard, &queries_during, " subscribers connected |");
    print_row(
        &dashboard,
        &queries_with_events,
        &format!(" subscribers connected, an event to all every {EVENT_EVERY:?} |"),
    );
    let p99 = |outcome: &Outcome| crate::percentile_ms(&outcome.latencies_us, 0.99);
    let ratio = p99(&queries_during) / p99(&queries_before).max(f64::EPSILON);
    let with_events = p99(&queries_with_events) / p99(&queries_before).max(f64::EPSILON);
    println!(
        "\ndashboard p99 with the subscribers connected: {ratio:.2}× the p99 without; with events flowing to them: {with_events:.2}×"
    );
    Ok(())
}

fn print_header() {
    println!(
        "| scenario | downstream latency | clients | requests | failed | req/s | p50 ms | p99 ms | max ms | BFF CPU ms/req | when |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
}

/// Reads one subscription's SSE stream, counting each `next` event as it
/// completes, until the stream ends.
async fn read_events(mut response: reqwest::Response, deliveries: &Deliveries) {
    let mut pending: Vec<u8> = Vec::new();
    let mut seen = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let is_next = pending[..end].starts_with(b"event: next");
            pending.drain(..end + 2);
            if !is_next {
                continue;
            }
            if let (Some(received), Some(last)) = (
                deliveries.received.get(seen),
                deliveries.last_read_ns.get(seen),
            ) {
                last.fetch_max(
                    deliveries.started.elapsed().as_nanos() as u64,
                    Ordering::AcqRel,
                );
                received.fetch_add(1, Ordering::AcqRel);
            }
            seen += 1;
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => sorted[crate::percentile_index(n, p)],
    }
}
