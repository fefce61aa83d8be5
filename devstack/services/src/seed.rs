//! Deterministic seed data of the reference services, and the order service's
//! pricing rules.
//!
//! Nothing here is random or reads the clock: [`Seed::new`] returns the same
//! data every time, so tests may rely on the facts below (each is checked by a
//! unit test of this module).
//!
//! # Users (`u1`..`u5`)
//! | id | name | membership | points | unread | can_checkout | addresses | payment methods | wishlist |
//! |----|------|-----------|--------|--------|--------------|-----------|-----------------|----------|
//! | u1 | Ada Lovelace | gold (5 % off) | 1250 | 3 | true | a1 (default, London), a2 | pm1 (default), pm2 | p2, p5 |
//! | u2 | Grace Hopper | platinum (10 % off) | 8400 | 0 | true | a3 (default) | pm3 (default) | p41 |
//! | u3 | Alan Turing | silver | 320 | 1 | true | a4 (default) | pm4 (default) | — |
//! | u4 | Katherine Johnson | standard | 0 | 12 | true | a5 (default) | pm5 (default) | p21, p33, p51 |
//! | u5 | Edsger Dijkstra | standard | 50 | 0 | **false** | a6 (default) | pm6 (default) | — |
//!
//! Emails are `<first name>@example.com`; avatars are
//! `https://cdn.example.com/avatars/{id}/thumb.jpg` and `.../{id}/full.jpg`.
//!
//! # Products (`p1`..`p60`, all USD)
//! Categories: `electronics` p1–p20, `home` p21–p40, `outdoors` p41–p60; listed
//! in numeric id order (p1, p2, …, p20) within a category.
//! - p1 "Wireless Noise-Cancelling Headphones": 24999, was 29999 (17 % off),
//!   27 reviews (more than a page of 20), description longer than 200 characters.
//! - p3 "4K Ultra HD Smart Television, 55-inch": 123450 cents ($1,234.50), was 149900.
//! - p6 "USB-C Charging Cable (2 metre)": the only name of exactly 30 characters.
//! - p7 "Portable SSD 1TB with USB-C 3.2": the only name of exactly 31 characters.
//! - p21 "Ceramic Pour-Over Coffee Set ☕ Édition Spéciale": multi-byte, 47
//!   characters; the 30th character is the 3-byte `☕` (byte 30 is inside it).
//! - Discounted (original > price): p1, p3, p5, p7, p13, p19, p23, p28, p35,
//!   p41, p46, p54; `discount_percentage` = round(100 × (original − price) / original).
//!   All others have original = price and discount 0.
//! - Inventory: out_of_stock p4, p28, p47; low_stock p2, p7, p21, p44, p55;
//!   all others in_stock.
//! - Products whose number is a multiple of 7 (p7, p14, …, p56) have no
//!   reviews (rating 0.0, review_count 0); `review_count` is the number of
//!   reviews served and `average_rating` their mean rounded to 2 decimals.
//! - Every product has 3–5 gallery images, 2–5 specifications, 1–3 shipping
//!   options (`standard` always, `express` for even numbers, `next_day` for
//!   multiples of 5) and 4–12 related products from its own category.
//!
//! # Orders
//! u1 has 14 orders `o1` (oldest, 2026-01-14) … `o14` (newest,
//! `2026-11-25T14:30:00Z`, status placed); 3 of them (o12, o13, o14) are in
//! November 2026, so u1's `orders_this_month` is 3. o3 and o7 are cancelled,
//! o11 and o12 shipped (with tracking numbers; every other order has none),
//! o13 paid. u2 has o15–o17, u3 has o18, u4 and u5 none. Orders placed
//! through `POST /orders` get ids from `o19` on.
//!
//! Every order's `total_cents` is what [`quote`] gives for its items (at their
//! `unit_price_cents`, which equal the products' prices), the user's
//! membership and standard shipping; e.g. o14 (p2 + p6, gold) is 21751 and
//! o17 (p3, platinum) 119993. Analytics: u1 has spent 174068 (o3 and o7 are
//! cancelled) with favourite categories electronics, home, outdoors; u2 has
//! spent 154790 (outdoors, electronics). Use `Seed::new()` in tests to derive
//! other expectations rather than copying numbers.
//!
//! # Pricing ([`quote`])
//! subtotal = Σ price × quantity; discount = 5 % (gold) or 10 % (platinum) of
//! the subtotal, rounded down; shipping options `standard` (499, 5 days; 0 when
//! subtotal ≥ 5000) and `express` (1499, 2 days); tax = 8 % of (subtotal −
//! discount), rounded half up; total = subtotal − discount + shipping + tax.
//!
//! # Recommendations
//! u1 has 12 (scores 0.98 … 0.55, some without a reason), u2–u5 2–3 each.
//!
//! # Devices
//! | id | owner | status | temperature | battery | last_update | mode |
//! |----|-------|--------|-------------|---------|-------------|------|
//! | d1 | u1 | online | 21.7 | 87 | 2025-11-25T00:00:00Z (1764028800) | heat |
//! | d2 | u2 | offline | -3.6 | 15 | 2025-11-24T18:45:00Z | eco (no schedule) |
//! | d3 | u3 | error | null | null | 2025-11-20T08:00:00Z | off (no schedule) |
//! | d4 | u1 | online | 19.2 | 100 | 2025-11-25T06:00:00Z | auto |

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use downstream::models::{
    Address, Avatar, Cents, Device, DeviceMode, DeviceSettings, DeviceStatus, InventoryStatus,
    Order, OrderItem, OrderStatus, PaymentMethod, Product, Quote, Recommendation, Review,
    ShippingOption, User,
};

pub const CURRENCY: &str = "USD";

/// Category ids, in the order their products are numbered.
pub const CATEGORIES: [&str; 3] = ["electronics", "home", "outdoors"];

/// Products per category (p1–p20, p21–p40, p41–p60).
pub const PRODUCTS_PER_CATEGORY: usize = 20;

/// `created_at` of the newest seed order (u1's `o14`); its month is "this month"
/// for analytics.
pub const NEWEST_ORDER_AT: &str = "2026-11-25T14:30:00Z";

/// The first id `POST /orders` hands out is `o{FIRST_NEW_ORDER_NUMBER}`.
pub const FIRST_NEW_ORDER_NUMBER: u64 = 19;

/// Everything the five services start from.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub users: Vec<User>,
    /// By user id.
    pub payment_methods: BTreeMap<String, Vec<PaymentMethod>>,
    /// By user id; every user has an entry.
    pub wishlists: BTreeMap<String, Vec<String>>,
    /// p1..p60 in numeric order.
    pub products: Vec<Product>,
    /// By product id, newest first; every product has an entry.
    pub reviews: BTreeMap<String, Vec<Review>>,
    /// By product id; every product has an entry.
    pub related: BTreeMap<String, Vec<String>>,
    /// By user id, in no particular order (the service sorts by score).
    pub recommendations: BTreeMap<String, Vec<Recommendation>>,
    /// o1..o18, oldest first.
    pub orders: Vec<Order>,
    pub devices: Vec<Device>,
}

impl Default for Seed {
    fn default() -> Self {
        Self::new()
    }
}

impl Seed {
    pub fn new() -> Self {
        let users = users();
        let products = products();
        let orders = orders(&users, &products);
        Self {
            payment_methods: payment_methods(),
            wishlists: wishlists(),
            reviews: products
                .iter()
                .map(|p| (p.id.clone(), reviews(p)))
                .collect(),
            related: products
                .iter()
                .map(|p| (p.id.clone(), related(number(&p.id))))
                .collect(),
            recommendations: recommendations(),
            devices: devices(),
            users,
            products,
            orders,
        }
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.id == id)
    }

    pub fn order(&self, id: &str) -> Option<&Order> {
        self.orders.iter().find(|o| o.id == id)
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }
}

// ------------------------------------------------------------- pricing

pub const STANDARD_SHIPPING_CENTS: Cents = 499;
pub const EXPRESS_SHIPPING_CENTS: Cents = 1499;
/// Standard shipping is free from this subtotal on.
pub const FREE_SHIPPING_FROM_CENTS: Cents = 5000;

/// Member discount in percent of the subtotal.
pub fn discount_percent(membership_level: &str) -> Cents {
    match membership_level {
        "gold" => 5,
        "platinum" => 10,
        _ => 0,
    }
}

/// The shipping options a quote offers for this subtotal.
pub fn quote_shipping_options(subtotal_cents: Cents) -> Vec<ShippingOption> {
    let standard = if subtotal_cents >= FREE_SHIPPING_FROM_CENTS {
        0
    } else {
        STANDARD_SHIPPING_CENTS
    };
    vec![
        shipping("standard", "Standard shipping", standard, 5),
        shipping("express", "Express shipping", EXPRESS_SHIPPING_CENTS, 2),
    ]
}

/// Prices a cart subtotal for a member with the given shipping option
/// (`"standard"` or `"express"`); `None` for an unknown option.
pub fn quote(
    membership_level: &str,
    subtotal_cents: Cents,
    shipping_option_id: &str,
) -> Option<Quote> {
    let shipping_options = quote_shipping_options(subtotal_cents);
    let shipping_cents = shipping_options
        .iter()
        .find(|o| o.id == shipping_option_id)?
        .price_cents;
    let discount_cents = subtotal_cents * discount_percent(membership_level) / 100;
    let taxable = subtotal_cents - discount_cents;
    // 8 %, rounded half up (amounts are never negative).
    let tax_cents = (taxable * 8 + 50) / 100;
    Some(Quote {
        subtotal_cents,
        discount_cents,
        shipping_cents,
        tax_cents,
        total_cents: taxable + shipping_cents + tax_cents,
        currency: CURRENCY.into(),
        shipping_options,
    })
}

// --------------------------------------------------------------- helpers

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|date| date.and_hms_opt(h, min, 0))
        .map(|t| t.and_utc())
        .expect("seed dates are valid")
}

/// 7 for "p7".
fn number(id: &str) -> usize {
    id[1..].parse().expect("seed ids are a letter and a number")
}

fn shipping(id: &str, label: &str, price_cents: Cents, estimated_days: i64) -> ShippingOption {
    ShippingOption {
        id: id.into(),
        label: label.into(),
        price_cents,
        estimated_days,
    }
}

// ----------------------------------------------------------------- users

fn users() -> Vec<User> {
    /// (id, line1, city, postal_code, country); the first is the default.
    type Addr = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    );
    /// (id, name, membership, points, unread, can_checkout, addresses)
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        i64,
        i64,
        bool,
        &'static [Addr],
    );
    let rows: [Row; 5] = [
        (
            "u1",
            "Ada Lovelace",
            "gold",
            1250,
            3,
            true,
            &[
                ("a1", "12 St James's Square", "London", "SW1Y 4JH", "GB"),
                ("a2", "1 Difference Row", "Cambridge", "CB2 1TN", "GB"),
            ],
        ),
        (
            "u2",
            "Grace Hopper",
            "platinum",
            8400,
            0,
            true,
            &[("a3", "1 Navy Yard", "Arlington", "22202", "US")],
        ),
        (
            "u3",
            "Alan Turing",
            "silver",
            320,
            1,
            true,
            &[("a4", "Sherwood Drive", "Milton Keynes", "MK3 6EB", "GB")],
        ),
        (
            "u4",
            "Katherine Johnson",
            "standard",
            0,
            12,
            true,
            &[("a5", "2 Langley Boulevard", "Hampton", "23681", "US")],
        ),
        (
            "u5",
            "Edsger Dijkstra",
            "standard",
            50,
            0,
            false,
            &[(
                "a6",
                "Plantage Muidergracht 24",
                "Amsterdam",
                "1018 TV",
                "NL",
            )],
        ),
    ];
    rows.iter()
        .map(
            |&(id, name, level, points, unread, can_checkout, addresses)| {
                let first = name.split(' ').next().unwrap_or(name).to_lowercase();
                User {
                    id: id.into(),
                    name: name.into(),
                    email: format!("{first}@example.com"),
                    avatar: Avatar {
                        thumbnail_url: format!("https://cdn.example.com/avatars/{id}/thumb.jpg"),
                        high_res_url: format!("https://cdn.example.com/avatars/{id}/full.jpg"),
                    },
                    membership_level: level.into(),
                    loyalty_points: points,
                    unread_notifications_count: unread,
                    can_checkout,
                    addresses: addresses
                        .iter()
                        .enumerate()
                        .map(|(i, &(aid, line1, city, postal_code, country))| Address {
                            id: aid.into(),
                            line1: line1.into(),
                            city: city.into(),
                            postal_code: postal_code.into(),
                            country: country.into(),
                            is_default: i == 0,
                        })
                        .collect(),
                }
            },
        )
        .collect()
}

fn payment_methods() -> BTreeMap<String, Vec<PaymentMethod>> {
    let rows: [(&str, &[(&str, &str)]); 5] = [
        (
            "u1",
            &[("pm1", "Visa •••• 4242"), ("pm2", "Mastercard •••• 4444")],
        ),
        ("u2", &[("pm3", "Amex •••• 0005")]),
        ("u3", &[("pm4", "Visa •••• 1881")]),
        ("u4", &[("pm5", "PayPal katherine@example.com")]),
        ("u5", &[("pm6", "Visa •••• 1930")]),
    ];
    rows.iter()
        .map(|&(user, methods)| {
            let methods = methods
                .iter()
                .enumerate()
                .map(|(i, &(id, label))| PaymentMethod {
                    id: id.into(),
                    label: label.into(),
                    is_default: i == 0,
                })
                .collect();
            (user.to_owned(), methods)
        })
        .collect()
}

fn wishlists() -> BTreeMap<String, Vec<String>> {
    let rows: [(&str, &[&str]); 5] = [
        ("u1", &["p2", "p5"]),
        ("u2", &["p41"]),
        ("u3", &[]),
        ("u4", &["p21", "p33", "p51"]),
        ("u5", &[]),
    ];
    rows.iter()
        .map(|&(user, ids)| (user.to_owned(), ids.iter().map(|&s| s.to_owned()).collect()))
        .collect()
}

// -------------------------------------------------------------- products

/// (name, price_cents, original_price_cents), p1..p60.
const CATALOG: [(&str, Cents, Cents); 60] = [
    // electronics
    ("Wireless Noise-Cancelling Headphones", 24999, 29999),
    ("Smart Watch Series 7", 19900, 19900),
    ("4K Ultra HD Smart Television, 55-inch", 123450, 149900),
    ("Bluetooth Speaker", 4999, 4999),
    ("Mechanical Keyboard", 8999, 11999),
    ("USB-C Charging Cable (2 metre)", 1299, 1299),
    ("Portable SSD 1TB with USB-C 3.2", 10999, 12999),
    ("Wireless Mouse", 2499, 2499),
    (
        "Noise-Isolating In-Ear Monitors with Detachable Cable",
        14900,
        14900,
    ),
    ("Webcam 1080p", 5900, 5900),
    ("E-Reader", 12999, 12999),
    ("Tablet Stand", 1999, 1999),
    ("Smart Home Hub", 9999, 12999),
    ("Action Camera 4K", 29900, 29900),
    ("Gaming Console Controller", 5999, 5999),
    ("Fitness Tracker", 7999, 7999),
    (
        "Portable Power Bank 20000mAh with Fast Charging",
        3999,
        3999,
    ),
    ("Laptop Sleeve 13-inch", 2999, 2999),
    ("Drone with HD Camera", 45900, 49900),
    ("Smart Light Bulb (4-pack)", 3499, 3499),
    // home
    (
        "Ceramic Pour-Over Coffee Set ☕ Édition Spéciale",
        4599,
        4599,
    ),
    ("Cast Iron Skillet", 3499, 3499),
    ("Memory Foam Pillow", 4999, 5999),
    (
        "Linen Duvet Cover Set, King Size, Stone Washed",
        12900,
        12900,
    ),
    ("Chef's Knife", 8900, 8900),
    ("Bamboo Cutting Board", 2499, 2499),
    ("Scented Candle", 1899, 1899),
    ("Robot Vacuum Cleaner with Self-Emptying Base", 39900, 59900),
    ("French Press", 2999, 2999),
    ("Wool Throw Blanket", 6999, 6999),
    ("Stainless Steel Cookware Set", 19900, 19900),
    ("Air Purifier", 14999, 14999),
    ("Crème Brûlée Ramekins, Set of Six", 2499, 2499),
    ("Wall Clock", 3999, 3999),
    ("Electric Kettle", 4499, 4999),
    ("Herb Garden Kit", 2999, 2999),
    ("Blackout Curtains", 5499, 5499),
    ("Dish Rack", 1999, 1999),
    (
        "Espresso Machine with Milk Frother and Grinder",
        69900,
        69900,
    ),
    ("Doormat", 1499, 1499),
    // outdoors
    ("Two-Person Backpacking Tent", 18900, 22900),
    ("Hiking Boots", 13900, 13900),
    ("Insulated Water Bottle", 2999, 2999),
    ("Sleeping Bag, Three-Season, Down Fill", 15900, 15900),
    ("Camping Stove", 4999, 4999),
    ("Trekking Poles", 5999, 7999),
    ("Headlamp", 2499, 2499),
    ("Hammock with Tree Straps", 3999, 3999),
    ("Kayak Paddle", 8999, 8999),
    ("Rain Jacket", 11999, 11999),
    ("Portable Solar Panel Charger 60W Foldable", 17900, 17900),
    ("Fishing Rod", 6999, 6999),
    ("Picnic Blanket", 2999, 2999),
    ("Binoculars 10x42", 12900, 15900),
    ("Camp Chair", 3999, 3999),
    ("Cooler Box 45L", 8999, 8999),
    ("Mountain Bike Helmet with MIPS Protection", 9999, 9999),
    ("Climbing Harness", 7499, 7499),
    ("First Aid Kit", 2499, 2499),
    ("Snowshoes", 14999, 14999),
];

const OUT_OF_STOCK: [usize; 3] = [4, 28, 47];
const LOW_STOCK: [usize; 5] = [2, 7, 21, 44, 55];

const SPEC_KEYS: [[&str; 5]; 3] = [
    [
        "Brand",
        "Warranty",
        "Connectivity",
        "Battery life",
        "Weight",
    ],
    ["Material", "Dimensions", "Care", "Colour", "Weight"],
    ["Material", "Weight", "Waterproof", "Season", "Warranty"],
];

fn category_of(n: usize) -> usize {
    (n - 1) / PRODUCTS_PER_CATEGORY
}

fn spec_value(key: &str, n: usize) -> String {
    match key {
        "Brand" => ["Acme", "Voltix", "Nimbus"][n % 3].into(),
        "Warranty" => format!("{} years", 1 + n % 3),
        "Connectivity" => ["Bluetooth 5.3", "Wi-Fi 6", "USB-C"][n % 3].into(),
        "Battery life" => format!("{} hours", 8 + n % 5 * 4),
        "Weight" => format!("{} g", 150 + n * 37 % 900),
        "Material" => ["Stainless steel", "Cotton", "Recycled nylon", "Oak"][n % 4].into(),
        "Dimensions" => format!("{} x {} cm", 20 + n % 7 * 5, 10 + n % 5 * 3),
        "Care" => ["Hand wash", "Dishwasher safe", "Machine wash 40°C"][n % 3].into(),
        "Colour" => ["Charcoal", "Sand", "Sage", "White"][n % 4].into(),
        "Waterproof" => ["Yes", "No", "Water resistant"][n % 3].into(),
        "Season" => ["Summer", "Three-season", "Winter"][n % 3].into(),
        _ => String::new(),
    }
}

fn description(name: &str, n: usize, category: &str) -> String {
    let short = format!("{name}. A dependable pick from our {category} range.");
    if n.is_multiple_of(3) || n == 1 {
        format!(
            "{short} Designed for everyday use and built to last, it combines carefully chosen \
             materials with thoughtful details you will notice from the first day. Every unit is \
             inspected before it ships, comes with a clear guide, and is backed by our friendly \
             support team should you ever need help."
        )
    } else {
        short
    }
}

fn products() -> Vec<Product> {
    CATALOG
        .iter()
        .enumerate()
        .map(|(i, &(name, price_cents, original_price_cents))| {
            let n = i + 1;
            let id = format!("p{n}");
            let category = CATEGORIES[category_of(n)];
            let keys = &SPEC_KEYS[category_of(n)];
            let specifications = keys[..2 + n % 4]
                .iter()
                .map(|&k| (k.to_owned(), spec_value(k, n)))
                .collect();
            let inventory_status = if OUT_OF_STOCK.contains(&n) {
                InventoryStatus::OutOfStock
            } else if LOW_STOCK.contains(&n) {
                InventoryStatus::LowStock
            } else {
                InventoryStatus::InStock
            };
            let mut shipping_options = vec![shipping(
                "standard",
                "Standard shipping",
                STANDARD_SHIPPING_CENTS,
                5,
            )];
            if n % 2 == 0 {
                shipping_options.push(shipping(
                    "express",
                    "Express shipping",
                    EXPRESS_SHIPPING_CENTS,
                    2,
                ));
            }
            if n % 5 == 0 {
                shipping_options.push(shipping("next_day", "Next-day delivery", 2499, 1));
            }
            let ratings = review_ratings(n);
            let count = ratings.len() as i64;
            let average_rating = if count == 0 {
                0.0
            } else {
                let sum: i64 = ratings.iter().sum();
                // Mean in hundredths, rounded half up.
                ((sum * 200 + count) / (2 * count)) as f64 / 100.0
            };
            let discount_percentage = ((original_price_cents - price_cents) * 200
                + original_price_cents)
                / (2 * original_price_cents);
            Product {
                description: description(name, n, category),
                name: name.into(),
                price_cents,
                original_price_cents,
                discount_percentage,
                currency: CURRENCY.into(),
                average_rating,
                review_count: count,
                category_id: category.into(),
                thumbnail_url: format!("https://cdn.example.com/products/{id}/thumb.jpg"),
                image_gallery: (1..=3 + n % 3)
                    .map(|k| format!("https://cdn.example.com/products/{id}/gallery/{k}.jpg"))
                    .collect(),
                specifications,
                inventory_status,
                shipping_options,
                id,
            }
        })
        .collect()
}

// --------------------------------------------------------------- reviews

const RATING_PATTERN: [i64; 15] = [5, 4, 5, 3, 4, 5, 5, 2, 4, 5, 1, 4, 3, 5, 4];
const AUTHORS: [&str; 12] = [
    "Maya R.",
    "Tom H.",
    "Priya S.",
    "Lucas M.",
    "Sofia G.",
    "Kenji T.",
    "Amara O.",
    "Jonas W.",
    "Elena P.",
    "Omar K.",
    "Chloé D.",
    "Ravi N.",
];

fn review_count_for(n: usize) -> usize {
    match n {
        1 => 27,
        3 => 12,
        _ if n.is_multiple_of(7) => 0,
        _ => 1 + n * 5 % 9,
    }
}

/// Ratings of product `n`'s reviews in id order (r1, r2, …).
fn review_ratings(n: usize) -> Vec<i64> {
    (1..=review_count_for(n))
        .map(|j| RATING_PATTERN[(n * 3 + j) % RATING_PATTERN.len()])
        .collect()
}

fn reviews(product: &Product) -> Vec<Review> {
    let n = number(&product.id);
    let mut reviews: Vec<Review> = review_ratings(n)
        .into_iter()
        .enumerate()
        .map(|(i, rating)| {
            let j = i + 1;
            // 17 is coprime with 300, so a product's reviews fall on distinct days.
            let day = ((n * 13 + j * 17) % 300) as i64;
            let created_at = at(2026, 1, 1, 0, 0)
                + Duration::days(day)
                + Duration::hours(((n + j) % 24) as i64)
                + Duration::minutes((j * 7 % 60) as i64);
            let (title, verdict) = match rating {
                5 => ("Excellent", "Exceeded my expectations in every way."),
                4 => (
                    "Very good",
                    "Does the job well, with a couple of small quirks.",
                ),
                3 => ("Decent", "Fine for the price, nothing special."),
                2 => ("Disappointing", "Stopped impressing me after a few weeks."),
                _ => ("Would not buy again", "Did not work as described."),
            };
            Review {
                id: format!("{}-r{j}", product.id),
                author_name: AUTHORS[(n + j) % AUTHORS.len()].into(),
                rating,
                title: title.into(),
                body: format!("{verdict} ({})", product.name),
                created_at,
            }
        })
        .collect();
    reviews.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    reviews
}

fn related(n: usize) -> Vec<String> {
    let first = category_of(n) * PRODUCTS_PER_CATEGORY;
    let index = n - 1 - first;
    (1..=4 + n % 9)
        .map(|k| format!("p{}", first + (index + k) % PRODUCTS_PER_CATEGORY + 1))
        .collect()
}

// ------------------------------------------------------- recommendations

fn recommendations() -> BTreeMap<String, Vec<Recommendation>> {
    /// (user, [(product, score, reason)])
    type Row = (
        &'static str,
        &'static [(&'static str, f64, Option<&'static str>)],
    );
    let rows: [Row; 5] = [
        (
            "u1",
            &[
                ("p13", 0.91, Some("Popular in electronics")),
                ("p3", 0.98, Some("Because you viewed Smart Watch Series 7")),
                ("p9", 0.95, None),
                (
                    "p17",
                    0.89,
                    Some("Frequently bought with Mechanical Keyboard"),
                ),
                ("p24", 0.86, Some("Trending in home")),
                ("p31", 0.77, None),
                ("p28", 0.82, Some("Because you bought Cast Iron Skillet")),
                ("p39", 0.74, Some("Customers like you also bought this")),
                ("p41", 0.70, None),
                ("p46", 0.66, Some("Because you bought Camping Stove")),
                ("p51", 0.61, Some("New in outdoors")),
                ("p57", 0.55, None),
            ],
        ),
        (
            "u2",
            &[
                ("p1", 0.90, Some("Trending now")),
                ("p42", 0.80, None),
                ("p33", 0.70, Some("Because you bought Hiking Boots")),
            ],
        ),
        (
            "u3",
            &[
                ("p11", 0.88, Some("Popular in electronics")),
                ("p59", 0.52, None),
                ("p25", 0.64, Some("Trending in home")),
            ],
        ),
        (
            "u4",
            &[
                (
                    "p32",
                    0.81,
                    Some("Because you wished for Crème Brûlée Ramekins"),
                ),
                ("p50", 0.63, None),
            ],
        ),
        (
            "u5",
            &[
                ("p8", 0.71, Some("Popular in electronics")),
                ("p60", 0.42, None),
            ],
        ),
    ];
    rows.iter()
        .map(|&(user, recs)| {
            let recs = recs
                .iter()
                .map(|&(product_id, score, reason)| Recommendation {
                    product_id: product_id.into(),
                    score,
                    reason: reason.map(Into::into),
                })
                .collect();
            (user.to_owned(), recs)
        })
        .collect()
}

// ---------------------------------------------------------------- orders

type OrderRow = (
    &'static str,
    &'static str,
    DateTime<Utc>,
    OrderStatus,
    &'static [(&'static str, i64)],
    Option<&'static str>,
);

fn orders(users: &[User], products: &[Product]) -> Vec<Order> {
    use OrderStatus::{Cancelled, Delivered, Paid, Placed, Shipped};
    // Kept one order per line so the table reads like the module docs.
    #[rustfmt::skip]
    let rows: [OrderRow; 18] = [
        ("o1", "u1", at(2026, 1, 14, 9, 12), Delivered, &[("p5", 1)], None),
        ("o2", "u1", at(2026, 2, 3, 18, 40), Delivered, &[("p22", 1), ("p26", 2)], None),
        ("o3", "u1", at(2026, 3, 21, 11, 5), Cancelled, &[("p3", 1)], None),
        ("o4", "u1", at(2026, 4, 9, 16, 20), Delivered, &[("p43", 2), ("p47", 1)], None),
        ("o5", "u1", at(2026, 5, 30, 8, 55), Delivered, &[("p12", 1)], None),
        ("o6", "u1", at(2026, 6, 18, 20, 10), Delivered, &[("p29", 1), ("p27", 3)], None),
        ("o7", "u1", at(2026, 7, 7, 13, 45), Cancelled, &[("p19", 1)], None),
        ("o8", "u1", at(2026, 8, 22, 10, 30), Delivered, &[("p41", 1), ("p45", 1), ("p59", 1)], None),
        ("o9", "u1", at(2026, 9, 12, 15, 0), Delivered, &[("p8", 2)], None),
        ("o10", "u1", at(2026, 10, 5, 12, 0), Delivered, &[("p31", 1)], None),
        ("o11", "u1", at(2026, 10, 28, 19, 25), Shipped, &[("p16", 1), ("p6", 2)], Some("1Z999AA10123456784")),
        ("o12", "u1", at(2026, 11, 3, 9, 0), Shipped, &[("p1", 1)], Some("1Z999AA10123456791")),
        ("o13", "u1", at(2026, 11, 17, 17, 15), Paid, &[("p24", 1), ("p35", 1), ("p40", 2), ("p20", 1)], None),
        ("o14", "u1", at(2026, 11, 25, 14, 30), Placed, &[("p2", 1), ("p6", 1)], None),
        ("o15", "u2", at(2026, 8, 1, 10, 0), Delivered, &[("p42", 1)], None),
        ("o16", "u2", at(2026, 10, 10, 16, 45), Shipped, &[("p44", 1), ("p43", 2)], Some("9400111899223197428490")),
        ("o17", "u2", at(2026, 11, 20, 11, 30), Paid, &[("p3", 1)], None),
        ("o18", "u3", at(2026, 9, 9, 9, 9), Placed, &[("p60", 1)], None),
    ];
    rows.iter()
        .map(|&(id, user_id, created_at, status, items, tracking)| {
            let items: Vec<OrderItem> = items
                .iter()
                .map(|&(product_id, quantity)| OrderItem {
                    product_id: product_id.into(),
                    quantity,
                    unit_price_cents: products
                        .iter()
                        .find(|p| p.id == product_id)
                        .map(|p| p.price_cents)
                        .expect("seed orders reference seed products"),
                })
                .collect();
            let subtotal = items.iter().map(|i| i.unit_price_cents * i.quantity).sum();
            let level = users
                .iter()
                .find(|u| u.id == user_id)
                .map(|u| u.membership_level.as_str())
                .expect("seed orders reference seed users");
            let total_cents = quote(level, subtotal, "standard")
                .map(|q| q.total_cents)
                .expect("standard shipping exists");
            Order {
                id: id.into(),
                user_id: user_id.into(),
                status,
                total_cents,
                currency: CURRENCY.into(),
                created_at,
                items,
                tracking_number: tracking.map(Into::into),
            }
        })
        .collect()
}

// --------------------------------------------------------------- devices

fn devices() -> Vec<Device> {
    let device =
        |id: &str, owner: &str, status, temperature, battery_level, last_update, settings| Device {
            id: id.into(),
            owner_id: owner.into(),
            status,
            temperature,
            battery_level,
            last_update,
            settings,
        };
    let settings =
        |target_temperature, mode, schedule: Option<&str>, auto_mode_enabled| DeviceSettings {
            target_temperature,
            mode,
            schedule: schedule.map(str::to_owned),
            auto_mode_enabled,
        };
    vec![
        device(
            "d1",
            "u1",
            DeviceStatus::Online,
            Some(21.7),
            Some(87),
            at(2025, 11, 25, 0, 0),
            settings(21.5, DeviceMode::Heat, Some("weekdays 06:30-22:00"), true),
        ),
        device(
            "d2",
            "u2",
            DeviceStatus::Offline,
            Some(-3.6),
            Some(15),
            at(2025, 11, 24, 18, 45),
            settings(18.0, DeviceMode::Eco, None, false),
        ),
        device(
            "d3",
            "u3",
            DeviceStatus::Error,
            None,
            None,
            at(2025, 11, 20, 8, 0),
            settings(20.0, DeviceMode::Off, None, false),
        ),
        device(
            "d4",
            "u1",
            DeviceStatus::Online,
            Some(19.2),
            Some(100),
            at(2025, 11, 25, 6, 0),
            settings(19.5, DeviceMode::Auto, Some("daily 07:00-23:00"), true),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn is_deterministic() {
        assert_eq!(Seed::new(), Seed::new());
    }

    #[test]
    fn users_match_the_docs() {
        let seed = Seed::new();
        let ids: Vec<_> = seed.users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["u1", "u2", "u3", "u4", "u5"]);
        let u1 = seed.user("u1").unwrap();
        assert_eq!(u1.name, "Ada Lovelace");
        assert_eq!(u1.membership_level, "gold");
        assert_eq!(u1.loyalty_points, 1250);
        assert_eq!(u1.unread_notifications_count, 3);
        assert!(u1.can_checkout);
        assert_eq!(u1.addresses.len(), 2);
        assert_eq!(u1.addresses.iter().filter(|a| a.is_default).count(), 1);
        assert_eq!(
            u1.avatar.thumbnail_url,
            "https://cdn.example.com/avatars/u1/thumb.jpg"
        );
        let pms = &seed.payment_methods["u1"];
        assert_eq!(pms.len(), 2);
        assert_eq!(pms.iter().filter(|p| p.is_default).count(), 1);
        assert_eq!(seed.wishlists["u1"], ["p2", "p5"]);
        assert!(!seed.user("u5").unwrap().can_checkout);
        for u in &seed.users {
            assert!(seed.payment_methods.contains_key(&u.id));
            assert!(seed.wishlists.contains_key(&u.id));
            assert!(seed.recommendations.contains_key(&u.id));
        }
    }

    #[test]
    fn products_match_the_docs() {
        let seed = Seed::new();
        assert_eq!(seed.products.len(), 60);
        for (i, p) in seed.products.iter().enumerate() {
            let n = i + 1;
            assert_eq!(p.id, format!("p{n}"));
            assert_eq!(p.category_id, CATEGORIES[(n - 1) / 20]);
            assert_eq!(p.currency, "USD");
            assert!(p.original_price_cents >= p.price_cents);
            let expected = ((p.original_price_cents - p.price_cents) as f64 * 100.0
                / p.original_price_cents as f64)
                .round() as i64;
            assert_eq!(p.discount_percentage, expected, "{}", p.id);
            assert!((3..=5).contains(&p.image_gallery.len()));
            assert!((2..=5).contains(&p.specifications.len()));
            assert!((1..=3).contains(&p.shipping_options.len()));
            let related = &seed.related[&p.id];
            assert!((4..=12).contains(&related.len()));
            assert!(!related.contains(&p.id));
            assert_eq!(related.iter().collect::<BTreeSet<_>>().len(), related.len());
            let reviews = &seed.reviews[&p.id];
            assert_eq!(reviews.len() as i64, p.review_count);
            assert_eq!(reviews.is_empty(), n % 7 == 0, "{}", p.id);
            assert!(
                reviews
                    .windows(2)
                    .all(|w| w[0].created_at > w[1].created_at)
            );
        }
        let by_len = |len: usize| {
            seed.products
                .iter()
                .filter(|p| p.name.chars().count() == len)
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(by_len(30), ["p6"]);
        assert_eq!(by_len(31), ["p7"]);
        let p21 = seed.product("p21").unwrap();
        assert_eq!(p21.name.chars().count(), 47);
        assert_eq!(p21.name.chars().nth(29), Some('☕'));
        assert!(!p21.name.is_char_boundary(30));
        assert!(
            seed.products
                .iter()
                .filter(|p| p.name.chars().count() > 30)
                .count()
                > 5
        );
        let p1 = seed.product("p1").unwrap();
        assert_eq!(p1.review_count, 27);
        assert!(p1.description.chars().count() > 200);
        assert_eq!(
            (
                p1.price_cents,
                p1.original_price_cents,
                p1.discount_percentage
            ),
            (24999, 29999, 17)
        );
        assert_eq!(seed.product("p3").unwrap().price_cents, 123_450);
        let discounted: Vec<_> = seed
            .products
            .iter()
            .filter(|p| p.original_price_cents > p.price_cents)
            .map(|p| number(&p.id))
            .collect();
        assert_eq!(discounted, [1, 3, 5, 7, 13, 19, 23, 28, 35, 41, 46, 54]);
        let with_status = |s: InventoryStatus| {
            seed.products
                .iter()
                .filter(|p| p.inventory_status == s)
                .map(|p| number(&p.id))
                .collect::<Vec<_>>()
        };
        assert_eq!(with_status(InventoryStatus::OutOfStock), [4, 28, 47]);
        assert_eq!(with_status(InventoryStatus::LowStock), [2, 7, 21, 44, 55]);
        // Ratings with more than one decimal exist.
        assert!(
            seed.products
                .iter()
                .any(
                    |p| ((p.average_rating * 10.0).round() - p.average_rating * 10.0).abs() > 0.01
                )
        );
    }

    #[test]
    fn orders_match_the_docs() {
        let seed = Seed::new();
        let u1: Vec<_> = seed.orders.iter().filter(|o| o.user_id == "u1").collect();
        assert_eq!(u1.len(), 14);
        let newest = seed.orders.iter().map(|o| o.created_at).max().unwrap();
        assert_eq!(
            newest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            NEWEST_ORDER_AT
        );
        assert_eq!(seed.order("o14").unwrap().created_at, newest);
        for o in &seed.orders {
            assert_eq!(
                o.tracking_number.is_some(),
                o.status == OrderStatus::Shipped
            );
            assert!((1..=4).contains(&o.items.len()));
            for item in &o.items {
                assert_eq!(
                    seed.product(&item.product_id).unwrap().price_cents,
                    item.unit_price_cents
                );
            }
        }
        assert_eq!(seed.orders.len() as u64 + 1, FIRST_NEW_ORDER_NUMBER);
        let statuses: BTreeSet<_> = seed
            .orders
            .iter()
            .map(|o| format!("{:?}", o.status))
            .collect();
        assert_eq!(statuses.len(), 5);
        assert_eq!(seed.recommendations["u1"].len(), 12);
        assert!(
            seed.recommendations["u1"]
                .iter()
                .any(|r| r.reason.is_none())
        );
    }

    #[test]
    fn quote_arithmetic() {
        // gold: 5 % of 10000 = 500; tax 8 % of 9500 = 760; free standard shipping.
        let q = quote("gold", 10_000, "standard").unwrap();
        assert_eq!(
            (
                q.discount_cents,
                q.shipping_cents,
                q.tax_cents,
                q.total_cents
            ),
            (500, 0, 760, 10_260)
        );
        // platinum: 10 % of 4999 = 499 (down); 8 % of 4500 = 360; standard 499.
        let q = quote("platinum", 4999, "standard").unwrap();
        assert_eq!(
            (
                q.discount_cents,
                q.shipping_cents,
                q.tax_cents,
                q.total_cents
            ),
            (499, 499, 360, 5359)
        );
        // 8 % of 1299 = 103.92 → 104; of 1306 = 104.48 → 104 (an exact .5 cannot occur at 8 %).
        assert_eq!(quote("standard", 1299, "standard").unwrap().tax_cents, 104);
        assert_eq!(quote("standard", 1306, "standard").unwrap().tax_cents, 104);
        let q = quote("standard", 1306, "express").unwrap();
        assert_eq!((q.shipping_cents, q.total_cents), (1499, 1306 + 1499 + 104));
        assert_eq!(q.shipping_options.len(), 2);
        assert!(quote("gold", 100, "teleport").is_none());
    }
}
