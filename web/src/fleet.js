// fleet.js - the fleet overview (#/devices): every device with status, last
// seen, health and active alerts; search and filters (model, tag, status)
// applied in the page; kept current by the event stream (connection,
// telemetry, alert and device events) and reloaded when the hub comes back.
import { api } from './api.js';
import { h, clear, fill, ago, fmtTime, errText } from './dom.js';
import { health, activeByDevice, HEALTH_WORD } from './health.js';
import { onEvent } from './live.js';
import { onRecovered } from './conn.js';
import { healthBadge, fleetHealthIndex, refreshFleetHealth } from './insight.js';

const PAGE = 1000;
const MAX_DEVICES = 20000;
const MAX_ROWS = 500;

async function allDevices() {
  const out = [];
  for (let offset = 0; offset < MAX_DEVICES; offset += PAGE) {
    const r = await api('GET', `/api/v1/devices?limit=${PAGE}&offset=${offset}`);
    out.push(...r.devices);
    if (r.devices.length < PAGE || out.length >= r.total) break;
  }
  return out;
}

const statusCell = (d) => h('span', { class: `status ${d.online ? 'on' : 'off'}` },
  d.online ? 'Online' : 'Offline');

const tagText = (tags) => Object.entries(tags || {}).map(([k, v]) => (v === '' ? k : `${k}:${v}`));

export function fleetPage(root, { go }) {
  let devices = [];
  let byId = new Map();
  let alerts = new Map();
  let loaded = false;
  let dirty = false;
  let renderTimer = null;
  let reloadTimer = null;
  const filt = { q: '', model: '', tag: '', status: '' };

  const search = h('input', { type: 'search', testid: 'fleet-search', placeholder: 'Search id or name',
    'aria-label': 'Search devices', on: { input: (e) => { filt.q = e.target.value.trim().toLowerCase(); render(); } } });
  const selModel = h('select', { testid: 'filter-model', 'aria-label': 'Model',
    on: { change: (e) => { filt.model = e.target.value; render(); } } });
  const selTag = h('select', { testid: 'filter-tag', 'aria-label': 'Tag',
    on: { change: (e) => { filt.tag = e.target.value; render(); } } });
  const selStatus = h('select', { testid: 'filter-status', 'aria-label': 'Status',
    on: { change: (e) => { filt.status = e.target.value; render(); } } },
  h('option', { value: '' }, 'Any status'), h('option', { value: 'online' }, 'Online'),
  h('option', { value: 'offline' }, 'Offline'));
  const summary = h('div', { class: 'cards' });
  const tbody = h('tbody');
  // One <tr> per device, kept across renders (id -> row): a render changes
  // only the cells whose content changed, so a click whose press and
  // release straddle a render still lands on the same row and cell.
  const rows = new Map();
  const note = h('p', { class: 'muted empty' }, 'Loading…');
  const error = h('div', { class: 'error', hidden: true });
  // Sortable columns: click a heading, click again to reverse.
  const sort = { col: 'device', dir: 1 };
  const HEALTH_ORDER = { critical: 0, degraded: 1, unknown: 2, ok: 3 };
  const keys = {
    status: (d) => (d.online ? 0 : 1),
    device: (d) => d.id,
    model: (d) => d.model || '',
    last_seen: (d) => -(d.last_seen || 0),
    health: (d) => HEALTH_ORDER[health(d, alerts.get(d.id)).level],
    alerts: (d) => -((alerts.get(d.id) || {}).count || 0),
  };
  const th = (col, text, cls) => h('th', { class: `${cls || ''} ${col ? 'sortable' : ''}`, data: col ? { sort: col } : {},
    'aria-sort': 'none',
    on: col ? { click: () => { sort.dir = sort.col === col ? -sort.dir : 1; sort.col = col; render(); } } : {} }, text);
  const head = h('tr', {}, th('status', 'Status'), th('device', 'Device'), th('model', 'Model'), th(null, 'Tags'),
    th('last_seen', 'Last seen'), th('health', 'Health'), th('alerts', 'Active alerts', 'num'));
  const table = h('table', { class: 'grid clickable', testid: 'fleet-table' }, h('thead', {}, head), tbody);

  clear(root).append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Fleet')),
    summary,
    h('div', { class: 'toolbar' }, search, selModel, selTag, selStatus),
    error,
    h('div', { class: 'panel' }, table, note));

  // Refilled only when the choices change: rebuilding an open <select>
  // would close it under the user's pointer.
  function fillSelect(sel, first, values, current) {
    const key = values.join('\n');
    if (sel.dataset.options === key) return;
    sel.dataset.options = key;
    clear(sel).append(h('option', { value: '' }, first));
    for (const v of values) sel.append(h('option', { value: v, selected: v === current }, v));
    if (current && !values.includes(current)) sel.append(h('option', { value: current, selected: true }, current));
  }

  function matches(d) {
    if (filt.q && !d.id.toLowerCase().includes(filt.q) && !(d.name || '').toLowerCase().includes(filt.q)) return false;
    if (filt.model && d.model !== filt.model) return false;
    if (filt.status && (filt.status === 'online') !== !!d.online) return false;
    if (filt.tag) {
      const c = filt.tag.indexOf(':');
      const k = c < 0 ? filt.tag : filt.tag.slice(0, c);
      if (!d.tags || !(k in d.tags)) return false;
      if (c >= 0 && d.tags[k] !== filt.tag.slice(c + 1)) return false;
    }
    return true;
  }

  function render() {
    dirty = false;
    if (!loaded) return;
    const now = Date.now();
    const online = devices.filter((d) => d.online).length;
    let nAlerts = 0;
    let nCritical = 0;
    for (const a of alerts.values()) { nAlerts += a.count; if (a.worst === 'critical') nCritical++; }
    const degraded = devices.filter((d) => health(d, alerts.get(d.id)).level !== 'ok' && d.online).length;
    fill(summary,
      card('Devices', devices.length), card('Online', `${online}`, `of ${devices.length}`),
      card('Active alerts', nAlerts, nCritical ? `${nCritical} device(s) critical` : '', nCritical ? 'bad' : ''),
      card('Need attention', degraded, 'online but not ok', degraded ? 'warn' : ''));

    const models = [...new Set(devices.map((d) => d.model).filter(Boolean))].sort();
    fillSelect(selModel, 'Any model', models, filt.model);
    const tags = [...new Set(devices.flatMap((d) => tagText(d.tags)))].sort();
    fillSelect(selTag, 'Any tag', tags, filt.tag);

    const key = keys[sort.col];
    const cmp = (x, y) => {
      const a = key(x), b = key(y);
      const c = typeof a === 'string' ? a.localeCompare(b, undefined, { numeric: true }) : a - b;
      return c * sort.dir || x.id.localeCompare(y.id, undefined, { numeric: true });
    };
    const matching = devices.filter(matches).sort(cmp);
    // A table of thousands of rows redrawn every second would make the page
    // crawl; past MAX_ROWS the search and filters narrow it down.
    const shown = matching.slice(0, MAX_ROWS);
    for (const el of head.children) {
      const on = el.dataset.sort === sort.col;
      el.setAttribute('aria-sort', on ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none');
    }
    const wanted = shown.map((d) => rowFor(d, now));
    const same = wanted.length === tbody.children.length && wanted.every((tr, i) => tbody.children[i] === tr);
    if (!same) tbody.replaceChildren(...wanted);
    const keep = new Set(shown.map((d) => d.id));
    for (const id of rows.keys()) if (!keep.has(id)) rows.delete(id);
    note.textContent = devices.length === 0
      ? 'No devices yet. Devices appear here when they connect or are registered (POST /api/v1/devices).'
      : matching.length === 0 ? 'No device matches the search and filters.'
        : matching.length > shown.length
          ? `Showing ${shown.length} of ${matching.length} devices: search or filter to find the others.` : '';
    note.hidden = !note.textContent;
  }

  // The device's row, its cells brought up to date. A cell is refilled only
  // when what it shows changed (sig: the values it is drawn from).
  function rowFor(d, now) {
    let tr = rows.get(d.id);
    if (!tr) {
      const open = () => go(`#/devices/${encodeURIComponent(d.id)}`);
      tr = h('tr', { data: { device: d.id }, tabindex: 0,
        on: { click: open, keydown: (e) => { if (e.key === 'Enter') open(); } } },
      ...['status', 'device', 'model', 'tags', 'last_seen', 'health', 'alerts'].map((col) =>
        h('td', { data: { col }, class: col === 'alerts' ? 'num' : null })));
      rows.set(d.id, tr);
    }
    const a = alerts.get(d.id);
    const hl = health(d, a);
    const idx = fleetHealthIndex(d.id);
    const cell = (col, sig, ...content) => {
      const td = tr.querySelector(`td[data-col="${col}"]`);
      if (td.dataset.sig === sig) return td;
      td.dataset.sig = sig;
      fill(td, ...content);
      return td;
    };
    cell('status', String(d.online), statusCell(d));
    cell('device', `${d.id}|${d.name}`, h('div', { class: 'id' }, d.id),
      d.name && d.name !== d.id ? h('div', { class: 'muted small' }, d.name) : null);
    cell('model', d.model || '', d.model || '–');
    cell('tags', tagText(d.tags).join(','), ...tagText(d.tags).map((t) => h('span', { class: 'tag' }, t)));
    cell('last_seen', ago(d.last_seen, now), ago(d.last_seen, now)).title = fmtTime(d.last_seen);
    cell('health', `${hl.level}|${idx ?? ''}`, healthBadge(hl, HEALTH_WORD, idx));
    cell('alerts', a ? `${a.worst}|${a.count}` : '0',
      a ? h('span', { class: `badge sev-${a.worst}` }, String(a.count)) : h('span', { class: 'muted' }, '0'));
    return tr;
  }

  function card(title, value, sub, cls) {
    return h('div', { class: `card ${cls || ''}` }, h('div', { class: 'card-title' }, title),
      h('div', { class: 'card-value' }, String(value)), sub ? h('div', { class: 'muted small' }, sub) : null);
  }

  // At most one render a second while events stream in.
  function soon() {
    if (dirty) return;
    dirty = true;
    renderTimer = setTimeout(render, 1000);
  }

  async function load() {
    try {
      const [devs, al] = await Promise.all([allDevices(),
        api('GET', '/api/v1/alerts?state=active&limit=1000')]);
      devices = devs.sort((x, y) => x.id.localeCompare(y.id, undefined, { numeric: true }));
      byId = new Map(devices.map((d) => [d.id, d]));
      alerts = activeByDevice(al.alerts);
      loaded = true;
      error.hidden = true;
      render();
      refreshFleetHealth(devices.map((d) => d.id), soon);
    } catch (e) {
      if (e.name === 'AbortError') return;
      error.textContent = `Could not load the fleet: ${errText(e)}`;
      error.hidden = false;
      if (!loaded) note.textContent = '';
    }
  }

  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, 500);
  }

  const offEvent = onEvent((type, ev) => {
    if (!loaded) return;
    const d = byId.get(ev.device);
    if (type === 'connection' && d) { d.online = !!ev.online; d.last_seen = Date.now(); soon(); }
    else if (type === 'telemetry' && d) { d.last_seen = Date.now(); if (!d.online) d.online = true; soon(); }
    else if (type === 'alert' || type === 'device' || (type === 'connection' && !d)) reloadSoon();
  });
  const offRecovered = onRecovered(load);
  const ticker = setInterval(soon, 5000);
  // A safety net for what no event tells (a payload error, a renamed device).
  const periodic = setInterval(load, 30000);
  load();
  return () => {
    offEvent();
    offRecovered();
    clearInterval(ticker);
    clearInterval(periodic);
    clearTimeout(renderTimer);
    clearTimeout(reloadTimer);
  };
}
