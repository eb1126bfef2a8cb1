// Drives the gatewise admin dashboard in Debian's headless Chromium with
// playwright-core (no browser download: executablePath). Run by
// crates/gatewise-admin/tests/browser.rs, which starts the admin listeners
// and writes the config file given as the only argument:
//
//   { url, token_url, token, chromium, screenshots, docs_screenshot,
//     expired_call, hostile_call, hostile_path, user_token,
//     user_token_fingerprint, profile_dir }
//
// Every check compares what the page shows with what the API answers for
// the same question. Prints "DASHBOARD OK" at the end; exits 1 on the first
// failed check.

import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

// The flags this machine's Chromium needs (see the machine notes): no
// sandbox as root, no GPU, and no background connections to the internet.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const consoleErrors = [];
let current = 'start';

function step(name) {
  current = name;
  console.log(`- ${name}`);
}

/** Collects console errors and uncaught exceptions of `page`; `allowed` filters expected ones. */
function watch(page, allowed = () => false) {
  page.on('console', (m) => {
    if (m.type() === 'error' && !allowed(m.text())) consoleErrors.push(`[${current}] console: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`[${current}] uncaught: ${e.message}`));
}

/** The admin API's own answer, fetched outside the browser. */
async function apiJson(base, path, token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const r = await fetch(new URL(path, base), { headers });
  assert.equal(r.status, 200, `GET ${path}`);
  return r.json();
}

/** The rows of the calls table. */
const tableRows = (page) => page.$$eval('#calls-table tbody tr', (trs) => trs.map((tr) => ({
  id: tr.dataset.requestId,
  status: Number(tr.dataset.status),
  reason: tr.querySelector('td.reason').textContent,
  client: tr.querySelector('td.client').textContent,
  path: tr.querySelector('td.path').textContent,
})));

/** Waits until the calls table shows the answer to `query` (URLSearchParams string). */
async function tableLoaded(page, query, rows) {
  await page.waitForFunction(([q, n]) => {
    const t = document.querySelector('#calls-table');
    return t.dataset.loadedQuery === q && t.getAttribute('aria-busy') === 'false'
      && (n === undefined || t.dataset.rows === String(n));
  }, [query, rows]);
}

/** Sets the filter form and applies it; returns the query string the page should load. */
async function applyFilters(page, filters) {
  for (const name of ['from', 'status']) {
    await page.selectOption(`#filters select[name=${name}]`, filters[name] || '');
  }
  for (const name of ['route', 'reason', 'client_id', 'sub', 'finding', 'request_id']) {
    await page.fill(`#filters input[name=${name}]`, filters[name] || '');
  }
  await page.click('#filters button[type=submit]');
  const query = new URLSearchParams();
  for (const name of ['from', 'status', 'route', 'reason', 'client_id', 'sub', 'finding', 'request_id']) {
    if (filters[name]) query.set(name, filters[name]);
  }
  await tableLoaded(page, query.toString());
  return query;
}

async function checkOverview(page, range) {
  await page.waitForSelector(`#view-overview[data-loaded-range="${range}"][aria-busy="false"]`);
  const bucket = ['24h', '7d'].includes(range) ? 'hour' : 'minute';
  const stats = await apiJson(cfg.url, `api/v1/stats?from=${range}&bucket=${bucket}`);
  assert.ok(stats.calls > 0, `the ${range} range has calls`);
  const okBars = stats.buckets.filter((b) => b.calls - b.errors > 0).length;
  const errorBars = stats.buckets.filter((b) => b.errors > 0).length;
  assert.equal(await page.locator('#chart-traffic svg[data-kind=traffic] rect.bar:not(.error)').count(), okBars, 'one bar per bucket with successful calls');
  assert.equal(await page.locator('#chart-traffic svg rect.bar.error').count(), errorBars, 'one red bar per bucket with errors');
  assert.equal(await page.locator('#chart-errors svg[data-kind=error-rate] path.line.error').count(), 1, 'error-rate line');
  assert.equal(await page.locator('#chart-errors svg circle.point').count(), stats.buckets.length, 'one error-rate point per bucket with calls');
  assert.equal(await page.locator('#chart-latency svg[data-kind=latency] path.line').count(), 3, 'p50, p95 and p99 lines');
  assert.equal(await page.locator('#chart-latency svg circle.point').count(), 3 * stats.buckets.length, 'three latency points per bucket');
  const reasons = await page.$$eval('#chart-reasons a[data-reason]', (as) => as.map((a) => a.getAttribute('data-reason')));
  assert.deepEqual(reasons, stats.top_reasons.map((r) => r.reason), 'one bar per reason code, most frequent first');
  const clients = await page.$$eval('#chart-clients a[data-client]', (as) => as.map((a) => [
    a.getAttribute('data-client'), a.querySelector('text.reason-count').textContent,
  ]));
  assert.deepEqual(clients, stats.top_clients_by_errors.map((c) => [c.client_id, c.errors.toLocaleString('en-US')]),
    'one bar per client with errors, most errors first, with the count');
  const kpis = await page.$$eval('#kpis .value', (vs) => vs.map((v) => v.textContent));
  assert.equal(kpis[0], stats.calls.toLocaleString('en-US'), 'the Calls figure');
  assert.equal(kpis[1], stats.errors.toLocaleString('en-US'), 'the Errors figure');
  return stats;
}

async function main() {
  mkdirSync(cfg.screenshots, { recursive: true });
  const context = await chromium.launchPersistentContext(cfg.profile_dir, {
    executablePath: cfg.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 960 },
    timezoneId: 'UTC',
    locale: 'en-US',
  });
  // A bound on each wait (not a timing assertion): generous, since CI
  // machines compile beside this test.
  context.setDefaultTimeout(120_000);
  try {
    const page = context.pages()[0] || await context.newPage();
    watch(page);

    step('overview: the page loads and the charts show the last hour');
    await page.goto(cfg.url);
    assert.equal(await page.title(), 'gatewise admin');
    const hour = await checkOverview(page, '1h');
    assert.ok(hour.top_reasons.length >= 5, 'the seeded calls have several reason codes');
    assert.ok(hour.top_clients_by_errors.length >= 3, 'several clients have errors');
    await page.screenshot({ path: join(cfg.screenshots, 'overview.png'), fullPage: true });
    if (cfg.docs_screenshot) {
      mkdirSync(dirname(cfg.docs_screenshot), { recursive: true });
      const bottom = await page.evaluate(() => Math.ceil(document.querySelector('main').getBoundingClientRect().bottom));
      await page.screenshot({ path: cfg.docs_screenshot, clip: { x: 0, y: 0, width: 1440, height: bottom } });
      console.log(`  saved ${cfg.docs_screenshot}`);
    }

    step('overview: another time range redraws the charts');
    await page.click('#range button[data-range="15m"]');
    const quarter = await checkOverview(page, '15m');
    assert.ok(quarter.calls < hour.calls, 'fewer calls in 15 minutes than in the hour');

    step('overview: a reason bar opens the calls with that reason');
    await page.click('#chart-reasons a[data-reason="jwt-expired"] rect');
    await tableLoaded(page, 'from=15m&reason=jwt-expired');
    const expired = await tableRows(page);
    const expiredApi = await apiJson(cfg.url, 'api/v1/calls?from=15m&reason=jwt-expired&limit=50');
    assert.ok(expired.length > 0);
    assert.deepEqual(expired.map((r) => r.id), expiredApi.calls.map((c) => c.request_id));
    assert.ok(expired.every((r) => r.reason === 'jwt-expired' && r.status === 401));
    assert.equal(await page.inputValue('#filters input[name=reason]'), 'jwt-expired', 'the filter form shows the filter');

    step('overview: a client bar opens that client\'s errors');
    await page.click('.tabs a[data-view=overview]');
    await page.waitForSelector('#view-overview[data-loaded-range="15m"][aria-busy="false"]');
    {
      const top = quarter.top_clients_by_errors[0];
      assert.ok(top, 'a client with errors in the last 15 minutes');
      await page.click(`#chart-clients a[data-client="${top.client_id}"] rect`);
      const query = new URLSearchParams({ from: '15m', status: 'error', client_id: top.client_id }).toString();
      await tableLoaded(page, query);
      const rows = await tableRows(page);
      const api = await apiJson(cfg.url, `api/v1/calls?${query}&limit=50`);
      assert.deepEqual(rows.map((r) => r.id), api.calls.map((c) => c.request_id));
      assert.equal(rows.length, Math.min(top.errors, 50), 'as many rows as the bar counts');
      assert.ok(rows.every((r) => r.client === top.client_id && r.status >= 400));
    }

    step('calls: the explorer lists the newest calls');
    await page.click('.tabs a[data-view=calls]');
    await tableLoaded(page, '');
    const all = await tableRows(page);
    const allApi = await apiJson(cfg.url, 'api/v1/calls?limit=50');
    assert.deepEqual(all.map((r) => r.id), allApi.calls.map((c) => c.request_id));
    assert.ok(all.some((r) => r.status < 400) && all.some((r) => r.status >= 400), 'a mix of statuses');

    step('calls: attacker-controlled strings stay text');
    const hostile = all.find((r) => r.id === cfg.hostile_call);
    assert.ok(hostile, 'the hostile call is on the first page');
    assert.equal(hostile.path, cfg.hostile_path);
    assert.equal(await page.locator('#calls-table img').count(), 0, 'no element made from a path');
    assert.equal(await page.evaluate(() => window.__gwPwned), undefined);

    for (const [status, check] of [
      ['4xx', (s) => s >= 400 && s < 500],
      ['error', (s) => s >= 400],
      ['5xx', (s) => s >= 500],
    ]) {
      step(`calls: the status filter ${status} shows only those calls`);
      const query = await applyFilters(page, { status });
      const rows = await tableRows(page);
      const api = await apiJson(cfg.url, `api/v1/calls?${query}&limit=50`);
      assert.ok(rows.length > 0, `some ${status} calls`);
      assert.deepEqual(rows.map((r) => r.id), api.calls.map((c) => c.request_id));
      assert.ok(rows.every((r) => check(r.status)), `${status}: ${rows.map((r) => r.status)}`);
      assert.notDeepEqual(rows.map((r) => r.id), all.map((r) => r.id), `${status} changed the rows`);
    }
    {
      const rows = await tableRows(page);
      assert.ok(rows.some((r) => r.status === 502), 'the outage shows in 5xx');
    }

    step('calls: filters combine (client and errors)');
    {
      const query = await applyFilters(page, { status: 'error', client_id: 'mobile-app', from: '1h' });
      const rows = await tableRows(page);
      const api = await apiJson(cfg.url, `api/v1/calls?${query}&limit=50`);
      assert.ok(rows.length > 0);
      assert.deepEqual(rows.map((r) => r.id), api.calls.map((c) => c.request_id));
      assert.ok(rows.every((r) => r.client === 'mobile-app' && r.status >= 400));
    }

    step('calls: a recorded finding links to the calls with that finding');
    await page.click('#filters button[type=reset]');
    await tableLoaded(page, '');
    {
      const newest = await apiJson(cfg.url, 'api/v1/calls?limit=50');
      const inspected = newest.calls.find((c) => (c.findings || []).some((f) => f.rule === 'TR-02'));
      assert.ok(inspected, 'a call with a finding among the newest 50');
      await page.click(`#calls-table tr[data-request-id="${inspected.request_id}"]`);
      await page.waitForSelector(`#detail[data-request-id="${inspected.request_id}"]:not([hidden])`);
      await page.click('#detail-body a[data-finding="TR-02"]');
      await tableLoaded(page, 'finding=TR-02');
      assert.equal(await page.inputValue('#filters input[name=finding]'), 'TR-02', 'the filter form shows the finding');
      assert.ok(await page.isHidden('#detail'), 'the new query closed the detail');
      const rows = await tableRows(page);
      const api = await apiJson(cfg.url, 'api/v1/calls?finding=TR-02&limit=50');
      assert.ok(rows.length > 0);
      assert.deepEqual(rows.map((r) => r.id), api.calls.map((c) => c.request_id));
      assert.ok(rows.some((r) => r.id === inspected.request_id));
      assert.ok(api.calls.every((c) => c.findings.some((f) => f.rule === 'TR-02')), 'only calls with TR-02');
      assert.notDeepEqual(rows.map((r) => r.id), all.map((r) => r.id), 'the finding changed the rows');
    }

    step('calls: the finding filter combines with others');
    {
      const query = await applyFilters(page, { finding: 'ER-02', status: 'error' });
      const rows = await tableRows(page);
      const api = await apiJson(cfg.url, `api/v1/calls?${query}&limit=50`);
      assert.deepEqual(rows.map((r) => r.id), api.calls.map((c) => c.request_id));
      assert.ok(rows.every((r) => r.status >= 400));
      assert.ok(api.calls.every((c) => c.findings.some((f) => f.rule === 'ER-02')));
      const unknown = await applyFilters(page, { finding: 'ZZ-99' });
      assert.equal(unknown.toString(), 'finding=ZZ-99');
      assert.equal((await tableRows(page)).length, 0);
      assert.ok(await page.isVisible('#calls-empty'), 'no calls: the empty note shows');
    }

    step('calls: "Load more" continues with the next page');
    await page.click('#filters button[type=reset]');
    await tableLoaded(page, '', 50);
    assert.ok(await page.isVisible('#load-more'));
    await page.click('#load-more');
    await tableLoaded(page, '', 100);
    {
      const rows = await tableRows(page);
      const api = await apiJson(cfg.url, 'api/v1/calls?limit=100');
      assert.deepEqual(rows.map((r) => r.id), api.calls.map((c) => c.request_id), 'two pages = the first 100 calls, no duplicates');
    }

    step('call detail: clicking a call shows its trace, principal, headers and diagnosis');
    await page.click(`#calls-table tr[data-request-id="${cfg.expired_call}"]`);
    await page.waitForSelector(`#detail[data-request-id="${cfg.expired_call}"]:not([hidden])`);
    const trace = await page.$$eval('#detail-body table.trace tbody tr', (trs) => trs.map((tr) => ({
      step: tr.dataset.step, outcome: tr.dataset.outcome, text: tr.textContent,
    })));
    assert.deepEqual(trace.map((t) => [t.step, t.outcome]), [['route', 'ok'], ['jwt', 'refused']]);
    assert.ok(trace[1].text.includes('jwt-expired') && trace[1].text.includes('205 s before now'), trace[1].text);
    const detail = await page.textContent('#detail');
    for (const needle of ['https://login.example.com', 'mobile-app', 'user-42', 'orders.read', 'k1', cfg.user_token_fingerprint, 'orders-ios/5.2', 'invalid_token']) {
      assert.ok(detail.includes(needle), `the detail shows ${needle}`);
    }
    assert.ok(!detail.includes(cfg.user_token), 'the raw token is never shown');
    const openapi = await apiJson(cfg.url, 'api/v1/openapi.json');
    if (openapi.paths['/api/v1/calls/{request_id}/diagnosis']) {
      await page.waitForSelector('#diagnosis [data-diagnosis=available]');
      assert.equal(await page.locator('#diagnosis [data-code="call-jwt-expired"]').count(), 1, 'the diagnosis names the expired token');
    } else {
      await page.waitForSelector('#diagnosis [data-diagnosis=unavailable]');
    }
    await page.screenshot({ path: join(cfg.screenshots, 'call-detail.png') });

    step('call detail: markup in a path, a header and a trace detail stays text');
    // The drawer covers part of the table: Escape closes it.
    await page.keyboard.press('Escape');
    await page.waitForSelector('#detail', { state: 'hidden' });
    await page.click(`#calls-table tr[data-request-id="${cfg.hostile_call}"]`);
    await page.waitForSelector(`#detail[data-request-id="${cfg.hostile_call}"]:not([hidden])`);
    const hostileText = await page.textContent('#detail');
    assert.ok(hostileText.includes(cfg.hostile_path));
    assert.ok(hostileText.includes('<script>window.__gwPwned=3</script>'));
    assert.ok(hostileText.includes('<b>no route</b>'));
    assert.equal(await page.locator('#detail img, #detail script, #detail b').count(), 0);
    assert.equal(await page.evaluate(() => window.__gwPwned), undefined);
    await page.click('#detail-close');
    await page.waitForSelector('#detail', { state: 'hidden' });

    step('issuers: keys, errors, reloads and upstream targets');
    await page.click('.tabs a[data-view=issuers]');
    await page.waitForSelector('#issuers-body[data-loaded=true]');
    const state = await apiJson(cfg.url, 'api/v1/state');
    for (const issuer of state.gateway.issuers) {
      const card = page.locator(`[data-issuer="${issuer.name}"]`);
      const kids = await card.locator('.chip').allTextContents();
      assert.deepEqual(kids, issuer.kids, `${issuer.name}'s kids`);
      if (issuer.last_error) {
        assert.equal(await card.locator('.last-error').textContent(), issuer.last_error);
      }
    }
    assert.ok(state.gateway.issuers.some((i) => i.last_error), 'one issuer is failing');
    const config = await page.textContent('#config-card');
    assert.ok(config.includes(`refused: ${state.gateway.last_reload.error}`), config);
    assert.deepEqual(state.gateway.rate_limits.map((l) => [l.route, l.allowed, l.limited, l.keys]), [['public', 2, 1, 1]],
      'the three requests the test sent');
    for (const l of state.gateway.rate_limits) {
      const row = page.locator(`#rate-limits-card tr[data-rate-limit="${l.route}"]`);
      assert.equal(await row.locator('td.policy').textContent(), '2 per minute, burst 2, per client_ip');
      assert.equal(await row.locator('td.allowed').textContent(), l.allowed.toLocaleString('en-US'));
      assert.equal(await row.locator('td.limited').textContent(), l.limited.toLocaleString('en-US'));
      assert.equal(await row.locator('td.keys').textContent(), l.keys.toLocaleString('en-US'));
    }
    assert.deepEqual(state.gateway.caches.map((c) => c.cache), ['verified_tokens'], 'no introspector here');
    for (const c of state.gateway.caches) {
      const row = page.locator(`#caches-card tr[data-cache="${c.cache}"]`);
      assert.equal(await row.locator('td.entries').textContent(),
        `${c.entries.toLocaleString('en-US')} / ${c.capacity.toLocaleString('en-US')}`);
      assert.equal(await row.locator('td.hits').textContent(), c.hits.toLocaleString('en-US'));
      assert.equal(await row.locator('td.misses').textContent(), c.misses.toLocaleString('en-US'));
    }
    const targets = state.gateway.upstreams.flatMap((u) => u.targets.map((t) => t.base));
    assert.deepEqual(await page.$$eval('[data-target]', (trs) => trs.map((tr) => tr.dataset.target)), targets);
    await page.screenshot({ path: join(cfg.screenshots, 'issuers.png'), fullPage: true });

    step('token: a protected admin API asks for the token and keeps it for the tab');
    const guarded = await context.newPage();
    // The 401 answers themselves are logged by Chromium as failed loads.
    watch(guarded, (text) => text.includes('401'));
    await guarded.goto(cfg.token_url);
    await guarded.waitForSelector('#token-view:not([hidden])');
    assert.ok(await guarded.isHidden('#view-overview'));
    await guarded.fill('#token-input', 'not-the-token');
    await guarded.click('#token-form button[type=submit]');
    await guarded.waitForSelector('#token-error:not([hidden])');
    assert.match(await guarded.textContent('#token-error'), /refused/);
    await guarded.fill('#token-input', cfg.token);
    await guarded.click('#token-form button[type=submit]');
    await guarded.waitForSelector('#chart-traffic svg rect.bar');
    assert.equal(await guarded.evaluate(() => sessionStorage.getItem('gatewise.admin.token')), cfg.token);
    assert.ok(await guarded.isVisible('#forget-token'));
    await guarded.click('.tabs a[data-view=calls]');
    await guarded.waitForFunction(() => document.querySelector('#calls-table').dataset.rows === '50');
    await guarded.close();

    step('no console errors');
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
  console.log('DASHBOARD OK');
}

main().catch((e) => {
  console.error(`FAILED at "${current}": ${e.stack || e}`);
  if (consoleErrors.length) console.error(`console errors so far:\n${consoleErrors.join('\n')}`);
  process.exit(1);
});
