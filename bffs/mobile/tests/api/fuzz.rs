//! Generated hostile requests against the mobile BFF (see
//! `testkit::fuzz`), persisted-query extensions included: the process stays
//! up, every answer is a 4xx or a well-formed GraphQL response, and refused
//! input calls nothing downstream. A longer run:
//! `FUZZ_CASES=50000 cargo test -p mobile-bff --test api fuzz`.

use testkit::fuzz::{self, Signer, Surface, Target};

use crate::helpers::{SECRET, spawn_app};

const SURFACE: Surface = Surface {
    roots: &[
        ("product", &["id"]),
        ("products", &["categoryId", "page"]),
        ("dashboard", &[]),
    ],
    fields: &[
        "id",
        "name",
        "price",
        "availability",
        "avatarUrl",
        "date",
        "hasDiscount",
        "hasNextPage",
        "imageUrl",
        "items",
        "notificationsCount",
        "page",
        "product",
        "rating",
        "recentOrders",
        "reviewCount",
        "status",
        "summary",
        "total",
        "user",
        "dashboard",
    ],
    mutations: &[],
};

#[test]
fn hostile_requests_never_crash_or_reach_downstream_when_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let calls = || -> u64 { app.services.all().iter().map(|s| s.control.total()).sum() };
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
