//! Load harness for the web BFF against devstack.
//!
//! ```sh
//! cargo build --profile dist -p devstack -p web-bff -p bench && target/dist/bench
//! ```
//!
//! Starts `devstack --services-only` and `web-bff` as their own processes
//! (binaries next to this one), injects downstream latency through devstack's
//! control routes, drives each scenario with a fixed number of concurrent
//! clients for a fixed time, and prints throughput, latency percentiles, the
//! BFF's CPU time per request (from /proc) and its peak RSS as a Markdown
//! table. Stop any running devstack first: it uses ports 7101–7105.
//!
//! `--callgrind` runs web-bff under `valgrind --tool=callgrind` instead and
//! reports user-space instructions per request, counted only while each
//! scenario runs (16 clients). CPU seconds on a shared 2-core VM vary by
//! ±20% from run to run; instruction counts repeat, which is what telling a
//! small optimisation from noise needs. Kernel time is not counted.
//!
//! `--bff-threads N` sets the BFF's tokio worker threads (default: one per
//! core); `--scenario NAME` and `--latency MS` run a subset.
//!
//! Shared state: `--redis` starts a Redis (Debian's `redis-server`, port
//! 6399) the BFF uses (`BFF_REDIS_URL`) and adds a column of Redis round
//! trips per request; `--replicas N` runs N replicas behind the load
//! generator (clients spread evenly; CPU is their sum); `--no-first-level`
//! keeps nothing in the replicas' own memory, so entities come from Redis
//! (or the services).
//!
//! `--subscribers N [--events E]`: instead of the scenarios, N idle SSE
//! subscriptions on one replica, their memory, the time E events (default
//! 100) take to reach all of them, and the dashboard's p99 with and without
//! them (see `subscribers.rs`). Raises this process's open-files limit,
//! which the children inherit.

mod subscribers;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use devstack_services::TokenKind;
use serde_json::json;

const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret";
/// Replica `i` of the BFF listens on `BFF_PORT + i`, its admin listener on
/// `ADMIN_PORT + i`.
const BFF_PORT: u16 = 4100;
const ADMIN_PORT: u16 = 9500;
/// `--redis`: the Redis the replicas share (Debian's redis-server).
const REDIS_PORT: u16 = 6399;
const SERVICE_PORTS: [u16; 5] = [7101, 7102, 7103, 7104, 7105];
/// Linux reports process CPU time in clock ticks of 1/100 s.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

const DASHBOARD: &str = "{ dashboard { user { name avatarUrl membershipLevel loyaltyPoints } \
    orders(first: 10) { id status date total { formatted } itemsCount trackingNumber items { quantity product { id name thumbnailUrl } } } \
    recommendations(first: 10) { score reason product { id name price { formatted } } } \
    analytics { totalSpent { formatted } ordersThisMonth favoriteCategories } } }";
const PRODUCT: &str = "{ product(id: \"p1\") { id name description price { formatted } originalPrice { formatted } \
    images specifications { name value } availability shippingOptions { label price { formatted } } \
    reviews(first: 5) { rating title } relatedProducts(first: 4) { id name } inWishlist } }";
/// Cached entities only (one product batch): what a shared second level
/// can answer without any service.
const PRODUCTS: &str = "{ a: product(id: \"p1\") { id name price { formatted } } \
    b: product(id: \"p2\") { id name price { formatted } } c: product(id: \"p3\") { id name price { formatted } } }";

struct Scenario {
    name: &'static str,
    query: &'static str,
    latency_ms: u64,
    concurrency: usize,
}

struct Outcome {
    requests: usize,
    failures: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    bff_cpu_secs: f64,
}

/// Kills the child processes however the harness ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = arg_value("--seconds").unwrap_or(10);
    // Optional filters, e.g. `--scenario dashboard --latency 0` while profiling.
    let only_scenario: Option<String> = arg_value("--scenario");
    let only_latency: Option<u64> = arg_value("--latency");
    let subscribers: Option<usize> = arg_value("--subscribers");
    if let Some(subscribers) = subscribers {
        // Each subscription is a socket in this process and in the BFF.
        let wanted = (subscribers as u64 + 1024) * 2;
        let got = rlimit::increase_nofile_limit(wanted)?;
        if got < subscribers as u64 + 1024 {
            return Err(
                format!("open-files limit {got}: too low for {subscribers} subscribers").into(),
            );
        }
    }
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .ok_or("cannot locate the binaries")?;
    let mut processes = Processes(Vec::new());
    processes.0.push(
        Command::new(bin_dir.join("devstack"))
            .arg("--services-only")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    for port in SERVICE_PORTS {
        wait_until_up(
            &client,
            &format!("http://127.0.0.1:{port}/__control/counters"),
        )
        .await?;
    }
    // `--no-coalescing`: every client asks for the same user's dashboard, so
    // identical in-flight GETs would share calls far more than real traffic.
    // `--no-first-level`: each replica keeps nothing in memory, so entities
    // come from the shared second level (with `--redis`) or the services.
    let config_file = std::env::temp_dir().join("bench-web-bff.toml");
    let coalesce = !flag("--no-coalescing");
    let first_level = !flag("--no-first-level");
    let mut config = format!(
        "[downstream]\ncoalesce_gets = {coalesce}\n[downstream.cache]\nfirst_level = {first_level}\n"
    );
    if let Some(subscribers) = subscribers {
        // What an operator expecting that many subscribers would configure.
        config += &format!(
            "[connections]\nmax_open = {}\n[live]\nmax_per_process = {subscribers}\n",
            subscribers + 1024
        );
    }
    std::fs::write(&config_file, config)?;
    let redis = flag("--redis");
    if redis {
        processes.0.push(
            Command::new("redis-server")
                .args(["--port", &REDIS_PORT.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()?,
        );
        wait_for_port(REDIS_PORT).await?;
    }
    let replicas: u16 = arg_value("--replicas").unwrap_or(1);
    let callgrind = flag("--callgrind");
    if callgrind && replicas != 1 {
        return Err("--callgrind measures one replica".into());
    }
    let callgrind_out = std::env::temp_dir().join("bench-web-bff.callgrind");
    if callgrind {
        // Dumps of an earlier run would pass for this run's.
        for entry in std::fs::read_dir(std::env::temp_dir())?.flatten() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with("bench-web-bff.callgrind"))
            {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    let mut bffs = Vec::new();
    for replica in 0..replicas {
        let mut bff = if callgrind {
            let mut valgrind = Command::new("valgrind");
            valgrind.args([
                "--tool=callgrind",
                "--instr-atstart=no",
                &format!("--callgrind-out-file={}", callgrind_out.display()),
            ]);
            valgrind.arg(bin_dir.join("web-bff")).stderr(Stdio::null());
            valgrind
        } else {
            Command::new(bin_dir.join("web-bff"))
        };
        if let Some(threads) = arg_value::<usize>("--bff-threads") {
            bff.env("TOKIO_WORKER_THREADS", threads.to_string());
        }
        // The prod profile, pointed at the services started above.
        for service in downstream::Service::ALL {
            bff.env(
                service.url_env_var(),
                format!("http://127.0.0.1:{}", service.default_port()),
            );
        }
        if redis {
            bff.env("BFF_REDIS_URL", format!("redis://127.0.0.1:{REDIS_PORT}/"));
        }
        let bff = bff
            .env("BFF_CONFIG_FILE", &config_file)
            .env("BFF_LISTEN", format!("127.0.0.1:{}", BFF_PORT + replica))
            .env(
                "BFF_ADMIN_LISTEN",
                format!("127.0.0.1:{}", ADMIN_PORT + replica),
            )
            .env("BFF_JWT_SECRET", JWT_SECRET)
            .env("BFF_JWT_ISSUER", bff_server::config::DEV_JWT_ISSUER)
            .env("BFF_JWT_AUDIENCE", bff_server::config::DEV_JWT_AUDIENCE)
            // Per-request info logs would dominate the measurement.
            .env("RUST_LOG", "warn")
            .spawn()?;
        bffs.push(Bff {
            pid: bff.id(),
            url: format!("http://127.0.0.1:{}/graphql", BFF_PORT + replica),
            admin: format!("http://127.0.0.1:{}", ADMIN_PORT + replica),
        });
        processes.0.push(bff);
    }
    for bff in &bffs {
        wait_until_up(&client, &format!("{}/healthz", bff.admin)).await?;
    }

    let token = devstack_services::issue_dev_token(
        JWT_SECRET,
        bff_server::config::DEV_JWT_ISSUER,
        bff_server::config::DEV_JWT_AUDIENCE,
        "u1",
        Duration::from_secs(3600),
        TokenKind::User,
    );
    if let Some(subscribers) = subscribers {
        let events = arg_value("--events").unwrap_or(100);
        return subscribers::bench(&client, &token, &bffs[0], subscribers, events, seconds).await;
    }
    let scenarios = [
        Scenario {
            name: "dashboard",
            query: DASHBOARD,
            latency_ms: 20,
            concurrency: 64,
        },
        Scenario {
            name: "dashboard",
            query: DASHBOARD,
            latency_ms: 0,
            concurrency: 64,
        },
        Scenario {
            name: "product",
            query: PRODUCT,
            latency_ms: 20,
            concurrency: 64,
        },
        Scenario {
            name: "product",
            query: PRODUCT,
            latency_ms: 0,
            concurrency: 64,
        },
        Scenario {
            name: "products",
            query: PRODUCTS,
            latency_ms: 20,
            concurrency: 64,
        },
    ];

    // With Redis, a last column: Redis round trips per request (all
    // replicas' `bff_redis_calls_total`, skipped calls left out).
    let redis_column = if redis { " Redis calls/req |" } else { "" };
    let redis_rule = if redis { "---|" } else { "" };
    if callgrind {
        println!(
            "| scenario | downstream latency | clients | requests | failed | instructions/request |{redis_column}"
        );
        println!("|---|---|---|---|---|---|{redis_rule}");
    } else {
        println!(
            "| scenario | downstream latency | clients | requests | failed | req/s | p50 ms | p99 ms | max ms | BFF CPU ms/req |{redis_column}"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|{redis_rule}");
    }
    let selected = scenarios.iter().filter(|s| {
        only_scenario.as_deref().is_none_or(|name| name == s.name)
            && only_latency.is_none_or(|ms| ms == s.latency_ms)
    });
    for scenario in selected {
        set_latency(&client, scenario.latency_ms).await?;
        let redis_cell = |before: f64, after: f64, requests: usize| {
            if redis {
                format!(" {:.2} |", (after - before) / requests.max(1) as f64)
            } else {
                String::new()
            }
        };
        if callgrind {
            let scenario = Scenario {
                concurrency: 16,
                ..*scenario
            };
            let pid = bffs[0].pid;
            run(&client, &token, &scenario, Duration::from_secs(3), &bffs).await?;
            callgrind_control(pid, &["-z"])?;
            callgrind_control(pid, &["-i", "on"])?;
            let redis_before = redis_calls(&client, &bffs).await?;
            let duration = Duration::from_secs(seconds);
            let outcome = run(&client, &token, &scenario, duration, &bffs).await?;
            let redis_after = redis_calls(&client, &bffs).await?;
            callgrind_control(pid, &["-i", "off"])?;
            callgrind_control(pid, &["-d"])?;
            let instructions = newest_callgrind_total(&callgrind_out)?;
            println!(
                "| {} | {} ms | {} | {} | {} | {} |{}",
                scenario.name,
                scenario.latency_ms,
                scenario.concurrency,
                outcome.requests,
                outcome.failures,
                instructions / outcome.requests.max(1) as u64,
                redis_cell(redis_before, redis_after, outcome.requests),
            );
            continue;
        }
        // Warm the pools and caches, then measure.
        run(&client, &token, scenario, Duration::from_secs(1), &bffs).await?;
        let redis_before = redis_calls(&client, &bffs).await?;
        let outcome = run(
            &client,
            &token,
            scenario,
            Duration::from_secs(seconds),
            &bffs,
        )
        .await?;
        let redis_after = redis_calls(&client, &bffs).await?;
        print_row(
            scenario,
            &outcome,
            &redis_cell(redis_before, redis_after, outcome.requests),
        );
    }
    if !callgrind {
        println!();
        for bff in &bffs {
            println!(
                "BFF peak RSS: {:.1} MB",
                proc_status_kb(bff.pid, "VmHWM:")? as f64 / 1024.0
            );
        }
    }
    Ok(())
}

fn callgrind_control(pid: u32, args: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let status = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("callgrind_control {args:?} failed").into())
    }
}

/// The `totals:` of the newest dump next to `base` (`base`, `base.1`, ...).
fn newest_callgrind_total(base: &std::path::Path) -> Result<u64, Box<dyn std::error::Error>> {
    let dir = base.parent().ok_or("no directory")?;
    let prefix = base
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or("bad name")?;
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|name| name.starts_with(prefix)) {
            let modified = entry.metadata()?.modified()?;
            if newest.as_ref().is_none_or(|(time, _)| modified >= *time) {
                newest = Some((modified, entry.path()));
            }
        }
    }
    let (_, path) = newest.ok_or("no callgrind dump")?;
    let dump = std::fs::read_to_string(path)?;
    let totals = dump
        .lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .ok_or("no totals in the dump")?;
    Ok(totals.trim().parse()?)
}

fn arg_value<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let index = args.iter().position(|arg| arg == name)?;
    args.get(index + 1)?.parse().ok()
}

async fn wait_until_up(client: &reqwest::Client, url: &str) -> Result<(), String> {
    for _ in 0..100 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{url} did not come up"))
}

async fn set_latency(client: &reqwest::Client, latency_ms: u64) -> Result<(), reqwest::Error> {
    for port in SERVICE_PORTS {
        let faults = format!("http://127.0.0.1:{port}/__control/faults");
        client.delete(&faults).send().await?.error_for_status()?;
        if latency_ms > 0 {
            client
                .put(&faults)
                .json(&json!({ "prefix": "/", "latency_ms": latency_ms }))
                .send()
                .await?
                .error_for_status()?;
        }
    }
    Ok(())
}

async fn run(
    client: &reqwest::Client,
    token: &str,
    scenario: &Scenario,
    duration: Duration,
    bffs: &[Bff],
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let body = Arc::new(serde_json::to_vec(&json!({ "query": scenario.query }))?);
    let authorization = Arc::new(format!("Bearer {token}"));
    let cpu_before = total_cpu_secs(bffs)?;
    let started = Instant::now();
    let deadline = started + duration;
    // Clients spread evenly over the replicas, as a load balancer would.
    let workers = (0..scenario.concurrency).map(|worker| {
        let url = Arc::new(bffs[worker % bffs.len()].url.clone());
        let (client, body, authorization) = (client.clone(), body.clone(), authorization.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client
                    .post(url.as_str())
                    .header("authorization", authorization.as_str())
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await;
                // A substring check keeps the load generator's own CPU low;
                // a data-only response never contains this key.
                let ok = match response {
                    Ok(response) if response.status().is_success() => response
                        .bytes()
                        .await
                        .is_ok_and(|body| !body.windows(9).any(|w| w == b"\"errors\":")),
                    _ => false,
                };
                latencies.push(sent.elapsed().as_micros() as u64);
                if !ok {
                    failures += 1;
                }
            }
            (latencies, failures)
        })
    });
    let mut latencies_us = Vec::new();
    let mut failures = 0;
    for worker in futures::future::join_all(workers).await {
        let (latencies, failed) = worker?;
        latencies_us.extend(latencies);
        failures += failed;
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Ok(Outcome {
        requests: latencies_us.len(),
        failures,
        elapsed,
        latencies_us,
        bff_cpu_secs: total_cpu_secs(bffs)? - cpu_before,
    })
}

fn print_row(scenario: &Scenario, outcome: &Outcome, extra: &str) {
    let percentile = |p: f64| percentile_ms(&outcome.latencies_us, p);
    let max = outcome.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0;
    println!(
        "| {} | {} ms | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.3} |{extra}",
        scenario.name,
        scenario.latency_ms,
        scenario.concurrency,
        outcome.requests,
        outcome.failures,
        outcome.requests as f64 / outcome.elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        max,
        outcome.bff_cpu_secs * 1000.0 / outcome.requests.max(1) as f64,
    );
}

/// One replica of the BFF under test.
struct Bff {
    pid: u32,
    /// Its `/graphql`.
    url: String,
    /// Its admin listener (`/healthz`, `/metrics`).
    admin: String,
}

/// The CPU seconds of all replicas together.
fn total_cpu_secs(bffs: &[Bff]) -> Result<f64, Box<dyn std::error::Error>> {
    bffs.iter().map(|bff| cpu_secs(bff.pid)).sum()
}

/// Redis calls the replicas made so far (every `bff_redis_calls_total`
/// series but the skipped ones).
async fn redis_calls(
    client: &reqwest::Client,
    bffs: &[Bff],
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut total = 0.0;
    for bff in bffs {
        let text = client
            .get(format!("{}/metrics", bff.admin))
            .send()
            .await?
            .text()
            .await?;
        total += text
            .lines()
            .filter(|line| line.starts_with("bff_redis_calls_total{"))
            .filter(|line| !line.contains("result=\"skipped\""))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    Ok(total)
}

fn flag(name: &str) -> bool {
    std::env::args().any(|arg| arg == name)
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
async fn wait_for_port(port: u16) -> Result<(), String> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("nothing listens on port {port}"))
}

/// utime + stime of a process, in seconds (fields 14 and 15 of /proc/PID/stat).
fn cpu_secs(pid: u32) -> Result<f64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; count from after it.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("bad stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / CLOCK_TICKS_PER_SEC)
}

/// The index of the `p` percentile (nearest rank) among `n` sorted values.
fn percentile_index(n: usize, p: f64) -> usize {
    ((n as f64 * p).ceil() as usize).clamp(1, n) - 1
}

/// The `p` percentile of sorted latencies in µs, in ms.
fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    match sorted_us.len() {
        0 => 0.0,
        n => sorted_us[percentile_index(n, p)] as f64 / 1000.0,
    }
}

/// A size field of /proc/PID/status in KB, e.g. `VmHWM:` (peak resident
/// memory) or `VmRSS:` (resident now).
fn proc_status_kb(pid: u32, field: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .ok_or_else(|| format!("no {field}"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("bad {field}"))?
        .parse()?)
}
