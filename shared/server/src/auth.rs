//! Bearer-token authentication: who is calling, from a verified JWT.
//!
//! The middleware never rejects a request itself: it records an
//! [`Authentication`] in the request extensions and each BFF decides what an
//! anonymous or invalid caller may do (GraphQL: an `UNAUTHENTICATED` error;
//! REST: 401 with `WWW-Authenticate: Bearer`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use downstream::RequestContext;
use http::request::Parts;
use http::{HeaderMap, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, JwtConfig};
use crate::error::BffError;

/// The only algorithm accepted. Pinned here, never taken from the token, so
/// `alg: none` or an algorithm switch cannot bypass the signature check.
const ALGORITHM: Algorithm = Algorithm::HS256;

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
    #[error("the token is not signed with HS256")]
    WrongAlgorithm,
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

/// Verifies HS256 bearer tokens against one secret, issuer and audience.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithm", &ALGORITHM)
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
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
}

impl JwtVerifier {
    pub fn from_config(config: &JwtConfig) -> Result<Self, ConfigError> {
        let secret = config.validated_secret()?;
        if config.jwks_url.is_some() {
            tracing::warn!("BFF_JWKS_URL is set but not supported yet: only HS256 tokens verify");
        }
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        // Without these in the required set jsonwebtoken would accept a token
        // that simply omits `iss` or `aud`.
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = config.leeway_secs;
        Ok(Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        })
    }

    /// The viewer a token stands for, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Viewer, AuthError> {
        // Check the header first so a wrong algorithm is told apart from a bad
        // signature in the logs; the library enforces the same pin again.
        let header = jsonwebtoken::decode_header(token).map_err(|error| {
            tracing::debug!(%error, "undecodable token header");
            AuthError::Malformed
        })?;
        if header.alg != ALGORITHM {
            return Err(AuthError::WrongAlgorithm);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| auth_error(error.into_kind()))?;
        let claims = data.claims;
        let kind = match claims.kind.as_deref() {
            None | Some("user") => ViewerKind::User,
            Some(DEVICE_KIND) => ViewerKind::Device,
            Some(_) => return Err(AuthError::BadClaims),
        };
        if claims.sub.is_empty() {
            return Err(AuthError::BadClaims);
        }
        Ok(Viewer {
            user_id: claims.sub,
            roles: claims.roles.unwrap_or_default(),
            kind,
        })
    }

    /// Reads `Authorization: Bearer <token>` from `headers`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Authentication {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Authentication::Anonymous;
        };
        // Two Authorization headers are ambiguous: refuse rather than pick one.
        if values.next().is_some() {
            return Authentication::Invalid(AuthError::MalformedHeader);
        }
        let token = value
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        match token {
            None => Authentication::Invalid(AuthError::MalformedHeader),
            Some(token) => match self.verify(token) {
                Ok(viewer) => Authentication::Viewer(viewer),
                Err(error) => Authentication::Invalid(error),
            },
        }
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
    let authentication = verifier.authenticate(request.headers());
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
    next.run(request).await
}

/// Claims of a token made by [`issue_dev_token`].
#[derive(Serialize)]
struct DevClaims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
}

/// A signed HS256 token for `sub`, valid for `ttl`: what devstack prints for
/// developers and what tests send. Not for production token issuance.
pub fn issue_dev_token(
    secret: &str,
    issuer: &str,
    audience: &str,
    sub: &str,
    ttl: Duration,
    kind: ViewerKind,
) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = DevClaims {
        sub,
        iss: issuer,
        aud: audience,
        iat: now,
        exp: now.saturating_add(ttl.as_secs()),
        kind: (kind == ViewerKind::Device).then_some(DEVICE_KIND),
    };
    // Serialising these plain fields and HMAC-signing cannot fail.
    jsonwebtoken::encode(
        &Header::new(ALGORITHM),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256-signing plain string and number claims cannot fail")
}
