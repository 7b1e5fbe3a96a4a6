"""test_registry.py - the device registry with real clients (paho, mosquitto_pub, curl-free http.client).

- On an --allow-anonymous hub a client is registered by its client id on first connect; online and last
  seen follow its connection; API-token logins (operators) are never registered.
- With --auto-register off nothing is registered by connecting and telemetry of an unknown device is
  not stored (counted); `mote device add` while the hub runs makes the next message count.
- `mote device rm` in another process while the hub runs removes the twin and the telemetry in the hub too.
- On an mTLS hub with --pki, a device is registered with its certificate serial; DELETE
  /api/v1/devices/{id} revokes its certificate, the live connection is closed, and a reconnect is refused.
"""
import json
import time
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, "/usr/lib/python3/dist-packages")
import paho.mqtt.client as mqtt  # noqa: E402

import harness  # noqa: E402
from certs import Pki  # noqa: E402
from harness import HOST, wait_for  # noqa: E402


def mote(*args, check=True):
    return subprocess.run([harness.mote_bin()] + list(args), check=check, capture_output=True,
                          text=True)


class Device:
    """A paho client (MQTT 3.1.1) that records what it receives."""

    def __init__(self, port, client_id, username=None, password=None, tls=None):
        self.msgs = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.rc = None
        self.c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)
        if username:
            self.c.username_pw_set(username, password)
        if tls:
            self.c.tls_set(ca_certs=tls[0], certfile=tls[1], keyfile=tls[2])
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda c, u, rc: self.disconnected.set()
        self.c.on_message = self._on_message
        self.c.connect(HOST, port, keepalive=30)
        self.c.loop_start()

    def _on_connect(self, c, u, flags, rc):
        self.rc = rc
        if rc == 0:
            self.connected.set()

    def _on_message(self, c, u, m):
        with self.lock:
            self.msgs.append((m.topic, m.payload))

    def wait_connected(self):
        wait_for(self.connected.is_set, 10, "CONNACK 0")
        return self

    def publish(self, topic, payload):
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish()

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def metric(b, token, name):
    status, _, body = b.api("GET", "/metrics", token=token, raw=True)
    assert status == 200, status
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric %s" % name)


class AnonymousHub(unittest.TestCase):
    def setUp(self):
        self.b = harness.started(self, http=True)
        self.token = self.b.token("admin")

    def device(self, dev_id):
        status, _, body = self.b.api("GET", "/api/v1/devices/" + dev_id, token=self.token)
        return body if status == 200 else None

    def test_first_connect_registers_and_tracks_online(self):
        d = Device(self.b.port, "pump-1").wait_connected()
        self.addCleanup(d.close)
        wait_for(lambda: self.device("pump-1") and self.device("pump-1")["online"], 10,
                 "pump-1 registered and online")
        first = self.device("pump-1")
        self.assertIsNotNone(first["last_seen"])
        d.publish("dev/pump-1/telemetry", json.dumps({"temp": 20.5}))
        wait_for(lambda: self.device("pump-1")["last_seen"] > first["last_seen"], 10,
                 "last_seen moves with telemetry")
        d.close()
        wait_for(lambda: not self.device("pump-1")["online"], 10, "pump-1 offline")
        # An operator logging in with an API token is not a device.
        op = Device(self.b.port, "dashboard-1", "token", self.token).wait_connected()
        self.addCleanup(op.close)
        # Its connection is handled before this query (one pipeline, in order), so
        # a second device's registration proves the operator's was skipped.
        Device(self.b.port, "probe-1").wait_connected().close()
        wait_for(lambda: self.device("probe-1") is not None, 10, "probe-1 registered")
        self.assertIsNone(self.device("dashboard-1"))
        r = mote("device", "list", "--data", self.b.data_dir, "--status", "offline")
        self.assertIn("pump-1", r.stdout)

    def test_invalid_telemetry_is_remembered_and_the_pipeline_goes_on(self):
        d = Device(self.b.port, "sensor-3").wait_connected()
        self.addCleanup(d.close)
        bad = [b"not json", b"[{\"n\":\"t\",\"v\":\"hot\"}]", b"{\"t\": 1e999}", b"\xff\xfe",
               b"[" * 5000, b"{}" * 100000]
        for payload in bad:
            d.publish("dev/sensor-3/telemetry", payload)
        d.publish("dev/sensor-3/telemetry", json.dumps({"t": 19.5}))

        def state():
            return self.device("sensor-3") or {}
        wait_for(lambda: state().get("invalid_payloads") == len(bad), 10,
                 "every invalid payload counted on the device")
        self.assertTrue(state()["last_error"])
        # when it happened, by the hub's clock (ms): the dashboard's health uses it
        self.assertLess(abs(state()["last_error_at"] - time.time() * 1000), 60000)
        path = "/api/v1/devices/sensor-3/telemetry/latest"
        status, _, body = self.b.api("GET", path, token=self.token)
        self.assertEqual(status, 200)
        self.assertEqual([(p["metric"], p["value"]) for p in body["latest"]], [("t", 19.5)])
        self.assertGreaterEqual(metric(self.b, self.token, "mote_telemetry_invalid_total"), len(bad))
        self.b.wait_log(r"event=telemetry_invalid device=sensor-3 why=")

    def test_rm_from_another_process(self):
        d = Device(self.b.port, "valve-2").wait_connected()
        self.addCleanup(d.close)
        d.publish("$twin/valve-2/update", json.dumps({"state": {"reported": {"open": True}}}))
        d.publish("dev/valve-2/telemetry", json.dumps({"flow": 3.5}))
        path = "/api/v1/devices/valve-2/telemetry/latest"
        wait_for(lambda: self.b.api("GET", path, token=self.token)[2].get("latest"), 10,
                 "telemetry stored")
        status, _, twin = self.b.api("GET", "/api/v1/devices/valve-2/twin", token=self.token)
        self.assertEqual(status, 200)
        self.assertEqual(twin["state"]["reported"], {"open": True})

        r = mote("device", "rm", "valve-2", "--data", self.b.data_dir)
        self.assertIn("removed device 'valve-2'", r.stdout)
        wait_for(lambda: self.b.api("GET", "/api/v1/devices/valve-2/twin",
                                    token=self.token)[0] == 404, 10, "twin gone in the hub")
        self.assertEqual(self.device("valve-2"), None)
        self.b.wait_log(r"event=device_deleted device=valve-2 by=another_process")
        # Unknown ids and bad input from the command line: clear errors, exit codes.
        r = mote("device", "rm", "valve-2", "--data", self.b.data_dir, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no device 'valve-2'", r.stderr)
        r = mote("device", "add", "a/b", "--data", self.b.data_dir, check=False)
        self.assertEqual(r.returncode, 2)
        r = mote("device", "frobnicate", "--data", self.b.data_dir, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("mote device --help", r.stderr)


class NoAutoRegister(unittest.TestCase):
    def test_registered_only_on_purpose(self):
        b = harness.started(self, http=True, extra_args=["--auto-register", "off"])
        token = b.token("read")
        d = Device(b.port, "fan-9").wait_connected()
        self.addCleanup(d.close)
        d.publish("dev/fan-9/telemetry", json.dumps({"rpm": 900}))
        wait_for(lambda: metric(b, token, "mote_telemetry_invalid_total") >= 1, 10,
                 "the unknown device's telemetry counted, not stored")
        self.assertEqual(b.api("GET", "/api/v1/devices/fan-9", token=token)[0], 404)
        r = mote("device", "add", "fan-9", "--model", "fan", "--tag", "site=north",
                 "--data", b.data_dir)
        self.assertIn("added device 'fan-9'", r.stdout)
        path = "/api/v1/devices/fan-9/telemetry/latest"

        def stored():
            d.publish("dev/fan-9/telemetry", json.dumps({"rpm": 1000}))
            status, _, body = b.api("GET", path, token=token)
            return status == 200 and body.get("latest")
        wait_for(stored, 10, "telemetry stored once the device is added")
        status, _, dev = b.api("GET", "/api/v1/devices/fan-9", token=token)
        self.assertEqual((dev["model"], dev["tags"]), ("fan", {"site": "north"}))
        r = mote("device", "show", "fan-9", "--data", b.data_dir)
        self.assertEqual(json.loads(r.stdout)["model"], "fan")


class CertificateHub(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mote-reg-")
        cls.pki = Pki(cls.tmp)
        cls.tls_port = harness.free_port()
        cls.b = harness.Broker(allow_anonymous=False, http=True, extra_args=[
            "--mqtts", "%s:%d" % (HOST, cls.tls_port), "--pki", cls.pki.dir])
        cls.b.start()
        harness.wait_port(HOST, cls.tls_port, cls.b.proc)
        cls.token = cls.b.token("admin")

    @classmethod
    def tearDownClass(cls):
        cls.b.stop()
        shutil.rmtree(cls.b.dir, ignore_errors=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_delete_revokes_and_disconnects(self):
        cert, key = self.pki.issue("meter-5")
        serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", cert],
                                capture_output=True, text=True, check=True).stdout
        serial = serial.strip().split("=")[1]
        d = Device(self.tls_port, "meter-5", tls=(self.pki.ca, cert, key)).wait_connected()
        self.addCleanup(d.close)

        def registered():
            status, _, body = self.b.api("GET", "/api/v1/devices/meter-5", token=self.token)
            return status == 200 and body["online"] and body
        dev = wait_for(registered, 10, "meter-5 registered over mTLS") or registered()
        self.assertEqual(dev["cert_serial"].lstrip("0").upper(), serial.lstrip("0").upper())

        status, _, _ = self.b.api("DELETE", "/api/v1/devices/meter-5", token=self.token)
        self.assertEqual(status, 204)
        # crl.pem was rewritten; the hub reloads it and closes the live connection.
        wait_for(d.disconnected.is_set, 15, "the revoked device's connection closed")
        with open(self.pki.p("index.txt")) as f:
            self.assertTrue(any(line.startswith("R") and "meter-5" in line for line in f))
        # paho's network thread raises the expected "certificate revoked" alert.
        hook = threading.excepthook
        threading.excepthook = lambda args: None
        self.addCleanup(setattr, threading, "excepthook", hook)
        try:
            again = Device(self.tls_port, "meter-5", tls=(self.pki.ca, cert, key))
        except (ssl.SSLError, OSError):
            pass  # refused inside connect(): TLS 1.3 reports the alert on the first write
        else:
            self.addCleanup(again.close)
            self.assertFalse(again.connected.wait(2), "a revoked certificate connected again")
        self.assertEqual(self.b.api("GET", "/api/v1/devices/meter-5", token=self.token)[0], 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
