//! The `web-bff` binary in the prod profile (the default) refuses to start
//! without the settings that would otherwise point at devstack.

use std::process::Command;

fn start(env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_web-bff"))
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_prod_profile_exits_at_start_naming_every_missing_setting() {
    let (started, stderr) = start(&[]);
    assert!(!started);
    for name in [
        "BFF_USER_SERVICE_URL",
        "BFF_PRODUCT_SERVICE_URL",
        "BFF_ORDER_SERVICE_URL",
        "BFF_RECOMMENDATION_SERVICE_URL",
        "BFF_JWT_ISSUER",
        "BFF_JWT_AUDIENCE",
        "BFF_JWT_SECRET_FILE",
    ] {
        assert!(stderr.contains(name), "{name} not named: {stderr}");
    }
    // web-bff never calls the device service, so does not ask for it.
    assert!(!stderr.contains("BFF_DEVICE_SERVICE_URL"), "{stderr}");

    // A mounted secret that is too short is refused just as loudly.
    let dir = std::env::temp_dir().join(format!("web-bff-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("jwt-secret");
    std::fs::write(&secret, "too-short\n").unwrap();
    let (started, stderr) = start(&[
        ("BFF_USER_SERVICE_URL", "http://users.internal"),
        ("BFF_PRODUCT_SERVICE_URL", "http://products.internal"),
        ("BFF_ORDER_SERVICE_URL", "http://orders.internal"),
        (
            "BFF_RECOMMENDATION_SERVICE_URL",
            "http://recommendations.internal",
        ),
        ("BFF_JWT_ISSUER", "https://idp.example"),
        ("BFF_JWT_AUDIENCE", "shop"),
        ("BFF_JWT_SECRET_FILE", secret.to_str().unwrap()),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!started);
    assert!(stderr.contains("too short: 9 bytes"), "{stderr}");
    assert!(!stderr.contains("too-short"), "the secret leaked: {stderr}");
}
