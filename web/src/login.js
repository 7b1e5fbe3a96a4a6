// login.js - the login page (#/login): a pasted API token is tried against
// the hub (GET /api/v1/devices?limit=1) before it is kept in localStorage.
import { api, setToken, ApiError, NetError } from './api.js';
import { h, clear } from './dom.js';
import { loggedIn, connState } from './conn.js';

export function loginPage(root, { done }) {
  const input = h('input', { type: 'password', testid: 'login-token', id: 'login-token', autocomplete: 'off',
    spellcheck: 'false', placeholder: 'mote_…', required: true });
  const error = h('p', { class: 'form-error', testid: 'login-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'login-submit' }, 'Log in');
  const form = h('form', { class: 'login', on: { submit: onSubmit } },
    h('h1', {}, 'Log in to mote'),
    h('p', { class: 'muted' }, connState() === 'expired'
      ? 'The hub rejected the token this browser had. Paste a valid API token.'
      : 'Paste an API token. Make one with:'),
    h('pre', { class: 'cmd' }, 'build/mote token create --data DATA --scope write'),
    h('label', { for: 'login-token' }, 'API token'), input, error, submit,
    h('p', { class: 'muted small' },
      'The token is kept in this browser (localStorage) until you log out, and sent only to this hub.'));
  clear(root).append(h('div', { class: 'login-wrap' }, form));
  input.focus();

  let retry = null;
  async function onSubmit(e) {
    e.preventDefault();
    clearTimeout(retry);
    const token = input.value.trim();
    error.hidden = true;
    if (!token) {
      error.textContent = 'Paste a token first.';
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      await api('GET', '/api/v1/devices?limit=1', undefined, { token });
      setToken(token);
      loggedIn();
      done();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) error.textContent = 'The hub rejected this token (unknown, revoked or mistyped).';
      else if (err instanceof ApiError && err.status === 403) error.textContent = 'This token may not read devices (scope too low).';
      else if (err instanceof ApiError && err.status === 429) {
        // The hub refuses this address for a while after failed tokens (a
        // valid token too): try again by itself when it says.
        const wait = Math.min(Math.max(err.retryAfter || 5, 1), 300);
        error.textContent = `The hub refuses this address for now after failed tokens; trying again in ${wait} s.`;
        retry = setTimeout(() => form.requestSubmit(), wait * 1000);
      }
      else if (err instanceof NetError) error.textContent = 'The hub is unreachable. Check that it runs and try again.';
      else error.textContent = `Login failed: ${err.message}`;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  }
  return () => clearTimeout(retry);
}
