use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    bff_server::run(iot_bff::DEFAULT_LISTEN, iot_bff::app).await
}
