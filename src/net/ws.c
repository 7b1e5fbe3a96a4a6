/*
 * ws.c - the WebSocket stream over an inner net_stream (see ws.h).
 *
 * Reading: after the handshake, bytes are read from the inner stream
 * straight into the caller's buffer and decoded there in place (frame
 * headers dropped, payload unmasked), so there is no input buffer. Each
 * inner read asks for at most the room left in the caller's buffer; since a
 * frame's payload is never longer than the bytes that carried it, every
 * byte read can be delivered in the same call, and nothing is held back
 * between reads except what the decoder keeps (a partial header, a partial
 * control frame). The one exception is the handshake buffer's tail: bytes
 * the client sent right after its request. They are decoded first, and
 * pending() counts what did not fit so that the owner reads again.
 *
 * Writing: writev() packs the caller's bytes into binary frames of at most
 * WS_OUT_FRAME bytes, a batch of frames per inner writev. A frame whose
 * start went out must go out whole before anything else, so if the inner
 * stream takes part of one, the rest is copied into the pending buffer and
 * the frame's whole payload counts as written (the count stays honest: the
 * bytes are the stream's to deliver now); frames the inner stream did not
 * start are not counted. Pending bytes (that tail, the 101 answer, pongs,
 * the close frame) always leave before new frames.
 *
 * Output of our own is bounded: a frame's tail (64 KiB at most) plus
 * control replies, and a client that keeps pinging without reading is cut
 * off once WS_PEND_MAX bytes wait, so it cannot grow the hub's memory.
 *
 * States: HANDSHAKE -> OPEN -> (PEER_CLOSED | FAILED). After the client's
 * close frame our close reply is queued and read returns 0; after a refused
 * handshake or a protocol violation the answer (HTTP status or close frame)
 * is queued and read fails with EPROTO. Either way the owner closes the
 * stream, which pushes what is queued, drains unread input (so the kernel
 * sends FIN, not a reset that could destroy the answer in flight) and
 * closes the inner stream.
 */
#include "net/ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/ws_proto.h"

#define WS_OUT_FRAME 65535u  /* payload per server frame: a 4-byte header */
#define WS_OUT_FRAMES 16     /* frames per inner writev */
#define WS_OUT_IOV 512       /* iovec entries per inner writev */
#define WS_DRAIN_MAX 262144  /* unread input discarded at close, at most */
#define WS_PEND_MAX 262144   /* our own output waiting before pings stop being answered */

enum ws_state {
	WS_HANDSHAKE,
	WS_OPEN,
	WS_PEER_CLOSED, /* the client closed: read returns 0 */
	WS_FAILED,      /* refused or violated: read fails with EPROTO */
};

struct ws {
	struct net_stream inner;
	struct ws_decoder dec;
	struct ws_options opts;
	uint8_t state;
	bool close_sent;
	bool eof;           /* the inner stream ended or failed */
	bool tell_end;      /* data was returned; the end shows on the next read */
	char fault[160];    /* why it failed, for the owner's log line (s->fault) */
	uint8_t *hs;        /* handshake bytes (owned); NULL once used up */
	size_t hs_len, hs_pos;
	uint8_t *pend;      /* output of our own waiting for the socket (owned) */
	size_t pend_off, pend_len, pend_cap;
};

/* Says why the WebSocket failed; the owner logs it (net_stream.fault). */
static void set_fault(struct ws *w, const char *what, unsigned code, const char *why)
{
	snprintf(w->fault, sizeof w->fault, "WebSocket %s %u: %s", what, code, why);
}

/* ---- output of our own -------------------------------------------------- */

/* Appends bytes to the pending output. false when out of memory. */
static bool pend_add(struct ws *w, const void *p, size_t n)
{
	if (w->pend_off > 0 && w->pend_off == w->pend_len)
		w->pend_off = w->pend_len = 0;
	if (w->pend_len + n > w->pend_cap) {
		size_t live = w->pend_len - w->pend_off;
		size_t cap = w->pend_cap ? w->pend_cap : 256;
		while (cap < live + n)
			cap *= 2;
		uint8_t *b = malloc(cap);
		if (!b)
			return false;
		if (live)
			memcpy(b, w->pend + w->pend_off, live);
		free(w->pend);
		w->pend = b;
		w->pend_cap = cap;
		w->pend_off = 0;
		w->pend_len = live;
	}
	memcpy(w->pend + w->pend_len, p, n);
	w->pend_len += n;
	return true;
}

/*
 * Pushes the inner stream's own bytes and ours. 0 when all are out, -1 with
 * errno (EAGAIN while some wait).
 */
static int pend_flush(struct ws *w)
{
	if (w->inner.want_write && w->inner.ops->flush && w->inner.ops->flush(&w->inner) < 0)
		return -1;
	while (w->pend_off < w->pend_len) {
		struct iovec v = { w->pend + w->pend_off, w->pend_len - w->pend_off };
		ssize_t n = w->inner.ops->writev(&w->inner, &v, 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EAGAIN;
			return -1;
		}
		w->pend_off += (size_t)n;
	}
	free(w->pend); /* drained: an idle stream holds no output memory */
	w->pend = NULL;
	w->pend_off = w->pend_len = w->pend_cap = 0;
	if (w->inner.want_write) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

static void update_flags(struct net_stream *s, struct ws *w)
{
	s->want_write = w->pend_off < w->pend_len || w->inner.want_write;
	s->fault = w->fault[0] ? w->fault : w->inner.fault; /* ours, or TLS's underneath */
}

/* Queues a control frame and tries to send it. false when out of memory. */
static bool send_control(struct ws *w, uint8_t opcode, const uint8_t *payload, size_t n)
{
	uint8_t hdr[10];
	size_t hl = ws_frame_header(hdr, opcode, true, n);
	if (!pend_add(w, hdr, hl) || (n && !pend_add(w, payload, n)))
		return false;
	pend_flush(w);
	return true;
}

static void send_close(struct ws *w, uint16_t code)
{
	if (w->close_sent)
		return;
	w->close_sent = true;
	uint8_t b[2] = { (uint8_t)(code >> 8), (uint8_t)code };
	send_control(w, WS_OP_CLOSE, b, 2);
}

/* ---- reading ---------------------------------------------------------------- */

/*
 * Decodes in[0..n) into out (in place when out == in); stops at the client's
 * close or a violation. Returns the payload bytes; *used the input taken.
 */
static size_t decode(struct ws *w, uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *used)
{
	size_t ip = 0, op = 0;
	while (ip < n && w->state == WS_OPEN) {
		size_t u, g;
		uint16_t code;
		enum ws_event ev = ws_decode(&w->dec, in + ip, n - ip, &u, out + op, cap - op, &g,
					     &code);
		ip += u;
		op += g;
		if (ev == WS_EV_PING) {
			if (w->pend_len - w->pend_off > WS_PEND_MAX) {
				/* Pongs pile up: the client pings and never reads. */
				w->state = WS_FAILED;
				w->close_sent = true; /* nothing more can reach it */
				set_fault(w, "close", 1008, "pings unanswered: the client does not read");
			} else if (!send_control(w, WS_OP_PONG, w->dec.ctl, w->dec.ctl_len)) {
				w->state = WS_FAILED;
				set_fault(w, "close", WS_CLOSE_INTERNAL, "out of memory");
			}
		} else if (ev == WS_EV_CLOSE) {
			w->state = WS_PEER_CLOSED;
			send_close(w, code);
		} else if (ev == WS_EV_ERROR) {
			w->state = WS_FAILED;
			set_fault(w, "close", code, w->dec.fail_why);
			send_close(w, code);
		} else if (ev == WS_EV_NONE && u == 0 && g == 0) {
			break; /* output full */
		}
	}
	*used = ip;
	return op;
}

/* The end of reading, once the state is no longer OPEN. */
static ssize_t read_end(struct ws *w)
{
	if (w->state == WS_PEER_CLOSED)
		return 0;
	errno = EPROTO;
	return -1;
}

static bool origin_allowed(const struct ws_options *o, const struct ws_request *req)
{
	if (o->n_origins == 0 || !req->origin)
		return true;
	for (unsigned i = 0; i < o->n_origins; i++)
		if (strlen(o->origins[i]) == req->origin_len &&
		    strncasecmp(o->origins[i], (const char *)req->origin, req->origin_len) == 0)
			return true;
	return false;
}

/*
 * Gathers the request head and answers it. Returns 1 once the WebSocket is
 * open, or what read() should return (-1 with errno, 0 at end of stream).
 */
static ssize_t handshake(struct ws *w)
{
	if (!w->hs) {
		w->hs = malloc(WS_HANDSHAKE_MAX);
		if (!w->hs) {
			errno = ENOMEM;
			return -1;
		}
	}
	for (;;) {
		ssize_t n = w->inner.ops->read(&w->inner, w->hs + w->hs_len,
					       WS_HANDSHAKE_MAX - w->hs_len);
		if (n == 0)
			return 0;
		if (n < 0)
			return -1;
		w->hs_len += (size_t)n;
		struct ws_request req;
		size_t used;
		if (ws_request_parse(w->hs, w->hs_len, &req, &used) == MOTE_EAGAIN)
			continue; /* the inner stream says EAGAIN when it has no more */
		if (req.status == 101 && !origin_allowed(&w->opts, &req)) {
			req.status = 403;
			req.why = "this Origin may not connect (the hub's --ws-origin list)";
		}
		char answer[512];
		size_t alen = ws_response(&req, answer, sizeof answer);
		if (!pend_add(w, answer, alen)) {
			errno = ENOMEM;
			return -1;
		}
		pend_flush(w);
		if (req.status != 101) {
			w->state = WS_FAILED;
			w->close_sent = true; /* no WebSocket: nothing to close */
			set_fault(w, "handshake refused: HTTP", (unsigned)req.status, req.why);
			errno = EPROTO;
			return -1;
		}
		w->state = WS_OPEN;
		w->hs_pos = used;
		return 1;
	}
}

static size_t inner_pending(const struct ws *w)
{
	return w->inner.ops->pending ? w->inner.ops->pending(&w->inner) : 0;
}

static ssize_t ws_read(struct net_stream *s, void *buf, size_t len)
{
	struct ws *w = s->impl;
	uint8_t *out = buf;
	size_t got = 0;
	ssize_t ret;
	w->tell_end = false;
	if (w->state == WS_HANDSHAKE) {
		ret = handshake(w);
		if (ret <= 0)
			goto out;
	}
	if (w->state != WS_OPEN) {
		ret = read_end(w);
		goto out;
	}
	if (w->hs) {
		size_t used;
		got = decode(w, w->hs + w->hs_pos, w->hs_len - w->hs_pos, out, len, &used);
		w->hs_pos += used;
		if (w->hs_pos == w->hs_len || w->state != WS_OPEN) {
			free(w->hs);
			w->hs = NULL;
		}
	}
	while (!w->hs && got < len && w->state == WS_OPEN && !w->eof) {
		size_t room = len - got, used;
		ssize_t n = w->inner.ops->read(&w->inner, out + got, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			w->eof = true; /* closed without a close frame, or failed */
			break;
		}
		got += decode(w, out + got, (size_t)n, out + got, room, &used);
		if ((size_t)n < room && inner_pending(w) == 0)
			break; /* the socket is drained */
	}
	if (got > 0) {
		/* Deliver first; the end (or violation) shows on the next read. */
		w->tell_end = w->state != WS_OPEN || w->eof;
		ret = (ssize_t)got;
	} else if (w->eof) {
		ret = 0;
	} else if (w->state != WS_OPEN) {
		ret = read_end(w);
	} else {
		errno = EAGAIN;
		ret = -1;
	}
out:
	update_flags(s, w);
	return ret;
}

static size_t ws_pending(const struct net_stream *s)
{
	const struct ws *w = s->impl;
	if (w->tell_end)
		return 1;
	if (w->state == WS_HANDSHAKE)
		return inner_pending(w); /* wss: the request may sit decrypted in TLS */
	if (w->state != WS_OPEN)
		return 0;
	return (w->hs ? w->hs_len - w->hs_pos : 0) + inner_pending(w);
}

/* ---- writing ---------------------------------------------------------------- */

struct frame_plan {
	size_t first_iov; /* its header's entry */
	size_t end_iov;   /* one past its last entry */
	size_t end;       /* inner bytes up to its end */
	size_t payload;
};

/* Copies what the inner stream did not take of a frame into pending output. */
static bool keep_rest(struct ws *w, const struct iovec *v, const struct frame_plan *f, size_t skip)
{
	for (size_t i = f->first_iov; i < f->end_iov; i++) {
		const uint8_t *p = v[i].iov_base;
		size_t n = v[i].iov_len;
		if (skip >= n) {
			skip -= n;
			continue;
		}
		if (!pend_add(w, p + skip, n - skip))
			return false;
		skip = 0;
	}
	return true;
}

static ssize_t ws_writev(struct net_stream *s, const struct iovec *iov, int iovcnt)
{
	struct ws *w = s->impl;
	ssize_t ret = -1;
	if (pend_flush(w) < 0)
		goto out;
	if (iovcnt <= 0) {
		ret = 0;
		goto out;
	}
	if (w->state != WS_OPEN) {
		errno = w->state == WS_HANDSHAKE ? ENOTCONN : EPIPE;
		goto out;
	}
	struct iovec v[WS_OUT_IOV];
	uint8_t hdr[WS_OUT_FRAMES][10];
	struct frame_plan f[WS_OUT_FRAMES];
	size_t nv = 0, nf = 0, total = 0, ci = 0, coff = 0;
	while (nf < WS_OUT_FRAMES && nv + 2 <= WS_OUT_IOV) {
		size_t slot = nv++, take = 0;
		while (take < WS_OUT_FRAME && ci < (size_t)iovcnt && nv < WS_OUT_IOV) {
			size_t avail = iov[ci].iov_len - coff;
			size_t t = avail < WS_OUT_FRAME - take ? avail : WS_OUT_FRAME - take;
			if (t) {
				v[nv].iov_base = (uint8_t *)iov[ci].iov_base + coff;
				v[nv].iov_len = t;
				nv++;
			}
			take += t;
			coff += t;
			if (coff == iov[ci].iov_len) {
				ci++;
				coff = 0;
			}
		}
		if (take == 0) {
			nv--;
			break;
		}
		v[slot].iov_base = hdr[nf];
		v[slot].iov_len = ws_frame_header(hdr[nf], WS_OP_BINARY, true, take);
		total += v[slot].iov_len + take;
		f[nf] = (struct frame_plan){ slot, nv, total, take };
		nf++;
	}
	if (nf == 0) {
		ret = 0;
		goto out;
	}
	ssize_t n = w->inner.ops->writev(&w->inner, v, (int)nv);
	if (n <= 0) {
		if (n == 0)
			errno = EAGAIN;
		goto out;
	}
	size_t done = 0, start = 0;
	ret = 0;
	for (size_t k = 0; k < nf; k++) {
		if ((size_t)n >= f[k].end) {
			done += f[k].payload;
		} else if ((size_t)n > start) {
			if (!keep_rest(w, v, &f[k], (size_t)n - start)) {
				/* A cut frame cannot be finished: the stream is lost. */
				errno = ENOMEM;
				ret = -1;
				goto out;
			}
			done += f[k].payload;
			break;
		} else {
			break;
		}
		start = f[k].end;
	}
	ret = (ssize_t)done;
out:
	update_flags(s, w);
	return ret;
}

/* ---- closing ---------------------------------------------------------------- */

static void ws_close(struct net_stream *s)
{
	struct ws *w = s->impl;
	if (!w)
		return;
	if (w->state == WS_OPEN && !w->eof)
		send_close(w, WS_CLOSE_NORMAL); /* the server ends it (MQTT reasons) */
	pend_flush(w);
	if (w->state == WS_FAILED) {
		/* Read what the client sent after its bad request or frame, so
		 * that closing sends FIN, not a reset that may destroy the answer
		 * before the client reads it. */
		uint8_t sink[4096];
		for (size_t total = 0; total < WS_DRAIN_MAX;) {
			ssize_t n = w->inner.ops->read(&w->inner, sink, sizeof sink);
			if (n <= 0)
				break;
			total += (size_t)n;
		}
	}
	w->inner.ops->close(&w->inner);
	free(w->hs);
	free(w->pend);
	free(w);
	*s = (struct net_stream){ .ops = s->ops, .fd = -1 };
}

static int ws_flush(struct net_stream *s)
{
	struct ws *w = s->impl;
	int r = pend_flush(w);
	update_flags(s, w);
	return r;
}

/* wss: the certificate is the TLS stream's, underneath. */
static const struct net_peer_cert *ws_peer_cert(const struct net_stream *s)
{
	const struct ws *w = s->impl;
	return w->inner.ops->peer_cert(&w->inner);
}

static bool ws_revoked(const struct net_stream *s)
{
	const struct ws *w = s->impl;
	return w->inner.ops->revoked && w->inner.ops->revoked(&w->inner);
}

static const struct net_stream_ops ws_ops = {
	.read = ws_read, .writev = ws_writev, .close = ws_close,
	.flush = ws_flush, .pending = ws_pending,
};
/* Over a stream with a peer certificate (TLS): the same, passing it on. */
static const struct net_stream_ops ws_cert_ops = {
	.read = ws_read, .writev = ws_writev, .close = ws_close,
	.flush = ws_flush, .pending = ws_pending,
	.peer_cert = ws_peer_cert, .revoked = ws_revoked,
};

enum mote_err net_stream_ws(struct net_stream *s, const struct net_stream *inner,
			    const struct ws_options *opts)
{
	struct ws *w = calloc(1, sizeof *w);
	if (!w)
		return MOTE_ENOMEM;
	w->inner = *inner;
	w->state = WS_HANDSHAKE;
	w->opts = *opts;
	ws_decoder_init(&w->dec, opts->max_frame);
	*s = (struct net_stream){ .ops = inner->ops->peer_cert ? &ws_cert_ops : &ws_ops,
				  .fd = inner->fd, .impl = w };
	return MOTE_OK;
}
