//! Generated hostile requests against the web BFF (see `testkit::fuzz`):
//! the process stays up, every answer is a 4xx or a well-formed GraphQL
//! response, and refused input calls nothing downstream. A longer run:
//! `FUZZ_CASES=50000 cargo test -p web-bff --test api fuzz`.

use testkit::fuzz::{self, Signer, Surface, Target};

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
};

#[test]
fn hostile_requests_never_crash_or_reach_downstream_when_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let calls = || -> u64 { app.downstream_total() };
    let target = Target {
        url: app.url("/graphql"),
        jwt: Signer {
            secret: SECRET.to_owned(),
            issuer: app.config.jwt.issuer.clone(),
            audience: app.config.jwt.audience.clone(),
        },
        downstream_calls: &calls,
    };
    fuzz::fuzz_graphql(&runtime, SURFACE, &target, fuzz::cases(1_500));
}
