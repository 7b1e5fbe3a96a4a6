// test_health.mjs - the dashboard's health word (web/src/health.js), run by
// node's own test runner: the same module the page bundles, no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { health, activeByDevice, RECENT_ERROR_MS } from '../../web/src/health.js';

const NOW = 1_800_000_000_000;
const online = { id: 'p1', online: true, last_error: null, last_error_at: null, invalid_payloads: 0 };

test('online, no alert, no error: ok', () => {
  assert.equal(health(online, null, NOW).level, 'ok');
});

test('offline with nothing else: unknown', () => {
  assert.equal(health({ ...online, online: false }, null, NOW).level, 'unknown');
});

test('alerts: critical beats everything, a lower severity degrades', () => {
  const alerts = activeByDevice([
    { device: 'p1', state: 'active', severity: 'minor' },
    { device: 'p1', state: 'active', severity: 'critical' },
    { device: 'p1', state: 'cleared', severity: 'critical' },
    { device: 'p2', state: 'active', severity: 'warning' },
    { device: 'p3', state: 'acknowledged', severity: 'critical' },
  ]);
  assert.deepEqual(alerts.get('p1'), { count: 2, worst: 'critical' });
  assert.equal(alerts.has('p3'), false);
  assert.equal(health(online, alerts.get('p1'), NOW).level, 'critical');
  assert.equal(health({ ...online, id: 'p2' }, alerts.get('p2'), NOW).level, 'degraded');
});

test('a recent payload error degrades, and says how long ago', () => {
  const dev = { ...online, last_error: 'bad json', last_error_at: NOW - 5 * 60 * 1000, invalid_payloads: 3 };
  const h = health(dev, null, NOW);
  assert.equal(h.level, 'degraded');
  assert.match(h.why, /5 min ago: bad json \(3 invalid so far\)/);
});

test('an old payload error is history: ok again, unknown when offline', () => {
  const dev = { ...online, last_error: 'bad json', last_error_at: NOW - RECENT_ERROR_MS, invalid_payloads: 3 };
  assert.equal(health(dev, null, NOW).level, 'ok');
  assert.equal(health({ ...dev, online: false }, null, NOW).level, 'unknown');
});

test('an error without a time (a hub from before last_error_at) counts as old', () => {
  const dev = { ...online, last_error: 'bad json', last_error_at: null, invalid_payloads: 1 };
  assert.equal(health(dev, null, NOW).level, 'ok');
});
