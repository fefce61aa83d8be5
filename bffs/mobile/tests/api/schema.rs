//! `schema/mobile.graphql` is the SDL exported from code: this fails when
//! they drift. Regenerate with `UPDATE_SCHEMA=1 cargo test -p mobile-bff schema`.
//! The client contract (`../shared/contract/mobile.graphql`, when present)
//! must be contained in it; CI also runs `shared/tools/contract-check`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

#[test]
fn exported_schema_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema/mobile.graphql");
    let sdl = mobile_bff::schema::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &sdl).unwrap();
    }
    let exported = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        exported == sdl,
        "schema/mobile.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test -p mobile-bff schema`"
    );
}

/// type name → field (or enum value) → "ArgName: Type, ... -> Type".
fn shape(sdl: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let document = async_graphql::parser::parse_schema(sdl).unwrap();
    let mut types = BTreeMap::new();
    for definition in document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let members = match &ty.node.kind {
            TypeKind::Object(object) => object
                .fields
                .iter()
                .map(|field| {
                    let arguments: Vec<String> = field
                        .node
                        .arguments
                        .iter()
                        .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                        .collect();
                    (
                        field.node.name.node.to_string(),
                        format!("({}) -> {}", arguments.join(", "), field.node.ty.node),
                    )
                })
                .collect(),
            TypeKind::Enum(values) => values
                .values
                .iter()
                .map(|value| (value.node.value.node.to_string(), String::new()))
                .collect(),
            _ => BTreeMap::new(),
        };
        types.insert(ty.node.name.node.to_string(), members);
    }
    types
}

#[test]
fn the_schema_contains_the_client_contract() {
    let contract_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/contract/mobile.graphql");
    let Ok(contract) = std::fs::read_to_string(&contract_path) else {
        eprintln!("no contract at {}: skipped", contract_path.display());
        return;
    };
    let contract = shape(&contract);
    let schema = shape(&mobile_bff::schema::sdl());
    let mut differences = Vec::new();
    for (name, members) in &contract {
        let Some(ours) = schema.get(name) else {
            differences.push(format!("missing type {name}"));
            continue;
        };
        for (member, signature) in members {
            match ours.get(member) {
                None => differences.push(format!("{name}.{member}: missing")),
                Some(our) if our != signature => {
                    differences.push(format!("{name}.{member}: {our}, contract says {signature}"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
}
