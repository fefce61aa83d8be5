//! The product list (cards, 20 a page) and the trimmed product view.

use std::collections::BTreeSet;

use devstack_services::Fault;
use downstream::models::Product;
use serde_json::{Value, json};

use crate::helpers::{data, error_codes, only_error, seed, spawn_app, spawn_app_with, usd};

const CARDS: &str = "query Cards($category: ID!, $page: Int!) {
    products(categoryId: $category, page: $page) {
        page hasNextPage items { id name price imageUrl rating hasDiscount }
    }
}";

const VIEW: &str = "query View($id: ID!) { product(id: $id) {
    id name price imageUrl rating reviewCount hasDiscount availability summary
} }";

/// Discounted products, from the seed's documentation.
const DISCOUNTED: [u32; 12] = [1, 3, 5, 7, 13, 19, 23, 28, 35, 41, 46, 54];

fn number(id: &str) -> u32 {
    id.trim_start_matches('p').parse().unwrap()
}

/// The first 30 characters and "..." when longer, written independently of
/// `shaping::truncate_chars`.
fn card_name(name: &str) -> String {
    if name.chars().count() <= 30 {
        name.to_owned()
    } else {
        let mut cut: String = name.chars().take(30).collect();
        cut.push_str("...");
        cut
    }
}

async fn cards(app: &crate::helpers::TestApp, category: &str, page: i64) -> Value {
    let response = app
        .query(CARDS, json!({ "category": category, "page": page }))
        .await;
    data(&response)["products"].clone()
}

#[tokio::test]
async fn card_names_are_cut_at_30_characters_never_inside_one() {
    let app = spawn_app().await;
    let electronics = cards(&app, "electronics", 1).await;
    let home = cards(&app, "home", 1).await;
    let name = |page: &Value, id: &str| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|card| card["id"] == id)
            .unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Exactly 30 characters: kept whole, no "...".
    assert_eq!(name(&electronics, "p6"), "USB-C Charging Cable (2 metre)");
    // 31 characters: the first 30, then "...".
    assert_eq!(
        name(&electronics, "p7"),
        "Portable SSD 1TB with USB-C 3...."
    );
    // Multi-byte: the 30th character is the 3-byte ☕ (byte 30 is inside
    // it); it is kept whole and the name is still valid UTF-8.
    let p21 = name(&home, "p21");
    assert_eq!(p21, "Ceramic Pour-Over Coffee Set ☕...");
    assert_eq!(p21.chars().count(), 33);
    assert_eq!(p21.chars().nth(29), Some('☕'));

    // Every card of every category follows the same rule.
    for page in [&electronics, &home, &cards(&app, "outdoors", 1).await] {
        for card in page["items"].as_array().unwrap() {
            let product = seed()
                .product(card["id"].as_str().unwrap())
                .unwrap()
                .clone();
            assert_eq!(card["name"], card_name(&product.name), "{}", product.id);
            assert!(card["name"].as_str().unwrap().chars().count() <= 33);
        }
    }
}

#[tokio::test]
async fn cards_show_price_thumbnail_rounded_rating_and_discount_flag() {
    let app = spawn_app().await;
    let mut rounded = 0;
    for category in ["electronics", "home", "outdoors"] {
        let page = cards(&app, category, 1).await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 20, "{category}");
        let expected_ids: Vec<String> = seed()
            .products
            .iter()
            .filter(|p| p.category_id == category)
            .map(|p| p.id.clone())
            .collect();
        let ids: Vec<&str> = items.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, expected_ids);
        for card in items {
            let product: Product = seed()
                .product(card["id"].as_str().unwrap())
                .unwrap()
                .clone();
            assert_eq!(card["price"], usd(product.price_cents), "{}", product.id);
            assert_eq!(card["imageUrl"], product.thumbnail_url.as_str());
            assert!(card["imageUrl"].as_str().unwrap().contains("thumb"));
            assert_eq!(
                card["hasDiscount"],
                DISCOUNTED.contains(&number(&product.id)),
                "{}",
                product.id
            );
            // One decimal, the nearest one.
            let rating = card["rating"].as_f64().unwrap();
            assert!(
                ((rating * 10.0) - (rating * 10.0).round()).abs() < 1e-9,
                "{rating}"
            );
            assert!(
                (rating - product.average_rating).abs() <= 0.05 + 1e-9,
                "{}",
                product.id
            );
            if (rating - product.average_rating).abs() > 1e-9 {
                rounded += 1;
            }
        }
    }
    // The seed has ratings with two decimals: some were really rounded.
    assert!(rounded > 0);

    // Spot checks against the seed's documented facts.
    let electronics = cards(&app, "electronics", 1).await;
    let card = |id: &str| {
        electronics["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(card("p3")["price"], "$1,234.50");
    assert_eq!(card("p1")["price"], "$249.99");
    assert_eq!(card("p6")["price"], "$12.99");
    assert_eq!(card("p7")["rating"], 0.0);
    assert_eq!(card("p6")["hasDiscount"], false);
}

#[tokio::test]
async fn pages_are_20_cards_and_say_whether_more_follow() {
    let app = spawn_app().await;
    // A category of exactly 20: one full page and nothing after it.
    let first = cards(&app, "electronics", 1).await;
    assert_eq!(first["page"], 1);
    assert_eq!(first["hasNextPage"], false);
    let second = cards(&app, "electronics", 2).await;
    assert_eq!(
        second,
        json!({ "page": 2, "hasNextPage": false, "items": [] })
    );
    let pages: Vec<Option<String>> = app
        .services
        .product
        .control
        .requests()
        .into_iter()
        .map(|r| r.query)
        .collect();
    assert_eq!(
        pages,
        [
            Some("category_id=electronics&page=1&limit=20".to_owned()),
            Some("category_id=electronics&page=2&limit=20".to_owned()),
        ]
    );

    // The default page is 1.
    let response = app
        .query(
            "{ products(categoryId: \"home\") { page items { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&response)["products"]["page"], 1);
    assert_eq!(data(&response)["products"]["items"][0]["id"], "p21");

    // A bigger catalogue (45 products) from a service that honours the
    // contract: pages 1 and 2 have more after them, page 3 does not.
    let twenty: Vec<Product> = seed().products.into_iter().take(20).collect();
    for (page, items, more) in [
        (1, &twenty[..], true),
        (2, &twenty[..], true),
        (3, &twenty[..5], false),
    ] {
        app.services.product.control.set_fault(
            Fault::new("/products").body(
                json!({ "items": items, "total": 45, "page": page, "limit": 20 }).to_string(),
            ),
        );
        let found = cards(&app, "electronics", page).await;
        assert_eq!(found["hasNextPage"], more, "page {page}");
        assert_eq!(found["items"].as_array().unwrap().len(), items.len());
    }
}

#[tokio::test]
async fn a_page_below_1_is_bad_input_and_calls_nothing() {
    let app = spawn_app().await;
    for page in [0, -1, i64::from(i32::MIN)] {
        let response = app
            .query(CARDS, json!({ "category": "home", "page": page }))
            .await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{page}");
        assert_eq!(only_error(&response)["message"], "page must be at least 1");
    }
    assert_eq!(app.downstream_total(), 0);
}

async fn view(app: &crate::helpers::TestApp, id: &str) -> Value {
    let response = app.query(VIEW, json!({ "id": id })).await;
    data(&response)["product"].clone()
}

#[tokio::test]
async fn the_product_view_is_trimmed() {
    let app = spawn_app().await;
    let p1 = seed().product("p1").unwrap().clone();
    assert!(p1.description.chars().count() > 200);
    let mut summary: String = p1.description.chars().take(197).collect();
    summary = summary.trim_end().to_owned();
    summary.push_str("...");
    let shown = view(&app, "p1").await;
    assert_eq!(
        shown,
        json!({
            "id": "p1",
            "name": "Wireless Noise-Cancelling Headphones",
            "price": "$249.99",
            "imageUrl": p1.thumbnail_url,
            "rating": (p1.average_rating * 10.0).round() / 10.0,
            "reviewCount": 27,
            "hasDiscount": true,
            "availability": "IN_STOCK",
            "summary": summary,
        })
    );
    assert!(shown["summary"].as_str().unwrap().chars().count() <= 200);

    // The full name, even when a card would cut it.
    let p21 = view(&app, "p21").await;
    assert_eq!(
        p21["name"],
        "Ceramic Pour-Over Coffee Set ☕ Édition Spéciale"
    );
    assert_eq!(p21["availability"], "LOW_STOCK");
    let p7 = view(&app, "p7").await;
    assert_eq!(p7["rating"], 0.0);
    assert_eq!(p7["reviewCount"], 0);
    assert_eq!(p7["hasDiscount"], true);
    assert_eq!(view(&app, "p4").await["availability"], "OUT_OF_STOCK");
    assert_eq!(view(&app, "p6").await["hasDiscount"], false);
    // Every summary: the description when it fits in 200 characters.
    for product in seed().products {
        let summary = view(&app, &product.id).await["summary"].clone();
        let summary = summary.as_str().unwrap();
        assert!(summary.chars().count() <= 200, "{}", product.id);
        if product.description.chars().count() <= 200 {
            assert_eq!(summary, product.description, "{}", product.id);
        } else {
            let kept = summary.strip_suffix("...").unwrap();
            assert!(product.description.starts_with(kept), "{}", product.id);
        }
    }
}

#[tokio::test]
async fn an_unknown_product_is_null_without_error() {
    let app = spawn_app().await;
    let response = app.query(VIEW, json!({ "id": "p999" })).await;
    assert_eq!(data(&response)["product"], Value::Null);
}

#[tokio::test]
async fn every_product_has_every_field() {
    // 60 aliased root fields: over the default abuse limits (30 aliases, 20
    // root fields), which a real client never needs; raised for this check.
    let app = spawn_app_with(|config| {
        config.graphql.max_aliases = 60;
        config.graphql.max_root_fields = 60;
    })
    .await;
    let ids: Vec<String> = seed().products.iter().map(|p| p.id.clone()).collect();
    let aliases: Vec<String> = ids
        .iter()
        .map(|id| format!("{id}: product(id: \"{id}\") {{ id availability summary }}"))
        .collect();
    let response = app
        .query(&format!("{{ {} }}", aliases.join(" ")), json!({}))
        .await;
    let found: BTreeSet<&str> = ids
        .iter()
        .filter(|id| data(&response)[id.as_str()]["id"] == id.as_str())
        .map(String::as_str)
        .collect();
    assert_eq!(found.len(), 60);
    // All 60 in one batched call.
    assert_eq!(app.services.product.control.total(), 1);
    assert_eq!(app.services.product.control.requests()[0].ids.len(), 60);
}
