// peers_harness.mjs - harness.py for the MQTT.js tests: broker process, peers, runner.
//
// Broker starts the same command line as tests/integration/harness.py (MOTE_BIN,
// or mosquitto when MOTE_TEST_BROKER=mosquitto) on a free loopback port with a
// fresh data folder, and stop() sends SIGTERM and requires exit status 0 within
// 10 s, so a sanitizer report fails the test. Peer wraps an MQTT.js client and
// collects its messages in arrival order so a test can take exactly the next N
// (or fail after a timeout) and assert that nothing more arrives in a window.
// run() executes async test functions one after the other and prints
// "ok - name" / "not ok - name: reason"; the process exits 1 on any failure.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

export const HOST = '127.0.0.1';
export const WAIT = 5000;   // ms: longest wait for something that must arrive
export const QUIET = 700;   // ms: window in which something must NOT arrive

export const brokerKind = () => process.env.MOTE_TEST_BROKER || 'mote';
export const isMote = () => brokerKind() === 'mote';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Whether a server could listen on port now.
function canListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

// A port nobody listens on, for a server a test starts: at random below the
// kernel's ephemeral range (as harness.py's free_port, which says why).
export async function freePort() {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || low;
  } catch { /* keep the default */ }
  const lo = low > 12000 ? 10000 : 1024, hi = low - 1;
  for (let i = 0; i < 200; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${lo}..${hi}`);
}

function moteBin() {
  if (process.env.MOTE_BIN) return path.resolve(process.env.MOTE_BIN);
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '..', '..', 'build', 'mote');
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.setTimeout(200);
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
    s.on('timeout', () => { s.destroy(); resolve(false); });
  });
}

export class Broker {
  constructor({ extraArgs = [], allowAnonymous = true, mosquittoConf = '' } = {}) {
    this.host = HOST;
    this.extraArgs = extraArgs;
    this.allowAnonymous = allowAnonymous;
    this.mosquittoConf = mosquittoConf;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mote-it-'));
    this.logPath = path.join(this.dir, 'broker.log');
    this.proc = null;
    this.exit = null;
  }

  command() {
    if (brokerKind() === 'mosquitto') {
      const conf = path.join(this.dir, 'mosquitto.conf');
      fs.writeFileSync(conf, `listener ${this.port} ${HOST}\n` +
        `allow_anonymous ${this.allowAnonymous ? 'true' : 'false'}\n` +
        'sys_interval 1\n' + this.mosquittoConf);
      return ['/usr/sbin/mosquitto', '-c', conf];
    }
    const cmd = [moteBin(), 'hub', '--mqtt', `${HOST}:${this.port}`,
      '--data', path.join(this.dir, 'data'), '--log-level', 'debug'];
    if (this.allowAnonymous) cmd.push('--allow-anonymous');
    return cmd.concat(this.extraArgs);
  }

  async start() {
    this.port = await freePort();
    const [bin, ...args] = this.command();
    const log = fs.openSync(this.logPath, 'w');
    this.proc = spawn(bin, args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
      this.proc.on('error', (err) => { this.exit = { code: null, signal: null, err }; resolve(this.exit); });
    });
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline) {
      if (this.exit) break;
      if (await canConnect(this.port)) return this;
      await sleep(20);
    }
    await this.stop(false);
    throw new Error('broker did not start listening:\n' + this.log());
  }

  alive() { return this.proc !== null && this.exit === null; }

  log() {
    try { return fs.readFileSync(this.logPath, 'utf8'); } catch { return ''; }
  }

  async stop(check = true) {
    if (!this.proc) return;
    if (!this.exit) {
      this.proc.kill('SIGTERM');
      const timer = sleep(10000).then(() => 'timeout');
      if (await Promise.race([this.exited, timer]) === 'timeout') {
        this.proc.kill('SIGKILL');
        await this.exited;
        this.proc = null;
        if (check) throw new Error('broker did not exit within 10 s of SIGTERM:\n' + this.log());
        return;
      }
    }
    const { code, signal } = this.exit;
    this.proc = null;
    if (check && code !== 0) {
      throw new Error(`broker exited with status ${code} signal ${signal}:\n${this.log()}`);
    }
  }

  cleanup() { fs.rmSync(this.dir, { recursive: true, force: true }); }
}

// One MQTT.js connection with an ordered message inbox.
export class Peer {
  constructor(client, connack) {
    this.client = client;
    this.connack = connack;
    this.msgs = [];        // { topic, payload, packet }
    this.raw = [];         // every packet received, before MQTT.js handles it
    this.taken = 0;
    this.waiters = [];
    this.closed = false;
    client.on('message', (topic, payload, packet) => {
      this.msgs.push({ topic, payload, packet });
      this.wake();
    });
    client.on('packetreceive', (packet) => { this.raw.push(packet); this.wake(); });
    client.on('close', () => { this.closed = true; this.wake(); });
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  async waitFor(pred, ms) {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return true;
  }

  // The next n messages, or an Error naming what did arrive.
  async expect(n = 1, ms = WAIT) {
    const ok = await this.waitFor(() => this.msgs.length - this.taken >= n, ms);
    const got = this.msgs.slice(this.taken, this.taken + n);
    if (!ok) {
      throw new Error(`${this.client.options.clientId}: expected ${n} message(s) in ${ms} ms, ` +
        `got ${got.length}: ${JSON.stringify(got.map((m) => [m.topic, m.payload.toString()]))}`);
    }
    this.taken += n;
    return got;
  }

  async expectNone(ms = QUIET) {
    await this.waitFor(() => this.msgs.length > this.taken, ms);
    const extra = this.msgs.slice(this.taken);
    if (extra.length) {
      throw new Error(`${this.client.options.clientId}: expected no message, got ` +
        JSON.stringify(extra.map((m) => [m.topic, m.payload.toString()])));
    }
  }

  // Everything that arrived so far and was not taken.
  takeAll() {
    const got = this.msgs.slice(this.taken);
    this.taken = this.msgs.length;
    return got;
  }

  async end() {
    if (!this.closed) await this.client.endAsync();
  }

  // Close the TCP connection with no DISCONNECT, as a crashed device would.
  kill() {
    this.client.options.reconnectPeriod = 0;
    this.client.stream.destroy();
  }
}

// A connected Peer; rejects on CONNACK failure or after WAIT ms.
export function connect(broker, opts = {}) {
  const client = mqtt.connect({
    host: broker.host,
    port: broker.port,
    protocol: 'mqtt',
    reconnectPeriod: 0,
    connectTimeout: WAIT,
    protocolVersion: 5,
    ...opts,
  });
  return new Promise((resolve, reject) => {
    const fail = (err) => { client.end(true); reject(err); };
    const timer = setTimeout(() => fail(new Error('no CONNACK within ' + WAIT + ' ms')), WAIT);
    client.once('connect', (connack) => {
      clearTimeout(timer);
      client.removeListener('error', fail);
      client.on('error', () => {});   // errors surface through assertions instead
      resolve(new Peer(client, connack));
    });
    client.once('error', (err) => { clearTimeout(timer); fail(err); });
  });
}

// Runs [name, async fn(ctx)] pairs in order; ctx.broker() and ctx.peer()
// register cleanups that run after each test (peers first, then brokers).
export async function run(tests) {
  let failed = 0;
  for (const [name, fn, flags = {}] of tests) {
    if (flags.moteOnly && !isMote()) {
      console.log(`ok - ${name} # SKIP checks mote-specific behaviour`);
      continue;
    }
    const brokers = [];
    const peers = [];
    const ctx = {
      broker: async (o) => { const b = new Broker(o); brokers.push(b); return b.start(); },
      peer: async (b, o) => { const p = await connect(b, o); peers.push(p); return p; },
    };
    let error = null;
    const started = Date.now();
    try {
      await Promise.race([fn(ctx), sleep(60000).then(() => { throw new Error('test took over 60 s'); })]);
    } catch (e) {
      error = e;
    }
    for (const p of peers) {
      try { p.client.end(true); } catch { /* already closed */ }
    }
    for (const b of brokers.reverse()) {
      try {
        await b.stop(error === null);
      } catch (e) {
        error = error || e;
      }
      b.cleanup();
    }
    const secs = ((Date.now() - started) / 1000).toFixed(2);
    if (error) {
      failed++;
      console.log(`not ok - ${name}: ${error.stack || error}`);
    } else {
      console.log(`ok - ${name} (${secs} s)`);
    }
  }
  console.log(failed ? `${failed} test(s) failed` : 'all tests passed');
  process.exit(failed ? 1 : 0);
}
