// Runs a @defer query against a running web BFF with Apollo Client 4 and
// its GraphQL17Alpha9Handler, which asks for the newer incremental format
// (`Accept: multipart/mixed;incrementalSpec=v0.2`: `pending`, `incremental`
// by id, `completed`), and checks that the client sees the initial result
// (without the deferred fields) first, then the completed one.
// Usage: node defer-v02.mjs <graphql url> <bearer token>
// Exits non-zero, with the reason on stderr, when anything is off.
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQL17Alpha9Handler } from '@apollo/client/incremental';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node defer-v02.mjs <graphql url> <bearer token>');
  process.exit(2);
}

// Every request the link sends, to check what it asked for.
const accepts = [];
const recordingFetch = (input, init) => {
  accepts.push(new Headers(init?.headers).get('accept'));
  return fetch(input, init);
};

const client = new ApolloClient({
  link: new HttpLink({
    uri: url,
    headers: { authorization: `Bearer ${token}` },
    fetch: recordingFetch,
  }),
  cache: new InMemoryCache(),
  incrementalHandler: new GraphQL17Alpha9Handler(),
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
  const timer = setTimeout(() => reject(new Error('no complete result within 10 s')), 10_000);
  client.watchQuery({ query, fetchPolicy: 'network-only' }).subscribe({
    next(result) {
      results.push({
        after: Date.now() - started,
        dataState: result.dataState,
        data: result.data,
        error: result.error?.message,
      });
      if (result.error) {
        clearTimeout(timer);
        reject(result.error);
      } else if (result.dataState === 'complete') {
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
const fail = (why) => {
  console.error(`${why}\naccept: ${JSON.stringify(accepts)}\nresults: ${JSON.stringify(results, null, 1)}`);
  process.exit(1);
};
if (!accepts.some((accept) => accept?.includes('incrementalSpec=v0.2'))) {
  fail('the client did not ask for incrementalSpec=v0.2');
}
const streaming = results.find((r) => r.dataState === 'streaming');
const last = results[results.length - 1];
if (!streaming) fail('expected an initial (streaming) result before the completed one');
if (streaming.data?.dashboard?.user?.id !== 'u1') fail('the initial result lacks the user');
if (streaming.data.dashboard.recommendations !== undefined) {
  fail('the initial result already has the deferred recommendations');
}
const recommendations = last.data?.dashboard?.recommendations;
if (!Array.isArray(recommendations) || recommendations.length !== 3) {
  fail('the completed result lacks the 3 recommendations');
}
if (!recommendations.every((r) => typeof r.score === 'number' && r.product?.id)) {
  fail('a recommendation lacks its score or product');
}
if (last.data.dashboard.user.id !== 'u1') fail('the completed result lost the user');
console.log('ok: initial result, then the completed one (incrementalSpec=v0.2)');
