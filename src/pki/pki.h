/*
 * pki.h - the fleet certificate authority of `mote pki` (see docs/pki.md).
 *
 * A PKI lives in one directory: ca.pem/ca.key (the fleet CA), hub.pem/hub.key
 * (the hub's TLS server certificate), devices/ID.pem (+ ID.key when mote made
 * the key), index.txt (every certificate issued, its status) and crl.pem.
 * Private keys are created 0600 and never exist with a wider mode; every file
 * is written to a temporary name and renamed, so a crash leaves the old file
 * or the new one, never half of one. Commands that change the index hold an
 * exclusive flock on DIR/.lock.
 *
 * Every function returns MOTE_OK or an error, and on error writes a sentence
 * for the operator (what failed and what to do) into err[errlen].
 * Errors: MOTE_EINVAL bad input (device id, CSR, SAN), MOTE_EEXIST something
 * would be overwritten, MOTE_ENOTFOUND unknown device/serial or missing CA,
 * MOTE_EIO a file could not be read or written, MOTE_EPROTO an OpenSSL failure.
 *
 * Threading: no state between calls; safe from any thread on distinct dirs.
 */
#ifndef MOTE_PKI_H
#define MOTE_PKI_H

#include <stddef.h>

#include "base/err.h"

#define MOTE_PKI_ID_MAX 128
#define MOTE_PKI_CA_DAYS 3650
#define MOTE_PKI_HUB_DAYS 825
#define MOTE_PKI_DEVICE_DAYS 365
#define MOTE_PKI_CRL_DAYS 7

struct mote_pki_init_opts {
	const char *const *sans; /* extra "DNS:name" / "IP:addr" for hub.pem */
	size_t nsans;
	int force;    /* replace an existing CA (and hub certificate) */
	int ca_days;  /* 0 = MOTE_PKI_CA_DAYS */
	int hub_days; /* 0 = MOTE_PKI_HUB_DAYS */
};

/* A device id is 1..128 characters of [A-Za-z0-9-_.:;], and not "." or "..". */
enum mote_err mote_pki_check_id(const char *id, char *err, size_t errlen);

/* Creates dir (0700) if missing, the CA, the hub certificate and the index. */
enum mote_err mote_pki_init(const char *dir, const struct mote_pki_init_opts *o,
			    char *err, size_t errlen);

/*
 * A new key and client certificate for device `id`, valid `days` (0 = default).
 * Refused (MOTE_EEXIST) while the device holds a certificate that is not
 * revoked, unless force. The paths written go to cert_path/key_path (may be
 * NULL; each at least PATH_MAX bytes when given).
 */
enum mote_err mote_pki_issue(const char *dir, const char *id, int days, int force,
			     char *cert_path, char *key_path, char *err, size_t errlen);

/*
 * Signs the PEM CSR in csr_file after checking its signature; the device id is
 * its CN. Requested extensions are ignored. Writes to out (NULL: DIR/devices/
 * ID.pem) and copies the path written into cert_path (PATH_MAX bytes, or NULL).
 * The device-already-holds-a-certificate rule is the one of mote_pki_issue.
 */
enum mote_err mote_pki_sign_csr(const char *dir, const char *csr_file, const char *out,
				int days, int force, char *cert_path, char *err, size_t errlen);

/*
 * Revokes every unrevoked certificate of device `what`, or else the one with
 * serial `what` (hex, as in index.txt and `openssl x509 -serial`), then writes
 * DIR/crl.pem. *count (may be NULL) receives how many were revoked.
 */
enum mote_err mote_pki_revoke(const char *dir, const char *what, int *count,
			      char *err, size_t errlen);

/* Writes a CRL of every revoked certificate to out (NULL: DIR/crl.pem). */
enum mote_err mote_pki_crl(const char *dir, const char *out, int days, char *err,
			   size_t errlen);

#endif
