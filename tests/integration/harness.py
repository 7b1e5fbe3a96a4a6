"""harness.py - start a broker for an integration test, stop it, check it.

Every integration test runs against a real broker process on 127.0.0.1 with a
port chosen free at run time and a fresh data folder. By default that broker is
mote (`MOTE_BIN`, set by CTest); with `MOTE_TEST_BROKER=mosquitto` the same test
runs against Debian's mosquitto, which is how the tests themselves are checked
against a reference implementation. Tests that check mote-only behaviour use
`@mote_only`.

Stopping sends SIGTERM and requires exit status 0 within 10 s; under the
sanitizer build an AddressSanitizer/UBSan/LeakSanitizer report makes the exit
status non-zero, so a leak or an overflow fails the test that caused it.

Durability tests restart one broker on the same port and data folder:
`kill()` ends it with SIGKILL (a crash: no exit status check), `restart()`
stops it (checked) or kills it and starts it again, and `start(extra_args)`
adds flags for that start only. The log file accumulates over the starts;
`log(current=True)` is the part written since the latest start and
`wait_log(regex)` polls it.

Usage:
    from harness import Broker, mote_only, free_port
    with Broker(extra_args=["--max-packet-size", "1024"]) as b:
        ... b.host, b.port, b.log() ...
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HOST = "127.0.0.1"


def broker_kind():
    return os.environ.get("MOTE_TEST_BROKER", "mote")


def mote_only(fn):
    """Skip a test when the reference broker (mosquitto) is under test."""
    return unittest.skipIf(broker_kind() != "mote", "checks mote-specific behaviour")(fn)


def _ephemeral_low():
    """The first port of the kernel's range for outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port nobody listens on, for a server a test starts.

    Chosen at random below the ephemeral range and checked by binding it: a
    port from bind(0) lies in that range, where the outgoing connections of
    tests running beside this one may take it before the server binds it
    (it happened: "Address already in use" at the hub's start)."""
    hi = _ephemeral_low() - 1
    lo = 10000 if hi > 12000 else 1024
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(lo, hi)
        s = socket.socket()
        try:
            s.bind((HOST, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(host, port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def wait_for(cond, timeout=10.0, what="condition"):
    """Polls cond() every 20 ms until it is true; AssertionError after timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def mote_bin():
    path = os.environ.get("MOTE_BIN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "mote")
    return os.path.abspath(path)


class Broker:
    """A broker process on a free loopback port. Use as a context manager."""

    def __init__(self, extra_args=None, allow_anonymous=True, mosquitto_conf="", http=False):
        self.host = HOST
        self.port = free_port()
        # http=True: the hub also serves its HTTP API on http_port (mote only).
        self.http_port = free_port() if http else None
        self.extra_args = list(extra_args or [])
        self.allow_anonymous = allow_anonymous
        self.mosquitto_conf = mosquitto_conf
        self.dir = tempfile.mkdtemp(prefix="mote-it-")
        self.log_path = os.path.join(self.dir, "broker.log")
        self.data_dir = os.path.join(self.dir, "data")
        self.proc = None
        self.starts = 0          # how many times start() ran
        self.start_args = []     # extra_args of the latest start() only
        self._log_mark = 0       # log offset where the latest start began

    def command(self):
        if broker_kind() == "mosquitto":
            conf = os.path.join(self.dir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write("listener %d %s\n" % (self.port, HOST))
                f.write("allow_anonymous %s\n" % ("true" if self.allow_anonymous else "false"))
                f.write("sys_interval 1\n")
                f.write(self.mosquitto_conf)
            return ["/usr/sbin/mosquitto", "-c", conf]
        cmd = [mote_bin(), "hub", "--mqtt", "%s:%d" % (HOST, self.port),
               "--data", self.data_dir, "--log-level", "debug"]
        if self.allow_anonymous:
            cmd.append("--allow-anonymous")
        if self.http_port:
            cmd += ["--http", "%s:%d" % (HOST, self.http_port)]
        # MOTE_TEST_THREADS: event loops for every broker a test starts (the
        # default is one per CPU); make test runs the suite once with 4.
        args = self.extra_args + self.start_args
        if os.environ.get("MOTE_TEST_THREADS") and "--threads" not in args:
            cmd += ["--threads", os.environ["MOTE_TEST_THREADS"]]
        return cmd + args

    def start(self, extra_args=None):
        """Start the broker; extra_args are added (after the constructor's) for this start only.

        The first start truncates the log file, later ones append to it."""
        self.start_args = list(extra_args or [])
        self.logf = open(self.log_path, "ab" if self.starts else "wb")
        self._log_mark = self.logf.tell()
        self.starts += 1
        self.proc = subprocess.Popen(self.command(), stdout=self.logf, stderr=subprocess.STDOUT)
        if not wait_port(self.host, self.port, self.proc) or (
                self.http_port and not wait_port(self.host, self.http_port, self.proc)):
            self.stop(check=False)
            raise RuntimeError("broker did not start listening:\n" + self.log())
        return self

    def token(self, scope="admin", name=None):
        """A new API token of this hub's data folder (`mote token create`)."""
        cmd = [mote_bin(), "token", "create", "--data", self.data_dir, "--scope", scope]
        if name:
            cmd += ["--name", name]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1].split()[-1]

    def api(self, method, path, body=None, token=None, headers=None, raw=False):
        """One HTTP request to the hub's API: (status, headers, body), the body
        parsed as JSON when it is JSON (raw=True: bytes). body: a dict/list is
        sent as JSON, bytes/str as they are."""
        import http.client
        import json
        conn = http.client.HTTPConnection(self.host, self.http_port, timeout=10)
        h = dict(headers or {})
        if token:
            h.setdefault("Authorization", "Bearer " + token)
        data = body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            payload = resp.read()
            rh = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        if not raw and rh.get("content-type", "").startswith("application/json") and payload:
            payload = json.loads(payload)
        return resp.status, rh, payload

    def restart(self, extra_args=None, kill=False):
        """Stop (checked; with kill=True: SIGKILL) and start again on the same
        port and data folder, with extra_args for the new start only."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start(extra_args)

    def kill(self):
        """SIGKILL the running broker and wait for it: a crash, no clean-up.

        Fails if the broker had already exited (it must die by our hand)."""
        if not self.alive():
            rc = self.proc.poll() if self.proc is not None else None
            raise AssertionError("broker not running when it was to be killed (status %s):\n%s"
                                 % (rc, self.log()[-3000:]))
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logf.close()
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self, current=False):
        """The whole log, or (current=True) what the latest start wrote."""
        try:
            with open(self.log_path, "rb") as f:
                if current:
                    f.seek(self._log_mark)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=5.0, current=True):
        """The first re.search match of pattern in the log (see log()), polled
        until it appears; AssertionError after timeout."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log(current))
            if m:
                return m
            if time.monotonic() >= deadline:
                raise AssertionError("no log line matching %r within %.1f s; log tail:\n%s"
                                     % (pattern, timeout, self.log(current)[-3000:]))
            time.sleep(0.05)

    def stop(self, check=True):
        if self.proc is None:
            return
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.logf.close()
                self.proc = None
                if check:
                    raise AssertionError("broker did not exit within 10 s of SIGTERM:\n" + self.log())
                return
        self.logf.close()
        self.proc = None
        if check and rc != 0:
            raise AssertionError("broker exited with status %s:\n%s" % (rc, self.log()))

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop(check=exc_type is None)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


def started(case, **kw):
    """A started Broker(**kw) that `case` (a unittest.TestCase) stops and
    removes at cleanup, with the exit-status check: a sanitizer report or a
    crash fails the test that caused it."""
    b = Broker(**kw)
    try:
        b.start()
    except BaseException:
        shutil.rmtree(b.dir, ignore_errors=True)  # the error carries the log
        raise

    def stop():
        try:
            b.stop(check=True)
        finally:
            shutil.rmtree(b.dir, ignore_errors=True)

    case.addCleanup(stop)
    return b


def main():
    """Run the unittest classes of the calling module; exit non-zero on failure."""
    unittest.main(module="__main__", verbosity=2, argv=[sys.argv[0]] + sys.argv[1:])
