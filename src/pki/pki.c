/*
 * pki.c - the operations of `mote pki`: init, issue, sign-csr, revoke, crl.
 *
 * Each operation that changes the directory takes DIR/.lock first, so two
 * operators (or a script in a loop) cannot lose each other's index lines.
 * Certificate and key files are written before the index line that records
 * them: a crash in between leaves an unrecorded file, never a recorded
 * certificate that nobody holds.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki/pki_int.h"

enum mote_err mote_pki_check_id(const char *id, char *err, size_t errlen)
{
	size_t len = id ? strlen(id) : 0;

	if (len == 0) {
		pki_errf(err, errlen, "the device id is empty");
		return MOTE_EINVAL;
	}
	if (len > MOTE_PKI_ID_MAX) {
		pki_errf(err, errlen, "the device id is %zu characters long; at most %d are allowed",
			 len, MOTE_PKI_ID_MAX);
		return MOTE_EINVAL;
	}
	/* The id names a file under devices/, so "." and ".." are never ids. */
	if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0) {
		pki_errf(err, errlen, "'%s' is not a device id", id);
		return MOTE_EINVAL;
	}
	/* Hubs tell claim certificates by this CN prefix: a device named so
	 * would be taken for one. */
	if (strncmp(id, MOTE_PKI_CLAIM_CN, strlen(MOTE_PKI_CLAIM_CN)) == 0) {
		pki_errf(err, errlen, "device ids may not begin with '%s' (claim certificates do)",
			 MOTE_PKI_CLAIM_CN);
		return MOTE_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (!isalnum(c) && !strchr("-_.:;", c)) {
			if (isprint(c))
				pki_errf(err, errlen,
					 "the device id may not contain '%c'; use letters, digits and - _ . : ;",
					 c);
			else
				pki_errf(err, errlen,
					 "the device id contains byte 0x%02x; use letters, digits and - _ . : ;",
					 c);
			return MOTE_EINVAL;
		}
	}
	return MOTE_OK;
}

static long long now(void)
{
	return (long long)time(NULL);
}

static int days_or(int days, int dflt)
{
	return days > 0 ? days : dflt;
}

/* "DNS:localhost,IP:127.0.0.1" plus the operator's --san values, checked so
 * that none can smuggle a second entry or an OpenSSL config directive in. */
static enum mote_err build_sans(const struct mote_pki_init_opts *o, char **out, char *err,
				size_t errlen)
{
	size_t len = 0;
	FILE *m = open_memstream(out, &len);

	if (!m) {
		pki_errf(err, errlen, "out of memory");
		return MOTE_ENOMEM;
	}
	fputs("DNS:localhost,IP:127.0.0.1", m);
	for (size_t i = 0; i < o->nsans; i++) {
		const char *s = o->sans[i];
		const char *v = strncmp(s, "DNS:", 4) == 0 ? s + 4
			      : strncmp(s, "IP:", 3) == 0  ? s + 3
							   : NULL;
		int bad = !v || !*v;

		for (const char *p = v; !bad && *p; p++)
			bad = !isalnum((unsigned char)*p) && !strchr("-.:*_", *p);
		if (bad) {
			fclose(m);
			free(*out);
			*out = NULL;
			pki_errf(err, errlen,
				 "bad --san '%s': write DNS:name or IP:address (one per --san)", s);
			return MOTE_EINVAL;
		}
		fprintf(m, ",%s", s);
	}
	if (fclose(m) != 0) {
		free(*out);
		*out = NULL;
		pki_errf(err, errlen, "out of memory");
		return MOTE_ENOMEM;
	}
	return MOTE_OK;
}

enum mote_err mote_pki_init(const char *dir, const struct mote_pki_init_opts *o,
			    char *err, size_t errlen)
{
	char ca_pem[PATH_MAX], ca_key[PATH_MAX], hub_pem[PATH_MAX], hub_key[PATH_MAX];
	char devices[PATH_MAX], crl[PATH_MAX];
	struct pki_entry e = { .status = 'V', .kind = "hub", .id = "hub" };
	struct pki_index idx = { 0 };
	EVP_PKEY *cak = NULL, *hubk = NULL;
	X509 *ca = NULL, *hub = NULL;
	char *sans = NULL, serial[68];
	enum mote_err rc;
	int lock = -1;

	rc = build_sans(o, &sans, err, errlen);
	if (rc)
		return rc;
	if ((rc = pki_path(ca_pem, dir, "ca.pem", NULL, err, errlen)) ||
	    (rc = pki_path(ca_key, dir, "ca.key", NULL, err, errlen)) ||
	    (rc = pki_path(hub_pem, dir, "hub.pem", NULL, err, errlen)) ||
	    (rc = pki_path(hub_key, dir, "hub.key", NULL, err, errlen)) ||
	    (rc = pki_path(crl, dir, "crl.pem", NULL, err, errlen)) ||
	    (rc = pki_path(devices, dir, "devices", NULL, err, errlen)) ||
	    (rc = pki_mkdir(dir, err, errlen)) || (rc = pki_lock(dir, &lock, err, errlen)))
		goto out;
	if (!o->force && (access(ca_pem, F_OK) == 0 || access(ca_key, F_OK) == 0)) {
		pki_errf(err, errlen,
			 "%s already holds a CA; pass --force to replace it (every certificate it "
			 "issued will stop verifying)", dir);
		rc = MOTE_EEXIST;
		goto out;
	}
	if ((rc = pki_mkdir(devices, err, errlen)) || (rc = pki_keygen(&cak, err, errlen)) ||
	    (rc = pki_make_cert(NULL, cak, cak, "mote fleet CA", days_or(o->ca_days, MOTE_PKI_CA_DAYS),
				PKI_CA, NULL, &ca, serial, err, errlen)) ||
	    (rc = pki_keygen(&hubk, err, errlen)) ||
	    (rc = pki_make_cert(ca, cak, hubk, "mote hub", days_or(o->hub_days, MOTE_PKI_HUB_DAYS),
				PKI_HUB, sans, &hub, serial, err, errlen)))
		goto out;
	/* A new CA starts a new index: the old serials belong to the old CA. */
	strcpy(e.serial, serial);
	e.not_after = now() + 86400LL * days_or(o->hub_days, MOTE_PKI_HUB_DAYS);
	if ((rc = pki_index_add(&idx, &e, err, errlen)) ||
	    (rc = pki_write_key(ca_key, cak, err, errlen)) ||
	    (rc = pki_write_cert(ca_pem, ca, err, errlen)) ||
	    (rc = pki_write_key(hub_key, hubk, err, errlen)) ||
	    (rc = pki_write_cert(hub_pem, hub, err, errlen)) ||
	    (rc = pki_index_save(dir, &idx, err, errlen)) ||
	    (rc = pki_write_crl(crl, ca, cak, &idx, MOTE_PKI_CRL_DAYS, err, errlen)))
		goto out;
out:
	pki_unlock(lock);
	pki_index_free(&idx);
	X509_free(hub);
	X509_free(ca);
	EVP_PKEY_free(hubk);
	EVP_PKEY_free(cak);
	free(sans);
	return rc;
}

enum mote_err pki_ca_open(const char *dir, struct pki_ca *c, char *err, size_t errlen)
{
	enum mote_err rc;
	if ((rc = pki_lock(dir, &c->lock, err, errlen)) ||
	    (rc = pki_load_ca(dir, &c->ca, &c->key, err, errlen)) ||
	    (rc = pki_index_load(dir, &c->idx, err, errlen)))
		return rc;
	return MOTE_OK;
}

void pki_ca_close(struct pki_ca *c)
{
	pki_unlock(c->lock);
	c->lock = -1;
	pki_index_free(&c->idx);
	X509_free(c->ca);
	EVP_PKEY_free(c->key);
	c->ca = NULL;
	c->key = NULL;
}

enum mote_err pki_issue_locked(struct pki_ca *c, const char *dir, const char *id,
			       EVP_PKEY *pub, EVP_PKEY *key, const char *out, int days,
			       const char *claim, char *cert_path, char *key_path, X509 **cert_out,
			       char *err, size_t errlen)
{
	char devices[PATH_MAX], name[MOTE_PKI_ID_MAX + 8], pem[PATH_MAX], kpath[PATH_MAX];
	char san[sizeof "URI:" MOTE_PKI_DEV_URI + MOTE_PKI_ID_MAX];
	struct pki_entry e = { .status = 'V', .kind = "device" };
	X509 *cert = NULL;
	enum mote_err rc;

	days = days_or(days, MOTE_PKI_DEVICE_DAYS);
	if (cert_out)
		*cert_out = NULL;
	if (claim && strlen(claim) >= sizeof e.claim) {
		pki_errf(err, errlen, "claim name too long");
		return MOTE_EINVAL;
	}
	snprintf(name, sizeof name, "%s.pem", id);
	if ((rc = pki_path(devices, dir, "devices", NULL, err, errlen)) ||
	    (rc = pki_mkdir(devices, err, errlen)) ||
	    (rc = pki_path(pem, dir, "devices", name, err, errlen)))
		goto out;
	if (out) {
		if (strlen(out) >= PATH_MAX) {
			pki_errf(err, errlen, "--out path too long");
			rc = MOTE_ETOOBIG;
			goto out;
		}
		strcpy(pem, out);
	}
	/* The URI names the device too, for hubs that take identities from
	 * URIs (--tls-identity uri) rather than CNs. */
	snprintf(san, sizeof san, "URI:%s%s", MOTE_PKI_DEV_URI, id);
	if ((rc = pki_make_cert(c->ca, c->key, pub, id, days, PKI_DEVICE, san, &cert, e.serial,
				err, errlen)))
		goto out;
	if (key) {
		snprintf(name, sizeof name, "%s.key", id);
		if ((rc = pki_path(kpath, dir, "devices", name, err, errlen)) ||
		    (rc = pki_write_key(kpath, key, err, errlen)))
			goto out;
		if (key_path)
			strcpy(key_path, kpath);
	}
	if ((rc = pki_write_cert(pem, cert, err, errlen)))
		goto out;
	strcpy(e.id, id);
	if (claim)
		strcpy(e.claim, claim);
	e.not_after = now() + 86400LL * days;
	if ((rc = pki_index_add(&c->idx, &e, err, errlen)) ||
	    (rc = pki_index_save(dir, &c->idx, err, errlen)))
		goto out;
	if (cert_path)
		strcpy(cert_path, pem);
	if (cert_out) {
		*cert_out = cert;
		cert = NULL;
	}
out:
	X509_free(cert);
	return rc;
}

/*
 * Signs a device certificate for `pub` and records it. key: the private key
 * to write beside it (NULL for a CSR, whose key stays on the device).
 */
static enum mote_err issue_device(const char *dir, const char *id, EVP_PKEY *pub,
				  EVP_PKEY *key, const char *out, int days, int force,
				  char *cert_path, char *key_path, char *err, size_t errlen)
{
	struct pki_ca c = { .lock = -1 };
	enum mote_err rc;

	if ((rc = mote_pki_check_id(id, err, errlen)) || (rc = pki_ca_open(dir, &c, err, errlen)))
		goto out;
	for (size_t i = 0; i < c.idx.n && !force; i++) {
		if (c.idx.e[i].status == 'V' && strcmp(c.idx.e[i].kind, "device") == 0 &&
		    strcmp(c.idx.e[i].id, id) == 0) {
			pki_errf(err, errlen,
				 "device '%s' already holds certificate %s; revoke it first "
				 "('mote pki --dir %s revoke %s') or pass --force",
				 id, c.idx.e[i].serial, dir, id);
			rc = MOTE_EEXIST;
			goto out;
		}
	}
	rc = pki_issue_locked(&c, dir, id, pub, key, out, days, NULL, cert_path, key_path, NULL,
			      err, errlen);
out:
	pki_ca_close(&c);
	return rc;
}

enum mote_err mote_pki_issue(const char *dir, const char *id, int days, int force,
			     char *cert_path, char *key_path, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	enum mote_err rc;

	if ((rc = mote_pki_check_id(id, err, errlen)) || (rc = pki_keygen(&key, err, errlen)))
		return rc;
	rc = issue_device(dir, id, key, key, NULL, days, force, cert_path, key_path, err, errlen);
	EVP_PKEY_free(key);
	return rc;
}

enum mote_err pki_csr_cn(X509_REQ *req, char id[MOTE_PKI_ID_MAX + 1], char *err,
			    size_t errlen)
{
	const X509_NAME *name = X509_REQ_get_subject_name(req);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	int len;

	if (i < 0) {
		pki_errf(err, errlen, "the CSR has no CN; its subject must be /CN=DEVICE_ID");
		return MOTE_EINVAL;
	}
	if (X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0) {
		pki_errf(err, errlen, "the CSR has more than one CN; give exactly one");
		return MOTE_EINVAL;
	}
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (len < 0) {
		pki_sslerrf(err, errlen, "cannot read the CSR's CN");
		return MOTE_EINVAL;
	}
	/* A NUL inside the CN would make the id we check differ from the one signed. */
	if ((size_t)len > MOTE_PKI_ID_MAX || memchr(utf8, 0, (size_t)len)) {
		OPENSSL_free(utf8);
		pki_errf(err, errlen, "the CSR's CN is not a valid device id (at most %d of "
			 "letters, digits and - _ . : ;)", MOTE_PKI_ID_MAX);
		return MOTE_EINVAL;
	}
	memcpy(id, utf8, (size_t)len);
	id[len] = 0;
	OPENSSL_free(utf8);
	return MOTE_OK;
}

enum mote_err mote_pki_sign_csr(const char *dir, const char *csr_file, const char *out,
				int days, int force, char *cert_path, char *err, size_t errlen)
{
	char id[MOTE_PKI_ID_MAX + 1];
	enum mote_err rc = MOTE_EINVAL;
	X509_REQ *req = NULL;
	EVP_PKEY *pub;
	BIO *b = BIO_new_file(csr_file, "r");

	if (!b) {
		pki_sslerrf(err, errlen, "cannot open the CSR %s", csr_file);
		return MOTE_EIO;
	}
	req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	if (!req) {
		pki_sslerrf(err, errlen, "%s is not a PEM certificate request "
			    "(-----BEGIN CERTIFICATE REQUEST-----)", csr_file);
		goto out;
	}
	pub = X509_REQ_get0_pubkey(req);
	/* Proof that the requester holds the private key of the key to certify. */
	if (!pub || X509_REQ_verify(req, pub) != 1) {
		pki_sslerrf(err, errlen, "the signature of the CSR %s does not verify", csr_file);
		goto out;
	}
	if (EVP_PKEY_get_security_bits(pub) < 112) {
		pki_errf(err, errlen, "the CSR's key is too weak (%d bits of security; use EC P-256)",
			 EVP_PKEY_get_security_bits(pub));
		goto out;
	}
	if ((rc = pki_csr_cn(req, id, err, errlen)) || (rc = mote_pki_check_id(id, err, errlen)))
		goto out;
	rc = issue_device(dir, id, pub, NULL, out, days, force, cert_path, NULL, err, errlen);
out:
	X509_REQ_free(req);
	BIO_free(b);
	return rc;
}

/* Serials compare as numbers: case and leading zeros (and 0x) do not matter. */
static int same_serial(const char *a, const char *b)
{
	if (strncmp(b, "0x", 2) == 0 || strncmp(b, "0X", 2) == 0)
		b += 2;
	while (*a == '0')
		a++;
	while (*b == '0')
		b++;
	return *a && strcasecmp(a, b) == 0;
}

enum mote_err mote_pki_revoke(const char *dir, const char *what, int *count,
			      char *err, size_t errlen)
{
	char crl[PATH_MAX];
	struct pki_ca c = { .lock = -1 };
	enum mote_err rc;
	int by_id = 0, done = 0;
	size_t i;

	if (count)
		*count = 0;
	if ((rc = pki_path(crl, dir, "crl.pem", NULL, err, errlen)) ||
	    (rc = pki_ca_open(dir, &c, err, errlen)))
		goto out;
	for (i = 0; i < c.idx.n; i++) {
		struct pki_entry *e = &c.idx.e[i];

		/* Claim certificates are named by their CN, claim:NAME. */
		if ((strcmp(e->kind, "device") != 0 && strcmp(e->kind, "claim") != 0) ||
		    strcmp(e->id, what) != 0)
			continue;
		by_id = 1;
		if (e->status == 'V') {
			e->status = 'R';
			e->revoked_at = now();
			done++;
		}
	}
	for (i = 0; !by_id && i < c.idx.n; i++) {
		struct pki_entry *e = &c.idx.e[i];

		if (!same_serial(e->serial, what))
			continue;
		if (e->status == 'R') {
			pki_errf(err, errlen, "serial %s (%s) is already revoked", e->serial, e->id);
			rc = MOTE_EEXIST;
			goto out;
		}
		e->status = 'R';
		e->revoked_at = now();
		done++;
		break;
	}
	if (by_id && !done) {
		pki_errf(err, errlen, "every certificate of '%s' is already revoked", what);
		rc = MOTE_EEXIST;
		goto out;
	}
	if (!done) {
		pki_errf(err, errlen,
			 "no device id or serial '%s' in %s/index.txt; check the id or serial", what,
			 dir);
		rc = MOTE_ENOTFOUND;
		goto out;
	}
	if ((rc = pki_index_save(dir, &c.idx, err, errlen)) ||
	    (rc = pki_write_crl(crl, c.ca, c.key, &c.idx, MOTE_PKI_CRL_DAYS, err, errlen)))
		goto out;
	if (count)
		*count = done;
out:
	pki_ca_close(&c);
	return rc;
}

enum mote_err mote_pki_crl(const char *dir, const char *out, int days, char *err,
			   size_t errlen)
{
	char crl[PATH_MAX];
	struct pki_ca c = { .lock = -1 };
	enum mote_err rc;

	if (out && strlen(out) >= PATH_MAX) {
		pki_errf(err, errlen, "--out path too long");
		return MOTE_ETOOBIG;
	}
	if (out)
		strcpy(crl, out);
	else if ((rc = pki_path(crl, dir, "crl.pem", NULL, err, errlen)))
		return rc;
	if ((rc = pki_ca_open(dir, &c, err, errlen)))
		goto out;
	rc = pki_write_crl(crl, c.ca, c.key, &c.idx, days_or(days, MOTE_PKI_CRL_DAYS), err, errlen);
out:
	pki_ca_close(&c);
	return rc;
}
