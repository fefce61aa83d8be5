//! How failures of a downstream service reach the caller.

use std::time::Instant;

use devstack_services::Fault;
use downstream::{DownstreamError, Service};

use crate::{Harness, SHORT_TIMEOUT, ctx};

#[tokio::test]
async fn unknown_entity_is_not_found() {
    let h = Harness::start().await;
    let error = h.downstream.users.get(&ctx(), "nobody").await.unwrap_err();
    assert_eq!(
        error,
        DownstreamError::NotFound {
            service: Service::User
        }
    );
}

#[tokio::test]
async fn server_error_is_unavailable() {
    let h = Harness::start().await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/products").status(500));
    let error = h.downstream.products.get(&ctx(), "p1").await.unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Unavailable {
            service: Service::Product,
            status: Some(500)
        }
    );
}

#[tokio::test]
async fn client_error_is_rejected() {
    let h = Harness::start().await;
    let error = h
        .downstream
        .orders
        .quote(
            &ctx(),
            &downstream::models::QuoteRequest {
                user_id: "u1".into(),
                items: vec![],
                address_id: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Rejected {
            service: Service::Order,
            status: 400
        }
    );
}

#[tokio::test]
async fn slow_service_times_out_within_the_deadline() {
    let h = Harness::with_config(|config| {
        config.product.timeout_ms = Some(SHORT_TIMEOUT.as_millis() as u64);
    })
    .await;
    h.services
        .product
        .control
        .set_fault(Fault::new("/").latency(5_000));
    let started = Instant::now();
    let error = h.downstream.products.get(&ctx(), "p1").await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        error,
        DownstreamError::Timeout {
            service: Service::Product
        }
    );
    assert!(elapsed >= SHORT_TIMEOUT, "{elapsed:?}");
    assert!(
        elapsed < SHORT_TIMEOUT + std::time::Duration::from_millis(100),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn hanging_service_times_out() {
    let h = Harness::with_config(|config| {
        config.timeout_ms = SHORT_TIMEOUT.as_millis() as u64;
    })
    .await;
    h.services
        .device
        .control
        .set_fault(Fault::new("/devices").hang());
    let error = h.downstream.devices.get(&ctx(), "d1").await.unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Timeout {
            service: Service::Device
        }
    );
}

#[tokio::test]
async fn body_outside_the_contract_is_a_bad_response() {
    let h = Harness::start().await;
    for body in [r#"{"id": "p1"}"#, "<html>oops</html>", r#"[1, 2]"#] {
        h.services.product.control.clear_faults();
        h.services
            .product
            .control
            .set_fault(Fault::new("/products").body(body));
        let error = h.downstream.products.get(&ctx(), "p1").await.unwrap_err();
        assert_eq!(
            error,
            DownstreamError::BadResponse {
                service: Service::Product
            },
            "{body}"
        );
    }
}

#[tokio::test]
async fn unreachable_service_is_unavailable_and_leaks_no_url() {
    // A port nothing listens on: bind, note it, close.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let h = Harness::with_config(|config| {
        config.recommendation.url = format!("http://127.0.0.1:{port}/secret-path")
            .parse()
            .unwrap();
    })
    .await;
    let error = h
        .downstream
        .recommendations
        .for_user(&ctx(), "u1", 3)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Unavailable {
            service: Service::Recommendation,
            status: None
        }
    );
    let message = error.to_string();
    assert!(
        !message.contains("127.0.0.1") && !message.contains("secret"),
        "{message}"
    );
}

/// An `https://` service is spoken to over TLS (the client opens with a TLS
/// handshake record), and one that does not answer TLS is unavailable.
#[tokio::test]
async fn https_services_get_tls() {
    use tokio::io::AsyncReadExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let first_byte = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut byte = [0_u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        byte[0]
        // Dropping the socket ends the handshake.
    });
    let h = Harness::with_config(|config| {
        config.recommendation.url = format!("https://localhost:{port}").parse().unwrap();
    })
    .await;
    let error = h
        .downstream
        .recommendations
        .for_user(&ctx(), "u1", 3)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        DownstreamError::Unavailable {
            service: Service::Recommendation,
            status: None
        }
    );
    // 0x16: a TLS handshake record (the ClientHello).
    assert_eq!(first_byte.await.unwrap(), 0x16);
}
