//! Batch lookups by ids: one call for many ids, unknown ids left out
//! (repeated ids are the caller's to merge: the DataLoaders do).

use std::collections::BTreeSet;

use downstream::CacheConfig;

use crate::{Harness, ctx};

fn no_cache(config: &mut downstream::DownstreamConfig) {
    config.cache = CacheConfig {
        ttl_ms: 0,
        max_entries: 0,
        ..CacheConfig::default()
    };
}

#[tokio::test]
async fn a_product_lookup_is_one_batch_call() {
    let h = Harness::with_config(no_cache).await;
    let known: BTreeSet<String> = (1..=7).map(|i| format!("p{i}")).collect();
    let ids: Vec<String> = known.iter().cloned().chain(["p404".into()]).collect();
    let found = h.downstream.products.lookup(&ctx(), &ids).await.unwrap();

    let control = &h.services.product.control;
    assert_eq!(control.count("GET /products"), 1);
    assert_eq!(control.total(), 1);
    let call = control.requests().pop().unwrap();
    assert_eq!(call.ids, ids);
    let answered: BTreeSet<String> = found.keys().map(|id| id.to_string()).collect();
    assert_eq!(answered, known, "unknown ids are left out");
    assert!(found.iter().all(|(id, product)| product.id == id.as_str()));
}

#[tokio::test]
async fn a_user_lookup_is_one_batch_call() {
    let h = Harness::with_config(no_cache).await;
    let users = h
        .downstream
        .users
        .lookup(&ctx(), &["u1", "u2", "u3"])
        .await
        .unwrap();
    assert_eq!(users.len(), 3);
    assert_eq!(h.services.user.control.count("GET /users"), 1);
}

#[tokio::test]
async fn a_failed_batch_fails_the_lookup() {
    let h = Harness::with_config(no_cache).await;
    h.services
        .product
        .control
        .set_fault(devstack_services::Fault::new("/products").status(500)); // 500: not retried
    let result = h.downstream.products.lookup(&ctx(), &["p1", "p2"]).await;
    assert!(result.is_err());
    assert_eq!(h.services.product.control.count("GET /products"), 1);
}
