// The graphql-ws (graphql-transport-ws), graphql-sse (distinct
// connections mode) and Apollo Client (multipart HTTP subscriptions)
// client libraries against a running BFF's subscriptions,
// driven by the BFFs' Rust tests (testkit::live::assert_live_clients_pass).
//
// Usage: node clients.mjs <graphql url> <order service url> <web|mobile> <token of u1> <token of u2>
//
// Orders are moved with devstack's control route
// (POST /__control/orders/{id}/status). Exits 1 with the failures listed.

import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import WebSocket from 'ws';

const [url, orderUrl, flavour, tokenU1, tokenU2] = process.argv.slice(2);
if (!tokenU2) {
  console.error('usage: node clients.mjs <graphql url> <order url> <web|mobile> <token u1> <token u2>');
  process.exit(2);
}
const wsUrl = url.replace(/^http/, 'ws');
const query =
  flavour === 'mobile'
    ? 'subscription { orderUpdates { eventId orderId status date } }'
    : 'subscription($orderId: ID) { orderUpdates(orderId: $orderId) { eventId orderId status trackingNumber } }';
const PATIENCE_MS = 20000;
const failures = [];

function check(condition, message) {
  if (!condition) failures.push(message);
  console.log(`${condition ? 'ok  ' : 'FAIL'} ${message}`);
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), PATIENCE_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function moveOrder(id, status) {
  const response = await fetch(`${orderUrl}/__control/orders/${id}/status`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ status }),
  });
  if (!response.ok) throw new Error(`moving ${id}: ${response.status}`);
}

/** A subscription's results, read one by one. */
function collector(subscribe) {
  const queue = [];
  const waiters = [];
  let ended = null;
  const push = (item) => {
    const waiter = waiters.shift();
    if (waiter) waiter(item);
    else queue.push(item);
  };
  const dispose = subscribe({
    next: (value) => push({ value }),
    error: (error) => {
      ended = { error };
      push(ended);
    },
    complete: () => {
      ended = { complete: true };
      push(ended);
    },
  });
  return {
    next: (what) =>
      withTimeout(
        new Promise((resolve) => {
          if (queue.length) resolve(queue.shift());
          else waiters.push(resolve);
        }),
        what,
      ),
    dispose,
  };
}

const update = (item) => item.value?.data?.orderUpdates;

// A barrier: the server handles a connection's messages in order and
// answers `subscribe` once the operation listens, so once a later
// operation's result arrives the earlier subscriptions are live.
async function wsBarrier(client) {
  await withTimeout(
    new Promise((resolve, reject) => {
      client.subscribe({ query: '{ __typename }' }, { next() {}, error: reject, complete: resolve });
    }),
    'ws barrier',
  );
}

function wsClient(token, extra = {}) {
  return createWsClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: token === undefined ? undefined : { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: false,
    ...extra,
  });
}

async function graphqlWs() {
  const u1 = wsClient(tokenU1);
  const u2 = wsClient(tokenU2);
  try {
    const mine = collector((sink) => u1.subscribe({ query }, sink));
    const theirs = collector((sink) => u2.subscribe({ query }, sink));
    await wsBarrier(u1);
    await wsBarrier(u2);
    await moveOrder('o14', 'paid');
    await moveOrder('o15', 'cancelled');
    await moveOrder('o14', 'shipped');
    const first = update(await mine.next('u1 first update'));
    check(first?.orderId === 'o14' && first?.status === 'PAID', `graphql-ws: u1 gets o14 PAID (${JSON.stringify(first)})`);
    const second = update(await mine.next('u1 second update'));
    check(
      second?.orderId === 'o14' && second?.status === 'SHIPPED',
      `graphql-ws: u1 never gets u2's o15, next is o14 SHIPPED (${JSON.stringify(second)})`,
    );
    const other = update(await theirs.next('u2 update'));
    check(other?.orderId === 'o15', `graphql-ws: u2 gets its o15 (${JSON.stringify(other)})`);
    if (flavour === 'mobile') {
      check(/^\d\d\/\d\d$/.test(first?.date ?? ''), `graphql-ws: mobile date is short (${first?.date})`);
    }
    mine.dispose();
    theirs.dispose();
  } finally {
    await u1.dispose();
    await u2.dispose();
  }
}

async function closeCode(token) {
  return withTimeout(
    new Promise((resolve) => {
      const client = wsClient(token, {
        on: { closed: (event) => resolve(event.code) },
      });
      client.subscribe({ query }, { next() {}, error() {}, complete() {} });
    }),
    'close',
  );
}

async function graphqlWsRefusals() {
  check((await closeCode(undefined)) === 4403, 'graphql-ws: no token closes with 4403 Forbidden');
  check((await closeCode('not-a-token')) === 4403, 'graphql-ws: a bad token closes with 4403 Forbidden');
}

async function graphqlSse() {
  let connected;
  const isConnected = new Promise((resolve) => {
    connected = resolve;
  });
  const client = createSseClient({
    url,
    singleConnection: false,
    retryAttempts: 0,
    headers: { authorization: `Bearer ${tokenU1}` },
    on: { connected: () => connected() },
  });
  try {
    const variables = flavour === 'mobile' ? {} : { orderId: 'o13' };
    const updates = collector((sink) => client.subscribe({ query, variables }, sink));
    await withTimeout(isConnected, 'graphql-sse connected');
    if (flavour === 'web') await moveOrder('o12', 'delivered'); // filtered out
    await moveOrder('o13', 'shipped');
    const first = update(await updates.next('graphql-sse update'));
    check(
      first?.orderId === 'o13' && first?.status === 'SHIPPED',
      `graphql-sse: u1 gets o13 SHIPPED${flavour === 'web' ? ' (orderId filters o12 out)' : ''} (${JSON.stringify(first)})`,
    );
    updates.dispose();
  } finally {
    client.dispose();
  }
}

async function graphqlSseRefusal() {
  const client = createSseClient({ url, singleConnection: false, retryAttempts: 0 });
  const updates = collector((sink) => client.subscribe({ query }, sink));
  const ended = await updates.next('anonymous graphql-sse');
  const refused = ended.error !== undefined || ended.value?.errors !== undefined;
  check(refused, `graphql-sse: anonymous is refused (${JSON.stringify(ended.error?.message ?? ended)})`);
  client.dispose();
}

async function apolloMultipart() {
  let connected;
  const isConnected = new Promise((resolve) => {
    connected = resolve;
  });
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: new HttpLink({
      uri: url,
      headers: { authorization: `Bearer ${tokenU1}` },
      // The response head comes once the subscription listens.
      fetch: async (...args) => {
        const response = await fetch(...args);
        connected(response.headers.get('content-type'));
        return response;
      },
    }),
  });
  const updates = collector((sink) => {
    const subscription = client.subscribe({ query: gql(query) }).subscribe(sink);
    return () => subscription.unsubscribe();
  });
  const contentType = await withTimeout(isConnected, 'Apollo multipart connected');
  check(
    contentType?.startsWith('multipart/mixed'),
    `Apollo Client: subscribes over multipart HTTP (${contentType})`,
  );
  await moveOrder('o12', 'cancelled');
  const first = update(await updates.next('Apollo update'));
  check(
    first?.orderId === 'o12' && first?.status === 'CANCELLED',
    `Apollo Client: u1 gets o12 CANCELLED (${JSON.stringify(first)})`,
  );
  updates.dispose();
  client.stop();
}

for (const scenario of [graphqlWs, graphqlWsRefusals, graphqlSse, graphqlSseRefusal, apolloMultipart]) {
  try {
    await scenario();
  } catch (error) {
    check(false, `${scenario.name}: ${error?.stack ?? error}`);
  }
}
if (failures.length) {
  console.error(`${failures.length} failed`);
  process.exit(1);
}
console.log('all passed');
process.exit(0);
