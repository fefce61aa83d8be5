// Runs graphql-http's server audits (the GraphQL-over-HTTP spec's
// conformance checks, https://github.com/graphql/graphql-http) against a
// running GraphQL endpoint and exits non-zero when any audit ends in an
// error (a MUST broken) or a warning (a SHOULD); notices (a MAY not taken)
// are printed but pass.
//
//   node audit.mjs http://127.0.0.1:4000/graphql
//
// Every request carries `apollo-require-preflight`: the BFFs refuse requests
// a browser could send cross-site without a CORS preflight (Apollo's CSRF
// prevention), and the audits' GETs carry no content type. The Rust tests
// `graphql_http_audit` in bffs/web and bffs/mobile start a BFF on an
// ephemeral port and run this script against it.

import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint url>');
  process.exit(2);
}

/** `fetch` with the CSRF-preflight header added to every request. */
function fetchWithPreflight(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('apollo-require-preflight', 'true');
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithPreflight });

const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  if (result.status === 'ok') {
    continue;
  }
  let body = '';
  try {
    body = await result.response.text();
  } catch {
    // The body was already read by the audit; the reason says enough.
  }
  console.log(`${result.status.toUpperCase()} ${result.id} ${result.name}`);
  console.log(`  reason: ${result.reason}`);
  console.log(`  response: ${result.response.status} ${body}`.trimEnd());
}
console.log(
  `graphql-http audit of ${url}: ${counts.ok} ok, ${counts.notice} notice, ` +
    `${counts.warn} warn, ${counts.error} error`,
);
process.exit(counts.warn + counts.error === 0 ? 0 : 1);
