/*
 * conn.c - one MQTT network connection: reading and framing packets,
 * dispatching them, writing, timeouts and closing.
 *
 * Reading: bytes are read into the broker's shared read buffer and complete
 * packets are handled in place; only a partial packet at the end is copied
 * into a per-connection buffer (freed again once it completes), so an idle
 * connection holds no input buffer. A packet larger than max_packet_size is
 * refused from its fixed header, before its body is read.
 *
 * Writing: packets are queued in the connection's outq and flushed once per
 * loop iteration (a deferred callback), so many packets to one client leave
 * in one writev.
 *
 * Invariants: state CONN_CLOSED means the fd is closed, the watcher and timer
 * are stopped and the session detached; the struct is freed by the deferred
 * free callback and nothing may queue output on it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "broker/broker_int.h"

static void conn_on_io(struct loop *loop, struct loop_io *io, uint32_t events);
static void conn_on_timer(struct loop *loop, struct loop_timer *t);

void conn_fill_client(const struct conn *c, struct broker_client *out)
{
	memset(out, 0, sizeof *out);
	if (c->session) {
		out->client_id = c->session->client_id;
		out->client_id_len = c->session->client_id_len;
	}
	out->username = c->username;
	out->username_len = c->username_len;
	out->principal = c->principal;
	out->peer = net_peer_format(&c->peer, out->peer_text, sizeof out->peer_text);
	out->version = c->version;
	out->transport = c->transport;
	const struct net_peer_cert *pc =
		c->stream.ops->peer_cert ? c->stream.ops->peer_cert(&c->stream) : NULL;
	if (pc) {
		out->cert_cn = pc->cn;
		out->cert_uri = pc->uri;
		out->cert_serial = pc->serial;
	}
}

const char *conn_peer(const struct conn *c, char *buf)
{
	return net_peer_format(&c->peer, buf, NET_PEER_TEXT);
}

void conn_log_fault(const struct conn *c, const char *event, const char *why)
{
	char id[96] = "\"\"", peer[NET_PEER_TEXT];
	if (c->session)
		mote_log_quote(id, sizeof id, c->session->client_id, c->session->client_id_len);
	MOTE_INFO("broker", "event=%s peer=%s client=%s why=\"%s\"", event, conn_peer(c, peer), id,
		  why ? why : "");
}

/* The connect timeout runs from here, so it bounds the TLS handshake too. */
static struct conn *conn_new(struct broker *b, struct net_stream *stream,
			     const struct net_peer *peer, uint8_t transport)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c) {
		stream->ops->close(stream);
		STAT_ADD(b, connections_refused, 1);
		return NULL;
	}
	c->b = b;
	c->dirty_idx = NOT_DIRTY;
	c->stream = *stream;
	int fd = c->stream.fd;
	c->transport = transport;
	outq_init(&c->out);
	c->peer = *peer;
	c->will_on_close = true;
	c->last_rx_ms = loop_now(b->loop);
	loop_timer_init(&c->timer, conn_on_timer, c);
	if (loop_io_start(b->loop, &c->io, fd, LOOP_READ, conn_on_io, c) != MOTE_OK ||
	    loop_timer_start(b->loop, &c->timer, b->cfg.connect_timeout_ms) != MOTE_OK) {
		loop_io_stop(b->loop, &c->io);
		c->stream.ops->close(&c->stream);
		free(c);
		STAT_ADD(b, connections_refused, 1);
		return NULL;
	}
	c->next = b->conns;
	if (b->conns)
		b->conns->prev = c;
	b->conns = c;
	b->conn_count++;
	atomic_fetch_add_explicit(&b->shared->conn_count, 1, memory_order_relaxed);
	return c;
}

void conn_accept(struct broker *b, struct net_stream *stream, const struct net_peer *peer,
		 uint8_t transport)
{
	struct conn *c = conn_new(b, stream, peer, transport);
	char text[NET_PEER_TEXT];
	if (c)
		MOTE_DEBUG("broker", "event=accept peer=%s", conn_peer(c, text));
}

static size_t consume(struct conn *c, const uint8_t *buf, size_t len, uint32_t *need);
static bool keep_partial(struct conn *c, const uint8_t *src, size_t n, uint32_t need);
static void conn_read_all(struct conn *c);

void conn_adopt(struct broker *b, struct net_stream *stream, const struct net_peer *peer,
		uint8_t transport, const uint8_t *bytes, size_t len)
{
	struct conn *c = conn_new(b, stream, peer, transport);
	if (!c)
		return;
	if (len > 0) {
		/* What the other shard had read: handled as if it had just arrived. */
		uint32_t need;
		size_t used = consume(c, bytes, len, &need);
		if (c->state != CONN_CLOSED && used < len &&
		    !keep_partial(c, bytes + used, len - used, need)) {
			conn_close(c, -1, NULL);
			return;
		}
	}
	/* A TLS stream may hold decrypted bytes no readiness event announces. */
	if (c->state != CONN_CLOSED && c->stream.ops->pending &&
	    c->stream.ops->pending(&c->stream) > 0)
		conn_read_all(c);
}

/*
 * A CONNECT whose client id lives on another shard: the connection moves
 * there with the bytes read so far (this CONNECT and whatever followed), and
 * is forgotten here without closing its socket. Returns true if it moved.
 */
static void conn_free(struct loop *loop, void *data);
static void conn_defer_free(struct conn *c);
static void conn_undirty(struct conn *c);

static bool conn_move_to_home(struct conn *c, const struct mqtt_connect *p,
			      const uint8_t *buf, uint32_t pkt_len, size_t len)
{
	struct broker *b = c->b;
	if (b->nshards <= 1 || p->client_id.len == 0)
		return false; /* assigned ids are drawn to live here (connect.c) */
	uint32_t home = shard_of_id(b, p->client_id.p, p->client_id.len);
	if (home == b->shard_id)
		return false;
	struct inbox_item it = { .kind = IN_ADOPT, .stream = c->stream, .transport = c->transport };
	it.data = malloc(len);
	if (!it.data) {
		/* Serving it here would split its session over two shards. */
		conn_close(c, -1, NULL);
		return true;
	}
	memcpy(it.data, buf, len);
	it.len = (uint32_t)len;
	it.peer = c->peer;
	STAT_SUB(b, bytes_received, pkt_len); /* the home shard counts it */
	/* Forget it here: the stream (socket and TLS session) now belongs to
	 * the item. */
	c->state = CONN_CLOSED;
	conn_undirty(c);
	loop_io_stop(b->loop, &c->io);
	loop_timer_stop(b->loop, &c->timer);
	conn_defer_free(c);
	shard_send(b, home, &it);
	return true;
}

static void conn_free(struct loop *loop, void *data)
{
	(void)loop;
	struct conn *c = data;
	struct broker *b = c->b;
	if (c->prev)
		c->prev->next = c->next;
	else
		b->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	b->conn_count--;
	atomic_fetch_sub_explicit(&b->shared->conn_count, 1, memory_order_relaxed);
	conn_release(c);
	broker_conn_gone(b);
}

void conn_release(struct conn *c)
{
	persist_forget_conn(c->b, c); /* held acks must not find it later */
	outq_free(&c->out, &c->b->outbufs);
	free(c->in);
	if (c->alias_in) {
		for (uint32_t i = 0; i <= c->b->cfg.topic_alias_max; i++)
			free(c->alias_in[i].topic);
		free(c->alias_in);
	}
	if (c->alias_out) {
		for (uint32_t i = 0; i < c->alias_out_used; i++)
			free(c->alias_out[i].topic);
		free(c->alias_out);
	}
	free(c->username);
	free(c);
}

/* ---- writing ----------------------------------------------------------- */

/* may_close: false while routing (nothing may close synchronously then:
 * route.c), so a write error closes the connection after the batch. */
static void conn_flush(struct conn *c, bool may_close)
{
	if (c->state == CONN_CLOSED || (c->out.pending == 0 && !c->stream.want_write))
		return;
	size_t written = 0;
	enum mote_err err = MOTE_OK;
	/* The transport's own bytes (a TLS record or handshake flight) first. */
	if (c->stream.want_write && c->stream.ops->flush && c->stream.ops->flush(&c->stream) < 0)
		err = errno == EAGAIN || errno == EWOULDBLOCK ? MOTE_EAGAIN : MOTE_EIO;
	if (err == MOTE_OK && c->out.pending)
		err = outq_write(&c->out, &c->b->outbufs, &c->stream, &written);
	if (err == MOTE_OK && c->stream.want_write)
		err = MOTE_EAGAIN; /* all accepted, not all sent */
	STAT_ADD(c->b, bytes_sent, written);
	if (err == MOTE_OK) {
		if (c->write_blocked) {
			c->write_blocked = false;
			loop_io_modify(c->b->loop, &c->io, LOOP_READ);
		}
	} else if (err == MOTE_EAGAIN) {
		if (!c->write_blocked) {
			c->write_blocked = true;
			loop_io_modify(c->b->loop, &c->io, LOOP_READ | LOOP_WRITE);
		}
	} else if (may_close) {
		conn_log_fault(c, "write_error", c->stream.fault ? c->stream.fault : mote_strerror(err));
		conn_close(c, -1, NULL);
	} else {
		conn_fail(c);
	}
}

/* The shard's idle callback: writes every connection that has output. */
static void flush_dirty(struct loop *loop, void *data)
{
	(void)loop;
	struct broker *b = data;
	while (b->dirty_len > 0) {
		struct conn *c = b->dirty[--b->dirty_len];
		c->dirty_idx = NOT_DIRTY;
		conn_flush(c, true);
	}
}

static void conn_undirty(struct conn *c)
{
	struct broker *b = c->b;
	uint32_t i = c->dirty_idx;
	if (i == NOT_DIRTY)
		return;
	struct conn *last = b->dirty[--b->dirty_len];
	b->dirty[i] = last;
	last->dirty_idx = i;
	c->dirty_idx = NOT_DIRTY;
}

/*
 * Small output waits until the loop runs out of input (or a few busy rounds
 * pass), so that under load many packets to one client leave in one write
 * and wake the client once; output past FLUSH_NOW_BYTES is written at once
 * (a write error then closes the connection after the batch, via conn_fail).
 */
void conn_schedule_flush(struct conn *c)
{
	struct broker *b = c->b;
	if (c->state == CONN_CLOSED || c->write_blocked)
		return;
	if (c->out.pending >= FLUSH_NOW_BYTES) {
		conn_undirty(c);
		conn_flush(c, false);
		return;
	}
	if (c->dirty_idx != NOT_DIRTY)
		return;
	if (b->dirty_len == b->dirty_cap) {
		uint32_t cap = b->dirty_cap ? b->dirty_cap * 2 : 64;
		struct conn **d = realloc(b->dirty, cap * sizeof *d);
		if (!d) {
			conn_flush(c, false); /* cannot wait: write now */
			return;
		}
		b->dirty = d;
		b->dirty_cap = cap;
	}
	c->dirty_idx = b->dirty_len;
	b->dirty[b->dirty_len++] = c;
	loop_defer_idle(b->loop, &b->flush_idle, flush_dirty, b);
}

enum mote_err conn_send_packet(struct conn *c, const struct mqtt_packet *p)
{
	size_t size, used;
	if (c->state == CONN_CLOSED)
		return MOTE_ECLOSED;
	enum mote_err err = mqtt_encoded_size(p, c->version, &size);
	if (err != MOTE_OK)
		return err;
	uint8_t *dst = outq_reserve(&c->out, &c->b->outbufs, size);
	if (!dst) {
		conn_fail(c);
		return MOTE_ENOMEM;
	}
	err = mqtt_encode(p, c->version, dst, size, &used);
	if (err == MOTE_OK)
		err = outq_commit(&c->out, &c->b->outbufs, used);
	if (err != MOTE_OK) {
		conn_fail(c);
		return err;
	}
	conn_schedule_flush(c);
	return MOTE_OK;
}

enum mote_err conn_send_bytes(struct conn *c, const uint8_t *bytes, size_t len)
{
	if (c->state == CONN_CLOSED)
		return MOTE_ECLOSED;
	uint8_t *dst = outq_reserve(&c->out, &c->b->outbufs, len);
	if (dst)
		memcpy(dst, bytes, len);
	if (!dst || outq_commit(&c->out, &c->b->outbufs, len) != MOTE_OK) {
		conn_fail(c);
		return MOTE_ENOMEM;
	}
	conn_schedule_flush(c);
	return MOTE_OK;
}

void conn_send_ack(struct conn *c, enum mqtt_type type, uint16_t id, uint8_t reason)
{
	struct mqtt_packet p = { .type = type };
	p.u.ack.packet_id = id;
	p.u.ack.reason = c->version == MQTT_V5 ? reason : 0; /* 3.1.1 has none */
	conn_send_packet(c, &p);
}

/* ---- closing ----------------------------------------------------------- */

/*
 * One loop_defer serves both the deferred close (conn_fail) and the free
 * after a close: if a close comes first while the deferred close still
 * waits, that entry becomes the free.
 */
static void conn_defer_free(struct conn *c)
{
	if (c->end_defer.queued)
		c->end_defer.fn = conn_free;
	else
		loop_defer(c->b->loop, &c->end_defer, conn_free, c);
}

static void conn_fail_cb(struct loop *loop, void *data)
{
	(void)loop;
	struct conn *c = data;
	if (c->state == CONN_CLOSED)
		return;
	conn_log_fault(c, "connection_failed", "out of memory or encoding failure");
	STAT_ADD(c->b, msgs_dropped, 1);
	conn_close(c, -1, NULL);
}

void conn_fail(struct conn *c)
{
	if (c->state == CONN_CLOSED || c->failing)
		return;
	c->failing = true;
	loop_defer(c->b->loop, &c->end_defer, conn_fail_cb, c);
}

void conn_close(struct conn *c, int reason, const char *why)
{
	struct broker *b = c->b;
	if (c->state == CONN_CLOSED)
		return;
	if (reason >= 0 && c->version == MQTT_V5 && c->state == CONN_ACTIVE) {
		struct mqtt_packet p = { .type = MQTT_DISCONNECT };
		p.u.disconnect.reason = (uint8_t)reason;
		if (why) {
			size_t n = strlen(why);
			p.u.disconnect.props.reason_string =
				(struct mqtt_str){ (const uint8_t *)why, (uint16_t)(n > 200 ? 200 : n) };
			MQTT_SET(&p.u.disconnect.props, MQTT_PROP_REASON_STRING);
		}
		conn_send_packet(c, &p);
	}
	/* Best effort: push what is queued (acks, the DISCONNECT) before closing. */
	if (c->out.pending) {
		size_t written;
		outq_write(&c->out, &c->b->outbufs, &c->stream, &written);
		STAT_ADD(b, bytes_sent, written);
	}
	if (c->stream.want_write && c->stream.ops->flush)
		c->stream.ops->flush(&c->stream);
	bool was_active = c->state == CONN_ACTIVE;
	c->state = CONN_CLOSED;
	persist_forget_conn(b, c);
	conn_undirty(c);
	loop_io_stop(b->loop, &c->io);
	loop_timer_stop(b->loop, &c->timer);
	/* The hook hears of the end before the stream goes: what it is told
	 * (the certificate's names) lives in the TLS stream. */
	if (c->session && was_active && b->hooks.on_disconnect) {
		struct broker_client info;
		conn_fill_client(c, &info);
		b->hooks.on_disconnect(b->hooks.ctx, &info, reason >= 0 ? (uint8_t)reason : 0);
	}
	c->stream.ops->close(&c->stream);
	if (c->session) {
		struct session *s = c->session;
		if (was_active)
			STAT_SUB(b, clients_connected, 1);
		char id[96];
		char peer[NET_PEER_TEXT];
		MOTE_DEBUG("broker", "event=disconnect peer=%s client=%s will=%d", conn_peer(c, peer),
			   mote_log_quote(id, sizeof id, s->client_id, s->client_id_len),
			   c->will_on_close);
		c->session = NULL;
		s->conn = NULL;
		session_detach(s, c->will_on_close);
	}
	conn_defer_free(c);
}

/* ---- timers ------------------------------------------------------------ */

void conn_start_keepalive(struct conn *c)
{
	loop_timer_stop(c->b->loop, &c->timer);
	if (c->keepalive_s == 0)
		return;
	/* [MQTT-3.1.2-24] one and a half times the keep alive period */
	uint64_t window = (uint64_t)c->keepalive_s * 1500u;
	uint64_t idle = loop_now(c->b->loop) - c->last_rx_ms;
	loop_timer_start(c->b->loop, &c->timer, idle >= window ? 0 : window - idle);
}

static void conn_on_timer(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	struct conn *c = t->data;
	if (c->state == CONN_NEW) {
		bool handshaking = c->transport == BROKER_TRANSPORT_TLS && c->stream.ops->peer_cert &&
				   !c->stream.ops->peer_cert(&c->stream);
		if (handshaking)
			STAT_ADD(c->b, tls_failed, 1);
		conn_log_fault(c, handshaking ? "tls_handshake_timeout" : "connect_timeout",
			       handshaking ? "TLS handshake not completed in time" : "no CONNECT in time");
		conn_close(c, -1, NULL);
		return;
	}
	uint64_t window = (uint64_t)c->keepalive_s * 1500u;
	if (loop_now(c->b->loop) - c->last_rx_ms >= window) {
		conn_log_fault(c, "keepalive_timeout", "no packet within 1.5 x keep alive");
		conn_close(c, MQTT_RC_KEEP_ALIVE_TIMEOUT, "keep alive timeout");
		return;
	}
	conn_start_keepalive(c); /* traffic came since: wait for the rest */
}

/* ---- reading ----------------------------------------------------------- */

static void protocol_fault(struct conn *c, const struct mqtt_fault *f)
{
	conn_log_fault(c, "protocol_error", f->why);
	conn_close(c, f->reason, f->why);
}

/* pkt is one whole packet of len bytes; `rest` bytes from pkt on were read
 * (a CONNECT that moves to another shard takes them along). */
static void dispatch(struct conn *c, const uint8_t *pkt, uint32_t len, size_t rest)
{
	struct mqtt_packet p;
	struct mqtt_fault fault = { MQTT_RC_MALFORMED, "malformed packet" };
	uint8_t type = pkt[0] >> 4;

	if (c->state == CONN_NEW && type != MQTT_CONNECT) {
		/* [MQTT-3.1.0-1] the first packet must be CONNECT: close, no CONNACK */
		conn_log_fault(c, "protocol_error", "first packet is not CONNECT");
		conn_close(c, -1, NULL);
		return;
	}
	if (c->state == CONN_ACTIVE && type == MQTT_CONNECT) {
		fault = (struct mqtt_fault){ MQTT_RC_PROTOCOL_ERROR, "second CONNECT" };
		protocol_fault(c, &fault); /* [MQTT-3.1.0-2] */
		return;
	}
	enum mote_err err = mqtt_decode(pkt, len, c->version, true, &p, &fault);
	if (err != MOTE_OK) {
		if (type == MQTT_CONNECT) {
			handle_connect_fault(c, &p, &fault);
			return;
		}
		protocol_fault(c, &fault);
		return;
	}

	switch (p.type) {
	case MQTT_CONNECT:
		if (!conn_move_to_home(c, &p.u.connect, pkt, len, rest))
			handle_connect(c, &p.u.connect);
		break;
	case MQTT_PUBLISH:
		handle_publish(c, &p.u.publish);
		break;
	case MQTT_PUBACK:
		handle_puback(c, &p.u.ack);
		break;
	case MQTT_PUBREC:
		handle_pubrec(c, &p.u.ack);
		break;
	case MQTT_PUBREL:
		handle_pubrel(c, &p.u.ack);
		break;
	case MQTT_PUBCOMP:
		handle_pubcomp(c, &p.u.ack);
		break;
	case MQTT_SUBSCRIBE:
		handle_subscribe(c, &p.u.subscribe);
		break;
	case MQTT_UNSUBSCRIBE:
		handle_unsubscribe(c, &p.u.unsubscribe);
		break;
	case MQTT_PINGREQ: {
		struct mqtt_packet r = { .type = MQTT_PINGRESP };
		conn_send_packet(c, &r);
		break;
	}
	case MQTT_DISCONNECT:
		handle_disconnect(c, &p.u.disconnect);
		break;
	case MQTT_AUTH:
		/* No enhanced authentication method is offered, so any AUTH is
		 * out of sequence [MQTT-4.12.0-1]. */
		fault = (struct mqtt_fault){ MQTT_RC_PROTOCOL_ERROR, "unexpected AUTH" };
		protocol_fault(c, &fault);
		break;
	default:
		fault = (struct mqtt_fault){ MQTT_RC_PROTOCOL_ERROR, "unexpected packet type" };
		protocol_fault(c, &fault);
		break;
	}
}

/*
 * Handles every complete packet in buf[0..len). Returns the number of bytes
 * consumed; stops early when the connection closes. *need gets the total
 * size of the incomplete packet at the end when its header is known.
 */
static size_t consume(struct conn *c, const uint8_t *buf, size_t len, uint32_t *need)
{
	size_t off = 0;
	*need = 0;
	while (off < len && c->state != CONN_CLOSED) {
		struct mqtt_frame fr = { 0 };
		struct mqtt_fault fault;
		enum mote_err err =
			mqtt_frame_parse(buf + off, len - off, c->b->cfg.max_packet_size, &fr, &fault);
		if (err == MOTE_EAGAIN) {
			*need = fr.total_len; /* known once the fixed header is whole */
			break;
		}
		if (err != MOTE_OK) {
			if (c->state == CONN_NEW)
				conn_close(c, -1, NULL); /* no CONNACK yet: just close */
			else
				protocol_fault(c, &fault);
			break;
		}
		c->last_rx_ms = loop_now(c->b->loop);
		STAT_ADD(c->b, bytes_received, fr.total_len);
		dispatch(c, buf + off, fr.total_len, len - off);
		off += fr.total_len;
	}
	return off;
}

/*
 * Keeps the unconsumed tail of a read for the next one. The buffer is sized
 * for the whole packet when its size is known, so that a packet larger than
 * READ_CHUNK completes in its own buffer without repeated growth.
 */
static bool keep_partial(struct conn *c, const uint8_t *src, size_t n, uint32_t need)
{
	uint32_t cap = need > n ? need : (uint32_t)n;
	if (cap < 256)
		cap = 256;
	if (c->in == NULL || c->in_cap < cap) {
		uint8_t *p = malloc(cap);
		if (!p)
			return false;
		memmove(p, src, n);
		free(c->in);
		c->in = p;
		c->in_cap = cap;
	} else {
		memmove(c->in, src, n);
	}
	c->in_len = (uint32_t)n;
	c->in_need = need;
	return true;
}

static void drop_partial(struct conn *c)
{
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = c->in_need = 0;
}

/*
 * Reads into the broker's shared READ_CHUNK buffer, so one read takes up to
 * READ_CHUNK bytes whatever came before. A partial packet left by the last
 * read is moved to the front of it first; only a packet larger than
 * READ_CHUNK is completed in the connection's own buffer (sized by
 * keep_partial from its fixed header, which the frame parser has already
 * checked against max_packet_size).
 */
static void conn_read(struct conn *c)
{
	struct broker *b = c->b;
	uint8_t *buf = b->read_buf;
	size_t cap = READ_CHUNK, have = 0;

	if (c->in_len > 0) {
		if (c->in_need > READ_CHUNK) {
			buf = c->in;
			cap = c->in_need;
		} else {
			memcpy(buf, c->in, c->in_len);
		}
		have = c->in_len;
	}

	ssize_t n = c->stream.ops->read(&c->stream, buf + have, cap - have);
	if (n == 0) {
		conn_close(c, -1, NULL); /* peer closed: abnormal unless DISCONNECT came */
		return;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		if (c->stream.fault) {
			/* The transport said why (a refused certificate, not TLS at
			 * all, ...): the operator sees it; other clients never do. */
			bool hs = c->stream.ops->peer_cert && !c->stream.ops->peer_cert(&c->stream);
			/* wss: a refused WebSocket upgrade (net/ws.h faults say
			 * "WebSocket ...") comes after a complete TLS handshake,
			 * even when no client certificate was asked for. */
			if (c->transport == BROKER_TRANSPORT_WSS &&
			    strncmp(c->stream.fault, "WebSocket ", 10) == 0)
				hs = false;
			if (hs)
				STAT_ADD(b, tls_failed, 1);
			conn_log_fault(c, hs ? "tls_handshake_failed" : "transport_error",
				       c->stream.fault);
		}
		conn_close(c, -1, NULL);
		return;
	}
	have += (size_t)n;

	uint32_t need;
	size_t used = consume(c, buf, have, &need);
	if (c->state == CONN_CLOSED)
		return;
	size_t rest = have - used;
	bool kept = true;
	if (rest == 0) {
		drop_partial(c);
	} else if (buf != c->in) {
		kept = keep_partial(c, buf + used, rest, need);
	} else if (used == 0) {
		c->in_len = (uint32_t)have; /* the big packet is still incomplete */
	} else {
		/* The big packet completed: carry what followed it in a buffer of
		 * its own size, not the big one. */
		uint8_t *big = c->in;
		c->in = NULL;
		c->in_cap = 0;
		kept = keep_partial(c, big + used, rest, need);
		free(big);
	}
	if (!kept)
		conn_close(c, -1, NULL);
}

/* Arms write interest when the transport waits for the fd (TLS handshake). */
static void conn_watch_write(struct conn *c)
{
	if (c->state != CONN_CLOSED && c->stream.want_write && !c->write_blocked) {
		c->write_blocked = true;
		loop_io_modify(c->b->loop, &c->io, LOOP_READ | LOOP_WRITE);
	}
}

/* Reads while the transport holds decoded bytes (bounded: one TLS record
 * is at most 16 KiB and each round takes up to READ_CHUNK). */
static void conn_read_all(struct conn *c)
{
	for (int rounds = 0; rounds < 64 && c->state != CONN_CLOSED; rounds++) {
		conn_read(c);
		if (c->state == CONN_CLOSED || !c->stream.ops->pending ||
		    c->stream.ops->pending(&c->stream) == 0)
			break;
	}
	conn_watch_write(c);
}

static void conn_on_io(struct loop *loop, struct loop_io *io, uint32_t events)
{
	(void)loop;
	struct conn *c = io->data;
	if ((events & LOOP_WRITE) && c->state != CONN_CLOSED) {
		conn_flush(c, true);
		/* A handshake flight just went: the handshake may have finished
		 * with the client's first records already decoded. */
		if (c->state != CONN_CLOSED && c->stream.ops->pending &&
		    c->stream.ops->pending(&c->stream) > 0)
			conn_read_all(c);
	}
	if ((events & LOOP_READ) && c->state != CONN_CLOSED)
		conn_read_all(c);
}

void conn_recheck_all(struct broker *b)
{
	for (struct conn *c = b->conns; c; c = c->next) {
		if (c->state == CONN_CLOSED || !c->stream.ops->revoked ||
		    !c->stream.ops->revoked(&c->stream))
			continue;
		const struct net_peer_cert *pc =
			c->stream.ops->peer_cert ? c->stream.ops->peer_cert(&c->stream) : NULL;
		char id[96] = "\"\"", peer[NET_PEER_TEXT], cn[96] = "\"\"";
		if (c->session)
			mote_log_quote(id, sizeof id, c->session->client_id,
				       c->session->client_id_len);
		if (pc && pc->cn)
			mote_log_quote(cn, sizeof cn, (const uint8_t *)pc->cn, strlen(pc->cn));
		MOTE_WARN("broker", "event=revoked_disconnect peer=%s client=%s cn=%s serial=%s",
			  conn_peer(c, peer), id, cn, pc && pc->serial ? pc->serial : "?");
		STAT_ADD(b, revoked_disconnects, 1);
		/* 0x98 administrative action: the hub ended it on the operator's
		 * word; 3.1.1 has no DISCONNECT from the server, so just close. */
		conn_close(c, MQTT_RC_ADMIN_ACTION, "certificate revoked");
	}
}
