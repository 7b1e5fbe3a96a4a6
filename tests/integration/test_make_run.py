"""test_make_run.py - `make run` is the demo: a secure hub, a live fleet, a dashboard.

scripts/run.sh (the body of `make run`) is run as a user would run it, on free
ports and a fresh data folder, with a smaller, faster fleet (SIM_DEVICES,
SIM_ARGS). It must:
- create the fleet CA and a configuration that serves devices on mutual TLS
  only, plaintext on loopback with no anonymous access, and the dashboard and
  API on loopback; the hub prints the admin secret on its first start only;
- start the hub and `mote sim` over mTLS, and print a ready dashboard link
  http://HOST:PORT/?token=T and the admin token, kept in DATA/dashboard.token
  (0600); GET / serves the dashboard, the simulated devices appear online
  with telemetry, the token works;
- stop on Ctrl-C (SIGINT to its process group, as a terminal sends it) and on
  SIGTERM: the simulator first, then the hub, exit status 0, no process left;
- on a second run keep the CA, configuration, devices, telemetry and token;
- serve the dashboard even with a mote.conf from before it (no `http` line),
  without rewriting that file, and replace a revoked token.

Real peers: mosquitto_pub/mosquitto_sub with certificates made by `mote pki`,
the simulated fleet (`mote sim`) on mTLS, HTTP with http.client.
"""
import http.client
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import free_port, mote_only, wait_for  # noqa: E402

SRC = os.environ.get("MOTE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MOTE = os.path.abspath(os.environ.get("MOTE_BIN", os.path.join(SRC, "build", "mote")))
SECRET_RX = re.compile(r"created user 'admin' with password (\S+)")
LINK_RX = re.compile(r"dashboard:\s+(http://127\.0\.0\.1:(\d+)/\?token=(mote_[0-9a-f]+))")
TOKEN_RX = re.compile(r"admin token:\s+(mote_[0-9a-f]+)")
DEVICES = 3
# timeouts are bounds for a failure, generous for the sanitizer builds
SLOW = 2

# The configuration the previous run.sh wrote: no dashboard yet.
OLD_CONF = """# mote hub configuration, written by `make run` on its first run.
data = {data}
mqtts = 127.0.0.1:{tls}
pki = {data}/pki
mqtt = 127.0.0.1:{plain}
"""


def read(path):
    with open(path) as f:
        return f.read()


class MakeRun(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mote-run-")
        self.data = os.path.join(self.dir, "data")
        self.tls_port, self.plain_port, self.http_port = free_port(), free_port(), free_port()
        self.proc = None
        self.addCleanup(self.cleanup)

    def cleanup(self):
        result = getattr(self._outcome, "result", None)
        if result and any(t is self for t, _ in result.errors + result.failures) \
                and getattr(self, "out_path", None):
            print("\n--- run.sh output (tail) ---\n" + self.output()[-4000:], file=sys.stderr)
        # whatever failed, nothing of this test may keep running
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def leftovers(self):
        """Processes whose command line names this test's folder (hub, sim, run.sh's children)."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().decode("utf-8", "replace")
                with open(f"/proc/{pid}/stat") as f:
                    zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                continue
            if self.dir in cmd and not zombie:
                found.append(int(pid))
        return found

    def start(self, **extra_env):
        env = dict(os.environ, DATA=self.data, MOTE=MOTE,
                   MQTTS_ADDR=f"127.0.0.1:{self.tls_port}",
                   MQTT_ADDR=f"127.0.0.1:{self.plain_port}",
                   HTTP_ADDR=f"127.0.0.1:{self.http_port}",
                   SIM_DEVICES=str(DEVICES), SIM_ARGS="--interval-ms 200 --seed 7",
                   **extra_env)
        self.out_path = os.path.join(self.dir, f"run{time.monotonic_ns()}.log")
        self.out = open(self.out_path, "w")
        # its own session, as in a terminal: a Ctrl-C goes to the whole group;
        # SIGINT at its default disposition even if ours is ignored
        self.proc = subprocess.Popen(
            [os.path.join(SRC, "scripts", "run.sh")], env=env, stdout=self.out,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        # the link is printed once the fleet is online (or run.sh gave up waiting)
        deadline = time.monotonic() + 45 * SLOW
        while not LINK_RX.search(self.output()):
            self.assertLess(time.monotonic(), deadline, self.output()[-3000:])
            self.assertIsNone(self.proc.poll(), self.output()[-3000:])
            time.sleep(0.05)
        m = LINK_RX.search(self.output())
        self.assertEqual(int(m.group(2)), self.http_port)
        return m.group(1), m.group(3)

    def output(self):
        return read(self.out_path)

    def stop(self, sig):
        """Stop run.sh with sig (SIGINT: to its whole process group, like a
        terminal's Ctrl-C) and check it and everything it started exit cleanly."""
        if sig == signal.SIGINT:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30 * SLOW)
        except subprocess.TimeoutExpired:
            self.fail("run.sh did not stop:\n" + self.output()[-3000:])
        self.proc = None
        self.out.close()
        self.assertEqual(rc, 0, self.output()[-3000:])
        out = self.output()
        # run.sh stopped the hub (SIGTERM), not the terminal's signal, and
        # only after the simulator had finished (its last line comes first)
        hub_stop = out.rfind("event=signal signal=SIGTERM action=shutdown")
        self.assertGreater(hub_stop, 0, out[-3000:])
        sim_stop = out.rfind("mote sim: stopped")
        self.assertTrue(0 < sim_stop < hub_stop, out[-3000:])
        self.assertIn("event=stopped", out[hub_stop:])
        wait_for(lambda: not self.leftovers(), 5, "no process of the run left")

    def api(self, method, path, token=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        headers = {"Authorization": "Bearer " + token} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            ctype = resp.getheader("Content-Type", "")
        finally:
            conn.close()
        if ctype.startswith("application/json") and payload:
            payload = json.loads(payload)
        return resp.status, ctype, payload

    def fleet(self, token):
        st, _, body = self.api("GET", "/api/v1/devices?limit=1000", token)
        self.assertEqual(st, 200, body)
        return {d["id"]: d for d in body["devices"]}

    def sim_ids(self):
        models = ["pump", "motor", "hvac"]
        return {f"{models[i % 3]}-{i + 1:03d}" for i in range(DEVICES)}

    def points(self, token, device, metric, frm, to):
        st, _, body = self.api(
            "GET", f"/api/v1/devices/{device}/telemetry?metric={metric}&from={frm}&to={to}", token)
        self.assertEqual(st, 200, body)
        return body["points"]

    def check_link_and_token(self, token):
        self.assertEqual(TOKEN_RX.search(self.output()).group(1), token)
        path = os.path.join(self.data, "dashboard.token")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(read(path).strip(), token)
        st, _, _ = self.api("GET", "/api/v1/devices?limit=1", token)
        self.assertEqual(st, 200)

    def check_dashboard(self):
        st, ctype, body = self.api("GET", "/?token=ignored")
        self.assertEqual(st, 200, repr(body)[:300])
        self.assertTrue(ctype.startswith("text/html"), ctype)
        self.assertIn(b"/assets/", body)

    def wait_fleet_live(self, token):
        """Every simulated device registered, online, with pump telemetry."""
        ids = self.sim_ids()

        def live():
            fleet = self.fleet(token)
            return ids <= set(fleet) and all(fleet[i]["online"] for i in ids)
        wait_for(live, 20 * SLOW, f"{DEVICES} simulated devices online")

        def telemetry():
            st, _, body = self.api("GET", "/api/v1/devices/pump-001/telemetry/latest", token)
            return st == 200 and {"temperature", "pressure", "flow"} <= \
                {p["metric"] for p in body["latest"]}
        wait_for(telemetry, 20 * SLOW, "telemetry of pump-001")
        fleet = self.fleet(token)
        self.assertEqual(fleet["pump-001"]["model"], "pump")

    @mote_only
    def test_demo_is_secure_live_and_stops_cleanly_and_keeps_its_data(self):
        t0 = int(time.time() * 1000)
        link, token = self.start()
        out = self.output()
        m = SECRET_RX.search(out)
        self.assertIsNotNone(m, "the first start must print the admin secret:\n" + out[-3000:])
        secret = m.group(1)
        conf = read(os.path.join(self.data, "mote.conf"))
        self.assertIn(f"mqtts = 127.0.0.1:{self.tls_port}", conf)
        self.assertIn(f"mqtt = 127.0.0.1:{self.plain_port}", conf)
        self.assertIn(f"http = 127.0.0.1:{self.http_port}", conf)
        self.assertNotIn("allow-anonymous", conf)
        self.assertEqual(os.stat(os.path.join(self.data, "pki", "ca.key")).st_mode & 0o777, 0o600)

        # the link, the token, the dashboard, the fleet
        self.check_link_and_token(token)
        st, _, _ = self.api("GET", "/api/v1/devices?limit=1")
        self.assertEqual(st, 401, "the API without a token")
        self.check_dashboard()
        self.wait_fleet_live(token)

        # an application on the loopback listener needs the secret
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.plain_port),
                                "-u", "admin", "-P", secret, "-t", "dev/pump1/#", "-v",
                                "-C", "1", "-W", "20"], stdout=subprocess.PIPE, text=True)
        anon = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.plain_port),
                               "-t", "dev/pump1/telemetry", "-m", "anon", "-q", "1"],
                              capture_output=True, text=True, timeout=20)
        self.assertNotEqual(anon.returncode, 0, "anonymous publish on plaintext must be refused")

        # a device with a certificate from the fleet CA publishes over mTLS
        pki = os.path.join(self.data, "pki")
        r = subprocess.run([MOTE, "pki", "--dir", pki, "issue", "pump1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

        def device_pub(cert, msg):
            cmd = ["mosquitto_pub", "-h", "localhost", "-p", str(self.tls_port), "-i", "pump1",
                   "--cafile", os.path.join(pki, "ca.pem"), "-t", "dev/pump1/telemetry",
                   "-m", msg, "-q", "1"]
            if cert:
                cmd += ["--cert", os.path.join(pki, "devices", "pump1.pem"),
                        "--key", os.path.join(pki, "devices", "pump1.key")]
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        self.assertNotEqual(device_pub(False, "nocert").returncode, 0,
                            "a device without a certificate must be refused")
        # the subscriber may not be subscribed yet: publish until it reports
        deadline = time.monotonic() + 15 * SLOW
        got = None
        while time.monotonic() < deadline and got is None:
            r = device_pub(True, '{"temp":21.5}')
            self.assertEqual(r.returncode, 0, r.stderr)
            try:
                got, _ = sub.communicate(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        if got is None:
            sub.kill()
            sub.communicate()
        self.assertEqual(got, 'dev/pump1/telemetry {"temp":21.5}\n')

        # what the first run stored, just before Ctrl-C
        stored = self.points(token, "pump-001", "temperature", t0 - 60000,
                             int(time.time() * 1000))
        self.assertGreater(len(stored), 0)
        ca = read(os.path.join(pki, "ca.pem"))
        self.stop(signal.SIGINT)
        t1 = int(time.time() * 1000)

        # the second run keeps everything: CA, configuration, token, devices, telemetry
        link2, token2 = self.start()
        out = self.output()
        self.assertIsNone(SECRET_RX.search(out), "the secret is printed once only")
        self.assertNotIn("creating the fleet CA", out)
        self.assertNotIn("wrote the default configuration", out)
        self.assertNotIn("revoked", out)
        self.assertEqual(read(os.path.join(pki, "ca.pem")), ca)
        self.assertEqual(read(os.path.join(self.data, "mote.conf")), conf)
        self.assertEqual((link2, token2), (link, token))
        self.check_link_and_token(token)
        self.wait_fleet_live(token)
        self.assertIn("pump1", self.fleet(token), "a device of the first run")
        kept = self.points(token, "pump-001", "temperature", t0 - 60000, t1)
        missing = {tuple(p) for p in stored} - {tuple(p) for p in kept}
        self.assertFalse(missing, "telemetry of the first run lost")
        self.stop(signal.SIGTERM)

    @mote_only
    def test_old_configuration_gets_the_dashboard_and_a_revoked_token_is_replaced(self):
        os.makedirs(self.data, mode=0o700)
        r = subprocess.run([MOTE, "pki", "--dir", os.path.join(self.data, "pki"), "init",
                            "--san", "IP:127.0.0.1", "--san", "DNS:localhost"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        conf_path = os.path.join(self.data, "mote.conf")
        old = OLD_CONF.format(data=self.data, tls=self.tls_port, plain=self.plain_port)
        with open(conf_path, "w") as f:
            f.write(old)

        link, token = self.start()
        self.assertIn("has no http line", self.output())
        self.check_dashboard()
        self.check_link_and_token(token)
        self.wait_fleet_live(token)
        self.assertEqual(read(conf_path), old, "run.sh must not rewrite the user's file")
        self.stop(signal.SIGTERM)

        r = subprocess.run([MOTE, "token", "revoke", "dashboard", "--data", self.data],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        link2, token2 = self.start()
        self.assertIn("was revoked: creating a new one", self.output())
        self.assertNotEqual(token2, token)
        self.check_link_and_token(token2)
        st, _, _ = self.api("GET", "/api/v1/devices?limit=1", token)
        self.assertEqual(st, 401, "the revoked token")
        self.wait_fleet_live(token2)
        self.stop(signal.SIGINT)


if __name__ == "__main__":
    unittest.main(verbosity=2)
