//! Configuration of one BFF process.
//!
//! Sources, each overriding the one before: built-in defaults (the listen
//! address comes from the BFF itself), then an optional TOML file named by
//! `BFF_CONFIG_FILE`, then `BFF_*` environment variables. Unknown keys in the
//! file and unknown `BFF_*` variables are errors, so a typo fails at start-up
//! instead of silently running with a default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use downstream::{DownstreamConfig, Service};
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::Url;

/// The dev profile's token issuer and audience: devstack's. The prod
/// profile has no default for either.
pub const DEV_JWT_ISSUER: &str = "devstack";
pub const DEV_JWT_AUDIENCE: &str = "bff";
pub const DEFAULT_JWT_LEEWAY_SECS: u64 = 30;
/// An unknown `kid` refetches the JWKS at most this often, so forged kids
/// cannot turn the BFF into a load generator against the identity provider.
pub const DEFAULT_JWKS_MIN_REFRESH_SECS: u64 = 60;
/// Algorithms accepted by default: HS256 with a secret; RS256 and ES256
/// with a JWKS.
pub const DEFAULT_SECRET_ALGORITHMS: [Algorithm; 1] = [Algorithm::HS256];
pub const DEFAULT_JWKS_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// The asymmetric algorithms a JWKS key may be used with.
pub const SUPPORTED_JWKS_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// HS256 keys shorter than the hash output (32 bytes) are brute-forceable.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;
/// Time a client has to send a whole request body; a slower one gets 408.
/// Read before the request's own deadline starts, so a slow uplink does
/// not eat the time the BFF needs downstream.
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 10_000;
/// Time a client has to send a request's head (request line and headers):
/// on a new connection from the accept, later from its first byte.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// How long a keep-alive connection may sit idle between requests. Above
/// the 60 s idle timeout of the usual load balancers in front (AWS ALB,
/// nginx), so they close first and never reuse a connection we closed.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT_MS: u64 = 75_000;
/// Most connections open at once; more are accepted and closed at once, so
/// a flood of idle sockets cannot use up the process's file descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4_096;
/// Upper bound of every connection and body timeout: longer is a typo, and
/// would hold sockets open for practically ever.
pub const MAX_CONNECTION_TIMEOUT_MS: u64 = 3_600_000;
/// Upper bound of `connections.max_open`: the kernel's usual per-process
/// file limit (`fs.nr_open`).
pub const MAX_MAX_CONNECTIONS: usize = 1_048_576;
/// Rate limiting is off unless configured: a default limit would surprise
/// load tests against devstack, and the right rate depends on the deployment.
pub const DEFAULT_RATE_LIMIT_RPS: u32 = 0;
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 0;
/// Deepest selection nesting a GraphQL operation may have (OWASP's usual 10–15).
pub const DEFAULT_GRAPHQL_MAX_DEPTH: usize = 12;
/// Highest estimated cost of one operation: every field costs 1, and a list
/// field's sub-selection counts once per item it may return (`first`/`limit`).
pub const DEFAULT_GRAPHQL_MAX_COST: usize = 5_000;
/// Most aliases one operation may use: aliases repeat a field without
/// nesting, the classic way around depth limits.
pub const DEFAULT_GRAPHQL_MAX_ALIASES: usize = 30;
/// Most fields one operation may select at its root.
pub const DEFAULT_GRAPHQL_MAX_ROOT_FIELDS: usize = 20;
/// Most lexical tokens a query may have; counted before parsing, so a huge
/// document costs a scan, not a parse.
pub const DEFAULT_GRAPHQL_MAX_TOKENS: usize = 15_000;
/// Largest query text, in bytes (the body limit still bounds the whole body).
pub const DEFAULT_GRAPHQL_MAX_QUERY_BYTES: usize = 64 * 1024;

/// The prefix of every variable this module reads.
const ENV_PREFIX: &str = "BFF_";

pub const ENV_CONFIG_FILE: &str = "BFF_CONFIG_FILE";
pub const ENV_LISTEN: &str = "BFF_LISTEN";
pub const ENV_ADMIN_LISTEN: &str = "BFF_ADMIN_LISTEN";
pub const ENV_PROFILE: &str = "BFF_PROFILE";
pub const ENV_DOWNSTREAM_TIMEOUT_MS: &str = "BFF_DOWNSTREAM_TIMEOUT_MS";
pub const ENV_JWT_SECRET: &str = "BFF_JWT_SECRET";
pub const ENV_JWT_SECRET_FILE: &str = "BFF_JWT_SECRET_FILE";
pub const ENV_JWKS_URL: &str = "BFF_JWKS_URL";
pub const ENV_JWT_ISSUER: &str = "BFF_JWT_ISSUER";
pub const ENV_JWT_AUDIENCE: &str = "BFF_JWT_AUDIENCE";
pub const ENV_JWT_ALGORITHMS: &str = "BFF_JWT_ALGORITHMS";
pub const ENV_RATE_LIMIT_RPS: &str = "BFF_RATE_LIMIT_RPS";
pub const ENV_RATE_LIMIT_BURST: &str = "BFF_RATE_LIMIT_BURST";
pub const ENV_RATE_LIMIT_CLIENT_IP_HEADER: &str = "BFF_RATE_LIMIT_CLIENT_IP_HEADER";
pub const ENV_CORS_ALLOWED_ORIGINS: &str = "BFF_CORS_ALLOWED_ORIGINS";
pub const ENV_BODY_LIMIT_BYTES: &str = "BFF_BODY_LIMIT_BYTES";
pub const ENV_REQUEST_TIMEOUT_MS: &str = "BFF_REQUEST_TIMEOUT_MS";
pub const ENV_BODY_READ_TIMEOUT_MS: &str = "BFF_BODY_READ_TIMEOUT_MS";
pub const ENV_HEADER_READ_TIMEOUT_MS: &str = "BFF_HEADER_READ_TIMEOUT_MS";
pub const ENV_KEEP_ALIVE_TIMEOUT_MS: &str = "BFF_KEEP_ALIVE_TIMEOUT_MS";
pub const ENV_MAX_CONNECTIONS: &str = "BFF_MAX_CONNECTIONS";
pub const ENV_LOG_FORMAT: &str = "BFF_LOG_FORMAT";
pub const ENV_SAFELIST_FILE: &str = "BFF_SAFELIST_FILE";
pub const ENV_REDIS_URL: &str = "BFF_REDIS_URL";

/// Every variable `Config::load` understands besides the five
/// `BFF_*_SERVICE_URL`s (those come from `Service::url_env_var`).
const ENV_VARS: [&str; 24] = [
    ENV_CONFIG_FILE,
    ENV_LISTEN,
    ENV_ADMIN_LISTEN,
    ENV_PROFILE,
    ENV_DOWNSTREAM_TIMEOUT_MS,
    ENV_JWT_SECRET,
    ENV_JWT_SECRET_FILE,
    ENV_JWKS_URL,
    ENV_JWT_ISSUER,
    ENV_JWT_AUDIENCE,
    ENV_JWT_ALGORITHMS,
    ENV_RATE_LIMIT_RPS,
    ENV_RATE_LIMIT_BURST,
    ENV_RATE_LIMIT_CLIENT_IP_HEADER,
    ENV_CORS_ALLOWED_ORIGINS,
    ENV_BODY_LIMIT_BYTES,
    ENV_REQUEST_TIMEOUT_MS,
    ENV_BODY_READ_TIMEOUT_MS,
    ENV_HEADER_READ_TIMEOUT_MS,
    ENV_KEEP_ALIVE_TIMEOUT_MS,
    ENV_MAX_CONNECTIONS,
    ENV_LOG_FORMAT,
    ENV_SAFELIST_FILE,
    ENV_REDIS_URL,
];

/// What differs between the BFFs: their defaults, and the services they call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Where this BFF listens unless told otherwise (web 4000, mobile 4001, iot 4002).
    pub listen: SocketAddr,
    /// Where its admin listener (`/metrics`, `/healthz`, `/readyz`) listens
    /// unless told otherwise (web 9400, mobile 9401, iot 9402).
    pub admin_listen: SocketAddr,
    /// Its whole-request deadline unless told otherwise: what its clients
    /// can wait (web 2 s, mobile 1.5 s, iot 0.5 s).
    pub request_timeout_ms: u64,
    /// The downstream services it calls: their URLs are required in the
    /// prod profile, and they decide readiness.
    pub services: &'static [Service],
}

/// `127.0.0.1:port`, for [`Defaults`] in `const`s.
pub const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// Everything one BFF process is configured with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default = "Config::placeholder", deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`BFF_LISTEN`); defaults to the BFF's own port.
    pub listen: SocketAddr,
    /// Address of the admin listener: `/metrics`, `/healthz`, `/readyz`
    /// (`BFF_ADMIN_LISTEN`); defaults to the BFF's own admin port.
    pub admin_listen: SocketAddr,
    /// `dev` turns on GraphiQL and introspection and defaults every setting
    /// but the JWT key to devstack's; `prod` (default) turns them off and
    /// requires the settings that would point at devstack (`BFF_PROFILE`).
    pub profile: Profile,
    /// The downstream services this BFF calls (from [`Defaults`]; not a setting).
    #[serde(skip)]
    pub services: &'static [Service],
    /// Base URLs and deadlines of the downstream services (`BFF_*_SERVICE_URL`, `BFF_DOWNSTREAM_TIMEOUT_MS`).
    pub downstream: DownstreamConfig,
    /// How bearer tokens are verified.
    pub jwt: JwtConfig,
    /// Per-client request rate limit.
    pub rate_limit: RateLimitConfig,
    /// Abuse limits of GraphQL operations (`[graphql]` in the config file).
    pub graphql: GraphQlConfig,
    /// Browser origins allowed to call the API cross-origin.
    pub cors: CorsConfig,
    /// Largest request body accepted; larger ones get 413 (`BFF_BODY_LIMIT_BYTES`).
    pub body_limit_bytes: usize,
    /// Deadline of a whole client request; past it the client gets 504 (`BFF_REQUEST_TIMEOUT_MS`).
    /// It starts once the body has arrived.
    pub request_timeout_ms: u64,
    /// Time a client has to send the whole request body; past it the client
    /// gets 408 (`BFF_BODY_READ_TIMEOUT_MS`).
    pub body_read_timeout_ms: u64,
    /// Timeouts and the cap of client connections (`[connections]`).
    pub connections: ConnectionConfig,
    /// Log line format (`BFF_LOG_FORMAT`: `text` or `json`); default JSON
    /// in the prod profile, text in dev.
    pub log_format: LogFormat,
    /// mobile-bff only: JSON object `{"<sha256 of the query>": "<query>"}`; when set,
    /// only those operations run (`BFF_SAFELIST_FILE`).
    pub safelist_file: Option<PathBuf>,
    /// State shared by the replicas (`[redis]`, `BFF_REDIS_URL`); unset,
    /// each replica keeps its own.
    pub redis: RedisSettings,
    /// GraphQL subscriptions: caps, heartbeats, buffers (`[live]`).
    pub live: LiveConfig,
}

/// GraphQL subscriptions (`[live]`): what one client and the whole process
/// may hold open, and how the transports keep idle connections alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Subscriptions open at once on one WebSocket (an SSE or multipart
    /// response is one subscription).
    pub max_per_connection: usize,
    /// Subscriptions open at once in the process, every transport together.
    pub max_per_process: usize,
    /// Interval of heartbeats: graphql-transport-ws `ping`, SSE `:` comments,
    /// multipart `{}` parts. Proxies cut connections idle for ~30-60 s.
    pub heartbeat_ms: u64,
    /// Messages of one subscription waiting for a slow client; past it the
    /// subscription ends with a reason rather than buffering without bound.
    pub buffer: usize,
    /// Time a WebSocket client has to send `connection_init`.
    pub init_timeout_ms: u64,
}

pub const DEFAULT_LIVE_MAX_PER_CONNECTION: usize = 10;
pub const DEFAULT_LIVE_MAX_PER_PROCESS: usize = 10_000;
pub const DEFAULT_LIVE_HEARTBEAT_MS: u64 = 10_000;
pub const DEFAULT_LIVE_BUFFER: usize = 64;
pub const DEFAULT_LIVE_INIT_TIMEOUT_MS: u64 = 3_000;

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_per_connection: DEFAULT_LIVE_MAX_PER_CONNECTION,
            max_per_process: DEFAULT_LIVE_MAX_PER_PROCESS,
            heartbeat_ms: DEFAULT_LIVE_HEARTBEAT_MS,
            buffer: DEFAULT_LIVE_BUFFER,
            init_timeout_ms: DEFAULT_LIVE_INIT_TIMEOUT_MS,
        }
    }
}

/// Where the replicas share state. `Debug` hides a password in the URL.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` (`BFF_REDIS_URL`); unset: no Redis.
    pub url: Option<Url>,
    /// Bound of one Redis call; past it the replica's own state answers.
    pub timeout_ms: u64,
    /// Prepended to every key; default `<binary name>:`, so BFFs sharing
    /// one Redis keep apart.
    pub key_prefix: Option<String>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            timeout_ms: shared_state::DEFAULT_TIMEOUT_MS,
            key_prefix: None,
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.client_config() {
            Some(config) => config.fmt(f),
            None => f.write_str("RedisSettings(off)"),
        }
    }
}

impl RedisSettings {
    /// The client's configuration; `None` without a URL.
    pub fn client_config(&self) -> Option<shared_state::RedisConfig> {
        let url = self.url.clone()?;
        Some(shared_state::RedisConfig {
            url,
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            key_prefix: self
                .key_prefix
                .clone()
                .unwrap_or_else(|| format!("{}:", crate::binary_name())),
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            shared_state::RedisConfig::validate_url(url).map_err(|error| ConfigError::Invalid {
                key: "BFF_REDIS_URL (redis.url)".into(),
                reason: error.to_string(),
            })?;
        }
        check_timeout(self.timeout_ms, "redis.timeout_ms")
    }
}

/// Which audience the process is tuned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Developer conveniences on: GraphiQL and schema introspection.
    Dev,
    /// Nothing that helps explore the API from outside.
    #[default]
    Prod,
}

/// How bearer tokens are verified. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// HS256 shared secret, at least 32 bytes (`BFF_JWT_SECRET`). This,
    /// `secret_file` or `jwks_url` is required, only one of them.
    pub secret: Option<String>,
    /// A file holding the HS256 secret, e.g. a mounted Kubernetes Secret
    /// (`BFF_JWT_SECRET_FILE`); read at start, one trailing newline ignored,
    /// then it is `secret`.
    pub secret_file: Option<PathBuf>,
    /// JWKS endpoint for RS256/ES256 tokens (`BFF_JWKS_URL`): fetched at
    /// start, cached, refetched on an unknown `kid` (at most every
    /// `jwks_min_refresh_secs`). A token's own `jku`/`x5u` are never followed.
    pub jwks_url: Option<Url>,
    /// Accepted signature algorithms, pinned here and never taken from the
    /// token (`BFF_JWT_ALGORITHMS`, comma-separated). Default: HS256 with a
    /// secret, RS256 and ES256 with a JWKS.
    pub algorithms: Option<Vec<Algorithm>>,
    /// Least time between two JWKS fetches, in seconds.
    pub jwks_min_refresh_secs: u64,
    /// Required `iss` claim (`BFF_JWT_ISSUER`).
    pub issuer: String,
    /// Required `aud` claim (`BFF_JWT_AUDIENCE`).
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

/// Per-client request rate limit (a token bucket per client: the token's
/// subject when signed in, the client IP otherwise); `0` in either field
/// turns it off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained requests per second per client (`BFF_RATE_LIMIT_RPS`).
    pub rps: u32,
    /// Requests a client may send at once (the bucket's size) (`BFF_RATE_LIMIT_BURST`).
    pub burst: u32,
    /// Header a trusted reverse proxy puts the client IP in, e.g.
    /// `x-forwarded-for` (its right-most entry, the one the proxy added, is
    /// used) (`BFF_RATE_LIMIT_CLIENT_IP_HEADER`). Unset: the peer address.
    /// Only set it behind a proxy that always writes the header: otherwise
    /// clients choose their own IP.
    pub client_ip_header: Option<String>,
}

/// Abuse limits every GraphQL operation is checked against before it runs;
/// an operation over any of them is refused without a downstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphQlConfig {
    /// Deepest nesting of selections (fragments looked through).
    pub max_depth: usize,
    /// Highest estimated cost (fields, list fields weighted by `first`/`limit`).
    pub max_cost: usize,
    /// Most aliased fields in one operation.
    pub max_aliases: usize,
    /// Most fields selected at the operation's root.
    pub max_root_fields: usize,
    /// Most lexical tokens in the query text.
    pub max_tokens: usize,
    /// Largest query text in bytes.
    pub max_query_bytes: usize,
}

impl Default for GraphQlConfig {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_GRAPHQL_MAX_DEPTH,
            max_cost: DEFAULT_GRAPHQL_MAX_COST,
            max_aliases: DEFAULT_GRAPHQL_MAX_ALIASES,
            max_root_fields: DEFAULT_GRAPHQL_MAX_ROOT_FIELDS,
            max_tokens: DEFAULT_GRAPHQL_MAX_TOKENS,
            max_query_bytes: DEFAULT_GRAPHQL_MAX_QUERY_BYTES,
        }
    }
}

impl GraphQlConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let limits = [
            (self.max_depth, "graphql.max_depth"),
            (self.max_cost, "graphql.max_cost"),
            (self.max_aliases, "graphql.max_aliases"),
            (self.max_root_fields, "graphql.max_root_fields"),
            (self.max_tokens, "graphql.max_tokens"),
            (self.max_query_bytes, "graphql.max_query_bytes"),
        ];
        // 0 aliases is a sane policy; 0 of anything else would refuse every query.
        match limits
            .into_iter()
            .find(|(value, key)| *value == 0 && *key != "graphql.max_aliases")
        {
            Some((_, key)) => Err(ConfigError::Invalid {
                key: key.into(),
                reason: "must be greater than 0".into(),
            }),
            None => Ok(()),
        }
    }
}

/// Cross-origin access for browsers. Empty (the default): no CORS headers,
/// so browsers let no other origin read the answers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins such as `https://shop.example`
    /// (`BFF_CORS_ALLOWED_ORIGINS`, comma-separated).
    pub allowed_origins: Vec<String>,
}

impl CorsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for origin in &self.allowed_origins {
            let is_origin = Url::parse(origin).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.origin().ascii_serialization() == *origin
            });
            if !is_origin {
                return Err(ConfigError::Invalid {
                    key: "BFF_CORS_ALLOWED_ORIGINS (cors.allowed_origins)".into(),
                    reason: format!(
                        "`{origin}` is not an origin like https://app.example (scheme, host, optional port; no path, no `*`)"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// How long client connections may take and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Time to send a request's head: from the accept on a new connection,
    /// from its first byte on a kept-alive one (`BFF_HEADER_READ_TIMEOUT_MS`).
    pub header_read_timeout_ms: u64,
    /// Time a kept-alive connection may wait for its next request
    /// (`BFF_KEEP_ALIVE_TIMEOUT_MS`).
    pub keep_alive_timeout_ms: u64,
    /// Most connections open at once; more are closed on accept
    /// (`BFF_MAX_CONNECTIONS`).
    pub max_open: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
            keep_alive_timeout_ms: DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
            max_open: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ConnectionConfig {
    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn keep_alive_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.keep_alive_timeout_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (value, key) in [
            (
                self.header_read_timeout_ms,
                "BFF_HEADER_READ_TIMEOUT_MS (connections.header_read_timeout_ms)",
            ),
            (
                self.keep_alive_timeout_ms,
                "BFF_KEEP_ALIVE_TIMEOUT_MS (connections.keep_alive_timeout_ms)",
            ),
        ] {
            check_timeout(value, key)?;
        }
        if !(1..=MAX_MAX_CONNECTIONS).contains(&self.max_open) {
            return Err(ConfigError::Invalid {
                key: "BFF_MAX_CONNECTIONS (connections.max_open)".into(),
                reason: format!("must be between 1 and {MAX_MAX_CONNECTIONS}"),
            });
        }
        Ok(())
    }
}

/// A connection or body timeout: at least 1 ms, at most an hour.
fn check_timeout(value_ms: u64, key: &str) -> Result<(), ConfigError> {
    if (1..=MAX_CONNECTION_TIMEOUT_MS).contains(&value_ms) {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        key: key.into(),
        reason: format!("must be between 1 and {MAX_CONNECTION_TIMEOUT_MS} ms"),
    })
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The profile's default: JSON for log shippers in prod, text for a
    /// terminal in dev.
    pub fn of(profile: Profile) -> Self {
        match profile {
            Profile::Dev => LogFormat::Text,
            Profile::Prod => LogFormat::Json,
        }
    }
}

/// Why the configuration could not be loaded. Each message names the key
/// (environment variable and/or file key) and what is wrong with it; none
/// ever contains the JWT secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown environment variable {names} (known BFF_* variables: {known})")]
    UnknownEnvVar { names: String, known: String },
    #[error("environment variable {var} is not valid UTF-8")]
    NotUnicode { var: String },
    #[error("cannot read config file {} (named by BFF_CONFIG_FILE): {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {}, line {line}: {message}", path.display())]
    ParseFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{var}: {reason}")]
    InvalidEnv { var: &'static str, reason: String },
    #[error(
        "{KEY_SOURCES} name more than one key: set one, so that each token has exactly one way to verify"
    )]
    BothJwtKeySources,
    #[error("one of {KEY_SOURCES} is required: bearer tokens cannot be verified without a key")]
    MissingJwtSecret,
    #[error("cannot read the JWT secret file {} (BFF_JWT_SECRET_FILE): {source}", path.display())]
    ReadSecretFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the prod profile (BFF_PROFILE=prod, the default) points nowhere by default; set {}, or BFF_PROFILE=dev to run against devstack",
        missing.join(", ")
    )]
    MissingForProd { missing: Vec<String> },
    #[error(
        "the JWT secret (BFF_JWT_SECRET, BFF_JWT_SECRET_FILE) is too short: {len} bytes, at least {MIN_JWT_SECRET_BYTES} are required"
    )]
    ShortJwtSecret { len: usize },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// The settings that name a JWT key, in messages.
const KEY_SOURCES: &str = "BFF_JWT_SECRET (jwt.secret), BFF_JWT_SECRET_FILE (jwt.secret_file) or BFF_JWKS_URL (jwt.jwks_url)";

impl Config {
    /// Every setting at its default, listening where `defaults` says, the
    /// downstream services and token issuer at devstack's (the dev
    /// profile's defaults; `load` in the prod profile requires them set).
    /// Not validated: there is no default JWT key.
    pub fn new(defaults: Defaults) -> Self {
        Self {
            listen: defaults.listen,
            admin_listen: defaults.admin_listen,
            services: defaults.services,
            profile: Profile::default(),
            downstream: DownstreamConfig::default(),
            jwt: JwtConfig::default(),
            rate_limit: RateLimitConfig::default(),
            graphql: GraphQlConfig::default(),
            cors: CorsConfig::default(),
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            request_timeout_ms: defaults.request_timeout_ms,
            body_read_timeout_ms: DEFAULT_BODY_READ_TIMEOUT_MS,
            connections: ConnectionConfig::default(),
            log_format: LogFormat::of(Profile::default()),
            safelist_file: None,
            redis: RedisSettings::default(),
            live: LiveConfig::default(),
        }
    }

    /// Serde fills keys missing from the file from here; `load` then puts the
    /// BFF's own listen address in when the file has none, because serde's
    /// default function cannot take `Defaults`.
    fn placeholder() -> Self {
        Self::new(Defaults {
            listen: loopback(0),
            admin_listen: loopback(0),
            request_timeout_ms: 0,
            services: &[],
        })
    }

    /// Reads the process environment (only `BFF_*` variables), then `load`s.
    pub fn from_env(defaults: Defaults) -> Result<Self, ConfigError> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            // A name that is not UTF-8 cannot be one of ours.
            let Some(name) = name.to_str().filter(|name| name.starts_with(ENV_PREFIX)) else {
                continue;
            };
            let value = value.into_string().map_err(|_| ConfigError::NotUnicode {
                var: name.to_owned(),
            })?;
            vars.push((name.to_owned(), value));
        }
        Self::load(defaults, vars)
    }

    /// Builds and validates the configuration from `defaults`, the TOML file
    /// named by `BFF_CONFIG_FILE` (if any) and the given environment. Variables
    /// without the `BFF_` prefix are ignored; unknown `BFF_*` ones are errors.
    pub fn load<I>(defaults: Defaults, env: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        // Later duplicates win, as they would in a shell.
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        check_known(&env)?;

        let (mut config, file) = match env.get(ENV_CONFIG_FILE).filter(|path| !path.is_empty()) {
            Some(path) => Self::from_file(defaults, Path::new(path))?,
            None => (Self::new(defaults), toml::Table::new()),
        };
        for (name, value) in &env {
            config.apply_env(name, value)?;
        }
        let is_set = |var: &str, key: &str| {
            env.get(var).is_some_and(|value| !value.is_empty()) || has_key(&file, key)
        };
        if config.profile == Profile::Prod {
            config.check_prod_settings(is_set)?;
        }
        if !is_set(ENV_LOG_FORMAT, "log_format") {
            config.log_format = LogFormat::of(config.profile);
        }
        config.jwt.read_secret_file()?;
        config.validate()?;
        Ok(config)
    }

    /// The prod profile defaults nothing to devstack: every service URL the
    /// BFF calls, the token issuer and audience, and a key must be set.
    /// Names every missing one at once.
    fn check_prod_settings(&self, is_set: impl Fn(&str, &str) -> bool) -> Result<(), ConfigError> {
        let mut missing: Vec<String> = self
            .services
            .iter()
            .filter(|service| {
                !is_set(
                    service.url_env_var(),
                    &format!("downstream.{}.url", service.name()),
                )
            })
            .map(|service| service.url_env_var().to_owned())
            .collect();
        for (var, key) in [
            (ENV_JWT_ISSUER, "jwt.issuer"),
            (ENV_JWT_AUDIENCE, "jwt.audience"),
        ] {
            if !is_set(var, key) {
                missing.push(var.to_owned());
            }
        }
        let has_key = [
            (ENV_JWT_SECRET, "jwt.secret"),
            (ENV_JWT_SECRET_FILE, "jwt.secret_file"),
            (ENV_JWKS_URL, "jwt.jwks_url"),
        ]
        .into_iter()
        .any(|(var, key)| is_set(var, key));
        if !has_key {
            missing.push(format!(
                "one of {ENV_JWT_SECRET}, {ENV_JWT_SECRET_FILE} or {ENV_JWKS_URL}"
            ));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::MissingForProd { missing })
        }
    }

    /// The file's settings over the defaults, and the file's keys (to tell
    /// what was set).
    fn from_file(defaults: Defaults, path: &Path) -> Result<(Self, toml::Table), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        // toml's own Display quotes the offending source line, which could be
        // the secret's; report only the message and the line number.
        let parse_error = |error: toml::de::Error| ConfigError::ParseFile {
            path: path.to_owned(),
            line: error.span().map_or(0, |span| line_of(&text, span.start)),
            message: error.message().to_owned(),
        };
        let table: toml::Table = toml::from_str(&text).map_err(parse_error)?;
        let mut config: Self = toml::from_str(&text).map_err(parse_error)?;
        // Serde's default cannot see `defaults`: put the BFF's own in.
        config.services = defaults.services;
        if !table.contains_key("listen") {
            config.listen = defaults.listen;
        }
        if !table.contains_key("admin_listen") {
            config.admin_listen = defaults.admin_listen;
        }
        if !table.contains_key("request_timeout_ms") {
            config.request_timeout_ms = defaults.request_timeout_ms;
        }
        Ok((config, table))
    }

    /// Applies one known `BFF_*` variable (`check_known` ran first).
    fn apply_env(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        if let Some(service) = Service::ALL.into_iter().find(|s| s.url_env_var() == name) {
            self.downstream.service_mut(service).url = parse_url(service.url_env_var(), value)?;
            return Ok(());
        }
        match name {
            ENV_CONFIG_FILE => {} // already read
            ENV_LISTEN => {
                self.listen =
                    parse_value(ENV_LISTEN, value, "a socket address such as 127.0.0.1:4000")?
            }
            ENV_ADMIN_LISTEN => {
                self.admin_listen = parse_value(
                    ENV_ADMIN_LISTEN,
                    value,
                    "a socket address such as 0.0.0.0:9400",
                )?
            }
            ENV_PROFILE => {
                self.profile = match value.to_ascii_lowercase().as_str() {
                    "dev" => Profile::Dev,
                    "prod" => Profile::Prod,
                    _ => return Err(invalid_env(ENV_PROFILE, value, "`dev` or `prod`")),
                }
            }
            ENV_DOWNSTREAM_TIMEOUT_MS => {
                self.downstream.timeout_ms =
                    parse_value(ENV_DOWNSTREAM_TIMEOUT_MS, value, "milliseconds")?;
            }
            ENV_JWT_SECRET => self.jwt.secret = Some(value.to_owned()),
            ENV_JWT_SECRET_FILE => {
                self.jwt.secret_file = (!value.is_empty()).then(|| PathBuf::from(value));
            }
            ENV_JWKS_URL => {
                self.jwt.jwks_url = if value.is_empty() {
                    None
                } else {
                    Some(parse_url(ENV_JWKS_URL, value)?)
                };
            }
            ENV_JWT_ISSUER => self.jwt.issuer = value.to_owned(),
            ENV_JWT_AUDIENCE => self.jwt.audience = value.to_owned(),
            ENV_JWT_ALGORITHMS => {
                self.jwt.algorithms = if value.trim().is_empty() {
                    None
                } else {
                    let parsed: Result<Vec<Algorithm>, _> = value
                        .split(',')
                        .map(|name| name.trim().parse::<Algorithm>())
                        .collect();
                    Some(parsed.map_err(|_| {
                        invalid_env(ENV_JWT_ALGORITHMS, value, "a list such as RS256,ES256")
                    })?)
                };
            }
            ENV_RATE_LIMIT_RPS => {
                self.rate_limit.rps = parse_value(ENV_RATE_LIMIT_RPS, value, "a whole number")?;
            }
            ENV_RATE_LIMIT_BURST => {
                self.rate_limit.burst = parse_value(ENV_RATE_LIMIT_BURST, value, "a whole number")?;
            }
            ENV_RATE_LIMIT_CLIENT_IP_HEADER => {
                self.rate_limit.client_ip_header =
                    (!value.is_empty()).then(|| value.trim().to_ascii_lowercase());
            }
            ENV_CORS_ALLOWED_ORIGINS => {
                self.cors.allowed_origins = value
                    .split(',')
                    .map(str::trim)
                    .filter(|origin| !origin.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            ENV_BODY_LIMIT_BYTES => {
                self.body_limit_bytes = parse_value(ENV_BODY_LIMIT_BYTES, value, "bytes")?;
            }
            ENV_REQUEST_TIMEOUT_MS => {
                self.request_timeout_ms =
                    parse_value(ENV_REQUEST_TIMEOUT_MS, value, "milliseconds")?;
            }
            ENV_BODY_READ_TIMEOUT_MS => {
                self.body_read_timeout_ms =
                    parse_value(ENV_BODY_READ_TIMEOUT_MS, value, "milliseconds")?;
            }
            ENV_HEADER_READ_TIMEOUT_MS => {
                self.connections.header_read_timeout_ms =
                    parse_value(ENV_HEADER_READ_TIMEOUT_MS, value, "milliseconds")?;
            }
            ENV_KEEP_ALIVE_TIMEOUT_MS => {
                self.connections.keep_alive_timeout_ms =
                    parse_value(ENV_KEEP_ALIVE_TIMEOUT_MS, value, "milliseconds")?;
            }
            ENV_MAX_CONNECTIONS => {
                self.connections.max_open =
                    parse_value(ENV_MAX_CONNECTIONS, value, "a whole number")?;
            }
            ENV_LOG_FORMAT => {
                self.log_format = match value.to_ascii_lowercase().as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err(invalid_env(ENV_LOG_FORMAT, value, "`text` or `json`")),
                }
            }
            ENV_SAFELIST_FILE => {
                self.safelist_file = (!value.is_empty()).then(|| PathBuf::from(value));
            }
            ENV_REDIS_URL => {
                // Not quoted back in errors: it may hold a password.
                self.redis.url = if value.trim().is_empty() {
                    None
                } else {
                    Some(
                        Url::parse(value.trim()).map_err(|error| ConfigError::InvalidEnv {
                            var: ENV_REDIS_URL,
                            reason: format!("not a valid URL ({error})"),
                        })?,
                    )
                };
            }
            // `check_known` rejected everything else before we got here.
            _ => {}
        }
        Ok(())
    }

    /// Checks what serde cannot: a usable JWT secret, http(s) service URLs
    /// with a host, non-zero deadlines and limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.jwt.validate()?;
        self.graphql.validate()?;
        self.rate_limit.validate()?;
        self.cors.validate()?;
        self.connections.validate()?;
        self.redis.validate()?;
        check_timeout(
            self.body_read_timeout_ms,
            "BFF_BODY_READ_TIMEOUT_MS (body_read_timeout_ms)",
        )?;
        self.downstream
            .validate()
            .map_err(|invalid| ConfigError::Invalid {
                key: invalid.key,
                reason: invalid.reason,
            })?;
        for service in Service::ALL {
            let settings = self.downstream.service(service);
            let key = || {
                format!(
                    "{} (downstream.{}.url)",
                    service.url_env_var(),
                    service.name()
                )
            };
            check_http_url(&settings.url)
                .map_err(|reason| ConfigError::Invalid { key: key(), reason })?;
            if settings.timeout_ms == Some(0) {
                return Err(ConfigError::Invalid {
                    key: format!("downstream.{}.timeout_ms", service.name()),
                    reason: "must be greater than 0".into(),
                });
            }
        }
        let positive = [
            (
                self.downstream.timeout_ms == 0,
                "BFF_DOWNSTREAM_TIMEOUT_MS (downstream.timeout_ms)",
            ),
            (
                self.request_timeout_ms == 0,
                "BFF_REQUEST_TIMEOUT_MS (request_timeout_ms)",
            ),
            (
                self.body_limit_bytes == 0,
                "BFF_BODY_LIMIT_BYTES (body_limit_bytes)",
            ),
        ];
        if let Some((_, key)) = positive.into_iter().find(|(is_zero, _)| *is_zero) {
            return Err(ConfigError::Invalid {
                key: key.into(),
                reason: "must be greater than 0".into(),
            });
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.body_read_timeout_ms)
    }
}

impl JwtConfig {
    /// Reads `secret_file` into `secret` (one trailing newline dropped: the
    /// way `echo` and most editors write files).
    fn read_secret_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.secret_file else {
            return Ok(());
        };
        if self.secret.is_some() {
            return Err(ConfigError::BothJwtKeySources);
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadSecretFile {
            path: path.clone(),
            source,
        })?;
        let secret = text.strip_suffix('\n').unwrap_or(&text);
        let secret = secret.strip_suffix('\r').unwrap_or(secret);
        self.secret = Some(secret.to_owned());
        Ok(())
    }

    /// Where keys come from: the HS256 secret (present and long enough) or
    /// the JWKS URL; exactly one is set.
    pub fn key_source(&self) -> Result<KeySource<'_>, ConfigError> {
        match (&self.secret, &self.jwks_url) {
            (Some(_), Some(_)) => Err(ConfigError::BothJwtKeySources),
            (None, None) => Err(ConfigError::MissingJwtSecret),
            (None, Some(url)) => Ok(KeySource::Jwks(url)),
            (Some(secret), None) if secret.len() < MIN_JWT_SECRET_BYTES => {
                Err(ConfigError::ShortJwtSecret { len: secret.len() })
            }
            (Some(secret), None) => Ok(KeySource::Secret(secret)),
        }
    }

    /// The accepted algorithms: configured or the key source's default,
    /// checked to fit the key source (no HMAC with a JWKS, nothing but
    /// HS256 with a secret).
    pub fn validated_algorithms(&self) -> Result<Vec<Algorithm>, ConfigError> {
        let source = self.key_source()?;
        let (defaults, supported): (&[Algorithm], &[Algorithm]) = match source {
            KeySource::Secret(_) => (&DEFAULT_SECRET_ALGORITHMS, &DEFAULT_SECRET_ALGORITHMS),
            KeySource::Jwks(_) => (&DEFAULT_JWKS_ALGORITHMS, &SUPPORTED_JWKS_ALGORITHMS),
        };
        let algorithms = self.algorithms.clone().unwrap_or_else(|| defaults.to_vec());
        let invalid = |reason: String| ConfigError::Invalid {
            key: "BFF_JWT_ALGORITHMS (jwt.algorithms)".into(),
            reason,
        };
        if algorithms.is_empty() {
            return Err(invalid("must name at least one algorithm".into()));
        }
        if let Some(unsupported) = algorithms.iter().find(|alg| !supported.contains(alg)) {
            return Err(invalid(format!(
                "{unsupported:?} cannot be used with {}; supported: {supported:?}",
                match source {
                    KeySource::Secret(_) => "BFF_JWT_SECRET",
                    KeySource::Jwks(_) => "BFF_JWKS_URL",
                }
            )));
        }
        Ok(algorithms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.validated_algorithms()?;
        if let Some(url) = &self.jwks_url {
            check_http_url(url).map_err(|reason| ConfigError::Invalid {
                key: "BFF_JWKS_URL (jwt.jwks_url)".into(),
                reason,
            })?;
        }
        for (value, key) in [
            (&self.issuer, "BFF_JWT_ISSUER (jwt.issuer)"),
            (&self.audience, "BFF_JWT_AUDIENCE (jwt.audience)"),
        ] {
            if value.is_empty() {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    reason: "must not be empty".into(),
                });
            }
        }
        Ok(())
    }
}

/// Where the keys that verify bearer tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource<'a> {
    /// An HS256 shared secret.
    Secret(&'a str),
    /// A JWKS endpoint (RS256/ES256).
    Jwks(&'a Url),
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            secret: None,
            secret_file: None,
            jwks_url: None,
            issuer: DEV_JWT_ISSUER.into(),
            audience: DEV_JWT_AUDIENCE.into(),
            leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
            algorithms: None,
            jwks_min_refresh_secs: DEFAULT_JWKS_MIN_REFRESH_SECS,
        }
    }
}

impl fmt::Debug for JwtConfig {
    /// Configs get logged at start-up; the secret must not be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_file", &self.secret_file)
            .field("jwks_url", &self.jwks_url.as_ref().map(Url::as_str))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("algorithms", &self.algorithms)
            .field("jwks_min_refresh_secs", &self.jwks_min_refresh_secs)
            .finish()
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            rps: DEFAULT_RATE_LIMIT_RPS,
            burst: DEFAULT_RATE_LIMIT_BURST,
            client_ip_header: None,
        }
    }
}

impl RateLimitConfig {
    pub fn is_enabled(&self) -> bool {
        self.rps > 0 && self.burst > 0
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match &self.client_ip_header {
            Some(name) if http::HeaderName::from_bytes(name.as_bytes()).is_err() => {
                Err(ConfigError::Invalid {
                    key: "BFF_RATE_LIMIT_CLIENT_IP_HEADER (rate_limit.client_ip_header)".into(),
                    reason: format!("`{name}` is not a header name"),
                })
            }
            _ => Ok(()),
        }
    }
}

impl Profile {
    /// GraphiQL and introspection are served.
    pub fn is_dev(self) -> bool {
        self == Profile::Dev
    }
}

fn check_known(env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let service_vars = Service::ALL.map(Service::url_env_var);
    let is_known = |name: &str| ENV_VARS.contains(&name) || service_vars.contains(&name);
    let unknown: Vec<&str> = env
        .keys()
        .map(String::as_str)
        .filter(|name| !is_known(name))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut known: Vec<&str> = ENV_VARS.iter().copied().chain(service_vars).collect();
    known.sort_unstable();
    Err(ConfigError::UnknownEnvVar {
        names: unknown.join(", "),
        known: known.join(", "),
    })
}

/// Parses a non-secret value; the error quotes it so the operator sees the typo.
fn parse_value<T: FromStr>(
    var: &'static str,
    value: &str,
    expected: &str,
) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid_env(var, value, expected))
}

fn invalid_env(var: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::InvalidEnv {
        var,
        reason: format!("`{value}` is not {expected}"),
    }
}

/// URLs may carry credentials (`https://user:pass@host`), so errors say what
/// is wrong without quoting the value.
fn parse_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim()).map_err(|error| ConfigError::InvalidEnv {
        var,
        reason: format!("not a valid URL ({error})"),
    })?;
    check_http_url(&url).map_err(|reason| ConfigError::InvalidEnv { var, reason })?;
    Ok(url)
}

fn check_http_url(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "URL must use http or https, not `{}`",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err("URL has no host".into());
    }
    Ok(())
}

/// Whether the config file sets `dotted.key` (e.g. `downstream.user.url`).
fn has_key(file: &toml::Table, dotted: &str) -> bool {
    let mut table = file;
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        match (table.get(part), parts.peek()) {
            (Some(toml::Value::Table(inner)), Some(_)) => table = inner,
            (Some(_), None) => return true,
            _ => return false,
        }
    }
    false
}

/// 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
