/*
 * test_pki_ca.c - the fleet CA of src/pki/ checked with OpenSSL's own
 * verifier: init (files, modes, refusal to overwrite), issue and sign-csr
 * (chain, purpose, CN, serial, EKU, not a CA), device id validation, revoke
 * and the CRL (signature, listed serials, revoked chains fail).
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <limits.h>
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

#include <openssl/bn.h>
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

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mote-pki-XXXXXX");
	if (!mkdtemp(f->dir))
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

static void init_ok(struct fx *f, int force)
{
	static const char *const sans[] = { "DNS:hub.example", "IP:10.1.2.3" };
	struct mote_pki_init_opts o = { .sans = sans, .nsans = 2, .force = force };
	enum mote_err rc = mote_pki_init(f->dir, &o, f->err, sizeof f->err);

	if (rc)
		fail_msg("init: %s (%s)", mote_strerror(rc), f->err);
}

static void path_of(char *out, const struct fx *f, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", f->dir, name);
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

static int mode_of(const struct fx *f, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	path_of(p, f, name);
	if (stat(p, &st) != 0)
		fail_msg("missing %s", p);
	return (int)(st.st_mode & 07777);
}

static int exists(const struct fx *f, const char *name)
{
	char p[PATH_MAX];

	path_of(p, f, name);
	return access(p, F_OK) == 0;
}

/* X509_V_OK or the verifier's error for cert against the CA (and crl). */
static int verify(X509 *ca, X509 *cert, int purpose, X509_CRL *crl)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc;

	assert_non_null(store);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	if (crl) {
		assert_int_equal(X509_STORE_add_crl(store, crl), 1);
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

static void cn_of(X509 *x, char *out, size_t len)
{
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out,
					      (int)len) > 0);
}

static void serial_of(X509 *x, char *out, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = BN_bn2hex(bn);

	assert_true(BN_num_bits(bn) > 120 && BN_num_bits(bn) <= 128);
	snprintf(out, len, "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
}

static void test_init_files_and_modes(void **state)
{
	struct fx *f = *state;
	X509 *ca, *hub;

	init_ok(f, 0);
	assert_int_equal(mode_of(f, "ca.key"), 0600);
	assert_int_equal(mode_of(f, "hub.key"), 0600);
	assert_true(exists(f, "index.txt") && exists(f, "crl.pem") && exists(f, "devices"));
	ca = load_cert(f, "ca.pem");
	hub = load_cert(f, "hub.pem");
	assert_int_equal(X509_check_ca(ca), 1);
	assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
	assert_true(X509_get_key_usage(ca) & KU_CRL_SIGN);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(ca)), 0);
	/* ~10 years: the notAfter lies beyond 9 years from now. */
	assert_true(X509_cmp_time(X509_get0_notAfter(ca), &(time_t){ time(NULL) + 9 * 365 * 86400L }) > 0);
	assert_int_equal(verify(ca, hub, X509_PURPOSE_SSL_SERVER, NULL), X509_V_OK);
	assert_int_equal(X509_check_ca(hub), 0);
	assert_true(X509_get_extended_key_usage(hub) & XKU_SSL_SERVER);
	assert_int_equal(X509_check_host(hub, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(hub, "hub.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(hub, "other.example", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(hub, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(hub, "10.1.2.3", 0), 1);
	X509_free(hub);
	X509_free(ca);
}

static void test_init_refuses_overwrite(void **state)
{
	struct fx *f = *state;
	struct mote_pki_init_opts o = { 0 };
	X509 *a, *b;

	init_ok(f, 0);
	a = load_cert(f, "ca.pem");
	assert_int_equal(mote_pki_init(f->dir, &o, f->err, sizeof f->err), MOTE_EEXIST);
	assert_non_null(strstr(f->err, "--force"));
	b = load_cert(f, "ca.pem");
	assert_int_equal(X509_cmp(a, b), 0);
	X509_free(b);
	init_ok(f, 1);
	b = load_cert(f, "ca.pem");
	assert_int_not_equal(X509_cmp(a, b), 0);
	assert_int_equal(mode_of(f, "ca.key"), 0600);
	X509_free(b);
	X509_free(a);
}

static void test_init_bad_san(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = { "hub.example", "DNS:", "DNS:a,IP:1.2.3.4",
					   "URI:x", "DNS:a b" };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct mote_pki_init_opts o = { .sans = &bad[i], .nsans = 1 };

		assert_int_equal(mote_pki_init(f->dir, &o, f->err, sizeof f->err), MOTE_EINVAL);
		assert_false(exists(f, "ca.pem"));
	}
}

static void test_issue_verifies(void **state)
{
	struct fx *f = *state;
	char cert[PATH_MAX], key[PATH_MAX], cn[256], s1[80], s2[80];
	X509 *ca, *d1, *d2;
	EVP_PKEY *k;
	FILE *fp;

	init_ok(f, 0);
	assert_int_equal(mote_pki_issue(f->dir, "dev-1", 0, 0, cert, key, f->err, sizeof f->err),
			 MOTE_OK);
	assert_int_equal(mote_pki_issue(f->dir, "dev-2", 30, 0, NULL, NULL, f->err, sizeof f->err),
			 MOTE_OK);
	assert_int_equal(mode_of(f, "devices/dev-1.key"), 0600);
	ca = load_cert(f, "ca.pem");
	d1 = load_cert(f, "devices/dev-1.pem");
	d2 = load_cert(f, "devices/dev-2.pem");
	assert_int_equal(verify(ca, d1, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
	assert_int_equal(verify(ca, d2, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
	/* A device certificate is no server certificate. */
	assert_int_not_equal(verify(ca, d1, X509_PURPOSE_SSL_SERVER, NULL), X509_V_OK);
	cn_of(d1, cn, sizeof cn);
	assert_string_equal(cn, "dev-1");
	assert_int_equal(X509_check_ca(d1), 0);
	assert_true(X509_get_extended_key_usage(d1) & XKU_SSL_CLIENT);
	assert_false(X509_get_extended_key_usage(d1) & XKU_SSL_SERVER);
	serial_of(d1, s1, sizeof s1);
	serial_of(d2, s2, sizeof s2);
	assert_string_not_equal(s1, s2);
	/* 365 days by default, --days 30 when asked. */
	assert_true(X509_cmp_time(X509_get0_notAfter(d1), &(time_t){ time(NULL) + 364 * 86400L }) > 0);
	assert_true(X509_cmp_time(X509_get0_notAfter(d2), &(time_t){ time(NULL) + 31 * 86400L }) < 0);
	fp = fopen(key, "r");
	assert_non_null(fp);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(k);
	assert_int_equal(X509_check_private_key(d1, k), 1);
	assert_non_null(strstr(cert, "devices/dev-1.pem"));
	/* Issued again only with --force while the first is not revoked. */
	assert_int_equal(mote_pki_issue(f->dir, "dev-1", 0, 0, NULL, NULL, f->err, sizeof f->err),
			 MOTE_EEXIST);
	assert_int_equal(mote_pki_issue(f->dir, "dev-1", 0, 1, NULL, NULL, f->err, sizeof f->err),
			 MOTE_OK);
	EVP_PKEY_free(k);
	X509_free(d2);
	X509_free(d1);
	X509_free(ca);
}

static void test_issue_without_ca(void **state)
{
	struct fx *f = *state;

	assert_int_equal(mote_pki_issue(f->dir, "dev-1", 0, 0, NULL, NULL, f->err, sizeof f->err),
			 MOTE_ENOTFOUND);
	assert_non_null(strstr(f->err, "init"));
}

static void test_invalid_ids(void **state)
{
	struct fx *f = *state;
	char long_id[MOTE_PKI_ID_MAX + 2];
	static const char *const bad[] = { "", "a/b", "..", ".", "../x", "a b", "dev\n",
					   "d\xc3\xa9v", "a\\b", "*" };

	init_ok(f, 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(mote_pki_check_id(bad[i], f->err, sizeof f->err), MOTE_EINVAL);
		assert_int_equal(mote_pki_issue(f->dir, bad[i], 0, 0, NULL, NULL, f->err,
						sizeof f->err),
				 MOTE_EINVAL);
	}
	memset(long_id, 'a', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = 0;
	assert_int_equal(mote_pki_check_id(long_id, f->err, sizeof f->err), MOTE_EINVAL);
	long_id[MOTE_PKI_ID_MAX] = 0;
	assert_int_equal(mote_pki_check_id(long_id, f->err, sizeof f->err), MOTE_OK);
	assert_int_equal(mote_pki_issue(f->dir, "a-b_c.d:e;f9", 0, 0, NULL, NULL, f->err,
					sizeof f->err),
			 MOTE_OK);
	assert_false(exists(f, "x.pem") || exists(f, "x.key"));
}

/* A CSR for CN=cn over pub, signed by signer, asking for CA:TRUE. */
static void write_csr(const struct fx *f, const char *name, const char *cn, EVP_PKEY *pub,
		      EVP_PKEY *signer)
{
	char p[PATH_MAX];
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
						 "critical,CA:TRUE");
	FILE *fp;

	assert_non_null(bc);
	assert_true(sk_X509_EXTENSION_push(exts, bc) > 0);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
						    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_subject_name(req, n), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, pub), 1);
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	assert_true(X509_REQ_sign(req, signer, EVP_sha256()) > 0);
	path_of(p, f, name);
	fp = fopen(p, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509_REQ(fp, req), 1);
	fclose(fp);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	X509_REQ_free(req);
}

static void test_sign_csr(void **state)
{
	struct fx *f = *state;
	char csr[PATH_MAX], out[PATH_MAX], got[PATH_MAX], cn[256];
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *ca, *d;

	assert_non_null(k);
	assert_non_null(other);
	init_ok(f, 0);
	write_csr(f, "dev-9.csr", "dev-9", k, k);
	path_of(csr, f, "dev-9.csr");
	assert_int_equal(mote_pki_sign_csr(f->dir, csr, NULL, 0, 0, got, f->err, sizeof f->err),
			 MOTE_OK);
	assert_non_null(strstr(got, "devices/dev-9.pem"));
	assert_false(exists(f, "devices/dev-9.key"));
	ca = load_cert(f, "ca.pem");
	d = load_cert(f, "devices/dev-9.pem");
	assert_int_equal(verify(ca, d, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
	cn_of(d, cn, sizeof cn);
	assert_string_equal(cn, "dev-9");
	/* The requested CA:TRUE is ignored. */
	assert_int_equal(X509_check_ca(d), 0);
	assert_true(X509_get_extended_key_usage(d) & XKU_SSL_CLIENT);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(d), k), 1);
	X509_free(d);

	/* --out: written where asked. */
	path_of(out, f, "elsewhere.pem");
	assert_int_equal(mote_pki_sign_csr(f->dir, csr, out, 0, 1, got, f->err, sizeof f->err),
			 MOTE_OK);
	assert_string_equal(got, out);
	d = load_cert(f, "elsewhere.pem");
	assert_int_equal(verify(ca, d, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
	X509_free(d);

	/* Signed by a key other than the one it asks to certify. */
	write_csr(f, "forged.csr", "dev-10", k, other);
	path_of(csr, f, "forged.csr");
	assert_int_equal(mote_pki_sign_csr(f->dir, csr, NULL, 0, 0, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	assert_false(exists(f, "devices/dev-10.pem"));
	/* A CN that would escape devices/. */
	write_csr(f, "evil.csr", "../evil", k, k);
	path_of(csr, f, "evil.csr");
	assert_int_equal(mote_pki_sign_csr(f->dir, csr, NULL, 0, 0, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	assert_false(exists(f, "evil.pem"));
	/* Not a CSR at all. */
	path_of(csr, f, "ca.pem");
	assert_int_equal(mote_pki_sign_csr(f->dir, csr, NULL, 0, 0, NULL, f->err, sizeof f->err),
			 MOTE_EINVAL);
	X509_free(ca);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
}

static X509_CRL *load_crl(const struct fx *f, const char *name)
{
	char p[PATH_MAX];
	FILE *fp;
	X509_CRL *crl;

	path_of(p, f, name);
	fp = fopen(p, "r");
	assert_non_null(fp);
	crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(crl);
	return crl;
}

static int crl_lists(X509_CRL *crl, X509 *x)
{
	X509_REVOKED *r = NULL;

	return X509_CRL_get0_by_serial(crl, &r, X509_get0_serialNumber(x)) == 1;
}

static void test_revoke_and_crl(void **state)
{
	struct fx *f = *state;
	char serial[80], out[PATH_MAX];
	X509 *ca, *a, *b;
	X509_CRL *crl;
	int n;

	init_ok(f, 0);
	assert_int_equal(mote_pki_issue(f->dir, "a", 0, 0, NULL, NULL, f->err, sizeof f->err), MOTE_OK);
	assert_int_equal(mote_pki_issue(f->dir, "b", 0, 0, NULL, NULL, f->err, sizeof f->err), MOTE_OK);
	ca = load_cert(f, "ca.pem");
	a = load_cert(f, "devices/a.pem");
	b = load_cert(f, "devices/b.pem");

	/* The CRL from init is signed and empty. */
	crl = load_crl(f, "crl.pem");
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	assert_int_equal(verify(ca, a, X509_PURPOSE_SSL_CLIENT, crl), X509_V_OK);
	X509_CRL_free(crl);

	assert_int_equal(mote_pki_revoke(f->dir, "a", &n, f->err, sizeof f->err), MOTE_OK);
	assert_int_equal(n, 1);
	crl = load_crl(f, "crl.pem");
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	assert_true(X509_cmp_time(X509_CRL_get0_nextUpdate(crl), &(time_t){ time(NULL) + 6 * 86400L }) > 0);
	assert_true(crl_lists(crl, a));
	assert_false(crl_lists(crl, b));
	assert_int_equal(verify(ca, a, X509_PURPOSE_SSL_CLIENT, crl), X509_V_ERR_CERT_REVOKED);
	assert_int_equal(verify(ca, b, X509_PURPOSE_SSL_CLIENT, crl), X509_V_OK);
	X509_CRL_free(crl);

	/* Unknown and duplicate revocations are refused. */
	assert_int_equal(mote_pki_revoke(f->dir, "a", &n, f->err, sizeof f->err), MOTE_EEXIST);
	assert_int_equal(mote_pki_revoke(f->dir, "nobody", &n, f->err, sizeof f->err),
			 MOTE_ENOTFOUND);

	/* By serial, in lowercase with leading zeros. */
	serial_of(b, serial, sizeof serial);
	for (char *p = serial; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	memmove(serial + 2, serial, strlen(serial) + 1);
	serial[0] = serial[1] = '0';
	assert_int_equal(mote_pki_revoke(f->dir, serial, &n, f->err, sizeof f->err), MOTE_OK);
	assert_int_equal(mote_pki_revoke(f->dir, serial, &n, f->err, sizeof f->err), MOTE_EEXIST);

	/* crl --out writes the same list elsewhere. */
	path_of(out, f, "other-crl.pem");
	assert_int_equal(mote_pki_crl(f->dir, out, 1, f->err, sizeof f->err), MOTE_OK);
	crl = load_crl(f, "other-crl.pem");
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	assert_true(crl_lists(crl, a) && crl_lists(crl, b));
	assert_int_equal(verify(ca, b, X509_PURPOSE_SSL_CLIENT, crl), X509_V_ERR_CERT_REVOKED);
	X509_CRL_free(crl);

	/* A revoked device may be issued a new certificate without --force. */
	assert_int_equal(mote_pki_issue(f->dir, "a", 0, 0, NULL, NULL, f->err, sizeof f->err), MOTE_OK);
	X509_free(b);
	X509_free(a);
	X509_free(ca);
}

static void test_malformed_index(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX];
	FILE *fp;

	init_ok(f, 0);
	path_of(p, f, "index.txt");
	fp = fopen(p, "a");
	assert_non_null(fp);
	fputs("X\tnot a line\n", fp);
	fclose(fp);
	assert_int_equal(mote_pki_issue(f->dir, "d", 0, 0, NULL, NULL, f->err, sizeof f->err),
			 MOTE_EMALFORMED);
	assert_non_null(strstr(f->err, "index.txt:3"));
	assert_int_equal(mote_pki_revoke(f->dir, "d", NULL, f->err, sizeof f->err),
			 MOTE_EMALFORMED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_files_and_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_refuses_overwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_bad_san, setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue_without_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_csr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_and_crl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_index, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
