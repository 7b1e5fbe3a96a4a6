// live.js - the hub's event stream (GET /api/v1/events, Server-Sent Events)
// read with fetch() streaming, because EventSource cannot send the
// Authorization header. One stream for the whole page; pages subscribe
// with onEvent and filter by device themselves.
//
// Reconnects by itself: after a network failure (banner offline, the stream
// retries with a growing delay, and at once when conn.js sees the hub
// again), after the hub ended the stream (shutdown), after a 503 (too many
// streams), and when nothing - not even the 15 s heartbeat - arrived for
// 40 s (a connection that died silently). A 401 stops it (banner expired).
import * as conn from './conn.js';
import { authHeader, unauthorized, sendAuthed } from './api.js';

const subs = new Set();
const liveSubs = new Set();
let running = false;
let ctrl = null;
let timer = null;
let delay = 1000;
let connected = false;

export const isLive = () => connected;
export function onEvent(fn) { subs.add(fn); return () => subs.delete(fn); }
export function onLive(fn) { liveSubs.add(fn); return () => liveSubs.delete(fn); }

function setConnected(v) {
  if (connected === v) return;
  connected = v;
  for (const fn of liveSubs) fn(v);
}

// query: the stream's filter ('' = everything, 'device=pump-001',
// 'types=alert'): a page asks only for what it shows, so a device page of
// a large fleet is not fed every device's telemetry. A new filter
// reconnects at once.
let filter = '';
export function startLive(query = '') {
  if (running && query === filter) return;
  filter = query;
  running = true;
  delay = 1000;
  if (ctrl) ctrl.abort();
  setConnected(false);
  connect();
}

export function stopLive() {
  running = false;
  clearTimeout(timer);
  if (ctrl) ctrl.abort();
  setConnected(false);
}

conn.onRecovered(() => {
  if (!running || connected) return;
  clearTimeout(timer);
  delay = 1000;
  if (ctrl) ctrl.abort();
  connect();
});

function dispatch(type, data) {
  let obj;
  try { obj = JSON.parse(data); } catch { return; }
  for (const fn of subs) {
    try { fn(type, obj); } catch (e) { console.error('event handler', e); }
  }
}

async function connect() {
  clearTimeout(timer);
  const my = new AbortController();
  ctrl = my;
  let watchdog = null;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => my.abort(), 40000);
  };
  try {
    arm();
    const res = await sendAuthed(filter ? `/api/v1/events?${filter}` : '/api/v1/events', {
      headers: { ...authHeader(), Accept: 'text/event-stream' },
      cache: 'no-store',
      signal: my.signal,
    });
    if (!res || res.status === 401) {
      running = false;
      unauthorized(new Error('the event stream was refused: 401'));
      return;
    }
    conn.reachable();
    if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
    delay = 1000;
    setConnected(true);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let type = 'message';
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      arm();
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (data.length) dispatch(type, data.join('\n'));
          type = 'message';
          data = [];
        } else if (line.startsWith(':')) {
          // a comment: "connected" or the heartbeat
        } else {
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          let val = c < 0 ? '' : line.slice(c + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'event') type = val;
          else if (field === 'data') data.push(val);
        }
      }
    }
  } catch (e) {
    // A TypeError is the network (the hub went away); an abort is ours
    // (stopLive, the watchdog, or a reconnect already under way).
    if (running && e && e.name === 'TypeError') conn.offline();
  } finally {
    clearTimeout(watchdog);
  }
  if (ctrl !== my) return; // a newer connection took over
  setConnected(false);
  if (!running) return;
  timer = setTimeout(connect, delay);
  delay = Math.min(delay * 2, 15000);
}
