//! One pipeline: every request, the first of its kind (full validation) or
//! a repeat (the endpoint's fast path, which skips re-validating), runs the
//! same schema: its guards refuse, its extensions observe.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{EmptyMutation, EmptySubscription, Object, Response, Schema};
use bff_server::graphql::{RequestScope, RoleGuard, SchemaOptions};
use serde_json::Value;

struct Query;

#[Object]
impl Query {
    async fn open(&self) -> &str {
        "for everyone"
    }

    #[graphql(guard = "RoleGuard::new(\"admin\")")]
    async fn secret(&self) -> Option<&str> {
        Some("only for admins")
    }
}

/// Counts the operations it sees.
#[derive(Clone, Default)]
struct Observer(Arc<AtomicUsize>);

impl ExtensionFactory for Observer {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

impl Extension for Observer {
    // `Extension` is declared with `#[async_trait]`; this is the signature
    // it expands to.
    fn request<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        ctx: &'life1 ExtensionContext<'life2>,
        next: NextRequest<'life3>,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.0.fetch_add(1, Ordering::SeqCst);
            next.run(ctx).await
        })
    }
}

#[tokio::test]
async fn guards_and_extensions_apply_to_first_and_repeated_requests_alike() {
    let observer = Observer::default();
    let builder = {
        let observer = observer.clone();
        move || Schema::build(Query, EmptyMutation, EmptySubscription).extension(observer.clone())
    };
    let endpoint = SchemaOptions {
        introspection: false,
    }
    .endpoint(builder, false, Default::default())
    .unwrap();
    let http = downstream::http::build_http_client().unwrap();
    let downstream = Arc::new(downstream::Downstream::new(
        &downstream::DownstreamConfig::default(),
        http,
    ));
    for round in 1..=3 {
        let ctx = bff_server::context::context_from_headers(&http::HeaderMap::new());
        // Signed out: the guard refuses, every time.
        let request = async_graphql::Request::new("{ open secret }").data(RequestScope::new(
            Arc::clone(&downstream),
            ctx,
            None,
        ));
        let response = serde_json::to_value(endpoint.execute(request).await).unwrap();
        assert_eq!(response["data"]["open"], "for everyone", "{response}");
        assert_eq!(
            response["data"]["secret"],
            Value::Null,
            "round {round}: {response}"
        );
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "round {round}: {response}"
        );
        assert_eq!(observer.0.load(Ordering::SeqCst), round, "round {round}");
    }
}
