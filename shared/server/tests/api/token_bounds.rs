//! Tokens that are validly signed but hostile: too large to be worth a
//! signature check or cache space, or naming a viewer whose id could not
//! be sent downstream.

use bff_server::auth::{AuthError, MAX_TOKEN_BYTES};
use serde_json::{Value, json};

use crate::helpers::{probe_routes, spawn_front_door, test_config, token, user_claims, verifier};

#[test]
fn a_signed_token_over_the_size_limit_is_refused() {
    let verifier = verifier(&test_config());
    let mut claims = user_claims("u1");
    claims["padding"] = json!("x".repeat(100_000));
    let large = token(&claims);
    assert!(large.len() > MAX_TOKEN_BYTES);
    assert_eq!(verifier.verify(&large), Err(AuthError::TooLong));

    // Just under the limit still verifies.
    let mut claims = user_claims("u1");
    claims["padding"] = json!("x".repeat(MAX_TOKEN_BYTES / 2));
    let fits = token(&claims);
    assert!(fits.len() <= MAX_TOKEN_BYTES);
    assert_eq!(verifier.verify(&fits).unwrap().user_id, "u1");
}

#[test]
fn a_subject_that_is_no_sendable_id_is_refused() {
    let verifier = verifier(&test_config());
    let long = "u".repeat(downstream::MAX_ID_LEN + 1);
    for sub in [
        "u1\n",
        "u1\r\nx-admin: 1",
        "",
        ".",
        "..",
        "u1,u2",
        "\0",
        long.as_str(),
    ] {
        assert_eq!(
            verifier.verify(&token(&user_claims(sub))),
            Err(AuthError::BadClaims),
            "{sub:?}"
        );
    }
}

#[tokio::test]
async fn over_http_both_are_401_and_the_viewer_is_never_set() {
    let server = spawn_front_door(probe_routes(), &test_config()).await;
    let mut padded = user_claims("u1");
    padded["padding"] = json!("x".repeat(100_000));
    for bearer in [token(&padded), token(&user_claims("u1\n"))] {
        let response = server
            .client
            .get(server.url("/private"))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{body}");
    }
}
