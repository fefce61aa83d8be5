//! The GraphQL DataLoaders over the downstream batch lookups: every load of
//! one request in the same tick is one batch call.

use std::collections::BTreeSet;

use bff_server::graphql::ProductLoader;
use devstack_services::{Fault, Services};
use downstream::{CacheConfig, Downstream, DownstreamConfig, RequestContext};
use futures::future::join_all;

/// Reference services and uncached clients pointed at them.
async fn start() -> (Services, Downstream) {
    let services = Services::spawn_ephemeral().await.unwrap();
    let mut config = DownstreamConfig::with_urls(services.urls());
    config.cache = CacheConfig {
        ttl_ms: 0,
        max_entries: 0,
        ..CacheConfig::default()
    };
    let http = downstream::http::build_http_client().unwrap();
    (services, Downstream::new(&config, http))
}

fn ctx() -> RequestContext {
    RequestContext::background().with_user("u1")
}

#[tokio::test]
async fn twenty_concurrent_product_loads_make_one_batch_call() {
    let (services, downstream) = start().await;
    let loader = ProductLoader::data_loader(downstream.products.clone(), ctx());
    // Overlapping ids, one unknown.
    let ids: Vec<String> = (0..20).map(|i| format!("p{}", i % 7 + 1)).collect();
    let loads = ids
        .iter()
        .cloned()
        .chain(["p404".to_owned()])
        .map(|id| loader.load_one(id));
    let results = join_all(loads).await;

    let control = &services.product.control;
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
async fn a_failed_batch_fails_every_load_in_it() {
    let (services, downstream) = start().await;
    // 500: not retried
    services
        .product
        .control
        .set_fault(Fault::new("/products").status(500));
    let loader = ProductLoader::data_loader(downstream.products.clone(), ctx());
    let results = join_all(["p1", "p2"].map(|id| loader.load_one(id.to_owned()))).await;
    assert!(results.iter().all(|r| r.is_err()));
    assert_eq!(services.product.control.count("GET /products"), 1);
}
