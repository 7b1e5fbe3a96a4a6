"""test_twins.py - digital twins over MQTT and REST against a real hub.

One hub (anonymous MQTT listener, so a client whose id is X is the device X,
registered on its first connect; HTTP API with a write token) serves every
test; each test uses its own device ids, so they do not share twins or rate
budgets. Devices are paho 1.6.1 clients subscribed to their reply topics
($twin/ID/get/+ and $twin/ID/update/+); operators write desired state through
PATCH /api/v1/devices/ID/twin. Checked: get, update, accepted and rejected
(400, 403, 404, 409, 413, 429), delta to the device, documents, the delta on
reconnect, null deletes, malformed and hostile JSON, and REST GET/PATCH.
docs/twins.md has the rules.
"""
import json
import time
import unittest

import harness
from peers_paho import V311, Peer, WAIT


class Device:
    """A device: a paho client whose id is the device id, subscribed to its
    twin's reply topics. Replies are looked up by topic, in arrival order."""

    def __init__(self, case, broker, dev_id, clean=True):
        self.id = dev_id
        self.used = set()  # indexes of peer.msgs already returned
        self.peer = Peer(broker, dev_id, V311, clean=clean)
        case.addCleanup(self.peer.close)
        self.peer.connect()
        self.peer.subscribe([("$twin/%s/get/+" % dev_id, 1), ("$twin/%s/update/+" % dev_id, 1)])

    def send(self, op, body):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.peer.publish("$twin/%s/%s" % (self.id, op), body, qos=1)

    def reply(self, suffix, timeout=WAIT):
        """The next message on $twin/ID/suffix after the ones taken, parsed;
        messages on other topics before it stay for later look-ups."""
        topic = "$twin/%s/%s" % (self.id, suffix)
        cv = self.peer._cv
        deadline = time.monotonic() + timeout
        with cv:
            while True:
                for i in range(len(self.peer.msgs)):
                    m = self.peer.msgs[i]
                    if m.topic == topic and i not in self.used:
                        self.used.add(i)
                        assert m.qos == 1 and not m.retain, m
                        return json.loads(m.payload)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no message on %s within %.1f s; got %r"
                                         % (topic, timeout, self.peer.msgs[-6:]))
                cv.wait(left)

    def request(self, op, body, outcome):
        """send, then the reply on op/outcome."""
        self.send(op, body)
        return self.reply("%s/%s" % (op, outcome))

    def none(self, suffix, window=0.5):
        """No (untaken) message on $twin/ID/suffix arrives within window."""
        time.sleep(window)
        topic = "$twin/%s/%s" % (self.id, suffix)
        with self.peer._cv:
            extra = [m for i, m in enumerate(self.peer.msgs) if m.topic == topic and
                     i not in self.used]
        assert not extra, "unexpected on %s: %r" % (topic, extra)


@unittest.skipUnless(harness.broker_kind() == "mote", "twins are mote's platform")
class TwinCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # limits below the defaults, so the hub options are checked too
        cls.b = harness.Broker(http=True, extra_args=["--twin-max-bytes", "4096",
                                                      "--twin-max-depth", "5"])
        cls.b.start()
        cls.token = cls.b.token("write")

    @classmethod
    def tearDownClass(cls):
        import shutil
        try:
            cls.b.stop(check=True)
        finally:
            shutil.rmtree(cls.b.dir, ignore_errors=True)

    def device(self, dev_id, clean=True):
        return Device(self, self.b, dev_id, clean)

    def api(self, method, dev_id, body=None, token=None):
        return self.b.api(method, "/api/v1/devices/%s/twin" % dev_id, body,
                          token=token or self.token,
                          headers={"Content-Type": "application/json"})

    def patch(self, dev_id, body, status=200):
        st, _, doc = self.api("PATCH", dev_id, body)
        self.assertEqual(st, status, doc)
        return doc

    def wait_registered(self, dev_id):
        """The device's twin is reachable over REST (auto-registration runs
        on the hub's pipeline after CONNACK)."""
        harness.wait_for(lambda: self.api("GET", dev_id)[0] == 200, 5,
                         "twin of %s over REST" % dev_id)

    # ---- MQTT --------------------------------------------------------------

    def test_get_and_report(self):
        d = self.device("tw-get")
        doc = d.request("get", {"clientToken": "g1"}, "accepted")
        self.assertEqual(doc["state"], {"desired": {}, "reported": {}, "delta": {}})
        self.assertEqual(doc["version"], 0)
        self.assertEqual(doc["clientToken"], "g1")
        self.assertIsInstance(doc["timestamp"], int)

        acc = d.request("update", {"state": {"reported": {"temp": 19.5, "fw": "1.4",
                                                          "io": {"a": True}}},
                                   "clientToken": "r1"}, "accepted")
        self.assertEqual(acc["state"], {"reported": {"temp": 19.5, "fw": "1.4", "io": {"a": True}}})
        self.assertEqual(acc["version"], 1)
        self.assertEqual(acc["clientToken"], "r1")
        ts = acc["metadata"]["reported"]["temp"]["timestamp"]
        self.assertEqual(acc["metadata"]["reported"]["io"]["a"]["timestamp"], ts)
        self.assertLess(abs(ts - time.time() * 1000), 60000)
        docs = d.reply("update/documents")
        self.assertEqual(docs["previous"]["version"], 0)
        self.assertEqual(docs["current"]["version"], 1)
        self.assertEqual(docs["current"]["state"]["reported"]["fw"], "1.4")
        self.assertEqual(docs["clientToken"], "r1")
        d.none("update/delta", 0.3)  # desired is empty: nothing to do

        doc = d.request("get", "", "accepted")
        self.assertEqual(doc["state"]["reported"], {"temp": 19.5, "fw": "1.4", "io": {"a": True}})
        self.assertEqual(doc["metadata"]["reported"]["fw"]["timestamp"], ts)
        self.assertNotIn("clientToken", doc)

    def test_clean_session_gets_delta_on_subscribe(self):
        # registered ahead of time, desired set while it never connected
        st, _, _ = self.b.api("POST", "/api/v1/devices", {"id": "tw-clean"}, token=self.token)
        self.assertEqual(st, 201)
        self.patch("tw-clean", {"desired": {"mode": "eco"}})
        for _ in range(5):
            # each time a new clean session: the delta comes once its
            # subscription exists, never before it
            d = Device(self, self.b, "tw-clean", clean=True)
            delta = d.reply("update/delta")
            self.assertEqual((delta["state"], delta["version"]), ({"mode": "eco"}, 1))
            d.peer.close()

    def test_patch_tags_with_desired(self):
        self.device("tw-tags")
        self.wait_registered("tw-tags")
        doc = self.patch("tw-tags", {"desired": {"fan": 2}, "tags": {"site": "north"}})
        self.assertEqual(doc["state"]["desired"], {"fan": 2})
        st, _, dev = self.b.api("GET", "/api/v1/devices/tw-tags", token=self.token)
        self.assertEqual((st, dev["tags"]), (200, {"site": "north"}))
        # tags alone: the twin is answered unchanged
        doc = self.patch("tw-tags", {"tags": {"site": "south", "line": "2"}})
        self.assertEqual(doc["version"], 1)
        st, _, dev = self.b.api("GET", "/api/v1/devices/tw-tags", token=self.token)
        self.assertEqual(dev["tags"], {"site": "south", "line": "2"})
        # bad tags: 400 and the desired part is not applied either
        err = self.patch("tw-tags", {"desired": {"fan": 3}, "tags": {"site": 5}}, status=400)
        self.assertIn("tag", err["message"])
        st, _, doc = self.api("GET", "tw-tags")
        self.assertEqual((doc["version"], doc["state"]["desired"]), (1, {"fan": 2}))

    def test_delta_to_device_and_rest(self):
        d = self.device("tw-delta")
        self.wait_registered("tw-delta")
        st, _, doc = self.api("GET", "tw-delta")
        self.assertEqual((st, doc["version"]), (200, 0))

        doc = self.patch("tw-delta", {"desired": {"led": "on", "cfg": {"rate": 5, "mode": "eco"}},
                                      "version": 0})
        self.assertEqual(doc["version"], 1)
        self.assertEqual(doc["state"]["delta"], {"led": "on", "cfg": {"rate": 5, "mode": "eco"}})
        delta = d.reply("update/delta")
        self.assertEqual(delta["state"], {"led": "on", "cfg": {"rate": 5, "mode": "eco"}})
        self.assertEqual(delta["version"], 1)
        self.assertIn("timestamp", delta["metadata"]["cfg"]["rate"])
        acc = d.reply("update/accepted")  # an operator's write is announced too
        self.assertEqual(acc["state"], {"desired": {"led": "on", "cfg": {"rate": 5, "mode": "eco"}}})
        docs = d.reply("update/documents")
        self.assertEqual((docs["previous"]["version"], docs["current"]["version"]), (0, 1))

        # the device does part of it: the delta shrinks, recursively
        d.request("update", {"state": {"reported": {"led": "on", "cfg": {"rate": 5}}}}, "accepted")
        delta = d.reply("update/delta")
        self.assertEqual(delta["state"], {"cfg": {"mode": "eco"}})
        self.assertEqual(delta["version"], 2)
        # a report nobody asked for leaves the delta alone: no delta message
        d.request("update", {"state": {"reported": {"rssi": -71}}}, "accepted")
        d.none("update/delta", 0.3)
        # all done: the delta is empty and not sent
        d.request("update", {"state": {"reported": {"cfg": {"mode": "eco"}}}}, "accepted")
        d.none("update/delta", 0.3)
        st, _, doc = self.api("GET", "tw-delta")
        self.assertEqual(doc["state"]["delta"], {})
        self.assertEqual(doc["version"], 4)

        # REST errors in the API's one shape
        st, _, err = self.api("PATCH", "tw-delta", {"desired": {"led": "off"}, "version": 1})
        self.assertEqual((st, err["status"], err["error"]), (409, 409, "conflict"))
        st, _, err = self.api("PATCH", "tw-delta", '{"desired":')
        self.assertEqual((st, err["error"]), (400, "bad_request"))
        st, _, err = self.api("PATCH", "tw-delta", {"reported": {"led": "off"}})
        self.assertEqual(st, 400)
        st, _, err = self.api("PATCH", "tw-delta", {"desired": {"blob": "x" * 9000}})
        self.assertEqual((st, err["error"]), (413, "payload_too_large"))
        st, _, err = self.api("GET", "tw-nobody")
        self.assertEqual((st, err["error"]), (404, "not_found"))
        st, _, err = self.api("PATCH", "tw-nobody", {"desired": {"a": 1}})
        self.assertEqual(st, 404)

    def test_reconnect_gets_delta(self):
        d = self.device("tw-recon", clean=False)
        self.wait_registered("tw-recon")
        d.peer.disconnect()
        self.patch("tw-recon", {"desired": {"fan": 3}})
        # back online with its session (and subscriptions): the hub sends the
        # delta it missed without being asked
        d2 = self.device("tw-recon", clean=False)
        delta = d2.reply("update/delta")
        self.assertEqual(delta["state"], {"fan": 3})
        self.assertEqual(delta["version"], 1)
        # and once it has caught up, a reconnect brings no delta
        d2.request("update", {"state": {"reported": {"fan": 3}}}, "accepted")
        d2.peer.disconnect()
        d3 = self.device("tw-recon")
        d3.none("update/delta", 0.5)

    def test_conflict_and_null_delete(self):
        d = self.device("tw-ver")
        d.request("update", {"state": {"reported": {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}},
                             "version": 0}, "accepted")
        rej = d.request("update", {"state": {"reported": {"a": 2}}, "version": 0,
                                   "clientToken": "stale"}, "rejected")
        self.assertEqual((rej["code"], rej["clientToken"]), (409, "stale"))
        self.assertIn("version", rej["message"])
        acc = d.request("update", {"state": {"reported": {"a": None, "b": {"c": None},
                                                          "l": [9]}}, "version": 1}, "accepted")
        self.assertEqual(acc["version"], 2)
        self.assertEqual(acc["state"]["reported"]["a"], None)  # echoed as sent
        doc = d.request("get", "", "accepted")
        self.assertEqual(doc["state"]["reported"], {"b": {"d": 3}, "l": [9]})
        self.assertEqual(set(doc["metadata"]["reported"]), {"b", "l"})
        self.assertEqual(set(doc["metadata"]["reported"]["b"]), {"d"})
        # deleting the last key removes the emptied object
        d.request("update", {"state": {"reported": {"b": {"d": None}}}}, "accepted")
        doc = d.request("get", "", "accepted")
        self.assertEqual(doc["state"]["reported"], {"l": [9]})
        self.assertEqual(doc["version"], 3)

    def test_refusals(self):
        d = self.device("tw-bad")
        cases = [
            (b'{"state":{"reported":{"a":1}}', 400),                     # truncated
            (b'{"state":{"reported":{"a":01}}}', 400),                   # not JSON
            (b'{"state":{"reported":{"a":"\xff"}}}', 400),               # not UTF-8
            (b'{"state":{"reported":{"a":1,"a":2}}}', 400),              # duplicate key
            (b'[1,2]', 400),
            (b'{"state":{"reported":{}},"extra":1}', 400),               # unknown key
            (b'{"state":{"reported":5}}', 400),
            (b'{"state":{"reported":{}},"version":"1"}', 400),
            (('{"state":{"reported":{}},"clientToken":"%s"}' % ("k" * 65)).encode(), 400),
            (('{"state":{"reported":{"%s":1}}}' % ("k" * 300)).encode(), 400),  # huge key
            # depth: the reported object is level 1, a's object 2, ... f's 6 > 5
            (b'{"state":{"reported":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}}', 400),
            (b'{"state":{"reported":{"a":{"b":{"c":[[[1]]]}}}}}', 400),       # arrays count
            (b'{"state":{"reported":' + b'{"k":' * 5000 + b'1' + b'}' * 5000 + b'}}', 413),
            (json.dumps({"state": {"reported": {"blob": "x" * 4100}}}).encode(), 413),
        ]
        for body, code in cases:
            rej = d.request("update", body, "rejected")
            self.assertEqual(rej["code"], code, (body[:60], rej))
            self.assertTrue(rej["message"])
        # the token is echoed when the request is refused for another reason
        rej = d.request("update", {"state": {"reported": []}, "clientToken": "tk"}, "rejected")
        self.assertEqual((rej["code"], rej["clientToken"]), (400, "tk"))
        # a device may not write its own desired state
        rej = d.request("update", {"state": {"desired": {"x": 1}}, "clientToken": "d"}, "rejected")
        self.assertEqual((rej["code"], rej["clientToken"]), (403, "d"))
        # none of it changed the twin; the hub still serves the device
        doc = d.request("get", "", "accepted")
        self.assertEqual((doc["version"], doc["state"]["reported"]), (0, {}))
        # right at the limits: accepted
        d.request("update", b'{"state":{"reported":{"a":{"b":{"c":{"d":{"e":1}}}}}}}', "accepted")
        d.request("update", b'{"state":{"reported":{"l":{"m":{"n":[[1]]}}}}}', "accepted")
        big = {"state": {"reported": {"a": None, "l": None, "blob": "x" * 3000}}}
        acc = d.request("update", big, "accepted")
        self.assertEqual(acc["version"], 3)
        # a second blob would take the state over 4096 bytes
        rej = d.request("update", {"state": {"reported": {"blob2": "y" * 1500}}}, "rejected")
        self.assertEqual(rej["code"], 413)
        self.assertIn("4096", rej["message"])

    def test_operator_over_mqtt(self):
        # a client writing another device's twin is an operator: desired is allowed
        d = self.device("tw-opdev")
        ops = self.device("tw-ops")
        ops.peer.subscribe("$twin/tw-opdev/update/+", 1)
        ops.peer.publish("$twin/tw-opdev/update",
                         json.dumps({"state": {"desired": {"valve": "open"}},
                                     "clientToken": "op1"}).encode(), 1)
        delta = d.reply("update/delta")
        self.assertEqual(delta["state"], {"valve": "open"})
        acc = d.reply("update/accepted")
        self.assertEqual(acc["clientToken"], "op1")

    def test_restart_keeps_twins(self):
        d = self.device("tw-keep", clean=False)
        d.request("update", {"state": {"reported": {"kept": [1, 2]}}}, "accepted")
        self.patch("tw-keep", {"desired": {"kept": [3]}})
        d.peer.close()
        self.b.restart()
        st, _, doc = self.api("GET", "tw-keep")
        self.assertEqual(st, 200)
        self.assertEqual(doc["version"], 2)
        self.assertEqual(doc["state"], {"desired": {"kept": [3]}, "reported": {"kept": [1, 2]},
                                        "delta": {"kept": [3]}})
        # the device that comes back (its session kept in the journal) is
        # told what it missed
        d2 = self.device("tw-keep", clean=False)
        self.assertEqual(d2.reply("update/delta")["state"], {"kept": [3]})

    def test_twin_events(self):
        # every accepted change is a "twin" event on the API's live stream
        import http.client
        self.device("tw-ev")
        self.wait_registered("tw-ev")
        conn = http.client.HTTPConnection(self.b.host, self.b.http_port, timeout=5)
        self.addCleanup(conn.close)
        conn.request("GET", "/api/v1/events?device=tw-ev&types=twin",
                     headers={"Authorization": "Bearer " + self.token})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        resp.fp.readline()  # whatever the stream opens with may come first
        self.patch("tw-ev", {"desired": {"x": 1}})
        deadline = time.monotonic() + 5
        event = None
        while event is None and time.monotonic() < deadline:
            line = resp.fp.readline().decode()
            if line.startswith("data:") and '"version"' in line:
                event = json.loads(line[5:])
        self.assertIsNotNone(event)
        self.assertEqual((event["device"], event["version"], event["source"]),
                         ("tw-ev", 1, "operator"))
        self.assertEqual(event["state"], {"desired": {"x": 1}})

    def test_unknown_device(self):
        # a client may ask about a device that was never registered: 404
        p = Peer(self.b, "tw-probe", V311)
        self.addCleanup(p.close)
        p.connect()
        p.subscribe("$twin/tw-ghost/+/rejected", 1)
        p.publish("$twin/tw-ghost/get", b'{"clientToken":"who"}', 1)
        m = p.expect_one()
        self.assertEqual(m.topic, "$twin/tw-ghost/get/rejected")
        rej = json.loads(m.payload)
        self.assertEqual((rej["code"], rej["clientToken"]), (404, "who"))

    def test_rate_limit(self):
        d = self.device("tw-rate")
        # the budget is 20 requests at once, then 10/s: 40 at once overrun it
        for i in range(40):
            d.peer.publish("$twin/tw-rate/update",
                           json.dumps({"state": {"reported": {"n": i}}}).encode(), 1, wait=False)
        codes = []
        deadline = time.monotonic() + 10
        while len(codes) < 40 and time.monotonic() < deadline:
            with d.peer._cv:
                codes = [json.loads(m.payload).get("code", 200) if m.topic.endswith("rejected")
                         else 200 for m in d.peer.msgs
                         if m.topic in ("$twin/tw-rate/update/accepted",
                                        "$twin/tw-rate/update/rejected")]
                d.peer._cv.wait(0.2)
        self.assertEqual(len(codes), 40)
        self.assertIn(429, codes)
        self.assertGreaterEqual(codes.count(200), 20)
        self.assertEqual(set(codes), {200, 429})


if __name__ == "__main__":
    harness.main()
