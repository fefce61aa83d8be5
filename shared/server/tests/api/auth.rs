use std::time::Duration;

use bff_server::auth::AuthError;
use bff_server::config::JwtConfig;
use bff_server::{Authentication, JwtVerifier, Viewer, ViewerKind};
use devstack_services::{TokenKind, issue_dev_token};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::{
    AUDIENCE, ISSUER, SECRET, http, now, probe_routes, spawn_front_door, test_config, token,
    token_with, user_claims, verifier,
};

fn verify(token: &str) -> Result<Viewer, AuthError> {
    verifier(&test_config()).verify(token)
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

#[test]
fn a_valid_user_token_gives_a_viewer_with_roles() {
    let claims = with(user_claims("u-1"), "roles", json!(["admin", "support"]));
    let viewer = verify(&token(&claims)).unwrap();
    assert_eq!(
        viewer,
        Viewer {
            user_id: "u-1".into(),
            roles: vec!["admin".into(), "support".into()],
            kind: ViewerKind::User,
        }
    );
    assert!(viewer.has_role("admin"));
    assert!(!viewer.has_role("root"));
    assert_eq!(viewer.as_user(), Some("u-1"));
    assert_eq!(viewer.as_device(), None);
}

#[test]
fn roles_are_optional() {
    let viewer = verify(&token(&user_claims("u-2"))).unwrap();
    assert!(viewer.roles.is_empty());
}

#[test]
fn a_device_token_gives_a_device_viewer() {
    let token = issue_dev_token(
        SECRET,
        ISSUER,
        AUDIENCE,
        "dev-7",
        Duration::from_secs(60),
        TokenKind::Device,
    );
    let viewer = verify(&token).unwrap();
    assert_eq!(viewer.kind, ViewerKind::Device);
    assert_eq!(viewer.as_device(), Some("dev-7"));
    assert_eq!(viewer.as_user(), None);
}

#[test]
fn dev_tokens_for_users_verify() {
    let token = issue_dev_token(
        SECRET,
        ISSUER,
        AUDIENCE,
        "u-3",
        Duration::from_secs(60),
        TokenKind::User,
    );
    assert_eq!(verify(&token).unwrap().user_id, "u-3");
}

#[test]
fn an_expired_token_is_refused() {
    let claims = with(user_claims("u"), "exp", json!(now() - 120));
    assert_eq!(verify(&token(&claims)), Err(AuthError::Expired));
}

#[test]
fn clock_skew_within_the_leeway_is_tolerated() {
    let claims = with(user_claims("u"), "exp", json!(now() - 5));
    assert!(verify(&token(&claims)).is_ok());
}

#[test]
fn a_tampered_token_fails_its_signature() {
    let original = token(&user_claims("u-1"));
    let forged_payload = token(&user_claims("admin"));
    // Header and signature of one token, claims of another.
    let parts: Vec<&str> = original.split('.').collect();
    let forged: Vec<&str> = forged_payload.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], forged[1], parts[2]);
    assert_eq!(verify(&tampered), Err(AuthError::BadSignature));
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let other = token_with(
        Algorithm::HS256,
        "another-secret-that-is-also-long-enough-42",
        &user_claims("u"),
    );
    assert_eq!(verify(&other), Err(AuthError::BadSignature));
}

#[test]
fn another_hmac_algorithm_with_the_same_secret_is_refused() {
    let hs384 = token_with(Algorithm::HS384, SECRET, &user_claims("u"));
    assert_eq!(verify(&hs384), Err(AuthError::WrongAlgorithm));
}

#[test]
fn an_alg_none_token_is_refused() {
    let valid = token(&user_claims("u"));
    let payload = valid.split('.').nth(1).unwrap();
    // base64url of {"alg":"none","typ":"JWT"}
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    for unsigned in [
        format!("{none_header}.{payload}."),
        format!("{none_header}.{payload}"),
    ] {
        let error = verify(&unsigned).unwrap_err();
        assert!(
            matches!(error, AuthError::Malformed | AuthError::WrongAlgorithm),
            "{error:?}"
        );
    }
}

#[test]
fn the_wrong_issuer_is_refused() {
    let claims = with(user_claims("u"), "iss", json!("evil"));
    assert_eq!(verify(&token(&claims)), Err(AuthError::WrongIssuer));
}

#[test]
fn the_wrong_audience_is_refused() {
    let claims = with(user_claims("u"), "aud", json!("mobile"));
    assert_eq!(verify(&token(&claims)), Err(AuthError::WrongAudience));
}

#[test]
fn exp_iss_and_aud_are_required() {
    for claim in ["exp", "iss", "aud"] {
        let claims = without(user_claims("u"), claim);
        assert_eq!(
            verify(&token(&claims)),
            Err(AuthError::MissingClaim(claim.into())),
            "{claim}"
        );
    }
}

#[test]
fn a_token_not_valid_yet_is_refused() {
    let claims = with(user_claims("u"), "nbf", json!(now() + 3600));
    assert_eq!(verify(&token(&claims)), Err(AuthError::NotYetValid));
    let past = with(user_claims("u"), "nbf", json!(now() - 10));
    assert!(verify(&token(&past)).is_ok());
}

#[test]
fn malformed_claims_are_refused() {
    let cases = [
        with(user_claims("u"), "kind", json!("robot")),
        with(user_claims("u"), "roles", json!("admin")),
        with(user_claims("u"), "nbf", json!("tomorrow")),
        with(user_claims("u"), "sub", json!("")),
        without(user_claims("u"), "sub"),
    ];
    for claims in cases {
        assert_eq!(
            verify(&token(&claims)),
            Err(AuthError::BadClaims),
            "{claims}"
        );
    }
}

#[test]
fn garbage_is_malformed() {
    for garbage in ["", "abc", "a.b.c", "....."] {
        assert_eq!(verify(garbage), Err(AuthError::Malformed), "{garbage:?}");
    }
}

#[test]
fn the_verifier_needs_a_usable_secret() {
    let missing = JwtConfig::default();
    let error = JwtVerifier::from_config(&missing, &http()).unwrap_err();
    assert!(error.to_string().contains("BFF_JWT_SECRET"), "{error}");
    let short = JwtConfig {
        secret: Some("short".into()),
        ..JwtConfig::default()
    };
    assert!(JwtVerifier::from_config(&short, &http()).is_err());
    let debug = format!("{:?}", verifier(&test_config()));
    assert!(!debug.contains(SECRET), "{debug}");
}

#[test]
fn require_and_optional_viewer() {
    let viewer = Viewer {
        user_id: "u".into(),
        roles: vec![],
        kind: ViewerKind::User,
    };
    let signed_in = Authentication::Viewer(viewer.clone());
    assert_eq!(signed_in.require_viewer().unwrap(), &viewer);
    assert_eq!(signed_in.optional_viewer().unwrap(), Some(&viewer));
    assert_eq!(Authentication::Anonymous.optional_viewer().unwrap(), None);
    assert!(Authentication::Anonymous.require_viewer().is_err());
    let invalid = Authentication::Invalid(AuthError::Expired);
    assert!(invalid.optional_viewer().is_err());
    assert!(invalid.require_viewer().is_err());
}

// Over HTTP, through the middleware.

async fn whoami(authorization: Option<&str>) -> Value {
    let server = spawn_front_door(probe_routes(), &test_config()).await;
    let mut request = server.client.get(server.url("/whoami"));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn no_header_is_anonymous() {
    let body = whoami(None).await;
    assert_eq!(body["auth"], "anonymous");
    assert_eq!(body["user_id"], Value::Null);
}

#[tokio::test]
async fn a_user_token_sets_the_viewer_and_the_context_user() {
    let claims = with(user_claims("u-42"), "roles", json!(["beta"]));
    let body = whoami(Some(&format!("Bearer {}", token(&claims)))).await;
    assert_eq!(
        body["auth"],
        json!({ "viewer": { "user_id": "u-42", "roles": ["beta"], "kind": "user" } })
    );
    assert_eq!(body["user_id"], "u-42");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let body = whoami(Some(&format!("bearer {}", token(&user_claims("u-5"))))).await;
    assert_eq!(body["user_id"], "u-5");
}

#[tokio::test]
async fn a_device_token_does_not_set_a_user_id() {
    let token = issue_dev_token(
        SECRET,
        ISSUER,
        AUDIENCE,
        "dev-1",
        Duration::from_secs(60),
        TokenKind::Device,
    );
    let body = whoami(Some(&format!("Bearer {token}"))).await;
    assert_eq!(body["auth"]["viewer"]["kind"], "device");
    assert_eq!(body["user_id"], Value::Null);
}

#[tokio::test]
async fn an_invalid_token_is_recorded_not_rejected() {
    let expired = token(&with(user_claims("u"), "exp", json!(now() - 3600)));
    let body = whoami(Some(&format!("Bearer {expired}"))).await;
    assert_eq!(body["auth"]["invalid"], AuthError::Expired.to_string());
    assert_eq!(body["user_id"], Value::Null);

    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc"] {
        let body = whoami(Some(header)).await;
        assert_eq!(
            body["auth"]["invalid"],
            AuthError::MalformedHeader.to_string(),
            "{header}"
        );
    }
}

#[tokio::test]
async fn rest_handlers_answer_401_with_a_generic_message() {
    let server = spawn_front_door(probe_routes(), &test_config()).await;

    let anonymous = server
        .client
        .get(server.url("/private"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");

    let wrong_aud = token(&with(user_claims("u"), "aud", json!("other")));
    let invalid = server
        .client
        .get(server.url("/private"))
        .bearer_auth(wrong_aud)
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 401);
    assert_eq!(
        invalid.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let body: Value = invalid.json().await.unwrap();
    // The reason (wrong audience) stays in the debug log.
    assert_eq!(
        body,
        json!({ "error": { "code": "UNAUTHENTICATED", "message": "invalid token" } })
    );

    let ok = server
        .client
        .get(server.url("/private"))
        .bearer_auth(token(&user_claims("u-9")))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap(), json!({ "hello": "u-9" }));
}

/// Verified tokens are remembered (by their exact text) to skip the
/// signature check, but never past their `exp`, and a token that differs in
/// any byte is checked in full.
#[test]
fn a_remembered_token_is_refused_once_it_expires() {
    let mut config = test_config();
    config.jwt.leeway_secs = 0;
    let verifier = verifier(&config);
    let remembered = token(&with(user_claims("u-1"), "exp", json!(now() + 1)));
    assert_eq!(verifier.verify(&remembered).unwrap().user_id, "u-1");
    assert_eq!(verifier.verify(&remembered).unwrap().user_id, "u-1");

    let forged = token(&user_claims("admin"));
    let parts: Vec<&str> = remembered.split('.').collect();
    let forged: Vec<&str> = forged.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], forged[1], parts[2]);
    assert!(verifier.verify(&tampered).is_err());

    std::thread::sleep(Duration::from_millis(2_100));
    assert_eq!(verifier.verify(&remembered), Err(AuthError::Expired));
}
