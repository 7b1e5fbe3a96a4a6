"""test_bench_cli.py - `mote bench` against a real broker, checked by a real client.

The broker is mote (default) or mosquitto (MOTE_TEST_BROKER=mosquitto), see
harness.py; run it both ways. Counts are checked, never timings: what paho
receives from `mote bench pub`, and the exact sent/received totals that
`mote bench pubsub --json` reports for shapes whose delivery count is known.
"""
import json
import os
import queue
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from peers_paho import V5, V311, connect_props, connected  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

RUN_TIMEOUT = 30


def bench(broker, *args):
    argv = [harness.mote_bin(), "bench"] + list(args)
    if broker is not None:
        argv += ["-h", broker.host, "-p", str(broker.port)]
    return subprocess.run(argv + ["--quiet"], capture_output=True, timeout=RUN_TIMEOUT)


def bench_json(test, broker, *args):
    r = bench(broker, *args, "--json")
    test.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
    return json.loads(r.stdout)


class Sub:
    """A paho subscriber that queues (topic, payload) and knows when SUBACK came."""

    def __init__(self, broker, topic, qos=1):
        self.q = queue.Queue()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="bench-check-%d" % os.getpid(), clean_session=True)
        self.c.on_message = lambda c, u, m: self.q.put((m.topic, m.payload))
        self.c.on_subscribe = lambda c, u, mid, granted: self.subscribed.set()
        self.c.on_connect = lambda c, u, f, rc: c.subscribe(topic, qos)
        self.c.connect(broker.host, broker.port, 30)
        self.c.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("paho subscriber got no SUBACK")

    def take(self, n, timeout=20.0):
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            try:
                got.append(self.q.get(timeout=0.2))
            except queue.Empty:
                pass
        return got

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class BenchAgainstBroker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker(mosquitto_conf="max_connections -1\n").start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.broker.stop()
        finally:
            import shutil
            shutil.rmtree(cls.broker.dir, ignore_errors=True)

    def test_pub_seen_by_paho(self):
        sub = Sub(self.broker, "bench/#")
        try:
            rep = bench_json(self, self.broker, "pub", "-n", "200", "-c", "4", "-q", "1",
                             "-s", "40", "--id-prefix", "itpub")
            got = sub.take(800)
            time.sleep(0.3)  # anything beyond 800 would be a bug too
            while not sub.q.empty():
                got.append(sub.q.get())
        finally:
            sub.close()
        self.assertEqual(rep["sent"], 800)
        self.assertEqual(rep["acked"], 800)
        self.assertEqual(len(got), 800)
        self.assertTrue(all(len(p) == 40 for _, p in got))
        seqs = {}
        for topic, payload in got:
            seqs.setdefault(topic, []).append(struct.unpack(">Q", payload[8:16])[0])
        self.assertEqual(sorted(seqs), ["bench/0", "bench/1", "bench/2", "bench/3"])
        for topic, s in seqs.items():
            self.assertEqual(sorted(s), list(range(200)), topic)

    def test_pubsub_counts_and_latency(self):
        for version in ("311", "5"):
            rep = bench_json(self, self.broker, "pubsub", "-n", "500", "--pubs", "2",
                             "--subs", "2", "-q", "1", "-V", version, "-t", "it1/%i")
            self.assertEqual(rep["sent"], 1000)
            self.assertEqual(rep["received"], 1000)
            lat = rep["latency_us"]
            self.assertEqual(lat["count"], 1000)
            self.assertTrue(0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"], lat)
            self.assertEqual(sum(rep["errors"].values()), 0)
            self.assertTrue(rep["completed"])

    def test_qos2(self):
        # 5.0: the broker's Receive Maximum (mosquitto: 20) clamps --inflight 64.
        # 3.1.1 announces no limit and mosquitto silently drops QoS 2 publishes
        # beyond max_inflight_messages (20), hence --inflight 20 there.
        for extra in (["-V", "5"], ["-V", "311", "--inflight", "20"]):
            rep = bench_json(self, self.broker, "pubsub", "-n", "300", "--pubs", "2",
                             "--subs", "2", "-q", "2", "-t", "it2/%i", *extra)
            self.assertEqual((rep["sent"], rep["acked"], rep["received"]), (600, 600, 600),
                             extra)

    def test_fan_out(self):
        rep = bench_json(self, self.broker, "pubsub", "--fan-out", "--pubs", "1", "--subs", "5",
                         "-n", "200", "-q", "1", "-t", "it3/%i")
        self.assertEqual(rep["sent"], 200)
        self.assertEqual(rep["received"], 5 * rep["sent"])

    def test_fan_in(self):
        rep = bench_json(self, self.broker, "pubsub", "--fan-in", "--pubs", "4", "--subs", "1",
                         "-n", "150", "-q", "1", "-t", "it4/%i", "--threads", "2")
        self.assertEqual(rep["sent"], 600)
        self.assertEqual(rep["received"], rep["sent"])

    def test_sub_mode_counts(self):
        """`sub -n` stops after each subscriber got its count of a paho publisher's messages."""
        p = subprocess.Popen([harness.mote_bin(), "bench", "sub", "-c", "3", "-t", "it5/x",
                              "-n", "50", "-q", "1", "--json", "--quiet", "-h", self.broker.host,
                              "-p", str(self.broker.port)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        pub = mqtt.Client(client_id="bench-pub-%d" % os.getpid())
        pub.connect(self.broker.host, self.broker.port, 30)
        pub.loop_start()
        try:
            out = b""
            # Publish until the subscribers (subscribed at some point) have all 50.
            for i in range(400):
                pub.publish("it5/x", b"0123456789abcdefXX", qos=1).wait_for_publish()
                if p.poll() is not None:
                    break
                time.sleep(0.01)
            out, err = p.communicate(timeout=RUN_TIMEOUT)
        finally:
            pub.loop_stop()
            pub.disconnect()
        self.assertEqual(p.returncode, 0, err)
        rep = json.loads(out)
        self.assertGreaterEqual(rep["received"], 150)

    def test_session_expiry_keeps_sessions(self):
        """--session-expiry S: the broker keeps the bench client's session (and
        queues QoS 1 for it) after the run; without it the session is gone."""
        for version, pv in (("311", V311), ("5", V5)):
            for expiry in ("0", "300"):
                prefix = "itkeep%s-%s" % (version, expiry)
                topic = "it6/%s/%s" % (version, expiry)
                rep = bench_json(self, self.broker, "sub", "-c", "1", "-t", topic, "-q", "1",
                                 "-d", "1", "-V", version, "--session-expiry", expiry,
                                 "--id-prefix", prefix)
                self.assertEqual(rep["session_expiry"], int(expiry))
                self.assertEqual(rep["connections"]["connected"], 1)
                pub = connected(self.broker, "itkeep-pub", version=pv)
                pub.publish(topic, b"while-away", 1)
                pub.disconnect()
                back = connected(self.broker, prefix + "-0-0", version=pv, clean=False,
                                 props=connect_props(SessionExpiryInterval=60) if pv == V5 else None)
                try:
                    if expiry == "0":
                        self.assertFalse(back.connack.session_present, (version, expiry))
                        back.expect_none()
                    else:
                        self.assertTrue(back.connack.session_present, (version, expiry))
                        m = back.expect_one()
                        self.assertEqual((m.topic, m.payload, m.qos), (topic, b"while-away", 1))
                    back.disconnect()
                finally:
                    back.close()

    def test_conn_holds(self):
        seen = []
        mon = mqtt.Client(client_id="bench-mon-%d" % os.getpid())
        mon.on_message = lambda c, u, m: seen.append(int(float(m.payload)))
        mon.on_connect = lambda c, u, f, rc: c.subscribe("$SYS/broker/clients/connected")
        mon.connect(self.broker.host, self.broker.port, 30)
        mon.loop_start()
        try:
            rep = bench_json(self, self.broker, "conn", "-c", "200", "-d", "2",
                             "--source-ip", "127.0.0.2,127.0.0.3")
        finally:
            mon.loop_stop()
            mon.disconnect()
        self.assertEqual(rep["connections"]["connected"], 200)
        self.assertEqual(rep["connections"]["held"], 200)
        # --source-ip: the broker saw connections from both local addresses
        log = self.broker.log()
        self.assertIn("127.0.0.2:", log)
        self.assertIn("127.0.0.3:", log)
        if harness.broker_kind() == "mosquitto":
            # mosquitto's own count, published every second (sys_interval 1)
            self.assertTrue(seen and max(seen) >= 200, seen)


class BenchUsage(unittest.TestCase):
    def test_usage_errors_exit_2(self):
        cases = [[], ["flood"], ["pub", "-q", "3"], ["pub", "-s", "8"],
                 ["pub", "-d", "1", "-n", "5"], ["pub", "--bogus"], ["pub", "--fan-out"],
                 ["pubsub", "-c", "3"], ["pub", "-V", "4"], ["pub", "-c"],
                 ["conn", "--source-ip", "nowhere"], ["pub", "extra"],
                 ["pub", "--session-expiry", "-1"], ["pub", "--session-expiry", "1.5"],
                 ["pub", "--session-expiry", "4294967296"]]
        for args in cases:
            r = subprocess.run([harness.mote_bin(), "bench"] + args, capture_output=True,
                               timeout=RUN_TIMEOUT)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(b"mote bench:", r.stderr, args)
            self.assertIn(b"--help", r.stderr, args)

    def test_help(self):
        r = subprocess.run([harness.mote_bin(), "bench", "--help"], capture_output=True)
        self.assertEqual(r.returncode, 0)
        for word in (b"--source-ip", b"--fan-in", b"--inflight", b"--session-expiry", b"TLS"):
            self.assertIn(word, r.stdout)

    def test_refused_exits_1(self):
        port = harness.free_port()  # nothing listens there
        r = subprocess.run([harness.mote_bin(), "bench", "pub", "-c", "3", "-n", "1", "-p",
                            str(port), "--json", "--quiet"], capture_output=True,
                           timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 1, r.stderr)
        rep = json.loads(r.stdout)
        self.assertEqual(rep["errors"]["connect_refused"], 3)
        self.assertEqual(rep["sent"], 0)
        self.assertFalse(rep["completed"])


if __name__ == "__main__":
    harness.main()
