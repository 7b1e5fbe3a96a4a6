"""certs.py - certificates for TLS tests, made by `mote pki` and by the openssl CLI.

Two makers on purpose: `mote pki` is what operators use (the CA, the hub's
certificate, devices, revocation and the CRL), and the openssl command line
tool makes what mote pki refuses to make - certificates from another CA,
expired or not yet valid ones, a wrong key usage - signed with the same CA key
where the test needs the chain to be otherwise right.

Usage:
    from certs import Pki
    pki = Pki(tmpdir)                # mote pki init in tmpdir/pki
    cert, key = pki.issue("dev1")    # mote pki issue
    pki.revoke("dev1"); pki.crl()    # mote pki revoke / crl
    cert, key = pki.openssl_device("old", not_before="20200101000000Z",
                                   not_after="20210101000000Z")
    other = Pki.other_ca(tmpdir)     # an unrelated CA made by openssl alone
    cert, key = other.openssl_device("stranger")
"""
import os
import shutil
import subprocess

import harness

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def run(argv, check=True, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(argv), r.returncode, r.stdout,
                                                      r.stderr))
    return r


def openssl(*args, check=True, **kw):
    return run([OPENSSL] + list(args), check=check, **kw)


CA_CNF = """
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = {dir}
database = {dir}/oss-index.txt
new_certs_dir = {dir}/oss-new
serial = {dir}/oss-serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
default_crl_days = 7
[ policy_any ]
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
"""

# Extension sections for openssl_device(usage=...).
USAGES = {
    "client": "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=clientAuth\n",
    # A TLS server (the hub) made by another CA tool.
    "server": "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=serverAuth\n",
    # A certificate for servers only: not for TLS client authentication.
    "server-only": "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n",
    # Key usage that cannot sign a handshake.
    "no-signature": "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\n"
                    "extendedKeyUsage=clientAuth\n",
}


class Pki:
    """A certificate authority in a folder: mote pki's layout (ca.pem, ca.key,
    hub.pem, hub.key, crl.pem, devices/)."""

    def __init__(self, parent, name="pki", init=True):
        self.dir = os.path.join(parent, name)
        if init:
            self.mote("init")

    def p(self, *names):
        return os.path.join(self.dir, *names)

    @property
    def ca(self):
        return self.p("ca.pem")

    @property
    def ca_key(self):
        return self.p("ca.key")

    @property
    def hub_cert(self):
        return self.p("hub.pem")

    @property
    def hub_key(self):
        return self.p("hub.key")

    @property
    def crl_path(self):
        return self.p("crl.pem")

    def hub_args(self, crl=True):
        """--tls-* flags for mote hub."""
        a = ["--tls-ca", self.ca, "--tls-cert", self.hub_cert, "--tls-key", self.hub_key]
        if crl:
            a += ["--tls-crl", self.crl_path]
        return a

    # ---- mote pki --------------------------------------------------------------

    def mote(self, *args):
        return run([harness.mote_bin(), "pki", "--dir", self.dir] + list(args))

    def issue(self, device_id, days=None):
        args = ["issue", device_id]
        if days:
            args += ["--days", str(days)]
        self.mote(*args)
        return self.p("devices", device_id + ".pem"), self.p("devices", device_id + ".key")

    def revoke(self, what):
        return self.mote("revoke", what)

    def crl(self):
        return self.mote("crl")

    # ---- openssl CLI ------------------------------------------------------------

    @classmethod
    def other_ca(cls, parent, name="other-ca", cn="Other CA"):
        """An unrelated CA made by openssl alone (same layout for ca.pem/ca.key)."""
        pki = cls(parent, name, init=False)
        os.makedirs(pki.dir, exist_ok=True)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", pki.ca_key, "-out", pki.ca, "-days", "30",
                "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return pki

    def _ca_db(self):
        cnf = self.p("oss-ca.cnf")
        if not os.path.exists(cnf):
            os.makedirs(self.p("oss-new"), exist_ok=True)
            open(self.p("oss-index.txt"), "w").close()
            with open(self.p("oss-serial"), "w") as f:
                f.write("7A01\n")
            with open(cnf, "w") as f:
                f.write(CA_CNF.format(dir=self.dir))
        return cnf

    def openssl_revoke(self, cert):
        """Revokes cert with `openssl ca -revoke` and writes crl.pem with -gencrl."""
        cnf = self._ca_db()
        openssl("ca", "-batch", "-config", cnf, "-cert", self.ca, "-keyfile", self.ca_key,
                "-revoke", cert)
        openssl("ca", "-batch", "-config", cnf, "-cert", self.ca, "-keyfile", self.ca_key,
                "-gencrl", "-out", self.crl_path)

    def openssl_device(self, cn, not_before=None, not_after=None, days=30, usage="client",
                       san=None):
        """A device key and certificate signed by this CA with `openssl ca`.

        not_before / not_after: "YYYYMMDDHHMMSSZ" (expired or not yet valid
        ones); usage: a key of USAGES; san: e.g. "URI:urn:mote:dev:ID"."""
        cnf = self._ca_db()
        out = self.p("oss-" + cn)
        key, csr, cert, ext = out + ".key", out + ".csr", out + ".pem", out + ".ext"
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", "/CN=" + cn, "-config", cnf)
        with open(ext, "w") as f:
            f.write(USAGES[usage])
            if san:
                f.write("subjectAltName=%s\n" % san)
        args = ["ca", "-batch", "-config", cnf, "-cert", self.ca, "-keyfile", self.ca_key,
                "-in", csr, "-out", cert, "-notext", "-extfile", ext]
        if not_before:
            args += ["-startdate", not_before]
        if not_after:
            args += ["-enddate", not_after]
        elif not not_before:
            args += ["-days", str(days)]
        else:
            args += ["-days", str(days)]
        openssl(*args)
        return cert, key
