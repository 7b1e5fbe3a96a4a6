/*
 * tls.c - the TLS server context and the server-side TLS net_stream; see
 * tls.h.
 *
 * The SSL_CTX is rebuilt, not edited, when a CRL is reloaded: handshakes on
 * other threads read the old one's certificate store while the new one is
 * built, and SSL_CTX_set_cert_store on a live context would race them. Each
 * new SSL takes its own reference on the context current at accept, so the
 * old context lives on as long as connections made with it do.
 *
 * Writing follows OpenSSL's retry rule (after SSL_ERROR_WANT_WRITE the same
 * buffer must be offered again): bytes from writev are copied into the
 * stream's own record buffer and only that buffer is ever given to
 * SSL_write. Once copied they count as written for the caller; while the
 * record waits for the socket, want_write asks the owner to call flush.
 */
#include "tls/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "tls/tls_int.h"

#define REC_MAX 16384 /* one TLS record of plaintext */

/* TLS 1.2: forward secrecy (ECDHE) and AEAD only. */
static const char CIPHERS_12[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
				 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char SUITES_13[] =
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

struct tls_server {
	struct tls_server_opts opts;
	STACK_OF(X509) *cas;   /* the CA file's certificates */
	X509 *cert;            /* the hub's */
	STACK_OF(X509) *chain; /* intermediates after it in the cert file */
	EVP_PKEY *key;
	pthread_mutex_t mu;    /* guards ctx and crl */
	SSL_CTX *ctx;          /* current: new connections take a reference */
	X509_CRL *crl;         /* current, NULL when none */
};

struct tls_client {
	SSL_CTX *ctx;
};

struct tls_conn {
	SSL *ssl;
	struct tls_server *srv; /* NULL on the client side */
	bool done;            /* handshake completed */
	bool dead;            /* fatal error: no close_notify */
	bool read_wants_write;
	uint8_t *rec;         /* plaintext accepted, not yet taken by SSL_write */
	size_t rec_len;
	char *cn, *uri, *serial;
	struct net_peer_cert pc;
	char fault[200];
};

/* ---- errors for the operator --------------------------------------------- */

/* The newest OpenSSL reason on this thread's queue (and clears the queue). */
static const char *ossl_reason(char *buf, size_t cap)
{
	unsigned long e, last = 0;
	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0) {
		snprintf(buf, cap, "no detail from OpenSSL");
		return buf;
	}
	const char *r = ERR_reason_error_string(last);
	if (r)
		snprintf(buf, cap, "%s", r);
	else
		ERR_error_string_n(last, buf, cap);
	return buf;
}

/*
 * OpenSSL fills a certificate's cache of decoded extensions (key
 * identifiers, key usage) on first use, writing under the certificate's lock
 * while other threads may read it without one: with several loop threads
 * verifying against the same CA at once, that is a data race inside
 * OpenSSL 3.0. Filling the cache while only one thread knows the
 * certificate removes it.
 */
static void warm(X509 *x)
{
	if (x)
		X509_check_purpose(x, -1, 0);
}

static void warm_store(X509_STORE *st)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(st);
	for (int i = 0; objs && i < sk_X509_OBJECT_num(objs); i++)
		warm(X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i)));
}

static FILE *open_pem(const char *what, const char *path, char *errbuf, size_t errcap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		snprintf(errbuf, errcap, "%s %s: cannot open: %s%s", what, path, strerror(errno),
			 errno == ENOENT ? " (make one with `mote pki init --dir DIR`)" : "");
	return f;
}

static STACK_OF(X509) *read_certs(const char *what, const char *path, char *errbuf, size_t errcap)
{
	FILE *f = open_pem(what, path, errbuf, errcap);
	if (!f)
		return NULL;
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;
	while (sk && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		warm(x);
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	}
	fclose(f);
	ERR_clear_error(); /* the end of the file reads as an error */
	if (!sk || sk_X509_num(sk) == 0) {
		snprintf(errbuf, errcap, "%s %s: no PEM certificate in it (expected "
			 "-----BEGIN CERTIFICATE-----)", what, path);
		sk_X509_pop_free(sk, X509_free);
		return NULL;
	}
	return sk;
}

/* "expired on ..." / "not valid before ..." or NULL when valid now. */
static bool validity_problem(X509 *x, char *buf, size_t cap)
{
	const ASN1_TIME *nb = X509_get0_notBefore(x), *na = X509_get0_notAfter(x);
	BIO *m = BIO_new(BIO_s_mem());
	bool bad = false;
	if (!m)
		return false;
	if (X509_cmp_current_time(na) < 0) {
		BIO_puts(m, "expired on ");
		ASN1_TIME_print(m, na);
		bad = true;
	} else if (X509_cmp_current_time(nb) > 0) {
		BIO_puts(m, "not valid before ");
		ASN1_TIME_print(m, nb);
		bad = true;
	}
	int n = BIO_read(m, buf, (int)cap - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(m);
	return bad;
}

static X509_CRL *read_crl(const struct tls_server *s, const char *path, char *errbuf,
			  size_t errcap)
{
	FILE *f = open_pem("--tls-crl", path, errbuf, errcap);
	if (!f)
		return NULL;
	X509_CRL *crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
	fclose(f);
	if (!crl) {
		char r[120];
		snprintf(errbuf, errcap, "--tls-crl %s: not a PEM certificate revocation list (%s)",
			 path, ossl_reason(r, sizeof r));
		return NULL;
	}
	/* A list not signed by our CA would be ignored by verification (or
	 * fail every client): refuse it here, where the operator sees why. */
	bool signed_by_ca = false;
	for (int i = 0; i < sk_X509_num(s->cas) && !signed_by_ca; i++) {
		X509 *ca = sk_X509_value(s->cas, i);
		EVP_PKEY *pub = X509_get0_pubkey(ca);
		signed_by_ca = X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0 &&
			       pub && X509_CRL_verify(crl, pub) == 1;
	}
	ERR_clear_error();
	if (!signed_by_ca) {
		snprintf(errbuf, errcap, "--tls-crl %s: not signed by the CA in --tls-ca (use the CRL "
			 "of the same PKI: `mote pki --dir DIR crl` writes DIR/crl.pem)", path);
		X509_CRL_free(crl);
		return NULL;
	}
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	if (next && X509_cmp_current_time(next) < 0)
		MOTE_WARN("tls", "event=crl_expired file=%s why=\"its next update is past: every "
				 "client will be refused until a fresh CRL is loaded\" hint=\"mote pki "
				 "--dir DIR crl\"", path);
	return crl;
}

/* ---- the context ------------------------------------------------------------- */

static SSL_CTX *build_ctx(struct tls_server *s, X509_CRL *crl, char *errbuf, size_t errcap)
{
	char r[120];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	if (!ctx || !store || !names)
		goto oom;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Resumption would skip the certificate (and CRL) check. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	/* Idle connections give their 34 KiB of record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, CIPHERS_12) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, SUITES_13) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
		snprintf(errbuf, errcap, "TLS: cipher configuration refused: %s",
			 ossl_reason(r, sizeof r));
		goto fail;
	}
	for (int i = 0; i < sk_X509_num(s->cas); i++) {
		X509 *ca = sk_X509_value(s->cas, i);
		X509_NAME *n = X509_NAME_dup(X509_get_subject_name(ca));
		if (X509_STORE_add_cert(store, ca) != 1 || !n || !sk_X509_NAME_push(names, n)) {
			X509_NAME_free(n);
			goto oom;
		}
	}
	if (crl) {
		if (X509_STORE_add_crl(store, crl) != 1)
			goto oom;
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	SSL_CTX_set_cert_store(ctx, store);
	store = NULL;
	/* Tells clients which CA to pick a certificate from. */
	SSL_CTX_set_client_CA_list(ctx, names);
	names = NULL;
	SSL_CTX_set_verify(ctx,
			   SSL_VERIFY_PEER |
				   (s->opts.client_cert_optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
			   NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	if (SSL_CTX_use_certificate(ctx, s->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, s->key) != 1)
		goto bad_pair;
	for (int i = 0; s->chain && i < sk_X509_num(s->chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(s->chain, i)) != 1)
			goto oom;
	if (SSL_CTX_check_private_key(ctx) != 1)
		goto bad_pair;
	return ctx;
bad_pair:
	snprintf(errbuf, errcap, "--tls-key does not match the certificate in --tls-cert (%s): "
		 "use the key made with that certificate", ossl_reason(r, sizeof r));
	goto fail;
oom:
	snprintf(errbuf, errcap, "TLS: out of memory setting up the server context");
fail:
	ERR_clear_error();
	X509_STORE_free(store);
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_server_free(struct tls_server *s)
{
	if (!s)
		return;
	SSL_CTX_free(s->ctx);
	X509_CRL_free(s->crl);
	sk_X509_pop_free(s->cas, X509_free);
	sk_X509_pop_free(s->chain, X509_free);
	X509_free(s->cert);
	EVP_PKEY_free(s->key);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

enum mote_err tls_server_new(const char *ca, const char *cert, const char *key, const char *crl,
			     const struct tls_server_opts *opts, struct tls_server **out,
			     char *errbuf, size_t errcap)
{
	*out = NULL;
	if (!ca || !cert || !key) {
		snprintf(errbuf, errcap, "TLS needs --tls-ca, --tls-cert and --tls-key (e.g. "
			 "DIR/ca.pem, DIR/hub.pem and DIR/hub.key from `mote pki init --dir DIR`)");
		return MOTE_EINVAL;
	}
	struct tls_server *s = calloc(1, sizeof *s);
	if (!s)
		return MOTE_ENOMEM;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return MOTE_ENOMEM;
	}
	if (opts)
		s->opts = *opts;
	enum mote_err err = MOTE_EINVAL;
	char why[160];
	s->cas = read_certs("--tls-ca", ca, errbuf, errcap);
	if (!s->cas)
		goto fail;
	for (int i = 0; i < sk_X509_num(s->cas); i++)
		if (validity_problem(sk_X509_value(s->cas, i), why, sizeof why))
			MOTE_WARN("tls", "event=ca_not_valid file=%s why=\"%s: every client certificate "
					 "it issued will be refused\"", ca, why);
	s->chain = read_certs("--tls-cert", cert, errbuf, errcap);
	if (!s->chain)
		goto fail;
	s->cert = sk_X509_shift(s->chain);
	if (validity_problem(s->cert, why, sizeof why)) {
		snprintf(errbuf, errcap, "--tls-cert %s: the hub certificate is %s (issue a new one: "
			 "`mote pki init --dir DIR --force` or your CA)", cert, why);
		goto fail;
	}
	FILE *kf = open_pem("--tls-key", key, errbuf, errcap);
	if (!kf)
		goto fail;
	s->key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
	fclose(kf);
	if (!s->key) {
		snprintf(errbuf, errcap, "--tls-key %s: not a PEM private key, or one protected by a "
			 "passphrase (not supported) (%s)", key, ossl_reason(why, sizeof why));
		goto fail;
	}
	if (X509_check_private_key(s->cert, s->key) != 1) {
		ERR_clear_error();
		snprintf(errbuf, errcap, "--tls-key %s does not match the certificate in --tls-cert %s "
			 "(use the key that was made with that certificate)", key, cert);
		goto fail;
	}
	if (crl) {
		s->crl = read_crl(s, crl, errbuf, errcap);
		if (!s->crl)
			goto fail;
	}
	s->ctx = build_ctx(s, s->crl, errbuf, errcap);
	if (!s->ctx)
		goto fail;
	*out = s;
	return MOTE_OK;
fail:
	ERR_clear_error();
	tls_server_free(s);
	return err;
}

/* Same list: same issuer, same lastUpdate and same entries (serials). */
static bool crl_same(X509_CRL *a, X509_CRL *b)
{
	if (!a || !b)
		return a == b;
	if (X509_CRL_cmp(a, b) != 0 ||
	    ASN1_TIME_compare(X509_CRL_get0_lastUpdate(a), X509_CRL_get0_lastUpdate(b)) != 0)
		return false;
	STACK_OF(X509_REVOKED) *ra = X509_CRL_get_REVOKED(a), *rb = X509_CRL_get_REVOKED(b);
	int na = ra ? sk_X509_REVOKED_num(ra) : 0, nb = rb ? sk_X509_REVOKED_num(rb) : 0;
	if (na != nb)
		return false;
	for (int i = 0; i < na; i++)
		if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(ra, i)),
				     X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rb, i))) != 0)
			return false;
	return true;
}

enum mote_err tls_server_reload_crl(struct tls_server *s, const char *crl, bool *changed,
				    char *errbuf, size_t errcap)
{
	if (changed)
		*changed = false;
	X509_CRL *nc = read_crl(s, crl, errbuf, errcap);
	if (!nc)
		return MOTE_EINVAL;
	pthread_mutex_lock(&s->mu);
	bool same = crl_same(s->crl, nc);
	pthread_mutex_unlock(&s->mu);
	if (same) {
		X509_CRL_free(nc);
		return MOTE_OK;
	}
	SSL_CTX *ctx = build_ctx(s, nc, errbuf, errcap);
	if (!ctx) {
		X509_CRL_free(nc);
		return MOTE_ENOMEM;
	}
	pthread_mutex_lock(&s->mu);
	SSL_CTX *old_ctx = s->ctx;
	X509_CRL *old_crl = s->crl;
	s->ctx = ctx;
	s->crl = nc;
	pthread_mutex_unlock(&s->mu);
	/* Connections made with the old context hold their own references. */
	SSL_CTX_free(old_ctx);
	X509_CRL_free(old_crl);
	if (changed)
		*changed = true;
	return MOTE_OK;
}

/* ---- the stream ---------------------------------------------------------------- */

static struct tls_conn *tc_of(const struct net_stream *s)
{
	return s->impl;
}

static char *dup_asn1_text(const unsigned char *p, int len)
{
	/* An embedded NUL would let "a\0b" pass for "a": no such names. */
	if (len < 0 || memchr(p, '\0', (size_t)len))
		return NULL;
	char *t = malloc((size_t)len + 1);
	if (t) {
		memcpy(t, p, (size_t)len);
		t[len] = '\0';
	}
	return t;
}

/* Records the verified certificate's names for peer_cert(). */
static void take_identity(struct tls_conn *tc)
{
	X509 *x = SSL_get0_peer_certificate(tc->ssl);
	if (!x)
		return;
	X509_NAME *subj = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (i >= 0) {
		unsigned char *utf8 = NULL;
		int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
		if (n >= 0)
			tc->cn = dup_asn1_text(utf8, n);
		OPENSSL_free(utf8);
	}
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int k = 0; gens && k < sk_GENERAL_NAME_num(gens) && !tc->uri; k++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, k);
		if (g->type == GEN_URI)
			tc->uri = dup_asn1_text(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
						ASN1_STRING_length(g->d.uniformResourceIdentifier));
	}
	GENERAL_NAMES_free(gens);
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	if (hex)
		tc->serial = dup_asn1_text((const unsigned char *)hex, (int)strlen(hex));
	OPENSSL_free(hex);
	BN_free(bn);
	ERR_clear_error();
	tc->pc = (struct net_peer_cert){ tc->cn, tc->uri, tc->serial };
}

/* After a failed SSL call: sets errno (EAGAIN or a hard error) and the
 * fault text; returns -1. */
static int ssl_fail(struct net_stream *s, int r, const char *during)
{
	struct tls_conn *tc = tc_of(s);
	int e = SSL_get_error(tc->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		s->want_write = true;
		errno = EAGAIN;
		return -1;
	}
	tc->dead = true;
	int saved = errno;
	char r1[120];
	if (e == SSL_ERROR_SYSCALL) {
		ERR_clear_error();
		snprintf(tc->fault, sizeof tc->fault, "%s: %s", during,
			 saved ? strerror(saved) : "connection closed by the peer");
		errno = saved ? saved : ECONNRESET;
	} else if (e == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		snprintf(tc->fault, sizeof tc->fault, "%s: closed by the peer", during);
		errno = ECONNRESET;
	} else {
		ossl_reason(r1, sizeof r1);
		long v = SSL_get_verify_result(tc->ssl);
		if (v != X509_V_OK)
			snprintf(tc->fault, sizeof tc->fault, "%s: %s: %s", during, r1,
				 X509_verify_cert_error_string(v));
		else
			snprintf(tc->fault, sizeof tc->fault, "%s: %s", during, r1);
		errno = EPROTO;
	}
	s->fault = tc->fault;
	return -1;
}

/* 0 when the handshake has completed, -1 with errno otherwise. */
static int handshake(struct net_stream *s)
{
	struct tls_conn *tc = tc_of(s);
	if (tc->done)
		return 0;
	if (tc->dead) {
		errno = EPROTO;
		return -1;
	}
	ERR_clear_error();
	int r = SSL_do_handshake(tc->ssl);
	if (r != 1)
		return ssl_fail(s, r, "TLS handshake");
	s->want_write = false;
	/* SSL_VERIFY_FAIL_IF_NO_PEER_CERT already refused these; belt and braces. */
	long v = SSL_get_verify_result(tc->ssl);
	bool need_cert = !tc->srv || !tc->srv->opts.client_cert_optional;
	if (v != X509_V_OK || (need_cert && !SSL_get0_peer_certificate(tc->ssl))) {
		tc->dead = true;
		snprintf(tc->fault, sizeof tc->fault, "TLS handshake: peer certificate: %s",
			 v != X509_V_OK ? X509_verify_cert_error_string(v) : "none");
		s->fault = tc->fault;
		errno = EPROTO;
		return -1;
	}
	tc->done = true;
	take_identity(tc);
	return 0;
}

/* Offers the held record to SSL_write again: 0 when it went. */
static int push_record(struct net_stream *s)
{
	struct tls_conn *tc = tc_of(s);
	if (tc->rec_len == 0)
		return 0;
	ERR_clear_error();
	int r = SSL_write(tc->ssl, tc->rec, (int)tc->rec_len);
	if (r <= 0) {
		int rc = ssl_fail(s, r, "TLS write");
		if (errno == EAGAIN)
			s->want_write = true; /* WANT_READ too: retried from flush */
		return rc;
	}
	tc->rec_len = 0;
	free(tc->rec); /* idle connections keep no buffer */
	tc->rec = NULL;
	return 0;
}

static ssize_t tls_read(struct net_stream *s, void *buf, size_t len)
{
	struct tls_conn *tc = tc_of(s);
	if (handshake(s) != 0)
		return -1;
	if (tc->dead) {
		errno = EPROTO;
		return -1;
	}
	if (len > INT32_MAX)
		len = INT32_MAX;
	ERR_clear_error();
	int n = SSL_read(tc->ssl, buf, (int)len);
	if (n > 0)
		return n;
	int e = SSL_get_error(tc->ssl, n);
	if (e == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return 0; /* close_notify: the end of the stream */
	}
	if (e == SSL_ERROR_WANT_WRITE)
		tc->read_wants_write = true;
	if (e == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET)) {
		ERR_clear_error();
		tc->dead = true;
		return 0; /* the peer went without close_notify: an end like TCP's */
	}
	return ssl_fail(s, n, "TLS read");
}

static ssize_t tls_writev(struct net_stream *s, const struct iovec *iov, int iovcnt)
{
	struct tls_conn *tc = tc_of(s);
	if (tc->dead) {
		errno = EPIPE;
		return -1;
	}
	if (!tc->done && handshake(s) != 0)
		return -1; /* a client's first flight goes from here */
	if (push_record(s) != 0)
		return -1;
	size_t accepted = 0;
	int i = 0;
	size_t off = 0; /* into iov[i] */
	while (i < iovcnt) {
		if (!tc->rec) {
			tc->rec = malloc(REC_MAX);
			if (!tc->rec) {
				if (accepted)
					break;
				errno = ENOMEM;
				return -1;
			}
		}
		/* Coalesce small packets into one record. */
		size_t n = 0;
		while (i < iovcnt && n < REC_MAX) {
			size_t take = iov[i].iov_len - off;
			if (take > REC_MAX - n)
				take = REC_MAX - n;
			memcpy(tc->rec + n, (const uint8_t *)iov[i].iov_base + off, take);
			n += take;
			off += take;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		if (n == 0)
			break;
		tc->rec_len = n;
		accepted += n; /* ours now, whatever the socket says */
		if (push_record(s) != 0) {
			if (errno == EAGAIN)
				break;
			return -1;
		}
	}
	if (accepted == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)accepted;
}

static int tls_flush(struct net_stream *s)
{
	struct tls_conn *tc = tc_of(s);
	if (!tc->done)
		return handshake(s);
	if (tc->dead) {
		errno = EPIPE;
		return -1;
	}
	if (push_record(s) != 0)
		return -1;
	if (tc->read_wants_write) {
		/* SSL_read stopped to write (a key update answer): let it go on
		 * without taking any application byte. */
		uint8_t b;
		ERR_clear_error();
		int r = SSL_peek(tc->ssl, &b, 1);
		if (r <= 0 && SSL_get_error(tc->ssl, r) == SSL_ERROR_WANT_WRITE) {
			ERR_clear_error();
			errno = EAGAIN;
			return -1;
		}
		ERR_clear_error();
		tc->read_wants_write = false;
	}
	s->want_write = false;
	return 0;
}

static size_t tls_pending(const struct net_stream *s)
{
	const struct tls_conn *tc = tc_of(s);
	if (!tc->done || tc->dead)
		return 0;
	int n = SSL_pending(tc->ssl);
	return n > 0 ? (size_t)n : 0;
}

static const struct net_peer_cert *tls_peer_cert(const struct net_stream *s)
{
	const struct tls_conn *tc = tc_of(s);
	return tc->done ? &tc->pc : NULL;
}

static bool tls_revoked(const struct net_stream *s)
{
	const struct tls_conn *tc = tc_of(s);
	X509 *x = tc->done && tc->srv ? SSL_get0_peer_certificate(tc->ssl) : NULL;
	if (!x)
		return false;
	struct tls_server *srv = tc->srv;
	pthread_mutex_lock(&srv->mu);
	X509_CRL *crl = srv->crl;
	if (crl)
		X509_CRL_up_ref(crl);
	pthread_mutex_unlock(&srv->mu);
	if (!crl)
		return false;
	X509_REVOKED *rev = NULL;
	bool revoked = X509_CRL_get0_by_cert(crl, &rev, x) == 1;
	X509_CRL_free(crl);
	return revoked;
}

static void tls_close(struct net_stream *s)
{
	struct tls_conn *tc = tc_of(s);
	if (tc) {
		if (tc->done && !tc->dead) {
			ERR_clear_error();
			SSL_shutdown(tc->ssl); /* close_notify if the socket takes it */
		}
		ERR_clear_error();
		SSL_free(tc->ssl);
		free(tc->rec);
		free(tc->cn);
		free(tc->uri);
		free(tc->serial);
		free(tc);
		s->impl = NULL;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->fault = NULL;
	s->want_write = false;
}

static const struct net_stream_ops tls_ops = {
	.read = tls_read,
	.writev = tls_writev,
	.close = tls_close,
	.flush = tls_flush,
	.pending = tls_pending,
	.peer_cert = tls_peer_cert,
	.revoked = tls_revoked,
};

bool tls_stream_handshaking(const struct net_stream *s)
{
	return s->ops == &tls_ops && !tc_of(s)->done;
}

static struct tls_conn *conn_new(struct tls_server *srv)
{
	struct tls_conn *tc = calloc(1, sizeof *tc);
	if (!tc)
		return NULL;
	pthread_mutex_lock(&srv->mu);
	SSL_CTX *ctx = srv->ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&srv->mu);
	tc->ssl = SSL_new(ctx); /* takes its own reference */
	SSL_CTX_free(ctx);
	if (!tc->ssl) {
		ERR_clear_error();
		free(tc);
		return NULL;
	}
	SSL_set_accept_state(tc->ssl);
	tc->srv = srv;
	return tc;
}

enum mote_err tls_stream_server(struct tls_server *srv, struct net_stream *s, int fd)
{
	struct tls_conn *tc = conn_new(srv);
	if (!tc)
		return MOTE_ENOMEM;
	if (SSL_set_fd(tc->ssl, fd) != 1) {
		ERR_clear_error();
		SSL_free(tc->ssl);
		free(tc);
		return MOTE_EPROTO;
	}
	*s = (struct net_stream){ .ops = &tls_ops, .fd = fd, .impl = tc };
	return MOTE_OK;
}

enum mote_err tls_stream_server_bio(struct tls_server *srv, struct net_stream *s, BIO *rbio,
				    BIO *wbio)
{
	struct tls_conn *tc = conn_new(srv);
	if (!tc) {
		BIO_free(rbio);
		BIO_free(wbio);
		return MOTE_ENOMEM;
	}
	SSL_set_bio(tc->ssl, rbio, wbio);
	*s = (struct net_stream){ .ops = &tls_ops, .fd = -1, .impl = tc };
	return MOTE_OK;
}

/* ---- the client side ------------------------------------------------------------ */

void tls_client_free(struct tls_client *c)
{
	if (!c)
		return;
	SSL_CTX_free(c->ctx);
	free(c);
}

enum mote_err tls_client_new(const char *ca, const char *cert, const char *key,
			     struct tls_client **out, char *errbuf, size_t errcap)
{
	*out = NULL;
	char r[120];
	struct tls_client *c = calloc(1, sizeof *c);
	if (!c)
		return MOTE_ENOMEM;
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx)
		goto oom;
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					    SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(c->ctx, CIPHERS_12) != 1 ||
	    SSL_CTX_set_ciphersuites(c->ctx, SUITES_13) != 1)
		goto oom;
	if (!ca) {
		snprintf(errbuf, errcap, "TLS needs the CA certificate that signed the server's "
			 "(--cafile FILE)");
		goto fail;
	}
	FILE *f = open_pem("--cafile", ca, errbuf, errcap);
	if (!f)
		goto fail;
	fclose(f);
	if (SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1) {
		snprintf(errbuf, errcap, "--cafile %s: no PEM certificate in it (%s)", ca,
			 ossl_reason(r, sizeof r));
		goto fail;
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	warm_store(SSL_CTX_get_cert_store(c->ctx));
	if ((cert == NULL) != (key == NULL)) {
		snprintf(errbuf, errcap, "--cert and --key go together");
		goto fail;
	}
	if (cert) {
		if (!(f = open_pem("--cert", cert, errbuf, errcap)))
			goto fail;
		fclose(f);
		if (!(f = open_pem("--key", key, errbuf, errcap)))
			goto fail;
		fclose(f);
		if (SSL_CTX_use_certificate_chain_file(c->ctx, cert) != 1) {
			snprintf(errbuf, errcap, "--cert %s: not a PEM certificate (%s)", cert,
				 ossl_reason(r, sizeof r));
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(c->ctx) != 1) {
			snprintf(errbuf, errcap, "--key %s: not the PEM key of --cert %s (%s)", key,
				 cert, ossl_reason(r, sizeof r));
			goto fail;
		}
		warm(SSL_CTX_get0_certificate(c->ctx));
		STACK_OF(X509) *chain = NULL;
		SSL_CTX_get0_chain_certs(c->ctx, &chain);
		for (int i = 0; chain && i < sk_X509_num(chain); i++)
			warm(sk_X509_value(chain, i));
	}
	*out = c;
	return MOTE_OK;
oom:
	snprintf(errbuf, errcap, "TLS: out of memory setting up the client context");
fail:
	ERR_clear_error();
	tls_client_free(c);
	return MOTE_EINVAL;
}

enum mote_err tls_stream_client(struct tls_client *c, struct net_stream *s, int fd,
				const char *host)
{
	struct tls_conn *tc = calloc(1, sizeof *tc);
	if (!tc)
		return MOTE_ENOMEM;
	tc->ssl = SSL_new(c->ctx);
	if (!tc->ssl || SSL_set_fd(tc->ssl, fd) != 1) {
		ERR_clear_error();
		SSL_free(tc->ssl);
		free(tc);
		return MOTE_ENOMEM;
	}
	if (host) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(tc->ssl);
		/* An address is matched against IP SANs, a name against DNS SANs. */
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
			ERR_clear_error();
			SSL_set_tlsext_host_name(tc->ssl, host);
			SSL_set1_host(tc->ssl, host);
		}
	}
	SSL_set_connect_state(tc->ssl);
	*s = (struct net_stream){ .ops = &tls_ops, .fd = fd, .impl = tc };
	return MOTE_OK;
}
