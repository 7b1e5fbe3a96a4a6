"""test_pki_cli.py - `mote pki` checked by the openssl command line tool.

Every certificate, key and CRL mote writes is judged by `openssl verify`,
`openssl x509`, `openssl crl` and a CSR made by `openssl req`, never by mote
reading its own output. No broker is involved.
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60, **kw)


def openssl(*args):
    return run([OPENSSL] + list(args))


class PkiCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mote-pki-cli-")
        self.dir = os.path.join(self.tmp, "pki")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def pki(self, *args):
        return run([harness.mote_bin(), "pki", "--dir", self.dir] + list(args))

    def ok(self, *args):
        r = self.pki(*args)
        self.assertEqual(r.returncode, 0, "mote pki %s: %s" % (" ".join(args), r.stderr))
        return r

    def p(self, *names):
        return os.path.join(self.dir, *names)

    def verify(self, cert, *extra):
        return openssl("verify", "-CAfile", self.p("ca.pem"), *extra, cert)

    def mode(self, path):
        return stat.S_IMODE(os.stat(path).st_mode)

    def text(self, cert):
        r = openssl("x509", "-in", cert, "-noout", "-text")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_init_hub_certificate(self):
        self.ok("init", "--san", "DNS:hub.example", "--san", "IP:10.9.8.7")
        for key in ("ca.key", "hub.key"):
            self.assertEqual(self.mode(self.p(key)), 0o600, key)
        r = self.verify(self.p("hub.pem"), "-purpose", "sslserver")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(": OK", r.stdout)
        t = self.text(self.p("hub.pem"))
        for want in ("DNS:localhost", "IP Address:127.0.0.1", "DNS:hub.example",
                     "IP Address:10.9.8.7", "TLS Web Server Authentication",
                     "CA:FALSE", "prime256v1"):
            self.assertIn(want, t)
        ca = self.text(self.p("ca.pem"))
        self.assertIn("CA:TRUE", ca)
        self.assertIn("Certificate Sign, CRL Sign", ca)
        # openssl accepts the keys as EC P-256 keys that match the certificates.
        for name in ("ca", "hub"):
            k = openssl("pkey", "-in", self.p(name + ".key"), "-pubout")
            c = openssl("x509", "-in", self.p(name + ".pem"), "-noout", "-pubkey")
            self.assertEqual(k.returncode, 0, k.stderr)
            self.assertEqual(k.stdout, c.stdout)

    def test_init_refuses_overwrite(self):
        self.ok("init")
        with open(self.p("ca.pem")) as f:
            before = f.read()
        r = self.pki("init")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--force", r.stderr)
        with open(self.p("ca.pem")) as f:
            self.assertEqual(f.read(), before)
        self.ok("init", "--force")
        with open(self.p("ca.pem")) as f:
            self.assertNotEqual(f.read(), before)

    def test_issue_and_verify(self):
        self.ok("init")
        r = self.ok("issue", "dev-1")
        self.assertIn(self.p("devices", "dev-1.pem"), r.stdout)
        self.ok("issue", "dev-2", "--days", "10")
        cert = self.p("devices", "dev-1.pem")
        self.assertEqual(self.mode(self.p("devices", "dev-1.key")), 0o600)
        r = self.verify(cert, "-purpose", "sslclient")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # A client certificate must not pass as a server certificate.
        self.assertNotEqual(self.verify(cert, "-purpose", "sslserver").returncode, 0)
        t = self.text(cert)
        self.assertIn("Subject: CN = dev-1", t)
        self.assertIn("TLS Web Client Authentication", t)
        self.assertIn("CA:FALSE", t)
        self.assertNotIn("TLS Web Server Authentication", t)
        serial = openssl("x509", "-in", cert, "-noout", "-serial").stdout.strip()
        self.assertTrue(serial.startswith("serial="))
        self.assertGreaterEqual(len(serial) - len("serial="), 31)
        with open(self.p("index.txt")) as f:
            self.assertIn(serial.split("=")[1].lstrip("0"), f.read())
        end = openssl("x509", "-in", self.p("devices", "dev-2.pem"), "-noout",
                      "-checkend", str(11 * 86400))
        self.assertNotEqual(end.returncode, 0, "--days 10 should expire within 11 days")
        # Issuing the same device again needs --force.
        r = self.pki("issue", "dev-1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("revoke", r.stderr)

    def test_invalid_device_ids(self):
        self.ok("init")
        for bad in ("../evil", "a/b", "..", "a b", "x" * 129, ""):
            r = self.pki("issue", bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn("device id", r.stderr)
        self.assertEqual(sorted(os.listdir(self.p("devices"))), [])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "evil.pem")))

    def test_sign_csr_from_openssl(self):
        self.ok("init")
        key = os.path.join(self.tmp, "dev-9.key")
        csr = os.path.join(self.tmp, "dev-9.csr")
        r = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", "/CN=dev-9", "-keyout", key, "-out", csr,
                    "-addext", "basicConstraints=critical,CA:TRUE")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ok("sign-csr", csr)
        cert = self.p("devices", "dev-9.pem")
        self.assertEqual(r.stdout.strip(), cert)
        r = self.verify(cert, "-purpose", "sslclient")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        t = self.text(cert)
        self.assertIn("CN = dev-9", t)
        self.assertIn("CA:FALSE", t)
        self.assertNotIn("CA:TRUE", t)
        # The certificate carries the device's own key.
        k = openssl("pkey", "-in", key, "-pubout").stdout
        c = openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
        self.assertEqual(k, c)
        out = os.path.join(self.tmp, "out.pem")
        r = self.ok("sign-csr", csr, "--out", out, "--force")
        self.assertEqual(r.stdout.strip(), out)
        self.assertEqual(self.verify(out).returncode, 0)
        # A CSR whose CN is not a device id.
        bad = os.path.join(self.tmp, "bad.csr")
        r = openssl("req", "-new", "-key", key, "-subj", "/CN=a b", "-out", bad)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.pki("sign-csr", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("device id", r.stderr)
        # Garbage instead of a CSR.
        r = self.pki("sign-csr", self.p("ca.pem"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("CERTIFICATE REQUEST", r.stderr)

    def test_revoke_and_crl(self):
        self.ok("init")
        self.ok("issue", "dev-1")
        self.ok("issue", "dev-2")
        d1, d2 = self.p("devices", "dev-1.pem"), self.p("devices", "dev-2.pem")
        crl = self.p("crl.pem")
        # The CRL from init: valid, nothing revoked.
        self.assertEqual(self.verify(d1, "-crl_check", "-CRLfile", crl).returncode, 0)
        r = self.ok("revoke", "dev-1")
        self.assertIn("revoked 1", r.stdout)
        r = self.verify(d1, "-crl_check", "-CRLfile", crl)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate revoked", r.stdout + r.stderr)
        r = self.verify(d2, "-crl_check", "-CRLfile", crl)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        t = openssl("crl", "-in", crl, "-noout", "-text", "-CAfile", self.p("ca.pem"))
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("verify OK", t.stdout + t.stderr)
        self.assertIn("Version 2", t.stdout)
        s1 = openssl("x509", "-in", d1, "-noout", "-serial").stdout.strip().split("=")[1]
        self.assertIn(s1, t.stdout)
        # Duplicate and unknown revocations fail and say so.
        r = self.pki("revoke", "dev-1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("already revoked", r.stderr)
        r = self.pki("revoke", "nobody")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no device id or serial", r.stderr)
        # By serial, as openssl prints it; then `crl --out`.
        s2 = openssl("x509", "-in", d2, "-noout", "-serial").stdout.strip().split("=")[1]
        self.ok("revoke", s2)
        other = os.path.join(self.tmp, "other-crl.pem")
        r = self.ok("crl", "--out", other, "--days", "2")
        self.assertEqual(r.stdout.strip(), other)
        r = self.verify(d2, "-crl_check", "-CRLfile", other)
        self.assertIn("certificate revoked", r.stdout + r.stderr)

    def test_concurrent_issue(self):
        # Every run holds DIR/.lock while it rewrites index.txt: none is lost.
        self.ok("init")
        n = 8
        procs = [subprocess.Popen([harness.mote_bin(), "pki", "--dir", self.dir, "issue",
                                   "dev-%d" % i], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for i in range(n)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
        with open(self.p("index.txt")) as f:
            lines = [ln for ln in f if not ln.startswith("#")]
        self.assertEqual(len(lines), n + 1, lines)
        ids = sorted(ln.split("\t")[3] for ln in lines)
        self.assertEqual(ids, sorted(["hub"] + ["dev-%d" % i for i in range(n)]))
        r = openssl("verify", "-CAfile", self.p("ca.pem"),
                    *[self.p("devices", "dev-%d.pem" % i) for i in range(n)])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_help_and_usage_errors(self):
        r = run([harness.mote_bin(), "pki", "--help"])
        self.assertEqual(r.returncode, 0)
        for cmd in ("init", "issue", "sign-csr", "revoke", "crl"):
            self.assertIn(cmd, r.stdout)
            h = run([harness.mote_bin(), "pki", cmd, "--help"])
            self.assertEqual(h.returncode, 0, cmd)
            self.assertIn("usage: mote pki --dir DIR " + cmd, h.stdout)
        r = run([harness.mote_bin(), "--help"])
        self.assertIn("pki", r.stdout)
        for argv, want in ((["pki"], "usage"),
                           (["pki", "init"], "--dir"),
                           (["pki", "--dir", "", "init"], "--dir"),
                           (["pki", "--dir", self.dir, "frobnicate"], "unknown command"),
                           (["pki", "--dir", self.dir, "issue"], "missing argument"),
                           (["pki", "--dir", self.dir, "issue", "a", "b"], "exactly one"),
                           (["pki", "--dir", self.dir, "issue", "a", "--days", "x"], "--days"),
                           (["pki", "--dir", self.dir, "init", "--bogus"], "--bogus"),
                           (["pki", "--dir", self.dir, "revoke", "a", "--san", "DNS:x"], "--san")):
            r = run([harness.mote_bin()] + argv)
            self.assertEqual(r.returncode, 2, "%s: %s" % (argv, r.stderr))
            self.assertIn(want, r.stderr, argv)
        self.assertFalse(os.path.exists(self.dir))
        # A bad --san is refused before anything is written.
        r = self.pki("init", "--san", "hub.example")
        self.assertEqual(r.returncode, 1)
        self.assertIn("DNS:name", r.stderr)
        self.assertFalse(os.path.exists(self.p("ca.pem")))
        # Operations without a CA say how to make one.
        r = self.pki("issue", "dev-1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("init", r.stderr)

    def test_claim(self):
        self.ok("init")
        r = self.ok("claim", "batch1", "--prefix", "pump-", "--max", "2", "--days", "10")
        cert, key = r.stdout.split()
        self.assertEqual(cert, self.p("claims", "batch1.pem"))
        self.assertEqual(self.mode(key), 0o600)
        r = self.verify(cert, "-purpose", "sslclient")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        t = self.text(cert)
        for want in ("Subject: CN = claim:batch1", "URI:urn:mote:claim:batch1",
                     "TLS Web Client Authentication", "CA:FALSE"):
            self.assertIn(want, t)
        # Valid as long as the template: 10 days.
        self.assertEqual(openssl("x509", "-in", cert, "-noout", "-checkend",
                                 str(9 * 86400)).returncode, 0)
        self.assertNotEqual(openssl("x509", "-in", cert, "-noout", "-checkend",
                                    str(11 * 86400)).returncode, 0)
        k = openssl("pkey", "-in", key, "-pubout").stdout
        self.assertEqual(k, openssl("x509", "-in", cert, "-noout", "-pubkey").stdout)
        with open(self.p("claims", "batch1.conf")) as f:
            conf = f.read()
        self.assertIn("prefix = pump-", conf)
        self.assertIn("max = 2", conf)
        # A device that provisions itself gets a device certificate with the
        # URI SAN too (the CLI-issued ones have it).
        self.ok("issue", "dev-1")
        self.assertIn("URI:urn:mote:dev:dev-1", self.text(self.p("devices", "dev-1.pem")))
        r = self.ok("claims")
        lines = r.stdout.splitlines()
        self.assertIn("NAME", lines[0])
        self.assertRegex(lines[1], r"^batch1\s+pump-\s+0/2\s+\S+\s+active$")
        # No silent replacement.
        r = self.pki("claim", "batch1", "--prefix", "pump-", "--max", "2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--force", r.stderr)
        old = openssl("x509", "-in", cert, "-noout", "-serial").stdout.strip().split("=")[1]
        shutil.copy(cert, os.path.join(self.tmp, "old.pem"))
        self.ok("claim", "batch1", "--prefix", "pump-", "--max", "3", "--force")
        r = self.verify(os.path.join(self.tmp, "old.pem"), "-crl_check", "-CRLfile",
                        self.p("crl.pem"))
        self.assertIn("certificate revoked", r.stdout + r.stderr)
        # revoke claim:NAME puts the claim certificate in the CRL.
        r = self.ok("revoke", "claim:batch1")
        self.assertIn("revoked 1", r.stdout)
        r = self.verify(cert, "-crl_check", "-CRLfile", self.p("crl.pem"))
        self.assertIn("certificate revoked", r.stdout + r.stderr)
        t = openssl("crl", "-in", self.p("crl.pem"), "-noout", "-text").stdout
        self.assertIn(old, t)
        self.assertRegex(self.ok("claims").stdout.splitlines()[1], r"0/3\s+\S+\s+revoked$")
        # Claim-looking device ids are refused: hubs tell claims by the CN.
        r = self.pki("issue", "claim:batch2")
        self.assertEqual(r.returncode, 2)
        self.assertIn("claim:", r.stderr)

    def test_claim_usage_errors(self):
        self.ok("init")
        for argv, want in ((["claim", "b"], "--prefix"),
                           (["claim", "b", "--prefix", "p"], "--max"),
                           (["claim", "b", "--prefix", "p", "--max", "0"], "--max"),
                           (["claim", "b", "--prefix", "p", "--max", "x"], "--max"),
                           (["claim", "../b", "--prefix", "p", "--max", "1"], "claim name"),
                           (["claim", "b", "--prefix", "a/b", "--max", "1"], "--prefix"),
                           (["issue", "d", "--max", "3"], "belong to claim"),
                           (["claims", "x"], "unexpected")):
            r = self.pki(*argv)
            self.assertEqual(r.returncode, 2, "%s: %s" % (argv, r.stderr))
            self.assertIn(want, r.stderr, argv)
        self.assertFalse(os.path.exists(self.p("claims", "b.conf")))
        r = self.ok("claims")
        self.assertEqual(len(r.stdout.splitlines()), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
