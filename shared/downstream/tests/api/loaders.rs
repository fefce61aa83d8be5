//! Batching: every lookup of one request in the same tick is one batch call.

use std::collections::BTreeSet;

use downstream::CacheConfig;
use downstream::loaders::{ProductLoader, UserLoader};
use futures::future::join_all;

use crate::{Harness, ctx};

fn no_cache(config: &mut downstream::DownstreamConfig) {
    config.cache = CacheConfig {
        ttl_ms: 0,
        max_entries: 0,
        ..CacheConfig::default()
    };
}

#[tokio::test]
async fn twenty_concurrent_product_loads_make_one_batch_call() {
    let h = Harness::with_config(no_cache).await;
    let loader = ProductLoader::data_loader(h.downstream.products.clone(), ctx());
    // Overlapping ids, one unknown.
    let ids: Vec<String> = (0..20).map(|i| format!("p{}", i % 7 + 1)).collect();
    let loads = ids
        .iter()
        .cloned()
        .chain(["p404".to_owned()])
        .map(|id| loader.load_one(id));
    let results = join_all(loads).await;

    let control = &h.services.product.control;
    assert_eq!(control.count("GET /products"), 1);
    assert_eq!(control.total(), 1);
    let call = control.requests().pop().unwrap();
    let requested: BTreeSet<_> = call.ids.iter().cloned().collect();
    assert_eq!(requested.len(), call.ids.len(), "no id asked twice");
    let expected: BTreeSet<String> = (1..=7)
        .map(|i| format!("p{i}"))
        .chain(["p404".into()])
        .collect();
    assert_eq!(requested, expected);

    for (id, result) in ids.iter().zip(&results) {
        assert_eq!(&result.as_ref().unwrap().as_ref().unwrap().id, id);
    }
    assert!(
        results.last().unwrap().as_ref().unwrap().is_none(),
        "unknown id → None"
    );
}

#[tokio::test]
async fn user_loads_are_batched_too() {
    let h = Harness::with_config(no_cache).await;
    let loader = UserLoader::data_loader(h.downstream.users.clone(), ctx());
    let loads = ["u1", "u2", "u3", "u1"].map(|id| loader.load_one(id.to_owned()));
    let users = join_all(loads).await;
    assert!(users.iter().all(|u| u.as_ref().unwrap().is_some()));
    assert_eq!(h.services.user.control.count("GET /users"), 1);
}

#[tokio::test]
async fn a_failed_batch_fails_every_load_in_it() {
    let h = Harness::with_config(no_cache).await;
    h.services
        .product
        .control
        .set_fault(devstack::Fault::new("/products").status(500)); // 500: not retried
    let loader = ProductLoader::data_loader(h.downstream.products.clone(), ctx());
    let results = join_all(["p1", "p2"].map(|id| loader.load_one(id.to_owned()))).await;
    assert!(results.iter().all(|r| r.is_err()));
    assert_eq!(h.services.product.control.count("GET /products"), 1);
}
