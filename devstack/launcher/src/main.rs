//! `cargo run --release -p devstack`: the five reference services and the
//! three BFFs in one process, with a dev token to try them.
//! `devstack --services-only` starts just the reference services (the
//! benchmark runs a BFF in its own process to measure it alone).

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use bff_server::{Config, Defaults, Listeners, Profile, StartError};
use devstack_services::Services;
use devstack_services::TokenKind;
use downstream::DownstreamConfig;

/// The JWT secret every BFF of the dev stack verifies tokens with. Public on
/// purpose: it is for local development only.
const DEV_JWT_SECRET: &str = "devstack-only-secret-do-not-use-in-production";
const DEV_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

#[global_allocator]
static ALLOCATOR: bff_server::Allocator = bff_server::Allocator;

type App = fn(&Config) -> Result<Router, StartError>;

#[tokio::main]
async fn main() -> ExitCode {
    bff_server::init_tracing(bff_server::LogFormat::Text);
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("devstack: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let services = Services::spawn_on(loopback).await?;
    let downstream = DownstreamConfig::with_urls(services.urls());
    if std::env::args().any(|arg| arg == "--services-only") {
        for handle in services.all() {
            println!("{:<15} {}", handle.service.name(), handle.url());
        }
        bff_server::shutdown_signal().await;
        return Ok(());
    }

    let bffs: [(&str, Defaults, App); 3] = [
        ("web", web_bff::DEFAULTS, web_bff::app),
        ("mobile", mobile_bff::DEFAULTS, mobile_bff::app),
        ("iot", iot_bff::DEFAULTS, iot_bff::app),
    ];
    let mut servers = Vec::new();
    let mut config = None;
    for (name, defaults, app) in bffs {
        let bff = dev_config(defaults, downstream.clone());
        let listeners = Listeners::bind(&bff)
            .await
            .map_err(|error| format!("{name}-bff: {error}"))?;
        let router = app(&bff)?;
        let served = {
            let bff = bff.clone();
            async move {
                bff_server::serve_listeners(listeners, router, &bff, bff_server::shutdown_signal())
                    .await
            }
        };
        servers.push(tokio::spawn(served));
        config = Some(bff);
    }

    if let Some(config) = config {
        print_banner(&services, &config);
    }
    for server in servers {
        server.await??;
    }
    Ok(())
}

fn dev_config(defaults: Defaults, downstream: DownstreamConfig) -> Config {
    let mut config = Config::new(defaults);
    config.profile = Profile::Dev;
    config.downstream = downstream;
    config.jwt.secret = Some(DEV_JWT_SECRET.to_owned());
    config
}

fn print_banner(services: &Services, config: &Config) {
    let token = |sub: &str, kind| {
        devstack_services::issue_dev_token(
            DEV_JWT_SECRET,
            &config.jwt.issuer,
            &config.jwt.audience,
            sub,
            DEV_TOKEN_TTL,
            kind,
        )
    };
    println!();
    println!("devstack is up.");
    println!();
    println!("  BFFs");
    println!(
        "    web     http://{}/graphql  (GraphiQL in a browser)",
        web_bff::DEFAULTS.listen
    );
    println!("    mobile  http://{}/graphql", mobile_bff::DEFAULTS.listen);
    println!(
        "    iot     http://{}/v1/devices/{{id}}",
        iot_bff::DEFAULTS.listen
    );
    println!();
    println!("  Metrics (Prometheus text; the three BFFs share this process, so each shows all)");
    println!("    http://{}/metrics", web_bff::DEFAULTS.admin_listen);
    println!();
    println!("  Reference services (control routes under /__control/)");
    for handle in services.all() {
        println!("    {:<15} {}", handle.service.name(), handle.url());
    }
    println!();
    println!("  Dev token for u1 (Ada Lovelace), valid 24 h:");
    println!("    export TOKEN={}", token("u1", TokenKind::User));
    println!("  Device token for d1:");
    println!("    export DEVICE_TOKEN={}", token("d1", TokenKind::Device));
    println!();
    println!("  Try:");
    println!(
        "    curl -s http://{}/graphql -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\",
        web_bff::DEFAULTS.listen
    );
    println!("      -d '{{\"query\":\"{{ me {{ name membershipLevel }} }}\"}}'");
    println!();
    println!(
        "  JWT secret (dev only): {DEV_JWT_SECRET}   issuer: {}   audience: {}",
        config.jwt.issuer, config.jwt.audience
    );
    println!("  Ctrl-C stops everything.");
}
