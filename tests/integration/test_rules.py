"""test_rules.py - rules, alerts and webhooks against a real hub.

One hub (--allow-anonymous, --http) per test class; devices are paho clients
publishing JSON telemetry to dev/{id}/telemetry; the REST API is reached with
http.client and an admin token from `mote token create`; a paho subscriber
watches $alerts/{id}; webhooks go to a Python http.server receiver in this
process whose first answer is 500, so the hub has to retry, and every body's
X-Mote-Signature is checked with hmac against the webhook's secret.

Checked: the alert life cycle with dedup (raise, a repeat updates the same
alert, acknowledge, recovery inside the hysteresis band keeps it, recovery
past it clears it, a new breach opens a second alert, a person clears it),
the $alerts/{id} messages, webhook retries and signatures and the delivery
log, an expression rule over two metrics, a no-data rule, rules and open
alerts across a restart, and validation errors with the API's error shape.
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import unittest

import paho.mqtt.client as mqtt

import harness

SECRET = "it-s3cret"
WAIT = 10.0


class Receiver:
    """A webhook receiver: answers 500 to the first fail_first requests, then 200."""

    def __init__(self, fail_first):
        self.fail_first = fail_first
        self.requests = []  # (headers dict, raw body bytes, status answered)
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    status = 500 if len(outer.requests) < outer.fail_first else 200
                    outer.requests.append((dict(self.headers), body, status, self.path))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((harness.HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Device:
    """A paho client with the device's id as client id (anonymous listener)."""

    def __init__(self, broker, device_id):
        self.id = device_id
        self.c = mqtt.Client(client_id=device_id, protocol=mqtt.MQTTv311)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    def send(self, **metrics):
        info = self.c.publish("dev/%s/telemetry" % self.id, json.dumps(metrics), qos=1)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published(), "telemetry not acknowledged"

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class AlertWatcher:
    """A paho subscriber to $alerts/{device}: the decoded messages in order."""

    def __init__(self, broker, device_id):
        self.msgs = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="watch-" + device_id, protocol=mqtt.MQTTv311)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect(broker.host, broker.port)
        self.c.subscribe("$alerts/" + device_id, qos=1)
        self.c.loop_start()
        assert self.subscribed.wait(WAIT), "no SUBACK"

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.msgs.append((msg.topic, msg.qos, json.loads(msg.payload)))

    def events(self):
        with self.lock:
            return [m[2]["event"] for m in self.msgs]

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class RulesCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http_port = harness.free_port()
        cls.b = harness.Broker(extra_args=["--http", "%s:%d" % (harness.HOST, cls.http_port)])
        cls.b.start()
        try:
            harness.wait_for(lambda: cls._http_up(), timeout=WAIT, what="the HTTP API")
            r = subprocess.run([harness.mote_bin(), "token", "create", "--data", cls.b.data_dir,
                                "--scope", "admin", "--name", "rules-it"],
                               capture_output=True, timeout=30, check=True)
            cls.token = r.stdout.decode().strip().split()[-1]
        except BaseException:
            cls.b.stop(check=False)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.b.stop(check=True)
        finally:
            shutil.rmtree(cls.b.dir, ignore_errors=True)

    @classmethod
    def _http_up(cls):
        try:
            c = http.client.HTTPConnection(harness.HOST, cls.http_port, timeout=1)
            c.request("GET", "/healthz")
            c.getresponse().read()
            c.close()
            return True
        except OSError:
            return False

    def api(self, method, path, body=None, expect=None):
        c = http.client.HTTPConnection(harness.HOST, self.http_port, timeout=WAIT)
        headers = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        raw = r.read()
        c.close()
        doc = json.loads(raw) if raw else None
        if expect is not None and r.status != expect:
            self.fail("%s %s: %d %s (wanted %d)" % (method, path, r.status, raw[:500], expect))
        return r.status, doc

    def alerts(self, device, state=None):
        q = "/api/v1/alerts?device=" + device + ("&state=" + state if state else "")
        return self.api("GET", q, expect=200)[1]["alerts"]

    def wait_alerts(self, device, pred, what):
        last = []

        def check():
            nonlocal last
            last = self.alerts(device)
            return pred(last)
        try:
            harness.wait_for(check, timeout=WAIT, what=what)
        except AssertionError:
            self.fail("%s; alerts now: %s\nlog tail:\n%s" % (what, json.dumps(last),
                                                             self.b.log()[-2000:]))
        return last

    def device(self, device_id):
        d = Device(self.b, device_id)
        self.addCleanup(d.close)
        return d

    def test_lifecycle_dedup_mqtt_and_webhook(self):
        rx = Receiver(fail_first=1)
        self.addCleanup(rx.close)
        _, hook = self.api("POST", "/api/v1/webhooks",
                           {"url": "http://%s:%d/alerts" % (harness.HOST, rx.port),
                            "secret": SECRET}, expect=201)
        self.assertEqual(hook["secret"], SECRET)
        _, rule = self.api("POST", "/api/v1/rules",
                           {"name": "overheat", "device": "rl-1", "kind": "threshold",
                            "metric": "temp", "op": ">", "value": 50, "hysteresis": 5,
                            "severity": "major"}, expect=201)
        watcher = AlertWatcher(self.b, "rl-1")
        self.addCleanup(watcher.close)
        dev = self.device("rl-1")

        # raise
        dev.send(temp=60)
        a = self.wait_alerts("rl-1", lambda l: len(l) == 1, "the alert")[0]
        self.assertEqual((a["type"], a["state"], a["severity"], a["count"], a["value"]),
                         ("overheat", "active", "major", 1, 60))
        self.assertEqual(a["rule"], rule["id"])
        # a repeat updates the same alert
        dev.send(temp=70)
        a = self.wait_alerts("rl-1", lambda l: l and l[0]["count"] == 2, "count 2")[0]
        self.assertEqual(len(self.alerts("rl-1")), 1)
        self.assertEqual(a["value"], 70)
        # /metrics counts it (the hub is shared with the other tests of this class)
        c = http.client.HTTPConnection(harness.HOST, self.http_port, timeout=WAIT)
        c.request("GET", "/metrics", headers={"Authorization": "Bearer " + self.token})
        text = c.getresponse().read().decode()
        c.close()
        values = dict(line.split() for line in text.splitlines() if line and line[0] != "#")
        self.assertGreaterEqual(int(values["mote_alerts_active"]), 1)
        self.assertGreaterEqual(int(values["mote_alerts_raised_total"]), 1)
        self.assertEqual(values["mote_rules"], str(len(self.api("GET", "/api/v1/rules",
                                                                 expect=200)[1]["rules"])))
        # acknowledge
        _, acked = self.api("POST", "/api/v1/alerts/%d/ack" % a["id"], expect=200)
        self.assertTrue(acked["acknowledged"])
        self.assertTrue(acked["ack_by"])
        self.assertEqual(acked["state"], "active")
        # inside the hysteresis band: still active; past it: cleared by the rule
        dev.send(temp=47)
        dev.send(temp=40)
        a = self.wait_alerts("rl-1", lambda l: l and l[0]["state"] == "cleared", "auto-clear")[0]
        self.assertEqual(a["cleared_by"], "rule:%d" % rule["id"])
        self.assertEqual(a["count"], 2)  # 47 did not count as a repeat
        # a new breach: a second alert, cleared by a person
        dev.send(temp=99)
        l = self.wait_alerts("rl-1", lambda l: len(l) == 2, "a second alert")
        self.assertEqual(l[0]["state"], "active")
        _, cleared = self.api("POST", "/api/v1/alerts/%d/clear" % l[0]["id"], expect=200)
        self.assertEqual(cleared["state"], "cleared")
        self.assertTrue(cleared["cleared_by"])
        _, full = self.api("GET", "/api/v1/alerts/%d" % a["id"], expect=200)
        self.assertEqual([e["event"] for e in full["events"]], ["raised", "acknowledged", "cleared"])

        # $alerts/rl-1 saw every change, QoS 1
        want = ["raised", "updated", "acknowledged", "cleared", "raised", "cleared"]
        harness.wait_for(lambda: watcher.events() == want, timeout=WAIT,
                         what="$alerts messages %s (got %s)" % (want, watcher.events()))
        self.assertTrue(all(m[0] == "$alerts/rl-1" and m[1] == 1 for m in watcher.msgs))

        # the webhook: six deliveries, the first retried after a 500, all signed
        hid = hook["id"]

        def delivered():
            _, d = self.api("GET", "/api/v1/webhooks/%d/deliveries" % hid, expect=200)
            return len(d["deliveries"]) == 6 and all(x["status"] == "delivered"
                                                     for x in d["deliveries"])
        harness.wait_for(delivered, timeout=20, what="six delivered webhooks")
        _, d = self.api("GET", "/api/v1/webhooks/%d/deliveries" % hid, expect=200)
        first = d["deliveries"][-1]
        self.assertEqual((first["event"], first["attempts"], first["http_code"]),
                         ("alert.raised", 2, 200))
        reqs = rx.snapshot()
        self.assertEqual(len(reqs), 7)
        self.assertEqual(reqs[0][2], 500)
        by_delivery = {}
        for headers, body, status, path in reqs:
            self.assertEqual(path, "/alerts")
            self.assertEqual(headers["Content-Type"], "application/json")
            want_sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            self.assertTrue(hmac.compare_digest(headers["X-Mote-Signature"], want_sig))
            by_delivery.setdefault(int(headers["X-Mote-Delivery"]), []).append((body, status))
        retried = by_delivery[int(reqs[0][0]["X-Mote-Delivery"])]
        self.assertEqual([st for _, st in retried], [500, 200])
        self.assertEqual(retried[0][0], retried[1][0])  # the same bytes again
        events = [json.loads(by_delivery[k][-1][0])["event"] for k in sorted(by_delivery)]
        self.assertEqual(events, want)

    def test_expression_and_nodata(self):
        self.api("POST", "/api/v1/rules",
                 {"name": "stall", "device": "rl-2", "kind": "expression",
                  "expr": "temp > 80 && rpm < 100", "severity": "critical"}, expect=201)
        self.api("POST", "/api/v1/rules",
                 {"name": "silent", "device": "rl-2", "kind": "nodata", "timeout_s": 2,
                  "severity": "minor"}, expect=201)
        dev = self.device("rl-2")
        dev.send(temp=90, rpm=500)
        dev.send(rpm=20)
        a = self.wait_alerts("rl-2", lambda l: any(x["type"] == "stall" for x in l), "stall")
        stall = [x for x in a if x["type"] == "stall"][0]
        self.assertEqual((stall["severity"], stall["state"]), ("critical", "active"))
        dev.send(rpm=300)
        self.wait_alerts("rl-2", lambda l: all(x["state"] == "cleared" for x in l
                                               if x["type"] == "stall"), "stall cleared")
        # silence: the no-data alert opens, and telemetry clears it
        self.wait_alerts("rl-2", lambda l: any(x["type"] == "silent" and x["state"] == "active"
                                               for x in l), "no-data alert")
        dev.send(temp=20)
        self.wait_alerts("rl-2", lambda l: all(x["state"] == "cleared" for x in l
                                               if x["type"] == "silent"), "no-data cleared")

    def test_restart_keeps_rules_and_open_alerts(self):
        _, rule = self.api("POST", "/api/v1/rules",
                           {"name": "cold", "device": "rl-3", "kind": "threshold",
                            "metric": "temp", "op": "<", "value": 0}, expect=201)
        dev = Device(self.b, "rl-3")
        dev.send(temp=-5)
        self.wait_alerts("rl-3", lambda l: len(l) == 1 and l[0]["state"] == "active", "cold")
        dev.close()
        self.b.restart()
        harness.wait_for(lambda: self._http_up(), timeout=WAIT, what="the HTTP API again")
        _, got = self.api("GET", "/api/v1/rules/%d" % rule["id"], expect=200)
        self.assertEqual((got["name"], got["op"], got["value"]), ("cold", "<", 0))
        # the rule still owns its open alert: recovery after the restart clears it
        dev = self.device("rl-3")
        dev.send(temp=3)
        a = self.wait_alerts("rl-3", lambda l: l[0]["state"] == "cleared", "clear after restart")
        self.assertEqual(len(a), 1)
        self.assertEqual(a[0]["cleared_by"], "rule:%d" % rule["id"])

    def test_validation_errors(self):
        cases = [
            ({"name": "x", "device": "d", "kind": "threshold", "metric": "t", "op": "=>",
              "value": 1}, "field 'op'"),
            ({"name": "x", "kind": "nodata", "timeout_s": 5}, "'device' and 'model'"),
            ({"name": "x", "device": "d", "kind": "expression", "expr": "a >"},
             "field 'expr': position 3"),
            ({"name": "x", "device": "d", "kind": "nodata", "timeout_s": 5, "for": 3},
             "unknown field 'for'"),
        ]
        for body, text in cases:
            status, doc = self.api("POST", "/api/v1/rules", body)
            self.assertEqual(status, 400, doc)
            self.assertEqual(doc["error"], "bad_request")
            self.assertIn(text, doc["message"])
        status, doc = self.api("POST", "/api/v1/rules", b"{not json")
        self.assertEqual(status, 400)
        status, doc = self.api("POST", "/api/v1/webhooks", {"url": "ftp://x.example/"})
        self.assertEqual(status, 400)
        self.assertIn("field 'url'", doc["message"])
        status, doc = self.api("GET", "/api/v1/alerts/999999")
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
