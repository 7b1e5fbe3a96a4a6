// device.js - one device (#/devices/<id>): live values and charts (the
// event stream's telemetry appended to the chosen window), history with a
// range and an aggregation, the twin (desired and reported side by side,
// its version) with an editor for desired, and the device's alerts.
import { api, ApiError, NetError, enc } from './api.js';
import { h, clear, fill, ago, fmtTime, fmtNum, unitOf, label, errText } from './dom.js';
import { health, activeByDevice, HEALTH_WORD } from './health.js';
import { onEvent } from './live.js';
import { onRecovered } from './conn.js';
import { makeChart, PALETTE } from './chart.js';
import { alertHead, alertRow } from './alerts.js';

const RANGES = { '15m': 15 * 60e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };
// Buckets for aggregated history: about 150-180 per window.
const INTERVALS = { '15m': '5s', '1h': '20s', '6h': '2m', '24h': '10m', '7d': '1h' };
const RAW_LIMIT = 10000;
const CLEARED_SHOWN = 5;

export function devicePage(root, { id }) {
  const url = `/api/v1/devices/${enc(id)}`;
  let dev = null;
  let twin = null;
  let range = '15m';
  let agg = 'raw';
  let histSeq = 0;
  let aggTimer = null;
  let flushTimer = null;
  let twinTimer = null;
  let alertTimer = null;
  let editorDirty = false;
  // What the editor's text was based on: saved with this version, so a
  // desired state changed by someone else since is not overwritten (409).
  let base = null;
  const metrics = new Map(); // metric -> {card, valueEl, tsEl, chart, xs, ys, note, ts}

  // ---- skeleton ----
  const title = h('h1', { testid: 'device-title' }, id);
  const meta = h('div', { class: 'meta' });
  const pageError = h('div', { class: 'error', hidden: true });
  const rangeSel = h('select', { testid: 'range', 'aria-label': 'Range',
    on: { change: (e) => { range = e.target.value; autoAgg(); loadHistory(); } } },
  Object.keys(RANGES).map((r) => h('option', { value: r, selected: r === range }, `Last ${r}`)));
  const aggSel = h('select', { testid: 'agg', 'aria-label': 'Aggregation',
    on: { change: (e) => { agg = e.target.value; loadHistory(); } } },
  ['raw', 'avg', 'min', 'max'].map((a) => h('option', { value: a }, a === 'raw' ? 'raw points' : a)));
  const grid = h('div', { class: 'metrics' });
  const noMetrics = h('p', { class: 'muted empty', hidden: true }, 'No telemetry from this device yet.');

  const twinVersion = h('span', { class: 'pill', testid: 'twin-version' }, '–');
  const desiredPre = h('pre', { class: 'json', testid: 'twin-desired' });
  const reportedPre = h('pre', { class: 'json', testid: 'twin-reported' });
  const deltaNote = h('p', { class: 'muted small' });
  const editor = h('textarea', { testid: 'desired-editor', spellcheck: 'false', rows: 8, 'aria-label': 'Desired state (JSON)',
    on: { input: () => { editorDirty = true; } } });
  const saveBtn = h('button', { type: 'button', class: 'btn primary', testid: 'desired-save', on: { click: save } },
    'Save desired');
  const reloadBtn = h('button', { type: 'button', class: 'btn', on: { click: () => { editorDirty = false; loadTwin(true); } } },
    'Discard edits');
  const saveMsg = h('span', { class: 'msg', testid: 'desired-message', role: 'status', hidden: true });
  const twinError = h('div', { class: 'error', hidden: true });
  const quick = h('div', { class: 'quick toolbar', hidden: true });

  const alertsBody = h('tbody');
  const alertsMsg = h('div', { class: 'error', hidden: true });
  const alertsNote = h('p', { class: 'muted empty', hidden: true }, 'No alerts for this device.');
  const alertsMore = h('div', { class: 'more' });
  let showAllAlerts = false;

  clear(root).append(
    h('div', { class: 'crumbs' }, h('a', { href: '#/devices' }, '← Fleet')),
    h('div', { class: 'page-head' }, h('div', {}, title, meta)),
    pageError,
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Telemetry'),
        h('div', { class: 'toolbar tight' }, h('label', {}, 'Range ', rangeSel), h('label', {}, 'Aggregation ', aggSel))),
      grid, noMetrics),
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Twin'), twinVersion),
      twinError,
      h('div', { class: 'twin' },
        h('div', {}, h('h3', {}, 'Desired'), desiredPre),
        h('div', {}, h('h3', {}, 'Reported'), reportedPre)),
      deltaNote,
      quick,
      h('h3', {}, 'Edit desired'),
      h('p', { class: 'muted small' }, 'A JSON object merged into desired; a key set to null is removed. ',
        'Saved with the version shown, so a change made meanwhile by someone else is not overwritten.'),
      editor,
      h('div', { class: 'actions-row' }, saveBtn, reloadBtn, saveMsg)),
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Alerts')),
      alertsMsg,
      h('div', { class: 'flush' },
        h('table', { class: 'grid', testid: 'device-alerts' }, alertHead(false), alertsBody), alertsNote, alertsMore)));

  const showPageError = (t) => { pageError.textContent = t; pageError.hidden = !t; };

  // ---- device header ----
  function renderMeta(activeAlerts) {
    if (!dev) return;
    title.textContent = dev.name && dev.name !== dev.id ? `${dev.name}` : dev.id;
    document.title = `${title.textContent} · mote`;
    const hl = health(dev, activeAlerts);
    fill(meta,
      h('span', { class: `status ${dev.online ? 'on' : 'off'}` }, dev.online ? 'Online' : 'Offline'),
      h('span', { class: `health ${hl.level}`, title: hl.why }, HEALTH_WORD[hl.level]),
      h('span', { class: 'muted' }, dev.id), dev.model ? h('span', { class: 'muted' }, `model ${dev.model}`) : null,
      Object.entries(dev.tags || {}).map(([k, v]) => h('span', { class: 'tag' }, v === '' ? k : `${k}:${v}`)),
      h('span', { class: 'muted', title: fmtTime(dev.last_seen) }, `last seen ${ago(dev.last_seen)}`),
      dev.last_error ? h('div', { class: 'warn-line' },
        `Last payload error: ${dev.last_error} (${dev.invalid_payloads} invalid payload(s))`) : null);
  }

  let lastActive = null;
  async function loadDevice() {
    try {
      dev = await api('GET', url);
      showPageError('');
      renderMeta(lastActive);
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        // Nothing else to show: no sections with dashes in them.
        document.title = `${id} · mote`;
        fill(root, h('div', { class: 'crumbs' }, h('a', { href: '#/devices' }, '← Fleet')),
          h('h1', { testid: 'device-title' }, id),
          h('div', { class: 'error' }, `There is no device '${id}'. It may have been deleted, or the link is wrong.`));
        return false;
      }
      showPageError(`Could not load the device: ${errText(e)}`);
      return false;
    }
  }

  // ---- telemetry ----
  const windowNow = () => ({ from: Date.now() - RANGES[range], to: Date.now() });

  function metricCard(metric) {
    let m = metrics.get(metric);
    if (m) return m;
    const unit = unitOf(metric);
    const valueEl = h('span', { class: 'value', testid: 'live-value', data: { metric } }, '–');
    const tsEl = h('span', { class: 'muted small' });
    const chartEl = h('div', { class: 'chart', testid: 'chart', data: { metric } });
    const note = h('div', { class: 'muted small chart-note' });
    const card = h('div', { class: 'metric' },
      h('div', { class: 'metric-head' }, h('span', { class: 'metric-name' }, label(metric)),
        h('span', {}, valueEl, unit ? h('span', { class: 'unit' }, ` ${unit}`) : null)),
      tsEl, chartEl, note);
    // Cards in name order, whatever order they arrive in.
    const after = [...metrics.keys()].sort().find((k) => k > metric);
    if (after) grid.insertBefore(card, metrics.get(after).card); else grid.append(card);
    noMetrics.hidden = true;
    m = { card, valueEl, tsEl, chartEl, note, chart: null, xs: [], ys: [], ts: null };
    metrics.set(metric, m);
    m.chart = makeChart(chartEl, { metric, unit, color: PALETTE[metrics.size % PALETTE.length], span: windowNow });
    return m;
  }

  function setLive(metric, ts, value) {
    const m = metricCard(metric);
    if (m.ts != null && ts < m.ts) return;
    m.ts = ts;
    m.valueEl.textContent = fmtNum(value);
    m.tsEl.textContent = `at ${fmtTime(ts)}`;
  }

  async function loadLatest() {
    try {
      const r = await api('GET', `${url}/telemetry/latest`);
      for (const p of r.latest) setLive(p.metric, p.ts, p.value);
      noMetrics.hidden = metrics.size > 0;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) showPageError(`Could not load the latest values: ${errText(e)}`);
    }
  }

  async function loadHistory() {
    const seq = ++histSeq;
    clearTimeout(aggTimer);
    const w = windowNow();
    const q = agg === 'raw' ? `limit=${RAW_LIMIT}` : `agg=${agg}&interval=${INTERVALS[range]}`;
    await Promise.all([...metrics.keys()].map(async (metric) => {
      const m = metrics.get(metric);
      const ask = (from) => api('GET',
        `${url}/telemetry?metric=${enc(metric)}&from=${Math.floor(from)}&to=${Math.ceil(w.to) + 1}&${q}`);
      try {
        let r = await ask(w.from);
        let note = '';
        if (r.truncated && r.points.length > 1) {
          // The store answers the oldest points first; the newest matter
          // more (live points are appended to them): ask again for about
          // as long a stretch, ending now.
          const covered = r.points[r.points.length - 1][0] - r.points[0][0];
          r = await ask(w.to - covered);
          note = `Raw points of the last ${Math.max(1, Math.round(covered / 60000))} min only (at most ${RAW_LIMIT.toLocaleString()}): choose an aggregation to see the whole window.`;
        }
        if (seq !== histSeq) return;
        m.xs = r.points.map((p) => p[0] / 1000);
        m.ys = r.points.map((p) => p[1]);
        m.note.textContent = note;
        m.chart.set(m.xs, m.ys);
      } catch (e) {
        if (seq === histSeq) m.note.textContent = `History unavailable: ${errText(e)}`;
      }
    }));
    // Aggregated windows are not fed point by point: ask again now and then.
    if (seq === histSeq && agg !== 'raw') aggTimer = setTimeout(loadHistory, 15000);
  }

  function autoAgg() {
    // More than about 10,000 points at 1 Hz: raw would be cut.
    const want = RANGES[range] > 3600e3 ? 'avg' : 'raw';
    if ((want === 'avg' && agg === 'raw') || (want === 'raw' && agg !== 'raw')) {
      agg = want;
      aggSel.value = want;
    }
  }

  function onTelemetry(ev) {
    for (const p of ev.points || []) {
      if (typeof p.value !== 'number') continue;
      setLive(p.metric, p.ts, p.value);
      const m = metrics.get(p.metric);
      if (agg !== 'raw') continue;
      const x = p.ts / 1000;
      // In order (the usual case) appended; late points are inserted.
      if (!m.xs.length || x > m.xs[m.xs.length - 1]) { m.xs.push(x); m.ys.push(p.value); }
      else {
        let i = m.xs.length;
        while (i > 0 && m.xs[i - 1] > x) i--;
        if (m.xs[i - 1] === x) m.ys[i - 1] = p.value; else { m.xs.splice(i, 0, x); m.ys.splice(i, 0, p.value); }
      }
    }
    noMetrics.hidden = metrics.size > 0;
  }

  // Charts redraw once a second, not per point; old points leave the window.
  function flush() {
    const from = windowNow().from / 1000;
    for (const m of metrics.values()) {
      let cut = 0;
      while (cut < m.xs.length && m.xs[cut] < from) cut++;
      if (cut) { m.xs.splice(0, cut); m.ys.splice(0, cut); }
      // Redrawn even without new points: the window slides with the clock.
      m.chart.set(m.xs, m.ys);
    }
  }

  // ---- twin ----
  const pretty = (o) => JSON.stringify(o ?? {}, null, 2);

  function renderTwin(fromSave) {
    const st = twin.state || {};
    twinVersion.textContent = `version ${twin.version}`;
    twinVersion.dataset.version = String(twin.version);
    desiredPre.textContent = pretty(st.desired);
    reportedPre.textContent = pretty(st.reported);
    const delta = Object.keys(st.delta || {});
    deltaNote.textContent = delta.length
      ? `Waiting for the device to apply: ${delta.join(', ')}` : 'The device reports every desired value.';
    deltaNote.className = delta.length ? 'pending small' : 'muted small';
    if (!editorDirty || fromSave) {
      editor.value = pretty(st.desired);
      editorDirty = false;
      base = { version: twin.version, desired: JSON.stringify(st.desired ?? {}) };
    }
    renderQuick(st.reported || {});
  }

  // Quick commands for the keys a device reports in the usual shape (the
  // simulator's on and setpoint, docs/sim.md): one desired key each, sent
  // without a version (setting one key overwrites nobody's other keys).
  function renderQuick(rep) {
    const typing = document.activeElement;
    if (typing && typing.tagName === 'INPUT' && quick.contains(typing)) return; // not under the user's typing
    const kids = [];
    if (typeof rep.on === 'boolean') {
      kids.push(h('button', { type: 'button', class: 'btn', testid: 'quick-on',
        on: { click: () => quickSet({ on: !rep.on }) } }, rep.on ? 'Turn off' : 'Turn on'));
    }
    if (typeof rep.setpoint === 'number') {
      const inp = h('input', { type: 'number', step: 'any', class: 'narrow', value: String(rep.setpoint),
        testid: 'quick-setpoint', 'aria-label': 'Setpoint' });
      const set = () => {
        const v = Number(inp.value);
        if (inp.value.trim() === '' || !Number.isFinite(v)) {
          say('error', 'The setpoint must be a number; nothing was sent.');
          return;
        }
        quickSet({ setpoint: v });
      };
      inp.addEventListener('keydown', (e) => { if (e.key === 'Enter') set(); });
      kids.push(h('label', {}, 'Setpoint ', inp),
        h('button', { type: 'button', class: 'btn', testid: 'quick-setpoint-save', on: { click: set } }, 'Set'));
    }
    fill(quick, kids.length ? [h('span', { class: 'muted small' }, 'Quick commands'), kids] : null);
    quick.hidden = kids.length === 0;
  }

  async function quickSet(desired) {
    try {
      twin = await api('PATCH', `${url}/twin`, { desired });
      renderTwin(false);
      say('ok', `Sent ${JSON.stringify(desired)}: version ${twin.version}. The device applies it when it is online.`);
    } catch (e) {
      say('error', `Not sent: ${e instanceof NetError ? 'the hub is unreachable' : errText(e)}`);
    }
  }

  async function loadTwin(force) {
    try {
      twin = await api('GET', `${url}/twin`);
      twinError.hidden = true;
      renderTwin(force);
    } catch (e) {
      twinError.textContent = `Could not load the twin: ${errText(e)}`;
      twinError.hidden = false;
    }
  }

  function say(kind, text) {
    saveMsg.dataset.kind = kind;
    saveMsg.textContent = text;
    saveMsg.hidden = false;
  }

  async function save() {
    let desired;
    try {
      desired = JSON.parse(editor.value);
    } catch (e) {
      say('error', `Invalid JSON, nothing was sent: ${e.message}`);
      return;
    }
    if (desired === null || typeof desired !== 'object' || Array.isArray(desired)) {
      say('error', 'Invalid desired state, nothing was sent: it must be a JSON object ({"key": value}).');
      return;
    }
    if (!twin || !base) {
      say('error', 'The twin is not loaded yet; nothing was sent.');
      return;
    }
    saveBtn.disabled = true;
    const version = base.version;
    try {
      try {
        twin = await api('PATCH', `${url}/twin`, { desired, version });
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 409)) throw e;
        // The version counts every write, the device's reports too. When
        // desired itself is as the editor saw it, only reported moved on:
        // nothing of anyone's is overwritten, so save on the new version.
        await loadTwin(false);
        if (!twin || JSON.stringify(twin.state.desired ?? {}) !== base.desired) throw e;
        twin = await api('PATCH', `${url}/twin`, { desired, version: twin.version });
      }
      renderTwin(true);
      say('ok', `Saved: version ${twin.version}. The device applies it when it is online.`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        // The editor keeps the user's text; its base becomes what is now
        // shown above, so a second save, after a look, goes through.
        base = { version: twin.version, desired: JSON.stringify(twin.state.desired ?? {}) };
        say('error', `Desired state changed since you loaded it (version ${version}, now ${twin.version}): `
          + 'it was reloaded above. Check your edit against it and save again.');
      } else if (e instanceof ApiError && e.status === 413) {
        say('error', `The desired state is too large: ${e.message}`);
      } else if (e instanceof ApiError && e.status === 401) {
        say('error', 'Your token was rejected; log in again.');
      } else if (e instanceof ApiError && e.status === 403) {
        say('error', `Not allowed: ${e.message}`);
      } else if (e instanceof NetError) {
        say('error', 'Not saved: the hub is unreachable.');
      } else {
        say('error', `Not saved: ${errText(e)}`);
      }
    } finally {
      saveBtn.disabled = false;
    }
  }

  // ---- alerts ----
  async function loadAlerts() {
    try {
      const r = await api('GET', `/api/v1/alerts?device=${enc(id)}&limit=100`);
      alertsMsg.hidden = true;
      clear(alertsBody);
      // Active ones first, then the latest cleared: a long history stays
      // on the alerts page unless asked for here.
      const active = r.alerts.filter((a) => a.state === 'active');
      const cleared = r.alerts.filter((a) => a.state !== 'active');
      const shown = [...active, ...(showAllAlerts ? cleared : cleared.slice(0, CLEARED_SHOWN))];
      for (const a of shown) {
        alertsBody.append(alertRow(a, { withDevice: false, onDone: () => loadAlerts(),
          onError: (t) => { alertsMsg.textContent = t; alertsMsg.hidden = false; } }));
      }
      const hiddenN = r.alerts.length - shown.length;
      fill(alertsMore, hiddenN > 0 ? h('button', { type: 'button', class: 'link',
        on: { click: () => { showAllAlerts = true; loadAlerts(); } } }, `Show ${hiddenN} older cleared alert(s)`) : null);
      alertsNote.hidden = r.alerts.length > 0;
      lastActive = activeByDevice(r.alerts).get(id) || null;
      renderMeta(lastActive);
    } catch (e) {
      alertsMsg.textContent = `Could not load the alerts: ${errText(e)}`;
      alertsMsg.hidden = false;
    }
  }

  // ---- life ----
  async function loadAll() {
    if (!(await loadDevice()) && !dev) return;
    await loadLatest();
    await Promise.all([loadHistory(), loadTwin(false), loadAlerts()]);
  }

  const offEvent = onEvent((type, ev) => {
    // Alert events carry the device inside: {"event":..,"alert":{"device":..}}.
    if ((ev.device ?? (ev.alert && ev.alert.device)) !== id) return;
    if (type === 'telemetry') {
      onTelemetry(ev);
      if (dev) { dev.last_seen = Date.now(); dev.online = true; }
    } else if (type === 'twin') {
      clearTimeout(twinTimer);
      twinTimer = setTimeout(() => loadTwin(false), 200);
    } else if (type === 'alert') {
      clearTimeout(alertTimer);
      alertTimer = setTimeout(loadAlerts, 200);
    } else if (type === 'connection') {
      if (dev) { dev.online = !!ev.online; dev.last_seen = Date.now(); renderMeta(lastActive); }
    } else if (type === 'device') {
      loadDevice();
    }
  });
  const offRecovered = onRecovered(loadAll);
  flushTimer = setInterval(() => { flush(); renderMeta(lastActive); }, 1000);
  loadAll();

  return () => {
    offEvent();
    offRecovered();
    clearInterval(flushTimer);
    clearTimeout(aggTimer);
    clearTimeout(twinTimer);
    clearTimeout(alertTimer);
    histSeq++;
    for (const m of metrics.values()) m.chart.destroy();
  };
}
