use std::net::SocketAddr;
use std::path::PathBuf;

use bff_server::config::{ConfigError, DEFAULT_BODY_LIMIT_BYTES, JwtConfig, RateLimitConfig};
use bff_server::{Config, ConnectionConfig, Defaults, LogFormat, Profile};
use downstream::{DownstreamConfig, Service};

use crate::helpers::{PROD_REQUIRED, SECRET, TempFile, defaults, env};

/// In the dev profile unless `pairs` say otherwise (later duplicates win).
fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    crate::helpers::load_dev(pairs)
}

fn prod_err(pairs: &[(&str, &str)]) -> String {
    let mut with_prod = vec![("BFF_PROFILE", "prod")];
    with_prod.extend_from_slice(pairs);
    load_err(&with_prod)
}

fn load_err(pairs: &[(&str, &str)]) -> String {
    let error = load(pairs).unwrap_err();
    let message = error.to_string();
    assert!(
        !message.contains(SECRET),
        "error text leaks the secret: {message}"
    );
    message
}

#[test]
fn the_dev_profile_needs_only_a_secret() {
    let config = load(&[("BFF_JWT_SECRET", SECRET)]).unwrap();
    let expected = Config {
        profile: Profile::Dev,
        log_format: LogFormat::Text,
        jwt: JwtConfig {
            secret: Some(SECRET.into()),
            ..JwtConfig::default()
        },
        ..Config::new(defaults())
    };
    assert_eq!(config, expected);

    assert_eq!(
        config.listen,
        "127.0.0.1:4000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.admin_listen, defaults().admin_listen);
    assert_eq!(config.services, defaults().services);
    assert_eq!(config.profile, Profile::Dev);
    assert!(config.profile.is_dev());
    assert_eq!(config.downstream, DownstreamConfig::default());
    assert_eq!(
        config.downstream.service(Service::User).url.as_str(),
        "http://127.0.0.1:7101/"
    );
    assert_eq!(config.jwt.issuer, "devstack");
    assert_eq!(config.jwt.audience, "bff");
    assert_eq!(config.jwt.leeway_secs, 30);
    assert_eq!(config.jwt.jwks_url, None);
    assert_eq!(config.rate_limit, RateLimitConfig::default());
    assert_eq!((config.rate_limit.rps, config.rate_limit.burst), (0, 0));
    assert!(!config.rate_limit.is_enabled());
    assert_eq!(config.body_limit_bytes, 1024 * 1024);
    assert_eq!(config.body_limit_bytes, DEFAULT_BODY_LIMIT_BYTES);
    assert_eq!(config.request_timeout_ms, 2000);
    assert_eq!(config.body_read_timeout_ms, 10_000);
    assert_eq!(
        config.connections,
        ConnectionConfig {
            header_read_timeout_ms: 10_000,
            keep_alive_timeout_ms: 75_000,
            max_open: 4096,
        }
    );
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.safelist_file, None);
}

#[test]
fn variables_without_the_bff_prefix_are_ignored() {
    let config = load(&[
        ("BFF_JWT_SECRET", SECRET),
        ("PATH", "/usr/bin"),
        ("RUST_LOG", "debug"),
        ("bff_listen", "nonsense"),
    ])
    .unwrap();
    assert_eq!(config.listen, defaults().listen);
}

#[test]
fn every_variable_is_applied() {
    let config = load(&[
        ("BFF_LISTEN", "0.0.0.0:8080"),
        ("BFF_PROFILE", "dev"),
        ("BFF_USER_SERVICE_URL", "http://users.internal:81"),
        ("BFF_PRODUCT_SERVICE_URL", "http://products.internal:82"),
        ("BFF_ORDER_SERVICE_URL", "https://orders.internal"),
        ("BFF_RECOMMENDATION_SERVICE_URL", "http://[::1]:84"),
        ("BFF_DEVICE_SERVICE_URL", "http://10.0.0.5:85/base/"),
        ("BFF_DOWNSTREAM_TIMEOUT_MS", "750"),
        ("BFF_JWT_SECRET", SECRET),
        ("BFF_JWT_ALGORITHMS", "HS256"),
        ("BFF_JWT_ISSUER", "https://idp.example"),
        ("BFF_JWT_AUDIENCE", "web"),
        ("BFF_RATE_LIMIT_RPS", "50"),
        ("BFF_RATE_LIMIT_BURST", "100"),
        ("BFF_BODY_LIMIT_BYTES", "4096"),
        ("BFF_REQUEST_TIMEOUT_MS", "3000"),
        ("BFF_BODY_READ_TIMEOUT_MS", "4000"),
        ("BFF_HEADER_READ_TIMEOUT_MS", "5000"),
        ("BFF_KEEP_ALIVE_TIMEOUT_MS", "30000"),
        ("BFF_MAX_CONNECTIONS", "100"),
        ("BFF_LOG_FORMAT", "json"),
        ("BFF_SAFELIST_FILE", "/etc/bff/safelist.json"),
    ])
    .unwrap();
    assert_eq!(config.listen, "0.0.0.0:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(config.profile, Profile::Dev);
    let url = |service| config.downstream.service(service).url.as_str();
    assert_eq!(url(Service::User), "http://users.internal:81/");
    assert_eq!(url(Service::Product), "http://products.internal:82/");
    assert_eq!(url(Service::Order), "https://orders.internal/");
    assert_eq!(url(Service::Recommendation), "http://[::1]:84/");
    assert_eq!(url(Service::Device), "http://10.0.0.5:85/base/");
    assert_eq!(config.downstream.timeout_ms, 750);
    assert_eq!(config.jwt.secret.as_deref(), Some(SECRET));
    assert_eq!(
        config.jwt.algorithms,
        Some(vec![jsonwebtoken::Algorithm::HS256])
    );
    assert_eq!(config.jwt.issuer, "https://idp.example");
    assert_eq!(config.jwt.audience, "web");
    assert_eq!(
        config.rate_limit,
        RateLimitConfig {
            rps: 50,
            burst: 100,
            client_ip_header: None,
        }
    );
    assert!(config.rate_limit.is_enabled());
    assert_eq!(config.body_limit_bytes, 4096);
    assert_eq!(config.request_timeout_ms, 3000);
    assert_eq!(config.body_read_timeout_ms, 4000);
    assert_eq!(
        config.connections,
        ConnectionConfig {
            header_read_timeout_ms: 5000,
            keep_alive_timeout_ms: 30_000,
            max_open: 100,
        }
    );
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(
        config.safelist_file,
        Some(PathBuf::from("/etc/bff/safelist.json"))
    );
}

#[test]
fn env_overrides_the_file_which_overrides_defaults() {
    let file = TempFile::new(
        r#"
profile = "dev"
request_timeout_ms = 500
log_format = "json"

[downstream]
timeout_ms = 300

[downstream.user]
url = "http://users.from-file:9001"
timeout_ms = 100

[downstream.order]
url = "http://orders.from-file:9003"

[jwt]
issuer = "file-issuer"
leeway_secs = 5

[rate_limit]
rps = 10
burst = 20
"#,
    );
    let config = load(&[
        ("BFF_CONFIG_FILE", file.path_str()),
        ("BFF_JWT_SECRET", SECRET),
        ("BFF_REQUEST_TIMEOUT_MS", "900"),
        ("BFF_ORDER_SERVICE_URL", "http://orders.from-env:9103"),
    ])
    .unwrap();

    // The file has no `listen`: the BFF's own default stays.
    assert_eq!(config.listen, defaults().listen);
    // From the file.
    assert_eq!(config.profile, Profile::Dev);
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(config.downstream.timeout_ms, 300);
    assert_eq!(
        config.downstream.user.url.as_str(),
        "http://users.from-file:9001/"
    );
    assert_eq!(
        config.downstream.timeout(Service::User),
        std::time::Duration::from_millis(100)
    );
    assert_eq!(config.jwt.issuer, "file-issuer");
    assert_eq!(config.jwt.leeway_secs, 5);
    assert_eq!(
        config.rate_limit,
        RateLimitConfig {
            rps: 10,
            burst: 20,
            client_ip_header: None,
        }
    );
    // From the environment, over the file.
    assert_eq!(config.request_timeout_ms, 900);
    assert_eq!(
        config.downstream.order.url.as_str(),
        "http://orders.from-env:9103/"
    );
    // Defaults where neither says anything.
    assert_eq!(config.jwt.audience, "bff");
    assert_eq!(config.body_limit_bytes, DEFAULT_BODY_LIMIT_BYTES);
    assert_eq!(
        config.downstream.product,
        DownstreamConfig::default().product
    );
}

#[test]
fn listen_in_the_file_replaces_the_bff_default() {
    let file = TempFile::new("listen = \"127.0.0.1:5555\"\n");
    let config = load(&[
        ("BFF_CONFIG_FILE", file.path_str()),
        ("BFF_JWT_SECRET", SECRET),
    ])
    .unwrap();
    assert_eq!(
        config.listen,
        "127.0.0.1:5555".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn unknown_file_keys_fail_with_the_key_and_line() {
    let file = TempFile::new("profile = \"dev\"\nlistne = \"127.0.0.1:1\"\n");
    let message = load_err(&[
        ("BFF_CONFIG_FILE", file.path_str()),
        ("BFF_JWT_SECRET", SECRET),
    ]);
    assert!(message.contains("listne"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains(file.path_str()), "{message}");

    let nested = TempFile::new("[jwt]\nissuer = \"x\"\nsecrte = \"oops\"\n");
    let message = load_err(&[
        ("BFF_CONFIG_FILE", nested.path_str()),
        ("BFF_JWT_SECRET", SECRET),
    ]);
    assert!(message.contains("secrte"), "{message}");
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn a_broken_secret_line_in_the_file_is_not_quoted() {
    // An unterminated string: toml's own error display would quote the line.
    let file = TempFile::new(&format!("[jwt]\nsecret = \"{SECRET}\n"));
    let message = load_err(&[("BFF_CONFIG_FILE", file.path_str())]);
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn a_missing_config_file_is_named() {
    let message = load_err(&[
        ("BFF_CONFIG_FILE", "/nonexistent/bff.toml"),
        ("BFF_JWT_SECRET", SECRET),
    ]);
    assert!(message.contains("/nonexistent/bff.toml"), "{message}");
    assert!(message.contains("BFF_CONFIG_FILE"), "{message}");
}

#[test]
fn unknown_bff_variables_are_named() {
    let message = load_err(&[("BFF_JWT_SECRET", SECRET), ("BFF_LISTN", "127.0.0.1:1")]);
    assert!(message.contains("BFF_LISTN"), "{message}");
    assert!(
        message.contains("BFF_LISTEN"),
        "lists the known ones: {message}"
    );
}

#[test]
fn malformed_urls_name_the_variable_and_the_problem() {
    let cases = [
        ("not a url", "not a valid URL"),
        ("ftp://files.internal", "http or https"),
        ("users.internal:7101", "http or https"),
    ];
    for (value, problem) in cases {
        let message = load_err(&[
            ("BFF_JWT_SECRET", SECRET),
            ("BFF_PRODUCT_SERVICE_URL", value),
        ]);
        assert!(message.contains("BFF_PRODUCT_SERVICE_URL"), "{message}");
        assert!(message.contains(problem), "{value}: {message}");
    }
    // URLs may carry credentials: never echoed.
    let message = load_err(&[
        ("BFF_JWT_SECRET", SECRET),
        ("BFF_USER_SERVICE_URL", "ftp://admin:hunter2@users.internal"),
    ]);
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn urls_from_the_file_are_checked_too() {
    let file = TempFile::new("[downstream.device]\nurl = \"ftp://devices.internal\"\n");
    let message = load_err(&[
        ("BFF_CONFIG_FILE", file.path_str()),
        ("BFF_JWT_SECRET", SECRET),
    ]);
    assert!(message.contains("BFF_DEVICE_SERVICE_URL"), "{message}");
    assert!(message.contains("downstream.device.url"), "{message}");
    assert!(message.contains("http or https"), "{message}");
}

#[test]
fn the_secret_is_required() {
    let message = load_err(&[]);
    assert!(message.contains("BFF_JWT_SECRET"), "{message}");
    assert!(message.contains("required"), "{message}");
}

#[test]
fn a_short_secret_is_refused_without_echoing_it() {
    let short = "only-twenty-bytes-ab";
    let message = load_err(&[("BFF_JWT_SECRET", short)]);
    assert!(message.contains("BFF_JWT_SECRET"), "{message}");
    assert!(message.contains("at least 32"), "{message}");
    assert!(!message.contains(short), "{message}");
}

#[test]
fn a_jwks_url_replaces_the_secret_never_joins_it() {
    let config = load(&[
        ("BFF_JWKS_URL", "https://idp.example/.well-known/jwks.json"),
        ("BFF_JWT_ALGORITHMS", "ES256, RS256"),
    ])
    .unwrap();
    assert_eq!(
        config.jwt.jwks_url.as_ref().map(|url| url.as_str()),
        Some("https://idp.example/.well-known/jwks.json")
    );
    assert_eq!(
        config.jwt.algorithms,
        Some(vec![
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::Algorithm::RS256
        ])
    );
    assert_eq!(config.jwt.jwks_min_refresh_secs, 60);
    let message = load_err(&[
        ("BFF_JWT_SECRET", SECRET),
        ("BFF_JWKS_URL", "https://idp.example/jwks.json"),
    ]);
    assert!(message.contains("more than one key"), "{message}");
    let message = load_err(&[
        ("BFF_JWKS_URL", "https://idp.example/jwks.json"),
        ("BFF_JWT_ALGORITHMS", "HS256"),
    ]);
    assert!(message.contains("jwt.algorithms"), "{message}");
    let message = load_err(&[("BFF_JWT_SECRET", SECRET), ("BFF_JWT_ALGORITHMS", "none")]);
    assert!(message.contains("BFF_JWT_ALGORITHMS"), "{message}");
}

#[test]
fn zero_deadlines_and_limits_are_refused() {
    for var in [
        "BFF_REQUEST_TIMEOUT_MS",
        "BFF_DOWNSTREAM_TIMEOUT_MS",
        "BFF_BODY_LIMIT_BYTES",
    ] {
        let message = load_err(&[("BFF_JWT_SECRET", SECRET), (var, "0")]);
        assert!(message.contains(var), "{message}");
        assert!(message.contains("greater than 0"), "{message}");
    }
}

#[test]
fn connection_settings_come_from_the_file_and_the_environment() {
    let file = TempFile::new(
        r#"
body_read_timeout_ms = 2500

[connections]
header_read_timeout_ms = 3000
keep_alive_timeout_ms = 20000
max_open = 64
"#,
    );
    let config = load(&[
        ("BFF_CONFIG_FILE", file.path_str()),
        ("BFF_JWT_SECRET", SECRET),
        ("BFF_MAX_CONNECTIONS", "128"),
    ])
    .unwrap();
    assert_eq!(config.body_read_timeout_ms, 2500);
    assert_eq!(config.connections.header_read_timeout_ms, 3000);
    assert_eq!(config.connections.keep_alive_timeout_ms, 20_000);
    assert_eq!(config.connections.max_open, 128);

    let typo = TempFile::new("[connections]\nmax_conections = 10\n");
    let message = load_err(&[
        ("BFF_CONFIG_FILE", typo.path_str()),
        ("BFF_JWT_SECRET", SECRET),
    ]);
    assert!(message.contains("max_conections"), "{message}");
}

#[test]
fn zero_or_absurd_connection_settings_are_refused() {
    for (var, value) in [
        ("BFF_BODY_READ_TIMEOUT_MS", "0"),
        ("BFF_HEADER_READ_TIMEOUT_MS", "0"),
        ("BFF_KEEP_ALIVE_TIMEOUT_MS", "0"),
        ("BFF_MAX_CONNECTIONS", "0"),
        // Longer than an hour: a typo, and sockets held practically forever.
        ("BFF_BODY_READ_TIMEOUT_MS", "3600001"),
        ("BFF_HEADER_READ_TIMEOUT_MS", "18446744073709551615"),
        ("BFF_KEEP_ALIVE_TIMEOUT_MS", "86400000"),
        ("BFF_MAX_CONNECTIONS", "100000000"),
    ] {
        let message = load_err(&[("BFF_JWT_SECRET", SECRET), (var, value)]);
        assert!(message.contains(var), "{var}={value}: {message}");
        assert!(message.contains("must be between 1 and"), "{message}");
    }
    for (var, value) in [
        ("BFF_MAX_CONNECTIONS", "-1"),
        ("BFF_KEEP_ALIVE_TIMEOUT_MS", "75s"),
    ] {
        let message = load_err(&[("BFF_JWT_SECRET", SECRET), (var, value)]);
        assert!(message.contains(&format!("`{value}`")), "{message}");
    }
}

#[test]
fn bad_values_are_quoted_with_their_variable() {
    let cases = [
        ("BFF_PROFILE", "staging"),
        ("BFF_LOG_FORMAT", "xml"),
        ("BFF_LISTEN", "localhost"),
        ("BFF_REQUEST_TIMEOUT_MS", "2s"),
        ("BFF_RATE_LIMIT_RPS", "-1"),
    ];
    for (var, value) in cases {
        let message = load_err(&[("BFF_JWT_SECRET", SECRET), (var, value)]);
        assert!(message.contains(var), "{message}");
        assert!(message.contains(&format!("`{value}`")), "{message}");
    }
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let config = load(&[("BFF_JWT_SECRET", SECRET)]).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn validate_checks_a_config_built_in_code() {
    let mut config = Config::new(defaults());
    assert!(matches!(
        config.validate(),
        Err(ConfigError::MissingJwtSecret)
    ));
    config.jwt.secret = Some(SECRET.into());
    config.validate().unwrap();
    config.downstream.user.timeout_ms = Some(0);
    let message = config.validate().unwrap_err().to_string();
    assert!(message.contains("downstream.user.timeout_ms"), "{message}");
}

#[test]
fn the_prod_profile_names_every_missing_setting_at_once() {
    // Nothing set at all: each service URL, the issuer, the audience, a key.
    let message = prod_err(&[]);
    for name in [
        "BFF_USER_SERVICE_URL",
        "BFF_PRODUCT_SERVICE_URL",
        "BFF_ORDER_SERVICE_URL",
        "BFF_RECOMMENDATION_SERVICE_URL",
        "BFF_DEVICE_SERVICE_URL",
        "BFF_JWT_ISSUER",
        "BFF_JWT_AUDIENCE",
        "BFF_JWT_SECRET, BFF_JWT_SECRET_FILE or BFF_JWKS_URL",
    ] {
        assert!(message.contains(name), "{name} not named in: {message}");
    }
    // One forgotten URL is named alone.
    let message = prod_err(
        &PROD_REQUIRED
            .into_iter()
            .filter(|(name, _)| *name != "BFF_PRODUCT_SERVICE_URL")
            .collect::<Vec<_>>(),
    );
    assert!(message.contains("BFF_PRODUCT_SERVICE_URL"), "{message}");
    assert!(!message.contains("BFF_USER_SERVICE_URL"), "{message}");
    assert!(!message.contains("BFF_JWT_ISSUER"), "{message}");
    // The default profile is prod.
    let message = Config::load(defaults(), env(&[("BFF_JWT_SECRET", SECRET)]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("BFF_JWT_ISSUER"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
}

#[test]
fn the_prod_profile_is_the_default_and_takes_settings_from_env_or_file() {
    let config = Config::load(defaults(), env(&PROD_REQUIRED)).unwrap();
    assert_eq!(config.profile, Profile::Prod);
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(
        config.downstream.service(Service::Order).url.as_str(),
        "http://127.0.0.1:7103/"
    );
    // The same settings from a file.
    let file = TempFile::new(
        "[downstream.user]\nurl = \"http://u:1\"\n[downstream.product]\nurl = \"http://p:1\"\n\
         [downstream.order]\nurl = \"http://o:1\"\n[downstream.recommendation]\nurl = \"http://r:1\"\n\
         [downstream.device]\nurl = \"http://d:1\"\n[jwt]\nissuer = \"https://idp\"\naudience = \"shop\"\n",
    );
    let config = Config::load(
        defaults(),
        env(&[
            ("BFF_CONFIG_FILE", file.path_str()),
            ("BFF_JWT_SECRET", SECRET),
        ]),
    )
    .unwrap();
    assert_eq!(config.jwt.issuer, "https://idp");
    assert_eq!(
        config.downstream.service(Service::Device).url.as_str(),
        "http://d:1/"
    );
    // A BFF is asked only for the services it calls.
    let iot = Defaults {
        services: &[Service::Device],
        ..defaults()
    };
    let config = Config::load(
        iot,
        env(&[
            ("BFF_DEVICE_SERVICE_URL", "http://devices.internal"),
            ("BFF_JWT_ISSUER", "https://idp"),
            ("BFF_JWT_AUDIENCE", "devices"),
            ("BFF_JWT_SECRET", SECRET),
        ]),
    )
    .unwrap();
    assert_eq!(config.services, [Service::Device]);
    // An explicit log format wins over the profile's.
    let mut text = PROD_REQUIRED.to_vec();
    text.push(("BFF_LOG_FORMAT", "text"));
    let config = Config::load(defaults(), env(&text)).unwrap();
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn the_secret_can_come_from_a_mounted_file() {
    // As `kubectl create secret` or `echo` leave it: one trailing newline.
    let file = TempFile::new(&format!("{SECRET}\n"));
    let config = load(&[("BFF_JWT_SECRET_FILE", file.path_str())]).unwrap();
    assert_eq!(config.jwt.secret.as_deref(), Some(SECRET));
    let crlf = TempFile::new(&format!("{SECRET}\r\n"));
    let config = load(&[("BFF_JWT_SECRET_FILE", crlf.path_str())]).unwrap();
    assert_eq!(config.jwt.secret.as_deref(), Some(SECRET));
    // It satisfies the prod profile's key.
    let mut prod: Vec<(&str, &str)> = PROD_REQUIRED
        .into_iter()
        .filter(|(name, _)| *name != "BFF_JWT_SECRET")
        .collect();
    prod.push(("BFF_JWT_SECRET_FILE", file.path_str()));
    let config = Config::load(defaults(), env(&prod)).unwrap();
    assert_eq!(config.jwt.secret.as_deref(), Some(SECRET));

    // The same length rule, without echoing the secret.
    let short = TempFile::new("short-secret\n");
    let message = load_err(&[("BFF_JWT_SECRET_FILE", short.path_str())]);
    assert!(message.contains("too short: 12 bytes"), "{message}");
    assert!(!message.contains("short-secret"), "{message}");
    // Unreadable: named, with the reason.
    let message = load_err(&[("BFF_JWT_SECRET_FILE", "/nonexistent/jwt-secret")]);
    assert!(
        message.contains("/nonexistent/jwt-secret") && message.contains("BFF_JWT_SECRET_FILE"),
        "{message}"
    );
    // Two key sources: refused.
    let message = load_err(&[
        ("BFF_JWT_SECRET_FILE", file.path_str()),
        ("BFF_JWT_SECRET", SECRET),
    ]);
    assert!(message.contains("more than one key"), "{message}");
}

#[test]
fn each_bff_has_its_own_deadline_and_admin_port() {
    // The BFFs' own defaults are checked in their crates; here: they apply.
    let quick = Defaults {
        request_timeout_ms: 500,
        admin_listen: "127.0.0.1:9402".parse().unwrap(),
        ..defaults()
    };
    let config = Config::load(quick, env(&PROD_REQUIRED)).unwrap();
    assert_eq!(config.request_timeout_ms, 500);
    assert_eq!(
        config.admin_listen,
        "127.0.0.1:9402".parse::<SocketAddr>().unwrap()
    );
    // A file without them keeps them; the environment overrides them.
    let file = TempFile::new("body_limit_bytes = 2048\n");
    let mut vars = PROD_REQUIRED.to_vec();
    vars.push(("BFF_CONFIG_FILE", file.path_str()));
    let config = Config::load(quick, env(&vars)).unwrap();
    assert_eq!(config.request_timeout_ms, 500);
    vars.push(("BFF_ADMIN_LISTEN", "0.0.0.0:9999"));
    vars.push(("BFF_REQUEST_TIMEOUT_MS", "750"));
    let config = Config::load(quick, env(&vars)).unwrap();
    assert_eq!(config.request_timeout_ms, 750);
    assert_eq!(
        config.admin_listen,
        "0.0.0.0:9999".parse::<SocketAddr>().unwrap()
    );
    let message = load_err(&[("BFF_JWT_SECRET", SECRET), ("BFF_ADMIN_LISTEN", "9400")]);
    assert!(message.contains("BFF_ADMIN_LISTEN"), "{message}");
}

#[test]
fn redis_is_off_unless_a_url_is_set_and_its_password_never_shows() {
    let config = load(&[("BFF_JWT_SECRET", SECRET)]).unwrap();
    assert_eq!(config.redis.client_config(), None);

    let config = load(&[
        ("BFF_JWT_SECRET", SECRET),
        (
            "BFF_REDIS_URL",
            "rediss://bff:hunter2-redis@redis.internal:6380/2",
        ),
    ])
    .unwrap();
    let redis = config.redis.client_config().unwrap();
    assert_eq!(redis.url.host_str(), Some("redis.internal"));
    assert_eq!(redis.timeout, std::time::Duration::from_millis(50));
    // Each BFF's keys apart by default: the binary's name.
    assert_eq!(redis.key_prefix, format!("{}:", bff_server::binary_name()));
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2-redis"), "{debug}");
    assert!(debug.contains("redis.internal"), "{debug}");

    let message = load_err(&[
        ("BFF_JWT_SECRET", SECRET),
        ("BFF_REDIS_URL", "http://user:hunter2-redis@redis.internal"),
    ]);
    assert!(message.contains("BFF_REDIS_URL"), "{message}");
    assert!(!message.contains("hunter2-redis"), "{message}");
    let message = load_err(&[("BFF_JWT_SECRET", SECRET), ("BFF_REDIS_URL", "not a url")]);
    assert!(message.contains("BFF_REDIS_URL"), "{message}");

    let file = TempFile::new(
        "[redis]\nurl = \"redis://127.0.0.1:6379\"\ntimeout_ms = 20\nkey_prefix = \"shop:web:\"\n",
    );
    let config = load(&[
        ("BFF_JWT_SECRET", SECRET),
        ("BFF_CONFIG_FILE", file.path_str()),
    ])
    .unwrap();
    let redis = config.redis.client_config().unwrap();
    assert_eq!(redis.timeout, std::time::Duration::from_millis(20));
    assert_eq!(redis.key_prefix, "shop:web:");
}
