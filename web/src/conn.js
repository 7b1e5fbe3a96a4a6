// conn.js - the dashboard's view of its link to the hub, shown by the
// banner (data-testid="banner", data-state ok | offline | expired):
//   ok       everything answers (the banner is hidden)
//   offline  a request failed at the network level: the hub is unreachable.
//            /healthz (public) is probed with a growing delay (1 s .. 15 s);
//            the first answer turns the state back to ok and tells the
//            pages and the event stream to reload (onRecovered).
//   expired  the hub answered 401 to our token (expired, revoked, or
//            mistyped): the token is dropped and the login page shown.

const banner = () => document.querySelector('[data-testid="banner"]');
let state = 'ok';
let probeTimer = null;
let probeDelay = 1000;
let nextProbeAt = 0;
let tick = null;
const recovered = new Set();
const changed = new Set();

export const connState = () => state;
export function onRecovered(fn) { recovered.add(fn); return () => recovered.delete(fn); }
export function onStateChange(fn) { changed.add(fn); return () => changed.delete(fn); }

function set(s) {
  state = s;
  render();
  for (const fn of changed) fn(s);
}

function render() {
  const b = banner();
  if (!b) return;
  b.dataset.state = state;
  b.hidden = state === 'ok';
  b.replaceChildren();
  if (state === 'offline') {
    const secs = Math.max(0, Math.ceil((nextProbeAt - Date.now()) / 1000));
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'link';
    retry.textContent = 'Retry now';
    retry.addEventListener('click', () => { probeDelay = 1000; schedule(0); });
    b.append(`The hub is unreachable. Retrying ${secs > 0 ? `in ${secs} s` : 'now'}… `, retry);
  } else if (state === 'expired') {
    b.append('Your token was rejected (expired, revoked or wrong). Log in with a valid token.');
  }
}

function schedule(ms) {
  clearTimeout(probeTimer);
  nextProbeAt = Date.now() + ms;
  probeTimer = setTimeout(probe, ms);
  render();
}

async function probe() {
  try {
    await fetch('/healthz', { cache: 'no-store' });
    reachable();
  } catch {
    probeDelay = Math.min(probeDelay * 2, 15000);
    if (state === 'offline') schedule(probeDelay);
  }
}

// A request failed at the network level.
export function offline() {
  if (state === 'offline') return;
  if (state === 'expired') return;
  probeDelay = 1000;
  set('offline');
  schedule(probeDelay);
  clearInterval(tick);
  tick = setInterval(() => { if (state === 'offline') render(); else clearInterval(tick); }, 1000);
}

// The hub answered something (any status): from offline back to ok.
export function reachable() {
  if (state !== 'offline') return;
  clearTimeout(probeTimer);
  clearInterval(tick);
  set('ok');
  for (const fn of recovered) fn();
}

// The hub refused our token.
export function expired() {
  clearTimeout(probeTimer);
  clearInterval(tick);
  if (state !== 'expired') set('expired');
}

// A token was accepted (login): whatever the banner said is over.
export function loggedIn() {
  clearTimeout(probeTimer);
  clearInterval(tick);
  if (state !== 'ok') set('ok');
}
