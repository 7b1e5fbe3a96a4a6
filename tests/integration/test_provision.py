"""test_provision.py - provisioning by claim with real clients over mTLS.

A hub started with --pki DIR (its TLS files and claims from a `mote pki`
folder) and --mqtts. Devices are Debian's paho over TLS (and mosquitto_rr /
mosquitto_pub once) holding only a claim certificate made by `mote pki claim`; their CSRs are made by the openssl CLI,
their new certificates judged by `openssl verify`. Each device connects with
the id it wants as client id, subscribes to $provision/ID/#, publishes its
CSR to $provision/ID/csr and waits for $provision/ID/cert or .../rejected;
then it reconnects with its own certificate and publishes telemetry that a
subscriber receives. Refusals must say why and leave a watcher, connected
all along, undisturbed:
  - at CONNECT, by src/auth asking the hub's claim check (a device beyond
    --max, an id issued before, an expired claim): CONNACK refused, the
    reason in the log and the audit log;
  - at the handshake (a revoked claim, through the CRL);
  - on the broker (the claim certificate publishing telemetry or another
    id's CSR, subscribing to dev/#): 0x87, nothing delivered;
  - in the answer (bad CSRs): $provision/ID/rejected {"error": ...}.
Every issuance and refusal is in the hash-chained audit log, which
`mote audit verify` accepts.
"""
import json
import re
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from certs import Pki, openssl  # noqa: E402
from peers_paho import V5, Peer  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

HOST = harness.HOST
wait_for = harness.wait_for


class Client:
    """A paho MQTT 3.1.1 client over TLS that records what it receives."""

    def __init__(self, port, client_id, ca, cert, key, subscribe=None):
        self.msgs = []
        self.rc = None
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self.published = {}
        self.c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)
        self.c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        self.sub = subscribe

        def on_connect(c, u, f, rc):
            self.rc = rc
            self.done.set()
            if rc == 0:
                self.connected.set()
                if self.sub:
                    c.subscribe(self.sub, 1)

        def on_message(c, u, m):
            with self.lock:
                self.msgs.append((m.topic, m.payload))

        self.c.on_connect = on_connect
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_message = on_message
        self.c.on_publish = lambda c, u, mid: self.published.__setitem__(mid, True)
        self.c.on_disconnect = lambda c, u, rc: self.done.set()
        self.c.connect(HOST, port, keepalive=30)
        self.c.loop_start()

    def wait_connected(self):
        if not self.done.wait(10):
            raise AssertionError("no CONNACK")
        if self.rc != 0:
            raise AssertionError("CONNECT refused, rc %s" % self.rc)
        if self.sub and not self.subscribed.wait(10):
            raise AssertionError("no SUBACK")

    def publish(self, topic, payload, qos=1):
        info = self.c.publish(topic, payload, qos)
        wait_for(lambda: info.mid in self.published, what="PUBACK for " + topic)

    def answer(self, dev_id, timeout=15.0):
        """The first $provision/ID/cert or /rejected message: (kind, payload)."""
        want = ("$provision/%s/cert" % dev_id, "$provision/%s/rejected" % dev_id)
        found = []

        def got():
            with self.lock:
                found[:] = [(t, p) for t, p in self.msgs if t in want]
            return bool(found)
        wait_for(got, timeout, "an answer on $provision/%s/" % dev_id)
        topic, payload = found[0]
        return topic.rsplit("/", 1)[1], payload

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class Provision(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mote-prov-")
        cls.pki = Pki(cls.tmp)
        cls.claims = {}
        for name, prefix, mx in (("batch", "pump-", 2), ("solo", "valve-", 5),
                                 ("old", "old-", 5), ("gone", "gone-", 5)):
            r = cls.pki.mote("claim", name, "--prefix", prefix, "--max", str(mx))
            cls.claims[name] = r.stdout.split()
        cls.watch_cert, cls.watch_key = cls.pki.issue("watch1")
        cls.tls_port = harness.free_port()
        cls.b = harness.Broker(extra_args=[
            "--mqtts", "%s:%d" % (HOST, cls.tls_port), "--pki", cls.pki.dir,
            "--threads", os.environ.get("MOTE_TEST_THREADS", "3")])
        cls.b.start()
        harness.wait_port(HOST, cls.tls_port, cls.b.proc)
        cls.tls = types.SimpleNamespace(host=HOST, port=cls.tls_port)
        cls.watch = Client(cls.tls_port, "watch1", cls.pki.ca, cls.watch_cert, cls.watch_key,
                           subscribe="cmd/watch1/#")
        cls.watch.wait_connected()
        # A plain-TCP subscriber sees device telemetry (the default listener
        # allows anonymous clients in these tests).
        cls.tap = mqtt.Client(client_id="telemetry-sub", protocol=mqtt.MQTTv311)
        cls.tap_msgs = []
        cls.tap_ready = threading.Event()
        cls.tap.on_connect = lambda c, u, f, rc: c.subscribe("dev/#", 1)
        cls.tap.on_subscribe = lambda c, u, mid, q: cls.tap_ready.set()
        cls.tap.on_message = lambda c, u, m: cls.tap_msgs.append((m.topic, m.payload))
        cls.tap.connect(HOST, cls.b.port, keepalive=30)
        cls.tap.loop_start()
        if not cls.tap_ready.wait(10):
            raise AssertionError("telemetry subscriber did not subscribe")
        cls.probes = 0

    @classmethod
    def tearDownClass(cls):
        cls.watch.close()
        cls.tap.disconnect()
        cls.tap.loop_stop()
        cls.b.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ---------------------------------------------------------------

    def csr(self, cn, key_type="ec"):
        key = os.path.join(self.tmp, cn + ".key")
        out = os.path.join(self.tmp, cn + ".csr")
        newkey = {"ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                  "ed25519": ["-newkey", "ed25519"],
                  "rsa1024": ["-newkey", "rsa:1024"]}[key_type]
        openssl("req", "-new", *newkey, "-nodes", "-subj", "/CN=" + cn, "-keyout", key,
                "-out", out)
        with open(out, "rb") as f:
            return f.read(), key

    def claim_client(self, claim, dev_id):
        cert, key = self.claims[claim]
        c = Client(self.tls_port, dev_id, self.pki.ca, cert, key,
                   subscribe="$provision/%s/#" % dev_id)
        c.wait_connected()
        return c

    def provision(self, claim, dev_id, csr):
        """(kind, payload): ("cert", PEMs) or ("rejected", JSON) from the
        provisioning answer, or ("refused", JSON) when src/auth's claim check
        refused the CONNECT already (expired claim, quota used, id issued):
        CONNACK rc 5, and the reason in the hub's log and audit log."""
        try:
            c = self.claim_client(claim, dev_id)
        except AssertionError as e:
            if "rc 5" not in str(e):
                raise
            why = self.refusal_reason(claim, dev_id)
            return "refused", json.dumps({"error": why}).encode()
        try:
            c.publish("$provision/%s/csr" % dev_id, csr)
            return c.answer(dev_id)
        finally:
            c.close()

    def refusal_reason(self, claim, dev_id):
        """The reason of the last CONNECT refusal of dev_id with claim, as the
        hub logged it; the same reason must be in the audit log."""
        m = None
        for m in re.finditer(r'event=auth_failed peer=\S+ client="?%s"? claim="?%s"? '
                             r'why="([^"]*)"' % (re.escape(dev_id), re.escape(claim)),
                             self.b.log()):
            pass
        self.assertIsNotNone(m, "CONNECT refused without a claim refusal in the log")
        self.wait_audit("claim_refused", lambda f: f.get("client") == dev_id and
                        f.get("claim") == claim and f.get("reason") == m.group(1))
        return m.group(1)

    def audit_records(self):
        with open(os.path.join(self.b.data_dir, "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def wait_audit(self, event, pred):
        found = []

        def look():
            found[:] = [r for r in self.audit_records() if r["event"] == event and
                        pred(r["fields"])]
            return bool(found)
        wait_for(look, 10, "audit record " + event)
        return found[-1]

    def assert_undisturbed(self):
        """The watcher is still connected and still gets its messages."""
        type(self).probes += 1
        payload = b"probe-%d" % self.probes
        self.b_pub("cmd/watch1/probe", payload)
        wait_for(lambda: any(p == payload for _, p in self.watch.msgs), 10,
                 "the watcher to get " + payload.decode())
        self.assertTrue(self.watch.c.is_connected())

    def b_pub(self, topic, payload):
        c = mqtt.Client(client_id="prober", protocol=mqtt.MQTTv311)
        c.connect(HOST, self.b.port, keepalive=30)
        c.loop_start()
        info = c.publish(topic, payload, 1)
        info.wait_for_publish(10)
        c.disconnect()
        c.loop_stop()

    def rejected(self, kind, payload, want, how="rejected"):
        self.assertEqual(kind, how, payload)
        err = json.loads(payload)["error"]
        self.assertIn(want, err)
        return err

    # ---- tests -------------------------------------------------------------------

    def test_provision_then_reconnect_and_publish(self):
        csr, key = self.csr("pump-1")
        kind, payload = self.provision("batch", "pump-1", csr)
        self.assertEqual(kind, "cert", payload)
        # The device certificate, then the CA's.
        pems = [b"-----BEGIN CERTIFICATE-----" + p for p in
                payload.split(b"-----BEGIN CERTIFICATE-----")[1:]]
        self.assertEqual(len(pems), 2)
        cert = os.path.join(self.tmp, "pump-1.pem")
        with open(cert, "wb") as f:
            f.write(pems[0])
        with open(self.pki.ca, "rb") as f:
            self.assertEqual(pems[1].strip(), f.read().strip())
        r = openssl("verify", "-CAfile", self.pki.ca, "-purpose", "sslclient", cert,
                    check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        text = openssl("x509", "-in", cert, "-noout", "-text").stdout
        self.assertIn("Subject: CN = pump-1", text)
        self.assertIn("URI:urn:mote:dev:pump-1", text)
        # The certificate carries the device's own key.
        self.assertEqual(openssl("pkey", "-in", key, "-pubout").stdout,
                         openssl("x509", "-in", cert, "-noout", "-pubkey").stdout)
        # Recorded in the index with the claim's name.
        with open(self.pki.p("index.txt")) as f:
            self.assertRegex(f.read(), r"V\t[0-9A-F]+\tdevice\tpump-1\t\d+\t-\tbatch\n")
        self.b.wait_log(r"event=issued claim=\"batch\" id=\"pump-1\"")
        serial = openssl("x509", "-in", cert, "-noout", "-serial").stdout.strip().split("=")[1]
        self.wait_audit("provision_issued", lambda f: f["claim"] == "batch" and
                        f["id"] == "pump-1" and f["serial"].lstrip("0") == serial.lstrip("0"))
        # Reconnect with its own certificate; telemetry reaches a subscriber.
        dev = Client(self.tls_port, "pump-1", self.pki.ca, cert, key)
        try:
            dev.wait_connected()
            dev.publish("dev/pump-1/telemetry", b'{"t":21.5}')
            wait_for(lambda: ("dev/pump-1/telemetry", b'{"t":21.5}') in self.tap_msgs,
                     what="telemetry at the subscriber")
        finally:
            dev.close()
        # The id is taken now: a claim holder cannot even connect as pump-1
        # (it would take over the device's session).
        csr2, _ = self.csr("pump-1")
        kind, payload = self.provision("batch", "pump-1", csr2)
        self.rejected(kind, payload, "device id 'pump-1' has been issued before", "refused")
        r = subprocess.run([harness.mote_bin(), "audit", "verify",
                            os.path.join(self.b.data_dir, "audit.log")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_undisturbed()

    def test_quota(self):
        # --max 2: pump-1 (the test above, in either order) and pump-2 or
        # pump-3 fill it; whatever comes after them is refused.
        results = []
        for dev_id in ("pump-2", "pump-3", "pump-4"):
            csr, _ = self.csr(dev_id)
            results.append(self.provision("batch", dev_id, csr))
        issued = [k for k, _ in results].count("cert")
        with open(self.pki.p("index.txt")) as f:
            total = f.read().count("\tbatch\n")
        self.assertEqual(total, 2)
        self.assertGreaterEqual(issued, 1)
        # Refused at CONNECT, before any CSR.
        kind, payload = results[-1]
        self.rejected(kind, payload, "claim 'batch' has issued all of its 2 devices", "refused")
        r = self.pki.mote("claims")
        self.assertRegex(r.stdout, r"batch\s+pump-\s+2/2\s+\S+\s+used-up")
        self.assert_undisturbed()

    def test_bad_csrs(self):
        # Garbage, a CSR for another id, a weak key, a forged signature.
        kind, payload = self.provision("solo", "valve-1", b"\x00\xffnot a CSR at all")
        self.rejected(kind, payload, "not a PEM certificate request")
        csr, _ = self.csr("valve-2")
        kind, payload = self.provision("solo", "valve-1", csr)
        self.rejected(kind, payload, "CN must be the client id 'valve-1'")
        csr, _ = self.csr("valve-1", "rsa1024")
        kind, payload = self.provision("solo", "valve-1", csr)
        self.rejected(kind, payload, "EC P-256, Ed25519 or RSA")
        # Nothing was issued: the id is still free, and an Ed25519 CSR gets it.
        csr, _ = self.csr("valve-1", "ed25519")
        kind, payload = self.provision("solo", "valve-1", csr)
        self.assertEqual(kind, "cert", payload)
        self.assert_undisturbed()

    def test_expired_claim(self):
        # The template says when the claim ends, whatever the certificate says.
        conf = self.pki.p("claims", "old.conf")
        with open(conf) as f:
            text = f.read()
        past = int(time.time()) - 60
        with open(conf, "w") as f:
            f.write("".join(ln if not ln.startswith("expires") else "expires = %d\n" % past
                            for ln in text.splitlines(True)))
        csr, _ = self.csr("old-1")
        kind, payload = self.provision("old", "old-1", csr)
        self.rejected(kind, payload, "claim 'old' has expired", "refused")
        # MQTT 5: CONNACK 0x87 (not authorized).
        cert, key = self.claims["old"]
        p = Peer(self.tls, "old-2", V5)
        self.addCleanup(p.close)
        p.c.tls_set(ca_certs=self.pki.ca, certfile=cert, keyfile=key)
        p.connect(expect_rc=0x87)
        self.assertFalse(os.path.exists(self.pki.p("devices", "old-1.pem")))
        self.assert_undisturbed()

    def test_claim_may_only_provision(self):
        # A claim certificate reaches $provision/<its id>/... and nothing else.
        cert, key = self.claims["solo"]
        p = Peer(self.tls, "valve-7", V5)
        self.addCleanup(p.close)
        p.c.tls_set(ca_certs=self.pki.ca, certfile=cert, keyfile=key)
        p.connect()
        before = len(self.tap_msgs)
        self.assertEqual(p.publish("dev/valve-7/telemetry", b"from a claim", 1), 0x87)
        self.assertEqual(p.publish("$provision/valve-8/csr", b"for another id", 1), 0x87)
        self.assertEqual(p.subscribe("dev/#", 1), [0x87])
        self.assertEqual(p.subscribe("$provision/valve-8/#", 1), [0x87])
        self.assertEqual(p.subscribe("$provision/valve-7/#", 1), [1])
        # The probe goes through the same subscriber after the denied
        # publish: had the denied one been delivered, it would be before it.
        self.b_pub("dev/probe-claim/x", b"after")
        wait_for(lambda: ("dev/probe-claim/x", b"after") in self.tap_msgs,
                 what="the probe at the subscriber")
        self.assertNotIn(b"from a claim", [pl for _, pl in self.tap_msgs[before:]])
        self.assertFalse(os.path.exists(self.pki.p("devices", "valve-8.pem")))
        # What it may do, it can: its own CSR, answered.
        csr, _ = self.csr("valve-7")
        self.assertEqual(p.publish("$provision/valve-7/csr", csr, 1), 0)
        got = p.expect_one()
        while got.topic == "$provision/valve-7/csr":  # its own CSR, echoed
            got = p.expect_one()
        self.assertEqual(got.topic, "$provision/valve-7/cert")
        self.assertIn(b"-----BEGIN CERTIFICATE-----", got.payload)
        self.assert_undisturbed()

    def test_mosquitto_clients(self):
        # Another peer: mosquitto_rr sends the CSR and waits for the answer on
        # one connection (a second one with the same client id would take
        # over the first), then mosquitto_pub publishes with the new
        # certificate.
        csr, key = self.csr("valve-20")
        cert, ckey = self.claims["solo"]
        r = subprocess.run(["mosquitto_rr", "-h", HOST, "-p", str(self.tls_port),
                            "--cafile", self.pki.ca, "--cert", cert, "--key", ckey,
                            "-i", "valve-20", "-q", "1", "-t", "$provision/valve-20/csr",
                            "-e", "$provision/valve-20/cert", "-m", csr.decode(), "-W", "10", "-N"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        mine = os.path.join(self.tmp, "valve-20.pem")
        with open(mine, "wb") as f:
            f.write(r.stdout)
        v = openssl("verify", "-CAfile", self.pki.ca, "-purpose", "sslclient", mine, check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        before = len(self.tap_msgs)
        r = subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(self.tls_port),
                            "--cafile", self.pki.ca, "--cert", mine, "--key", key,
                            "-i", "valve-20", "-q", "1", "-t", "dev/valve-20/flow", "-m", "3.5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: ("dev/valve-20/flow", b"3.5") in self.tap_msgs[before:],
                 what="mosquitto_pub's telemetry at the subscriber")
        self.assert_undisturbed()

    def test_revoked_claim(self):
        # revoke claim:NAME marks the claim revoked in index.txt, which the
        # hub's claim check reads at every CONNECT, and rewrites crl.pem,
        # which the hub reloads: then the handshake itself fails.
        cert, key = self.claims["gone"]

        def attempt():
            """"accepted", "refused" (CONNACK 5), "revoked" (handshake) or
            "closed" (no CONNACK, no handshake failure)."""
            ctx = ssl.create_default_context(cafile=self.pki.ca)
            ctx.load_cert_chain(cert, key)
            cid = b"gone-1"
            connect = (b"\x10" + bytes([12 + len(cid)]) + b"\x00\x04MQTT\x04\x02\x00\x1e" +
                       bytes([0, len(cid)]) + cid)
            with socket.create_connection((HOST, self.tls_port), 5) as raw:
                port = raw.getsockname()[1]
                try:
                    with ctx.wrap_socket(raw, server_hostname=HOST) as s:
                        s.sendall(connect)
                        ack = s.recv(4)
                except ssl.SSLError as e:
                    if "revoked" in str(e):
                        return "revoked"
                    ack = b""
                except OSError:
                    ack = b""
            if not ack:
                # Closed without a CONNACK: either the alert was lost to the
                # close (the hub's log says why), or the handshake passed just
                # before the CRL reload, which then closed the connection.
                rx = re.compile(r"event=tls_handshake_failed peer=127\.0\.0\.1:%d .*why=\"[^\"]*"
                                r"certificate revoked" % port)
                try:
                    wait_for(lambda: rx.search(self.b.log()), 2, "")
                    return "revoked"
                except AssertionError:
                    return "closed"
            self.assertIn(ack, (b"\x20\x02\x00\x00", b"\x20\x02\x00\x05"))
            return "accepted" if ack[3] == 0 else "refused"
        self.assertEqual(attempt(), "accepted")
        self.pki.mote("revoke", "claim:gone")
        first = attempt()
        # Never accepted again; "closed": the CRL reload closed the
        # connection between the handshake and the CONNACK.
        self.assertIn(first, ("refused", "revoked", "closed"))
        if first == "refused":
            self.assertEqual(self.refusal_reason("gone", "gone-1"), "claim 'gone' is revoked")
        wait_for(lambda: attempt() == "revoked", 15, "the handshake to refuse the claim")
        self.assert_undisturbed()


if __name__ == "__main__":
    unittest.main(verbosity=2)
