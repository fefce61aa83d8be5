//! Bearer-token authentication: who is calling, from a verified JWT.
//!
//! The middleware never rejects a request itself: it records an
//! [`Authentication`] in the request extensions and each BFF decides what an
//! anonymous or invalid caller may do (GraphQL: an `UNAUTHENTICATED` error;
//! REST: 401 with `WWW-Authenticate: Bearer`).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use downstream::RequestContext;
use downstream::http::HttpClient;
use http::request::Parts;
use http::{HeaderMap, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{ConfigError, JwtConfig, KeySource};
use crate::error::BffError;

/// Deadline of one JWKS fetch.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The claim value that marks a device token.
const DEVICE_KIND: &str = "device";

/// The verified caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Viewer {
    /// The token's `sub`: the user id, or for a device viewer the device id.
    pub user_id: String,
    /// The token's optional `roles` array.
    pub roles: Vec<String>,
    pub kind: ViewerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewerKind {
    /// A person signed in to an app.
    User,
    /// A device (`"kind": "device"` in the token).
    Device,
}

impl Viewer {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The authorization check for handlers and resolvers (see also
    /// `graphql::RoleGuard`): FORBIDDEN unless the viewer holds `role`.
    pub fn require_role(&self, role: &str) -> Result<(), BffError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(BffError::Forbidden(format!(
                "the `{role}` role is required"
            )))
        }
    }

    /// The user id, unless the viewer is a device.
    pub fn as_user(&self) -> Option<&str> {
        (self.kind == ViewerKind::User).then_some(self.user_id.as_str())
    }

    /// The device id, if the viewer is a device.
    pub fn as_device(&self) -> Option<&str> {
        (self.kind == ViewerKind::Device).then_some(self.user_id.as_str())
    }
}

/// Why a bearer token was refused. The variants are precise for debug logs;
/// clients only ever see "invalid token" (`BffError::InvalidToken`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header is not `Bearer <token>`")]
    MalformedHeader,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is not signed with an accepted algorithm")]
    WrongAlgorithm,
    #[error("the token's key id (kid) is missing or not in the JWKS")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    #[error("the token's audience is not accepted")]
    WrongAudience,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("the token's claims are malformed (sub, roles or kind)")]
    BadClaims,
    #[error("the token is longer than the accepted maximum")]
    TooLong,
}

impl AuthError {
    /// The one message clients get, whatever the reason.
    pub const CLIENT_MESSAGE: &str = "invalid token";
}

/// What the auth middleware found out about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// No `Authorization` header.
    Anonymous,
    Viewer(Viewer),
    /// A token was sent and refused; callers should not fall back to anonymous.
    Invalid(AuthError),
}

impl Authentication {
    pub fn viewer(&self) -> Option<&Viewer> {
        match self {
            Authentication::Viewer(viewer) => Some(viewer),
            _ => None,
        }
    }

    /// The viewer, for operations that need one.
    pub fn require_viewer(&self) -> Result<&Viewer, BffError> {
        match self {
            Authentication::Viewer(viewer) => Ok(viewer),
            Authentication::Anonymous => Err(BffError::Unauthenticated),
            Authentication::Invalid(error) => Err(BffError::InvalidToken(error.clone())),
        }
    }

    /// The viewer if there is one, for operations open to anonymous callers.
    /// A refused token is still an error: a client that meant to sign in
    /// should learn its token is bad rather than get anonymous results.
    pub fn optional_viewer(&self) -> Result<Option<&Viewer>, BffError> {
        match self {
            Authentication::Viewer(viewer) => Ok(Some(viewer)),
            Authentication::Anonymous => Ok(None),
            Authentication::Invalid(error) => Err(BffError::InvalidToken(error.clone())),
        }
    }
}

/// Extracts what the auth middleware recorded. Rejects with 500 when the
/// middleware is not installed: that is a wiring bug, not the client's fault.
impl<S: Send + Sync> FromRequestParts<S> for Authentication {
    type Rejection = BffError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Authentication>()
            .cloned()
            .ok_or_else(|| {
                BffError::internal("Authentication extractor used without the auth middleware")
            })
    }
}

/// Verifies bearer tokens (RFC 8725): signature with a key from the
/// configured source only (an HS256 secret, or a JWKS fetched from the
/// configured URL; a token's `jku`, `x5u` or embedded keys are never used),
/// algorithm from the configured list only, `exp`, `iss`, `aud` and `sub`
/// required, `nbf` checked, with a small clock leeway.
#[derive(Clone)]
pub struct JwtVerifier {
    /// Issuer, audience, required claims, leeway; one per accepted algorithm.
    validations: Vec<(Algorithm, Validation)>,
    algorithms: Vec<Algorithm>,
    keys: KeySet,
    /// Tokens verified lately, by their exact text (see [`VERIFIED_TOKEN_TTL`]).
    verified: moka::sync::Cache<String, Verified, downstream::IdHasher>,
}

/// How long a verified token is trusted without checking it again (never
/// past its `exp`). Verifying the HS256 signature and claims was ~2.5% of
/// the instructions of a dashboard request; the same token comes with every
/// request of a session. Like Envoy's `jwt_authn` cache, a key removed from
/// the JWKS stops being honoured for cached tokens only after this long.
const VERIFIED_TOKEN_TTL: Duration = Duration::from_secs(60);
/// The verified-token cache is bounded by the bytes of token text it
/// holds, not by count, so large tokens cannot make it large.
const VERIFIED_TOKENS_BYTES: u64 = 16 * 1024 * 1024;

/// The longest bearer token accepted, in bytes. Real access tokens are well
/// under 2 KiB; a longer one is refused before any decoding, so a signed
/// 100 KB token costs neither a signature check nor cache space.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

#[derive(Clone)]
struct Verified {
    viewer: Viewer,
    /// Unix seconds: the token's `exp`.
    expires: u64,
}

#[derive(Clone)]
enum KeySet {
    Secret(DecodingKey),
    Jwks(Arc<Jwks>),
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.algorithms)
            .field("issuer", &self.validations.first().map(|(_, v)| &v.iss))
            .field("audience", &self.validations.first().map(|(_, v)| &v.aud))
            .finish_non_exhaustive()
    }
}

/// The claims we read. jsonwebtoken checks `exp`, `nbf`, `iss` and `aud`
/// itself; they are declared here only where their type matters to us.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    roles: Option<Vec<String>>,
    kind: Option<String>,
    /// jsonwebtoken skips an `nbf` it cannot parse as a number; we refuse it.
    #[serde(rename = "nbf")]
    _nbf: Option<serde_json::Number>,
    /// Required and checked by jsonwebtoken (which reports it missing);
    /// read to bound the cache.
    exp: Option<u64>,
}

impl JwtVerifier {
    /// A JWKS source starts fetching its keys at once when called inside a
    /// tokio runtime (otherwise on the first token), with `http`: the
    /// process's one HTTP client, the one its downstream calls use
    /// ([`downstream::http::build_http_client`]).
    pub fn from_config(config: &JwtConfig, http: &HttpClient) -> Result<Self, ConfigError> {
        let algorithms = config.validated_algorithms()?;
        let mut validation = Validation::new(algorithms[0]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        // Without these in the required set jsonwebtoken would accept a token
        // that simply omits `iss` or `aud`.
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = config.leeway_secs;
        let keys = match config.key_source()? {
            KeySource::Secret(secret) => {
                KeySet::Secret(DecodingKey::from_secret(secret.as_bytes()))
            }
            KeySource::Jwks(url) => {
                let jwks = Arc::new(Jwks::new(
                    url.clone(),
                    algorithms.clone(),
                    http.clone(),
                    Duration::from_secs(config.jwks_min_refresh_secs),
                ));
                if tokio::runtime::Handle::try_current().is_ok() {
                    let initial = Arc::clone(&jwks);
                    tokio::spawn(async move { initial.refresh().await });
                }
                KeySet::Jwks(jwks)
            }
        };
        let validations = algorithms
            .iter()
            .map(|algorithm| {
                let mut validation = validation.clone();
                validation.algorithms = vec![*algorithm];
                (*algorithm, validation)
            })
            .collect();
        let verified = moka::sync::Cache::builder()
            .max_capacity(VERIFIED_TOKENS_BYTES)
            .weigher(|token: &String, _: &Verified| u32::try_from(token.len()).unwrap_or(u32::MAX))
            .time_to_live(VERIFIED_TOKEN_TTL)
            .build_with_hasher(downstream::IdHasher::default());
        Ok(Self {
            validations,
            algorithms,
            keys,
            verified,
        })
    }

    /// The viewer a token stands for, or why it is refused, with the keys
    /// at hand (a JWKS is not refetched; see [`JwtVerifier::verify_fresh`]).
    pub fn verify(&self, token: &str) -> Result<Viewer, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLong);
        }
        if let Some(verified) = self.verified.get(token)
            && verified.expires > jsonwebtoken::get_current_timestamp()
        {
            return Ok(verified.viewer);
        }
        let (viewer, expires) = self.verify_signed(token)?;
        if let Some(expires) = expires {
            let verified = Verified {
                viewer: viewer.clone(),
                expires,
            };
            self.verified.insert(token.to_owned(), verified);
        }
        Ok(viewer)
    }

    /// [`JwtVerifier::verify`] without the cache; also the token's `exp`.
    fn verify_signed(&self, token: &str) -> Result<(Viewer, Option<u64>), AuthError> {
        // Check the header first so a wrong algorithm is told apart from a bad
        // signature in the logs; the library enforces the same pin again.
        let header = jsonwebtoken::decode_header(token).map_err(|error| {
            tracing::debug!(%error, "undecodable token header");
            AuthError::Malformed
        })?;
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthError::WrongAlgorithm);
        }
        let data = match &self.keys {
            KeySet::Secret(key) => self.decode(token, key, header.alg)?,
            KeySet::Jwks(jwks) => {
                let kid = header.kid.as_deref().ok_or(AuthError::UnknownKey)?;
                let keys = jwks.keys.read().unwrap_or_else(PoisonError::into_inner);
                let (key, alg) = keys.get(kid).ok_or(AuthError::UnknownKey)?;
                // A key serves its own algorithm only.
                if *alg != header.alg {
                    return Err(AuthError::WrongAlgorithm);
                }
                self.decode(token, key, *alg)?
            }
        };
        let claims = data.claims;
        let kind = match claims.kind.as_deref() {
            None | Some("user") => ViewerKind::User,
            Some(DEVICE_KIND) => ViewerKind::Device,
            Some(_) => return Err(AuthError::BadClaims),
        };
        // `sub` goes downstream as an id (paths, `x-user-id`): one that
        // could not be sent there names no viewer.
        if !downstream::is_valid_id(&claims.sub) {
            return Err(AuthError::BadClaims);
        }
        let viewer = Viewer {
            user_id: claims.sub,
            roles: claims.roles.unwrap_or_default(),
            kind,
        };
        Ok((viewer, claims.exp))
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
    ) -> Result<jsonwebtoken::TokenData<Claims>, AuthError> {
        let (_, validation) = self
            .validations
            .iter()
            .find(|(accepted, _)| *accepted == algorithm)
            .ok_or(AuthError::WrongAlgorithm)?;
        jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|error| auth_error(error.into_kind()))
    }

    /// Like [`JwtVerifier::verify`], but a token signed with a key the
    /// cached JWKS lacks (a rotation) refetches the JWKS first, at most
    /// once per `jwks_min_refresh_secs`.
    pub async fn verify_fresh(&self, token: &str) -> Result<Viewer, AuthError> {
        match (self.verify(token), &self.keys) {
            (Err(AuthError::UnknownKey), KeySet::Jwks(jwks)) => {
                jwks.refresh().await;
                self.verify(token)
            }
            (result, _) => result,
        }
    }

    /// [`JwtVerifier::verify_fresh`], and when the token expires (its `exp`,
    /// seconds since the epoch): a long-lived subscription ends then.
    pub async fn verify_until(&self, token: &str) -> Result<(Viewer, Option<u64>), AuthError> {
        let viewer = self.verify_fresh(token).await?;
        // Verified just now, so this only reads the claim back.
        let expires = self.verify_signed(token).ok().and_then(|(_, exp)| exp);
        Ok((viewer, expires))
    }

    /// Reads `Authorization: Bearer <token>` from `headers` (keys at hand).
    pub fn authenticate(&self, headers: &HeaderMap) -> Authentication {
        match bearer_token(headers) {
            Ok(None) => Authentication::Anonymous,
            Ok(Some(token)) => self.verify(token).into(),
            Err(error) => Authentication::Invalid(error),
        }
    }

    /// Like [`JwtVerifier::authenticate`], refetching a rotated JWKS.
    pub async fn authenticate_fresh(&self, headers: &HeaderMap) -> Authentication {
        match bearer_token(headers) {
            Ok(None) => Authentication::Anonymous,
            Ok(Some(token)) => self.verify_fresh(token).await.into(),
            Err(error) => Authentication::Invalid(error),
        }
    }
}

impl From<Result<Viewer, AuthError>> for Authentication {
    fn from(result: Result<Viewer, AuthError>) -> Self {
        match result {
            Ok(viewer) => Authentication::Viewer(viewer),
            Err(error) => Authentication::Invalid(error),
        }
    }
}

/// The bearer token of `headers`, `None` without an `Authorization` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // Two Authorization headers are ambiguous: refuse rather than pick one.
    if values.next().is_some() {
        return Err(AuthError::MalformedHeader);
    }
    value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .map(Some)
        .ok_or(AuthError::MalformedHeader)
}

/// Keys from a JWKS endpoint, by `kid`.
struct Jwks {
    url: Url,
    algorithms: Vec<Algorithm>,
    http: HttpClient,
    keys: RwLock<HashMap<String, (DecodingKey, Algorithm)>>,
    /// When the last fetch started; held during a fetch, so concurrent
    /// requests with a new `kid` wait for one fetch instead of each making one.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refresh: Duration,
}

impl Jwks {
    /// `http` follows no redirect: the configured URL is the only place
    /// keys come from.
    fn new(url: Url, algorithms: Vec<Algorithm>, http: HttpClient, min_refresh: Duration) -> Self {
        Self {
            url,
            algorithms,
            http,
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            min_refresh,
        }
    }

    /// Refetches the key set unless the last fetch is too recent. A failed
    /// fetch keeps the keys we had.
    async fn refresh(&self) {
        let mut last_fetch = self.last_fetch.lock().await;
        if last_fetch.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return;
        }
        *last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS fetched");
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
            }
            Err(error) => tracing::warn!(%error, "JWKS fetch failed; keeping the keys we had"),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
        let response = self
            .http
            .get(self.url.clone())
            // The shared client has no overall timeout (downstream calls
            // keep their own deadlines): this one bounds the fetch, body
            // included.
            .timeout(JWKS_FETCH_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| error.without_url().to_string())?;
        let set: JwkSet = response
            .json()
            .await
            .map_err(|error| error.without_url().to_string())?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let Some(algorithm) = jwk_algorithm(jwk).filter(|alg| self.algorithms.contains(alg))
            else {
                tracing::debug!(%kid, "JWKS key skipped: not for an accepted algorithm");
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, (key, algorithm));
                }
                Err(error) => tracing::warn!(%kid, %error, "JWKS key skipped: unusable"),
            }
        }
        Ok(keys)
    }
}

/// The one algorithm a JWKS key may verify: RSA keys RS256, P-256 keys
/// ES256, declared `alg` permitting. Symmetric (`oct`) keys never: a JWKS
/// is public.
fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    let declared = jwk.common.key_algorithm.map(|alg| format!("{alg:?}"));
    match declared {
        Some(declared) if declared != format!("{algorithm:?}") => None,
        _ => Some(algorithm),
    }
}

fn auth_error(kind: ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => AuthError::WrongAlgorithm,
        // The header decoded before, so a JSON error here is in the claims.
        ErrorKind::Json(_) => AuthError::BadClaims,
        _ => AuthError::Malformed,
    }
}

/// Middleware: records an [`Authentication`] in the request extensions and,
/// for a user viewer, the user id in the [`RequestContext`] (so downstream
/// calls send `x-user-id`). Install it inside the request-context middleware.
pub async fn authenticate(
    State(verifier): State<Arc<JwtVerifier>>,
    mut request: Request,
    next: Next,
) -> Response {
    authenticate_request(&verifier, &mut request).await;
    next.run(request).await
}

/// What [`authenticate`] does to a request, for a middleware that does more.
pub async fn authenticate_request(verifier: &JwtVerifier, request: &mut Request) {
    let authentication = verifier.authenticate_fresh(request.headers()).await;
    match &authentication {
        Authentication::Invalid(reason) => tracing::debug!(%reason, "bearer token refused"),
        Authentication::Viewer(viewer) => {
            if let (Some(user_id), Some(context)) = (
                viewer.as_user(),
                request.extensions_mut().get_mut::<RequestContext>(),
            ) {
                context.user_id = Some(user_id.to_owned());
            }
        }
        Authentication::Anonymous => {}
    }
    request.extensions_mut().insert(authentication);
}
