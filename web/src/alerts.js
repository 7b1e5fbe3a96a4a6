// alerts.js - alert rows with acknowledge and clear (shared by the alerts
// page and the device page), and the alerts page (#/alerts) with its
// state filter. Rows carry data-alert, data-acknowledged and data-state.
import { api } from './api.js';
import { h, clear, ago, fmtTime, fmtNum, errText } from './dom.js';
import { onEvent } from './live.js';
import { onRecovered } from './conn.js';

export function alertHead(withDevice) {
  return h('thead', {}, h('tr', {},
    h('th', {}, 'Severity'), withDevice ? h('th', {}, 'Device') : null, h('th', {}, 'Type'),
    h('th', { class: 'num' }, 'Value'), h('th', { class: 'num' }, 'Count'), h('th', {}, 'Raised'),
    h('th', {}, 'State'), h('th', {}, 'Acknowledged'), h('th', { class: 'actions' }, '')));
}

// One <tr>. onDone(updatedAlert) after a successful ack/clear; onError(text).
export function alertRow(a, { withDevice, onDone, onError }) {
  async function act(verb, btn) {
    btn.disabled = true;
    try {
      const r = await api('POST', `/api/v1/alerts/${encodeURIComponent(a.id)}/${verb}`);
      onDone(r);
    } catch (e) {
      btn.disabled = false;
      onError(`Could not ${verb === 'ack' ? 'acknowledge' : 'clear'} alert ${a.id}: ${errText(e)}`);
    }
  }
  const ack = h('button', { type: 'button', class: 'btn small', testid: 'alert-ack', disabled: !!a.acknowledged,
    title: a.acknowledged ? `acknowledged by ${a.ack_by || '?'}` : 'Acknowledge', on: { click: (e) => act('ack', e.currentTarget) } },
  'Ack');
  const clr = h('button', { type: 'button', class: 'btn small', testid: 'alert-clear', disabled: a.state !== 'active',
    title: a.state === 'active' ? 'Clear' : `cleared by ${a.cleared_by || '?'}`, on: { click: (e) => act('clear', e.currentTarget) } },
  'Clear');
  const details = a.details && a.details.metric
    ? `${a.details.metric} ${a.details.op || ''} ${a.details.threshold ?? ''}`.trim() : '';
  return h('tr', { data: { alert: a.id, acknowledged: !!a.acknowledged, state: a.state, severity: a.severity } },
    h('td', {}, h('span', { class: `sev sev-${a.severity}` }, a.severity)),
    withDevice ? h('td', {}, h('a', { href: `#/devices/${encodeURIComponent(a.device)}` }, a.device)) : null,
    h('td', {}, h('div', {}, a.type), details ? h('div', { class: 'muted small' }, details) : null),
    h('td', { class: 'num' }, a.value == null ? '–' : fmtNum(a.value)),
    h('td', { class: 'num' }, String(a.count ?? 1)),
    h('td', { title: fmtTime(a.created_ms) }, ago(a.created_ms)),
    h('td', {}, h('span', { class: `state ${a.state}` }, a.state),
      a.state === 'cleared' && a.cleared_by ? h('div', { class: 'muted small' }, `by ${a.cleared_by}`) : null),
    h('td', {}, a.acknowledged ? h('span', {}, '✓ ', h('span', { class: 'muted small' }, a.ack_by || '')) : h('span', { class: 'muted' }, 'no')),
    h('td', { class: 'actions' }, ack, ' ', clr));
}

export function alertsPage(root) {
  let state = 'active';
  let timer = null;
  const filter = h('select', { testid: 'alerts-filter-state', 'aria-label': 'State',
    on: { change: (e) => { state = e.target.value; load(); } } },
  h('option', { value: 'active' }, 'Active'), h('option', { value: 'cleared' }, 'Cleared'),
  h('option', { value: 'all' }, 'All'));
  const tbody = h('tbody');
  const msg = h('div', { class: 'error', hidden: true });
  const note = h('p', { class: 'muted empty', hidden: true });
  clear(root).append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Alerts')),
    h('div', { class: 'toolbar' }, h('label', {}, 'State ', filter)),
    msg,
    h('div', { class: 'panel' },
      h('table', { class: 'grid', testid: 'alerts-table' }, alertHead(true), tbody), note));

  const showError = (t) => { msg.textContent = t; msg.hidden = false; };

  async function load() {
    try {
      const q = state === 'all' ? '' : `state=${state}&`;
      const r = await api('GET', `/api/v1/alerts?${q}limit=500`);
      msg.hidden = true;
      clear(tbody);
      for (const a of r.alerts) {
        tbody.append(alertRow(a, { withDevice: true, onDone: () => load(), onError: showError }));
      }
      note.textContent = r.alerts.length ? '' : `No ${state === 'all' ? '' : `${state} `}alerts.`;
      note.hidden = !note.textContent;
    } catch (e) {
      if (e.name !== 'AbortError') showError(`Could not load the alerts: ${errText(e)}`);
    }
  }
  const offEvent = onEvent((type) => {
    if (type !== 'alert') return;
    clearTimeout(timer);
    timer = setTimeout(load, 300);
  });
  const offRecovered = onRecovered(load);
  const periodic = setInterval(load, 30000);
  load();
  return () => { offEvent(); offRecovered(); clearTimeout(timer); clearInterval(periodic); };
}
