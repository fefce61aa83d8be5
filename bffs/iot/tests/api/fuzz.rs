//! Generated hostile input against the IoT BFF's public surface: paths,
//! settings bodies in JSON and in CBOR, `Content-Type`/`Accept`, and
//! `Authorization`. Every case, whatever it is, must get:
//!
//! - no 5xx, and on a 4xx the compact `{"e": "..."}` body;
//! - exactly the device-service calls the input legitimately allows (none
//!   for refused input; the one lookup a user's request makes for a
//!   plausible id; a PATCH only for a valid patch), to a path that is the
//!   client's id as one literal segment, and no call to any other service;
//! - a BFF that still answers `/healthz`.
//!
//! Each oracle says from the generated input alone whether it must be
//! accepted; only raw random bytes get the weaker "refused means no call".
//!
//! One BFF and devstack per target, driven by proptest's `TestRunner` from a
//! plain `#[test]` on its own runtime, with a fixed seed so a run repeats
//! exactly. `FUZZ_CASES=n` runs n cases per target instead of the defaults,
//! `FUZZ_SEED=n` another seed; failures found are kept in `regressions`.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use ciborium::Value as Cbor;
use devstack_services::{TokenKind, issue_dev_token};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, IF_NONE_MATCH};
use serde_json::Value as Json;

use crate::helpers::{As, CBOR, GET_DEVICE, PATCH_SETTINGS, Reply, SECRET, TestApp, spawn_app};

type CaseResult = Result<(), TestCaseError>;

const JSON: &str = "application/json";
/// The largest body the IoT BFF reads (`iot_bff::IOT_BODY_LIMIT_BYTES`).
const BODY_LIMIT: usize = iot_bff::IOT_BODY_LIMIT_BYTES;
const MODES: [&str; 5] = ["off", "heat", "cool", "auto", "eco"];

// ---------------------------------------------------------------------------
// The harness

/// The BFF and its devstack on a runtime of their own.
struct Harness {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
}

impl Harness {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let app = runtime.block_on(spawn_app());
        Self { runtime, app }
    }

    /// One case: counters cleared, `check` run (a future does nothing
    /// until awaited), then the health probe.
    fn case(&self, check: impl Future<Output = CaseResult>) -> CaseResult {
        self.runtime.block_on(async {
            self.app.services.reset();
            check.await?;
            healthy(&self.app).await
        })
    }
}

/// Cases per target: `FUZZ_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// A runner with a fixed seed (`FUZZ_SEED` or a constant) mixed with the
/// target's name, so targets do not replay each other's choices.
fn runner(target: &str, default_cases: u32) -> TestRunner {
    let base: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x10_7b_ff_12);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&base.to_le_bytes());
    for (i, byte) in target.bytes().enumerate() {
        seed[8 + i % 24] ^= byte;
    }
    let config = Config {
        cases: cases(default_cases),
        // No proptest-regressions files: the seed is fixed, and failures
        // found are kept by hand in `regressions` below.
        failure_persistence: None,
        max_shrink_time: 30_000,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// Runs `strategy`'s cases through `check` on one harness.
fn fuzz<S: Strategy>(
    target: &str,
    default_cases: u32,
    strategy: S,
    check: impl Fn(&Harness, S::Value) -> CaseResult,
) where
    S::Value: Debug,
{
    let harness = Harness::start();
    let mut runner = runner(target, default_cases);
    if let Err(failure) = runner.run(&strategy, |input| check(&harness, input)) {
        panic!("{target}: {failure}");
    }
}

// ---------------------------------------------------------------------------
// What every answer must satisfy

async fn healthy(app: &TestApp) -> CaseResult {
    let reply = app
        .client
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| TestCaseError::fail(format!("/healthz unreachable: {e}")))?;
    prop_assert_eq!(reply.status().as_u16(), 200, "/healthz");
    Ok(())
}

/// Never a 5xx; a 4xx is exactly `{"e":"<short reason>"}`, compact, in JSON.
fn well_formed(reply: &Reply) -> CaseResult {
    prop_assert!(
        reply.status < 500,
        "server error {}: {:?}",
        reply.status,
        body_text(reply)
    );
    if (400..500).contains(&reply.status) {
        prop_assert_eq!(reply.header("content-type"), Some(JSON), "{}", reply.status);
        let body: Json = serde_json::from_slice(&reply.body).map_err(|e| {
            TestCaseError::fail(format!(
                "{} body is not JSON ({e}): {:?}",
                reply.status,
                body_text(reply)
            ))
        })?;
        let message = body
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("e")?.as_str());
        prop_assert!(
            message.is_some_and(|m| !m.is_empty() && m.chars().count() <= 100),
            "{} body is not a compact error: {:?}",
            reply.status,
            body_text(reply)
        );
        let compact = serde_json::to_vec(&body).unwrap();
        prop_assert_eq!(compact.as_slice(), reply.body.as_slice(), "not compact");
    }
    Ok(())
}

fn body_text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body)
        .chars()
        .take(200)
        .collect()
}

/// The device-service calls one case may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Calls {
    get: u64,
    patch: u64,
}

const NONE: Calls = Calls { get: 0, patch: 0 };
const LOOKUP: Calls = Calls { get: 1, patch: 0 };

/// The services saw exactly `expected`, every call to `/devices/<id>` or
/// `/devices/<id>/settings` with `<id>` one segment that decodes to `id`.
fn calls_were(app: &TestApp, expected: Calls, id: &str) -> CaseResult {
    let device = &app.services.device.control;
    prop_assert_eq!(
        app.downstream_total(),
        device.total(),
        "a service other than the device service was called"
    );
    let requests = device.requests();
    let seen = Calls {
        get: device.count(GET_DEVICE),
        patch: device.count(PATCH_SETTINGS),
    };
    prop_assert_eq!(
        seen,
        expected,
        "device service calls: {:?}",
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    prop_assert_eq!(
        device.total(),
        seen.get + seen.patch,
        "other device routes called"
    );
    for request in requests {
        let segments: Vec<&str> = request.path.split('/').collect();
        let ok = match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["", "devices", segment]) | ("PATCH", ["", "devices", segment, "settings"]) => {
                percent_decode(segment).as_deref() == Some(id.as_bytes())
            }
            _ => false,
        };
        prop_assert!(ok, "{} {} for id {:?}", request.method, request.path, id);
    }
    Ok(())
}

/// What a refused request may cost: nothing at all.
fn refused(app: &TestApp, reply: &Reply) -> CaseResult {
    prop_assert!(
        (400..500).contains(&reply.status),
        "accepted: {}",
        reply.status
    );
    calls_were(app, NONE, "")
}

// ---------------------------------------------------------------------------
// Ids

/// `%XX` decoded, other bytes as they are (a `%` without two hex digits
/// stays literal, as axum's path decoding leaves it). `None` if not UTF-8.
fn percent_decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            decoded.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded.clone()).ok().map(|_| decoded)
}

fn percent_encode_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Unreserved characters as they are, everything else `%XX`-encoded.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A path segment as it appears on the wire: always valid request-target
/// characters, and at most 30 KB, so that even two of them stay under the
/// 64 KiB hyper refuses a URI past (with its own bodiless 414, before any
/// router; `regressions` sends such a URI on its own).
const MAX_SEGMENT_BYTES: usize = 30_000;

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..40).prop_map(|bytes| percent_encode_all(&bytes)),
        3 => "\\PC{0,20}".prop_map(|text| percent_encode(&text)),
        2 => select(&[
            ".", "..", "%2e", "%2E", "%2e%2e", "%2E%2e", ".%2e", "%2e.", "...", "%2e%2e%2e",
            "..%2f", "%2e%2e%2f", "%2e%2e%5c", "..;", "%00", "%0a", "%0d%0a", "%C2%85", ",",
            "d1,d2", "%2c", "%C0%AE", "%", "%2", "%zz", "%%", "",
        ][..])
        .prop_map(String::from),
        2 => (select(&["a", ".", "%7B", "%C3%A9", "%2e", "%00", "d1"][..]), 1usize..20_000)
            .prop_map(|(unit, n)| unit.repeat(n.min(MAX_SEGMENT_BYTES / unit.len()))),
        2 => "[-._~!$&'()*+,;=:@%a-zA-Z0-9]{0,30}",
        1 => select(&["d1", "d4", "%64%31", "d%31", "D1", "d2"][..]).prop_map(String::from),
    ]
}

/// Who sends a request.
#[derive(Debug, Clone, Copy)]
enum Who {
    Nobody,
    U1,
    D1,
}

impl Who {
    fn as_(self) -> As<'static> {
        match self {
            Who::Nobody => As::Nobody,
            Who::U1 => As::User("u1"),
            Who::D1 => As::Device("d1"),
        }
    }
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![1 => Just(Who::Nobody), 4 => Just(Who::U1), 2 => Just(Who::D1)]
}

/// Where a path-fuzz request goes.
#[derive(Debug, Clone)]
enum Target {
    Status(String),
    Settings(String),
    /// `/v1/devices/{a}?{query}`: the status route, a query it ignores.
    StatusWithQuery(String, String),
    /// `/v1/devices/{a}/{b}`, `/v1/{a}/{b}`, `/{a}`: no route.
    Elsewhere(String),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => segment().prop_map(Target::Status),
        4 => segment().prop_map(Target::Settings),
        1 => (segment(), "[-._~!$&'()*+,;=:@/?%a-zA-Z0-9]{0,40}")
            .prop_map(|(id, query)| Target::StatusWithQuery(id, query)),
        1 => (segment(), segment(), 0..3u8).prop_map(|(a, b, shape)| Target::Elsewhere(match shape {
            0 => format!("/v1/devices/{a}/{b}"),
            1 => format!("/v1/{a}/{b}"),
            _ => format!("/{a}"),
        })),
    ]
}

#[derive(Clone)]
struct PathCase {
    method: &'static str,
    target: Target,
    who: Who,
}

/// Shortened: a failure report must not print 60 KB of path.
impl Debug for PathCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = format!("{:?}", self.target);
        let shown: String = target.chars().take(300).collect();
        let cut = if shown.len() < target.len() {
            format!("… ({} bytes)", target.len())
        } else {
            String::new()
        };
        write!(f, "{} {shown}{cut} as {:?}", self.method, self.who)
    }
}

fn path_case() -> impl Strategy<Value = PathCase> {
    // Mostly the method the target's route serves, sometimes another.
    let other = prop::option::weighted(
        0.15,
        select(
            &[
                "GET", "PATCH", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "FUZZ",
            ][..],
        ),
    );
    (other, target(), who()).prop_map(|(other, target, who)| {
        let own = match target {
            Target::Settings(_) => "PATCH",
            _ => "GET",
        };
        PathCase {
            method: other.unwrap_or(own),
            target,
            who,
        }
    })
}

/// A valid patch that changes nothing visible: the seed's d1 has `a: true`.
const PATCH_BODY: &[u8] = br#"{"a":true}"#;

async fn check_path(app: &TestApp, case: &PathCase) -> CaseResult {
    let (path, route_method, raw_id) = match &case.target {
        Target::Status(id) => (format!("/v1/devices/{id}"), "GET", id.as_str()),
        Target::Settings(id) => (format!("/v1/devices/{id}/settings"), "PATCH", id.as_str()),
        Target::StatusWithQuery(id, query) => {
            (format!("/v1/devices/{id}?{query}"), "GET", id.as_str())
        }
        Target::Elsewhere(path) => (path.clone(), "", ""),
    };
    let body = if case.method == "PATCH" {
        PATCH_BODY
    } else {
        b""
    };
    let reply = app.raw(case.method, &path, case.who.as_(), body).await;
    well_formed(&reply)?;
    let id = percent_decode(raw_id)
        .and_then(|id| String::from_utf8(id).ok())
        .unwrap_or_default();
    // (status, calls); `None`: no route for it, 404 or 405.
    // `/v1/devices/` is no route, but `/v1/devices//settings` matches
    // `{id}` with an empty id.
    let routed = !route_method.is_empty() && (!raw_id.is_empty() || route_method == "PATCH");
    let expected = if !routed {
        (None, NONE)
    } else if route_method != case.method {
        (Some(405), NONE)
    } else if matches!(case.who, Who::Nobody) {
        (Some(401), NONE)
    } else if !downstream::is_valid_id(&id) {
        // Also when it did not decode (`id` is empty then).
        (Some(404), NONE)
    } else {
        let user = matches!(case.who, Who::U1);
        let own = id == "d1" || (user && id == "d4");
        let calls = match (route_method, own) {
            // The status is always read, but a device's only when it is its own.
            ("GET", _) => Calls {
                get: u64::from(own || user),
                patch: 0,
            },
            // A person's PATCH looks the device up first.
            (_, own) => Calls {
                get: u64::from(user),
                patch: u64::from(own),
            },
        };
        (Some(if own { 200 } else { 404 }), calls)
    };
    let label = format!("{} {:.200}", case.method, path);
    match expected.0 {
        Some(status) => prop_assert_eq!(reply.status, status, "{}", label),
        None => prop_assert!(
            matches!(reply.status, 404 | 405),
            "{}: {}",
            label,
            reply.status
        ),
    }
    calls_were(app, expected.1, &id)
}

#[test]
fn paths() {
    fuzz("paths", 900, path_case(), |harness, case| {
        harness.case(check_path(&harness.app, &case))
    });
}

// ---------------------------------------------------------------------------
// Settings bodies

/// A patch field's value as the checks see it, from either encoding.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Null,
    Undefined,
    Bool(bool),
    Number(f64),
    Text(String),
    /// Arrays, maps, bytes, tags, unknown simple values.
    Other,
}

/// Whether a body with these fields must be accepted (the rules of the API,
/// restated from `schema/iot.openapi.json`).
fn valid_patch(fields: &[(Seen, Seen)]) -> bool {
    let mut keys = Vec::new();
    !fields.is_empty()
        && fields.iter().all(|(key, value)| {
            let Seen::Text(key) = key else { return false };
            if keys.contains(key) {
                return false;
            }
            keys.push(key.clone());
            match (key.as_str(), value) {
                ("t", Seen::Number(t)) => (5.0..=35.0).contains(t),
                ("m", Seen::Text(mode)) => MODES.contains(&mode.as_str()),
                ("s", Seen::Null) => true,
                ("s", Seen::Text(s)) => {
                    (1..=64).contains(&s.chars().count()) && !s.chars().any(char::is_control)
                }
                ("a", Seen::Bool(_)) => true,
                _ => false,
            }
        })
}

/// How a body must be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    Refuse,
    /// Raw random input: either, as long as a refusal costs nothing.
    Either,
}

/// Sends `body` as a patch of d1 and checks the answer against `verdict`.
async fn check_patch(
    app: &TestApp,
    who: Who,
    content_type: &str,
    body: Vec<u8>,
    verdict: Verdict,
) -> CaseResult {
    let too_big = body.len() > BODY_LIMIT;
    let request = app
        .settings_request("d1", who.as_())
        .header(CONTENT_TYPE, content_type)
        .body(body);
    let reply = send(request).await?;
    well_formed(&reply)?;
    if too_big {
        prop_assert_eq!(reply.status, 413);
        return calls_were(app, NONE, "");
    }
    let accepted = match verdict {
        Verdict::Accept => true,
        Verdict::Refuse => false,
        Verdict::Either => reply.status == 200,
    };
    if accepted {
        prop_assert_eq!(reply.status, 200, "{:?}", body_text(&reply));
        let lookup = u64::from(matches!(who, Who::U1));
        calls_were(
            app,
            Calls {
                get: lookup,
                patch: 1,
            },
            "d1",
        )
    } else {
        prop_assert_eq!(reply.status, 400, "{:?}", body_text(&reply));
        refused(app, &reply)
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<Reply, TestCaseError> {
    let response = request
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
    Ok(Reply::of(response).await)
}

// JSON

/// A JSON body: fields written out one by one (so keys can repeat), or text.
#[derive(Debug, Clone)]
enum JsonBody {
    Fields(Vec<(String, Json)>),
    /// Text with a known verdict.
    Text(String, Verdict),
    Bytes(Vec<u8>),
}

impl JsonBody {
    fn encode(&self) -> (Vec<u8>, Verdict) {
        match self {
            JsonBody::Fields(fields) => {
                let fields_text: Vec<String> = fields
                    .iter()
                    .map(|(key, value)| format!("{}:{value}", Json::from(key.as_str())))
                    .collect();
                let seen: Vec<(Seen, Seen)> = fields
                    .iter()
                    .map(|(key, value)| (Seen::Text(key.clone()), seen_json(value)))
                    .collect();
                let verdict = if valid_patch(&seen) {
                    Verdict::Accept
                } else {
                    Verdict::Refuse
                };
                (
                    format!("{{{}}}", fields_text.join(",")).into_bytes(),
                    verdict,
                )
            }
            JsonBody::Text(text, verdict) => (text.clone().into_bytes(), *verdict),
            JsonBody::Bytes(bytes) => (bytes.clone(), Verdict::Either),
        }
    }
}

fn seen_json(value: &Json) -> Seen {
    match value {
        Json::Null => Seen::Null,
        Json::Bool(b) => Seen::Bool(*b),
        Json::Number(n) => n.as_f64().map_or(Seen::Other, Seen::Number),
        Json::String(s) => Seen::Text(s.clone()),
        Json::Array(_) | Json::Object(_) => Seen::Other,
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(&["t", "m", "s", "a"][..]).prop_map(String::from),
        1 => select(&["x", "T", "", "target_temperature", "s\u{0}", "t "][..]).prop_map(String::from),
        1 => "\\PC{0,40}",
    ]
}

/// Text for a schedule or a mode: plausible, long, or with control characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(&MODES[..]).prop_map(String::from),
        1 => select(&["HEAT", "turbo", "", "eco ", "weekdays 06:30-22:00"][..]).prop_map(String::from),
        3 => "\\PC{0,70}",
        3 => ("\\PC{0,10}", select(&[
            '\0', '\r', '\n', '\t', '\u{b}', '\u{1b}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}',
            '\u{2028}', '\u{200b}', '\u{feff}', '\u{202e}',
        ][..]), "\\PC{0,10}")
            .prop_map(|(a, c, b)| format!("{a}{c}{b}")),
        1 => vec(any::<char>(), 0..80).prop_map(|chars| chars.into_iter().collect()),
    ]
}

fn json_leaf() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (5.0..=35.0f64).prop_map(Json::from),
        (0..=40i64).prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        text().prop_map(Json::String),
    ]
}

fn json_value() -> impl Strategy<Value = Json> {
    json_leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Json::Array),
            vec(("\\PC{0,6}", inner), 0..4)
                .prop_map(|fields| Json::Object(fields.into_iter().collect())),
        ]
    })
}

/// Hand-written texts whose verdict is known.
fn json_text() -> impl Strategy<Value = JsonBody> {
    let numbers = select(
        &[
            ("1e400", false),
            ("-1e400", false),
            ("1e-400", false),
            ("22.5e0", true),
            ("2.25E1", true),
            ("-0", false),
            ("0.0000000000000000000000000000000000000000005", false),
            ("35.000000000000000000000000000001", true),
            ("184467440737095516160000", false),
            ("NaN", false),
            ("Infinity", false),
            ("0x16", false),
            ("+22", false),
            ("022", false),
        ][..],
    )
    .prop_map(|(n, ok)| {
        let verdict = if ok { Verdict::Accept } else { Verdict::Refuse };
        JsonBody::Text(format!(r#"{{"t":{n}}}"#), verdict)
    });
    let nesting = (
        select(&["[", "{\"s\":", "{\"a\":[", "[{\"t\":"][..]),
        1usize..600,
    )
        .prop_map(|(open, depth)| {
            let close: String = open
                .chars()
                .rev()
                .filter_map(|c| match c {
                    '[' => Some(']'),
                    '{' => Some('}'),
                    _ => None,
                })
                .collect();
            JsonBody::Text(
                format!("{}1{}", open.repeat(depth), close.repeat(depth)),
                Verdict::Refuse,
            )
        });
    let long_number = (1usize..1200).prop_map(|digits| {
        // 10 (one zero) is a fine temperature; every longer one is not.
        let verdict = if digits == 1 {
            Verdict::Accept
        } else {
            Verdict::Refuse
        };
        JsonBody::Text(format!(r#"{{"t":1{}}}"#, "0".repeat(digits)), verdict)
    });
    let escapes = select(
        &[
            (r#"{"s":"\ud800"}"#, false),
            (r#"{"s":"\udc00x"}"#, false),
            (r#"{"s":"\ud83c\udf19"}"#, true),
            (r#"{"s":"\u0000"}"#, false),
            (r#"{"s":"a\/b"}"#, true),
            (r#"{"s":"\x41"}"#, false),
            (r#"{"\u0073":null}"#, true),
            (r#"{"s" : null , "a":true }"#, true),
            ("{\"s\":\"a\u{0}\"}", false),
            ("{\"a\":true}\u{0}", false),
            (r#"{"a":true}}"#, false),
            (r#"{"a":tru}"#, false),
            (r#"{"a":true,}"#, false),
            (r#"{"a":true"#, false),
            ("\u{feff}{\"a\":true}", false),
            (" \t\r\n{\"a\":true} \t\r\n", true),
        ][..],
    )
    .prop_map(|(text, ok)| {
        JsonBody::Text(
            text.into(),
            if ok { Verdict::Accept } else { Verdict::Refuse },
        )
    });
    let padded = (BODY_LIMIT - 10..BODY_LIMIT + 400).prop_map(|len| {
        JsonBody::Text(
            format!("{}{{\"t\":22}}", " ".repeat(len - 8)),
            Verdict::Accept,
        )
    });
    prop_oneof![numbers, nesting, long_number, escapes, padded]
}

/// A valid value for `key`.
fn json_valid(key: &str) -> BoxedStrategy<Json> {
    match key {
        "t" => prop_oneof![
            (5.0..=35.0f64).prop_map(Json::from),
            (5..=35i64).prop_map(Json::from)
        ]
        .boxed(),
        "m" => select(&MODES[..]).prop_map(Json::from).boxed(),
        // `\PC`: no control (nor other category C) characters.
        "s" => prop_oneof![1 => Just(Json::Null), 3 => "\\PC{1,64}".prop_map(Json::from)].boxed(),
        _ => any::<bool>().prop_map(Json::Bool).boxed(),
    }
}

/// Known keys, each once, values mostly valid: the bodies that may pass.
fn json_plausible() -> impl Strategy<Value = Vec<(String, Json)>> {
    proptest::sample::subsequence(&["t", "m", "s", "a"][..], 1..=4)
        .prop_flat_map(|keys| {
            keys.into_iter()
                .map(|key| {
                    let value = prop_oneof![6 => json_valid(key), 1 => json_leaf()];
                    (Just(key.to_owned()), value)
                })
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn json_body() -> impl Strategy<Value = JsonBody> {
    let value = prop_oneof![4 => json_leaf(), 1 => json_value()];
    prop_oneof![
        4 => json_plausible().prop_map(JsonBody::Fields),
        3 => vec((key(), value), 0..6).prop_map(JsonBody::Fields),
        2 => json_text(),
        1 => vec(any::<u8>(), 0..300).prop_map(JsonBody::Bytes),
    ]
}

#[test]
fn json_bodies() {
    let strategy = (json_body(), prop_oneof![Just(Who::U1), Just(Who::D1)]);
    fuzz("json_bodies", 1000, strategy, |harness, (body, who)| {
        let (bytes, verdict) = body.encode();
        harness.case(check_patch(&harness.app, who, JSON, bytes, verdict))
    });
}

// CBOR

/// A CBOR item: any `ciborium::Value`, or what `Value` cannot express.
#[derive(Debug, Clone)]
enum Node {
    Value(Cbor),
    /// Simple value 23, in its one-byte form (`0xf7`).
    Undefined,
    /// Simple value 23 as `0xf8 0x17`, which ciborium reads too.
    UndefinedInTwoBytes,
    /// A simple value other than false, true, null and undefined.
    Simple(u8),
    IndefiniteText(Vec<String>),
    IndefiniteArray(Vec<Node>),
    IndefiniteMap(Vec<(Node, Node)>),
    Array(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Tag(u64, Box<Node>),
}

impl Node {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Node::Value(value) => ciborium::into_writer(value, &mut *out).unwrap(),
            Node::Undefined => out.push(0xf7),
            Node::UndefinedInTwoBytes => out.extend([0xf8, 23]),
            Node::Simple(n) if *n < 24 => out.push(0xe0 | n),
            Node::Simple(n) => out.extend([0xf8, *n]),
            Node::IndefiniteText(chunks) => {
                out.push(0x7f);
                for chunk in chunks {
                    head(out, 3, chunk.len() as u64);
                    out.extend(chunk.as_bytes());
                }
                out.push(0xff);
            }
            Node::IndefiniteArray(items) => {
                out.push(0x9f);
                items.iter().for_each(|item| item.write(out));
                out.push(0xff);
            }
            Node::IndefiniteMap(entries) => {
                out.push(0xbf);
                for (key, value) in entries {
                    key.write(out);
                    value.write(out);
                }
                out.push(0xff);
            }
            Node::Array(items) => {
                head(out, 4, items.len() as u64);
                items.iter().for_each(|item| item.write(out));
            }
            Node::Map(entries) => {
                head(out, 5, entries.len() as u64);
                for (key, value) in entries {
                    key.write(out);
                    value.write(out);
                }
            }
            Node::Tag(tag, item) => {
                head(out, 6, *tag);
                item.write(out);
            }
        }
    }

    /// What the patch checks see when this is a field's key or value.
    fn seen(&self) -> Seen {
        match self {
            Node::Value(value) => seen_cbor(value),
            Node::Undefined | Node::UndefinedInTwoBytes => Seen::Undefined,
            Node::IndefiniteText(chunks) => Seen::Text(chunks.concat()),
            // A bignum is read as the integer it is, wherever the tag came from.
            Node::Tag(tag, item) => match item.as_ref() {
                Node::Value(value) => seen_cbor(&Cbor::Tag(*tag, Box::new(value.clone()))),
                _ => Seen::Other,
            },
            Node::Simple(_)
            | Node::IndefiniteArray(_)
            | Node::IndefiniteMap(_)
            | Node::Array(_)
            | Node::Map(_) => Seen::Other,
        }
    }

    /// The fields, if this is a map.
    fn fields(&self) -> Option<Vec<(Seen, Seen)>> {
        match self {
            Node::Map(entries) | Node::IndefiniteMap(entries) => {
                Some(entries.iter().map(|(k, v)| (k.seen(), v.seen())).collect())
            }
            Node::Value(Cbor::Map(entries)) => Some(
                entries
                    .iter()
                    .map(|(k, v)| (seen_cbor(k), seen_cbor(v)))
                    .collect(),
            ),
            _ => None,
        }
    }
}

fn head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let major = major << 5;
    match argument {
        0..=23 => out.push(major | argument as u8),
        24..=0xff => out.extend([major | 24, argument as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend((argument as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend((argument as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend(argument.to_be_bytes());
        }
    }
}

fn seen_cbor(value: &Cbor) -> Seen {
    match value {
        Cbor::Null => Seen::Null,
        Cbor::Bool(b) => Seen::Bool(*b),
        Cbor::Integer(n) => Seen::Number(i128::from(*n) as f64),
        Cbor::Float(f) => Seen::Number(*f),
        Cbor::Text(s) => Seen::Text(s.clone()),
        // Bignums (RFC 8949 §3.4.3) are read as the integers they are.
        Cbor::Tag(tag @ (2 | 3), item) => match item.as_ref() {
            Cbor::Bytes(bytes) if bytes.len() <= 16 => {
                let n = bytes.iter().fold(0u128, |n, b| (n << 8) | u128::from(*b));
                Seen::Number(if *tag == 2 { n as f64 } else { -1.0 - n as f64 })
            }
            _ => Seen::Other,
        },
        _ => Seen::Other,
    }
}

fn cbor_leaf() -> impl Strategy<Value = Cbor> {
    prop_oneof![
        Just(Cbor::Null),
        any::<bool>().prop_map(Cbor::Bool),
        (0..=40i64).prop_map(|n| Cbor::Integer(n.into())),
        any::<i64>().prop_map(|n| Cbor::Integer(n.into())),
        any::<u64>().prop_map(|n| Cbor::Integer(n.into())),
        (5.0..=35.0f64).prop_map(Cbor::Float),
        any::<f64>().prop_map(Cbor::Float),
        select(
            &[
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                5.0,
                35.0,
                35.000_000_1
            ][..]
        )
        .prop_map(Cbor::Float),
        text().prop_map(Cbor::Text),
        vec(any::<u8>(), 0..20).prop_map(Cbor::Bytes),
    ]
}

fn tag_number() -> impl Strategy<Value = u64> {
    prop_oneof![
        select(&[0u64, 1, 2, 3, 4, 5, 21, 24, 32, 55_799, u64::MAX][..]),
        any::<u64>(),
    ]
}

fn cbor_value() -> impl Strategy<Value = Cbor> {
    cbor_leaf().prop_recursive(5, 32, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Cbor::Array),
            vec((inner.clone(), inner.clone()), 0..4).prop_map(Cbor::Map),
            (tag_number(), inner).prop_map(|(tag, v)| Cbor::Tag(tag, Box::new(v))),
            (select(&[2u64, 3][..]), vec(any::<u8>(), 0..20))
                .prop_map(|(tag, bytes)| Cbor::Tag(tag, Box::new(Cbor::Bytes(bytes)))),
        ]
    })
}

fn cbor_key() -> impl Strategy<Value = Node> {
    prop_oneof![
        8 => key().prop_map(|k| Node::Value(Cbor::Text(k))),
        1 => select(&["t", "m", "s", "a"][..]).prop_map(|k| Node::IndefiniteText(vec![k.into()])),
        1 => cbor_value().prop_map(Node::Value),
        1 => Just(Node::Undefined),
    ]
}

fn cbor_node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        6 => cbor_leaf().prop_map(Node::Value),
        2 => Just(Node::Undefined),
        1 => Just(Node::UndefinedInTwoBytes),
        1 => prop_oneof![0u8..20, 24u8..=255].prop_map(Node::Simple),
        1 => vec("\\PC{0,8}", 0..4).prop_map(Node::IndefiniteText),
        1 => cbor_value().prop_map(Node::Value),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Node::Array),
            vec(inner.clone(), 0..3).prop_map(Node::IndefiniteArray),
            vec((inner.clone(), inner.clone()), 0..3).prop_map(Node::Map),
            (tag_number(), inner).prop_map(|(tag, node)| Node::Tag(tag, Box::new(node))),
        ]
    })
}

/// A CBOR body.
#[derive(Debug, Clone)]
enum CborBody {
    /// One item (usually a map of fields), maybe followed by junk.
    Item(Node, Vec<u8>),
    /// `depth` containers opened around a null, as a value of `s` or alone.
    Nested {
        opener: Vec<u8>,
        depth: usize,
        in_s: bool,
    },
    Bytes(Vec<u8>),
}

impl CborBody {
    fn encode(&self) -> (Vec<u8>, Verdict) {
        match self {
            CborBody::Item(node, junk) => {
                let mut body = Vec::new();
                node.write(&mut body);
                body.extend(junk);
                let valid =
                    junk.is_empty() && node.fields().is_some_and(|fields| valid_patch(&fields));
                (
                    body,
                    if valid {
                        Verdict::Accept
                    } else {
                        Verdict::Refuse
                    },
                )
            }
            CborBody::Nested {
                opener,
                depth,
                in_s,
            } => {
                let mut body = Vec::new();
                if *in_s {
                    body.extend(b"\xa1\x61s");
                }
                for _ in 0..*depth {
                    body.extend(opener);
                }
                body.push(0xf6);
                (body, Verdict::Refuse)
            }
            CborBody::Bytes(bytes) => (bytes.clone(), Verdict::Either),
        }
    }
}

/// Openers of an array, an indefinite array, `{"s": ...}` and tag 6.
const NESTING_OPENERS: [&[u8]; 4] = [b"\x81", b"\x9f", b"\xa1\x61s", b"\xc6"];

/// A valid value for `key`, in any of its CBOR spellings.
fn cbor_valid(key: &str) -> BoxedStrategy<Node> {
    match key {
        "t" => prop_oneof![
            (5.0..=35.0f64).prop_map(|t| Node::Value(Cbor::Float(t))),
            (5..=35i64).prop_map(|t| Node::Value(Cbor::Integer(t.into()))),
            // 22 as a bignum: tag 2 around its bytes.
            Just(Node::Tag(2, Box::new(Node::Value(Cbor::Bytes(vec![22]))))),
        ]
        .boxed(),
        "m" => prop_oneof![
            select(&MODES[..]).prop_map(|m| Node::Value(Cbor::Text(m.into()))),
            select(&MODES[..])
                .prop_map(|m| Node::IndefiniteText(m.chars().map(String::from).collect())),
        ]
        .boxed(),
        "s" => prop_oneof![
            1 => Just(Node::Value(Cbor::Null)),
            3 => "\\PC{1,64}".prop_map(|s| Node::Value(Cbor::Text(s))),
            1 => vec("\\PC{1,10}", 1..4).prop_map(Node::IndefiniteText),
        ]
        .boxed(),
        _ => any::<bool>()
            .prop_map(|a| Node::Value(Cbor::Bool(a)))
            .boxed(),
    }
}

/// Known keys, each once, values mostly valid; undefined often enough.
fn cbor_plausible() -> impl Strategy<Value = Vec<(Node, Node)>> {
    proptest::sample::subsequence(&["t", "m", "s", "a"][..], 1..=4)
        .prop_flat_map(|keys| {
            keys.into_iter()
                .map(|key| {
                    let value = prop_oneof![
                        8 => cbor_valid(key),
                        1 => Just(Node::Undefined),
                        1 => cbor_node(),
                    ];
                    (Just(Node::Value(Cbor::Text(key.into()))), value)
                })
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn cbor_body() -> impl Strategy<Value = CborBody> {
    let fields = || vec((cbor_key(), cbor_node()), 0..6);
    let map = prop_oneof![
        4 => cbor_plausible().prop_map(Node::Map),
        1 => cbor_plausible().prop_map(Node::IndefiniteMap),
        3 => fields().prop_map(Node::Map),
        1 => fields().prop_map(Node::IndefiniteMap),
        1 => cbor_value().prop_map(Node::Value),
        1 => cbor_node(),
    ];
    let junk = prop_oneof![9 => Just(Vec::new()), 1 => vec(any::<u8>(), 1..4)];
    prop_oneof![
        7 => (map, junk).prop_map(|(node, junk)| CborBody::Item(node, junk)),
        // Arrays, maps `{"s": ...}`, and tags, nested up to past ciborium's 256.
        2 => (select(&NESTING_OPENERS[..]), 1usize..400, any::<bool>())
            .prop_map(|(opener, depth, in_s)| CborBody::Nested { opener: opener.to_vec(), depth, in_s }),
        1 => vec(any::<u8>(), 0..200).prop_map(CborBody::Bytes),
    ]
}

#[test]
fn cbor_bodies() {
    let strategy = (cbor_body(), prop_oneof![Just(Who::U1), Just(Who::D1)]);
    fuzz("cbor_bodies", 1000, strategy, |harness, (body, who)| {
        let (bytes, verdict) = body.encode();
        harness.case(check_patch(&harness.app, who, CBOR, bytes, verdict))
    });
}

// ---------------------------------------------------------------------------
// Content-Type and Accept

fn media_range() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        4 => select(&[
            "application/json", "application/cbor", "APPLICATION/CBOR", "*/*", "application/*",
            "text/html", "application/cbor+json", "application/json5", "*", "/", "",
        ][..]).prop_map(String::from),
        1 => "[ -~]{0,20}",
    ];
    let parameter = select(
        &[
            "",
            ";q=0.5",
            ";q=0",
            ";q=1",
            ";q=1.0",
            ";q=0.001",
            ";q=bogus",
            ";q=-1",
            ";q=2",
            ";q=NaN",
            ";q=1e309",
            ";q=",
            ";charset=utf-8",
            "; q=0.9",
            ";level=1;q=0.3",
            ";;;",
            ";q=0.5;q=1",
        ][..],
    );
    (kind, parameter).prop_map(|(kind, parameter)| format!("{kind}{parameter}"))
}

/// A header value: a list of media ranges, printable noise, or any bytes a
/// header may carry (obs-text included).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => vec(media_range(), 0..6).prop_map(|ranges| ranges.join(", ").into_bytes()),
        1 => (media_range(), 1usize..400).prop_map(|(range, n)| vec![range; n].join(",").into_bytes()),
        1 => "[ -~]{0,100}".prop_map(String::into_bytes),
        // Any bytes but the controls a header value cannot carry (tab can).
        1 => vec(any::<u8>(), 0..60).prop_map(|bytes| {
            bytes.into_iter().map(|b| if (b < 32 && b != b'\t') || b == 127 { b ^ 0x40 } else { b }).collect()
        }),
    ]
}

#[derive(Debug, Clone)]
struct HeaderCase {
    patch: bool,
    /// The body's own encoding (for a PATCH).
    cbor_body: bool,
    content_type: Option<Vec<u8>>,
    accept: Vec<Vec<u8>>,
    if_none_match: Option<Vec<u8>>,
    request_id: Option<Vec<u8>>,
}

fn header_case() -> impl Strategy<Value = HeaderCase> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(
            0.8,
            prop_oneof![
                1 => select(&[JSON, CBOR, "application/json; charset=utf-8", "Application/CBOR ; x=y"][..])
                    .prop_map(|value| value.as_bytes().to_vec()),
                2 => header_value(),
            ],
        ),
        vec(header_value(), 0..3),
        prop::option::weighted(0.2, header_value()),
        prop::option::weighted(0.2, header_value()),
    )
        .prop_map(
            |(patch, cbor_body, content_type, accept, if_none_match, request_id)| HeaderCase {
                patch,
                cbor_body,
                content_type,
                accept,
                if_none_match,
                request_id,
            },
        )
}

/// The encoding `Content-Type` names, restated: none means JSON; the media
/// type before any `;`, trimmed, compared without case; not text: neither.
fn sent_encoding(content_type: Option<&[u8]>) -> Option<&'static str> {
    let Some(value) = content_type else {
        return Some(JSON);
    };
    let value = HeaderValue::from_bytes(value).ok()?;
    let media_type = value.to_str().ok()?.split(';').next()?.trim();
    [JSON, CBOR]
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(media_type))
}

async fn check_headers(app: &TestApp, case: &HeaderCase) -> CaseResult {
    let mut request = if case.patch {
        let body = if case.cbor_body {
            b"\xa1\x61a\xf5".to_vec()
        } else {
            PATCH_BODY.to_vec()
        };
        app.settings_request("d1", As::User("u1")).body(body)
    } else {
        app.status_request("d1", As::User("u1"))
    };
    let value = |bytes: &[u8]| HeaderValue::from_bytes(bytes).unwrap();
    if let Some(content_type) = &case.content_type {
        request = request.header(CONTENT_TYPE, value(content_type));
    }
    for accept in &case.accept {
        request = request.header(ACCEPT, value(accept));
    }
    if let Some(tag) = &case.if_none_match {
        request = request.header(IF_NONE_MATCH, value(tag));
    }
    if let Some(id) = &case.request_id {
        request = request.header("x-request-id", value(id));
    }
    let reply = send(request).await?;
    well_formed(&reply)?;
    if case.patch {
        let body_encoding = if case.cbor_body { CBOR } else { JSON };
        if sent_encoding(case.content_type.as_deref()) != Some(body_encoding) {
            prop_assert_eq!(reply.status, 400, "{:?}", body_text(&reply));
            return refused(app, &reply);
        }
        prop_assert_eq!(reply.status, 200, "{:?}", body_text(&reply));
        calls_were(app, Calls { get: 1, patch: 1 }, "d1")?;
    } else {
        // `*` or the current tag: 304 without a body.
        prop_assert!(
            matches!(reply.status, 200 | 304),
            "{}: {:?}",
            reply.status,
            body_text(&reply)
        );
        calls_were(app, LOOKUP, "d1")?;
        if reply.status == 304 {
            prop_assert!(reply.body.is_empty());
            return Ok(());
        }
    }
    // Whatever was asked for, the answer is a JSON or CBOR object.
    let answer: Option<Json> = match reply.header("content-type") {
        Some(JSON) => serde_json::from_slice(&reply.body).ok(),
        Some(CBOR) => ciborium::from_reader(reply.body.as_slice()).ok(),
        _ => None,
    };
    prop_assert!(
        answer.as_ref().is_some_and(Json::is_object),
        "{:?} answered with {:?}",
        reply.header("content-type"),
        body_text(&reply)
    );
    Ok(())
}

#[test]
fn content_type_and_accept() {
    fuzz(
        "content_type_and_accept",
        600,
        header_case(),
        |harness, case| harness.case(check_headers(&harness.app, &case)),
    );
}

// ---------------------------------------------------------------------------
// Authorization

/// A token or something posing as one.
#[derive(Debug, Clone)]
enum Token {
    /// Signed with the BFF's secret.
    Signed { sub: String, device: bool },
    /// Signed with another secret.
    Forged,
    /// `alg: none` with plausible claims.
    Unsigned { sub: String },
    /// Dot-separated base64url-ish noise.
    Noise(Vec<String>),
    /// Any header bytes.
    Bytes(Vec<u8>),
}

fn subject() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(&["u1", "u2", "d1", "d4", "", ".", "..", "u1\n", "u1\r\nx-user-id: u2", "u1,u2", "u1 ", "\u{0}"][..])
            .prop_map(String::from),
        2 => "\\PC{0,40}",
        1 => (select(&["u", "é", "%", "\n"][..]), 100usize..6_000).prop_map(|(unit, n)| unit.repeat(n)),
        1 => text(),
    ]
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        4 => (subject(), any::<bool>()).prop_map(|(sub, device)| Token::Signed { sub, device }),
        1 => Just(Token::Forged),
        1 => subject().prop_map(|sub| Token::Unsigned { sub }),
        2 => vec(prop_oneof!["[A-Za-z0-9_-]{0,60}", "[A-Za-z0-9_=+/-]{0,8000}"], 0..5).prop_map(Token::Noise),
        1 => vec(any::<u8>(), 0..100).prop_map(Token::Bytes),
    ]
}

#[derive(Debug, Clone)]
struct AuthCase {
    scheme: &'static str,
    separator: &'static str,
    token: Token,
    /// Send the header twice.
    twice: bool,
    patch: bool,
}

fn auth_case() -> impl Strategy<Value = AuthCase> {
    (
        prop_oneof![6 => Just("Bearer"), 1 => select(&["bearer", "BEARER", "Basic", "Token", "", "Bearer:", "Bearer\u{0}"][..])],
        prop_oneof![6 => Just(" "), 1 => select(&["", "  ", "\t", " \t", ",", "="][..])],
        token(),
        prop::bool::weighted(0.05),
        any::<bool>(),
    )
        .prop_map(|(scheme, separator, token, twice, patch)| AuthCase { scheme, separator, token, twice, patch })
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

async fn check_auth(app: &TestApp, case: &AuthCase) -> CaseResult {
    let jwt = &app.config.jwt;
    let hour = Duration::from_secs(3600);
    let kind = |device: bool| {
        if device {
            TokenKind::Device
        } else {
            TokenKind::User
        }
    };
    let (token, viewer): (Vec<u8>, Option<(String, bool)>) = match &case.token {
        Token::Signed { sub, device } => (
            issue_dev_token(SECRET, &jwt.issuer, &jwt.audience, sub, hour, kind(*device))
                .into_bytes(),
            Some((sub.clone(), *device)),
        ),
        Token::Forged => (
            issue_dev_token(
                "another-secret-long-enough-for-hs256-0123456789",
                &jwt.issuer,
                &jwt.audience,
                "u1",
                hour,
                TokenKind::User,
            )
            .into_bytes(),
            None,
        ),
        Token::Unsigned { sub } => {
            let claims = serde_json::json!({
                "sub": sub, "iss": jwt.issuer, "aud": jwt.audience, "exp": 4_000_000_000u64,
            });
            let token = format!(
                "{}.{}.",
                base64url(br#"{"alg":"none","typ":"JWT"}"#),
                base64url(claims.to_string().as_bytes())
            );
            (token.into_bytes(), None)
        }
        Token::Noise(parts) => (parts.join(".").into_bytes(), None),
        Token::Bytes(bytes) => (bytes.clone(), None),
    };
    let mut header = format!("{}{}", case.scheme, case.separator).into_bytes();
    header.extend(&token);
    let Ok(value) = HeaderValue::from_bytes(&header) else {
        return Ok(()); // Not something a client can send.
    };
    let mut request = if case.patch {
        app.settings_request("d1", As::Nobody)
            .header(CONTENT_TYPE, JSON)
            .body(PATCH_BODY)
    } else {
        app.status_request("d1", As::Nobody)
    };
    request = request.header(AUTHORIZATION, value.clone());
    if case.twice {
        request = request.header(AUTHORIZATION, value);
    }
    let reply = send(request).await?;
    well_formed(&reply)?;

    // Restated: one header `<bearer, any case> <token>`, the token trimmed of
    // whitespace (hyper trims the value's ends), and a signed one whose
    // subject is a valid id (`downstream::is_valid_id`, tested on its own).
    let token_text = String::from_utf8_lossy(&token);
    let read = case.scheme.eq_ignore_ascii_case("bearer")
        && case.separator.starts_with(' ')
        && !case.twice
        && !token_text.trim().is_empty();
    let viewer = viewer.filter(|(sub, _)| read && downstream::is_valid_id(sub));
    let Some((sub, device)) = viewer else {
        prop_assert_eq!(reply.status, 401, "{:?}", body_text(&reply));
        prop_assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer"))
        );
        return refused(app, &reply);
    };
    let owner = if device { sub == "d1" } else { sub == "u1" };
    let calls = match (device, case.patch) {
        // A device reaches only itself, and its own PATCH needs no lookup.
        (true, false) => Calls {
            get: u64::from(owner),
            patch: 0,
        },
        (true, true) => Calls {
            get: 0,
            patch: u64::from(owner),
        },
        // A person's request looks d1 up.
        (false, patch) => Calls {
            get: 1,
            patch: u64::from(owner && patch),
        },
    };
    prop_assert_eq!(
        reply.status,
        if owner { 200 } else { 404 },
        "{:?}",
        body_text(&reply)
    );
    calls_were(app, calls, "d1")?;
    // The service sees the subject as it is (when a header can show it so).
    let shown = sub.bytes().all(|b| (0x21..0x7f).contains(&b));
    if !device && calls.get == 1 && shown {
        let sent = app.services.device.control.requests()[0].user_id.clone();
        prop_assert_eq!(sent.as_deref(), Some(sub.as_str()), "x-user-id");
    }
    Ok(())
}

#[test]
fn authorization() {
    fuzz("authorization", 600, auth_case(), |harness, case| {
        harness.case(check_auth(&harness.app, &case))
    });
}

// ---------------------------------------------------------------------------
// Regressions: inputs the fuzzing found, and the issue's probes, kept as
// explicit cases.

#[test]
fn regressions() {
    let harness = Harness::start();
    let path = |method: &'static str, target: Target, who: Who| PathCase {
        method,
        target,
        who,
    };
    for case in [
        // The issue's probe: `..` reached `GET /devices`.
        path("GET", Target::Status("%2e%2e".into()), Who::U1),
        path("PATCH", Target::Settings("%2E".into()), Who::U1),
        path("GET", Target::Status("a".repeat(25_000)), Who::U1),
    ] {
        harness.case(check_path(&harness.app, &case)).unwrap();
    }
    // Past hyper's URI limit: its own 414, no body, nothing sent anywhere.
    for target in [
        format!("/v1/devices/{}", "%7B".repeat(25_000)),
        format!("/v1/devices/{}", "a".repeat(70_000)),
    ] {
        harness
            .case(async {
                let reply = harness.app.raw("GET", &target, As::User("u1"), b"").await;
                prop_assert!((400..500).contains(&reply.status), "{}", reply.status);
                calls_were(&harness.app, NONE, "")
            })
            .unwrap();
    }
    // Found by `paths`: axum's own 405 had no body.
    for case in [
        path("PATCH", Target::Status("d1".into()), Who::U1),
        path("GET", Target::Settings("d1".into()), Who::Nobody),
        path("DELETE", Target::Settings("%2e%2e".into()), Who::D1),
    ] {
        harness.case(check_path(&harness.app, &case)).unwrap();
    }
    // Found by `authorization`: a signed user token whose subject could not
    // be an id (129 bytes; a line break cannot even go out as `x-user-id`)
    // still had d1 looked up. Now 404 with no call.
    for sub in [
        "u".repeat(129),
        "u1\n".into(),
        "u1\r\nx-user-id: u2".into(),
        "u1,u2".into(),
        ".".into(),
    ] {
        for patch in [false, true] {
            let case = AuthCase {
                scheme: "Bearer",
                separator: " ",
                token: Token::Signed {
                    sub: sub.clone(),
                    device: false,
                },
                twice: false,
                patch,
            };
            harness.case(check_auth(&harness.app, &case)).unwrap();
        }
    }
    // `{"s": undefined}` cleared the schedule like null.
    let undefined = CborBody::Item(
        Node::Map(vec![(Node::Value(Cbor::Text("s".into())), Node::Undefined)]),
        vec![],
    );
    let (body, verdict) = undefined.encode();
    assert_eq!(verdict, Verdict::Refuse);
    harness
        .case(check_patch(&harness.app, Who::U1, CBOR, body, verdict))
        .unwrap();
}
