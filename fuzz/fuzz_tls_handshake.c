/*
 * fuzz_tls_handshake.c - arbitrary bytes as a client's first flight through
 * the server TLS stream (over memory BIOs): the handshake path must refuse
 * or wait, never crash or leak, and a refusal always says why. The server
 * context (a CA, the hub's certificate, a CRL) is made once by mote_pki in a
 * temporary folder.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include "pki/pki.h"
#include "tls/tls_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tls_server *srv;
static char dir[64];

static void cleanup(void)
{
	tls_server_free(srv);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[512], ca[128], cert[128], key[128], crl[128];
	snprintf(dir, sizeof dir, "/tmp/mote-fuzz-tls-XXXXXX");
	if (!mkdtemp(dir) ||
	    mote_pki_init(dir, &(struct mote_pki_init_opts){ 0 }, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "fuzz_tls_handshake: pki: %s\n", err);
		abort();
	}
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	snprintf(cert, sizeof cert, "%s/hub.pem", dir);
	snprintf(key, sizeof key, "%s/hub.key", dir);
	snprintf(crl, sizeof crl, "%s/crl.pem", dir);
	if (tls_server_new(ca, cert, key, crl, NULL, &srv, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "fuzz_tls_handshake: %s\n", err);
		abort();
	}
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	/* The input arrives in two parts, as over a socket: data[0] says where
	 * the first read stops. */
	size_t cut = size ? (size_t)data[0] * size / 256 : 0;
	BIO *in = BIO_new(BIO_s_mem());
	BIO *out = BIO_new(BIO_s_mem());
	if (!in || !out) {
		BIO_free(in);
		BIO_free(out);
		return 0;
	}
	BIO_set_mem_eof_return(in, -1); /* empty: "would block", not the end */
	BIO_write(in, data, (int)cut);
	struct net_stream s;
	if (tls_stream_server_bio(srv, &s, in, out) != MOTE_OK)
		return 0;
	uint8_t buf[256];
	ssize_t n = s.ops->read(&s, buf, sizeof buf);
	if (n < 0 && errno == EAGAIN && size > cut) {
		BIO_write(in, data + cut, (int)(size - cut));
		if (s.want_write)
			s.ops->flush(&s);
		n = s.ops->read(&s, buf, sizeof buf);
	}
	/* No certificate can be forged here: the handshake never completes. */
	if (n >= 0 || s.ops->peer_cert(&s))
		__builtin_trap();
	if (errno != EAGAIN && (!s.fault || !s.fault[0]))
		__builtin_trap(); /* every refusal says why */
	s.ops->close(&s);
	ERR_clear_error();
	return 0;
}
