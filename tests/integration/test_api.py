"""test_api.py - the HTTP API of a real hub, with real clients.

http.client (and raw sockets for what http.client refuses to send) against
`mote hub --http`; paho publishes the telemetry and plays the devices whose
connections the event stream reports. Covered: tokens (none, wrong, wrong
scope, created and revoked while the hub runs, the per-address refusal shared
with MQTT), malformed requests (bad JSON, wrong content type, oversized body,
bad query values, unknown route, wrong method), devices CRUD with delete,
telemetry queried with each aggregation and as CSV, live Server-Sent Events,
/metrics in the Prometheus text format, the OpenAPI document against the live
routes, and MQTT served while HTTP is hammered with junk.
"""
import json
import re
import socket
import subprocess
import threading
import time
import unittest

import harness
import paho.mqtt.client as mqtt

MOTE = harness.mote_bin()
ERR_KEYS = {"status", "error", "message"}


def mqtt_client(b, cid):
    """A connected paho client (anonymous listener: the client id is the device)."""
    c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv311)
    ok = threading.Event()
    c.on_connect = lambda *a: ok.set()
    c.connect(b.host, b.port)
    c.loop_start()
    if not ok.wait(5):
        raise AssertionError("paho %s did not connect" % cid)
    return c


class SSE:
    """One event stream read over a raw socket (HTTP/1.0: no chunking)."""

    def __init__(self, b, token, query=""):
        self.s = socket.create_connection((b.host, b.http_port), timeout=5)
        self.s.sendall(("GET /api/v1/events%s HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n"
                        % (query, token)).encode())
        self.f = self.s.makefile("rb")
        self.status = int(self.f.readline().split()[1])
        self.headers = {}
        while True:
            line = self.f.readline().decode().strip()
            if not line:
                break
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()

    def next(self, timeout=5.0):
        """(event, data) of the next event; comments (heartbeats) are skipped."""
        self.s.settimeout(timeout)
        ev, data = None, []
        while True:
            line = self.f.readline()
            if not line:
                raise AssertionError("the event stream ended")
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                ev = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and ev:
                return ev, json.loads("\n".join(data))

    def until(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching event")
            ev, data = self.next(left)
            if pred(ev, data):
                return ev, data

    def close(self):
        # the file object holds the descriptor open too
        self.f.close()
        self.s.close()


class ApiCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Failed tokens count per address like MQTT logins; the junk below
        # would trip the default 5, and test_address_refusal has its own hub.
        cls.b = harness.Broker(http=True, extra_args=["--auth-fail-max", "1000000"])
        cls.b.start()
        cls.admin = cls.b.token("admin", "adm")
        cls.write = cls.b.token("write", "wri")
        cls.read = cls.b.token("read", "rea")

    @classmethod
    def tearDownClass(cls):
        import shutil
        try:
            cls.b.stop(check=True)
        finally:
            shutil.rmtree(cls.b.dir, ignore_errors=True)

    def api(self, method, path, body=None, token=None, **kw):
        return self.b.api(method, path, body=body, token=token, **kw)

    def assertError(self, resp, status, word=None, contains=None):
        st, h, body = resp
        self.assertEqual(st, status, body)
        self.assertTrue(h["content-type"].startswith("application/json"), h)
        self.assertEqual(set(body), ERR_KEYS, body)
        self.assertEqual(body["status"], status)
        if word:
            self.assertEqual(body["error"], word)
        if contains:
            self.assertIn(contains, body["message"])
        self.assertEqual(h.get("x-content-type-options"), "nosniff")
        self.assertEqual(h.get("cache-control"), "no-store")
        return body

    # ---- tokens ----

    def test_tokens(self):
        st, h, body = self.api("GET", "/healthz")
        self.assertEqual((st, body["status"]), (200, "ok"))
        r = self.api("GET", "/api/v1/devices")
        self.assertError(r, 401, "unauthorized")
        self.assertTrue(r[1]["www-authenticate"].startswith("Bearer"))
        r = self.api("GET", "/api/v1/devices", token="mote_" + "0" * 64)
        self.assertError(r, 401)
        self.assertIn('error="invalid_token"', r[1]["www-authenticate"])
        self.assertError(self.api("GET", "/api/v1/devices",
                                  headers={"Authorization": "Basic YWRtaW46eA=="}), 401)
        self.assertError(self.api("GET", "/metrics"), 401)
        # read: GET only
        self.assertEqual(self.api("GET", "/api/v1/devices", token=self.read)[0], 200)
        self.assertError(self.api("POST", "/api/v1/devices", {"id": "t-ro"}, token=self.read),
                         403, "forbidden", "scope write")
        self.assertError(self.api("GET", "/api/v1/webhooks", token=self.read), 403)
        # write: devices, not deletes nor rules
        self.assertEqual(self.api("POST", "/api/v1/devices", {"id": "t-w"}, token=self.write)[0], 201)
        self.assertError(self.api("DELETE", "/api/v1/devices/t-w", token=self.write), 403,
                         contains="scope admin")
        self.assertError(self.api("POST", "/api/v1/rules", {}, token=self.write), 403)
        self.assertEqual(self.api("DELETE", "/api/v1/devices/t-w", token=self.admin)[0], 204)
        # created while the hub runs: works at once; revoked: refused at once
        fresh = self.b.token("read", "fresh")
        self.assertEqual(self.api("GET", "/api/v1/devices", token=fresh)[0], 200)
        subprocess.run([MOTE, "token", "revoke", "fresh", "--data", self.b.data_dir],
                       check=True, capture_output=True)
        self.assertError(self.api("GET", "/api/v1/devices", token=fresh), 401)
        self.assertEqual(self.api("GET", "/api/v1/devices", token=self.read)[0], 200)

    # ---- malformed requests ----

    def test_malformed(self):
        A = self.admin
        self.assertError(self.api("POST", "/api/v1/devices", "{not json", token=A,
                                  headers={"Content-Type": "application/json"}), 400, "bad_request")
        self.assertError(self.api("POST", "/api/v1/devices", "{}", token=A,
                                  headers={"Content-Type": "text/plain"}), 415,
                         "unsupported_media_type")
        self.assertError(self.api("POST", "/api/v1/devices", b"{}", token=A), 415)
        self.assertError(self.api("POST", "/api/v1/devices", b"", token=A,
                                  headers={"Content-Type": "application/json"}), 400,
                         contains="JSON body")
        big = '{"id":"x","name":"' + "a" * 70000 + '"}'
        self.assertError(self.api("POST", "/api/v1/devices", big, token=A,
                                  headers={"Content-Type": "application/json"}), 413,
                         "payload_too_large")
        # a chunked body over the limit (no Content-Length to refuse up front)
        s = socket.create_connection((self.b.host, self.b.http_port), timeout=5)
        chunk = b"a" * 40000
        s.sendall(b"POST /api/v1/devices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + A.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"
                  + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3 + b"0\r\n\r\n")
        self.assertIn(b" 413 ", s.recv(200))
        s.close()
        q = "/api/v1/devices/nobody/telemetry?"
        for query, says in [("metric=t&from=yesterday", "from 'yesterday' is not a time"),
                            ("metric=t&to=2026-02-30T00:00:00Z", "is not a time"),
                            ("metric=t&agg=median", "agg 'median'"),
                            ("metric=t&agg=avg&interval=0", "interval '0'"),
                            ("metric=t&interval=5m", "interval needs agg"),
                            ("metric=t&limit=-1", "limit '-1'"),
                            ("metric=t&limit=99999999999999999999", "limit"),
                            ("metric=t&from=10&to=5", "from must be before to"),
                            ("metric=t&form=1", "unknown query parameter 'form'"),
                            ("metric=t&metric=u", "more than once"),
                            ("from=1", "metric is required"),
                            ("metric=t&from=%zz", "invalid %-escape"),
                            ("metric=t&from=%00", "NUL")]:
            self.assertError(self.api("GET", q + query, token=A), 400, "bad_request", says)
        self.assertError(self.api("GET", "/api/v1/devices?limit=0", token=A), 400)
        self.assertError(self.api("GET", "/api/v1/devices?status=maybe", token=A), 400)
        self.assertError(self.api("GET", "/api/v1/alerts?acknowledged=perhaps", token=A), 400)
        self.assertError(self.api("GET", "/api/v1/alerts?severity=huge", token=A), 400)
        self.assertError(self.api("GET", "/api/v1/events?types=bogus", token=A), 400)
        self.assertError(self.api("GET", "/api/v1/nothing", token=A), 404, "not_found", "no route")
        self.assertError(self.api("GET", "/api/v2/devices", token=A), 404)
        r = self.assertError(self.api("PUT", "/api/v1/devices", "{}", token=A,
                                      headers={"Content-Type": "application/json"}), 405,
                             "method_not_allowed")
        self.assertEqual(self.api("PUT", "/api/v1/devices", token=A)[1]["allow"], "GET, POST")
        self.assertError(self.api("BREW", "/api/v1/devices", token=A), 405)
        self.assertError(self.api("GET", "/api/v1/devices/a%00b", token=A), 400)

    # ---- devices ----

    def test_devices_crud(self):
        A = self.admin
        st, _, d = self.api("POST", "/api/v1/devices",
                            {"id": "crud-1", "name": "Pump", "model": "pump", "tags": {"site": "n"}},
                            token=self.write)
        self.assertEqual(st, 201, d)
        self.assertEqual((d["id"], d["model"], d["tags"]), ("crud-1", "pump", {"site": "n"}))
        self.assertError(self.api("POST", "/api/v1/devices", {"id": "crud-1"}, token=A), 409)
        self.assertError(self.api("POST", "/api/v1/devices", {"id": "bad id/x"}, token=A), 400)
        st, _, d = self.api("GET", "/api/v1/devices/crud-1", token=self.read)
        self.assertEqual((st, d["name"], d["online"]), (200, "Pump", False))
        st, _, lst = self.api("GET", "/api/v1/devices?model=pump&tag=site:n", token=self.read)
        self.assertEqual(st, 200)
        self.assertIn("crud-1", [x["id"] for x in lst["devices"]])
        st, _, d = self.api("PATCH", "/api/v1/devices/crud-1", {"name": "Pump 2"}, token=self.write)
        self.assertEqual((st, d["name"]), (200, "Pump 2"))
        st, _, twin = self.api("GET", "/api/v1/devices/crud-1/twin", token=self.read)
        self.assertEqual(st, 200, twin)
        st, _, twin = self.api("PATCH", "/api/v1/devices/crud-1/twin",
                               {"desired": {"temp": 21}}, token=self.write)
        self.assertEqual(st, 200, twin)
        self.assertEqual(twin["state"]["desired"]["temp"], 21)
        self.assertEqual(self.api("DELETE", "/api/v1/devices/crud-1", token=A)[0], 204)
        self.assertError(self.api("GET", "/api/v1/devices/crud-1", token=A), 404)
        self.assertError(self.api("GET", "/api/v1/devices/crud-1/twin", token=A), 404)
        self.assertError(self.api("DELETE", "/api/v1/devices/crud-1", token=A), 404)

    # ---- telemetry ----

    def test_telemetry_query(self):
        A = self.read
        c = mqtt_client(self.b, "tel-1")
        try:
            # 120 points, one a second over two whole minutes, ten minutes ago
            t0 = (int(time.time() * 1000) // 60000 - 10) * 60000
            for i in range(120):
                c.publish("dev/tel-1/telemetry",
                          json.dumps({"temp": float(i), "ts": t0 + i * 1000}), qos=1).wait_for_publish()
            base = "/api/v1/devices/tel-1/telemetry?metric=temp&from=%d&to=%d" % (t0, t0 + 120000)

            def all_there():
                st, _, r = self.api("GET", base, token=A)
                return st == 200 and len(r["points"]) == 120
            harness.wait_for(all_there, 10, "120 points in the store")
            st, h, r = self.api("GET", base, token=A)
            self.assertEqual(r["points"][0], [t0, 0])
            self.assertEqual(r["points"][-1], [t0 + 119000, 119])
            self.assertFalse(r["truncated"])
            self.assertEqual((r["device"], r["metric"], r["agg"]), ("tel-1", "temp", "none"))
            want = {"avg": [29.5, 89.5], "min": [0, 60], "max": [59, 119],
                    "sum": [sum(range(60)), sum(range(60, 120))], "count": [60, 60],
                    "last": [59, 119]}
            for agg, values in want.items():
                st, _, r = self.api("GET", base + "&agg=%s&interval=1m" % agg, token=A)
                self.assertEqual(st, 200, r)
                self.assertEqual(r["points"], [[t0, values[0]], [t0 + 60000, values[1]]], agg)
            # one bucket for the whole range
            st, _, r = self.api("GET", base + "&agg=max", token=A)
            self.assertEqual([p[1] for p in r["points"]], [119])
            # RFC 3339 bounds give the same answer as ms
            iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 / 1000))
            st, _, r = self.api("GET", "/api/v1/devices/tel-1/telemetry?metric=temp&from=%s&to=%d"
                                % (iso, t0 + 120000), token=A)
            self.assertEqual(len(r["points"]), 120)
            st, _, r = self.api("GET", base + "&limit=10", token=A)
            self.assertEqual((len(r["points"]), r["truncated"]), (10, True))
            # CSV
            st, h, csv = self.api("GET", base, token=A, headers={"Accept": "text/csv"}, raw=True)
            self.assertEqual(st, 200)
            self.assertTrue(h["content-type"].startswith("text/csv"))
            lines = csv.decode().splitlines()
            self.assertEqual(lines[0], "timestamp,value")
            self.assertEqual(len(lines), 121)
            self.assertEqual(lines[1], time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                     time.gmtime(t0 / 1000)) + ",0")
            st, h, csv = self.api("GET", base + "&format=csv&time=ms&agg=avg&interval=1m", token=A,
                                  raw=True)
            self.assertEqual(csv.decode().splitlines(),
                             ["timestamp,value", "%d,29.5" % t0, "%d,89.5" % (t0 + 60000)])
            st, _, r = self.api("GET", "/api/v1/devices/tel-1/telemetry/latest", token=A)
            self.assertEqual(st, 200, r)
            latest = {x["metric"]: x for x in r["latest"]}
            self.assertEqual((latest["temp"]["value"], latest["temp"]["ts"]), (119, t0 + 119000))
            self.assertError(self.api("GET", "/api/v1/devices/nobody/telemetry?metric=temp", token=A),
                             404, contains="nobody")
            self.assertError(self.api("GET", "/api/v1/devices/nobody/telemetry/latest", token=A), 404)
        finally:
            c.loop_stop()
            c.disconnect()

    # ---- SSE ----

    def test_events(self):
        sse = SSE(self.b, self.read, "?device=sse-1&types=telemetry,connection")
        alerts_only = SSE(self.b, self.read, "?types=alert")
        try:
            self.assertEqual(sse.status, 200)
            self.assertTrue(sse.headers["content-type"].startswith("text/event-stream"))
            other = mqtt_client(self.b, "sse-other")
            c = mqtt_client(self.b, "sse-1")
            ev, data = sse.until(lambda e, d: e == "connection")
            self.assertIn("sse-1", json.dumps(data))
            other.publish("dev/sse-other/telemetry", json.dumps({"temp": 1}), qos=1).wait_for_publish()
            c.publish("dev/sse-1/telemetry", json.dumps({"temp": 42.5}), qos=1).wait_for_publish()
            ev, data = sse.until(lambda e, d: e == "telemetry")
            # the filter kept sse-other's telemetry out: the first one is ours
            self.assertIn("sse-1", json.dumps(data))
            self.assertNotIn("sse-other", json.dumps(data))
            self.assertIn("42.5", json.dumps(data))
            c.loop_stop()
            c.disconnect()
            ev, data = sse.until(lambda e, d: e == "connection")
            self.assertIn("sse-1", json.dumps(data))
            other.loop_stop()
            other.disconnect()
            st, _, m = self.api("GET", "/metrics", token=self.read, raw=True)
            self.assertRegex(m.decode(), r"(?m)^mote_http_sse_clients 2$")
            # the alerts-only stream got nothing but its greeting meanwhile
            alerts_only.s.settimeout(0.3)
            try:
                got = alerts_only.f.read1(4096) if hasattr(alerts_only.f, "read1") else b""
            except (socket.timeout, TimeoutError):
                got = b""
            self.assertNotIn(b"event: telemetry", got)
        finally:
            sse.close()
            alerts_only.close()

    # ---- metrics ----

    def scrape(self):
        st, h, text = self.api("GET", "/metrics", token=self.read, raw=True)
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"))
        helps, types, samples = set(), {}, {}
        for line in text.decode().splitlines():
            if line.startswith("# HELP "):
                helps.add(line.split()[2])
            elif line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                self.assertIn(kind, ("counter", "gauge"))
                types[name] = kind
            else:
                m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"]*"\})? ([0-9.e+-]+)', line)
                self.assertIsNotNone(m, "not a sample line: %r" % line)
                self.assertIn(m.group(1), types, "sample before its # TYPE: %r" % line)
                samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        self.assertEqual(helps, set(types))
        return samples

    def test_metrics(self):
        # a connected device shows in the broker's and the registry's numbers
        # (the hub copies the broker's counters once a second)
        c = mqtt_client(self.b, "metrics-1")
        try:
            c.publish("dev/metrics-1/telemetry", json.dumps({"temp": 1}), qos=1).wait_for_publish()
            harness.wait_for(lambda: self.scrape()["mote_broker_clients_connected"] >= 1
                             and self.scrape()["mote_devices_online"] >= 1
                             and self.scrape()["mote_telemetry_points_total"] >= 1, 5,
                             "the connected device in /metrics")
        finally:
            c.loop_stop()
            c.disconnect()
        samples = self.scrape()
        for name in ("mote_broker_clients_connected", "mote_broker_messages_received_total",
                     "mote_pipeline_queue_items", "mote_pipeline_lag_milliseconds",
                     "mote_pipeline_dropped_total", "mote_telemetry_points_total",
                     "mote_devices", "mote_devices_online", "mote_store_points_appended_total",
                     "mote_store_bytes", "mote_store_series", "mote_http_sse_clients",
                     'mote_http_responses_total{code="2xx"}'):
            self.assertIn(name, samples)
        self.assertGreater(samples['mote_http_responses_total{code="2xx"}'], 0)

    # ---- OpenAPI against the live routes ----

    def test_openapi(self):
        st, _, doc = self.api("GET", "/api/v1/openapi.json", token=self.read)
        self.assertEqual(st, 200)
        self.assertEqual(doc["openapi"][:2], "3.")
        methods = {"get", "post", "put", "patch", "delete"}
        for path, item in doc["paths"].items():
            documented = sorted(m.upper() for m in item if m in methods)
            self.assertTrue(documented, path)
            concrete = path.replace("{id}", "openapi-probe")
            for m in documented:
                if path == "/api/v1/events":
                    s = SSE(self.b, self.admin)
                    self.assertEqual(s.status, 200)
                    s.close()
                    continue
                body = {} if m in ("POST", "PUT", "PATCH") else None
                st, h, r = self.api(m, concrete, body, token=self.admin)
                self.assertNotEqual(st, 405, (m, path))
                if st == 404:
                    self.assertNotIn("no route", r["message"], (m, path))
            # every routed method of the path is documented: the Allow list of
            # a method no path has names exactly the documented ones
            st, h, _ = self.api("TRACE", concrete, token=self.admin)
            self.assertEqual(st, 405)
            self.assertEqual(sorted(h["allow"].split(", ")), documented, path)
        # and a path that is not documented is not routed
        for p in ("/api/v1", "/api/v1/devices/x/y", "/api/v1/tokens", "/metrics/x"):
            self.assertError(self.api("GET", p, token=self.admin), 404, contains="no route")

    # ---- junk while MQTT keeps working ----

    def test_junk_while_mqtt_serves(self):
        b = self.b
        got = []
        sub = mqtt_client(b, "junk-sub")
        sub.on_message = lambda c, u, m: got.append(m.payload)
        done = threading.Event()
        sub.on_subscribe = lambda *a: done.set()
        sub.subscribe("junk/t", qos=1)
        self.assertTrue(done.wait(5))
        pub = mqtt_client(b, "junk-pub")
        junk = [b"GARBAGE\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
                b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /api/v1/devices HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n",
                b"POST /api/v1/devices HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                b"GET /api/v1/devices?%zz%%% HTTP/1.1\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"GET /api/v1/events HTTP/1.1\r\nAuthorization: Bearer " + b"x" * 5000 + b"\r\n\r\n"]
        stop = threading.Event()
        sent = [0]

        def hammer():
            i = 0
            while not stop.is_set():
                try:
                    s = socket.create_connection((b.host, b.http_port), timeout=2)
                    s.sendall(junk[i % len(junk)])
                    s.close()
                    sent[0] += 1
                except OSError:
                    pass
                i += 1
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(200):
                pub.publish("junk/t", b"%d" % i, qos=1).wait_for_publish()
            harness.wait_for(lambda: len(got) == 200, 10, "200 messages through the hammering")
        finally:
            stop.set()
            for t in threads:
                t.join()
            for c in (sub, pub):
                c.loop_stop()
                c.disconnect()
        self.assertGreater(sent[0], 50)
        self.assertEqual(got, [b"%d" % i for i in range(200)])
        st, _, body = self.api("GET", "/healthz")
        self.assertEqual(st, 200)
        self.assertEqual(self.api("GET", "/api/v1/devices", token=self.read)[0], 200)


class OptionsCase(unittest.TestCase):
    def test_metrics_public_and_stream_limit(self):
        """--metrics-public: /metrics without a token, nothing else; --http-max-sse."""
        b = harness.started(self, http=True,
                            extra_args=["--metrics-public", "on", "--http-max-sse", "1"])
        st, h, text = b.api("GET", "/metrics", raw=True)
        self.assertEqual(st, 200)
        self.assertIn(b"# TYPE mote_http_sse_clients gauge", text)
        self.assertEqual(b.api("GET", "/api/v1/devices")[0], 401)
        self.assertEqual(b.api("GET", "/api/v1/openapi.json")[0], 401)
        tok = b.token("read")
        first = SSE(b, tok)
        try:
            self.assertEqual(first.status, 200)
            second = SSE(b, tok)
            self.assertEqual(second.status, 503)
            second.close()
        finally:
            first.close()
        # the slot is free again once the first stream is gone
        # the hub notices the hang-up (within a second), not at its next write
        # (the heartbeat, 15 s away)
        third = []

        def reopened():
            s = SSE(b, tok)
            if s.status == 200:
                third.append(s)
                return True
            s.close()
            return False
        harness.wait_for(reopened, 5, "a stream after the first closed")
        third[0].close()


class RefusalCase(unittest.TestCase):
    def test_address_refusal(self):
        """Bad tokens count toward the per-address refusal MQTT logins use."""
        b = harness.started(self, http=True, extra_args=["--auth-fail-max", "2"])
        good = b.token("read")
        for _ in range(2):
            self.assertEqual(b.api("GET", "/api/v1/devices", token="mote_bad")[0], 401)
        st, h, body = b.api("GET", "/api/v1/devices", token=good)
        self.assertEqual(st, 429, body)
        self.assertEqual(body["error"], "too_many_requests")
        self.assertGreater(int(h["retry-after"]), 0)
        # the same address is refused over MQTT too (one limit per address)
        c = mqtt.Client(client_id="refused", protocol=mqtt.MQTTv311)
        c.username_pw_set("token", good)
        rc = []
        c.on_connect = lambda cl, u, f, r: rc.append(r)
        c.connect(b.host, b.port)
        c.loop_start()
        harness.wait_for(lambda: rc, 5, "CONNACK")
        c.loop_stop()
        self.assertNotEqual(rc[0], 0)
        self.assertEqual(b.api("GET", "/healthz")[0], 200)


if __name__ == "__main__":
    harness.main()
