use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    bff_server::run(web_bff::DEFAULT_LISTEN, web_bff::app).await
}
