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
	char claim[MOTE_PKI_CLAIM_MAX + 1]; /* the claim that asked for it, "" if none */
};

struct pki_index {
	struct pki_entry *e;
	size_t n, cap;
};

enum pki_profile { PKI_CA, PKI_HUB, PKI_DEVICE };

/* The CA and its index, loaded under the PKI's lock: what every command
 * that issues or revokes works on. pki_ca_close undoes any part of
 * pki_ca_open (initialize lock to -1, the rest zero). */
struct pki_ca {
	int lock;
	X509 *ca;
	EVP_PKEY *key;
	struct pki_index idx;
};

/* pki.c */
enum mote_err pki_ca_open(const char *dir, struct pki_ca *c, char *err, size_t errlen);
void pki_ca_close(struct pki_ca *c);
/*
 * With c open: signs a device certificate for pub (CN=id, URI SAN
 * urn:mote:dev:id), writes it (and key, when given) under DIR/devices/ (or
 * to out), adds its index line (naming claim, when given) and saves the
 * index. *cert_out, when asked for, is the caller's on success.
 */
enum mote_err pki_issue_locked(struct pki_ca *c, const char *dir, const char *id,
			       EVP_PKEY *pub, EVP_PKEY *key, const char *out, int days,
			       const char *claim, char *cert_path, char *key_path, X509 **cert_out,
			       char *err, size_t errlen);
/* The one CN of the CSR's subject, as UTF-8 into id (checked for length and
 * NUL bytes only). MOTE_EINVAL with a sentence otherwise. */
enum mote_err pki_csr_cn(X509_REQ *req, char id[MOTE_PKI_ID_MAX + 1], char *err,
			 size_t errlen);

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
