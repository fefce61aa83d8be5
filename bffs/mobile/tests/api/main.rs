//! The mobile BFF end to end: devstack's reference services on ephemeral
//! ports, the BFF on an ephemeral port, real HTTP in between.
#![allow(clippy::unwrap_used)]

mod bytes;
mod compression;
mod dashboard;
mod equivalence;
mod fuzz;
mod graphiql;
mod graphql_http;
mod helpers;
mod http;
mod live;
mod persisted;
mod products;
mod replicas;
mod safelist;
mod schema;
mod speed;
