"""test_analytics.py - what the hub learns from a device's own telemetry,
through its real interfaces: MQTT in (Debian's paho), REST out.

- A spike after a calm history makes the metric anomalous, raises the alert
  anomaly:METRIC, lowers the health index; calm again clears it
  (--anomaly-clear-after 2).
- The twin's "analytics" section and GET .../analytics agree, and what was
  learned survives a restart.
- POST .../simulate answers a pump's what-if with a trajectory and its rule
  thresholds, and refuses what it cannot answer with the right status:
  400 (malformed, unknown members, out of range), 404, 409 (no history),
  422 (no model of the device's physics, a metric it does not cover).
"""
import json
import math
import random
import time
import unittest

import paho.mqtt.client as mqtt

from harness import HOST, main, started, wait_for

N_CALM = 700          # past the detector's 450-point warm-up
T0 = int(time.time() * 1000) - 3600 * 1000


def connect(b, cid):
    c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv311)
    c.connect(HOST, b.port)
    c.loop_start()
    return c


def publish_history(c, dev, n, start_ms, temp=lambda i: 40.0, setpoint=None, seed=1):
    """n samples at 1 Hz of a pump-like device, QoS 1 so none is dropped."""
    rnd = random.Random(seed)
    for i in range(n):
        t = start_ms + i * 1000
        power = 8 + 2 * math.sin(i / 90.0) + rnd.gauss(0, 0.05)
        msg = {"ts": t, "temperature": temp(i) + rnd.gauss(0, 0.1), "power": power,
               "vibration": 2.0 + rnd.gauss(0, 0.02)}
        c.publish("dev/%s/telemetry" % dev, json.dumps(msg), qos=1).wait_for_publish(5)


class AnalyticsCase(unittest.TestCase):
    def hub(self, **kw):
        b = started(self, http=True,
                    extra_args=["--anomaly-clear-after", "2"] + kw.pop("args", []), **kw)
        self.token = b.token("admin")
        return b

    def api(self, b, method, path, body=None):
        return b.api(method, path, body=body, token=self.token)

    def register(self, b, dev, model):
        st, _, _ = self.api(b, "POST", "/api/v1/devices", {"id": dev, "model": model})
        self.assertEqual(st, 201)

    def analytics(self, b, dev):
        st, _, body = self.api(b, "GET", "/api/v1/devices/%s/analytics" % dev)
        self.assertEqual(st, 200, body)
        return body

    def test_spike_raises_and_calm_clears_an_anomaly_alert(self):
        b = self.hub()
        self.register(b, "pump-9", "pump")
        c = connect(b, "pump-9")
        self.addCleanup(c.loop_stop)
        publish_history(c, "pump-9", N_CALM, T0)
        wait_for(lambda: self.analytics(b, "pump-9").get("metrics", {}).get("temperature"),
                 20, "the temperature scored")
        a = self.analytics(b, "pump-9")
        self.assertEqual(a["metrics"]["temperature"]["state"], "normal", a)
        calm_health = a["health"]
        self.assertGreaterEqual(calm_health, 80, a)

        # Readings far outside everything seen (a few seconds of overheat):
        # an anomaly and its alert.
        for i in range(5):
            spike = {"ts": T0 + (N_CALM + i) * 1000, "temperature": 95.0 + i, "power": 8.0,
                     "vibration": 2.0}
            c.publish("dev/pump-9/telemetry", json.dumps(spike), qos=1).wait_for_publish(5)

        def alert():
            st, _, body = self.api(b, "GET", "/api/v1/alerts?device=pump-9&state=active")
            return [x for x in body.get("alerts", body if isinstance(body, list) else [])
                    if x.get("type") == "anomaly:temperature"]
        wait_for(alert, 10, "alert anomaly:temperature")
        al = alert()[0]
        self.assertIn(al["severity"], ("warning", "minor", "major", "critical"))
        a = self.analytics(b, "pump-9")
        self.assertEqual(a["metrics"]["temperature"]["state"], "anomalous", a)
        self.assertGreaterEqual(a["metrics"]["temperature"]["peak"], 0.5, a)
        self.assertLess(a["health"], calm_health, a)
        # the twin carries the same section
        st, _, twin = self.api(b, "GET", "/api/v1/devices/pump-9/twin")
        self.assertEqual(st, 200)
        self.assertEqual(twin["analytics"]["metrics"]["temperature"]["state"], "anomalous")

        # Calm readings for longer than --anomaly-clear-after: cleared.
        publish_history(c, "pump-9", 5, T0 + (N_CALM + 5) * 1000, seed=2)
        time.sleep(2.5)
        publish_history(c, "pump-9", 5, T0 + (N_CALM + 10) * 1000, seed=3)
        wait_for(lambda: not alert(), 10, "the anomaly alert cleared")
        self.assertEqual(self.analytics(b, "pump-9")["metrics"]["temperature"]["state"],
                         "normal")

        # Junk in the series does not poison it: NaN-free JSON only carries
        # numbers, so junk here is a duplicate timestamp, a time jump back
        # and a string value; the state stays normal and the scores finite.
        for m in ({"ts": T0, "temperature": 40.0},
                  {"ts": T0 + 5 * 1000, "temperature": 40.0},
                  {"ts": T0 + (N_CALM + 20) * 1000, "temperature": "hot"}):
            c.publish("dev/pump-9/telemetry", json.dumps(m), qos=1).wait_for_publish(5)
        publish_history(c, "pump-9", 3, T0 + (N_CALM + 30) * 1000, seed=4)
        a = self.analytics(b, "pump-9")
        self.assertTrue(all(0 <= v["score"] <= 1 for v in a["metrics"].values()), a)

    def test_state_survives_a_restart(self):
        b = self.hub()
        self.register(b, "pump-r", "pump")
        c = connect(b, "pump-r")
        publish_history(c, "pump-r", 300, T0)
        c.loop_stop()
        c.disconnect()
        wait_for(lambda: self.analytics(b, "pump-r").get("models"), 20, "a fitted model")
        before = self.analytics(b, "pump-r")
        b.restart()
        after = self.analytics(b, "pump-r")
        if "models" not in after:
            print(b.log())
        self.assertEqual(set(after["metrics"]), set(before["metrics"]))
        self.assertEqual(after["models"]["temperature"]["blocks"],
                         before["models"]["temperature"]["blocks"])

    def test_simulate(self):
        b = self.hub()
        self.register(b, "pump-s", "pump")
        self.register(b, "widget-1", "widget")
        path = "/api/v1/devices/pump-s/simulate"
        # nothing learned yet
        st, _, body = self.api(b, "POST", path, {"horizon_s": 600})
        self.assertEqual(st, 409, body)
        # a history where temperature follows power with a lag
        state = {"y": 40.0}

        def temp(i):
            p = 8 + 2 * math.sin(i / 90.0)
            state["y"] += (20 + 2.5 * p - state["y"]) * (1 - math.exp(-1 / 60.0))
            return state["y"]
        c = connect(b, "pump-s")
        self.addCleanup(c.loop_stop)
        publish_history(c, "pump-s", 900, T0, temp=temp)
        st, _, rule = self.api(b, "POST", "/api/v1/rules",
                               {"name": "hot", "device": "pump-s", "kind": "threshold",
                                "metric": "temperature", "op": ">", "value": 50,
                                "severity": "major"})
        self.assertEqual(st, 201, rule)

        def ready():
            st, _, body = self.api(b, "POST", path, {"horizon_s": 600})
            return st == 200
        wait_for(ready, 20, "a fitted model")
        st, _, r = self.api(b, "POST", path, {"horizon_s": 1200, "step_s": 60,
                                              "scenario": {"power": 14, "at_s": 0}})
        self.assertEqual(st, 200, r)
        self.assertEqual(r["model"]["kind"], "first_order")
        self.assertAlmostEqual(r["model"]["gain"], 2.5, delta=0.5)
        self.assertAlmostEqual(r["model"]["tau_s"], 60, delta=25)
        pts = r["points"]
        self.assertEqual(len(pts), 21)
        self.assertTrue(all(p["lo"] <= p["mean"] <= p["hi"] for p in pts))
        # settles near 20 + 2.5 * 14 = 55 and crosses the rule's 50
        self.assertAlmostEqual(pts[-1]["mean"], 55, delta=4)
        th = r["thresholds"]
        self.assertEqual([(t["value"], t["direction"]) for t in th], [(50, "above")])
        self.assertTrue(th[0]["crosses"])
        self.assertGreater(th[0]["at"], r["start"])

        bad = [({"horizon_s": 0}, 400), ({"horizon_s": "1h"}, 400), ({}, 400),
               ({"horizon_s": 60, "bogus": 1}, 400),
               ({"horizon_s": 60, "scenario": {"setpoint": 5, "power": 3}}, 400),
               ({"horizon_s": 60, "scenario": {"speed": 3}}, 400),
               ({"horizon_s": 60, "scenario": {"on": "no"}}, 400),
               ({"horizon_s": 60, "step_s": 120}, 400),
               ({"horizon_s": 60, "scenario": {"at_s": 99}}, 400),
               ({"horizon_s": 1e9}, 400), ({"horizon_s": 2592000, "step_s": 1}, 400),
               ([1, 2], 400), ({"horizon_s": 60, "metric": "pressure"}, 422),
               ({"horizon_s": 60, "metric": "vibration", "scenario": {"power": 3}}, 422),
               # the setpoint never moved in this history
               ({"horizon_s": 60, "scenario": {"setpoint": 6}}, 409)]
        for body, want in bad:
            st, _, r = self.api(b, "POST", path, body)
            self.assertEqual(st, want, (body, r))
            self.assertEqual(r["status"], want)
            self.assertTrue(r["message"])
        for raw in (b"{", b"\xff\xfe", b'{"horizon_s":60,"horizon_s":61}x', b"null"):
            st, _, r = b.api("POST", path, body=raw, token=self.token,
                             headers={"Content-Type": "application/json"})
            self.assertEqual(st, 400, (raw, r))
        st, _, r = self.api(b, "POST", "/api/v1/devices/nobody/simulate", {"horizon_s": 60})
        self.assertEqual(st, 404, r)
        st, _, r = self.api(b, "POST", "/api/v1/devices/widget-1/simulate", {"horizon_s": 60})
        self.assertEqual(st, 422, r)
        # read scope is enough (it changes nothing); no token is not
        st, _, r = b.api("POST", path, body={"horizon_s": 60}, token=b.token("read"))
        self.assertEqual(st, 200, r)
        st, _, r = b.api("POST", path, body={"horizon_s": 60})
        self.assertEqual(st, 401, r)


if __name__ == "__main__":
    main()
