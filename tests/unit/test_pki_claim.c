/*
 * test_pki_claim.c - provisioning by claim in src/pki/: claim templates and
 * certificates, the CONNECT check and the signing of device CSRs, each
 * result judged with OpenSSL's verifier and by reading the index back.
 * Refusals: CN mismatch, forged signature, weak or unknown keys, garbage,
 * wrong prefix, invalid ids, ids issued before, quota, expiry, revocation,
 * unknown claims; two threads racing for the last slot.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"

struct fx {
	char dir[64];
	char err[512];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	struct mote_pki_init_opts o = { 0 };

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mote-claim-XXXXXX");
	if (!mkdtemp(f->dir) || mote_pki_init(f->dir, &o, f->err, sizeof f->err))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void path_of(char *out, const struct fx *f, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", f->dir, name);
}

static int exists(const struct fx *f, const char *name)
{
	char p[PATH_MAX];

	path_of(p, f, name);
	return access(p, F_OK) == 0;
}

static X509 *load_cert(const struct fx *f, const char *name)
{
	char p[PATH_MAX];
	FILE *fp;
	X509 *x;

	path_of(p, f, name);
	fp = fopen(p, "r");
	if (!fp)
		fail_msg("cannot open %s", p);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

static void claim_ok(struct fx *f, const char *name, const char *prefix, unsigned max)
{
	struct mote_pki_claim_opts o = { .prefix = prefix, .max = max };
	enum mote_err rc = mote_pki_claim(f->dir, name, &o, NULL, NULL, f->err, sizeof f->err);

	if (rc)
		fail_msg("claim: %s (%s)", mote_strerror(rc), f->err);
}

/* A PEM CSR for CN=cn and pub, signed by signer (md NULL for Ed25519);
 * the caller frees it. */
static char *make_csr(const char *cn, EVP_PKEY *pub, EVP_PKEY *signer)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long len;

	assert_non_null(req);
	assert_non_null(name);
	assert_non_null(b);
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					       (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, name));
	assert_true(X509_REQ_set_pubkey(req, pub));
	assert_true(X509_REQ_sign(req, signer,
				  EVP_PKEY_is_a(signer, "ED25519") ? NULL : EVP_sha256()) > 0);
	assert_true(PEM_write_bio_X509_REQ(b, req));
	len = BIO_get_mem_data(b, &data);
	out = malloc((size_t)len + 1);
	assert_non_null(out);
	memcpy(out, data, (size_t)len);
	out[len] = 0;
	BIO_free(b);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return out;
}

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	return k;
}

/* mote_pki_claim_sign on a CSR for cn made with a fresh P-256 key. */
static enum mote_err sign_cn(struct fx *f, const char *claim, const char *id, const char *cn)
{
	EVP_PKEY *k = ec_key();
	char *csr = make_csr(cn, k, k), *pem = NULL;
	size_t len;
	enum mote_err rc = mote_pki_claim_sign(f->dir, claim, id, csr, strlen(csr), &pem, &len,
					       NULL, f->err, sizeof f->err);

	assert_true(rc == MOTE_OK || pem == NULL);
	free(pem);
	free(csr);
	EVP_PKEY_free(k);
	return rc;
}

static int verify_client(X509 *ca, X509 *cert)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc;

	assert_non_null(store);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

static int has_uri(X509 *x, const char *want)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_URI &&
		    strcmp((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
			   want) == 0)
			found = 1;
	}
	GENERAL_NAMES_free(gens);
	return found;
}

static void read_file(const struct fx *f, const char *name, char *buf, size_t cap)
{
	char p[PATH_MAX];
	FILE *fp;
	size_t n;

	path_of(p, f, name);
	fp = fopen(p, "r");
	assert_non_null(fp);
	n = fread(buf, 1, cap - 1, fp);
	buf[n] = 0;
	fclose(fp);
}

static void test_claim_files(void **state)
{
	struct fx *f = *state;
	struct mote_pki_claim_opts o = { .prefix = "pump-", .max = 3, .days = 10 };
	char cert[PATH_MAX], key[PATH_MAX], cn[64], text[2048];
	struct stat st;
	X509 *ca, *c;
	time_t in9 = time(NULL) + 9 * 86400, in11 = time(NULL) + 11 * 86400;

	assert_int_equal(mote_pki_claim(f->dir, "batch1", &o, cert, key, f->err, sizeof f->err),
			 MOTE_OK);
	assert_non_null(strstr(cert, "claims/batch1.pem"));
	assert_non_null(strstr(key, "claims/batch1.key"));
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	ca = load_cert(f, "ca.pem");
	c = load_cert(f, "claims/batch1.pem");
	assert_int_equal(verify_client(ca, c), X509_V_OK);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn,
					      sizeof cn) > 0);
	assert_string_equal(cn, "claim:batch1");
	assert_true(has_uri(c, "urn:mote:claim:batch1"));
	assert_int_equal(X509_check_ca(c), 0);
	/* Valid until the template expires: --days 10. */
	assert_true(X509_cmp_time(X509_get0_notAfter(c), &in9) > 0);
	assert_true(X509_cmp_time(X509_get0_notAfter(c), &in11) < 0);
	read_file(f, "claims/batch1.conf", text, sizeof text);
	assert_non_null(strstr(text, "prefix = pump-\n"));
	assert_non_null(strstr(text, "max = 3\n"));
	read_file(f, "index.txt", text, sizeof text);
	assert_non_null(strstr(text, "\tclaim\tclaim:batch1\t"));

	/* No silent replacement; --force revokes the old certificate. */
	assert_int_equal(mote_pki_claim(f->dir, "batch1", &o, NULL, NULL, f->err, sizeof f->err),
			 MOTE_EEXIST);
	assert_non_null(strstr(f->err, "--force"));
	o.force = 1;
	o.max = 5;
	assert_int_equal(mote_pki_claim(f->dir, "batch1", &o, NULL, NULL, f->err, sizeof f->err),
			 MOTE_OK);
	read_file(f, "index.txt", text, sizeof text);
	assert_non_null(strstr(text, "R\t"));
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1", "pump-1", f->err, sizeof f->err),
			 MOTE_OK);

	/* Bad names, prefixes and counts. */
	o.force = 0;
	assert_int_equal(mote_pki_claim(f->dir, "../x", &o, NULL, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	o.prefix = "a/b";
	assert_int_equal(mote_pki_claim(f->dir, "b2", &o, NULL, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	o.prefix = "";
	assert_int_equal(mote_pki_claim(f->dir, "b2", &o, NULL, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	o.prefix = "p";
	o.max = 0;
	assert_int_equal(mote_pki_claim(f->dir, "b2", &o, NULL, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	assert_false(exists(f, "claims/b2.conf"));
	X509_free(c);
	X509_free(ca);
}

static void test_good_csr(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = ec_key();
	char *csr = make_csr("pump-7", k, k), *pem = NULL, serial[68], cn[64], text[4096];
	struct mote_pki_claim_info *v;
	size_t len, n;
	X509 *ca, *d, *chain_ca;
	BIO *b;

	claim_ok(f, "batch1", "pump-", 2);
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1", "pump-7", f->err, sizeof f->err),
			 MOTE_OK);
	assert_int_equal(mote_pki_claim_sign(f->dir, "batch1", "pump-7", csr, strlen(csr), &pem,
					     &len, serial, f->err, sizeof f->err),
			 MOTE_OK);
	assert_int_equal(strlen(pem), len);
	/* The device certificate, then the CA's. */
	b = BIO_new_mem_buf(pem, (int)len);
	d = PEM_read_bio_X509(b, NULL, NULL, NULL);
	chain_ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(d);
	assert_non_null(chain_ca);
	ca = load_cert(f, "ca.pem");
	assert_int_equal(X509_cmp(ca, chain_ca), 0);
	assert_int_equal(verify_client(ca, d), X509_V_OK);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(d), NID_commonName, cn,
					      sizeof cn) > 0);
	assert_string_equal(cn, "pump-7");
	assert_true(has_uri(d, "urn:mote:dev:pump-7"));
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(d), k), 1);
	assert_true(X509_get_extended_key_usage(d) & XKU_SSL_CLIENT);
	assert_int_equal(X509_check_ca(d), 0);
	assert_true(exists(f, "devices/pump-7.pem"));
	assert_false(exists(f, "devices/pump-7.key"));
	/* Recorded with the claim's name, under the serial returned. */
	read_file(f, "index.txt", text, sizeof text);
	assert_non_null(strstr(text, serial));
	assert_non_null(strstr(text, "\tdevice\tpump-7\t"));
	assert_non_null(strstr(text, "\tbatch1\n"));
	assert_int_equal(mote_pki_claims(f->dir, &v, &n, f->err, sizeof f->err), MOTE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "batch1");
	assert_string_equal(v[0].prefix, "pump-");
	assert_int_equal(v[0].issued, 1);
	assert_int_equal(v[0].max, 2);
	assert_false(v[0].revoked);
	free(v);
	/* The id is taken now: neither CONNECT nor a second CSR gets it. */
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1", "pump-7", f->err, sizeof f->err),
			 MOTE_EDENIED);
	assert_non_null(strstr(f->err, "issued before"));
	assert_int_equal(sign_cn(f, "batch1", "pump-7", "pump-7"), MOTE_EDENIED);
	/* Revoking the device keeps its id taken (and its slot used). */
	assert_int_equal(mote_pki_revoke(f->dir, "pump-7", NULL, f->err, sizeof f->err), MOTE_OK);
	assert_int_equal(sign_cn(f, "batch1", "pump-7", "pump-7"), MOTE_EDENIED);
	read_file(f, "index.txt", text, sizeof text);
	assert_non_null(strstr(text, "\tbatch1\n")); /* the rewrite kept the claim field */
	X509_free(chain_ca);
	X509_free(d);
	X509_free(ca);
	free(pem);
	free(csr);
	EVP_PKEY_free(k);
}

/* The device's side: its key and CSR (mote_pki_make_csr), the hub's signing,
 * and the answer saved (mote_pki_save_cert) only when it names the device. */
static void test_device_side(void **state)
{
	struct fx *f = *state;
	char key[PATH_MAX], cert[PATH_MAX], serial[68];
	char *csr = NULL, *pem = NULL;
	size_t csr_len = 0, len = 0;
	struct stat st;

	claim_ok(f, "batch2", "fan-", 5);
	path_of(key, f, "fan-1.key");
	path_of(cert, f, "fan-1.pem");
	assert_int_equal(mote_pki_make_csr("fan-1", key, &csr, &csr_len, f->err, sizeof f->err),
			 MOTE_OK);
	assert_int_equal(strlen(csr), csr_len);
	assert_non_null(strstr(csr, "-----BEGIN CERTIFICATE REQUEST-----"));
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(mote_pki_claim_sign(f->dir, "batch2", "fan-1", csr, csr_len, &pem, &len,
					     serial, f->err, sizeof f->err),
			 MOTE_OK);
	/* Not for another device, not garbage, not empty: nothing written. */
	assert_int_equal(mote_pki_save_cert(cert, "fan-2", pem, len, f->err, sizeof f->err),
			 MOTE_EPROTO);
	assert_non_null(strstr(f->err, "fan-1"));
	assert_int_equal(mote_pki_save_cert(cert, "fan-1", "not a pem", 9, f->err, sizeof f->err),
			 MOTE_EPROTO);
	assert_int_equal(mote_pki_save_cert(cert, "fan-1", pem, 0, f->err, sizeof f->err),
			 MOTE_EPROTO);
	assert_false(exists(f, "fan-1.pem"));
	assert_int_equal(mote_pki_save_cert(cert, "fan-1", pem, len, f->err, sizeof f->err),
			 MOTE_OK);
	/* The certificate is for the key the device kept. */
	X509 *x = load_cert(f, "fan-1.pem");
	FILE *fp = fopen(key, "r");
	assert_non_null(fp);
	EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);
	EVP_PKEY_free(k);
	X509_free(x);
	free(pem);
	free(csr);
	/* Not a device id: no key, no request. */
	path_of(key, f, "bad.key");
	assert_int_equal(mote_pki_make_csr("../x", key, &csr, &csr_len, f->err, sizeof f->err),
			 MOTE_EINVAL);
	assert_null(csr);
	assert_false(exists(f, "bad.key"));
}

static void test_key_types(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *rsa2k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *rsa1k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	struct {
		const char *id;
		EVP_PKEY *k;
		enum mote_err want;
	} cases[] = {
		{ "k-ed", ed, MOTE_OK },
		{ "k-rsa2k", rsa2k, MOTE_OK },
		{ "k-rsa1k", rsa1k, MOTE_EINVAL },
		{ "k-p384", p384, MOTE_EINVAL },
	};

	claim_ok(f, "keys", "k-", 10);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *csr, *pem = NULL;
		size_t len;

		assert_non_null(cases[i].k);
		csr = make_csr(cases[i].id, cases[i].k, cases[i].k);
		assert_int_equal(mote_pki_claim_sign(f->dir, "keys", cases[i].id, csr, strlen(csr),
						     &pem, &len, NULL, f->err, sizeof f->err),
				 cases[i].want);
		if (cases[i].want)
			assert_non_null(strstr(f->err, "EC P-256, Ed25519 or RSA"));
		free(pem);
		free(csr);
		EVP_PKEY_free(cases[i].k);
	}
}

static void test_bad_csrs(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = ec_key(), *other = ec_key();
	char *forged = make_csr("pump-1", k, other), *good = make_csr("pump-1", k, k);
	char *pem = NULL, big[MOTE_PKI_CSR_MAX + 2];
	static const char garbage[] = "-----BEGIN CERTIFICATE REQUEST-----\nnot base64 !!\n"
				      "-----END CERTIFICATE REQUEST-----\n";
	size_t len;

	claim_ok(f, "batch1", "pump-", 5);
	/* CN other than the client id. */
	assert_int_equal(sign_cn(f, "batch1", "pump-1", "pump-2"), MOTE_EINVAL);
	assert_non_null(strstr(f->err, "CN must be the client id 'pump-1'"));
	/* Signed by a key other than the one it asks to certify. */
	assert_int_equal(mote_pki_claim_sign(f->dir, "batch1", "pump-1", forged, strlen(forged),
					     &pem, &len, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	assert_non_null(strstr(f->err, "signature does not verify"));
	assert_null(pem);
	/* Garbage, empty, truncated, too large, a certificate instead of a CSR. */
	assert_int_equal(mote_pki_claim_sign(f->dir, "batch1", "pump-1", garbage, strlen(garbage),
					     &pem, &len, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	assert_non_null(strstr(f->err, "not a PEM certificate request"));
	assert_int_equal(mote_pki_claim_sign(f->dir, "batch1", "pump-1", "", 0, &pem, &len, NULL,
					     f->err, sizeof f->err),
			 MOTE_EINVAL);
	assert_int_equal(mote_pki_claim_sign(f->dir, "batch1", "pump-1", good, strlen(good) / 2,
					     &pem, &len, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	memset(big, 'A', sizeof big);
	assert_int_equal(mote_pki_claim_sign(f->dir, "batch1", "pump-1", big, sizeof big, &pem,
					     &len, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	assert_non_null(strstr(f->err, "larger than"));
	read_file(f, "ca.pem", big, sizeof big);
	assert_int_equal(mote_pki_claim_sign(f->dir, "batch1", "pump-1", big, strlen(big), &pem,
					     &len, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	/* Nothing was issued by any of them; the good one still works. */
	assert_false(exists(f, "devices/pump-1.pem"));
	assert_int_equal(mote_pki_claim_sign(f->dir, "batch1", "pump-1", good, strlen(good), &pem,
					     &len, NULL, f->err, sizeof f->err),
			 MOTE_OK);
	free(pem);
	free(good);
	free(forged);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
}

static void test_template_rules(void **state)
{
	struct fx *f = *state;
	char err[512];

	claim_ok(f, "batch1", "pump-", 2);
	/* Prefix: must begin with it and go on after it. */
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1", "valve-1", err, sizeof err),
			 MOTE_EINVAL);
	assert_non_null(strstr(err, "begin with 'pump-'"));
	assert_int_equal(sign_cn(f, "batch1", "valve-1", "valve-1"), MOTE_EINVAL);
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1", "pump-", err, sizeof err),
			 MOTE_EINVAL);
	/* Ids are single topic levels of [A-Za-z0-9._-], at most 64. */
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1", "pump-a/b", err, sizeof err),
			 MOTE_EINVAL);
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1", "pump-a+", err, sizeof err),
			 MOTE_EINVAL);
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1",
					      "pump-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
					      err, sizeof err),
			 MOTE_EINVAL);
	/* An id issued some other way is not the claim's to give. */
	assert_int_equal(mote_pki_issue(f->dir, "pump-x", 0, 0, NULL, NULL, err, sizeof err),
			 MOTE_OK);
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1", "pump-x", err, sizeof err),
			 MOTE_EDENIED);
	/* Quota: two devices, then no more. */
	assert_int_equal(sign_cn(f, "batch1", "pump-1", "pump-1"), MOTE_OK);
	assert_int_equal(sign_cn(f, "batch1", "pump-2", "pump-2"), MOTE_OK);
	assert_int_equal(mote_pki_claim_check(f->dir, "batch1", "pump-3", err, sizeof err),
			 MOTE_EDENIED);
	assert_non_null(strstr(err, "all of its 2 devices"));
	assert_int_equal(sign_cn(f, "batch1", "pump-3", "pump-3"), MOTE_EDENIED);
	assert_non_null(strstr(f->err, "all of its 2 devices"));
	/* Revoked devices keep counting. */
	assert_int_equal(mote_pki_revoke(f->dir, "pump-1", NULL, err, sizeof err), MOTE_OK);
	assert_int_equal(sign_cn(f, "batch1", "pump-3", "pump-3"), MOTE_EDENIED);
	/* Unknown claims, and names that are not names. */
	assert_int_equal(mote_pki_claim_check(f->dir, "nope", "pump-3", err, sizeof err),
			 MOTE_ENOTFOUND);
	assert_int_equal(sign_cn(f, "../batch1", "pump-3", "pump-3"), MOTE_ENOTFOUND);
	assert_null(strstr(f->err, f->dir));
}

static void set_expires(struct fx *f, const char *name, long long when)
{
	char p[PATH_MAX];
	FILE *fp;

	snprintf(p, sizeof p, "%s/claims/%s.conf", f->dir, name);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fprintf(fp, "prefix = pump-\nmax = 5\nexpires = %lld\n", when);
	fclose(fp);
}

static void test_expired_and_revoked(void **state)
{
	struct fx *f = *state;
	char err[512];
	int n;

	claim_ok(f, "old", "pump-", 5);
	set_expires(f, "old", (long long)time(NULL) - 1);
	assert_int_equal(mote_pki_claim_check(f->dir, "old", "pump-1", err, sizeof err),
			 MOTE_EDENIED);
	assert_non_null(strstr(err, "expired"));
	assert_int_equal(sign_cn(f, "old", "pump-1", "pump-1"), MOTE_EDENIED);
	assert_non_null(strstr(f->err, "expired"));
	set_expires(f, "old", (long long)time(NULL) + 3600);
	assert_int_equal(mote_pki_claim_check(f->dir, "old", "pump-1", err, sizeof err), MOTE_OK);

	assert_int_equal(mote_pki_revoke(f->dir, "claim:old", &n, err, sizeof err), MOTE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(mote_pki_claim_check(f->dir, "old", "pump-1", err, sizeof err),
			 MOTE_EDENIED);
	assert_non_null(strstr(err, "revoked"));
	assert_int_equal(sign_cn(f, "old", "pump-1", "pump-1"), MOTE_EDENIED);
	assert_non_null(strstr(f->err, "revoked"));

	/* A broken template is the hub's trouble, not a refusal. */
	claim_ok(f, "broken", "pump-", 5);
	snprintf(err, sizeof err, "%s/claims/broken.conf", f->dir);
	{
		FILE *fp = fopen(err, "w");

		assert_non_null(fp);
		fputs("prefix = pump-\nmax = lots\nexpires = 1\n", fp);
		fclose(fp);
	}
	assert_int_equal(mote_pki_claim_check(f->dir, "broken", "pump-1", err, sizeof err),
			 MOTE_EMALFORMED);
}

struct racer {
	struct fx *f;
	const char *id;
	enum mote_err rc;
	char err[512];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	size_t len;
	long n;

	/* No cmocka asserts off the main thread. */
	if (!k || !req || !b ||
	    !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
					(const unsigned char *)r->id, -1, -1, 0) ||
	    !X509_REQ_set_pubkey(req, k) || !X509_REQ_sign(req, k, EVP_sha256()) ||
	    !PEM_write_bio_X509_REQ(b, req) || (n = BIO_get_mem_data(b, &data)) <= 0) {
		r->rc = MOTE_ERR_COUNT_;
	} else {
		r->rc = mote_pki_claim_sign(r->f->dir, "race", r->id, data, (size_t)n, &pem, &len,
					    NULL, r->err, sizeof r->err);
	}
	free(pem);
	BIO_free(b);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return NULL;
}

static void test_race_for_last_slot(void **state)
{
	struct fx *f = *state;
	struct racer r[4] = { { f, "r-1", 0, "" }, { f, "r-2", 0, "" }, { f, "r-3", 0, "" },
			      { f, "r-4", 0, "" } };
	pthread_t t[4];
	int ok = 0, refused = 0;

	claim_ok(f, "race", "r-", 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].rc == MOTE_OK;
		refused += r[i].rc == MOTE_EDENIED && strstr(r[i].err, "all of its 1") != NULL;
	}
	assert_int_equal(ok, 1);
	assert_int_equal(refused, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_claim_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_good_csr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_side, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_csrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_template_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_and_revoked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_for_last_slot, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
