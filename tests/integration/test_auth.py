"""test_auth.py - users, tokens, roles, denials and rate limits against a real hub.

The hub runs without --allow-anonymous, as in production. The first start
prints the admin secret on stdout (the harness sends stdout to the broker log);
the tests read it there once and check it is never printed again nor stored
in plain text. Clients are paho (3.1.1 and 5.0) and mosquitto_pub; a client
"from another address" binds 127.0.0.2 (paho's bind_address, mosquitto's -A).
Each refusal is checked beside a client that keeps working.
"""
import os
import re
import socket
import subprocess
import time

import harness
from peers_paho import V5, V311, PeerCase, Will, connected, quiet

MOTE = harness.mote_bin()
PUB = "/usr/bin/mosquitto_pub"
SECRET_RX = re.compile(r"created user 'admin' with password (\S+)")


def mote(*args, stdin=None, check=True):
    r = subprocess.run([MOTE] + list(args), input=stdin, capture_output=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("mote %s: exit %d\n%s" % (" ".join(args), r.returncode,
                                                        r.stderr.decode()))
    return r


class AuthCase(PeerCase):
    def hub(self, extra=None, acl=None):
        """A started hub (anonymous refused) and its admin secret."""
        b = harness.Broker(extra_args=extra, allow_anonymous=False)
        os.makedirs(b.data_dir, exist_ok=True)
        if acl is not None:
            with open(os.path.join(b.data_dir, "acl.conf"), "w") as f:
                f.write(acl)
        b.start()

        def stop():
            try:
                b.stop(check=True)
            finally:
                import shutil
                shutil.rmtree(b.dir, ignore_errors=True)
        self.addCleanup(stop)
        # printed once the listeners are bound, before the hub serves
        b.secret = b.wait_log(SECRET_RX.pattern, timeout=10).group(1)
        b.wait_log(r"event=ready")
        return b

    def login(self, b, cid, user, password, version=V5, bind=None, expect_rc=0):
        p = self.unconnected(b, cid, version, username=user, password=password)
        if bind:
            orig = p.c.connect
            p.c.connect = lambda *a, **kw: orig(*a, bind_address=bind, **kw)
        p.connect(expect_rc=expect_rc)
        return p

    def add_user(self, b, name, role, password):
        mote("user", "add", name, "--role", role, "--password-stdin", "--data", b.data_dir,
             stdin=(password + "\n").encode())

    def wait_audit(self, b, event, pred=lambda f: True, timeout=5.0):
        import json
        path = os.path.join(b.data_dir, "audit.log")
        deadline = time.monotonic() + timeout
        while True:
            with open(path) as f:
                for line in f:
                    r = json.loads(line)
                    if r["event"] == event and pred(r["fields"]):
                        return r
            if time.monotonic() > deadline:
                with open(path) as f:
                    raise AssertionError("no audit record %s in:\n%s" % (event, f.read()[-3000:]))
            time.sleep(0.05)


class FirstStart(AuthCase):
    def test_secret_printed_once_hash_only(self):
        b = self.hub()
        self.assertEqual(len(SECRET_RX.findall(b.log())), 1)
        with open(os.path.join(b.data_dir, "users"), "rb") as f:
            store = f.read()
        self.assertNotIn(b.secret.encode(), store)
        self.assertIn(b"$argon2id$v=19$m=19456,t=2,p=1$", store)
        for name in os.listdir(b.data_dir):
            path = os.path.join(b.data_dir, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(b.secret.encode(), f.read(), name)
        self.assertEqual(os.stat(os.path.join(b.data_dir, "users")).st_mode & 0o777, 0o600)
        b.restart()
        b.wait_log(r"event=ready")
        self.assertNotIn("created user", b.log(current=True))
        self.assertEqual(len(SECRET_RX.findall(b.log())), 1)
        # the secret still works after the restart: paho 5.0, 3.1.1, mosquitto_pub
        s = self.login(b, "watch", "admin", b.secret)
        s.subscribe("fs/#", 1)
        self.login(b, "a5", "admin", b.secret).publish("fs/5", b"v5", 1)
        self.login(b, "a3", "admin", b.secret, V311).publish("fs/3", b"v311", 1)
        r = subprocess.run([PUB, "-h", b.host, "-p", str(b.port), "-u", "admin", "-P", b.secret,
                            "-q", "1", "-t", "fs/m", "-m", "mosq"], capture_output=True,
                           timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(m.payload for m in s.expect(3)), [b"mosq", b"v311", b"v5"])

    def test_anonymous_refused(self):
        b = self.hub()
        ok = self.login(b, "ok", "admin", b.secret)
        self.unconnected(b, "anon5").connect(expect_rc=0x87)
        self.unconnected(b, "anon3", V311).connect(expect_rc=5)
        ok.publish("still/here", b"x", 1)


class Passwords(AuthCase):
    def test_wrong_password_refused(self):
        b = self.hub()
        s = self.login(b, "watch", "admin", b.secret)
        s.subscribe("wp/#", 1)
        self.login(b, "bad5", "admin", "not-it", expect_rc=0x86)
        self.login(b, "bad3", "admin", "not-it", V311, expect_rc=4)
        self.login(b, "nobody", "nobody", "x", expect_rc=0x86)
        r = subprocess.run([PUB, "-h", b.host, "-p", str(b.port), "-u", "admin", "-P", "wrong",
                            "-t", "wp/x", "-m", "no"], capture_output=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.login(b, "good", "admin", b.secret).publish("wp/ok", b"fine", 1)
        self.assertEqual(s.expect_one().payload, b"fine")
        quiet(s)
        b.wait_log(r"event=auth_failed .*username=\"?admin\"? why=\"wrong password\"")
        self.wait_audit(b, "auth_failed", lambda f: f["reason"] == "wrong password")
        self.wait_audit(b, "auth_failed", lambda f: f["reason"] == "unknown user")

    def test_repeated_failures_rate_limited(self):
        b = self.hub(["--auth-fail-max", "3", "--auth-fail-window", "60", "--auth-block", "30"])
        for i in range(3):
            self.login(b, "guess%d" % i, "admin", "guess%d" % i, expect_rc=0x86)
        # now even the right password is refused from this address, before hashing
        self.login(b, "late5", "admin", b.secret, expect_rc=0x9F)
        self.login(b, "late3", "admin", b.secret, V311, expect_rc=5)
        # another address is not affected (paho and mosquitto_pub bind 127.0.0.2)
        other = self.login(b, "other", "admin", b.secret, bind="127.0.0.2")
        other.subscribe("rl/#", 1)
        r = subprocess.run([PUB, "-h", b.host, "-p", str(b.port), "-A", "127.0.0.2", "-u", "admin",
                            "-P", b.secret, "-q", "1", "-t", "rl/m", "-m", "ok"],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(other.expect_one().payload, b"ok")
        b.wait_log(r"event=auth_rate_limited address=127\.0\.0\.1 seconds=30")
        self.wait_audit(b, "auth_rate_limited", lambda f: f["address"] == "127.0.0.1")

    def test_global_hash_budget(self):
        # Guessing from many addresses at once: each stays under the
        # per-address limit, and the global argon2id budget (1/s here)
        # refuses what is over it with 0x89 server busy before hashing.
        # The guesses arrive together (threads, 4 event loops), so the test
        # does not depend on how long one argon2id run takes (seconds under
        # ThreadSanitizer).
        b = self.hub(["--auth-hash-rate", "1", "--auth-fail-max", "1000", "--threads", "4"])
        import threading
        peers = []
        for i in range(8):
            p = self.unconnected(b, "g%d" % i, V5 if i % 2 else V311, username="admin",
                                 password="guess%d" % i)
            orig = p.c.connect
            p.c.connect = (lambda o, ip: lambda *a, **kw: o(*a, bind_address=ip, **kw))(
                orig, "127.0.0.%d" % (i + 2))
            peers.append(p)
        codes = [None] * len(peers)

        def go(i):
            codes[i] = peers[i].connect(expect_rc=None, timeout=60).rc
        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(peers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        busy = {V5: 0x89, V311: 3}
        wrong = {V5: 0x86, V311: 4}
        for p, rc in zip(peers, codes):
            self.assertIn(rc, (busy[p.version], wrong[p.version]), (p.name, codes))
        n_busy = sum(rc == busy[p.version] for p, rc in zip(peers, codes))
        self.assertGreater(n_busy, 0, "8 guesses at once within a budget of 1/s: %s" % codes)
        b.wait_log(r"event=auth_refused why=hash_budget rate=1/s")
        # the budget refills: the right password gets in again (retried, as
        # a client does after 0x89)
        deadline = time.monotonic() + 30
        while True:
            p = self.unconnected(b, "ok", V5, username="admin", password=b.secret)
            rc = p.connect(expect_rc=None, timeout=60).rc
            if rc == 0:
                p.disconnect()
                break
            self.assertEqual(rc, 0x89)
            self.assertLess(time.monotonic(), deadline, "the budget never refilled")
            time.sleep(0.3)

    def test_verified_password_cached_and_forgotten_on_change(self):
        b = self.hub()
        self.add_user(b, "carol", "write", "first-pass")
        self.login(b, "c1", "carol", "first-pass").disconnect()
        self.login(b, "c2", "carol", "first-pass").disconnect()
        # a new password replaces the store: the cached old one must not work
        mote("user", "add", "carol", "--role", "write", "--password-stdin", "--force",
             "--data", b.data_dir, stdin=b"second-pass\n")
        self.login(b, "c3", "carol", "first-pass", expect_rc=0x86)
        self.login(b, "c4", "carol", "second-pass").disconnect()
        mote("user", "del", "carol", "--data", b.data_dir)
        self.login(b, "c5", "carol", "second-pass", expect_rc=0x86)


class Tokens(AuthCase):
    def test_token_login_and_revoke_while_running(self):
        b = self.hub()
        r = mote("token", "create", "--data", b.data_dir, "--scope", "write", "--name", "app1")
        token = r.stdout.decode().strip()
        self.assertRegex(token, r"^mote_[0-9a-f]{64}$")
        with open(os.path.join(b.data_dir, "users")) as f:
            self.assertNotIn(token, f.read())
        s = self.login(b, "watch", "admin", b.secret)
        s.subscribe("tk/#", 1)
        app = self.login(b, "app", "token", token)
        self.assertEqual(app.publish("tk/a", b"by token", 1), 0)
        self.assertEqual(s.expect_one().payload, b"by token")
        self.assertIn("app1", mote("token", "list", "--data", b.data_dir).stdout.decode())
        mote("token", "revoke", "app1", "--data", b.data_dir)
        self.login(b, "app-again", "token", token, expect_rc=0x86)
        self.login(b, "app-3", "token", token, V311, expect_rc=4)
        self.wait_audit(b, "token_created", lambda f: f["name"] == "app1" and f["scope"] == "write")
        self.wait_audit(b, "token_revoked", lambda f: f["what"] == "app1")

    def test_read_token_cannot_publish(self):
        b = self.hub()
        token = mote("token", "create", "--data", b.data_dir, "--scope", "read").stdout.decode().strip()
        s = self.login(b, "watch", "admin", b.secret)
        s.subscribe("rt/#", 1)
        reader = self.login(b, "reader", "token", token)
        self.assertEqual(reader.subscribe("rt/#", 1), [1])
        self.assertEqual(reader.publish("rt/x", b"no", 1), 0x87)
        quiet(s, reader)
        b.wait_log(r"event=denied client=\"?reader\"? identity=\"?token:[0-9a-f]{8}\"? role=read "
                   r"access=publish topic=\"?rt/x\"?")


ROLES = """\
# tenants see only their own tree; the private part is writable by nobody
role tenant
deny readwrite tenants/%u/private/#
allow readwrite tenants/%u/#
allow read public/#
"""


class Roles(AuthCase):
    def test_username_pattern_and_deny_first(self):
        b = self.hub(acl=ROLES)
        self.add_user(b, "alice", "tenant", "alice-pw")
        self.add_user(b, "bob", "tenant", "bob-pw")
        watch = self.login(b, "watch", "admin", b.secret)
        watch.subscribe("tenants/#", 1)
        alice = self.login(b, "alice-1", "alice", "alice-pw")
        self.assertEqual(alice.publish("tenants/alice/data", b"mine", 1), 0)
        self.assertEqual(watch.expect_one().payload, b"mine")
        self.assertEqual(alice.publish("tenants/bob/data", b"theirs", 1), 0x87)
        self.assertEqual(alice.publish("tenants/alice/private/x", b"deny first", 1), 0x87)
        self.assertEqual(alice.publish("public/x", b"read only", 1), 0x87)
        # filters: covered by an allow rule and clear of every deny rule
        self.assertEqual(alice.subscribe("tenants/alice/data/#", 1), [1])
        self.assertEqual(alice.subscribe("tenants/alice/#", 1), [0x87])  # overlaps private
        self.assertEqual(alice.subscribe("tenants/+/data", 1), [0x87])
        self.assertEqual(alice.subscribe("$share/g/tenants/bob/#", 1), [0x87])
        self.assertEqual(alice.subscribe("public/#", 1), [1])
        bob = self.login(b, "bob-1", "bob", "bob-pw", V311)
        self.assertEqual(bob.subscribe("tenants/alice/data", 1), [0x80])
        bob.publish("tenants/alice/data", b"sneak", 1)  # 3.1.1: acknowledged, dropped
        bob.publish("tenants/bob/data", b"bob's", 1)
        self.assertEqual(watch.expect_one().payload, b"bob's")
        quiet(watch, alice)
        self.wait_audit(b, "denied", lambda f: f["topic"] == "tenants/alice/data" and
                        f["identity"] == "user:bob")

    def test_unknown_role_in_file_is_refused_at_start(self):
        b = harness.Broker(allow_anonymous=False)
        os.makedirs(b.data_dir, exist_ok=True)
        with open(os.path.join(b.data_dir, "acl.conf"), "w") as f:
            f.write("role x\nallow sometimes a/b\n")
        r = subprocess.run(b.command(), capture_output=True, timeout=20)
        import shutil
        shutil.rmtree(b.dir, ignore_errors=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"line 2", r.stderr)

    def test_device_role_least_privilege(self):
        """The built-in device ACL (as a user with role device, %c = client id)."""
        b = self.hub()
        self.add_user(b, "pump1", "device", "p1")
        watch = self.login(b, "watch", "admin", b.secret)
        watch.subscribe("#", 1)
        dev = self.login(b, "pump1", "pump1", "p1")
        self.assertEqual(dev.subscribe("#", 1), [0x87])
        self.assertEqual(dev.subscribe("cmd/pump1/#", 1), [1])
        self.assertEqual(dev.subscribe("cmd/pump2/#", 1), [0x87])
        self.assertEqual(dev.publish("dev/pump2/telemetry", b"forged", 1), 0x87)
        self.assertEqual(dev.publish("$SYS/broker/x", b"forged", 1), 0x87)
        self.assertEqual(dev.publish("dev/pump1/telemetry", b"21.5", 1), 0)
        self.assertEqual(watch.expect_one().topic, "dev/pump1/telemetry")
        dev3 = self.login(b, "pump1", "pump1", "p1", V311)
        self.assertEqual(dev3.subscribe("#", 1), [0x80])
        quiet(watch)

    def test_read_only_user_publish_denied_and_will_refused(self):
        b = self.hub()
        self.add_user(b, "viewer", "read", "v")
        watch = self.login(b, "watch", "admin", b.secret)
        watch.subscribe("ro/#", 2)
        v = self.login(b, "viewer", "viewer", "v")
        self.assertEqual(v.publish("ro/q1", b"x", 1), 0x87)
        self.assertEqual(v.publish("ro/q2", b"x", 2), 0x87)
        v.publish("ro/q0", b"x", 0)
        v3 = self.login(b, "viewer3", "viewer", "v", V311)
        v3.publish("ro/311", b"dropped", 1)
        # a will to a topic it may not publish: the CONNECT is refused
        w = self.unconnected(b, "viewer-w", username="viewer", password="v",
                             will=Will("ro/will", b"bye", 1, False, None))
        w.connect(expect_rc=0x87)
        w3 = self.unconnected(b, "viewer-w3", V311, username="viewer", password="v",
                              will=Will("ro/will", b"bye", 1, False, None))
        w3.connect(expect_rc=5)
        quiet(watch)
        self.assertEqual(v.subscribe("ro/#", 1), [1])

    def test_denial_log_rate_limited(self):
        b = self.hub()
        self.add_user(b, "viewer", "read", "v")
        v = self.login(b, "flood", "viewer", "v")
        for i in range(300):
            v.publish("fl/%d" % i, b"x", 0, wait=False)
        v.publish("fl/last", b"x", 1)
        time.sleep(0.2)  # the log lines of the last publishes
        n = len(re.findall(r"event=denied client=\"?flood\"?", b.log()))
        self.assertGreaterEqual(n, 1)
        self.assertLessEqual(n, 20)


class ConnectionRate(AuthCase):
    def test_connection_attempts_limited_per_address(self):
        b = self.hub(["--conn-rate", "1", "--conn-burst", "3", "--conn-rate-loopback", "on"])
        socks = []
        for _ in range(8):  # all at once: the bucket holds 3
            s = socket.socket()
            s.bind(("127.0.0.3", 0))
            s.settimeout(2)
            s.connect((b.host, b.port))
            socks.append(s)
        refused = 0
        for s in socks:
            try:
                s.settimeout(0.3)
                if s.recv(1) == b"":
                    refused += 1
            except socket.timeout:
                pass  # open: waiting for CONNECT
            s.close()
        self.assertGreaterEqual(refused, 4)
        # another address still gets in
        self.login(b, "fine", "admin", b.secret, bind="127.0.0.2").publish("cr/x", b"ok", 1)
        b.wait_log(r"event=connection_rate_limited address=127\.0\.0\.3")


class AuditLog(AuthCase):
    def test_verify_detects_edit_and_removal(self):
        b = self.hub()
        self.add_user(b, "viewer", "read", "v")
        mote("token", "create", "--data", b.data_dir, "--scope", "read", "--name", "t1")
        self.login(b, "bad", "viewer", "wrong", expect_rc=0x86)
        v = self.login(b, "viewer", "viewer", "v")
        self.assertEqual(v.publish("au/x", b"x", 1), 0x87)
        for ev in ("user_added", "token_created", "auth_failed", "denied"):
            self.wait_audit(b, ev)
        path = os.path.join(b.data_dir, "audit.log")
        r = mote("audit", "verify", path)
        self.assertRegex(r.stdout.decode(), r"^OK: \d+ records, last hash [0-9a-f]{64}")
        with open(path) as f:
            lines = f.readlines()
        self.assertGreaterEqual(len(lines), 5)
        edited = list(lines)
        edited[2] = edited[2].replace('"event":"', '"event":"x', 1)
        forged = os.path.join(b.dir, "edited.log")
        with open(forged, "w") as f:
            f.writelines(edited)
        r = mote("audit", "verify", forged, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("edited.log:3:", r.stdout.decode())
        removed = lines[:1] + lines[2:]
        with open(forged, "w") as f:
            f.writelines(removed)
        r = mote("audit", "verify", forged, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("edited.log:2: records removed", r.stdout.decode())


if __name__ == "__main__":
    harness.main()
