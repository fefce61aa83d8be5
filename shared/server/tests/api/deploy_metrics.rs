//! Every metric the operators' dashboard and alert rules name
//! (`deploy/grafana`, `deploy/prometheus`) is one the BFFs export:
//! `deploy/check-metric-names` reads the names out of those files and
//! compares them with `exported_metric_names()`, given on its stdin.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn check_metric_names(exported: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/check-metric-names");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(exported.join("\n").as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn the_dashboard_and_alert_rules_name_only_exported_metrics() {
    let output = check_metric_names(&bff_server::metrics::exported_metric_names());
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_metric_the_bffs_do_not_export_is_named() {
    let missing = "downstream_breaker_state";
    let without: Vec<&str> = bff_server::metrics::exported_metric_names()
        .into_iter()
        .filter(|name| *name != missing)
        .collect();
    let output = check_metric_names(&without);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{missing}: not exported")),
        "{stderr}"
    );
}
