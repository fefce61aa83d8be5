//! A real Redis (Debian's `redis-server`) of a test's own, on a free port:
//! started, stopped and started again on the same port to play an outage.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use url::Url;

use crate::node::on_ci;

/// Where the binary is (`REDIS_SERVER`, else `redis-server` on the `PATH`).
fn binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// One `redis-server` process; killed on drop.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// A fresh, empty Redis on a free port; `None` (after a loud message)
    /// when `redis-server` is not installed, except under `CI`, where that
    /// is a failure.
    pub async fn start() -> Option<Self> {
        let probe = Command::new(binary()).arg("--version").output();
        if probe.is_err() {
            assert!(
                !on_ci(),
                "NOT RUN: redis-server is missing and CI is set (apt-get install redis-server)"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let port = free_port();
        let mut server = Self { port, child: None };
        server.resume().await;
        Some(server)
    }

    pub fn url(&self) -> Url {
        Url::parse(&format!("redis://127.0.0.1:{}/", self.port)).unwrap()
    }

    /// Kills the server (its data goes with it, as after a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty) and waits until it answers.
    pub async fn resume(&mut self) {
        self.kill();
        let child = Command::new(binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while !self.answers_ping().await {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server on port {} did not come up",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn answers_ping(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
