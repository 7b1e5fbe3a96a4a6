/*
 * cert.c - keys, certificates and CRLs with OpenSSL 3.
 *
 * Profiles (docs/pki.md has the table):
 *   CA      self-signed, basicConstraints critical CA:TRUE, keyUsage critical
 *           keyCertSign+cRLSign.
 *   hub     CA:FALSE, keyUsage digitalSignature, EKU serverAuth, subjectAltName.
 *   device  CA:FALSE, keyUsage digitalSignature, EKU clientAuth.
 * Serials are 128 random bits: unguessable, so no serial counter to keep
 * consistent across concurrent or restored PKI directories. notBefore is five
 * minutes in the past so that a device whose clock lags a little accepts a
 * certificate issued just now.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "pki/pki_int.h"

#define BACKDATE_SECONDS 300

enum mote_err pki_keygen(EVP_PKEY **out, char *err, size_t errlen)
{
	*out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!*out) {
		pki_sslerrf(err, errlen, "cannot generate an EC P-256 key");
		return MOTE_EPROTO;
	}
	return MOTE_OK;
}

static enum mote_err write_bio(const char *path, BIO *b, int mode, char *err, size_t errlen)
{
	char *data = NULL;
	long len = BIO_get_mem_data(b, &data);

	if (len <= 0) {
		pki_sslerrf(err, errlen, "cannot encode %s", path);
		return MOTE_EPROTO;
	}
	return pki_write_file(path, data, (size_t)len, mode, err, errlen);
}

enum mote_err pki_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
	enum mote_err rc = MOTE_EPROTO;
	BIO *b = BIO_new(BIO_s_secmem());

	if (!b || !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		pki_sslerrf(err, errlen, "cannot encode the key for %s", path);
	else
		rc = write_bio(path, b, 0600, err, errlen);
	BIO_free(b);
	return rc;
}

enum mote_err pki_write_cert(const char *path, X509 *cert, char *err, size_t errlen)
{
	enum mote_err rc = MOTE_EPROTO;
	BIO *b = BIO_new(BIO_s_mem());

	if (!b || !PEM_write_bio_X509(b, cert))
		pki_sslerrf(err, errlen, "cannot encode the certificate for %s", path);
	else
		rc = write_bio(path, b, 0644, err, errlen);
	BIO_free(b);
	return rc;
}

enum mote_err pki_load_ca(const char *dir, X509 **cert, EVP_PKEY **key, char *err,
			  size_t errlen)
{
	char cpath[PATH_MAX], kpath[PATH_MAX];
	enum mote_err rc;
	BIO *b = NULL;

	*cert = NULL;
	*key = NULL;
	rc = pki_path(cpath, dir, "ca.pem", NULL, err, errlen);
	if (!rc)
		rc = pki_path(kpath, dir, "ca.key", NULL, err, errlen);
	if (rc)
		return rc;
	rc = MOTE_ENOTFOUND;
	b = BIO_new_file(cpath, "r");
	if (!b || !(*cert = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		pki_sslerrf(err, errlen,
			    "cannot read the CA certificate %s (run 'mote pki --dir %s init' first)",
			    cpath, dir);
		goto out;
	}
	BIO_free(b);
	b = BIO_new_file(kpath, "r");
	if (!b || !(*key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL))) {
		pki_sslerrf(err, errlen, "cannot read the CA key %s", kpath);
		goto out;
	}
	if (X509_check_private_key(*cert, *key) != 1) {
		pki_sslerrf(err, errlen, "%s does not belong to %s", kpath, cpath);
		rc = MOTE_EINVAL;
		goto out;
	}
	rc = MOTE_OK;
out:
	BIO_free(b);
	if (rc) {
		X509_free(*cert);
		EVP_PKEY_free(*key);
		*cert = NULL;
		*key = NULL;
	}
	return rc;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1);

	X509_EXTENSION_free(ext);
	return ok;
}

enum mote_err pki_make_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pub,
			    const char *cn, int days, enum pki_profile profile,
			    const char *sans, X509 **out, char serial_hex[68],
			    char *err, size_t errlen)
{
	enum mote_err rc = MOTE_EPROTO;
	unsigned char rnd[16];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;
	X509_NAME *name = NULL;
	char *hex = NULL;
	X509V3_CTX ctx;
	X509 *x = X509_new();
	int ok;

	*out = NULL;
	if (!x)
		goto ssl_fail;
	do {
		if (RAND_bytes(rnd, sizeof rnd) != 1)
			goto ssl_fail;
	} while (rnd[0] == 0); /* keeps every serial exactly 128 bits long */
	bn = BN_bin2bn(rnd, sizeof rnd, NULL);
	sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	hex = bn ? BN_bn2hex(bn) : NULL;
	name = X509_NAME_new();
	if (!sn || !hex || !name || strlen(hex) >= 68 ||
	    !X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, sn) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) ||
	    !X509_set_pubkey(x, pub))
		goto ssl_fail;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (profile == PKI_CA) {
		ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") &&
		     add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") &&
		     add_ext(x, &ctx, NID_subject_key_identifier, "hash");
	} else {
		ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
		     add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") &&
		     add_ext(x, &ctx, NID_ext_key_usage,
			     profile == PKI_HUB ? "serverAuth" : "clientAuth") &&
		     add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
		     add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
		if (ok && sans)
			ok = add_ext(x, &ctx, NID_subject_alt_name, sans);
	}
	if (!ok) {
		pki_sslerrf(err, errlen, "cannot add the extensions of CN=%s", cn);
		rc = sans ? MOTE_EINVAL : MOTE_EPROTO;
		goto out;
	}
	if (!X509_sign(x, issuer_key, EVP_sha256()))
		goto ssl_fail;
	strcpy(serial_hex, hex);
	*out = x;
	x = NULL;
	rc = MOTE_OK;
	goto out;
ssl_fail:
	pki_sslerrf(err, errlen, "cannot build the certificate for CN=%s", cn);
out:
	X509_free(x);
	X509_NAME_free(name);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	OPENSSL_free(hex);
	return rc;
}

static int add_revoked(X509_CRL *crl, const struct pki_entry *e)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;
	ASN1_TIME *t = NULL;
	X509_REVOKED *r = X509_REVOKED_new();
	int ok = 0;

	if (!r || !BN_hex2bn(&bn, e->serial) || !(sn = BN_to_ASN1_INTEGER(bn, NULL)) ||
	    !(t = ASN1_TIME_set(NULL, (time_t)e->revoked_at)) ||
	    !X509_REVOKED_set_serialNumber(r, sn) || !X509_REVOKED_set_revocationDate(r, t))
		goto out;
	if (X509_CRL_add0_revoked(crl, r)) {
		r = NULL; /* the CRL owns it now */
		ok = 1;
	}
out:
	X509_REVOKED_free(r);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	return ok;
}

enum mote_err pki_write_crl(const char *path, X509 *ca, EVP_PKEY *ca_key,
			    const struct pki_index *idx, int days, char *err,
			    size_t errlen)
{
	enum mote_err rc = MOTE_EPROTO;
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509_EXTENSION *akid = NULL;
	BIO *b = NULL;
	X509V3_CTX ctx;

	if (!crl || !t || !num || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) ||
	    !X509_gmtime_adj(t, 0) || !X509_CRL_set1_lastUpdate(crl, t) ||
	    !X509_time_adj_ex(t, days, 0, NULL) || !X509_CRL_set1_nextUpdate(crl, t))
		goto ssl_fail;
	for (size_t i = 0; i < idx->n; i++)
		if (idx->e[i].status == 'R' && !add_revoked(crl, &idx->e[i]))
			goto ssl_fail;
	X509_CRL_sort(crl);
	X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
	akid = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	/* The time as CRL number: increases from one CRL to the next without a
	 * counter file to keep. */
	if (!akid || !X509_CRL_add_ext(crl, akid, -1) ||
	    !ASN1_INTEGER_set_int64(num, (int64_t)time(NULL)) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) ||
	    !X509_CRL_sign(crl, ca_key, EVP_sha256()))
		goto ssl_fail;
	b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio_X509_CRL(b, crl))
		goto ssl_fail;
	rc = write_bio(path, b, 0644, err, errlen);
	goto out;
ssl_fail:
	pki_sslerrf(err, errlen, "cannot build the CRL");
out:
	BIO_free(b);
	X509_EXTENSION_free(akid);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return rc;
}
