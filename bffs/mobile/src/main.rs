use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    bff_server::run(mobile_bff::DEFAULT_LISTEN, mobile_bff::app).await
}
