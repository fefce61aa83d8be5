// Runs a @defer query against a running web BFF with Apollo Client's
// HttpLink and InMemoryCache, as a web app would, and checks that the
// client sees the initial result (without the deferred fields) first, then
// the completed one. Usage: node defer.mjs <graphql url> <bearer token>
// Exits non-zero, with the reason on stderr, when anything is off.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client/core/index.js";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node defer.mjs <graphql url> <bearer token>");
  process.exit(2);
}

const client = new ApolloClient({
  link: new HttpLink({ uri: url, headers: { authorization: `Bearer ${token}` } }),
  cache: new InMemoryCache(),
});

const query = gql`
  query Dashboard {
    dashboard {
      user { id name }
      ... @defer(label: "recommendations") {
        recommendations(first: 3) { score product { id name } }
      }
    }
  }
`;

const results = [];
const started = Date.now();
const done = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("no complete result within 10 s")), 10_000);
  client.watchQuery({ query, fetchPolicy: "network-only" }).subscribe({
    next(result) {
      results.push({ after: Date.now() - started, data: result.data, errors: result.errors });
      if (result.data?.dashboard?.recommendations) {
        clearTimeout(timer);
        resolve();
      }
    },
    error(error) {
      clearTimeout(timer);
      reject(error);
    },
  });
});

try {
  await done;
} catch (error) {
  console.error(`failed: ${error}\nresults so far: ${JSON.stringify(results)}`);
  process.exit(1);
}
console.log(JSON.stringify(results));
const [first] = results;
const last = results[results.length - 1];
const fail = (why) => {
  console.error(`${why}\nresults: ${JSON.stringify(results, null, 1)}`);
  process.exit(1);
};
if (results.length < 2) fail("expected an initial result and then the completed one");
if (first.data?.dashboard?.user?.id !== "u1") fail("the initial result lacks the user");
if (first.data.dashboard.recommendations !== undefined) {
  fail("the initial result already has the deferred recommendations");
}
const recommendations = last.data.dashboard.recommendations;
if (!Array.isArray(recommendations) || recommendations.length !== 3) {
  fail("the completed result lacks the 3 recommendations");
}
if (!recommendations.every((r) => typeof r.score === "number" && r.product?.id)) {
  fail("a recommendation lacks its score or product");
}
if (last.data.dashboard.user.id !== "u1") fail("the completed result lost the user");
if (results.some((r) => r.errors?.length)) fail("errors reported");
console.log("ok: initial result, then the completed one");
