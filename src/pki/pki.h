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

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define MOTE_PKI_ID_MAX 128
#define MOTE_PKI_CA_DAYS 3650
#define MOTE_PKI_HUB_DAYS 825
#define MOTE_PKI_DEVICE_DAYS 365
#define MOTE_PKI_CRL_DAYS 7

/* Claims (provisioning by claim, docs/pki.md and docs/security.md). */
#define MOTE_PKI_CLAIM_MAX 64      /* claim name length */
#define MOTE_PKI_PREFIX_MAX 63     /* id prefix length (an id adds at least one) */
#define MOTE_PKI_DEVID_MAX 64      /* ids a claim may mint: [A-Za-z0-9._-]{1,64} */
#define MOTE_PKI_CLAIM_DAYS 30     /* default template (and certificate) lifetime */
#define MOTE_PKI_CLAIM_MAX_DEVICES 1000000
#define MOTE_PKI_CSR_MAX 16384     /* largest PEM CSR accepted from a device */
#define MOTE_PKI_CLAIM_CN "claim:"                /* CN = "claim:" NAME */
#define MOTE_PKI_CLAIM_URI "urn:mote:claim:"      /* URI SAN = this NAME */
#define MOTE_PKI_DEV_URI "urn:mote:dev:"          /* device certs: URI SAN = this ID */

struct mote_pki_init_opts {
	const char *const *sans; /* extra "DNS:name" / "IP:addr" for hub.pem */
	size_t nsans;
	int force;    /* replace an existing CA (and hub certificate) */
	int ca_days;  /* 0 = MOTE_PKI_CA_DAYS */
	int hub_days; /* 0 = MOTE_PKI_HUB_DAYS */
};

/* A device id is 1..128 characters of [A-Za-z0-9-_.:;], not "." or "..", and
 * does not begin with "claim:" (the CN of claim certificates). */
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
 * The device's side of provisioning by claim: a new key pair (EC P-256, as
 * mote_pki_issue makes) written to key_path (0600, replacing the file), and
 * a PEM certificate request for CN=id signed with it, in *csr (NUL-ended,
 * *csr_len bytes without the NUL; the caller frees it). MOTE_EINVAL for an
 * id that is not a valid device id.
 */
enum mote_err mote_pki_make_csr(const char *id, const char *key_path, char **csr,
				size_t *csr_len, char *err, size_t errlen);
/* The hub's answer to that request (PEM: the certificate, then the CA) saved
 * to path (0644, replacing it) once its first certificate names CN=id. */
enum mote_err mote_pki_save_cert(const char *path, const char *id, const void *pem, size_t len,
				 char *err, size_t errlen);

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

/*
 * Provisioning by claim. A claim is a template in DIR/claims/NAME.conf (id
 * prefix, most devices, expiry, validity of the device certificates) and a
 * shared client certificate (DIR/claims/NAME.pem/.key, CN claim:NAME, URI SAN
 * urn:mote:claim:NAME, valid until the template expires) that lets a device
 * ask the hub for its own certificate. The devices a claim issued are the
 * index lines whose CLAIM field names it; every one counts towards max, even
 * once revoked.
 */
struct mote_pki_claim_opts {
	const char *prefix; /* ids the claim may mint begin with it */
	unsigned max;       /* 1..MOTE_PKI_CLAIM_MAX_DEVICES */
	int days;           /* template lifetime; 0 = MOTE_PKI_CLAIM_DAYS */
	int device_days;    /* validity of each device certificate; 0 = 365 */
	int force;          /* replace an existing claim (revokes its certificate) */
};

/* A claim as `mote pki claims` shows it. */
struct mote_pki_claim_info {
	char name[MOTE_PKI_CLAIM_MAX + 1];
	char prefix[MOTE_PKI_PREFIX_MAX + 1];
	unsigned max;
	unsigned issued;      /* device certificates issued through it */
	long long expires;    /* unix seconds */
	int device_days;
	bool revoked;         /* no unrevoked claim certificate is left */
};

/* A claim name: 1..64 of [A-Za-z0-9._-], not "." or "..". */
enum mote_err mote_pki_check_claim_name(const char *name, char *err, size_t errlen);
/* An id a claim may mint (the hub's device ids, a valid topic level):
 * 1..64 of [A-Za-z0-9._-], not "." or "..". */
enum mote_err mote_pki_check_device_id(const char *id, char *err, size_t errlen);

/*
 * Creates claim `name`: the template, a key (0600) and certificate, and the
 * certificate's index line. MOTE_EEXIST if it exists, unless o->force (then
 * the old claim certificate is revoked and crl.pem rewritten; devices it
 * issued keep counting). Paths written go to cert_path/key_path (PATH_MAX
 * bytes each, or NULL).
 */
enum mote_err mote_pki_claim(const char *dir, const char *name,
			     const struct mote_pki_claim_opts *o, char *cert_path, char *key_path,
			     char *err, size_t errlen);

/* Every claim of DIR, by name. *out (malloc'd, the caller frees; NULL when
 * *n is 0) on success. */
enum mote_err mote_pki_claims(const char *dir, struct mote_pki_claim_info **out, size_t *n,
			      char *err, size_t errlen);

/*
 * May a client holding the certificate of claim `name` connect as `id`?
 * Reads the template and index without the lock (both are replaced whole),
 * so it is cheap enough for a CONNECT. MOTE_OK, or a refusal with a reason in
 * err that may be shown to the device:
 *   MOTE_ENOTFOUND no such claim; MOTE_EDENIED expired, revoked, quota used,
 *   id already issued; MOTE_EINVAL id invalid or without the prefix.
 * Other errors (MOTE_EIO, MOTE_EMALFORMED, ...) are the hub's trouble; their
 * message may name files: log it, do not send it.
 */
enum mote_err mote_pki_claim_check(const char *dir, const char *name, const char *id,
				   char *err, size_t errlen);

/*
 * A device holding claim `name`, connected as `id`, asks for a certificate
 * for the key of the PEM CSR csr[csr_len] (no NUL needed). Under DIR/.lock:
 * the checks of mote_pki_claim_check again, then the CSR: at most
 * MOTE_PKI_CSR_MAX bytes, one PEM request whose signature verifies, subject
 * exactly CN=id, key EC P-256, Ed25519 or RSA of at least 2048 bits. Then a
 * device certificate as `mote pki issue` makes it (the template's validity)
 * is written to DIR/devices/ID.pem and recorded with the claim's name.
 * On success *pem (malloc'd, NUL-terminated, the caller frees) holds that
 * certificate followed by the CA certificate, *pem_len its length, and
 * serial (68 bytes, or NULL) its serial. Refusals are MOTE_ENOTFOUND,
 * MOTE_EDENIED and MOTE_EINVAL with a sentence for the device, as above.
 */
enum mote_err mote_pki_claim_sign(const char *dir, const char *name, const char *id,
				  const void *csr, size_t csr_len, char **pem, size_t *pem_len,
				  char serial[68], char *err, size_t errlen);

#endif
