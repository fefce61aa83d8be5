//! Equivalence that cannot rot: for every root query field of the exported
//! SDL (`schema/mobile.graphql`), an operation selecting every field reachable
//! from it (`testkit::selection`), run over HTTP as every seed user and
//! for every product, first (validated in full) and again (the endpoint's
//! fast path), and on async-graphql's plain executor over the same
//! services: the answers must agree byte for byte, with every service up
//! and with each one failing in turn (`testkit::equivalence`).

use std::time::Instant;

use devstack_services::{Fault, Service};
use mobile_bff::schema::build_schema;
use serde_json::{Value, json};
use testkit::equivalence::{self, Bff, PlainSchema, Seeds};
use testkit::selection::Schema;

use crate::helpers::{client, seed, spawn_app_with};

const SDL: &str = include_str!("../../../../schema/mobile.graphql");

/// What `first` and `page` are given in the second variant of each
/// operation (the first leaves them at their defaults).
const OTHER_VALUES: &[(&str, &str)] = &[("first", "1"), ("page", "2")];

/// Root fields that need a signed-in viewer.
const VIEWER_ROOTS: &[&str] = &["dashboard"];

#[tokio::test]
async fn every_field_answers_alike_on_the_fast_path_and_on_plain_async_graphql() {
    let started = Instant::now();
    let app = spawn_app_with(equivalence::configure).await;
    let schema = Schema::parse(SDL);
    let operations = schema.operations(OTHER_VALUES);
    let seed = seed();
    let mut product_ids: Vec<Value> = seed.products.iter().map(|p| json!(p.id)).collect();
    product_ids.push(json!("p999")); // no such product: null, no error
    let categories: Vec<Value> = devstack_services::seed::CATEGORIES
        .iter()
        .map(|c| json!(c))
        .collect();
    let users: Vec<&str> = seed.users.iter().map(|u| u.id.as_str()).collect();
    let seeds = Seeds {
        arguments: &[("id", &product_ids), ("categoryId", &categories)],
        viewer_roots: VIEWER_ROOTS,
        users: &users,
        refused: &[],
    };
    let cases = equivalence::cases(&operations, &seeds);
    // With a service failing: every root, every user, a product in ten.
    let product_sample: Vec<Value> = product_ids.iter().step_by(10).cloned().collect();
    let sample_cases = equivalence::cases(
        &operations,
        &Seeds {
            arguments: &[("id", &product_sample), ("categoryId", &categories)],
            ..seeds
        },
    );

    let token = |user: &str| app.token(user);
    let bff = Bff {
        url: app.url("/graphql"),
        client: client(),
        token: &token,
    };
    let plain = PlainSchema::new(build_schema(app.config.profile.is_dev()), SDL, &app.config);
    let all_up = equivalence::check(&bff, &plain, &cases, "every service up", false).await;
    let mut checked = all_up.cases;
    let mut reordered = vec![all_up];
    for service in app.services.all() {
        let name = service.service.name();
        service.control.set_fault(Fault::new("/").status(503));
        let round = format!("{name} service failing");
        let outcome = equivalence::check(&bff, &plain, &sample_cases, &round, true).await;
        service.control.clear_faults();
        checked += outcome.cases;
        // The mobile BFF calls the user, product and order services only.
        if [Service::User, Service::Product, Service::Order].contains(&service.service) {
            assert!(outcome.with_errors > 0, "{round}: no answer had an error");
        }
        reordered.push(outcome);
    }
    eprintln!(
        "{} operations, {checked} cases checked in {:?}",
        operations.len(),
        started.elapsed()
    );
    assert_fields_in_selection_order(&reordered);
}

/// Every answer agreed in its values; this checks they agreed byte for
/// byte too, i.e. that every object's fields came in the order the
/// operation selects them (GraphQL spec, "Objects": "ordered by the order
/// in which they appear in the query"), so the same request always gets
/// the same bytes.
fn assert_fields_in_selection_order(rounds: &[equivalence::Checked]) {
    let total: usize = rounds.iter().map(|round| round.reordered).sum();
    let cases: usize = rounds.iter().map(|round| round.cases).sum();
    let example = rounds
        .iter()
        .find_map(|round| round.first_reordered.clone());
    assert!(
        total == 0,
        "{total} of {cases} cases got their fields in another order than selected (the \
         same values otherwise), e.g. {}",
        example.unwrap_or_default()
    );
}
