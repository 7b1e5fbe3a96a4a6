"""test_mote_cli.py - `mote pub` and `mote sub` against a real broker and real peers.

The broker is mote (default) or mosquitto (MOTE_TEST_BROKER=mosquitto), see
harness.py; run it both ways. The peers on the other side are Debian's
mosquitto_pub / mosquitto_sub and paho-mqtt, so every check is "what a
reference client sees", never what mote says about itself.

A subscriber is known to be subscribed when it prints a retained sentinel
message stored beforehand (or, where output must stay clean, when its -d trace
shows the SUBACK).
"""
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

MOSQ_PUB = "/usr/bin/mosquitto_pub"
MOSQ_SUB = "/usr/bin/mosquitto_sub"
WAIT = 10.0
VERSIONS = ("311", "5")


def mote(broker, cmd, *args):
    return [harness.mote_bin(), cmd, "-h", broker.host, "-p", str(broker.port)] + list(args)


def mosq(tool, broker, *args):
    return [tool, "-h", broker.host, "-p", str(broker.port)] + list(args)


class Proc:
    """A background process whose stdout and stderr are collected as they come."""

    def __init__(self, argv, stdin=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.out = b""
        self.err = b""
        self.cv = threading.Condition()
        self.threads = [threading.Thread(target=self._pump, args=(self.p.stdout, "out"), daemon=True),
                        threading.Thread(target=self._pump, args=(self.p.stderr, "err"), daemon=True)]
        for t in self.threads:
            t.start()

    def _pump(self, f, name):
        while True:
            chunk = f.read1(65536) if hasattr(f, "read1") else f.read(1)
            if not chunk:
                break
            with self.cv:
                setattr(self, name, getattr(self, name) + chunk)
                self.cv.notify_all()

    def wait_out(self, pred, timeout=WAIT, what="output"):
        with self.cv:
            if not self.cv.wait_for(lambda: pred(self.out), timeout):
                raise AssertionError("%s: no %s within %.0f s; stdout=%r stderr=%r"
                                     % (" ".join(self.argv[:2]), what, timeout, self.out, self.err))

    def wait_err(self, text, timeout=WAIT):
        with self.cv:
            if not self.cv.wait_for(lambda: text in self.err, timeout):
                raise AssertionError("%r not on stderr within %.0f s; stderr=%r"
                                     % (text, timeout, self.err))

    def finish(self, timeout=WAIT):
        """Exit status (None if it had to be killed), stdout, stderr."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = None
        for t in self.threads:
            t.join(timeout=5)
        self.p.stdout.close()
        self.p.stderr.close()
        return rc, self.out, self.err

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.finish()


class PahoSub:
    """A paho subscriber that keeps every message with its properties."""

    serial = 0

    def __init__(self, broker, topic, version=mqtt.MQTTv5, qos=1):
        PahoSub.serial += 1
        self.q = queue.Queue()
        # A unique id: two subscribers sharing one would take each other over.
        self.c = mqtt.Client(client_id="paho-%d-%d" % (os.getpid(), PahoSub.serial),
                             protocol=version)
        self.c.on_message = lambda c, u, m: self.q.put(m)
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.connect(broker.host, broker.port, 30)
        self.c.loop_start()
        self.c.subscribe(topic, qos)
        if not subscribed.wait(WAIT):
            raise AssertionError("paho: no SUBACK")

    def get(self, timeout=WAIT):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("paho: no message within %.0f s" % timeout)

    def none(self, window=0.7):
        try:
            m = self.q.get(timeout=window)
        except queue.Empty:
            return
        raise AssertionError("paho: unexpected message on %s: %r" % (m.topic, m.payload))

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class CliCase(unittest.TestCase):
    def setUp(self):
        self.b = harness.Broker()
        self.b.start()

    def tearDown(self):
        try:
            self.b.stop(check=True)
        finally:
            shutil.rmtree(self.b.dir, ignore_errors=True)

    def run_ok(self, argv, stdin=None, rc=0):
        r = subprocess.run(argv, input=stdin, capture_output=True, timeout=30)
        if rc is not None:
            self.assertEqual(r.returncode, rc, "%s\nstdout=%r\nstderr=%r"
                             % (" ".join(argv), r.stdout, r.stderr))
        return r

    def proc(self, argv, stdin=None):
        p = Proc(argv, stdin)
        self.addCleanup(p.kill)
        return p

    def sentinel(self, topic):
        """Store a retained 'ready' on topic (with mosquitto_pub)."""
        self.run_ok(mosq(MOSQ_PUB, self.b, "-q", "1", "-r", "-t", topic, "-m", "ready"))

    def paho(self, topic, **kw):
        s = PahoSub(self.b, topic, **kw)
        self.addCleanup(s.close)
        return s

    # ---- mote pub -> mosquitto_sub ---------------------------------------

    def test_pub_every_qos_both_versions_to_mosquitto_sub(self):
        self.sentinel("cli/p/0")
        sub = self.proc(mosq(MOSQ_SUB, self.b, "-q", "2", "-t", "cli/p/#", "-C", "7",
                             "-F", "%t|%q|%r|%p"))
        sub.wait_out(lambda o: o.endswith(b"\n"), what="sentinel")
        want = [b"cli/p/0|1|1|ready"]
        for ver in VERSIONS:
            for q in (0, 1, 2):
                topic = "cli/p/v%s/q%d" % (ver, q)
                payload = "m\u00e9sg v%s q%d" % (ver, q)
                self.run_ok(mote(self.b, "pub", "-V", ver, "-q", str(q), "-t", topic,
                                 "-m", payload))
                want.append(("%s|%d|0|%s" % (topic, q, payload)).encode())
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), want)

    def test_pub_retained_and_cleared(self):
        for ver in VERSIONS:
            t = "cli/r/" + ver
            self.run_ok(mote(self.b, "pub", "-V", ver, "-q", "1", "-r", "-t", t, "-m", "kept"))
            r = self.run_ok(mosq(MOSQ_SUB, self.b, "-t", t, "-C", "1", "-W", "5",
                                 "-F", "%r %p"))
            self.assertEqual(r.stdout, b"1 kept\n")
            # An empty retained message deletes it: nothing is left to deliver.
            self.run_ok(mote(self.b, "pub", "-V", ver, "-q", "1", "-r", "-t", t, "-n"))
            r = self.run_ok(mosq(MOSQ_SUB, self.b, "-t", t, "-W", "1"), rc=27)
            self.assertEqual(r.stdout, b"")

    def test_pub_lines_file_stdin_null(self):
        s = self.paho("cli/l/#", version=mqtt.MQTTv311, qos=2)
        self.run_ok(mote(self.b, "pub", "-q", "1", "-t", "cli/l/lines", "-l"),
                    stdin=b"one\n\nthree\nfour")
        got = [s.get() for _ in range(4)]
        self.assertEqual([(m.topic, m.payload, m.qos) for m in got],
                         [("cli/l/lines", p, 1) for p in (b"one", b"", b"three", b"four")])
        blob = bytes(range(256)) * 300  # binary, with NULs and newlines, 76800 bytes
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(blob)
        self.addCleanup(os.unlink, f.name)
        self.run_ok(mote(self.b, "pub", "-V", "5", "-q", "2", "-t", "cli/l/file", "-f", f.name))
        m = s.get()
        self.assertEqual((m.topic, m.payload, m.qos), ("cli/l/file", blob, 2))
        self.run_ok(mote(self.b, "pub", "-t", "cli/l/stdin", "-s"), stdin=b"a\nb\x00c")
        self.assertEqual(s.get().payload, b"a\nb\x00c")
        self.run_ok(mote(self.b, "pub", "-q", "1", "-t", "cli/l/null", "-n"))
        m = s.get()
        self.assertEqual((m.topic, m.payload), ("cli/l/null", b""))
        s.none()

    def test_pub_v5_properties_seen_by_paho(self):
        s = self.paho("cli/d/t")
        self.run_ok(mote(self.b, "pub", "-V", "5", "-q", "1", "-t", "cli/d/t", "-m", "{}",
                         "-D", "publish", "user-property", "site", "lab-1",
                         "-D", "publish", "user-property", "site", "lab-2",
                         "-D", "publish", "user-property", "unit", "\u00b0C",
                         "-D", "publish", "content-type", "application/json",
                         "-D", "publish", "response-topic", "cli/d/reply",
                         "-D", "publish", "correlation-data", "req-9",
                         "-D", "publish", "payload-format-indicator", "1",
                         "-D", "publish", "message-expiry-interval", "300"))
        m = s.get()
        p = m.properties
        self.assertEqual(m.payload, b"{}")
        self.assertEqual(p.UserProperty, [("site", "lab-1"), ("site", "lab-2"), ("unit", "\u00b0C")])
        self.assertEqual(p.ContentType, "application/json")
        self.assertEqual(p.ResponseTopic, "cli/d/reply")
        self.assertEqual(p.CorrelationData, b"req-9")
        self.assertEqual(p.PayloadFormatIndicator, 1)
        self.assertIn(p.MessageExpiryInterval, (299, 300))

    # ---- mosquitto_pub -> mote sub ---------------------------------------

    def test_sub_every_qos_both_versions_from_mosquitto_pub(self):
        for ver in VERSIONS:
            base = "cli/s/v" + ver
            self.sentinel(base + "/0")
            sub = self.proc(mote(self.b, "sub", "-V", ver, "-q", "2", "-t", base + "/#",
                                 "-v", "-C", "4"))
            sub.wait_out(lambda o: o.endswith(b"\n"), what="sentinel")
            for q in (0, 1, 2):
                self.run_ok(mosq(MOSQ_PUB, self.b, "-V", "mqttv5" if ver == "5" else "mqttv311",
                                 "-q", str(q), "-t", "%s/q%d" % (base, q), "-m", "hello %d" % q))
            rc, out, err = sub.finish()
            self.assertEqual(rc, 0, err)
            want = "{0}/0 ready\n{0}/q0 hello 0\n{0}/q1 hello 1\n{0}/q2 hello 2\n".format(base)
            self.assertEqual(out, want.encode())

    def test_sub_no_newline_and_plain_payload(self):
        self.sentinel("cli/n/0")
        sub = self.proc(mote(self.b, "sub", "-t", "cli/n/#", "-C", "3", "-N"))
        sub.wait_out(lambda o: o == b"ready", what="sentinel")
        self.run_ok(mosq(MOSQ_PUB, self.b, "-t", "cli/n/a", "-m", "ab"))
        self.run_ok(mosq(MOSQ_PUB, self.b, "-t", "cli/n/b", "-m", "c\nd"))
        rc, out, err = sub.finish()
        self.assertEqual((rc, out), (0, b"readyabc\nd"), err)

    def test_sub_skips_retained_with_R(self):
        self.sentinel("cli/R/old")
        sub = self.proc(mote(self.b, "sub", "-t", "cli/R/#", "-C", "1", "-R", "-v", "-d"))
        sub.wait_err(b"received SUBACK")
        # The retained message arrives first (see -d) but is not printed or counted.
        sub.wait_err(b"'cli/R/old'")
        self.run_ok(mosq(MOSQ_PUB, self.b, "-t", "cli/R/new", "-m", "live"))
        rc, out, err = sub.finish()
        self.assertEqual((rc, out), (0, b"cli/R/new live\n"), err)
        # stdout carries messages only; the -d trace went to stderr.
        self.assertIn(b"sending CONNECT", err)
        self.assertIn(b"received CONNACK", err)

    def test_sub_timeout(self):
        t0 = time.monotonic()
        r = self.run_ok(mote(self.b, "sub", "-t", "cli/w/none", "-W", "1"), rc=27)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"Timed out", r.stderr)

    def test_sub_sigint_disconnects_cleanly_and_sigkill_fires_the_will(self):
        for ver in VERSIONS:
            w = self.paho("cli/will/" + ver)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                self.sentinel("cli/k/ready")
                sub = self.proc(mote(self.b, "sub", "-V", ver, "-t", "cli/k/#",
                                     "--will-topic", "cli/will/" + ver,
                                     "--will-payload", "gone %s" % sig.name,
                                     "--will-qos", "1"))
                sub.wait_out(lambda o: o == b"ready\n", what="sentinel")
                sub.p.send_signal(sig)
                rc, out, err = sub.finish()
                if sig == signal.SIGKILL:
                    m = w.get()
                    self.assertEqual((m.topic, m.payload, m.qos),
                                     ("cli/will/" + ver, b"gone SIGKILL", 1))
                else:
                    self.assertEqual(rc, 0, err)
                    w.none()  # DISCONNECT was sent: no will

    def test_sub_keepalive_pings(self):
        self.sentinel("cli/ka/0")
        sub = self.proc(mote(self.b, "sub", "-V", "5", "-k", "1", "-t", "cli/ka/#", "-C", "2",
                             "-d"))
        sub.wait_out(lambda o: o == b"ready\n", what="sentinel")
        time.sleep(3.2)
        self.run_ok(mosq(MOSQ_PUB, self.b, "-t", "cli/ka/x", "-m", "still here"))
        rc, out, err = sub.finish()
        self.assertEqual((rc, out), (0, b"ready\nstill here\n"), err)
        self.assertGreaterEqual(err.count(b"sending PINGREQ"), 2, err)
        self.assertGreaterEqual(err.count(b"received PINGRESP"), 2, err)

    def test_persistent_session_with_c(self):
        for ver in VERSIONS:
            cid = "cli-persist-" + ver
            topic = "cli/c/" + ver
            args = ["-V", ver, "-c", "-i", cid, "-q", "1", "-t", topic]
            if ver == "5":
                args += ["-x", "60"]
            # First visit creates the session and the subscription, then leaves.
            r = self.run_ok(mote(self.b, "sub", *args, "-W", "1"), rc=27)
            self.assertEqual(r.stdout, b"")
            # A message while away is queued for the session...
            self.run_ok(mosq(MOSQ_PUB, self.b, "-q", "1", "-t", topic, "-m", "while away"))
            # ...and delivered when it comes back.
            r = self.run_ok(mote(self.b, "sub", *args, "-C", "1", "-W", "5"))
            self.assertEqual(r.stdout, b"while away\n")

    # ---- errors a person has to act on -----------------------------------

    def test_errors_say_what_to_do(self):
        port = harness.free_port()
        r = self.run_ok([harness.mote_bin(), "pub", "-h", "127.0.0.1", "-p", str(port),
                         "-t", "x", "-m", "y"], rc=1)
        self.assertIn(b"connection refused by 127.0.0.1:%d" % port, r.stderr)
        self.assertIn(b"make run", r.stderr)
        r = self.run_ok(mote(self.b, "pub", "-m", "y"), rc=2)
        self.assertIn(b"-t TOPIC", r.stderr)
        r = self.run_ok(mote(self.b, "pub", "-t", "a/#", "-m", "y"), rc=2)
        self.assertIn(b"invalid topic", r.stderr)
        r = self.run_ok(mote(self.b, "sub", "-t", "a/#/b"), rc=2)
        self.assertIn(b"invalid filter", r.stderr)
        r = self.run_ok(mote(self.b, "pub", "-t", "a", "-m", "y", "-D", "publish",
                             "content-type", "x"), rc=2)
        self.assertIn(b"-V 5", r.stderr)
        r = self.run_ok(mote(self.b, "sub", "-t", "a", "-c"), rc=2)
        self.assertIn(b"-i", r.stderr)
        r = self.run_ok(mote(self.b, "pub", "-t", "a", "-m", "y", "-n"), rc=2)
        self.assertIn(b"only one", r.stderr)
        r = self.run_ok(mote(self.b, "pub", "-t", "a", "-m", "y", "-q", "3"), rc=2)
        self.assertIn(b"-q", r.stderr)

    def test_help_lists_every_flag(self):
        for cmd, flags in (("pub", "-h -p -t -m -f -n -s -l -q -r -i -I -k -V -c -x -u -P -D "
                                   "--will-topic --will-payload --will-qos --will-retain -d"),
                           ("sub", "-h -p -t -q -i -I -k -V -c -x -C -W -v -N -R -u -P -D "
                                   "--will-topic --will-payload --will-qos --will-retain -d")):
            r = self.run_ok([harness.mote_bin(), cmd, "--help"])
            for f in flags.split():
                self.assertIn((f + ",").encode() if not f.startswith("--") else f.encode(),
                              r.stdout, "%s --help lacks %s" % (cmd, f))


class RefusingBroker(unittest.TestCase):
    """A broker that allows no anonymous clients: CONNACK refusals."""

    def test_connack_refusal_is_named(self):
        b = harness.Broker(allow_anonymous=False)
        b.start()
        try:
            for ver, name in (("5", b"Not authorized (0x87)"), ("311", b"not authorized (0x05)")):
                r = subprocess.run(mote(b, "pub", "-V", ver, "-t", "x", "-m", "y"),
                                   capture_output=True, timeout=30)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(b"refused the connection: " + name, r.stderr)
        finally:
            b.stop()
            shutil.rmtree(b.dir, ignore_errors=True)


if __name__ == "__main__":
    harness.main()
