/*
 * claim.c - provisioning by claim: claim templates and certificates, the
 * check a hub makes when a claim holder connects, and the signing of the
 * CSR it then sends.
 *
 * A claim NAME is DIR/claims/NAME.conf (the template, `key = value` lines:
 * prefix, max, expires, device_days), DIR/claims/NAME.pem and NAME.key (the
 * shared certificate, CN claim:NAME, recorded in index.txt as KIND claim,
 * ID claim:NAME). What a claim has issued is not counted anywhere else: the
 * index lines whose CLAIM field names it are the count, so a count can never
 * drift from the certificates that exist.
 *
 * Decisions (docs/security.md "Provisioning by claim"):
 * - an id that is in the index at all (valid or revoked, any kind) is never
 *   issued through a claim: a leaked claim must not take over a device that
 *   exists, nor bring back one that was revoked for a reason;
 * - every certificate a claim issued counts towards max, revoked or not:
 *   revoking a device must not hand its slot to whoever holds the claim;
 * - the template is read again under DIR/.lock when signing, so two devices
 *   racing for the last slot (or against `revoke claim:NAME`) cannot both win.
 *
 * Refusals meant for the device (MOTE_ENOTFOUND, MOTE_EDENIED, MOTE_EINVAL)
 * carry sentences without paths; everything else is mapped to the hub's own
 * trouble (see pki.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "pki/pki_int.h"

struct tmpl {
	char prefix[MOTE_PKI_PREFIX_MAX + 1];
	unsigned max;
	long long expires;
	int device_days;
};

/* 1..max of [A-Za-z0-9._-], not "." or "..": safe as a file name and as one
 * MQTT topic level. */
static enum mote_err check_word(const char *s, size_t max, const char *what, char *err,
				size_t errlen)
{
	size_t len = s ? strlen(s) : 0;

	if (len == 0 || len > max) {
		pki_errf(err, errlen, "the %s must be 1 to %zu characters long", what, max);
		return MOTE_EINVAL;
	}
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		pki_errf(err, errlen, "'%s' is not a valid %s", s, what);
		return MOTE_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
			pki_errf(err, errlen,
				 "the %s may contain only letters, digits and . _ - (found byte 0x%02x)",
				 what, c);
			return MOTE_EINVAL;
		}
	}
	return MOTE_OK;
}

enum mote_err mote_pki_check_claim_name(const char *name, char *err, size_t errlen)
{
	return check_word(name, MOTE_PKI_CLAIM_MAX, "claim name", err, errlen);
}

enum mote_err mote_pki_check_device_id(const char *id, char *err, size_t errlen)
{
	return check_word(id, MOTE_PKI_DEVID_MAX, "device id", err, errlen);
}

static enum mote_err claim_path(char *out, const char *dir, const char *name, const char *ext,
				char *err, size_t errlen)
{
	char file[MOTE_PKI_CLAIM_MAX + 8];

	snprintf(file, sizeof file, "%s%s", name, ext);
	return pki_path(out, dir, "claims", file, err, errlen);
}

static enum mote_err tmpl_write(const char *dir, const char *name, const struct tmpl *t,
				char *err, size_t errlen)
{
	char path[PATH_MAX], text[512];
	enum mote_err rc = claim_path(path, dir, name, ".conf", err, errlen);
	int n;

	if (rc)
		return rc;
	n = snprintf(text, sizeof text,
		     "# mote pki claim template (docs/pki.md); the hub reads it at every request\n"
		     "prefix = %s\nmax = %u\nexpires = %lld\ndevice_days = %d\n",
		     t->prefix, t->max, t->expires, t->device_days);
	return pki_write_file(path, text, (size_t)n, 0644, err, errlen);
}

static int parse_ll(const char *v, long long lo, long long hi, long long *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (!*v || *end || errno || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

/* MOTE_ENOTFOUND when the claim does not exist (err for the device),
 * MOTE_EMALFORMED / MOTE_EIO with the path otherwise. */
static enum mote_err tmpl_read(const char *dir, const char *name, struct tmpl *t, char *err,
			       size_t errlen)
{
	char path[PATH_MAX], line[256];
	enum mote_err rc = claim_path(path, dir, name, ".conf", err, errlen);
	int lineno = 0, have = 0;
	FILE *f;

	if (rc)
		return rc;
	memset(t, 0, sizeof *t);
	t->device_days = MOTE_PKI_DEVICE_DAYS;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT) {
			pki_errf(err, errlen, "there is no claim '%s'", name);
			return MOTE_ENOTFOUND;
		}
		pki_errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return MOTE_EIO;
	}
	while (fgets(line, sizeof line, f)) {
		char *k = line, *v, *end;
		long long x;

		lineno++;
		line[strcspn(line, "\r\n")] = 0;
		while (isspace((unsigned char)*k))
			k++;
		if (!*k || *k == '#')
			continue;
		v = strchr(k, '=');
		if (!v)
			goto bad;
		end = v;
		while (end > k && isspace((unsigned char)end[-1]))
			end--;
		*end = 0;
		v++;
		while (isspace((unsigned char)*v))
			v++;
		for (end = v + strlen(v); end > v && isspace((unsigned char)end[-1]); end--)
			end[-1] = 0;
		if (strcmp(k, "prefix") == 0) {
			if (check_word(v, MOTE_PKI_PREFIX_MAX, "prefix", NULL, 0))
				goto bad;
			strcpy(t->prefix, v);
			have |= 1;
		} else if (strcmp(k, "max") == 0) {
			if (parse_ll(v, 1, MOTE_PKI_CLAIM_MAX_DEVICES, &x))
				goto bad;
			t->max = (unsigned)x;
			have |= 2;
		} else if (strcmp(k, "expires") == 0) {
			if (parse_ll(v, 0, (long long)1 << 40, &x))
				goto bad;
			t->expires = x;
			have |= 4;
		} else if (strcmp(k, "device_days") == 0) {
			if (parse_ll(v, 1, 36500, &x))
				goto bad;
			t->device_days = (int)x;
		} else {
			goto bad;
		}
	}
	fclose(f);
	if (have != 7) {
		pki_errf(err, errlen, "%s lacks one of prefix, max, expires", path);
		return MOTE_EMALFORMED;
	}
	return MOTE_OK;
bad:
	fclose(f);
	pki_errf(err, errlen, "%s:%d: malformed line; fix it or make the claim again with --force",
		 path, lineno);
	return MOTE_EMALFORMED;
}

struct usage {
	unsigned issued;
	bool revoked;
};

static struct usage usage_of(const struct pki_index *idx, const char *name)
{
	char cn[sizeof MOTE_PKI_CLAIM_CN + MOTE_PKI_CLAIM_MAX];
	struct usage u = { .revoked = true };

	snprintf(cn, sizeof cn, "%s%s", MOTE_PKI_CLAIM_CN, name);
	for (size_t i = 0; i < idx->n; i++) {
		const struct pki_entry *e = &idx->e[i];

		if (strcmp(e->kind, "claim") == 0 && e->status == 'V' && strcmp(e->id, cn) == 0)
			u.revoked = false;
		else if (strcmp(e->kind, "device") == 0 && strcmp(e->claim, name) == 0)
			u.issued++;
	}
	return u;
}

/* The template's rules for `id`, in the order an operator would look. */
static enum mote_err judge(const char *name, const char *id, const struct tmpl *t,
			   const struct pki_index *idx, char *err, size_t errlen)
{
	struct usage u = usage_of(idx, name);
	enum mote_err rc;

	if (u.revoked) {
		pki_errf(err, errlen, "claim '%s' is revoked", name);
		return MOTE_EDENIED;
	}
	if ((long long)time(NULL) >= t->expires) {
		pki_errf(err, errlen, "claim '%s' has expired", name);
		return MOTE_EDENIED;
	}
	if ((rc = mote_pki_check_device_id(id, err, errlen)))
		return rc;
	if (strncmp(id, t->prefix, strlen(t->prefix)) != 0 || strlen(id) == strlen(t->prefix)) {
		pki_errf(err, errlen,
			 "claim '%s' issues only ids that begin with '%s' and continue after it",
			 name, t->prefix);
		return MOTE_EINVAL;
	}
	for (size_t i = 0; i < idx->n; i++) {
		if (strcmp(idx->e[i].id, id) == 0) {
			pki_errf(err, errlen, "device id '%s' has been issued before; choose another",
				 id);
			return MOTE_EDENIED;
		}
	}
	if (u.issued >= t->max) {
		pki_errf(err, errlen, "claim '%s' has issued all of its %u devices", name, t->max);
		return MOTE_EDENIED;
	}
	return MOTE_OK;
}

/* Internal failures never reach the device under a refusal's code. */
static enum mote_err internal(enum mote_err rc)
{
	return rc == MOTE_ENOMEM || rc == MOTE_EPROTO || rc == MOTE_EMALFORMED ? rc : MOTE_EIO;
}

enum mote_err mote_pki_claim_check(const char *dir, const char *name, const char *id,
				   char *err, size_t errlen)
{
	struct pki_index idx = { 0 };
	struct tmpl t;
	enum mote_err rc;

	if (mote_pki_check_claim_name(name, NULL, 0)) {
		pki_errf(err, errlen, "there is no such claim");
		return MOTE_ENOTFOUND;
	}
	if ((rc = tmpl_read(dir, name, &t, err, errlen)))
		return rc;
	/* index.txt is replaced by rename: a read without the lock sees a whole
	 * old or new file, and a CONNECT never waits for a CLI run. */
	if ((rc = pki_index_load(dir, &idx, err, errlen)))
		return internal(rc);
	rc = judge(name, id, &t, &idx, err, errlen);
	pki_index_free(&idx);
	return rc;
}

static enum mote_err check_key(EVP_PKEY *pub, char *err, size_t errlen)
{
	char group[64];
	size_t glen = 0;

	if (EVP_PKEY_is_a(pub, "EC") &&
	    EVP_PKEY_get_group_name(pub, group, sizeof group, &glen) &&
	    (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
		return MOTE_OK;
	if (EVP_PKEY_is_a(pub, "ED25519"))
		return MOTE_OK;
	/* 8192 bits bounds the work a hostile request can cost. */
	if (EVP_PKEY_is_a(pub, "RSA") && EVP_PKEY_get_bits(pub) >= 2048 &&
	    EVP_PKEY_get_bits(pub) <= 8192)
		return MOTE_OK;
	ERR_clear_error();
	pki_errf(err, errlen, "the CSR's key must be EC P-256, Ed25519 or RSA of 2048 to 8192 bits");
	return MOTE_EINVAL;
}

/* The CSR's checks, none of which needs the PKI: *req is the caller's. */
static enum mote_err read_csr(const char *id, const void *csr, size_t len, X509_REQ **req,
			      char *err, size_t errlen)
{
	char cn[MOTE_PKI_ID_MAX + 1];
	EVP_PKEY *pub;
	enum mote_err rc;
	BIO *b;

	*req = NULL;
	if (len == 0) {
		pki_errf(err, errlen, "the request is empty; send a PEM CSR");
		return MOTE_EINVAL;
	}
	if (len > MOTE_PKI_CSR_MAX) {
		pki_errf(err, errlen, "the CSR is larger than %d bytes", MOTE_PKI_CSR_MAX);
		return MOTE_EINVAL;
	}
	b = BIO_new_mem_buf(csr, (int)len);
	if (!b) {
		pki_sslerrf(err, errlen, "out of memory reading the CSR");
		return MOTE_ENOMEM;
	}
	*req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!*req) {
		pki_sslerrf(err, errlen, "the request is not a PEM certificate request "
			    "(-----BEGIN CERTIFICATE REQUEST-----)");
		return MOTE_EINVAL;
	}
	pub = X509_REQ_get0_pubkey(*req);
	if (!pub) {
		pki_sslerrf(err, errlen, "the CSR's public key cannot be read");
		return MOTE_EINVAL;
	}
	if ((rc = check_key(pub, err, errlen)))
		return rc;
	/* Proof that the requester holds the private key it wants certified. */
	if (X509_REQ_verify(*req, pub) != 1) {
		pki_sslerrf(err, errlen, "the CSR's signature does not verify");
		return MOTE_EINVAL;
	}
	if ((rc = pki_csr_cn(*req, cn, err, errlen)))
		return MOTE_EINVAL;
	if (strcmp(cn, id) != 0) {
		pki_errf(err, errlen, "the CSR's CN must be the client id '%s'", id);
		return MOTE_EINVAL;
	}
	return MOTE_OK;
}

/* The device certificate and then the CA's, as one NUL-terminated string. */
static enum mote_err chain_pem(X509 *cert, X509 *ca, char **pem, size_t *pem_len, char *err,
			       size_t errlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;
	enum mote_err rc = MOTE_ENOMEM;

	if (!b || !PEM_write_bio_X509(b, cert) || !PEM_write_bio_X509(b, ca) ||
	    (len = BIO_get_mem_data(b, &data)) <= 0) {
		pki_sslerrf(err, errlen, "cannot encode the certificates");
		goto out;
	}
	*pem = malloc((size_t)len + 1);
	if (!*pem) {
		pki_errf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(*pem, data, (size_t)len);
	(*pem)[len] = 0;
	*pem_len = (size_t)len;
	rc = MOTE_OK;
out:
	BIO_free(b);
	return rc;
}

enum mote_err mote_pki_claim_sign(const char *dir, const char *name, const char *id,
				  const void *csr, size_t csr_len, char **pem, size_t *pem_len,
				  char serial[68], char *err, size_t errlen)
{
	struct pki_ca c = { .lock = -1 };
	X509_REQ *req = NULL;
	X509 *cert = NULL;
	struct tmpl t;
	enum mote_err rc;

	*pem = NULL;
	*pem_len = 0;
	if (mote_pki_check_claim_name(name, NULL, 0)) {
		pki_errf(err, errlen, "there is no such claim");
		return MOTE_ENOTFOUND;
	}
	if ((rc = mote_pki_check_device_id(id, err, errlen)) ||
	    (rc = read_csr(id, csr, csr_len, &req, err, errlen)))
		goto out;
	if ((rc = pki_ca_open(dir, &c, err, errlen))) {
		rc = internal(rc);
		goto out;
	}
	if ((rc = tmpl_read(dir, name, &t, err, errlen)) ||
	    (rc = judge(name, id, &t, &c.idx, err, errlen)))
		goto out;
	if ((rc = pki_issue_locked(&c, dir, id, X509_REQ_get0_pubkey(req), NULL, NULL,
				   t.device_days, name, NULL, NULL, &cert, err, errlen))) {
		rc = internal(rc);
		goto out;
	}
	if (serial) {
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		snprintf(serial, 68, "%s", hex ? hex : "?");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	rc = chain_pem(cert, c.ca, pem, pem_len, err, errlen);
out:
	pki_ca_close(&c);
	X509_free(cert);
	X509_REQ_free(req);
	return rc;
}

enum mote_err mote_pki_claim(const char *dir, const char *name,
			     const struct mote_pki_claim_opts *o, char *cert_path, char *key_path,
			     char *err, size_t errlen)
{
	char claims[PATH_MAX], conf[PATH_MAX], pem[PATH_MAX], kpath[PATH_MAX], crl[PATH_MAX];
	char san[sizeof "URI:" MOTE_PKI_CLAIM_URI + MOTE_PKI_CLAIM_MAX];
	struct pki_entry e = { .status = 'V', .kind = "claim" };
	struct pki_ca c = { .lock = -1 };
	int days = o->days > 0 ? o->days : MOTE_PKI_CLAIM_DAYS;
	struct tmpl t = { .max = o->max };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	enum mote_err rc;
	int revoked = 0;

	if ((rc = mote_pki_check_claim_name(name, err, errlen)) ||
	    (rc = check_word(o->prefix, MOTE_PKI_PREFIX_MAX, "prefix", err, errlen)))
		return rc;
	if (o->max < 1 || o->max > MOTE_PKI_CLAIM_MAX_DEVICES) {
		pki_errf(err, errlen, "--max must be 1 to %d devices", MOTE_PKI_CLAIM_MAX_DEVICES);
		return MOTE_EINVAL;
	}
	if (days > 36500 || o->device_days < 0 || o->device_days > 36500) {
		pki_errf(err, errlen, "days must be 1 to 36500");
		return MOTE_EINVAL;
	}
	strcpy(t.prefix, o->prefix);
	t.device_days = o->device_days > 0 ? o->device_days : MOTE_PKI_DEVICE_DAYS;
	if ((rc = pki_path(claims, dir, "claims", NULL, err, errlen)) ||
	    (rc = claim_path(conf, dir, name, ".conf", err, errlen)) ||
	    (rc = claim_path(pem, dir, name, ".pem", err, errlen)) ||
	    (rc = claim_path(kpath, dir, name, ".key", err, errlen)) ||
	    (rc = pki_path(crl, dir, "crl.pem", NULL, err, errlen)) ||
	    (rc = pki_ca_open(dir, &c, err, errlen)) || (rc = pki_mkdir(claims, err, errlen)))
		goto out;
	if (!o->force && access(conf, F_OK) == 0) {
		pki_errf(err, errlen,
			 "claim '%s' exists; pass --force to replace it (its certificate is revoked, "
			 "the devices it issued keep counting towards --max)", name);
		rc = MOTE_EEXIST;
		goto out;
	}
	snprintf(e.id, sizeof e.id, "%s%s", MOTE_PKI_CLAIM_CN, name);
	/* A replaced claim's old certificate would still name the new template. */
	for (size_t i = 0; i < c.idx.n; i++) {
		struct pki_entry *x = &c.idx.e[i];

		if (strcmp(x->kind, "claim") == 0 && x->status == 'V' && strcmp(x->id, e.id) == 0) {
			x->status = 'R';
			x->revoked_at = (long long)time(NULL);
			revoked++;
		}
	}
	t.expires = (long long)time(NULL) + 86400LL * days;
	snprintf(san, sizeof san, "URI:%s%s", MOTE_PKI_CLAIM_URI, name);
	if ((rc = pki_keygen(&key, err, errlen)) ||
	    (rc = pki_make_cert(c.ca, c.key, key, e.id, days, PKI_DEVICE, san, &cert, e.serial,
				err, errlen)) ||
	    (rc = pki_write_key(kpath, key, err, errlen)) ||
	    (rc = pki_write_cert(pem, cert, err, errlen)) ||
	    (rc = tmpl_write(dir, name, &t, err, errlen)))
		goto out;
	e.not_after = t.expires;
	if ((rc = pki_index_add(&c.idx, &e, err, errlen)) ||
	    (rc = pki_index_save(dir, &c.idx, err, errlen)))
		goto out;
	if (revoked && (rc = pki_write_crl(crl, c.ca, c.key, &c.idx, MOTE_PKI_CRL_DAYS, err,
					   errlen)))
		goto out;
	if (cert_path)
		strcpy(cert_path, pem);
	if (key_path)
		strcpy(key_path, kpath);
out:
	pki_ca_close(&c);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct mote_pki_claim_info *)a)->name,
		      ((const struct mote_pki_claim_info *)b)->name);
}

enum mote_err mote_pki_claims(const char *dir, struct mote_pki_claim_info **out, size_t *n,
			      char *err, size_t errlen)
{
	char claims[PATH_MAX];
	struct mote_pki_claim_info *v = NULL;
	struct pki_index idx = { 0 };
	size_t cnt = 0, cap = 0;
	struct dirent *d;
	enum mote_err rc;
	DIR *dp = NULL;

	*out = NULL;
	*n = 0;
	if ((rc = pki_path(claims, dir, "claims", NULL, err, errlen)) ||
	    (rc = pki_index_load(dir, &idx, err, errlen)))
		return rc;
	dp = opendir(claims);
	if (!dp) {
		if (errno != ENOENT) {
			pki_errf(err, errlen, "cannot read %s: %s", claims, strerror(errno));
			rc = MOTE_EIO;
		}
		goto out;
	}
	while ((d = readdir(dp))) {
		size_t len = strlen(d->d_name);
		struct mote_pki_claim_info *i;
		struct usage u;
		struct tmpl t;

		if (len < 6 || strcmp(d->d_name + len - 5, ".conf") != 0 ||
		    len - 5 > MOTE_PKI_CLAIM_MAX)
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			void *nv = realloc(v, ncap * sizeof *v);

			if (!nv) {
				pki_errf(err, errlen, "out of memory");
				rc = MOTE_ENOMEM;
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		i = &v[cnt];
		memset(i, 0, sizeof *i);
		memcpy(i->name, d->d_name, len - 5);
		if (mote_pki_check_claim_name(i->name, NULL, 0))
			continue;
		if ((rc = tmpl_read(dir, i->name, &t, err, errlen)))
			goto out;
		u = usage_of(&idx, i->name);
		strcpy(i->prefix, t.prefix);
		i->max = t.max;
		i->expires = t.expires;
		i->device_days = t.device_days;
		i->issued = u.issued;
		i->revoked = u.revoked;
		cnt++;
	}
	qsort(v, cnt, sizeof *v, by_name);
out:
	if (dp)
		closedir(dp);
	pki_index_free(&idx);
	if (rc) {
		free(v);
		return rc;
	}
	*out = cnt ? v : NULL;
	if (!cnt)
		free(v);
	*n = cnt;
	return MOTE_OK;
}
