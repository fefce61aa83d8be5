//! Property-based fuzzing of a GraphQL BFF's public surface: generated
//! hostile requests (documents nested to overflow a stack, wide and
//! unicode-laden documents, huge literals, odd variables, broken bodies,
//! forged and oversized tokens, random headers) sent over real HTTP.
//!
//! Each case must leave the process up and answer either a 4xx or a
//! well-formed GraphQL response, and input the BFF refuses (a 4xx, or a
//! request error: errors without a path and no data) must have cost no
//! downstream call. Runs are repeatable: a fixed seed, and `FUZZ_CASES`
//! raises the number of cases (e.g. `FUZZ_CASES=50000`).

use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Value, json};

/// What the generator knows of one BFF's schema, so that some cases get
/// past parsing and validation into the resolvers.
#[derive(Debug, Clone, Copy)]
pub struct Surface {
    /// Root query fields with the arguments they take, e.g.
    /// `("product", &["id"])`.
    pub roots: &'static [(&'static str, &'static [&'static str])],
    /// Field names found below the roots (any type).
    pub fields: &'static [&'static str],
    /// Mutation fields with their arguments.
    pub mutations: &'static [(&'static str, &'static [&'static str])],
}

/// The BFF under test: where it listens, what it verifies tokens with (to
/// forge tokens that verify but carry hostile claims), and how many calls
/// its downstream services have received so far.
pub struct Target<'a> {
    /// The GraphQL endpoint, e.g. `http://127.0.0.1:1234/graphql`.
    pub url: String,
    pub jwt: Signer,
    pub downstream_calls: &'a dyn Fn() -> u64,
}

/// The HS256 secret, issuer and audience of the BFF's tokens.
#[derive(Debug, Clone)]
pub struct Signer {
    pub secret: String,
    pub issuer: String,
    pub audience: String,
}

/// One generated request.
#[derive(Debug, Clone)]
pub struct FuzzRequest {
    pub method: FuzzMethod,
    /// The request body (POST) or the query string (GET), as raw bytes.
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuzzMethod {
    Get,
    Post,
}

/// A hostile string: the ids, names and literals clients can send.
pub fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]{0,8}",
        2 => any::<String>(),
        1 => Just(String::new()),
        1 => prop::sample::select(vec![".", "..", "%2e%2e", "%2E", "../p1", "p1,p2", "p1/..", "\\", "%00"])
            .prop_map(str::to_owned),
        1 => vec(0u32..0x20, 1..8).prop_map(|codes| codes
            .into_iter()
            .filter_map(char::from_u32)
            .collect()),
        1 => (100usize..80_000).prop_map(|n| "x".repeat(n)),
        1 => (10usize..12_000).prop_map(|n| "é".repeat(n)),
        1 => prop::sample::select(vec!["\u{202e}", "\u{feff}", "\u{1f600}", "\u{fffd}", "\u{10ffff}"])
            .prop_map(str::to_owned),
    ]
}

/// A GraphQL string literal holding `text` (escaped as JSON escapes it,
/// which GraphQL's string syntax accepts).
fn literal(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Text of an argument value: scalars of every kind, variables, and lists
/// and input objects nested from 1 to thousands of levels.
fn value_text() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        hostile_string().prop_map(|text| literal(&text)),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("99999999999999999999999999999".to_owned()),
        Just("1e400".to_owned()),
        Just("-0.0".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("IN_STOCK".to_owned()),
        Just("$id".to_owned()),
        Just("\"\"\"block \\\"\"\" string\"\"\"".to_owned()),
        Just("\"\\uD800\"".to_owned()),
    ];
    (scalar, 0usize..3_000, any::<bool>()).prop_map(|(inner, depth, lists)| {
        // Mostly shallow values; now and then one deep enough to have
        // overflowed a worker's stack.
        let depth = if depth > 100 { depth } else { depth % 4 };
        let (open, close) = if lists { ("[", "]") } else { ("{a: ", "}") };
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    })
}

/// A selection set of known and unknown field names, nested `depth` deep.
fn selection(surface: Surface) -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => prop::sample::select(surface.fields.to_vec()).prop_map(str::to_owned),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        1 => Just("__typename".to_owned()),
        1 => Just("...F".to_owned()),
        1 => Just("... on Product { id }".to_owned()),
    ];
    (
        vec(name, 1..6),
        0usize..3_000,
        prop::sample::select(surface.fields.to_vec()),
    )
        .prop_map(|(names, depth, wrapper)| {
            let depth = if depth > 100 { depth } else { depth % 3 };
            let inner = names.join(" ");
            format!(
                "{}{inner}{}",
                format!("{wrapper} {{ ").repeat(depth),
                " }".repeat(depth)
            )
        })
}

/// A field with arguments, aliases and directives.
fn field(
    fields: &'static [(&'static str, &'static [&'static str])],
    surface: Surface,
) -> impl Strategy<Value = String> {
    (
        prop::sample::select(fields.to_vec()),
        vec(value_text(), 0..3),
        proptest::option::of("[a-z]{1,4}"),
        proptest::option::of(prop_oneof![
            value_text().prop_map(|v| format!("@skip(if: {v})")),
            Just("@include(if: $flag)".to_owned()),
            Just("@defer".to_owned()),
            Just("@unknown(x: 1)".to_owned()),
        ]),
        selection(surface),
    )
        .prop_map(|((name, args), values, alias, directive, selection)| {
            let arguments: Vec<String> = args
                .iter()
                .zip(values)
                .map(|(arg, value)| format!("{arg}: {value}"))
                .collect();
            let alias = alias.map(|alias| format!("{alias}: ")).unwrap_or_default();
            format!(
                "{alias}{name}({}) {} {{ {selection} }}",
                arguments.join(", "),
                directive.unwrap_or_default()
            )
        })
}

/// A whole document: mostly plausible operations, plus token soup, wide
/// alias lists, fragment cycles and raw unicode.
fn document(surface: Surface) -> impl Strategy<Value = String> {
    let mutations = if surface.mutations.is_empty() {
        surface.roots
    } else {
        surface.mutations
    };
    prop_oneof![
        6 => vec(field(surface.roots, surface), 1..4).prop_map(|fields| format!(
            "query Q($id: ID, $flag: Boolean = true) {{ {} }} fragment F on Product {{ id ...F }}",
            fields.join(" ")
        )),
        2 => vec(field(mutations, surface), 1..3)
            .prop_map(|fields| format!("mutation M($id: ID!) {{ {} }}", fields.join(" "))),
        1 => (1usize..3_000, prop::sample::select(surface.fields.to_vec()))
            .prop_map(|(n, name)| format!("{{ {} }}", (0..n).map(|i| format!("a{i}: {name}")).collect::<Vec<_>>().join(" "))),
        1 => vec(prop::sample::select(vec!["{", "}", "(", ")", "[", "]", "...", "$", "@", ":", "=", "!", "|", "&", "\"", "\"\"\"", "#", "query", "mutation", "subscription", "fragment", "on", "x", "1", "-1.5e3", ","]), 0..600)
            .prop_map(|tokens| tokens.join(" ")),
        1 => any::<String>(),
        1 => "subscription \\{ [a-z]{1,6} \\}",
    ]
}

/// Variables: absent, plausible, unicode, huge, deep, or not an object.
fn variables() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        hostile_string().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
    ];
    let nested = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec(("[a-z$]{0,4}", inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    });
    prop_oneof![
        3 => (nested.clone(), nested.clone()).prop_map(|(id, flag)| json!({ "id": id, "flag": flag })),
        1 => Just(Value::Null),
        1 => nested,
        1 => (1usize..126, any::<bool>()).prop_map(|(depth, lists)| {
            let deep = (0..depth).fold(json!("p1"), |inner, _| {
                if lists { json!([inner]) } else { json!({ "a": inner }) }
            });
            json!({ "id": deep })
        }),
    ]
}

/// Authorization headers: none, malformed, forged, oversized, and tokens
/// signed with the BFF's own secret that carry hostile claims.
fn authorization(signer: Signer) -> impl Strategy<Value = Option<Vec<u8>>> {
    let now = jsonwebtoken::get_current_timestamp();
    let (issuer, audience) = (signer.issuer.clone(), signer.audience.clone());
    let claims = (
        hostile_string(),
        prop_oneof![
            Just(json!(now + 600)),
            Just(json!(now - 600)),
            Just(json!("soon")),
            Just(Value::Null)
        ],
        proptest::option::of(prop::sample::select(vec!["user", "device", "admin", ""])),
        variables(),
    )
        .prop_map(move |(sub, exp, kind, extra)| {
            let mut claims =
                json!({ "sub": sub, "iss": issuer, "aud": audience, "exp": exp, "roles": extra });
            if let Some(kind) = kind {
                claims["kind"] = json!(kind);
            }
            claims
        });
    let signed = claims.prop_map(move |claims| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(signer.secret.as_bytes()),
        )
        .ok()
        .map(|token| format!("Bearer {token}").into_bytes())
    });
    prop_oneof![
        3 => Just(None),
        3 => signed,
        1 => hostile_string().prop_map(|text| Some(format!("Bearer {text}").into_bytes())),
        1 => vec(any::<u8>(), 0..64).prop_map(Some),
        1 => Just(Some(b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.".to_vec())),
        1 => (1usize..200_000).prop_map(|n| Some(format!("Bearer {}", "a".repeat(n)).into_bytes())),
    ]
}

/// Other headers a client controls.
fn extra_headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let header = prop_oneof![
        prop::sample::select(vec![
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/graphql",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "",
            "application/json; charset=latin1"
        ])
        .prop_map(|value| ("content-type".to_owned(), value.as_bytes().to_vec())),
        prop::sample::select(vec![
            "application/graphql-response+json",
            "application/json",
            "text/html",
            "*/*",
            "multipart/mixed",
            "text/event-stream",
            "application/graphql-response+json;q=0, application/json;q=0"
        ])
        .prop_map(|value| ("accept".to_owned(), value.as_bytes().to_vec())),
        Just(("apollo-require-preflight".to_owned(), b"true".to_vec())),
        hostile_string().prop_map(|value| ("x-request-id".to_owned(), value.into_bytes())),
        hostile_string().prop_map(|value| ("traceparent".to_owned(), value.into_bytes())),
        hostile_string()
            .prop_map(|value| ("x-apollo-operation-name".to_owned(), value.into_bytes())),
        vec(any::<u8>(), 0..40).prop_map(|value| ("x-forwarded-for".to_owned(), value)),
    ];
    vec(header, 0..4)
}

/// A whole hostile request.
pub fn graphql_request(surface: Surface, signer: Signer) -> impl Strategy<Value = FuzzRequest> {
    let body = (
        document(surface),
        variables(),
        proptest::option::of(hostile_string()),
        proptest::option::of(prop_oneof![
            Just(json!({ "persistedQuery": { "version": 1, "sha256Hash": "0".repeat(64) } })),
            hostile_string()
                .prop_map(|hash| json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })),
            variables(),
        ]),
    )
        .prop_map(|(query, variables, operation, extensions)| {
            let mut body = json!({ "query": query, "variables": variables });
            if let Some(operation) = operation {
                body["operationName"] = json!(operation);
            }
            if let Some(extensions) = extensions {
                body["extensions"] = extensions;
            }
            body
        })
        .boxed();
    let payload = prop_oneof![
        6 => body.clone().prop_map(|body| (FuzzMethod::Post, serde_json::to_vec(&body).unwrap_or_default(), true)),
        2 => body.prop_map(|body| {
            let params: Vec<(String, String)> = body
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| (key.clone(), value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
                .collect();
            let query = serde_urlencoded_pairs(&params);
            (FuzzMethod::Get, query.into_bytes(), true)
        }),
        1 => vec(any::<u8>(), 0..2_000).prop_map(|bytes| (FuzzMethod::Post, bytes, true)),
        1 => prop::sample::select(vec!["[]", "[{\"query\":\"{ __typename }\"}]", "null", "{}", "{\"query\":1}", "{\"query\":\"{ __typename }\",\"variables\":\"x\"}"])
            .prop_map(|body| (FuzzMethod::Post, body.as_bytes().to_vec(), true)),
    ];
    (payload, authorization(signer), extra_headers()).prop_map(
        |((method, payload, json), authorization, extra)| {
            let mut headers = Vec::new();
            if json && method == FuzzMethod::Post {
                headers.push(("content-type".to_owned(), b"application/json".to_vec()));
            } else if method == FuzzMethod::Get {
                headers.push(("apollo-require-preflight".to_owned(), b"true".to_vec()));
            }
            if let Some(authorization) = authorization {
                headers.push(("authorization".to_owned(), authorization));
            }
            headers.extend(extra);
            FuzzRequest {
                method,
                payload,
                headers,
            }
        },
    )
}

/// `key=value&...`, percent-encoded.
fn serde_urlencoded_pairs(pairs: &[(String, String)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

/// What the BFF answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Sends `request` to the GraphQL endpoint at `url`. `None` when the
/// client could not even send it (e.g. a header value reqwest refuses):
/// such a case tells nothing about the BFF.
pub async fn send(client: &reqwest::Client, url: &str, request: &FuzzRequest) -> Option<Answer> {
    let builder = match request.method {
        FuzzMethod::Get => {
            let query = String::from_utf8_lossy(&request.payload);
            client.get(format!("{url}?{query}"))
        }
        FuzzMethod::Post => client.post(url).body(request.payload.clone()),
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &request.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).ok()?;
        let value = reqwest::header::HeaderValue::from_bytes(value).ok()?;
        headers.append(name, value);
    }
    let response = builder.headers(headers).send().await.ok()?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.bytes().await.ok()?.to_vec();
    Some(Answer {
        status,
        content_type,
        body,
    })
}

/// Whether `answer` refused the request: a 4xx, or a GraphQL response
/// whose errors all lack a path and that has no data.
pub fn is_refusal(answer: &Answer) -> bool {
    if (400..500).contains(&answer.status) {
        return true;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&answer.body) else {
        return false;
    };
    body.get("data").is_none_or(Value::is_null)
        && body["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().all(|error| error.get("path").is_none()))
}

/// The checks every answer must pass: no 5xx, and a 200 that is JSON is a
/// well-formed GraphQL response (an object with `data` or a non-empty
/// `errors` list of objects with a string `message`).
pub fn check_answer(answer: &Answer) -> Result<(), String> {
    if answer.status >= 500 {
        return Err(format!(
            "status {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    if answer.status != 200 || answer.content_type.starts_with("text/html") {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|error| format!("a 200 that is not JSON ({error})"))?;
    let has_data = body.get("data").is_some();
    let errors = body.get("errors");
    if !has_data && errors.is_none() {
        return Err(format!("neither data nor errors: {body}"));
    }
    if let Some(errors) = errors {
        let errors = errors
            .as_array()
            .ok_or_else(|| format!("errors is not a list: {body}"))?;
        if errors.is_empty() || !errors.iter().all(|error| error["message"].is_string()) {
            return Err(format!("malformed errors: {body}"));
        }
    }
    Ok(())
}

/// The number of cases: `FUZZ_CASES` or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// A runner with a fixed seed (runs repeat exactly) and `cases` cases;
/// failures are shrunk to a small input and reported, not persisted to
/// files: the suites keep them as explicit regression cases.
pub fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]))
}

/// Runs `cases` generated requests against `target` on `runtime`.
/// Panics with the (shrunk) failing request.
pub fn fuzz_graphql(
    runtime: &tokio::runtime::Runtime,
    surface: Surface,
    target: &Target<'_>,
    cases: u32,
) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|error| panic!("client: {error}"));
    let strategy = graphql_request(surface, target.jwt.clone());
    let result = runner(cases).run(&strategy, |request| {
        check_case(runtime, &client, target, &request).map_err(TestCaseError::fail)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// One case: sends it, checks the answer and, for a refusal, that no
/// downstream call was made.
pub fn check_case(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    target: &Target<'_>,
    request: &FuzzRequest,
) -> Result<(), String> {
    let before = (target.downstream_calls)();
    let Some(answer) = runtime.block_on(send(client, &target.url, request)) else {
        // Not sendable by the client, or the connection failed: the next
        // check tells which.
        return check_alive(runtime, client, &target.url);
    };
    check_answer(&answer)?;
    if is_refusal(&answer) && (target.downstream_calls)() != before {
        return Err(format!(
            "refused with {} but called downstream: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    Ok(())
}

/// The server still answers a trivial query.
fn check_alive(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
) -> Result<(), String> {
    runtime.block_on(async {
        let response = client
            .post(url)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .map_err(|error| format!("the BFF stopped answering: {error}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the BFF answered {} to a trivial query",
                response.status()
            ))
        }
    })
}
