import { chromium } from 'playwright-core';
import { execSync } from 'node:child_process';
const base = process.argv[2], token = process.argv[3];
const H = `-H "Authorization: Bearer ${token}"`;
const sh = (c) => execSync(c, { encoding: 'utf8' });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const logs = [];
page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
const t = (id) => `[data-testid="${id}"]`;
const step = (s) => console.log('--', s);

step('bad token at login');
if (process.argv[4] === 'late') {
  await page.goto(`${base}/?token=${token}#/devices/pump-001`);
  await page.waitForSelector(t('twin-version'));
  await (async () => {
    step('offline');
    sh('kill $(cat /tmp/wd/hub.pid)');
    await page.waitForSelector(`${t('banner')}[data-state="offline"]`, { timeout: 20000 });
    await page.waitForTimeout(3000);
    sh('/tmp/wd/hub.sh');
    await page.waitForSelector(`${t('banner')}[data-state="ok"]`, { timeout: 30000, state: 'attached' });
    const a = await page.textContent(`${t('live-value')}[data-metric="temperature"]`);
    await page.waitForFunction((a) => document.querySelector('[data-testid="live-value"][data-metric="temperature"]').textContent !== a, a, { timeout: 20000 });
    console.log('recovered, live values flow');
    await page.screenshot({ path: '/tmp/wd/shots/recovered.png' });
  })();
  await browser.close(); process.exit(0);
}
await page.goto(`${base}/`);
await page.waitForSelector(t('login-token'));
await page.fill(t('login-token'), 'mote_nope');
await page.click(t('login-submit'));
await page.waitForSelector(`${t('login-error')}:visible`);
console.log('login-error:', await page.textContent(t('login-error')));
await page.screenshot({ path: '/tmp/wd/shots/login.png' });
await page.fill(t('login-token'), token);
await page.click(t('login-submit'));
await page.waitForSelector(`${t('fleet-table')} tr[data-device]`);

step('device page, invalid JSON');
await page.goto(`${base}/#/devices/pump-001`);
await page.waitForSelector(`${t('twin-version')}[data-version]`);
await page.fill(t('desired-editor'), '{"setpoint": 6,');
await page.click(t('desired-save'));
console.log('msg:', await page.getAttribute(t('desired-message'), 'data-kind'), await page.textContent(t('desired-message')));

step('save ok');
await page.fill(t('desired-editor'), '{"setpoint": 6.5}');
await page.click(t('desired-save'));
await page.waitForSelector(`${t('desired-message')}[data-kind="ok"]`);
console.log('msg:', await page.textContent(t('desired-message')));
await page.waitForFunction(() => document.querySelector('[data-testid="twin-reported"]').textContent.includes('6.5'), null, { timeout: 10000 });
console.log('reported has 6.5');

step('reported-only change is not a conflict');
await page.fill(t('desired-editor'), '{"setpoint": 6.5}');
sh(`mosquitto_pub -p 18830 -i x-rep -t '$twin/pump-001/update' -m '{"state":{"reported":{"extra":1}}}' -q 1`);
await page.waitForTimeout(1500);
await page.click(t('desired-save'));
await page.waitForSelector(`${t('desired-message')}[data-kind="ok"]`);
console.log('msg:', await page.textContent(t('desired-message')));
step('409');
const v = await page.getAttribute(t('twin-version'), 'data-version');
await page.fill(t('desired-editor'), '{"setpoint": 7}');
sh(`curl -s -X PATCH ${H} -H 'Content-Type: application/json' -d '{"desired":{"note":"${Date.now()}"}}' ${base}/api/v1/devices/pump-001/twin > /dev/null`);
await page.waitForTimeout(1500);
await page.click(t('desired-save'));
await page.waitForSelector(`${t('desired-message')}[data-kind="error"]`);
console.log('msg:', await page.textContent(t('desired-message')), 'version', v, '->', await page.getAttribute(t('twin-version'), 'data-version'));
await page.screenshot({ path: '/tmp/wd/shots/409.png', fullPage: true });

step('413');
await page.fill(t('desired-editor'), JSON.stringify({ big: 'x'.repeat(70000) }));
await page.click(t('desired-save'));
await page.waitForFunction(() => /too large/.test(document.querySelector('[data-testid="desired-message"]').textContent), null, { timeout: 5000 });
console.log('msg:', (await page.textContent(t('desired-message'))).slice(0, 200));
await page.fill(t('desired-editor'), JSON.stringify({ big: 'x'.repeat(20000) }));
await page.click(t('desired-save'));
await page.waitForTimeout(1000);
console.log('msg 20k:', (await page.textContent(t('desired-message'))).slice(0, 200));

step('ack alert on device page');
const row = await page.waitForSelector(`${t('device-alerts')} [data-alert][data-acknowledged="false"]`, { timeout: 5000 }).catch(() => null);
if (row) {
  const id = await row.getAttribute('data-alert');
  await page.click(`${t('device-alerts')} [data-alert="${id}"] ${t('alert-ack')}`);
  await page.waitForSelector(`${t('device-alerts')} [data-alert="${id}"][data-acknowledged="true"]`);
  console.log('acked', id);
}

step('offline');
sh('kill $(cat /tmp/wd/hub.pid)');
await page.waitForSelector(`${t('banner')}[data-state="offline"]`, { timeout: 20000 });
console.log('banner:', await page.textContent(t('banner')));
await page.screenshot({ path: '/tmp/wd/shots/offline.png' });
await page.waitForTimeout(3000);
sh('/tmp/wd/hub.sh');
await page.waitForSelector(`${t("banner")}[data-state="ok"]`, { timeout: 30000, state: "attached" });
console.log('banner back ok');
const a = await page.textContent(`${t('live-value')}[data-metric="temperature"]`);
await page.waitForFunction((a) => document.querySelector('[data-testid="live-value"][data-metric="temperature"]').textContent !== a, a, { timeout: 20000 });
console.log('live values flow again');

step('expired');
sh(`/work/wt-web/build/mote token revoke web --data /tmp/wd/data`);
await page.click(t('nav-alerts'));
await page.waitForSelector(`${t('banner')}[data-state="expired"]`, { timeout: 10000 });
await page.waitForSelector(t('login-token'));
console.log('expired banner + login; url', page.url());
await page.screenshot({ path: '/tmp/wd/shots/expired.png' });
console.log(logs.join('\n'));
await browser.close();
