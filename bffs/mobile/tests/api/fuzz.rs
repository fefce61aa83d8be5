//! Generated hostile requests against the mobile BFF (see
//! `testkit::fuzz`), persisted-query extensions included: the process stays
//! up, every answer is a 4xx or a well-formed GraphQL response, and refused
//! input calls nothing downstream. A longer run:
//! `FUZZ_CASES=50000 cargo test -p mobile-bff --test api fuzz`.

use testkit::fuzz::{self, Surface};

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
    let calls = || app.services.all().iter().map(|s| s.control.total()).sum();
    fuzz::fuzz_graphql(
        &runtime,
        &app.url("/graphql"),
        SURFACE,
        &calls,
        fuzz::cases(1_500),
    );
}
