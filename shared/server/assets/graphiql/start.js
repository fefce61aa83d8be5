// Starts GraphiQL on the page a BFF serves on its GraphQL endpoint in the
// dev profile (shared/server/src/graphql/graphiql.rs). A file rather than an
// inline script: the page's Content-Security-Policy runs scripts from the
// BFF only.
(function () {
  'use strict';
  // Full height without an inline stylesheet (the policy allows none).
  document.body.style.margin = '0';
  var container = document.getElementById('graphiql');
  container.style.height = '100vh';
  var fetcher = GraphiQL.createFetcher({
    // The page is served on the endpoint itself.
    url: window.location.pathname,
    // The endpoint refuses requests a page of another site could send
    // unpreflighted (CSRF prevention). A token goes in the headers editor:
    // {"Authorization": "Bearer <token>"}.
    headers: { 'apollo-require-preflight': 'true' },
  });
  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
    })
  );
})();
