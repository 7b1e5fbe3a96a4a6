/*
 * pki_int.h - shared by the files of src/pki/; nothing outside sees it.
 */
#ifndef MOTE_PKI_INT_H
#define MOTE_PKI_INT_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "pki/pki.h"

/* One line of DIR/index.txt (format in store.c and docs/pki.md). */
struct pki_entry {
	char status;     /* 'V' valid, 'R' revoked */
	char serial[68]; /* uppercase hex, no leading zeros (BN_bn2hex) */
	char kind[8];    /* "hub" or "device" */
	char id[MOTE_PKI_ID_MAX + 1];
	long long not_after;  /* unix seconds */
	long long revoked_at; /* unix seconds, 0 when valid */
};

struct pki_index {
	struct pki_entry *e;
	size_t n, cap;
};

enum pki_profile { PKI_CA, PKI_HUB, PKI_DEVICE };

/* store.c */
void pki_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like pki_errf, then appends ": " and the oldest queued OpenSSL error. */
void pki_sslerrf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum mote_err pki_path(char *out, const char *dir, const char *a, const char *b,
		       char *err, size_t errlen);
/* Writes to a temporary name created with `mode` and renames over path. */
enum mote_err pki_write_file(const char *path, const void *data, size_t len, int mode,
			     char *err, size_t errlen);
enum mote_err pki_mkdir(const char *path, char *err, size_t errlen);
enum mote_err pki_lock(const char *dir, int *fd, char *err, size_t errlen);
void pki_unlock(int fd);
/* A missing index is an empty one. idx owns its array; free with pki_index_free. */
enum mote_err pki_index_load(const char *dir, struct pki_index *idx, char *err,
			     size_t errlen);
enum mote_err pki_index_save(const char *dir, const struct pki_index *idx, char *err,
			     size_t errlen);
enum mote_err pki_index_add(struct pki_index *idx, const struct pki_entry *e, char *err,
			    size_t errlen);
void pki_index_free(struct pki_index *idx);

/* cert.c */
enum mote_err pki_keygen(EVP_PKEY **out, char *err, size_t errlen);
enum mote_err pki_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen);
enum mote_err pki_write_cert(const char *path, X509 *cert, char *err, size_t errlen);
/* Loads DIR/ca.pem and DIR/ca.key; the caller frees both on success. */
enum mote_err pki_load_ca(const char *dir, X509 **cert, EVP_PKEY **key, char *err,
			  size_t errlen);
/*
 * A certificate for `pub` named CN=cn, signed by issuer/issuer_key (issuer NULL:
 * self-signed by issuer_key). sans: an OpenSSL subjectAltName value or NULL.
 * The serial (hex) goes to serial_hex; *out is the caller's on success.
 */
enum mote_err pki_make_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pub,
			    const char *cn, int days, enum pki_profile profile,
			    const char *sans, X509 **out, char serial_hex[68],
			    char *err, size_t errlen);
/* Writes a v2 CRL of idx's revoked entries, signed by the CA, to path. */
enum mote_err pki_write_crl(const char *path, X509 *ca, EVP_PKEY *ca_key,
			    const struct pki_index *idx, int days, char *err,
			    size_t errlen);

#endif
