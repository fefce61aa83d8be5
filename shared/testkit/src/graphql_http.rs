//! The graphql-http server audit (the GraphQL-over-HTTP spec's conformance
//! checks, from the `graphql-http` npm package) run against a live BFF by
//! `tests/graphql-http-audit/audit.mjs`.
//!
//! The audits are run by the package itself rather than rewritten here, so
//! the suite checks exactly what the spec's reference audit checks and
//! follows it by bumping one pinned version. That needs Node and the
//! script's `node_modules` (`npm ci` in `tests/graphql-http-audit`, which
//! `.ci/run` does). Where they are missing, the audit is skipped with a loud
//! message, so `cargo test` still runs on a machine without Node; under CI
//! (`CI` set to anything but `false` or `0`) it fails instead, so CI can
//! never pass without running it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs every audit against the GraphQL endpoint at `url`; panics with the
/// audit's report when any ends in an error or a warning.
pub async fn assert_graphql_http_audit_passes(url: String) {
    let dir = audit_dir();
    if let Some(missing) = missing_prerequisite(&dir) {
        let message = format!(
            "graphql-http audit NOT RUN: {missing}. Install it with `npm ci --prefix {}` \
             (Node 18 or later)",
            dir.display()
        );
        assert!(
            !on_ci(),
            "{message} (CI is set, so this fails instead of skipping)"
        );
        eprintln!("\n!!!!! {message} !!!!!\n");
        return;
    }
    // Blocking on the child in the blocking pool keeps the test's runtime
    // free to serve the BFF the script is calling.
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("audit.mjs"))
            .arg(&url)
            .current_dir(&dir)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "graphql-http audit failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

fn audit_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/graphql-http-audit");
    // Canonical, so the messages name a path one can paste.
    dir.canonicalize().unwrap_or(dir)
}

/// What keeps the audit from running here, if anything.
fn missing_prerequisite(dir: &Path) -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        return Some("`node` is not on the PATH".into());
    }
    let package = dir.join("node_modules/graphql-http/package.json");
    (!package.is_file()).then(|| format!("{} is missing", package.display()))
}

/// Whether this runs under CI (`CI` set to anything but `false` or `0`):
/// then a check that cannot run fails rather than skips.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}
