//! `@defer(if:, label:)` on fragments, delivered over `multipart/mixed`
//! in the incremental format the client asks for (`Accept`):
//!
//! - `incrementalSpec=v0.2` (specs.apollo.dev/incremental/v0.2, graphql-js
//!   17 alpha 9): the initial payload announces `pending` fragments by `id`;
//!   later payloads carry `incremental` (`id`, `data`) and `completed`.
//! - `deferSpec=20220824` (incremental v0.1, what Apollo Client 3 sends),
//!   or a bare `multipart/mixed`: later payloads carry `incremental`
//!   entries with `data`, `path` and `label`.
//!
//! The endpoint checks the abuse limits and validates the whole query
//! first, then runs the initial document and one per deferred fragment
//! (`plan.rs`) concurrently on clones of the request's one
//! [`RequestScope`](super::RequestScope): they share its product loader, so
//! product lookups still batch across parts. The initial payload leaves as
//! soon as its execution is done; each part follows when its own is.
//! A client that does not accept multipart gets one complete response
//! (the executor ignores `@defer`), never an error.
//!
//! The front door's whole-request timeout bounds producing the response
//! head (the initial payload); the parts are bounded by the request's
//! downstream deadline, which every downstream call carries.

pub(crate) mod plan;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::pin::Pin;

use async_graphql::parser::types::Directive;
use async_graphql::registry::{Deprecation, MetaDirective, MetaInputValue, Registry};
use async_graphql::{
    ContextDirective, CustomDirective, CustomDirectiveFactory, Name, PathSegment, ServerError,
    ServerResult, Value,
};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};

/// Declares `@defer(if: Boolean! = true, label: String)` on fragment
/// spreads and inline fragments: register it on a schema builder
/// (`.directive(DeferDirective)`) so validation accepts it and the SDL
/// shows it.
pub struct DeferDirective;

impl CustomDirectiveFactory for DeferDirective {
    fn name(&self) -> Cow<'static, str> {
        "defer".into()
    }

    fn register(&self, registry: &mut Registry) {
        use async_graphql::registry::__DirectiveLocation;

        let input =
            |name: &str, description: &str, ty: &str, default: Option<&str>| MetaInputValue {
                name: name.to_owned(),
                description: Some(description.to_owned()),
                ty: ty.to_owned(),
                deprecation: Deprecation::NoDeprecated,
                default_value: default.map(str::to_owned),
                visible: None,
                inaccessible: false,
                tags: Vec::new(),
                is_secret: false,
                directive_invocations: Vec::new(),
            };
        let mut args = async_graphql::indexmap::IndexMap::new();
        args.insert(
            "if".to_owned(),
            input("if", "Deferred when true.", "Boolean!", Some("true")),
        );
        args.insert(
            "label".to_owned(),
            input(
                "label",
                "Names the deferred part in the incremental payloads.",
                "String",
                None,
            ),
        );
        registry.add_directive(MetaDirective {
            name: "defer".to_owned(),
            description: Some(
                "Lets the response leave before this fragment's data, which follows in a later \
                 payload (with `Accept: multipart/mixed`; otherwise the response is complete)."
                    .to_owned(),
            ),
            locations: vec![
                __DirectiveLocation::FRAGMENT_SPREAD,
                __DirectiveLocation::INLINE_FRAGMENT,
            ],
            args,
            is_repeatable: false,
            visible: None,
            composable: None,
        });
    }

    fn create(
        &self,
        _ctx: &ContextDirective<'_>,
        _directive: &Directive,
    ) -> ServerResult<Box<dyn CustomDirective>> {
        // Only asked for on fields, where validation does not allow @defer.
        Ok(Box::new(Inline))
    }
}

struct Inline;

#[async_graphql::async_trait::async_trait]
impl CustomDirective for Inline {}

/// The incremental delivery format a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrementalFormat {
    /// `multipart/mixed;incrementalSpec=v0.2`.
    V0_2,
    /// `multipart/mixed;deferSpec=20220824` (Apollo Client 3), or a bare
    /// `multipart/mixed`.
    DeferSpec20220824,
}

impl IncrementalFormat {
    /// The format `Accept` asks for (v0.2 when it names both), `None` when
    /// it accepts no `multipart/mixed`.
    pub fn accepted(headers: &HeaderMap) -> Option<Self> {
        let mut found = None;
        for value in headers.get_all(header::ACCEPT) {
            let Ok(value) = value.to_str() else {
                continue;
            };
            for range in value.split(',') {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                if !media.eq_ignore_ascii_case("multipart/mixed") {
                    continue;
                }
                let mut format = Self::DeferSpec20220824;
                let mut quality = 1.0_f32;
                for param in parts {
                    let (name, value) = param.split_once('=').unwrap_or((param, ""));
                    let value = value.trim().trim_matches('"');
                    match name.trim().to_ascii_lowercase().as_str() {
                        "q" => quality = value.parse().unwrap_or(1.0),
                        "incrementalspec" if value == "v0.2" => format = Self::V0_2,
                        _ => {}
                    }
                }
                if quality > 0.0 && found != Some(Self::V0_2) {
                    found = Some(format);
                }
            }
        }
        found
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::V0_2 => "multipart/mixed; boundary=\"-\"; incrementalSpec=v0.2",
            Self::DeferSpec20220824 => "multipart/mixed; boundary=\"-\"; deferSpec=20220824",
        }
    }
}

/// A finished execution of one deferred fragment: its response (codes and
/// nulls applied) and the fragment it was for.
pub(crate) struct PartResult {
    pub response: async_graphql::Response,
    pub label: Option<String>,
    pub path: Vec<Name>,
    pub index: usize,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The initial execution and the deferred ones, run concurrently as the
/// body is read.
pub struct Incremental {
    pub(crate) initial: BoxFuture<async_graphql::Response>,
    pub(crate) parts: Vec<BoxFuture<PartResult>>,
    /// Path and label of each part, by its index.
    pub(crate) sites: Vec<(Vec<Name>, Option<String>)>,
    /// Dropped with the body: the operation's span, when traced.
    pub(crate) span: Option<tracing::Span>,
    /// Where the whole request served stale copies: the last payload
    /// carries it as `extensions.stale` (the initial one, what was known
    /// when it left).
    pub(crate) stale: Option<super::stale::StaleReport>,
}

/// The multipart response, once the initial payload is ready (the
/// deferred executions run meanwhile): the front door's request timeout
/// and metrics cover it as any response; each part follows in the body as
/// it completes, then the closing delimiter.
pub async fn respond_multipart(incremental: Incremental, format: IncrementalFormat) -> Response {
    let remaining = incremental.parts.len();
    let mut state = Streaming {
        running: incremental.parts.into_iter().collect(),
        finished: Vec::new(),
        remaining,
        format,
        pending: vec![Vec::new(); remaining],
        sites: incremental.sites,
        closed: false,
        stale: incremental.stale,
        _span: incremental.span,
    };
    let mut initial = incremental.initial;
    let response = loop {
        tokio::select! {
            response = &mut initial => break response,
            Some(part) = state.running.next(), if !state.running.is_empty() => {
                state.finished.push(part);
            }
        }
    };
    let mut first = DELIMITER.to_vec();
    state.write_initial(&mut first, &response);
    let rest = futures::stream::unfold(state, Streaming::next_chunk);
    let body = futures::stream::once(std::future::ready(Bytes::from(first))).chain(rest);
    let mut answer = (
        StatusCode::OK,
        Body::from_stream(body.map(Ok::<_, std::io::Error>)),
    )
        .into_response();
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.extend(response.http_headers);
    answer
}

/// Each part is followed at once by the delimiter: clients (Apollo
/// Client's among them) hand a part on when they see the next delimiter.
const PART_HEAD: &[u8] = b"\r\nContent-Type: application/json; charset=utf-8\r\n\r\n";
const DELIMITER: &[u8] = b"\r\n---";
const CLOSE: &[u8] = b"--\r\n";

struct Streaming {
    running: FuturesUnordered<BoxFuture<PartResult>>,
    /// Parts that finished before the initial payload left.
    finished: Vec<PartResult>,
    remaining: usize,
    format: IncrementalFormat,
    /// v0.2: the ids announced per part, by concrete path.
    pending: Vec<Vec<(Vec<PathSegment>, String)>>,
    sites: Vec<(Vec<Name>, Option<String>)>,
    closed: bool,
    stale: Option<super::stale::StaleReport>,
    _span: Option<tracing::Span>,
}

impl Streaming {
    /// The next part as it completes, then the closing delimiter.
    async fn next_chunk(mut self) -> Option<(Bytes, Self)> {
        let part = match self.finished.pop() {
            Some(part) => Some(part),
            None => self.running.next().await,
        };
        if let Some(part) = part {
            self.remaining = self.remaining.saturating_sub(1);
            let mut out = Vec::new();
            self.write_part(&mut out, part);
            return Some((Bytes::from(out), self));
        }
        if self.closed {
            return None;
        }
        self.closed = true;
        Some((Bytes::from_static(CLOSE), self))
    }
}

#[derive(serde::Serialize)]
struct InitialPayload<'a> {
    data: &'a Value,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pending: Vec<Pending<'a>>,
    #[serde(rename = "hasNext")]
    has_next: bool,
}

#[derive(serde::Serialize)]
struct Pending<'a> {
    id: &'a str,
    path: &'a [PathSegment],
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct SubsequentPayload {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    incremental: Vec<IncrementalEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    completed: Vec<Completed>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: BTreeMap<String, Value>,
    #[serde(rename = "hasNext")]
    has_next: bool,
}

#[derive(serde::Serialize)]
struct IncrementalEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<Vec<PathSegment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ServerError>,
}

#[derive(serde::Serialize)]
struct Completed {
    id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ServerError>,
}

impl Streaming {
    fn write_initial(&mut self, out: &mut Vec<u8>, response: &async_graphql::Response) {
        let mut announced = Vec::new();
        if self.format == IncrementalFormat::V0_2 {
            // v0.2 announces each deferred fragment (per list item) with
            // the initial payload; where the data has no object for it,
            // nothing is announced or delivered.
            let mut next_id = 0_usize;
            for (index, pending) in self.pending.iter_mut().enumerate() {
                let Some((path, label)) = self.sites.get(index) else {
                    continue;
                };
                for (concrete, _) in locate(&response.data, path) {
                    pending.push((concrete, next_id.to_string()));
                    next_id += 1;
                }
                let label = label.as_deref();
                announced.extend(
                    pending
                        .iter()
                        .map(|(path, id)| (path.clone(), id.clone(), label)),
                );
            }
        }
        let payload = InitialPayload {
            data: &response.data,
            errors: &response.errors,
            extensions: &response.extensions,
            pending: announced
                .iter()
                .map(|(path, id, label)| Pending {
                    id,
                    path,
                    label: *label,
                })
                .collect(),
            has_next: self.remaining > 0,
        };
        write_json(out, &payload);
    }

    fn write_part(&mut self, out: &mut Vec<u8>, part: PartResult) {
        let PartResult {
            response,
            label,
            path,
            index,
        } = part;
        // Errors on the fields leading to the fragment are the initial
        // payload's to report: those fields ran there too.
        let mut errors: Vec<ServerError> = response
            .errors
            .into_iter()
            .filter(|error| error.path.is_empty() || !on_the_way(&error.path, &path))
            .collect();
        let located = locate(&response.data, &path);
        let mut payload = SubsequentPayload {
            incremental: Vec::new(),
            completed: Vec::new(),
            extensions: BTreeMap::new(),
            has_next: self.remaining > 0,
        };
        if !payload.has_next
            && let Some(stale) = self.stale.as_ref().and_then(|report| report.extension())
        {
            payload.extensions.insert("stale".to_owned(), stale);
        }
        match self.format {
            IncrementalFormat::DeferSpec20220824 => {
                for (concrete, data) in located {
                    payload.incremental.push(IncrementalEntry {
                        id: None,
                        data,
                        path: Some(concrete),
                        label: label.clone(),
                        errors: std::mem::take(&mut errors),
                    });
                }
                if !errors.is_empty() {
                    // The fragment's data was nulled above it.
                    payload.incremental.push(IncrementalEntry {
                        id: None,
                        data: Value::Null,
                        path: Some(
                            path.iter()
                                .map(|key| PathSegment::Field(key.to_string()))
                                .collect(),
                        ),
                        label,
                        errors,
                    });
                }
            }
            IncrementalFormat::V0_2 => {
                let pending = self.pending.get(index).cloned().unwrap_or_default();
                for (concrete, data) in located {
                    if let Some((_, id)) = pending.iter().find(|(path, _)| *path == concrete) {
                        payload.incremental.push(IncrementalEntry {
                            id: Some(id.clone()),
                            data,
                            path: None,
                            label: None,
                            errors: std::mem::take(&mut errors),
                        });
                    }
                }
                for (_, id) in pending {
                    payload.completed.push(Completed {
                        id,
                        errors: std::mem::take(&mut errors),
                    });
                }
            }
        }
        write_json(out, &payload);
    }
}

fn write_json(out: &mut Vec<u8>, payload: &impl serde::Serialize) {
    out.extend_from_slice(PART_HEAD);
    if serde_json::to_writer(&mut *out, payload).is_err() {
        // Values and errors always serialise; should one not, the client
        // still gets a well-formed part.
        out.extend_from_slice(b"{\"hasNext\":false}");
    }
    out.extend_from_slice(DELIMITER);
}

/// Whether `error_path` ends on a field leading to the fragment at `path`.
fn on_the_way(error_path: &[PathSegment], path: &[Name]) -> bool {
    let mut keys = error_path.iter().filter_map(|segment| match segment {
        PathSegment::Field(key) => Some(key.as_str()),
        PathSegment::Index(_) => None,
    });
    keys.by_ref().enumerate().all(|(depth, key)| {
        path.get(depth)
            .is_some_and(|expected| expected.as_str() == key)
    })
}

/// The objects at `path` in `data`, with their concrete paths: through
/// each item of the lists on the way; none below a null.
fn locate(data: &Value, path: &[Name]) -> Vec<(Vec<PathSegment>, Value)> {
    fn walk(
        value: &Value,
        rest: &[Name],
        prefix: &mut Vec<PathSegment>,
        out: &mut Vec<(Vec<PathSegment>, Value)>,
    ) {
        match value {
            Value::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    prefix.push(PathSegment::Index(index));
                    walk(item, rest, prefix, out);
                    prefix.pop();
                }
            }
            Value::Object(fields) => match rest.split_first() {
                None => out.push((prefix.clone(), value.clone())),
                Some((key, rest)) => {
                    if let Some(value) = fields.get(key) {
                        prefix.push(PathSegment::Field(key.to_string()));
                        walk(value, rest, prefix, out);
                        prefix.pop();
                    }
                }
            },
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(data, path, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<IncrementalFormat> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        IncrementalFormat::accepted(&headers)
    }

    #[test]
    fn the_format_is_the_one_accept_names() {
        assert_eq!(accept("application/json"), None);
        assert_eq!(
            accept("multipart/mixed;deferSpec=20220824,application/json"),
            Some(IncrementalFormat::DeferSpec20220824)
        );
        assert_eq!(
            accept("multipart/mixed; incrementalSpec=\"v0.2\", application/json"),
            Some(IncrementalFormat::V0_2)
        );
        assert_eq!(
            accept("multipart/mixed;incrementalSpec=v0.2, multipart/mixed;deferSpec=20220824"),
            Some(IncrementalFormat::V0_2)
        );
        assert_eq!(accept("multipart/mixed;q=0, application/json"), None);
    }

    #[test]
    fn objects_are_located_per_list_item() {
        let data = Value::from_json(serde_json::json!({
            "a": {"b": [{"c": 1}, null, {"c": 2}]},
            "n": null
        }))
        .unwrap();
        let path = |keys: &[&str]| keys.iter().map(Name::new).collect::<Vec<_>>();
        let found = locate(&data, &path(&["a", "b"]));
        let paths: Vec<_> = found.iter().map(|(path, _)| path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                vec![
                    PathSegment::Field("a".into()),
                    PathSegment::Field("b".into()),
                    PathSegment::Index(0)
                ],
                vec![
                    PathSegment::Field("a".into()),
                    PathSegment::Field("b".into()),
                    PathSegment::Index(2)
                ],
            ]
        );
        assert!(locate(&data, &path(&["n"])).is_empty());
        assert!(on_the_way(
            &[PathSegment::Field("a".into())],
            &path(&["a", "b"])
        ));
        assert!(!on_the_way(
            &[
                PathSegment::Field("a".into()),
                PathSegment::Field("x".into())
            ],
            &path(&["a"])
        ));
    }
}
