//! Signed tokens for local development and tests: what devstack prints
//! for developers and what the tests send. Never for production issuance:
//! the BFFs only verify tokens.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// Whom a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `sub` is a user id.
    User,
    /// `sub` is a device id; the token carries `"kind": "device"`.
    Device,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
}

/// An HS256 token for `sub` signed with `secret`, valid for `ttl`.
pub fn issue_dev_token(
    secret: &str,
    issuer: &str,
    audience: &str,
    sub: &str,
    ttl: Duration,
    kind: TokenKind,
) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub,
        iss: issuer,
        aud: audience,
        iat: now,
        exp: now.saturating_add(ttl.as_secs()),
        kind: (kind == TokenKind::Device).then_some("device"),
    };
    // Serialising these plain fields and HMAC-signing cannot fail.
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256-signing plain string and number claims cannot fail")
}
