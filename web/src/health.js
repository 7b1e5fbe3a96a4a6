// health.js - one word per device from what the hub knows (docs/dashboard.md):
//   critical  an active alert of severity critical
//   degraded  an active alert of a lower severity (major, minor, warning),
//             or a recent payload error (last_error within RECENT_ERROR_MS:
//             it sent telemetry the hub could not decode; invalid_payloads
//             counts them); an older one is history, shown on the device page
//   unknown   offline, with nothing of the above (no fresh data to judge by)
//   ok        online, no active alert, no payload error
export const HEALTH_WORD = { ok: 'OK', degraded: 'Degraded', critical: 'Critical', unknown: 'Unknown' };
export const SEVERITY_RANK = { critical: 4, major: 3, minor: 2, warning: 1 };
// A payload error makes a device Degraded for this long after it happened.
export const RECENT_ERROR_MS = 15 * 60 * 1000;

function recentError(dev, now) {
  return dev.last_error && dev.last_error_at && now - dev.last_error_at < RECENT_ERROR_MS;
}

export function health(dev, alerts, now = Date.now()) {
  const worst = alerts ? alerts.worst : null;
  if (worst === 'critical') {
    return { level: 'critical', why: `an active critical alert (${alerts.count} active)` };
  }
  if (worst) return { level: 'degraded', why: `${alerts.count} active alert(s), worst ${worst}` };
  if (recentError(dev, now)) {
    const min = Math.max(1, Math.round((now - dev.last_error_at) / 60000));
    return { level: 'degraded',
      why: `payload error ${min} min ago: ${dev.last_error} (${dev.invalid_payloads} invalid so far)` };
  }
  if (!dev.online) return { level: 'unknown', why: 'offline: no fresh data to judge by' };
  return { level: 'ok', why: 'online, no active alerts, no payload errors' };
}

// alerts list -> Map(device -> {count, worst})
export function activeByDevice(alerts) {
  const m = new Map();
  for (const a of alerts) {
    if (a.state !== 'active') continue;
    const e = m.get(a.device) || { count: 0, worst: null };
    e.count++;
    if (!e.worst || (SEVERITY_RANK[a.severity] || 0) > (SEVERITY_RANK[e.worst] || 0)) e.worst = a.severity;
    m.set(a.device, e);
  }
  return m;
}
