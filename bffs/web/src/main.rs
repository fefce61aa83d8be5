use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: bff_server::Allocator = bff_server::Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    bff_server::run(web_bff::DEFAULTS, web_bff::app).await
}
