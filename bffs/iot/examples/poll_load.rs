//! Bytes and polling speed of the IoT BFF, for BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release -p iot-bff --example poll_load -- --seconds 5 --clients 32
//! ```
//!
//! Starts devstack's services and the IoT BFF in this process, each on its
//! own tokio runtime (as if separate processes; loopback, ephemeral ports, so
//! it never collides with a running devstack), then:
//!
//! 1. prints the bytes of the status of each seed device: the device
//!    service's own JSON, the BFF's JSON and CBOR;
//! 2. drives `GET /v1/devices/d1` with `--clients` concurrent clients for
//!    `--seconds` per scenario (after a 1 s warm-up): a plain JSON poll, a
//!    poll with the current `If-None-Match` (304), and a CBOR poll. Prints
//!    throughput, latency percentiles and the BFF runtime's CPU time per
//!    request (from /proc, its threads only).
//!
//! Bounded: at most 5 s per scenario (18 s in all with warm-ups) and at most
//! `MAX_REQUESTS` requests per scenario; loopback only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bff_server::config::loopback;
use bff_server::{Config, Defaults};
use devstack_services::Services;
use devstack_services::{TokenKind, issue_dev_token};
use downstream::DownstreamConfig;

#[global_allocator]
static ALLOCATOR: bff_server::Allocator = bff_server::Allocator;

const SECRET: &str = "iot-bff-poll-load-secret-0123456789-abcdef";
const MAX_SECONDS: u64 = 5;
const MAX_REQUESTS: u64 = 2_000_000;
const BFF_THREAD: &str = "iot-bff";
/// Linux reports thread CPU time in clock ticks of 1/100 s.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

#[derive(Clone, Copy)]
enum Poll {
    Json,
    NotModified,
    Cbor,
}

impl Poll {
    fn name(self) -> &'static str {
        match self {
            Poll::Json => "GET status, JSON (200)",
            Poll::NotModified => "GET status, If-None-Match (304)",
            Poll::Cbor => "GET status, CBOR (200)",
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds = arg_value("--seconds")
        .unwrap_or(MAX_SECONDS)
        .clamp(1, MAX_SECONDS);
    let clients: usize = arg_value("--clients").unwrap_or(32).clamp(1, 256);

    // devstack and the BFF, each on its own two-thread runtime.
    let services_runtime = runtime("devstack")?;
    let services = services_runtime.block_on(Services::spawn_ephemeral())?;
    let mut config = Config::new(Defaults {
        listen: loopback(0),
        ..iot_bff::DEFAULTS
    });
    config.downstream = DownstreamConfig::with_urls(services.urls());
    config.jwt.secret = Some(SECRET.to_owned());
    config.validate()?;
    let bff_runtime = runtime(BFF_THREAD)?;
    let router = iot_bff::app(&config)?;
    let listener = bff_runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let bff = format!("http://{}", listener.local_addr()?);
    bff_runtime.spawn(async move {
        if let Err(error) =
            bff_server::serve_with_shutdown(listener, router, std::future::pending()).await
        {
            eprintln!("iot-bff stopped: {error}");
        }
    });

    let load = runtime("load")?;
    load.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(clients)
            .build()?;
        bytes_table(&client, &bff, &services.device.url()).await?;
        load_table(&client, &bff, seconds, clients).await
    })
}

fn runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
}

fn arg_value<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let index = args.iter().position(|arg| arg == name)?;
    args.get(index + 1)?.parse().ok()
}

fn token(subject: &str) -> String {
    issue_dev_token(
        SECRET,
        bff_server::config::DEV_JWT_ISSUER,
        bff_server::config::DEV_JWT_AUDIENCE,
        subject,
        Duration::from_secs(600),
        TokenKind::User,
    )
}

async fn bytes_table(
    client: &reqwest::Client,
    bff: &str,
    device_service: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    println!("| device | device service JSON | iot JSON | iot CBOR | iot JSON body |");
    println!("|---|---|---|---|---|");
    for device in devstack_services::seed::Seed::new().devices {
        let service = client
            .get(format!("{device_service}/devices/{}", device.id))
            .send()
            .await?
            .bytes()
            .await?;
        let status = |accept: &'static str| {
            client
                .get(format!("{bff}/v1/devices/{}", device.id))
                .bearer_auth(token(&device.owner_id))
                .header("accept", accept)
                .send()
        };
        let json = status("application/json").await?.bytes().await?;
        let cbor = status("application/cbor").await?.bytes().await?;
        println!(
            "| {} | {} B | {} B ({:.0}%) | {} B ({:.0}%) | `{}` |",
            device.id,
            service.len(),
            json.len(),
            100.0 * json.len() as f64 / service.len() as f64,
            cbor.len(),
            100.0 * cbor.len() as f64 / service.len() as f64,
            String::from_utf8_lossy(&json),
        );
    }
    println!();

    // On the wire (HTTP/1.1, as the BFF sends it), headers included: for a
    // body this small the headers are most of the bytes.
    println!("| d1 response | status line + headers | body | total |");
    println!("|---|---|---|---|");
    let mut tag = String::new();
    for (name, accept, if_none_match) in [
        ("200 JSON", "application/json", false),
        ("200 CBOR", "application/cbor", false),
        ("304 (If-None-Match)", "application/json", true),
    ] {
        let mut request = client
            .get(format!("{bff}/v1/devices/d1"))
            .bearer_auth(token("u1"))
            .header("accept", accept);
        if if_none_match {
            request = request.header("if-none-match", &tag);
        }
        let response = request.send().await?;
        let status = response.status();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        )
        .len();
        for (name, value) in response.headers() {
            head += name.as_str().len() + 2 + value.len() + 2;
        }
        head += 2;
        if accept == "application/json" && !if_none_match {
            tag = response
                .headers()
                .get("etag")
                .and_then(|tag| tag.to_str().ok())
                .unwrap_or_default()
                .to_owned();
        }
        let body = response.bytes().await?.len();
        println!("| {name} | {head} B | {body} B | {} B |", head + body);
    }
    println!();
    Ok(())
}

async fn load_table(
    client: &reqwest::Client,
    bff: &str,
    seconds: u64,
    clients: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let url = format!("{bff}/v1/devices/d1");
    let authorization = format!("Bearer {}", token("u1"));
    let etag = |accept: &'static str| {
        let request = client
            .get(&url)
            .header("authorization", &authorization)
            .header("accept", accept);
        async move {
            let response = request.send().await?;
            Ok::<_, reqwest::Error>(
                response
                    .headers()
                    .get("etag")
                    .and_then(|tag| tag.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    let json_tag = etag("application/json").await?;

    println!(
        "| scenario | clients | requests | failed | req/s | p50 ms | p99 ms | max ms | BFF CPU ms/req |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for poll in [Poll::Json, Poll::NotModified, Poll::Cbor] {
        let run = |duration| Run {
            client: client.clone(),
            url: url.clone(),
            authorization: authorization.clone(),
            if_none_match: matches!(poll, Poll::NotModified).then(|| json_tag.clone()),
            accept: if matches!(poll, Poll::Cbor) {
                "application/cbor"
            } else {
                "application/json"
            },
            expected: if matches!(poll, Poll::NotModified) {
                304
            } else {
                200
            },
            clients,
            duration,
        };
        run(Duration::from_secs(1)).go().await?;
        let cpu_before = bff_cpu_secs()?;
        let outcome = run(Duration::from_secs(seconds)).go().await?;
        let cpu = bff_cpu_secs()? - cpu_before;
        let n = outcome.latencies_us.len();
        let percentile = |p: f64| {
            let index = ((n as f64 * p).ceil() as usize).clamp(1, n.max(1)) - 1;
            outcome.latencies_us.get(index).copied().unwrap_or(0) as f64 / 1000.0
        };
        println!(
            "| {} | {clients} | {n} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.3} |",
            poll.name(),
            outcome.failures,
            n as f64 / outcome.elapsed.as_secs_f64(),
            percentile(0.50),
            percentile(0.99),
            outcome.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
            cpu * 1000.0 / n.max(1) as f64,
        );
    }
    Ok(())
}

struct Run {
    client: reqwest::Client,
    url: String,
    authorization: String,
    if_none_match: Option<String>,
    accept: &'static str,
    expected: u16,
    clients: usize,
    duration: Duration,
}

struct Outcome {
    latencies_us: Vec<u64>,
    failures: u64,
    elapsed: Duration,
}

impl Run {
    async fn go(self) -> Result<Outcome, Box<dyn std::error::Error>> {
        let run = Arc::new(self);
        let sent = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + run.duration;
        let workers = (0..run.clients).map(|_| {
            let (run, sent) = (run.clone(), sent.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                while Instant::now() < deadline
                    && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS
                {
                    let mut request = run
                        .client
                        .get(&run.url)
                        .header("authorization", &run.authorization)
                        .header("accept", run.accept);
                    if let Some(tag) = &run.if_none_match {
                        request = request.header("if-none-match", tag);
                    }
                    let at = Instant::now();
                    let ok = match request.send().await {
                        Ok(response) => {
                            response.status().as_u16() == run.expected
                                && response.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    latencies.push(at.elapsed().as_micros() as u64);
                    if !ok {
                        failures += 1;
                    }
                }
                (latencies, failures)
            })
        });
        let mut outcome = Outcome {
            latencies_us: Vec::new(),
            failures: 0,
            elapsed: Duration::ZERO,
        };
        for worker in futures::future::join_all(workers).await {
            let (latencies, failures) = worker?;
            outcome.latencies_us.extend(latencies);
            outcome.failures += failures;
        }
        outcome.elapsed = started.elapsed();
        outcome.latencies_us.sort_unstable();
        Ok(outcome)
    }
}

/// utime + stime of this process's threads named [`BFF_THREAD`] (the BFF's
/// runtime), in seconds.
fn bff_cpu_secs() -> Result<f64, Box<dyn std::error::Error>> {
    let mut ticks = 0.0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue; // the thread ended meanwhile
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with(&format!("({BFF_THREAD}")) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    }
    Ok(ticks / CLOCK_TICKS_PER_SEC)
}
