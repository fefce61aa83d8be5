//! The web BFF end to end: devstack's reference services on ephemeral ports,
//! the BFF on an ephemeral port, real HTTP in between.
#![allow(clippy::unwrap_used)]

mod auth;
mod bad_input;
mod chaos;
mod checkout;
mod defer;
mod equivalence;
mod failures;
mod fields;
mod fuzz;
mod graphiql;
mod graphql_http;
mod helpers;
mod hostile;
mod http;
mod limits;
mod live;
mod metrics;
mod mutations;
mod over_http;
mod pagination;
mod propagation;
mod repeats;
mod replicas;
mod schema;
mod speed;
mod startup;
