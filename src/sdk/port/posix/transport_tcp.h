/*
 * transport_tcp.h - the SDK's POSIX port: a TCP transport and a monotonic
 * millisecond clock for struct mote_client.
 *
 * The socket is non-blocking; waits use poll() with the timeouts the
 * client asks for, so nothing here blocks longer than it was told to.
 * SIGPIPE is never raised (MSG_NOSIGNAL). A signal that interrupts a wait
 * makes recv/send return MOTE_EAGAIN, which lets a program with a SIGINT
 * handler (installed without SA_RESTART) react at once.
 *
 * Ownership: struct mote_tcp owns its socket from a successful
 * mote_tcp_connect() until mote_tcp_close(). The transport returned by
 * mote_tcp_transport() borrows the struct; keep it alive while the client
 * uses it.
 *
 * Threading: one thread per struct mote_tcp; the clock is thread-safe.
 */
#ifndef MOTE_SDK_TRANSPORT_TCP_H
#define MOTE_SDK_TRANSPORT_TCP_H

#include <stdint.h>

#include "base/err.h"
#include "sdk/mote_client.h"

struct mote_tcp {
	int fd;         /* -1 when closed */
	int last_errno; /* errno of the last failure, 0 if none */
	int gai_error;  /* getaddrinfo() error of the last connect, 0 if none */
};

/* Sets fd to -1; call before anything else. */
void mote_tcp_init(struct mote_tcp *t);

/*
 * Resolves host (name or address, IPv4 or IPv6) and connects to the first
 * address that answers within the remaining time.
 *   MOTE_OK         connected
 *   MOTE_ENOTFOUND  host did not resolve (t->gai_error, gai_strerror())
 *   MOTE_ETIMEDOUT  no address answered within timeout_ms
 *   MOTE_EIO        refused or unreachable (t->last_errno: ECONNREFUSED...)
 *   MOTE_EINVAL     already connected, or host NULL
 */
enum mote_err mote_tcp_connect(struct mote_tcp *t, const char *host, uint16_t port,
			       uint32_t timeout_ms);

/* Closes the socket; safe to call twice. */
void mote_tcp_close(struct mote_tcp *t);

/* The transport for struct mote_client_cfg, bound to t. */
struct mote_transport mote_tcp_transport(struct mote_tcp *t);

/* CLOCK_MONOTONIC in milliseconds, wrapping at 2^32. */
struct mote_clock mote_posix_clock(void);

#endif
