//! `graphql::eager`: an `Eager` list answers exactly what the derived
//! resolvers answer (aliases, fragments, `__typename`, merged selections,
//! `@skip`/`@include`, nulls, errors), and really skips them when it can.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{Context, EmptyMutation, EmptySubscription, Enum, Object, Schema};
use bff_server::graphql::eager::{self, Eager, EagerField, EagerObject, JsonWriter};
use bff_server::graphql::json::response_json;
use bff_server::graphql::{
    EagerLoaded, EagerRoots, GraphQlEndpoint, RequestData, SchemaLimits, preloaded,
};
use futures::future::BoxFuture;
use serde_json::json;

/// Calls of derived resolvers that the eager path should have made unneeded.
#[derive(Default)]
struct DerivedCalls(AtomicUsize);

fn count(ctx: &Context<'_>) {
    ctx.data_unchecked::<Arc<DerivedCalls>>()
        .0
        .fetch_add(1, Ordering::SeqCst);
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
enum Colour {
    Red,
    DarkBlue,
}

#[derive(Clone)]
struct Part {
    id: String,
    colour: Colour,
    note: Option<String>,
    weight: f64,
    broken: bool,
    child: Option<Box<Part>>,
}

#[Object]
impl Part {
    async fn id(&self, ctx: &Context<'_>) -> async_graphql::ID {
        count(ctx);
        async_graphql::ID(self.id.clone())
    }

    async fn colour(&self, ctx: &Context<'_>) -> Colour {
        count(ctx);
        self.colour
    }

    async fn note(&self, ctx: &Context<'_>) -> Option<&str> {
        count(ctx);
        self.note.as_deref()
    }

    async fn weight(&self, ctx: &Context<'_>) -> f64 {
        count(ctx);
        self.weight
    }

    async fn child(&self, ctx: &Context<'_>) -> Option<Part> {
        count(ctx);
        self.child.as_deref().cloned()
    }

    /// Fails for a broken part: only the derived path reports errors.
    async fn status(&self) -> async_graphql::Result<Option<String>> {
        if self.broken {
            Err("status service unavailable".into())
        } else {
            Ok(Some("ok".into()))
        }
    }

    /// An argument: left to the derived resolver.
    async fn label(&self, #[graphql(default = "#")] prefix: String) -> String {
        format!("{prefix}{}", self.id)
    }
}

impl EagerObject for Part {
    fn eager_field(&self, field: &EagerField<'_>, out: &mut JsonWriter) -> Option<()> {
        match field.name() {
            "id" => out.string(&self.id),
            "colour" => eager::enum_value(self.colour, out),
            "note" => out.optional_string(self.note.as_deref()),
            "weight" => out.float(self.weight),
            "child" => match &self.child {
                Some(child) => field.nested(child.as_ref(), out)?,
                None => out.null(),
            },
            "status" if !self.broken => out.string("ok"),
            _ => return None,
        }
        Some(())
    }
}

fn parts(broken: bool) -> Vec<Part> {
    let leaf = Part {
        id: "p3".into(),
        colour: Colour::DarkBlue,
        note: None,
        weight: 0.5,
        broken: false,
        child: None,
    };
    vec![
        Part {
            id: "p1".into(),
            colour: Colour::Red,
            note: Some("first \"quoted\" ☕".into()),
            weight: 1.25,
            broken,
            child: Some(Box::new(leaf.clone())),
        },
        Part {
            id: "p2".into(),
            colour: Colour::DarkBlue,
            note: None,
            weight: 2.0,
            broken: false,
            child: None,
        },
    ]
}

struct Query;

#[Object]
impl Query {
    async fn derived(&self, #[graphql(default = false)] broken: bool) -> Vec<Part> {
        parts(broken)
    }

    async fn eager(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] broken: bool,
    ) -> Eager<Vec<Part>> {
        if let Some(loaded) = preloaded::<Vec<Part>>(ctx) {
            return Eager(loaded);
        }
        if let Some(loads) = ctx.data_opt::<Arc<RootLoads>>() {
            loads.by_resolver.fetch_add(1, Ordering::SeqCst);
        }
        Eager(parts(broken))
    }
}

/// Loads of the `eager` root field, by its resolver and by [`Roots`].
#[derive(Default)]
struct RootLoads {
    by_resolver: AtomicUsize,
    by_roots: AtomicUsize,
}

/// `eager` answered without the executor once its request was validated.
struct Roots;

impl EagerRoots for Roots {
    fn load<'a>(
        &'a self,
        field: EagerField<'a>,
        data: RequestData<'a>,
    ) -> Option<BoxFuture<'a, Box<dyn EagerLoaded>>> {
        if field.name() != "eager" {
            return None;
        }
        let broken = field.argument("broken", || false)?;
        let loads = data.get::<Arc<RootLoads>>()?;
        Some(Box::pin(async move {
            loads.by_roots.fetch_add(1, Ordering::SeqCst);
            Box::new(parts(broken)) as Box<dyn EagerLoaded>
        }))
    }
}

/// Runs `query` with `LIST` naming the derived field, then the eager one;
/// both answers as JSON, and the derived resolver calls of the eager run.
async fn both(
    query: &str,
    variables: serde_json::Value,
) -> (serde_json::Value, serde_json::Value, usize) {
    let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
    let endpoint = GraphQlEndpoint::new(schema, false).unwrap();
    let mut answers = Vec::new();
    let mut calls = 0;
    for field in ["derived", "eager"] {
        let counter = Arc::new(DerivedCalls::default());
        // The field name sits on its own line, so both runs report errors
        // at the same locations.
        let request = async_graphql::Request::new(query.replace("LIST", field))
            .variables(async_graphql::Variables::from_json(variables.clone()))
            .data(Arc::clone(&counter));
        let body = response_json(&endpoint.execute(request).await).unwrap();
        answers.push(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
        calls = counter.0.load(Ordering::SeqCst);
    }
    let eager = answers.pop().unwrap();
    let derived = answers.pop().unwrap();
    (derived, eager, calls)
}

#[tokio::test]
async fn plain_selections_are_answered_eagerly_and_identically() {
    let queries = [
        "{ parts:\nLIST\n{ id colour note weight child { id colour note } } }",
        // aliases, __typename, the same field under two names
        "{ parts:\nLIST\n{ key: id __typename id kind: colour child { id weight __typename } } }",
        // named and inline fragments, with and without a type condition
        "query { parts:\nLIST\n{ ...P ... on Part { weight } ... { note } } } fragment P on Part { id child { id colour } }",
        // an object whose every field is skipped is null, as derived
        "query($no: Boolean!) { parts:\nLIST\n{ id @include(if: $no) child { id @skip(if: true) } } }",
    ];
    for query in queries {
        let (derived, eager, calls) = both(query, json!({ "no": false })).await;
        assert_eq!(eager, derived, "{query}");
        assert!(derived.get("errors").is_none(), "{derived}");
        assert_eq!(calls, 0, "the eager run used derived resolvers: {query}");
    }
}

#[tokio::test]
async fn what_it_cannot_answer_falls_back_to_the_derived_resolvers() {
    let cases = [
        // a response key twice: merged by the derived path
        (
            "{ parts:\nLIST\n{ id child { id } child { weight __typename } } }",
            false,
        ),
        (
            "{ parts:\nLIST\n{ id } parts:\nLIST\n{ colour child { note } } }",
            false,
        ),
        (
            "{ ...A ...B } fragment A on Query { parts:\nLIST\n{ id } } fragment B on Query { parts:\nLIST\n{ weight } }",
            false,
        ),
        ("{ parts:\nLIST\n{ id ... on Part { id colour } } }", false),
        // an argument
        ("{ parts:\nLIST\n{ id label(prefix: \"~\") } }", false),
        // a field the eager impl does not know
        ("{ parts:\nLIST\n{ id label } }", false),
        // an error: null at its path, the rest intact
        (
            "{ parts:\nLIST\n(broken: true) { id status child { id } } }",
            true,
        ),
    ];
    for (query, errors) in cases {
        let (derived, eager, calls) = both(query, json!({})).await;
        assert_eq!(eager, derived, "{query}");
        assert_eq!(derived.get("errors").is_some(), errors, "{derived}");
        assert!(calls > 0, "no fallback for {query}");
    }
    let (_, eager, _) = both("{ parts:\nLIST\n(broken: true) { id status } }", json!({})).await;
    assert_eq!(eager["errors"][0]["path"], json!(["parts", 0, "status"]));
    assert_eq!(
        eager["data"]["parts"][1],
        json!({ "id": "p2", "status": "ok" })
    );
}

/// Each answer to `query` sent `times` times to an endpoint with [`Roots`],
/// with the root loads (by the resolver, by [`Roots`]) and derived field
/// calls it took.
async fn repeated(
    query: &str,
    variables: serde_json::Value,
    times: usize,
) -> Vec<(serde_json::Value, (usize, usize), usize)> {
    let limits = SchemaLimits {
        introspection: false,
        max_depth: 10,
        max_complexity: 1_000,
    };
    let builder = || Schema::build(Query, EmptyMutation, EmptySubscription);
    let endpoint = limits
        .endpoint(builder, false)
        .unwrap()
        .with_eager_roots(Arc::new(Roots));
    let mut answers = Vec::new();
    for _ in 0..times {
        let loads = Arc::new(RootLoads::default());
        let calls = Arc::new(DerivedCalls::default());
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables.clone()))
            .data(Arc::clone(&loads))
            .data(Arc::clone(&calls));
        let body = response_json(&endpoint.execute(request).await).unwrap();
        answers.push((
            serde_json::from_slice(&body).unwrap(),
            (
                loads.by_resolver.load(Ordering::SeqCst),
                loads.by_roots.load(Ordering::SeqCst),
            ),
            calls.0.load(Ordering::SeqCst),
        ));
    }
    answers
}

#[tokio::test]
async fn a_validated_request_is_answered_without_the_executor() {
    let query = "query($no: Boolean!, $broken: Boolean = false) {
        __typename ...F parts: eager(broken: $broken) { id note @include(if: $no) child { id colour } }
    } fragment F on Query { again: __typename }";
    let answers = repeated(query, json!({ "no": false }), 3).await;
    let (first, loads, _) = &answers[0];
    assert_eq!(*loads, (1, 0), "the first time, the executor runs");
    assert!(first.get("errors").is_none(), "{first}");
    assert_eq!(first["data"]["again"], "Query");
    assert_eq!(
        first["data"]["parts"][0],
        json!({ "id": "p1", "child": { "id": "p3", "colour": "DARK_BLUE" } })
    );
    for (answer, loads, calls) in &answers[1..] {
        assert_eq!(answer, first);
        assert_eq!(*loads, (0, 1), "the repeat is loaded by the eager roots");
        assert_eq!(*calls, 0, "the repeat went through derived resolvers");
    }
}

#[tokio::test]
async fn what_the_eager_roots_cannot_write_goes_to_the_schema_already_loaded() {
    // `status` of a broken part is an error only the derived resolver reports.
    let query = "{ parts: eager(broken: true) { id status } }";
    let answers = repeated(query, json!({}), 3).await;
    let (first, _, _) = &answers[0];
    assert_eq!(first["errors"][0]["path"], json!(["parts", 0, "status"]));
    assert_eq!(answers[0].1, (1, 0));
    for (answer, loads, calls) in &answers[1..] {
        assert_eq!(answer, first);
        assert_eq!(*loads, (0, 1), "loaded once, then handed to the resolver");
        assert!(*calls > 0);
    }

    // A root field without an eager answer: the whole request runs as before.
    let query = "{ parts: eager { id } derived { id } }";
    let answers = repeated(query, json!({}), 2).await;
    assert_eq!(answers[1].0, answers[0].0);
    assert_eq!(answers[1].1, (1, 0), "loaded by the resolver, once");
}
