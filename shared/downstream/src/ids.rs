//! What an id sent to a service may look like. Ids become path segments
//! (`/products/{id}`) and comma-separated batch lists (`?ids=a,b`), and
//! most of them come from clients, so they are checked once, here, before
//! any call is built.

/// The longest id (in bytes) the BFFs send downstream. Ids of the contract
/// are short (`p1`, `u1`, UUIDs are 36); anything longer is refused before
/// a call, so a hostile id cannot make a request the BFF cannot even send.
pub const MAX_ID_LEN: usize = 128;

/// [`is_valid_id`]'s rule, for messages to clients.
pub const ID_RULE: &str =
    "ids are 1 to 128 bytes, not \".\" or \"..\", without commas or control characters";

/// Whether `id` may be sent to a service: 1..=[`MAX_ID_LEN`] bytes, not `.`
/// or `..` (URL path normalisation would turn `/wishlist/..` into another
/// path), no control characters (they cannot go in a header or a log line),
/// and no comma (it would split one id into two in a batch list).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id != "."
        && id != ".."
        && !id.chars().any(|c| c.is_control() || c == ',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_names_the_limit() {
        assert!(ID_RULE.contains(&MAX_ID_LEN.to_string()));
    }

    #[test]
    fn ids_of_the_contract_pass() {
        for id in [
            "p1",
            "u1",
            "o14",
            "d1",
            "home",
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert!(is_valid_id(id), "{id}");
        }
        // Odd but harmless: percent-encoded in the path, a literal segment.
        for id in ["...", ".x", "a/b", "%2e%2e", "é", "a b", "?#"] {
            assert!(is_valid_id(id), "{id}");
        }
        assert!(is_valid_id(&"x".repeat(MAX_ID_LEN)));
    }

    #[test]
    fn ids_that_could_change_the_call_are_refused() {
        let long = "x".repeat(MAX_ID_LEN + 1);
        for id in [
            "",
            ".",
            "..",
            "a\nb",
            "a\rb",
            "\0",
            "a\u{85}b",
            "p1,p2",
            long.as_str(),
        ] {
            assert!(!is_valid_id(id), "{id:?}");
        }
        // 65 two-byte characters are 130 bytes: the limit is in bytes.
        assert!(!is_valid_id(&"é".repeat(65)));
    }
}
