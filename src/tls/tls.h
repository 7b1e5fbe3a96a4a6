/*
 * tls.h - TLS for the hub's listeners: the face of src/tls/.
 *
 * A struct tls_server is one server configuration: the hub's certificate and
 * key, the CA that issues device certificates and, optionally, its
 * certificate revocation list. Every connection must present a client
 * certificate that chains to that CA, is inside its validity period and, when
 * a CRL is loaded, is not revoked (mutual TLS). TLS 1.2 is the minimum and
 * 1.3 is preferred; TLS 1.2 offers only ECDHE key exchange with AES-GCM or
 * ChaCha20-Poly1305. Session resumption is off: every connection runs a full
 * handshake, so every connection's certificate is checked against the CRL in
 * force at that moment.
 *
 * tls_stream_server() turns an accepted non-blocking socket into a
 * net_stream (net/tcp.h) whose handshake runs inside its read and flush
 * operations; once it has completed, peer_cert() gives the verified
 * certificate's subject CN, first URI SAN and serial, and revoked() checks it
 * against the CRL loaded since.
 *
 * Ownership: the caller owns the server and frees it after every stream made
 * from it is closed. Streams own their SSL object and fd.
 * Signals: streams write with write(2) (OpenSSL's socket BIO): callers
 * ignore SIGPIPE, as the hub and `mote bench` do.
 * Threading: a server is shared by every thread; tls_server_reload_crl() may
 * run on any thread while others accept (new connections pick the new CRL up
 * atomically; live ones keep their handshake's result until revoked() is
 * asked). A stream is used by one thread at a time (it may move whole).
 */
#ifndef MOTE_TLS_H
#define MOTE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "net/tcp.h"

struct tls_server;

struct tls_server_opts {
	/* Accept connections without a client certificate (browsers on wss
	 * with passwords). A certificate that is presented is still verified.
	 * Default false: a certificate is required. */
	bool client_cert_optional;
};

/*
 * Loads the files (PEM) and builds the server configuration. crl may be NULL.
 * opts may be NULL (defaults). On failure errbuf names the file and says what
 * to fix (missing, unreadable, not PEM, key does not match the certificate,
 * certificate expired, CRL not signed by the CA, ...). MOTE_EINVAL / MOTE_EIO
 * / MOTE_ENOMEM.
 */
enum mote_err tls_server_new(const char *ca, const char *cert, const char *key, const char *crl,
			     const struct tls_server_opts *opts, struct tls_server **out,
			     char *errbuf, size_t errcap);
void tls_server_free(struct tls_server *s);

/*
 * Loads crl (PEM, signed by the CA) in place of the current one: connections
 * accepted from now on are checked against it. On failure the current CRL
 * stays in force and errbuf says why. *changed (may be NULL) is set when the
 * new list differs from the one in force.
 */
enum mote_err tls_server_reload_crl(struct tls_server *s, const char *crl, bool *changed,
				    char *errbuf, size_t errcap);

/*
 * A server-side TLS stream over the accepted non-blocking socket fd. On
 * success the stream owns fd; on failure (MOTE_ENOMEM, MOTE_EPROTO) the
 * caller still does.
 */
enum mote_err tls_stream_server(struct tls_server *srv, struct net_stream *s, int fd);

/* true while the stream has not completed its handshake. */
bool tls_stream_handshaking(const struct net_stream *s);

/*
 * The client side, for load generators and tests (`mote bench --tls`): a
 * context that verifies the server against ca and presents cert/key (both
 * NULL: no client certificate). Same versions and suites as the server.
 */
struct tls_client;
enum mote_err tls_client_new(const char *ca, const char *cert, const char *key,
			     struct tls_client **out, char *errbuf, size_t errcap);
void tls_client_free(struct tls_client *c);
/*
 * A client stream over the connected (or connecting) non-blocking socket
 * fd. host: the name or IP address the server certificate must carry, NULL
 * to check only the chain. The handshake runs inside read, writev and
 * flush; while it waits for the server, writev fails with EAGAIN and
 * want_write is false (wait for readability). Owns fd on success.
 */
enum mote_err tls_stream_client(struct tls_client *c, struct net_stream *s, int fd,
				const char *host);

#endif
