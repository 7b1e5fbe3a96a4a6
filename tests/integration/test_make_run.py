"""test_make_run.py - what `make run` starts is secure by default.

scripts/run.sh (the body of `make run`) is run as a user would run it, on free
ports and a fresh data folder. It must:
- create the fleet CA and a configuration that serves devices on mutual TLS
  only, with plaintext on loopback and no anonymous access;
- let the hub print the admin secret on its first start (and never again);
- on a second run, reuse the CA and the configuration.

Real peers: mosquitto_pub/mosquitto_sub with certificates made by `mote pki`.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import free_port, mote_only, wait_port  # noqa: E402

SRC = os.environ.get("MOTE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MOTE = os.environ.get("MOTE_BIN", os.path.join(SRC, "build", "mote"))
SECRET_RX = re.compile(r"created user 'admin' with password (\S+)")


class MakeRun(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mote-run-")
        self.data = os.path.join(self.dir, "data")
        self.tls_port, self.plain_port = free_port(), free_port()
        self.proc = None

    def tearDown(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self):
        env = dict(os.environ, DATA=self.data, MOTE=MOTE,
                   MQTTS_ADDR=f"127.0.0.1:{self.tls_port}",
                   MQTT_ADDR=f"127.0.0.1:{self.plain_port}")
        self.out_path = os.path.join(self.dir, f"run{time.monotonic_ns()}.log")
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen([os.path.join(SRC, "scripts", "run.sh")], env=env,
                                     stdout=self.out, stderr=subprocess.STDOUT)
        wait_port("127.0.0.1", self.tls_port, self.proc, timeout=20)
        wait_port("127.0.0.1", self.plain_port, self.proc, timeout=20)
        # the first-start secret is printed after the listeners are bound;
        # "event=ready" comes after it
        deadline = time.monotonic() + 20
        while "event=ready" not in self.output():
            self.assertLess(time.monotonic(), deadline, self.output()[-3000:])
            self.assertIsNone(self.proc.poll(), self.output()[-3000:])
            time.sleep(0.05)

    def output(self):
        with open(self.out_path) as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=15)
            self.proc = None
            self.out.close()
            self.assertEqual(rc, 0, self.output()[-3000:])

    def pki(self, *args):
        return subprocess.run([MOTE, "pki", "--dir", os.path.join(self.data, "pki"), *args],
                              capture_output=True, text=True, timeout=30)

    def device_pub(self, dev, topic, cert=True, msg="21.5"):
        pki = os.path.join(self.data, "pki")
        cmd = ["mosquitto_pub", "-h", "localhost", "-p", str(self.tls_port), "-i", dev,
               "--cafile", os.path.join(pki, "ca.pem"), "-t", topic, "-m", msg, "-q", "1"]
        if cert:
            cmd += ["--cert", os.path.join(pki, "devices", dev + ".pem"),
                    "--key", os.path.join(pki, "devices", dev + ".key")]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20)

    @mote_only
    def test_default_configuration_is_mtls_for_devices(self):
        self.start()
        out = self.output()
        m = SECRET_RX.search(out)
        self.assertIsNotNone(m, "the first start must print the admin secret:\n" + out[-3000:])
        secret = m.group(1)
        conf = open(os.path.join(self.data, "mote.conf")).read()
        self.assertIn(f"mqtts = 127.0.0.1:{self.tls_port}", conf)
        self.assertIn(f"mqtt = 127.0.0.1:{self.plain_port}", conf)
        self.assertNotIn("allow-anonymous", conf)
        self.assertEqual(os.stat(os.path.join(self.data, "pki", "ca.key")).st_mode & 0o777, 0o600)

        # an application on the loopback listener needs the secret
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.plain_port),
                                "-u", "admin", "-P", secret, "-t", "dev/#", "-v", "-C", "1",
                                "-W", "20"], stdout=subprocess.PIPE, text=True)
        anon = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.plain_port),
                               "-t", "dev/x/telemetry", "-m", "anon", "-q", "1"],
                              capture_output=True, text=True, timeout=20)
        self.assertNotEqual(anon.returncode, 0, "anonymous publish on plaintext must be refused")

        # a device with a certificate from the fleet CA publishes over mTLS
        r = self.pki("issue", "pump1")
        self.assertEqual(r.returncode, 0, r.stderr)
        no_cert = self.device_pub("pump1", "dev/pump1/telemetry", cert=False, msg="nocert")
        self.assertNotEqual(no_cert.returncode, 0, "a device without a certificate must be refused")
        # the subscriber may not be subscribed yet: publish until it reports
        deadline = time.monotonic() + 15
        got = None
        while time.monotonic() < deadline and got is None:
            r = self.device_pub("pump1", "dev/pump1/telemetry")
            self.assertEqual(r.returncode, 0, r.stderr)
            try:
                got, _ = sub.communicate(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        if got is None:
            sub.kill()
            sub.communicate()
        self.assertEqual(got, "dev/pump1/telemetry 21.5\n")
        self.assertNotIn("nocert", got)
        self.assertNotIn("anon", got)

    @mote_only
    def test_second_run_reuses_ca_and_configuration(self):
        self.start()
        self.assertIsNotNone(SECRET_RX.search(self.output()))
        ca = open(os.path.join(self.data, "pki", "ca.pem")).read()
        conf = open(os.path.join(self.data, "mote.conf")).read()
        self.stop()
        self.start()
        self.assertIsNone(SECRET_RX.search(self.output()), "the secret is printed once only")
        self.assertNotIn("creating the fleet CA", self.output())
        self.assertEqual(open(os.path.join(self.data, "pki", "ca.pem")).read(), ca)
        self.assertEqual(open(os.path.join(self.data, "mote.conf")).read(), conf)


if __name__ == "__main__":
    unittest.main(verbosity=2)
