"""test_tls.py - MQTT over mutual TLS (--mqtts) with real clients.

Certificates come from `mote pki` (the CA, the hub, devices, revocation) and
from the openssl CLI (another CA, expired, not yet valid, wrong key usage).
Clients: mosquitto_pub/sub (--cafile --cert --key), Debian's paho (tls_set),
`openssl s_client` for protocol versions and suites, raw sockets for garbage
and half-open handshakes.

Every refusal is checked three ways: the client fails, the hub logs
event=tls_handshake_failed (or _timeout) with the peer and OpenSSL's reason,
and two watchers that were connected all along - one over TLS, one over plain
TCP - are still connected and still receive messages.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from certs import Pki, openssl  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

HOST = harness.HOST
wait_for = harness.wait_for


class Watcher:
    """A paho client that stays subscribed to probe/# and records what it gets."""

    def __init__(self, port, client_id, pki=None, cert=None, key=None, topic="probe/#"):
        self.msgs = []
        self.disconnects = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)
        if pki:
            self.c.tls_set(ca_certs=pki.ca, certfile=cert, keyfile=key)
        self.c.on_connect = lambda c, u, f, rc: (self.connected.set() if rc == 0 else None,
                                                 c.subscribe(topic, 1))
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_message = lambda c, u, m: self.msgs.append((m.topic, m.payload, m.qos))
        self.c.on_disconnect = self._on_disconnect
        self.c.connect(HOST, port, keepalive=30)
        self.c.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("watcher %s did not subscribe" % client_id)

    def _on_disconnect(self, c, u, rc):
        self.disconnects += 1

    def got(self, payload):
        return any(p == payload for _, p, _ in self.msgs)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class TlsHub(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mote-tls-")
        cls.pki = Pki(cls.tmp)
        cls.dev = {name: cls.pki.issue(name) for name in ("dev1", "dev2", "watch1", "paho1",
                                                           "revoked1")}
        cls.pki.revoke("revoked1")  # in crl.pem before the hub starts
        cls.pki.crl()
        cls.other = Pki.other_ca(cls.tmp)
        cls.stranger = cls.other.openssl_device("stranger")
        cls.expired = cls.pki.openssl_device("expired1", not_before="20200101000000Z",
                                             not_after="20210101000000Z")
        cls.future = cls.pki.openssl_device("future1", not_before="20450101000000Z",
                                            not_after="20460101000000Z")
        cls.server_only = cls.pki.openssl_device("serveronly1", usage="server-only")
        cls.good_oss = cls.pki.openssl_device("ossdev1")
        cls.tls_port = harness.free_port()
        cls.b = harness.Broker(extra_args=[
            "--mqtts", "%s:%d" % (HOST, cls.tls_port), "--connect-timeout", "2",
            # mote bench connects many clients with one device certificate:
            # the identity need not be the client id here (test_auth_tls.py
            # covers the default, where it must)
            "--identity-match", "off",
            "--threads", os.environ.get("MOTE_TEST_THREADS", "3")] + cls.pki.hub_args())
        cls.b.start()
        harness.wait_port(HOST, cls.tls_port, cls.b.proc)
        cert, key = cls.dev["watch1"]
        # Devices may read only their own cmd/ID/# (the device ACL of src/auth):
        # the TLS watcher gets its probes there, the anonymous TCP one reads
        # what devices publish.
        cls.tls_watch = Watcher(cls.tls_port, "watch1", cls.pki, cert, key, topic="cmd/watch1/#")
        cls.tcp_watch = Watcher(cls.b.port, "tcpwatch", topic="dev/+/probe")
        cls.probes = 0

    @classmethod
    def tearDownClass(cls):
        cls.tls_watch.close()
        cls.tcp_watch.close()
        cls.b.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ---------------------------------------------------------------

    def mosq_pub(self, cert=None, key=None, topic="probe/x", msg="m", qos=1, client_id=None):
        args = ["mosquitto_pub", "-h", HOST, "-p", str(self.tls_port), "--cafile", self.pki.ca,
                "-t", topic, "-m", msg, "-q", str(qos)]
        if cert:
            args += ["--cert", cert, "--key", key]
        if client_id:
            args += ["-i", client_id]
        return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=20)

    def assert_undisturbed(self):
        """Both watchers still connected (never dropped) and still receiving."""
        TlsHub.probes += 1
        payload = ("probe-%d" % TlsHub.probes).encode()
        cert, key = self.dev["dev1"]
        r = self.mosq_pub(cert, key, "dev/dev1/probe", payload.decode(), client_id="dev1")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(self.b.port), "-t",
                            "cmd/watch1/probe", "-m", payload.decode(), "-q", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: self.tls_watch.got(payload) and self.tcp_watch.got(payload),
                 what="probe at both watchers")
        self.assertEqual(self.tls_watch.disconnects, 0)
        self.assertEqual(self.tcp_watch.disconnects, 0)
        self.assertTrue(self.b.alive())

    def refused(self, pattern):
        """The hub logged a refused handshake whose reason matches pattern."""
        self.b.wait_log(r"event=tls_handshake_failed peer=127\.0\.0\.1:\d+ .*why=\"[^\"]*"
                        + pattern)

    # ---- accepted ----------------------------------------------------------------

    def test_mosquitto_issued_device_publishes_qos1(self):
        got = []
        # the reader is an application on the TCP listener: a device may not
        # read another device's topics
        sub = subprocess.Popen(["mosquitto_sub", "-h", HOST, "-p", str(self.b.port),
                                "-i", "app-dev2", "-t", "dev/dev1/#", "-q", "1", "-C", "1", "-v"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.b.wait_log(r'event=subscribe.*client="app-dev2"|event=connect .*client="app-dev2"')
        time.sleep(0.2)  # mosquitto_sub subscribes right after CONNACK
        cert, key = self.dev["dev1"]
        r = self.mosq_pub(cert, key, "dev/dev1/temp", "21.5", qos=1, client_id="dev1")
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = sub.communicate(timeout=10)
        self.assertEqual(sub.returncode, 0, err)
        self.assertEqual(out.strip(), "dev/dev1/temp 21.5")
        self.b.wait_log(r'event=connect .*client="dev1".*cert_cn="dev1" cert_serial=[0-9A-F]+')

    def test_paho_tls13_qos1_roundtrip(self):
        cert, key = self.dev["paho1"]
        w = Watcher(self.tls_port, "paho1", self.pki, cert, key, topic="$twin/paho1/#")
        try:
            self.assertEqual(w.c.socket().version(), "TLSv1.3")
            info = w.c.publish("$twin/paho1/q1", b"over tls", qos=1)
            info.wait_for_publish(5)
            self.assertTrue(info.is_published())  # PUBACK came back over TLS
            wait_for(lambda: w.got(b"over tls"), what="own QoS 1 message")
            self.assertEqual([q for _, p, q in w.msgs if p == b"over tls"], [1])
        finally:
            w.close()
        self.assert_undisturbed()

    def test_openssl_made_device_and_tls12_aead(self):
        cert, key = self.good_oss
        r = openssl("s_client", "-connect", "%s:%d" % (HOST, self.tls_port), "-tls1_2",
                    "-CAfile", self.pki.ca, "-cert", cert, "-key", key, "-verify_return_error",
                    check=False, input="")
        self.assertIn("Protocol  : TLSv1.2", r.stdout, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"Cipher\s*:\s*ECDHE-ECDSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)")
        self.assert_undisturbed()

    def test_mote_bench_over_tls(self):
        """mote bench --tls: many handshakes with a bounded number in setup,
        and QoS 1 traffic both ways, all through the hub's TLS listener."""
        cert, key = self.dev["dev2"]
        opts = ["-p", str(self.tls_port), "--cafile", self.pki.ca, "--cert", cert, "--key", key,
                "--json", "--quiet", "--threads", "2"]

        def bench(mode, *extra):
            r = subprocess.run([harness.mote_bin(), "bench", mode] + opts + list(extra),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            return json.loads(r.stdout.strip().splitlines()[-1])

        rep = bench("conn", "-c", "40", "--conn-parallel", "8", "-d", "1")
        self.assertTrue(rep["tls"])
        self.assertEqual(rep["connections"]["connected"], 40, rep)
        self.assertEqual(rep["connections"]["held"], 40, rep)
        # a device may read and write only its own $twin/ID/... of these
        rep = bench("pubsub", "--pubs", "2", "--subs", "2", "-q", "1", "-n", "500", "-s", "300",
                    "-t", "$twin/dev2/bench/%i")
        self.assertEqual(rep["acked"], 1000, rep)  # within the default queue bound
        self.assertEqual(rep["received"], 1000, rep)
        self.assertEqual(sum(rep["errors"].values()), 0, rep)
        self.assert_undisturbed()

    def test_mote_bench_wrong_ca_refused(self):
        cert, key = self.stranger
        r = subprocess.run([harness.mote_bin(), "bench", "conn", "-p", str(self.tls_port),
                            "--cafile", self.pki.ca, "--cert", cert, "--key", key, "-c", "3",
                            "-d", "1", "--json", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # no connection succeeded
        rep = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(rep["connections"]["connected"], 0)
        self.assert_undisturbed()

    # ---- refused -----------------------------------------------------------------

    def test_no_client_certificate(self):
        r = self.mosq_pub(client_id="nocert")
        self.assertNotEqual(r.returncode, 0)
        self.refused("peer did not return a certificate")
        self.assert_undisturbed()

    def test_certificate_from_another_ca(self):
        cert, key = self.stranger
        r = self.mosq_pub(cert, key, client_id="stranger")
        self.assertNotEqual(r.returncode, 0)
        self.refused("unable to get local issuer certificate")
        self.assert_undisturbed()

    def test_expired_certificate(self):
        cert, key = self.expired
        r = self.mosq_pub(cert, key, client_id="expired1")
        self.assertNotEqual(r.returncode, 0)
        self.refused("certificate has expired")
        self.assert_undisturbed()

    def test_not_yet_valid_certificate(self):
        cert, key = self.future
        r = self.mosq_pub(cert, key, client_id="future1")
        self.assertNotEqual(r.returncode, 0)
        self.refused("certificate is not yet valid")
        self.assert_undisturbed()

    def test_revoked_in_crl_at_start(self):
        cert, key = self.dev["revoked1"]
        r = self.mosq_pub(cert, key, client_id="revoked1")
        self.assertNotEqual(r.returncode, 0)
        self.refused("certificate revoked")
        self.assert_undisturbed()

    def test_wrong_key_usage(self):
        cert, key = self.server_only
        r = self.mosq_pub(cert, key, client_id="serveronly1")
        self.assertNotEqual(r.returncode, 0)
        self.refused("unsuitable certificate purpose")
        self.assert_undisturbed()

    def raw_exchange(self, data):
        """Sends data on a plain socket to the TLS port; returns what came back
        before the hub closed it."""
        s = socket.create_connection((HOST, self.tls_port), timeout=5)
        try:
            s.sendall(data)
            got = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    return got  # closed with our bytes unread: a reset
                if not chunk:
                    return got
                got += chunk
        finally:
            s.close()

    def test_garbage_bytes(self):
        got = self.raw_exchange(os.urandom(3) + b"\x00 not tls at all \r\n" * 20)
        self.assertNotIn(b"\x20\x02", got[:2])  # certainly no CONNACK
        self.refused("")
        self.assert_undisturbed()

    def test_plaintext_mqtt_on_tls_port(self):
        connect = bytes([0x10, 0x12, 0x00, 0x04]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 6]) + b"plain1"
        got = self.raw_exchange(connect)
        self.assertFalse(got.startswith(b"\x20\x02"), got)  # no CONNACK in the clear
        self.refused("(wrong version number|http request|packet length too long|record)")
        self.assert_undisturbed()

    def test_tls11_client_refused(self):
        cert, key = self.dev["dev1"]
        r = openssl("s_client", "-connect", "%s:%d" % (HOST, self.tls_port), "-tls1_1",
                    "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", self.pki.ca, "-cert", cert,
                    "-key", key, check=False, input="")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Cipher is (NONE)", r.stdout)  # no session came of it
        self.refused("unsupported protocol")
        self.assert_undisturbed()

    def test_tls12_cbc_suite_refused(self):
        cert, key = self.dev["dev1"]
        r = openssl("s_client", "-connect", "%s:%d" % (HOST, self.tls_port), "-tls1_2",
                    "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384",
                    "-CAfile", self.pki.ca, "-cert", cert, "-key", key, check=False, input="")
        self.assertNotEqual(r.returncode, 0)
        self.refused("no shared cipher")
        self.assert_undisturbed()

    def test_half_open_handshake_times_out(self):
        s = socket.create_connection((HOST, self.tls_port), timeout=10)
        try:
            # The first bytes of a ClientHello record, and then nothing.
            s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]))
            t0 = time.monotonic()
            self.assertEqual(s.recv(4096), b"")  # the hub closed it
            waited = time.monotonic() - t0
        finally:
            s.close()
        self.assertGreater(waited, 1.0)
        self.assertLess(waited, 6.0)
        self.b.wait_log(r"event=tls_handshake_timeout peer=127\.0\.0\.1:\d+")
        self.assert_undisturbed()

    def test_handshake_failures_counted_in_sys(self):
        r = self.mosq_pub(client_id="nocert2")
        self.assertNotEqual(r.returncode, 0)
        got = []
        r = subprocess.run(["mosquitto_sub", "-h", HOST, "-p", str(self.b.port), "-t",
                            "$SYS/broker/tls/handshake_failed", "-C", "1", "-W", "30"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=40)
        got = r.stdout.strip()
        self.assertTrue(got.isdigit(), r.stdout + r.stderr)
        self.assertGreaterEqual(int(got), 0)


class OpensslMadePki(unittest.TestCase):
    """The hub serves with PEM files made by another CA tool alone: CA, hub
    certificate, device certificates and the CRL all from the openssl CLI."""

    def test_hub_and_devices_from_openssl(self):
        tmp = tempfile.mkdtemp(prefix="mote-tls-oss-")
        self.addCleanup(shutil.rmtree, tmp, True)
        ca = Pki.other_ca(tmp, "oss", cn="Openssl Fleet CA")
        hub_cert, hub_key = ca.openssl_device("localhost", usage="server",
                                              san="DNS:localhost,IP:127.0.0.1")
        good = ca.openssl_device("odev1")
        gone = ca.openssl_device("odev2")
        ca.openssl_revoke(gone[0])
        port = harness.free_port()
        b = harness.Broker(extra_args=[
            "--mqtts", "%s:%d" % (HOST, port), "--tls-ca", ca.ca, "--tls-cert", hub_cert,
            "--tls-key", hub_key, "--tls-crl", ca.crl_path])
        b.start()
        self.addCleanup(b.stop)
        harness.wait_port(HOST, port, b.proc)
        watch = Watcher(b.port, "ossw", topic="dev/+/t")
        self.addCleanup(watch.close)

        def pub(dev_id, dev, msg):
            cert, key = dev
            return subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(port), "--cafile", ca.ca,
                                   "--cert", cert, "--key", key, "-i", dev_id,
                                   "-t", "dev/%s/t" % dev_id, "-m", msg, "-q", "1"],
                                  capture_output=True, text=True, timeout=20)
        r = pub("odev1", good, "from-openssl-device")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: watch.got(b"from-openssl-device"), what="the openssl device's message")
        r = pub("odev2", gone, "from-revoked")
        self.assertNotEqual(r.returncode, 0, "a device in openssl's CRL must be refused")
        b.wait_log(r"event=tls_handshake_failed .*why=\"[^\"]*revoked")
        self.assertFalse(watch.got(b"from-revoked"))


class TlsStartErrors(unittest.TestCase):
    """Start problems name the file and what to do, and the hub exits non-zero."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mote-tls-start-")
        cls.pki = Pki(cls.tmp)
        cls.other = Pki(cls.tmp, "other")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, *args):
        r = subprocess.run([harness.mote_bin(), "hub", "--mqtt", "off", "--mqtts",
                            "%s:%d" % (HOST, harness.free_port()), "--persistence", "off",
                            "--data", os.path.join(self.tmp, "data")] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=20)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        return r.stdout

    def test_mqtts_without_files(self):
        out = self.start()
        self.assertIn("--mqtts needs --tls-ca, --tls-cert and --tls-key", out)

    def test_missing_file(self):
        out = self.start("--tls-ca", self.pki.ca, "--tls-cert", self.pki.p("nope.pem"),
                         "--tls-key", self.pki.hub_key)
        self.assertIn("nope.pem: cannot open: No such file", out)

    def test_key_does_not_match(self):
        out = self.start("--tls-ca", self.pki.ca, "--tls-cert", self.pki.hub_cert,
                         "--tls-key", self.other.hub_key)
        self.assertIn("does not match the certificate", out)

    def test_crl_of_another_ca(self):
        out = self.start(*self.pki.hub_args(crl=False), "--tls-crl", self.other.crl_path)
        self.assertIn("not signed by the CA in --tls-ca", out)

    def test_not_pem(self):
        out = self.start("--tls-ca", self.pki.p("index.txt"), "--tls-cert", self.pki.hub_cert,
                         "--tls-key", self.pki.hub_key)
        self.assertIn("no PEM certificate", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
