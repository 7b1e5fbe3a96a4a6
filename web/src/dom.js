// dom.js - building DOM from data without innerHTML: every device-supplied
// string (ids, names, tags, twin JSON) becomes a text node, so none of it
// can turn into markup or script.

// h('tr', {testid: 'x', data: {device: id}, class: 'row', on: {click: f}}, kids...)
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'testid') el.dataset.testid = v;
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k == null || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : String(k));
  }
}

// Replaces el's children (arrays flattened, null/false skipped).
export function fill(el, ...kids) {
  clear(el);
  append(el, kids);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function ago(ms, now = Date.now()) {
  if (ms == null) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmtTime(ms) {
  if (ms == null) return '';
  const d = new Date(ms);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function fmtNum(v) {
  if (v == null || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  const digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 3;
  return v.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

// Units of the simulated fleet's metrics (docs/sim.md); others show none.
const UNITS = {
  temperature: '°C', supply_temp: '°C', room_temp: '°C', vibration: 'mm/s', pressure: 'bar',
  flow: 'm³/h', power: 'kW', current: 'A', rpm: 'rpm', humidity: '%',
};
export const unitOf = (metric) => UNITS[metric] || '';

export function label(metric) {
  const s = metric.replace(/[_.]+/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// The message of an error for people: ApiError's sentence, or the text.
export function errText(e) {
  return (e && e.message) || String(e);
}
