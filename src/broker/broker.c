/*
 * broker.c - the broker object: configuration, listeners and accepting,
 * internal publishes, statistics, and shutdown.
 *
 * Accepting: when the process runs out of file descriptors, accept() would
 * fail forever while the listening socket stays readable, spinning the loop;
 * so the listeners pause and retry after 100 ms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker_int.h"
#include "net/ws.h"
#include "tls/tls.h"

void broker_config_defaults(struct broker_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->allow_anonymous = false;
	cfg->max_packet_size = 1024 * 1024;
	cfg->receive_max = 64;
	cfg->topic_alias_max = 16;
	cfg->max_keepalive = 0;
	cfg->max_session_expiry = 0;
	cfg->max_queued = 1000;
	cfg->max_inflight = 64;
	cfg->connect_timeout_ms = 10000;
	cfg->max_connections = 0;
	cfg->sys_interval_s = 10;
	cfg->max_client_outbuf = 4 * 1024 * 1024;
	cfg->threads = 1;
	cfg->fsync = BROKER_FSYNC_ALWAYS;
	cfg->fsync_batch_ms = 10;
	cfg->max_queued_bytes = 64u << 20;
	cfg->queue_full = BROKER_QUEUE_REFUSE_NEWEST;
}

static void sys_publish_cb(struct loop *loop, struct loop_timer *t);
static void accept_retry_cb(struct loop *loop, struct loop_timer *t);

static void shard_free(struct broker *b);

/* One shard's own state; the group fields are set by broker_new. */
static enum mote_err shard_new(const struct broker *proto, uint32_t id, struct loop *loop,
			       struct broker **out)
{
	struct broker *b = calloc(1, sizeof *b);
	if (!b)
		return MOTE_ENOMEM;
	*out = b;
	b->cfg = proto->cfg;
	b->hooks = proto->hooks;
	b->shard_id = id;
	b->nshards = proto->nshards;
	b->shards = proto->shards;
	b->shared = proto->shared;
	b->started_ms = proto->started_ms;
	b->subs = subtree_new();
	b->retained = retain_new();
	b->read_buf = malloc(READ_CHUNK);
	if (!b->subs || !b->retained || !b->read_buf)
		return MOTE_ENOMEM;
	enum mote_err err = msg_pool_new(&b->pool);
	if (err != MOTE_OK)
		return err;
	b->shared->pools[id] = b->pool; /* freed by broker_free, after every shard */
	err = shard_init(b, loop);
	if (err != MOTE_OK)
		return err;
	loop_timer_init(&b->sys_timer, sys_publish_cb, b);
	loop_timer_init(&b->accept_timer, accept_retry_cb, b);
	return MOTE_OK;
}

enum mote_err broker_new(const struct broker_config *cfg, const struct broker_hooks *hooks,
			 struct loop *loop, struct broker **out)
{
	struct broker proto = { .cfg = *cfg };
	if (proto.cfg.max_packet_size == 0 || proto.cfg.max_packet_size > MQTT_MAX_REMAINING_LENGTH)
		proto.cfg.max_packet_size = MQTT_MAX_REMAINING_LENGTH;
	if (proto.cfg.receive_max == 0)
		proto.cfg.receive_max = 1;
	if (proto.cfg.max_inflight == 0)
		proto.cfg.max_inflight = 1;
	if (proto.cfg.threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		proto.cfg.threads = n > 0 ? (uint32_t)n : 1;
	}
	if (proto.cfg.threads > 256)
		proto.cfg.threads = 256;
	if (hooks)
		proto.hooks = *hooks;
	proto.nshards = proto.cfg.threads;
	proto.started_ms = mote_mono_ms();
	/* The shard array and the shared state belong to shard 0. */
	proto.shards = calloc(proto.nshards, sizeof *proto.shards);
	proto.shared = calloc(1, sizeof *proto.shared + proto.nshards * sizeof(struct msg_pool *));
	if (!proto.shards || !proto.shared) {
		free(proto.shards);
		free(proto.shared);
		return MOTE_ENOMEM;
	}
	enum mote_err err = MOTE_OK;
	for (uint32_t i = 0; i < proto.nshards && err == MOTE_OK; i++)
		err = shard_new(&proto, i, i == 0 ? loop : NULL, &proto.shards[i]);
	struct broker *b = proto.shards[0];
	if (err == MOTE_OK && proto.cfg.persist_dir)
		err = persist_open(b); /* replay, before any other thread runs */
	if (err == MOTE_OK)
		err = shard_start_threads(b);
	if (err != MOTE_OK) {
		if (b)
			broker_free(b);
		else {
			free(proto.shards);
			free(proto.shared);
		}
		return err;
	}
	if (b->cfg.sys_interval_s)
		loop_timer_start(loop, &b->sys_timer, 0);
	*out = b;
	return MOTE_OK;
}

/* Frees one shard (its thread has been joined). */
static void shard_free(struct broker *b)
{
	if (!b)
		return;
	/* Connections are gone after shutdown; force any left (error paths). */
	while (b->conns) {
		struct conn *c = b->conns;
		b->conns = c->next;
		if (c->state != CONN_CLOSED) {
			loop_io_stop(b->loop, &c->io);
			loop_timer_stop(b->loop, &c->timer);
			c->stream.ops->close(&c->stream);
		}
		if (c->session)
			c->session->conn = NULL;
		conn_release(c);
	}
	b->shutting_down = true; /* sessions end without wills */
	for (uint32_t i = 0; i < b->sessions.cap; i++) {
		while (b->sessions.slots[i]) { /* session_destroy unlinks it */
			struct session *s = b->sessions.slots[i];
			session_cancel_will(s);
			session_destroy(s);
		}
	}
	share_free_stubs(b);
	while (b->listeners) {
		struct listener *l = b->listeners;
		b->listeners = l->next;
		loop_io_stop(b->loop, &l->io);
		close(l->fd);
		free(l);
	}
	if (b->loop) {
		loop_defer_cancel(b->loop, &b->flush_idle);
		if (b->shard_id == 0 && b->ps)
			loop_timer_stop(b->loop, &b->snap_timer);
		loop_timer_stop(b->loop, &b->sys_timer);
		loop_timer_stop(b->loop, &b->accept_timer);
	}
	shard_join_and_free(b); /* after sessions: their ends may stage items */
	persist_shard_free(b);
	subtree_free(b->subs);
	retain_free(b->retained);
	idtab_free(&b->sessions);
	free(b->hits);
	free(b->read_buf);
	free(b->dirty);
	outq_cache_drain(&b->outbufs); /* after the connections gave theirs back */
	if (b->own_loop)
		loop_free(b->loop);
	free(b);
}

void broker_free(struct broker *b)
{
	if (!b)
		return;
	struct broker **shards = b->shards;
	struct shared_state *shared = b->shared;
	uint32_t n = b->nshards;
	/* Stop and join every thread first: after that nothing runs but us.
	 * (A shard that already stopped just never reads the request.) */
	shard_shutdown_others(b);
	for (uint32_t i = 1; i < n; i++) {
		struct broker *o = shards[i];
		if (o && o->thread_started) {
			pthread_join(o->thread, NULL);
			o->thread_started = false;
		}
	}
	/* The committer writes what the last loop rounds staged, and stops
	 * before the shards it wakes are freed. */
	for (uint32_t i = 0; i < n; i++)
		if (shards[i])
			persist_shard_flush(shards[i]);
	persist_close(shared);
	for (uint32_t i = 0; i < n; i++)
		shard_free(shards[i]);
	/* Messages of one shard's pool may sit in another shard's queues and
	 * retained index: the pools go last, when every message is gone. */
	for (uint32_t i = 0; i < n; i++)
		msg_pool_free(shared->pools[i]);
	free(shards);
	free(shared);
}

/* ---- listening ------------------------------------------------------------ */

static void pause_accepting(struct broker *b)
{
	if (b->accept_paused)
		return;
	b->accept_paused = true;
	for (struct listener *l = b->listeners; l; l = l->next)
		loop_io_modify(b->loop, &l->io, 0);
	loop_timer_start(b->loop, &b->accept_timer, 100);
}

static void accept_retry_cb(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	struct broker *b = t->data;
	if (b->shutting_down)
		return;
	b->accept_paused = false;
	for (struct listener *l = b->listeners; l; l = l->next)
		loop_io_modify(b->loop, &l->io, LOOP_READ);
}

static void on_accept(struct loop *loop, struct loop_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct listener *l = io->data;
	struct broker *b = l->b;
	for (int n = 0; n < 64 && !b->shutting_down; n++) {
		int fd;
		struct sockaddr_storage peer;
		socklen_t plen;
		enum mote_err err = net_accept(l->fd, &fd, &peer, &plen);
		if (err == MOTE_EAGAIN)
			return;
		if (err == MOTE_EFULL) {
			MOTE_WARN("broker", "event=accept_paused why=\"out of file descriptors\"");
			STAT_ADD(b, connections_refused, 1);
			pause_accepting(b);
			return;
		}
		if (err != MOTE_OK) {
			MOTE_WARN("broker", "event=accept_failed errno=%d", errno);
			return;
		}
		if (b->cfg.max_connections &&
		    atomic_load_explicit(&b->shared->conn_count, memory_order_relaxed) >=
			    b->cfg.max_connections) {
			close(fd);
			STAT_ADD(b, connections_refused, 1);
			continue;
		}
		struct net_peer addr;
		net_peer_from((struct sockaddr *)&peer, &addr);
		if (b->hooks.accept && !b->hooks.accept(b->hooks.ctx, &addr)) {
			close(fd); /* before any TLS work: refusals stay cheap */
			STAT_ADD(b, accept_refused, 1);
			continue;
		}
		struct net_stream stream;
		if (l->tls) {
			if (tls_stream_server(l->tls, &stream, fd) != MOTE_OK) {
				close(fd);
				STAT_ADD(b, connections_refused, 1);
				continue;
			}
		} else {
			net_stream_tcp(&stream, fd);
		}
		if (l->ws) {
			/* WebSocket over the TCP or TLS stream; the frame limit
			 * leaves room for small packets beside the largest one. */
			struct net_stream inner = stream;
			struct ws_options o = { .max_frame = (uint64_t)b->cfg.max_packet_size + 65536u,
						.origins = l->ws_origins,
						.n_origins = l->ws_origin_count };
			if (net_stream_ws(&stream, &inner, &o) != MOTE_OK) {
				inner.ops->close(&inner);
				STAT_ADD(b, connections_refused, 1);
				continue;
			}
		}
		/* Spread connections over the shards; a CONNECT may move it once
		 * more, to the shard of its client id (conn.c). The handshake runs
		 * on the shard it lands on. */
		uint32_t to = b->next_adopt++ % b->nshards;
		if (to == b->shard_id) {
			conn_accept(b, &stream, &addr, l->transport);
			continue;
		}
		struct inbox_item it = { .kind = IN_ADOPT, .stream = stream, .peer = addr,
					 .transport = l->transport };
		shard_send(b, to, &it);
	}
}

static enum mote_err listen_on(struct broker *b, const char *addr, struct tls_server *tls,
			       bool ws, char *errbuf, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t len;
	enum mote_err err = net_addr_parse(addr, &ss, &len, errbuf, errcap);
	if (err != MOTE_OK)
		return err;
	struct listener *l = calloc(1, sizeof *l);
	if (!l)
		return MOTE_ENOMEM;
	err = net_listen((struct sockaddr *)&ss, len, 1024, &l->fd);
	if (err != MOTE_OK) {
		snprintf(errbuf, errcap, "cannot listen on %s: %s%s", addr, strerror(errno),
			 errno == EADDRINUSE ? " (another broker running? pick another port)" : "");
		free(l);
		return err;
	}
	struct sockaddr_storage bound;
	socklen_t blen = sizeof bound;
	getsockname(l->fd, (struct sockaddr *)&bound, &blen);
	l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						    : ((struct sockaddr_in *)&bound)->sin_port);
	l->b = b;
	l->tls = tls;
	l->ws = ws;
	l->transport = ws ? (tls ? BROKER_TRANSPORT_WSS : BROKER_TRANSPORT_WS)
			  : (tls ? BROKER_TRANSPORT_TLS : BROKER_TRANSPORT_TCP);
	err = loop_io_start(b->loop, &l->io, l->fd, LOOP_READ, on_accept, l);
	if (err != MOTE_OK) {
		close(l->fd);
		free(l);
		snprintf(errbuf, errcap, "cannot watch listener %s", addr);
		return err;
	}
	l->next = b->listeners;
	b->listeners = l;
	b->last_port = l->port;
	char text[64];
	static const char *const proto[] = { "mqtt", "mqtts", "ws", "wss" };
	MOTE_INFO("broker", "event=listen proto=%s addr=%s", proto[l->transport],
		  net_addr_format((struct sockaddr *)&bound, text, sizeof text));
	return MOTE_OK;
}

enum mote_err broker_listen_tcp(struct broker *b, const char *addr, char *errbuf, size_t errcap)
{
	return listen_on(b, addr, NULL, false, errbuf, errcap);
}

enum mote_err broker_listen_ws(struct broker *b, const char *addr, struct tls_server *tls,
			       const char *const *origins, unsigned n_origins, char *errbuf,
			       size_t errcap)
{
	enum mote_err err = listen_on(b, addr, tls, true, errbuf, errcap);
	if (err == MOTE_OK) {
		b->listeners->ws_origins = origins; /* listen_on put it first */
		b->listeners->ws_origin_count = n_origins;
	}
	return err;
}

enum mote_err broker_listen_tls(struct broker *b, const char *addr, struct tls_server *tls,
				char *errbuf, size_t errcap)
{
	if (!tls) {
		snprintf(errbuf, errcap, "TLS listener %s: no TLS server context", addr);
		return MOTE_EINVAL;
	}
	return listen_on(b, addr, tls, false, errbuf, errcap);
}

void broker_recheck_certs(struct broker *b)
{
	for (uint32_t i = 0; i < b->nshards; i++) {
		if (i == b->shard_id)
			continue;
		struct inbox_item it = { .kind = IN_RECHECK };
		shard_send(b, i, &it);
	}
	shard_flush_stage(b);
	conn_recheck_all(b);
}

uint16_t broker_last_port(const struct broker *b)
{
	return b->last_port;
}

/* ---- shutdown --------------------------------------------------------------- */

void broker_conn_gone(struct broker *b)
{
	if (!b->shutting_down || b->conn_count > 0)
		return;
	/* Shard 0 runs the caller's loop: it stops last, when every other
	 * shard has stopped too (they tell it through its inbox). */
	if (b->shard_id != 0 || shard_all_stopped(b))
		loop_stop(b->loop);
}

void broker_shutdown_shard(struct broker *b)
{
	if (b->shutting_down)
		return;
	b->shutting_down = true;
	loop_timer_stop(b->loop, &b->sys_timer);
	loop_timer_stop(b->loop, &b->accept_timer);
	for (struct listener *l = b->listeners; l; l = l->next)
		loop_io_stop(b->loop, &l->io);
	for (struct conn *c = b->conns; c; c = c->next)
		conn_close(c, MQTT_RC_SERVER_SHUTTING_DOWN, "server shutting down");
	broker_conn_gone(b);
}

void broker_shutdown(struct broker *b)
{
	if (b->shutting_down)
		return;
	uint32_t total = atomic_load_explicit(&b->shared->conn_count, memory_order_relaxed);
	MOTE_INFO("broker", "event=shutdown connections=%u threads=%u", total, b->nshards);
	shard_shutdown_others(b);
	broker_shutdown_shard(b);
}

/* ---- internal publishes and statistics ----------------------------------- */

enum mote_err broker_publish(struct broker *b, const uint8_t *topic, size_t topic_len,
			     const uint8_t *payload, size_t payload_len, uint8_t qos, bool retain)
{
	if (topic_len > UINT16_MAX || payload_len > MQTT_MAX_REMAINING_LENGTH || qos > 2 ||
	    !mqtt_topic_name_valid(topic, topic_len))
		return MOTE_EINVAL;
	struct msg *m = msg_new(b->pool, topic, (uint16_t)topic_len, NULL, 0, payload,
				(uint32_t)payload_len, qos, retain, 0, 0);
	if (!m)
		return MOTE_ENOMEM;
	publish_internal(b, m, NULL);
	msg_unref(m);
	return MOTE_OK;
}

void broker_get_stats(const struct broker *b, struct broker_stats *out)
{
	memset(out, 0, sizeof *out);
	for (uint32_t i = 0; i < b->nshards; i++) {
		const struct shard_stats *st = &b->shards[i]->stats;
#define ADD(f) out->f += atomic_load_explicit(&st->f, memory_order_relaxed)
		ADD(clients_connected);
		ADD(sessions);
		ADD(msgs_received);
		ADD(msgs_sent);
		ADD(msgs_dropped);
		ADD(bytes_received);
		ADD(bytes_sent);
		ADD(subscriptions);
		ADD(connections_refused);
		ADD(queue_dropped);
		ADD(persist_refused);
		ADD(tls_failed);
		ADD(revoked_disconnects);
		ADD(accept_refused);
#undef ADD
	}
	if (b->shared->jc) {
		out->journal_safe_lsn = jcommit_safe_lsn(b->shared->jc);
		out->journal_failing = jcommit_failing(b->shared->jc);
	}
	/* Every shard keeps the same retained set: count this one's. */
	out->retained = retain_count(b->retained);
	out->uptime_s = (mote_mono_ms() - b->started_ms) / 1000u;
}

static void sys_publish_cb(struct loop *loop, struct loop_timer *t)
{
	struct broker *b = t->data;
	struct broker_stats st;
	broker_get_stats(b, &st);
	const struct {
		const char *topic;
		uint64_t value;
	} rows[] = {
		{ "$SYS/broker/uptime", st.uptime_s },
		{ "$SYS/broker/clients/connected", st.clients_connected },
		{ "$SYS/broker/clients/total", st.sessions },
		{ "$SYS/broker/messages/received", st.msgs_received },
		{ "$SYS/broker/messages/sent", st.msgs_sent },
		{ "$SYS/broker/messages/dropped", st.msgs_dropped },
		{ "$SYS/broker/bytes/received", st.bytes_received },
		{ "$SYS/broker/bytes/sent", st.bytes_sent },
		{ "$SYS/broker/subscriptions/count", st.subscriptions },
		{ "$SYS/broker/retained/count", st.retained },
		{ "$SYS/broker/messages/dropped/queue_full", st.queue_dropped },
		{ "$SYS/broker/store/refused", st.persist_refused },
		{ "$SYS/broker/store/safe_lsn", st.journal_safe_lsn },
		{ "$SYS/broker/store/failing", st.journal_failing },
		{ "$SYS/broker/tls/handshake_failed", st.tls_failed },
		{ "$SYS/broker/tls/revoked_disconnects", st.revoked_disconnects },
		{ "$SYS/broker/connections/refused_by_policy", st.accept_refused },
	};
	const char *version = "mote " MOTE_VERSION;
	broker_publish(b, (const uint8_t *)"$SYS/broker/version", 19, (const uint8_t *)version,
		       strlen(version), 0, true);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char text[24];
		int n = snprintf(text, sizeof text, "%llu", (unsigned long long)rows[i].value);
		broker_publish(b, (const uint8_t *)rows[i].topic, strlen(rows[i].topic),
			       (const uint8_t *)text, (size_t)n, 0, true);
	}
	loop_timer_start(loop, t, (uint64_t)b->cfg.sys_interval_s * 1000u);
}
