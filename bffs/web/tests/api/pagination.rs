//! The product list: a Relay-style connection over the product service's pages.

use serde_json::{Value, json};

use crate::helpers::{TestApp, data, error_codes, seed, spawn_app};

const PAGE: &str = "query Page($category: ID!, $first: Int!, $after: String) {
    products(categoryId: $category, first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { cursor node { id name price { amountCents } } }
    }
}";

async fn page(app: &TestApp, category: &str, first: i64, after: Option<&str>) -> Value {
    let response = app
        .query(
            PAGE,
            json!({ "category": category, "first": first, "after": after }),
        )
        .await;
    data(&response)["products"].clone()
}

/// Walks `category` to the end with the given page sizes (the last one
/// repeats), checking each page's shape; returns the ids in order.
async fn walk(app: &TestApp, category: &str, sizes: &[i64]) -> Vec<String> {
    let seed = seed();
    let mut ids: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    for round in 0.. {
        assert!(round < 25, "the walk does not end");
        let first = sizes[round.min(sizes.len() - 1)];
        let connection = page(app, category, first, after.as_deref()).await;
        assert_eq!(connection["totalCount"], 20);
        let edges = connection["edges"].as_array().unwrap();
        assert!(!edges.is_empty(), "empty page after {ids:?}");
        assert!(edges.len() as i64 <= first);
        for edge in edges {
            let id = edge["node"]["id"].as_str().unwrap();
            let product = seed.product(id).unwrap();
            assert_eq!(edge["node"]["name"], product.name);
            assert_eq!(edge["node"]["price"]["amountCents"], product.price_cents);
            assert!(edge["cursor"].as_str().is_some_and(|c| !c.is_empty()));
            ids.push(id.to_owned());
        }
        let info = &connection["pageInfo"];
        assert_eq!(info["endCursor"], edges.last().unwrap()["cursor"]);
        let has_next = info["hasNextPage"].as_bool().unwrap();
        assert_eq!(has_next, ids.len() < 20, "after {ids:?}");
        if !has_next {
            break;
        }
        // A full page unless it is the last one.
        assert_eq!(edges.len() as i64, first);
        after = info["endCursor"].as_str().map(str::to_owned);
    }
    ids
}

/// The seed lists a category in numeric id order: electronics is p1..p20.
fn electronics() -> Vec<String> {
    (1..=20).map(|n| format!("p{n}")).collect()
}

#[tokio::test]
async fn walking_a_category_by_sevens_yields_every_product_once_in_order() {
    let app = spawn_app().await;
    assert_eq!(walk(&app, "electronics", &[7]).await, electronics());
    let home: Vec<String> = (21..=40).map(|n| format!("p{n}")).collect();
    assert_eq!(walk(&app, "home", &[7]).await, home);
}

#[tokio::test]
async fn changing_first_mid_walk_leaves_no_gaps() {
    let app = spawn_app().await;
    for sizes in [
        &[7, 5][..],
        &[5, 7][..],
        &[3, 8, 1, 6][..],
        &[19, 50][..],
        &[1][..],
    ] {
        assert_eq!(
            walk(&app, "electronics", sizes).await,
            electronics(),
            "{sizes:?}"
        );
    }
}

#[tokio::test]
async fn one_page_can_hold_a_whole_category() {
    let app = spawn_app().await;
    for first in [20, 50] {
        let connection = page(&app, "electronics", first, None).await;
        let ids: Vec<&str> = connection["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, electronics());
        assert_eq!(connection["pageInfo"]["hasNextPage"], false);
        assert_eq!(connection["totalCount"], 20);
    }
    // `first` defaults to 20.
    let response = app
        .query(
            "{ products(categoryId: \"outdoors\") { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    let products = &data(&response)["products"];
    assert_eq!(products["edges"].as_array().unwrap().len(), 20);
    assert_eq!(products["edges"][0]["node"]["id"], "p41");
}

#[tokio::test]
async fn past_the_end_and_unknown_categories_are_empty() {
    let app = spawn_app().await;
    let all = page(&app, "electronics", 20, None).await;
    let last = all["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    let after_last = page(&app, "electronics", 5, Some(&last)).await;
    assert_eq!(
        after_last,
        json!({ "totalCount": 20, "pageInfo": { "hasNextPage": false, "endCursor": null }, "edges": [] })
    );
    let unknown = page(&app, "no-such-category", 5, None).await;
    assert_eq!(
        unknown,
        json!({ "totalCount": 0, "pageInfo": { "hasNextPage": false, "endCursor": null }, "edges": [] })
    );
}

/// A cursor built like the BFF's, for a position no real page reaches.
fn far_cursor(index: u64) -> String {
    format!("p1:{index}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn extreme_cursors_are_answered_not_crashed_on() {
    let app = spawn_app().await;
    let cursor = far_cursor(u64::from(u32::MAX));
    // Far past the end: an empty page...
    let connection = page(&app, "electronics", 5, Some(&cursor)).await;
    assert_eq!(connection["edges"], json!([]));
    assert_eq!(connection["pageInfo"]["hasNextPage"], false);
    // ...or, where the page number would not fit the service's, a bad cursor.
    let response = app
        .query(
            PAGE,
            json!({ "category": "electronics", "first": 1, "after": cursor }),
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"]);
    // Past u32 it is not a cursor at all.
    let response = app
        .query(
            PAGE,
            json!({ "category": "electronics", "first": 5, "after": far_cursor(1 << 32) }),
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"]);
}
