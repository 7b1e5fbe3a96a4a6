/*
 * ws.h - a server WebSocket (RFC 6455) as a net_stream, layered over
 * another net_stream: plain TCP for ws://, a TLS stream for wss://. The
 * WebSocket never knows which.
 *
 * To its owner (the broker) it is a byte stream like TCP: read() gives the
 * payload of the client's binary frames, in order, whatever the framing
 * (one MQTT packet may span frames, one frame may hold several packets);
 * writev() sends the bytes as unmasked binary frames. Everything else is
 * handled inside: the HTTP Upgrade handshake (the 101 answer, or an HTTP
 * refusal), ping -> pong, the close handshake, and protocol violations
 * (close with the RFC's code). It follows the owner's contract in tcp.h:
 * want_write while bytes of its own wait for the socket, pending() while it
 * holds input a read would return. read() returns 0 when the client closed
 * (close frame or end of stream) and -1 with errno EPROTO after a refused
 * handshake or a protocol violation, with s->fault saying which (HTTP
 * status or close code and why); the answer is queued and close() pushes it
 * out before closing the socket. Over a TLS stream the peer certificate
 * (peer_cert, revoked) is passed through.
 *
 * Ownership: net_stream_ws takes over *inner on success (the WebSocket's
 * close() closes it) and leaves it with the caller on failure. The
 * WebSocket's state (impl) is one malloc'd struct owned by the stream, plus
 * a handshake buffer (freed once the handshake is done) and a buffer for
 * output waiting on the socket (freed when it drains); close() frees all.
 * Threading: as every net_stream, used by one thread at a time; it holds no
 * reference to a loop, so it may move between threads with its connection.
 */
#ifndef MOTE_NET_WS_H
#define MOTE_NET_WS_H

#include <stdint.h>

#include "base/err.h"
#include "net/tcp.h"

struct ws_options {
	uint64_t max_frame; /* payload of one client data frame; a larger one is closed 1009 */
	/*
	 * Origins allowed to connect (exact, ASCII case-insensitive, e.g.
	 * "https://dash.example.com"); n_origins 0 allows any. A request with
	 * another Origin gets 403; one without Origin (not a browser) is let
	 * through, since only browsers carry a user's credentials to pages
	 * that did not ask for them. Borrowed: must outlive the stream.
	 */
	const char *const *origins;
	unsigned n_origins;
};

/* Makes *s a WebSocket over *inner; opts is copied. MOTE_ENOMEM. */
enum mote_err net_stream_ws(struct net_stream *s, const struct net_stream *inner,
			    const struct ws_options *opts);

#endif
