//! Generated hostile requests against the web BFF (see `testkit::fuzz`):
//! the process stays up, every answer is a 4xx or a well-formed GraphQL
//! response, and refused input calls nothing downstream. A longer run:
//! `FUZZ_CASES=50000 cargo test -p web-bff --test api fuzz`.

use testkit::fuzz::{self, Surface};

use crate::helpers::{SECRET, spawn_app};

const SURFACE: Surface = Surface {
    roots: &[
        ("product", &["id"]),
        ("products", &["categoryId", "first", "after"]),
        ("dashboard", &[]),
        ("me", &[]),
        ("checkout", &["items"]),
    ],
    fields: &[
        "id",
        "name",
        "price",
        "formatted",
        "amountCents",
        "availability",
        "inWishlist",
        "reviews",
        "relatedProducts",
        "personalizedRecommendations",
        "orders",
        "recommendations",
        "analytics",
        "totalSpent",
        "user",
        "items",
        "product",
        "quantity",
        "date",
        "total",
        "status",
        "trackingNumber",
        "description",
        "images",
        "specifications",
        "shippingOptions",
        "edges",
        "node",
        "pageInfo",
        "hasNextPage",
        "totalCount",
        "pricing",
        "paymentMethods",
        "addresses",
        "score",
        "reason",
        "dashboard",
    ],
    mutations: &[
        ("addToWishlist", &["productId"]),
        ("removeFromWishlist", &["productId"]),
        ("placeOrder", &["input"]),
    ],
    secret: SECRET,
    issuer: "devstack",
    audience: "bff",
};

#[test]
fn hostile_requests_never_crash_or_reach_downstream_when_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    assert_eq!(
        (
            app.config.jwt.issuer.as_str(),
            app.config.jwt.audience.as_str()
        ),
        (SURFACE.issuer, SURFACE.audience)
    );
    let calls = || app.downstream_total();
    fuzz::fuzz_graphql(
        &runtime,
        &app.url("/graphql"),
        SURFACE,
        &calls,
        fuzz::cases(1_500),
    );
}
