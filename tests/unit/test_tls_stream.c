/*
 * test_tls_stream.c - the TLS server stream against an OpenSSL client over a
 * socketpair, both non-blocking and driven by hand in one thread: the
 * handshake, the verified identity, data both ways, a write larger than the
 * socket buffers (WANT_WRITE, the record buffer and flush), a refused client
 * without a certificate, and CRL reloads (revoked(), a broken file keeps the
 * old list). Certificates come from mote_pki in a temporary folder.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include "tmpdir.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "pki/pki.h"
#include "tls/tls.h"

struct fx {
	char dir[64];
	char ca[128], cert[128], key[128], crl[128];
	char dev_cert[4096], dev_key[4096];
	struct tls_server *srv;
};

static void path(char *out, const struct fx *f, const char *name)
{
	snprintf(out, 128, "%s/%s", f->dir, name);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char err[512];
	snprintf(f->dir, sizeof f->dir, "/tmp/mote-tls-unit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(mote_pki_init(f->dir, &(struct mote_pki_init_opts){ 0 }, err, sizeof err),
			 MOTE_OK);
	assert_int_equal(mote_pki_issue(f->dir, "dev1", 0, 0, f->dev_cert, f->dev_key, err,
					sizeof err),
			 MOTE_OK);
	path(f->ca, f, "ca.pem");
	path(f->cert, f, "hub.pem");
	path(f->key, f, "hub.key");
	path(f->crl, f, "crl.pem");
	assert_int_equal(tls_server_new(f->ca, f->cert, f->key, f->crl, NULL, &f->srv, err,
					sizeof err),
			 MOTE_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tls_server_free(f->srv);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

struct pair {
	struct net_stream s; /* server */
	SSL_CTX *cctx;
	SSL *c;              /* client */
	int cfd;
};

static void pair_open(struct fx *f, struct pair *p, bool with_cert, int sndbuf)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	if (sndbuf) {
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
	}
	assert_int_equal(tls_stream_server(f->srv, &p->s, sv[0]), MOTE_OK);
	p->cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(p->cctx);
	assert_int_equal(SSL_CTX_load_verify_locations(p->cctx, f->ca, NULL), 1);
	SSL_CTX_set_verify(p->cctx, SSL_VERIFY_PEER, NULL);
	if (with_cert) {
		assert_int_equal(SSL_CTX_use_certificate_file(p->cctx, f->dev_cert, SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(p->cctx, f->dev_key, SSL_FILETYPE_PEM), 1);
	}
	p->c = SSL_new(p->cctx);
	p->cfd = sv[1];
	SSL_set_fd(p->c, sv[1]);
	SSL_set_connect_state(p->c);
}

static void pair_close(struct pair *p)
{
	p->s.ops->close(&p->s);
	SSL_free(p->c);
	SSL_CTX_free(p->cctx);
	close(p->cfd);
	ERR_clear_error();
}

/* Runs both handshakes; returns the server read's result once the client
 * is done or the server failed. */
static int drive_handshake(struct pair *p)
{
	uint8_t buf[16];
	for (int i = 0; i < 200; i++) {
		int cr = SSL_do_handshake(p->c);
		ssize_t n = p->s.ops->read(&p->s, buf, sizeof buf);
		if (n < 0 && errno != EAGAIN)
			return -1;
		if (p->s.want_write)
			p->s.ops->flush(&p->s);
		if (cr == 1 && p->s.ops->peer_cert(&p->s))
			return 0;
		if (cr != 1) {
			int e = SSL_get_error(p->c, cr);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return -2;
		}
	}
	return -3;
}

static void handshake_identity_and_data(void **state)
{
	struct fx *f = *state;
	struct pair p;
	pair_open(f, &p, true, 0);
	assert_true(tls_stream_handshaking(&p.s));
	assert_null(p.s.ops->peer_cert(&p.s));
	assert_int_equal(drive_handshake(&p), 0);
	assert_false(tls_stream_handshaking(&p.s));
	const struct net_peer_cert *pc = p.s.ops->peer_cert(&p.s);
	assert_non_null(pc);
	assert_string_equal(pc->cn, "dev1");
	assert_non_null(pc->serial);
	assert_true(strlen(pc->serial) > 8);
	assert_string_equal(SSL_get_version(p.c), "TLSv1.3");
	assert_false(p.s.ops->revoked(&p.s));

	/* client -> server */
	assert_int_equal(SSL_write(p.c, "hello", 5), 5);
	uint8_t buf[64];
	ssize_t n = -1;
	for (int i = 0; i < 50 && n < 0; i++)
		n = p.s.ops->read(&p.s, buf, sizeof buf);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(p.s.ops->pending(&p.s), 0);

	/* server -> client: small iovecs coalesce into one record */
	struct iovec iov[3] = { { "ab", 2 }, { "cde", 3 }, { "f", 1 } };
	assert_int_equal(p.s.ops->writev(&p.s, iov, 3), 6);
	assert_false(p.s.want_write);
	int r = SSL_read(p.c, buf, sizeof buf);
	assert_int_equal(r, 6);
	assert_memory_equal(buf, "abcdef", 6);
	pair_close(&p);
}

static void pending_after_short_read(void **state)
{
	struct fx *f = *state;
	struct pair p;
	pair_open(f, &p, true, 0);
	assert_int_equal(drive_handshake(&p), 0);
	char msg[1000];
	memset(msg, 'x', sizeof msg);
	assert_int_equal(SSL_write(p.c, msg, sizeof msg), (int)sizeof msg);
	uint8_t buf[100];
	ssize_t n = -1;
	for (int i = 0; i < 50 && n < 0; i++)
		n = p.s.ops->read(&p.s, buf, sizeof buf);
	assert_int_equal(n, 100);
	/* the rest of the record is decrypted and waiting: no fd event says so */
	assert_int_equal(p.s.ops->pending(&p.s), 900);
	pair_close(&p);
}

static void big_write_blocks_and_flushes(void **state)
{
	struct fx *f = *state;
	struct pair p;
	pair_open(f, &p, true, 4096);
	assert_int_equal(drive_handshake(&p), 0);
	size_t total = 1u << 20;
	uint8_t *data = malloc(total), *got = malloc(total);
	for (size_t i = 0; i < total; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 9));
	size_t sent = 0, recvd = 0;
	bool blocked_seen = false;
	for (int rounds = 0; rounds < 100000 && recvd < total; rounds++) {
		if (p.s.want_write) {
			blocked_seen = true;
			if (p.s.ops->flush(&p.s) < 0)
				assert_int_equal(errno, EAGAIN);
		}
		if (sent < total && !p.s.want_write) {
			struct iovec iov = { data + sent, total - sent };
			ssize_t w = p.s.ops->writev(&p.s, &iov, 1);
			if (w > 0)
				sent += (size_t)w;
			else
				assert_int_equal(errno, EAGAIN);
		}
		int r = SSL_read(p.c, got + recvd, (int)(total - recvd));
		if (r > 0)
			recvd += (size_t)r;
	}
	assert_true(blocked_seen);
	assert_int_equal(recvd, total);
	assert_memory_equal(got, data, total);
	free(data);
	free(got);
	pair_close(&p);
}

static void client_without_certificate_refused(void **state)
{
	struct fx *f = *state;
	struct pair p;
	pair_open(f, &p, false, 0);
	assert_int_equal(drive_handshake(&p), -1);
	assert_non_null(p.s.fault);
	assert_non_null(strstr(p.s.fault, "peer did not return a certificate"));
	assert_null(p.s.ops->peer_cert(&p.s));
	pair_close(&p);
}

static void crl_reload_revokes_live_stream(void **state)
{
	struct fx *f = *state;
	struct pair p;
	char err[512];
	pair_open(f, &p, true, 0);
	assert_int_equal(drive_handshake(&p), 0);
	assert_false(p.s.ops->revoked(&p.s));

	bool changed = true;
	assert_int_equal(tls_server_reload_crl(f->srv, f->crl, &changed, err, sizeof err), MOTE_OK);
	assert_false(changed); /* same list */

	assert_int_equal(mote_pki_revoke(f->dir, "dev1", NULL, err, sizeof err), MOTE_OK);
	/* a broken file: refused, the old list stays */
	char bad[160];
	snprintf(bad, sizeof bad, "%s/bad.pem", f->dir);
	FILE *b = fopen(bad, "w");
	fputs("-----BEGIN X509 CRL-----\nnot base64 at all\n-----END X509 CRL-----\n", b);
	fclose(b);
	assert_int_not_equal(tls_server_reload_crl(f->srv, bad, &changed, err, sizeof err), MOTE_OK);
	assert_non_null(strstr(err, "not a PEM certificate revocation list"));
	assert_false(p.s.ops->revoked(&p.s));

	assert_int_equal(tls_server_reload_crl(f->srv, f->crl, &changed, err, sizeof err), MOTE_OK);
	assert_true(changed);
	assert_true(p.s.ops->revoked(&p.s));
	pair_close(&p);

	/* and new connections with it are refused */
	pair_open(f, &p, true, 0);
	assert_int_equal(drive_handshake(&p), -1);
	assert_non_null(strstr(p.s.fault, "certificate revoked"));
	pair_close(&p);
}

/* Both ends as net_streams: the client side of src/tls (mote bench --tls). */
static void client_stream_to_server_stream(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct tls_client *tc = NULL;
	assert_int_equal(tls_client_new(f->ca, f->dev_cert, f->dev_key, &tc, err, sizeof err),
			 MOTE_OK);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct net_stream srv, cli;
	assert_int_equal(tls_stream_server(f->srv, &srv, sv[0]), MOTE_OK);
	/* the hub certificate names 127.0.0.1 and localhost */
	assert_int_equal(tls_stream_client(tc, &cli, sv[1], "127.0.0.1"), MOTE_OK);
	struct iovec iov = { "ping", 4 };
	uint8_t buf[16];
	ssize_t w = -1, n = -1;
	for (int i = 0; i < 200 && (w < 0 || n < 0); i++) {
		if (w < 0) {
			w = cli.ops->writev(&cli, &iov, 1);
			if (w < 0)
				assert_int_equal(errno, EAGAIN);
		}
		if (cli.want_write)
			cli.ops->flush(&cli);
		if (n < 0) {
			n = srv.ops->read(&srv, buf, sizeof buf);
			if (n < 0)
				assert_int_equal(errno, EAGAIN);
		}
		if (srv.want_write)
			srv.ops->flush(&srv);
		if (w < 0) {
			ssize_t r = cli.ops->read(&cli, buf, sizeof buf);
			assert_true(r < 0 && errno == EAGAIN);
		}
	}
	assert_int_equal(w, 4);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "ping", 4);
	assert_string_equal(srv.ops->peer_cert(&srv)->cn, "dev1");
	assert_string_equal(cli.ops->peer_cert(&cli)->cn, "mote hub");
	cli.ops->close(&cli);
	srv.ops->close(&srv);

	/* a name the hub certificate does not carry: refused by the client */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(tls_stream_server(f->srv, &srv, sv[0]), MOTE_OK);
	assert_int_equal(tls_stream_client(tc, &cli, sv[1], "evil.example"), MOTE_OK);
	bool client_failed = false;
	for (int i = 0; i < 200 && !client_failed; i++) {
		if (cli.ops->writev(&cli, &iov, 1) < 0 && errno != EAGAIN)
			client_failed = true;
		else
			srv.ops->read(&srv, buf, sizeof buf);
	}
	assert_true(client_failed);
	assert_null(srv.ops->peer_cert(&srv)); /* no session came of it */
	assert_non_null(strstr(cli.fault, "certificate verify failed"));
	cli.ops->close(&cli);
	srv.ops->close(&srv);
	tls_client_free(tc);
	ERR_clear_error();
}

static void server_new_errors(void **state)
{
	struct fx *f = *state;
	struct tls_server *s = NULL;
	char err[512];
	assert_int_equal(tls_server_new(f->ca, f->cert, NULL, NULL, NULL, &s, err, sizeof err),
			 MOTE_EINVAL);
	assert_non_null(strstr(err, "--tls-key"));
	assert_int_not_equal(tls_server_new(f->ca, f->cert, f->dev_key, NULL, NULL, &s, err,
					    sizeof err),
			     MOTE_OK);
	assert_non_null(strstr(err, "does not match"));
	assert_int_not_equal(tls_server_new("/nonexistent/ca.pem", f->cert, f->key, NULL, NULL, &s,
					    err, sizeof err),
			     MOTE_OK);
	assert_non_null(strstr(err, "cannot open"));
	assert_int_not_equal(tls_server_new(f->crl, f->cert, f->key, NULL, NULL, &s, err,
					    sizeof err),
			     MOTE_OK);
	assert_non_null(strstr(err, "no PEM certificate"));
	assert_null(s);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the hub and bench do: see tls.h */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(handshake_identity_and_data, setup, teardown),
		cmocka_unit_test_setup_teardown(pending_after_short_read, setup, teardown),
		cmocka_unit_test_setup_teardown(big_write_blocks_and_flushes, setup, teardown),
		cmocka_unit_test_setup_teardown(client_without_certificate_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(crl_reload_revokes_live_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(client_stream_to_server_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(server_new_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
