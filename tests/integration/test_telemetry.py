#!/usr/bin/python3
"""test_telemetry.py - telemetry end to end: paho publishes SenML and plain JSON
to dev/{id}/telemetry, the hub decodes and stores them, the HTTP API answers
raw and aggregated queries (each aggregation with exact values), CSV and latest
values; invalid payloads are counted and do not stop the pipeline; stored points
survive a restart and a crash after they were reported durable."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Broker, mote_only, wait_for  # noqa: E402
from peers_paho import Peer, V311  # noqa: E402

T0 = int(time.time() // 3600 * 3600 * 1000) - 2 * 3600 * 1000  # a whole hour, 2 h ago


def metrics(b, token):
    st, _, body = b.api("GET", "/metrics", token=token, raw=True)
    assert st == 200, st
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.partition(" ")
            if "{" not in k:
                out[k] = float(v.split()[0])
    return out


@mote_only
class Telemetry(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Broker(http=True)
        cls.b.start()
        cls.tok = cls.b.token("admin")

    @classmethod
    def tearDownClass(cls):
        cls.b.stop()

    def get(self, path, **kw):
        return self.b.api("GET", path, token=self.tok, **kw)

    def points(self, dev, metric, want, extra="", timeout=10.0):
        """Polls the raw query until it returns `want` points (the pipeline is asynchronous)."""
        got = {}

        def check():
            st, _, body = self.get("/api/v1/devices/%s/telemetry?metric=%s&from=0&to=%d%s"
                                   % (dev, metric, T0 + 10 * 86400000, extra))
            got["st"], got["body"] = st, body
            return st == 200 and len(body["points"]) >= want
        wait_for(check, timeout, "%d points of %s/%s (last answer %s)" % (want, dev, metric, got))
        return got["body"]["points"]

    def publish(self, dev, payloads):
        with Peer(self.b, dev, version=V311) as p:
            p.connect()
            for pl in payloads:
                p.publish("dev/%s/telemetry" % dev, pl if isinstance(pl, bytes) else pl.encode(),
                          qos=1)
            p.disconnect()

    def test_senml_pack(self):
        t = T0 // 1000
        self.publish("s1", [json.dumps([
            {"bn": "boiler/", "bt": t, "bu": "Cel", "n": "temp", "v": 21.5},
            {"n": "temp", "t": 10, "v": 21.75},
            {"n": "on", "t": 10, "vb": True},
            {"n": "state", "vs": "heating"},
            {"bn": "", "bv": 100, "n": "count", "t": 20, "v": 5}])])
        pts = self.points("s1", "boiler/temp", 2)
        self.assertEqual(pts, [[T0, 21.5], [T0 + 10000, 21.75]])
        self.assertEqual(self.points("s1", "boiler/on", 1), [[T0 + 10000, 1]])
        self.assertEqual(self.points("s1", "count", 1), [[T0 + 20000, 105]])
        st, _, body = self.get("/api/v1/devices/s1/telemetry/latest")
        self.assertEqual(st, 200)
        latest = {x["metric"]: (x["ts"], x["value"]) for x in body["latest"]}
        self.assertEqual(latest, {"boiler/temp": (T0 + 10000, 21.75), "boiler/on": (T0 + 10000, 1),
                                  "count": (T0 + 20000, 105)})

    def test_plain_objects(self):
        self.publish("p1", [
            json.dumps({"temp": 20.5, "on": False, "ts": T0 // 1000}),          # seconds
            json.dumps({"temp": 21, "pos": {"lat": 47.5}, "ts": T0 + 1000}),  # milliseconds
            json.dumps({"temp": 22.25, "mode": "eco", "ts": time.strftime(
                "%Y-%m-%dT%H:%M:%S.500Z", time.gmtime(T0 // 1000 + 2))}),
        ])
        self.assertEqual(self.points("p1", "temp", 3),
                         [[T0, 20.5], [T0 + 1000, 21], [T0 + 2500, 22.25]])
        self.assertEqual(self.points("p1", "pos.lat", 1), [[T0 + 1000, 47.5]])
        self.assertEqual(self.points("p1", "on", 1), [[T0, 0]])
        # no ts: the time of arrival
        before = int(time.time() * 1000)
        self.publish("p1", [b'{"now": 1}'])
        (ts, v), = self.points("p1", "now", 1)
        self.assertTrue(before - 1000 <= ts <= int(time.time() * 1000) + 1000)

    def test_aggregations(self):
        # values 1..10 every 10 s from T0, and 100 at T0 + 120 s (minute buckets: 1-6, 7-10, 100)
        pack = [{"bn": "", "bt": T0 / 1000.0, "n": "x", "v": 1}]
        pack += [{"n": "x", "t": 10 * i, "v": i + 1} for i in range(1, 10)]
        pack += [{"n": "x", "t": 120, "v": 100}]
        self.publish("a1", [json.dumps(pack)])
        self.points("a1", "x", 11)
        want = {"avg": [3.5, 8.5, 100], "min": [1, 7, 100], "max": [6, 10, 100],
                "sum": [21, 34, 100], "count": [6, 4, 1], "last": [6, 10, 100]}
        for agg, vals in want.items():
            for interval in ("1m", "60000", "30s"):
                st, _, body = self.get("/api/v1/devices/a1/telemetry?metric=x&from=%d&to=%d&agg=%s"
                                       "&interval=%s" % (T0, T0 + 180000, agg, interval))
                self.assertEqual(st, 200, body)
                if interval == "30s":  # raw points, 30 s buckets: 3, 3, 3, 1, 1
                    self.assertEqual(len(body["points"]), 5)
                    continue
                self.assertEqual(body["points"], [[T0 + 60000 * i, v] for i, v in enumerate(vals)],
                                 (agg, interval))
        st, _, body = self.get("/api/v1/devices/a1/telemetry?metric=x&from=%d&to=%d&agg=avg"
                               % (T0, T0 + 3600000))
        self.assertEqual(body["points"], [[T0, 155 / 11]])
        # limit: truncated
        st, _, body = self.get("/api/v1/devices/a1/telemetry?metric=x&from=%d&to=%d&limit=3"
                               % (T0, T0 + 3600000))
        self.assertEqual(len(body["points"]), 3)
        self.assertTrue(body["truncated"])
        # CSV export
        st, h, body = self.get("/api/v1/devices/a1/telemetry?metric=x&from=%d&to=%d&time=ms"
                               % (T0, T0 + 25000), headers={"Accept": "text/csv"}, raw=True)
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/csv"))
        self.assertEqual(body.decode().splitlines(),
                         ["timestamp,value", "%d,1" % T0, "%d,2" % (T0 + 10000),
                          "%d,3" % (T0 + 20000)])
        # bad queries are 400 with a sentence
        for q in ("agg=median", "interval=5m", "from=%d&to=%d" % (T0, T0 - 1), "from=yesterday"):
            st, _, body = self.get("/api/v1/devices/a1/telemetry?metric=x&" + q)
            self.assertEqual(st, 400, (q, body))
            self.assertTrue(body["message"])

    def test_invalid_payloads(self):
        before = metrics(self.b, self.tok).get("mote_telemetry_invalid_total", 0)
        bad = [b"not json", b"[]", b'[{"n":"a","v":"1"}]', b'{"a":1e999}', b'{"a b":1}',
               b"[" + b",".join(b'{"n":"m","v":1}' for _ in range(1001)) + b"]",
               b"\xff\xfe", b'{"a":{"b":{"c":{"d":{"e":1}}}}}', b"[" * 5000]
        self.publish("bad1", bad + [b'{"ok": 7}'])
        # the valid payload after the bad ones is stored: the pipeline went on
        self.assertEqual(self.points("bad1", "ok", 1)[0][1], 7)
        wait_for(lambda: metrics(self.b, self.tok).get("mote_telemetry_invalid_total", 0)
                 >= before + len(bad), 10, "invalid payloads counted")
        # the device keeps the last error's sentence (the one of the 5000 brackets) and a count
        def dev_error():
            st, _, dev = self.get("/api/v1/devices/bad1")
            return (st == 200 and "not valid JSON" in (dev["last_error"] or "")
                    and dev["invalid_payloads"] >= len(bad))
        wait_for(dev_error, 10, "the device's last error and invalid count")
        for m in ("a", "m", "a%20b"):
            st, _, body = self.get("/api/v1/devices/bad1/telemetry?metric=%s&from=0" % m)
            self.assertEqual((st, body["points"]), (200, []))

    def test_durable_across_restart_and_crash(self):
        t = T0 // 1000
        self.publish("d1", [json.dumps([{"bn": "", "bt": t, "n": "v", "t": i, "v": i}
                                        for i in range(500)])])
        self.points("d1", "v", 500)
        # wait until the store says every point is on disk, then crash the hub
        wait_for(lambda: metrics(self.b, self.tok).get("mote_store_points_pending", 1) == 0, 10,
                 "points flushed")
        self.b.restart(kill=True)
        self.assertEqual(len(self.points("d1", "v", 500)), 500)
        # a clean stop writes what is still in memory
        self.publish("d1", [json.dumps([{"bn": "", "bt": t + 500, "n": "v", "t": i, "v": i}
                                        for i in range(100)])])
        self.points("d1", "v", 600)
        self.b.restart()
        pts = self.points("d1", "v", 600)
        self.assertEqual(len(pts), 600)
        self.assertEqual(pts[-1], [T0 + 599000, 99])


if __name__ == "__main__":
    unittest.main(verbosity=2)
