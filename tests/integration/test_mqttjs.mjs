// test_mqttjs.mjs - the broker against MQTT.js (npm "mqtt"), MQTT 3.1.1 and 5.0.
//
// Each test starts its own broker and asserts exactly what arrives: payload
// bytes, QoS, retain and dup flags, properties, CONNACK fields. Run with node;
// MOTE_TEST_BROKER=mosquitto checks the tests against Debian's mosquitto.
import assert from 'node:assert/strict';
import { QUIET, run, sleep } from './peers_harness.mjs';

const V4 = { protocolVersion: 4 };
const V5 = { protocolVersion: 5 };
const VERSIONS = [['3.1.1', V4], ['5.0', V5]];

const view = (m) => [m.topic, m.payload.toString('hex'), m.packet.qos, m.packet.retain, m.packet.dup];

async function connectBoth(t) {
  const b = await t.broker();
  for (const [label, ver] of VERSIONS) {
    const p = await t.peer(b, { ...ver, clientId: `js-conn-${label}` });
    assert.equal(p.connack.sessionPresent, false, label);
    if (ver.protocolVersion === 5) assert.equal(p.connack.reasonCode, 0, label);
    else assert.equal(p.connack.returnCode, 0, label);
    await p.end();
    assert.equal(p.closed, true, label);
  }
  assert.ok(b.alive());
}

async function qosRoundtrip(t) {
  const b = await t.broker();
  for (const [label, ver] of VERSIONS) {
    const tag = label.replace('.', '');
    const sub = await t.peer(b, { ...ver, clientId: `js-q-sub-${tag}` });
    const granted = await sub.client.subscribeAsync(`jsq/${tag}`, { qos: 2 });
    assert.deepEqual(granted.map((g) => g.qos), [2]);
    const pub = await t.peer(b, { ...ver, clientId: `js-q-pub-${tag}` });
    for (const qos of [0, 1, 2]) {
      const payload = Buffer.from([qos, 0x00, 0xff, 0x41]);
      await pub.client.publishAsync(`jsq/${tag}`, payload, { qos });
      const [m] = await sub.expect(1);
      assert.deepEqual(view(m), [`jsq/${tag}`, payload.toString('hex'), qos, false, false], `${label} qos ${qos}`);
    }
    // Downgrade: a QoS 1 subscription receives a QoS 2 publish at QoS 1.
    const low = await t.peer(b, { ...ver, clientId: `js-q-low-${tag}` });
    await low.client.subscribeAsync(`jsq/${tag}`, { qos: 1 });
    await pub.client.publishAsync(`jsq/${tag}`, 'down', { qos: 2 });
    const [d] = await low.expect(1);
    assert.deepEqual(view(d), [`jsq/${tag}`, Buffer.from('down').toString('hex'), 1, false, false]);
    await sub.expect(1);
    await sub.expectNone(200);
  }
}

async function retained(t) {
  const b = await t.broker();
  for (const [label, ver] of VERSIONS) {
    const tag = label.replace('.', '');
    const pub = await t.peer(b, { ...ver, clientId: `js-r-pub-${tag}` });
    await pub.client.publishAsync(`jsr/${tag}`, 'old', { qos: 1, retain: true });
    await pub.client.publishAsync(`jsr/${tag}`, 'kept', { qos: 1, retain: true });
    const sub = await t.peer(b, { ...ver, clientId: `js-r-sub-${tag}` });
    await sub.client.subscribeAsync(`jsr/${tag}`, { qos: 1 });
    const [m] = await sub.expect(1);
    assert.deepEqual(view(m), [`jsr/${tag}`, Buffer.from('kept').toString('hex'), 1, true, false], label);
    // Live forwarding of a retained publish clears the flag (RAP 0 / 3.1.1).
    await pub.client.publishAsync(`jsr/${tag}`, 'live', { qos: 1, retain: true });
    const [l] = await sub.expect(1);
    assert.deepEqual(view(l), [`jsr/${tag}`, Buffer.from('live').toString('hex'), 1, false, false], label);
    // Empty retained payload deletes.
    await pub.client.publishAsync(`jsr/${tag}`, '', { qos: 1, retain: true });
    await sub.expect(1);
    const late = await t.peer(b, { ...ver, clientId: `js-r-late-${tag}` });
    await late.client.subscribeAsync(`jsr/${tag}`, { qos: 1 });
    await late.expectNone();
  }
}

async function will(t) {
  const b = await t.broker();
  const sub = await t.peer(b, { ...V5, clientId: 'js-w-sub' });
  await sub.client.subscribeAsync('jsw/#', { qos: 1 });
  for (const [label, ver] of VERSIONS) {
    const tag = label.replace('.', '');
    const w = {
      topic: `jsw/${tag}`, payload: Buffer.from(`gone-${tag}`), qos: 1, retain: false,
      ...(ver.protocolVersion === 5 ? { properties: { userProperties: { why: 'crash' }, contentType: 'text/plain' } } : {}),
    };
    const dev = await t.peer(b, { ...ver, clientId: `js-w-dev-${tag}`, will: w });
    dev.kill();
    const [m] = await sub.expect(1);
    assert.deepEqual(view(m), [`jsw/${tag}`, Buffer.from(`gone-${tag}`).toString('hex'), 1, false, false], label);
    if (ver.protocolVersion === 5) {
      assert.deepEqual({ ...m.packet.properties.userProperties }, { why: 'crash' });
      assert.equal(m.packet.properties.contentType, 'text/plain');
    }
    // A normal DISCONNECT suppresses the will.
    const polite = await t.peer(b, { ...ver, clientId: `js-w-ok-${tag}`, will: { ...w, topic: `jsw/${tag}/ok` } });
    await polite.end();
    await sub.expectNone();
  }
}

async function topicAliasFromBroker(t) {
  // The client allows 10 aliases; mote then replaces repeated topics by an alias.
  const b = await t.broker();
  const sub = await t.peer(b, { ...V5, clientId: 'js-ta-sub', properties: { topicAliasMaximum: 10 } });
  await sub.client.subscribeAsync('jsta/#', { qos: 1 });
  const pub = await t.peer(b, { ...V5, clientId: 'js-ta-pub' });
  const sent = ['jsta/a', 'jsta/a', 'jsta/a', 'jsta/b', 'jsta/b', 'jsta/a'];
  for (let i = 0; i < sent.length; i++) {
    await pub.client.publishAsync(sent[i], `m${i}`, { qos: 1 });
  }
  const got = await sub.expect(sent.length);
  assert.deepEqual(got.map((m) => [m.topic, m.payload.toString()]), sent.map((s, i) => [s, `m${i}`]));
  const wire = sub.raw.filter((p) => p.cmd === 'publish');
  assert.equal(wire.length, sent.length);
  const aliasOf = {};
  for (let i = 0; i < wire.length; i++) {
    const alias = wire[i].properties && wire[i].properties.topicAlias;
    assert.ok(Number.isInteger(alias) && alias >= 1 && alias <= 10, `packet ${i}: alias ${alias}`);
    if (!(sent[i] in aliasOf)) {
      assert.equal(wire[i].topic, sent[i], `packet ${i}: first use carries the topic`);
      aliasOf[sent[i]] = alias;
    } else {
      assert.equal(alias, aliasOf[sent[i]], `packet ${i}: same alias for the same topic`);
      assert.equal(wire[i].topic, '', `packet ${i}: repeated topic sent as alias only`);
    }
  }
  assert.notEqual(aliasOf['jsta/a'], aliasOf['jsta/b']);
  // A client that allows no aliases never gets one.
  const plain = await t.peer(b, { ...V5, clientId: 'js-ta-plain' });
  await plain.client.subscribeAsync('jsta/#', { qos: 1 });
  await pub.client.publishAsync('jsta/a', 'x', { qos: 1 });
  await pub.client.publishAsync('jsta/a', 'y', { qos: 1 });
  await plain.expect(2);
  for (const p of plain.raw.filter((q) => q.cmd === 'publish')) {
    assert.equal(p.topic, 'jsta/a');
    assert.equal(p.properties && p.properties.topicAlias, undefined);
  }
}

async function topicAliasToBroker(t) {
  // MQTT.js assigns aliases itself when autoAssignTopicAlias is on.
  const b = await t.broker();
  const sub = await t.peer(b, { ...V5, clientId: 'js-tab-sub' });
  await sub.client.subscribeAsync('jstab/#', { qos: 1 });
  const pub = await t.peer(b, { ...V5, clientId: 'js-tab-pub', autoAssignTopicAlias: true });
  assert.ok(pub.connack.properties.topicAliasMaximum >= 1);
  const sentPackets = [];
  pub.client.on('packetsend', (p) => { if (p.cmd === 'publish') sentPackets.push({ topic: p.topic, alias: p.properties && p.properties.topicAlias }); });
  for (let i = 0; i < 3; i++) await pub.client.publishAsync('jstab/x', `a${i}`, { qos: 1 });
  const got = await sub.expect(3);
  assert.deepEqual(got.map((m) => [m.topic, m.payload.toString()]), [['jstab/x', 'a0'], ['jstab/x', 'a1'], ['jstab/x', 'a2']]);
  assert.equal(sentPackets.filter((p) => p.topic === '' && p.alias >= 1).length, 2, JSON.stringify(sentPackets));
}

async function userProperties(t) {
  const b = await t.broker();
  const sub = await t.peer(b, { ...V5, clientId: 'js-up-sub' });
  await sub.client.subscribeAsync('jsup/t', { qos: 1 });
  const pub = await t.peer(b, { ...V5, clientId: 'js-up-pub' });
  const props = {
    userProperties: { a: '1', k: ['x', 'y', 'x'], empty: '', 'ü': '€' },
    contentType: 'application/cbor',
    responseTopic: 'jsup/reply',
    correlationData: Buffer.from([0, 1, 2, 0xff]),
    payloadFormatIndicator: false,
  };
  await pub.client.publishAsync('jsup/t', Buffer.from([0xa1, 0x01]), { qos: 1, properties: props });
  const [m] = await sub.expect(1);
  assert.deepEqual(view(m), ['jsup/t', 'a101', 1, false, false]);
  const p = m.packet.properties;
  // MQTT.js groups duplicate keys into an array in arrival order.
  assert.deepEqual(Object.entries(p.userProperties), Object.entries(props.userProperties));
  assert.equal(p.contentType, 'application/cbor');
  assert.equal(p.responseTopic, 'jsup/reply');
  assert.deepEqual(p.correlationData, props.correlationData);
}

async function sharedSubscription(t) {
  const b = await t.broker();
  const members = [];
  for (let i = 0; i < 3; i++) {
    const m = await t.peer(b, { ...V5, clientId: `js-sh-${i}` });
    const g = await m.client.subscribeAsync('$share/jsg/jssh/t', { qos: 1 });
    assert.deepEqual(g.map((x) => x.qos), [1]);
    members.push(m);
  }
  const other = await t.peer(b, { ...V5, clientId: 'js-sh-other' });
  await other.client.subscribeAsync('$share/jsother/jssh/+', { qos: 0 });
  const pub = await t.peer(b, { ...V5, clientId: 'js-sh-pub' });
  const want = Array.from({ length: 30 }, (_, i) => `s${String(i).padStart(2, '0')}`);
  for (const w of want) await pub.client.publishAsync('jssh/t', w, { qos: 1 });
  // The single member of the other group gets everything, at its QoS 0.
  const all = await other.expect(want.length);
  assert.deepEqual(all.map((m) => [m.payload.toString(), m.packet.qos]), want.map((w) => [w, 0]));
  await sleep(QUIET);
  const per = members.map((m) => m.takeAll());
  const union = per.flat().map((m) => m.payload.toString()).sort();
  assert.deepEqual(union, want, 'each message to exactly one group member');
  per.forEach((msgs, i) => {
    assert.ok(msgs.length >= 1, `member ${i} got no share`);
    for (const m of msgs) assert.deepEqual([m.topic, m.packet.qos], ['jssh/t', 1]);
  });
}

async function sessionResume(t) {
  const b = await t.broker();
  const pub = await t.peer(b, { ...V5, clientId: 'js-sr-pub' });
  for (const [label, ver] of VERSIONS) {
    const tag = label.replace('.', '');
    const extra = ver.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 60 } } : {};
    const id = `js-sr-${tag}`;
    const first = await t.peer(b, { ...ver, ...extra, clientId: id, clean: false });
    assert.equal(first.connack.sessionPresent, false, label);
    await first.client.subscribeAsync(`jssr/${tag}`, { qos: 1 });
    await first.end();
    for (let i = 0; i < 3; i++) await pub.client.publishAsync(`jssr/${tag}`, `q${i}`, { qos: 1 });
    const again = await t.peer(b, { ...ver, ...extra, clientId: id, clean: false });
    assert.equal(again.connack.sessionPresent, true, label);
    const got = await again.expect(3);
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.packet.qos]),
      [0, 1, 2].map((i) => [`jssr/${tag}`, `q${i}`, 1]), label);
    await again.expectNone(200);
    await again.end();
    const fresh = await t.peer(b, { ...ver, clientId: id, clean: true });
    assert.equal(fresh.connack.sessionPresent, false, label);
    await fresh.end();
  }
}

await run([
  ['connect and disconnect, 3.1.1 and 5.0', connectBoth],
  ['QoS 0/1/2 roundtrip and downgrade, both versions', qosRoundtrip],
  ['retained set, live flag, delete, both versions', retained],
  ['will on abnormal close, none on DISCONNECT, both versions', will],
  ['topic alias from broker to client', topicAliasFromBroker, { moteOnly: true }],
  ['topic alias from client to broker', topicAliasToBroker],
  ['user properties and request/response properties', userProperties],
  ['shared subscription', sharedSubscription],
  ['session resume with clean false, both versions', sessionResume],
]);
