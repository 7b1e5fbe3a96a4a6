"""test_sim.py - `mote sim` against a real hub (docs/sim.md).

- Registration through the REST API: every device with its name, model and tags.
- Telemetry: every metric of every model is stored by the hub.
- The twin: desired setpoint, interval_ms and on are obeyed and reported back within
  seconds (the delta empties); a bad value is refused with last_error and the old
  value kept; desired fault overheat makes the temperature climb.
- mTLS: --mqtts with --pki issues one certificate per device from the fleet CA.
- Reconnect: the hub is killed and started again; the fleet comes back by itself.
- SIGINT and SIGTERM: every device disconnects and the simulator exits 0.
- Usage errors exit 2 with a sentence.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from certs import Pki  # noqa: E402
from harness import HOST, Broker, wait_for  # noqa: E402

METRICS = {
    "pump": {"temperature", "vibration", "pressure", "flow", "power"},
    "motor": {"temperature", "vibration", "current", "rpm", "power"},
    "hvac": {"supply_temp", "room_temp", "humidity", "power"},
}


class Sim:
    """A `mote sim` process; output goes to a file in the broker's folder."""

    def __init__(self, broker, args, name="sim"):
        self.log_path = os.path.join(broker.dir, name + ".log")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([harness.mote_bin(), "sim"] + args, stdout=self.logf,
                                     stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGINT, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self.logf.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


def latest_mqtt(port, dev, timeout=5):
    """The metrics of one telemetry message of dev, read with mosquitto_sub."""
    import json
    r = subprocess.run(["mosquitto_sub", "-h", HOST, "-p", str(port), "-C", "1", "-W",
                        str(timeout), "-t", "dev/%s/telemetry" % dev], capture_output=True,
                       text=True)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}


def telemetry_ts(port, dev, n):
    """The ts of the next n telemetry messages of dev."""
    import json
    r = subprocess.run(["mosquitto_sub", "-h", HOST, "-p", str(port), "-C", str(n), "-W", "10",
                        "-t", "dev/%s/telemetry" % dev], capture_output=True, text=True)
    return [json.loads(line)["ts"] for line in r.stdout.splitlines()]


def api(b, tok, method, path, body=None):
    return b.api(method, path, body=body, token=tok)


def latest(b, tok, dev):
    st, _, body = api(b, tok, "GET", "/api/v1/devices/%s/telemetry/latest" % dev)
    if st == 404:  # not registered yet (auto-registration on the first connect)
        return {}
    assert st == 200, (st, body)
    return {m["metric"]: (m["ts"], m["value"]) for m in body["latest"]}


def value(b, tok, dev, metric, default=float("nan")):
    """The latest value of one metric, default while there is none."""
    return latest(b, tok, dev).get(metric, (0, default))[1]


def twin(b, tok, dev):
    st, _, body = api(b, tok, "GET", "/api/v1/devices/%s/twin" % dev)
    assert st == 200, body
    return body


def reported(b, tok, dev):
    st, _, body = api(b, tok, "GET", "/api/v1/devices/%s/twin" % dev)
    if st == 404:  # not registered yet
        return {}
    assert st == 200, body
    return body["state"]["reported"]


class FleetTest(unittest.TestCase):
    """One hub and one registered fleet of 6 (physics 60x faster) for the twin tests."""

    @classmethod
    def setUpClass(cls):
        cls.b = Broker(http=True).start()
        cls.tok = cls.b.token("write")
        cls.sim = Sim(cls.b, ["--mqtt", "%s:%d" % (HOST, cls.b.port), "--devices", "6",
                              "--api", "http://%s:%d" % (HOST, cls.b.http_port),
                              "--token", cls.tok, "--interval-ms", "200", "--speed", "60",
                              "--seed", "7"])

    @classmethod
    def tearDownClass(cls):
        rc = cls.sim.stop()
        cls.b.stop()
        assert rc == 0, "mote sim exited %s:\n%s" % (rc, cls.sim.log())

    def wait_reported(self, dev, cond, what, timeout=10):
        def ok():
            return cond(reported(self.b, self.tok, dev))
        try:
            wait_for(ok, timeout, what)
        except AssertionError:
            raise AssertionError("%s; twin: %s\nsim log:\n%s" % (
                what, twin(self.b, self.tok, dev), self.sim.log()[-3000:]))

    def test_registration_with_models_and_tags(self):
        def listed():
            st, _, body = api(self.b, self.tok, "GET", "/api/v1/devices?limit=100")
            return {d["id"]: d for d in body["devices"]} if st == 200 else {}
        want = ["pump-001", "motor-002", "hvac-003", "pump-004", "motor-005", "hvac-006"]
        wait_for(lambda: all(i in listed() for i in want), 10, "six registered devices")
        devs = listed()
        self.assertEqual(devs["pump-001"]["name"], "Pump 001")
        self.assertEqual(devs["motor-002"]["name"], "Motor 002")
        self.assertEqual(devs["hvac-003"]["name"], "HVAC 003")
        for i, dev in enumerate(want):
            self.assertEqual(devs[dev]["model"], dev.split("-")[0])
            self.assertEqual(devs[dev]["tags"],
                             {"site": "north" if i % 2 == 0 else "south",
                              "line": str(i // 2 % 4 + 1)})
        # the filters the dashboard uses work on them
        st, _, body = api(self.b, self.tok, "GET", "/api/v1/devices?model=hvac")
        self.assertEqual(sorted(d["id"] for d in body["devices"]), ["hvac-003", "hvac-006"])

    def test_telemetry_of_every_metric_is_stored(self):
        for dev in ["pump-001", "motor-002", "hvac-003"]:
            model = dev.split("-")[0]
            wait_for(lambda: set(latest(self.b, self.tok, dev)) >= METRICS[model], 10,
                     "every %s metric of %s" % (model, dev))
            got = latest(self.b, self.tok, dev)
            self.assertEqual(set(got), METRICS[model])
            now_ms = time.time() * 1000
            for metric, (ts, value) in got.items():
                self.assertLess(abs(ts - now_ms), 60000, metric)
                self.assertIsInstance(value, (int, float))
        # plausible values
        p = latest(self.b, self.tok, "pump-001")
        self.assertTrue(0 < p["pressure"][1] < 12, p)
        self.assertTrue(0 < p["temperature"][1] < 120, p)
        m = latest(self.b, self.tok, "motor-002")
        self.assertTrue(1000 < m["rpm"][1] < 2000, m)
        h = latest(self.b, self.tok, "hvac-003")
        self.assertTrue(5 < h["room_temp"][1] < 40, h)
        # and it keeps coming: the latest timestamp moves
        ts0 = latest(self.b, self.tok, "pump-004")["power"][0]
        wait_for(lambda: latest(self.b, self.tok, "pump-004")["power"][0] > ts0, 5,
                 "newer telemetry")

    def test_twin_reports_model_and_settings(self):
        self.wait_reported("motor-005", lambda r: r.get("model") == "motor", "first report")
        r = reported(self.b, self.tok, "motor-005")
        self.assertEqual(r["firmware"], "sim-1")
        self.assertEqual(r["on"], True)
        self.assertEqual(r["setpoint"], 1500)
        self.assertEqual(r["interval_ms"], 200)
        self.assertNotIn("fault", r)      # null removes it
        self.assertNotIn("last_error", r)

    def test_desired_setpoint_interval_and_on_are_obeyed(self):
        dev = "pump-004"
        self.wait_reported(dev, lambda r: r.get("model") == "pump", "first report")
        st, _, body = api(self.b, self.tok, "PATCH", "/api/v1/devices/%s/twin" % dev,
                          {"desired": {"setpoint": 6.5, "interval_ms": 500}})
        self.assertEqual(st, 200, body)
        self.wait_reported(dev, lambda r: r.get("setpoint") == 6.5 and
                           r.get("interval_ms") == 500, "setpoint and interval reported", 5)
        wait_for(lambda: twin(self.b, self.tok, dev)["state"]["delta"] == {}, 5, "empty delta")
        # the physics follows: the pressure moves to the new setpoint
        wait_for(lambda: abs(value(self.b, self.tok, dev, "pressure") - 6.5) < 0.3, 10,
                 "pressure at 6.5 bar")
        # the new interval: about 2 messages per second now
        ts = telemetry_ts(self.b.port, dev, 4)
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        self.assertTrue(all(400 <= g <= 600 for g in gaps), gaps)
        # switched off, it reports on:false and its power falls to ~0
        st, _, body = api(self.b, self.tok, "PATCH", "/api/v1/devices/%s/twin" % dev,
                          {"desired": {"on": False}})
        self.assertEqual(st, 200, body)
        self.wait_reported(dev, lambda r: r.get("on") is False, "on:false reported", 5)
        wait_for(lambda: value(self.b, self.tok, dev, "power") < 0.3, 10, "power ~0")

    def test_bad_desired_value_is_refused_with_last_error(self):
        dev = "motor-002"
        self.wait_reported(dev, lambda r: r.get("model") == "motor", "first report")
        st, _, body = api(self.b, self.tok, "PATCH", "/api/v1/devices/%s/twin" % dev,
                          {"desired": {"setpoint": "fast"}})
        self.assertEqual(st, 200, body)
        self.wait_reported(dev, lambda r: "last_error" in r, "last_error reported", 5)
        r = reported(self.b, self.tok, dev)
        self.assertEqual(r["last_error"], "setpoint: must be a number between 300 and 3600")
        self.assertEqual(r["setpoint"], 1500)
        # out of range and unknown fault, in one update
        api(self.b, self.tok, "PATCH", "/api/v1/devices/%s/twin" % dev,
            {"desired": {"setpoint": 99999, "fault": "melted", "interval_ms": 1.5}})
        self.wait_reported(dev, lambda r: "fault:" in r.get("last_error", ""),
                           "three errors reported", 5)
        err = reported(self.b, self.tok, dev)["last_error"]
        self.assertIn("setpoint: must be a number between 300 and 3600", err)
        self.assertIn("interval_ms: must be an integer between 100 and 3600000", err)
        self.assertIn("fault: must be null or one of overheat, bearing, stuck, dropout", err)
        # a good value clears the error
        api(self.b, self.tok, "PATCH", "/api/v1/devices/%s/twin" % dev,
            {"desired": {"setpoint": 1800, "fault": None, "interval_ms": 200}})
        self.wait_reported(dev, lambda r: r.get("setpoint") == 1800 and "last_error" not in r,
                           "error cleared", 5)
        wait_for(lambda: abs(value(self.b, self.tok, dev, "rpm") - 1800) < 30, 10,
                 "motor at 1800 rpm")

    def test_fault_overheat_raises_the_temperature_and_null_repairs(self):
        dev = "pump-001"
        self.wait_reported(dev, lambda r: r.get("model") == "pump", "first report")
        wait_for(lambda: "temperature" in latest(self.b, self.tok, dev), 10, "a temperature")
        before = latest(self.b, self.tok, dev)["temperature"][1]
        st, _, body = api(self.b, self.tok, "PATCH", "/api/v1/devices/%s/twin" % dev,
                          {"desired": {"fault": "overheat"}})
        self.assertEqual(st, 200, body)
        self.wait_reported(dev, lambda r: r.get("fault") == "overheat", "fault reported", 5)
        # 60x: one time constant (300 s) takes 5 s; the rise over ambient quadruples
        wait_for(lambda: value(self.b, self.tok, dev, "temperature") > before + 10, 15,
                 "temperature above %.1f + 10" % before)
        st, _, body = api(self.b, self.tok, "PATCH", "/api/v1/devices/%s/twin" % dev,
                          {"desired": {"fault": None}})
        self.assertEqual(st, 200, body)
        self.wait_reported(dev, lambda r: "fault" not in r, "repair reported", 5)
        hot = latest(self.b, self.tok, dev)["temperature"][1]
        wait_for(lambda: value(self.b, self.tok, dev, "temperature") < hot - 5, 15,
                 "cooling down after the repair")

    def test_random_faults_are_reported(self):
        # 3 more devices on the same hub, 36000 faults per hour across them:
        # each gets one within a second
        sim = Sim(self.b, ["--mqtt", "%s:%d" % (HOST, self.b.port), "--devices", "3",
                           "--prefix", "rf-", "--fault-rate", "36000", "--interval-ms", "200",
                           "--seed", "3"], name="sim-faults")
        try:
            for dev in ["rf-pump-001", "rf-motor-002", "rf-hvac-003"]:
                wait_for(lambda: reported(self.b, self.tok, dev).get("fault") in
                         ("overheat", "bearing", "stuck", "dropout"), 10,
                         "a random fault reported by " + dev)
            self.assertEqual(sim.log().count("cause=random"), 3, sim.log())
        finally:
            self.assertEqual(sim.stop(), 0, sim.log())

    def test_sigterm_exits_0_quietly(self):
        sim = Sim(self.b, ["--mqtt", "%s:%d" % (HOST, self.b.port), "--devices", "3",
                           "--prefix", "q-", "--quiet"], name="sim-quiet")
        try:
            wait_for(lambda: "power" in latest(self.b, self.tok, "q-hvac-003"), 10, "telemetry")
            self.assertIsNone(sim.proc.poll(), sim.log())
            self.assertEqual(sim.stop(signal.SIGTERM), 0, sim.log())
            self.assertEqual(sim.log(), "")  # --quiet: nothing to say
            wait_for(lambda: not api(self.b, self.tok, "GET",
                                     "/api/v1/devices/q-hvac-003")[2]["online"], 5,
                     "offline after SIGTERM")
        finally:
            sim.kill()


class TlsTest(unittest.TestCase):
    def test_mtls_with_certificates_issued_from_the_fleet_ca(self):
        tmp = tempfile.mkdtemp(prefix="mote-sim-tls-")
        pki = Pki(tmp)
        tls_port = harness.free_port()
        b = Broker(http=True, extra_args=["--mqtts", "%s:%d" % (HOST, tls_port),
                                          "--pki", pki.dir]).start()
        tok = b.token("write")
        sim = Sim(b, ["--mqtts", "%s:%d" % (HOST, tls_port), "--pki", pki.dir,
                      "--devices", "4", "--interval-ms", "300", "--prefix", "t-"])
        try:
            for dev in ["t-pump-001", "t-motor-002", "t-hvac-003", "t-pump-004"]:
                wait_for(lambda: os.path.exists(pki.p("devices", dev + ".pem")), 20,
                         "certificate of " + dev)
                wait_for(lambda: set(latest(b, tok, dev)) >= METRICS[dev.split("-")[1]], 20,
                         "telemetry of " + dev)
            st, _, body = api(b, tok, "GET", "/api/v1/devices/t-pump-001")
            self.assertEqual(st, 200)
            self.assertTrue(body["online"])
            self.assertTrue(body["cert_serial"], body)  # identified by its certificate
            rc = sim.stop()
            self.assertEqual(rc, 0, sim.log())
            # each issue is in the PKI's audit log, as `mote pki issue` records it
            log = pki.p("audit.log")
            r = subprocess.run([harness.mote_bin(), "audit", "verify", log], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(log) as f:
                issued = [json.loads(line) for line in f if '"pki_issued"' in line]
            self.assertEqual(sorted(e["fields"]["device"] for e in issued),
                             ["t-hvac-003", "t-motor-002", "t-pump-001", "t-pump-004"])
            self.assertTrue(all(e["fields"]["by"] == "sim" for e in issued))
            # a second run uses the certificates it has
            before = sorted(os.listdir(pki.p("devices")))
            sim = Sim(b, ["--mqtts", "%s:%d" % (HOST, tls_port), "--pki", pki.dir,
                          "--devices", "4", "--prefix", "t-", "--duration", "1"], name="sim2")
            self.assertEqual(sim.proc.wait(timeout=20), 0, sim.log())
            self.assertEqual(sorted(os.listdir(pki.p("devices"))), before)
            self.assertNotIn("connect_failed", sim.log())
        finally:
            sim.kill()
            b.stop()


class ClaimTest(unittest.TestCase):
    def test_devices_provision_themselves_by_claim(self):
        # docs/security.md "Provisioning by claim", as a production batch does it:
        # the batch shares the claim certificate; each device makes its own key.
        tmp = tempfile.mkdtemp(prefix="mote-sim-claim-")
        pki = Pki(tmp)
        pki.mote("claim", "line9", "--prefix", "c-", "--max", "3")
        tls_port = harness.free_port()
        b = Broker(http=True, extra_args=["--mqtts", "%s:%d" % (HOST, tls_port),
                                          "--pki", pki.dir]).start()
        tok = b.token("read")
        mine = os.path.join(tmp, "device-certs")
        args = ["--mqtts", "%s:%d" % (HOST, tls_port), "--certs", mine, "--ca", pki.ca,
                "--claim-cert", pki.p("claims", "line9.pem"),
                "--claim-key", pki.p("claims", "line9.key"), "--prefix", "c-"]
        devs = ["c-pump-001", "c-motor-002", "c-hvac-003"]
        sim = Sim(b, args + ["--devices", "3", "--interval-ms", "300"])
        try:
            for dev in devs:
                wait_for(lambda: set(latest(b, tok, dev)) >= METRICS[dev.split("-")[1]], 30,
                         "telemetry of %s on its own certificate" % dev)
            for dev in devs:
                key = os.path.join(mine, dev + ".key")
                self.assertEqual(os.stat(key).st_mode & 0o777, 0o600, key)
                # the hub signed this very key: the certificate matches it
                pub = [subprocess.run(["openssl"] + cmd, capture_output=True, text=True,
                                      check=True).stdout
                       for cmd in (["x509", "-in", os.path.join(mine, dev + ".pem"), "-noout",
                                    "-pubkey"],
                                   ["pkey", "-in", key, "-pubout"])]
                self.assertEqual(pub[0], pub[1], dev)
                st, _, body = api(b, tok, "GET", "/api/v1/devices/" + dev)
                self.assertEqual(st, 200)
                self.assertTrue(body["online"] and body["cert_serial"], body)
            self.assertEqual(os.listdir(mine).count("c-pump-001.key.part"), 0)
            # the PKI's index counts them against the claim
            with open(pki.p("index.txt")) as f:
                by_claim = sorted(line.split("\t")[3] for line in f
                                  if line.rstrip("\n").endswith("\tline9"))
            self.assertEqual(by_claim, sorted(devs))
            self.assertIn("event=certificates_provisioned count=3", sim.log())
            self.assertEqual(sim.stop(), 0, sim.log())

            # A fourth device would exceed the claim's maximum: the hub refuses
            # its CONNECT and mote sim stops with a sentence, nothing left half-made.
            over = Sim(b, args + ["--devices", "4", "--duration", "5"], name="sim-over")
            rc = over.proc.wait(timeout=40)
            over.kill()  # closes its log
            self.assertNotEqual(rc, 0, over.log())
            self.assertIn("provisioning c-pump-004 by claim", over.log())
            self.assertIn("refused", over.log())
            self.assertNotIn("Sanitizer", over.log())  # its exit is non-zero anyway
            self.assertEqual(sorted(f for f in os.listdir(mine) if "004" in f), [])
            # the three come back on the certificates they have, no claim needed
            again = Sim(b, args + ["--devices", "3", "--duration", "2"], name="sim-again")
            rc = again.proc.wait(timeout=30)
            again.kill()
            self.assertEqual(rc, 0, again.log())
            self.assertNotIn("certificates_provisioned", again.log())
        finally:
            sim.kill()
            b.stop()


class LifecycleTest(unittest.TestCase):
    def test_reconnects_after_the_hub_restarts_and_stops_on_sigint(self):
        b = Broker(http=True).start()
        tok = b.token("read")
        sim = Sim(b, ["--mqtt", "%s:%d" % (HOST, b.port), "--devices", "5",
                      "--interval-ms", "200"])
        try:
            wait_for(lambda: "power" in latest(b, tok, "hvac-003"), 10, "first telemetry")
            b.kill()
            b.start()
            restarted_ms = time.time() * 1000
            # the backoff starts at 0.5 s: every device is back within seconds
            for dev in ["pump-001", "motor-002", "hvac-003", "pump-004", "motor-005"]:
                wait_for(lambda: latest(b, tok, dev).get("power", (0, 0))[0] > restarted_ms,
                         15, "telemetry of %s after the restart" % dev)
            st, _, body = api(b, tok, "GET", "/api/v1/devices/pump-001")
            self.assertTrue(body["online"])
            rc = sim.stop(signal.SIGINT)
            self.assertEqual(rc, 0, sim.log())

            def offline():
                st, _, body = api(b, tok, "GET", "/api/v1/devices?limit=100")
                return st == 200 and not any(d["online"] for d in body["devices"])
            wait_for(offline, 5, "every device offline after SIGINT")
            self.assertIn("stopped:", sim.log())
        finally:
            sim.kill()
            b.stop()


class UsageTest(unittest.TestCase):
    def run_sim(self, *args):
        return subprocess.run([harness.mote_bin(), "sim"] + list(args), capture_output=True,
                              text=True, timeout=10)

    def test_help_documents_every_option(self):
        r = self.run_sim("--help")
        self.assertEqual(r.returncode, 0)
        for opt in ["--mqtt", "--mqtts", "--devices", "--models", "--prefix", "--pki",
                    "--certs", "--ca", "--claim-cert", "--claim-key", "--api", "--token", "--interval-ms", "--seed",
                    "--fault-rate", "--speed", "--duration", "--quiet"]:
            self.assertIn(opt + " ", r.stdout)

    def test_usage_errors_exit_2_with_a_sentence(self):
        cases = [
            ([], "--mqtt HOST:PORT"),
            (["--mqtt", "127.0.0.1"], "HOST:PORT"),
            (["--mqtt", "127.0.0.1:1883", "--devices", "0"], "--devices"),
            (["--mqtt", "127.0.0.1:1883", "--models", "pump,boiler"], "--models"),
            (["--mqtt", "127.0.0.1:1883", "--interval-ms", "5"], "--interval-ms"),
            (["--mqtts", "127.0.0.1:8883"], "certificates"),
            (["--mqtts", "127.0.0.1:8883", "--pki", "p", "--claim-cert", "c.pem",
              "--claim-key", "c.key"], "--certs DIR"),
            (["--mqtts", "127.0.0.1:8883", "--certs", "d", "--ca", "ca.pem",
              "--claim-cert", "c.pem"], "--claim-key"),
            (["--mqtt", "127.0.0.1:1883", "--api", "http://x"], "--token"),
            (["--mqtt", "127.0.0.1:1883", "--prefix", "a/b"], "--prefix"),
            (["--mqtt", "127.0.0.1:1883", "--bogus"], "--bogus"),
        ]
        procs = [(args, word, subprocess.Popen([harness.mote_bin(), "sim"] + args,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                               text=True))
                 for args, word in cases]
        for args, word, p in procs:
            _, err = p.communicate(timeout=20)
            self.assertEqual(p.returncode, 2, (args, err))
            self.assertIn(word, err, args)
            self.assertTrue(err.startswith("mote sim: "), err)

    def test_unreachable_api_is_an_error_not_a_hang(self):
        port = harness.free_port()
        t0 = time.monotonic()
        r = subprocess.run([harness.mote_bin(), "sim", "--mqtt", "127.0.0.1:1", "--api",
                            "http://127.0.0.1:%d" % port, "--token", "x", "--devices", "1", "--api-wait", "1"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--api", r.stderr)
        self.assertLess(time.monotonic() - t0, 10)


if __name__ == "__main__":
    unittest.main()
