// insight.js - what the hub learned of a device (docs/analytics.md "In the
// hub"), shown on the device page and in the fleet: the health index, the
// per-metric anomaly states, remaining useful life, anomaly spans shaded on
// the metric charts (from the device's "anomaly:METRIC" alerts), and the
// what-if panel (POST .../simulate drawn after the metric's recent history).
// device.js and fleet.js only hook these in; everything else lives here.
import uPlot from 'uplot';
import { api, ApiError, NetError, enc } from './api.js';
import { h, fill, fmtTime, fmtNum, unitOf, label, errText } from './dom.js';

// The analytics section changes slowly (a score per point, but the health
// index is an average): every 10 s is calm and still current.
const POLL_MS = 10000;

// Health index -> the same words and colours as the derived health.
export function indexLevel(v) {
  if (v == null) return null;
  return v >= 80 ? 'ok' : v >= 50 ? 'degraded' : 'critical';
}
const LEVEL_RANK = { ok: 0, unknown: 1, degraded: 2, critical: 3 };

function duration(s) {
  if (s == null || !Number.isFinite(s)) return '–';
  const a = Math.abs(s);
  if (a < 90) return `${Math.round(s)} s`;
  if (a < 5400) return `${Math.round(s / 60)} min`;
  if (a < 48 * 3600) return `${(s / 3600).toFixed(a < 36000 ? 1 : 0)} h`;
  return `${(s / 86400).toFixed(a < 864000 ? 1 : 0)} days`;
}
const hoursText = (hrs) => duration(hrs * 3600);
// The page's CSP (style-src 'self') refuses style attributes; properties
// set through the CSSOM are allowed.
function sized(el, props) {
  Object.assign(el.style, props);
  return el;
}
const clock = (ms) => new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
// A time of day, with seconds when it is close (minutes alone would say
// "between 10:36 and 10:36"), with the date when it is not today.
function when(ms, from = Date.now()) {
  const d = new Date(ms);
  if (Math.abs(ms - from) < 1200e3) return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (d.toDateString() === new Date().toDateString()) return clock(ms);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

// ---- the device page: analytics panel + anomaly markers ----

// insightView(id) -> {panel, whatif, attachChart(metric, plot), setAlerts(alerts), refresh(), destroy()}
export function insightView(id) {
  const url = `/api/v1/devices/${enc(id)}`;
  let timer = null;
  let seq = 0;
  let gone = false;
  let last = null; // the latest analytics section
  const plots = new Map(); // metric -> uPlot
  let spans = new Map(); // metric -> [{from, to, active, severity}] (ms; to null while active)

  const gauge = h('div', { class: 'ins-gauge', testid: 'insight-health', data: { state: 'none' },
    role: 'img', 'aria-label': 'Health index' }, h('span', { class: 'ins-gauge-num' }, '–'));
  const gaugeNote = h('div', { class: 'muted small' }, 'Health index');
  const rul = h('div', { class: 'ins-rul', testid: 'insight-rul', data: { status: 'none' } });
  const metricsEl = h('div', { class: 'ins-metrics' });
  const msg = h('p', { class: 'muted small ins-note' });
  const panel = h('section', { class: 'panel ins-panel' },
    h('div', { class: 'panel-head' }, h('h2', {}, 'Analytics'),
      h('span', { class: 'muted small', title: 'GET /api/v1/devices/{id}/analytics' }, 'learned by the hub from this device\'s own data')),
    h('div', { class: 'ins-grid' },
      h('div', { class: 'ins-health' }, gauge, gaugeNote),
      h('div', { class: 'ins-col' }, h('h3', {}, 'Remaining useful life'), rul),
      h('div', { class: 'ins-col wide' }, h('h3', {}, 'Anomaly detection'), metricsEl)),
    msg);

  function renderSection(a) {
    last = a;
    const has = a && typeof a.health === 'number';
    const lvl = has ? indexLevel(a.health) : 'none';
    gauge.dataset.state = lvl;
    gauge.dataset.value = has ? String(a.health) : '';
    gauge.style.setProperty('--p', has ? String(Math.max(0, Math.min(100, a.health))) : '0');
    fill(gauge, h('span', { class: 'ins-gauge-num' }, has ? String(Math.round(a.health)) : '–'),
      has ? h('span', { class: 'ins-gauge-of' }, '/ 100') : null);
    gaugeNote.textContent = has
      ? `Health index: ${{ ok: 'good', degraded: 'watch', critical: 'poor' }[lvl]}` : 'Health index: not learned yet';
    gauge.title = 'The worst metric\'s recent anomaly burden and the remaining useful life, 100 = healthy';

    // RUL
    const r = a && a.rul;
    rul.dataset.status = r ? r.status || 'estimated' : 'none';
    if (!r) {
      fill(rul, h('div', { class: 'muted' }, 'Not available for this model'),
        h('div', { class: 'muted small' }, 'Estimated where the model has a wear signal (pump, motor).'));
    } else if (r.status === 'learning') {
      fill(rul, h('div', { class: 'ins-rul-main muted' }, 'Learning…'),
        h('div', { class: 'muted small' }, `Needs a few hours of ${r.metric || 'wear'} data to see a trend.`));
    } else if (r.status === 'no_wear_trend') {
      fill(rul, h('div', { class: 'ins-rul-main' }, 'No wear trend'),
        h('div', { class: 'muted small' }, `${label(r.metric || 'vibration')} is flat or falling: no end in sight (over 10 years).`));
    } else {
      fill(rul, h('div', { class: `ins-rul-main${r.hours < 168 ? ' bad' : ''}` }, `≈ ${hoursText(r.hours)}`),
        h('div', { class: 'small' }, `90 % interval ${hoursText(r.low)} – ${hoursText(r.high)}`),
        h('div', { class: 'muted small' }, `until ${r.metric} reaches ${fmtNum(r.threshold)} ${unitOf(r.metric)}`));
    }

    // per metric: anomalous ones first
    const ms = Object.entries((a && a.metrics) || {})
      .sort(([x, p], [y, q]) => ((q.state === 'anomalous') - (p.state === 'anomalous')) || x.localeCompare(y));
    fill(metricsEl, ms.length ? ms.map(([metric, m]) => {
      const bad = m.state === 'anomalous';
      return h('div', { class: `ins-metric${bad ? ' anomalous' : ''}`, testid: 'insight-metric',
        data: { metric, state: m.state || 'normal', score: m.score ?? '' },
        title: bad && m.since ? `anomalous since ${fmtTime(m.since)}, peak score ${fmtNum(m.peak)}` : `${m.anomalies || 0} anomalous episode(s) so far` },
      h('span', { class: 'ins-metric-name' }, label(metric)),
      h('span', { class: 'ins-bar' }, sized(h('span'), { width: `${Math.round(Math.max(0, Math.min(1, m.score || 0)) * 100)}%` })),
      h('span', { class: 'ins-score' }, fmtNum(m.score ?? 0)),
      h('span', { class: `ins-state ${bad ? 'bad' : ''}` }, bad
        ? `anomalous${m.since ? ` since ${clock(m.since)}` : ''}` : 'normal'),
      h('span', { class: 'muted small ins-episodes' }, m.anomalies ? `${m.anomalies} episode${m.anomalies === 1 ? '' : 's'}` : ''));
    }) : h('div', { class: 'muted' }, 'No scores yet: the detectors start with the device\'s telemetry.'));
    msg.textContent = a && a.updated ? `Updated ${fmtTime(a.updated)}.` : '';
    what.adapt(a);
  }

  async function refresh() {
    const s = ++seq;
    clearTimeout(timer);
    try {
      const a = await api('GET', `${url}/analytics`);
      if (s !== seq || gone) return;
      renderSection(a || {});
      msg.classList.remove('error-text');
    } catch (e) {
      if (s !== seq || gone) return;
      if (!last) renderSection({});
      msg.textContent = e instanceof ApiError && e.status === 404 ? ''
        : `Could not load the analytics: ${errText(e)}`;
      msg.classList.add('error-text');
    } finally {
      if (s === seq && !gone) timer = setTimeout(refresh, POLL_MS);
    }
  }

  // ---- anomaly markers: a light shade over each anomaly span ----
  function setAlerts(alerts) {
    const m = new Map();
    for (const a of alerts || []) {
      if (typeof a.type !== 'string' || !a.type.startsWith('anomaly:')) continue;
      const metric = a.type.slice(8);
      const list = m.get(metric) || [];
      list.push({ from: a.created_ms, to: a.state === 'active' ? null : (a.cleared_ms || a.updated_ms),
        active: a.state === 'active', severity: a.severity, id: a.id });
      m.set(metric, list);
    }
    spans = m;
    for (const [metric, u] of plots) placeMarkers(metric, u);
  }

  function placeMarkers(metric, u) {
    let layer = u.under.querySelector(':scope > .ins-marks');
    if (!layer) { layer = h('div', { class: 'ins-marks' }); u.under.append(layer); }
    const list = spans.get(metric) || [];
    const [x0, x1] = [u.scales.x.min, u.scales.x.max];
    const kids = [];
    if (x0 != null && x1 != null) {
      const w = u.bbox.width / devicePixelRatio;
      for (const s of list) {
        const from = s.from / 1000;
        const to = (s.to ?? Date.now()) / 1000;
        if (to < x0 || from > x1) continue;
        const l = Math.max(0, u.valToPos(Math.max(from, x0), 'x'));
        const r = Math.min(w, u.valToPos(Math.min(to, x1), 'x'));
        kids.push(h('div', { class: `ins-mark${s.active ? ' active' : ''}`, testid: 'anomaly-marker',
          data: { metric, alert: s.id, state: s.active ? 'active' : 'cleared' },
          title: `anomaly (${s.severity}) from ${fmtTime(s.from)}${s.to ? ` to ${fmtTime(s.to)}` : ', still open'}`,
        }));
        sized(kids[kids.length - 1], { left: `${l}px`, width: `${Math.max(4, r - l)}px` });
      }
    }
    fill(layer, kids);
  }

  function attachChart(metric, u) {
    plots.set(metric, u);
    u.hooks.draw = (u.hooks.draw || []).concat(() => placeMarkers(metric, u));
    placeMarkers(metric, u);
  }

  const what = whatIf(id, url);
  refresh();
  return {
    panel,
    whatif: what.el,
    attachChart,
    setAlerts,
    refresh,
    destroy() { gone = true; clearTimeout(timer); plots.clear(); what.destroy(); },
  };
}

// ---- what if ----

const HORIZONS = [['15 min', 900], ['hour', 3600], ['3 h', 10800], ['6 h', 21600], ['24 h', 86400],
  ['7 days', 7 * 86400], ['30 days', 30 * 86400]];
const SCENARIOS = [
  ['hold', 'Nothing changes'],
  ['setpoint', 'Change the setpoint to…'],
  ['power', 'Change the power (kW) to…'],
  ['off', 'Turn it off'],
  ['on', 'Turn it on'],
  ['wear', 'Wear: the vibration trend'],
];

function whatIf(id, url) {
  let plot = null;
  let ro = null;
  let busy = false;
  const scenario = h('select', { testid: 'whatif-scenario', 'aria-label': 'Scenario',
    on: { change: () => syncValue() } }, SCENARIOS.map(([v, t]) => h('option', { value: v }, t)));
  const value = h('input', { type: 'number', step: 'any', class: 'narrow', testid: 'whatif-value',
    'aria-label': 'Value', placeholder: 'value' });
  const delay = h('input', { type: 'number', step: 'any', min: '0', class: 'narrow', testid: 'whatif-delay',
    'aria-label': 'Delay in minutes', value: '0' });
  const horizon = h('select', { testid: 'whatif-horizon', 'aria-label': 'Horizon' },
    HORIZONS.map(([t, s]) => h('option', { value: String(s), selected: s === 3600 }, `next ${t}`)));
  const run = h('button', { type: 'button', class: 'btn primary', testid: 'whatif-run', on: { click: go } }, 'Run');
  const message = h('div', { class: 'ins-msg', testid: 'whatif-message', role: 'status', hidden: true });
  const crossings = h('ul', { class: 'ins-crossings' });
  const chartEl = h('div', { class: 'ins-whatif-chart', testid: 'whatif-chart', hidden: true });
  const legend = h('div', { class: 'ins-legend small', hidden: true },
    h('span', { class: 'k hist' }, 'recent history'), h('span', { class: 'k mean' }, 'predicted mean'),
    h('span', { class: 'k band' }, '90 % band'), h('span', { class: 'k thr' }, 'alert threshold'));
  const valueLabel = h('label', {}, 'Value ', value);
  const delayLabel = h('label', {}, 'after ', delay, ' min');
  const el = h('section', { class: 'panel ins-whatif' },
    h('div', { class: 'panel-head' }, h('h2', {}, 'What if'),
      h('span', { class: 'muted small' }, 'the model fitted to this device\'s history, run forward')),
    h('div', { class: 'toolbar ins-form' },
      h('label', {}, 'Scenario ', scenario), valueLabel,
      delayLabel,
      h('label', {}, 'Horizon ', horizon), run),
    message, legend, chartEl, crossings);

  // Scenarios the device's learned models cannot run are greyed out, once
  // the section says so (before that the hub's 409/422 explains).
  function adapt(a) {
    const models = Object.values((a && a.models) || {});
    const inputs = new Set(models.map((m) => m.input).filter(Boolean));
    const off = {
      power: models.length > 0 && !inputs.has('power'),
      wear: !!(a && a.metrics && Object.keys(a.metrics).length) && !a.rul,
    };
    for (const o of scenario.options) {
      const no = !!off[o.value];
      if (o.disabled !== no) {
        o.disabled = no;
        o.title = no ? 'not for this device\'s model' : '';
      }
    }
    if (scenario.selectedOptions[0] && scenario.selectedOptions[0].disabled) { scenario.value = 'hold'; syncValue(); }
  }

  function syncValue() {
    const needs = scenario.value === 'setpoint' || scenario.value === 'power';
    value.disabled = !needs;
    valueLabel.classList.toggle('off', !needs);
    const timed = scenario.value !== 'hold' && scenario.value !== 'wear';
    delay.disabled = !timed;
    delayLabel.classList.toggle('off', !timed);
  }
  syncValue();

  function say(kind, text) {
    message.dataset.kind = kind;
    message.textContent = text;
    message.hidden = false;
  }

  async function go() {
    if (busy) return;
    const hs = Number(horizon.value);
    const body = { horizon_s: hs, step_s: Math.max(10, Math.round(hs / 120)) };
    const sc = {};
    const kind = scenario.value;
    if (kind === 'setpoint' || kind === 'power') {
      const v = Number(value.value);
      if (value.value.trim() === '' || !Number.isFinite(v)) {
        say('error', `Enter the new ${kind === 'power' ? 'power (kW)' : 'setpoint'} as a number; nothing was run.`);
        return;
      }
      sc[kind] = v;
    } else if (kind === 'off' || kind === 'on') {
      sc.on = kind === 'on';
    } else if (kind === 'wear') {
      body.metric = 'vibration'; // the wear trend takes no scenario
    }
    const d = delay.value.trim() === '' ? 0 : Number(delay.value);
    if (!Number.isFinite(d)) {
      say('error', 'The delay must be a number of minutes; nothing was run.');
      return;
    }
    if (kind !== 'hold' && kind !== 'wear' && d) sc.at_s = d * 60; // out of range: the hub says why (400)
    if (Object.keys(sc).length) body.scenario = sc;
    busy = true;
    run.disabled = true;
    say('busy', 'Running…');
    try {
      const r = await api('POST', `${url}/simulate`, body);
      const hist = await history(r.metric, hs, r.start);
      draw(r, hist);
      describe(r);
    } catch (e) {
      chartEl.hidden = true;
      legend.hidden = true;
      fill(crossings);
      say('error', errorText(e));
    } finally {
      busy = false;
      run.disabled = false;
    }
  }

  function errorText(e) {
    if (e instanceof NetError) return 'Not run: the hub is unreachable.';
    if (!(e instanceof ApiError)) return `Not run: ${errText(e)}`;
    switch (e.status) {
      case 400: return `The hub refused the request: ${e.message}.`;
      case 404: return `There is no device '${id}'.`;
      case 409: return `The model cannot answer this yet: ${e.message}. It learns from this device's own `
        + 'telemetry (a few minutes of it, and a setpoint change to learn what a setpoint does); try again later.';
      case 422: return `Not simulated: ${e.message}. What-if runs the models whose physics the hub knows: `
        + 'pump and motor (temperature from power or setpoint, the vibration trend), hvac (room temperature from its setpoint).';
      default: return `Not run: ${e.message}`;
    }
  }

  // The metric's recent history, as long as the horizon (15 min to 6 h),
  // averaged to about 200 points.
  async function history(metric, hs, start) {
    const to = Math.max(Date.now(), start || 0);
    const span = Math.min(Math.max(hs, 900), 21600) * 1000;
    const interval = Math.max(1, Math.round(span / 1000 / 200));
    try {
      const r = await api('GET', `${url}/telemetry?metric=${enc(metric)}&from=${Math.floor(to - span)}`
        + `&to=${Math.ceil(to) + 1}&agg=avg&interval=${interval}s`);
      return r.points || [];
    } catch {
      return []; // the prediction is worth showing without it
    }
  }

  function draw(r, hist) {
    const unit = unitOf(r.metric);
    // one x axis: history first, then the prediction (disjoint, so each
    // series is null where the other is drawn)
    const xs = [];
    const hy = [];
    const my = [];
    const lo = [];
    const hi = [];
    const first = r.points.length ? r.points[0].t : Infinity;
    for (const [t, v] of hist) {
      if (t >= first) continue;
      xs.push(t / 1000); hy.push(v); my.push(null); lo.push(null); hi.push(null);
    }
    // the prediction starts where the history ends: joined at its last point
    if (hy.length && r.points.length) my[my.length - 1] = hy[hy.length - 1];
    for (const p of r.points) {
      xs.push(p.t / 1000); hy.push(null); my.push(p.mean); lo.push(p.lo); hi.push(p.hi);
    }
    const thr = (r.thresholds || []).map((t) => t.value);
    chartEl.hidden = false;
    legend.hidden = false;
    legend.querySelector('.thr').hidden = thr.length === 0;
    if (plot) { plot.destroy(); plot = null; }
    if (ro) { ro.disconnect(); ro = null; }
    const axis = { stroke: '#52606d', grid: { stroke: '#edf0f4', width: 1 }, ticks: { stroke: '#dde3ea', width: 1 },
      font: '11px system-ui, sans-serif' };
    const startX = r.start / 1000;
    plot = new uPlot({
      width: Math.max(300, chartEl.clientWidth || 600),
      height: 240,
      padding: [10, 22, 0, 0],
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 5 } },
      scales: {
        x: { time: true },
        y: { range: (u, mn, mx) => {
          let a = mn; let b = mx;
          for (const v of thr) { a = Math.min(a, v); b = Math.max(b, v); }
          if (a == null || b == null) return [0, 1];
          const pad = (b - a) * 0.08 || 1;
          return [a - pad, b + pad];
        } },
      },
      series: [
        {},
        { label: 'history', stroke: '#2f6f9f', width: 1.5, points: { show: false } },
        { label: 'predicted', stroke: '#c2410c', width: 2, dash: [6, 4], points: { show: false } },
        { label: 'low (5 %)', stroke: '#c2410c55', width: 1, points: { show: false } },
        { label: 'high (95 %)', stroke: '#c2410c55', width: 1, points: { show: false } },
      ],
      bands: [{ series: [4, 3], fill: '#c2410c1f' }],
      axes: [{ ...axis }, { ...axis, size: 62, label: unit || undefined, labelSize: 16,
        labelFont: '11px system-ui, sans-serif', values: (u, vals) => vals.map((v) => fmtNum(v)) }],
      hooks: {
        draw: [(u) => {
          const c = u.ctx;
          c.save();
          // "now": where the prediction starts
          const x = u.valToPos(startX, 'x', true);
          c.strokeStyle = '#9aa5b1';
          c.setLineDash([2, 3]);
          c.lineWidth = devicePixelRatio;
          c.beginPath(); c.moveTo(x, u.bbox.top); c.lineTo(x, u.bbox.top + u.bbox.height); c.stroke();
          // the alert thresholds
          c.strokeStyle = '#b42318';
          c.setLineDash([5, 4]);
          for (const v of thr) {
            const y = u.valToPos(v, 'y', true);
            c.beginPath(); c.moveTo(u.bbox.left, y); c.lineTo(u.bbox.left + u.bbox.width, y); c.stroke();
          }
          c.restore();
        }],
      },
    }, [xs, hy, my, lo, hi], chartEl);
    ro = new ResizeObserver(() => {
      const w = chartEl.clientWidth;
      if (plot && w > 0 && Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: 240 });
    });
    ro.observe(chartEl);
  }

  function describe(r) {
    const unit = unitOf(r.metric);
    const pts = r.points || [];
    const end = pts[pts.length - 1];
    const s = r.scenario || {};
    const inp = (v) => `${fmtNum(v)}${unitOf(s.input) ? ` ${unitOf(s.input)}` : ''}`;
    const after = s.at_s ? ` from ${duration(s.at_s)} on` : '';
    const what = !s.input ? 'the trend of wear'
      : s.setpoint != null ? `setpoint ${fmtNum(s.setpoint)}${after} (${s.input} ${inp(s.from)} → ${inp(s.to)})`
        : s.from === s.to ? `${s.input} holding at ${inp(s.from)}`
          : `${s.input} ${inp(s.from)} → ${inp(s.to)}${after}`;
    say('ok', `${label(r.metric)} under ${what}: ${end ? `${fmtNum(end.mean)} ${unit} expected at ${when(end.t, r.start)}`
      + ` (90 %: ${fmtNum(end.lo)} – ${fmtNum(end.hi)} ${unit})` : 'no points'}.`
      + `${s.extrapolating ? ' The input is outside anything the history showed: the band does not cover that.' : ''}`);
    const ths = r.thresholds || [];
    fill(crossings, ths.length ? ths.map((t) => {
      const rel = (ms) => duration((ms - r.start) / 1000);
      const words = t.crosses
        ? `crosses ${t.direction} ${fmtNum(t.value)} ${unit} in ${rel(t.at)} (${when(t.at, r.start)})`
          + `${t.earliest != null && t.latest != null ? `; the draws cross between ${rel(t.earliest)} and ${rel(t.latest)}` : ''}`
        : `stays ${t.direction === 'above' ? 'below' : 'above'} ${fmtNum(t.value)} ${unit} over the horizon`
          + `${t.earliest != null ? ` (some draws cross from ${rel(t.earliest)} on)` : ''}`;
      return h('li', { testid: 'whatif-crossing', data: { rule: t.rule, crosses: !!t.crosses },
        class: t.crosses ? 'bad' : '' },
      h('strong', {}, `Alert rule ${t.rule}${t.severity ? ` (${t.severity})` : ''}: `), words,
      h('span', { class: 'muted' }, ` · ${Math.round((t.probability || 0) * 100)} % of draws cross`));
    }) : h('li', { testid: 'whatif-crossing', data: { crosses: 'none' }, class: 'muted' },
      `No alert rule watches ${r.metric} on this device: no crossing to predict.`));
  }

  return {
    el,
    adapt,
    destroy() { if (ro) ro.disconnect(); if (plot) plot.destroy(); },
  };
}

// ---- the fleet: the hub's health index per device ----

// A cache of health indices, refreshed for the listed devices at most every
// 15 s, four requests at a time (there is no fleet-wide analytics call).
const fleetIdx = new Map(); // id -> number | null
let fleetAt = 0;
let fleetBusy = false;

export function fleetHealthIndex(id) {
  const v = fleetIdx.get(id);
  return typeof v === 'number' ? v : null;
}

export async function refreshFleetHealth(ids, done) {
  if (fleetBusy || Date.now() - fleetAt < 15000) return;
  fleetBusy = true;
  try {
    const queue = ids.slice(0, 500);
    let changed = false;
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          const a = await api('GET', `/api/v1/devices/${enc(id)}/analytics`);
          const v = a && typeof a.health === 'number' ? a.health : null;
          if (fleetIdx.get(id) !== v) { fleetIdx.set(id, v); changed = true; }
        } catch (e) {
          if (e instanceof NetError || (e instanceof ApiError && e.status === 401)) return;
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    fleetAt = Date.now();
    if (changed && done) done();
  } finally {
    fleetBusy = false;
  }
}

// The fleet's health cell content: the derived level (health.js) and,
// when the hub has one, the health index beside it; the worse of the two
// sets the colour.
export function healthBadge(hl, words, index) {
  let level = hl.level;
  if (index != null && LEVEL_RANK[indexLevel(index)] > (LEVEL_RANK[level] ?? 0)) level = indexLevel(index);
  return h('span', { class: `health ${level}`, data: { health: level, index: index ?? '' },
    title: index != null ? `health index ${index}/100 (the hub's analytics); ${hl.why}` : hl.why },
  words[level], index != null ? h('span', { class: 'ins-idx' }, String(Math.round(index))) : null);
}
