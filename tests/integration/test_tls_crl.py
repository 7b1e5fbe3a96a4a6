"""test_tls_crl.py - revocation while the hub runs: a new CRL is loaded without
a restart (on a change of the file, and on SIGHUP) and live connections of
revoked certificates are closed within seconds - DISCONNECT 0x98
(administrative action) for MQTT 5.0, a plain close for 3.1.1 - while other
devices stay connected and keep receiving. A broken CRL file leaves the old
list in force.

Revocation is done the operator's way: `mote pki --dir D revoke ID` and
`mote pki --dir D crl` (which renames a new crl.pem into place).
"""
import os
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
from certs import Pki  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

HOST = harness.HOST
wait_for = harness.wait_for


class Device:
    """A paho client over mTLS, subscribed to cmd/ID/# (a device may read
    nothing else: the device default ACL of src/auth)."""

    def __init__(self, port, pki, device_id, v5=False):
        self.msgs = []
        self.disconnect_rc = []
        self.subscribed = threading.Event()
        self.v5 = v5
        self.device_id = device_id
        sub = "cmd/%s/#" % device_id
        proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        self.c = mqtt.Client(client_id=device_id, protocol=proto)
        cert, key = pki.p("devices", device_id + ".pem"), pki.p("devices", device_id + ".key")
        self.c.tls_set(ca_certs=pki.ca, certfile=cert, keyfile=key)
        if v5:
            self.c.on_connect = lambda c, u, f, rc, props=None: c.subscribe(sub, 1)
            self.c.on_disconnect = lambda c, u, rc, props=None: self.disconnect_rc.append(rc)
        else:
            self.c.on_connect = lambda c, u, f, rc: c.subscribe(sub, 1)
            self.c.on_disconnect = lambda c, u, rc: self.disconnect_rc.append(rc)
        self.c.on_subscribe = lambda c, u, mid, *a: self.subscribed.set()
        self.c.on_message = lambda c, u, m: self.msgs.append(m.payload)
        self.c.connect(HOST, port, keepalive=30)
        self.c.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError(device_id + " did not subscribe")

    @property
    def connected(self):
        return not self.disconnect_rc

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class CrlReload(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mote-tls-crl-")
        self.pki = Pki(self.tmp)
        for d in ("keeper", "v5dev", "v3dev", "late"):
            self.pki.issue(d)
        self.tls_port = harness.free_port()
        self.devices = []
        self.probes = 0

    def tearDown(self):
        for d in self.devices:
            d.close()
        self.b.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *extra):
        self.b = harness.Broker(extra_args=[
            "--mqtts", "%s:%d" % (HOST, self.tls_port),
            "--threads", os.environ.get("MOTE_TEST_THREADS", "3")] + self.pki.hub_args()
            + list(extra))
        self.b.start()
        self.assertTrue(harness.wait_port(HOST, self.tls_port, self.b.proc))

    def device(self, device_id, v5=False):
        d = Device(self.tls_port, self.pki, device_id, v5)
        self.devices.append(d)
        return d

    def probe(self, *receivers):
        self.probes += 1
        payload = ("probe-%d" % self.probes).encode()
        pub = mqtt.Client(client_id="prober", protocol=mqtt.MQTTv311)
        pub.connect(HOST, self.b.port)  # plain TCP listener
        pub.loop_start()
        for r in receivers:
            pub.publish("cmd/%s/probe" % r.device_id, payload, qos=1).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()
        wait_for(lambda: all(payload in r.msgs for r in receivers), what="probe delivered")

    def revoke(self, device_id):
        self.pki.revoke(device_id)  # also rewrites crl.pem
        self.pki.crl()

    def assert_refused_now(self, device_id):
        r = subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(self.tls_port),
                            "--cafile", self.pki.ca,
                            "--cert", self.pki.p("devices", device_id + ".pem"),
                            "--key", self.pki.p("devices", device_id + ".key"),
                            "-i", device_id, "-t", "dev/%s/refused" % device_id, "-m", "x", "-q", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0, "%s was not refused" % device_id)

    def test_file_change_disconnects_revoked_v5_and_v311(self):
        self.start()
        keeper = self.device("keeper")
        v5 = self.device("v5dev", v5=True)
        v3 = self.device("v3dev")
        self.probe(keeper, v5, v3)

        t0 = time.monotonic()
        self.revoke("v5dev")
        wait_for(lambda: not v5.connected, what="v5dev disconnected")
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertEqual(v5.disconnect_rc[0], 0x98)  # administrative action
        self.b.wait_log(r'event=crl_reload file=\S+ trigger=file_changed changed=yes')
        self.b.wait_log(r'event=revoked_disconnect peer=127\.0\.0\.1:\d+ client="v5dev" '
                        r'cn="v5dev" serial=[0-9A-F]+')
        self.assertTrue(keeper.connected and v3.connected)
        self.probe(keeper, v3)

        self.revoke("v3dev")
        wait_for(lambda: not v3.connected, what="v3dev disconnected")
        self.b.wait_log(r'event=revoked_disconnect .*client="v3dev"')
        self.assertTrue(keeper.connected)
        self.probe(keeper)
        self.assert_refused_now("v5dev")
        self.b.wait_log(r'event=tls_handshake_failed .*certificate revoked')
        self.assertEqual(keeper.disconnect_rc, [])

    def test_sighup_reload_and_broken_file_keeps_old_list(self):
        self.start("--tls-crl-check", "0")  # only SIGHUP reloads
        keeper = self.device("keeper")
        v3 = self.device("v3dev")
        self.revoke("v3dev")
        time.sleep(1.5)  # no watcher: nothing may happen without the signal
        self.assertTrue(v3.connected)
        self.b.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: not v3.connected, what="v3dev disconnected after SIGHUP")
        self.b.wait_log(r'event=crl_reload file=\S+ trigger=SIGHUP changed=yes')
        self.b.wait_log(r'event=revoked_disconnect .*client="v3dev"')
        self.assertTrue(keeper.connected)
        self.probe(keeper)

        # A broken file: logged, the old list (v3dev revoked) stays in force.
        tmp = self.pki.crl_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n")
        os.rename(tmp, self.pki.crl_path)
        self.b.proc.send_signal(signal.SIGHUP)
        self.b.wait_log(r'event=crl_reload_failed file=\S+ trigger=SIGHUP why="[^"]*not a PEM '
                        r'certificate revocation list')
        self.assert_refused_now("v3dev")
        late = self.device("late")  # not revoked: still welcome
        self.probe(keeper, late)
        self.assertTrue(keeper.connected)
        self.assertTrue(self.b.alive())


if __name__ == "__main__":
    unittest.main(verbosity=2)
