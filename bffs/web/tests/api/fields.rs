//! Every contract field's value against devstack's seed.

use chrono::{DateTime, Utc};
use downstream::models::{Order, OrderStatus, Product};
use serde_json::{Value, json};

use crate::helpers::{data, money, seed, spawn_app, spawn_app_with, usd};

/// `InStock` → `IN_STOCK`: GraphQL enum values from the Rust variants.
fn screaming(debug: impl std::fmt::Debug) -> String {
    let mut out = String::new();
    for (i, c) in format!("{debug:?}").chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Asserts `value` is an RFC 3339 timestamp of the instant `expected`.
fn assert_instant(value: &Value, expected: DateTime<Utc>) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    let parsed = DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"));
    assert_eq!(parsed.with_timezone(&Utc), expected, "{text}");
}

pub(crate) const PRODUCT_FIELDS: &str = "id name description
    price { amountCents currency formatted }
    originalPrice { amountCents currency formatted }
    discountPercentage thumbnailUrl images rating reviewCount
    specifications { name value } availability
    shippingOptions { id label price { amountCents currency formatted } estimatedDays }";

/// What `PRODUCT_FIELDS` must return for a seed product.
pub(crate) fn product_json(p: &Product) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "price": money(p.price_cents),
        "originalPrice": money(p.original_price_cents),
        "discountPercentage": p.discount_percentage,
        "thumbnailUrl": p.thumbnail_url,
        "images": p.image_gallery,
        "rating": p.average_rating,
        "reviewCount": p.review_count,
        "specifications": p.specifications.iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect::<Vec<_>>(),
        "availability": screaming(p.inventory_status),
        "shippingOptions": p.shipping_options.iter().map(|o| json!({
            "id": o.id,
            "label": o.label,
            "price": money(o.price_cents),
            "estimatedDays": o.estimated_days,
        })).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn me_is_the_viewers_profile() {
    let app = spawn_app().await;
    let response = app
        .query_as(
            "u1",
            "{ me { id name email avatarUrl membershipLevel loyaltyPoints unreadNotificationsCount
                addresses { id line1 city postalCode country isDefault }
                paymentMethods { id label isDefault } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&response)["me"],
        json!({
            "id": "u1",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "avatarUrl": "https://cdn.example.com/avatars/u1/full.jpg",
            "membershipLevel": "gold",
            "loyaltyPoints": 1250,
            "unreadNotificationsCount": 3,
            "addresses": [
                { "id": "a1", "line1": "12 St James's Square", "city": "London",
                  "postalCode": "SW1Y 4JH", "country": "GB", "isDefault": true },
                { "id": "a2", "line1": "1 Difference Row", "city": "Cambridge",
                  "postalCode": "CB2 1TN", "country": "GB", "isDefault": false },
            ],
            "paymentMethods": [
                { "id": "pm1", "label": "Visa •••• 4242", "isDefault": true },
                { "id": "pm2", "label": "Mastercard •••• 4444", "isDefault": false },
            ],
        })
    );
}

const DASHBOARD: &str = "{ dashboard {
    user { id name email avatarUrl membershipLevel loyaltyPoints unreadNotificationsCount }
    orders {
        id status total { amountCents currency formatted } date placedAt itemsCount trackingNumber
        items { quantity unitPrice { amountCents currency formatted } product { id name price { amountCents } } }
    }
    recommendations { score reason product { id name } }
    analytics { totalSpent { amountCents currency formatted } ordersThisMonth favoriteCategories }
} }";

/// u1's orders as the order service lists them: newest first.
fn u1_orders_newest_first() -> Vec<Order> {
    let mut orders: Vec<Order> = seed()
        .orders
        .into_iter()
        .filter(|o| o.user_id == "u1")
        .collect();
    orders.sort_by_key(|o| std::cmp::Reverse(o.created_at));
    orders
}

#[tokio::test]
async fn dashboard_shows_profile_orders_recommendations_and_analytics() {
    let app = spawn_app().await;
    let seed = seed();
    let response = app.query_as("u1", DASHBOARD, json!({})).await;
    let dashboard = &data(&response)["dashboard"];

    assert_eq!(
        dashboard["user"],
        json!({
            "id": "u1", "name": "Ada Lovelace", "email": "ada@example.com",
            "avatarUrl": "https://cdn.example.com/avatars/u1/full.jpg",
            "membershipLevel": "gold", "loyaltyPoints": 1250, "unreadNotificationsCount": 3,
        })
    );

    // The 10 newest of u1's 14 orders, newest first: o14 … o5.
    let orders = dashboard["orders"].as_array().unwrap();
    let expected = u1_orders_newest_first();
    let ids: Vec<&str> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "o14", "o13", "o12", "o11", "o10", "o9", "o8", "o7", "o6", "o5"
        ]
    );
    for (order, seed_order) in orders.iter().zip(&expected) {
        let id = &seed_order.id;
        assert_eq!(order["status"], screaming(seed_order.status), "{id}");
        assert_eq!(order["total"], money(seed_order.total_cents), "{id}");
        assert_eq!(
            order["date"],
            seed_order.created_at.format("%B %-d, %Y").to_string(),
            "{id}"
        );
        assert_instant(&order["placedAt"], seed_order.created_at);
        let units: i64 = seed_order.items.iter().map(|i| i.quantity).sum();
        assert_eq!(order["itemsCount"], units, "{id}");
        assert_eq!(
            order["trackingNumber"],
            json!(seed_order.tracking_number),
            "{id}"
        );
        let items: Vec<Value> = seed_order
            .items
            .iter()
            .map(|item| {
                let product = seed.product(&item.product_id).unwrap();
                json!({
                    "quantity": item.quantity,
                    "unitPrice": money(item.unit_price_cents),
                    "product": { "id": product.id, "name": product.name,
                                 "price": { "amountCents": product.price_cents } },
                })
            })
            .collect();
        assert_eq!(order["items"], json!(items), "{id}");
    }

    // The newest order, spelled out.
    let o14 = &orders[0];
    assert_eq!(o14["date"], "November 25, 2026");
    assert_instant(&o14["placedAt"], "2026-11-25T14:30:00Z".parse().unwrap());
    assert_eq!(o14["status"], "PLACED");
    assert_eq!(o14["itemsCount"], 2);
    assert_eq!(o14["trackingNumber"], Value::Null);
    // gold: 19900 + 1299 = 21199; −5 % (1059) = 20140; +8 % tax (1611); free shipping.
    assert_eq!(o14["total"], money(21_751));
    assert_eq!(o14["total"]["formatted"], "$217.51");
    // Shipped orders carry their tracking numbers.
    let o11 = orders.iter().find(|o| o["id"] == "o11").unwrap();
    assert_eq!(o11["status"], "SHIPPED");
    assert_eq!(o11["trackingNumber"], "1Z999AA10123456784");
    assert_eq!(o11["itemsCount"], 3);
    let o7 = orders.iter().find(|o| o["id"] == "o7").unwrap();
    assert_eq!(o7["status"], "CANCELLED");

    // Recommendations: the 10 best scores, highest first.
    let mut recs = seed.recommendations["u1"].clone();
    recs.sort_by(|a, b| b.score.total_cmp(&a.score));
    let expected: Vec<Value> = recs
        .iter()
        .take(10)
        .map(|r| {
            json!({
                "score": r.score,
                "reason": r.reason,
                "product": { "id": r.product_id, "name": seed.product(&r.product_id).unwrap().name },
            })
        })
        .collect();
    assert_eq!(dashboard["recommendations"], json!(expected));
    assert_eq!(dashboard["recommendations"][0]["product"]["id"], "p3");
    assert_eq!(dashboard["recommendations"][0]["score"], 0.98);
    assert_eq!(dashboard["recommendations"][1]["reason"], Value::Null);

    // Analytics: spent = all but the cancelled orders; 3 orders in November 2026.
    let spent: i64 = seed
        .orders
        .iter()
        .filter(|o| o.user_id == "u1" && o.status != OrderStatus::Cancelled)
        .map(|o| o.total_cents)
        .sum();
    assert_eq!(
        dashboard["analytics"],
        json!({
            "totalSpent": money(spent),
            "ordersThisMonth": 3,
            "favoriteCategories": ["electronics", "home", "outdoors"],
        })
    );
}

#[tokio::test]
async fn dashboard_lists_honour_first() {
    let app = spawn_app().await;
    let response = app
        .query_as(
            "u1",
            "{ dashboard { orders(first: 3) { id } recommendations(first: 2) { product { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&response)["dashboard"],
        json!({
            "orders": [{ "id": "o14" }, { "id": "o13" }, { "id": "o12" }],
            "recommendations": [{ "product": { "id": "p3" } }, { "product": { "id": "p9" } }],
        })
    );
    // All 14, newest first, with aliases asking for different sizes.
    let response = app
        .query_as(
            "u1",
            "{ dashboard { few: orders(first: 1) { id } all: orders(first: 50) { id } } }",
            json!({}),
        )
        .await;
    let dashboard = &data(&response)["dashboard"];
    assert_eq!(dashboard["few"], json!([{ "id": "o14" }]));
    let all: Vec<&str> = dashboard["all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = u1_orders_newest_first()
        .into_iter()
        .map(|o| o.id.to_string())
        .collect();
    assert_eq!(all, expected);
    assert_eq!(all.len(), 14);
}

#[tokio::test]
async fn product_details_match_the_seed() {
    let app = spawn_app().await;
    let seed = seed();
    let query = format!(
        "{{ product(id: \"p1\") {{ {PRODUCT_FIELDS}
            reviews {{ id authorName rating title body createdAt }}
            relatedProducts {{ id name }}
            inWishlist personalizedRecommendations {{ id }} }} }}"
    );
    let response = app.query(&query, json!({})).await;
    let product = &data(&response)["product"];
    let p1 = seed.product("p1").unwrap();

    let mut expected = product_json(p1);
    for field in [
        "reviews",
        "relatedProducts",
        "inWishlist",
        "personalizedRecommendations",
    ] {
        expected[field] = product[field].clone();
    }
    assert_eq!(product, &expected);

    // Spelled out: what the product page shows for p1.
    assert_eq!(product["name"], "Wireless Noise-Cancelling Headphones");
    assert!(product["description"].as_str().unwrap().chars().count() > 200);
    assert_eq!(
        product["price"],
        json!({ "amountCents": 24999, "currency": "USD", "formatted": "$249.99" })
    );
    assert_eq!(product["originalPrice"]["formatted"], "$299.99");
    assert_eq!(product["discountPercentage"], 17);
    assert_eq!(product["reviewCount"], 27);
    assert_eq!(product["availability"], "IN_STOCK");
    assert_eq!(product["images"].as_array().unwrap().len(), 4);
    assert_eq!(
        product["specifications"],
        json!([
            { "name": "Brand", "value": "Voltix" },
            { "name": "Connectivity", "value": "Wi-Fi 6" },
            { "name": "Warranty", "value": "2 years" },
        ])
    );
    assert_eq!(
        product["shippingOptions"],
        json!([{ "id": "standard", "label": "Standard shipping",
                 "price": { "amountCents": 499, "currency": "USD", "formatted": "$4.99" },
                 "estimatedDays": 5 }])
    );

    // Reviews: the default page is 20 of the 27, newest first.
    let reviews = product["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 20);
    for (review, seed_review) in reviews.iter().zip(&seed.reviews["p1"]) {
        assert_eq!(review["id"], seed_review.id);
        assert_eq!(review["authorName"], seed_review.author_name);
        assert_eq!(review["rating"], seed_review.rating);
        assert_eq!(review["title"], seed_review.title);
        assert_eq!(review["body"], seed_review.body);
        assert_instant(&review["createdAt"], seed_review.created_at);
    }

    // Related: p1's are p2..p6, in the service's order.
    let related: Vec<Value> = seed.related["p1"]
        .iter()
        .map(|id| json!({ "id": id, "name": seed.product(id).unwrap().name }))
        .collect();
    assert_eq!(product["relatedProducts"], json!(related));
    assert_eq!(
        product["relatedProducts"][0],
        json!({ "id": "p2", "name": "Smart Watch Series 7" })
    );

    // Signed out: no wishlist, no personalisation.
    assert_eq!(product["inWishlist"], Value::Null);
    assert_eq!(product["personalizedRecommendations"], Value::Null);
}

#[tokio::test]
async fn product_lists_honour_first() {
    let app = spawn_app().await;
    let seed = seed();
    let response = app
        .query(
            "{ product(id: \"p1\") { reviews(first: 5) { id } relatedProducts(first: 2) { id } } }",
            json!({}),
        )
        .await;
    let product = &data(&response)["product"];
    let reviews: Vec<Value> = seed.reviews["p1"][..5]
        .iter()
        .map(|r| json!({ "id": r.id }))
        .collect();
    assert_eq!(product["reviews"], json!(reviews));
    assert_eq!(
        product["relatedProducts"],
        json!([{ "id": "p2" }, { "id": "p3" }])
    );
    // A product without reviews has an empty list, not null.
    let response = app
        .query(
            "{ product(id: \"p7\") { rating reviewCount reviews { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&response)["product"],
        json!({ "rating": 0.0, "reviewCount": 0, "reviews": [] })
    );
}

#[tokio::test]
async fn every_seed_product_is_served_as_seeded() {
    // 60 aliased root fields: over the default abuse limits (30 aliases, 20
    // root fields), which a real client never needs; raised for this check.
    let app = spawn_app_with(|config| {
        config.graphql.max_aliases = 60;
        config.graphql.max_root_fields = 60;
    })
    .await;
    let seed = seed();
    // One aliased field per product: p1..p60 in one request.
    let fields: String = seed
        .products
        .iter()
        .map(|p| {
            format!(
                "{}: product(id: \"{}\") {{ {PRODUCT_FIELDS} }}\n",
                p.id, p.id
            )
        })
        .collect();
    let response = app.query(&format!("{{ {fields} }}"), json!({})).await;
    let data = data(&response);
    for p in &seed.products {
        assert_eq!(data[p.id.as_str()], product_json(p), "{}", p.id);
    }
    // Spot checks of the documented facts.
    assert_eq!(data["p3"]["price"]["formatted"], "$1,234.50");
    assert_eq!(data["p3"]["price"]["amountCents"], 123_450);
    assert_eq!(data["p3"]["originalPrice"]["formatted"], "$1,499.00");
    assert_eq!(data["p2"]["availability"], "LOW_STOCK");
    assert_eq!(data["p4"]["availability"], "OUT_OF_STOCK");
    assert_eq!(
        data["p10"]["shippingOptions"],
        json!([
            { "id": "standard", "label": "Standard shipping", "price": money(499), "estimatedDays": 5 },
            { "id": "express", "label": "Express shipping", "price": money(1499), "estimatedDays": 2 },
            { "id": "next_day", "label": "Next-day delivery", "price": money(2499), "estimatedDays": 1 },
        ])
    );
    assert_eq!(
        data["p10"]["shippingOptions"][2]["price"]["formatted"],
        "$24.99"
    );
    assert_eq!(usd(123_450), "$1,234.50");
}

#[tokio::test]
async fn an_unknown_product_is_null_without_error() {
    let app = spawn_app().await;
    let response = app
        .query("{ product(id: \"p999\") { id name } }", json!({}))
        .await;
    assert_eq!(data(&response)["product"], Value::Null);
}

#[tokio::test]
async fn signed_in_viewers_see_wishlist_and_personalised_recommendations() {
    let app = spawn_app().await;
    let seed = seed();
    let response = app
        .query_as(
            "u1",
            "{ p1: product(id: \"p1\") { inWishlist personalizedRecommendations { id name } }
               p2: product(id: \"p2\") { inWishlist }
               p5: product(id: \"p5\") { inWishlist } }",
            json!({}),
        )
        .await;
    let found = data(&response);
    // u1's wishlist is [p2, p5].
    assert_eq!(found["p1"]["inWishlist"], false);
    assert_eq!(found["p2"]["inWishlist"], true);
    assert_eq!(found["p5"]["inWishlist"], true);

    // Similar products for u1: p1's category, closest in price first,
    // without what u1 already wishes for.
    let p1 = seed.product("p1").unwrap();
    let mut similar: Vec<&Product> = seed
        .products
        .iter()
        .filter(|p| p.category_id == p1.category_id && p.id != "p1")
        .filter(|p| !seed.wishlists["u1"].contains(&p.id))
        .collect();
    similar.sort_by_key(|p| (p.price_cents - p1.price_cents).abs());
    let expected: Vec<Value> = similar
        .iter()
        .take(10)
        .map(|p| json!({ "id": p.id, "name": p.name }))
        .collect();
    let recommended = found["p1"]["personalizedRecommendations"]
        .as_array()
        .unwrap();
    assert_eq!(recommended.len(), 10);
    assert_eq!(found["p1"]["personalizedRecommendations"], json!(expected));
    for id in ["p1", "p2", "p5"] {
        assert!(
            recommended.iter().all(|p| p["id"] != id),
            "{id} recommended"
        );
    }

    let response = app
        .query_as(
            "u1",
            "{ product(id: \"p1\") { personalizedRecommendations(first: 3) { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&response)["product"]["personalizedRecommendations"],
        json!(
            expected[..3]
                .iter()
                .map(|p| json!({ "id": p["id"] }))
                .collect::<Vec<_>>()
        )
    );
}

/// The dashboard fetches ahead what its selection shows (read from the
/// selection set, fragments looked through); however a client spells the
/// same selection, the answer is the same, aliases, fragments and
/// `__typename` included.
#[tokio::test]
async fn dashboard_answers_the_same_on_its_fast_and_general_paths() {
    let app = spawn_app().await;
    let fields = "__typename ...Recent
        user { __typename name avatarUrl membershipLevel loyaltyPoints }
        orders(first: 4) { __typename id total { __typename formatted amountCents }
            items { quantity unitPrice { formatted } product { ... on Product { id name thumbnailUrl } } } }
        recommendations(first: 3) { score reason product { id name price { formatted currency } } }
        analytics { totalSpent { formatted } ordersThisMonth favoriteCategories }";
    let fragment = "fragment Recent on WebDashboard {
        latest: orders(first: 1) { id status date placedAt itemsCount trackingNumber } }";
    let fast = app
        .query_as(
            "u1",
            &format!("{{ dashboard {{ {fields} }} }} {fragment}"),
            json!({}),
        )
        .await;
    let fast = data(&fast)["dashboard"].clone();
    assert_eq!(fast["__typename"], "WebDashboard");
    assert_eq!(fast["orders"][0]["total"]["__typename"], "Money");
    assert_eq!(fast["latest"][0]["id"], "o14");

    // Addresses are not prefetched: the dashboard takes the general path.
    let general = app
        .query_as(
            "u1",
            &format!("{{ dashboard {{ {fields} user {{ addresses {{ city }} }} }} }} {fragment}"),
            json!({}),
        )
        .await;
    let mut general = data(&general)["dashboard"].clone();
    assert!(general["user"]["addresses"].is_array(), "{general}");
    general["user"].as_object_mut().unwrap().remove("addresses");
    assert_eq!(general, fast);

    // inWishlist needs a call: the orders take the general path.
    let general = app
        .query_as(
            "u1",
            &format!(
                "{{ dashboard {{ {fields} orders(first: 4) {{ items {{ product {{ inWishlist }} }} }} }} }} {fragment}"
            ),
            json!({}),
        )
        .await;
    let mut general = data(&general)["dashboard"].clone();
    for order in general["orders"].as_array_mut().unwrap() {
        for item in order["items"].as_array_mut().unwrap() {
            let product = item["product"].as_object_mut().unwrap();
            assert!(product.remove("inWishlist").unwrap().is_boolean());
        }
    }
    assert_eq!(general, fast);
}
