use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: bff_server::Allocator = bff_server::Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    bff_server::run(iot_bff::DEFAULTS, iot_bff::app).await
}
