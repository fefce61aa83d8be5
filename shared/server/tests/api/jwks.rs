//! RFC 8725 hardening: leeway edges, `jku`/`x5u` never followed, and
//! RS256/ES256 keys from a JWKS endpoint (cached, refetched on an unknown
//! `kid` at most once per interval, rotation).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bff_server::JwtVerifier;
use bff_server::auth::AuthError;
use bff_server::config::JwtConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::helpers::{
    AUDIENCE, ISSUER, SECRET, TestServer, http, now, spawn, test_config, token, user_claims,
    verifier,
};

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn verify(token: &str) -> Result<bff_server::Viewer, AuthError> {
    verifier(&test_config()).verify(token)
}

#[test]
fn the_leeway_is_30_seconds_on_exp() {
    let expired_29 = with(user_claims("u"), "exp", json!(now() - 29));
    assert!(verify(&token(&expired_29)).is_ok());
    let expired_31 = with(user_claims("u"), "exp", json!(now() - 31));
    assert_eq!(verify(&token(&expired_31)), Err(AuthError::Expired));
}

#[test]
fn the_leeway_is_30_seconds_on_nbf() {
    let soon = with(user_claims("u"), "nbf", json!(now() + 29));
    assert!(verify(&token(&soon)).is_ok());
    let later = with(user_claims("u"), "nbf", json!(now() + 31));
    assert_eq!(verify(&token(&later)), Err(AuthError::NotYetValid));
}

/// A P-256 key pair: signs ES256 tokens, and its public half as a JWK.
struct EcKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl EcKey {
    fn generate(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self {
            kid: kid.into(),
            pkcs8: pkcs8.as_ref().to_vec(),
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    /// `{"kty":"EC","crv":"P-256",...}`; the point is 0x04 ‖ x ‖ y.
    fn jwk(&self) -> Value {
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&self.public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&self.public[33..65]),
        })
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(claims, |_| {})
    }

    fn sign_with(&self, claims: &Value, tweak: impl FnOnce(&mut Header)) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        tweak(&mut header);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }
}

/// A tiny identity provider: serves whatever key set it is given, counting fetches.
struct Idp {
    server: TestServer,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl Idp {
    async fn serving(keys: &[&EcKey]) -> Self {
        let set = Arc::new(Mutex::new(Value::Null));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&set), Arc::clone(&fetches));
        let router = Router::new().route(
            "/jwks.json",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().unwrap().clone();
                async move { axum::Json(body) }
            }),
        );
        let idp = Self {
            server: spawn(router).await,
            keys: set,
            fetches,
        };
        idp.serve(keys);
        idp
    }

    fn serve(&self, keys: &[&EcKey]) {
        let keys: Vec<Value> = keys.iter().map(|key| key.jwk()).collect();
        *self.keys.lock().unwrap() = json!({ "keys": keys });
    }

    fn url(&self) -> String {
        self.server.url("/jwks.json")
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn config(&self, min_refresh_secs: u64) -> JwtConfig {
        JwtConfig {
            jwks_url: Some(self.url().parse().unwrap()),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_min_refresh_secs: min_refresh_secs,
            ..JwtConfig::default()
        }
    }
}

/// Waits for the fetch the verifier starts on its own to be done: until a
/// token signed with `served` (a key the set holds) verifies with the keys
/// at hand. Counting the IdP's fetches alone raced with the verifier
/// storing the keys (a test could then see an extra fetch).
async fn started(config: &JwtConfig, idp: &Idp, served: &EcKey) -> JwtVerifier {
    let verifier = JwtVerifier::from_config(config, &http()).unwrap();
    let probe = served.sign(&user_claims("probe"));
    for _ in 0..500 {
        if verifier.verify(&probe).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(verifier.verify(&probe).is_ok(), "keys not loaded at start");
    assert_eq!(idp.fetches(), 1, "one JWKS fetch at start");
    verifier
}

#[tokio::test]
async fn es256_tokens_verify_with_keys_from_the_jwks() {
    let key = EcKey::generate("k1");
    let idp = Idp::serving(&[&key]).await;
    let verifier = started(&idp.config(60), &idp, &key).await;
    let viewer = verifier
        .verify_fresh(&key.sign(&user_claims("u-7")))
        .await
        .unwrap();
    assert_eq!(viewer.user_id, "u-7");
    // Cached: many tokens, no more fetches.
    for _ in 0..5 {
        assert!(
            verifier
                .verify_fresh(&key.sign(&user_claims("u")))
                .await
                .is_ok()
        );
    }
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn tampered_signatures_wrong_kids_and_claims_are_refused() {
    let key = EcKey::generate("k1");
    let idp = Idp::serving(&[&key]).await;
    let verifier = started(&idp.config(60), &idp, &key).await;

    let original = key.sign(&user_claims("u-1"));
    let (rest, signature) = original.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 1;
    let tampered = format!("{rest}.{}", URL_SAFE_NO_PAD.encode(bytes));
    assert_eq!(
        verifier.verify_fresh(&tampered).await,
        Err(AuthError::BadSignature)
    );

    let wrong_kid = key.sign_with(&user_claims("u"), |header| header.kid = Some("nope".into()));
    assert_eq!(
        verifier.verify_fresh(&wrong_kid).await,
        Err(AuthError::UnknownKey)
    );
    let no_kid = key.sign_with(&user_claims("u"), |header| header.kid = None);
    assert_eq!(
        verifier.verify_fresh(&no_kid).await,
        Err(AuthError::UnknownKey)
    );

    // Another key under a known kid: its signature does not verify.
    let impostor = EcKey::generate("k1");
    assert_eq!(
        verifier
            .verify_fresh(&impostor.sign(&user_claims("u")))
            .await,
        Err(AuthError::BadSignature)
    );

    let mut no_aud = user_claims("u");
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        verifier.verify_fresh(&key.sign(&no_aud)).await,
        Err(AuthError::MissingClaim("aud".into()))
    );
    let future = with(user_claims("u"), "nbf", json!(now() + 3600));
    assert_eq!(
        verifier.verify_fresh(&key.sign(&future)).await,
        Err(AuthError::NotYetValid)
    );
    let expired = with(user_claims("u"), "exp", json!(now() - 31));
    assert_eq!(
        verifier.verify_fresh(&key.sign(&expired)).await,
        Err(AuthError::Expired)
    );
}

#[tokio::test]
async fn a_rotated_key_is_accepted_after_one_refetch() {
    let old = EcKey::generate("2026-10");
    let new = EcKey::generate("2026-11");
    let idp = Idp::serving(&[&old]).await;
    let verifier = started(&idp.config(0), &idp, &old).await;
    assert!(
        verifier
            .verify_fresh(&old.sign(&user_claims("u")))
            .await
            .is_ok()
    );

    idp.serve(&[&new]);
    let viewer = verifier
        .verify_fresh(&new.sign(&user_claims("u-new")))
        .await
        .unwrap();
    assert_eq!(viewer.user_id, "u-new");
    assert_eq!(idp.fetches(), 2);
    // The old key is gone with the old set.
    assert_eq!(
        verifier.verify_fresh(&old.sign(&user_claims("u"))).await,
        Err(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let old = EcKey::generate("old");
    let new = EcKey::generate("new");
    let idp = Idp::serving(&[&old]).await;
    let verifier = started(&idp.config(60), &idp, &old).await;
    idp.serve(&[&new]);
    // Within the minute after the start-up fetch: no refetch, however many
    // forged or new kids arrive.
    for _ in 0..10 {
        assert_eq!(
            verifier.verify_fresh(&new.sign(&user_claims("u"))).await,
            Err(AuthError::UnknownKey)
        );
    }
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn jku_and_x5u_are_never_followed() {
    let trusted = EcKey::generate("k1");
    let idp = Idp::serving(&[&trusted]).await;
    let attacker_key = EcKey::generate("evil");
    let attacker = Idp::serving(&[&attacker_key]).await;
    let verifier = started(&idp.config(0), &idp, &trusted).await;
    let forged = attacker_key.sign_with(&user_claims("admin"), |header| {
        header.jku = Some(attacker.url());
        header.x5u = Some(attacker.url());
    });
    assert_eq!(
        verifier.verify_fresh(&forged).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(attacker.fetches(), 0);

    // The same for an HS256 verifier: the header's URLs mean nothing.
    let mut header = Header::new(Algorithm::HS256);
    header.jku = Some(attacker.url());
    let hs = jsonwebtoken::encode(
        &header,
        &user_claims("u"),
        &EncodingKey::from_secret(b"attacker-chosen-secret-0123456789abcdef"),
    )
    .unwrap();
    assert_eq!(verify(&hs), Err(AuthError::BadSignature));
    assert_eq!(attacker.fetches(), 0);
}

#[tokio::test]
async fn hmac_tokens_are_refused_by_a_jwks_verifier() {
    let key = EcKey::generate("k1");
    let idp = Idp::serving(&[&key]).await;
    let verifier = started(&idp.config(0), &idp, &key).await;
    // HS/RS confusion: the public key as an HMAC secret.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &header,
        &user_claims("u"),
        &EncodingKey::from_secret(&key.public),
    )
    .unwrap();
    assert_eq!(
        verifier.verify_fresh(&confused).await,
        Err(AuthError::WrongAlgorithm)
    );
    // And a symmetric key published in the JWKS is never used.
    *idp.keys.lock().unwrap() = json!({ "keys": [
        { "kty": "oct", "kid": "shared", "k": URL_SAFE_NO_PAD.encode(SECRET) }
    ] });
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("shared".into());
    let hs = jsonwebtoken::encode(
        &header,
        &user_claims("u"),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        verifier.verify_fresh(&hs).await,
        Err(AuthError::WrongAlgorithm)
    );
    // A secret verifier refuses asymmetric tokens.
    assert_eq!(
        verify(&key.sign(&user_claims("u"))),
        Err(AuthError::WrongAlgorithm)
    );
}

#[tokio::test]
async fn algorithms_are_pinned_by_config() {
    let key = EcKey::generate("k1");
    let idp = Idp::serving(&[&key]).await;
    let mut config = idp.config(0);
    config.algorithms = Some(vec![Algorithm::RS256]);
    let verifier = JwtVerifier::from_config(&config, &http()).unwrap();
    assert_eq!(
        verifier.verify_fresh(&key.sign(&user_claims("u"))).await,
        Err(AuthError::WrongAlgorithm)
    );
    // HMAC with a JWKS, or anything but HS256 with a secret: refused at start.
    config.algorithms = Some(vec![Algorithm::HS256]);
    assert!(JwtVerifier::from_config(&config, &http()).is_err());
    let secret = JwtConfig {
        secret: Some(SECRET.into()),
        algorithms: Some(vec![Algorithm::RS256]),
        ..JwtConfig::default()
    };
    let error = JwtVerifier::from_config(&secret, &http())
        .unwrap_err()
        .to_string();
    assert!(error.contains("jwt.algorithms"), "{error}");
    // Both key sources at once: refused.
    let both = JwtConfig {
        secret: Some(SECRET.into()),
        ..idp.config(0)
    };
    let error = JwtVerifier::from_config(&both, &http())
        .unwrap_err()
        .to_string();
    assert!(error.contains("more than one key"), "{error}");
}

#[tokio::test]
async fn the_front_door_refetches_for_a_rotated_key() {
    let old = EcKey::generate("old");
    let new = EcKey::generate("new");
    let idp = Idp::serving(&[&old]).await;
    let mut config = test_config();
    config.jwt = idp.config(0);
    let verifier = Arc::new(JwtVerifier::from_config(&config.jwt, &http()).unwrap());
    let server =
        spawn(bff_server::FrontDoor::new(&config, verifier).wrap(crate::helpers::probe_routes()))
            .await;
    idp.serve(&[&new]);
    let response = server
        .client
        .get(server.url("/private"))
        .bearer_auth(new.sign(&user_claims("rotated")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["hello"], "rotated");
}

/// A 2048-bit RSA key made for these tests only (PKCS#1 DER, base64), and
/// its modulus (base64url) for the JWK. Never used anywhere else.
const TEST_RSA_KEY_DER: [&str; 21] = [
    "MIIEpAIBAAKCAQEA5PuueilbzJ82PLKUVZ2dB9jWKdcs7Ll/KCSSXP7mmZCuZ6D6Bqb6Q2EAPUL0",
    "xqg2bq23QMXqD6gT8KI7CmyjtPx8t0Xv1+jubTfagRiTbKnzBNXbCS4rAu/aaNvS7l99s59z0zEx",
    "L2SaFqIoquK9QD/T9/6nsSgYWhaByCr49YZJWiof5XaVQeEq7+oMRbvwkLwJvB9xb01YkfkjUUPT",
    "EZ4aH/wtKdbxQpyUuUMFWBjE5RAQr1TKBPdJexvc2yQXkDCvO2yE0Wef99ZWgRmsKRIQLb8TQXdD",
    "gv9SbYZvToRT6Z9JlIESca/S/a03Sdue8uiPv+YIkLm/eH9MsljeQQIDAQABAoIBAAPox5dqlBiD",
    "2dZSsq1dA+Ctyyc69xeCCbmW2UBY8jkqMw4OHaKmMGTc17cUCO+I0OgWE2g50MeMZi3AKUuh4/Ab",
    "tOngmeoI3iQzdUmpsJ+k7aMWHxeSqBWUYHlUkm7zJqddyCmRgA5X9HkBMvpK5XH+vPjRik2gGn1U",
    "P8o58JbpeBlwOEL4r8KlRtW/oo/DhC8WKjm3g6WYYpx/6DXViP8BvXS5st1B2dOimg9rUQA3Ih+7",
    "H0lb+DM4x4HU4+FFwh7msEpOZTGdLY1LH3M5FvlSBeY+AD7GihiEQB2O8n7KY2pjaPBpQDXDRCSJ",
    "B8KdeYrqjdJ/x6wb8epPBTG3E6ECgYEA/lByLnqqb/7Wf9qU6hx7xdy6etzZikK0CGTXbfYLGDWp",
    "UvKMYnpHd3AtGFpEQaOXy1KYzv1e57PqI9/ZO/+nxnIGy8RaXELiC1VsnoMUpMgAGVC0Ff0rjVRI",
    "1oZ3ERGDK9LFSnRhFDNjvBPRDJ+2HoMX3GMkQPqQNnqOoeiDPfECgYEA5oBAF1q8a22IdMthIboJ",
    "EPfSsmRaGOnWukfXCubDR4FTT2EcQj6ZCafHyXjoEwGM8BuiESo5Bg03bDk2vU5P7N3MuP68eOvJ",
    "o73qOH/a8QjPj8j1trRB5xNvUz+QK8MF22f5ETaPrXkwvaQB6JCjeldeXB6kgtQcqNK2HzkVlVEC",
    "gYEAz1pSLtlvPA+hXu+euV9t/77gASsu6A9I8Qsfp5WUKDIgk/QVSHoA6T56Vj/LJWW4b1wyIZru",
    "labZAlUSr1vctO3l4qB/OHiEC8+j135zB4PWqM1neAJLT1loZhmO3UjVFZctq25GdQ0NhZz2tv9F",
    "o40pmFTxi1WA3hqBTzvgPlECgYEA5FA2q6tppPNKzX1CSdju8Aq5fZAfGjxNQBi2rYqj9Sjpb2Ae",
    "UJOWnNS+9RY4sdLAWnjUkDIFZ7QhqKYHTX3LdzC/fqJ75z6ObQ1JegtSv5tdlOuWTxG/kXZTt97n",
    "HCHBpHEZaO5lZIv9NmrEpSrXcvAlfBOyGhCmDqcgVE8DzPECgYBiOnfAPeOEk9vtVHnkMD6b+gqv",
    "viWA4xSiAXdcfGngTH3CRLCFE1nPqRVXIf8Ed2o7TwqDjTTwGBigOU5wxWpD9QJ4DPv1t4GgS7Pt",
    "lbk3tl9XcscM9CtaTmOT0bdG7EjlSu6AOFcOMX3yPEISLxp8IOvGLfJczpj8pgJyTflhPw==",
];
const TEST_RSA_N: [&str; 5] = [
    "5PuueilbzJ82PLKUVZ2dB9jWKdcs7Ll_KCSSXP7mmZCuZ6D6Bqb6Q2EAPUL0xqg2bq23QMXqD6gT",
    "8KI7CmyjtPx8t0Xv1-jubTfagRiTbKnzBNXbCS4rAu_aaNvS7l99s59z0zExL2SaFqIoquK9QD_T",
    "9_6nsSgYWhaByCr49YZJWiof5XaVQeEq7-oMRbvwkLwJvB9xb01YkfkjUUPTEZ4aH_wtKdbxQpyU",
    "uUMFWBjE5RAQr1TKBPdJexvc2yQXkDCvO2yE0Wef99ZWgRmsKRIQLb8TQXdDgv9SbYZvToRT6Z9J",
    "lIESca_S_a03Sdue8uiPv-YIkLm_eH9MsljeQQ",
];

fn rsa_jwk() -> Value {
    json!({ "kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": TEST_RSA_N.concat(), "e": "AQAB" })
}

fn rsa_sign(claims: &Value) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(TEST_RSA_KEY_DER.concat())
        .unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&der)).unwrap()
}

#[tokio::test]
async fn rs256_tokens_verify_and_the_public_key_is_no_hmac_secret() {
    let idp = Idp::serving(&[]).await;
    *idp.keys.lock().unwrap() = json!({ "keys": [rsa_jwk()] });
    let verifier = JwtVerifier::from_config(&idp.config(0), &http()).unwrap();
    let viewer = verifier
        .verify_fresh(&rsa_sign(&user_claims("u-rsa")))
        .await
        .unwrap();
    assert_eq!(viewer.user_id, "u-rsa");

    // The classic confusion: HS256 "signed" with the public modulus.
    let modulus = URL_SAFE_NO_PAD.decode(TEST_RSA_N.concat()).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let confused = jsonwebtoken::encode(
        &header,
        &user_claims("u"),
        &EncodingKey::from_secret(&modulus),
    )
    .unwrap();
    assert_eq!(
        verifier.verify_fresh(&confused).await,
        Err(AuthError::WrongAlgorithm)
    );

    // An RSA key claiming ES256 in the JWKS is not used at all.
    let mut lying = rsa_jwk();
    lying["alg"] = json!("ES256");
    *idp.keys.lock().unwrap() = json!({ "keys": [lying] });
    let verifier = JwtVerifier::from_config(&idp.config(0), &http()).unwrap();
    assert_eq!(
        verifier.verify_fresh(&rsa_sign(&user_claims("u"))).await,
        Err(AuthError::UnknownKey)
    );

    // Pinned to ES256 only: RS256 tokens are refused outright.
    *idp.keys.lock().unwrap() = json!({ "keys": [rsa_jwk()] });
    let mut config = idp.config(0);
    config.algorithms = Some(vec![Algorithm::ES256]);
    let verifier = JwtVerifier::from_config(&config, &http()).unwrap();
    assert_eq!(
        verifier.verify_fresh(&rsa_sign(&user_claims("u"))).await,
        Err(AuthError::WrongAlgorithm)
    );
}
