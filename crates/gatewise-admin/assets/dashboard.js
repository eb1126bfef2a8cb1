// gatewise admin dashboard: plain JavaScript over the admin API, no
// dependencies, no build step. Every string that comes from the API (paths,
// headers, reasons, ids) reaches the page through textContent or
// setAttribute, never as markup.
'use strict';

(() => {
  const TOKEN_KEY = 'gatewise.admin.token';
  const PAGE_SIZE = 50;
  const DIAGNOSIS_PATH = '/api/v1/calls/{request_id}/diagnosis';
  /** Time ranges of the overview: how far back, and the bucket width. */
  const RANGES = {
    '15m': 'minute',
    '1h': 'minute',
    '6h': 'minute',
    '24h': 'hour',
    '7d': 'hour',
  };
  const CALL_FILTERS = ['from', 'status', 'route', 'reason', 'client_id', 'sub', 'finding', 'request_id'];

  const ui = {
    range: '1h',
    overviewRoute: '',
    calls: { query: '', next: null, seq: 0, count: 0 },
    state: null,
    capabilities: null,
    selectedRow: null,
  };

  // ------------------------------------------------------------ DOM helpers

  const $ = (selector, root = document) => root.querySelector(selector);
  const SVG_NS = 'http://www.w3.org/2000/svg';

  function setProps(node, props) {
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, String(value));
    }
  }

  function addChildren(node, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** An HTML element: attributes, event handlers (`onclick`), `text`, children. */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    return addChildren(node, children);
  }

  /** An SVG element, like `h`. */
  function s(tag, props, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setProps(node, props);
    return addChildren(node, children);
  }

  // ------------------------------------------------------------ formatting

  const pad = (n, width = 2) => String(n).padStart(width, '0');

  function formatTime(ms, withDate = true) {
    const d = new Date(ms);
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    if (!withDate) return time;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
  }

  function formatTick(ms, bucket, spanMs) {
    const d = new Date(ms);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (bucket === 'hour' && spanMs > 86_400_000) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
    return hm;
  }

  function formatMicros(us) {
    if (us === null || us === undefined) return '–';
    if (us < 1000) return `${us} µs`;
    if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
    return `${(us / 1_000_000).toFixed(2)} s`;
  }

  /** Axis labels: 100 µs, 1 ms, 10 ms, 1 s. */
  function formatMicrosShort(us) {
    if (us < 1000) return `${us} µs`;
    if (us < 1_000_000) return `${us / 1000} ms`;
    return `${us / 1_000_000} s`;
  }

  function formatSeconds(secs) {
    if (secs === null || secs === undefined) return 'never loaded';
    if (secs < 60) return `${secs} s`;
    if (secs < 3600) return `${Math.floor(secs / 60)} min ${secs % 60} s`;
    if (secs < 86_400) return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} min`;
    return `${Math.floor(secs / 86_400)} d ${Math.floor((secs % 86_400) / 3600)} h`;
  }

  const formatCount = (n) => Number(n || 0).toLocaleString('en-US');
  const formatPercent = (f) => `${(f * 100).toFixed(f > 0 && f < 0.1 ? 2 : 1)}%`;

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function statusBadge(status) {
    const cls = status >= 500 ? 'status server-error' : status >= 400 ? 'status client-error' : 'status';
    return h('span', { class: cls, text: status || '–' });
  }

  // ------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** GET an admin API path (relative to the page) with query `params`. */
  async function api(path, params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== '' && value !== null && value !== undefined) query.set(key, value);
    }
    const url = query.toString() ? `${path}?${query}` : path;
    const headers = { Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(url, { headers, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      throw new ApiError(0, `The admin API cannot be reached (${e.message}).`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      const detail = body && typeof body.detail === 'string' ? body.detail : `HTTP ${response.status}`;
      throw new ApiError(response.status, detail, body && body.code);
    }
    return body;
  }

  /** Runs a view's loader; a 401 asks for the token, other failures show a banner. */
  async function guarded(task) {
    try {
      await task();
      $('#banner').hidden = true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        const had = sessionStorage.getItem(TOKEN_KEY);
        sessionStorage.removeItem(TOKEN_KEY);
        showTokenForm(had ? 'That token was refused.' : '');
      } else {
        const banner = $('#banner');
        banner.textContent = e instanceof ApiError ? e.message : `Unexpected error: ${e.message}`;
        banner.hidden = false;
        if (!(e instanceof ApiError)) console.warn(e);
      }
    }
  }

  async function gatewayState(refresh = false) {
    if (!ui.state || refresh) {
      ui.state = await api('api/v1/state');
      fillRouteLists(ui.state);
      const version = ui.state && ui.state.version;
      $('#version').textContent = version ? `v${version}` : '';
    }
    return ui.state;
  }

  /** What the running admin API offers beyond the basics (from its OpenAPI document). */
  async function capabilities() {
    if (!ui.capabilities) {
      try {
        const doc = await api('api/v1/openapi.json');
        ui.capabilities = { diagnosis: Boolean(doc && doc.paths && doc.paths[DIAGNOSIS_PATH]) };
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) throw e;
        ui.capabilities = { diagnosis: false };
      }
    }
    return ui.capabilities;
  }

  function fillRouteLists(state) {
    const routes = (state && state.gateway && state.gateway.routes) || [];
    const select = $('#overview-route');
    select.replaceChildren(h('option', { value: '', text: 'All routes' }),
      ...routes.map((r) => h('option', { value: r, text: r })));
    select.value = routes.includes(ui.overviewRoute) ? ui.overviewRoute : '';
    select.parentElement.hidden = routes.length === 0;
    $('#route-names').replaceChildren(...routes.map((r) => h('option', { value: r })));
  }

  // ------------------------------------------------------------ token

  function showTokenForm(message) {
    for (const view of document.querySelectorAll('.view')) view.hidden = true;
    closeDetail();
    $('#token-view').hidden = false;
    const error = $('#token-error');
    error.textContent = message;
    error.hidden = !message;
    $('#token-input').value = '';
    $('#token-input').focus();
    $('#forget-token').hidden = true;
  }

  $('#token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('#token-input').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('#token-view').hidden = true;
    route();
  });

  $('#forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    ui.state = null;
    ui.capabilities = null;
    showTokenForm('');
  });

  // ------------------------------------------------------------ routing

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const [view, query = ''] = raw.split('?', 2);
    return {
      view: ['overview', 'calls', 'issuers'].includes(view) ? view : 'overview',
      params: new URLSearchParams(query),
    };
  }

  function route() {
    const { view, params } = parseHash();
    $('#token-view').hidden = true;
    $('#forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY);
    for (const tab of document.querySelectorAll('.tabs a')) {
      tab.classList.toggle('active', tab.dataset.view === view);
      if (tab.dataset.view === view) tab.setAttribute('aria-current', 'page');
      else tab.removeAttribute('aria-current');
    }
    for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== `view-${view}`;
    if (view !== 'calls') closeDetail();
    if (view === 'overview') guarded(loadOverview);
    else if (view === 'calls') guarded(() => loadCalls(params));
    else guarded(loadIssuers);
  }

  window.addEventListener('hashchange', route);
  $('#refresh').addEventListener('click', () => {
    ui.state = null;
    route();
  });

  // ------------------------------------------------------------ overview

  $('#range').addEventListener('click', (event) => {
    const range = event.target.closest('button') && event.target.closest('button').dataset.range;
    if (range && RANGES[range]) {
      ui.range = range;
      guarded(loadOverview);
    }
  });

  $('#overview-route').addEventListener('change', (event) => {
    ui.overviewRoute = event.target.value;
    guarded(loadOverview);
  });

  async function loadOverview() {
    const section = $('#view-overview');
    for (const b of document.querySelectorAll('#range button')) b.classList.toggle('active', b.dataset.range === ui.range);
    section.setAttribute('aria-busy', 'true');
    await gatewayState().catch((e) => {
      if (e instanceof ApiError && e.status === 401) throw e;
    });
    const bucket = RANGES[ui.range];
    const stats = await api('api/v1/stats', { from: ui.range, bucket, route: ui.overviewRoute });
    const buckets = fillBuckets(stats);
    renderKpis(stats);
    const unit = bucket === 'minute' ? 'per minute' : 'per hour';
    $('#chart-traffic .unit').textContent = `calls ${unit}`;
    chartInto('#chart-traffic', trafficChart(buckets, stats, bucket),
      legend([['ok', 'Calls'], ['error', 'Errors (4xx, 5xx)']]));
    chartInto('#chart-errors', errorRateChart(buckets, stats, bucket));
    chartInto('#chart-latency', latencyChart(buckets, stats, bucket),
      legend([['p50', 'p50'], ['p95', 'p95'], ['p99', 'p99']]));
    chartInto('#chart-reasons', reasonsChart(stats.top_reasons || []));
    chartInto('#chart-clients', clientsChart(stats.top_clients_by_errors || []));
    section.setAttribute('aria-busy', 'false');
    section.dataset.loadedRange = ui.range;
  }

  /** Every bucket of the range, the empty ones too (the API omits them). */
  function fillBuckets(stats) {
    const width = stats.bucket_ms;
    const byStart = new Map((stats.buckets || []).map((b) => [b.start, b]));
    const out = [];
    for (let t = Math.floor(stats.from / width) * width; t < stats.until; t += width) {
      out.push(byStart.get(t) || { start: t, calls: 0, errors: 0, server_errors: 0 });
    }
    return out;
  }

  function renderKpis(stats) {
    const serverErrors = (stats.buckets || []).reduce((sum, b) => sum + (b.server_errors || 0), 0);
    const kpi = (label, value, bad) => h('div', { class: bad ? 'card kpi bad' : 'card kpi' },
      h('div', { class: 'label', text: label }), h('div', { class: 'value', text: value }));
    $('#kpis').replaceChildren(
      kpi('Calls', formatCount(stats.calls)),
      kpi('Errors (4xx and 5xx)', formatCount(stats.errors)),
      kpi('Error rate', formatPercent(stats.error_rate || 0)),
      kpi('Server errors (5xx)', formatCount(serverErrors), serverErrors > 0),
    );
  }

  function chartInto(selector, svg, ...extra) {
    $(`${selector} .chart-body`).replaceChildren(svg, ...extra);
  }

  function legend(items) {
    return h('div', { class: 'legend' }, items.map(([cls, label]) =>
      h('span', null, h('span', { class: `swatch ${cls}` }), label)));
  }

  // ------------------------------------------------------------ charts (inline SVG)

  const CHART = { width: 640, height: 200, left: 48, right: 12, top: 10, bottom: 24 };

  /** Round tick values from 0 to at least `max`. */
  function ticks(max, count = 4) {
    if (!(max > 0)) return [0, 1];
    const raw = max / count;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / magnitude;
    const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * magnitude;
    const out = [];
    for (let v = 0; v < max + step / 2; v += step) out.push(Number(v.toPrecision(12)));
    if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
    return out;
  }

  /** A linear y scale from 0 to a round value at or above `max`. */
  function linearScale(max) {
    const t = ticks(max);
    const topValue = t[t.length - 1];
    return { ticks: t, at: (v) => v / topValue };
  }

  /** A logarithmic y scale over whole decades (latencies span several). */
  function logScale(min, max) {
    const lo = Math.floor(Math.log10(Math.max(min, 1)));
    const hi = Math.max(Math.ceil(Math.log10(Math.max(max, 1))), lo + 1);
    const t = [];
    for (let e = lo; e <= hi; e++) t.push(10 ** e);
    return { ticks: t, at: (v) => (Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo) };
  }

  /** An empty frame with y grid lines and x time labels; returns the scales. */
  function frame(kind, buckets, stats, bucket, scale, yFormat) {
    const { width, height, left, right, top, bottom } = CHART;
    const plotW = width - left - right;
    const plotH = height - top - bottom;
    const yTicks = scale.ticks;
    const n = Math.max(buckets.length, 1);
    const band = plotW / n;
    const x = (i) => left + i * band;
    const y = (v) => top + plotH - scale.at(v) * plotH;
    const svg = s('svg', {
      class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'data-kind': kind,
      'aria-label': `${kind} chart`,
    });
    for (const t of yTicks) {
      svg.append(s('line', { class: 'grid-line', x1: left, x2: width - right, y1: y(t), y2: y(t) }));
      svg.append(s('text', { class: 'axis-label', x: left - 6, y: y(t) + 3, 'text-anchor': 'end', text: yFormat(t) }));
    }
    const labels = Math.min(6, n);
    const spanMs = stats.until - stats.from;
    for (let k = 0; k < labels; k++) {
      const i = Math.round((k * (n - 1)) / Math.max(labels - 1, 1));
      const b = buckets[i];
      if (!b) continue;
      svg.append(s('text', {
        class: 'axis-label', x: x(i) + band / 2, y: height - 6, 'text-anchor': 'middle',
        text: formatTick(b.start, bucket, spanMs),
      }));
    }
    return { svg, x, y, band, n };
  }

  function emptyChart(message) {
    return h('div', { class: 'chart-empty', text: message });
  }

  function trafficChart(buckets, stats, bucket) {
    const max = Math.max(0, ...buckets.map((b) => b.calls));
    if (max === 0) return emptyChart('No calls in this range.');
    const f = frame('traffic', buckets, stats, bucket, linearScale(max), (v) => formatCount(v));
    const gap = f.band > 4 ? 1 : 0;
    buckets.forEach((b, i) => {
      if (!b.calls) return;
      const ok = b.calls - b.errors;
      const label = `${formatTime(b.start)}: ${formatCount(b.calls)} calls, ${formatCount(b.errors)} errors`;
      const w = Math.max(f.band - gap, 0.5);
      if (ok > 0) {
        f.svg.append(s('rect', { class: 'bar', x: f.x(i) + gap / 2, y: f.y(b.calls), width: w, height: f.y(b.errors) - f.y(b.calls) },
          s('title', { text: label })));
      }
      if (b.errors > 0) {
        f.svg.append(s('rect', { class: 'bar error', x: f.x(i) + gap / 2, y: f.y(b.errors), width: w, height: f.y(0) - f.y(b.errors) },
          s('title', { text: label })));
      }
    });
    return f.svg;
  }

  /** A polyline through the buckets that have calls, with dots when they fit. */
  function line(f, buckets, cls, value, label) {
    const points = [];
    buckets.forEach((b, i) => {
      const v = value(b);
      if (b.calls > 0 && v !== null && v !== undefined) points.push([f.x(i) + f.band / 2, f.y(v), b, v]);
    });
    if (points.length === 0) return [];
    const d = points.map(([px, py], k) => `${k === 0 ? 'M' : 'L'}${px.toFixed(1)},${py.toFixed(1)}`).join(' ');
    const out = [s('path', { class: `line ${cls}`, d })];
    if (points.length <= 90) {
      for (const [px, py, b, v] of points) {
        out.push(s('circle', { class: `point ${cls}`, cx: px.toFixed(1), cy: py.toFixed(1), r: 2.5 },
          s('title', { text: `${formatTime(b.start)}: ${label(v, b)}` })));
      }
    }
    return out;
  }

  function errorRateChart(buckets, stats, bucket) {
    const rate = (b) => (b.calls ? b.errors / b.calls : null);
    const max = Math.max(0, ...buckets.map((b) => rate(b) || 0));
    if (!buckets.some((b) => b.calls)) return emptyChart('No calls in this range.');
    const scale = linearScale(Math.min(Math.max(max, 0.01), 1));
    const f = frame('error-rate', buckets, stats, bucket, scale, (v) => `${Math.round(v * 100)}%`);
    const parts = line(f, buckets, 'error', rate, (v, b) => `${formatPercent(v)} (${b.errors} of ${b.calls})`);
    const path = parts[0];
    if (path) {
      // A light area under the line.
      const first = path.getAttribute('d').match(/^M([\d.]+)/);
      const last = path.getAttribute('d').match(/([\d.]+),[\d.]+$/);
      if (first && last) {
        f.svg.append(s('path', { class: 'area error', d: `${path.getAttribute('d')} L${last[1]},${f.y(0)} L${first[1]},${f.y(0)} Z` }));
      }
    }
    f.svg.append(...parts);
    return f.svg;
  }

  function latencyChart(buckets, stats, bucket) {
    const max = Math.max(0, ...buckets.map((b) => b.p99_us || 0));
    if (max === 0) return emptyChart('No calls in this range.');
    const min = Math.min(...buckets.filter((b) => b.calls > 0).map((b) => b.p50_us || 1));
    const f = frame('latency', buckets, stats, bucket, logScale(min, max), formatMicrosShort);
    // The higher percentiles first, so a lower one that equals it stays visible.
    for (const p of ['p99', 'p95', 'p50']) {
      f.svg.append(...line(f, buckets, p, (b) => b[`${p}_us`], (v) => `${p} ${formatMicros(v)}`));
    }
    return f.svg;
  }

  /**
   * Horizontal bars, one per item, most first; each bar links to the calls
   * it counts. `item` gives `{ label, count, query, data, title }`.
   */
  function barList(kind, ariaLabel, items, item) {
    const rowH = 24;
    const labelW = 210;
    const width = CHART.width;
    const height = items.length * rowH + 8;
    const rows = items.map(item);
    const max = Math.max(...rows.map((r) => r.count));
    const barMax = width - labelW - 60;
    const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'data-kind': kind, 'aria-label': ariaLabel });
    rows.forEach((r, i) => {
      const y = 4 + i * rowH;
      const w = Math.max((r.count / max) * barMax, 2);
      const link = s('a', { href: `#/calls?${new URLSearchParams(r.query)}`, ...r.data },
        s('title', { text: r.title }),
        s('text', { class: 'reason-label', x: labelW - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end', text: truncate(r.label, 30) }),
        s('rect', { class: 'bar error', x: labelW, y: y + 4, width: w, height: rowH - 8, rx: 2 }),
        s('text', { class: 'reason-count', x: labelW + w + 6, y: y + rowH / 2 + 4, text: formatCount(r.count) }));
      svg.append(link);
    });
    return svg;
  }

  function reasonsChart(reasons) {
    if (reasons.length === 0) return emptyChart('No refusals or failures in this range.');
    return barList('reasons', 'errors by reason code', reasons, (r) => ({
      label: r.reason,
      count: r.calls,
      query: { reason: r.reason, from: ui.range },
      data: { 'data-reason': r.reason },
      title: `${r.reason}: ${formatCount(r.calls)} calls — show them`,
    }));
  }

  /** The clients (`client_id`) with the most 4xx and 5xx answers in the range. */
  function clientsChart(clients) {
    if (clients.length === 0) return emptyChart('No client had errors in this range.');
    return barList('clients', 'top clients by errors', clients, (c) => {
      const query = { client_id: c.client_id, status: 'error', from: ui.range };
      if (ui.overviewRoute) query.route = ui.overviewRoute;
      return {
        label: c.client_id,
        count: c.errors,
        query,
        data: { 'data-client': c.client_id },
        title: `${c.client_id}: ${formatCount(c.errors)} errors — show them`,
      };
    });
  }

  const truncate = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

  // ------------------------------------------------------------ calls

  const filtersForm = $('#filters');

  filtersForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const name of CALL_FILTERS) {
      const value = filtersForm.elements[name].value.trim();
      if (value) query.set(name, value);
    }
    const hash = query.toString() ? `#/calls?${query}` : '#/calls';
    if (location.hash === hash) route();
    else location.hash = hash;
  });

  filtersForm.addEventListener('reset', (event) => {
    event.preventDefault();
    if (location.hash === '#/calls') route();
    else location.hash = '#/calls';
  });

  $('#load-more').addEventListener('click', () => guarded(() => loadCallsPage(true)));

  async function loadCalls(params) {
    const query = new URLSearchParams();
    for (const name of CALL_FILTERS) {
      const value = params.get(name) || '';
      filtersForm.elements[name].value = value;
      if (value) query.set(name, value);
    }
    ui.calls.query = query.toString();
    gatewayState().catch(() => {});
    await loadCallsPage(false);
  }

  async function loadCallsPage(more) {
    const seq = ++ui.calls.seq;
    const table = $('#calls-table');
    table.setAttribute('aria-busy', 'true');
    const params = Object.fromEntries(new URLSearchParams(ui.calls.query));
    params.limit = PAGE_SIZE;
    if (more && ui.calls.next) params.after = ui.calls.next;
    const page = await api('api/v1/calls', params);
    if (seq !== ui.calls.seq) return; // a newer query replaced this one
    const body = table.tBodies[0];
    if (!more) {
      body.replaceChildren();
      ui.calls.count = 0;
      closeDetail();
    }
    for (const call of page.calls || []) body.append(callRow(call));
    ui.calls.count += (page.calls || []).length;
    ui.calls.next = page.next || null;
    $('#load-more').hidden = !ui.calls.next;
    $('#calls-empty').hidden = ui.calls.count > 0;
    $('#calls-count').textContent = `${formatCount(ui.calls.count)} call${ui.calls.count === 1 ? '' : 's'}${ui.calls.next ? ', more available' : ''}`;
    table.setAttribute('aria-busy', 'false');
    table.dataset.loadedQuery = ui.calls.query;
    table.dataset.rows = String(ui.calls.count);
  }

  function callRow(call) {
    const row = h('tr', { tabindex: 0, 'data-request-id': call.request_id, 'data-status': call.status },
      h('td', { class: 'time', title: new Date(call.start_ms).toISOString(), text: formatTime(call.start_ms) }),
      h('td', { class: 'method', text: call.method }),
      h('td', { class: 'path', title: call.path, text: call.path }),
      h('td', { class: 'route', text: call.route || '–' }),
      h('td', { class: 'num' }, statusBadge(call.status)),
      h('td', { class: 'reason', text: call.reason || '' }),
      h('td', { class: 'client', text: call.client_id || '' }),
      h('td', { class: 'num latency', text: formatMicros(call.total_us) }));
    const open = () => guarded(() => openDetail(call, row));
    row.addEventListener('click', open);
    row.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        open();
      }
    });
    return row;
  }

  // ------------------------------------------------------------ call detail

  function closeDetail() {
    $('#detail').hidden = true;
    if (ui.selectedRow) ui.selectedRow.classList.remove('selected');
    ui.selectedRow = null;
  }

  $('#detail-close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !$('#detail').hidden) closeDetail();
  });

  /** `[label, value]` pairs as a definition list; empty values left out. */
  function facts(pairs) {
    const list = h('dl', { class: 'facts' });
    for (const [label, value] of pairs) {
      if (value === null || value === undefined || value === '') continue;
      list.append(h('dt', { text: label }), h('dd', null, value instanceof Node ? value : String(value)));
    }
    return list;
  }

  async function openDetail(call, row) {
    if (ui.selectedRow) ui.selectedRow.classList.remove('selected');
    ui.selectedRow = row;
    row.classList.add('selected');
    $('#detail-title').replaceChildren(
      h('div', { class: 'detail-title' }, statusBadge(call.status), ' ', call.method, ' ', call.path),
      h('div', { class: 'detail-sub', text: `${formatTime(call.start_ms)} · request ${call.request_id}${call.reason ? ` · ${call.reason}` : ''}` }));
    const body = $('#detail-body');
    body.replaceChildren(
      h('h3', { text: 'Decision trace' }), traceTable(call.trace || []),
      h('h3', { text: 'Diagnosis' }), h('div', { id: 'diagnosis' }, h('p', { class: 'muted', text: 'Loading…' })),
      h('h3', { text: 'Principal' }), principal(call),
      h('h3', { text: 'Request and timings' }), timings(call),
      h('h3', { text: 'Findings recorded' }), findingsList(call.findings || [], 'The exchange inspector found nothing.', true),
      h('h3', { text: 'Request headers' }), headersTable(call.request_headers),
      h('h3', { text: 'Response headers' }), headersTable(call.response_headers));
    $('#detail').hidden = false;
    $('#detail').dataset.requestId = call.request_id;
    body.scrollTop = 0;
    await diagnosis(call);
  }

  function traceTable(trace) {
    if (trace.length === 0) return h('p', { class: 'muted', text: 'No trace steps were recorded.' });
    const longest = Math.max(1, ...trace.map((t) => t.micros || 0));
    const rows = trace.map((t, i) => {
      const bar = h('div', { class: 'timebar' });
      bar.style.width = `${Math.max(((t.micros || 0) / longest) * 100, 2)}%`;
      return h('tr', { 'data-step': t.step, 'data-outcome': t.outcome },
        h('td', { class: 'num muted', text: i + 1 }),
        h('td', { class: 'mono', text: t.step }),
        h('td', null, h('span', { class: `outcome ${t.outcome}`, text: t.outcome })),
        h('td', { class: 'mono', text: t.reason || '' }),
        h('td', { class: 'detail-cell', text: t.detail || '' }),
        h('td', { class: 'num', text: `${formatCount(t.micros || 0)} µs` }),
        h('td', { class: 'timebar-cell' }, bar));
    });
    return h('table', { class: 'trace' },
      h('thead', null, h('tr', null, ['#', 'Step', 'Outcome', 'Reason', 'Detail', 'Time', ''].map((c, i) =>
        h('th', { class: i === 0 || i === 5 ? 'num' : null, text: c })))),
      h('tbody', null, rows));
  }

  function principal(call) {
    if (!call.issuer && !call.client_id && !call.sub && !call.token_fingerprint) {
      return h('p', { class: 'muted', text: 'No token was accepted or presented on this call.' });
    }
    const scopes = (call.scopes || []).length
      ? h('div', { class: 'chips' }, call.scopes.map((sc) => h('span', { class: 'chip', text: sc })))
      : null;
    return facts([
      ['Issuer', call.issuer], ['Key id (kid)', call.kid], ['Client', call.client_id],
      ['Subject', call.sub], ['Scopes', scopes],
      ['Token fingerprint', call.token_fingerprint && h('span', { class: 'mono', text: call.token_fingerprint })],
    ]);
  }

  function timings(call) {
    return facts([
      ['Started', formatTime(call.start_ms)],
      ['Route', call.route],
      ['Upstream', call.upstream && (call.upstream_addr ? `${call.upstream} (${call.upstream_addr})` : call.upstream)],
      ['Client address', call.client_ip],
      ['Total', formatMicros(call.total_us)],
      ['Authentication', call.auth_us !== undefined ? formatMicros(call.auth_us) : null],
      ['Upstream first byte', call.upstream_first_byte_us !== undefined ? formatMicros(call.upstream_first_byte_us) : null],
      ['Upstream total', call.upstream_total_us !== undefined ? formatMicros(call.upstream_total_us) : null],
      ['Bytes in / out', `${formatBytes(call.bytes_in || 0)} / ${formatBytes(call.bytes_out || 0)}`],
      ['Trace id', call.trace_id],
    ]);
  }

  /**
   * Findings as a list: severity, rule and code, and the words the doctor
   * gives. With `linkRules`, each rule id links to the calls with that finding.
   */
  function findingsList(findings, none, linkRules = false) {
    if (findings.length === 0) return h('p', { class: 'muted', text: none });
    return h('div', { class: 'findings' }, findings.map((f) => {
      const lines = [
        ['Evidence', f.evidence, 'mono'], ['Likely cause', f.cause], ['Fix', f.fix], ['Specification', f.spec],
      ].filter(([, text]) => typeof text === 'string' && text !== '');
      return h('div', { class: 'finding', 'data-code': f.code || '' },
        h('div', { class: 'finding-head' },
          h('span', { class: `severity ${f.severity || ''}`, text: f.severity || 'info' }),
          linkRules && f.rule
            ? h('span', { class: 'mono' },
              h('a', { href: `#/calls?${new URLSearchParams({ finding: f.rule })}`, 'data-finding': f.rule, title: `Calls with ${f.rule}`, text: f.rule }),
              f.code ? ` ${f.code}` : '')
            : h('span', { class: 'mono', text: [f.rule, f.code].filter(Boolean).join(' ') }),
          f.title ? h('span', { class: 'finding-title', text: f.title }) : null),
        lines.length ? facts(lines.map(([label, text, cls]) => [label, cls ? h('span', { class: cls, text }) : text])) : null);
    }));
  }

  function headersTable(headers) {
    if (!Array.isArray(headers) || headers.length === 0) return h('p', { class: 'muted', text: 'None recorded.' });
    return h('table', { class: 'headers' }, h('tbody', null, headers.map((pair) =>
      h('tr', null, h('td', { text: String(pair[0]) }), h('td', { text: String(pair[1]) })))));
  }

  /**
   * The doctor's diagnosis of the call (`GET api/v1/calls/{id}/diagnosis`),
   * asked for only when this admin API's OpenAPI document lists it.
   */
  async function diagnosis(call) {
    const box = $('#diagnosis');
    const current = () => $('#detail').dataset.requestId === call.request_id;
    const caps = await capabilities();
    if (!current()) return;
    if (!caps.diagnosis) {
      box.replaceChildren(h('div', { class: 'placeholder', 'data-diagnosis': 'unavailable' },
        'The doctor\'s diagnosis of this call will appear here. This admin API does not offer ',
        h('code', { text: `GET ${DIAGNOSIS_PATH}` }), ' yet.'));
      return;
    }
    let result;
    try {
      result = await api(`api/v1/calls/${encodeURIComponent(call.request_id)}/diagnosis`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
      if (current()) box.replaceChildren(h('p', { class: 'error-text', 'data-diagnosis': 'failed', text: `The diagnosis failed: ${e.message}` }));
      return;
    }
    if (!current()) return;
    const findings = Array.isArray(result && result.findings) ? result.findings : [];
    box.replaceChildren(h('div', { 'data-diagnosis': 'available' },
      findingsList(findings, 'The doctor found nothing to say about this call.')));
  }

  // ------------------------------------------------------------ issuers

  function stat(label, value, bad = false) {
    return h('div', { class: bad ? 'stat bad' : 'stat' }, h('div', { class: 'label', text: label }), h('div', { class: 'value', text: value }));
  }

  async function loadIssuers() {
    const state = await gatewayState(true);
    const out = $('#issuers-body');
    const gw = state && state.gateway;
    const cards = [];
    if (!gw) {
      cards.push(h('div', { class: 'card state-card wide' },
        h('p', { class: 'muted', text: 'No gateway is attached to this admin listener: there are no issuers or upstreams to show.' })));
    } else {
      cards.push(configCard(gw));
      for (const issuer of gw.issuers || []) cards.push(issuerCard(issuer));
      cards.push(upstreamsCard(gw.upstreams || []));
      cards.push(rateLimitsCard(gw.rate_limits || []));
      cards.push(cachesCard(gw.caches || []));
    }
    if (state && state.call_log) cards.push(callLogCard(state.call_log));
    out.replaceChildren(h('div', { class: 'state-grid' }, cards));
    out.dataset.loaded = 'true';
  }

  function configCard(gw) {
    const reload = gw.last_reload;
    const c = gw.counters || {};
    return h('div', { class: 'card state-card wide', id: 'config-card' },
      h('h2', { text: 'Configuration' }),
      facts([
        ['Version', String(gw.config_version)],
        ['Last reload', reload ? `${formatTime(reload.at * 1000)} (${reload.trigger})` : 'none since start'],
        ['Reload result', reload ? (reload.error ? h('span', { class: 'error-text', text: `refused: ${reload.error}` }) : 'applied') : null],
        ['Routes', (gw.routes || []).length ? h('div', { class: 'chips' }, gw.routes.map((r) => h('span', { class: 'chip', text: r }))) : 'none'],
      ]),
      h('div', { class: 'stat-row' },
        stat('Requests', formatCount(c.requests)), stat('Refused', formatCount(c.refused)),
        stat('Signature checks', formatCount(c.signature_checks)), stat('Token cache hits', formatCount(c.token_cache_hits)),
        stat('Rate limited', formatCount(c.rate_limited))));
  }

  function issuerCard(issuer) {
    const kids = (issuer.kids || []).length
      ? h('div', { class: 'chips' }, issuer.kids.map((k) => h('span', { class: 'chip', text: k })))
      : h('span', { class: 'error-text', text: 'no keys loaded' });
    return h('div', { class: 'card state-card issuer', 'data-issuer': issuer.name },
      h('div', { class: 'issuer-head' }, h('h2', { text: issuer.name }), h('span', { class: 'mono', text: issuer.issuer })),
      facts([
        ['Keys (kid)', kids],
        ['Key set age', formatSeconds(issuer.keys_age_secs)],
        ['Last error', issuer.last_error ? h('span', { class: 'error-text last-error', text: issuer.last_error }) : 'none'],
        ['Clock skew', issuer.clock_ahead_max_secs ? `up to ${formatSeconds(issuer.clock_ahead_max_secs)} ahead` : 'none seen'],
      ]),
      h('div', { class: 'stat-row' },
        stat('JWKS fetches', formatCount(issuer.fetches)),
        stat('Failed fetches', formatCount(issuer.fetch_errors), issuer.fetch_errors > 0),
        stat('Refetches on unknown kid', formatCount(issuer.kid_refetches)),
        stat('Tokens with unknown kid', formatCount(issuer.kid_unknown), issuer.kid_unknown > 0)));
  }

  function upstreamsCard(upstreams) {
    const rows = [];
    for (const u of upstreams) {
      for (const t of u.targets || []) {
        rows.push(h('tr', { 'data-target': t.base },
          h('td', { text: u.name }), h('td', { class: 'mono', text: t.base }),
          h('td', null, h('span', { class: t.healthy ? 'health good' : 'health bad', text: t.healthy ? 'healthy' : 'unhealthy' })),
          h('td', { class: 'num', text: formatCount(t.in_flight) })));
      }
    }
    return h('div', { class: 'card state-card wide' }, h('h2', { text: 'Upstream targets' }),
      rows.length
        ? h('table', null, h('thead', null, h('tr', null, h('th', { text: 'Pool' }), h('th', { text: 'Target' }),
          h('th', { text: 'Health' }), h('th', { class: 'num', text: 'In flight' }))), h('tbody', null, rows))
        : h('p', { class: 'muted', text: 'No upstreams configured.' }));
  }

  /** A table: `columns` as `[heading, numeric]`, rows of cells (text or nodes). */
  function table(columns, rows) {
    return h('table', null,
      h('thead', null, h('tr', null, columns.map(([label, num]) => h('th', { class: num ? 'num' : null, text: label })))),
      h('tbody', null, rows));
  }

  function formatPeriod(ms) {
    if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'hour' : `${ms / 3_600_000} h`;
    if (ms % 60_000 === 0) return ms === 60_000 ? 'minute' : `${ms / 60_000} min`;
    if (ms % 1000 === 0) return ms === 1000 ? 'second' : `${ms / 1000} s`;
    return `${ms} ms`;
  }

  function rateLimitsCard(limits) {
    const rows = limits.map((l) => h('tr', { 'data-rate-limit': l.route },
      h('td', { text: l.route }),
      h('td', { class: 'policy', text: `${formatCount(l.requests)} per ${formatPeriod(l.per_ms)}, burst ${formatCount(l.burst)}, per ${l.key}` }),
      h('td', { class: 'num allowed', text: formatCount(l.allowed) }),
      h('td', { class: l.limited > 0 ? 'num limited error-text' : 'num limited', text: formatCount(l.limited) }),
      h('td', { class: 'num keys', text: formatCount(l.keys) })));
    return h('div', { class: 'card state-card wide', id: 'rate-limits-card' }, h('h2', { text: 'Rate limits' }),
      rows.length
        ? table([['Route'], ['Policy'], ['Allowed', true], ['Limited (429)', true], ['Keys tracked', true]], rows)
        : h('p', { class: 'muted', text: 'No route has a rate limit.' }),
      h('p', { class: 'muted small', text: 'Counted since the route\'s limiter was built: at start or the last reload.' }));
  }

  function cachesCard(caches) {
    const rows = caches.map((c) => {
      const lookups = (c.hits || 0) + (c.misses || 0);
      const name = c.cache === 'verified_tokens' ? 'Verified tokens (JWT signatures)' : `Introspection: ${c.name}`;
      return h('tr', { 'data-cache': c.cache === 'verified_tokens' ? c.cache : `${c.cache}:${c.name}` },
        h('td', { text: name }),
        h('td', { class: 'num entries', text: `${formatCount(c.entries)} / ${formatCount(c.capacity)}` }),
        h('td', { class: 'num hits', text: formatCount(c.hits) }),
        h('td', { class: 'num misses', text: formatCount(c.misses) }),
        h('td', { class: 'num hit-rate', text: lookups ? formatPercent(c.hits / lookups) : '–' }));
    });
    return h('div', { class: 'card state-card wide', id: 'caches-card' }, h('h2', { text: 'Caches' }),
      table([['Cache'], ['Entries / capacity', true], ['Hits', true], ['Misses', true], ['Hit rate', true]], rows));
  }

  function callLogCard(c) {
    return h('div', { class: 'card state-card wide' }, h('h2', { text: 'Call log writer' }),
      h('div', { class: 'stat-row' },
        stat('Queued', formatCount(c.queued)), stat('Written', formatCount(c.written)),
        stat('Spooled', formatCount(c.spooled)), stat('Replayed', formatCount(c.replayed)),
        stat('Dropped', formatCount(c.dropped), c.dropped > 0),
        stat('Store errors', formatCount(c.store_errors), c.store_errors > 0),
        stat('Spool size', formatBytes(c.spool_bytes || 0)), stat('Backlog', formatCount(c.backlog))));
  }

  route();
})();
