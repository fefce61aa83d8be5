//! Persisted queries: the app sends a hash instead of the query text.
//!
//! Two modes, chosen at start-up:
//!
//! - **Automatic persisted queries** (APQ; the protocol Apollo Client, Apollo
//!   iOS and Apollo Kotlin speak), when no safelist is configured: a request
//!   carries `extensions.persistedQuery = {version: 1, sha256Hash}`. Hash
//!   only: the query stored under it runs, or the client gets
//!   `PersistedQueryNotFound` and resends with the text. Text and hash: the
//!   hash must be the text's SHA-256; the text is stored, then runs. The store
//!   is a bounded cache (total query bytes and time to live), so a flood of
//!   registrations evicts entries instead of exhausting memory. With Redis
//!   (`BFF_REDIS_URL`) every replica also stores what it registers there
//!   and looks there on a miss, so a query registered through one replica
//!   is served by hash by all (text only, under the same time to live; a
//!   text that does not hash to its key is ignored).
//! - **Safelist** (`BFF_SAFELIST_FILE`): only the operations of a manifest
//!   `{"<id or sha256>": "<query>"}` run, named by id or sent as exactly the
//!   same text. Nothing is registered at run time.
//!
//! Lookups by hash (or id) count in `persisted_queries_total` as `hit` or
//! `miss`, stored texts as `registered`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Value;
use bff_server::SharedState;
use bff_server::error::BffError;
use bff_server::metrics::{PersistedQuery, count_persisted_query};
use moka::future::Cache;

/// The only APQ protocol version there is.
pub const APQ_VERSION: i64 = 1;
/// Total bytes of query text the APQ store keeps; the least useful entries
/// are evicted past it.
pub const APQ_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// Each entry lives this long; then the app re-registers it with one extra
/// round trip.
pub const APQ_TIME_TO_LIVE: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest operation id accepted from a client in safelist mode.
const MAX_ID_LEN: usize = 128;

/// The request extension the APQ protocol uses.
const EXTENSION: &str = "persistedQuery";

/// The lower-case hex SHA-256 of a query, as APQ clients compute it (the
/// hash traces carry too).
pub use bff_server::graphql::sha256_hex;

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The request after persisted-query handling, ready to execute.
pub struct Resolved {
    pub request: async_graphql::Request,
    /// It named its operation by hash (`extensions.persistedQuery`), so its
    /// URL is stable and short enough for a CDN to cache over GET.
    pub by_hash: bool,
}

/// APQ store or safelist, whichever the process was started with.
#[derive(Clone)]
pub struct PersistedQueries {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Automatic {
        store: Cache<String, Arc<str>>,
        shared: SharedState,
        time_to_live: Duration,
    },
    Safelist(Arc<Safelist>),
}

impl PersistedQueries {
    /// Automatic persisted queries with the default bounds.
    pub fn automatic() -> Self {
        Self::automatic_with(APQ_MAX_BYTES, APQ_TIME_TO_LIVE)
    }

    /// Automatic persisted queries keeping at most `max_bytes` of query text,
    /// each entry for at most `time_to_live`.
    pub fn automatic_with(max_bytes: u64, time_to_live: Duration) -> Self {
        let store = Cache::builder()
            .max_capacity(max_bytes)
            // Key (64 bytes of hex) plus text: what an entry really costs.
            .weigher(|hash: &String, query: &Arc<str>| {
                u32::try_from(hash.len() + query.len()).unwrap_or(u32::MAX)
            })
            .time_to_live(time_to_live)
            .build();
        Self {
            mode: Mode::Automatic {
                store,
                shared: SharedState::local_only(),
                time_to_live,
            },
        }
    }

    /// Shares registrations with the other replicas (automatic mode; a
    /// safelist is the same file on every replica already).
    pub fn with_shared_state(mut self, with: SharedState) -> Self {
        if let Mode::Automatic { shared, .. } = &mut self.mode {
            *shared = with;
        }
        self
    }

    /// Only the operations of `safelist` run.
    pub fn safelist(safelist: Safelist) -> Self {
        Self {
            mode: Mode::Safelist(Arc::new(safelist)),
        }
    }

    /// Resolves `request`'s persisted query, if it names one, and enforces
    /// the safelist. An `Err` is answered without executing anything.
    pub async fn resolve(&self, mut request: async_graphql::Request) -> Result<Resolved, BffError> {
        let hash = match request.extensions.0.remove(EXTENSION) {
            Some(extension) => Some(parse_extension(extension)?),
            None => None,
        };
        let by_hash = hash.is_some();
        match &self.mode {
            Mode::Automatic {
                store,
                shared,
                time_to_live,
            } => match hash {
                None => {}
                Some(hash) => {
                    if !is_sha256_hex(&hash) {
                        return Err(BffError::BadUserInput(
                            "persistedQuery.sha256Hash must be the 64 hex digits of the query's SHA-256"
                                .into(),
                        ));
                    }
                    let hash = hash.to_ascii_lowercase();
                    if request.query.is_empty() {
                        let query = match store.get(&hash).await {
                            Some(query) => Some(query),
                            None => match registered_elsewhere(shared, &hash).await {
                                Some(query) => {
                                    store.insert(hash, Arc::clone(&query)).await;
                                    Some(query)
                                }
                                None => None,
                            },
                        };
                        count(query.is_some());
                        let query = query.ok_or(BffError::PersistedQueryNotFound)?;
                        request.query = query.to_string();
                    } else {
                        check_hash(&request.query, &hash)?;
                        // Text that does not even parse is not worth a slot;
                        // execution reports the syntax error.
                        if bff_server::graphql::parse_query(&request.query).is_some() {
                            // Err: Redis did not answer; this replica still has it.
                            let _ = shared
                                .set_with_ttl(&shared_key(&hash), &request.query, *time_to_live)
                                .await;
                            store.insert(hash, Arc::from(request.query.as_str())).await;
                            count_persisted_query(PersistedQuery::Registered);
                        }
                    }
                }
            },
            Mode::Safelist(safelist) => match hash {
                Some(id) if request.query.is_empty() => {
                    let query = safelist.by_id(&id);
                    count(query.is_some());
                    request.query = query.ok_or_else(not_safelisted)?.to_owned();
                }
                Some(id) => {
                    let named = safelist.by_id(&id) == Some(request.query.as_str());
                    if !named {
                        check_hash(&request.query, &id.to_ascii_lowercase())?;
                    }
                    if !safelist.contains_text(&request.query) {
                        return Err(not_safelisted());
                    }
                }
                None => {
                    if !safelist.contains_text(&request.query) {
                        return Err(not_safelisted());
                    }
                }
            },
        }
        Ok(Resolved { request, by_hash })
    }
}

/// The Redis key of a registered query.
fn shared_key(hash: &str) -> String {
    format!("apq:{hash}")
}

/// The text another replica registered under `hash`, if Redis has it (and
/// it really hashes to `hash`: what comes back from outside is checked).
async fn registered_elsewhere(shared: &SharedState, hash: &str) -> Option<Arc<str>> {
    let text = shared.get(&shared_key(hash)).await.ok()??;
    (sha256_hex(&text) == hash).then(|| Arc::from(text))
}

/// Counts a lookup by hash (or id) that found its query, or not.
fn count(found: bool) {
    count_persisted_query(if found {
        PersistedQuery::Hit
    } else {
        PersistedQuery::Miss
    });
}

fn not_safelisted() -> BffError {
    BffError::Forbidden(
        "this server runs only the operations in its safelist, and this one is not among them"
            .into(),
    )
}

fn check_hash(query: &str, hash: &str) -> Result<(), BffError> {
    if sha256_hex(query) == hash {
        Ok(())
    } else {
        Err(BffError::BadUserInput(
            "persistedQuery.sha256Hash does not match the query: nothing was run".into(),
        ))
    }
}

/// `{"version": 1, "sha256Hash": "..."}` → the hash (or, in safelist mode,
/// the operation id).
fn parse_extension(extension: Value) -> Result<String, BffError> {
    let bad = |what: &str| BffError::BadUserInput(format!("extensions.persistedQuery: {what}"));
    let Value::Object(fields) = extension else {
        return Err(bad("must be an object {version, sha256Hash}"));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_i64() == Some(APQ_VERSION) => {}
        Some(Value::Number(n)) => {
            return Err(bad(&format!(
                "version {n} is not supported; only version {APQ_VERSION} is"
            )));
        }
        Some(_) | None => return Err(bad("version is required and must be 1")),
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash)) if !hash.is_empty() && hash.len() <= MAX_ID_LEN => {
            Ok(hash.clone())
        }
        _ => Err(bad("sha256Hash is required and must be a hex string")),
    }
}

/// The operations a production app may run, from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Safelist {
    by_id: HashMap<String, Arc<str>>,
    texts: HashSet<Arc<str>>,
}

/// Why a safelist manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SafelistError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a JSON object of id → query strings: {0}")]
    Json(String),
    #[error("it lists no operations")]
    Empty,
    #[error("entry {id:?}: {reason}")]
    Entry { id: String, reason: String },
}

impl Safelist {
    /// Reads the manifest at `path` (see [`Safelist::from_json`]).
    pub fn load(path: &Path) -> Result<Self, SafelistError> {
        let text = std::fs::read_to_string(path).map_err(|source| SafelistError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// `{"<id>": "<query>"}`. Ids are what clients send as `sha256Hash`:
    /// usually the query's SHA-256 (and then it must be right), or any other
    /// id up to 128 characters. Every query must parse.
    pub fn from_json(text: &str) -> Result<Self, SafelistError> {
        let entries: HashMap<String, String> =
            serde_json::from_str(text).map_err(|error| SafelistError::Json(error.to_string()))?;
        if entries.is_empty() {
            return Err(SafelistError::Empty);
        }
        let mut by_id = HashMap::with_capacity(entries.len());
        let mut texts = HashSet::with_capacity(entries.len());
        for (id, query) in entries {
            let entry = |reason: String| SafelistError::Entry {
                id: id.clone(),
                reason,
            };
            if id.is_empty() || id.len() > MAX_ID_LEN {
                return Err(entry(format!("ids are 1 to {MAX_ID_LEN} characters")));
            }
            if is_sha256_hex(&id) && !id.eq_ignore_ascii_case(&sha256_hex(&query)) {
                return Err(entry(
                    "the id looks like a SHA-256 but is not the query's".into(),
                ));
            }
            if let Err(error) = async_graphql::parser::parse_query(&query) {
                return Err(entry(format!("the query does not parse: {error}")));
            }
            let query: Arc<str> = Arc::from(query);
            texts.insert(Arc::clone(&query));
            let id = if is_sha256_hex(&id) {
                id.to_ascii_lowercase()
            } else {
                id
            };
            by_id.insert(id, query);
        }
        Ok(Self { by_id, texts })
    }

    fn by_id(&self, id: &str) -> Option<&str> {
        let found = match self.by_id.get(id) {
            Some(query) => Some(query),
            None if is_sha256_hex(id) => self.by_id.get(&id.to_ascii_lowercase()),
            None => None,
        };
        found.map(|query| &**query)
    }

    fn contains_text(&self, query: &str) -> bool {
        self.texts.contains(query)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    const QUERY: &str = "{ product(id: \"p1\") { name } }";

    fn request(query: &str, extension: Option<serde_json::Value>) -> async_graphql::Request {
        let mut body = json!({ "query": query });
        if let Some(extension) = extension {
            body["extensions"] = json!({ "persistedQuery": extension });
        }
        serde_json::from_value(body).unwrap()
    }

    fn apq(hash: &str) -> Option<serde_json::Value> {
        Some(json!({ "version": 1, "sha256Hash": hash }))
    }

    #[tokio::test]
    async fn apq_registers_then_resolves_by_hash() {
        let persisted = PersistedQueries::automatic();
        let hash = sha256_hex(QUERY);
        let error = persisted.resolve(request("", apq(&hash))).await.err();
        assert_eq!(error, Some(BffError::PersistedQueryNotFound));

        let resolved = persisted.resolve(request(QUERY, apq(&hash))).await.unwrap();
        assert!(resolved.by_hash);
        assert_eq!(resolved.request.query, QUERY);
        // The extension is consumed, not passed on to execution.
        assert!(resolved.request.extensions.0.is_empty());

        let upper = hash.to_ascii_uppercase();
        let resolved = persisted.resolve(request("", apq(&upper))).await.unwrap();
        assert_eq!(resolved.request.query, QUERY);
    }

    #[tokio::test]
    async fn apq_refuses_bad_hashes_and_versions() {
        let persisted = PersistedQueries::automatic();
        let other = sha256_hex("{ other }");
        let cases = [
            (request(QUERY, apq(&other)), "does not match"),
            (request(QUERY, apq("abc")), "64 hex digits"),
            (
                request(
                    QUERY,
                    Some(json!({ "version": 2, "sha256Hash": sha256_hex(QUERY) })),
                ),
                "version 2 is not supported",
            ),
            (
                request(QUERY, Some(json!({ "sha256Hash": sha256_hex(QUERY) }))),
                "version is required",
            ),
            (
                request(QUERY, Some(json!({ "version": 1 }))),
                "sha256Hash is required",
            ),
            (request(QUERY, Some(json!("x"))), "must be an object"),
        ];
        for (request, message) in cases {
            let error = persisted.resolve(request).await.err().unwrap();
            assert!(matches!(error, BffError::BadUserInput(_)), "{error:?}");
            assert!(error.to_string().contains(message), "{error}");
        }
        // The mismatching text was not stored under either hash.
        for hash in [other, sha256_hex(QUERY)] {
            let error = persisted.resolve(request("", apq(&hash))).await.err();
            assert_eq!(error, Some(BffError::PersistedQueryNotFound));
        }
    }

    #[tokio::test]
    async fn the_apq_store_is_bounded() {
        // Room for about two entries.
        let persisted = PersistedQueries::automatic_with(300, APQ_TIME_TO_LIVE);
        let Mode::Automatic { store, .. } = &persisted.mode else {
            unreachable!()
        };
        for i in 0..50 {
            let query = format!("{{ product(id: \"p{i}\") {{ name price imageUrl }} }}");
            persisted
                .resolve(request(&query, apq(&sha256_hex(&query))))
                .await
                .unwrap();
        }
        store.run_pending_tasks().await;
        assert!(store.weighted_size() <= 300, "{}", store.weighted_size());
        assert!(store.entry_count() <= 3, "{}", store.entry_count());
    }

    #[tokio::test]
    async fn apq_entries_expire() {
        let persisted = PersistedQueries::automatic_with(APQ_MAX_BYTES, Duration::from_millis(50));
        let hash = sha256_hex(QUERY);
        persisted.resolve(request(QUERY, apq(&hash))).await.unwrap();
        assert!(persisted.resolve(request("", apq(&hash))).await.is_ok());
        tokio::time::sleep(Duration::from_millis(120)).await;
        let error = persisted.resolve(request("", apq(&hash))).await.err();
        assert_eq!(error, Some(BffError::PersistedQueryNotFound));
    }

    #[tokio::test]
    async fn plain_queries_pass_in_apq_mode() {
        let persisted = PersistedQueries::automatic();
        let resolved = persisted.resolve(request(QUERY, None)).await.unwrap();
        assert!(!resolved.by_hash);
        assert_eq!(resolved.request.query, QUERY);
    }

    #[tokio::test]
    async fn a_safelist_runs_only_its_operations() {
        let manifest =
            json!({ sha256_hex(QUERY): QUERY, "ProductName": "{ product(id: \"p2\") { name } }" });
        let persisted =
            PersistedQueries::safelist(Safelist::from_json(&manifest.to_string()).unwrap());
        let forbidden = |result: Result<Resolved, BffError>| {
            matches!(result.err(), Some(BffError::Forbidden(_)))
        };

        let by_hash = persisted
            .resolve(request("", apq(&sha256_hex(QUERY))))
            .await;
        assert_eq!(by_hash.unwrap().request.query, QUERY);
        let by_id = persisted
            .resolve(request("", apq("ProductName")))
            .await
            .unwrap();
        assert_eq!(by_id.request.query, "{ product(id: \"p2\") { name } }");
        let by_text = persisted.resolve(request(QUERY, None)).await.unwrap();
        assert!(!by_text.by_hash);
        let text_and_id = persisted
            .resolve(request(
                "{ product(id: \"p2\") { name } }",
                apq("ProductName"),
            ))
            .await;
        assert!(text_and_id.is_ok());

        let other = "{ product(id: \"p3\") { name } }";
        assert!(forbidden(persisted.resolve(request(other, None)).await));
        assert!(forbidden(
            persisted
                .resolve(request("", apq(&sha256_hex(other))))
                .await
        ));
        // Registering is not a way in.
        assert!(forbidden(
            persisted
                .resolve(request(other, apq(&sha256_hex(other))))
                .await
        ));
        assert!(forbidden(
            persisted
                .resolve(request("", apq(&sha256_hex(other))))
                .await
        ));
        // A listed text under a wrong hash is refused as a mismatch.
        let mismatch = persisted
            .resolve(request(QUERY, apq(&sha256_hex(other))))
            .await;
        assert!(matches!(mismatch.err(), Some(BffError::BadUserInput(_))));
    }

    #[test]
    fn bad_manifests_are_refused() {
        let wrong_hash = json!({ sha256_hex("{ x }"): QUERY }).to_string();
        let cases = [
            ("not json", "not a JSON object"),
            ("[\"{ a }\"]", "not a JSON object"),
            ("{\"a\": 1}", "not a JSON object"),
            ("{}", "no operations"),
            (wrong_hash.as_str(), "not the query's"),
            ("{\"a\": \"{ unclosed\"}", "does not parse"),
            ("{\"\": \"{ a }\"}", "ids are 1 to 128"),
        ];
        for (text, message) in cases {
            let error = Safelist::from_json(text).unwrap_err().to_string();
            assert!(error.contains(message), "{text}: {error}");
        }
        let missing = Safelist::load(Path::new("/nonexistent/safelist.json")).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }
}
