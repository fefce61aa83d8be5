//! `schema/mobile.graphql` is the SDL exported from code: this fails when
//! they drift. Regenerate with `UPDATE_SCHEMA=1 cargo test -p mobile-bff schema`.
//! That the export contains the client contract is CI's check (`.ci/run`).

use std::path::PathBuf;

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
