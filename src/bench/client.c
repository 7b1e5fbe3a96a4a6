/*
 * client.c - one benchmark connection: a non-blocking MQTT client state
 * machine on its worker's loop (connect, CONNECT/CONNACK, SUBSCRIBE/SUBACK,
 * then publishing or receiving).
 *
 * Invariants:
 *   - Buffers are allocated once per client (run.c); messages are encoded
 *     straight into `out` and parsed in place in `in`: no allocation per
 *     message.
 *   - A client is closed at most once (close_client); its memory lives until
 *     the worker ends, so a stale epoll event never touches freed memory.
 *   - A packet that needs an answer is only handled when `out` has room for
 *     it; otherwise reading stops until the socket drains (back-pressure).
 *   - Counters shared with the controller are updated once per batch.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "bench/bench_int.h"
#include "tls/tls.h"

#define SETUP_TIMEOUT_MS 15000u
#define KEEPALIVE_S 60u
#define PING_AFTER_MS 30000u
#define ANSWER_ROOM 16u     /* room for any ack we send */
#define PUMP_BUDGET 256u    /* publishes per pump call, for fairness */

enum close_kind { K_FINISH, K_REFUSED, K_FAILED, K_LOST, K_PROTO, K_SETUP_ACK };

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int phase_of(const struct bclient *c)
{
	return atomic_load_explicit(&c->w->sh->phase, memory_order_acquire);
}

static void mark_done(struct bclient *c)
{
	if (c->done)
		return;
	c->done = true;
	if (c->role == ROLE_PUB)
		CNT_ADD(c->w, pubs_done, 1);
	else if (c->role == ROLE_SUB)
		CNT_ADD(c->w, subs_done, 1);
}

static void close_client(struct bclient *c, enum close_kind kind)
{
	struct worker *w = c->w;
	if (c->state == CS_CLOSED || c->state == CS_IDLE)
		return;
	bool was_ready = c->state == CS_READY;
	loop_io_stop(w->loop, &c->io);
	c->s.ops->close(&c->s);
	c->state = CS_CLOSED;
	if (!was_ready)
		CNT_ADD(w, setup_done, 1);
	else
		CNT_ADD(w, closed_ready, 1);
	bool setup_ended = !was_ready;
	switch (kind) {
	case K_REFUSED: CNT_ADD(w, e_refused, 1); break;
	case K_FAILED: CNT_ADD(w, e_failed, 1); break;
	case K_LOST:
		if (was_ready)
			CNT_ADD(w, e_disc, 1);
		else
			CNT_ADD(w, e_failed, 1);
		break;
	case K_PROTO: CNT_ADD(w, e_proto, 1); break;
	case K_FINISH:
	case K_SETUP_ACK: break;
	}
	if (c->inflight) {
		atomic_fetch_sub_explicit(&w->c.inflight, c->inflight, memory_order_relaxed);
		c->inflight = 0;
	}
	mark_done(c);
	c->out_len = 0;
	c->in_len = 0;
	if (setup_ended)
		worker_setup_ended(w);
}

/* Writes out what is buffered. false when the connection was closed. */
static bool flush(struct bclient *c)
{
	/* TLS: a record or handshake flight the stream holds goes first. */
	if (c->s.want_write && c->s.ops->flush && c->s.ops->flush(&c->s) < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return true;
		close_client(c, c->state == CS_READY ? K_LOST : K_FAILED);
		return false;
	}
	while (c->out_len > 0) {
		struct iovec iov = { .iov_base = c->out, .iov_len = c->out_len };
		ssize_t r = c->s.ops->writev(&c->s, &iov, 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			close_client(c, c->state == CS_READY ? K_LOST : K_FAILED);
			return false;
		}
		c->out_len -= (size_t)r;
		if (c->out_len)
			memmove(c->out, c->out + r, c->out_len);
		c->last_tx_ms = loop_now(c->w->loop);
	}
	return true;
}

static bool wants_more(const struct bclient *c)
{
	const struct bench_cfg *cfg = c->w->sh->cfg;
	return c->role == ROLE_PUB && c->state == CS_READY && !(cfg->count && c->sent >= cfg->count);
}

static void update_interest(struct bclient *c)
{
	const struct bench_cfg *cfg = c->w->sh->cfg;
	if (c->state == CS_CLOSED || c->state == CS_CONNECTING)
		return;
	uint32_t ev = LOOP_READ;
	/* A TLS handshake waiting for the server's flight needs no writability. */
	bool hs_reading = cfg->tls && tls_stream_handshaking(&c->s) && !c->s.want_write;
	if (!hs_reading &&
	    (c->out_len > 0 || c->s.want_write ||
	     (cfg->qos == 0 && cfg->rate <= 0 && wants_more(c) && phase_of(c) == PH_RUN)))
		ev |= LOOP_WRITE;
	if (loop_io_modify(c->w->loop, &c->io, ev) != MOTE_OK)
		close_client(c, K_FAILED);
}

/* Appends an encoded packet to out. false if it did not fit. */
static bool queue_packet(struct bclient *c, const struct mqtt_packet *p)
{
	size_t n = 0;
	if (mqtt_encode(p, c->w->sh->cfg->version, c->out + c->out_len, c->out_cap - c->out_len,
			&n) != MOTE_OK)
		return false;
	c->out_len += n;
	return true;
}

static void check_done(struct bclient *c)
{
	const struct bench_cfg *cfg = c->w->sh->cfg;
	if (c->role == ROLE_PUB && cfg->count && c->sent >= cfg->count && c->inflight == 0 &&
	    c->out_len == 0)
		mark_done(c);
}

void client_pump(struct bclient *c)
{
	struct worker *w = c->w;
	const struct bench_cfg *cfg = w->sh->cfg;
	if (c->state != CS_READY || c->role != ROLE_PUB || phase_of(c) != PH_RUN)
		return;
	uint64_t now_ns = mote_mono_ns();
	uint64_t allowed = UINT64_MAX;
	if (cfg->rate > 0) {
		uint64_t start = atomic_load_explicit(&w->sh->start_ns, memory_order_relaxed);
		double el = now_ns > start ? (double)(now_ns - start) / 1e9 : 0.0;
		allowed = (uint64_t)(cfg->rate * el) + 1;
	}
	uint64_t n = 0, q = 0, bytes = 0;
	size_t need = (size_t)cfg->payload + c->topic_len + 16;
	uint8_t senml[BENCH_SENML_MAX * 48 + 64];
	if (cfg->senml)
		need = (size_t)cfg->senml * 48 + 64 + c->topic_len + 16;
	while (n < PUMP_BUDGET) {
		if (cfg->count && c->sent >= cfg->count)
			break;
		if (cfg->qos && c->inflight >= c->max_inflight)
			break;
		if (c->sent >= allowed)
			break;
		if (c->out_cap - c->out_len < need) {
			if (!flush(c))
				goto out;
			if (c->out_cap - c->out_len < need)
				break;
		}
		size_t plen = cfg->payload;
		if (cfg->senml)
			plen = bench_senml(senml, cfg->senml, c->sent, cfg->senml_base_s);
		struct mqtt_publish pub = { .qos = cfg->qos,
					    .topic = { (const uint8_t *)c->topic, c->topic_len },
					    .payload = { NULL, plen } };
		if (cfg->qos) {
			if (++c->next_pid == 0)
				c->next_pid = 1;
			pub.packet_id = c->next_pid;
		}
		size_t hl = 0;
		if (mqtt_encode_publish_head(&pub, cfg->version, c->out + c->out_len,
					     c->out_cap - c->out_len, &hl) != MOTE_OK) {
			close_client(c, K_PROTO);
			goto out;
		}
		uint8_t *payload = c->out + c->out_len + hl;
		if (cfg->senml) {
			memcpy(payload, senml, plen);
		} else {
			put_be64(payload, mote_mono_ns());
			put_be64(payload + 8, c->sent);
		}
		c->out_len += hl + plen;
		bytes += plen;
		c->sent++;
		n++;
		if (cfg->qos) {
			c->inflight++;
			q++;
		}
	}
	flush(c);
out:
	if (n) {
		CNT_ADD(w, sent, n);
		CNT_ADD(w, bytes_sent, bytes);
		CNT_ADD(w, expected, n * c->deliveries);
		if (q)
			CNT_ADD(w, inflight, q);
		atomic_store_explicit(&w->c.last_pub_ns, now_ns, memory_order_relaxed);
	}
	if (c->state != CS_CLOSED)
		check_done(c);
}

static void become_ready(struct bclient *c)
{
	c->state = CS_READY;
	CNT_ADD(c->w, setup_done, 1);
	worker_setup_ended(c->w);
}

static void on_connack(struct bclient *c, const struct mqtt_connack *ca)
{
	const struct bench_cfg *cfg = c->w->sh->cfg;
	if (c->state != CS_CONNACK) {
		close_client(c, K_PROTO);
		return;
	}
	if (ca->reason != 0) {
		close_client(c, K_REFUSED);
		return;
	}
	CNT_ADD(c->w, connected, 1);
	atomic_store_explicit(&c->w->c.last_connect_ns, mote_mono_ns(), memory_order_relaxed);
	c->max_inflight = (uint16_t)(cfg->inflight > 65535 ? 65535 : cfg->inflight);
	if (cfg->version == MQTT_V5 && MQTT_HAS(&ca->props, MQTT_PROP_RECEIVE_MAX) &&
	    ca->props.receive_max < c->max_inflight)
		c->max_inflight = ca->props.receive_max;
	if (c->role != ROLE_SUB) {
		become_ready(c);
		return;
	}
	struct mqtt_sub_entry e = { .filter = { (const uint8_t *)c->topic, c->topic_len },
				    .opts = { .qos = cfg->qos } };
	struct mqtt_packet p = { .type = MQTT_SUBSCRIBE };
	p.u.subscribe.packet_id = 1;
	p.u.subscribe.count = 1;
	p.u.subscribe.entries = &e;
	if (!queue_packet(c, &p)) {
		close_client(c, K_PROTO);
		return;
	}
	c->state = CS_SUBACK;
}

static void on_publish(struct bclient *c, const struct mqtt_publish *pub)
{
	struct worker *w = c->w;
	const struct bench_cfg *cfg = w->sh->cfg;
	uint64_t now = mote_mono_ns();
	if (c->state != CS_READY) {
		close_client(c, K_PROTO);
		return;
	}
	c->received++;
	CNT_ADD(w, received, 1);
	CNT_ADD(w, bytes_received, pub->payload.len);
	atomic_store_explicit(&w->c.last_rx_ns, now, memory_order_relaxed);
	if (pub->payload.len >= BENCH_MIN_PAYLOAD) {
		uint64_t ts = get_be64(pub->payload.p);
		/* Only plausible stamps: foreign payloads must not skew latency. */
		if (ts <= now && now - ts < 3600ull * 1000000000ull)
			hist_record(&w->lat, (now - ts) / 1000u);
	}
	if (pub->qos) {
		struct mqtt_packet p = { .type = pub->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC };
		p.u.ack.packet_id = pub->packet_id;
		if (!queue_packet(c, &p))
			close_client(c, K_PROTO);
	}
	if (cfg->mode == BENCH_SUB && cfg->count && c->received >= cfg->count)
		mark_done(c);
}

static void on_acked(struct bclient *c, uint8_t reason)
{
	if (c->role != ROLE_PUB || c->inflight == 0) {
		close_client(c, K_PROTO);
		return;
	}
	c->inflight--;
	atomic_fetch_sub_explicit(&c->w->c.inflight, 1, memory_order_relaxed);
	CNT_ADD(c->w, acked, 1);
	atomic_store_explicit(&c->w->c.last_pub_ns, mote_mono_ns(), memory_order_relaxed);
	if (reason >= 0x80)
		CNT_ADD(c->w, e_ack, 1);
}

static void handle(struct bclient *c, const uint8_t *buf, size_t len)
{
	const struct bench_cfg *cfg = c->w->sh->cfg;
	struct mqtt_packet p;
	if (mqtt_decode(buf, len, cfg->version, false, &p, NULL) != MOTE_OK) {
		close_client(c, K_PROTO);
		return;
	}
	switch (p.type) {
	case MQTT_CONNACK:
		on_connack(c, &p.u.connack);
		break;
	case MQTT_SUBACK:
		if (c->state != CS_SUBACK || p.u.suback.count < 1) {
			close_client(c, K_PROTO);
		} else if (p.u.suback.reasons[0] >= 0x80) {
			CNT_ADD(c->w, e_ack, 1);
			close_client(c, K_SETUP_ACK);
		} else {
			become_ready(c);
		}
		break;
	case MQTT_PUBLISH:
		on_publish(c, &p.u.publish);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBCOMP:
		on_acked(c, p.u.ack.reason);
		break;
	case MQTT_PUBREC: {
		if (p.u.ack.reason >= 0x80) { /* 5.0: the flow ends here */
			on_acked(c, p.u.ack.reason);
			break;
		}
		struct mqtt_packet rel = { .type = MQTT_PUBREL };
		rel.u.ack.packet_id = p.u.ack.packet_id;
		if (!queue_packet(c, &rel))
			close_client(c, K_PROTO);
		break;
	}
	case MQTT_PUBREL: {
		struct mqtt_packet comp = { .type = MQTT_PUBCOMP };
		comp.u.ack.packet_id = p.u.ack.packet_id;
		if (!queue_packet(c, &comp))
			close_client(c, K_PROTO);
		break;
	}
	case MQTT_PINGRESP:
		break;
	case MQTT_DISCONNECT:
		close_client(c, K_LOST);
		break;
	default:
		close_client(c, K_PROTO);
		break;
	}
}

/* Handles every whole packet in `in` that there is room to answer. */
static void process_input(struct bclient *c)
{
	size_t off = 0;
	while (c->state != CS_CLOSED && off < c->in_len) {
		struct mqtt_frame f;
		memset(&f, 0, sizeof f);
		enum mote_err e = mqtt_frame_parse(c->in + off, c->in_len - off, 0, &f, NULL);
		if (e == MOTE_EAGAIN) {
			if (f.total_len > c->in_cap) /* larger than this client will ever take */
				close_client(c, K_PROTO);
			break;
		}
		if (e != MOTE_OK) {
			close_client(c, K_PROTO);
			break;
		}
		if (c->out_cap - c->out_len < ANSWER_ROOM) {
			if (!flush(c) || c->out_cap - c->out_len < ANSWER_ROOM)
				break;
		}
		handle(c, c->in + off, f.total_len);
		off += f.total_len;
	}
	if (c->state == CS_CLOSED)
		return;
	c->in_len -= off;
	if (off && c->in_len)
		memmove(c->in, c->in + off, c->in_len);
}

static void read_some(struct bclient *c)
{
	for (int i = 0; i < 8 && c->state != CS_CLOSED; i++) {
		if (c->in_len == c->in_cap)
			break; /* blocked on answers: resumes when out drains */
		ssize_t r = c->s.ops->read(&c->s, c->in + c->in_len, c->in_cap - c->in_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r <= 0) {
			/* a refused TLS handshake is a refused connection */
			close_client(c, c->state == CS_READY ? K_LOST
				     : c->s.fault ? K_REFUSED : K_FAILED);
			return;
		}
		c->in_len += (size_t)r;
		process_input(c);
	}
}

static void send_connect(struct bclient *c)
{
	struct worker *w = c->w;
	const struct bench_cfg *cfg = w->sh->cfg;
	char id[128];
	int idn = snprintf(id, sizeof id, "%s-%u-%u", cfg->id_prefix, w->id, c->seq_id);
	struct mqtt_packet p = { .type = MQTT_CONNECT };
	struct mqtt_connect *cn = &p.u.connect;
	cn->version = cfg->version;
	/* 5.0 keeps clean start with an expiry: a session left by an earlier run
	 * under the same id is not resumed, yet this one outlives its connection.
	 * 3.1.1 can only say "keep" by not cleaning, so there it resumes. */
	cn->clean_start = cfg->session_expiry == 0 || cfg->version == MQTT_V5;
	if (cfg->session_expiry && cfg->version == MQTT_V5) {
		MQTT_SET(&cn->props, MQTT_PROP_SESSION_EXPIRY);
		cn->props.session_expiry = cfg->session_expiry;
	}
	cn->keep_alive = KEEPALIVE_S;
	cn->client_id.p = (const uint8_t *)id;
	cn->client_id.len = (uint16_t)(idn < 0 ? 0 : idn >= (int)sizeof id ? sizeof id - 1 : (size_t)idn);
	if (cfg->username) {
		cn->has_username = true;
		cn->username.p = (const uint8_t *)cfg->username;
		cn->username.len = (uint16_t)strlen(cfg->username);
	}
	if (cfg->password) {
		cn->has_password = true;
		cn->password.p = (const uint8_t *)cfg->password;
		cn->password.len = (uint32_t)strlen(cfg->password);
	}
	if (!queue_packet(c, &p)) {
		close_client(c, K_FAILED);
		return;
	}
	c->state = CS_CONNACK;
	if (loop_io_modify(w->loop, &c->io, LOOP_READ | LOOP_WRITE) != MOTE_OK) {
		close_client(c, K_FAILED);
		return;
	}
	flush(c);
}

static void on_io(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct bclient *c = io->data;
	(void)loop;
	if (c->state == CS_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (getsockopt(c->s.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
			soerr = errno;
		if (soerr == EINPROGRESS || soerr == EALREADY)
			return;
		if (soerr != 0) {
			close_client(c, soerr == ECONNREFUSED ? K_REFUSED : K_FAILED);
			return;
		}
		send_connect(c);
		return;
	}
	if (events & LOOP_READ)
		read_some(c);
	if (c->state == CS_CLOSED)
		return;
	if ((events & LOOP_WRITE) || c->out_len) {
		if (!flush(c))
			return;
		if (c->in_len)
			process_input(c);
		if (c->state == CS_CLOSED)
			return;
	}
	client_pump(c);
	if (c->state == CS_CLOSED)
		return;
	/* TLS may hold decrypted bytes that no readiness event announces. */
	if (c->s.ops->pending && c->s.ops->pending(&c->s) > 0 && c->in_len < c->in_cap) {
		read_some(c);
		if (c->state == CS_CLOSED)
			return;
	}
	update_interest(c);
}

void client_open(struct bclient *c)
{
	struct worker *w = c->w;
	const struct bench_cfg *cfg = w->sh->cfg;
	int one = 1;
	int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CNT_ADD(w, attempted, 1);
	if (fd < 0) {
		CNT_ADD(w, e_failed, 1);
		CNT_ADD(w, setup_done, 1);
		c->state = CS_CLOSED;
		mark_done(c);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (cfg->tls) {
		if (tls_stream_client(cfg->tls, &c->s, fd, cfg->tls_host) != MOTE_OK) {
			close(fd);
			CNT_ADD(w, e_failed, 1);
			CNT_ADD(w, setup_done, 1);
			c->state = CS_CLOSED;
			mark_done(c);
			return;
		}
	} else {
		net_stream_tcp(&c->s, fd);
	}
	c->state = CS_CONNECTING;
	c->deadline_ms = loop_now(w->loop) + SETUP_TIMEOUT_MS;
	if (cfg->nsources) {
		const struct sockaddr_storage *src =
			&cfg->sources[(w->src_rr++ * cfg->threads + w->id) % cfg->nsources];
		socklen_t sl = src->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							  : sizeof(struct sockaddr_in);
		if (bind(fd, (const struct sockaddr *)src, sl) != 0) {
			loop_io_stop(w->loop, &c->io);
			close_client(c, K_FAILED);
			return;
		}
	}
	if (loop_io_start(w->loop, &c->io, fd, LOOP_WRITE, on_io, c) != MOTE_OK) {
		close_client(c, K_FAILED);
		return;
	}
	if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) != 0 &&
	    errno != EINPROGRESS) {
		close_client(c, errno == ECONNREFUSED ? K_REFUSED : K_FAILED);
		return;
	}
}

void client_tick(struct bclient *c, uint64_t now_ms)
{
	if (c->state == CS_IDLE || c->state == CS_CLOSED)
		return;
	if (c->state != CS_READY) {
		if (now_ms > c->deadline_ms)
			close_client(c, K_FAILED);
		return;
	}
	if (now_ms - c->last_tx_ms > PING_AFTER_MS && c->out_cap - c->out_len >= 2) {
		c->out[c->out_len++] = (uint8_t)(MQTT_PINGREQ << 4);
		c->out[c->out_len++] = 0;
		if (!flush(c))
			return;
	}
	client_pump(c);
	if (c->state == CS_CLOSED)
		return;
	check_done(c);
	update_interest(c);
}

void client_finish(struct bclient *c)
{
	if (c->state == CS_CLOSED || c->state == CS_IDLE)
		return;
	if (c->state == CS_READY && c->out_cap - c->out_len >= 2) {
		c->out[c->out_len++] = (uint8_t)(MQTT_DISCONNECT << 4);
		c->out[c->out_len++] = 0;
		if (!flush(c))
			return;
	}
	close_client(c, K_FINISH);
}

void client_free(struct bclient *c)
{
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
}
