"""test_auth_tls.py - device identities from mTLS certificates and the device ACL.

Devices connect over TLS with certificates from `mote pki issue` (CN = id) or
from the openssl CLI (a SAN URI urn:mote:dev:ID for --tls-identity uri, a
claim certificate). An application on the TCP listener (the admin, with the
first start's secret) watches `#`: what a device may not publish never
arrives, and it keeps working while devices are refused.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import types

import harness
from certs import Pki
from peers_paho import V5, V311, Peer, PeerCase, quiet

HOST = harness.HOST
SECRET_RX = re.compile(r"created user 'admin' with password (\S+)")


class TlsAuthBase(PeerCase):
    identity = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mote-auth-tls-")
        cls.pki = Pki(cls.tmp)
        cls.tls_port = harness.free_port()
        cls.make_certs()
        extra = ["--mqtts", "%s:%d" % (HOST, cls.tls_port)] + cls.pki.hub_args()
        if cls.identity:
            extra += ["--tls-identity", cls.identity]
        cls.b = harness.Broker(extra_args=extra, allow_anonymous=False)
        cls.b.start()
        harness.wait_port(HOST, cls.tls_port, cls.b.proc)
        cls.secret = cls.b.wait_log(SECRET_RX.pattern, timeout=10).group(1)
        cls.b.wait_log(r"event=ready")
        cls.tls = types.SimpleNamespace(host=HOST, port=cls.tls_port)

    @classmethod
    def tearDownClass(cls):
        cls.b.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        shutil.rmtree(cls.b.dir, ignore_errors=True)

    def device(self, cert_key, client_id, version=V5, expect_rc=0):
        cert, key = cert_key
        p = Peer(self.tls, client_id, version)
        self.addCleanup(p.close)
        p.c.tls_set(ca_certs=self.pki.ca, certfile=cert, keyfile=key)
        p.connect(expect_rc=expect_rc)
        return p

    def admin(self, cid):
        return self.peer(self.b, cid, username="admin", password=self.secret)

    def wait_audit(self, event, pred):
        path = os.path.join(self.b.data_dir, "audit.log")
        import time
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(path) as f:
                for line in f:
                    r = json.loads(line)
                    if r["event"] == event and pred(r["fields"]):
                        return r
            time.sleep(0.05)
        raise AssertionError("no audit record " + event)


class DeviceAcl(TlsAuthBase):
    @classmethod
    def make_certs(cls):
        cls.a = cls.pki.issue("devA")
        cls.bcert = cls.pki.issue("devB")
        cls.claim = cls.pki.openssl_device("claim:factory1", san="URI:urn:mote:claim:factory1")

    def test_device_cannot_publish_to_another_device(self):
        watch = self.admin("watch-x")
        watch.subscribe("#", 1)
        dev_b = self.device(self.bcert, "devB")
        self.assertEqual(dev_b.subscribe("cmd/devB/#", 1), [1])
        a = self.device(self.a, "devA")
        self.assertEqual(a.publish("dev/devB/telemetry", b"forged", 1), 0x87)
        self.assertEqual(a.publish("cmd/devB/reboot", b"forged", 1), 0x87)
        self.assertEqual(a.publish("$twin/devB/update", b"forged", 1), 0x87)
        a3 = self.device(self.a, "devA", V311)  # takes the session over
        a3.publish("dev/devB/telemetry", b"forged 3.1.1", 1)  # acknowledged, dropped
        self.assertEqual(self.device(self.a, "devA").publish("dev/devA/telemetry", b"21.5", 1), 0)
        m = watch.expect_one()
        self.assertEqual((m.topic, m.payload), ("dev/devA/telemetry", b"21.5"))
        quiet(watch, dev_b)
        self.b.wait_log(r'event=denied client="?devA"? identity="?device:devA"? role=device '
                        r'access=publish topic="?dev/devB/telemetry"?')
        self.wait_audit("denied", lambda f: f["identity"] == "device:devA" and
                        f["topic"] == "cmd/devB/reboot")

    def test_device_subscribing_everything_refused(self):
        watch = self.admin("watch-s")
        a = self.device(self.a, "devA")
        self.assertEqual(a.subscribe("#", 1), [0x87])
        self.assertEqual(a.subscribe("dev/+/telemetry", 1), [0x87])
        self.assertEqual(a.subscribe("cmd/devA/#", 1), [1])
        a3 = self.device(self.a, "devA", V311)
        self.assertEqual(a3.subscribe("#", 1), [0x80])
        # mosquitto_sub with the device's certificate is refused the same way
        cert, key = self.a
        r = subprocess.run(["mosquitto_sub", "-h", HOST, "-p", str(self.tls_port), "--cafile",
                            self.pki.ca, "--cert", cert, "--key", key, "-i", "devA", "-t", "#",
                            "-V", "mqttv5", "-W", "2", "-E"],
                           capture_output=True, text=True, timeout=20)
        self.assertIn("denied", (r.stdout + r.stderr).lower(), r)
        watch.publish("cmd/devA/x", b"still serving", 1)
        # (mosquitto_sub took devA's session over: a fresh connection)
        self.assertEqual(self.device(self.a, "devA", V311).subscribe("cmd/devA/#", 1), [1])

    def test_cn_different_from_client_id_refused(self):
        watch = self.admin("watch-c")
        watch.subscribe("ok/#", 1)
        self.device(self.a, "devB", expect_rc=0x85)
        self.device(self.a, "devB", V311, expect_rc=2)
        cert, key = self.a
        r = subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(self.tls_port), "--cafile",
                            self.pki.ca, "--cert", cert, "--key", key, "-i", "someone-else",
                            "-t", "dev/someone-else/x", "-m", "x", "-q", "1"],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.b.wait_log(r'event=auth_failed .*client="?devB"? identity="?devA"? '
                        r'why="certificate identity differs from the client id"')
        self.admin("still").publish("ok/1", b"fine", 1)
        self.assertEqual(watch.expect_one().payload, b"fine")

    def test_claim_certificate_refused_without_provisioning(self):
        self.device(self.claim, "newdev1", expect_rc=0x87)
        self.device(self.claim, "newdev1", V311, expect_rc=5)
        self.wait_audit("claim_refused", lambda f: f["claim"] == "factory1")
        self.device(self.a, "devA").publish("dev/devA/alive", b"x", 1)


class UriIdentity(TlsAuthBase):
    identity = "uri"

    @classmethod
    def make_certs(cls):
        cls.uri = cls.pki.openssl_device("label-9", san="URI:urn:mote:dev:dev9")
        cls.cn_only = cls.pki.openssl_device("dev8")  # CN only, no URI SAN

    def test_uri_names_the_device(self):
        watch = self.admin("watch-u")
        watch.subscribe("dev/#", 1)
        d = self.device(self.uri, "dev9")
        self.assertEqual(d.publish("dev/dev9/t", b"by uri", 1), 0)
        self.assertEqual(d.publish("dev/label-9/t", b"by cn", 1), 0x87)
        self.assertEqual(watch.expect_one().payload, b"by uri")
        self.device(self.uri, "label-9", expect_rc=0x85)
        self.device(self.cn_only, "dev8", expect_rc=0x87)
        quiet(watch)


if __name__ == "__main__":
    harness.main()
