#!/usr/bin/python3
"""bench/scenarios.py - run the `make bench` scenarios against mosquitto, NATS
and mote and append one JSON line per (scenario, broker, round) to a raw file.

Every run gets a freshly started broker on a free loopback port, so one
scenario's leftovers (queued messages, heap growth) never bias the next. Within
a round the broker order rotates, so slow drift of the machine (thermal, page
cache, other load) is spread over all brokers instead of hitting one.

Standard library only; run with /usr/bin/python3. Environment knobs:
REPEAT (rounds, default 3), DURATION (seconds of a throughput run, default 10),
LAT_DURATION (latency runs, default 5), CONN_TOTAL (idle connections, default
19000), CONN_HOLD (seconds they are held, default 5),
CONN_RATE (connects/s per bench process, default 1000), BROKERS (comma list,
default mosquitto,nats,mote,mote-1t; mote-default is also known), SCENARIOS
(comma list of a..i, default all). `mote` is the hub as shipped (one event
loop per CPU); `mote-1t` the same with --threads 1.

Scenario i (telemetry ingest, issue 6) has its own brokers: I_BROKERS (default
mosquitto,mote-telemetry), I_PUBS devices (default 20) publishing SenML packs
of I_PACK points (default 50) for I_DURATION seconds (default 20): variant max
(unpaced) and one paced variant per rate in I_TARGETS (points/s, default
500000,1000000). mote-telemetry keeps its data under PERSIST_DIR (a disk).

Scenario h (persistent QoS 1) has its own brokers: H_BROKERS (comma list,
default mosquitto-persist,mote-always,mote-batch,mote-none), with their data
on a real disk under PERSIST_DIR (default /var/tmp; refused if it is tmpfs),
H_PUBS publishers (default 128, one persistent subscriber each) and
FSYNC_BATCH_MS (mote --fsync-batch-ms, default 10).

Scenario g (mutual TLS) has its own brokers too: G_BROKERS (default
mosquitto-tls,mote-tls), both requiring a client certificate from a CA made
for the run with `mote pki`. Variant "handshakes": G_CONNS connections
(default 2000), at most G_PARALLEL (default 64) in setup at once, each a full
handshake (no resumption) + CONNECT/CONNACK; the rate is connections
completed per second. Variant "qos0-tls": scenario a's load over TLS.
"""
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOTE = os.environ.get("MOTE", os.path.join(ROOT, "build-release", "mote"))
FD_WANT = 20000

REPEAT = int(os.environ.get("REPEAT", "3"))
DURATION = int(os.environ.get("DURATION", "10"))
LAT_DURATION = int(os.environ.get("LAT_DURATION", "5"))
CONN_TOTAL = int(os.environ.get("CONN_TOTAL", "19000"))
CONN_HOLD = int(os.environ.get("CONN_HOLD", "5"))
# Per bench process. Unpaced (0) connects overflow the listen backlog: SYN
# retransmits then dominate the "rate" and NATS timed every client out.
CONN_RATE = int(os.environ.get("CONN_RATE", "1000"))
BROKERS = os.environ.get("BROKERS", "mosquitto,nats,mote,mote-1t").split(",")
SCENARIOS = os.environ.get("SCENARIOS", "a,b,c,d,e,f,g,h,i").split(",")
H_BROKERS = os.environ.get("H_BROKERS",
                           "mosquitto-persist,mote-always,mote-batch,mote-none").split(",")
H_PUBS = int(os.environ.get("H_PUBS", "128"))
PERSIST_DIR = os.environ.get("PERSIST_DIR", "/var/tmp")
FSYNC_BATCH_MS = int(os.environ.get("FSYNC_BATCH_MS", "10"))
G_BROKERS = os.environ.get("G_BROKERS", "mosquitto-tls,mote-tls").split(",")
# i (telemetry ingest, issue 6): I_PUBS devices publish SenML packs of I_PACK
# points to dev/{i}/telemetry for DURATION seconds; mote-telemetry stores them
# (data under PERSIST_DIR, on a disk), mosquitto routes them to one subscriber.
I_BROKERS = os.environ.get("I_BROKERS", "mosquitto,mote-telemetry").split(",")
I_PUBS = int(os.environ.get("I_PUBS", "20"))
I_PACK = int(os.environ.get("I_PACK", "50"))
# variant "max": publishers as fast as they can (QoS 0; what the hub cannot take
# is dropped and counted); variants "paced-N": N points/s offered in total, for
# each N of I_TARGETS
I_TARGETS = [int(x) for x in os.environ.get("I_TARGETS", "500000,1000000").split(",")]
# long enough that device 0 has a full day of 1 Hz points for the query when paced
I_DURATION = int(os.environ.get("I_DURATION", "20"))
G_CONNS = int(os.environ.get("G_CONNS", "2000"))
G_PARALLEL = int(os.environ.get("G_PARALLEL", "64"))
# The CA, hub certificate and bench client certificate of scenario g (made once).
PKI = {}
# mosquitto's own default, written out so the report can state it: the whole
# in-memory state is saved every this many seconds (and at a clean exit).
MOSQ_AUTOSAVE_S = 1800
# h: sessions kept this long after a disconnect (3.1.1 sends clean session 0).
H_SESSION_EXPIRY = 3600

# Raised limits given to every broker: mosquitto's 0 means "no maximum";
# mote caps Receive Maximum / inflight at the MQTT limit 65535 and takes an
# explicit queue length, so the queue limit is set the same (1,000,000) on both.
QUEUE_MAX = 1000000


def tls_pki():
    """A `mote pki` folder with the hub's certificate and one client
    certificate (`bench`) shared by every bench connection."""
    if not PKI:
        d = os.path.join(tempfile.mkdtemp(prefix="mote-bench-pki-"), "pki")
        for args in (["init"], ["issue", "bench"]):
            subprocess.run([MOTE, "pki", "--dir", d] + args, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        PKI.update(dir=d, ca=os.path.join(d, "ca.pem"), cert=os.path.join(d, "hub.pem"),
                   key=os.path.join(d, "hub.key"),
                   client_cert=os.path.join(d, "devices", "bench.pem"),
                   client_key=os.path.join(d, "devices", "bench.key"))
    return PKI


def tls_client_args():
    p = tls_pki()
    return ["--cafile", p["ca"], "--cert", p["client_cert"], "--key", p["client_key"],
            "-h", "127.0.0.1"]


def free_port():
    """A port the kernel just handed out on 127.0.0.1 (closed again)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_fd_limit():
    """preexec_fn: the equivalent of `ulimit -n 20000` in the child's shell."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FD_WANT if hard == resource.RLIM_INFINITY else min(FD_WANT, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def wait_port(port, proc, seconds=15.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


PERSISTENT = ("mosquitto-persist", "mote-always", "mote-batch", "mote-none")
MEMORY_FS = ("tmpfs", "ramfs", "devtmpfs", "overlay-tmpfs")


def mount_of(path):
    """(mount point, fs type, device) of the file system holding path."""
    path = os.path.realpath(path)
    best = ("/", "?", "?")
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            mnt = mnt.replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
                best = (mnt, fstype, dev)
    return best


def persist_base():
    """PERSIST_DIR, checked: fsync on tmpfs costs nothing, which would make
    scenario h measure nothing."""
    if not os.path.isdir(PERSIST_DIR):
        raise RuntimeError("PERSIST_DIR=%s is not a directory" % PERSIST_DIR)
    mnt, fstype, dev = mount_of(PERSIST_DIR)
    if fstype in MEMORY_FS:
        raise RuntimeError("PERSIST_DIR=%s is on %s (%s): fsync would cost nothing there; "
                           "point PERSIST_DIR at a directory on a disk" % (PERSIST_DIR, fstype, mnt))
    return PERSIST_DIR, "%s on %s (%s)" % (fstype, mnt, dev)


def read_sysctl(name):
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Broker:
    """One broker process with its own temporary folder: on tmpfs when there
    is one, so nothing a broker writes costs disk I/O; the persistent ones of
    scenario h instead write to a real disk under PERSIST_DIR."""

    def __init__(self, name):
        self.name = name
        self.http_port = None
        if name in PERSISTENT or name == "mote-telemetry":
            base, self.fs = persist_base()
        else:
            base = "/dev/shm" if os.path.isdir("/dev/shm") else None
            self.fs = None
        self.tmp = tempfile.mkdtemp(prefix="mote-bench-%s-" % name, dir=base)
        self.port = free_port()
        self.log = open(os.path.join(self.tmp, "broker.log"), "wb")
        self.proc = None

    def command(self):
        if self.name in ("mosquitto", "mosquitto-persist", "mosquitto-tls"):
            conf = os.path.join(self.tmp, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write("listener %d 127.0.0.1\n" % self.port)
                if self.name == "mosquitto-tls":
                    p = tls_pki()
                    f.write("cafile %s\ncertfile %s\nkeyfile %s\n" % (p["ca"], p["cert"], p["key"]))
                    f.write("require_certificate true\n")
                    # Started as root it would drop to user mosquitto, which
                    # cannot read the 0600 keys in the 0700 pki folder.
                    f.write("user root\n")
                f.write("allow_anonymous true\n")
                f.write("set_tcp_nodelay true\n")
                if self.name == "mosquitto-persist":
                    f.write("persistence true\n")
                    f.write("persistence_location %s/\n" % os.path.join(self.tmp, "db"))
                    f.write("autosave_interval %d\n" % MOSQ_AUTOSAVE_S)
                    os.makedirs(os.path.join(self.tmp, "db"), exist_ok=True)
                else:
                    f.write("persistence false\n")
                f.write("max_inflight_messages 0\n")
                f.write("max_queued_messages %d\n" % QUEUE_MAX)
                f.write("max_queued_bytes 0\n")
                f.write("log_type error\n")
                f.write("log_dest stderr\n")
            return ["/usr/sbin/mosquitto", "-c", conf]
        if self.name == "nats":
            conf = os.path.join(self.tmp, "nats.conf")
            with open(conf, "w") as f:
                f.write("server_name: mote_bench\n")
                f.write("listen: 127.0.0.1:-1\n")
                f.write("max_payload: 1048576\n")
                f.write('jetstream { store_dir: "%s" }\n' % os.path.join(self.tmp, "js"))
                # max_ack_pending: QoS 1 messages in flight per subscription
                # (default 1024), raised to its maximum like the others.
                f.write("mqtt { host: 127.0.0.1, port: %d, max_ack_pending: 65535 }\n"
                        % self.port)
            return ["/usr/sbin/nats-server", "-c", conf]
        listen = ["--mqtt", "127.0.0.1:%d" % self.port]
        if self.name == "mote-tls":
            p = tls_pki()
            # Every bench connection presents the one `bench` device
            # certificate, so its identity cannot equal each client id.
            listen = ["--mqtt", "off", "--mqtts", "127.0.0.1:%d" % self.port, "--tls-ca", p["ca"],
                      "--tls-cert", p["cert"], "--tls-key", p["key"], "--identity-match", "off"]
        hub = [MOTE, "hub"] + listen + ["--allow-anonymous",
               "--data", os.path.join(self.tmp, "data"), "--sys-interval", "0",
               "--log-level", "warn"]
        if self.name == "mote-telemetry":
            # the hub as shipped (default limits, one loop per CPU) with its API
            if self.http_port is None:
                self.http_port = free_port()
            return hub + ["--http", "127.0.0.1:%d" % self.http_port]
        if self.name == "mote-1t":
            # mote with one event loop instead of one per CPU, to show what
            # threading does on this machine.
            hub = hub + ["--threads", "1"]
        if self.name == "mote-default":
            # Optional extra broker (BROKERS=...,mote-default): mote with its
            # default limits, to show what the raised ones cost.
            return hub
        hub = hub + ["--max-queued", str(QUEUE_MAX), "--max-inflight", "65535",
                     "--receive-max", "65535", "--max-client-outbuf", str(64 * 1024 * 1024)]
        if self.name in PERSISTENT:
            # The byte bound on a session's queue is raised with the count
            # bound, as mosquitto's max_queued_bytes 0 is.
            hub = hub + ["--persistence=on", "--fsync", self.name.split("-", 1)[1],
                         "--fsync-batch-ms", str(FSYNC_BATCH_MS),
                         "--max-queued-bytes", str(1 << 30)]
        return hub

    def io(self):
        """Bytes this broker caused to be written to storage and its write
        syscalls so far (/proc/PID/io), or None."""
        try:
            with open("/proc/%d/io" % self.proc.pid) as f:
                kv = dict(line.split(": ") for line in f.read().splitlines())
            return {"write_bytes": int(kv["write_bytes"]), "syscw": int(kv["syscw"])}
        except (OSError, KeyError, ValueError):
            return None

    def start(self):
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=self.log,
                                     preexec_fn=raise_fd_limit)
        if not wait_port(self.port, self.proc):
            self.stop()
            raise RuntimeError("%s did not start; log in %s" % (self.name, self.tmp))

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        try:
            return len(os.listdir("/proc/%d/fd" % self.proc.pid))
        except OSError:
            return 0

    def stop_process(self):
        """Ends the broker (SIGTERM: a clean shutdown) but keeps its folder."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def bench_cmd(port, args):
    return [MOTE, "bench"] + args + ["-p", str(port), "--json", "--quiet"]


def run_bench(port, args, timeout):
    cmd = bench_cmd(port, args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, preexec_fn=raise_fd_limit)
    out = p.stdout.decode(errors="replace").strip().splitlines()
    if not out:
        return {"error": "exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-300:])}
    try:
        res = json.loads(out[-1])
    except ValueError:
        return {"error": "unparsable output: %s" % out[-1][:300]}
    res["exit"] = p.returncode
    return res


def throughput_variants():
    d = str(DURATION)
    pl = ["-s", "100", "--threads", "2"]
    return {
        "a": [("qos0", 0, ["pubsub", "--pubs", "10", "--subs", "10", "-q", "0", "-d", d] + pl, 1)],
        "b": [("qos1", 1, ["pubsub", "--pubs", "10", "--subs", "10", "-q", "1", "-d", d] + pl, 1)],
        "c": [("qos0", 0, ["pubsub", "--fan-out", "--pubs", "1", "--subs", "1000", "-q", "0",
                           "-d", d, "--conn-rate", "2000"] + pl, 1000)],
        "d": [("qos0", 0, ["pubsub", "--fan-in", "--pubs", "1000", "--subs", "1", "-q", "0",
                           "-d", d, "--conn-rate", "2000"] + pl, 1)],
        # Persistent QoS 1: H_PUBS publishers, each 1:1 to its own subscriber
        # whose session outlives the connection, so a persisting broker must
        # store every message before it acknowledges it (mote) or at least
        # keep it as session state (mosquitto: written at autosave/exit).
        "h": [("qos1-persist", 1, ["pubsub", "--pubs", str(H_PUBS), "--subs", str(H_PUBS),
                                   "-q", "1", "-d", d, "--session-expiry", str(H_SESSION_EXPIRY),
                                   "--conn-rate", "2000"] + pl, 1)],
        # Mutual TLS: handshake rate (conn mode, a bounded number in setup at
        # once) and scenario a's QoS 0 load over TLS.
        "g": [("handshakes", 0, ["conn", "-c", str(G_CONNS), "--conn-parallel", str(G_PARALLEL),
                                 "-d", "1", "--threads", "2"] + tls_client_args(), 1),
              # The device ACL lets the `bench` identity read and write only
              # $twin/bench/... (mosquitto runs the same topics).
              ("qos0-tls", 0, ["pubsub", "--pubs", "10", "--subs", "10", "-q", "0", "-d", d,
                               "-t", "$twin/bench/%i"] + pl + tls_client_args(), 1)]
        if "g" in SCENARIOS else [],
        "e": [("%dk-qos%d" % (total // 1000, q), q,
               ["pubsub", "--pubs", "10", "--subs", "10", "-q", str(q), "-s", "100",
                "-d", str(LAT_DURATION), "--rate", str(total // 10), "--threads", "2"], 1)
              for total in (10000, 50000) for q in (0, 1)],
    }


_source_seq = [0]


def next_source_ip():
    """A loopback address no earlier idle-connection run of this process used:
    ~9,500 closed connections sit in TIME_WAIT for 60 s and keep their local
    ports, so reusing an address within a minute ran out of ephemeral ports
    (the next run's connects failed). 127.0.1.1 .. 127.0.250.250."""
    n = _source_seq[0]
    _source_seq[0] += 1
    return "127.0.%d.%d" % (1 + n // 250 % 250, 1 + n % 250)


def conn_scenario(broker, emit):
    """f: idle connections spread over bench processes of < 10,000 each, each
    bound to its own source address so no ephemeral port range runs dry."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CONN_TOTAL + 200:
        emit({"skipped": "hard fd limit %d < %d connections + 200; raise it "
              "(ulimit -Hn) to run the idle-connection scenario" % (hard, CONN_TOTAL)})
        return
    nproc = (CONN_TOTAL + 9499) // 9500
    per = [CONN_TOTAL // nproc + (1 if i < CONN_TOTAL % nproc else 0) for i in range(nproc)]
    time.sleep(0.5)
    rss0 = broker.rss_kb()
    fds0 = broker.fds()
    procs = []
    for i, n in enumerate(per):
        args = ["conn", "-c", str(n), "-d", str(CONN_HOLD), "--threads", "1",
                "--conn-rate", str(CONN_RATE),
                "--source-ip", next_source_ip(), "--id-prefix", "idle%d" % i]
        procs.append((args, subprocess.Popen(bench_cmd(broker.port, args), stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL,
                                             preexec_fn=raise_fd_limit)))
    best_fds, rss_at_best = 0, rss0
    while any(p.poll() is None for _, p in procs):
        f = broker.fds()
        if f >= best_fds and broker.proc.poll() is None:
            best_fds, rss_at_best = f, broker.rss_kb()
        time.sleep(0.25)
    results = []
    for args, p in procs:
        out = p.stdout.read().decode(errors="replace").strip().splitlines()
        try:
            results.append(json.loads(out[-1]))
        except (ValueError, IndexError):
            results.append({"error": "no report, exit %s" % p.returncode})
    connected = sum(r.get("connections", {}).get("connected", 0) for r in results)
    held = sum(r.get("connections", {}).get("held", 0) for r in results)
    secs = max([r.get("connections", {}).get("seconds", 0) for r in results] or [0])
    open_conns = best_fds - fds0
    emit({"mode": "conn", "processes": results, "connected": connected, "held": held,
          "attempted": CONN_TOTAL, "connect_seconds": secs,
          "connect_rate": connected / secs if secs > 0 else 0,
          "rss_before_kb": rss0, "rss_after_kb": rss_at_best, "broker_conns_seen": open_conns,
          "bytes_per_conn": (rss_at_best - rss0) * 1024.0 / open_conns
          if open_conns > 0 and held > 0 else None,
          "commands": [" ".join(["mote", "bench"] + a + ["-p", "PORT", "--json"]) for a, _ in procs]})


def http_get(port, path, token, timeout=30, method="GET", body=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Authorization": "Bearer " + token} if token else {}
        if body is not None:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def prom(text):
    """Prometheus text -> {name: value} (unlabelled samples only)."""
    out = {}
    for line in text.decode(errors="replace").splitlines():
        if line and not line.startswith("#"):
            parts = line.split()
            if len(parts) >= 2 and "{" not in parts[0]:
                try:
                    out[parts[0]] = float(parts[1])
                except ValueError:
                    pass
    return out


def telemetry_scenario(broker, emit, variant):
    """i: I_PUBS publishers send SenML packs of I_PACK points. mote: points
    durably stored per second (the store's flushed counter from /metrics),
    then one day of one metric at 1 Hz fetched over HTTP, and bytes per point
    on disk. mosquitto: the same messages routed to one subscriber (it stores
    nothing), as the peer ratio."""
    d = str(I_DURATION)
    target = int(variant.split("-")[1]) if variant.startswith("paced-") else 0
    rate = target / float(I_PACK * I_PUBS)
    common = ["--pubs", str(I_PUBS), "--senml", str(I_PACK), "-t", "dev/%i/telemetry", "-q", "0",
              "-d", d, "--threads", "2"] + (["--rate", "%g" % rate] if rate > 0 else [])
    emit({"offered_points_per_s": target or None})
    if broker.name != "mote-telemetry" and target:
        emit({"skipped": "the paced variant is for mote only"})
        return
    if broker.name != "mote-telemetry":
        args = ["pubsub", "--fan-in", "--subs", "1"] + common
        emit({"command": " ".join(["mote", "bench"] + args + ["-p", "PORT", "--json"])})
        res = run_bench(broker.port, args, timeout=I_DURATION + 120)
        emit({"result": res, "broker_alive": broker.proc.poll() is None})
        if res.get("received_per_s"):
            emit({"points_per_s": res["received_per_s"] * I_PACK,
                  "points_sent": res.get("sent", 0) * I_PACK})
        return
    data = os.path.join(broker.tmp, "data")
    tok = subprocess.run([MOTE, "token", "create", "--data", data, "--scope", "admin"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    token = tok.stdout.decode().strip().splitlines()[-1] if tok.returncode == 0 and tok.stdout else ""

    def metrics():
        st, body = http_get(broker.http_port, "/metrics", token)
        return prom(body) if st == 200 else {}

    # the hub stores telemetry of registered devices only: devices "0".."I_PUBS-1"
    # (the topic index of each publisher) are created over the API first
    for i in range(I_PUBS):
        st, body = http_get(broker.http_port, "/api/v1/devices", token, method="POST",
                            body=json.dumps({"id": str(i)}))
        if st not in (200, 201, 409):
            emit({"error": "POST /api/v1/devices %d: %s" % (st, body[:200])})
            return
    m0 = metrics()
    if "mote_store_points_flushed_total" not in m0:
        emit({"error": "no mote_store_points_flushed_total in /metrics (status or token problem)"})
        return
    args = ["pub"] + common
    emit({"command": " ".join(["mote", "bench"] + args + ["-p", "PORT", "--json"]),
          "broker_command": " ".join(os.path.basename(a) if a == MOTE else a
                                     for a in broker.command()).replace(broker.tmp, "TMP")
          .replace(":%d" % broker.port, ":PORT").replace(":%d" % broker.http_port, ":HTTP")})
    p = subprocess.Popen(bench_cmd(broker.port, args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=raise_fd_limit)
    t0 = time.time()
    samples = []
    while p.poll() is None:
        m = metrics()
        samples.append((time.time() - t0, m.get("mote_store_points_flushed_total", 0),
                        m.get("mote_telemetry_points_total", 0)))
        time.sleep(0.5)
    t_pub_end = time.time() - t0
    out = p.stdout.read().decode(errors="replace").strip().splitlines()
    try:
        res = json.loads(out[-1])
    except (ValueError, IndexError):
        res = {"error": "no bench report: %s" % p.stderr.read().decode(errors="replace")[-300:]}
    # drain: until the pipeline queue is empty, every decoded point is durable
    # and nothing is pending
    deadline = time.time() + 120
    m = metrics()
    while time.time() < deadline:
        m = metrics()
        samples.append((time.time() - t0, m.get("mote_store_points_flushed_total", 0),
                        m.get("mote_telemetry_points_total", 0)))
        if (m.get("mote_pipeline_queue_items", 1) == 0 and m.get("mote_store_points_pending", 1) == 0
                and m.get("mote_store_points_flushed_total", 0) >= m.get("mote_telemetry_points_total", 0)):
            break
        time.sleep(0.2)
    t_done = time.time() - t0
    flushed = m.get("mote_store_points_flushed_total", 0) - m0.get("mote_store_points_flushed_total", 0)
    decoded = m.get("mote_telemetry_points_total", 0) - m0.get("mote_telemetry_points_total", 0)
    sent_points = res.get("sent", 0) * I_PACK
    # one day of m0 of device 0 (1 Hz device time): the last 24 h it has
    st, body = http_get(broker.http_port, "/api/v1/devices/0/telemetry/latest", token)
    latest = None
    try:
        for item in json.loads(body).get("metrics", json.loads(body).get("latest", [])):
            if item.get("metric") == "m0":
                latest = int(item.get("ts") or item.get("time") or item.get("ts_ms"))
    except (ValueError, AttributeError, TypeError):
        pass
    qtimes, qpoints, qstatus = [], None, st
    if latest:
        path = ("/api/v1/devices/0/telemetry?metric=m0&from=%d&to=%d&limit=100000" %
                (latest - 86400000 + 1, latest + 1))
        for _ in range(5):
            a = time.time()
            qstatus, qbody = http_get(broker.http_port, path, token)
            qtimes.append((time.time() - a) * 1000.0)
            if qstatus == 200:
                qpoints = len(json.loads(qbody).get("points", []))
    bytes_live = m.get("mote_store_bytes", 0)
    broker.stop_process()
    db = os.path.join(data, "telemetry.db")
    bytes_closed = sum(os.path.getsize(f) for f in (db, db + "-wal") if os.path.exists(f))
    dropped = m.get("mote_pipeline_dropped_total", 0) - m0.get("mote_pipeline_dropped_total", 0)
    # sustained: the slope of the durable counter while publishing, leaving out
    # the first 2 s (connecting, the first flush) and the last 0.5 s
    win = [(t, f) for t, f, _ in samples if 2.0 <= t <= t_pub_end - 0.5]
    slope = (win[-1][1] - win[0][1]) / (win[-1][0] - win[0][0]) if len(win) >= 2 and \
        win[-1][0] > win[0][0] else None
    emit({"result": res, "broker_alive": True, "samples": samples, "publish_s": t_pub_end,
          "messages_dropped": dropped,
          "drain_done_s": t_done, "points_sent": sent_points, "points_decoded": decoded,
          "points_flushed": flushed,
          "points_per_s": flushed / t_done if t_done > 0 else 0,
          "sustained_points_per_s": slope, "durable_lag_s": t_done - t_pub_end,
          "query_ms": qtimes, "query_points": qpoints, "query_status": qstatus,
          "bytes_live": bytes_live, "bytes_closed": bytes_closed,
          "bytes_per_point": bytes_closed / flushed if flushed else None})


def mote_has_persistence():
    """Whether this mote binary takes --fsync (the persistence options)."""
    try:
        p = subprocess.run([MOTE, "hub", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        return b"--fsync" in p.stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


def mote_commit():
    """The commit the measured mote was built from ("-dirty": with local changes)."""
    def git(*a):
        return subprocess.run(["git", "-C", ROOT] + list(a), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL).stdout.decode().strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no", "src") else "")
    except OSError:
        return "?"


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", "out", "raw.jsonl")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    variants = throughput_variants()
    persist_ok = mote_has_persistence()
    commit = mote_commit()
    t0 = time.time()
    with open(out_path, "a") as out:
        for rnd in range(REPEAT):
            for sc in SCENARIOS:
                names = (H_BROKERS if sc == "h" else G_BROKERS if sc == "g" else
                         I_BROKERS if sc == "i" else BROKERS)
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                runs = variants.get(sc, [(None, None, None, None)] if sc == "f" else
                                    [("max", 0, None, 1)] + [("paced-%d" % t, 0, None, 1)
                                                             for t in I_TARGETS] if sc == "i"
                                    else [])
                for var, qos, args, fan in runs:
                    for name in order:
                        rec = {"scenario": sc, "variant": var or "idle", "broker": name,
                               "round": rnd + 1, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                               "mote_commit": commit,
                               # other work on the machine skews every number
                               "loadavg_1m": os.getloadavg()[0]}
                        if name in PERSISTENT:
                            # what the report states about each one's loss window
                            rec["fsync_batch_ms"] = FSYNC_BATCH_MS
                            rec["autosave_interval"] = MOSQ_AUTOSAVE_S
                            rec["dirty_expire_centisecs"] = read_sysctl("vm.dirty_expire_centisecs")
                            rec["dirty_writeback_centisecs"] = read_sysctl("vm.dirty_writeback_centisecs")
                        print("[%5.0fs] scenario %s %-8s broker %-9s round %d/%d" %
                              (time.time() - t0, sc, var or "idle", name, rnd + 1, REPEAT),
                              flush=True)
                        if name == "nats" and qos == 2:
                            rec.update({"skipped": "NATS MQTT supports QoS 0/1 only"})
                            out.write(json.dumps(rec) + "\n")
                            continue
                        if name.startswith("mote-") and name in PERSISTENT and not persist_ok:
                            rec.update({"skipped": "this mote has no --fsync option (no persistence)"})
                            print("        skipped: %s" % rec["skipped"], flush=True)
                            out.write(json.dumps(rec) + "\n")
                            continue
                        broker = None
                        try:
                            broker = Broker(name)
                            broker.start()
                            if sc == "f":
                                conn_scenario(broker, rec.update)
                            elif sc == "i":
                                rec.update({"pubs": I_PUBS, "pack": I_PACK})
                                telemetry_scenario(broker, rec.update, var)
                            else:
                                rec["command"] = " ".join(["mote", "bench"] + args + ["-p", "PORT", "--json"])
                                if PKI:
                                    rec["command"] = rec["command"].replace(PKI["dir"], "PKI")
                                rec["fan"] = fan
                                if name in PERSISTENT:
                                    rec["broker_command"] = " ".join(
                                        os.path.basename(a) if a == MOTE else a
                                        for a in broker.command()).replace(
                                            broker.tmp, "TMP").replace(
                                            ":%d" % broker.port, ":PORT")
                                    rec["data_fs"] = broker.fs
                                    io0 = broker.io()
                                rec["result"] = run_bench(broker.port, args, timeout=DURATION + 120)
                                rec["broker_alive"] = broker.proc.poll() is None
                                if name in PERSISTENT:
                                    io1 = broker.io()
                                    if io0 and io1:
                                        rec["broker_io"] = {k: io1[k] - io0[k] for k in io0}
                        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                            rec["error"] = str(e)
                        finally:
                            if broker:
                                broker.stop()
                        r = rec.get("result", rec)
                        if "error" in r or "error" in rec:
                            print("        error: %s" % (r.get("error") or rec.get("error")), flush=True)
                        elif sc == "f" and "skipped" not in rec:
                            print("        %d held, %.0f conn/s, %s B/conn" %
                                  (rec["held"], rec["connect_rate"],
                                   "%.0f" % rec["bytes_per_conn"] if rec["bytes_per_conn"] else "?"),
                                  flush=True)
                        elif sc == "i" and "skipped" not in rec:
                            print("        %.0f points/s (sustained %s)%s%s" % (
                                rec.get("points_per_s", 0),
                                "%.0f" % rec["sustained_points_per_s"]
                                if rec.get("sustained_points_per_s") else "-",
                                " stored, query %s ms for %s points, %.2f B/point" % (
                                    ",".join("%.1f" % x for x in rec.get("query_ms", [])),
                                    rec.get("query_points"), rec.get("bytes_per_point") or 0)
                                if name == "mote-telemetry" else " routed",
                                ", %d messages dropped" % rec.get("messages_dropped", 0)
                                if name == "mote-telemetry" else ""), flush=True)
                        elif sc == "g" and var == "handshakes":
                            c = r.get("connections", {})
                            print("        %s/%s connected, %.0f handshakes/s" %
                                  (c.get("connected"), c.get("attempted"), c.get("rate_per_s", 0)),
                                  flush=True)
                        elif "received_per_s" in r:
                            lat = r.get("latency_us", {})
                            print("        sent %.0f/s recv %.0f/s p50 %s us p99 %s us%s" %
                                  (r["sent_per_s"], r["received_per_s"], lat.get("p50"),
                                   lat.get("p99"),
                                   " disk %.0f B/msg" % (rec["broker_io"]["write_bytes"] / r["received"])
                                   if rec.get("broker_io") and r.get("received") else ""),
                                  flush=True)
                        out.write(json.dumps(rec) + "\n")
                        out.flush()
    if PKI:
        shutil.rmtree(os.path.dirname(PKI["dir"]), ignore_errors=True)
    print("raw results: %s (%.0f s)" % (out_path, time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
