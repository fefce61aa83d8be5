//! The Node packages under `tests/` that Rust tests drive (real client
//! libraries and audits: graphql-http, puppeteer-core, graphql-ws,
//! graphql-sse, Apollo Client), each pinned by its `package-lock.json` and
//! installed by `npm ci --prefix tests/<package>` (`.ci/run` does it).
//!
//! Where Node or a package's `node_modules` is missing, a check is skipped
//! with a loud message, so `cargo test` still runs on a machine without
//! Node; under CI (`CI` set to anything but `false` or `0`) it fails
//! instead, so CI can never pass without running it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One package under `tests/`.
pub struct NodePackage {
    dir: PathBuf,
}

impl NodePackage {
    /// `tests/<name>` of the repository.
    pub fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests")
            .join(name);
        // Canonical, so the messages name a path one can paste.
        Self {
            dir: dir.canonicalize().unwrap_or(dir),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `check` can run: Node on the PATH, each of `npm_packages`
    /// installed, and `also` (another prerequisite's problem, if any) empty.
    /// `false` after a loud message when something is missing; a panic
    /// under CI.
    pub fn ready(&self, check: &str, npm_packages: &[&str], also: Option<String>) -> bool {
        let Some(missing) = self.missing(npm_packages).or(also) else {
            return true;
        };
        let message = format!(
            "{check} NOT RUN: {missing}. Install with `npm ci --prefix {}` (Node 20 or later)",
            self.dir.display()
        );
        assert!(
            !on_ci(),
            "{message} (CI is set, so this fails instead of skipping)"
        );
        eprintln!("\n!!!!! {message} !!!!!\n");
        false
    }

    fn missing(&self, npm_packages: &[&str]) -> Option<String> {
        let node = Command::new("node").arg("--version").output();
        if !node.is_ok_and(|output| output.status.success()) {
            return Some("`node` is not on the PATH".into());
        }
        npm_packages
            .iter()
            .map(|package| {
                self.dir
                    .join("node_modules")
                    .join(package)
                    .join("package.json")
            })
            .find(|package| !package.is_file())
            .map(|package| format!("{} is missing", package.display()))
    }

    /// Runs `node <script> <args>` in the package's directory with `env`
    /// added, and panics with its output (named `check`) unless it exits 0;
    /// its stdout. Blocking on the child happens in the blocking pool, so
    /// the test's runtime stays free to serve the BFF the script calls.
    pub async fn run(
        &self,
        check: &str,
        script: &str,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> String {
        let (dir, script) = (self.dir.clone(), script.to_owned());
        let output: Output = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(dir.join(script))
                .args(args)
                .envs(env)
                .current_dir(&dir)
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("{stdout}");
        assert!(
            output.status.success(),
            "{check} failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        stdout
    }
}

/// Whether this runs under CI (`CI` set to anything but `false` or `0`):
/// then a check that cannot run fails rather than skips.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}
