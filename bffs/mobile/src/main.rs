use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: bff_server::Allocator = bff_server::Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    bff_server::run(mobile_bff::DEFAULTS, mobile_bff::app).await
}
