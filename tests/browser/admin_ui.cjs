#!/usr/bin/env node
// End-to-end test of the admin web UI (web/admin/) in headless Chromium.
//
// Environment:
//   ADMIN_URL                e.g. http://127.0.0.1:PORT/admin/
//   MANAGEMENT_TOKEN         the server's management token
//   SCREENSHOT_DIR           where the PNGs go (created)
//   PROJECT_NAME             a unique project name to create
//   PAGING_PROJECT_ID        a project with exactly 23 tokens (21 to 40 work: two pages of 20) to page through
//   EXPECTED_DAY             the UTC day (YYYY-MM-DD) the proxied requests were counted on
//   EXPECTED_REQUESTS_TODAY  requests counted on EXPECTED_DAY
//   EXPECTED_PROJECTS        projects before this script creates any
//   EXPECTED_ACTIVE_TOKENS   active tokens before this script creates any
//   CHROMIUM                 browser binary (default /usr/bin/chromium)
// The four EXPECTED_* values default to what the API says when the script starts
// (for runs by hand against a dev server); the integration test sets them all.
//
// Progress ("ok - <step>") goes to stderr; on success stdout gets exactly one
// line of JSON: {"project_id","token_id","xss_project_id","secret_prefix"}.
// Any failed step, console error, page error or CSP violation exits 1.
'use strict';

const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

const ADMIN_URL = env('ADMIN_URL');
const MANAGEMENT_TOKEN = env('MANAGEMENT_TOKEN');
const SCREENSHOT_DIR = env('SCREENSHOT_DIR');
const PROJECT_NAME = env('PROJECT_NAME');
const PAGING_PROJECT_ID = env('PAGING_PROJECT_ID');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const TOKEN_KEY = 'llmproxy.managementToken';
const APP = 'llm-proxy admin';
const PAGE_SIZE = 20; // the UI's page size for tokens
const rand = () => crypto.randomBytes(4).toString('hex');
// Filled by expectations(): from the environment, else from the API.
let EXPECTED_DAY;
let EXPECTED_REQUESTS_TODAY;
let EXPECTED_PROJECTS;
let EXPECTED_ACTIVE_TOKENS;

/** Calls the management API from node (only to default the expectations). */
async function api(pathAndQuery) {
  const response = await fetch(new URL(`..${pathAndQuery}`, ADMIN_URL),
    { headers: { Authorization: `Bearer ${MANAGEMENT_TOKEN}` } });
  assert.ok(response.ok, `GET ${pathAndQuery} answered ${response.status}`);
  return response;
}

function count(name, value) {
  const n = Number(value);
  assert.ok(value !== '' && Number.isInteger(n) && n >= 0, `${name} must be an integer >= 0 (got ${JSON.stringify(value)})`);
  return n;
}

async function expectations() {
  const given = (name) => (process.env[name] ?? '') !== '' ? process.env[name] : undefined;
  EXPECTED_DAY = given('EXPECTED_DAY');
  let requests = given('EXPECTED_REQUESTS_TODAY');
  if (EXPECTED_DAY === undefined || requests === undefined) {
    const usage = await (await api('/manage/usage?group_by=day')).json();
    EXPECTED_DAY ??= usage.to;
    requests ??= String(usage.series.find((d) => d.day === EXPECTED_DAY)?.requests ?? 0);
  }
  assert.match(EXPECTED_DAY, /^\d{4}-\d{2}-\d{2}$/, 'EXPECTED_DAY is YYYY-MM-DD');
  EXPECTED_REQUESTS_TODAY = count('EXPECTED_REQUESTS_TODAY', requests);
  const total = async (pathAndQuery) => (await api(pathAndQuery)).headers.get('X-Total-Count');
  EXPECTED_PROJECTS = count('EXPECTED_PROJECTS',
    given('EXPECTED_PROJECTS') ?? await total('/manage/projects?page=1&page_size=1'));
  EXPECTED_ACTIVE_TOKENS = count('EXPECTED_ACTIVE_TOKENS',
    given('EXPECTED_ACTIVE_TOKENS') ?? await total('/manage/tokens?active=true&page=1&page_size=1'));
  console.error(`# expecting day ${EXPECTED_DAY} with ${EXPECTED_REQUESTS_TODAY} requests, ` +
    `${EXPECTED_PROJECTS} projects, ${EXPECTED_ACTIVE_TOKENS} active tokens`);
}

fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });

const result = { project_id: null, token_id: null, xss_project_id: null, secret_prefix: null };
const problems = []; // console errors, page errors, CSP violations
// The deliberate failures (a wrong token: 401, a duplicate name: 409) make
// Chromium log the failed request; only that status is allowed meanwhile.
let expectStatus = null;
let page;

async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
  } catch (error) {
    console.error(`not ok - ${name}`);
    throw new Error(`step "${name}" failed: ${error && error.stack ? error.stack : error}`);
  }
  console.error(`ok - ${name} (${Date.now() - started} ms)`);
}

const shot = (file) => page.screenshot({ path: path.join(SCREENSHOT_DIR, file), fullPage: true });
const text = (sel) => page.$eval(sel, (el) => el.textContent.trim());
const isHidden = (sel) => page.$eval(sel, (el) => el.hidden || el.closest('[hidden]') !== null);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the view titled `title` has loaded its data. */
async function waitView(title) {
  await page.waitForFunction((t) => document.title === t &&
    document.getElementById('view').dataset.ready === 'true', { timeout: 10000 }, `${title} · ${APP}`);
}

async function go(route, title) {
  await page.click(`#nav a[href="#/${route}"]`);
  await waitView(title);
}

async function setValue(sel, value) {
  await page.$eval(sel, (el) => { el.value = ''; });
  if (value !== '') await page.type(sel, value);
}

/** Text of td.project-name for every projects-table row: [[id, name], ...]. */
const projectRows = () => page.$$eval('#projects-table tbody tr[data-project-id]',
  (rows) => rows.map((r) => [r.dataset.projectId, r.querySelector('td.project-name').textContent]));

async function waitProjectRow(name) {
  await page.waitForFunction((n) => [...document.querySelectorAll('#projects-table td.project-name')]
    .some((td) => td.textContent === n), { timeout: 10000 }, name);
  const row = (await projectRows()).find(([, n]) => n === name);
  assert.ok(row && row[0], `row of project ${JSON.stringify(name)} has a data-project-id`);
  return row[0];
}

async function assertNoXss(where) {
  const state = await page.evaluate(() => ({
    xss: typeof window.__xss,
    imgs: document.querySelectorAll('main#view img').length,
    scripts: document.querySelectorAll('main#view script').length,
  }));
  assert.deepStrictEqual(state, { xss: 'undefined', imgs: 0, scripts: 0 }, `no injected markup on ${where}`);
}

async function createProject(name, apiKey) {
  await setValue('#project-name', name);
  await setValue('#project-api-key', apiKey);
  await page.click('#project-create-form button[type="submit"]');
  return waitProjectRow(name);
}

/** Rows of the tokens table and the pager's label, once the label says `label`. */
async function waitTokensPage(label, rows) {
  await page.waitForFunction((l, n) => document.getElementById('tokens-page').textContent.startsWith(l) &&
    document.querySelectorAll('#tokens-table tbody tr[data-token-id]').length === n &&
    !document.getElementById('tokens-next').hasAttribute('aria-busy'), {}, label, rows);
}

/** Where keyboard focus is: { body, inPager, id }. */
const focusState = () => page.evaluate(() => {
  const el = document.activeElement;
  return { body: !el || el === document.body, inPager: !!(el && el.closest('.pager')), id: el ? el.id : '' };
});

async function renameProject(id, newName) {
  await page.click(`#projects-table tr[data-project-id="${id}"] button[data-action="rename"]`);
  await page.waitForSelector('#project-rename-dialog[open]');
  await setValue('#project-rename-name', newName);
  await page.click('#project-rename-dialog [data-role="save"]');
  await page.waitForSelector('#project-rename-dialog:not([open])');
  assert.strictEqual(await waitProjectRow(newName), id, 'renamed row keeps its id');
}

async function main() {
  await expectations();
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-ui-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  try {
    page = await browser.newPage();
    page.setDefaultTimeout(10000);
    await page.setViewport({ width: 1280, height: 800 });
    const origin = new URL(ADMIN_URL).origin;
    await browser.defaultBrowserContext().overridePermissions(origin, ['clipboard-read', 'clipboard-write']);

    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      if (expectStatus && msg.text().includes(`status of ${expectStatus} `)) return;
      problems.push(`console error: ${msg.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    // Injected by DevTools, so not subject to the page's CSP itself.
    await page.evaluateOnNewDocument(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`);
      });
    });

    await step('open the sign-in page', async () => {
      const response = await page.goto(ADMIN_URL, { waitUntil: 'load' });
      assert.strictEqual(response.status(), 200, 'admin page answers 200');
      await page.waitForSelector('#signin-form', { visible: true });
      assert.ok(await isHidden('#shell'), 'shell hidden while signed out');
      await shot('01-signin.png');
    });

    await step('a wrong token is refused', async () => {
      expectStatus = 401;
      await setValue('#signin-token', `wrong-${rand()}`);
      await page.click('#signin-form button[type="submit"]');
      await page.waitForFunction(() => document.getElementById('signin-error').textContent.trim() !== '');
      expectStatus = null;
      assert.match(await text('#signin-error'), /not accepted/);
      assert.ok(await isHidden('#shell'), 'still signed out');
      assert.ok(!(await isHidden('#signin')), 'sign-in still shown');
      assert.strictEqual(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null, 'no token stored');
      await shot('02-signin-error.png');
    });

    await step('sign in and see the dashboard', async () => {
      await setValue('#signin-token', MANAGEMENT_TOKEN);
      await page.click('#signin-form button[type="submit"]');
      await waitView('Dashboard');
      assert.ok(await isHidden('#signin'), 'sign-in hidden');
      assert.ok(page.url().endsWith('#/dashboard'), 'dashboard is the default route');
      const storage = await page.evaluate((k) => ({
        session: sessionStorage.getItem(k), cookie: document.cookie, local: JSON.stringify({ ...localStorage }),
      }), TOKEN_KEY);
      assert.strictEqual(storage.session, MANAGEMENT_TOKEN, 'token in sessionStorage');
      assert.strictEqual(storage.cookie, '', 'no cookie');
      assert.ok(!storage.local.includes(MANAGEMENT_TOKEN), 'token not in localStorage');
      assert.ok(!page.url().includes(MANAGEMENT_TOKEN), 'token not in the URL');
      assert.strictEqual(await page.$eval('#nav a[href="#/dashboard"]', (a) => a.getAttribute('aria-current')), 'page');

      const fmt = (n) => n.toLocaleString('en-US');
      assert.strictEqual(await text('#dash-projects'), fmt(EXPECTED_PROJECTS), '#dash-projects');
      assert.strictEqual(await text('#dash-active-tokens'), fmt(EXPECTED_ACTIVE_TOKENS), '#dash-active-tokens');
      assert.strictEqual(await text('#dash-health-status'), 'ok', 'the health badge says "ok"');
      assert.strictEqual(await text('#view-error'), '', 'no error on the dashboard');

      const chart = await page.$eval('#usage-chart', (box, today) => {
        const svgs = box.querySelectorAll('svg');
        const one = (sel) => box.querySelector(`${sel}[data-day="${today}"]`);
        return {
          svgs: svgs.length,
          role: svgs[0] && svgs[0].getAttribute('role'),
          label: svgs[0] && svgs[0].getAttribute('aria-label'),
          requestBars: box.querySelectorAll('rect.bar-requests').length,
          tokenBars: box.querySelectorAll('rect.bar-tokens').length,
          titled: box.querySelectorAll('rect.bar-requests > title').length,
          tableRows: box.querySelectorAll('details table tbody tr').length,
          today,
          requestsToday: one('rect.bar-requests') && one('rect.bar-requests').getAttribute('data-value'),
          tokensToday: one('rect.bar-tokens') && one('rect.bar-tokens').getAttribute('data-value'),
        };
      }, EXPECTED_DAY);
      assert.strictEqual(chart.svgs, 1, 'one svg in #usage-chart');
      assert.strictEqual(chart.role, 'img');
      assert.ok(chart.label, 'svg has an aria-label');
      assert.strictEqual(chart.requestBars, 30, '30 days of request bars');
      assert.strictEqual(chart.tokenBars, 30, '30 days of token bars');
      assert.strictEqual(chart.titled, 30, 'every request bar has a <title>');
      assert.strictEqual(chart.tableRows, 30, 'the table has the 30 days');
      assert.strictEqual(Number(chart.requestsToday), EXPECTED_REQUESTS_TODAY, `requests on ${chart.today}`);
      assert.ok(Number(chart.tokensToday) > 0, `LLM tokens on ${chart.today} > 0 (got ${chart.tokensToday})`);
      await shot('03-dashboard.png');
    });

    await step('create a project', async () => {
      await go('projects', 'Projects');
      // The key field is plain text (no password-manager prompt for a provider key).
      assert.deepStrictEqual(await page.$eval('#project-api-key', (i) => [i.type, i.autocomplete, i.spellcheck]),
        ['text', 'off', false], 'the API key input');
      result.project_id = await createProject(PROJECT_NAME, `sk-test-${rand()}${rand()}`);
      assert.match(await text('#view-status'), /created/);
      assert.strictEqual(await page.$eval('#project-api-key', (i) => i.value), '', 'the form is emptied');
      const state = await page.$eval(`#projects-table tr[data-project-id="${result.project_id}"] td.project-state`,
        (td) => td.textContent.trim());
      assert.strictEqual(state, 'active');
      // The search box filters client-side.
      await setValue('#project-search', PROJECT_NAME);
      const names = (await projectRows()).map(([, n]) => n);
      assert.deepStrictEqual(names, [PROJECT_NAME], 'search shows only the new project');
      await shot('04-projects.png');
      await setValue('#project-search', '');
    });

    await step('a duplicate project name is refused (409) in the form', async () => {
      const alert = '#project-create-form [role="alert"]';
      await setValue('#project-name', PROJECT_NAME);
      await setValue('#project-api-key', `sk-test-${rand()}`);
      // By keyboard: Enter in the last field submits the form.
      expectStatus = 409;
      await page.focus('#project-api-key');
      await page.keyboard.press('Enter');
      await page.waitForFunction((sel) => document.querySelector(sel).textContent.trim() !== '', {}, alert);
      expectStatus = null;
      const message = await text(alert);
      assert.ok(message.includes('already exists') && message.includes(PROJECT_NAME), `409 message (got ${JSON.stringify(message)})`);
      assert.strictEqual(await text('#view-status'), '', 'no success message');
      assert.strictEqual(await page.$eval('#project-name', (i) => i.value), PROJECT_NAME, 'the form keeps what was typed');
      const rows = (await projectRows()).filter(([, n]) => n === PROJECT_NAME);
      assert.strictEqual(rows.length, 1, 'still exactly one project of that name');
      await setValue('#project-name', '');
      await setValue('#project-api-key', '');
    });

    let secret;
    await step('create a token and see its secret once', async () => {
      await page.click(`#projects-table tr[data-project-id="${result.project_id}"] a[data-action="tokens"]`);
      await waitView('Tokens');
      assert.strictEqual(await page.$eval('#token-project-filter', (s) => s.value), result.project_id, 'filter set');
      assert.strictEqual(await page.$eval('#token-project', (s) => s.value), result.project_id, 'project preselected');
      assert.strictEqual(await page.$eval('#token-duration', (i) => i.value), '60', 'duration defaults to 60');
      // By keyboard: type the limit and press Enter in the field.
      await setValue('#token-max-requests', '5');
      await page.focus('#token-max-requests');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#token-secret', { visible: true });
      secret = await text('#token-secret-value');
      assert.match(await text('#token-secret'), /system clipboard/, 'the panel says where Copy puts it');
      // No second token while this secret is unread.
      await page.waitForSelector('#token-create-form button[type="submit"][disabled]');
      assert.ok(!(await isHidden('#token-create-hint')), 'the hint says why Create is disabled');
      assert.match(await text('#token-create-hint'), /dismiss the token above/);
      assert.strictEqual(await text('#token-create-form [role="alert"]'), '', 'no error in the form');
      // sk- + 22 base64url characters (16 random bytes; lib/llmproxy/util/token.hpp).
      assert.match(secret, /^sk-[A-Za-z0-9_-]{22}$/, 'the secret has the token format');
      result.secret_prefix = secret.slice(0, 7);
      await page.waitForSelector('#tokens-table tbody tr[data-token-id]');
      await page.click('#token-secret-copy');
      await page.waitForFunction(() => document.querySelector('#token-secret [role="status"]').textContent !== '');
      await shot('05-token-secret.png');

      await page.click('#token-secret-dismiss');
      await page.waitForSelector('#token-secret', { hidden: true });
      assert.ok(await page.$eval('#token-create-form button[type="submit"]', (b) => !b.disabled && b === document.activeElement),
        'Create is enabled again and focused');
      assert.ok(await isHidden('#token-create-hint'), 'the hint is gone');
      const leaked = await page.evaluate((s) => document.documentElement.outerHTML.includes(s) ||
        JSON.stringify({ ...sessionStorage, ...localStorage }).includes(s), secret);
      assert.strictEqual(leaked, false, 'the secret is gone from the page and storage');

      const rows = await page.$$eval('#tokens-table tbody tr[data-token-id]', (trs) => trs.map((tr) => ({
        id: tr.dataset.tokenId,
        status: tr.querySelector('td.token-status').textContent.trim(),
        display: tr.querySelector('td.token-display').textContent.trim(),
        project: tr.querySelector('td.token-project') && tr.querySelector('td.token-project').textContent,
      })));
      assert.strictEqual(rows.length, 1, 'the new project has exactly one token');
      result.token_id = rows[0].id;
      assert.strictEqual(rows[0].status, 'active');
      assert.ok(!rows[0].display.includes(secret), 'the list shows the obfuscated token');
      assert.ok(rows[0].display.startsWith(result.secret_prefix), 'the obfuscated token starts like the secret');
      assert.strictEqual(rows[0].project, PROJECT_NAME, 'the table shows the project name');
      assert.match(await text('#tokens-page'), /^Page 1 of 1/);
      await shot('06-tokens.png');
    });

    const tokenRow = () => `#tokens-table tr[data-token-id="${result.token_id}"]`;

    await step('edit the token limits and look at its usage', async () => {
      await page.click(`${tokenRow()} button[data-action="edit"]`);
      await page.waitForSelector('#token-edit-dialog[open]');
      assert.strictEqual(await page.$eval('#token-edit-max-requests', (i) => i.value), '5', 'current limit prefilled');
      await setValue('#token-edit-max-tokens', '1000');
      await page.click('#token-edit-dialog [data-role="save"]');
      await page.waitForSelector('#token-edit-dialog:not([open])');
      await page.waitForFunction(() => /saved/.test(document.getElementById('view-status').textContent));
      assert.match(await page.$eval(tokenRow(), (tr) => tr.textContent), /0 \/ 1,000/);

      await page.click(`${tokenRow()} button[data-action="usage"]`);
      await page.waitForSelector('#token-usage-dialog[open] svg rect.bar-requests');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#token-usage-dialog:not([open])');
      assert.strictEqual(await page.evaluate(() => document.activeElement.dataset.action), 'usage', 'focus back on the opener');
    });

    await step('revoke the token', async () => {
      await page.click(`${tokenRow()} button[data-action="revoke"]`);
      await page.waitForSelector('#confirm-dialog[open]');
      await page.click('#confirm-ok');
      await page.waitForFunction((sel) => {
        const td = document.querySelector(`${sel} td.token-status`);
        return td && td.textContent.trim() === 'revoked';
      }, {}, tokenRow());
      assert.strictEqual(await page.$(`${tokenRow()} button[data-action="revoke"]:not([disabled])`), null,
        'no revoke button on a revoked token');
      await shot('07-revoked.png');
    });

    await step('page through tokens with the keyboard', async () => {
      await page.evaluate((id) => { location.hash = `#/tokens?project=${encodeURIComponent(id)}`; }, PAGING_PROJECT_ID);
      await page.waitForFunction((id) => document.getElementById('view').dataset.ready === 'true' &&
        document.getElementById('token-project-filter')?.value === id, {}, PAGING_PROJECT_ID);
      await waitTokensPage('Page 1 of 2 · 23 tokens', PAGE_SIZE);
      assert.ok(await page.$eval('#tokens-prev', (b) => b.disabled), 'Previous is disabled on page 1');

      await page.focus('#tokens-next');
      await page.keyboard.press('Enter');
      await waitTokensPage('Page 2 of 2 · 23 tokens', 3);
      assert.ok(await page.$eval('#tokens-next', (b) => b.disabled), 'Next is disabled on the last page');
      let focus = await focusState();
      assert.ok(!focus.body && focus.inPager, `focus stays in the pager (on ${JSON.stringify(focus.id)})`);
      await shot('14-paging.png');

      await page.focus('#tokens-prev');
      await page.keyboard.press('Enter');
      await waitTokensPage('Page 1 of 2 · 23 tokens', PAGE_SIZE);
      focus = await focusState();
      assert.ok(!focus.body && focus.inPager, `focus stays in the pager (on ${JSON.stringify(focus.id)})`);
      assert.ok(page.url().endsWith(`#/tokens?project=${PAGING_PROJECT_ID}`), 'the address names the project');
    });

    await step('the audit trail shows the revoke, with details', async () => {
      await go('audit', 'Audit');
      await setValue('#audit-action', 'token.revoke');
      await setValue('#audit-search', result.token_id);
      // Audit events are written asynchronously: retry for a few seconds.
      const submit = '#audit-filter-form button[type="submit"]';
      let found = false;
      for (let i = 0; i < 12 && !found; i++) {
        if (i > 0) await sleep(500);
        await page.click(submit);
        await page.waitForFunction((s) => !document.querySelector(s).disabled, {}, submit);
        found = await page.$$eval('#audit-table td.audit-action', (tds) => tds.some((td) => td.textContent === 'token.revoke'));
      }
      assert.ok(found, 'a token.revoke row appears');
      await shot('08-audit.png');

      const row = await page.evaluateHandle(() => [...document.querySelectorAll('#audit-table tbody tr[data-event-id]')]
        .find((tr) => tr.querySelector('td.audit-action').textContent === 'token.revoke'));
      const button = await row.$('button[data-action="detail"]');
      await button.click();
      await page.waitForSelector('#audit-detail-dialog[open]');
      await page.waitForFunction((id) => document.getElementById('audit-detail-dialog').textContent.includes(id),
        {}, result.token_id);
      assert.notStrictEqual(await text('#audit-detail-metadata'), '', 'metadata shown');
      await shot('09-audit-detail.png');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#audit-detail-dialog:not([open])');
      assert.strictEqual(await page.evaluate(() => document.activeElement.dataset.action), 'detail', 'focus back on the opener');
    });

    await step('names with markup stay text', async () => {
      await go('projects', 'Projects');
      const suffix = rand();
      const imgName = `<img src=x onerror="window.__xss=1">${suffix}`;
      const scriptName = `<script>window.__xss=2</script>${suffix}`;
      result.xss_project_id = await createProject(imgName, `sk-test-${rand()}${rand()}`);
      await assertNoXss('projects');
      assert.strictEqual(await page.$eval(`#projects-table tr[data-project-id="${result.xss_project_id}"] td.project-name`,
        (td) => td.childElementCount), 0, 'the name cell holds only text');
      assert.strictEqual(await page.$$eval('#projects-table img', (els) => els.length), 0, 'no img in the table');
      await renameProject(result.xss_project_id, scriptName);
      await assertNoXss('projects after rename');
      await renameProject(result.xss_project_id, imgName);
      await setValue('#project-search', suffix);
      await shot('10-xss.png');
      await go('dashboard', 'Dashboard');
      await assertNoXss('dashboard');
      await go('tokens', 'Tokens');
      const options = await page.$$eval('#token-project-filter option', (os) => os.map((o) => o.textContent));
      assert.ok(options.includes(imgName), 'the project filter lists the name as text');
      await assertNoXss('tokens');
    });

    await step('purge the cache (Escape cancels the confirmation)', async () => {
      await go('cache', 'Cache');
      await page.click('input[name="purge-kind"][value="prefix"]');
      await page.waitForSelector('#cache-prefix', { visible: true });
      await setValue('#cache-prefix', '');
      const submit = '#cache-purge-form button[type="submit"]';
      await page.click(submit);
      await page.waitForSelector('#confirm-dialog[open]');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#confirm-dialog:not([open])');
      assert.strictEqual(await text('#cache-result'), '', 'nothing purged after Escape');
      assert.ok(await page.$eval(submit, (b) => b === document.activeElement), 'focus back on the purge button');
      await page.click(submit);
      await page.waitForSelector('#confirm-dialog[open]');
      await page.click('#confirm-ok');
      await page.waitForFunction(() => /Deleted/.test(document.getElementById('cache-result').textContent));
      await shot('11-cache.png');
    });

    await step('the navigation is reachable with the keyboard', async () => {
      await page.reload({ waitUntil: 'load' });
      await waitView('Cache'); // still signed in: the token survives a reload of the tab
      let reached = false;
      for (let i = 0; i < 15 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement.matches('#nav a[href="#/projects"]'));
      }
      assert.ok(reached, 'Tab reaches the Projects link');
      await page.keyboard.press('Enter');
      await waitView('Projects');
      assert.strictEqual(await page.$eval('#nav a[href="#/projects"]', (a) => a.getAttribute('aria-current')), 'page');
    });

    await step('phone layout', async () => {
      await page.setViewport({ width: 390, height: 844 });
      await go('dashboard', 'Dashboard');
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 391, `no horizontal page scroll on the dashboard (scrollWidth ${width})`);
      await shot('12-phone-dashboard.png');
      await go('tokens', 'Tokens');
      const tokensWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(tokensWidth <= 391, `tables scroll in their wrapper on the tokens page (scrollWidth ${tokensWidth})`);
      await shot('13-phone-tokens.png');
    });

    await step('sign out', async () => {
      await page.click('#signout');
      await page.waitForSelector('#signin-form', { visible: true });
      assert.ok(await isHidden('#shell'), 'shell hidden');
      assert.strictEqual(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null, 'token removed');
      assert.strictEqual(await page.$eval('#view', (v) => v.childElementCount), 0, 'view emptied');
    });

    await step('no console errors, page errors or CSP violations', async () => {
      assert.deepStrictEqual(problems, []);
    });
  } finally {
    await browser.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error) => {
  console.error(error.message || error);
  if (problems.length) console.error(`console problems so far:\n  ${problems.join('\n  ')}`);
  process.exit(1);
});
