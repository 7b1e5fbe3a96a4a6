// api.js - calls to the hub's REST API with the token as a Bearer header
// (docs/api.md). Errors are thrown, never swallowed: ApiError carries the
// status and the API's sentence; NetError means the hub did not answer.
// Both also move the banner (conn.js): a network failure -> offline, a 401
// -> expired (and the login page, through the handler main.js installs).
import * as conn from './conn.js';

const KEY = 'mote.token';

export const getToken = () => localStorage.getItem(KEY);
export const setToken = (t) => localStorage.setItem(KEY, t);
export const clearToken = () => localStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, error, message) {
    super(message);
    this.status = status;
    this.error = error;
  }
}
export class NetError extends Error {}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }
// The hub refused the stored token (any call, the event stream too).
export function unauthorized(err) {
  conn.expired();
  onUnauthorized(err);
}

export const authHeader = (token = getToken()) => ({ Authorization: `Bearer ${token || ''}` });

// Every refused token counts toward the hub's per-address block
// (--auth-fail-max, then 429 for everyone at this address, a valid token
// too). A page opens with several calls at once; sent together with a
// revoked token they would all count. So a call made while the token is
// not known good (at each page change, and 10 s after the last answer)
// goes alone, as a probe: the calls made meanwhile wait for its answer and,
// if it was 401, are not sent at all.
const TRUST_MS = 10000;
let trustedUntil = 0;
let probe = null; // Promise of the probe's status (0: no answer)

export function distrust() { trustedUntil = 0; }

function noteStatus(status) {
  trustedUntil = status === 401 ? 0 : Date.now() + TRUST_MS;
}

// fetch() with the stored token through the probe gate; null: not sent,
// because the token was just refused.
export async function sendAuthed(path, init) {
  if (Date.now() >= trustedUntil) {
    if (probe) {
      if ((await probe) === 401) return null;
    } else {
      const p = fetch(path, init);
      const mine = p.then((r) => r.status, () => 0);
      probe = mine;
      try {
        const r = await p;
        noteStatus(r.status);
        return r;
      } finally {
        if (probe === mine) probe = null;
      }
    }
  }
  const r = await fetch(path, init);
  noteStatus(r.status);
  return r;
}

// api('GET', '/api/v1/devices') -> the parsed JSON (null for 204).
// opts.token: try this token instead of the stored one (login);
// opts.signal: an AbortSignal.
export async function api(method, path, body, opts = {}) {
  const headers = { ...authHeader(opts.token), Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = opts.token ? await fetch(path, init) : await sendAuthed(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    conn.offline();
    throw new NetError('The hub is unreachable (network error); retrying.');
  }
  if (!res) {
    const err = new ApiError(401, 'unauthorized', 'the token is unknown or revoked');
    unauthorized(err);
    throw err;
  }
  conn.reachable();
  const text = await res.text();
  let json = null;
  if (text && (res.headers.get('Content-Type') || '').includes('json')) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) {
    const msg = (json && json.message) || `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, json && json.error, msg);
    err.retryAfter = Number(res.headers.get('Retry-After')) || 0;
    if (res.status === 401 && !opts.token) unauthorized(err);
    throw err;
  }
  return json;
}

export const enc = encodeURIComponent;
