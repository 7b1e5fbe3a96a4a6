/*
 * request.c - the device's side of provisioning by claim: its own key pair
 * and the certificate request it sends to the hub (docs/security.md,
 * "Provisioning by claim"). The private key goes to a file at once and
 * never travels.
 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"
#include "pki/pki_int.h"

/* req signed by key, as PEM in a new buffer (the caller frees *out). */
static enum mote_err csr_pem(X509_REQ *req, char **out, size_t *len, char *err, size_t errlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	long n;

	if (!b || !PEM_write_bio_X509_REQ(b, req) || (n = BIO_get_mem_data(b, &data)) <= 0) {
		BIO_free(b);
		pki_sslerrf(err, errlen, "cannot encode the certificate request");
		return MOTE_EPROTO;
	}
	*out = malloc((size_t)n + 1);
	if (!*out) {
		BIO_free(b);
		pki_errf(err, errlen, "out of memory");
		return MOTE_ENOMEM;
	}
	memcpy(*out, data, (size_t)n);
	(*out)[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return MOTE_OK;
}

enum mote_err mote_pki_make_csr(const char *id, const char *key_path, char **csr,
				size_t *csr_len, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	enum mote_err rc;

	*csr = NULL;
	*csr_len = 0;
	if ((rc = mote_pki_check_id(id, err, errlen)) != MOTE_OK)
		return rc;
	if ((rc = pki_keygen(&key, err, errlen)) != MOTE_OK)
		return rc;
	rc = MOTE_EPROTO;
	req = X509_REQ_new();
	if (!req || !X509_REQ_set_version(req, 0) ||
	    !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
					(const unsigned char *)id, -1, -1, 0) ||
	    !X509_REQ_set_pubkey(req, key) || X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
		pki_sslerrf(err, errlen, "cannot make a certificate request for %s", id);
		goto out;
	}
	/* The key first: a request whose key is lost is of no use. */
	if ((rc = pki_write_key(key_path, key, err, errlen)) != MOTE_OK)
		goto out;
	rc = csr_pem(req, csr, csr_len, err, errlen);
out:
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

enum mote_err mote_pki_save_cert(const char *path, const char *id, const void *pem, size_t len,
				 char *err, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(pem, len > 65536 ? -1 : (int)len);
	X509 *cert = NULL;
	char cn[256] = "";
	enum mote_err rc = MOTE_EPROTO;

	if (len == 0 || len > 65536 || !b) {
		pki_errf(err, errlen, "the answer is not a certificate (%zu bytes)", len);
		goto out;
	}
	cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (!cert) {
		pki_sslerrf(err, errlen, "the answer is not a PEM certificate");
		goto out;
	}
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
				      sizeof cn) < 0 ||
	    strcmp(cn, id) != 0) {
		pki_errf(err, errlen, "the certificate names \"%.64s\", not %s", cn, id);
		goto out;
	}
	rc = pki_write_file(path, pem, len, 0644, err, errlen);
out:
	X509_free(cert);
	BIO_free(b);
	return rc;
}
