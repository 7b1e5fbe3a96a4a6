/*
 * tcp.h - sockets for the event loop: listening, accepting, and the stream
 * interface that connections read and write through.
 *
 * struct net_stream is the transport seam (as coreMQTT's transport interface
 * or NNG's TLS engine): the broker reads and writes through ops, so TLS and
 * WebSocket streams slot in without #ifdefs in the broker. Plain TCP is here;
 * TLS is src/tls/.
 *
 * Threading: a stream belongs to the loop thread that owns its connection.
 */
#ifndef MOTE_NET_TCP_H
#define MOTE_NET_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "base/err.h"

/*
 * Parses "host:port", "[v6]:port" or ":port" (all addresses) into *ss.
 * host may be a name (resolved once, numeric preferred). MOTE_EINVAL with a
 * message in errbuf on failure.
 */
enum mote_err net_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len,
			     char *errbuf, size_t errcap);
/* "127.0.0.1:1883" / "[::1]:1883" into buf. Returns buf. */
char *net_addr_format(const struct sockaddr *sa, char *buf, size_t cap);

/*
 * A peer address in 20 bytes (an IPv4 or IPv6 address and a port), for
 * structures kept per connection; formatted only when someone reads it.
 */
struct net_peer {
	uint8_t family;   /* AF_INET, AF_INET6, or 0 = unknown */
	uint16_t port;    /* host order */
	uint8_t ip[16];
};
#define NET_PEER_TEXT 56 /* "[v6 address]:port" and the NUL */
void net_peer_from(const struct sockaddr *sa, struct net_peer *out);
char *net_peer_format(const struct net_peer *p, char *buf, size_t cap);

/* A non-blocking listening socket with SO_REUSEADDR. *fd is the caller's to close. */
enum mote_err net_listen(const struct sockaddr *sa, socklen_t len, int backlog, int *fd);

/*
 * Accepts one connection (non-blocking, close-on-exec, TCP_NODELAY).
 * MOTE_EAGAIN when none is pending; MOTE_EFULL when the process is out of file
 * descriptors (the caller pauses accepting); MOTE_EIO otherwise.
 */
enum mote_err net_accept(int lfd, int *fd, struct sockaddr_storage *peer, socklen_t *plen);

struct net_stream;

/* A peer certificate the transport verified (mTLS); strings NUL-terminated,
 * owned by the stream and valid until it closes. NULL fields: not present. */
struct net_peer_cert {
	const char *cn;     /* subject commonName */
	const char *uri;    /* first URI subjectAltName */
	const char *serial; /* serial number in hex */
};

/*
 * The operations of one transport. read/writev/close are required; the rest
 * are optional (NULL) and only layered transports (TLS, WebSocket) need them.
 *
 * The owner's side of the contract (src/broker/conn.c follows it):
 *  - after every read or writev, if s->want_write is set the transport is
 *    blocked on the fd becoming writable (a TLS handshake flight or record it
 *    has accepted but not sent): arm write interest and call flush when it is
 *    writable, even with nothing of its own to write;
 *  - after a read, while pending() > 0 read again: the transport holds bytes
 *    that no readiness event will announce;
 *  - a stream moves between threads only whole (ops, fd, impl, flags).
 */
struct net_stream_ops {
	/* >0 bytes read, 0 at end of stream, -1 with errno (EAGAIN: no data yet,
	 * also while a handshake is in progress). */
	ssize_t (*read)(struct net_stream *s, void *buf, size_t len);
	/* bytes accepted, -1 with errno (EAGAIN: nothing accepted now). Bytes
	 * accepted are the transport's: the caller never offers them again. */
	ssize_t (*writev)(struct net_stream *s, const struct iovec *iov, int iovcnt);
	/* Closes the fd and releases transport state (best-effort goodbye,
	 * e.g. TLS close_notify, never blocking). */
	void (*close)(struct net_stream *s);
	/* Pushes what the transport holds. 0 when nothing is left (want_write
	 * cleared), -1 with errno (EAGAIN: still blocked; anything else: dead). */
	int (*flush)(struct net_stream *s);
	/* Bytes the transport has decoded and a read would return at once. */
	size_t (*pending)(const struct net_stream *s);
	/* The verified peer certificate, NULL before the handshake or without one. */
	const struct net_peer_cert *(*peer_cert)(const struct net_stream *s);
	/* true when the peer certificate is no longer acceptable (revoked by a
	 * revocation list loaded after the handshake). */
	bool (*revoked)(const struct net_stream *s);
};

struct net_stream {
	const struct net_stream_ops *ops;
	int fd;
	void *impl;        /* transport state (TLS session, ...), NULL for TCP */
	bool want_write;   /* see the contract above */
	/* Why the last read/writev failed hard, in words for a log line (e.g. the
	 * TLS handshake's reason); transport-owned, NULL when none. */
	const char *fault;
};

/* Plain TCP over an accepted or connected fd; takes ownership of fd. */
void net_stream_tcp(struct net_stream *s, int fd);

#endif
