// Opens a BFF's GraphiQL page in headless Chromium and uses it as a person
// would: waits for the editor, types each query (and, when given, request
// headers into the headers editor), presses the run button and reads the
// result pane. Run by the BFFs' Rust tests (shared/testkit/src/graphiql.rs):
//
//   node graphiql.mjs <page URL> <steps as JSON>
//
// where steps are [{"query": "...", "headers": "..." (optional),
// "expect": ["text the result must contain", ...]}]. It prints one JSON
// report on stdout: what each step's result pane showed, every URL the
// page requested, and anything that went wrong in the page (requests to
// another host, which are aborted; Content-Security-Policy violations;
// script errors; failed responses). It exits non-zero when the page could
// not be driven (no editor, a result that never showed what was expected);
// the Rust test judges the rest of the report.
//
// Chromium: $CHROMIUM_PATH, default /usr/bin/chromium (Debian's package).
// With $GRAPHIQL_SCREENSHOT set, the page is saved there as a PNG at the end.

import puppeteer from 'puppeteer-core';

// How long the editor, and each result, may take to appear.
const WAIT_MS = 30_000;
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

const [pageUrl, stepsJson] = process.argv.slice(2);
if (!pageUrl || !stepsJson) {
  console.error('usage: node graphiql.mjs <page URL> <steps as JSON>');
  process.exit(2);
}
const steps = JSON.parse(stepsJson);

const report = {
  results: [],
  requests: [],
  foreignRequests: [],
  failedRequests: [],
  errorResponses: [],
  violations: [],
  pageErrors: [],
  consoleErrors: [],
};

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  args: [
    // Chromium's sandbox needs user namespaces, which CI's root lacks.
    ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
    // Nothing but the BFF resolves, and no proxy is asked: no background
    // traffic leaves the machine.
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
    '--no-proxy-server',
  ],
});

let failure = null;
try {
  const page = await browser.newPage();
  await page.evaluateOnNewDocument(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.__violations.push(`${event.violatedDirective}: ${event.blockedURI.slice(0, 100)}`);
    });
  });
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || url.startsWith('blob:')) {
      request.continue();
      return;
    }
    report.requests.push(url);
    if (LOCAL_HOSTS.has(new URL(url).host.replace(/:\d+$/, ''))) {
      request.continue();
    } else {
      report.foreignRequests.push(url);
      request.abort('blockedbyclient');
    }
  });
  page.on('requestfailed', (request) => {
    if (!request.url().startsWith('data:')) {
      report.failedRequests.push(`${request.url()}: ${request.failure()?.errorText}`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      report.errorResponses.push(`${response.status()} ${response.url()}`);
    }
  });
  page.on('pageerror', (error) => report.pageErrors.push(String(error)));
  page.on('console', (message) => {
    // Cut: a blocked font's message quotes the whole data: URL.
    if (message.type() === 'error') report.consoleErrors.push(message.text().slice(0, 300));
  });

  const response = await page.goto(pageUrl, { waitUntil: 'load' });
  if (!response || response.status() !== 200) {
    throw new Error(`the page answered ${response?.status()}`);
  }
  await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: WAIT_MS });
  const runButton = await page.waitForSelector('.graphiql-execute-button', { timeout: WAIT_MS });

  for (const step of steps) {
    if (step.headers) {
      await openHeadersTab(page);
      await typeInto(page, '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror', step.headers);
    }
    await typeInto(page, '.graphiql-query-editor .CodeMirror', step.query);
    const before = await resultText(page);
    await runButton.click();
    let text = before;
    const deadline = Date.now() + WAIT_MS;
    // The result pane fills once the response arrives.
    while (Date.now() < deadline) {
      text = await resultText(page);
      if (text !== before && step.expect.every((part) => text.includes(part))) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    report.results.push(text);
    if (!step.expect.every((part) => text.includes(part))) {
      throw new Error(`the result pane shows ${JSON.stringify(text)}, expected ${JSON.stringify(step.expect)}`);
    }
  }
  report.violations = await page.evaluate(() => window.__violations);
} catch (error) {
  failure = error;
} finally {
  // What the page looked like at the end, to look at when something failed.
  if (process.env.GRAPHIQL_SCREENSHOT) {
    const [page] = (await browser.pages()).slice(-1);
    await page?.screenshot({ path: process.env.GRAPHIQL_SCREENSHOT }).catch(() => {});
  }
  await browser.close();
}

console.log(JSON.stringify(report, null, 2));
if (failure) {
  console.error(`GraphiQL could not be driven: ${failure.stack || failure}`);
  process.exit(1);
}

// Clicks into the CodeMirror editor at `selector`, clears it (select all,
// delete), types `text`
// key by key (as a person would; the editor closes brackets and quotes as
// they are opened and types over them as they are closed) and checks the
// editor then holds exactly `text`.
async function typeInto(page, selector, text) {
  // Near its top left: the first line, right of the line numbers.
  const editor = await page.$(selector);
  await editor.click({ offset: { x: 80, y: 12 } });
  await page.keyboard.down('Control');
  await page.keyboard.press('a');
  await page.keyboard.up('Control');
  await page.keyboard.press('Backspace');
  await page.keyboard.type(text);
  // Close any completion popup the typing opened.
  await page.keyboard.press('Escape');
  const value = await page.evaluate((selector) => document.querySelector(selector).CodeMirror.getValue(), selector);
  if (value !== text) {
    throw new Error(`typed ${JSON.stringify(text)}, the editor holds ${JSON.stringify(value)}`);
  }
}

async function openHeadersTab(page) {
  const tabs = await page.$$('.graphiql-editor-tools button');
  for (const tab of tabs) {
    const label = await tab.evaluate((element) => element.textContent.trim());
    if (label === 'Headers') {
      await tab.click();
      await page.waitForSelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror', { timeout: WAIT_MS });
      return;
    }
  }
  throw new Error('no Headers tab in the editor tools');
}

async function resultText(page) {
  return page.evaluate(() => {
    const editor = document.querySelector('.result-window .CodeMirror');
    return editor ? editor.CodeMirror.getValue() : '';
  });
}
