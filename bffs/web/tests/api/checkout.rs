//! Checkout initialisation: validate the cart, then price it.

use devstack_services::seed::quote;
use serde_json::{Value, json};

use crate::helpers::{data, error_codes, money, only_error, spawn_app};

const CHECKOUT: &str = "query($items: [CartItemInput!]!) { checkout(items: $items) {
    items { product { id name } quantity lineTotal { amountCents currency formatted } }
    pricing {
        subtotal { amountCents currency formatted }
        discount { amountCents currency formatted }
        shipping { amountCents currency formatted }
        tax { amountCents currency formatted }
        total { amountCents currency formatted }
    }
    shippingOptions { id label price { amountCents currency formatted } estimatedDays }
    paymentMethods { id label isDefault }
    addresses { id line1 city postalCode country isDefault }
    defaultPaymentMethod { id label isDefault }
} }";

fn cart(lines: &[(&str, i64)]) -> Value {
    json!({
        "items": lines.iter()
            .map(|(id, quantity)| json!({ "productId": id, "quantity": quantity }))
            .collect::<Vec<_>>()
    })
}

#[tokio::test]
async fn checkout_prices_the_cart_for_the_viewer() {
    let app = spawn_app().await;
    let response = app
        .query_as("u1", CHECKOUT, cart(&[("p1", 2), ("p3", 1)]))
        .await;
    let checkout = &data(&response)["checkout"];

    assert_eq!(
        checkout["items"],
        json!([
            { "product": { "id": "p1", "name": "Wireless Noise-Cancelling Headphones" },
              "quantity": 2, "lineTotal": money(2 * 24_999) },
            { "product": { "id": "p3", "name": "4K Ultra HD Smart Television, 55-inch" },
              "quantity": 1, "lineTotal": money(123_450) },
        ])
    );
    assert_eq!(checkout["items"][0]["lineTotal"]["formatted"], "$499.98");

    // u1 is gold: subtotal 173448; −5 % rounded down = 8672; tax 8 % of
    // 164776 = 13182.08 → 13182; standard shipping is free over $50.
    assert_eq!(
        checkout["pricing"],
        json!({
            "subtotal": money(173_448),
            "discount": money(8_672),
            "shipping": money(0),
            "tax": money(13_182),
            "total": money(177_958),
        })
    );
    assert_eq!(checkout["pricing"]["total"]["formatted"], "$1,779.58");
    // The same numbers the order service's rules give.
    let expected = quote("gold", 173_448, "standard").unwrap();
    assert_eq!(
        checkout["pricing"]["total"]["amountCents"],
        expected.total_cents
    );
    assert_eq!(
        checkout["pricing"]["tax"]["amountCents"],
        expected.tax_cents
    );

    assert_eq!(
        checkout["shippingOptions"],
        json!([
            { "id": "standard", "label": "Standard shipping", "price": money(0), "estimatedDays": 5 },
            { "id": "express", "label": "Express shipping", "price": money(1_499), "estimatedDays": 2 },
        ])
    );
    let pm1 = json!({ "id": "pm1", "label": "Visa •••• 4242", "isDefault": true });
    assert_eq!(
        checkout["paymentMethods"],
        json!([pm1, { "id": "pm2", "label": "Mastercard •••• 4444", "isDefault": false }])
    );
    assert_eq!(checkout["defaultPaymentMethod"], pm1);
    assert_eq!(
        checkout["addresses"],
        json!([
            { "id": "a1", "line1": "12 St James's Square", "city": "London",
              "postalCode": "SW1Y 4JH", "country": "GB", "isDefault": true },
            { "id": "a2", "line1": "1 Difference Row", "city": "Cambridge",
              "postalCode": "CB2 1TN", "country": "GB", "isDefault": false },
        ])
    );

    // One call per source: user, products (one batch), quote, payment methods.
    let count =
        |service: &devstack_services::ServiceHandle, route: &str| service.control.count(route);
    assert_eq!(count(&app.services.user, "GET /users"), 1);
    assert_eq!(
        count(&app.services.user, "GET /users/{id}/payment-methods"),
        1
    );
    assert_eq!(count(&app.services.product, "GET /products"), 1);
    assert_eq!(count(&app.services.order, "POST /checkout/quote"), 1);
    assert_eq!(app.downstream_total(), 4);
    // The loader sends ids in no particular order.
    let mut ids = app.product_batches()[0].ids.clone();
    ids.sort();
    assert_eq!(ids, ["p1", "p3"]);
}

#[tokio::test]
async fn checkout_pricing_follows_the_membership() {
    let app = spawn_app().await;
    // u2 is platinum: 2499 − 10 % (249) = 2250; tax 180; standard shipping
    // 499 under $50: 2929.
    let response = app.query_as("u2", CHECKOUT, cart(&[("p8", 1)])).await;
    let checkout = &data(&response)["checkout"];
    assert_eq!(
        checkout["pricing"],
        json!({
            "subtotal": money(2_499),
            "discount": money(249),
            "shipping": money(499),
            "tax": money(180),
            "total": money(2_929),
        })
    );
    assert_eq!(checkout["shippingOptions"][0]["price"], money(499));
    assert_eq!(
        checkout["defaultPaymentMethod"],
        json!({ "id": "pm3", "label": "Amex •••• 0005", "isDefault": true })
    );
    assert_eq!(checkout["addresses"][0]["id"], "a3");

    // u3 is silver: no discount.
    let response = app.query_as("u3", CHECKOUT, cart(&[("p8", 3)])).await;
    let expected = quote("silver", 3 * 2_499, "standard").unwrap();
    let pricing = &data(&response)["checkout"]["pricing"];
    assert_eq!(pricing["discount"], money(0));
    assert_eq!(pricing["total"], money(expected.total_cents));
}

#[tokio::test]
async fn repeated_products_are_merged_into_one_line() {
    let app = spawn_app().await;
    let response = app
        .query_as("u1", CHECKOUT, cart(&[("p1", 1), ("p6", 2), ("p1", 2)]))
        .await;
    let checkout = &data(&response)["checkout"];
    let lines: Vec<(&str, i64)> = checkout["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["product"]["id"].as_str().unwrap(),
                i["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lines, [("p1", 3), ("p6", 2)]);
    assert_eq!(checkout["items"][0]["lineTotal"], money(3 * 24_999));
    let subtotal = 3 * 24_999 + 2 * 1_299;
    assert_eq!(checkout["pricing"]["subtotal"], money(subtotal));
}

#[tokio::test]
async fn a_viewer_who_cannot_check_out_is_forbidden_before_pricing() {
    let app = spawn_app().await;
    let response = app.query_as("u5", CHECKOUT, cart(&[("p1", 1)])).await;
    let error = only_error(&response);
    assert_eq!(error["extensions"]["code"], "FORBIDDEN");
    assert_eq!(error["path"], json!(["checkout"]));
    assert_eq!(response["data"], Value::Null);
    assert_eq!(app.services.order.control.total(), 0);
    assert_eq!(app.services.order.control.count("POST /checkout/quote"), 0);
    assert_eq!(
        app.services
            .user
            .control
            .count("GET /users/{id}/payment-methods"),
        0
    );
}

#[tokio::test]
async fn bad_carts_are_refused_before_any_call() {
    let app = spawn_app().await;
    let too_many: Vec<(String, i64)> = (1..=51).map(|n| (format!("p{}", n), 1)).collect();
    let too_many: Vec<(&str, i64)> = too_many.iter().map(|(id, q)| (id.as_str(), *q)).collect();
    let cases: Vec<Value> = vec![
        cart(&[]),
        cart(&[("p1", 0)]),
        cart(&[("p1", -1)]),
        cart(&[("p1", 1), ("p2", -5)]),
        cart(&[("p1", 100)]),
        cart(&[("", 1)]),
        cart(&[("   ", 1)]),
        cart(&too_many),
    ];
    for variables in cases {
        for user in ["u1", "u5"] {
            let response = app.query_as(user, CHECKOUT, variables.clone()).await;
            assert_eq!(
                error_codes(&response),
                ["BAD_USER_INPUT"],
                "{user}: {variables}"
            );
            assert_eq!(app.downstream_total(), 0, "{variables} reached a service");
        }
    }
}

#[tokio::test]
async fn an_unknown_product_is_bad_user_input() {
    let app = spawn_app().await;
    let response = app
        .query_as("u1", CHECKOUT, cart(&[("p1", 1), ("p999", 1)]))
        .await;
    let error = only_error(&response);
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        error["message"].as_str().unwrap().contains("p999"),
        "{error}"
    );
    assert_eq!(response["data"], Value::Null);
}
