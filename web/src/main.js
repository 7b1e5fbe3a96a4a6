// main.js - the dashboard's entry: takes a token from the address bar
// (/?token=T, the link `make run` prints) into localStorage and removes it
// from the address bar, routes by hash (#/devices, #/devices/<id>,
// #/alerts, #/login), and runs the live event stream while logged in.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { api, getToken, setToken, clearToken, setUnauthorizedHandler, distrust } from './api.js';
import * as conn from './conn.js';
import { startLive, stopLive, onLive, onEvent } from './live.js';
import { fleetPage } from './fleet.js';
import { devicePage } from './device.js';
import { alertsPage } from './alerts.js';
import { loginPage } from './login.js';

const app = document.getElementById('app');
let cleanup = () => {};

function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const t = url.searchParams.get('token');
  if (t === null) return;
  if (t.trim()) {
    setToken(t.trim());
    conn.loggedIn();
  }
  url.searchParams.delete('token');
  const hash = url.hash && url.hash !== '#' ? url.hash : '#/devices';
  // replaceState: the token leaves the address bar and the history entry.
  window.history.replaceState(null, '', url.pathname + url.search + hash);
}

const go = (hash) => { if (window.location.hash === hash) route(); else window.location.hash = hash; };

function route() {
  cleanup();
  cleanup = () => {};
  distrust();
  const hash = window.location.hash || '#/devices';
  const loggedIn = !!getToken();
  document.getElementById('logout').hidden = !loggedIn;
  document.body.dataset.page = '';
  document.title = 'mote';
  if (!loggedIn || hash === '#/login') {
    stopLive();
    document.body.dataset.page = 'login';
    document.title = 'Log in · mote';
    setNav('');
    cleanup = loginPage(app, { done: () => go('#/devices') });
    return;
  }
  let m;
  if ((m = /^#\/devices\/(.+)$/.exec(hash))) {
    let id;
    try { id = decodeURIComponent(m[1]); } catch { id = m[1]; }
    setNav('devices');
    startLive(`device=${encodeURIComponent(id)}`);
    cleanup = devicePage(app, { id, go });
  } else if (hash === '#/alerts') {
    setNav('alerts');
    document.title = 'Alerts · mote';
    startLive('types=alert');
    cleanup = alertsPage(app, { go });
  } else {
    setNav('devices');
    document.title = 'Fleet · mote';
    startLive();
    cleanup = fleetPage(app, { go });
  }
  refreshAlertCount();
  document.body.dataset.page = document.querySelector('nav a.active')?.dataset.testid || '';
  window.scrollTo(0, 0);
}

function setNav(which) {
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.dataset.testid === `nav-${which}`);
  }
}

// The count of active alerts in the nav, kept by alert events.
let countTimer = null;
async function refreshAlertCount() {
  if (!getToken()) return;
  try {
    const r = await api('GET', '/api/v1/alerts?state=active&limit=1000');
    const el = document.getElementById('nav-alert-count');
    el.textContent = String(r.alerts.length);
    el.hidden = r.alerts.length === 0;
  } catch { /* the banner already says why */ }
}

function logout() {
  clearToken();
  stopLive();
  conn.loggedIn();
  go('#/login');
}

takeTokenFromUrl();
document.getElementById('logout').addEventListener('click', logout);
setUnauthorizedHandler(() => {
  clearToken();
  stopLive();
  if (window.location.hash !== '#/login') window.location.hash = '#/login';
});
// Another tab logged out or in.
window.addEventListener('storage', (e) => { if (e.key === 'mote.token') route(); });
window.addEventListener('hashchange', route);
onLive((on) => { document.getElementById('live').dataset.live = on ? 'on' : 'off'; });
onEvent((type) => {
  if (type !== 'alert') return;
  clearTimeout(countTimer);
  countTimer = setTimeout(refreshAlertCount, 500);
});
conn.onRecovered(refreshAlertCount);
// The device page's stream carries only its device's alerts: the count in
// the nav is also asked for now and then.
setInterval(refreshAlertCount, 30000);
route();
